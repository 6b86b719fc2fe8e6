"""PyTorch twins of minise's CIFAR (SE-)ResNets, for parity tests and ``minise bench train --compare torch``.

The twin is the widely used PyTorch CIFAR ResNet (option-A shortcut: subsample
by 2 and pad planes // 4 channels each side, or option B: 1x1 conv + BN), with
an SE module placed as the SE paper's Fig. 5 says. Its attribute names are
minise's, so ``twin.load_state_dict`` takes a minise state dict converted to
torch tensors.

Torch is imported when a twin is built, never when this module is imported:
``import minise`` does not import it, and nothing here runs without torch.
"""

__all__ = ["torch_block_class", "torch_resnet"]


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
