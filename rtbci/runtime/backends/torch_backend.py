"""Torch backend: the reference. Runs the same streaming step in eager torch, on CPU or CUDA."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from rtbci.models.checkpoint import build_decoder, load_checkpoint
from rtbci.runtime.backends.base import Backend
from rtbci.runtime.manifest import verify_file
from rtbci.runtime.streaming import StreamingStep

__all__ = ["TorchBackend"]


class TorchBackend(Backend):
    """Runs :class:`~rtbci.runtime.streaming.StreamingStep` from the artifact's ``decoder.pt``.

    Both the graph and the torch weights are checked against the manifest's hashes.
    On CPU it sets torch to one thread for the process, like the ONNX Runtime backend:
    on a busy machine torch's multi-threaded kernels at batch 1 stall for tens of
    milliseconds waiting on each other, and the decoder owns its process.
    """

    name = "torch"

    def __init__(self, artifact_dir: str | Path, device: str = "cpu", expected_sha256: str | None = None):
        super().__init__(artifact_dir, device, expected_sha256)
        if device == "cpu":
            torch.set_num_threads(1)
        weights = verify_file(self.artifact_dir, self.manifest.torch_file, self.manifest.torch_sha256)
        checkpoint = load_checkpoint(weights)
        subject = (
            checkpoint.subject_ids.index(self.manifest.subject_id)
            if self.manifest.subject_id is not None
            else None
        )
        decoder = build_decoder(checkpoint)
        self.module = StreamingStep(decoder, checkpoint.session_index(self.manifest.session_id), subject)
        self.module.to(torch.device(device))
        self.reset()
        self.warm_up()

    def reset(self) -> None:
        self._state = self.module.initial_state()

    @torch.inference_mode()
    def step(self, features: np.ndarray) -> np.ndarray:
        self.check_features(features)
        x = torch.as_tensor(features, dtype=torch.float32).to(self.module.session.device)
        kinematics, *state = self.module(x, *self._state)
        self._state = tuple(state)
        return kinematics.cpu().numpy()

    def info(self) -> dict[str, Any]:
        return {**super().info(), "torch": torch.__version__, "torch_threads": torch.get_num_threads()}
