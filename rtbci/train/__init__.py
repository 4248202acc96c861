"""Training: spike-teacher pretraining, LFP-student distillation, behavior heads, DDP.

Modules, one job each:

- :mod:`~rtbci.train.sources` — Session files to featurized sessions (the engine's featurizers).
- :mod:`~rtbci.train.data` — sessions as blocks and windows of bins, batches, the session table.
- :mod:`~rtbci.train.splits` — contiguous train/validation/test blocks.
- :mod:`~rtbci.train.encoders` — encoder size presets and the profile-derived layout.
- :mod:`~rtbci.train.objectives` — batch -> loss adapters of the model's objectives.
- :mod:`~rtbci.train.loop` — the optimisation loop (progress bar, resumable state, DDP).
- :mod:`~rtbci.train.ddp` — ``torchrun`` process groups (gloo on CPU, NCCL on GPU).
- :mod:`~rtbci.train.pretrain` — teacher pretraining (MAE or masked latent reconstruction).
- :mod:`~rtbci.train.distill` — cross-modal distillation of the LFP student.
- :mod:`~rtbci.train.latents`, :mod:`~rtbci.train.readout`, :mod:`~rtbci.train.validation` —
  per-bin latents of long blocks, ridge readouts, validation R².
- :mod:`~rtbci.train.head` — the ridge behavior head and the decoder.
- :mod:`~rtbci.train.heldout` — unseen sessions: a context row and a calibrated readout.
- :mod:`~rtbci.train.checkpoints`, :mod:`~rtbci.train.pipeline` — stage outputs, teacher ->
  student -> head -> export.
- :mod:`~rtbci.train.demo_model` — the recipe of the bundled demo decoder.
"""
