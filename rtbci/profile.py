"""Rig and subject profiles: a TOML file in, validated frozen dataclasses out.

A profile says which LSL streams to read and write, how the channels are laid
out, how bins and features are computed, which decoder artifact to run, and how
the output is made safe. Validation is done by pydantic on dataclasses, so a bad
file fails on load with the file, the field and what was expected.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import pydantic
from pydantic import ConfigDict, Field, Strict, model_validator
from pydantic.dataclasses import dataclass

from rtbci.errors import UserError
from rtbci.models.config import check_lfp_conv_bins

__all__ = [
    "CursorTaskConfig",
    "EngineConfig",
    "FeatureConfig",
    "ModelSpec",
    "OutputConfig",
    "Profile",
    "ProfileError",
    "Region",
    "RigInfo",
    "StreamSpec",
    "Streams",
    "load_profile",
    "profile_toml",
    "write_profile",
]

# Unknown keys are errors: a typo must not silently fall back to a default.
_STRICT = ConfigDict(extra="forbid", frozen=True)

# Scalars are not coerced across types ("20" is not 20); an int may stand for
# a float, as TOML writes 1000 for 1000.0.
Str = Annotated[str, Strict()]
Float = Annotated[float, Strict()]
Int = Annotated[int, Strict()]
Bool = Annotated[bool, Strict()]
PositiveFloat = Annotated[float, Strict(), Field(gt=0)]
NonNegativeFloat = Annotated[float, Strict(), Field(ge=0)]
PositiveInt = Annotated[int, Strict(), Field(gt=0)]


class ProfileError(UserError, ValueError):
    """A profile file is missing, unreadable or invalid (the CLI prints it as one error, exit code 2)."""


@dataclass(config=_STRICT)
class RigInfo:
    """Who and what this profile is for."""

    name: Str
    subject: Str
    description: Str = ""


@dataclass(config=_STRICT)
class StreamSpec:
    """One LSL stream, matched by any of name, type and source_id that are set.

    Attributes
    ----------
    name, type, source_id
        LSL stream properties to resolve by; empty strings are not matched on.
    channels
        Channel count the stream must have.
    rate
        Nominal sampling rate in Hz; 0 for an irregular stream.
    """

    channels: PositiveInt
    rate: NonNegativeFloat
    name: Str = ""
    type: Str = ""
    source_id: Str = ""

    @model_validator(mode="after")
    def _needs_an_identifier(self) -> StreamSpec:
        if not (self.name or self.type or self.source_id):
            raise ValueError("set at least one of name, type or source_id")
        return self


@dataclass(config=_STRICT)
class Streams:
    """The streams of a rig: inputs, optional behavior, and the decoder output."""

    spikes: StreamSpec
    lfp: StreamSpec
    output: StreamSpec
    behavior: StreamSpec | None = None

    @model_validator(mode="after")
    def _electrodes_agree(self) -> Streams:
        if self.spikes.channels != self.lfp.channels:
            raise ValueError(
                f"spikes.channels ({self.spikes.channels}) and lfp.channels "
                f"({self.lfp.channels}) must match: both are indexed by electrode"
            )
        return self


@dataclass(config=_STRICT)
class Region:
    """A contiguous block of electrodes (an array or a cortical area).

    Regions set the spatial scale of tokens and masking when
    ``FeatureConfig.spatial_scale == "region"`` (BaRISTA).
    """

    name: Str
    first_channel: Annotated[int, Strict(), Field(ge=0)]
    count: PositiveInt


@dataclass(config=_STRICT)
class FeatureConfig:
    """Binning and LFP feature settings, shared by training and serving.

    Attributes
    ----------
    bin_ms
        Bin width in milliseconds.
    window_bins
        Attention window of the decoder, in bins.
    line_hz
        Mains frequency to notch (50 or 60), with ``line_harmonics`` harmonics.
    lmp_cutoff_hz
        Low-pass cutoff for the local motor potential.
    bands_hz
        Band-power bands as ``[low, high]`` pairs in Hz; bands above the
        Nyquist limit of the LFP stream are dropped.
    kinematics_lag_ms
        How far the kinematics lag the neural data when aligned for training.
    spatial_scale
        Token and masking scale: ``channel``, ``patch`` or ``region``.
    patch_channels
        Channels per token at ``patch`` scale (NDT2's K).
    lfp_conv_bins, lfp_conv_channels
        LFP encoders read each channel's features together with a causal
        convolution over its last ``lfp_conv_bins`` bins, with ``lfp_conv_channels``
        outputs (:class:`rtbci.models.tokenizer.CausalChannelConvolution`); 0 bins
        turns it off. Used when a model is trained; a trained model keeps its own.
    """

    bin_ms: PositiveFloat = 20.0
    window_bins: PositiveInt = 50
    line_hz: Literal[50.0, 60.0] = 60.0
    line_harmonics: Annotated[int, Strict(), Field(ge=0, le=8)] = 3
    lmp_cutoff_hz: PositiveFloat = 5.0
    bands_hz: tuple[tuple[PositiveFloat, PositiveFloat], ...] = (
        (8.0, 15.0),
        (15.0, 30.0),
        (30.0, 80.0),
        (80.0, 200.0),
    )
    kinematics_lag_ms: NonNegativeFloat = 100.0
    spatial_scale: Literal["channel", "patch", "region"] = "patch"
    patch_channels: PositiveInt = 32
    lfp_conv_bins: Annotated[int, Strict(), Field(ge=0)] = 10
    lfp_conv_channels: PositiveInt = 8

    @model_validator(mode="after")
    def _bands_are_ordered(self) -> FeatureConfig:
        for low, high in self.bands_hz:
            if not low < high:
                raise ValueError(f"band [{low}, {high}] must have low < high")
        return self

    @model_validator(mode="after")
    def _conv_fits_the_window(self) -> FeatureConfig:
        check_lfp_conv_bins(self.lfp_conv_bins, self.window_bins)
        return self


@dataclass(config=_STRICT)
class ModelSpec:
    """The decoder artifact and where it runs.

    Attributes
    ----------
    artifact
        Directory holding ``decoder.onnx`` and its manifest; relative paths are
        relative to the profile file.
    sha256
        Expected SHA-256 of ``decoder.onnx``; a mismatch refuses to load.
    backend
        ``onnxruntime`` (default, CPU), ``tensorrt`` (GPU) or ``torch``.
    input
        Which modality the decoder reads: ``lfp`` or ``spikes``.
    """

    artifact: Str
    sha256: Annotated[str, Strict(), Field(pattern=r"^[0-9a-f]{64}$")]
    backend: Literal["onnxruntime", "tensorrt", "torch"] = "onnxruntime"
    device: Str = "cpu"
    input: Literal["lfp", "spikes"] = "lfp"
    calibrated: Str = ""
    heldout_r2: Float | None = None


@dataclass(config=_STRICT)
class OutputConfig:
    """Output safety: clamp, smoothing and gain applied to decoded velocity.

    Attributes
    ----------
    kinematics
        Names of the decoded channels, in artifact order.
    units
        Units of the decoded channels.
    velocity_clamp
        Absolute limit on each velocity component after gain.
    smoothing_ms
        Time constant of a causal exponential smoother; 0 turns it off.
    gain
        Multiplier on the decoded velocity.
    arm_on_start
        Whether the dashboard arms the output as soon as its engine has started. ``False`` (the
        default, for a live rig): the output starts held (zero velocity, position held) until an
        operator arms it. The simulated demo rig may set ``True``.
    """

    kinematics: tuple[Str, ...] = ("vel_x", "vel_y")
    units: Str = "m/s"
    velocity_clamp: PositiveFloat = 1.0
    smoothing_ms: NonNegativeFloat = 60.0
    gain: Float = 1.0
    arm_on_start: Bool = False


@dataclass(config=_STRICT)
class EngineConfig:
    """Decode-loop policy.

    Attributes
    ----------
    late_deadline_ms
        How long after a bin's end to wait for a late stream before decoding
        with what is there.
    late_policy
        What stands in for a late stream's samples: ``hold`` the last bin or
        ``zeros``.
    resolve_timeout_s
        How long to look for each input stream at start.
    max_buflen_s
        LSL inlet buffer; small, because stale data is worse than none.
    """

    late_deadline_ms: NonNegativeFloat = 10.0
    late_policy: Literal["hold", "zeros"] = "hold"
    resolve_timeout_s: PositiveFloat = 5.0
    max_buflen_s: PositiveInt = 2


@dataclass(config=_STRICT)
class CursorTaskConfig:
    """The cursor task that ``rtbci task`` runs on the decoded velocity (``[task]``).

    Lengths are in the output's position unit: the velocity unit of ``[output]`` times seconds
    (metres for ``m/s``). The workspace is the square ``[-workspace_half_width, workspace_half_width]²``
    around the centre.

    Attributes
    ----------
    targets
        ``center_out``: every trial starts with the cursor at the centre and shows one of
        ``n_targets`` targets evenly spaced on a circle of ``center_out_radius``, each once per block of
        ``n_targets`` trials in a shuffled order. ``random``: the cursor stays where the last trial left
        it and the target is drawn uniformly in the workspace, at least ``min_distance`` away.
    n_targets
        Peripheral targets of the centre-out task.
    workspace_half_width
        Half width of the square the cursor is kept in.
    center_out_radius
        Distance of the centre-out targets from the centre.
    target_radius
        Radius of a target's acceptance circle (its width W = 2 × radius is what Fitts's law reads).
    min_distance
        Shortest distance from the cursor to a random target.
    hold_ms
        Time the cursor must stay in the target; leaving it starts the hold again.
    timeout_s
        A trial not acquired this long after its target appears ends in a timeout.
    inter_trial_ms
        Pause between trials, with no target shown and the cursor still.
    assist
        Share of the cursor velocity that is the ideal velocity (straight to the target at
        ``assist_speed``) instead of the decoded one: 0 is pure brain control, 1 moves the cursor to
        the target on its own (cue calibration).
    assist_speed
        Speed of the ideal velocity, in position units per second.
    gain
        The cursor moves at the decoded velocity times this: the cursor gain a lab tunes per
        decoder in closed loop (a regression's output is shrunk toward zero, by how much depends
        on the decoder). The task stream's decoded columns keep the decoder's own velocity.
    seed
        Seed of the target order.
    """

    targets: Literal["center_out", "random"] = "center_out"
    n_targets: PositiveInt = 8
    workspace_half_width: PositiveFloat = 0.12
    center_out_radius: PositiveFloat = 0.08
    target_radius: PositiveFloat = 0.015
    min_distance: PositiveFloat = 0.05
    hold_ms: NonNegativeFloat = 500.0
    timeout_s: PositiveFloat = 10.0
    inter_trial_ms: NonNegativeFloat = 300.0
    assist: Annotated[float, Strict(), Field(ge=0, le=1)] = 0.0
    assist_speed: PositiveFloat = 0.15
    gain: PositiveFloat = 1.0
    seed: Int = 0

    @model_validator(mode="after")
    def _targets_fit(self) -> CursorTaskConfig:
        if self.center_out_radius + self.target_radius > self.workspace_half_width:
            raise ValueError(
                f"center_out_radius + target_radius ({self.center_out_radius + self.target_radius:g}) "
                f"must fit in workspace_half_width ({self.workspace_half_width:g})"
            )
        if self.target_radius >= self.center_out_radius:
            raise ValueError(
                f"target_radius ({self.target_radius:g}) must be < center_out_radius "
                f"({self.center_out_radius:g}), or a centre-out trial starts inside its target"
            )
        if not self.target_radius < self.min_distance <= self.workspace_half_width - self.target_radius:
            raise ValueError(
                f"min_distance ({self.min_distance:g}) must be > target_radius ({self.target_radius:g}) "
                "and <= workspace_half_width - target_radius "
                f"({self.workspace_half_width - self.target_radius:g})"
            )
        if self.hold_ms / 1000.0 >= self.timeout_s:
            raise ValueError(
                f"hold_ms ({self.hold_ms:g}) must be shorter than timeout_s ({self.timeout_s:g})"
            )
        return self


@dataclass(config=_STRICT)
class Profile:
    """A validated rig/subject profile. Build it with :func:`load_profile`."""

    rig: RigInfo
    streams: Streams
    features: FeatureConfig = dataclasses.field(default_factory=FeatureConfig)
    output: OutputConfig = dataclasses.field(default_factory=OutputConfig)
    engine: EngineConfig = dataclasses.field(default_factory=EngineConfig)
    task: CursorTaskConfig = dataclasses.field(default_factory=CursorTaskConfig)
    regions: tuple[Region, ...] = ()
    model: ModelSpec | None = None
    path: Path | None = None

    @model_validator(mode="after")
    def _regions_fit(self) -> Profile:
        n_channels = self.streams.spikes.channels
        owner: dict[int, str] = {}
        for region in self.regions:
            last = region.first_channel + region.count - 1
            if last >= n_channels:
                raise ValueError(
                    f"region {region.name!r} ends at channel {last}, but the rig has {n_channels} channels"
                )
            for channel in range(region.first_channel, last + 1):
                if channel in owner:
                    raise ValueError(
                        f"channel {channel} is in both region {owner[channel]!r} and region {region.name!r}"
                    )
                owner[channel] = region.name
        if self.features.spatial_scale == "region" and len(owner) != n_channels:
            raise ValueError("spatial_scale 'region' needs [[regions]] that cover every channel")
        return self

    @property
    def bin_s(self) -> float:
        """Bin width in seconds."""
        return self.features.bin_ms / 1000.0

    def channel_regions(self) -> list[str]:
        """Region name of every electrode ('' where no region is set)."""
        names = [""] * self.streams.spikes.channels
        for region in self.regions:
            for channel in range(region.first_channel, region.first_channel + region.count):
                names[channel] = region.name
        return names

    def artifact_dir(self) -> Path:
        """Absolute path of the model artifact directory.

        Raises
        ------
        ProfileError
            If the profile has no ``[model]`` section.
        """
        if self.model is None:
            raise ProfileError(f"{self.path}: this profile has no [model] section")
        artifact = Path(self.model.artifact)
        if not artifact.is_absolute() and self.path is not None:
            artifact = self.path.parent / artifact
        return artifact.resolve()


def _format_error(path: Path, error: pydantic.ValidationError) -> str:
    lines = [f"{path}: invalid profile"]
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "(top level)"
        got = item.get("input")
        got_text = "" if isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"  field '{field}': {item['msg']}{got_text}")
    return "\n".join(lines)


def profile_from_dict(data: dict, path: Path) -> Profile:
    """Validate a parsed TOML mapping as a profile.

    Parameters
    ----------
    data
        The mapping, as ``tomllib`` returns it.
    path
        The file it came from; used in errors and to resolve relative paths.

    Returns
    -------
    Profile

    Raises
    ------
    ProfileError
        With one line per invalid field.
    """
    if "path" in data:
        raise ProfileError(f"{path}: field 'path' is set by the loader, not the file")
    try:
        return Profile(**data, path=path.resolve())
    except pydantic.ValidationError as error:
        raise ProfileError(_format_error(path, error)) from None
    except TypeError as error:  # a section that is a value instead of a table
        raise ProfileError(f"{path}: invalid profile: {error}") from None


def load_profile(path: str | Path) -> Profile:
    """Read and validate a TOML profile.

    Parameters
    ----------
    path
        The ``.toml`` file.

    Returns
    -------
    Profile

    Raises
    ------
    ProfileError
        If the file is missing, is not valid TOML, or fails validation; the
        message names the file and every bad field.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProfileError(f"{path}: no such profile file") from None
    except tomllib.TOMLDecodeError as error:
        raise ProfileError(f"{path}: not valid TOML: {error}") from None
    return profile_from_dict(data, path)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return repr(value)


