"""The calibration report: a PNG of predicted against actual velocity on the held-out block, and JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: calibration runs headless and from the app's worker thread
import matplotlib.pyplot as plt

from calibrate.scoring import CALIBRATED, PREVIOUS, RIDGE_RAW, HeldoutScores

__all__ = ["format_scores", "write_json", "write_plot"]

_STYLE = {
    CALIBRATED: {"color": "tab:blue", "linewidth": 1.2, "label": "calibrated"},
    PREVIOUS: {"color": "tab:gray", "linewidth": 0.9, "linestyle": "--", "label": "previous decoder"},
    RIDGE_RAW: {"color": "tab:orange", "linewidth": 0.8, "alpha": 0.8, "label": "ridge on raw features"},
}


def write_plot(scores: HeldoutScores, path: str | Path, units: str, title: str) -> Path:
    """Plot every decoder's prediction over the actual kinematics of the held-out block.

    Parameters
    ----------
    scores
        Held-out predictions.
    path
        PNG to write.
    units
        Units of the kinematics, for the y labels.
    title
        Figure title (e.g. the session id).
    """
    path = Path(path)
    n_axes = len(scores.kinematics_names)
    figure, axes = plt.subplots(n_axes, 1, figsize=(11, 2.6 * n_axes + 0.6), sharex=True, squeeze=False)
    seconds = scores.bin_ends - scores.bin_ends[0]
    for index, (axis, name) in enumerate(zip(axes[:, 0], scores.kinematics_names, strict=True)):
        axis.plot(seconds, scores.actual[:, index], color="black", linewidth=1.4, label="actual")
        for decoder, values in scores.predicted.items():
            r2 = scores.r2(decoder)[index]
            style = dict(_STYLE[decoder])
            style["label"] = f"{style['label']} (R² {r2:.2f})"
            axis.plot(seconds, values[:, index], **style)
        axis.set_ylabel(f"{name} ({units})")
        axis.legend(loc="upper right", fontsize=8, ncol=2)
        axis.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("time into the held-out block (s)")
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def write_json(report: dict[str, Any], path: str | Path) -> Path:
    """Write the report dict as indented JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return path


def format_scores(scores: HeldoutScores) -> str:
    """A plain-text table of held-out R² per axis and mean, one row per decoder."""
    columns = [*scores.kinematics_names, "mean"]
    lines = [f"{'':24s}" + "".join(f"{name:>9s}" for name in columns)]
    for decoder, row in scores.table().items():
        label = _STYLE[decoder]["label"]
        lines.append(f"{label:24s}" + "".join(f"{row[name]:9.3f}" for name in columns))
    return "\n".join(lines)
