"""Evaluation: loss, accuracy and the confusion matrix of a model on a loader."""

import numpy as np

from .. import backend
from .. import functional as F
from ..autograd import no_grad
from ..tensor import Tensor


def _labels_of(y):
    return y.data if isinstance(y, Tensor) else y


def evaluate(model, loader, num_classes=None, loss_fn=None):
    """Mean loss, accuracy and (with ``num_classes``) the confusion matrix of ``model`` on ``loader``.

    Runs in eval mode under ``no_grad``; counts stay on the device and reach the
    host once, at the end. Returns ``{"loss", "acc", "count"}`` plus
    ``"confusion"``: a (K, K) int64 array, rows the true class, columns the prediction.
    """
    loss_fn = loss_fn or F.cross_entropy
    was_training = model.training
    model.eval()
    loss_sums, corrects, confusion, count = [], [], None, 0
    try:
        with no_grad():
            for x, y in loader:
                logits = model(x)
                labels = _labels_of(y)
                xp = backend.get_array_module(logits.data)
                loss_sums.append(loss_fn(logits, y).data * len(labels))
                predicted = logits.data.argmax(axis=1)
                corrects.append((predicted == labels).sum())
                count += len(labels)
                if num_classes is not None:
                    pairs = xp.bincount(labels * num_classes + predicted, minlength=num_classes * num_classes)
                    confusion = pairs if confusion is None else confusion + pairs
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("evaluate: the loader yielded no images")
    xp = backend.get_array_module(loss_sums[0])
    loss = float(backend.to_numpy(xp.stack(loss_sums)).astype(np.float64).sum()) / count
    acc = int(backend.to_numpy(xp.stack(corrects)).sum()) / count
    result = {"loss": loss, "acc": acc, "count": count}
    if num_classes is not None:
        result["confusion"] = backend.to_numpy(confusion).reshape(num_classes, num_classes).astype(np.int64)
    return result


def format_confusion(matrix, classes):
    """The confusion matrix as text: rows true classes, columns predictions (numbered as the rows)."""
    k = len(classes)
    name_width = max(len(c) for c in classes)
    cell = max(4, len(str(int(matrix.max()))) + 1)
    lines = [" " * (name_width + 6) + "".join(f"{j:>{cell}}" for j in range(k)) + "   <- predicted",
             " " * (name_width + 6) + "-" * (cell * k)]
    for i, name in enumerate(classes):
        recall = matrix[i, i] / max(matrix[i].sum(), 1)
        lines.append(f"{i:>2} {name:<{name_width}} | " + "".join(f"{int(v):>{cell}}" for v in matrix[i])
                     + f"   {100 * recall:6.1f}%")   # 100.0% fits: the column stays aligned
    return "\n".join(lines)
