"""Train the bundled demo decoder: ``python -m rtbci.train.demo_model [--out profiles/models/demo]``.

The data and the recipe are fixed so that the committed artifact can be rebuilt:
simulate sessions 0..15 of the demo subject (sim-S0, seed 0), run ``rtbci train
pipeline --recipe demo`` on them (:data:`rtbci.train.recipes.RECIPES`), bake in
the context of session 0 (the session ``rtbci simulate --lsl`` and ``make demo``
stream), and copy the artifact into ``--out`` with a README that names the
command and the hash.
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
from rtbci.train.recipes import RECIPES

__all__ = ["DEMO_RECIPE", "DemoData", "build_demo_model"]

DEMO_RECIPE = "demo"


@dataclass(frozen=True)
class DemoData:
    """The sessions the demo decoder is trained on."""

    profile: Path = Path("profiles/demo.toml")
    # Sixteen sessions, not four: Stage A calibration freezes this backbone, and what it can
    # do for a new session grows with the sessions it was trained on (measured with the same
    # recipe: held-out R² 0.204 with 4 sessions, 0.394 with 16; see rtbci bench calibration).
    sessions: int = 16
    minutes: float = 5.0
    seed: int = 0

    def train_argv(self, data: Path, out: Path, export_session: str) -> list[str]:
        """The ``rtbci`` arguments of the training run."""
        return [
            "train",
            "pipeline",
            "--recipe",
            DEMO_RECIPE,
            "--profile",
            str(self.profile),
            "--data",
            str(data),
            "--out",
            str(out),
            "--device",
            "cpu",
            "--threads",
            "1",
            "--export-session",
            export_session,
        ]


def _readme(data: DemoData, argv: list[str], summary: dict) -> str:
    metrics = summary["metrics"]
    recipe = RECIPES[DEMO_RECIPE]
    before = metrics.get("heldout_before_finetune_r2")
    ridge_head = f" ({before:.3f} with the ridge head before fine-tuning)" if before is not None else ""
    teacher, student, finetune = recipe.teacher.loop, recipe.student.loop, recipe.finetune.loop
    return f"""# Bundled demo decoder

Distilled LFP decoder (spike teacher -> LFP student -> ridge head, then supervised
fine-tuning of student and head) for the simulated demo rig (`profiles/demo.toml`,
subject sim-S0), exported as the streaming ONNX step.

- `decoder.onnx` sha256: `{summary["artifact_sha256"]}` (also in `profiles/demo.toml` [model])
- context baked in: session `{summary["artifact_session"]}`, the one `make demo` streams
- trained on: sessions 0..{data.sessions - 1} of sim-S0, {data.minutes:g} min each, seed {data.seed};
  recipe `{DEMO_RECIPE}`: teacher {teacher.steps} steps at lr {teacher.lr:g}, student {student.steps}
  steps at lr {student.lr:g}, {finetune.steps} fine-tuning steps, one context row per subject
- held-out R² (velocity, {metrics["heldout_blocks"]}): {metrics["heldout_r2"]:.3f}{ridge_head}

Made by

    python -m rtbci.train.demo_model --out profiles/models/demo

which simulates the sessions and runs

    rtbci {" ".join(argv)}
"""


def build_demo_model(out: Path, data: DemoData) -> dict:
    """Simulate, train by the ``demo`` recipe, export, and copy the artifact into ``out``.

    Returns
    -------
    dict
        The pipeline summary (paths, metrics, artifact hash).
    """
    profile = load_profile(data.profile)
    subject = int(profile.rig.subject.removeprefix("sim-S"))
    with tempfile.TemporaryDirectory(prefix="rtbci-demo-model-") as folder:
        sessions, work = Path(folder) / "sessions", Path(folder) / "train"
        for index in tqdm(range(data.sessions), desc="simulate", unit="session"):
            recording = simulate_session(SimConfig(), subject, index, data.minutes, data.seed)
            write_session(sessions / f"{session_id(subject, index)}.h5", recording)
        argv = data.train_argv(sessions, work, session_id(subject, 0))
        if rtbci_main(argv) != 0:
            raise RuntimeError(f"training failed: rtbci {' '.join(argv)}")
        summary = json.loads((work / "summary.json").read_text(encoding="utf-8"))
        shutil.copytree(work / "artifact", out, dirs_exist_ok=True)
    readme_argv = data.train_argv(Path("SESSIONS_DIR"), Path("OUT"), session_id(subject, 0))
    (out / "README.md").write_text(_readme(data, readme_argv, summary), encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("profiles/models/demo"), help="artifact folder")
    args = parser.parse_args(argv)
    summary = build_demo_model(args.out, DemoData())
    print(json.dumps({"artifact_sha256": summary["artifact_sha256"], **summary["metrics"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
