"""Optimisers: parity with torch.optim (the oracle), in-place updates, state dicts, teaching errors.

Parity tests start minise and PyTorch from the same float32 parameters and
feed both the gradient of the same small quadratic loss,

    L(p) = sum(0.5 * CURVATURE * p**2 + G_t * p)   =>   grad = CURVATURE * p + G_t,

with a fixed random G_t per step, evaluated at each library's own current
parameters (so an update that goes wrong feeds back into later gradients).
"""

import numpy as np
import pytest
from helpers import to_numpy, torch_or_skip

import minise as ms
from minise import optim

SHAPES = [(3, 4), (5,), (2, 3, 3)]
CURVATURE = 0.5
STEPS = 8


def _start_params(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32) for s in SHAPES]


def _gradient_pushes(steps=STEPS, seed=1):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s).astype(np.float32) for s in SHAPES] for _ in range(steps)]


def _quadratic_grad(p_values, push):
    return (np.float32(CURVATURE) * p_values + push).astype(np.float32)


def _make_ms_params(arrays, device):
    return [ms.tensor(a.copy(), requires_grad=True, device=device) for a in arrays]


def _ms_step(opt, params, push, device):
    for p, g0 in zip(params, push):
        p.grad = ms.tensor(_quadratic_grad(to_numpy(p.data), g0), device=device)
    opt.step()


def _run_ms(name, kwargs, device, pushes):
    params = _make_ms_params(_start_params(), device)
    opt = getattr(optim, name)(params, **kwargs)
    for push in pushes:
        _ms_step(opt, params, push, device)
    return [p.numpy() for p in params], opt


def _run_torch(name, kwargs, pushes):
    torch = torch_or_skip()
    params = [torch.tensor(a.copy(), requires_grad=True) for a in _start_params()]
    opt = getattr(torch.optim, name)(params, **kwargs)
    for push in pushes:
        for p, g0 in zip(params, push):
            p.grad = torch.tensor(_quadratic_grad(p.detach().numpy(), g0))
        opt.step()
    return [p.detach().numpy() for p in params], opt


CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.1, weight_decay=1e-2)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=5e-4)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)),
    ("Adam", dict(lr=1e-2)),
    ("Adam", dict(lr=1e-2, weight_decay=0.1)),
    ("Adam", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6)),
    ("Adam", dict(lr=1e-2, amsgrad=True, weight_decay=1e-2)),
    ("AdamW", dict(lr=1e-2)),
    ("AdamW", dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
]


def _config_id(config):
    name, kwargs = config
    return name + "-" + "-".join(f"{k}={v}" for k, v in kwargs.items())


