"""CIFAR ResNets (He et al. 2016, section 4.2) and SE-ResNets (Hu et al. 2018).

    conv3x3(16) - BN - ReLU                                    32x32
    stage 1: n BasicBlocks, 16 channels                        32x32
    stage 2: n BasicBlocks, 32 channels (the first, stride 2)  16x16
    stage 3: n BasicBlocks, 64 channels (the first, stride 2)   8x8
    global average pool - Linear(64, num_classes)

depth = 6n + 2: ResNet-20 (n=3), 32, 44, 56, 110 (n=18).

Shortcuts where the shape changes: option A (the paper's CIFAR choice, no
parameters) takes every second pixel and pads the new channels with zeros,
half before and half after the existing ones; option B is a 1x1 convolution
with stride 2 followed by BatchNorm.

Attribute names follow the common PyTorch CIFAR implementation, so state-dict
keys read ``conv1.weight``, ``bn1.running_mean``, ``layer1.0.conv1.weight``,
``layer2.1.se.fc2.weight``, ``layer2.0.shortcut.0.weight`` (option B) and
``linear.weight`` for the classifier.

Where the SE block goes (``integration``, the paper's section 6.5, Fig. 5 and Table 14):

    standard:  out = relu(se(residual(x)) + shortcut(x))     (the SE-ResNet module, Fig. 3)
    pre:       out = relu(residual(se(x)) + shortcut(x))     (SE-PRE: before the residual unit)
    post:      out = se(relu(residual(x) + shortcut(x)))     (SE-POST: after the summation, after ReLU)
    identity:  out = relu(residual(x) + se(shortcut(x)))     (SE-Identity: on the identity path)

with residual(x) = bn2(conv2(relu(bn1(conv1(x))))). In "pre" the SE block
works on the block's input, so it has in_planes channels.

Initialisation: Kaiming normal with fan_out for every convolution (std =
sqrt(2 / (out_channels * 3 * 3))), BatchNorm weight 1 and bias 0; Linear
layers (the classifier and the SE bottleneck) keep PyTorch's default.
"""

from .. import functional as F
from .. import nn

__all__ = ["BasicBlock", "ShortcutA", "ResNet", "INTEGRATIONS",
           "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
           "se_resnet20", "se_resnet32", "se_resnet44", "se_resnet56", "se_resnet110"]

INTEGRATIONS = ("standard", "pre", "post", "identity")


class ShortcutA(nn.Module):
    """Option-A shortcut: subsample by ``stride``, zero-pad the channels evenly on both sides.

    x: (N, in_planes, H, W) -> (N, planes, H / stride, W / stride). No parameters.
    For the CIFAR ResNets (planes = 2 * in_planes) that pads planes // 4 channels each side.
    """

    def __init__(self, in_planes, planes, stride):
        super().__init__()
        if planes < in_planes:
            raise ValueError(f"ShortcutA: cannot shrink {in_planes} channels to {planes} by padding")
        self.in_planes, self.planes, self.stride = in_planes, planes, stride
        self.pad_before = (planes - in_planes) // 2
        self.pad_after = planes - in_planes - self.pad_before

    def forward(self, x):
        if self.stride != 1:
            x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, ((0, 0), (self.pad_before, self.pad_after), (0, 0), (0, 0)))

    def extra_repr(self):
        return f"{self.in_planes}, {self.planes}, stride={self.stride}"


