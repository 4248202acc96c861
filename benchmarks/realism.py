"""Realism: the simulated rig measured side by side with real recordings, with the field's own tools.

One simulated session (``--minutes`` of subject 0, day 0, ``--seed``) is compared with
the real recordings in ``../shared/data/real`` (``--data``) and with published ranges:

- **LFP spectra** (Welch, 1 s windows) fitted by ``specparam``: the aperiodic
  exponent (knee fit 2–150 Hz, and a fixed fit 30–150 Hz), the knee
  frequency, the beta peak's frequency, power and width, and the line-noise
  peak. Real: human M1 ECoG and rat CA1 LFP (``neurodsp_field_potentials``).
- **Movement modulation** of the simulated LFP: beta (15–30 Hz) power during
  reaches and after them relative to rest, and the size of the reach-locked
  local motor potential relative to its fluctuation at rest, against what is
  published for macaque M1/PMd (no real LFP with behaviour is reachable here).
- **Spikes**, per unit against the MC_Maze trials (182 sorted units, 1 ms bins)
  and the Blackrock recording (sorted units), and per electrode (units merged:
  threshold crossings) against the Blackrock recording: firing rates, ISI
  coefficient of variation, refractory violations (ISI < 1.5 ms), Fano factor
  in 20 and 100 ms bins, pairwise correlation of 100 ms counts, and the share
  of hand-velocity variance a ridge decoder reads from the units' 20 ms counts
  (fitted on one trial, scored on the other; the per-unit direction, velocity
  explaining count variance, is near zero or negative for both real and
  simulated units with two trials of data, so it measures nothing).
  The real recordings are a few seconds long, so the simulated session is cut
  into segments of the same length and every statistic is computed within a
  segment, as for the real data.

Every row has the real value(s) or a published range, the simulated value, and
``in_range``. For a statistic measured on real spikes the range is the span of
the real recordings' 95 % bootstrap intervals (over units). ``--plot`` writes a
PNG: the spectra on log-log axes and histograms of rates, ISI CV and Fano factors.
"""

from __future__ import annotations

import argparse
import csv
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import signal

from benchmarks import add_preset_argument
from rtbci.sim import SimConfig, simulate_session
from rtbci.sim.behavior import BehaviorBuffer, ReachingTask
from rtbci.sim.config import sim_preset
from rtbci.sim.spiking import SpikingPopulation
from rtbci.sim.variability import build_session_rig, build_subject

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
FS = 1000.0
# Spectral fits: the whole band (knee model) and the high band (fixed model).
KNEE_RANGE_HZ = (2.0, 150.0)
HIGH_RANGE_HZ = (30.0, 150.0)
BETA_BAND_HZ = (12.0, 40.0)
LINE_HZ = (50.0, 60.0)
REFRACTORY_S = 0.0015
MIN_RATE_HZ = 1.0  # units below this rate are left out of ISI, Fano and correlation statistics
HISTORY_BINS = 5  # the decoder reads the last 100 ms of counts
LEAD_BINS = 5  # ... and predicts the hand velocity 100 ms later (M1 leads the hand)
RIDGE_PENALTIES = (10.0, 100.0, 1000.0, 10000.0)

