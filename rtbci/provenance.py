"""What a run runs: the profile file and its decoder artifact, in one line.

``rtbci run``, ``rtbci latency``, ``rtbci demo`` and the app print :func:`describe_decoder`
in their first lines and in their summaries, so that a changed decoder never goes unnoticed.
"""

from __future__ import annotations

from pathlib import Path

from rtbci.home import is_shipped
from rtbci.profile import Profile, ProfileError
from rtbci.runtime.manifest import read_manifest

__all__ = ["describe_decoder"]

_SHORT_HASH = 12


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when inside it, else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def describe_decoder(profile: Profile) -> str:
    """One line naming the profile file, its decoder artifact and where that decoder came from.

    Parameters
    ----------
    profile
        A loaded profile with a ``[model]`` section.

    Returns
    -------
    str
        For example ``profile profiles/demo.toml: decoder profiles/models/demo (sha256
        e0423dea809f), bundled``; a calibrated decoder ends ``calibrated on <session> at <time>``
        instead, and any other decoder ``not calibrated (session <session>)``.

    Raises
    ------
    ProfileError
        If the profile has no ``[model]`` section.
    ArtifactError
        If the artifact's manifest cannot be read.
    """
    if profile.model is None or profile.path is None:
        raise ProfileError(f"{profile.path}: this profile has no [model] section")
    artifact = profile.artifact_dir()
    session = read_manifest(artifact).session_id
    if profile.model.calibrated:
        origin = f"calibrated on {session} at {profile.model.calibrated}"
    elif is_shipped(artifact):
        origin = "bundled"
    else:
        origin = f"not calibrated (session {session})"
    return (
        f"profile {_shown(profile.path)}: decoder {_shown(artifact)} "
        f"(sha256 {profile.model.sha256[:_SHORT_HASH]}), {origin}"
    )
