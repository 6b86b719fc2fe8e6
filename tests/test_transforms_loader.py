"""Batch transforms against per-image loop references, and the DataLoader's batching, seeding and resume."""

import numpy as np
import pytest

import minise as ms
from minise import backend
from minise.data import ArrayDataset, Compose, DataLoader, Normalize, RandomCrop, RandomHorizontalFlip, Subset


def batch_uint8(n=5, c=3, h=7, w=9, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, c, h, w), dtype=np.uint8)


def on(device, array):
    return backend.to_device(array, device)


# --- RandomCrop -------------------------------------------------------------------
def crop_reference(batch, top, left, size, padding):
    """One image at a time: pad, then slice."""
    out = []
    for image, t, l in zip(batch, top, left):
        padded = np.pad(image, ((0, 0), (padding, padding), (padding, padding)))
        out.append(padded[:, t : t + size[0], l : l + size[1]])
    return np.stack(out)


@pytest.mark.parametrize("size, padding", [(7, 4), ((5, 6), 2), ((7, 9), 0), (3, 1)])
def test_random_crop_matches_a_per_image_pad_and_slice(device, size, padding):
    batch = batch_uint8(n=6, h=7, w=9)
    crop = RandomCrop(size if isinstance(size, int) else size, padding=padding)
    out = crop(on(device, batch), np.random.default_rng(1))
    top, left = crop.last_offsets
    expected = crop_reference(batch, top, left, crop.size, padding)
    assert out.dtype == batch.dtype and backend.device_of(out) == backend.device_of(on(device, batch))
    np.testing.assert_array_equal(backend.to_numpy(out), expected)


def test_random_crop_offsets_stay_in_bounds_and_cover_every_position():
    crop = RandomCrop(32, padding=4)
    crop(np.zeros((4000, 1, 32, 32), np.uint8), np.random.default_rng(0))
    top, left = crop.last_offsets
    assert set(top.tolist()) == set(range(9)) and set(left.tolist()) == set(range(9))


def test_random_crop_shifts_content_and_fills_with_zeros():
    image = np.arange(1, 17, dtype=np.float32).reshape(1, 1, 4, 4)
    crop = RandomCrop(4, padding=2)
    rng = np.random.default_rng(5)
    out = crop(image, rng)
    top, left = crop.last_offsets
    dy, dx = int(top[0]) - 2, int(left[0]) - 2  # shift of the window over the original image
    for i in range(4):
        for j in range(4):
            src_i, src_j = i + dy, j + dx
            inside = 0 <= src_i < 4 and 0 <= src_j < 4
            assert out[0, 0, i, j] == (image[0, 0, src_i, src_j] if inside else 0)


def test_random_crop_is_the_same_for_the_same_generator_seed():
    batch = batch_uint8(n=8)
    a = RandomCrop(7, 3)(batch, np.random.default_rng(42))
    b = RandomCrop(7, 3)(batch, np.random.default_rng(42))
    np.testing.assert_array_equal(a, b)


def test_random_crop_rejects_a_crop_larger_than_the_padded_image():
    with pytest.raises(ValueError, match="RandomCrop"):
        RandomCrop(20, padding=2)(batch_uint8(h=7, w=9), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"RandomCrop: expected a batch \(N, C, H, W\)"):
        RandomCrop(3)(np.zeros((3, 4, 4)), np.random.default_rng(0))


# --- RandomHorizontalFlip ------------------------------------------------------------
def test_random_horizontal_flip_mirrors_exactly_the_images_its_draws_select(device):
    batch = batch_uint8(n=64)
    out = backend.to_numpy(RandomHorizontalFlip(0.5)(on(device, batch), np.random.default_rng(3)))
    flipped = np.random.default_rng(3).random(64) < 0.5  # the same draws
    assert 10 < flipped.sum() < 54
    for image, result, f in zip(batch, out, flipped):
        np.testing.assert_array_equal(result, image[:, :, ::-1] if f else image)


@pytest.mark.parametrize("p, flipped", [(0.0, False), (1.0, True)])
def test_random_horizontal_flip_with_p_zero_or_one_never_or_always_flips(p, flipped):
    batch = batch_uint8()
    out = RandomHorizontalFlip(p)(batch, np.random.default_rng(0))
    np.testing.assert_array_equal(out, batch[..., ::-1] if flipped else batch)


