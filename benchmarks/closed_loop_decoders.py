"""The closed-loop benchmark's decoders, and how each is calibrated on a labelled lockstep block.

Every decoder reaches the task through the same path: the engine steps a backend on each bin's
features and publishes its output over LSL (:class:`ServedDecoder`). Two kinds of backend:

- an artifact folder (``decoder.onnx``) served by ONNX Runtime, as ``rtbci run`` serves it: the
  distilled LFP student and the spike decoder. Calibration is Stage A (:func:`calibrate_artifact`):
  a new session row and a ridge head on the frozen backbone, then the calibration tool's export;
- an in-process backend with the engine's ``reset``/``step``/``info``: :class:`ZeroBackend`
  (the control, which must score 0) and :class:`RidgeBackend`, a ridge regression on the current
  and previous z-scored LFP feature bins, as the calibration tool's ``ridge_raw`` baseline
  (:func:`fit_ridge`).

A calibration block is the lockstep block's engine records, with velocity labels from its task
rows (:func:`rtbci.task.labels.task_labels`), as a :class:`~rtbci.signal.BinnedSession`
(:func:`labelled_bins`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.lockstep import LockstepBlock, nearest
from calibrate.export import export_calibrated
from calibrate.previous import load_previous
from rtbci.engine import Engine
from rtbci.engine.engine import EngineOptions
from rtbci.profile import Profile
from rtbci.runtime.manifest import read_manifest
from rtbci.signal import BinnedSession, Normalizer
from rtbci.task.labels import LABEL_LAG_MS, TaskLabels, task_labels
from rtbci.train.readout import with_history
from rtbci.train.session_fit import DEFAULT_ALPHAS, fit_ridge_head
from rtbci.train.splits import BinBlock, FitBlocks
from rtbci.train.stage_a import StageAConfig, run_stage_a

__all__ = [
    "RidgeBackend",
    "ServedDecoder",
    "ZeroBackend",
    "calibrate_artifact",
    "fit_blocks",
    "fit_ridge",
    "labelled_bins",
]


class ZeroBackend:
    """A backend that decodes zero velocity for every bin: the control that must acquire no target.

    Parameters
    ----------
    n_outputs
        Kinematics per bin.
    """

    def __init__(self, n_outputs: int) -> None:
        self._zeros = np.zeros(n_outputs, dtype=np.float32)

    def reset(self) -> None:
        """Nothing to forget."""

    def step(self, features: np.ndarray) -> np.ndarray:
        """Zeros, whatever the features."""
        return self._zeros

    def info(self) -> dict:
        """What runs."""
        return {"backend": "zero", "outputs": len(self._zeros)}


class RidgeBackend:
    """Ridge regression on the current and ``history - 1`` previous bins of z-scored features.

    Parameters
    ----------
    normalizer
        Per-feature mean and standard deviation (of one flattened bin).
    weight, bias
        ``(K, D * history)`` and ``(K,)``; the columns run from the oldest bin to the current one
        (:func:`rtbci.train.readout.with_history`).
    history
        Bins per prediction.
    """

    def __init__(self, normalizer: Normalizer, weight: np.ndarray, bias: np.ndarray, history: int) -> None:
        self.normalizer = normalizer
        self.weight = np.asarray(weight, dtype=np.float32)
        self.bias = np.asarray(bias, dtype=np.float32)
        self.history = history
        self._window = np.zeros((history, self.weight.shape[1] // history), dtype=np.float32)

    def reset(self) -> None:
        """Forget the previous bins (they count as zeros, as in the fit)."""
        self._window[:] = 0.0

    def step(self, features: np.ndarray) -> np.ndarray:
        """One bin's raw features (any shape) -> ``(K,)`` float32."""
        self._window[:-1] = self._window[1:]
        self._window[-1] = self.normalizer.apply(features.reshape(1, -1))[0]
        return self.weight @ self._window.reshape(-1) + self.bias

    def info(self) -> dict:
        """What runs."""
        return {"backend": "ridge", "history_bins": self.history, "inputs": int(self.weight.shape[1])}


@dataclass(frozen=True)
class ServedDecoder:
    """A decoder the engine serves: an artifact folder, or an in-process backend.

    Attributes
    ----------
    model_input
        ``lfp`` or ``spikes``: the features the engine passes it.
    artifact
        Artifact folder served by ONNX Runtime, or None.
    backend
        Makes a fresh in-process backend, or None.
    """

    model_input: str
    artifact: Path | None = None
    backend: Callable[[], object] | None = None

    def __post_init__(self) -> None:
        if (self.artifact is None) == (self.backend is None):
            raise ValueError("a served decoder is an artifact or a backend, exactly one of them")

    def model_table(self) -> dict | None:
        """The profile's ``[model]`` table for an artifact; None (keep the base's) for a backend."""
        if self.artifact is None:
            return None
        sha256 = read_manifest(self.artifact).sha256
        return {
            "artifact": str(self.artifact),
            "sha256": sha256,
            "backend": "onnxruntime",
            "input": self.model_input,
        }

    def engine(self, profile: Profile) -> Engine:
        """An engine (not started) that serves this decoder with ``profile``'s streams."""
        if self.artifact is not None:
            return Engine.from_profile(profile)
        return Engine(profile, self.backend(), self.model_input, EngineOptions())


