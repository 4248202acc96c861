"""What the engine benchmarks share: a simulated session file, a decoder artifact (the bundled demo
decoder, or the default-size architecture), and the demo profile under stream names no one else on the
machine uses."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from rtbci.io.store import write_session
from rtbci.profile import load_profile
from rtbci.runtime import read_manifest
from rtbci.runtime.export import export_artifact
from rtbci.sim import SimConfig, simulate_session

DEMO_PROFILE = Path(__file__).resolve().parents[1] / "profiles" / "demo.toml"


def simulated_file(folder: Path, minutes: float, seed: int = 7) -> Path:
    """Simulate the demo subject for ``minutes`` and write it as a Session file."""
    path = folder / f"sim-{minutes:g}min.h5"
    write_session(path, simulate_session(SimConfig(), 0, 0, minutes, seed))
    return path


def default_artifact(folder: Path, seed: int = 0) -> Path:
    """The default-size LFP decoder (random weights: latency does not depend on them), exported."""
    from benchmarks.runtime import default_checkpoint

    checkpoint = default_checkpoint(folder / "model.pt", seed)
    artifact = folder / "artifact"
    export_artifact(checkpoint, artifact)
    return artifact


def benchmark_profile(folder: Path, artifact: Path | None = None) -> Path:
    """The demo profile under unique stream names, running ``artifact`` (default: the demo decoder)."""
    tag = f"bench-{uuid.uuid4().hex[:8]}"
    text = (
        DEMO_PROFILE.read_text()
        .replace('"rtbci-sim-', f'"{tag}-')
        .replace('"rtbci-decoded', f'"{tag}-decoded')
    )
    artifact = artifact or load_profile(DEMO_PROFILE).artifact_dir()
    # The copy lives elsewhere, so its [model] names the artifact by absolute path.
    text = re.sub(r"\n\[model\]\n(?:[^\[\n].*\n?|\n)*", "\n", text)
    text += (
        f'\n[model]\nartifact = "{artifact}"\nsha256 = "{read_manifest(artifact).sha256}"\n'
        'backend = "onnxruntime"\ninput = "lfp"\n'
    )
    path = folder / "profile.toml"
    path.write_text(text)
    return path