# --- Normalize ----------------------------------------------------------------------
def test_normalize_scales_uint8_to_unit_range_then_standardises_per_channel(device):
    batch = batch_uint8(n=3, c=3)
    mean, std = (0.1, 0.5, 0.9), (0.2, 0.25, 0.5)
    out = Normalize(mean, std)(on(device, batch))
    expected = (batch / 255.0 - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]
    assert out.dtype == np.float32
    np.testing.assert_allclose(backend.to_numpy(out), expected, rtol=1e-5, atol=1e-5)


def test_normalize_takes_float_input_as_already_in_unit_range_and_broadcasts_one_channel():
    batch = np.random.default_rng(0).random((2, 1, 4, 4))
    out = Normalize((0.2860,), (0.3530,))(batch)
    np.testing.assert_allclose(out, (batch - 0.2860) / 0.3530, rtol=1e-5)


def test_normalize_rejects_a_channel_count_mismatch_and_non_positive_std():
    with pytest.raises(ValueError, match="Normalize: 3 means for a batch with 2 channels"):
        Normalize((0, 0, 0), (1, 1, 1))(np.zeros((1, 2, 3, 3)))
    with pytest.raises(ValueError, match="std > 0"):
        Normalize((0,), (0,))


def test_compose_applies_each_transform_in_order_with_the_same_generator():
    batch = batch_uint8(n=10)
    steps = [RandomCrop(7, 2), RandomHorizontalFlip(), Normalize((0.5,), (0.25,))]
    out = Compose(steps)(batch, np.random.default_rng(9))
    rng = np.random.default_rng(9)
    expected = batch
    for t in steps:
        expected = t(expected, rng)
    np.testing.assert_array_equal(out, expected)


# --- DataLoader -------------------------------------------------------------------------
def dataset(n=10, seed=0):
    rng = np.random.default_rng(seed)
    return ArrayDataset(rng.integers(0, 256, size=(n, 2, 3, 3), dtype=np.uint8), np.arange(n) % 4)


def collect(loader):
    return [(x.numpy().copy(), y.numpy().copy()) for x, y in loader]


def test_data_loader_yields_every_image_in_order_as_unit_range_float32(device):
    ds = dataset(10)
    loader = DataLoader(ds, batch_size=4, device=device)
    batches = list(loader)
    assert len(loader) == 3 and [len(y) for _, y in batches] == [4, 4, 2]
    images, labels = batches[0]
    assert images.dtype == np.float32 and labels.dtype == np.int64
    assert images.device == backend.device_of(on(device, np.zeros(1)))
    np.testing.assert_allclose(np.concatenate([x.numpy() for x, _ in batches]), ds.images / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(np.concatenate([y.numpy() for _, y in batches]), ds.labels)


def test_drop_last_skips_the_short_final_batch():
    loader = DataLoader(dataset(10), batch_size=4, drop_last=True)
    assert len(loader) == 2 and [len(y) for _, y in loader] == [4, 4]
    assert len(DataLoader(dataset(8), batch_size=4, drop_last=True)) == 2


def test_shuffling_visits_each_image_once_per_epoch_in_a_new_order():
    ds = dataset(12)
    ds.labels = np.arange(12)  # labels name the images
    loader = DataLoader(ds, batch_size=5, shuffle=True, seed=0)
    epochs = [np.concatenate([y.numpy() for _, y in loader]) for _ in range(3)]
    for order in epochs:
        np.testing.assert_array_equal(np.sort(order), np.arange(12))
    np.testing.assert_array_equal(epochs[0], loader.order(0))
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[1], epochs[2])


def test_shuffling_and_augmentation_depend_on_the_loader_seed_only_not_on_global_seeds():
    ds = dataset(20)
    transform = Compose([RandomCrop(3, padding=1), RandomHorizontalFlip()])
    ms.manual_seed(0)
    np.random.seed(0)
    a = collect(DataLoader(ds, batch_size=6, shuffle=True, transform=transform, seed=7))
    ms.manual_seed(123)
    np.random.seed(123)
    b = collect(DataLoader(ds, batch_size=6, shuffle=True, transform=transform, seed=7))
    c = collect(DataLoader(ds, batch_size=6, shuffle=True, transform=transform, seed=8))
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not all(np.array_equal(ya, yc) for (_, ya), (_, yc) in zip(a, c))