def _toml_lines(data: Mapping[str, object], prefix: str = "") -> list[str]:
    is_table_array = [isinstance(v, list) and bool(v) and isinstance(v[0], dict) for v in data.values()]
    lines = [
        f"{key} = {_toml_value(value)}"
        for (key, value), table_array in zip(data.items(), is_table_array, strict=True)
        if not isinstance(value, dict) and not table_array
    ]
    for (key, value), table_array in zip(data.items(), is_table_array, strict=True):
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            lines += ["", f"[{name}]", *_toml_lines(value, f"{name}.")]
        elif table_array:
            for item in value:
                lines += ["", f"[[{name}]]", *_toml_lines(item, f"{name}.")]
    return lines


def profile_toml(data: Mapping[str, object]) -> str:
    """A profile mapping (as ``tomllib`` returns it) as TOML text; the one profile writer.

    Values come first, then each table (``[name]``) and array of tables (``[[name]]``)
    in order; strings, booleans, integers, floats and lists of them are written as
    TOML reads them back (``tomllib.loads(profile_toml(data)) == data``). Comments
    are not kept: :mod:`calibrate.profile_version` keeps a file's own text and
    writes only its new ``[model]`` table with this.

    Parameters
    ----------
    data
        Keys to values and nested mappings.

    Returns
    -------
    str
        The TOML text, ending in one newline.
    """
    return "\n".join(_toml_lines(data)).lstrip() + "\n"


def write_profile(data: Mapping[str, object], path: Path) -> Path:
    """Write a profile mapping (as ``tomllib`` returns it) to ``path`` as TOML (:func:`profile_toml`).

    Returns
    -------
    Path
        ``path``.
    """
    path.write_text(profile_toml(data), encoding="utf-8")
    return path
