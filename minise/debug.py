"""Watch a backward pass op by op: a tracer, a step debugger, anomaly detection, gradient health.

    with ms.trace_backward() as tr:          # record every op that backward runs
        loss.backward()
    print(tr)                                # one row per op, in the order backward ran them
    tr.records[0].grad_output_norm           # ... and the same rows as data

    with ms.trace_forward() as tf:           # activation statistics of every forward op
        loss = F.cross_entropy(model(x), y)

    for rec in ms.step_backward(loss, breakpoint_on="se"):   # the real backward, one op at a time
        print(rec.op, rec.module, rec.gy.shape, [g.shape for g in rec.gxs if g is not None])

    with ms.detect_anomaly():                # names the first op that made a NaN or an Inf
        loss = model(x).sum(); loss.backward()

Nothing here re-implements the engine: the tracers listen on the hooks of
``minise.autograd`` (``_backward_observers``, ``_forward_observers``), the step
debugger walks ``autograd.backward_steps`` (the same generator ``Tensor.backward``
exhausts), and anomaly detection flips the engine's own switch. What you see is
what ``backward()`` does. Debugging costs time (every statistic is a reduction
over a whole array, and on the GPU a synchronisation): use these tools to look,
not inside a training loop.

``GradientMonitor`` is the one piece meant for training: it measures, per
parameter, the gradient norm and the size of the optimizer's update relative to
the weight (``||w_after - w_before|| / ||w_before||``), the numbers a trainer
writes to ``grad_health.csv`` and ``minise.viz.plot_grad_health`` draws.
"""

import contextlib
import csv
import math
import weakref
from dataclasses import dataclass, field

from . import autograd, backend
from .autograd import AnomalyError, Tensor
from .checkpoint import atomic_path

__all__ = [
    "InputGrad",
    "BackwardRecord",
    "ForwardRecord",
    "BackwardTrace",
    "ForwardTrace",
    "trace_backward",
    "trace_forward",
    "step_backward",
    "detect_anomaly",
    "AnomalyError",
    "GradHealthRecord",
    "GradientMonitor",
    "GRAD_HEALTH_COLUMNS",
    "write_grad_health_csv",
    "read_grad_health_csv",
]


# --- statistics of one array --------------------------------------------------
def _as_float64(a):
    xp = backend.get_array_module(a)
    return a.astype(xp.float64, copy=False)


def _norm_array(a):
    """The L2 norm of the whole array as a 0-d float64 array on a's device (no GPU sync)."""
    a = _as_float64(a)
    return backend.get_array_module(a).sqrt((a * a).sum())


def _norm(a):
    """The L2 norm of the whole array, as a Python float (accumulated in float64)."""
    return float(_norm_array(a))


def _mean_absmax(a):
    if a.size == 0:
        return math.nan, math.nan
    xp = backend.get_array_module(a)
    a = _as_float64(a)
    return float(a.mean()), float(xp.abs(a).max())


def _shape_str(shape):
    return str(tuple(int(n) for n in shape))


def _num(value):
    """A statistic for the tables: 3 significant digits, '-' for a missing one."""
    if value is None:
        return "-"
    return f"{value:.3e}"


def _format_table(headers, rows, numeric=()):
    """Rows of strings as an aligned text table; the columns in ``numeric`` are right-aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row)]

    def line(cells, align_numbers=True):
        parts = [cell.rjust(w) if (align_numbers and i in numeric) else cell.ljust(w)
                 for i, (cell, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts).rstrip()

    out = [line(headers, False), line(["-" * w for w in widths], False)]
    out.extend(line(row) for row in rows)
    return "\n".join(out)


def _name_map(params):
    """{id(tensor): (name, tensor)} from a dict name -> tensor or an iterable of (name, tensor) pairs.

    Holding the tensor keeps it alive, so its id cannot be reused by another one.
    """
    if params is None:
        return {}
    items = params.items() if hasattr(params, "items") else params
    names = {}
    for name, t in items:
        if not isinstance(t, Tensor):
            raise TypeError(f"params: expected name -> Tensor pairs (e.g. dict(model.named_parameters())), "
                            f"got {type(t).__name__} for {name!r}")
        names[id(t)] = (str(name), t)
    return names


def _tensor_name(t, names, fn=None):
    """``params`` name, else the parameter's name in the module that ran ``fn``, else ``t.name``, else ""."""
    entry = names.get(id(t))
    if entry is not None:
        return entry[0]
    stack = getattr(fn, "module_stack", ())
    own = getattr(stack[-1], "_parameters", None) if stack else None
    if isinstance(own, dict):
        for key, p in own.items():
            if p is t:
                return f"{fn.module_path}.{key}" if fn.module_path else key
    return t.name or ""