class BasicBlock(nn.Module):
    """conv3x3 - BN - ReLU - conv3x3 - BN (- SE) + shortcut, then ReLU.

    in_planes -> planes channels; ``stride`` 2 halves H and W. ``se_reduction``
    None builds a plain ResNet block; an int adds an SEBlock placed as
    ``integration`` says (see the module docstring).
    """

    expansion = 1

    def __init__(self, in_planes, planes, stride=1, shortcut="A", se_reduction=None, integration="standard"):
        super().__init__()
        if integration not in INTEGRATIONS:
            raise ValueError(f"BasicBlock: integration must be one of {INTEGRATIONS}, got {integration!r}")
        self.integration = integration
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if se_reduction is not None:
            se_channels = in_planes if integration == "pre" else planes
            self.se = nn.SEBlock(se_channels, se_reduction)
        else:
            self.se = None
        if stride != 1 or in_planes != planes:
            if shortcut == "A":
                self.shortcut = ShortcutA(in_planes, planes, stride)
            elif shortcut == "B":
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                    nn.BatchNorm2d(planes),
                )
            else:
                raise ValueError(f"BasicBlock: shortcut must be 'A' or 'B', got {shortcut!r}")
        else:
            self.shortcut = nn.Sequential()  # the identity, with no state-dict keys

    def residual(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return self.bn2(self.conv2(out))

    def forward(self, x):
        se, where = self.se, self.integration
        if se is None:
            return F.relu(self.residual(x) + self.shortcut(x))
        if where == "standard":
            return F.relu(se(self.residual(x)) + self.shortcut(x))
        if where == "pre":
            return F.relu(self.residual(se(x)) + self.shortcut(x))
        if where == "post":
            return se(F.relu(self.residual(x) + self.shortcut(x)))
        return F.relu(self.residual(x) + se(self.shortcut(x)))  # identity


class ResNet(nn.Module):
    """A CIFAR ResNet of depth 6n + 2: ``ResNet(n, num_classes, ...)``; see the module docstring."""

    widths = (16, 32, 64)

    def __init__(self, num_blocks, num_classes=10, in_channels=3, shortcut="A", se_reduction=None,
                 integration="standard"):
        super().__init__()
        for name, value in (("num_blocks", num_blocks), ("num_classes", num_classes), ("in_channels", in_channels)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"ResNet: {name} must be a positive int, got {value!r}")
        if shortcut not in ("A", "B"):
            raise ValueError(f"ResNet: shortcut must be 'A' or 'B', got {shortcut!r}")
        if integration not in INTEGRATIONS:
            raise ValueError(f"ResNet: integration must be one of {INTEGRATIONS}, got {integration!r}")
        self.depth = 6 * num_blocks + 2
        self.se_reduction = se_reduction
        self.conv1 = nn.Conv2d(in_channels, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        in_planes = 16
        for i, planes in enumerate(self.widths):
            blocks = []
            for j in range(num_blocks):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(BasicBlock(in_planes, planes, stride, shortcut, se_reduction, integration))
                in_planes = planes
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.linear = nn.Linear(in_planes, num_classes)
        self.apply(_init_weights)

    def features(self, x):
        """x: (N, in_channels, H, W) -> (N, 64, H / 4, W / 4), the last stage's feature map."""
        out = F.relu(self.bn1(self.conv1(x)))
        return self.layer3(self.layer2(self.layer1(out)))

    def forward(self, x):
        """x: (N, in_channels, H, W) -> logits (N, num_classes)."""
        return self.linear(F.global_avg_pool2d(self.features(x)))


def _init_weights(module):
    if isinstance(module, nn.Conv2d):
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def _checked_reduction(reduction):
    if not isinstance(reduction, int) or isinstance(reduction, bool) or reduction <= 0:
        raise ValueError(f"se_resnet: reduction must be a positive int, got {reduction!r}")
    return reduction


def _resnet(n, num_classes, in_channels, shortcut):
    return ResNet(n, num_classes, in_channels, shortcut)


def _se_resnet(n, num_classes, reduction, integration, in_channels, shortcut):
    return ResNet(n, num_classes, in_channels, shortcut, _checked_reduction(reduction), integration)


def resnet20(num_classes=10, in_channels=3, shortcut="A"):
    """ResNet-20 (n = 3): 269,722 parameters with option-A shortcuts, 272,474 with option B."""
    return _resnet(3, num_classes, in_channels, shortcut)


def resnet32(num_classes=10, in_channels=3, shortcut="A"):
    """ResNet-32 (n = 5)."""
    return _resnet(5, num_classes, in_channels, shortcut)


def resnet44(num_classes=10, in_channels=3, shortcut="A"):
    """ResNet-44 (n = 7)."""
    return _resnet(7, num_classes, in_channels, shortcut)


def resnet56(num_classes=10, in_channels=3, shortcut="A"):
    """ResNet-56 (n = 9)."""
    return _resnet(9, num_classes, in_channels, shortcut)


def resnet110(num_classes=10, in_channels=3, shortcut="A"):
    """ResNet-110 (n = 18)."""
    return _resnet(18, num_classes, in_channels, shortcut)


def se_resnet20(num_classes=10, reduction=16, integration="standard", in_channels=3, shortcut="A"):
    """SE-ResNet-20 (n = 3): 272,095 parameters at r = 16 with option A (2,373 more than ResNet-20)."""
    return _se_resnet(3, num_classes, reduction, integration, in_channels, shortcut)


def se_resnet32(num_classes=10, reduction=16, integration="standard", in_channels=3, shortcut="A"):
    """SE-ResNet-32 (n = 5)."""
    return _se_resnet(5, num_classes, reduction, integration, in_channels, shortcut)


def se_resnet44(num_classes=10, reduction=16, integration="standard", in_channels=3, shortcut="A"):
    """SE-ResNet-44 (n = 7)."""
    return _se_resnet(7, num_classes, reduction, integration, in_channels, shortcut)


def se_resnet56(num_classes=10, reduction=16, integration="standard", in_channels=3, shortcut="A"):
    """SE-ResNet-56 (n = 9)."""
    return _se_resnet(9, num_classes, reduction, integration, in_channels, shortcut)


def se_resnet110(num_classes=10, reduction=16, integration="standard", in_channels=3, shortcut="A"):
    """SE-ResNet-110 (n = 18)."""
    return _se_resnet(18, num_classes, reduction, integration, in_channels, shortcut)
