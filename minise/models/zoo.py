"""The model zoo: every model by name, for the CLI and the training scripts.

    models.get("se_resnet20", reduction=8)   # -> an SE-ResNet-20 module
    models.list()                            # -> ["inception_small", "resnet20", ...]

The registry is the plain dict ``MODELS`` below: name -> the function that builds the model.
"""

from . import imagenet, inception, resnet

MODELS = {
    "resnet20": resnet.resnet20,
    "resnet32": resnet.resnet32,
    "resnet44": resnet.resnet44,
    "resnet56": resnet.resnet56,
    "resnet110": resnet.resnet110,
    "se_resnet20": resnet.se_resnet20,
    "se_resnet32": resnet.se_resnet32,
    "se_resnet44": resnet.se_resnet44,
    "se_resnet56": resnet.se_resnet56,
    "se_resnet110": resnet.se_resnet110,
    "inception_small": inception.inception_small,
    "se_inception_small": inception.se_inception_small,
    # ImageNet (224x224, 1000 classes by default): the SE paper's Table 1 networks
    "resnet50": imagenet.resnet50,
    "se_resnet50": imagenet.se_resnet50,
}


def get(name, **kwargs):
    """Build the model called ``name`` with ``kwargs`` (e.g. num_classes=10, in_channels=1)."""
    if name not in MODELS:
        raise ValueError(f"models.get: unknown model {name!r}; available: {', '.join(sorted(MODELS))}")
    try:
        return MODELS[name](**kwargs)
    except TypeError as exc:
        raise TypeError(f"models.get({name!r}): {exc}") from exc


def names():
    """Sorted names of every model in the zoo."""
    return sorted(MODELS)
