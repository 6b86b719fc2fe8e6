"""The SE paper's ImageNet networks: ResNet-50 and SE-ResNet-50 (Hu et al., Table 1), with bottleneck blocks.

    conv 7x7, 64, stride 2 - BN - ReLU - max pool 3x3, stride 2          112x112 -> 56x56
    layer1: 3 bottlenecks [1x1, 64;  3x3, 64;  1x1, 256]  (+ SE, r = 16)   56x56
    layer2: 4 bottlenecks [1x1, 128; 3x3, 128; 1x1, 512]                  28x28
    layer3: 6 bottlenecks [1x1, 256; 3x3, 256; 1x1, 1024]                 14x14
    layer4: 3 bottlenecks [1x1, 512; 3x3, 512; 1x1, 2048]                  7x7
    global average pool - fc(2048, 1000)

A bottleneck: out = relu(shortcut(x) + se(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x))))))))));
the first block of a stage changes the width (and, from layer2 on, halves H and W), so its
shortcut is ``downsample`` = 1x1 conv (stride 2 where it halves) + BN. The SE block sits where
the paper's Fig. 3 puts it: on the residual branch, after bn3, before the addition.

Two layouts, which differ only in where a stage's stride 2 sits (the parameters are the same):

- ``layout="caffe"`` (the default): stride 2 in the block's FIRST 1x1 convolution, as the
  original Caffe models of ResNet (He et al.) and of the SE paper, and timm's
  ``legacy_seresnet50`` (their port); the stem's max pool uses ceil mode without padding, as
  Caffe did. This is the network the paper's Table 2 costs at 3.86 (ResNet-50) and 3.87
  (SE-ResNet-50) GFLOPs: the 3x3 convolution already runs at the halved resolution.
- ``layout="torchvision"``: stride 2 in the 3x3 convolution ("ResNet v1.5"), as torchvision's
  resnet50 and timm's ``seresnet50``; the stem's max pool pads by 1. The 3x3 convolution of each
  stage's first block runs at twice the resolution: about 4.1 G multiply-adds at 224x224.

The paper's "GFLOPs" count multiply-adds (one multiply-accumulate = one "FLOP" there), which is
what ``ms.summary`` counts as MACs.

State-dict keys are torchvision's / timm's ``resnet.py`` names (``conv1``, ``bn1``,
``layer1.0.conv1.weight``, ``layer2.0.downsample.0.weight``, ``layer3.1.se.fc1.weight``,
``fc.weight``), the SE block's ``fc1``/``fc2`` being Linear layers (timm's are 1x1 convolutions:
the same numbers with two trailing axes of size 1). ``load_timm_state_dict`` (and
``weights=PATH``) reads both of timm's namings: see :data:`LEGACY_KEY_MAP`.
"""

import numpy as np

from .. import functional as F
from .. import nn
from .resnet import _init_weights  # the same initialisation as the CIFAR ResNets (He et al.)
from .weights import WeightsError, read_safetensors

__all__ = ["Bottleneck", "ImageNetResNet", "resnet50", "se_resnet50", "load_timm_state_dict",
           "from_timm_state_dict", "to_timm_state_dict", "timm_naming", "LEGACY_KEY_MAP", "LAYOUTS"]

LAYOUTS = ("caffe", "torchvision")

# timm's legacy_seresnet50 (timm/models/senet.py, Cadene's port of the Caffe model) -> minise:
# a prefix or infix on the left becomes the one on the right; everything else is already the same.
LEGACY_KEY_MAP = (
    ("layer0.conv1.", "conv1."),       # the stem lives in a Sequential called layer0
    ("layer0.bn1.", "bn1."),
    (".se_module.", ".se."),           # SEModule(fc1, relu, fc2, sigmoid) -> SEBlock(fc1, fc2)
    ("last_linear.", "fc."),           # the classifier
)


