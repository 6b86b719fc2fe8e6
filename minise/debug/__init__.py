"""Check and watch gradients: gradcheck, a tracer, a step debugger, anomaly detection, gradient health.

    ms.gradcheck(fn, inputs)                 # analytic vs numerical gradients, in float64 (gradcheck.py)

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
exhausts), and anomaly detection adds its checks to the same hooks. What you see is
what ``backward()`` does. Debugging costs time (every statistic is a reduction
over a whole array, and on the GPU a synchronisation): use these tools to look,
not inside a training loop.

``GradientMonitor`` is the one piece meant for training: it measures, per
parameter, the gradient norm and the size of the optimizer's update relative to
the weight (``||w_after - w_before|| / ||w_before||``), the numbers a trainer
writes to ``grad_health.csv`` and ``minise.viz.plot_grad_health`` draws.
"""

from .anomaly import AnomalyError, detect_anomaly
from .grad_health import (
                          GRAD_HEALTH_COLUMNS,
                          GradHealthRecord,
                          GradientMonitor,
                          read_grad_health_csv,
                          write_grad_health_csv,
)
from .gradcheck import GradcheckError, directional_gradcheck, gradcheck
from .stepper import step_backward
from .tracer import BackwardRecord, BackwardTrace, ForwardRecord, ForwardTrace, InputGrad, trace_backward, trace_forward

__all__ = [
    "gradcheck",
    "directional_gradcheck",
    "GradcheckError",
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
