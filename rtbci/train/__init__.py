"""Training: spike-teacher pretraining, LFP-student distillation, behavior heads, DDP.

Modules, one job each:

- :mod:`~rtbci.train.data` — Session files to featurized windows of bins.
- :mod:`~rtbci.train.splits` — contiguous train/validation/test blocks.
- :mod:`~rtbci.train.metrics` — R² per axis.
- :mod:`~rtbci.train.loop` — the optimisation loop (progress, resume, DDP).
- :mod:`~rtbci.train.ddp` — ``torchrun`` process groups.
"""
