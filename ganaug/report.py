"""The quality report on disk: numbers as JSON, pictures as PNG.

``write_report`` writes, into one folder:

* ``report.json``: the dict of :func:`ganaug.metrics.evaluate_generator`;
* ``samples.png``: one row of generated images per class;
* ``nearest.png``: one generated image per class (first row) above its nearest real
  training image in pixel space (second row), to spot a generator that copies;
* ``losses.png``: discriminator and generator losses per step, with a moving average.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._io import atomic_write_bytes
from .data import as_image_data
from .gan import ConditionalDCGAN
from .grid import grid_image, grid_scale, save_png
from .metrics import evaluate_generator

__all__ = ["REPORT_FILE", "REPORT_MARKERS", "plot_losses", "write_report"]

REPORT_FILE = "report.json"
# The marker of a report folder: force replaces only a folder that holds ganaug's report.json.
REPORT_MARKERS = (REPORT_FILE,)


def plot_losses(history: dict[str, list[float]], path: str | os.PathLike, *, window: int = 50) -> Path:
    """Plot per-step ``d_loss`` and ``g_loss`` (thin) with a moving average (thick) to a PNG."""
    import io

    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    for key, colour in (("d_loss", "tab:blue"), ("g_loss", "tab:orange")):
        values = np.asarray(history.get(key, []), dtype=float)
        if len(values) == 0:
            continue
        steps = np.arange(1, len(values) + 1)
        ax.plot(steps, values, color=colour, alpha=0.25, linewidth=0.8)
        w = max(1, min(window, len(values) // 5 or 1))
        smooth = np.convolve(values, np.ones(w) / w, mode="valid")
        ax.plot(steps[w - 1 :], smooth, color=colour, linewidth=2, label=f"{key} (mean of {w})")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    if ax.has_data():
        ax.legend(loc="upper right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def _nearest_pairs(gan: ConditionalDCGAN, reference: torch.Tensor, random_state: int) -> torch.Tensor:
    fakes, _ = gan.sample({c: 1 for c in gan.classes_.tolist()}, random_state=random_state, output="tensor")
    d_idx = []
    flat_ref = reference.flatten(1)
    for f in fakes.flatten(1):
        d_idx.append(int(torch.cdist(f[None].double(), flat_ref.double()).argmin()))
    return torch.cat([fakes, reference[d_idx]])  # first row fakes, second row their neighbours


def write_report(
    gan: ConditionalDCGAN,
    X: Any,
    y: Any,
    out_dir: str | os.PathLike,
    report: dict[str, Any] | None = None,
    *,
    train_X: Any = None,
    train_y: Any = None,
    random_state: int = 0,
    **evaluate_kwargs: Any,
) -> dict[str, Path]:
    """Write the report folder for ``gan`` measured against real ``(X, y)``.

    ``report`` reuses an already computed :func:`evaluate_generator` result; otherwise it
    is computed here (``train_X``/``train_y`` and ``evaluate_kwargs`` are passed on).
    Returns the paths written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if report is None:
        report = evaluate_generator(gan, X, y, train_X=train_X, train_y=train_y, random_state=random_state,
                                    **evaluate_kwargs)
    paths = {"report": out / REPORT_FILE, "samples": out / "samples.png", "nearest": out / "nearest.png",
             "losses": out / "losses.png"}
    atomic_write_bytes(paths["report"], json.dumps(report, indent=2).encode("utf-8"))
    scale = grid_scale(gan.image_shape_)
    gan.save_grid(paths["samples"], n_per_class=10, random_state=random_state, scale=scale)
    reference = as_image_data(X if train_X is None else train_X, y if train_X is None else train_y,
                              image_shape=evaluate_kwargs.get("image_shape"),
                              value_range=evaluate_kwargs.get("value_range")).images
    pairs = _nearest_pairs(gan, reference, random_state)
    save_png(grid_image(pairs, n_per_row=gan.n_classes_, scale=scale), paths["nearest"])
    plot_losses(gan.history_, paths["losses"])
    return paths
