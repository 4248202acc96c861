"""Torch models: tokenizer, sliding-window causal transformer encoder, pretraining and
distillation objectives, ridge behavior head, decoder, checkpoints."""

from rtbci.lazy import lazy_exports

# Loaded on first use, so that the torch-free `rtbci.models.config` imports without torch.
__getattr__, __all__ = lazy_exports(
    __name__,
    {
        "Checkpoint": "rtbci.models.checkpoint",
        "CheckpointError": "rtbci.models.checkpoint",
        "Decoder": "rtbci.models.decoder",
        "DistillationObjective": "rtbci.models.distillation",
        "Encoder": "rtbci.models.encoder",
        "EncoderConfig": "rtbci.models.encoder",
        "MaskedAutoencoder": "rtbci.models.pretraining",
        "MaskedLatentObjective": "rtbci.models.pretraining",
        "RidgeHead": "rtbci.models.heads",
        "TokenDecoder": "rtbci.models.pretraining",
        "alignment_loss": "rtbci.models.distillation",
        "build_decoder": "rtbci.models.checkpoint",
        "build_encoder": "rtbci.models.checkpoint",
        "load_checkpoint": "rtbci.models.checkpoint",
        "masked_reconstruction_loss": "rtbci.models.pretraining",
        "random_keep": "rtbci.models.pretraining",
        "ridge_solve": "rtbci.models.heads",
        "save_checkpoint": "rtbci.models.checkpoint",
    },
)
