"""The artifact manifest: what a backend needs to know about ``decoder.onnx`` besides the graph."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable
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
    "RingSpec",
    "TensorSpec",
    "check_expected_hash",
    "feature_disagreements",
    "read_manifest",
    "sha256_file",
    "verify_file",
    "write_manifest",
]

GRAPH_FILE = "decoder.onnx"
TORCH_FILE = "decoder.pt"
MANIFEST_FILE = "manifest.json"
FORMAT = "rtbci-artifact"
# A setting an artifact does not record (told apart from any value it could hold).
_ABSENT = object()
# 2: the ring-state step (``Manifest.ring``); version 1 artifacts (whole state in and out) still load.
FORMAT_VERSION = 2


class ArtifactError(UserError):
    """A decoder artifact is missing a file, has a bad manifest, or fails its hash check."""


@dataclass
class TensorSpec:
    """Name, static shape and dtype of one graph input or output."""

    name: str
    shape: list[int]
    dtype: str = "float32"


@dataclass
class RingSpec:
    """How a backend keeps the state of a ring-step graph (see :mod:`rtbci.runtime.ring`).

    Step ``t`` after a reset writes into ring slot ``t mod slots``. Each ring input is only
    read by the graph; its paired output holds this bin's slot, which the backend copies
    into the ring at ``[slot * n, (slot + 1) * n)`` along the ring's slot axis, where ``n``
    is the output's size along that axis. The backend also sets ``valid`` to 1.0 over the
    slot's ``n_tokens`` entries, feeds the slot index as ``position`` (when the graph has
    it) and the rotary phase of step ``t`` as ``rotary``: cosine and sine of
    ``t * rotary_inv_freq`` taken modulo 2π in float64, shape ``(2, 1, len(rotary_inv_freq))``.
    A reset zeroes every ring, ``valid`` and ``t``.
    """

    slots: int
    n_tokens: int
    states: dict[str, str]
    slot_axes: dict[str, int]
    rotary_inv_freq: list[float]
    valid_input: str = "valid"
    rotary_input: str = "rotary"
    position_input: str | None = None


@dataclass
class Manifest:
    """Contents of ``manifest.json``.

    ``inputs[0]`` is the bin's features and ``outputs[0]`` the kinematics. In a version 1
    artifact the remaining inputs and outputs are the whole state, paired in order
    (``state_pairs``); in a ring artifact (``ring`` set, ``state_pairs`` empty) they are
    described by :class:`RingSpec`.
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
    ring: RingSpec | None = None
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

    def spec(self, name: str) -> TensorSpec:
        """The input or output called ``name``."""
        for spec in self.inputs + self.outputs:
            if spec.name == name:
                return spec
        raise KeyError(name)

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
                "ring": RingSpec(**data["ring"]) if data.get("ring") else None,
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


def feature_disagreements(
    manifest: Manifest, profile_features: dict[str, Any], names: Iterable[str] | None = None
) -> list[str]:
    """The feature settings on which an artifact and a profile's ``[features]`` disagree.

    The artifact's settings are those it was trained with (``Manifest.features``). A setting
    the artifact does not record (it predates the setting) counts as a disagreement, so that
    a profile cannot claim a setting its decoder never had.

    Parameters
    ----------
    manifest
        The artifact's manifest.
    profile_features
        ``dataclasses.asdict`` of the profile's :class:`~rtbci.profile.FeatureConfig`.
    names
        Only these settings (default: every setting of the profile).

    Returns
    -------
    list of str
        One line per disagreement, naming the setting and both values; empty when they agree.
    """
    trained = json.loads(json.dumps(manifest.features))  # tuples as lists, as the manifest holds them
    wanted = json.loads(json.dumps(profile_features))
    return [
        f"{name}: the profile says {wanted[name]!r}, the artifact "
        + (
            f"was trained with {trained[name]!r}"
            if name in trained
            else "does not record it (older artifact)"
        )
        for name in sorted(wanted if names is None else names)
        if trained.get(name, _ABSENT) != wanted[name]
    ]
