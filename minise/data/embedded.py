"""SyntheticShapes (alias ``Embedded``): an offline dataset of drawn shapes and textures.

This is **not CIFAR-10**, and not a sample of it. It is a toy 10-class image
dataset that minise draws itself, from a seed, in about a second, so the
quickstart and the tests run on a machine with no internet and no downloads.
It has CIFAR-10's format (32x32 RGB uint8, 10 classes) so the same models and
commands work on both.

Each image is one object on a background:

=====  ====================  ==============================================
label  class                 what is drawn
=====  ====================  ==============================================
0      circle                a filled disc
1      square                a filled square, any rotation
2      triangle              a filled equilateral triangle, any rotation
3      cross                 a plus sign, any rotation
4      ring                  an annulus
5      horizontal stripes    a patch of stripes within 15 degrees of horizontal
6      vertical stripes      a patch of stripes within 15 degrees of vertical
7      diagonal stripes      a patch of stripes near 45 or 135 degrees
8      checkerboard          a patch of checks
9      dots                  a patch of polka dots
=====  ====================  ==============================================

What varies, independently of the class: background colour (with a linear
gradient), object colour (always differing from the background by at least
``CONTRAST`` in every channel, in either direction), position, size,
rotation, stripe period and phase, check and dot size; two to four thin
random lines in random colours lie under the object as clutter, and Gaussian
pixel noise covers everything. Because colour and position carry no class
information, a linear classifier on the raw pixels does barely better than
chance (ridge regression on the 10,000 training images: 15% test accuracy;
``tests/test_embedded.py`` checks a smaller case), while a CNN, which can
detect edges and textures anywhere, learns it well: an SE-ResNet-20 reaches
about 90% after seeing 30,000 images and 99% after 50,000 (five epochs, SGD
with a one-cycle schedule).

Everything is drawn with whole-batch NumPy: coordinate grids broadcast
against per-image parameters (``(n, 1, 1)`` against ``(1, 32, 32)``) give a
signed distance to each shape's edge, and ``clip(0.5 - distance, 0, 1)`` turns
it into an anti-aliased coverage mask. Python loops run only over the ten
classes and the few clutter lines.
"""

import numpy as np

from .dataset import ArrayDataset

__all__ = ["SyntheticShapes", "Embedded"]

SIZE = 32
CONTRAST = 0.3   # least per-channel |object colour - background colour|
NOISE = 0.05     # standard deviation of the pixel noise, pixels in [0, 1]


def _coverage(distance):
    """Signed distance in pixels (negative inside) -> anti-aliased coverage in [0, 1]."""
    return np.clip(0.5 - distance, 0.0, 1.0)


def _rotated(x, y, angle):
    """Coordinates (u, v) of the grid points in a frame turned by ``angle`` (radians).

    cos and sin run in float64 and are rounded to float32: float32 trig differs in the
    last bit between NumPy builds (SIMD or not), which would make the images machine-dependent.
    """
    angle = angle.astype(np.float64)
    c, s = np.cos(angle).astype(np.float32), np.sin(angle).astype(np.float32)
    return c * x + s * y, -s * x + c * y


def _stripes(v, period, phase):
    """Signed distance to stripes of width period/2 running along u, across coordinate v."""
    t = (v / period + phase) % 1.0
    return (np.abs(t - 0.5) - 0.25) * period


def _class_distance(label, x, y, size, angle, period, phase, rng):
    """Signed distance (n, 32, 32) to the object of class ``label``, centred at x = y = 0.

    size, angle, period, phase: (n, 1, 1) per-image parameters.
    """
    n = size.shape[0]
    u, v = _rotated(x, y, angle)
    radius = np.sqrt(x * x + y * y)
    if label == 0:  # circle
        return radius - size
    if label == 1:  # square
        return np.maximum(np.abs(u), np.abs(v)) - 0.85 * size
    if label == 2:  # triangle: inside three half-planes, inscribed radius size / 2
        sides = [float(np.cos(k * 2 * np.pi / 3)) * u + float(np.sin(k * 2 * np.pi / 3)) * v for k in range(3)]
        return np.maximum(np.maximum(sides[0], sides[1]), sides[2]) - 0.5 * size
    if label == 3:  # cross: union of two bars
        arm = 0.3 * size
        bar1 = np.maximum(np.abs(u) - arm, np.abs(v) - size)
        bar2 = np.maximum(np.abs(v) - arm, np.abs(u) - size)
        return np.minimum(bar1, bar2)
    if label == 4:  # ring
        return np.maximum(radius - size, 0.55 * size - radius)
    # textures: a pattern clipped to a square patch, rotated by a small jitter only
    jitter = ((rng.random((n, 1, 1), dtype=np.float32) - 0.5) * (np.pi / 6)).astype(np.float32)
    if label == 7:  # diagonal: 45 or 135 degrees
        jitter += np.where(rng.random((n, 1, 1)) < 0.5, -np.pi / 4, np.pi / 4).astype(np.float32)
    pu, pv = _rotated(x, y, jitter)
    patch = np.maximum(np.abs(pu), np.abs(pv)) - 1.25 * size
    if label in (5, 7):  # stripes along u
        texture = _stripes(pv, period, phase)
    elif label == 6:
        texture = _stripes(pu, period, phase)
    elif label == 8:  # checkerboard: sign of distance to the nearest cell border flips with parity
        cell = 0.6 * period
        a, b = pu / cell + phase, pv / cell + phase
        border = cell * np.minimum(0.5 - np.abs(a % 1 - 0.5), 0.5 - np.abs(b % 1 - 0.5))
        parity = (np.floor(a) + np.floor(b)) % 2
        texture = np.where(parity == 0, -border, border)
    else:  # dots on a square grid
        a, b = (pu / period + phase) % 1 - 0.5, (pv / period + phase) % 1 - 0.5
        texture = period * np.sqrt(a * a + b * b) - 0.3 * period
    return np.maximum(texture, patch)


