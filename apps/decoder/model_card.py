"""The model card: what decodes, from which artifact, calibrated when, and how well it scored."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

from apps.decoder.labels import ElidedLabel
from rtbci.engine.process import EngineDescription
from rtbci.profile import Profile

__all__ = ["ModelCard"]

_FIELDS = (
    "profile",
    "rig",
    "artifact",
    "sha256",
    "backend",
    "device",
    "window",
    "bin width",
    "calibrated",
    "held-out R²",
    "output stream",
)


NOT_RUNNING = "– (shown once the engine runs)"


class ModelCard(QtWidgets.QGroupBox):
    """Profile, artifact hash, backend and device, window, bin width, calibration date and held-out R².

    It always describes the profile selected in the chooser: every field is rewritten when the
    selection changes, a profile without a ``[model]`` section says so, and an invalid one says that.
    A value too long for the column (a path) is elided in the middle and whole in its tooltip, so
    the card never widens the window's right column.
    """

    def __init__(self) -> None:
        super().__init__("Model")
        form = QtWidgets.QFormLayout(self)
        self.values: dict[str, QtWidgets.QLabel] = {}
        for field in _FIELDS:
            label = ElidedLabel("–")
            label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(f"{field}:", label)
            self.values[field] = label

    def _set(self, field: str, text: str, tooltip: str = "") -> None:
        self.values[field].setText(text)
        self.values[field].setToolTip(tooltip)

    def _clear(self, profile_path: Path, artifact: str) -> None:
        """Every field back to "–", with ``artifact`` saying why there is no model to describe."""
        for field in _FIELDS:
            self._set(field, "–")
        self._set("profile", str(profile_path))
        self._set("artifact", artifact)

    def show_invalid(self, profile_path: Path) -> None:
        """The selected profile could not be read (the error dialog says why)."""
        self._clear(profile_path, "– (the profile is invalid: see the error)")

    def show_profile(self, profile: Profile) -> None:
        """What the profile says, before the engine has started (nothing of a previous profile stays)."""
        model = profile.model
        self._clear(profile.path, "NO MODEL: this profile has no [model] section" if model is None else "")
        self._set("rig", f"{profile.rig.name} ({profile.rig.subject})")
        self._set("bin width", f"{profile.features.bin_ms:g} ms")
        self._set("output stream", profile.streams.output.name)
        if model is None:
            return
        self._set("artifact", model.artifact)
        self._set("sha256", model.sha256[:16] + "…", model.sha256)
        self._set("backend", model.backend)
        self._set("device", model.device)
        self._set("window", NOT_RUNNING)
        self._set("calibrated", model.calibrated or "not recorded in the profile")
        self._set(
            "held-out R²",
            "not recorded in the profile" if model.heldout_r2 is None else f"{model.heldout_r2:.3f}",
        )

    def show_engine(self, description: EngineDescription) -> None:
        """What the started engine actually runs (from the backend and the artifact's manifest)."""
        backend = description.backend
        window_bins = int(backend.get("window_bins", 0))
        sha = str(backend.get("sha256", ""))
        self._set("artifact", str(backend.get("artifact", "")))
        self._set("sha256", sha[:16] + "…", sha)
        self._set("backend", str(backend.get("backend", "")))
        self._set("device", str(backend.get("device", "")))
        self._set("window", f"{window_bins} bins ({window_bins * description.bin_ms / 1000.0:g} s)")
        self._set("bin width", f"{description.bin_ms:g} ms")
        self._set("calibrated", description.calibration_date or "not recorded")
        r2 = description.heldout_r2
        self._set("held-out R²", "not recorded" if r2 is None else f"{r2:.3f}")
        self._set("output stream", description.output_stream)
