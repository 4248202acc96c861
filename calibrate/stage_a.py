"""Stage A (the default, seconds): a new session row and a new head on a frozen backbone.

1. Add the new session to the context table, starting from the mean of the rows
   of the same subject's sessions (all rows when none match).
2. Keep the LFP feature normalisation the encoder was trained with: the backbone
   is frozen, so its inputs must keep the statistics it learned on. (Refitting it
   on the block cost a two-subject student half its held-out R², 0.30 -> 0.14.)
   Switch off the LFP channels whose mean on the training part is far outside it
   (electrodes that died or turned noisy since training; :mod:`rtbci.train.channel_check`).
   Every channel is checked, also those an earlier calibration switched off, so
   an electrode that recovered is read again.
3. With every backbone weight frozen, learn the new session's row by gradient
   descent on the kinematics error through a temporary ridge head, stopping early
   on the validation block or at a time budget.
4. Fit the ridge head in closed form on the latents of the training part.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from calibrate.early_stopping import EarlyStopping
from calibrate.fitting import (
    DEFAULT_ALPHAS,
    FittedDecoder,
    KinematicsLoss,
    block_latents,
    fit_ridge_head,
    validation_r2,
)
from calibrate.previous import PreviousDecoder
from calibrate.split import CalibrationSplit
from rtbci.models.decoder import Decoder
from rtbci.models.encoder import Encoder
from rtbci.models.heads import RidgeHead
from rtbci.signal import BinnedSession
from rtbci.train.channel_check import DEFAULT_THRESHOLD_SD, silence_outlier_channels
from rtbci.train.data import SessionBins, WindowSampler, WindowSet
from rtbci.train.splits import BinBlock

__all__ = ["StageAConfig", "StageAResult", "new_session_encoder", "run_stage_a"]


@dataclass(frozen=True)
class StageAConfig:
    """Settings of Stage A.

    Attributes
    ----------
    steps
        Most gradient steps on the session row.
    max_seconds
        Time budget of those steps: Stage A is meant to take seconds on a 2-core machine.
    batch_size
        Windows per step.
    lr
        Adam learning rate of the session row.
    eval_every, patience
        Validation R² every ``eval_every`` steps; stop after ``patience`` checks without improvement.
    window_stride
        Bins between training window starts.
    head_init_bins
        The temporary head starts as a ridge fit on this many bins at the end of the fit block.
    alphas
        Candidate ridge penalties of the final head.
    seed
        Seeds window order.
    channel_check_sd
        Switch off LFP channels whose mean z-score on the training part is beyond
        this in any feature, and switch on again those within it (None: no check;
        the previous decoder's switched-off channels stay off).
    """

    steps: int = 40
    batch_size: int = 8
    lr: float = 1e-2
    eval_every: int = 10
    patience: int = 2
    max_seconds: float = 5.0
    window_stride: int = 5
    head_init_bins: int = 1500
    alphas: tuple[float, ...] = DEFAULT_ALPHAS
    seed: int = 0
    channel_check_sd: float | None = DEFAULT_THRESHOLD_SD


@dataclass
class StageAResult:
    """What Stage A made.

    Attributes
    ----------
    fitted
        The decoder and its scores on the training part.
    session_ids
        Its session table, the new session last.
    bins
        The block as model inputs, with the new session's row.
    new_parameters
        Parameters created for this session (its context row); Stage B trains them faster.
    switched_off_channels
        LFP channels the channel check switched off. When the check ran, these are
        all the channels this decoder does not read.
    """

    fitted: FittedDecoder
    session_ids: list[str]
    bins: SessionBins
    new_parameters: list[torch.nn.Parameter]
    switched_off_channels: list[int]


def _subject_rows(session_ids: list[str], subject: str) -> list[int]:
    rows = [row for row, session_id in enumerate(session_ids) if session_id.startswith(f"{subject}-")]
    return rows or list(range(len(session_ids)))


def new_session_encoder(
    previous: PreviousDecoder, binned: BinnedSession
) -> tuple[Encoder, list[str], SessionBins, list[torch.nn.Parameter]]:
    """The previous encoder, its normalisation unchanged, with a row for the block's session.

    The new row starts as the mean of the rows of the same subject's sessions
    (all rows when no session id starts with the subject), the best guess before
    it is trained.

    Returns
    -------
    encoder, session_ids, bins, new_parameters
        The encoder (eval mode), its session table ids (the new session last), the
        block as model inputs with the new row, and the new row's parameters.
    """
    encoder = previous.decoder().encoder
    known = previous.checkpoint.session_ids
    session_ids = [*known, binned.session_id]
    if binned.session_id in known:
        # A re-calibration of a known session still gets a row of its own: the old row stays as it was.
        session_ids[-1] = f"{binned.session_id}#{len(known)}"
    like_rows = torch.tensor(_subject_rows(known, binned.subject), dtype=torch.int64)
    table = encoder.tokenizer.session_table()
    with torch.no_grad():
        start = table(like_rows).mean(dim=0, keepdim=True)
    new_names = encoder.add_sessions(1)
    parameters = dict(encoder.named_parameters())
    new_parameters = [parameters[name] for name in new_names]
    with torch.no_grad():
        new_parameters[0].copy_(start)
    bins = SessionBins.from_binned(binned, len(known))
    return encoder.eval(), session_ids, bins, new_parameters


def _temporary_head(
    encoder: Encoder, bins: SessionBins, fit: BinBlock, n_bins: int, alpha: float
) -> RidgeHead:
    block = BinBlock(max(0, fit.stop - n_bins), fit.stop)
    latents = block_latents(encoder, bins, block)
    return RidgeHead(encoder.config.d_model, bins.kinematics.shape[1]).fit(
        latents, bins.kinematics[block.as_slice()], alpha
    )


def run_stage_a(
    previous: PreviousDecoder,
    binned: BinnedSession,
    split: CalibrationSplit,
    config: StageAConfig,
    progress: bool = True,
    on_step: Callable[[float, str], None] | None = None,
) -> StageAResult:
    """Fit the new session's row and ridge head on a frozen backbone.

    Parameters
    ----------
    previous
        The decoder to start from.
    binned
        The featurized calibration block.
    split
        Its fit, validation, training and held-out blocks.
    config
        Settings.
    progress
        Show a tqdm bar.
    on_step
        Called at every validation check with the share of steps done and a status line
        (the desktop app's progress dialog).

    Returns
    -------
    StageAResult
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    torch.manual_seed(config.seed)
    encoder, session_ids, bins, new_parameters = new_session_encoder(previous, binned)
    switched_off = []
    if config.channel_check_sd is not None and encoder.config.modality == "lfp":
        training_lfp = bins.lfp[split.train.as_slice()]
        switched_off = silence_outlier_channels(
            encoder, training_lfp, config.channel_check_sd, recheck=True
        ).tolist()
    for parameter in encoder.parameters():
        parameter.requires_grad_(False)
    for parameter in new_parameters:
        parameter.requires_grad_(True)
    middle_alpha = config.alphas[len(config.alphas) // 2]
    decoder = Decoder(encoder, _temporary_head(encoder, bins, split.fit, config.head_init_bins, middle_alpha))
    fit_bins = bins.block(split.fit)
    loss_fn = KinematicsLoss(
        decoder, fit_bins.kinematics.std(axis=0), skip_bins=encoder.config.window_bins // 2
    )
    windows = WindowSet([fit_bins], encoder.config.window_bins, config.window_stride)
    sampler = WindowSampler(len(windows), min(config.batch_size, len(windows)), config.seed)
    # Only the session row learns; the temporary ridge head stays fixed (a head trained by
    # gradient at the row's rate overshoots, and the final head is refit in closed form anyway).
    optimizer = torch.optim.Adam(new_parameters, lr=config.lr)
    stopping = EarlyStopping(decoder, config.patience, config.steps, on_step)
    stopping.start(validation_r2(decoder, bins, split.val))
    # The backbone stays in eval mode: frozen weights, and no dropout noise on the session row's gradient.
    with tqdm(total=config.steps, desc="stage A (session row)", unit="step", disable=not progress) as bar:
        loop_started = time.perf_counter()
        for step in range(1, config.steps + 1):
            loss = loss_fn(windows.batch(sampler.indices(step - 1)))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            bar.update(1)
            out_of_time = time.perf_counter() - loop_started > config.max_seconds
            if step % config.eval_every == 0 or step == config.steps or out_of_time:
                val = validation_r2(decoder, bins, split.val)
                if stopping.check(step, float(loss.detach()), val, bar) or out_of_time:
                    break
    stopping.restore_best()
    for parameter in new_parameters:
        parameter.requires_grad_(False)
    latents = block_latents(encoder, bins)
    head, alpha, val_r2 = fit_ridge_head(latents, bins.kinematics, split, config.alphas)
    fitted = FittedDecoder(
        Decoder(encoder, head).eval(),
        bins.context,
        alpha,
        val_r2,
        latents,
        time.perf_counter() - started,
        stopping.history,
        time.process_time() - cpu_started,
    )
    return StageAResult(fitted, session_ids, bins, new_parameters, switched_off)
