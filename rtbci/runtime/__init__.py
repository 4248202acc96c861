"""Serving a decoder artifact: manifest, backends and :func:`load_backend`.

This package's top level never imports torch (the engine uses it): the torch
backend, :mod:`rtbci.runtime.export` and :mod:`rtbci.runtime.streaming` are
imported only when asked for.
"""

from __future__ import annotations

from pathlib import Path

from rtbci.errors import UserError
from rtbci.runtime.backends.base import Backend
from rtbci.runtime.manifest import ArtifactError, Manifest, read_manifest

__all__ = ["BACKENDS", "ArtifactError", "Backend", "Manifest", "load_backend", "read_manifest"]

BACKENDS = ("onnxruntime", "torch", "tensorrt")


def load_backend(
    name: str, artifact_dir: str | Path, device: str = "cpu", expected_sha256: str | None = None
) -> Backend:
    """Load a decoder artifact into a backend, check its hashes and warm it up.

    Parameters
    ----------
    name
        ``onnxruntime`` (default choice), ``torch`` (reference) or ``tensorrt`` (GPU).
    artifact_dir
        Folder written by ``rtbci export``.
    device
        ``cpu`` or ``cuda[:N]``.
    expected_sha256
        Graph hash the profile expects; a different artifact is refused.

    Raises
    ------
    UserError
        Unknown backend, missing optional dependency, or an artifact that fails its checks.
    """
    if name == "onnxruntime":
        from rtbci.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(artifact_dir, device, expected_sha256)
    if name == "torch":
        from rtbci.runtime.backends.torch_backend import TorchBackend

        return TorchBackend(artifact_dir, device, expected_sha256)
    if name == "tensorrt":
        from rtbci.runtime.backends.tensorrt_backend import TensorRTBackend

        return TensorRTBackend(artifact_dir, "cuda" if device == "cpu" else device, expected_sha256)
    raise UserError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")
