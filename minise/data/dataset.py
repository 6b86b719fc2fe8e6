"""The dataset interface every minise dataset shares: two arrays and the class names.

A dataset here is small enough to sit in memory whole (CIFAR-10 is 150 MB of
uint8), so it is simply:

- ``images``: uint8 array ``(N, C, H, W)``;
- ``labels``: int64 array ``(N,)``, values in ``0 .. len(classes) - 1``;
- ``classes``: list of class names.

``len(ds)`` and ``ds[i] -> (image (C, H, W) uint8, label int)`` work as in
PyTorch, but the :class:`~minise.data.DataLoader` never calls ``ds[i]`` one
image at a time: it gathers a whole batch with one fancy-indexing call on
``images``.
"""

import numpy as np

from ..tensor import Tensor

__all__ = ["ArrayDataset", "Subset", "TensorDataset"]


class ArrayDataset:
    """Images and labels held as two arrays, plus the class names.

    images: (N, C, H, W) uint8.  labels: (N,) integers.  classes: names, one per label value.
    """

    def __init__(self, images, labels, classes=None):
        images = np.asarray(images)
        labels = np.asarray(labels)
        name = type(self).__name__
        if images.ndim != 4:
            raise ValueError(f"{name}: images must be (N, C, H, W), got shape {images.shape}")
        if labels.shape != (images.shape[0],):
            raise ValueError(
                f"{name}: labels must be ({images.shape[0]},) to match {images.shape[0]} images, "
                f"got shape {labels.shape}"
            )
        if labels.dtype.kind not in "iu":
            raise TypeError(f"{name}: labels must be integers, got dtype {labels.dtype}")
        self.images = images
        self.labels = labels.astype(np.int64, copy=False)
        if classes is None:
            classes = [str(c) for c in range(int(self.labels.max()) + 1 if len(labels) else 0)]
        self.classes = list(classes)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        """``ds[i] -> (image (C, H, W) uint8, label int)``; a slice or index array gives arrays."""
        if isinstance(index, (int, np.integer)):
            return self.images[index], int(self.labels[index])
        return self.images[index], self.labels[index]

    def __repr__(self):
        n, c, h, w = self.images.shape
        return f"{type(self).__name__}({n} images of {c}x{h}x{w}, {len(self.classes)} classes)"

    def mean(self):
        """Per-channel mean of the pixels scaled to [0, 1]: a tuple of C floats."""
        return tuple(float(v) for v in self._moments()[0])

    def std(self):
        """Per-channel (population) standard deviation of the pixels scaled to [0, 1]."""
        mean, mean_sq = self._moments()
        return tuple(float(v) for v in np.sqrt(np.maximum(mean_sq - mean**2, 0.0)))

    def _moments(self, chunk=4096):
        """E[x] and E[x^2] per channel in float64, a few thousand images at a time (no full float copy)."""
        count = len(self) * self.images.shape[2] * self.images.shape[3]
        if count == 0:
            raise ValueError(f"{type(self).__name__}: mean/std of an empty dataset")
        total = np.zeros(self.images.shape[1])
        total_sq = np.zeros(self.images.shape[1])
        for start in range(0, len(self), chunk):
            x = self.images[start : start + chunk].astype(np.float64) / 255.0
            total += x.sum(axis=(0, 2, 3))
            total_sq += np.square(x).sum(axis=(0, 2, 3))
        return total / count, total_sq / count


class Subset(ArrayDataset):
    """The images of ``dataset`` at ``indices`` (a copy), with the same class names.

    Like ``torch.utils.data.Subset``.
    """

    def __init__(self, dataset, indices):
        indices = np.asarray(indices)
        if indices.dtype.kind not in "iub":
            raise TypeError(f"Subset: indices must be integers or a boolean mask, got dtype {indices.dtype}")
        super().__init__(dataset.images[indices], dataset.labels[indices], dataset.classes)


class TensorDataset:
    """Tensors that share their first dimension, as ``torch.utils.data.TensorDataset(x, y)``.

    ``ds[i]`` is the tuple ``(x[i], y[i], ...)`` of Tensors (an index array or slice picks
    several rows at once); ``len(ds)`` is the shared first size. Works with :class:`DataLoader`,
    which gathers a whole batch with one indexing call per tensor and yields tuples of Tensors.
    Arrays are accepted too (wrapped as Tensors, sharing memory). Raises ValueError when the
    first sizes differ.
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: give at least one tensor")
        self.tensors = tuple(t if isinstance(t, Tensor) else Tensor(t) for t in tensors)
        sizes = [t.shape[0] if t.ndim else None for t in self.tensors]
        if None in sizes or len(set(sizes)) != 1:
            raise ValueError(f"TensorDataset: every tensor needs the same first size, got shapes "
                             f"{[t.shape for t in self.tensors]}")

    def __len__(self):
        return self.tensors[0].shape[0]

    def __getitem__(self, index):
        if isinstance(index, Tensor):
            index = index.data
        return tuple(Tensor(t.data[index]) for t in self.tensors)

    def __repr__(self):
        return f"TensorDataset({len(self)} rows: {', '.join(str(t.shape[1:]) for t in self.tensors)})"
