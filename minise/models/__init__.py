"""CIFAR ResNets, SE-ResNets, the ImageNet (SE-)ResNet-50, a small (SE-)Inception network, and the zoo.

    from minise import models
    model = models.se_resnet20(num_classes=10, reduction=16)
    model = models.get("se_resnet20", in_channels=1)     # Fashion-MNIST
    models.list()                                         # every name get() accepts
"""

from .imagenet import (
    LEGACY_KEY_MAP,
    Bottleneck,
    ImageNetResNet,
    from_timm_state_dict,
    load_timm_state_dict,
    resnet50,
    se_resnet50,
    timm_naming,
    to_timm_state_dict,
)
from .inception import BasicConv2d, InceptionModule, InceptionSmall, inception_small, se_inception_small
from .resnet import (
    INTEGRATIONS,
    BasicBlock,
    ResNet,
    ShortcutA,
    resnet20,
    resnet32,
    resnet44,
    resnet56,
    resnet110,
    se_resnet20,
    se_resnet32,
    se_resnet44,
    se_resnet56,
    se_resnet110,
)
from .weights import WeightsError, read_safetensors, sha256sum
from .zoo import MODELS, get, names


def list():  # noqa: A001 - the name PyTorch-style zoos use: models.list()
    """Sorted names of every model ``get`` accepts."""
    return names()


__all__ = [
    "get",
    "list",
    "MODELS",
    "INTEGRATIONS",
    "BasicBlock",
    "ShortcutA",
    "ResNet",
    "BasicConv2d",
    "InceptionModule",
    "InceptionSmall",
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "resnet110",
    "se_resnet20",
    "se_resnet32",
    "se_resnet44",
    "se_resnet56",
    "se_resnet110",
    "inception_small",
    "se_inception_small",
    "Bottleneck",
    "ImageNetResNet",
    "resnet50",
    "se_resnet50",
    "LEGACY_KEY_MAP",
    "timm_naming",
    "from_timm_state_dict",
    "to_timm_state_dict",
    "load_timm_state_dict",
    "read_safetensors",
    "sha256sum",
    "WeightsError",
]
