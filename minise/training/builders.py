"""From a TrainConfig to the objects of a run: datasets, loaders, model, optimiser, scheduler."""

import sys

import numpy as np

from .. import data, models, optim
from ..optim import lr_scheduler


# --- datasets and loaders -------------------------------------------------------
def load_dataset(config, train=True, download=True):
    """The training (or test) split of ``config.dataset``, cut to its first ``config.subset`` images if set.

    download: fetch the files when missing (False: FileNotFoundError instead).
    """
    download = download and config.dataset != "embedded"
    dataset = data.get_dataset(config.dataset, root=config.data_dir, train=train, download=download)
    if config.subset is not None and config.subset < len(dataset):
        dataset = data.Subset(dataset, np.arange(config.subset))
    return dataset


def load_datasets(config, download=True):
    """(train_set, test_set) for ``config`` (see :func:`load_dataset`).

    A ``config.subset`` larger than a split uses all of it, and says so: one note on stderr
    naming the split(s) it exceeds and their sizes (a subset never silently means "everything").
    """
    train_set = load_dataset(config, train=True, download=download)
    test_set = load_dataset(config, train=False, download=download)
    short = [f"{len(s)} {split} images" for s, split in ((train_set, "training"), (test_set, "test"))
             if config.subset is not None and config.subset > len(s)]
    if short:
        print(f"note: --subset {config.subset} is more than the {config.dataset} dataset's "
              f"{' and its '.join(short)}: all of them are used", file=sys.stderr)
    return train_set, test_set


def normalization(config, train_set):
    """(mean, std) per channel for ``Normalize``: the dataset's published constants
    (``data.MEAN_STD``) when it has them, else measured on ``train_set``."""
    constants = getattr(data, "MEAN_STD", {})
    if config.dataset in constants:
        mean, std = constants[config.dataset]
        return [float(v) for v in mean], [float(v) for v in std]
    return list(train_set.mean()), list(train_set.std())


def make_train_loader(config, train_set, mean, std):
    """Shuffled, augmented (``config.augment``) and normalised batches, seeded by ``config.seed``."""
    size = train_set.images.shape[-1]
    steps = []
    if config.augment == "crop+flip":
        steps.append(data.RandomCrop(size, padding=4))
    if config.augment in ("crop+flip", "flip"):
        steps.append(data.RandomHorizontalFlip())
    steps.append(data.Normalize(mean, std))
    return data.DataLoader(train_set, config.batch_size, shuffle=True,
                           drop_last=len(train_set) >= config.batch_size,
                           transform=data.Compose(steps), seed=config.seed, device=config.device)


def make_test_loader(test_set, mean, std, batch_size=256, device="cpu"):
    """The test set in order, normalised, no augmentation."""
    return data.DataLoader(test_set, batch_size, shuffle=False, transform=data.Normalize(mean, std),
                           device=device)


def build_model(config, num_classes, in_channels):
    return models.get(config.model, num_classes=num_classes, in_channels=in_channels)


def build_optimizer(config, parameters):
    if config.optimizer == "sgd":
        return optim.SGD(parameters, lr=config.lr, momentum=config.momentum,
                         weight_decay=config.weight_decay, nesterov=config.nesterov and config.momentum > 0)
    cls = optim.Adam if config.optimizer == "adam" else optim.AdamW
    return cls(parameters, lr=config.lr, weight_decay=config.weight_decay)


def build_scheduler(config, optimizer, steps_per_epoch):
    """A scheduler stepped once per optimiser step, or None for a constant learning rate."""
    total = config.epochs * steps_per_epoch
    warmup = int(round(config.warmup_epochs * steps_per_epoch))
    if config.schedule == "none":
        return None
    if config.schedule == "onecycle":
        return lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total)
    if config.schedule == "cosine":
        main = lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total - warmup))
    else:
        main = lr_scheduler.MultiStepLR(optimizer, milestones=[total // 2 - warmup, (3 * total) // 4 - warmup],
                                        gamma=0.1)
    if warmup == 0:
        return main
    ramp = lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=warmup)
    return lr_scheduler.SequentialLR(optimizer, [ramp, main], milestones=[warmup])