def labelled_bins(
    block: LockstepBlock, labels: TaskLabels, model_input: str, session_id: str, profile: Profile
) -> BinnedSession:
    """A lockstep block as a calibration block: the features the engine read, labelled from the task rows.

    Each bin's label is read from the task row of the bin :data:`rtbci.task.labels.LABEL_LAG_MS`
    after it, as ``featurize(..., labels=...)`` reads a recording (``cue``: the row 120 ms before,
    as the participant follows the cue with a visuomotor delay). Bins whose labelling row is not in
    the block are left out.

    Parameters
    ----------
    block
        The block; its records hold the model input's features, and the spike counts when the
        model read LFP.
    labels
        ``cue`` or ``refit`` (:func:`rtbci.task.labels.task_labels`).
    model_input
        What the block's decoder read: ``lfp`` (the records hold LFP features and spike counts) or
        ``spikes`` (spike counts only).
    session_id
        The simulated session's id (the calibrated decoder's new session row).
    profile
        Subject, kinematics names, bin width and the task's target radius.

    Returns
    -------
    BinnedSession
    """
    ends = block.records["end_time"]
    row, found = nearest(ends, ends + LABEL_LAG_MS[labels] / 1000.0, profile.bin_s / 4.0)
    records = block.records[found]
    velocity = task_labels(block.task_rows, labels, profile.task.target_radius)[row[found]]
    n = len(records)
    if model_input == "lfp":
        spikes, lfp = records["spikes"], records["features"]
    else:
        spikes, lfp = records["features"], np.zeros((n, 0, 0), np.float32)
    return BinnedSession(
        spikes=np.asarray(spikes, np.float32),
        lfp=np.asarray(lfp, np.float32),
        kinematics=velocity.astype(np.float32),
        bin_ends=records["end_time"].copy(),
        kinematics_names=list(profile.output.kinematics),
        feature_names=[],
        session_id=session_id,
        subject=profile.rig.subject,
        bin_index=records["index"].copy(),
    )


def fit_blocks(n_bins: int, gap_bins: int, val_fraction: float = 0.2) -> FitBlocks:
    """Fit on the first part of a block, validate on its last ``val_fraction``, refit on all of it.

    No held-out block: a closed-loop decoder is scored by its next block of trials, not by R².

    Raises
    ------
    ValueError
        If the block is too short for both parts and the gap.
    """
    val_bins = round(n_bins * val_fraction)
    fit_stop = n_bins - val_bins - gap_bins
    if val_bins < 1 or fit_stop < 1:
        raise ValueError(f"{n_bins} bins are too few to fit and validate with a {gap_bins}-bin gap")
    return FitBlocks(
        fit=BinBlock(0, fit_stop), val=BinBlock(n_bins - val_bins, n_bins), train=BinBlock(0, n_bins)
    )


def fit_ridge(binned: BinnedSession, history: int = 3) -> RidgeBackend:
    """Ridge on z-scored LFP features of the current and ``history - 1`` previous bins.

    As the calibration tool's ``ridge_raw`` baseline (:func:`calibrate.scoring.ridge_raw_predictions`):
    the penalty chosen on the validation block, the head refit on the whole block.
    """
    features = binned.lfp.reshape(len(binned), -1)
    blocks = fit_blocks(len(binned), history)
    normalizer = Normalizer().fit(features[blocks.train.as_slice()])
    design = with_history(normalizer.apply(features), history)
    head, _, _ = fit_ridge_head(design, binned.kinematics, blocks, DEFAULT_ALPHAS)
    return RidgeBackend(
        normalizer, head.linear.weight.detach().numpy(), head.linear.bias.detach().numpy(), history
    )


def calibrate_artifact(profile: Profile, binned: BinnedSession, out_dir: Path) -> tuple[Path, dict]:
    """Stage A of the decoder that ``profile``'s ``[model]`` serves, on ``binned``; export it.

    Parameters
    ----------
    profile
        A profile whose ``[model]`` is the decoder to start from (its hashes are checked).
    binned
        The labelled calibration block.
    out_dir
        The new artifact folder (must not exist).

    Returns
    -------
    artifact_dir, fit
        The calibrated artifact, and the fit's figures (seconds, validation R² of the head).
    """
    previous = load_previous(profile)
    encoder = previous.decoder().encoder
    blocks = fit_blocks(len(binned), encoder.config.window_bins)
    stage_a = run_stage_a(
        encoder, previous.checkpoint.session_ids, binned, blocks, StageAConfig(), progress=False
    )
    fitted = stage_a.fitted
    metrics = {
        "calibration_stage": "A",
        "ridge_alpha": fitted.alpha,
        "val_r2": [float(v) for v in fitted.val_r2],
    }
    exported = export_calibrated(fitted, stage_a.session_ids, previous, profile, metrics, out_dir)
    fit = {
        "seconds": fitted.seconds,
        "val_r2": float(np.mean(fitted.val_r2)),
        "bins": len(binned),
        "switched_off_channels": stage_a.switched_off_channels,
    }
    return exported.artifact_dir, fit
