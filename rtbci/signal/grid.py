"""The one bin grid and the one featurizer factory, shared by the engine and ``featurize()``.

Bins are whole multiples of the bin width on the LSL clock, shifted so that
every edge lies midway between two samples of the fastest input. Clock sync
moves timestamps by a few microseconds; with an edge exactly on a sample,
that shift could move the sample into the neighbouring bin. Midway between
samples, jitter below half a sample period changes nothing.

The engine places the grid on the first sample it receives and writes the
epoch into its recording (``SessionMeta.bin_epoch``); ``featurize()`` of
that recording uses the same epoch, so the features a model is trained on
and the features it is served are the same numbers (ARCHITECTURE.md rules 1
and 7).
"""

from __future__ import annotations

import math

from rtbci.profile import FeatureConfig
from rtbci.signal.bins import BinnedStream
from rtbci.signal.lfp import LfpFeaturizer
from rtbci.signal.spikes import SpikeBinner

__all__ = ["FEATURIZER_SETTINGS", "NEURAL_ROLES", "first_complete_index", "grid_epoch", "make_featurizer"]

# The neural inputs, in the order the engine and featurize() handle them.
NEURAL_ROLES = ("spikes", "lfp")
# The FeatureConfig settings that the featurizers read: a decoder served with others than it was
# trained with sees different numbers. (The rest shape the model, whose artifact carries them.)
FEATURIZER_SETTINGS = ("bin_ms", "line_hz", "line_harmonics", "lmp_cutoff_hz", "bands_hz")


def grid_epoch(first_timestamp: float, fastest_rate: float) -> float:
    """Where the bin grid starts, from the first sample seen.

    Parameters
    ----------
    first_timestamp
        LSL time of the first sample of the stream the grid is placed on.
    fastest_rate
        Nominal rate (Hz) of the fastest input; edges fall midway between its samples.

    Returns
    -------
    float
        The epoch, in ``[-period, 0)``: bin ``i`` covers ``[epoch + i·w, epoch + (i+1)·w)``.

    Raises
    ------
    ValueError
        If the rate is not positive.
    """
    if not fastest_rate > 0:
        raise ValueError(f"the bin grid needs a positive nominal rate, got {fastest_rate}")
    period = 1.0 / fastest_rate
    return float((first_timestamp + 0.5 * period) % period - period)


def first_complete_index(epoch: float, bin_s: float, first_timestamp: float, rate: float) -> int:
    """The first bin that holds no time before a stream's first sample (earlier ones are partial).

    Parameters
    ----------
    epoch, bin_s
        The bin grid.
    first_timestamp, rate
        The stream's first sample time and nominal rate.
    """
    # A bin is complete when it starts after the (unseen) sample one period before the first one.
    threshold = first_timestamp - 0.99 / rate
    return math.ceil((threshold - epoch) / bin_s)


def make_featurizer(
    role: str, n_channels: int, rate: float, bin_s: float, features: FeatureConfig, epoch: float, stream: str
) -> BinnedStream:
    """The streaming featurizer for one neural input.

    Parameters
    ----------
    role
        ``"spikes"`` (counts per bin) or ``"lfp"`` (causal LFP features).
    n_channels, rate
        The stream's channels and nominal rate.
    bin_s, features, epoch
        Bin width, LFP feature settings and the bin grid's epoch.
    stream
        Stream name for errors and health.

    Raises
    ------
    ValueError
        If ``role`` is not one of :data:`NEURAL_ROLES`.
    """
    if role == "spikes":
        return SpikeBinner(n_channels, rate, bin_s, epoch, stream=stream)
    if role == "lfp":
        return LfpFeaturizer(n_channels, rate, bin_s, features, epoch, stream=stream)
    raise ValueError(f"role must be one of {NEURAL_ROLES}, got {role!r}")
