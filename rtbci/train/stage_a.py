"""Stage A of calibration (the default, seconds): a new session row and a new head on a frozen backbone.

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
   on the validation block or at a time budget (:func:`rtbci.train.loop.run_loop`).
4. Fit the ridge head in closed form on the latents of the training part.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from rtbci.models.decoder import Decoder
from rtbci.models.encoder import Encoder
from rtbci.models.heads import RidgeHead
from rtbci.signal import BinnedSession
from rtbci.train.channel_check import DEFAULT_THRESHOLD_SD, silence_outlier_channels
from rtbci.train.data import SessionBins, WindowSet
from rtbci.train.heldout import add_unseen_session, subject_session_rows
from rtbci.train.loop import LoopConfig, StepReport, run_loop
from rtbci.train.objectives import KinematicsLoss
from rtbci.train.session_fit import (
    DEFAULT_ALPHAS,
    FittedDecoder,
    block_latents,
    fit_ridge_head,
    validation_r2,
)
from rtbci.train.splits import BinBlock, FitBlocks

__all__ = ["STAGE_A_LOOP", "StageAConfig", "StageAResult", "new_session_encoder", "run_stage_a"]

# Stage A's steps on the session row: Adam at a constant 1e-2, no clipping, early stopping
# on the validation block, and a budget of seconds on a 2-core machine.
STAGE_A_LOOP = LoopConfig(
    steps=40,
    batch_size=8,
    lr=1e-2,
    weight_decay=0.0,
    schedule="constant",
    grad_clip=None,
    eval_every=10,
    checkpoint_every=0,
    patience=2,
    max_seconds=5.0,
)


@dataclass(frozen=True)
class StageAConfig:
    """Settings of Stage A.

    Attributes
    ----------
    loop
        The gradient steps on the session row (``lr`` is the row's rate).
    window_stride
        Bins between training window starts.
    head_init_bins
        The temporary head starts as a ridge fit on this many bins at the end of the fit block.
    alphas
        Candidate ridge penalties of the final head.
    channel_check_sd
        Switch off LFP channels whose mean z-score on the training part is beyond
        this in any feature, and switch on again those within it (None: no check;
        the previous decoder's switched-off channels stay off).
    """

    loop: LoopConfig = STAGE_A_LOOP
    window_stride: int = 5
    head_init_bins: int = 1500
    alphas: tuple[float, ...] = DEFAULT_ALPHAS
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


def new_session_encoder(
    encoder: Encoder, known: Sequence[str], binned: BinnedSession
) -> tuple[list[str], SessionBins, list[torch.nn.Parameter]]:
    """Give ``encoder`` (its normalisation unchanged) a row for the block's session.

    The new row starts as the mean of the rows of the same subject's sessions
    (:func:`rtbci.train.heldout.add_unseen_session`), the best guess before it is trained.

    Parameters
    ----------
    encoder
        The previous decoder's encoder; its table grows by one row.
    known
        Its session table's ids.
    binned
        The featurized block.

    Returns
    -------
    session_ids, bins, new_parameters
        The session table ids (the new session last), the block as model inputs
        with the new row, and the new row's parameters.
    """
    session_ids = [*known, binned.session_id]
    if binned.session_id in known:
        # A re-calibration of a known session still gets a row of its own: the old row stays as it was.
        session_ids[-1] = f"{binned.session_id}#{len(known)}"
    row, new_parameters = add_unseen_session(encoder, subject_session_rows(known, binned.subject))
    return session_ids, SessionBins.from_binned(binned, row), new_parameters


def _temporary_head(
    encoder: Encoder, bins: SessionBins, fit: BinBlock, n_bins: int, alpha: float
) -> RidgeHead:
    block = BinBlock(max(0, fit.stop - n_bins), fit.stop)
    latents = block_latents(encoder, bins, block)
    return RidgeHead(encoder.config.d_model, bins.kinematics.shape[1]).fit(
        latents, bins.kinematics[block.as_slice()], alpha
    )


def run_stage_a(
    encoder: Encoder,
    known: Sequence[str],
    binned: BinnedSession,
    blocks: FitBlocks,
    config: StageAConfig,
    progress: bool = True,
    on_step: Callable[[StepReport], None] | None = None,
) -> StageAResult:
    """Fit the new session's row and ridge head on a frozen backbone.

    Parameters
    ----------
    encoder
        The previous decoder's encoder (its normalisation is kept); it gets the new row.
    known
        The session ids of its table.
    binned
        The featurized calibration block.
    blocks
        Its fit, validation and training blocks.
    config
        Settings.
    progress
        Show a tqdm bar.
    on_step
        Called after every step (:class:`rtbci.train.loop.StepReport`).

    Returns
    -------
    StageAResult
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    torch.manual_seed(config.loop.seed)
    encoder.eval()
    session_ids, bins, new_parameters = new_session_encoder(encoder, known, binned)
    switched_off = []
    if config.channel_check_sd is not None and encoder.config.modality == "lfp":
        training_lfp = bins.lfp[blocks.train.as_slice()]
        switched_off = silence_outlier_channels(
            encoder, training_lfp, config.channel_check_sd, recheck=True
        ).tolist()
    for parameter in encoder.parameters():
        parameter.requires_grad_(False)
    for parameter in new_parameters:
        parameter.requires_grad_(True)
    middle_alpha = config.alphas[len(config.alphas) // 2]
    decoder = Decoder(
        encoder, _temporary_head(encoder, bins, blocks.fit, config.head_init_bins, middle_alpha)
    )
    fit_bins = bins.block(blocks.fit)
    window = encoder.config.window_bins
    # Only the session row learns; the temporary ridge head stays fixed (a head trained by
    # gradient at the row's rate overshoots, and the final head is refit in closed form anyway).
    # The backbone stays in eval mode: frozen weights, and no dropout noise on the row's gradient.
    result = run_loop(
        KinematicsLoss(decoder, fit_bins.kinematics.std(axis=0), context_bins=window // 2),
        WindowSet([fit_bins], window, config.window_stride),
        config.loop,
        desc="stage A (session row)",
        validate=lambda: validation_r2(decoder, bins, blocks.val),
        on_step=on_step,
        parameters=[{"params": new_parameters, "lr": config.loop.lr, "weight_decay": 0.0}],
        train_mode=False,
        progress=progress,
    )
    for parameter in new_parameters:
        parameter.requires_grad_(False)
    latents = block_latents(encoder, bins)
    head, alpha, val_r2 = fit_ridge_head(latents, bins.kinematics, blocks, config.alphas)
    fitted = FittedDecoder(
        Decoder(encoder, head).eval(),
        bins.context,
        alpha,
        val_r2,
        latents,
        time.perf_counter() - started,
        result.history,
        time.process_time() - cpu_started,
    )
    return StageAResult(fitted, session_ids, bins, new_parameters, switched_off)
