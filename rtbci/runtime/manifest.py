"""The artifact manifest: what a backend needs to know about ``decoder.onnx`` besides the graph."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rtbci.errors import UserError

__all__ = [
    "GRAPH_FILE",
    "MANIFEST_FILE",
    "TORCH_FILE",
    "ArtifactError",
    "Manifest",
    "TensorSpec",
    "check_expected_hash",
    "read_manifest",
    "sha256_file",
    "verify_file",
    "write_manifest",
]

GRAPH_FILE = "decoder.onnx"
TORCH_FILE = "decoder.pt"
MANIFEST_FILE = "manifest.json"
FORMAT = "rtbci-artifact"
FORMAT_VERSION = 1


class ArtifactError(UserError):
    """A decoder artifact is missing a file, has a bad manifest, or fails its hash check."""


@dataclass
class TensorSpec:
    """Name, static shape and dtype of one graph input or output."""

    name: str
    shape: list[int]
    dtype: str = "float32"


@dataclass
class Manifest:
    """Contents of ``manifest.json``.

    ``inputs[0]`` is the bin's features and ``outputs[0]`` the kinematics; the remaining
    inputs and outputs are the state, paired in order (``state_pairs``).
    """

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    state_pairs: dict[str, str]
    modality: str
    n_channels: int
    n_features: int
    tokens_per_bin: int
    params: int
    bin_ms: float
    window_bins: int
    kinematics_names: list[str]
    kinematics_units: str
    sha256: str
    torch_sha256: str
    session_id: str
    features: dict[str, Any] = field(default_factory=dict)
    normalization: dict[str, Any] | None = None
    subject_id: str | None = None
    calibration_date: str = ""
    heldout_r2: float | None = None
    versions: dict[str, str] = field(default_factory=dict)
    graph_file: str = GRAPH_FILE
    torch_file: str = TORCH_FILE
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    @property
    def feature_input(self) -> TensorSpec:
        return self.inputs[0]

    @property
    def kinematics_output(self) -> TensorSpec:
        return self.outputs[0]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown manifest keys {unknown}")
        return cls(
            **{
                **data,
                "inputs": [TensorSpec(**spec) for spec in data["inputs"]],
                "outputs": [TensorSpec(**spec) for spec in data["outputs"]],
            }
        )


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(artifact_dir: str | Path, manifest: Manifest) -> Path:
    """Write ``manifest.json`` into ``artifact_dir``."""
    path = Path(artifact_dir) / MANIFEST_FILE
    path.write_text(json.dumps(manifest.to_dict(), indent=2) + "\n", encoding="utf-8")
    return path


def read_manifest(artifact_dir: str | Path) -> Manifest:
    """Read and validate ``artifact_dir/manifest.json``.

    Raises
    ------
    ArtifactError
        If the folder or manifest is missing, unreadable or not an rtbci artifact manifest.
    """
    path = Path(artifact_dir) / MANIFEST_FILE
    if not path.is_file():
        raise ArtifactError(f"no {MANIFEST_FILE} in artifact folder {Path(artifact_dir)}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ArtifactError(f"{path} is not readable JSON: {error}") from error
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ArtifactError(f"{path} is not an rtbci artifact manifest (expected format {FORMAT!r})")
    if data.get("format_version", 0) > FORMAT_VERSION:
        raise ArtifactError(f"{path} has format version {data['format_version']}, newer than this rtbci")
    try:
        return Manifest.from_dict(data)
    except (TypeError, ValueError) as error:
        raise ArtifactError(f"{path}: {error}") from error


def verify_file(artifact_dir: str | Path, file_name: str, manifest_sha256: str) -> Path:
    """Check one artifact file against the hash its manifest records.

    Returns
    -------
    Path
        The verified file.

    Raises
    ------
    ArtifactError
        If the file is missing or its hash differs.
    """
    path = Path(artifact_dir) / file_name
    if not path.is_file():
        raise ArtifactError(f"artifact file {path} is missing")
    actual = sha256_file(path)
    if actual != manifest_sha256:
        raise ArtifactError(
            f"{path} has SHA-256 {actual} but its manifest says {manifest_sha256}: the artifact was altered"
        )
    return path


def check_expected_hash(manifest: Manifest, expected_sha256: str | None, source: str = "the profile") -> None:
    """Refuse a graph whose hash is not the one ``source`` (e.g. ``[model] sha256``) expects."""
    if expected_sha256 is not None and expected_sha256 != manifest.sha256:
        raise ArtifactError(
            f"decoder graph SHA-256 is {manifest.sha256} but {source} expects {expected_sha256}: "
            "wrong artifact"
        )
