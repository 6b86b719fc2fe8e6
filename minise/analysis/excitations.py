"""What the SE blocks learn: average excitation per channel and class (the paper's Figure 6)."""

from dataclasses import dataclass

import numpy as np

from .. import backend
from ..autograd import no_grad
from ..io.atomic import atomic_path
from ..io.npz import load_npz
from ..nn import SEBlock
from ..tensor import Tensor


@dataclass
class Excitations:
    """Average excitation of every SE block, per class.

    blocks: the SE blocks' module names, in model order.
    means: name -> (K, C) array, the mean gate value of each channel over the images of each class.
    counts: (K,) images per class.  classes: the K class names.
    """

    blocks: list
    means: dict
    counts: np.ndarray
    classes: list

    def mean_all(self, name):
        """(C,) the mean excitation of block ``name`` over every image (all classes together)."""
        counts = self.counts.astype(np.float64)
        return (self.means[name] * counts[:, None]).sum(axis=0) / max(counts.sum(), 1)

    def class_spread(self, name):
        """How far the classes' average gates of block ``name`` differ: the standard deviation of the
        K class means of each channel, averaged over the C channels (tutorial 08's "class spread").
        0 when every class gets the same average gates."""
        return float(self.means[name].std(axis=0).mean())

    def distinct_classes(self, k=4, block=None):
        """``k`` class indices whose average gates differ most at ``block`` (default: the last SE block),
        for a plot whose lines do not overlap: the class farthest from the all-class mean first, then
        each time the class farthest (Euclidean, over channels) from the nearest one already chosen."""
        means = self.means[block or self.blocks[-1]]
        present = np.flatnonzero(self.counts > 0)
        if len(present) == 0:
            return []
        far = means[present] - self.mean_all(block or self.blocks[-1])[None, :]
        chosen = [int(present[np.argmax((far ** 2).sum(axis=1))])]
        while len(chosen) < min(k, len(present)):
            gaps = ((means[present][:, None, :] - means[chosen][None, :, :]) ** 2).sum(axis=2).min(axis=1)
            gaps[np.isin(present, chosen)] = -1.0
            chosen.append(int(present[np.argmax(gaps)]))
        return chosen

    def check_model(self, model, name):
        """Raise ValueError unless these are the SE blocks of ``model`` (called ``name`` in the message):
        the same block names, each with as many channels as the model's ``nn.SEBlock`` of that name.
        The message names the block, the channels found and the channels the model's block has."""
        channels = {block: m.channels for block, m in model.named_modules() if isinstance(m, SEBlock)}
        for block in self.blocks:
            found = self.means[block].shape[1]
            if block not in channels:
                raise ValueError(f"block {block!r} ({found} channels) is not an SE block of {name}")
            if found != channels[block]:
                raise ValueError(f"block {block!r} has {found} channels, but the SE block of {name} has "
                                 f"{channels[block]}")
        missing = [block for block in channels if block not in self.means]
        if missing:
            raise ValueError(f"no numbers for block {missing[0]!r} ({channels[missing[0]]} channels) of {name}"
                             + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))

    def stage_blocks(self):
        """The last SE block of each stage (the blocks the paper's Figure 6 shows).

        A stage is what comes before a block's index in its name: "layer2.2.se"
        is in stage "layer2"; blocks named without an index are their own stage.
        """
        last = {}
        for name in self.blocks:
            last[_stage_of(name)] = name
        return list(last.values())

    def save(self, path):
        """Write the numbers to ``path`` as .npz (atomically): blocks, classes, counts, and one
        (K, C) array per block under ``"mean:<block name>"``. No pickles."""
        arrays = {"blocks": np.array(self.blocks), "classes": np.array(self.classes),
                  "counts": np.asarray(self.counts)}
        arrays.update({f"mean:{name}": self.means[name] for name in self.blocks})
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
        return path

    @classmethod
    def load(cls, path):
        """Read what :meth:`save` wrote, with ``ms.load``'s budgets (``minise.io.npz.load_npz``).

        Raises ValueError (``SerializationError`` for a damaged or hostile file) naming the file
        when a member is missing or extra, or the arrays do not fit together: K classes, K counts
        (none negative), and a (K, C) array of means in [0, 1] per block.
        """
        arrays = load_npz(path)

        def member(key, kind, ndim):
            if key not in arrays:
                raise ValueError(f"{path}: no {key!r} array (not written by Excitations.save?)")
            a = arrays[key]
            if a.dtype.kind not in kind or a.ndim != ndim:
                raise ValueError(f"{path}: {key!r} is a {a.ndim}-D {a.dtype} array, expected {ndim}-D of kind {kind}")
            return a

        blocks = [str(b) for b in member("blocks", "U", 1)]
        classes = [str(c) for c in member("classes", "U", 1)]
        counts = member("counts", "iu", 1)
        means = {b: member(f"mean:{b}", "f", 2) for b in blocks}
        for b, m in means.items():
            if len(counts) != len(classes) or m.shape[0] != len(classes):
                raise ValueError(f"{path}: {len(classes)} classes, {len(counts)} counts and {m.shape[0]} rows "
                                 f"of means for block {b!r}: expected one per class")
            if not (np.isfinite(m).all() and m.min(initial=0) >= 0 and m.max(initial=0) <= 1):
                raise ValueError(f"{path}: the means of block {b!r} are not all in [0, 1] (an excitation is a "
                                 "sigmoid's output)")
        if (counts < 0).any():
            raise ValueError(f"{path}: negative image counts {counts.tolist()}")
        extra = sorted(set(arrays) - {"blocks", "classes", "counts"} - {f"mean:{b}" for b in blocks})
        if extra:
            raise ValueError(f"{path}: unexpected arrays {extra} (Excitations.save writes blocks, classes, counts "
                             "and one mean:<block> per block)")
        return cls(blocks, means, counts, classes)