def test_without_a_seed_the_loader_takes_one_from_manual_seed():
    ms.manual_seed(5)
    first = DataLoader(dataset(), batch_size=3, shuffle=True)
    ms.manual_seed(5)
    second = DataLoader(dataset(), batch_size=3, shuffle=True)
    assert first.seed == second.seed
    np.testing.assert_array_equal(first.order(0), second.order(0))


def test_the_loader_applies_its_transform_with_per_batch_generators(device):
    ds = dataset(9)
    transform = RandomHorizontalFlip(0.5)
    loader = DataLoader(ds, batch_size=4, shuffle=True, transform=transform, seed=3, device=device)
    order = loader.order(0)
    for b, (images, _) in enumerate(loader):
        index = order[b * 4 : (b + 1) * 4]
        flips = np.random.default_rng([3, 0, b + 1]).random(len(index)) < 0.5
        expected = np.where(flips[:, None, None, None], ds.images[index][..., ::-1], ds.images[index]) / 255.0
        np.testing.assert_allclose(images.numpy(), expected, rtol=1e-6)


def test_a_state_saved_mid_epoch_resumes_bit_identically():
    ds = dataset(23)
    transform = Compose([RandomCrop(3, padding=2), RandomHorizontalFlip(), Normalize((0.5, 0.4), (0.2, 0.3))])

    def make():
        return DataLoader(ds, batch_size=4, shuffle=True, transform=transform, seed=11)

    reference = make()
    uninterrupted = collect(reference) + collect(reference)  # two epochs of 6 batches
    interrupted = make()
    seen = collect(interrupted)
    iterator = iter(interrupted)
    seen += [tuple(t.numpy().copy() for t in next(iterator)) for _ in range(2)]
    state = interrupted.state_dict()
    assert state == {"seed": 11, "epoch": 1, "batch": 2}
    resumed = make()
    resumed.load_state_dict(state)
    seen += collect(resumed)
    assert len(seen) == len(uninterrupted) == 12
    for (xa, ya), (xb, yb) in zip(seen, uninterrupted):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert resumed.state_dict() == {"seed": 11, "epoch": 2, "batch": 0}


def test_a_new_iteration_after_an_unfinished_pass_starts_the_next_epoch():
    loader = DataLoader(dataset(12), batch_size=4, shuffle=True, seed=0)
    next(iter(loader))
    labels = [y.numpy() for _, y in loader]
    assert loader.epoch == 2
    order = loader.order(1)
    np.testing.assert_array_equal(np.concatenate(labels), dataset(12).labels[order])


def test_set_epoch_replays_an_epoch():
    loader = DataLoader(dataset(12), batch_size=5, shuffle=True, seed=4)
    collect(loader)
    second = collect(loader)
    loader.set_epoch(1)
    for (xa, ya), (xb, yb) in zip(second, collect(loader)):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_subset_keeps_the_chosen_images_and_the_class_names():
    ds = dataset(10)
    ds.classes = ["a", "b", "c", "d"]
    sub = Subset(ds, [7, 2])
    np.testing.assert_array_equal(sub.images, ds.images[[7, 2]])
    np.testing.assert_array_equal(sub.labels, ds.labels[[7, 2]])
    assert sub.classes == ["a", "b", "c", "d"] and len(sub) == 2


def test_dataset_mean_and_std_are_per_channel_on_the_unit_scale():
    ds = dataset(10)
    x = ds.images / 255.0
    np.testing.assert_allclose(ds.mean(), x.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(ds.std(), x.std(axis=(0, 2, 3)), rtol=1e-9)


def test_data_loader_rejects_bad_arguments_with_clear_errors():
    with pytest.raises(TypeError, match="DataLoader: the dataset must have .images and .labels"):
        DataLoader([1, 2, 3], batch_size=2)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        DataLoader(dataset(), batch_size=0)
    with pytest.raises(backend.DeviceError):
        DataLoader(dataset(), batch_size=2, device="tpu")
    with pytest.raises(ValueError, match=r"labels must be \(3,\)"):
        ArrayDataset(np.zeros((3, 1, 2, 2), np.uint8), np.zeros(2, np.int64))
