"""Training: spike-teacher pretraining, LFP-student distillation, behavior heads, fine-tuning,
the two calibration stages, DDP. Every stage that takes gradient steps runs the one loop.

Modules, one job each:

- :mod:`~rtbci.train.sources` — Session files to featurized sessions (the engine's featurizers).
- :mod:`~rtbci.train.data` — sessions as blocks and windows of bins, batches, the session table.
- :mod:`~rtbci.train.splits` — contiguous train/validation/test blocks; a calibration's fit blocks.
- :mod:`~rtbci.train.encoders` — encoder size presets and the profile-derived layout.
- :mod:`~rtbci.train.objectives` — batch -> loss adapters: the model's objectives, the kinematics loss.
- :mod:`~rtbci.train.loop` — the one optimisation loop (parameter groups, schedule, early
  stopping, time budget, progress bar, ``on_step``, resumable state, DDP).
- :mod:`~rtbci.train.early_stopping` — keep the best weights, stop after ``patience`` checks.
- :mod:`~rtbci.train.ddp` — ``torchrun`` process groups (gloo on CPU, NCCL on GPU).
- :mod:`~rtbci.train.pretrain` — teacher pretraining (MAE or masked latent reconstruction).
- :mod:`~rtbci.train.distill` — cross-modal distillation of the LFP student.
- :mod:`~rtbci.train.latents`, :mod:`~rtbci.train.readout`, :mod:`~rtbci.train.validation` —
  per-bin latents of long blocks, ridge readouts, validation R².
- :mod:`~rtbci.train.head` — the ridge behavior head and the decoder.
- :mod:`~rtbci.train.finetune` — supervised fine-tuning (layer-wise rates, new rows faster).
- :mod:`~rtbci.train.heldout` — unseen sessions: a context row and a calibrated readout.
- :mod:`~rtbci.train.session_fit`, :mod:`~rtbci.train.stage_a`, :mod:`~rtbci.train.stage_b` —
  calibration to a new session: Stage A (new row + ridge head, frozen backbone) and Stage B
  (full fine-tune); the ``calibrate`` tool records, splits, scores and exports around them.
- :mod:`~rtbci.train.checkpoints`, :mod:`~rtbci.train.pipeline` — stage outputs, teacher ->
  student -> head -> export.
- :mod:`~rtbci.train.demo_model` — the recipe of the bundled demo decoder.
"""
