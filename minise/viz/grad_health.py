"""Gradient health over training as a picture: gradient norm and update/weight ratio per parameter."""

import math
import os

from ..debug.grad_health import read_grad_health_csv
from ..io.atomic import atomic_path

__all__ = ["plot_grad_health", "grad_health_figure"]


def grad_health_figure(source, params=None, title=None):
    """The matplotlib Figure that :func:`plot_grad_health` saves (for notebooks and tests)."""
    from matplotlib import cm, colormaps, colors
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    records = read_grad_health_csv(source) if isinstance(source, (str, os.PathLike)) else list(source)
    if params is not None:
        wanted = [params] if isinstance(params, str) else list(params)
        records = [r for r in records if any(w in r.param for w in wanted)]
    if not records:
        raise ValueError("plot_grad_health: no records to plot" + (f" for params {params!r}" if params else ""))
    series = {}
    for r in records:
        series.setdefault(r.param, []).append(r)
    names = list(series)

    fig = Figure(figsize=(9, 7), constrained_layout=True)
    FigureCanvasAgg(fig)  # draw with Agg whatever backend pyplot uses
    ax_grad, ax_ratio = fig.subplots(2, 1, sharex=True)
    cmap = colormaps["viridis"]
    norm = colors.Normalize(vmin=0, vmax=max(1, len(names) - 1))
    for k, name in enumerate(names):
        rows = sorted(series[name], key=lambda r: r.step)
        colour = cmap(0.9 * norm(k))
        for ax, values in ((ax_grad, [r.grad_norm for r in rows]), (ax_ratio, [r.update_ratio for r in rows])):
            points = [(r.step, v) for r, v in zip(rows, values) if math.isfinite(v) and v > 0]
            if points:  # log axes: zeros and NaN (e.g. a zero-initialised bias) are left out
                ax.plot([p[0] for p in points], [p[1] for p in points], color=colour, linewidth=1, label=name)
    reference = ax_ratio.axhline(1e-3, color="#aa0000", linestyle="--", linewidth=1, label="1e-3 (rule of thumb)")
    for ax in (ax_grad, ax_ratio):
        ax.set_yscale("log")
        ax.grid(True, which="major", alpha=0.3)
    ax_grad.set_title("Gradient norm per parameter")
    ax_grad.set_ylabel("||grad||_2 (log scale)")
    ax_ratio.set_title("Update / weight ratio per parameter")
    ax_ratio.set_ylabel("||w_after - w_before|| / ||w_before|| (log scale)")
    ax_ratio.set_xlabel("optimizer step")
    if len(names) <= 10:
        ax_grad.legend(fontsize=7, loc="best")
    else:
        bar = fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=[ax_grad, ax_ratio], shrink=0.8)
        bar.set_label(f"parameter index (0 = {names[0]}, {len(names) - 1} = {names[-1]})")
    ax_ratio.legend(handles=[reference], fontsize=7, loc="upper right")
    fig.suptitle(title or "Gradient health")
    return fig


def plot_grad_health(source, path, params=None, title=None):
    """Draw per-parameter gradient norm and update/weight ratio over training; returns ``path``.

    source: the path of a ``grad_health.csv`` (columns epoch, step, param,
    grad_norm, update_ratio; see ``minise.debug.GradHealthRecord``) or a list
    of ``GradHealthRecord``. params: only the parameters whose name contains
    one of these strings (e.g. ``["se.fc"]``); default all. Two panels share
    the optimizer-step axis, both on log scales; lines are coloured from the
    first parameter (dark) to the last (light). The update-ratio panel marks
    1e-3, the usual rule of thumb. Written atomically, as PNG, SVG or PDF by
    the file's extension.
    """
    fig = grad_health_figure(source, params=params, title=title)
    path = os.fspath(path)
    fmt = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    if fmt not in ("png", "svg", "pdf"):
        raise ValueError(f"plot_grad_health: write .png, .svg or .pdf, got {path!r}")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=120)
    return path
