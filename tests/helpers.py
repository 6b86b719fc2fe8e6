"""One helper compares any op with PyTorch; a new op costs one line of test.

    assert_matches_torch(lambda x, w: F.linear(x, w),
                         lambda x, w: torch.nn.functional.linear(x, w),
                         shapes=[(3, 4), (5, 4)])

It builds random float32 inputs, runs both functions, compares the outputs,
backpropagates the same random output gradient through both, and compares the
gradient of every input. ``inputs=`` passes explicit arrays instead (ints for
labels, positive values for log...); ``grad_inputs=`` says which of them get
gradients (default: every float input).
"""

import warnings

import numpy as np
import pytest

import minise as ms
from minise import backend


def notebook_errors(path, monkeypatch, tmp_path):
    """Run the notebook ``path`` top to bottom in fast mode (MINISE_FAST=1, Agg figures, runs and
    figures written under tmp_path, its own folder as working directory); the error outputs of its
    code cells (empty when every cell ran). Skips when nbformat or nbclient is not installed."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("MINISE_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("MINISE_TUTORIAL_OUT", str(tmp_path))  # notebooks write runs/figures here
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        client.execute()
    return [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if o.get("output_type") == "error"]


def torch_or_skip():
    return pytest.importorskip("torch")


def random_inputs(shapes, seed=0, low=-2.0, high=2.0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return [rng.uniform(low, high, size=s).astype(dtype) for s in shapes]


def assert_matches_torch(fn_ms, fn_torch, shapes=None, *, inputs=None, grad_inputs=None, device="cpu",
                         atol=1e-5, rtol=1e-4, seed=0, low=-2.0, high=2.0, backward=True):
    torch = torch_or_skip()
    if inputs is None:
        inputs = random_inputs(shapes, seed, low, high)
    if grad_inputs is None:
        grad_inputs = [np.asarray(a).dtype.kind == "f" for a in inputs]
    ms_in = [ms.tensor(a, requires_grad=g, device=device) if isinstance(a, np.ndarray) else a
             for a, g in zip(inputs, grad_inputs)]
    t_in = [torch.tensor(a, requires_grad=g) if isinstance(a, np.ndarray) else a
            for a, g in zip(inputs, grad_inputs)]

    out_ms = fn_ms(*ms_in)
    out_t = fn_torch(*t_in)
    np.testing.assert_allclose(out_ms.numpy(), out_t.detach().numpy(), atol=atol, rtol=rtol,
                               err_msg="forward differs from PyTorch")
    assert out_ms.shape == tuple(out_t.shape)
    if not backward:
        return out_ms, out_t
    gy = np.random.default_rng(seed + 1).standard_normal(out_ms.shape).astype(np.float32)
    out_ms.backward(ms.tensor(gy, device=device))
    out_t.backward(torch.tensor(gy))
    for i, (a, b, g) in enumerate(zip(ms_in, t_in, grad_inputs)):
        if not g:
            continue
        assert a.grad is not None, f"input {i} got no gradient"
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), atol=atol, rtol=rtol,
                                   err_msg=f"gradient of input {i} differs from PyTorch")
    return out_ms, out_t


def gradcheck_inputs(shapes, seed=0, low=-2.0, high=2.0, device="cpu"):
    """float64 tensors for ms.gradcheck, on ``device``."""
    return [ms.tensor(a, requires_grad=True, device=device)
            for a in random_inputs(shapes, seed, low, high, np.float64)]


def to_numpy(x):
    return backend.to_numpy(x.data if isinstance(x, ms.Tensor) else x)


def load_into_torch(module_ms, module_t):
    """Copy a minise module's state dict into a PyTorch module with the same keys (strict)."""
    torch = torch_or_skip()
    state = {k: torch.from_numpy(np.array(v.numpy())) for k, v in module_ms.state_dict().items()}
    module_t.load_state_dict(state, strict=True)


def assert_module_matches_torch(module_ms, module_t, x, *, labels=None, device="cpu", atol=1e-5, rtol=1e-4,
                                seed=0):
    """A minise module and its PyTorch twin agree: output, loss, input and parameter gradients, buffers.

    Loads ``module_ms``'s state dict into ``module_t`` first, so both start from the
    same weights and statistics. With ``labels`` the scalar compared and differentiated
    is cross_entropy(output, labels); otherwise sum(output * g) for a random g.
    Returns (output_ms, output_torch).
    """
    torch = torch_or_skip()
    import minise.functional as F

    load_into_torch(module_ms, module_t)
    x_ms = ms.tensor(x, requires_grad=True, device=device)
    x_t = torch.tensor(x, requires_grad=True)
    out_ms, out_t = module_ms(x_ms), module_t(x_t)
    np.testing.assert_allclose(out_ms.numpy(), out_t.detach().numpy(), atol=atol, rtol=rtol,
                               err_msg="module output differs from PyTorch")
    if labels is not None:
        loss_ms = F.cross_entropy(out_ms, ms.tensor(labels, device=device))
        loss_t = torch.nn.functional.cross_entropy(out_t, torch.tensor(labels))
        np.testing.assert_allclose(loss_ms.item(), loss_t.item(), atol=atol, rtol=rtol,
                                   err_msg="loss differs from PyTorch")
        loss_ms.backward()
        loss_t.backward()
    else:
        gy = np.random.default_rng(seed + 1).standard_normal(out_ms.shape).astype(np.float32)
        out_ms.backward(ms.tensor(gy, device=device))
        out_t.backward(torch.tensor(gy))
    np.testing.assert_allclose(x_ms.grad.numpy(), x_t.grad.numpy(), atol=atol, rtol=rtol,
                               err_msg="input gradient differs from PyTorch")
    params_t = dict(module_t.named_parameters())
    params_ms = dict(module_ms.named_parameters())
    assert sorted(params_ms) == sorted(params_t), "parameter names differ from the PyTorch twin"
    for name, p in params_ms.items():
        assert p.grad is not None, f"parameter {name} got no gradient"
        np.testing.assert_allclose(p.grad.numpy(), params_t[name].grad.numpy(), atol=atol, rtol=rtol,
                                   err_msg=f"gradient of {name} differs from PyTorch")
    buffers_t = dict(module_t.named_buffers())
    for name, b in module_ms.named_buffers():
        np.testing.assert_allclose(b.numpy(), buffers_t[name].numpy(), atol=atol, rtol=rtol,
                                   err_msg=f"buffer {name} differs from PyTorch after the forward")
    return out_ms, out_t


class SEResidualBlock(ms.nn.Module):
    """relu(se(x) + x): a residual-block-shaped module with an SE block inside (for debugger/viz tests)."""

    def __init__(self, channels):
        super().__init__()
        self.se = ms.nn.SEBlock(channels, reduction=2)

    def forward(self, x):
        return ms.functional.relu(self.se(x) + x)


class TinySENet(ms.nn.Module):
    """Two SE residual blocks in a stage named ``stage`` then a classifier, so ops get paths like
    ``layer2.1.se.fc2``."""

    def __init__(self, channels=4, stage="layer2"):
        super().__init__()
        self.stage_name = stage
        setattr(self, stage, ms.nn.Sequential(SEResidualBlock(channels), SEResidualBlock(channels)))
        self.fc = ms.nn.Linear(channels, 3)

    def forward(self, x):
        stage = getattr(self, self.stage_name)
        return self.fc(ms.functional.global_avg_pool2d(stage(x)))