# --- backward records ---------------------------------------------------------
@dataclass
class InputGrad:
    """The gradient one op passed back to one of its inputs.

    ``norm`` is None when that input needs no gradient (a constant, or a tensor
    with ``requires_grad=False``). ``array`` holds the raw gradient (numpy or
    cupy) only in ``step_backward`` and ``trace_backward(keep_arrays=True)``.
    """

    index: int
    shape: tuple
    name: str
    norm: float | None
    array: object = field(default=None, repr=False)

    def label(self):
        """``name (shape)`` or ``x<index> (shape)`` when the input has no name."""
        return f"{self.name or 'x' + str(self.index)} {_shape_str(self.shape)}"


@dataclass
class BackwardRecord:
    """What one op did during backward.

    step: position in the backward walk (0 = the op that made the loss).
    op: the Function's name ("Mul", "Conv2d"); module: dotted path of the
    module that ran it in forward ("layer2.1.se.fc2"; "" outside modules).
    grad_output_*: statistics of ``gy``, the gradient that arrived at the op's
    output (norm = L2 norm, absmax = max |gy|). grad_inputs: one ``InputGrad``
    per input, in the order of the op's inputs.

    ``grad_output`` (``gy``), ``function``, ``inputs`` and ``output`` are filled
    only by ``step_backward`` (and the arrays by ``keep_arrays=True``): while the
    step debugger is paused on a record, ``record.function.saved`` still holds
    what the op saved for its backward. Treat the arrays as read-only: they are
    the engine's own buffers.
    """

    step: int
    op: str
    module: str
    input_shapes: tuple
    output_shape: tuple
    grad_output_norm: float
    grad_output_mean: float
    grad_output_absmax: float
    grad_inputs: list
    grad_output: object = field(default=None, repr=False)
    function: object = field(default=None, repr=False)
    inputs: object = field(default=None, repr=False)
    output: object = field(default=None, repr=False)
    _function_ref: object = field(default=None, repr=False, compare=False)

    @property
    def gy(self):
        """The gradient that arrived at this op's output (raw array, when kept)."""
        return self.grad_output

    @property
    def gxs(self):
        """The gradients this op returned, one per input (raw arrays or None, when kept)."""
        return tuple(g.array for g in self.grad_inputs)

    def made_by(self, fn):
        """True when this record describes the Function object ``fn``."""
        ref = self._function_ref
        return ref is not None and ref() is fn


def _backward_record(step, raw, names, keep_arrays, keep_graph):
    fn, gy = raw["function"], raw["grad_output"]
    mean, absmax = _mean_absmax(gy)
    grad_inputs = []
    for i, (x, gx) in enumerate(zip(raw["inputs"], raw["grad_inputs"])):
        grad_inputs.append(InputGrad(
            index=i,
            shape=tuple(x.shape),
            name=_tensor_name(x, names, fn),
            norm=None if gx is None else _norm(gx),
            array=gx if keep_arrays else None,
        ))
    return BackwardRecord(
        step=step,
        op=fn.name,
        module=fn.module_path,
        input_shapes=tuple(tuple(x.shape) for x in raw["inputs"]),
        output_shape=tuple(raw["output"].shape),
        grad_output_norm=_norm(gy),
        grad_output_mean=mean,
        grad_output_absmax=absmax,
        grad_inputs=grad_inputs,
        grad_output=gy if keep_arrays else None,
        function=fn if keep_graph else None,
        inputs=tuple(raw["inputs"]) if keep_graph else None,
        output=raw["output"] if keep_graph else None,
        _function_ref=weakref.ref(fn),
    )


def _backward_table(records):
    headers = ["step", "op", "module", "output shape", "|grad_out|", "max|grad_out|",
               "grads to inputs: |grad|"]
    rows = []
    for r in records:
        to_inputs = ", ".join(f"{g.label()}: {'no grad' if g.norm is None else _num(g.norm)}"
                              for g in r.grad_inputs)
        rows.append([str(r.step), r.op, r.module or "-", _shape_str(r.output_shape),
                     _num(r.grad_output_norm), _num(r.grad_output_absmax), to_inputs])
    return _format_table(headers, rows, numeric={0, 4, 5})


