"""Pictures: the autograd graph, gradient health, training curves, confusion matrices, SE excitations.

    dot = ms.viz.to_dot(loss, params=dict(model.named_parameters()))
    ms.viz.render(dot, "graph.svg")          # needs the Graphviz program `dot`
    ms.viz.plot_grad_health("runs/se20/grad_health.csv", "grad_health.png")
    ms.viz.plot_curves(metrics, "curves.png")

- ``graph.py``: the graph as Graphviz DOT text (``to_dot``) and rendering it (``render``);
- ``grad_health.py``: gradient norm and update/weight ratio per parameter over training;
- ``curves.py``: loss/accuracy/learning-rate curves, the confusion matrix, ``write_curves``;
- ``excitations.py``: the paper's Figure 6 (average excitation per channel and class);
- ``figure.py``: the Agg figure and the atomic save they share.

Nothing heavy is imported with this package: matplotlib is imported inside the
plotting functions, and Graphviz runs as a separate program only in ``render``.
"""

from .curves import plot_confusion_matrix, plot_curves, write_curves
from .excitations import plot_excitations
from .grad_health import grad_health_figure, plot_grad_health
from .graph import GraphvizNotFoundError, render, to_dot

__all__ = ["to_dot", "render", "GraphvizNotFoundError", "plot_grad_health", "grad_health_figure", "plot_curves",
           "plot_confusion_matrix", "write_curves", "plot_excitations"]
