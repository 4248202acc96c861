"""Convert recordings in other formats to a :class:`~rtbci.io.session.Session`.

One module per format; :func:`import_session` picks one by the file's extension.

Examples
--------
>>> session = import_session("recording.nev")            # + every .nsX beside it
>>> write_session("recording.h5", session)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rtbci.io.importers.common import ImportOptions, SessionImportError
from rtbci.io.importers.neo_formats import NEO_SUFFIXES, read_neo
from rtbci.io.importers.nwb import read_nwb
from rtbci.io.importers.xdf import XDF_SUFFIXES, read_xdf
from rtbci.io.session import Session

__all__ = ["SUPPORTED_SUFFIXES", "ImportOptions", "SessionImportError", "import_session"]

_READERS: dict[str, Callable[[Path, ImportOptions], Session]] = {
    ".nwb": read_nwb,
    **dict.fromkeys(XDF_SUFFIXES, read_xdf),
    **dict.fromkeys(NEO_SUFFIXES, read_neo),
}
SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(_READERS)


def import_session(path: str | Path, options: ImportOptions | None = None) -> Session:
    """Read a recording in any supported format.

    Parameters
    ----------
    path
        ``.nwb``; ``.xdf``/``.xdfz``; Blackrock ``.nev`` or ``.ns1``-``.ns6`` (the
        set sharing the base name is read together); Plexon ``.plx``; a
        Neuralynx ``.ncs`` (its folder is read).
    options
        Conversion settings; defaults to :class:`ImportOptions()`.

    Returns
    -------
    Session

    Raises
    ------
    SessionImportError
        If the file is missing, has an unsupported extension, or cannot be read;
        the message names the file and what went wrong.
    """
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise SessionImportError(
            f"{path}: unsupported extension {path.suffix or '(none)'!r}; "
            f"supported: {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if not path.is_file():
        raise SessionImportError(f"{path}: no such file")
    return reader(path, options or ImportOptions())