class _Trace:
    """Shared machinery of the two tracers: a list of records, a table, enter/exit."""

    _observers = None  # the autograd list this tracer listens on

    def __init__(self):
        self.records = []
        self._active = False

    def __enter__(self):
        if self._active:
            raise RuntimeError(f"{type(self).__name__} is already recording; use a new trace_*() for nesting")
        self._active = True
        self._observers().append(self._observe)
        return self

    def __exit__(self, *exc):
        self._observers().remove(self._observe)
        self._active = False
        return False

    def __len__(self):
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def __getitem__(self, index):
        return self.records[index]

    def filter(self, module=None, op=None):
        """Records whose module path contains ``module`` and whose op name equals ``op``."""
        return [r for r in self.records
                if (module is None or module in r.module) and (op is None or r.op == op)]

    def __str__(self):
        if not self.records:
            return f"{type(self).__name__}: no ops recorded"
        return self.table()

    def __repr__(self):
        return f"<{type(self).__name__}: {len(self.records)} records>"


class BackwardTrace(_Trace):
    """The records of every op that backward ran inside the ``with`` block.

    Made by :func:`trace_backward`; ``records`` is a list of ``BackwardRecord``,
    ``print(trace)`` shows them as a table.
    """

    def __init__(self, keep_arrays=False, params=None):
        super().__init__()
        self.keep_arrays = bool(keep_arrays)
        self._names = _name_map(params)

    @staticmethod
    def _observers():
        return autograd._backward_observers

    def _observe(self, raw):
        self.records.append(_backward_record(len(self.records), raw, self._names,
                                             keep_arrays=self.keep_arrays, keep_graph=False))

    def table(self):
        return _backward_table(self.records)


def trace_backward(keep_arrays=False, params=None):
    """Record every op that a backward pass runs, in the order it runs them.

        with ms.trace_backward(params=dict(model.named_parameters())) as tr:
            loss.backward()
        print(tr)           # step, op, module, output shape, |grad_out|, grads to inputs
        tr.records          # list of BackwardRecord

    keep_arrays: also keep each op's incoming gradient and the gradients it
    returned (``record.gy``, ``record.gxs``); off by default because those are
    as large as the activations. params: name -> Tensor (or ``named_parameters()``)
    to name the inputs in the table; without it, parameters are named from the
    module that ran the op (``layer1.0.se.fc2.weight``), other tensors by
    ``tensor.name``, and the rest ``x0``, ``x1``... by position.
    """
    return BackwardTrace(keep_arrays=keep_arrays, params=params)


# --- forward records ----------------------------------------------------------
@dataclass
class ForwardRecord:
    """One forward op and the statistics of what it produced.

    mean / std / min / max are over every element of the output;
    frac_zero is the fraction of exact zeros (dead ReLUs show up here).
    ``array`` holds the output only with ``trace_forward(keep_arrays=True)``.
    """

    step: int
    op: str
    module: str
    input_shapes: tuple
    output_shape: tuple
    dtype: str
    mean: float
    std: float
    min: float
    max: float
    frac_zero: float
    array: object = field(default=None, repr=False)


def _forward_record(step, fn, inputs, output, keep_arrays):
    a = output.data
    if a.size == 0:
        mean = std = lo = hi = frac_zero = math.nan
    else:
        xp = backend.get_array_module(a)
        a64 = _as_float64(a)
        mean, std = float(a64.mean()), float(a64.std())
        lo, hi = float(a64.min()), float(a64.max())
        frac_zero = float(xp.count_nonzero(a == 0)) / a.size
    return ForwardRecord(
        step=step, op=fn.name, module=fn.module_path,
        input_shapes=tuple(tuple(t.shape) for t in inputs),
        output_shape=tuple(output.shape), dtype=str(output.dtype),
        mean=mean, std=std, min=lo, max=hi, frac_zero=frac_zero,
        array=a if keep_arrays else None,
    )


class ForwardTrace(_Trace):
    """The records of every op that ran forward inside the ``with`` block (see :func:`trace_forward`)."""

    def __init__(self, keep_arrays=False):
        super().__init__()
        self.keep_arrays = bool(keep_arrays)

    @staticmethod
    def _observers():
        return autograd._forward_observers

    def _observe(self, fn, inputs, output):
        self.records.append(_forward_record(len(self.records), fn, inputs, output, self.keep_arrays))

    def table(self):
        headers = ["step", "op", "module", "output shape", "mean", "std", "min", "max", "zeros"]
        rows = [[str(r.step), r.op, r.module or "-", _shape_str(r.output_shape), _num(r.mean), _num(r.std),
                 _num(r.min), _num(r.max), f"{100 * r.frac_zero:.1f}%"] for r in self.records]
        return _format_table(headers, rows, numeric={0, 4, 5, 6, 7, 8})


