"""The two helpers every figure of minise uses: a Figure drawn by Agg, and an atomic save.

matplotlib's Agg renderer needs no window, works on a server, and leaves pyplot
and a notebook's backend alone. matplotlib is imported inside the functions:
``import minise`` does not pay for it.
"""

from ..io.atomic import atomic_path


def _figure(**kwargs):
    """A matplotlib Figure drawn by Agg, outside pyplot: no window, no global state,
    and a notebook's own backend is left alone."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path):
    """Write ``fig`` to ``path`` as PNG through a temporary file."""
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return path
