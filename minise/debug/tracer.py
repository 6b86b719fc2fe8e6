"""Tracers: one record per op that a backward (or forward) pass runs, with gradient statistics.

They listen on the hooks of ``minise.autograd`` (``_backward_observers``,
``_forward_observers``): what they record is what the engine did.
"""

import math
import weakref
from dataclasses import dataclass, field

from .. import autograd, backend
from .stats import _as_float64, _format_table, _mean_absmax, _name_map, _norm, _num, _shape_str, _tensor_name


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
