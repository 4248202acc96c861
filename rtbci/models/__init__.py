"""Torch models: tokenizer, sliding-window causal transformer encoder, pretraining and
distillation objectives, ridge behavior head, decoder, checkpoints."""

from rtbci.models.checkpoint import (
    Checkpoint,
    CheckpointError,
    build_decoder,
    build_encoder,
    load_checkpoint,
    save_checkpoint,
)
from rtbci.models.decoder import Decoder
from rtbci.models.distillation import DistillationObjective, alignment_loss
from rtbci.models.encoder import Encoder, EncoderConfig
from rtbci.models.heads import RidgeHead, ridge_solve
from rtbci.models.pretraining import (
    MaskedAutoencoder,
    MaskedLatentObjective,
    TokenDecoder,
    masked_reconstruction_loss,
    random_keep,
)

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "Decoder",
    "DistillationObjective",
    "Encoder",
    "EncoderConfig",
    "MaskedAutoencoder",
    "MaskedLatentObjective",
    "RidgeHead",
    "TokenDecoder",
    "alignment_loss",
    "build_decoder",
    "build_encoder",
    "load_checkpoint",
    "masked_reconstruction_loss",
    "random_keep",
    "ridge_solve",
    "save_checkpoint",
]