@pytest.mark.parametrize("config", CONFIGS, ids=_config_id)
def test_optimizer_matches_torch_after_several_steps(config, device):
    name, kwargs = config
    pushes = _gradient_pushes()
    ours, _ = _run_ms(name, kwargs, device, pushes)
    theirs, _ = _run_torch(name, kwargs, pushes)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=f"{name}: parameter {i} differs from torch")
        assert a.dtype == np.float32


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_parameter_groups_with_their_own_hyperparameters_match_torch(name, device):
    torch = torch_or_skip()
    pushes = _gradient_pushes(5)
    start = _start_params()
    extra = dict(momentum=0.9) if name == "SGD" else {}

    ours = _make_ms_params(start, device)
    opt = getattr(optim, name)([{"params": ours[:2], "weight_decay": 1e-2},
                                {"params": ours[2:], "lr": 0.01}], lr=0.1, **extra)
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in start]
    opt_t = getattr(torch.optim, name)([{"params": theirs[:2], "weight_decay": 1e-2},
                                        {"params": theirs[2:], "lr": 0.01}], lr=0.1, **extra)
    for push in pushes:
        _ms_step(opt, ours, push, device)
        for p, g0 in zip(theirs, push):
            p.grad = torch.tensor(_quadratic_grad(p.detach().numpy(), g0))
        opt_t.step()
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_sgd_with_momentum_trains_a_linear_model_through_autograd_like_torch(device):
    """End to end: minise's own backward supplies the gradients; torch is the oracle."""
    torch = torch_or_skip()
    rng = np.random.default_rng(3)
    x = rng.standard_normal((16, 3)).astype(np.float32)
    y = rng.standard_normal((16, 2)).astype(np.float32)
    w0 = rng.standard_normal((3, 2)).astype(np.float32)
    b0 = np.zeros(2, np.float32)

    w, b = ms.tensor(w0, requires_grad=True, device=device), ms.tensor(b0, requires_grad=True, device=device)
    opt = optim.SGD([w, b], lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)
    xs, ys = ms.tensor(x, device=device), ms.tensor(y, device=device)
    wt, bt = torch.tensor(w0, requires_grad=True), torch.tensor(b0, requires_grad=True)
    opt_t = torch.optim.SGD([wt, bt], lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)
    for _ in range(10):
        opt.zero_grad()
        loss = ((xs @ w + b - ys) ** 2).mean()
        loss.backward()
        opt.step()
        opt_t.zero_grad()
        loss_t = ((torch.tensor(x) @ wt + bt - torch.tensor(y)) ** 2).mean()
        loss_t.backward()
        opt_t.step()
        np.testing.assert_allclose(loss.item(), loss_t.item(), rtol=1e-5)
    np.testing.assert_allclose(w.numpy(), wt.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b.numpy(), bt.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_step_updates_parameters_in_place_and_leaves_the_gradient_alone(name, device):
    params = _make_ms_params(_start_params(), device)
    arrays = [p.data for p in params]
    extra = dict(momentum=0.9) if name == "SGD" else {}
    opt = getattr(optim, name)(params, lr=0.1, weight_decay=0.1, **extra)
    grads = [np.ones(s, np.float32) for s in SHAPES]
    for p, g in zip(params, grads):
        p.grad = ms.tensor(g, device=device)
    before = [p.numpy().copy() for p in params]
    opt.step()
    for p, array, old, g in zip(params, arrays, before, grads):
        assert p.data is array, "the optimizer must update p.data in place"
        assert p.dtype == np.float32
        assert not np.array_equal(p.numpy(), old)
        np.testing.assert_array_equal(p.grad.numpy(), g)   # weight decay must not leak into p.grad


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_parameters_without_a_gradient_are_skipped_and_get_no_state(name, device):
    params = _make_ms_params(_start_params(), device)
    extra = dict(momentum=0.9) if name == "SGD" else {}
    opt = getattr(optim, name)(params, lr=0.1, weight_decay=0.1, **extra)
    frozen = params[1].numpy().copy()
    for p in (params[0], params[2]):
        p.grad = ms.tensor(np.ones(p.shape, np.float32), device=device)
    opt.step()
    np.testing.assert_array_equal(params[1].numpy(), frozen)
    assert params[1] not in opt.state
    assert params[0] in opt.state and params[2] in opt.state
    assert sorted(opt.state_dict()["state"]) == [0, 2]


def test_sgd_first_step_matches_the_closed_form_update(device):
    """Oracle: p1 = p0 - lr * (g + wd * p0); the momentum buffer starts at that gradient."""
    p0 = np.array([1.0, -2.0, 3.0], np.float32)
    g = np.array([0.5, 0.25, -1.0], np.float32)
    p = ms.tensor(p0.copy(), requires_grad=True, device=device)
    opt = optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    p.grad = ms.tensor(g, device=device)
    opt.step()
    d = g + np.float32(0.01) * p0
    np.testing.assert_allclose(p.numpy(), p0 - np.float32(0.1) * d, rtol=1e-6)
    np.testing.assert_allclose(to_numpy(opt.state[p]["momentum_buffer"]), d, rtol=1e-6)


def test_adam_first_step_moves_every_coordinate_by_lr(device):
    """Oracle: at t = 1 the bias-corrected update is lr * g / (|g| + eps) = lr * sign(g)."""
    p0 = np.array([1.0, -2.0, 3.0, 0.5], np.float32)
    g = np.array([0.5, -4.0, 1e-3, -7.0], np.float32)
    p = ms.tensor(p0.copy(), requires_grad=True, device=device)
    opt = optim.Adam([p], lr=0.01, eps=1e-12)
    p.grad = ms.tensor(g, device=device)
    opt.step()
    np.testing.assert_allclose(p.numpy(), p0 - 0.01 * np.sign(g), rtol=1e-5)
    assert opt.state[p]["step"] == 1


def test_zero_grad_sets_gradients_to_none_by_default_or_fills_zeros(device):
    params = _make_ms_params(_start_params(), device)
    opt = optim.SGD(params, lr=0.1)
    for p in params:
        p.grad = ms.tensor(np.ones(p.shape, np.float32), device=device)
    grad_array = params[0].grad.data
    opt.zero_grad(set_to_none=False)
    assert params[0].grad.data is grad_array
    for p in params:
        np.testing.assert_array_equal(p.grad.numpy(), np.zeros(p.shape, np.float32))
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_step_calls_the_closure_once_and_returns_its_loss():
    p = ms.tensor(np.array([2.0], np.float32), requires_grad=True)
    opt = optim.SGD([p], lr=0.25)
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert len(calls) == 1
    assert loss.item() == 4.0
    np.testing.assert_allclose(p.numpy(), [2.0 - 0.25 * 4.0])


@pytest.mark.parametrize("name,kwargs,keys", [
    ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=1e-4), {"momentum_buffer"}),
    ("Adam", dict(lr=1e-2), {"step", "exp_avg", "exp_avg_sq"}),
    ("AdamW", dict(lr=1e-2, amsgrad=True), {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}),
])
def test_state_dict_has_torchs_layout_and_values(name, kwargs, keys, device):
    pushes = _gradient_pushes(3)
    _, opt = _run_ms(name, kwargs, device, pushes)
    _, opt_t = _run_torch(name, kwargs, pushes)
    ours, theirs = opt.state_dict(), opt_t.state_dict()
    assert sorted(ours["state"]) == sorted(theirs["state"]) == [0, 1, 2]
    for index in ours["state"]:
        assert set(ours["state"][index]) == set(theirs["state"][index]) == keys
        for key in keys:
            a, b = ours["state"][index][key], theirs["state"][index][key]
            if key == "step":
                assert a == int(b.item()) == 3
            else:
                np.testing.assert_allclose(to_numpy(a), b.numpy(), rtol=1e-5, atol=1e-7)
    assert len(ours["param_groups"]) == len(theirs["param_groups"]) == 1
    group, group_t = ours["param_groups"][0], theirs["param_groups"][0]
    assert group["params"] == group_t["params"] == [0, 1, 2]
    for key in group:
        assert group[key] == group_t[key], key


