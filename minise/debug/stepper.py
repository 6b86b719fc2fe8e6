"""The step debugger: the real backward walk, paused at each op you ask for."""

from .. import autograd
from ..tensor import Tensor
from .stats import _name_map
from .tracer import _backward_record


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