class Bottleneck(nn.Module):
    """1x1 (planes) - 3x3 (planes) - 1x1 (4 * planes), each with BN (ReLU after the first two), + SE, + shortcut.

    x: (N, in_planes, H, W) -> (N, 4 * planes, H / stride, W / stride). ``se_reduction`` None: no
    SE block. ``stride_in_1x1``: the Caffe layout (see the module docstring).
    """

    expansion = 4

    def __init__(self, in_planes, planes, stride=1, se_reduction=None, stride_in_1x1=True):
        super().__init__()
        out_planes = planes * self.expansion
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = nn.Conv2d(in_planes, planes, 1, stride=s1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=s3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.se = nn.SEBlock(out_planes, se_reduction) if se_reduction is not None else None
        if stride != 1 or in_planes != out_planes:
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out_planes))
        else:
            self.downsample = None

    def residual(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))

    def forward(self, x):
        out = self.residual(x)
        if self.se is not None:
            out = self.se(out)
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class ImageNetResNet(nn.Module):
    """ResNet-50-style network: ``blocks`` bottlenecks per stage (3, 4, 6, 3 for depth 50); see the module docstring.

    x: (N, in_channels, H, W), H and W at least 32 (224 for ImageNet) -> logits (N, num_classes).
    """

    def __init__(self, blocks=(3, 4, 6, 3), num_classes=1000, in_channels=3, se_reduction=None, layout="caffe"):
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"ImageNetResNet: layout must be one of {LAYOUTS}, got {layout!r}")
        self.layout, self.se_reduction = layout, se_reduction
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        in_planes = 64
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), blocks)):
            stage = []
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                stage.append(Bottleneck(in_planes, planes, stride, se_reduction, layout == "caffe"))
                in_planes = planes * Bottleneck.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
        self.fc = nn.Linear(in_planes, num_classes)
        self.apply(_init_weights)

    def stem(self, x):
        """conv 7x7 / 2 - BN - ReLU - max pool 3x3 / 2: (N, C, H, W) -> (N, 64, H / 4, W / 4)."""
        x = F.relu(self.bn1(self.conv1(x)))
        if self.layout == "torchvision":
            return F.max_pool2d(x, 3, 2, padding=1)
        # Caffe's ceil mode: the last window may hang over the bottom/right edge; -inf fills it
        h, w = x.shape[2:]
        extra = [(-(-(n - 3) // 2)) * 2 + 3 - n for n in (h, w)]
        if any(extra):
            x = F.pad(x, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])), value=-np.inf)
        return F.max_pool2d(x, 3, 2)

    def features(self, x):
        """x -> the last stage's feature map (N, 2048, H / 32, W / 32)."""
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))

    def forward(self, x):
        return self.fc(F.global_avg_pool2d(self.features(x)))


# --- timm's weights -----------------------------------------------------------------
def timm_naming(state):
    """Which of timm's namings ``state`` uses: "legacy" (legacy_seresnet50: ``layer0.conv1``,
    ``se_module``, ``last_linear``) or "resnet" (seresnet50 / resnet50 / torchvision: ``conv1``, ``se``, ``fc``)."""
    if any(k.startswith("layer0.") for k in state):
        return "legacy"
    if "conv1.weight" in state:
        return "resnet"
    raise WeightsError("weights: neither timm's legacy naming (layer0.conv1.weight) nor its resnet naming "
                       f"(conv1.weight) in the file; first keys: {sorted(state)[:5]}")


def from_timm_state_dict(state):
    """timm's state dict (either naming) as minise's: keys renamed by :data:`LEGACY_KEY_MAP`, the SE
    blocks' 1x1 convolution weights (C', C, 1, 1) reshaped to Linear weights (C', C)."""
    legacy = timm_naming(state) == "legacy"
    out = {}
    for key, value in state.items():
        if legacy:
            key = _rename_legacy(key)
        if ".se.fc" in key and key.endswith(".weight") and np.ndim(value) == 4:
            value = np.asarray(value).reshape(value.shape[:2])
        out[key] = value
    return out


def _rename_legacy(key):
    for old, new in LEGACY_KEY_MAP:
        if old.startswith("."):
            key = key.replace(old, new)
        elif key.startswith(old):
            key = new + key[len(old):]
    return key


