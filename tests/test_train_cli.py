"""``rtbci train`` end to end on small simulated sessions, plain and under torchrun."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rtbci.cli import build_parser, main
from rtbci.commands.train import RECIPE_NAMES, _config
from rtbci.io.store import write_session
from rtbci.models.checkpoint import build_decoder, build_encoder, load_checkpoint
from rtbci.profile import load_profile
from rtbci.sim import SimConfig, session_id, simulate_session
from rtbci.train.demo_model import DemoData
from rtbci.train.encoders import SIZES
from rtbci.train.recipes import RECIPES

PROFILE = "profiles/demo.toml"
TINY = ["--size", "tiny", "--batch-size", "4", "--device", "cpu"]
TINY += ["--val-fraction", "0.2", "--test-fraction", "0.2"]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models on a shared machine: one thread avoids OpenMP oversubscription."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def sessions(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sessions")
    for index in range(2):
        recording = simulate_session(SimConfig(), 0, index, 0.5, seed=3)
        write_session(folder / f"{session_id(0, index)}.h5", recording)
    return folder


@pytest.mark.slow
def test_pipeline_writes_checkpoints_and_an_artifact(sessions: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    argv = ["train", "pipeline", "--profile", PROFILE, "--data", str(sessions), "--out", str(out)]
    steps = ["--steps", "4", "--teacher-steps", "6", "--finetune-steps", "3"]
    assert main([*argv, *steps, *TINY]) == 0
    summary = json.loads((out / "summary.json").read_text())
    teacher = load_checkpoint(out / "teacher.pt")
    assert teacher.encoder_config.modality == "spikes"
    assert [step for step, _ in teacher.metrics["val_r2_history"]] == [6]  # its own budget
    assert teacher.session_ids == [session_id(0, 0), session_id(0, 1)]
    student = load_checkpoint(out / "student.pt")
    assert student.encoder_config.modality == "lfp"
    assert [step for step, _ in student.metrics["val_r2_history"]] == [4]
    assert student.normalization is not None and student.features["bin_ms"] == 20.0
    # One context row per subject (the default): in the teacher and in the student the two
    # sessions share one trained row.
    for checkpoint in (teacher, student):
        rows = build_encoder(checkpoint).tokenizer.session_table()(torch.arange(2))
        assert torch.equal(rows[0], rows[1])
    decoder = load_checkpoint(out / "decoder.pt")
    assert decoder.kinematics_names == ["vel_x", "vel_y"]
    assert set(decoder.metrics) >= {"heldout_r2", "val_r2", "ridge_alpha", "heldout_before_finetune_r2"}
    assert [step for step, _ in decoder.metrics["finetune_val_r2_history"]] == [3]
    build_decoder(decoder)
    manifest = json.loads((out / "artifact" / "manifest.json").read_text())
    assert manifest["sha256"] == summary["artifact_sha256"]
    assert manifest["session_id"] == session_id(0, 1)  # newest session of the profile's subject

    # The head stage alone, on the teacher: a spike-input decoder.
    spikes_out = tmp_path / "spike_decoder"
    head = ["train", "head", "--profile", PROFILE, "--data", str(sessions), "--out", str(spikes_out)]
    head += ["--encoder", str(out / "teacher.pt"), "--val-fraction", "0.2", "--test-fraction", "0.2"]
    assert main(head) == 0
    spike_decoder = load_checkpoint(spikes_out / "decoder.pt")
    assert spike_decoder.encoder_config.modality == "spikes"
    assert json.loads((spikes_out / "artifact" / "manifest.json").read_text())["modality"] == "spikes"


@pytest.mark.slow
def test_stage_resumes_from_its_state_file(sessions: Path, tmp_path: Path) -> None:
    out = tmp_path / "teacher"
    base = ["train", "teacher", "--profile", PROFILE, "--data", str(sessions), "--out", str(out)]
    assert main([*base, "--steps", "3", *TINY]) == 0
    first = load_checkpoint(out / "teacher.pt")
    assert main([*base, "--steps", "6", *TINY]) == 0  # continues from step 3 to step 6
    second = load_checkpoint(out / "teacher.pt")
    assert len(first.metrics["val_r2_history"]) == 1
    assert [step for step, _ in second.metrics["val_r2_history"]] == [3, 6]


@pytest.mark.parametrize(("flag", "per_subject"), [([], True), (["--no-context-per-subject"], False)])
def test_context_rows_per_subject_by_default(flag: list[str], per_subject: bool) -> None:
    argv = ["train", "pipeline", "--profile", PROFILE, "--data", "d", "--out", "o", *flag]
    config = _config(build_parser("train").parse_args(argv))
    assert config.teacher.context_per_subject is per_subject
    assert config.student.context_per_subject is per_subject


def test_the_demo_model_trains_by_the_demo_recipe() -> None:
    argv = DemoData().train_argv(Path("d"), Path("o"), session_id(0, 0))
    config = _config(build_parser("train").parse_args(argv))
    assert config is RECIPES["demo"]
    # One context row per subject, the small encoder, and the profile's LFP convolution.
    assert config.teacher.context_per_subject and config.student.context_per_subject
    assert config.student.size == SIZES["small"] and config.finetune.loop.steps > 0
    profile = load_profile(str(DemoData().profile))
    assert profile.features.lfp_conv_bins == 10


def test_recipe_names_in_the_help_are_the_recipes() -> None:
    assert set(RECIPE_NAMES) == set(RECIPES)


def test_missing_data_is_a_clear_error(tmp_path: Path, capsys) -> None:
    missing = str(tmp_path / "nope")
    argv = ["train", "teacher", "--profile", PROFILE, "--data", missing, "--out", str(tmp_path)]
    assert main(argv) == 2
    assert "nope: no such file or directory" in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_two_cpu_processes(sessions: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "rtbci.cli", "train", "teacher", "--profile", PROFILE, "--data", str(sessions),
        "--out", str(out), "--steps", "3", *TINY,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=Path.cwd())
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = load_checkpoint(out / "teacher.pt")
    assert checkpoint.metrics["val_r2_history"][-1][0] == 3
    build_encoder(checkpoint)
