"""``ms.summary(model, input_shape)``: a per-layer table of output shapes, parameters and MACs.

One forward pass (in eval mode, without a graph) runs with a forward hook on
every module. Each hook records the module's output shape and, for the layers
that do the multiplications, the multiply-accumulates (MACs) of that call:

    Conv2d:  MACs = output elements * in_channels * kh * kw     (N * C_out * H_out * W_out * C_in * kh * kw)
    Linear:  MACs = output elements * in_features               (N * out * in)

Everything else counts 0 MACs: BatchNorm, pooling, activations, and the
elementwise ops written inside a forward (the residual addition, the SE
block's reweight product) cost a few operations per element, negligible
next to the convolutions. Biases are not counted either (an add, not a
multiply-accumulate). Containers show the sums over the layers inside them.
Two lines under the totals say what counting more would add: BatchNorm as one
multiply-add per output element, and the SE blocks' squeeze (one add per
element) and reweight (one multiply per element). The SE paper's "GFLOPs" are
multiply-adds: ResNet-50 3.86 G; SE-ResNet-50 3.87 G is the convolutions and
fully connected layers plus that SE elementwise work (docs/pytorch.md).

For models with SE blocks the summary also counts the parameters the blocks
add and checks them against the paper's eq. 5: (2 / r) * sum_s N_s * C_s^2
weights (N_s blocks with C_s channels) plus the biases, N_s * (C_s / r + C_s).
The two agree whenever r divides every C_s (the bottleneck is C // r wide).

The module ``minise.summary`` holds the ``Summary`` class; ``ms.summary`` is the function.
"""

import numpy as np

from ..autograd import no_grad
from ..nn import BatchNorm1d, BatchNorm2d, Conv2d, Linear, SEBlock
from ..tensor import Tensor

__all__ = ["summary", "Summary"]


def summary(model, input_shape=(1, 3, 32, 32), max_depth=None, name=None):
    """Run ``model`` once on a random input of ``input_shape`` and tabulate every module.

    The model's train/eval flags and BatchNorm statistics are left as they were.
    ``max_depth`` limits the rows printed (1: only the model's direct children).
    ``name``: what to call the model in the title (e.g. its zoo name "se_resnet20");
    the title also says whether it has SE blocks, since ResNet and SE-ResNet share a class.
    Returns a :class:`Summary`; ``print()`` it for the table.
    """
    input_shape = tuple(int(n) for n in input_shape)
    if len(input_shape) < 2 or min(input_shape) <= 0:
        raise ValueError(f"summary: input_shape must be positive sizes (N, C, H, W), got {input_shape}")
    params = list(model.parameters())
    device = params[0].device if params else "cpu"
    dtype = params[0].dtype if params else np.float32
    x = Tensor(np.random.default_rng(0).standard_normal(input_shape).astype(dtype), device=device)

    records = {}  # id(module) -> {"shape": ..., "macs": ..., "calls": ...}
    bn_elements = [0]  # BatchNorm outputs: one multiply-add each, if one counts them
    se_elements = [0]  # SE blocks' outputs: one add (squeeze) and one multiply (reweight) each

    def hook(module, inputs, output):
        rec = records.setdefault(id(module), {"shape": None, "macs": 0, "calls": 0})
        rec["shape"] = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
        rec["calls"] += 1
        if isinstance(module, Conv2d):
            kh, kw = module.kernel_size
            rec["macs"] += output.numel() * module.in_channels * kh * kw
        elif isinstance(module, Linear):
            rec["macs"] += output.numel() * module.in_features
        elif isinstance(module, (BatchNorm1d, BatchNorm2d)):
            bn_elements[0] += output.numel()
        elif isinstance(module, SEBlock):
            se_elements[0] += output.numel()

    modes = [(m, m.training) for m in model.modules()]
    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        model.eval()
        with no_grad():
            output = model(x)
    finally:
        for handle in handles:
            handle.remove()
        for m, mode in modes:
            object.__setattr__(m, "training", mode)

    rows = []
    leaf_macs = {}
    for _path, module in model.named_modules():
        if not any(True for _ in module.children()):
            leaf_macs[id(module)] = records.get(id(module), {}).get("macs", 0)
    for path, module in model.named_modules():
        if not path:
            continue
        rec = records.get(id(module))
        macs = sum(leaf_macs.get(id(m), 0) for m in module.modules())
        rows.append({
            "name": path,
            "depth": path.count(".") + 1,
            "type": type(module).__name__,
            "output_shape": rec["shape"] if rec else None,
            "params": sum(p.numel() for p in module.parameters()),
            "macs": macs,
        })

    se_blocks = [m for m in model.modules() if isinstance(m, SEBlock)]
    kind = type(model).__name__ + (f" with {len(se_blocks)} SE blocks" if se_blocks else ", no SE blocks")
    return Summary(
        model_name=f"{name} ({kind})" if name else kind,
        input_shape=input_shape,
        output_shape=tuple(output.shape) if isinstance(output, Tensor) else None,
        rows=rows,
        total_params=sum(p.numel() for p in params),
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        total_macs=sum(leaf_macs.values()),
        batchnorm_elements=bn_elements[0],
        se_elements=se_elements[0],
        se=_se_overhead(se_blocks, model) if se_blocks else None,
        max_depth=max_depth,
    )


