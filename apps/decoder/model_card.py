"""The model card: what decodes, from which artifact, calibrated when, and how well it scored."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

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


class ModelCard(QtWidgets.QGroupBox):
    """Profile, artifact hash, backend and device, window, bin width, calibration date and held-out R²."""

    def __init__(self) -> None:
        super().__init__("Model")
        form = QtWidgets.QFormLayout(self)
        self.values: dict[str, QtWidgets.QLabel] = {}
        for field in _FIELDS:
            label = QtWidgets.QLabel("–")
            label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(f"{field}:", label)
            self.values[field] = label

    def show_profile(self, profile: Profile) -> None:
        """What the profile says, before the engine has started."""
        self.values["profile"].setText(str(profile.path))
        self.values["rig"].setText(f"{profile.rig.name} ({profile.rig.subject})")
        self.values["bin width"].setText(f"{profile.features.bin_ms:g} ms")
        if profile.model is not None:
            self.values["artifact"].setText(profile.model.artifact)
            self.values["sha256"].setText(profile.model.sha256[:16] + "…")
            self.values["sha256"].setToolTip(profile.model.sha256)
            self.values["backend"].setText(profile.model.backend)
            self.values["device"].setText(profile.model.device)

    def show_engine(self, description: EngineDescription) -> None:
        """What the started engine actually runs (from the backend and the artifact's manifest)."""
        backend = description.backend
        window_bins = int(backend.get("window_bins", 0))
        sha = str(backend.get("sha256", ""))
        self.values["artifact"].setText(str(backend.get("artifact", "")))
        self.values["sha256"].setText(sha[:16] + "…")
        self.values["sha256"].setToolTip(sha)
        self.values["backend"].setText(str(backend.get("backend", "")))
        self.values["device"].setText(str(backend.get("device", "")))
        self.values["window"].setText(f"{window_bins} bins ({window_bins * description.bin_ms / 1000.0:g} s)")
        self.values["bin width"].setText(f"{description.bin_ms:g} ms")
        self.values["calibrated"].setText(description.calibration_date or "not recorded")
        r2 = description.heldout_r2
        self.values["held-out R²"].setText("not recorded" if r2 is None else f"{r2:.3f}")
        self.values["output stream"].setText(description.output_stream)
