"""SyntheticShapes (the embedded offline dataset): deterministic, balanced, drawn as named, not linearly easy."""

import numpy as np
import pytest

from minise import data
from minise.data import Embedded, SyntheticShapes


@pytest.fixture(scope="module")
def small():
    return SyntheticShapes(train=True, n_train=1000, seed=0)


def test_synthetic_shapes_have_the_dataset_format_and_balanced_classes(small):
    assert small.images.dtype == np.uint8 and small.images.shape == (1000, 3, 32, 32)
    assert small.labels.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(small.labels, minlength=10), np.full(10, 100))
    assert len(small) == 1000 and len(set(small.classes)) == 10
    image, label = small[7]
    np.testing.assert_array_equal(image, small.images[7])
    assert isinstance(label, int) and label == small.labels[7]


def test_synthetic_shapes_are_the_same_for_a_seed_and_differ_across_seeds_and_splits(small):
    again = SyntheticShapes(train=True, n_train=1000, seed=0)
    np.testing.assert_array_equal(again.images, small.images)
    np.testing.assert_array_equal(again.labels, small.labels)
    other_seed = SyntheticShapes(train=True, n_train=1000, seed=1)
    test_split = SyntheticShapes(train=False, n_test=1000, seed=0)
    assert np.mean(other_seed.images != small.images) > 0.9
    assert np.mean(test_split.images != small.images) > 0.9


def test_stripes_run_in_the_direction_their_class_names(small):
    # horizontal stripes change along rows (large |d/dy|), vertical stripes along columns
    x = small.images.astype(np.float32)
    dx = np.abs(np.diff(x, axis=3)).mean(axis=(1, 2, 3))
    dy = np.abs(np.diff(x, axis=2)).mean(axis=(1, 2, 3))
    ratio = dy / dx
    horizontal, vertical = small.classes.index("horizontal stripes"), small.classes.index("vertical stripes")
    assert np.all(ratio[small.labels == horizontal] > 1) and np.median(ratio[small.labels == horizontal]) > 1.3
    assert np.all(ratio[small.labels == vertical] < 1) and np.median(ratio[small.labels == vertical]) < 0.77
    for label in set(range(10)) - {horizontal, vertical}:  # no preferred direction
        assert 0.9 < np.median(ratio[small.labels == label]) < 1.1


def _ridge_accuracy(features, labels, test_features, test_labels, lam=1000.0):
    """Least-squares linear classifier (one-hot targets, L2 penalty) on standardised features."""
    mean, std = features.mean(0), features.std(0) + 1e-6
    a = np.hstack([(features - mean) / std, np.ones((len(features), 1))])
    b = np.hstack([(test_features - mean) / std, np.ones((len(test_features), 1))])
    weights = np.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]), a.T @ np.eye(10)[labels])
    return np.mean(np.argmax(b @ weights, axis=1) == test_labels)


def test_a_linear_classifier_on_pixels_stays_near_chance_but_not_on_shift_invariant_features():
    train = SyntheticShapes(train=True, n_train=2000, seed=1)
    test = SyntheticShapes(train=False, n_test=1000, seed=1)

    def pixels(ds):
        return ds.images.reshape(len(ds), -1) / 255.0

    def spectrum(ds):  # |FFT| of the grey image: blind to position and colour sign
        grey = ds.images.mean(axis=1)
        grey = grey - grey.mean(axis=(1, 2), keepdims=True)
        return np.log1p(np.abs(np.fft.rfft2(grey)).reshape(len(ds), -1))

    on_pixels = _ridge_accuracy(pixels(train), train.labels, pixels(test), test.labels)
    on_spectrum = _ridge_accuracy(spectrum(train), train.labels, spectrum(test), test.labels)
    assert on_pixels < 0.3  # chance is 0.1; measured 0.185
    assert on_spectrum > on_pixels + 0.25  # the classes differ in shape, not in where or what colour


def test_the_published_channel_stats_are_those_of_the_default_training_set():
    ds = SyntheticShapes()
    assert len(ds) == 10_000
    np.testing.assert_allclose(ds.mean(), SyntheticShapes.MEAN, atol=1e-4)
    np.testing.assert_allclose(ds.std(), SyntheticShapes.STD, atol=1e-4)
    assert data.channel_stats("embedded") == (SyntheticShapes.MEAN, SyntheticShapes.STD)


def test_get_dataset_names_the_embedded_dataset_and_rejects_unknown_names():
    ds = data.get_dataset("embedded", train=False, n_test=50, seed=3)
    assert Embedded is SyntheticShapes and isinstance(ds, SyntheticShapes) and len(ds) == 50
    with pytest.raises(ValueError, match="cifar10"):
        data.get_dataset("cifar100")
