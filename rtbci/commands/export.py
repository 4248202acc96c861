"""``rtbci export --checkpoint CKPT --out DIR``: write the streaming decoder artifact."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="export a decoder checkpoint as decoder.onnx + manifest.json (streaming step)"
    )
    parser.add_argument("--checkpoint", type=Path, required=True, help="decoder checkpoint (.pt)")
    parser.add_argument("--out", type=Path, required=True, help="artifact folder to write")
    parser.add_argument("--session", help="session id to bake in (default: the newest in the checkpoint)")
    parser.add_argument("--subject", help="subject id to bake in (models with subject tokens only)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rtbci.runtime.export import export_artifact  # torch is imported only by this subcommand

    manifest = export_artifact(args.checkpoint, args.out, session_id=args.session, subject_id=args.subject)
    summary = {
        "artifact": str(args.out),
        "sha256": manifest.sha256,
        "session_id": manifest.session_id,
        "inputs": {spec.name: spec.shape for spec in manifest.inputs},
        "kinematics": manifest.kinematics_names,
    }
    print(json.dumps(summary, indent=2))
    return 0
