"""The interface every backend implements, and the checks they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from rtbci.runtime.manifest import Manifest, RingSpec, check_expected_hash, read_manifest, verify_file

__all__ = ["WARMUP_STEPS", "Backend", "RingState"]

# Enough steps to fill the window once and let allocators and caches settle before serving.
WARMUP_STEPS = 100


class Backend(ABC):
    """One decoder artifact, stepped one bin at a time.

    Construction reads the manifest, refuses a graph whose SHA-256 differs from the
    manifest or from ``expected_sha256`` (the profile's), loads the model and warms up.

    Parameters
    ----------
    artifact_dir
        Folder with ``decoder.onnx``, ``decoder.pt`` and ``manifest.json``.
    device
        ``cpu`` or ``cuda`` / ``cuda:N``.
    expected_sha256
        The graph hash the profile expects (``[model] sha256``), or None.
    """

    name = "base"

    def __init__(self, artifact_dir: str | Path, device: str = "cpu", expected_sha256: str | None = None):
        self.artifact_dir = Path(artifact_dir)
        self.device = device
        self.manifest: Manifest = read_manifest(self.artifact_dir)
        check_expected_hash(self.manifest, expected_sha256)
        self.graph_path = verify_file(self.artifact_dir, self.manifest.graph_file, self.manifest.sha256)
        self.feature_shape = tuple(self.manifest.feature_input.shape)

    def check_features(self, features: np.ndarray) -> None:
        """Raise ValueError unless ``features`` has the artifact's input shape."""
        if features.shape != self.feature_shape:
            raise ValueError(
                f"backend {self.name}: a bin's features must have shape {self.feature_shape} "
                f"({self.manifest.modality}), got {features.shape}"
            )

    def warm_up(self, steps: int = WARMUP_STEPS) -> None:
        """Run ``steps`` steps on zeros, then :meth:`reset`."""
        zeros = np.zeros(self.feature_shape, dtype=np.float32)
        for _ in range(steps):
            self.step(zeros)
        self.reset()

    @abstractmethod
    def reset(self) -> None:
        """Forget the stream: the next step sees an empty window."""

    @abstractmethod
    def step(self, features: np.ndarray) -> np.ndarray:
        """Decode one bin: ``(C,)`` spike counts or ``(C, F)`` raw LFP features -> ``(K,)`` float32."""

    def info(self) -> dict[str, Any]:
        """What runs: backend, device, graph hash, shapes and kinematics."""
        return {
            "backend": self.name,
            "device": self.device,
            "artifact": str(self.artifact_dir),
            "sha256": self.manifest.sha256,
            "modality": self.manifest.modality,
            "input_shape": list(self.feature_shape),
            "kinematics": list(self.manifest.kinematics_names),
            "window_bins": self.manifest.window_bins,
            "session_id": self.manifest.session_id,
        }


class RingState:
    """The host side of a ring artifact's state (see :class:`~rtbci.runtime.manifest.RingSpec`).

    Holds one zeroed array per state input (rings, ``valid``, ``position``, ``rotary``) in
    :attr:`arrays`, one array per slot output in :attr:`slots`, and the step count. A
    backend feeds :attr:`arrays` (or copies them to the device), has the graph write its
    slot outputs into :attr:`slots` (or on the device), and calls :meth:`advance`.

    Rings of the same shape (every layer's keys, every layer's values) are views of one
    block, and so are their slot outputs, so that writing a step's slots is one copy per
    block rather than one per layer.

    With ``tokens_first`` the slots of the key and value rings (``(H, S * N, head_dim)``,
    slots along axis 1) are kept tokens first, ``(N, H, head_dim)``, as ONNX Runtime's fused
    attention returns them (:mod:`~rtbci.runtime.backends.ort_attention`); :meth:`advance`
    writes them into the rings heads first. With ``rotation_matrix`` the rotary input holds
    the step's phase as that graph reads it: the rotation of queries and keys (rotate-half,
    by the same float64 cosines and sines) and of values (identity), ``(3, hd, hd)``.
    """

    def __init__(self, manifest: Manifest, tokens_first: bool = False, rotation_matrix: bool = False):
        if manifest.ring is None:
            raise ValueError("not a ring artifact")
        self.spec: RingSpec = manifest.ring
        specs = {s.name: s for s in manifest.inputs[1:]}
        self.arrays = {
            name: np.zeros(s.shape, dtype=s.dtype)
            for name, s in specs.items()
            if name not in self.spec.states
        }
        self.slots: dict[str, np.ndarray] = {}
        groups: dict[tuple, list[str]] = {}
        for name, output in self.spec.states.items():
            key = (
                tuple(specs[name].shape),
                tuple(manifest.spec(output).shape),
                self.spec.slot_axes[name],
                specs[name].dtype,
            )
            groups.setdefault(key, []).append(name)
        self._blocks = []  # (ring block, slot block as written, slot axis + 1, slot size)
        for (shape, slot_shape, axis, dtype), names in groups.items():
            block = np.zeros((len(names), *shape), dtype=dtype)
            turned = tokens_first and len(shape) == 3 and axis == 1
            held = (slot_shape[1], slot_shape[0], slot_shape[2]) if turned else slot_shape
            slot_block = np.zeros((len(names), *held), dtype=dtype)
            for i, name in enumerate(names):
                self.arrays[name], self.slots[name] = block[i], slot_block[i]
            written = slot_block.swapaxes(1, 2) if turned else slot_block
            self._blocks.append((block, written, axis + 1, slot_shape[axis]))
        self._inv_freq = np.asarray(self.spec.rotary_inv_freq, dtype=np.float64)
        self._rotation_matrix = rotation_matrix
        if rotation_matrix:
            hd = 2 * len(self._inv_freq)
            self.arrays[self.spec.rotary_input] = np.zeros((3, hd, hd), dtype=np.float32)
        self.reset()

    @property
    def slot(self) -> int:
        """The ring slot this step writes."""
        return self.step_count % self.spec.slots

    def reset(self) -> None:
        """Empty rings; the next step is step 0."""
        for array in self.arrays.values():
            array.fill(0)
        self.step_count = 0
        self._prepare()

    def advance(self, write_rings: bool = True) -> None:
        """Write this step's :attr:`slots` into the rings, mark the slot valid and move to the next step.

        ``write_rings`` False: the rings live on a device and are written there; only ``valid``,
        ``position``, ``rotary`` and the step count move here.
        """
        slot = self.slot
        if write_rings:
            for block, slot_block, axis, n in self._blocks:
                block[(slice(None),) * axis + (slice(slot * n, (slot + 1) * n),)] = slot_block
        n = self.spec.n_tokens
        self.arrays[self.spec.valid_input][slot * n : (slot + 1) * n] = 1.0
        self.step_count += 1
        self._prepare()

    def _prepare(self) -> None:
        if self.spec.position_input is not None:
            self.arrays[self.spec.position_input][...] = self.slot
        angles = np.remainder(self.step_count * self._inv_freq, 2 * np.pi)
        rotary = self.arrays[self.spec.rotary_input]
        if not self._rotation_matrix:
            rotary[0, 0] = np.cos(angles)
            rotary[1, 0] = np.sin(angles)
            return
        # Row vector x times it: out[j] = x[j] cos - x[j + h] sin, out[j + h] = x[j + h] cos + x[j] sin.
        half = len(angles)
        low, high = np.arange(half), np.arange(half) + half
        cos, sin = np.cos(angles), np.sin(angles)
        rotary[:2, low, low] = rotary[:2, high, high] = cos
        rotary[:2, low, high] = sin
        rotary[:2, high, low] = -sin
        rotary[2] = np.eye(2 * half)
