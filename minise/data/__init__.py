"""Datasets, batch transforms and the DataLoader.

    from minise import data
    train = data.get_dataset("embedded", train=True)      # or "cifar10", "fashion-mnist"
    loader = data.DataLoader(train, batch_size=128, shuffle=True, seed=0,
                             transform=data.Compose([data.RandomCrop(32, padding=4),
                                                     data.RandomHorizontalFlip(),
                                                     data.Normalize(*data.channel_stats("embedded"))]))
    for images, labels in loader: ...

Every dataset has ``.images`` uint8 (N, C, H, W), ``.labels`` int64 (N,) and
``.classes``. Downloads go to :func:`default_data_dir` and are MD5-checked.
"""

from .cifar import CIFAR10
from .dataset import ArrayDataset, Subset, TensorDataset
from .download import ChecksumError, DownloadError, default_data_dir, download_url, md5sum
from .embedded import Embedded, SyntheticShapes
from .fashion_mnist import FashionMNIST
from .loader import DataLoader
from .transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip

__all__ = [
    "ArrayDataset", "Subset", "TensorDataset", "CIFAR10", "FashionMNIST", "SyntheticShapes", "Embedded",
    "DataLoader", "Compose", "Normalize", "RandomCrop", "RandomHorizontalFlip",
    "DownloadError", "ChecksumError", "default_data_dir", "download_url", "md5sum",
    "DATASETS", "MEAN_STD", "get_dataset", "channel_stats",
]  # fmt: skip

# name used by the CLI (--dataset) -> dataset class
DATASETS = {
    "embedded": SyntheticShapes,
    "cifar10": CIFAR10,
    "fashion-mnist": FashionMNIST,
}

# name -> (per-channel mean, per-channel std) of the training images, pixels in [0, 1]
MEAN_STD = {name: (cls.MEAN, cls.STD) for name, cls in DATASETS.items()}


def _lookup(name):
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}: expected one of {sorted(DATASETS)}") from None


def get_dataset(name, root=None, train=True, download=False, **kwargs):
    """The dataset called ``name`` ("embedded", "cifar10", "fashion-mnist"); extra kwargs go to its class."""
    return _lookup(name)(root=root, train=train, download=download, **kwargs)


def channel_stats(name):
    """Per-channel (mean, std) of a dataset's training images, pixels in [0, 1], for ``Normalize``."""
    _lookup(name)
    return MEAN_STD[name]
