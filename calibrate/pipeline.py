"""The calibration pipeline, for the CLI and the desktop app: data -> split -> Stage A (-> Stage B)
-> held-out scores -> report -> artifact; then, once accepted, a new profile version.

:func:`run_calibration` does everything that writes nothing a rig runs (the
recording, the artifact folder and its report are new files in the user data
directory, :mod:`rtbci.home`). :func:`accept_calibration` then applies the guard
(never replace a better decoder unless forced) and writes the new profile version
where :func:`profile_target` says; :func:`reject_calibration` keeps only the report
of a refused one. The app calls the first from a worker thread with a progress
callback, shows the report, and calls the second when the user accepts.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from calibrate.data import check_block, featurize_block, load_block, min_record_seconds
from calibrate.errors import CalibrationDataError, CalibrationError
from calibrate.export import ExportedDecoder, export_calibrated
from calibrate.previous import PreviousDecoder, load_previous
from calibrate.profile_version import ModelEntry, ProfileVersion, relative_artifact, write_profile_version
from calibrate.record import RecordedBlock, record_block
from calibrate.report import format_scores, write_json, write_plot
from calibrate.scoring import CALIBRATED, PREVIOUS, RIDGE_RAW, HeldoutScores, score_heldout
from calibrate.split import CalibrationSplit, CalibrationSplitConfig, split_calibration_block
from rtbci.home import data_home, is_shipped, plain_name
from rtbci.profile import Profile, load_profile
from rtbci.signal import LABELS, BinnedSession, Labels
from rtbci.train.session_fit import FittedDecoder
from rtbci.train.stage_a import StageAConfig, run_stage_a
from rtbci.train.stage_b import StageBConfig, run_stage_b

__all__ = [
    "CalibrationConfig",
    "CalibrationProgress",
    "CalibrationResult",
    "accept_calibration",
    "profile_target",
    "reject_calibration",
    "run_calibration",
]

# Stages reported to the progress callback, in order.
STAGES = ("record", "load", "stage_a", "stage_b", "score", "export")


@dataclass(frozen=True)
class CalibrationConfig:
    """Settings of one calibration.

    Attributes
    ----------
    full
        Run Stage B (full fine-tune) after Stage A.
    min_seconds
        Shortest block accepted, in seconds of aligned bins; a recording must be longer
        (:func:`calibrate.data.min_record_seconds`).
    split
        Held-out and validation shares.
    stage_a, stage_b
        Stage settings (:mod:`rtbci.train.stage_a`, :mod:`rtbci.train.stage_b`).
    ridge_history_bins
        Bins of raw features the ridge baseline sees per prediction.
    artifact_root
        Where new artifact folders go; default ``models/`` in the user data directory
        (:func:`rtbci.home.data_home`).
    show_progress
        tqdm bars on stderr (the CLI); the app passes False and uses the callback.
    """

    full: bool = False
    min_seconds: float = 60.0
    split: CalibrationSplitConfig = field(default_factory=CalibrationSplitConfig)
    stage_a: StageAConfig = field(default_factory=StageAConfig)
    stage_b: StageBConfig = field(default_factory=StageBConfig)
    ridge_history_bins: int = 3
    artifact_root: Path | None = None
    show_progress: bool = True


@dataclass(frozen=True)
class CalibrationProgress:
    """One progress report.

    Attributes
    ----------
    stage
        One of ``record``, ``load``, ``stage_a``, ``stage_b``, ``score``, ``export``.
    fraction
        Share of that stage done, 0..1.
    message
        What is happening (stream health while recording).
    """

    stage: str
    fraction: float
    message: str


ProgressCallback = Callable[[CalibrationProgress], None]


@dataclass
class CalibrationResult:
    """Everything a calibration made; nothing a rig runs has changed yet.

    Attributes
    ----------
    profile
        The profile calibrated.
    profile_text
        Its text when calibration read it (the new version is rendered from it).
    source
        The Session file the block came from (the recording, for ``--record``).
    session_id
        The block's session id (the new row of the session table).
    split
        The blocks; scores are on ``split.heldout`` only.
    scores
        Held-out predictions and R² of the calibrated decoder and the baselines.
    fitted
        The decoder that was exported (Stage B's with ``full``, else Stage A's).
    stage_a_seconds, stage_b_seconds
        Fitting time of each stage (None: Stage B did not run).
    exported
        The artifact.
    report_png, report_json
        The report files inside the artifact folder.
    recorded
        The recording's health, for ``--record``.
    calibrated_at
        ISO 8601 UTC time.
    switched_off_channels
        LFP channels switched off by Stage A's channel check, which checks every
        channel again on each calibration.
    labels
        What the decoder was fit to and scored against: ``hand`` (the behavior stream), ``cue``
        or ``refit`` (velocity labels of the recorded cursor task, :mod:`rtbci.task.labels`).
    """

    profile: Profile
    profile_text: str
    source: Path
    session_id: str
    split: CalibrationSplit
    scores: HeldoutScores
    fitted: FittedDecoder
    stage_a_seconds: float
    stage_b_seconds: float | None
    exported: ExportedDecoder
    report_png: Path
    report_json: Path
    recorded: RecordedBlock | None
    calibrated_at: str
    switched_off_channels: list[int]
    labels: Labels = "hand"

    @property
    def heldout_r2(self) -> float:
        """Mean held-out R² of the calibrated decoder."""
        return self.scores.mean_r2(CALIBRATED)

    @property
    def previous_r2(self) -> float | None:
        """Mean held-out R² of the previous decoder on the same bins."""
        return self.scores.mean_r2(PREVIOUS) if PREVIOUS in self.scores.predicted else None

    @property
    def better_than_previous(self) -> bool:
        """True when the calibrated decoder scores at least as well as the previous one on held-out data."""
        return self.previous_r2 is None or self.heldout_r2 >= self.previous_r2

    def summary(self) -> str:
        """The held-out table and the verdict, as text."""
        heldout = self.split.heldout
        seconds = heldout.n_bins * self.profile.bin_s
        lines = [
            f"held-out R² on the last {heldout.n_bins} bins ({seconds:.1f} s) of {self.source} "
            f"(labels: {self.labels}):",
            format_scores(self.scores),
        ]
        if self.switched_off_channels:
            lines.append(
                "LFP channels switched off (far outside the training normalisation): "
                f"{self.switched_off_channels}"
            )
        if not self.better_than_previous:
            lines.append(
                f"the calibrated decoder is WORSE than the previous one on held-out data "
                f"({self.heldout_r2:.3f} < {self.previous_r2:.3f}): the profile keeps the previous decoder "
                "unless --force is given"
            )
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """The report as plain data."""
        manifest = self.exported.manifest
        return {
            "profile": str(self.profile.path),
            "source": str(self.source),
            "session_id": self.session_id,
            "calibrated_at": self.calibrated_at,
            "labels": self.labels,
            "stage": "B" if self.stage_b_seconds is not None else "A",
            "split_bins": {
                name: [getattr(self.split, name).start, getattr(self.split, name).stop]
                for name in ("fit", "val", "train", "heldout")
            },
            "heldout_seconds": self.split.heldout.n_bins * self.profile.bin_s,
            "heldout_r2": self.scores.table(),
            "heldout_r2_mean": self.heldout_r2,
            "better_than_previous": self.better_than_previous,
            "val_r2": [float(value) for value in self.fitted.val_r2],
            "ridge_alpha": self.fitted.alpha,
            "switched_off_channels": self.switched_off_channels,
            "stage_a_seconds": self.stage_a_seconds,
            "fit_cpu_seconds": self.fitted.cpu_seconds,
            "stage_b_seconds": self.stage_b_seconds,
            "history": [
                {"step": step, "loss": loss if np.isfinite(loss) else None, "val_r2": val}
                for step, loss, val in self.fitted.history
            ],
            "artifact": str(self.exported.artifact_dir),
            "sha256": manifest.sha256,
            "tensorrt": self.exported.tensorrt,
            "report_png": str(self.report_png),
            "recording": (
                {role: asdict(health) for role, health in self.recorded.health.items()}
                if self.recorded is not None
                else None
            ),
        }


def _notify(callback: ProgressCallback | None, stage: str, fraction: float, message: str) -> None:
    if callback is not None:
        callback(CalibrationProgress(stage, fraction, message))


def _recording_path(profile: Profile) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return data_home().recordings / f"{plain_name(profile.rig.subject)}-cal-{stamp}.h5"


def _load(
    source: Path, profile: Profile, previous: PreviousDecoder, config: CalibrationConfig, labels: Labels
) -> BinnedSession:
    session = load_block(source)
    check_block(session, profile, previous.modality, config.min_seconds, str(source), labels)
    return featurize_block(
        session, profile, config.min_seconds, str(source), progress=config.show_progress, labels=labels
    )


def run_calibration(
    profile_path: str | Path,
    *,
    session_file: str | Path | None = None,
    record_seconds: float | None = None,
    record_path: str | Path | None = None,
    config: CalibrationConfig | None = None,
    progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
    labels: Labels = "hand",
) -> CalibrationResult:
    """Calibrate the profile's decoder to a new block of data.

    Give exactly one of ``session_file`` and ``record_seconds``.

    Parameters
    ----------
    profile_path
        The rig profile; its ``[model]`` is the decoder to start from and to beat.
    session_file
        A Session file (``.h5``) or a recording to import (``.nwb``, ``.xdf``, ...).
    record_seconds
        Record this long from the profile's LSL streams first.
    record_path
        Where the recording goes (default ``recordings/<subject>-cal-<time>.h5`` in the
        user data directory).
    config
        Settings; defaults to :class:`CalibrationConfig`.
    progress
        Called with a :class:`CalibrationProgress` as each stage moves.
    stop
        Ends a recording early when set (what came so far is calibrated on).
    labels
        What to fit the decoder to. ``hand``: the block's behavior stream. Without a hand, the
        velocity labels of the block's recorded cursor task stream (:mod:`rtbci.task.labels`):
        ``cue`` the cued velocity, ``refit`` the decoded velocity turned toward the target (Gilja
        et al. 2012). A recording for ``cue`` or ``refit`` runs the task in-process meanwhile
        (assist 1 for ``cue``), on the decoder's output: the decoder must be running.

    Returns
    -------
    CalibrationResult
        The new artifact and the held-out report; the profile is not changed yet
        (see :func:`accept_calibration`).

    Raises
    ------
    CalibrationError, CalibrationDataError
        No previous decoder, no behavior (no task stream, for ``cue`` and ``refit``), too little
        data, unknown ``labels``, ...
    """
    if labels not in LABELS:
        raise CalibrationError(f"labels must be one of {', '.join(LABELS)}, got {labels!r}")
    config = config or CalibrationConfig()
    if (session_file is None) == (record_seconds is None):
        raise CalibrationError("give either a Session file (--from) or a recording length (--record)")
    profile_path = Path(profile_path)
    profile = load_profile(profile_path)
    profile_text = profile_path.read_text(encoding="utf-8")
    previous = load_previous(profile)

    recorded = None
    if record_seconds is not None:
        needed = min_record_seconds(config.min_seconds, profile)
        if record_seconds < needed:
            raise CalibrationDataError(
                f"a {record_seconds:g} s recording is too short: calibration needs {config.min_seconds:g} s "
                f"of aligned bins (the last 20% is held out for scoring), which takes a recording of at "
                f"least {needed:g} s"
            )
        recorded = record_block(
            profile,
            record_seconds,
            Path(record_path) if record_path is not None else _recording_path(profile),
            labels=labels,
            stop=stop,
            on_progress=lambda fraction, line: _notify(progress, "record", fraction, line),
            show_bar=config.show_progress,
        )
        source = recorded.path
    else:
        source = Path(session_file)

    _notify(progress, "load", 0.0, f"reading and featurizing {source}")
    binned = _load(source, profile, previous, config, labels)
    split = split_calibration_block(len(binned), previous.checkpoint.encoder_config.window_bins, config.split)

    _notify(progress, "stage_a", 0.0, "Stage A: new session row and ridge head, backbone frozen")
    stage_a = run_stage_a(
        previous.decoder().encoder,
        previous.checkpoint.session_ids,
        binned,
        split,
        config.stage_a,
        progress=config.show_progress,
        on_step=lambda step: _notify(progress, "stage_a", step.fraction, step.line()),
    )
    fitted, stage_b_seconds = stage_a.fitted, None
    if config.full:
        _notify(progress, "stage_b", 0.0, "Stage B: fine-tuning all weights")
        fitted = run_stage_b(
            stage_a.fitted.decoder,
            stage_a.bins,
            split,
            stage_a.new_parameters,
            config.stage_b,
            progress=config.show_progress,
            on_step=lambda step: _notify(progress, "stage_b", step.fraction, step.line()),
        )
        stage_b_seconds = fitted.seconds

    _notify(progress, "score", 0.0, "scoring on the held-out block")
    scores = score_heldout(fitted, stage_a.bins, binned, split, previous, config.ridge_history_bins)
    now = datetime.now(UTC)
    calibrated_at = now.isoformat(timespec="seconds")

    _notify(progress, "export", 0.0, "exporting the artifact")
    stem = plain_name(f"{profile_path.stem}-{stage_a.session_ids[-1]}-{now:%Y%m%dT%H%M%SZ}")
    artifact_root = config.artifact_root or data_home().models
    metrics = {
        "heldout_r2": scores.mean_r2(CALIBRATED),
        "heldout_r2_per_axis": [float(value) for value in scores.r2(CALIBRATED)],
        "ridge_raw_heldout_r2": scores.mean_r2(RIDGE_RAW),
        "previous_heldout_r2": scores.mean_r2(PREVIOUS),
        "calibration_date": calibrated_at,
        "calibration_source": str(source),
        "calibration_stage": "B" if config.full else "A",
        "calibration_labels": labels,
        "ridge_alpha": fitted.alpha,
        "switched_off_channels": stage_a.switched_off_channels,
    }
    exported = export_calibrated(
        fitted, stage_a.session_ids, previous, profile, metrics, artifact_root / stem
    )
    report_png = write_plot(
        scores,
        exported.artifact_dir / "calibration.png",
        profile.output.units,
        f"{binned.session_id}: held-out block ({labels} labels), calibrated {calibrated_at}",
    )
    result = CalibrationResult(
        profile=profile,
        profile_text=profile_text,
        source=source,
        session_id=binned.session_id,
        split=split,
        scores=scores,
        fitted=fitted,
        stage_a_seconds=stage_a.fitted.seconds,
        stage_b_seconds=stage_b_seconds,
        exported=exported,
        report_png=report_png,
        report_json=exported.artifact_dir / "calibration.json",
        recorded=recorded,
        calibrated_at=calibrated_at,
        switched_off_channels=stage_a.switched_off_channels,
        labels=labels,
    )
    write_json(result.to_json(), result.report_json)
    _notify(progress, "export", 1.0, f"wrote {exported.artifact_dir}")
    return result


def profile_target(profile_path: str | Path, out_profile: str | Path | None = None) -> Path:
    """Where the new profile version of a calibration goes.

    Parameters
    ----------
    profile_path
        The profile calibrated.
    out_profile
        An explicit destination (``--out-profile``).

    Returns
    -------
    Path
        ``out_profile`` if given; for a shipped template (read-only), the lab's copy
        ``profiles/<name>.toml`` in the user data directory; else ``profile_path`` itself.
    """
    if out_profile is not None:
        return Path(out_profile)
    if is_shipped(profile_path):
        return data_home().profiles / Path(profile_path).name
    return Path(profile_path)


def accept_calibration(
    result: CalibrationResult, force: bool = False, out_profile: str | Path | None = None
) -> ProfileVersion | None:
    """Write the new profile version pointing to the calibrated artifact, unless it is worse.

    Parameters
    ----------
    result
        From :func:`run_calibration`.
    force
        Write even if the calibrated decoder scores worse than the previous one on
        held-out data, and overwrite ``out_profile`` / concurrent edits of the profile.
    out_profile
        Write the new version to this file. Without it a lab profile is updated in place
        and a shipped template's new version goes to the user data directory
        (:func:`profile_target`); an earlier version there is archived as ``<name>.v<N>.toml``.

    Returns
    -------
    ProfileVersion or None
        None when the guard kept the previous profile.
    """
    if not result.better_than_previous and not force:
        return None
    profile_path = Path(result.profile.path)
    target = profile_target(profile_path, out_profile)
    model = result.profile.model
    entry = ModelEntry(
        artifact=relative_artifact(result.exported.artifact_dir, target),
        sha256=result.exported.manifest.sha256,
        backend=model.backend if model is not None else "onnxruntime",
        device=model.device if model is not None else "cpu",
        input=result.fitted.decoder.encoder.config.modality,
        calibrated=result.calibrated_at,
        heldout_r2=float(np.round(result.heldout_r2, 6)),
        comment=(
            f"Calibrated by `rtbci calibrate` at {result.calibrated_at} on session {result.session_id}\n"
            f"({result.source}), starting from {profile_path}.\n"
            f"Report: {result.report_json}"
        ),
    )
    in_place = target.resolve() == profile_path.resolve()
    return write_profile_version(
        profile_path,
        result.profile_text,
        entry,
        out_path=None if in_place else target,
        force=force,
        archive_existing=out_profile is None and not in_place,
    )


def reject_calibration(result: CalibrationResult) -> Path:
    """Remove a refused calibration's artifact, keeping only its report under ``rejected/``.

    Parameters
    ----------
    result
        From :func:`run_calibration`, not accepted.

    Returns
    -------
    Path
        The folder ``rejected/<artifact name>/`` in the user data directory, holding
        ``calibration.json`` (its ``rejected`` entry gives the mean held-out R² of the
        calibrated and the previous decoder) and ``calibration.png``.
    """
    folder = data_home().rejected / result.exported.artifact_dir.name
    folder.mkdir(parents=True)
    report = json.loads(result.report_json.read_text(encoding="utf-8"))
    report["rejected"] = {
        "heldout_r2_mean": result.heldout_r2,
        "previous_heldout_r2_mean": result.previous_r2,
    }
    write_json(report, folder / result.report_json.name)
    shutil.copy2(result.report_png, folder / result.report_png.name)
    shutil.rmtree(result.exported.artifact_dir)
    return folder