def _stage_of(name):
    parts = name.split(".")
    digits = [i for i, part in enumerate(parts) if part.isdigit()]
    return ".".join(parts[: digits[-1]]) if digits else name


def excitations_per_class(model, loader, num_classes=None, classes=None):
    """Run ``loader`` through ``model`` (eval mode, no_grad) and average every SE block's
    excitation per class. Returns :class:`Excitations`.

    After each batch, each ``nn.SEBlock``'s ``last_excitation`` (N, C) is added
    to its class's row with ``np.add.at``; the sums become means at the end.
    """
    blocks = [(name, m) for name, m in model.named_modules() if isinstance(m, SEBlock)]
    if not blocks:
        raise ValueError(f"excitations_per_class: {type(model).__name__} has no nn.SEBlock; "
                         "use an SE model such as se_resnet20")
    dataset = getattr(loader, "dataset", None)
    if classes is None and getattr(dataset, "classes", None) is not None:  # a TensorDataset has none
        classes = list(dataset.classes)
    if num_classes is None:
        if classes is None:
            raise ValueError("excitations_per_class: pass num_classes or classes (the loader has no dataset)")
        num_classes = len(classes)
    classes = classes or [str(k) for k in range(num_classes)]
    sums = {name: np.zeros((num_classes, m.channels)) for name, m in blocks}
    counts = np.zeros(num_classes, dtype=np.int64)
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            for x, y in loader:
                model(x)
                labels = backend.to_numpy(y.data if isinstance(y, Tensor) else y)
                np.add.at(counts, labels, 1)
                for name, m in blocks:
                    np.add.at(sums[name], labels, m.last_excitation.astype(np.float64))
    finally:
        model.train(was_training)
    if counts.sum() == 0:     # all-zero means would look like results
        raise ValueError("excitations_per_class: the loader yielded no images; nothing to average")
    means = {name: s / np.maximum(counts, 1)[:, None] for name, s in sums.items()}
    return Excitations([name for name, _ in blocks], means, counts, list(classes))
