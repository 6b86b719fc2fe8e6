"""Learning-rate schedules: the same lr (and momentum) sequence as torch.optim.lr_scheduler.

Each case builds the same schedule on a minise optimizer and a torch optimizer
(two parameter groups with different lrs), steps both well past the interesting
part (a full cosine period and beyond, every milestone, the whole 1cycle), and
compares every lr. Closed-form tests check the formulas without torch.
"""

import math

import numpy as np
import pytest
from helpers import torch_or_skip

import minise as ms
from minise import optim
from minise.optim import lr_scheduler


def _ms_optimizer(name="SGD"):
    p1 = ms.tensor(np.zeros(2, np.float32), requires_grad=True)
    p2 = ms.tensor(np.zeros(3, np.float32), requires_grad=True)
    groups = [{"params": [p1], "lr": 0.1}, {"params": [p2], "lr": 0.02}]
    return optim.SGD(groups, momentum=0.9) if name == "SGD" else optim.Adam(groups)


def _torch_optimizer(torch, name="SGD"):
    p1, p2 = torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)
    groups = [{"params": [p1], "lr": 0.1}, {"params": [p2], "lr": 0.02}]
    return torch.optim.SGD(groups, momentum=0.9) if name == "SGD" else torch.optim.Adam(groups)


def _momentum(group):
    return group["betas"][0] if "betas" in group else group["momentum"]


def _trace(opt, sched, steps):
    """[(get_last_lr(), group lrs, group momenta)] after construction and after each step."""
    rows = [(sched.get_last_lr(), [g["lr"] for g in opt.param_groups], [_momentum(g) for g in opt.param_groups])]
    for _ in range(steps):
        opt.step()
        sched.step()
        rows.append((sched.get_last_lr(), [g["lr"] for g in opt.param_groups],
                     [_momentum(g) for g in opt.param_groups]))
    return rows


CASES = {
    "step": ("SGD", 20, lambda S, o: S.StepLR(o, step_size=3, gamma=0.5)),
    "multistep": ("SGD", 20, lambda S, o: S.MultiStepLR(o, milestones=[3, 7, 7, 12], gamma=0.1)),
    "cosine": ("SGD", 45, lambda S, o: S.CosineAnnealingLR(o, T_max=10)),
    "cosine-eta-min": ("SGD", 45, lambda S, o: S.CosineAnnealingLR(o, T_max=7, eta_min=1e-3)),
    "cosine-t-max-1": ("SGD", 6, lambda S, o: S.CosineAnnealingLR(o, T_max=1, eta_min=1e-3)),
    "linear-warmup": ("SGD", 10, lambda S, o: S.LinearLR(o, start_factor=0.25, total_iters=4)),
    "linear-decay": ("SGD", 10, lambda S, o: S.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=6)),
    "lambda": ("SGD", 12, lambda S, o: S.LambdaLR(o, [lambda e: 0.9 ** e, lambda e: min(1.0, (e + 1) / 4)])),
    "onecycle-cos": ("SGD", 25, lambda S, o: S.OneCycleLR(o, max_lr=[0.5, 0.1], total_steps=25)),
    "onecycle-linear": ("SGD", 25, lambda S, o: S.OneCycleLR(o, max_lr=0.4, total_steps=25, anneal_strategy="linear",
                                                             pct_start=0.25)),
    "onecycle-three-phase": ("SGD", 30, lambda S, o: S.OneCycleLR(o, max_lr=0.3, epochs=3, steps_per_epoch=10,
                                                                  three_phase=True)),
    "onecycle-adam-betas": ("Adam", 20, lambda S, o: S.OneCycleLR(o, max_lr=0.01, total_steps=20)),
    "onecycle-no-momentum": ("SGD", 20, lambda S, o: S.OneCycleLR(o, max_lr=0.2, total_steps=20,
                                                                  cycle_momentum=False)),
    "warmup-then-cosine": ("SGD", 20, lambda S, o: S.SequentialLR(
        o, [S.LinearLR(o, start_factor=0.1, total_iters=3), S.CosineAnnealingLR(o, T_max=8)], milestones=[3])),
    "three-stages": ("SGD", 20, lambda S, o: S.SequentialLR(
        o, [S.LinearLR(o, start_factor=0.5, total_iters=2), S.StepLR(o, step_size=2, gamma=0.5),
            S.MultiStepLR(o, milestones=[3], gamma=0.1)], milestones=[2, 8])),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_scheduler_lr_sequence_matches_torch(case):
    torch = torch_or_skip()
    name, steps, make = CASES[case]
    opt = _ms_optimizer(name)
    ours = _trace(opt, make(lr_scheduler, opt), steps)
    opt_t = _torch_optimizer(torch, name)
    theirs = _trace(opt_t, make(torch.optim.lr_scheduler, opt_t), steps)
    assert len(ours) == len(theirs) == steps + 1
    for epoch, (a, b) in enumerate(zip(ours, theirs)):
        for what, x, y in zip(("get_last_lr()", "group lr", "momentum"), a, b):
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-15, err_msg=f"{case}: {what} at epoch {epoch}")


