"""``rtbci calibrate --profile P (--from FILE | --record SECONDS) [--labels hand|cue|refit] [--full] ...``.

Fits the profile's decoder to a new session (Stage A: new session row and ridge
head on a frozen backbone, seconds; ``--full`` adds Stage B, a fine-tune of every
weight), scores it on the held-out last 20% of the block against ridge on the raw
features and the previous decoder, and exports the artifact with a PNG report into
the user data directory ($RTBCI_HOME, else the platform's user data folder). The
new profile version goes to --out-profile if given; else a shipped template such as
profiles/demo.toml (read-only) gets its calibrated copy in the user data directory,
and any other profile is updated in place; an earlier version is archived as
<name>.v<N>.toml. A calibration that scores worse than the previous decoder is
refused: only its report is kept, under rejected/ in the user data directory.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# Literal names, not rtbci.signal.LABELS: importing rtbci.signal here would slow `--help`.
LABELS = ("hand", "cue", "refit")

# Its line in `rtbci --help`.
SUMMARY = "fit the decoder to a new session in seconds, score it on held-out data, update the profile"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calibrate",
        help=SUMMARY,
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    parser.add_argument("--profile", required=True, type=Path, help="rig profile (.toml) with a [model]")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--from",
        dest="source",
        type=Path,
        metavar="FILE",
        help="Session file (.h5), or a recording to import (.nwb, .xdf, ...)",
    )
    source.add_argument(
        "--record",
        type=float,
        metavar="SECONDS",
        help="record this long from the profile's LSL streams (spikes, LFP, behavior) first; with "
        "--labels cue or refit, spikes, LFP and the cursor task's stream and markers, with the task "
        "running in this process on the decoder's output (the decoder must be running, and no other "
        "`rtbci task` for this rig meanwhile)",
    )
    parser.add_argument(
        "--save",
        type=Path,
        metavar="FILE",
        help="where --record writes its Session file (default recordings/<subject>-cal-<time>.h5 in the "
        "user data directory)",
    )
    parser.add_argument(
        "--labels",
        choices=LABELS,
        default="hand",
        help="what the decoder is fit to (default hand: the block's behavior stream). Without a hand, "
        "from the block's cursor task stream: cue, the cued velocity (the task moves the cursor by "
        "itself, assist 1, and the participant follows it); refit, the decoded velocity turned toward "
        "the target, zero on it (closed loop at the profile's assist; Gilja et al. 2012)",
    )
    parser.add_argument("--full", action="store_true", help="also run Stage B: fine-tune all weights")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the report JSON here")
    parser.add_argument(
        "--force",
        action="store_true",
        help="write the new profile version even if it scores worse than the previous decoder on "
        "held-out data, or if the profile (or --out-profile) changed or exists",
    )
    parser.add_argument(
        "--out-profile",
        type=Path,
        metavar="FILE",
        help="write the new profile version here (default: --profile itself, or for a shipped template "
        "its copy in the user data directory)",
    )
    parser.add_argument(
        "--min-seconds",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds of aligned bins calibration needs (default 60; the last 20%% is held out); "
        "--record must be a little longer, and says by how much",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: torch and the calibrate package load only for this subcommand.
    from calibrate import (
        CalibrationConfig,
        accept_calibration,
        profile_target,
        reject_calibration,
        run_calibration,
    )

    result = run_calibration(
        args.profile,
        session_file=args.source,
        record_seconds=args.record,
        record_path=args.save,
        config=CalibrationConfig(full=args.full, min_seconds=args.min_seconds),
        labels=args.labels,
    )
    if result.recorded is not None:
        print(f"recorded {result.recorded.path} ({result.recorded.seconds:.1f} s):")
        for role, health in result.recorded.health.items():
            print(f"  {role:9s} {health.summary()}")
    print(result.summary())
    stage_b = "" if result.stage_b_seconds is None else f", Stage B {result.stage_b_seconds:.1f} s"
    print(f"fit: Stage A {result.stage_a_seconds:.1f} s{stage_b}")
    if result.exported.tensorrt_built or args.verbose:
        print(f"TensorRT engine: {result.exported.tensorrt}")
    version = accept_calibration(result, force=args.force, out_profile=args.out_profile)
    report = result.to_json()
    report["profile_written"] = str(version.path) if version is not None else None
    report["profile_archived"] = str(version.archived) if version is not None and version.archived else None
    if version is None:
        rejected = reject_calibration(result)
        report["artifact"] = None
        report["rejected_report"] = str(rejected)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if version is None:
        target = profile_target(args.profile, args.out_profile)
        print(
            f"refused: held-out R² {result.heldout_r2:.3f} < {result.previous_r2:.3f} of the previous "
            f"decoder; nothing written to {target} (--force writes it anyway)"
        )
        print(f"report kept in {rejected}")
        return 1
    print(f"artifact: {result.exported.artifact_dir} (sha256 {result.exported.manifest.sha256[:12]})")
    print(f"report: {result.report_png}")
    archived = f" (previous version saved as {version.archived})" if version.archived else ""
    print(f"profile: wrote {version.path}{archived}")
    return 0
