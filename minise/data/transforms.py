"""Batch transforms: augmentation and normalisation of a whole (N, C, H, W) batch at once.

Each transform is a callable ``t(batch, rng) -> batch``: ``batch`` is a NumPy
or CuPy array (uint8 or float), ``rng`` a ``numpy.random.Generator`` that
draws every random choice (one value per image), so a seeded generator gives
the same augmentation on every run and on every device. There is no Python
loop over the images: a crop is one padded copy and one gather, a flip one
``where``.

The usual CIFAR pipeline (He et al., 2016)::

    Compose([RandomCrop(32, padding=4), RandomHorizontalFlip(), Normalize(mean, std)])
"""

import numpy as np

from ..backend import get_array_module

__all__ = ["Compose", "Normalize", "RandomCrop", "RandomHorizontalFlip", "to_float"]


def _check_batch(op, batch):
    if getattr(batch, "ndim", None) != 4:
        raise ValueError(f"{op}: expected a batch (N, C, H, W), got shape {getattr(batch, 'shape', None)}")


def to_float(batch):
    """uint8 pixels -> float32 in [0, 1]; a float batch becomes float32 unchanged in value."""
    xp = get_array_module(batch)
    if batch.dtype == xp.uint8:
        return batch.astype(xp.float32) * xp.float32(1 / 255)
    return batch.astype(xp.float32, copy=False)


class Compose:
    """Apply transforms in order, all drawing from the same generator."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, batch, rng):
        for t in self.transforms:
            batch = t(batch, rng)
        return batch

    def __repr__(self):
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{inner}])"


class Normalize:
    """x -> (x - mean) / std per channel, as float32; uint8 input is first scaled to [0, 1].

    mean, std: one value per channel (or one value for all), on the [0, 1] pixel scale.
    """

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float32).reshape(-1)
        self.std = np.asarray(std, dtype=np.float32).reshape(-1)
        if self.mean.shape != self.std.shape or np.any(self.std <= 0):
            raise ValueError(f"Normalize: mean and std need the same length and std > 0, got {mean} and {std}")

    def __call__(self, batch, rng=None):
        _check_batch("Normalize", batch)
        if len(self.mean) not in (1, batch.shape[1]):
            raise ValueError(f"Normalize: {len(self.mean)} means for a batch with {batch.shape[1]} channels")
        xp = get_array_module(batch)
        mean = xp.asarray(self.mean).reshape(1, -1, 1, 1)
        scale = xp.asarray(1 / self.std).reshape(1, -1, 1, 1)
        return (to_float(batch) - mean) * scale

    def __repr__(self):
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class RandomCrop:
    """Zero-pad each side by ``padding``, then cut a ``size`` window at a random place per image.

    size: int or (h, w).  The offsets are drawn as ``rng.integers(0, H + 2p - h + 1, N)``
    for rows, then the same for columns; ``self.last_offsets`` keeps them (for tests and plots).
    """

    def __init__(self, size, padding=4):
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.padding = int(padding)
        if len(self.size) != 2 or min(self.size) < 1 or self.padding < 0:
            raise ValueError(f"RandomCrop: size must be positive (h, w) and padding >= 0, got {size}, {padding}")
        self.last_offsets = None

    def __call__(self, batch, rng):
        _check_batch("RandomCrop", batch)
        xp = get_array_module(batch)
        n, c, h, w = batch.shape
        p, (ch, cw) = self.padding, self.size
        if ch > h + 2 * p or cw > w + 2 * p:
            raise ValueError(f"RandomCrop: crop {self.size} is larger than the padded image {(h + 2 * p, w + 2 * p)}")
        top = rng.integers(0, h + 2 * p - ch + 1, size=n)
        left = rng.integers(0, w + 2 * p - cw + 1, size=n)
        self.last_offsets = (top, left)
        padded = xp.pad(batch, ((0, 0), (0, 0), (p, p), (p, p)))
        rows = xp.asarray(top[:, None] + np.arange(ch))   # (N, ch): the rows each image keeps
        cols = xp.asarray(left[:, None] + np.arange(cw))  # (N, cw)
        images = xp.arange(n)[:, None, None, None]
        channels = xp.arange(c)[None, :, None, None]
        return padded[images, channels, rows[:, None, :, None], cols[:, None, None, :]]

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror each image left-right with probability ``p`` (drawn as ``rng.random(N) < p``)."""

    def __init__(self, p=0.5):
        if not 0 <= p <= 1:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = p

    def __call__(self, batch, rng):
        _check_batch("RandomHorizontalFlip", batch)
        xp = get_array_module(batch)
        flip = xp.asarray(rng.random(batch.shape[0]) < self.p)
        return xp.where(flip[:, None, None, None], batch[..., ::-1], batch)

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"
