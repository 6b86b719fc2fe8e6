"""PyTorch twins of minise's CIFAR (SE-)ResNets and of the ImageNet (SE-)ResNet-50, for parity tests,
``minise bench train --compare torch`` and the safetensors bridge (docs/pytorch.md).

The ImageNet twins carry timm's exact module names, so their state dicts are those of timm's
``legacy_seresnet50`` (timm/models/senet.py) and ``seresnet50`` / ``resnet50`` (timm/models/resnet.py):
a file saved from a twin is a file saved from timm, without needing timm installed.

The twin is the widely used PyTorch CIFAR ResNet (option-A shortcut: subsample
by 2 and pad planes // 4 channels each side, or option B: 1x1 conv + BN), with
an SE module placed as the SE paper's Fig. 5 says. Its attribute names are
minise's, so ``twin.load_state_dict`` takes a minise state dict converted to
torch tensors.

Torch is imported when a twin is built, never when this module is imported:
``import minise`` does not import it, and nothing here runs without torch.
"""

__all__ = ["torch_block_class", "torch_resnet", "torch_legacy_seresnet50", "torch_timm_resnet50"]


def _torch():
    import torch

    return torch


def torch_block_class(shortcut="A", reduction=None, integration="standard"):
    """The BasicBlock class of the PyTorch CIFAR ResNet; ``reduction`` None: no SE block."""
    torch = _torch()
    tnn, tF = torch.nn, torch.nn.functional

    class SE(tnn.Module):
        def __init__(self, c, r):
            super().__init__()
            hidden = max(1, c // r)
            self.fc1, self.fc2 = tnn.Linear(c, hidden), tnn.Linear(hidden, c)

        def forward(self, x):
            s = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3))))))
            return x * s[:, :, None, None]

    class LambdaLayer(tnn.Module):
        def __init__(self, fn):
            super().__init__()
            self.fn = fn

        def forward(self, x):
            return self.fn(x)

    class Block(tnn.Module):
        def __init__(self, in_planes, planes, stride):
            super().__init__()
            self.conv1 = tnn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
            self.bn1 = tnn.BatchNorm2d(planes)
            self.conv2 = tnn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
            self.bn2 = tnn.BatchNorm2d(planes)
            if reduction is not None:
                self.se = SE(in_planes if integration == "pre" else planes, reduction)
            self.shortcut = tnn.Sequential()
            if stride != 1 or in_planes != planes:
                if shortcut == "A":
                    self.shortcut = LambdaLayer(
                        lambda x: tF.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4)))
                else:
                    self.shortcut = tnn.Sequential(tnn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                                   tnn.BatchNorm2d(planes))

        def residual(self, x):
            return self.bn2(self.conv2(tF.relu(self.bn1(self.conv1(x)))))

        def forward(self, x):
            if reduction is None:
                return tF.relu(self.residual(x) + self.shortcut(x))
            if integration == "standard":
                return tF.relu(self.se(self.residual(x)) + self.shortcut(x))
            if integration == "pre":
                return tF.relu(self.residual(self.se(x)) + self.shortcut(x))
            if integration == "post":
                return self.se(tF.relu(self.residual(x) + self.shortcut(x)))
            return tF.relu(self.residual(x) + self.se(self.shortcut(x)))

    return Block


def torch_resnet(n, num_classes=10, in_channels=3, shortcut="A", reduction=None, integration="standard"):
    """The PyTorch CIFAR ResNet of depth 6n + 2 built from ``torch_block_class`` blocks."""
    torch = _torch()
    tnn, tF = torch.nn, torch.nn.functional
    Block = torch_block_class(shortcut, reduction, integration)

    class ResNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(in_channels, 16, 3, stride=1, padding=1, bias=False)
            self.bn1 = tnn.BatchNorm2d(16)
            in_planes = 16
            for i, planes in enumerate((16, 32, 64)):
                blocks = []
                for j in range(n):
                    blocks.append(Block(in_planes, planes, 2 if i > 0 and j == 0 else 1))
                    in_planes = planes
                setattr(self, f"layer{i + 1}", tnn.Sequential(*blocks))
            self.linear = tnn.Linear(64, num_classes)

        def forward(self, x):
            out = tF.relu(self.bn1(self.conv1(x)))
            out = self.layer3(self.layer2(self.layer1(out)))
            return self.linear(tF.adaptive_avg_pool2d(out, 1).flatten(1))

    return ResNet()


def _torch_se_module(tnn, torch, timm_layers):
    """timm's SE module: 1x1 convolutions fc1 / fc2 with biases (legacy: + relu, sigmoid; layers: + bn, act, gate)."""

    class SEModule(tnn.Module):
        def __init__(self, channels, reduction=16):
            super().__init__()
            hidden = channels // reduction
            self.fc1 = tnn.Conv2d(channels, hidden, kernel_size=1)
            if timm_layers:
                self.bn, self.act = tnn.Identity(), tnn.ReLU(inplace=True)
            else:
                self.relu = tnn.ReLU(inplace=True)
            self.fc2 = tnn.Conv2d(hidden, channels, kernel_size=1)
            if timm_layers:
                self.gate = tnn.Sigmoid()
            else:
                self.sigmoid = tnn.Sigmoid()

        def forward(self, x):
            s = self.fc1(x.mean((2, 3), keepdim=True))
            s = self.act(self.bn(s)) if timm_layers else self.relu(s)
            s = self.fc2(s)
            return x * (self.gate(s) if timm_layers else self.sigmoid(s))

    return SEModule


