"""Streaming featurizers: spike binning and causal LFP features, the same online and offline.

Public API: :class:`SpikeBinner`, :class:`LfpFeaturizer` (``push`` chunks of
any length, get finished :class:`Bins`), :class:`Normalizer` (per-feature
z-score fitted on calibration data) and :func:`featurize` (a whole Session to
a :class:`BinnedSession`).
"""

from rtbci.signal.bins import Bins, ChannelCountError, ChunkShapeError
from rtbci.signal.filters import LfpFilterBank, design_filter_bank
from rtbci.signal.lfp import LfpFeaturizer
from rtbci.signal.normalize import Normalizer
from rtbci.signal.offline import LABELS, BinnedSession, FeaturizeError, Labels, featurize, run_stream
from rtbci.signal.spikes import SpikeBinner

__all__ = [
    "LABELS",
    "BinnedSession",
    "Bins",
    "ChannelCountError",
    "ChunkShapeError",
    "FeaturizeError",
    "Labels",
    "LfpFeaturizer",
    "LfpFilterBank",
    "Normalizer",
    "SpikeBinner",
    "design_filter_bank",
    "featurize",
    "run_stream",
]