def trace_forward(keep_arrays=False):
    """Record every op that runs forward, with statistics of its output.

        with ms.trace_forward() as tf:
            logits = model(x)
        print(tf)           # step, op, module, output shape, mean, std, min, max, % zeros

    Ops run under ``no_grad`` are recorded too (they still compute something).
    keep_arrays: keep each output array in ``record.array``.
    """
    return ForwardTrace(keep_arrays=keep_arrays)


# --- the step debugger ----------------------------------------------------------
def _module_matcher(breakpoint_on):
    if breakpoint_on is None:
        return None
    if isinstance(breakpoint_on, str):
        return lambda record: breakpoint_on in record.module
    if callable(breakpoint_on):
        return breakpoint_on
    raise TypeError(
        f"step_backward: breakpoint_on must be a module-path substring (e.g. 'se' or 'layer2.1') "
        f"or a function record -> bool, got {type(breakpoint_on).__name__}"
    )


def step_backward(loss, grad=None, retain_graph=False, breakpoint_on=None, pdb=False, params=None):
    """The real backward pass of ``loss``, one op at a time: a generator of ``BackwardRecord``.

        for rec in ms.step_backward(loss):
            print(rec.step, rec.op, rec.module, rec.gy.shape)
            # rec.gxs: the gradients rec.op returned, one per input (arrays, None for constants)
            # rec.function.saved: what the op saved in forward (still there while paused here)

    Each record comes with the arrays (``gy``, ``gxs``) and the ``function``,
    ``inputs`` and ``output`` of the op. The walk is ``autograd.backward_steps``,
    the same one ``loss.backward()`` runs, so once the generator is exhausted
    every leaf holds in ``.grad`` exactly what ``backward()`` would have put
    there. Nothing runs until you ask for the first record; if you stop early
    (``break``), the leaves have only the gradient that has arrived so far.

    breakpoint_on: only yield the records of matching ops; a string matches a
    module path containing it (``"se"`` matches ``layer2.1.se.fc2``), a
    function gets the record and returns True to stop there
    (``lambda r: r.op == "Sigmoid"``). The other ops still run.
    pdb: also call ``breakpoint()`` at each matching op, with the record in the
    local variable ``record`` (type ``c`` to go on). Run it as
    ``for _ in ms.step_backward(loss, breakpoint_on="se", pdb=True): pass``.
    params: names for the inputs, as in :func:`trace_backward`.
    """
    if not isinstance(loss, Tensor):
        raise TypeError(f"step_backward: expected a Tensor (the loss), got {type(loss).__name__}")
    match = _module_matcher(breakpoint_on)
    names = _name_map(params)
    return _step_backward(loss, grad, retain_graph, match, bool(pdb), names)


def _step_backward(loss, grad, retain_graph, match, pdb, names):
    for step, raw in enumerate(autograd.backward_steps(loss, grad, retain_graph=retain_graph)):
        record = _backward_record(step, raw, names, keep_arrays=True, keep_graph=True)
        if match is not None and not match(record):
            continue
        if pdb:
            print(f"step_backward: paused at step {record.step}, {record.op} in "
                  f"{record.module or '(no module)'}. `record.gy`, `record.gxs`, `record.function.saved`; "
                  f"'c' continues.")
            breakpoint()
        yield record


# --- anomaly detection ----------------------------------------------------------
class detect_anomaly(contextlib.ContextDecorator):
    """Inside this block, the first op whose forward or backward makes a NaN or an Inf raises.

        with ms.detect_anomaly():
            loss = model(x).log().sum()      # AnomalyError: Log in module layer1.0.se ...
            loss.backward()

    The error (``ms.AnomalyError``, a FloatingPointError) names the op, the
    module path that ran it, whether forward or backward, and how many values
    are NaN / Inf. Leaving the block restores the previous setting, so blocks
    nest. Works as a decorator too. Each op then checks its result
    (``isfinite`` over the whole array): slower, for debugging only.
    """

    def __init__(self, enabled=True):
        self.enabled = bool(enabled)
        self._previous = []

    def __enter__(self):
        self._previous.append(autograd._set_anomaly(self.enabled))
        return self

    def __exit__(self, *exc):
        autograd._set_anomaly(self._previous.pop())
        return False


