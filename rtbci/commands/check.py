"""``rtbci check``: verify that the installation can run (liblsl, ONNX Runtime, torch), and that Qt's X11
platform plugin finds its system libraries (else it names the packages to install)."""

from __future__ import annotations

import argparse
import platform

from rtbci.lsl import require_pylsl


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check",
        help="check that liblsl, ONNX Runtime and torch load, and that the dashboard's Qt plugin finds "
        "its system libraries",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    pylsl = require_pylsl()
    import onnxruntime
    import torch

    from rtbci.qtcheck import check_xcb_plugin

    print(f"python {platform.python_version()} on {platform.machine()}")
    print(f"liblsl {pylsl.library_version()} (protocol {pylsl.protocol_version()})")
    print(f"onnxruntime {onnxruntime.__version__}: {', '.join(onnxruntime.get_available_providers())}")
    print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")
    for line in check_xcb_plugin().lines():
        print(line)
    return 0
