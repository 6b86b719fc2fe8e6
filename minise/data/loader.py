"""DataLoader: batches of (images, labels) Tensors on a device, shuffled and augmented reproducibly.

Randomness here is a pure function of three integers, so any run can be
repeated or resumed exactly:

- ``seed``: fixed when the loader is made (given, or drawn once from the
  global generator of ``ms.manual_seed`` when ``seed=None``);
- ``epoch``: counts the passes over the data;
- ``batch``: the position of a batch in its epoch.

Epoch ``e`` visits the images in the order ``default_rng([seed, e, 0]).permutation(N)``
and batch ``b`` is augmented with ``default_rng([seed, e, b + 1])``. The loader
never touches NumPy's or minise's global generator after it is made, so
``ms.manual_seed`` (model init, dropout) and the data order do not disturb
each other. ``state_dict()`` is ``{"seed", "epoch", "batch"}``: the state at
the start of an epoch decides that epoch's order and augmentation, and a
state saved mid-epoch resumes at the next batch, bit for bit, after
``load_state_dict``. Like PyTorch, a new ``iter(loader)`` after an unfinished
pass starts a new epoch.
"""

import numpy as np

from .. import backend
from ..tensor import Tensor
from .transforms import to_float

__all__ = ["DataLoader"]


class DataLoader:
    """Iterate over ``dataset`` in batches: ``for images, labels in loader``.

    dataset: anything with ``.images`` (N, C, H, W) and ``.labels`` (N,) arrays, or a
    :class:`TensorDataset` (then each batch is the tuple of its tensors' rows, as PyTorch).
    batch_size: images per batch (default 1, as PyTorch).  shuffle: a new random order every epoch.
    drop_last: skip the last, smaller batch.  transform: ``t(batch, rng)`` (see
    ``minise.data.transforms``), applied on the device.  seed: see the module
    docstring.  device: where the batches go ("cpu", "cuda").

    num_workers: accepted so PyTorch scripts run unchanged; a batch is one vectorised gather in this
    process (no per-image Python work for workers to share), so it has no effect.

    Yields ``images`` float32 Tensor (B, C, H, W) (uint8 pixels become [0, 1]
    unless the transform already made floats) and ``labels`` int64 Tensor (B,).
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, transform=None, seed=None,
                 device="cpu", num_workers=0):  # fmt: skip
        self._tensors = getattr(dataset, "tensors", None)  # a TensorDataset: yield tuples of its rows
        if self._tensors is None and not (hasattr(dataset, "images") and hasattr(dataset, "labels")):
            raise TypeError(
                f"DataLoader: the dataset must have .images and .labels arrays (or be a TensorDataset), got "
                f"{type(dataset).__name__}; wrap arrays with minise.data.ArrayDataset(images, labels) or "
                "minise.data.TensorDataset(x, y)"
            )
        if self._tensors is None and len(dataset.images) != len(dataset.labels):
            raise ValueError(
                f"DataLoader: {len(dataset.images)} images but {len(dataset.labels)} labels in the dataset"
            )
        if int(batch_size) < 1:
            raise ValueError(f"DataLoader: batch_size must be >= 1, got {batch_size}")
        if int(num_workers) < 0:
            raise ValueError(f"DataLoader: num_workers must be >= 0, got {num_workers}")
        backend.parse_device(device)  # fail now, not at the first batch
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.transform = transform
        self.device = device
        self.seed = int(backend.rng().integers(2**62)) if seed is None else int(seed)
        self.epoch = 0   # the epoch the next (or current) pass belongs to
        self.batch = 0   # batches of that epoch already handed out
        self._resuming = False

    def _count(self):
        return len(self.dataset) if self._tensors is not None else len(self.dataset.labels)

    def __len__(self):
        n = self._count()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self, epoch):
        """The dataset indices epoch ``epoch`` visits, in order."""
        n = self._count()
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, epoch, 0]).permutation(n)

    def __iter__(self):
        if self.batch and not self._resuming:  # a pass left unfinished: a new iter() is a new epoch
            self.epoch, self.batch = self.epoch + 1, 0
        self._resuming = False
        epoch, start = self.epoch, self.batch
        order = self.order(epoch)
        for b in range(start, len(self)):
            index = order[b * self.batch_size : (b + 1) * self.batch_size]
            batch = self._batch(index, np.random.default_rng([self.seed, epoch, b + 1]))
            self.batch = b + 1
            yield batch
        self.epoch, self.batch = epoch + 1, 0

    def _batch(self, index, rng):
        """Gather on the CPU, move once (uint8: 4x fewer bytes), transform on the device."""
        if self._tensors is not None:  # TensorDataset rows keep their dtype, as PyTorch's default collate
            rows = [Tensor(backend.to_device(t.data[backend.to_device(index, t.device)], self.device))
                    for t in self._tensors]
            if self.transform is not None:
                rows[0] = Tensor(self.transform(rows[0].data, rng))
            return tuple(rows)
        images = backend.to_device(self.dataset.images[index], self.device)
        labels = backend.to_device(np.asarray(self.dataset.labels[index], dtype=np.int64), self.device)
        if self.transform is not None:
            images = self.transform(images, rng)
        return Tensor(to_float(images)), Tensor(labels)

    def state_dict(self):
        """Where the loader is: ``{"seed", "epoch", "batch"}`` (plain ints, for checkpoints)."""
        return {"seed": self.seed, "epoch": self.epoch, "batch": self.batch}

    def load_state_dict(self, state):
        """Continue from ``state``: the next iteration starts at that epoch and batch."""
        self.seed, self.epoch, self.batch = int(state["seed"]), int(state["epoch"]), int(state["batch"])
        self._resuming = True

    def set_epoch(self, epoch):
        """Start the next iteration at the beginning of ``epoch``."""
        self.epoch, self.batch, self._resuming = int(epoch), 0, False

    def __repr__(self):
        return (
            f"DataLoader({type(self.dataset).__name__}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last={self.drop_last}, seed={self.seed}, device={self.device!r}, {len(self)} batches)"
        )
