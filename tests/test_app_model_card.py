"""The model card follows the profile selected in the chooser (pytest-qt, offscreen): nothing of the
previous profile stays, a profile without a model says so plainly, and an invalid one says that."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before Qt is imported

from app_fixtures import random_artifact, write_unique_profile

from apps.decoder.main_window import DecoderWindow
from rtbci.profile import load_profile


def test_the_model_card_follows_the_selected_profile(qtbot, tmp_path):
    with_model = write_unique_profile(tmp_path, random_artifact())
    text = with_model.read_text()
    without_model = tmp_path / "no-model.toml"
    without_model.write_text(text[: text.index("[model]")])
    invalid = tmp_path / "bad.toml"
    invalid.write_text('[rig]\nname = "x"\n')
    window = DecoderWindow([with_model, without_model, invalid], lower_priority=False)
    qtbot.addWidget(window)
    card = window.model_card.values
    chooser = window.controls.profile_box
    sha256 = load_profile(with_model).model.sha256

    chooser.setCurrentIndex(0)
    assert card["profile"].text() == str(with_model.resolve())
    assert card["sha256"].text() == sha256[:16] + "…" and card["sha256"].toolTip() == sha256
    assert card["held-out R²"].text() == "not recorded in the profile"

    chooser.setCurrentIndex(1)
    assert window.profile.path == without_model.resolve()
    assert card["profile"].text() == str(without_model.resolve())
    assert card["artifact"].text().startswith("NO MODEL")
    for field in ("sha256", "backend", "device", "window", "calibrated", "held-out R²"):
        assert card[field].text() == "–", field
    assert card["sha256"].toolTip() == ""

    chooser.setCurrentIndex(2)
    assert window.errors and "bad.toml" in window.errors[-1]
    assert card["profile"].text() == str(invalid.resolve()) and "invalid" in card["artifact"].text()
    assert card["rig"].text() == "–"

    chooser.setCurrentIndex(0)
    assert card["sha256"].toolTip() == sha256 and not card["artifact"].text().startswith("NO MODEL")
    window.close()


def test_the_profile_asked_for_is_the_one_selected_and_connected(qtbot, tmp_path):
    """`rtbci app --profile P` lists P first and the bundled profiles after it: P stays selected, so
    Connect & start runs P (it used to select the last profile listed)."""
    asked = write_unique_profile(tmp_path, random_artifact())
    others = [write_unique_profile(tmp_path, random_artifact()) for _ in range(2)]
    window = DecoderWindow([asked, *others], lower_priority=False)
    qtbot.addWidget(window)
    assert window.controls.profile_box.count() == 3
    assert window.controls.profile_box.currentData() == str(asked.resolve())
    assert window.profile.path == asked.resolve()
    window.controls.connect_requested.disconnect()  # no engine: only what it would run is looked at
    with qtbot.waitSignal(window.controls.connect_requested) as connect:
        window.controls.connect_button.click()
    assert connect.args == [str(asked.resolve())]
