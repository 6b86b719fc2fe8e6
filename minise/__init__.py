"""minise: Squeeze-and-Excitation networks from scratch, on NumPy (CPU) and CuPy (GPU).

    import minise as ms
    import minise.functional as F
    from minise import nn, optim, models, data

The package is built in layers, each importing only the ones below it
(docs/architecture.md draws them; tests/test_architecture.py keeps it true):
backend -> parallel -> tensor -> autograd -> functional -> nn -> models / optim / data ->
io -> debug -> analysis -> training -> viz -> bench -> cli.
"""

__version__ = "0.1.0"

from . import autograd, backend, functional
from . import tensor as _tensor_module

# The one link up the layers: Tensor's operators and methods (x + y, x.sum(),
# loss.backward()) call the ops and the backward walk of the layers above it.
# See the docstring of minise/tensor.py.
_tensor_module.bind(ops=functional, engine=autograd)

from . import data, debug, models, nn, optim, viz
from .analysis import summary
from .autograd import Function, enable_grad, is_grad_enabled, no_grad
from .backend import manual_seed
from .debug import (
                    AnomalyError,
                    GradcheckError,
                    detect_anomaly,
                    directional_gradcheck,
                    gradcheck,
                    step_backward,
                    trace_backward,
                    trace_forward,
)
from .io import load, save
from .parallel import get_num_threads, set_num_threads
from .tensor import Tensor, tensor

__all__ = [
    "__version__",
    "Tensor",
    "tensor",
    "Function",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "manual_seed",
    "set_num_threads",
    "get_num_threads",
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
