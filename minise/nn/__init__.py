"""Modules: layers that own parameters, the SE block, and the containers models are built from.

    from minise import nn
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.SEBlock(16, reduction=4))
"""

from . import functional, init  # ms.nn.functional after `import minise`, as torch.nn.functional
from .containers import Identity, ModuleList, Sequential
from .layers import (
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Flatten,
    GlobalAvgPool2d,
    GlobalMaxPool2d,
    Linear,
    LogSoftmax,
    MaxPool2d,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from .loss import BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from .module import Module, RemovableHandle, StateDictError
from .parameter import Parameter
from .se import SEBlock

__all__ = [
    "init",
    "functional",
    "Module",
    "Parameter",
    "Sequential",
    "ModuleList",
    "Identity",
    "RemovableHandle",
    "StateDictError",
    "Linear",
    "Conv2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "ReLU",
    "Sigmoid",
    "Tanh",
    "Flatten",
    "Dropout",
    "MaxPool2d",
    "AvgPool2d",
    "GlobalAvgPool2d",
    "GlobalMaxPool2d",
    "SEBlock",
    "Softmax",
    "LogSoftmax",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "CrossEntropyLoss",
    "NLLLoss",
    "MSELoss",
    "L1Loss",
    "BCEWithLogitsLoss",
]