# --- gradient health over training -----------------------------------------------
GRAD_HEALTH_COLUMNS = ("epoch", "step", "param", "grad_norm", "update_ratio")


@dataclass
class GradHealthRecord:
    """One parameter at one optimizer step: the row format of ``grad_health.csv``.

    epoch: the epoch number as the trainer counts it. step: the global
    optimizer-step count since the start of training (monotonic across
    epochs; the x axis of the plot). param: dotted parameter name
    (``layer1.0.se.fc1.weight``). grad_norm: L2 norm of the parameter's
    gradient just before the step. update_ratio: ``||w_after - w_before|| /
    ||w_before||``, the relative size of the step (about 1e-3 is the usual
    rule of thumb for a healthy rate); NaN when ``w_before`` is all zeros.
    """

    epoch: int
    step: int
    param: str
    grad_norm: float
    update_ratio: float


class GradientMonitor:
    """Per-parameter gradient norm and update/weight ratio around an optimizer step.

        monitor = GradientMonitor(model.named_parameters())
        loss.backward()
        monitor.before_step()              # gradient norms, and a copy of every weight
        optimizer.step()
        monitor.after_step(epoch, step)    # -> list of GradHealthRecord, also in monitor.records
        monitor.to_csv(run_dir / "grad_health.csv")

    Parameters without a gradient (unused, frozen) are skipped. ``before_step``
    copies every weight, so call it only on the steps you want to log.
    """

    def __init__(self, named_parameters):
        if hasattr(named_parameters, "named_parameters"):
            named_parameters = named_parameters.named_parameters()
        items = named_parameters.items() if hasattr(named_parameters, "items") else named_parameters
        self.params = [(str(name), p) for name, p in items]
        for name, p in self.params:
            if not isinstance(p, Tensor):
                raise TypeError(f"GradientMonitor: expected (name, Tensor) pairs, got {type(p).__name__} for {name!r}")
        self.records = []
        self._before = None

    def before_step(self):
        """Measure the gradients and remember the weights; call right before ``optimizer.step()``."""
        self._before = [(name, p, _norm_array(p.grad.data), p.data.copy())
                        for name, p in self.params if p.grad is not None]

    def after_step(self, epoch, step):
        """Compare each weight with its copy from ``before_step``; returns (and keeps) the new records.

        The norms stay on the device until one transfer at the end: one GPU sync per call.
        """
        if self._before is None:
            raise RuntimeError("GradientMonitor.after_step: call before_step() before optimizer.step()")
        before, self._before = self._before, None
        if not before:
            return []
        xp = backend.get_array_module(before[0][3])
        table = backend.to_numpy(xp.stack([
            xp.stack([grad_norm for _, _, grad_norm, _ in before]),
            xp.stack([_norm_array(p.data - w) for _, p, _, w in before]),
            xp.stack([_norm_array(w) for _, _, _, w in before]),
        ]))
        new = []
        for (name, *_), grad_norm, update, weight in zip(before, *table):
            ratio = float(update / weight) if weight > 0 else math.nan
            new.append(GradHealthRecord(int(epoch), int(step), name, float(grad_norm), ratio))
        self.records.extend(new)
        return new

    def to_csv(self, path):
        """Write every record so far to ``path`` (atomically), columns ``GRAD_HEALTH_COLUMNS``."""
        return write_grad_health_csv(self.records, path)


def write_grad_health_csv(records, path):
    """Write GradHealthRecords as CSV with the header epoch,step,param,grad_norm,update_ratio.

    The file is written to a temporary file beside ``path`` and renamed, so a
    crash never leaves half a file. Returns ``path``.
    """
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(GRAD_HEALTH_COLUMNS)
            for r in records:
                writer.writerow([r.epoch, r.step, r.param, repr(float(r.grad_norm)), repr(float(r.update_ratio))])
    return path


def read_grad_health_csv(path):
    """The records of a ``grad_health.csv``; raises ValueError if its header is not GRAD_HEALTH_COLUMNS."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != GRAD_HEALTH_COLUMNS:
            raise ValueError(f"read_grad_health_csv: {path} has columns {reader.fieldnames}, "
                             f"expected {list(GRAD_HEALTH_COLUMNS)}")
        return [GradHealthRecord(int(row["epoch"]), int(row["step"]), row["param"],
                                 float(row["grad_norm"]), float(row["update_ratio"])) for row in reader]
