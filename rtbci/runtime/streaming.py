"""The streaming step as a module of its own: one bin's raw features + state in -> kinematics + next state.

The arithmetic is the model's own (:meth:`rtbci.models.Encoder.step`, a shift-window key/value
cache over the ``W - 1`` bins before). This module binds it to one session, with the state as
flat tensors, so that the torch backend can run it and every exported artifact (the ring graph
of :class:`~rtbci.runtime.ring.RingStep`) can be checked against it.
"""

from __future__ import annotations

import torch
from torch import nn

from rtbci.models.decoder import Decoder
from rtbci.models.encoder import StepState

__all__ = ["FullWindowStep", "StreamingStep"]


class StreamingStep(nn.Module):
    """One-bin step of a :class:`~rtbci.models.Decoder` for one session (batch 1, static shapes).

    Parameters
    ----------
    decoder
        The decoder (in eval mode; dropout must be off).
    session_index
        Row of the session table this artifact serves.
    subject_index
        Row of the subject table, when the encoder has subject tokens.

    Notes
    -----
    The state is :class:`~rtbci.models.encoder.StepState` as a tuple: ``k_cache, v_cache,
    valid`` and, with the LFP convolution only, ``history``.
    """

    def __init__(self, decoder: Decoder, session_index: int, subject_index: int | None = None):
        super().__init__()
        if decoder.training:
            raise ValueError("put the decoder in eval() mode before building its streaming step")
        self.decoder = decoder
        config = decoder.encoder.config
        self.input_shape = (
            (config.n_channels,) if config.modality == "spikes" else (config.n_channels, config.n_features)
        )
        self.register_buffer("session", torch.tensor([session_index]), persistent=False)
        subject = torch.tensor([subject_index]) if subject_index is not None else None
        self.register_buffer("subject", subject, persistent=False)
        self.eval()  # a serving module; dropout stays off

    def initial_state(self) -> tuple[torch.Tensor, ...]:
        """Fresh ``(k_cache, v_cache, valid[, history])``: an empty window."""
        return tuple(part for part in self.decoder.encoder.initial_step_state() if part is not None)

    def forward(self, features: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Decode one bin.

        Parameters
        ----------
        features
            ``(C,)`` spike counts or ``(C, F)`` raw LFP features of the newest bin.
        state
            ``k_cache, v_cache, valid[, history]`` as the previous step returned them (or
            :meth:`initial_state`).

        Returns
        -------
        tuple
            ``kinematics (K,)`` and the next ``k_cache, v_cache, valid[, history]``.
        """
        k_cache, v_cache, valid, *history = state
        current = StepState(k_cache, v_cache, valid, history[0] if history else None)
        kinematics, next_state = self.decoder.step(features, current, self.session, self.subject)
        return (kinematics, *(part for part in next_state if part is not None))


class FullWindowStep(nn.Module):
    """Baseline: re-encode the whole window of ``W`` bins every bin and read out the newest.

    This is what published real-time transformer decoders do; the benchmark compares
    it with :class:`StreamingStep`.
    """

    def __init__(self, decoder: Decoder, session_index: int, subject_index: int | None = None):
        super().__init__()
        self.decoder = decoder
        self.register_buffer("session", torch.tensor([session_index]), persistent=False)
        subject = torch.tensor([subject_index]) if subject_index is not None else None
        self.register_buffer("subject", subject, persistent=False)
        self.eval()

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        """``(W, C, F)`` raw features, oldest first -> ``(K,)`` kinematics of the newest bin."""
        return self.decoder(window[None], self.session, self.subject)[0, -1]