def test_state_dict_is_a_snapshot_that_later_steps_do_not_change(device):
    params = _make_ms_params(_start_params(), device)
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    pushes = _gradient_pushes(2)
    _ms_step(opt, params, pushes[0], device)
    saved = opt.state_dict()
    buffer = to_numpy(saved["state"][0]["momentum_buffer"]).copy()
    _ms_step(opt, params, pushes[1], device)
    np.testing.assert_array_equal(to_numpy(saved["state"][0]["momentum_buffer"]), buffer)


@pytest.mark.parametrize("name,kwargs,make_scheduler", [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4),
     lambda opt: optim.lr_scheduler.MultiStepLR(opt, milestones=[2, 4], gamma=0.1)),
    ("Adam", dict(lr=1e-2, weight_decay=1e-3),
     lambda opt: optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=1e-4)),
    ("AdamW", dict(lr=1e-2, amsgrad=True),
     lambda opt: optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=8)),
    ("SGD", dict(lr=0.1, momentum=0.9),
     lambda opt: optim.lr_scheduler.SequentialLR(
         opt, [optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=3),
               optim.lr_scheduler.CosineAnnealingLR(opt, T_max=5)], milestones=[3])),
], ids=["sgd-multistep", "adam-cosine", "adamw-onecycle", "sgd-warmup-cosine"])
def test_resuming_from_saved_optimizer_and_scheduler_matches_an_uninterrupted_run(
        name, kwargs, make_scheduler, device, tmp_path):
    pushes = _gradient_pushes(8)

    def fresh():
        params = _make_ms_params(_start_params(), device)
        opt = getattr(optim, name)(params, **kwargs)
        return params, opt, make_scheduler(opt)

    params, opt, sched = fresh()
    for push in pushes:
        _ms_step(opt, params, push, device)
        sched.step()
    uninterrupted = [p.numpy() for p in params]

    params, opt, sched = fresh()
    for push in pushes[:4]:
        _ms_step(opt, params, push, device)
        sched.step()
    ms.save({"params": [p.numpy() for p in params], "optimizer": opt.state_dict(),
             "scheduler": sched.state_dict()}, tmp_path / "mid.ckpt")
    del params, opt, sched

    checkpoint = ms.load(tmp_path / "mid.ckpt")
    params, opt, sched = fresh()                       # as a new process would: build, then load
    for p, saved in zip(params, checkpoint["params"]):
        p.data[...] = ms.tensor(saved, device=device).data
    opt.load_state_dict(checkpoint["optimizer"])
    sched.load_state_dict(checkpoint["scheduler"])
    for state in opt.state.values():
        for value in state.values():
            if hasattr(value, "shape"):
                assert ms.backend.device_of(value) == params[0].device
    for push in pushes[4:]:
        _ms_step(opt, params, push, device)
        sched.step()
    for a, b in zip(uninterrupted, params):
        np.testing.assert_array_equal(a, b.numpy())


