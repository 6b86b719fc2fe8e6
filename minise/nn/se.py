"""The Squeeze-and-Excitation block (Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018 / TPAMI 2019).

Given a feature map U: (N, C, H, W), the block recalibrates its channels in
three steps, each a public method so a learner can run them one at a time:

1. ``squeeze`` (eq. 2): z_c = 1 / (H W) * sum_i sum_j u_c(i, j), global
   average pooling: one number per channel that summarises the whole image.
2. ``excite`` (eq. 3): s = sigmoid(W2 relu(W1 z)), W1: (C/r, C) in ``fc1`` and
   W2: (C, C/r) in ``fc2`` — a bottleneck that models how channels depend on
   each other; the sigmoid lets several channels be emphasised at once.
3. ``reweight`` (eq. 4, "scale"): x~_c = s_c * u_c, each channel multiplied by
   its gate value.

The extra parameters are 2 C^2 / r weights (eq. 5, per block) plus C/r + C biases.
The options ``squeeze="max"`` and ``gate="tanh"|"relu"`` are the paper's
ablations (Tables 11 and 12); the defaults are the paper's choices.
"""

from .. import functional as F
from ..backend import to_numpy
from .layers import Linear, _positive_int
from .module import Module

__all__ = ["SEBlock"]

_SQUEEZES = ("avg", "max")
_GATES = ("sigmoid", "tanh", "relu")


class SEBlock(Module):
    """Squeeze-and-Excitation: x: (N, C, H, W) -> (N, C, H, W), every channel rescaled by a learned gate.

    channels: C.  reduction: r; the bottleneck has hidden = max(1, C // r) units.
    squeeze: "avg" (the paper) or "max".  gate: "sigmoid" (the paper), "tanh" or "relu".
    After each forward, ``last_excitation`` holds the gate values s as a NumPy (N, C) array.
    """

    def __init__(self, channels, reduction=16, squeeze="avg", gate="sigmoid"):
        super().__init__()
        self.channels = _positive_int(channels, "channels", "SEBlock")
        self.reduction = _positive_int(reduction, "reduction", "SEBlock")
        if squeeze not in _SQUEEZES:
            raise ValueError(f"SEBlock: squeeze must be one of {_SQUEEZES}, got {squeeze!r}")
        if gate not in _GATES:
            raise ValueError(f"SEBlock: gate must be one of {_GATES}, got {gate!r}")
        self.squeeze_type = squeeze
        self.gate = gate
        self.hidden = max(1, self.channels // self.reduction)
        self.fc1 = Linear(self.channels, self.hidden)
        self.fc2 = Linear(self.hidden, self.channels)
        self._last_excitation = None  # the raw (numpy or cupy) array; converted on access

    # --- the three steps ------------------------------------------------------
    def squeeze(self, x):
        """Eq. 2: z = global pooling of x over H and W.   x: (N, C, H, W) -> z: (N, C)."""
        self._check_input(x)
        if self.squeeze_type == "avg":
            return F.global_avg_pool2d(x)
        return F.global_max_pool2d(x)

    def excite(self, z):
        """Eq. 3: s = gate(W2 relu(W1 z) + biases).   z: (N, C) -> s: (N, C), in (0, 1) for the sigmoid."""
        s = self.fc2(F.relu(self.fc1(z)))
        if self.gate == "sigmoid":
            s = F.sigmoid(s)
        elif self.gate == "tanh":
            s = F.tanh(s)
        else:
            s = F.relu(s)
        self._last_excitation = s.data  # keep the device array: no GPU sync every step
        return s

    def reweight(self, x, s):
        """Eq. 4: x~[n, c] = s[n, c] * x[n, c], i.e. x * s[:, :, None, None].   x: (N, C, H, W), s: (N, C)."""
        if s.shape != x.shape[:2]:
            raise ValueError(f"SEBlock.reweight: s must have shape (N, C) = {x.shape[:2]} to scale x of shape "
                             f"{x.shape}, got {s.shape}")
        return x * s.reshape(s.shape[0], s.shape[1], 1, 1)

    def forward(self, x):
        return self.reweight(x, self.excite(self.squeeze(x)))

    # --- inspection -------------------------------------------------------------
    @property
    def last_excitation(self):
        """The gate values s of the last forward, as a NumPy (N, C) array (None before the first)."""
        if self._last_excitation is None:
            return None
        return to_numpy(self._last_excitation)

    def _check_input(self, x):
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"SEBlock: expected x of shape (N, {self.channels}, H, W), got {x.shape}")

    def extra_repr(self):
        text = f"channels={self.channels}, reduction={self.reduction}"
        if self.squeeze_type != "avg":
            text += f", squeeze={self.squeeze_type!r}"
        if self.gate != "sigmoid":
            text += f", gate={self.gate!r}"
        return text
