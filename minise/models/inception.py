"""A small Inception network for 32x32 images, with and without SE (the paper's Fig. 2).

An Inception module runs four branches side by side on the same input and
concatenates their outputs along the channel axis:

    branch1x1:   1x1 conv
    branch3x3:   1x1 conv (reduce) -> 3x3 conv
    branch5x5:   1x1 conv (reduce) -> 3x3 conv -> 3x3 conv   (a 5x5 receptive field, as Inception-v3 factorises it)
    branch_pool: 3x3 max pool (stride 1) -> 1x1 conv

every conv followed by BatchNorm and ReLU. In SE-Inception the SE block
recalibrates the concatenated output: ``se(concat(branches))``.

The network:

    stem  3x3 conv, 32 channels                     32x32
    inception1 -> 64 channels                       32x32
    2x2 max pool                                    16x16
    inception2 -> 128 channels                      16x16
    2x2 max pool                                     8x8
    inception3 -> 192 channels                       8x8
    global average pool - Linear(192, num_classes)

The widths are multiples of 16, so at r = 16 the SE overhead follows the
paper's formula exactly.
"""

from .. import functional as F
from .. import nn

__all__ = ["BasicConv2d", "InceptionModule", "InceptionSmall", "inception_small", "se_inception_small"]


class BasicConv2d(nn.Module):
    """conv (no bias) - BatchNorm - ReLU."""

    def __init__(self, in_channels, out_channels, kernel_size, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class InceptionModule(nn.Module):
    """Four parallel branches, concatenated on the channel axis, then (optionally) SE.

    x: (N, in_channels, H, W) -> (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W).
    """

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj, se_reduction=None):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, ch1x1, 1)
        self.branch3x3 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3red, 1),
            BasicConv2d(ch3x3red, ch3x3, 3, padding=1),
        )
        self.branch5x5 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5red, 1),
            BasicConv2d(ch5x5red, ch5x5, 3, padding=1),
            BasicConv2d(ch5x5, ch5x5, 3, padding=1),
        )
        self.branch_pool = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1),
            BasicConv2d(in_channels, pool_proj, 1),
        )
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj
        self.se = nn.SEBlock(self.out_channels, se_reduction) if se_reduction is not None else None

    def forward(self, x):
        branches = [self.branch1x1(x), self.branch3x3(x), self.branch5x5(x), self.branch_pool(x)]
        out = F.concatenate(branches, axis=1)
        return self.se(out) if self.se is not None else out


class InceptionSmall(nn.Module):
    """Stem, three Inception modules with two 2x2 max pools between them, global pool, Linear."""

    def __init__(self, num_classes=10, in_channels=3, se_reduction=None):
        super().__init__()
        for name, value in (("num_classes", num_classes), ("in_channels", in_channels)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"InceptionSmall: {name} must be a positive int, got {value!r}")
        if se_reduction is not None and (not isinstance(se_reduction, int) or se_reduction <= 0):
            raise ValueError(f"InceptionSmall: reduction must be a positive int, got {se_reduction!r}")
        self.stem = BasicConv2d(in_channels, 32, 3, padding=1)
        self.inception1 = InceptionModule(32, 16, 16, 24, 8, 12, 12, se_reduction)     # -> 64
        self.pool1 = nn.MaxPool2d(2)
        self.inception2 = InceptionModule(64, 32, 32, 48, 16, 24, 24, se_reduction)    # -> 128
        self.pool2 = nn.MaxPool2d(2)
        self.inception3 = InceptionModule(128, 48, 48, 80, 16, 32, 32, se_reduction)   # -> 192
        self.linear = nn.Linear(self.inception3.out_channels, num_classes)
        self.apply(_init_weights)

    def forward(self, x):
        """x: (N, in_channels, H, W) -> logits (N, num_classes); H and W divisible by 4."""
        out = self.inception1(self.stem(x))
        out = self.inception2(self.pool1(out))
        out = self.inception3(self.pool2(out))
        return self.linear(F.global_avg_pool2d(out))


def _init_weights(module):
    if isinstance(module, nn.Conv2d):
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")


def inception_small(num_classes=10, in_channels=3):
    """The small Inception network without SE."""
    return InceptionSmall(num_classes, in_channels)


def se_inception_small(num_classes=10, reduction=16, in_channels=3):
    """The small Inception network with an SE block on each Inception module's output."""
    return InceptionSmall(num_classes, in_channels, reduction)