def test_load_state_dict_rejects_a_different_model():
    params = _make_ms_params(_start_params(), "cpu")
    opt = optim.Adam(params)
    for p in params:
        p.grad = ms.tensor(np.ones(p.shape, np.float32))
    opt.step()
    saved = opt.state_dict()

    with pytest.raises(ValueError, match="2 parameters, this optimizer's has 3|3 parameters, this optimizer's has 2"):
        optim.Adam(params[:2]).load_state_dict(saved)
    with pytest.raises(ValueError, match="parameter groups"):
        optim.Adam([{"params": params[:1]}, {"params": params[1:]}]).load_state_dict(saved)
    reshaped = [ms.tensor(np.zeros((4, 3), np.float32), requires_grad=True)] + params[1:]
    with pytest.raises(ValueError, match=r"shape \(3, 4\).*\(4, 3\)"):
        optim.Adam(reshaped).load_state_dict(saved)
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        optim.Adam(params).load_state_dict({"model": {}})


def _p():
    return ms.tensor(np.zeros(3, np.float32), requires_grad=True)


@pytest.mark.parametrize("make,error,match", [
    (lambda: optim.SGD([_p()], lr=-0.1), ValueError, r"invalid lr -0.1: expected 0.0 <= lr"),
    (lambda: optim.SGD([_p()], lr=0.1, momentum=-0.5), ValueError, "momentum"),
    (lambda: optim.SGD([_p()], lr=0.1, weight_decay=-1e-4), ValueError, "weight_decay"),
    (lambda: optim.SGD([_p()], lr=0.1, nesterov=True), ValueError, "nesterov=True needs momentum > 0"),
    (lambda: optim.SGD([_p()], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), ValueError, "dampening"),
    (lambda: optim.SGD([_p()], lr="0.1"), TypeError, "lr must be a real number"),
    (lambda: optim.SGD([_p()], lr=float("nan")), ValueError, "lr is NaN"),
    (lambda: optim.Adam([_p()], betas=(1.0, 0.999)), ValueError, "beta1"),
    (lambda: optim.Adam([_p()], betas=(0.9, -0.1)), ValueError, "beta2"),
    (lambda: optim.Adam([_p()], betas=(0.9,)), ValueError, "pair"),
    (lambda: optim.Adam([_p()], eps=-1e-8), ValueError, "eps"),
    (lambda: optim.AdamW([_p()], lr=-1.0), ValueError, "AdamW: invalid lr"),
    (lambda: optim.SGD([{"params": [_p()], "lr": -1.0}], lr=0.1), ValueError, "invalid lr -1.0"),
], ids=["negative-lr", "negative-momentum", "negative-wd", "nesterov-without-momentum",
        "nesterov-with-dampening", "string-lr", "nan-lr", "beta1-one", "negative-beta2", "one-beta",
        "negative-eps", "adamw-negative-lr", "group-negative-lr"])
def test_bad_hyperparameters_raise_teaching_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_bad_params_raise_teaching_errors():
    p = _p()
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    params = iter([p])
    list(params)
    with pytest.raises(ValueError, match="used up"):
        optim.SGD(params, lr=0.1)
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(TypeError, match=r"params\[1\] should be a minise Tensor, got ndarray"):
        optim.SGD([p, np.zeros(3)], lr=0.1)
    with pytest.raises(TypeError, match="not model.named_parameters"):
        optim.SGD([("fc.weight", p)], lr=0.1)
    with pytest.raises(ValueError, match="not a leaf"):
        optim.SGD([p * 2], lr=0.1)
    with pytest.raises(ValueError, match="appears twice"):
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(TypeError, match="a set"):
        optim.SGD({p}, lr=0.1)


def test_a_gradient_of_the_wrong_shape_is_reported():
    p = _p()
    opt = optim.SGD([p], lr=0.1)
    p.grad = ms.tensor(np.ones((3, 1), np.float32))
    with pytest.raises(ValueError, match=r"shape \(3,\) has a gradient of shape \(3, 1\)"):
        opt.step()


def test_add_param_group_optimises_the_new_parameters_with_their_own_lr():
    a, b = _p(), _p()
    opt = optim.SGD([a], lr=0.1)
    opt.add_param_group({"params": [b], "lr": 0.5})
    for p in (a, b):
        p.grad = ms.tensor(np.ones(3, np.float32))
    opt.step()
    np.testing.assert_allclose(a.numpy(), -0.1 * np.ones(3))
    np.testing.assert_allclose(b.numpy(), -0.5 * np.ones(3))
    assert opt.param_groups[1]["momentum"] == 0   # defaults fill what the group leaves out
