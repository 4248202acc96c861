"""A new profile version pointing to the calibrated artifact, written atomically.

The profile file stays the stable name a rig runs (``rtbci run --profile P``).
Writing a new version:

1. renders the profile's own text with its ``[model]`` table (and the comment
   right above it, which described the old decoder) replaced; other comments and
   tables are kept; the result is validated as a profile;
2. refuses to write into the shipped profiles (:data:`rtbci.home.SHIPPED_PROFILES`):
   they are read-only templates;
3. refuses if the file changed on disk since calibration read it (someone's edit
   would be lost silently), unless forced;
4. archives the current file as ``<name>.v<N>.toml`` (a new file, never an existing one);
5. writes the new text to a temporary file beside it and ``os.replace``-s it into
   place: a reader sees the old file or the new one, never a part.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from calibrate.errors import ProfileWriteError
from rtbci.home import SHIPPED_PROFILES, is_shipped
from rtbci.profile import Profile, ProfileError, profile_from_dict, profile_toml

__all__ = ["ModelEntry", "ProfileVersion", "atomic_write_text", "render_profile", "write_profile_version"]

_TABLE_HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(#.*)?$")


@dataclass(frozen=True)
class ModelEntry:
    """The ``[model]`` table of the new version.

    Attributes
    ----------
    artifact
        Artifact folder, relative to the profile file where possible.
    sha256
        SHA-256 of its ``decoder.onnx``.
    backend, device, input
        As in :class:`rtbci.profile.ModelSpec`.
    calibrated
        ISO 8601 UTC time of the calibration.
    heldout_r2
        Mean held-out R² of the calibrated decoder.
    comment
        Written as ``#`` lines above the table (what was calibrated on what).
    """

    artifact: str
    sha256: str
    backend: str
    device: str
    input: str
    calibrated: str
    heldout_r2: float
    comment: str = ""

    def to_toml(self) -> str:
        """The table as TOML text (:func:`rtbci.profile.profile_toml`), below its comment."""
        table = {key: value for key, value in dataclasses.asdict(self).items() if key != "comment"}
        table["heldout_r2"] = float(self.heldout_r2)
        comment = "".join(f"# {line}".rstrip() + "\n" for line in self.comment.splitlines())
        return comment + profile_toml({"model": table})


@dataclass(frozen=True)
class ProfileVersion:
    """Where the new version went.

    Attributes
    ----------
    path
        The file holding the new version.
    archived
        The previous version's new name, when the profile was updated in place.
    """

    path: Path
    archived: Path | None


def render_profile(text: str, entry: ModelEntry) -> str:
    """The profile text with its ``[model]`` table replaced by ``entry`` (appended if it had none).

    The comment block above the old ``[model]`` header (up to the previous table's last
    setting) goes with it: it described the old decoder.
    """
    lines = text.splitlines(keepends=True)
    kept: list[str] = []
    inside_model = False
    for line in lines:
        header = _TABLE_HEADER.match(line)
        if header:
            inside_model = header.group(1).strip() == "model"
            if inside_model:
                while kept and (not kept[-1].strip() or kept[-1].lstrip().startswith("#")):
                    kept.pop()
        if not inside_model:
            kept.append(line)
    body = "".join(kept).rstrip("\n")
    return f"{body}\n\n{entry.to_toml()}" if body else entry.to_toml()


def _validate(text: str, path: Path, entry: ModelEntry) -> Profile:
    try:
        profile = profile_from_dict(tomllib.loads(text), path)
    except (tomllib.TOMLDecodeError, ProfileError) as error:
        raise ProfileWriteError(f"{path}: the new profile version does not validate: {error}") from None
    if profile.model is None or profile.model.sha256 != entry.sha256:
        raise ProfileWriteError(f"{path}: the new profile version lost its [model] table")
    return profile


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    On any failure the temporary file is removed and ``path`` is as it was.
    """
    handle = tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    )
    try:
        with handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def _archive_path(path: Path) -> Path:
    versions = [
        int(match.group(1))
        for sibling in path.parent.glob(f"{path.stem}.v*.toml")
        if (match := re.fullmatch(re.escape(path.stem) + r"\.v(\d+)\.toml", sibling.name))
    ]
    return path.with_name(f"{path.stem}.v{max(versions, default=0) + 1}.toml")


def relative_artifact(artifact_dir: Path, profile_path: Path) -> str:
    """The artifact path as the profile should record it: relative to the profile's folder when inside it."""
    artifact_dir, folder = artifact_dir.resolve(), profile_path.resolve().parent
    try:
        return artifact_dir.relative_to(folder).as_posix()
    except ValueError:
        return str(artifact_dir)


def write_profile_version(
    profile_path: Path,
    original_text: str,
    entry: ModelEntry,
    out_path: Path | None = None,
    force: bool = False,
    archive_existing: bool = False,
) -> ProfileVersion:
    """Write the profile with ``entry`` as its ``[model]``, as a new version.

    Parameters
    ----------
    profile_path
        The profile calibration started from.
    original_text
        Its text as calibration read it.
    entry
        The new ``[model]`` table (``artifact`` relative to ``out_path``'s folder, or absolute).
    out_path
        Write the new version to this file instead of updating ``profile_path`` in place.
    force
        Overwrite ``out_path`` if it exists; update ``profile_path`` even if it changed
        on disk since calibration read it.
    archive_existing
        An existing ``out_path`` is an earlier version of the same lab profile: archive it
        as ``<name>.v<N>.toml`` and replace it (instead of refusing without ``force``).

    Returns
    -------
    ProfileVersion

    Raises
    ------
    ProfileWriteError
        If the file is a shipped template, if writing would overwrite a file silently,
        or if the new version does not validate.
    """
    target = Path(out_path) if out_path is not None else Path(profile_path)
    if is_shipped(target):
        raise ProfileWriteError(
            f"{target}: the profiles in {SHIPPED_PROFILES} are read-only templates; calibrated "
            "versions go to the user data directory (RTBCI_HOME), or give --out-profile elsewhere"
        )
    text = render_profile(original_text, entry)
    _validate(text, target, entry)
    if out_path is None:
        current = target.read_text(encoding="utf-8")
        if current != original_text and not force:
            raise ProfileWriteError(
                f"{target}: changed on disk since calibration read it; not overwriting those changes "
                "(pass --force to replace them, or --out-profile to write the new version elsewhere)"
            )
        return _replace_archiving(target, current, text)
    if target.exists() and archive_existing:
        return _replace_archiving(target, target.read_text(encoding="utf-8"), text)
    if target.exists() and not force:
        raise ProfileWriteError(f"{target}: already exists; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, text)
    return ProfileVersion(target, None)


def _replace_archiving(target: Path, current: str, text: str) -> ProfileVersion:
    archived = _archive_path(target)
    with open(archived, "x", encoding="utf-8") as handle:  # "x": an existing version is never overwritten
        handle.write(current)
    atomic_write_text(target, text)
    return ProfileVersion(target, archived)