# Published figures used as ranges; each row names the ones it uses.
CITATIONS = {
    "miller2009": "Miller KJ, Sorensen LB, Ojemann JG, den Nijs M (2009) Power-law scaling in the brain "
    "surface electric potential. PLoS Comput Biol 5:e1000609. doi:10.1371/journal.pcbi.1000609 "
    "(human ECoG: P ~ 1/f^chi with chi = 4.0 +/- 0.1 from 80 to 500 Hz, knee near 70 Hz, "
    "chi = 2.0 +/- 0.4 below the knee)",
    "milstein2009": "Milstein J, Mormann F, Fried I, Koch C (2009) Neuronal shot noise and Brownian 1/f^2 "
    "behavior in the local field potential. PLoS ONE 4:e4338. doi:10.1371/journal.pone.0004338 "
    "(human intracranial microelectrode LFP: 1/f^2 scaling)",
    "kilavik2012": "Kilavik BE, Ponce-Alvarez A, Trachel R, Confais J, Takerkart S, Riehle A (2012) "
    "Context-related frequency modulations of macaque motor cortical LFP beta oscillations. "
    "Cereb Cortex 22:2148-2159. doi:10.1093/cercor/bhr299 (beta 12-40 Hz in macaque motor "
    "cortical LFP, in two bands around 20 and 30 Hz)",
    "kilavik2013": "Kilavik BE, Zaepffel M, Brovelli A, MacKay WA, Riehle A (2013) The ups and downs of "
    "beta oscillations in sensorimotor cortex. Exp Neurol 245:15-26. "
    "doi:10.1016/j.expneurol.2012.09.014 (review: beta power drops during movement and rebounds after it)",
    "sanes1993": "Sanes JN, Donoghue JP (1993) Oscillations in local field potentials of the primate motor "
    "cortex during voluntary movement. PNAS 90:4470-4474. doi:10.1073/pnas.90.10.4470 "
    "(monkey M1 LFP oscillations during preparation and hold, reduced during movement)",
    "mollazadeh2011": "Mollazadeh M, Aggarwal V, Davidson AG, Law AJ, Thakor NV, Schieber MH (2011) "
    "Spatiotemporal variation of multiple neurophysiological signals in the primary motor cortex "
    "during dexterous reach-to-grasp movements. J Neurosci 31:15531-15543. "
    "doi:10.1523/JNEUROSCI.2999-11.2011 (movement-evoked LFP potentials on every M1 Utah-array channel)",
    "cole2017": "Cole SR, van der Meij R, Peterson EJ, de Hemptinne C, Starr PA, Voytek B (2017) "
    "Nonsinusoidal beta oscillations reflect cortical pathophysiology in Parkinson's disease. "
    "J Neurosci 37:4830-4840. doi:10.1523/JNEUROSCI.2208-16.2017 (source of the M1 ECoG sample: "
    "a Parkinson's patient, exaggerated beta)",
    "hill2011": "Hill DN, Mehta SB, Kleinfeld D (2011) Quality metrics to accompany spike sorting of "
    "extracellular signals. J Neurosci 31:8699-8705. doi:10.1523/JNEUROSCI.0971-11.2011 "
    "(refractory-period violations as a sorting-quality measure)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of the real recordings")
    parser.add_argument("--minutes", type=float, default=2.0, help="length of the simulated session")
    parser.add_argument("--seed", type=int, default=5)
    add_preset_argument(parser)
    parser.add_argument("--plot", type=Path, metavar="PNG", help="write the figure here")


# --------------------------------------------------------------------------- spectra


@dataclass
class SpectralFit:
    """What ``specparam`` finds in one power spectrum."""

    exponent: float
    knee_hz: float | None
    high_exponent: float
    beta: tuple[float, float, float] | None  # centre frequency, power (log10 over aperiodic), width
    line: tuple[float, float] | None  # frequency, power (log10 over aperiodic)
    peaks: list[list[float]]


