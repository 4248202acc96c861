"""The bundled demo decoder: the committed artifact decodes fresh data of the demo subject."""

import dataclasses

import numpy as np
import pytest

from rtbci.demo import DEMO_UNSEEN_FROM_MINUTE
from rtbci.metrics import r2_per_axis
from rtbci.profile import load_profile
from rtbci.runtime import load_backend, read_manifest
from rtbci.runtime.manifest import feature_disagreements
from rtbci.signal import featurize
from rtbci.sim import SimConfig, simulate_session
from rtbci.train.demo_model import DemoData

# The demo streams session 0 of the demo subject, whose first DemoData.minutes
# trained the model; the simulation goes on past them with data it never saw.
FRESH_MINUTES = 1.5


@pytest.fixture(scope="module")
def profile():
    return load_profile("profiles/demo.toml")


def test_profile_points_at_the_committed_artifact(profile) -> None:
    assert profile.model is not None, "profiles/demo.toml needs its [model] section"
    manifest = read_manifest(profile.artifact_dir())
    assert manifest.sha256 == profile.model.sha256
    assert manifest.modality == profile.model.input == "lfp"
    assert manifest.kinematics_names == list(profile.output.kinematics)
    assert manifest.session_id == "sim-S0-d00"  # the session `make demo` streams


def test_the_demo_profile_and_its_artifact_agree_on_every_feature_setting(profile) -> None:
    """Every [features] setting, the model's own (window, LFP convolution, patches) included."""
    manifest = read_manifest(profile.artifact_dir())
    assert feature_disagreements(manifest, dataclasses.asdict(profile.features)) == []


def test_the_demo_streams_minutes_the_demo_model_never_trained_on() -> None:
    assert DEMO_UNSEEN_FROM_MINUTE >= DemoData.minutes


@pytest.mark.slow
def test_demo_model_decodes_a_fresh_session_of_the_demo_subject(profile) -> None:
    backend = load_backend("onnxruntime", profile.artifact_dir(), expected_sha256=profile.model.sha256)
    subject = int(profile.rig.subject.removeprefix("sim-S"))
    minutes = DemoData.minutes + FRESH_MINUTES
    recording = simulate_session(SimConfig(), subject, 0, minutes, seed=DemoData.seed)
    binned = featurize(recording, profile, progress=False)
    backend.reset()
    decoded = np.stack([backend.step(features) for features in binned.lfp])
    fresh = binned.bin_ends >= binned.bin_ends[0] + DemoData.minutes * 60.0
    r2 = r2_per_axis(binned.kinematics[fresh], decoded[fresh])
    # Measured 0.145 and 0.083 when the artifact was made (profiles/models/demo/README.md), on the
    # simulator tuned against real recordings (issue 31). A broken graph or a wrong normalisation
    # gives R² <= 0, and so does the previous artifact, trained on the untuned simulator (-0.089
    # and -0.052 here): the simulation is seeded and the step deterministic, so this cannot flake.
    assert np.all(r2 > 0.05), r2
