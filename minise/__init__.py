"""minise: Squeeze-and-Excitation networks from scratch, on NumPy (CPU) and CuPy (GPU).

    import minise as ms
    import minise.functional as F
    from minise import nn, optim, models, data
"""

__version__ = "0.1.0"

from .autograd import Function, Tensor, enable_grad, is_grad_enabled, no_grad, tensor
from .backend import manual_seed
from .gradcheck import GradcheckError, directional_gradcheck, gradcheck
from . import backend, functional
from .serialization import load, save
from . import optim
from .autograd import AnomalyError
from .debug import detect_anomaly, step_backward, trace_backward, trace_forward
from . import debug, viz
from . import nn, models
from .summary import summary
from . import data

__all__ = [
    "__version__",
    "Tensor",
    "tensor",
    "Function",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "manual_seed",
    "gradcheck",
    "directional_gradcheck",
    "GradcheckError",
    "backend",
    "functional",
    "save",
    "load",
    "optim",
    "trace_backward",
    "trace_forward",
    "step_backward",
    "detect_anomaly",
    "AnomalyError",
    "debug",
    "viz",
    "nn",
    "models",
    "summary",
    "data",
]
