"""minise: Squeeze-and-Excitation networks from scratch, on NumPy (CPU) and CuPy (GPU).

    import minise as ms
    import minise.functional as F
    from minise import nn, optim, models, data

The package is built in layers, each importing only the ones below it
(docs/architecture.md draws them; tests/test_architecture.py keeps it true):
backend -> dtypes -> tensor -> autograd -> functional -> nn -> models / optim / data ->
io -> debug -> analysis -> training -> viz -> bench -> cli.
"""

from . import autograd, backend, functional
from . import tensor as _tensor_module
from .version import __version__

# The one link up the layers: Tensor's operators and methods (x + y, x.sum(),
# loss.backward()) call the ops and the backward walk of the layers above it.
# See the docstring of minise/tensor.py.
_tensor_module.bind(ops=functional, engine=autograd)

from . import cuda, data, debug, models, nn, optim, viz
from .analysis import summary
from .autograd import Function, enable_grad, is_grad_enabled, no_grad
from .backend import manual_seed
from .creation import (
                    arange,
                    bool,
                    device,
                    double,
                    empty,
                    eye,
                    float,
                    float16,
                    float32,
                    float64,
                    from_numpy,
                    full,
                    full_like,
                    half,
                    int,
                    int8,
                    int16,
                    int32,
                    int64,
                    linspace,
                    long,
                    ones,
                    ones_like,
                    rand,
                    rand_like,
                    randint,
                    randn,
                    randn_like,
                    uint8,
                    zeros,
                    zeros_like,
)
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

# PyTorch's top-level functions (torch.cat, torch.max, torch.flatten...): the ops of minise.functional
from .functional import (
                    abs,
                    amax,
                    amin,
                    argmax,
                    argmin,
                    cat,
                    clamp,
                    clone,
                    exp,
                    flatten,
                    log,
                    matmul,
                    max,
                    maximum,
                    mean,
                    min,
                    minimum,
                    norm,
                    permute,
                    relu,
                    reshape,
                    sigmoid,
                    softmax,
                    sqrt,
                    squeeze,
                    stack,
                    sum,
                    tanh,
                    transpose,
                    unsqueeze,
)
from .io import load, load_safetensors, save, save_safetensors
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
    "cuda",
    "save_safetensors",
    "load_safetensors",
    # PyTorch's spellings (minise/creation.py and minise.functional)
    "zeros", "ones", "full", "empty", "zeros_like", "ones_like", "full_like", "rand", "randn", "randint",
    "rand_like", "randn_like", "arange", "linspace", "eye", "from_numpy", "device",
    "float16", "float32", "float64", "half", "float", "double", "int8", "int16", "int32", "int64", "int", "long",
    "uint8", "bool",
    "cat", "stack", "flatten", "reshape", "permute", "transpose", "squeeze", "unsqueeze", "clone",
    "sum", "mean", "max", "min", "amax", "amin", "argmax", "argmin", "norm", "maximum", "minimum", "matmul",
    "exp", "log", "sqrt", "abs", "clamp", "relu", "sigmoid", "tanh", "softmax",
]  # fmt: skip