def welch(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Welch spectrum with 1 s Hann windows, half overlap, averaged over columns."""
    freqs, power = signal.welch(x, fs=FS, nperseg=int(FS), axis=0)
    return freqs, power if power.ndim == 1 else power.mean(axis=1)


def fit_spectrum(freqs: np.ndarray, power: np.ndarray) -> SpectralFit:
    """Fit the knee model over 2–150 Hz and the fixed model over 30–150 Hz.

    Parameters
    ----------
    freqs, power
        A power spectrum.

    Returns
    -------
    SpectralFit
        ``knee_hz`` is ``k ** (1 / exponent)`` of the knee parameter ``k``, or
        ``None`` when the fit finds no knee (``k <= 0``).
    """
    from specparam import SpectralModel

    def model(mode: str, band: tuple[float, float]) -> SpectralModel:
        fit = SpectralModel(
            aperiodic_mode=mode,
            peak_width_limits=(1.0, 12.0),
            max_n_peaks=6,
            min_peak_height=0.1,
            verbose=False,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit.fit(freqs, power, list(band))
        return fit

    knee = model("knee", KNEE_RANGE_HZ)
    _, k, exponent = (float(v) for v in knee.get_params("aperiodic"))
    high = model("fixed", HIGH_RANGE_HZ)
    peaks = [
        list(map(float, p)) for p in np.atleast_2d(knee.get_params("periodic")) if np.all(np.isfinite(p))
    ]
    high_peaks = [
        list(map(float, p)) for p in np.atleast_2d(high.get_params("periodic")) if np.all(np.isfinite(p))
    ]
    beta = [p for p in peaks if BETA_BAND_HZ[0] <= p[0] <= BETA_BAND_HZ[1]]
    # Line noise: a narrow peak within 1.5 Hz of a mains frequency or its harmonics.
    line = [
        p
        for p in peaks + high_peaks
        if any(abs(p[0] - h * mains) < 1.5 for mains in LINE_HZ for h in (1, 2, 3)) and p[2] < 4.0
    ]
    return SpectralFit(
        exponent=exponent,
        knee_hz=float(k ** (1.0 / exponent)) if k > 0 and exponent > 0 else None,
        high_exponent=float(high.get_params("aperiodic")[-1]),
        beta=tuple(max(beta, key=lambda p: p[1])) if beta else None,
        line=(max(line, key=lambda p: p[1])[0], max(line, key=lambda p: p[1])[1]) if line else None,
        peaks=peaks,
    )


# --------------------------------------------------------------------------- spikes


@dataclass
class SpikeSet:
    """Spike trains in segments of equal meaning (trials, or cuts of one recording).

    Attributes
    ----------
    segments
        Per segment, per unit, spike times in seconds from the segment's start.
    durations
        Length of each segment in seconds.
    velocity
        Per segment, ``(n, 2)`` hand velocity at 1 kHz, or ``None``.
    """

    segments: list[list[np.ndarray]]
    durations: list[float]
    velocity: list[np.ndarray] | None = None

    @property
    def n_units(self) -> int:
        return len(self.segments[0])

    def rates(self) -> np.ndarray:
        counts = np.sum([[len(t) for t in seg] for seg in self.segments], axis=0)
        return counts / sum(self.durations)

    def counts(self, segment: int, bin_s: float) -> np.ndarray:
        """``(bins, units)`` counts of whole bins of one segment."""
        n_bins = int(self.durations[segment] / bin_s + 1e-9)
        edges = np.arange(n_bins + 1) * bin_s
        return np.stack([np.histogram(t, edges)[0] for t in self.segments[segment]], axis=1).astype(float)


def from_binary(matrix: np.ndarray, rate_hz: float = FS) -> list[np.ndarray]:
    """Spike times per column of a ``(samples, units)`` count matrix (a count of k gives k spikes)."""
    times = []
    for column in matrix.T:
        idx = np.flatnonzero(column)
        times.append(np.repeat(idx, column[idx].astype(int)) / rate_hz)
    return times


def load_mc_maze(folder: Path) -> SpikeSet:
    """The MC_Maze trials: one segment per trial, 1 ms bins, hand velocity in mm/s."""
    segments, durations, velocity = [], [], []
    for path in sorted(folder.glob("trial_*_data.csv")):
        with path.open(newline="") as handle:
            rows = list(csv.reader(handle))
        header = rows[0]
        data = np.array([[float(v) if v else np.nan for v in row[: len(header)]] for row in rows[1:]])
        units = [i for i, name in enumerate(header) if name.startswith("unit_")]
        vel = [header.index("hand_vel_x"), header.index("hand_vel_y")]
        segments.append(from_binary(np.nan_to_num(data[:, units])))
        durations.append(data.shape[0] / FS)
        velocity.append(data[:, vel])
    return SpikeSet(segments, durations, velocity)


def load_blackrock(folder: Path) -> tuple[SpikeSet, SpikeSet]:
    """The Blackrock recording: sorted units (ids 1..254) and electrodes (all units merged)."""
    from rtbci.io.importers import import_session
    from rtbci.io.importers.common import ImportOptions

    nev = next(folder.glob("*.nev"))
    session = import_session(nev, ImportOptions(progress=False, keep_units=True, spike_events=True))
    events = session.streams["spike_events"]
    labels = session.streams["spikes"].channel_labels
    start = session.streams["spikes"].timestamps[0]
    duration = session.streams["spikes"].data.shape[0] / FS
    times = events.timestamps - start
    index = events.data[:, 0].astype(int)  # column of the per-unit count stream
    sorted_units = [i for i, label in enumerate(labels) if 0 < int(label.split("#")[1]) < 255]
    units = [np.sort(times[index == i]) for i in sorted_units]
    electrodes_of = np.array([label.split("#")[0] for label in labels])
    electrode_names = sorted(set(electrodes_of), key=lambda name: int(name.removeprefix("elec")))
    merged = [np.sort(times[np.isin(index, np.flatnonzero(electrodes_of == e))]) for e in electrode_names]
    return SpikeSet([units], [duration]), SpikeSet([merged], [duration])


def without_bursts(spikes: SpikeSet, bin_s: float = 0.1, factor: float = 2.0) -> SpikeSet:
    """The recording without the ``bin_s`` bins whose population count exceeds ``factor`` × the median.

    The remaining pieces are joined end to end, so each segment gets shorter.
    """
    segments, durations = [], []
    for s, segment in enumerate(spikes.segments):
        total = spikes.counts(s, bin_s).sum(axis=1)
        keep = total <= factor * np.median(total)
        starts = np.flatnonzero(keep) * bin_s
        new_start = np.arange(len(starts)) * bin_s
        joined = []
        for times in segment:
            which = np.floor(times / bin_s).astype(int)
            inside = np.isin(which, np.flatnonzero(keep))
            offset = dict(zip(np.flatnonzero(keep), new_start - starts, strict=True))
            joined.append(np.sort(times[inside] + np.array([offset[w] for w in which[inside]])))
        segments.append(joined)
        durations.append(len(starts) * bin_s)
    return SpikeSet(segments, durations)


def isi_stats(spikes: SpikeSet) -> tuple[np.ndarray, float]:
    """Per-unit ISI CV (units with >= 10 ISIs) and the pooled fraction of ISIs < 1.5 ms."""
    cvs, short, total = [], 0, 0
    for unit in range(spikes.n_units):
        isis = np.concatenate([np.diff(seg[unit]) for seg in spikes.segments])
        short += int(np.sum(isis < REFRACTORY_S))
        total += len(isis)
        if len(isis) >= 10:
            cvs.append(isis.std() / isis.mean())
    return np.array(cvs), short / max(total, 1)


def fano(spikes: SpikeSet, bin_s: float) -> np.ndarray:
    """Fano factor of counts per unit (>= 1 Hz) and segment, one value per (segment, unit).

    Values are not averaged over segments, so that a long simulated session
    cut into many segments has the same sampling spread per value as a short
    real recording.
    """
    keep = spikes.rates() >= MIN_RATE_HZ
    values = []
    for s in range(len(spikes.segments)):
        counts = spikes.counts(s, bin_s)[:, keep]
        mean = counts.mean(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            values.append(counts.var(axis=0, ddof=1) / mean)
    return np.concatenate(values)


def pair_correlations(spikes: SpikeSet, bin_s: float = 0.1) -> np.ndarray:
    """Pearson correlations of binned counts, pairs of units >= 1 Hz; one value per pair and segment."""
    keep = spikes.rates() >= MIN_RATE_HZ
    values = []
    for s in range(len(spikes.segments)):
        counts = spikes.counts(s, bin_s)[:, keep]
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.corrcoef(counts.T)
        values.append(r[np.triu_indices_from(r, k=1)])
    return np.concatenate(values)


def _decoding_data(spikes: SpikeSet, segment: int, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts of the last 100 ms (five 20 ms bins) per unit, and the hand velocity 100 ms later."""
    counts = spikes.counts(segment, 0.02)[:, keep]
    n = counts.shape[0]
    velocity = spikes.velocity[segment][: n * 20].reshape(n, 20, 2).mean(axis=1)
    cumulative = np.cumsum(np.vstack([np.zeros((1, counts.shape[1])), counts]), axis=0)
    history = cumulative[HISTORY_BINS:] - cumulative[:-HISTORY_BINS]  # row i: bins i .. i + 4
    return history[:-LEAD_BINS], velocity[HISTORY_BINS - 1 + LEAD_BINS :]


def velocity_explained(
    spikes: SpikeSet, pairs: list[tuple[int, int]], keep: np.ndarray | None = None
) -> float:
    """Share of hand-velocity variance (20 ms bins) that a ridge decoder reads from the units, held out.

    For each ``(train, test)`` pair of segments a ridge from the units' counts
    of the last 100 ms to the velocity 100 ms later is fitted on ``train`` and
    scored on ``test``. Returns the best over :data:`RIDGE_PENALTIES` of
    ``1 - sum(SSE) / sum(SS)`` pooled over both axes and all pairs (the same
    grid for real and simulated units).
    """
    keep = spikes.rates() >= MIN_RATE_HZ if keep is None else keep
    best = -np.inf
    for penalty in RIDGE_PENALTIES:
        sse = ss = 0.0
        for train, test in pairs:
            x_train, y_train = _decoding_data(spikes, train, keep)
            x_test, y_test = _decoding_data(spikes, test, keep)
            mean, sd = x_train.mean(axis=0), x_train.std(axis=0) + 1e-9
            a = (x_train - mean) / sd
            weights = np.linalg.solve(
                a.T @ a + penalty * np.eye(a.shape[1]), a.T @ (y_train - y_train.mean(0))
            )
            prediction = ((x_test - mean) / sd) @ weights + y_train.mean(0)
            sse += float(((y_test - prediction) ** 2).sum())
            ss += float(((y_test - y_test.mean(0)) ** 2).sum())
        best = max(best, 1.0 - sse / ss)
    return float(best)


def bootstrap_ci(
    values: np.ndarray, statistic, rng: np.random.Generator, n: int = 500
) -> tuple[float, float]:
    """95 % percentile interval of ``statistic`` over units resampled with replacement."""
    values = values[np.isfinite(values)]
    draws = [statistic(values[rng.integers(len(values), size=len(values))]) for _ in range(n)]
    return float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


# --------------------------------------------------------------------------- the simulator


def simulated_units(config: SimConfig, seed: int, minutes: float) -> tuple[list[np.ndarray], np.ndarray]:
    """Per-unit spike times of subject 0, day 0, with the session's tuning, and the hand velocity.

    The session file holds threshold crossings per electrode; the sorted-unit
    statistics need each unit's own train, so the same population is run
    here with one "electrode" per unit (same rates model, same refractoriness).
    """
    rig = build_session_rig(build_subject(config, seed, 0), 0)
    rng = np.random.default_rng(seed)
    behaviour = BehaviorBuffer(ReachingTask(config.task, config.rate_hz, np.random.default_rng(seed + 1)))
    population = SpikingPopulation(rig, config.population, config.rate_hz, rng)
    n_units = rig.units.n_units
    identity = np.arange(n_units)
    block = int(config.rate_hz)
    counts, velocity = [], []
    for start in range(0, int(minutes * 60 * config.rate_hz), block):
        ahead = behaviour.window(start, start + block + population.max_lead)
        rates, _ = population.drive(ahead, block, rng)
        counts.append(population.unit_spikes(rates, identity, n_units, rng))
        velocity.append(ahead.vel[:block])
        behaviour.discard_before(start + block)
    return from_binary(np.concatenate(counts), config.rate_hz), np.concatenate(velocity)


def cut(times: list[np.ndarray], velocity: np.ndarray | None, total_s: float, segment_s: float) -> SpikeSet:
    """Cut one long recording into segments of ``segment_s``."""
    n = int(total_s // segment_s)
    segments = [
        [t[(t >= k * segment_s) & (t < (k + 1) * segment_s)] - k * segment_s for t in times] for k in range(n)
    ]
    vel = None
    if velocity is not None:
        step = int(segment_s * FS)
        vel = [velocity[k * step : (k + 1) * step] for k in range(n)]
    return SpikeSet(segments, [segment_s] * n, vel)


def movement_modulation(lfp: np.ndarray, speed: np.ndarray) -> dict[str, float]:
    """Beta power during and after reaches relative to rest, and the local motor potential's size.

    Parameters
    ----------
    lfp
        ``(n, C)`` µV of clean channels.
    speed
        ``(n,)`` hand speed in m/s.
    """
    beta = signal.sosfiltfilt(signal.butter(3, [15, 30], btype="bandpass", fs=FS, output="sos"), lfp, axis=0)
    power = (beta**2).mean(axis=1)
    moving = speed > 0.15
    window = np.ones(601)
    near = np.convolve(moving.astype(float), window, mode="same") > 0
    rest = (speed < 0.02) & ~near
    # Reach onsets: speed crosses 0.05 m/s after at least 300 ms below it.
    fast = speed > 0.05
    onsets = [
        i for i in np.flatnonzero(fast[1:] & ~fast[:-1]) + 1 if i >= 1000 and not fast[i - 300 : i].any()
    ]
    onsets = [i for i in onsets if i + 1500 < len(speed)]
    # After a reach: 200-800 ms after the speed falls below 0.02 m/s for good.
    after = np.zeros_like(moving)
    slow = speed < 0.02
    for end in np.flatnonzero(slow[1:] & ~slow[:-1]) + 1:
        after[end + 200 : end + 800] = True
    after &= slow
    lmp = signal.sosfiltfilt(signal.butter(2, 5.0, fs=FS, output="sos"), lfp, axis=0)
    epochs = np.stack([lmp[i - 500 : i + 1000] for i in onsets])  # (reaches, 1500, C)
    evoked = epochs.mean(axis=0)
    evoked_ptp = np.ptp(evoked, axis=0)
    evoked_size = float(np.median(evoked_ptp))
    rest_sd = float(np.median(lmp[rest].std(axis=0)))
    # Significance per channel: the same number of epochs at random times, 40 times over.
    shuffle_rng = np.random.default_rng(1)
    chance = np.stack(
        [
            np.ptp(np.stack([lmp[i - 500 : i + 1000] for i in picks]).mean(axis=0), axis=0)
            for picks in shuffle_rng.integers(1000, len(speed) - 1500, size=(40, len(onsets)))
        ]
    )
    significant = float(np.mean(evoked_ptp > np.percentile(chance, 95, axis=0)))
    return {
        "beta_move_over_rest": float(power[moving].mean() / power[rest].mean()),
        "beta_after_over_move": float(power[after].mean() / power[moving].mean()),
        "lmp_evoked_ptp_uv": evoked_size,
        "lmp_rest_sd_uv": rest_sd,
        "lmp_evoked_over_rest_sd": evoked_size / rest_sd,
        "lmp_significant_channels": significant,
        "reaches": len(onsets),
    }


# --------------------------------------------------------------------------- the table


def _row(
    group: str, name: str, real: dict, low: float | None, high: float | None, sim: float | None, basis: str
) -> dict:
    in_range = None
    if sim is not None and (low is not None or high is not None):
        in_range = bool((low is None or sim >= low) and (high is None or sim <= high))
    rnd = lambda v: None if v is None else round(float(v), 4)  # noqa: E731
    return {
        "group": group,
        "row": name,
        "real": {k: rnd(v) for k, v in real.items()},
        "range": [rnd(low), rnd(high)],
        "simulated": rnd(sim),
        "in_range": in_range,
        "basis": basis,
    }


def _spike_rows(
    level: str,
    sim: SpikeSet,
    reals: dict[str, SpikeSet],
    rng: np.random.Generator,
    extra: dict[str, SpikeSet] | None = None,
) -> list[dict]:
    """Rows of unit (or electrode) statistics; the range spans the real recordings' bootstrap intervals.

    ``extra`` recordings are shown beside the real ones but do not set the range.
    """
    extra = extra or {}
    stats = {
        "median firing rate (Hz)": (lambda s: s.rates(), np.median),
        "SD of log10 firing rate": (lambda s: np.log10(np.maximum(s.rates(), 0.05)), np.std),
        "median ISI CV": (lambda s: isi_stats(s)[0], np.median),
        "median Fano factor, 20 ms": (lambda s: fano(s, 0.02), np.nanmedian),
        "median Fano factor, 100 ms": (lambda s: fano(s, 0.1), np.nanmedian),
        "mean pairwise count correlation, 100 ms": (pair_correlations, np.nanmean),
    }
    rows = []
    for name, (values_of, summary) in stats.items():
        real_values = {key: values_of(s) for key, s in reals.items()}
        intervals = [bootstrap_ci(v, summary, rng, n=200) for v in real_values.values()]
        sim_value = float(summary(values_of(sim)))
        shown = {k: summary(v) for k, v in real_values.items()}
        shown.update({k: summary(values_of(s)) for k, s in extra.items()})
        rows.append(
            _row(
                f"spikes ({level})",
                name,
                shown,
                min(i[0] for i in intervals),
                max(i[1] for i in intervals),
                sim_value,
                "span of the real recordings' 95% bootstrap intervals over units",
            )
        )
    violations = {key: isi_stats(s)[1] for key, s in reals.items()}
    rows.append(
        _row(
            f"spikes ({level})",
            "refractory violations (fraction of ISIs < 1.5 ms)",
            violations | {k: isi_stats(s)[1] for k, s in extra.items()},
            min(violations.values()) / 2,
            max(violations.values()) * 2,
            isi_stats(sim)[1],
            "factor 2 around the real recordings (convention; Hill et al. 2011 for the measure)",
        )
    )
    return rows


def run(args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    config = sim_preset(args.preset)
    data = args.data
    if not data.is_dir():
        raise SystemExit(f"realism: no real recordings at {data} (pass --data)")
    rng = np.random.default_rng(0)

    # LFP spectra.
    fields = data / "neurodsp_field_potentials"
    ecog = np.load(fields / "sample_data_1.npy").astype(float)
    ca1 = np.load(fields / "sample_data_2.npy").astype(float)
    session = simulate_session(config, 0, 0, args.minutes, args.seed)
    bad = {
        int(c)
        for key in ("dead_channels", "noisy_channels")
        for c in session.meta.provenance[key].split(",")
        if c
    }
    clean = np.array([c for c in range(config.n_channels) if c not in bad])
    lfp = session.streams["lfp"].data[:, clean].astype(float)
    spectra = {"ECoG (human M1)": welch(ecog), "CA1 (rat)": welch(ca1), "simulated": welch(lfp)}
    fits = {name: fit_spectrum(*spec) for name, spec in spectra.items()}
    # The simulated fit is also made per channel, to show the spread over the array.
    channel_fits = [fit_spectrum(*welch(lfp[:, c])) for c in range(0, len(clean), max(1, len(clean) // 12))]
    ecog_fit, ca1_fit, sim_fit = fits["ECoG (human M1)"], fits["CA1 (rat)"], fits["simulated"]
    reals = {"ecog": ecog_fit, "ca1": ca1_fit}
    rows = [
        _row(
            "LFP spectrum",
            "aperiodic exponent, knee fit 2-150 Hz",
            {k: f.exponent for k, f in reals.items()},
            2.0,
            4.0,
            sim_fit.exponent,
            "2 (intracortical LFP, 1/f^2: milstein2009) to 4 (ECoG above the knee: miller2009); "
            "both real recordings lie inside",
        ),
        _row(
            "LFP spectrum",
            "aperiodic exponent, fixed fit 30-150 Hz",
            {k: f.high_exponent for k, f in reals.items()},
            2.0,
            4.0,
            sim_fit.high_exponent,
            "as above (milstein2009, miller2009)",
        ),
        _row(
            "LFP spectrum",
            "knee frequency (Hz)",
            {k: f.knee_hz for k, f in reals.items()},
            min(f.knee_hz for f in reals.values() if f.knee_hz),
            70.0,
            sim_fit.knee_hz,
            "lowest real knee to about 70 Hz (ECoG knee: miller2009)",
        ),
        _row(
            "LFP spectrum",
            "beta peak frequency (Hz)",
            {k: f.beta[0] if f.beta else None for k, f in reals.items()},
            12.0,
            40.0,
            sim_fit.beta[0] if sim_fit.beta else None,
            "beta in macaque motor-cortical LFP, 12-40 Hz (kilavik2012)",
        ),
        _row(
            "LFP spectrum",
            "beta peak power (log10 over aperiodic)",
            {k: f.beta[1] if f.beta else None for k, f in reals.items()},
            0.1,
            ecog_fit.beta[1] if ecog_fit.beta else None,
            sim_fit.beta[1] if sim_fit.beta else None,
            "a peak (specparam's 0.1 threshold) no stronger than the Parkinsonian M1 ECoG's (cole2017)",
        ),
        _row(
            "LFP spectrum",
            "beta peak width (Hz)",
            {k: f.beta[2] if f.beta else None for k, f in reals.items()},
            ecog_fit.beta[2] / 2 if ecog_fit.beta else None,
            ecog_fit.beta[2] * 2 if ecog_fit.beta else None,
            sim_fit.beta[2] if sim_fit.beta else None,
            "factor 2 around the M1 ECoG's beta width (convention: no published Utah-array width known)",
        ),
        _row(
            "LFP spectrum",
            "line-noise peak (log10 over aperiodic)",
            {k: f.line[1] if f.line else 0.0 for k, f in reals.items()},
            0.0,
            max(f.line[1] if f.line else 0.0 for f in reals.values()),
            sim_fit.line[1] if sim_fit.line else 0.0,
            "no stronger than in the real recordings (0 = no line peak found)",
        ),
    ]

    speed = np.linalg.norm(session.streams["behavior"].data[:, 2:4], axis=1)
    modulation = movement_modulation(lfp, speed)
    rows += [
        _row(
            "movement modulation",
            "beta power during reaches / at rest",
            {},
            0.0,
            1.0,
            modulation["beta_move_over_rest"],
            "a drop (kilavik2013, sanes1993); no reliable published size for macaque Utah-array LFP",
        ),
        _row(
            "movement modulation",
            "beta power after reaches / during reaches (rebound)",
            {},
            1.0,
            None,
            modulation["beta_after_over_move"],
            "a post-movement rebound (kilavik2013)",
        ),
        _row(
            "movement modulation",
            "channels with a significant reach-locked LMP (vs random alignment, p < 0.05)",
            {},
            0.9,
            1.0,
            modulation["lmp_significant_channels"],
            "a movement-evoked potential on every M1 channel (mollazadeh2011); 0.9 allows a few misses. "
            "No reliable published µV size, so the size is reported, not ranged",
        ),
    ]

    # Spikes.
    maze = load_mc_maze(data / "mc_maze_trials")
    br_units, br_electrodes = load_blackrock(data / "blackrock_fixture")
    segment_s = float(np.mean(maze.durations))
    unit_times, velocity = simulated_units(config, args.seed, args.minutes)
    sim_units = cut(unit_times, velocity, args.minutes * 60, segment_s)
    sim_electrodes = cut(
        from_binary(session.streams["spikes"].data[:, clean]),
        None,
        args.minutes * 60,
        br_electrodes.durations[0],
    )
    rows += _spike_rows("units", sim_units, {"mc_maze": maze, "blackrock": br_units}, rng)
    rows += _spike_rows(
        "electrodes",
        sim_electrodes,
        {"blackrock": br_electrodes},
        rng,
        extra={"blackrock_without_bursts (not ranged)": without_bursts(br_electrodes)},
    )
    maze_r2 = velocity_explained(maze, [(0, 1), (1, 0)])
    # Matched data: train on one simulated segment, test on the next, as for the two trials.
    sim_pairs = [(k, k + 1) for k in range(0, len(sim_units.segments) - 1, 2)]
    sim_pairs += [(b, a) for a, b in sim_pairs]
    sim_r2 = velocity_explained(sim_units, sim_pairs)
    # How much one pair of simulated segments varies: the real value rests on one pair of trials.
    sim_single = [
        velocity_explained(sim_units, [pair, pair[::-1]]) for pair in sim_pairs[: len(sim_pairs) // 2]
    ]
    # Bootstrap over units for the real value's interval.
    keep = maze.rates() >= MIN_RATE_HZ
    boot = []
    for _ in range(100):
        units = np.flatnonzero(keep)[rng.integers(keep.sum(), size=keep.sum())]
        resampled = SpikeSet(
            [[seg[u] for u in units] for seg in maze.segments], maze.durations, maze.velocity
        )
        boot.append(velocity_explained(resampled, [(0, 1), (1, 0)], np.ones(len(units), dtype=bool)))
    rows.append(
        _row(
            "spikes (units)",
            "hand-velocity variance read from 20 ms counts (held-out ridge decoder)",
            {
                "mc_maze": maze_r2,
                "simulated, one pair of segments: 2.5th pct (not ranged)": float(
                    np.percentile(sim_single, 2.5)
                ),
                "simulated, one pair of segments: 97.5th pct (not ranged)": float(
                    np.percentile(sim_single, 97.5)
                ),
            },
            float(np.percentile(boot, 2.5)),
            float(np.percentile(boot, 97.5)),
            sim_r2,
            "MC_Maze's 95% bootstrap interval over units; simulated segments matched in length",
        )
    )

    result = {
        "preset": args.preset,
        "seed": args.seed,
        "minutes": args.minutes,
        "rows": rows,
        "in_range": sum(r["in_range"] is True for r in rows),
        "out_of_range": [r["row"] for r in rows if r["in_range"] is False],
        "no_range": [r["row"] for r in rows if r["in_range"] is None],
        "spectral_fits": {
            name: {
                "exponent": f.exponent,
                "knee_hz": f.knee_hz,
                "high_exponent": f.high_exponent,
                "peaks": f.peaks,
            }
            for name, f in fits.items()
        },
        "simulated_channel_exponents": {
            "knee_fit": [round(f.exponent, 3) for f in channel_fits],
            "fixed_30_150": [round(f.high_exponent, 3) for f in channel_fits],
        },
        "movement_modulation": modulation,
        "citations": CITATIONS,
        "seconds": round(time.perf_counter() - started, 1),
    }
    if args.plot:
        if args.preset != "v1":
            # The simulator before issue 31, for comparison on the spectrum panel only.
            v1_config = sim_preset("v1")
            v1 = simulate_session(v1_config, 0, 0, min(args.minutes, 1.0), args.seed)
            spectra["simulated, v1 (before issue 31)"] = welch(v1.streams["lfp"].data[:, clean].astype(float))
        _plot(
            args.plot,
            spectra,
            {"MC_Maze units": maze, "Blackrock units": br_units, "simulated units": sim_units},
        )
        result["plot"] = str(args.plot)
    return result


def _plot(path: Path, spectra: dict, spike_sets: dict[str, SpikeSet]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    ax = axes[0, 0]
    for name, (freqs, power) in spectra.items():
        band = (freqs >= 1) & (freqs <= 250)
        # Each spectrum is scaled to 1 at 10 Hz so that the shapes compare.
        ref = power[np.argmin(np.abs(freqs - 10))]
        style = "--" if "v1" in name else "-"
        ax.loglog(freqs[band], power[band] / ref, style, label=name, lw=1.4)
    ax.axvspan(*HIGH_RANGE_HZ, color="0.9", zorder=0)
    ax.set(
        xlabel="frequency (Hz)", ylabel="power / power at 10 Hz", title="LFP spectra (grey: 30-150 Hz fit)"
    )
    ax.legend(fontsize=8)

    colours = {"MC_Maze units": "C0", "Blackrock units": "C1", "simulated units": "C3"}
    panels = [
        (
            axes[0, 1],
            "firing rate (Hz, log10)",
            lambda s: np.log10(np.maximum(s.rates(), 0.05)),
            np.linspace(-1.4, 2.2, 37),
        ),
        (axes[0, 2], "ISI CV", lambda s: isi_stats(s)[0], np.linspace(0, 4, 41)),
        (axes[1, 0], "Fano factor, 20 ms bins", lambda s: fano(s, 0.02), np.linspace(0, 3, 31)),
        (axes[1, 1], "Fano factor, 100 ms bins", lambda s: fano(s, 0.1), np.linspace(0, 6, 31)),
        (axes[1, 2], "pairwise count correlation, 100 ms", pair_correlations, np.linspace(-0.5, 0.8, 40)),
    ]
    for ax, label, values_of, bins in panels:
        for name, spikes in spike_sets.items():
            values = values_of(spikes)
            values = values[np.isfinite(values)]
            ax.hist(values, bins=bins, density=True, histtype="step", lw=1.6, color=colours[name], label=name)
        ax.set(xlabel=label, ylabel="density")
        ax.legend(fontsize=8)
    fig.suptitle("rtbci simulator vs real recordings")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