@pytest.mark.parametrize("case", sorted(CASES))
def test_resumed_scheduler_continues_the_same_sequence(case, tmp_path):
    """Oracle: the uninterrupted run. Save mid-way with ms.save, build fresh objects, load, continue."""
    name, steps, make = CASES[case]
    opt = _ms_optimizer(name)
    full = _trace(opt, make(lr_scheduler, opt), steps)

    half = steps // 2
    opt = _ms_optimizer(name)
    sched = make(lr_scheduler, opt)
    _trace(opt, sched, half)
    ms.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, tmp_path / "sched.ckpt")
    saved = ms.load(tmp_path / "sched.ckpt")
    opt = _ms_optimizer(name)
    sched = make(lr_scheduler, opt)          # construct first, then load (as in PyTorch)
    opt.load_state_dict(saved["optimizer"])
    sched.load_state_dict(saved["scheduler"])
    resumed = _trace(opt, sched, steps - half)
    assert resumed == full[half:]


def test_multistep_lr_follows_the_closed_form():
    opt = _ms_optimizer()
    sched = lr_scheduler.MultiStepLR(opt, milestones=[2, 5], gamma=0.1)
    lrs = [sched.get_last_lr()[0]]
    for _ in range(7):
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    expected = [0.1 * 0.1 ** sum(epoch >= m for m in (2, 5)) for epoch in range(8)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)


def test_cosine_annealing_follows_the_closed_form_over_one_period_and_rises_after():
    opt = _ms_optimizer()
    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=0.001)
    lrs = [sched.get_last_lr()[0]]
    for _ in range(20):
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    closed = [0.001 + (0.1 - 0.001) * (1 + math.cos(math.pi * t / 10)) / 2 for t in range(21)]
    np.testing.assert_allclose(lrs, closed, rtol=1e-9)
    assert lrs[10] == pytest.approx(0.001) and lrs[20] == pytest.approx(0.1)


def test_one_cycle_starts_peaks_and_ends_where_its_parameters_say():
    opt = _ms_optimizer()
    sched = lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=100, div_factor=25, final_div_factor=1e4)
    lrs = [sched.get_last_lr()[0]]
    momenta = [opt.param_groups[0]["momentum"]]
    for _ in range(99):
        sched.step()
        lrs.append(sched.get_last_lr()[0])
        momenta.append(opt.param_groups[0]["momentum"])
    assert lrs[0] == pytest.approx(1.0 / 25)
    assert int(np.argmax(lrs)) == 29 and lrs[29] == pytest.approx(1.0)
    assert lrs[-1] == pytest.approx(1.0 / 25 / 1e4)
    assert momenta[0] == pytest.approx(0.95) and momenta[29] == pytest.approx(0.85)
    assert momenta[-1] == pytest.approx(0.95)
    sched.step()                                  # step 100 == total_steps is still allowed, as in torch
    with pytest.raises(ValueError, match="total_steps is 100"):
        sched.step()


def test_constructing_a_scheduler_records_initial_lr_and_takes_the_first_step():
    opt = _ms_optimizer()
    sched = lr_scheduler.LinearLR(opt, start_factor=0.5, total_iters=2)
    assert sched.last_epoch == 0
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.02]
    assert sched.base_lrs == [0.1, 0.02]
    assert sched.get_last_lr() == pytest.approx([0.05, 0.01])


def test_state_dict_holds_plain_data_without_the_optimizer_or_lambdas():
    opt = _ms_optimizer()
    state = lr_scheduler.LambdaLR(opt, lambda e: 0.5 ** e).state_dict()
    assert "optimizer" not in state
    assert state["lr_lambdas"] == [None, None]
    assert state["last_epoch"] == 0 and state["base_lrs"] == [0.1, 0.02]


def test_resuming_with_last_epoch_needs_initial_lr():
    opt = _ms_optimizer()
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.StepLR(opt, step_size=2, last_epoch=3)


@pytest.mark.parametrize("make,error,match", [
    (lambda o: lr_scheduler.StepLR("opt", step_size=2), TypeError, "minise optimizer"),
    (lambda o: lr_scheduler.StepLR(o, step_size=0), ValueError, "step_size must be a positive integer"),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=0), ValueError, "T_max"),
    (lambda o: lr_scheduler.MultiStepLR(o, milestones=[1.5]), ValueError, "integers"),
    (lambda o: lr_scheduler.LinearLR(o, start_factor=0.0), ValueError, "start_factor"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1), ValueError, "total_steps"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=[0.1], total_steps=5), ValueError, "2 parameter groups"),
    (lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=5, anneal_strategy="exp"), ValueError, "cos"),
    (lambda o: lr_scheduler.LambdaLR(o, [lambda e: 1.0]), ValueError, "expected 2 lr_lambdas"),
    (lambda o: lr_scheduler.SequentialLR(o, [lr_scheduler.StepLR(o, 2)], milestones=[3]), ValueError,
     "one milestone fewer"),
    (lambda o: lr_scheduler.SequentialLR(o, [lr_scheduler.StepLR(_ms_optimizer(), 2)], milestones=[]),
     ValueError, "different optimizer"),
], ids=["not-an-optimizer", "zero-step-size", "zero-t-max", "float-milestone", "zero-start-factor",
        "no-total-steps", "max-lr-list-too-short", "unknown-anneal", "too-few-lambdas", "milestone-count",
        "other-optimizer"])
def test_bad_scheduler_arguments_raise_teaching_errors(make, error, match):
    with pytest.raises(error, match=match):
        make(_ms_optimizer())
