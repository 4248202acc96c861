"""``rtbci app --profile P``: the decoder dashboard on a rig's live LSL streams.

With ``--profile`` its first line and its last name the profile and the decoder artifact
(:func:`rtbci.provenance.describe_decoder`); the dashboard's model card shows the same.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rtbci.errors import UserError

# Its line in `rtbci --help`.
SUMMARY = "open the decoder dashboard (PySide6) for a rig profile"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "app", description="Open the decoder dashboard (PySide6) on a rig profile's live LSL streams."
    )
    parser.add_argument(
        "--profile", type=Path, help="rig profile to open with (choose in the app if not given)"
    )
    parser.add_argument(
        "--backend", choices=["onnxruntime", "torch", "tensorrt"], help="override the profile's backend"
    )
    parser.add_argument("--connect", action="store_true", help="connect and start decoding at once")
    parser.add_argument(
        "--record-dir",
        type=Path,
        help="where recordings go (default: recordings/ in the user data directory, $RTBCI_HOME)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rtbci.display import has_display
    from rtbci.home import data_home
    from rtbci.profile import load_profile
    from rtbci.provenance import describe_decoder

    decoder = describe_decoder(load_profile(args.profile)) if args.profile else None
    if decoder:
        print(f"rtbci app: {decoder}", flush=True)
    if not has_display():
        raise UserError(
            "no display (DISPLAY and WAYLAND_DISPLAY are unset): run the decoder headless with "
            "`rtbci run --profile P`, or set QT_QPA_PLATFORM=offscreen"
        )
    from apps.decoder.launch import run_app  # Qt is imported here, never by rtbci itself

    code = run_app(args.profile, args.backend, args.connect, args.record_dir or data_home().recordings)
    if decoder:
        print(f"rtbci app: closed; opened with {decoder}")
    return code