def _add_resnet50_stages(net, tnn, block):
    """ResNet-50's four stages as ``net.layer1`` .. ``net.layer4`` (paper Table 1: 3, 4, 6, 3 blocks
    of 64-512 planes, expansion 4): the first block of each stage has a 1x1 conv + BN shortcut and,
    from stage 2 on, stride 2. ``block(inplanes, planes, stride=1, downsample=None)``."""
    inplanes = 64
    for i, (planes, n) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3))):
        stride = 1 if i == 0 else 2
        downsample = tnn.Sequential(tnn.Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False),
                                    tnn.BatchNorm2d(planes * 4))
        blocks = [block(inplanes, planes, stride, downsample)]
        inplanes = planes * 4
        blocks += [block(inplanes, planes) for _ in range(1, n)]
        setattr(net, f"layer{i + 1}", tnn.Sequential(*blocks))


def torch_legacy_seresnet50(num_classes=1000, in_chans=3):
    """timm's ``legacy_seresnet50`` (SENet with SEResNetBottleneck: stride in conv1, ceil-mode stem pool)."""
    from collections import OrderedDict

    torch = _torch()
    tnn = torch.nn
    SEModule = _torch_se_module(tnn, torch, timm_layers=False)

    class SEResNetBottleneck(tnn.Module):
        expansion = 4

        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = tnn.Conv2d(inplanes, planes, kernel_size=1, bias=False, stride=stride)
            self.bn1 = tnn.BatchNorm2d(planes)
            self.conv2 = tnn.Conv2d(planes, planes, kernel_size=3, padding=1, bias=False)
            self.bn2 = tnn.BatchNorm2d(planes)
            self.conv3 = tnn.Conv2d(planes, planes * 4, kernel_size=1, bias=False)
            self.bn3 = tnn.BatchNorm2d(planes * 4)
            self.relu = tnn.ReLU(inplace=True)
            self.se_module = SEModule(planes * 4, reduction=16)
            self.downsample = downsample

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            shortcut = x if self.downsample is None else self.downsample(x)
            return self.relu(self.se_module(out) + shortcut)

    class SENet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.layer0 = tnn.Sequential(OrderedDict([
                ("conv1", tnn.Conv2d(in_chans, 64, kernel_size=7, stride=2, padding=3, bias=False)),
                ("bn1", tnn.BatchNorm2d(64)),
                ("relu1", tnn.ReLU(inplace=True)),
            ]))
            self.pool0 = tnn.MaxPool2d(3, stride=2, ceil_mode=True)
            _add_resnet50_stages(self, tnn, SEResNetBottleneck)
            self.global_pool = tnn.AdaptiveAvgPool2d(1)
            self.last_linear = tnn.Linear(2048, num_classes)

        def forward(self, x):
            x = self.pool0(self.layer0(x))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.last_linear(self.global_pool(x).flatten(1))

    return SENet()


def torch_timm_resnet50(se=True, num_classes=1000, in_chans=3):
    """timm's ``seresnet50`` (``se=True``) or ``resnet50``: stride in conv2 (3x3), stem pool padded by 1."""
    torch = _torch()
    tnn = torch.nn
    SEModule = _torch_se_module(tnn, torch, timm_layers=True)

    class Bottleneck(tnn.Module):
        expansion = 4

        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            outplanes = planes * 4
            self.conv1 = tnn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
            self.bn1 = tnn.BatchNorm2d(planes)
            self.act1 = tnn.ReLU(inplace=True)
            self.conv2 = tnn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
            self.bn2 = tnn.BatchNorm2d(planes)
            self.drop_block = tnn.Identity()
            self.act2 = tnn.ReLU(inplace=True)
            self.aa = tnn.Identity()
            self.conv3 = tnn.Conv2d(planes, outplanes, kernel_size=1, bias=False)
            self.bn3 = tnn.BatchNorm2d(outplanes)
            self.se = SEModule(outplanes) if se else None
            self.act3 = tnn.ReLU(inplace=True)
            self.downsample = downsample

        def forward(self, x):
            out = self.act1(self.bn1(self.conv1(x)))
            out = self.act2(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            if self.se is not None:
                out = self.se(out)
            shortcut = x if self.downsample is None else self.downsample(x)
            return self.act3(out + shortcut)

    class ResNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(in_chans, 64, kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = tnn.BatchNorm2d(64)
            self.act1 = tnn.ReLU(inplace=True)
            self.maxpool = tnn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            _add_resnet50_stages(self, tnn, Bottleneck)
            self.global_pool = tnn.AdaptiveAvgPool2d(1)
            self.fc = tnn.Linear(2048, num_classes)

        def forward(self, x):
            x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(self.global_pool(x).flatten(1))

    return ResNet()