def generate_shapes(n, seed=0, split=0):
    """Draw ``n`` images and labels: uint8 (n, 3, 32, 32) and int64 (n,), balanced classes.

    The same (seed, split) always gives the same arrays; different splits are
    independent draws (``split`` 0 is the training set, 1 the test set).
    """
    rng = np.random.default_rng([seed, split])
    labels = rng.permutation(np.arange(n) % 10)
    grid = np.arange(SIZE, dtype=np.float32) + 0.5
    gx, gy = grid[None, None, :], grid[None, :, None]   # (1, 1, 32) and (1, 32, 1)

    def per_image(low, high, channels=None):
        shape = (n, 1, 1) if channels is None else (n, channels, 1, 1)
        return (low + (high - low) * rng.random(shape, dtype=np.float32)).astype(np.float32)

    def paint(images, alpha, colour):
        """images <- images * (1 - alpha) + colour * alpha, in place.  alpha: (n, 32, 32)."""
        layer = colour - images
        layer *= alpha[:, None]
        images += layer

    # background: a colour plus a gentle linear gradient, per channel
    background = per_image(0, 1, channels=3)
    slope_x, slope_y = per_image(-0.3 / SIZE, 0.3 / SIZE, 3), per_image(-0.3 / SIZE, 0.3 / SIZE, 3)
    images = background + slope_x * (gx[:, None] - SIZE / 2) + slope_y * (gy[:, None] - SIZE / 2)

    # clutter: two to four thin lines in random colours, under the object
    for k in range(4):
        x0, y0, x1, y1 = (per_image(0, SIZE) for _ in range(4))
        width = per_image(0.4, 0.9)
        if k >= 2:  # the third and fourth lines appear in half of the images
            width[rng.random(n) < 0.5] = -2.0
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((gx - x0) * dx + (gy - y0) * dy) / (dx * dx + dy * dy + 1e-6), 0, 1)
        distance = np.sqrt((gx - x0 - t * dx) ** 2 + (gy - y0 - t * dy) ** 2) - width
        paint(images, _coverage(distance), per_image(0, 1, channels=3))

    # the object: its colour differs from the background's by CONTRAST..1-CONTRAST per channel
    foreground = (background + per_image(CONTRAST, 1 - CONTRAST, channels=3)) % 1.0
    size = per_image(5.0, 10.0)
    centre_x, centre_y = per_image(11, 21), per_image(11, 21)
    angle = per_image(0, 2 * np.pi)
    period = per_image(4.0, 7.0)
    phase = per_image(0, 1)
    coverage = np.empty((n, SIZE, SIZE), dtype=np.float32)
    for label in range(10):
        idx = np.flatnonzero(labels == label)
        distance = _class_distance(
            label, gx - centre_x[idx], gy - centre_y[idx], size[idx], angle[idx], period[idx], phase[idx], rng
        )
        coverage[idx] = _coverage(distance)
    paint(images, coverage, foreground)

    noise = rng.standard_normal(images.shape, dtype=np.float32)
    noise *= NOISE
    images += noise
    images *= 255
    np.rint(images, out=images)
    np.clip(images, 0, 255, out=images)
    images = images.astype(np.uint8)
    return images, labels.astype(np.int64)


class SyntheticShapes(ArrayDataset):
    """Ten classes of drawn shapes and textures, 32x32 RGB, made offline from a seed (not CIFAR-10).

    train: the training split (``n_train`` images), else the test split (``n_test``).
    seed: the same seed gives the same images on every machine; the two splits are
    independent draws. ``root`` and ``download`` are accepted and ignored, so every
    dataset takes the same arguments.

    ``.images`` uint8 (N, 3, 32, 32), ``.labels`` int64 (N,), ``.classes`` the ten names.
    """

    CLASSES = ["circle", "square", "triangle", "cross", "ring", "horizontal stripes",
               "vertical stripes", "diagonal stripes", "checkerboard", "dots"]  # fmt: skip
    # channel statistics of the default training set (seed 0, 10,000 images), pixels in [0, 1]
    MEAN = (0.4982, 0.4994, 0.4995)
    STD = (0.2822, 0.2829, 0.2825)

    def __init__(self, root=None, train=True, download=False, *, n_train=10_000, n_test=2_000, seed=0):
        self.train = train
        self.seed = seed
        images, labels = generate_shapes(n_train if train else n_test, seed=seed, split=0 if train else 1)
        super().__init__(images, labels, self.CLASSES)


Embedded = SyntheticShapes