def to_timm_state_dict(state, naming="resnet"):
    """minise's ResNet-50 / SE-ResNet-50 state dict in timm's naming, for ``timm_model.load_state_dict``.

    naming: "resnet" (timm's seresnet50 / resnet50, torchvision) or "legacy" (legacy_seresnet50:
    keys renamed by :data:`LEGACY_KEY_MAP` backwards). The SE blocks' Linear weights (C', C) get
    two trailing axes, (C', C, 1, 1), as timm's 1x1 convolutions. Values are NumPy arrays (Tensors
    are converted), ready for ``ms.save_safetensors``. The layout must match: "legacy" weights belong
    in a model built with ``layout="caffe"``, "resnet" ones with ``layout="torchvision"``.
    """
    if naming not in ("resnet", "legacy"):
        raise ValueError(f"to_timm_state_dict: naming must be 'resnet' or 'legacy', got {naming!r}")
    out = {}
    for key, value in state.items():
        value = value.numpy() if hasattr(value, "numpy") else np.asarray(value)
        if ".se.fc" in key and key.endswith(".weight") and value.ndim == 2:
            value = value.reshape(value.shape + (1, 1))
        if naming == "legacy":
            for old, new in LEGACY_KEY_MAP:
                if old.startswith("."):
                    key = key.replace(new, old)
                elif key.startswith(new):
                    key = old + key[len(new):]
        out[key] = value
    return out


def load_timm_state_dict(model, state, strict=True):
    """Load timm's weights (legacy_seresnet50 or seresnet50 / resnet50 naming) into ``model``.

    The file's naming fixes the layout: legacy weights need ``layout="caffe"``, the resnet naming
    ``layout="torchvision"``; a mismatch raises WeightsError before anything is copied.
    """
    naming = timm_naming(state)
    wanted = "caffe" if naming == "legacy" else "torchvision"
    if model.layout != wanted:
        raise WeightsError(f"weights: timm's {naming} naming was trained with layout={wanted!r} (stride in the "
                           f"{'1x1' if wanted == 'caffe' else '3x3'} convolution), the model has "
                           f"layout={model.layout!r}")
    return model.load_state_dict(from_timm_state_dict(state), strict=strict)


def _build(se_reduction, num_classes, in_channels, layout, weights, sha256):
    state = None
    if weights is not None:
        state = read_safetensors(weights, sha256)
        naming_layout = "caffe" if timm_naming(state) == "legacy" else "torchvision"
        if layout is not None and layout != naming_layout:
            raise WeightsError(f"weights: {weights} uses timm's layout {naming_layout!r}, but layout={layout!r} "
                               "was asked for")
        layout = naming_layout
    model = ImageNetResNet((3, 4, 6, 3), num_classes, in_channels, se_reduction, layout or "caffe")
    if state is not None:
        load_timm_state_dict(model, state)
    return model


def resnet50(num_classes=1000, in_channels=3, layout=None, weights=None, sha256=None):
    """ResNet-50 (He et al.; the SE paper's baseline): 25,557,032 parameters, 3.86 G multiply-adds at 224x224
    in the Caffe layout (4.09 G with layout="torchvision").

    weights: a local ``.safetensors`` file in timm's / torchvision's resnet50 naming (layout torchvision).
    sha256: the file's expected SHA-256 (checked before loading).
    """
    return _build(None, num_classes, in_channels, layout, weights, sha256)


def se_resnet50(num_classes=1000, reduction=16, in_channels=3, layout=None, weights=None, sha256=None):
    """SE-ResNet-50 (the SE paper, Table 1, r = 16): 28,088,024 parameters, 3.87 G multiply-adds at 224x224
    in the paper's Caffe layout (4.1 G with layout="torchvision").

    weights: a local ``.safetensors`` file saved from timm's ``legacy_seresnet50`` (the port of the
    paper's Caffe model: layout "caffe") or ``seresnet50`` (layout "torchvision"); the naming is
    detected and mapped (see :func:`from_timm_state_dict`). sha256: the file's expected SHA-256.
    Without weights the layout defaults to "caffe".
    """
    if not isinstance(reduction, int) or isinstance(reduction, bool) or reduction <= 0:
        raise ValueError(f"se_resnet50: reduction must be a positive int, got {reduction!r}")
    return _build(reduction, num_classes, in_channels, layout, weights, sha256)