def _se_overhead(blocks, model):
    """SE parameters counted from the blocks, and by the paper's formula, grouped by (C, r)."""
    groups = {}
    for block in blocks:
        key = (block.channels, block.reduction)
        groups[key] = groups.get(key, 0) + 1
    stages = [{"channels": c, "reduction": r, "blocks": n} for (c, r), n in sorted(groups.items())]
    formula_weights = sum(2.0 / s["reduction"] * s["blocks"] * s["channels"] ** 2 for s in stages)
    formula_biases = sum(s["blocks"] * (s["channels"] / s["reduction"] + s["channels"]) for s in stages)
    counted = sum(sum(p.numel() for p in block.parameters()) for block in blocks)
    formula = formula_weights + formula_biases
    return {
        "blocks": len(blocks),
        "stages": stages,
        "params": counted,
        "formula_weights": formula_weights,
        "formula_biases": formula_biases,
        "formula_params": formula,
        "agrees": abs(formula - counted) < 0.5,
        "exact_bottleneck": all(s["channels"] % s["reduction"] == 0 for s in stages),
        "base_params": model.num_parameters() - counted,
    }


class Summary:
    """What ``ms.summary`` measured; ``str()`` is the table.

    rows: one dict per module (name, depth, type, output_shape, params, macs).
    total_params, trainable_params, total_macs (for the whole input batch),
    macs_per_sample, batchnorm_elements, se_elements (elements the SE blocks rescale), input_shape,
    output_shape, and ``se`` (None without SE
    blocks): params, formula_params, formula_weights, formula_biases, agrees, stages.
    """

    def __init__(self, model_name, input_shape, output_shape, rows, total_params, trainable_params, total_macs,
                 se, batchnorm_elements=0, max_depth=None, se_elements=0):
        self.model_name = model_name
        self.input_shape = input_shape
        self.output_shape = output_shape
        self.rows = rows
        self.total_params = total_params
        self.trainable_params = trainable_params
        self.total_macs = total_macs
        self.macs_per_sample = total_macs / input_shape[0]
        self.batchnorm_elements = batchnorm_elements
        self.se_elements = se_elements
        self.se = se
        self.max_depth = max_depth

    def table(self, max_depth=None):
        """The per-layer table as text; rows deeper than ``max_depth`` are left out."""
        header = ("Layer", "Type", "Output shape", "Params", "MACs")
        lines = []
        for row in self.rows:
            if max_depth is not None and row["depth"] > max_depth:
                continue
            shape = "-" if row["output_shape"] is None else _shape_text(row["output_shape"])
            lines.append(("  " * (row["depth"] - 1) + row["name"], row["type"], shape,
                          f"{row['params']:,}", f"{row['macs']:,}"))
        widths = [max(len(r[i]) for r in [header] + lines) for i in range(len(header))]

        def fmt(cells):
            left = [c.ljust(w) for c, w in zip(cells[:3], widths[:3])]
            right = [c.rjust(w) for c, w in zip(cells[3:], widths[3:])]
            return "  ".join(left + right).rstrip()

        rule = "-" * len(fmt(tuple("-" * w for w in widths)))
        out = [f"{self.model_name} on input {_shape_text(self.input_shape)}", rule, fmt(header), rule]
        out += [fmt(line) for line in lines]
        out += [rule, self._totals()]
        if self.se is not None:
            out += [rule, self._se_text()]
        return "\n".join(out)

    def _totals(self):
        n = self.input_shape[0]
        lines = [
            f"output shape:       {_shape_text(self.output_shape) if self.output_shape else '-'}",
            f"total parameters:   {self.total_params:,} ({_human(self.total_params)})",
            f"trainable:          {self.trainable_params:,}",
            f"total MACs:         {self.total_macs:,}" + (f" for the batch of {n}" if n != 1 else ""),
            f"MACs per sample:    {self.macs_per_sample:,.0f} ({_human(self.macs_per_sample)})",
            "(MACs count Conv2d and Linear only; BatchNorm, pooling and elementwise ops count 0)",
        ]
        if self.batchnorm_elements:
            per_sample = self.batchnorm_elements / n
            lines.append(f"(BatchNorm as one multiply-add per output element would add {per_sample:,.0f} per sample: "
                         f"{(self.macs_per_sample + per_sample) / 1e6:.2f} M)")
        if self.se_elements:
            per_sample = 2 * self.se_elements / n
            lines.append(f"(the SE blocks' squeeze and reweight, one add and one multiply per element, would add "
                         f"{per_sample:,.0f} per sample: {_human(self.macs_per_sample + per_sample)})")
        return "\n".join(lines)

    def _se_text(self):
        se = self.se
        stages = ", ".join(f"{s['blocks']} x C={s['channels']} (r={s['reduction']})" for s in se["stages"])
        share = 100.0 * se["params"] / se["base_params"] if se["base_params"] else float("nan")
        verdict = "agrees with the blocks' count" if se["agrees"] else (
            "differs from the blocks' count: the bottleneck is max(1, C // r) units wide, the formula assumes "
            "C / r exactly" if not se["exact_bottleneck"] else "DIFFERS from the blocks' count")
        return "\n".join([
            f"SE blocks:          {se['blocks']}: {stages}",
            f"SE parameters:      {se['params']:,} (+{share:.2f}% over the {se['base_params']:,} without SE)",
            f"paper's eq. 5:      (2/r) * sum_s N_s * C_s^2 = {se['formula_weights']:,.0f} weights"
            f" + {se['formula_biases']:,.0f} biases = {se['formula_params']:,.0f}: {verdict}",
        ])

    def __str__(self):
        return self.table(self.max_depth)

    def __repr__(self):
        return self.__str__()


def _human(n):
    """3.87 G for 3,868,000,000; 40.81 M below a billion (the units papers quote)."""
    return f"{n / 1e9:.2f} G" if n >= 1e9 else f"{n / 1e6:.2f} M"


def _shape_text(shape):
    if isinstance(shape, str):
        return shape
    return "(" + ", ".join(str(n) for n in shape) + ")"
