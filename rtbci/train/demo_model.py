"""Train the bundled demo decoder: ``python -m rtbci.train.demo_model [--out profiles/models/demo]``.

The recipe is fixed so that the committed artifact can be rebuilt: simulate
sessions 0..15 of the demo subject (sim-S0, seed 0), run ``rtbci train
pipeline`` on them with the small encoder (teacher -> student -> ridge head,
then ``--finetune-steps`` of supervised fine-tuning), bake in the context of session 0
(the session ``rtbci simulate --lsl`` and ``make demo`` stream), and copy the
artifact into ``--out`` with a README that names the command and the hash.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from rtbci.cli import main as rtbci_main
from rtbci.io.store import write_session
from rtbci.profile import load_profile
from rtbci.sim import SimConfig, session_id, simulate_session

__all__ = ["DemoRecipe", "build_demo_model"]


@dataclass(frozen=True)
class DemoRecipe:
    """How the demo decoder is made."""

    profile: Path = Path("profiles/demo.toml")
    # Sixteen sessions, not four: Stage A calibration freezes this backbone, and what it can
    # do for a new session grows with the sessions it was trained on (measured with the same
    # recipe: held-out R² 0.204 with 4 sessions, 0.394 with 16; see rtbci bench calibration).
    sessions: int = 16
    minutes: float = 5.0
    seed: int = 0
    size: str = "small"
    # The spike teacher needs more and faster steps than the student to learn more than firing
    # rates (measured in the accuracy benchmark: held-out R² of its latents 0.22 after 500 steps
    # at 1e-3, 0.47 after 2000 at 6e-3, 0.53 after 4000 at 3e-3).
    teacher_steps: int = 4000
    teacher_lr: float = 6e-3
    steps: int = 2000
    lr: float = 3e-3
    # Supervised fine-tuning of student and head on the training sessions makes the frozen
    # latents carry velocity for Stage A (held-out R² 0.172 -> 0.204 with 4 sessions).
    finetune_steps: int = 2000
    batch_size: int = 16

    def train_argv(self, data: Path, out: Path, export_session: str) -> list[str]:
        """The ``rtbci`` arguments of the training run."""
        return [
            "train",
            "pipeline",
            "--profile",
            str(self.profile),
            "--data",
            str(data),
            "--out",
            str(out),
            "--size",
            self.size,
            "--steps",
            str(self.steps),
            "--lr",
            str(self.lr),
            "--teacher-steps",
            str(self.teacher_steps),
            "--teacher-lr",
            str(self.teacher_lr),
            "--finetune-steps",
            str(self.finetune_steps),
            "--batch-size",
            str(self.batch_size),
            "--seed",
            str(self.seed),
            "--device",
            "cpu",
            "--threads",
            "1",
            "--export-session",
            export_session,
            # The committed artifacts were trained with one context row per session in the
            # teacher and the student, before one per subject became the default.
            "--no-context-per-subject",
        ]


def _readme(recipe: DemoRecipe, argv: list[str], summary: dict) -> str:
    metrics = summary["metrics"]
    before = metrics.get("heldout_before_finetune_r2")
    ridge_head = f" ({before:.3f} with the ridge head before fine-tuning)" if before is not None else ""
    finetuned = ", then supervised\nfine-tuning of student and head" if recipe.finetune_steps else ""
    command = "python -m rtbci.train.demo_model --out profiles/models/demo"
    command += f" --finetune-steps {recipe.finetune_steps}" if recipe.finetune_steps else ""
    return f"""# Bundled demo decoder

Distilled LFP decoder (spike teacher -> LFP student -> ridge head{finetuned}) for the
simulated demo rig (`profiles/demo.toml`, subject sim-S0), exported as the streaming ONNX step.

- `decoder.onnx` sha256: `{summary["artifact_sha256"]}` (also in `profiles/demo.toml` [model])
- context baked in: session `{summary["artifact_session"]}`, the one `make demo` streams
- trained on: sessions 0..{recipe.sessions - 1} of sim-S0, {recipe.minutes:g} min each, seed {recipe.seed};
  teacher {recipe.teacher_steps} steps at lr {recipe.teacher_lr:g}, student {recipe.steps} steps
  at lr {recipe.lr:g}, {recipe.finetune_steps} fine-tuning steps
- held-out R² (velocity, {metrics["heldout_blocks"]}): {metrics["heldout_r2"]:.3f}{ridge_head}

Made by

    {command}

which simulates the sessions and runs

    rtbci {" ".join(argv)}
"""


def build_demo_model(out: Path, recipe: DemoRecipe) -> dict:
    """Simulate, train, export, and copy the artifact into ``out``.

    Returns
    -------
    dict
        The pipeline summary (paths, metrics, artifact hash).
    """
    profile = load_profile(recipe.profile)
    subject = int(profile.rig.subject.removeprefix("sim-S"))
    with tempfile.TemporaryDirectory(prefix="rtbci-demo-model-") as folder:
        data, work = Path(folder) / "sessions", Path(folder) / "train"
        for index in tqdm(range(recipe.sessions), desc="simulate", unit="session"):
            recording = simulate_session(SimConfig(), subject, index, recipe.minutes, recipe.seed)
            write_session(data / f"{session_id(subject, index)}.h5", recording)
        argv = recipe.train_argv(data, work, session_id(subject, 0))
        if rtbci_main(argv) != 0:
            raise RuntimeError(f"training failed: rtbci {' '.join(argv)}")
        summary = json.loads((work / "summary.json").read_text(encoding="utf-8"))
        shutil.copytree(work / "artifact", out, dirs_exist_ok=True)
    readme_argv = recipe.train_argv(Path("SESSIONS_DIR"), Path("OUT"), session_id(subject, 0))
    (out / "README.md").write_text(_readme(recipe, readme_argv, summary), encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("profiles/models/demo"), help="artifact folder")
    parser.add_argument("--steps", type=int, default=DemoRecipe.steps, help="optimiser steps per stage")
    parser.add_argument(
        "--finetune-steps", type=int, default=DemoRecipe.finetune_steps, help="supervised fine-tuning steps"
    )
    args = parser.parse_args(argv)
    summary = build_demo_model(args.out, DemoRecipe(steps=args.steps, finetune_steps=args.finetune_steps))
    print(json.dumps({"artifact_sha256": summary["artifact_sha256"], **summary["metrics"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
