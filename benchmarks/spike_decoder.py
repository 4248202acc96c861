"""The closed-loop benchmark's spike decoder: the MAE spike teacher plus a head, trained once and cached.

Nothing bundled decodes spikes (the demo artifact is the distilled LFP student), so the spike
decoder is trained here by the pipeline's own stages (:func:`rtbci.train.pipeline.train_teacher`,
:func:`~rtbci.train.pipeline.train_head`, :func:`~rtbci.train.pipeline.export_decoder`) on simulated
sessions of the profile's subject, and exported as a streaming artifact that the engine serves like
any other. Training takes minutes, so the artifact is cached in the user cache directory
(platformdirs ``user_cache_dir("rtbci")``), keyed by a hash of everything that shapes it: the
plan, the training settings and the profile's ``[features]``; a later run with the same key loads it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from rtbci.profile import Profile
from rtbci.signal import featurize
from rtbci.sim import SimConfig, simulate_session
from rtbci.train.ddp import DistributedContext
from rtbci.train.finetune import FinetuneConfig
from rtbci.train.loop import LoopConfig
from rtbci.train.pipeline import PipelineConfig, export_decoder, train_head, train_teacher
from rtbci.train.recipes import RECIPES

__all__ = ["SpikeDecoderPlan", "cache_root", "spike_decoder"]


@dataclass(frozen=True)
class SpikeDecoderPlan:
    """How the spike decoder is trained.

    Attributes
    ----------
    sessions
        Simulated sessions (days) ``0 .. sessions - 1`` of the profile's subject it trains on; the
        benchmark scores later days only.
    minutes
        Minutes of each session.
    teacher_steps
        MAE pretraining steps (the ``demo`` recipe's teacher settings otherwise: its rate, batch and
        one context row per subject). The recipe's comment: the teacher's latents reach a held-out
        velocity R² of 0.47 after 2000 steps at 6e-3.
    finetune_steps
        Supervised fine-tuning steps of teacher and head after the ridge fit (0: ridge head only).
    seed
        Simulator and training seed.
    """

    sessions: int = 8
    minutes: float = 5.0
    teacher_steps: int = 3000
    finetune_steps: int = 1000
    seed: int = 0

    def pipeline(self) -> PipelineConfig:
        """The ``demo`` recipe (its split, teacher and fine-tuning settings) with this plan's steps."""
        demo = RECIPES["demo"]
        teacher_loop = LoopConfig.in_memory(self.teacher_steps, demo.teacher.loop.lr, 16, self.seed)
        finetune_loop = LoopConfig.in_memory(self.finetune_steps, FinetuneConfig().loop.lr, 16, self.seed)
        return dataclasses.replace(
            demo,
            teacher=dataclasses.replace(demo.teacher, loop=teacher_loop),
            finetune=dataclasses.replace(demo.finetune, loop=finetune_loop),
        )


def cache_root() -> Path:
    """Where the trained spike decoders are kept: ``<user cache>/rtbci/closed-loop``."""
    return Path(platformdirs.user_cache_dir("rtbci")) / "closed-loop"


def _key(plan: SpikeDecoderPlan, profile: Profile) -> str:
    described = {
        "plan": dataclasses.asdict(plan),
        "pipeline": repr(plan.pipeline()),
        "features": dataclasses.asdict(profile.features),
        "subject": profile.rig.subject,
        "kinematics": list(profile.output.kinematics),
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()[:16]


def spike_decoder(plan: SpikeDecoderPlan, profile: Profile, progress: bool = True) -> tuple[Path, bool]:
    """The spike decoder's artifact folder, trained now unless the cache has it.

    Parameters
    ----------
    plan
        Training data and steps.
    profile
        The rig profile (subject ``sim-S<k>``, ``[features]``, kinematics).
    progress
        Show progress bars while training.

    Returns
    -------
    artifact_dir, cached
        The artifact (``decoder.onnx``, ``decoder.pt``, ``manifest.json``) and whether it came
        from the cache.
    """
    artifact_dir = cache_root() / f"spike-decoder-{_key(plan, profile)}"
    if (artifact_dir / "manifest.json").is_file():
        return artifact_dir, True
    subject = int(profile.rig.subject.removeprefix("sim-S"))
    binned = [
        featurize(
            simulate_session(SimConfig(), subject, day, plan.minutes, plan.seed), profile, progress=progress
        )
        for day in range(plan.sessions)
    ]
    config = plan.pipeline()
    with tempfile.TemporaryDirectory(prefix="rtbci-spike-decoder-") as scratch:
        work = Path(scratch)
        _, teacher_path = train_teacher(binned, profile, config, DistributedContext.single(), work)
        _, decoder_path = train_head(binned, profile, config, teacher_path, work)
        # Export into a scratch folder first: a half-written artifact is never found in the cache.
        export_decoder(decoder_path, work / "artifact", binned[-1].session_id)
        artifact_dir.parent.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(prefix=f"{artifact_dir.name}-", dir=artifact_dir.parent))
        shutil.copytree(work / "artifact", staged, dirs_exist_ok=True)
        staged.rename(artifact_dir)
    return artifact_dir, False
