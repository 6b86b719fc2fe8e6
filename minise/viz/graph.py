"""The autograd graph as a picture: Graphviz DOT text, and rendering it.

    dot = ms.viz.to_dot(loss, params=dict(model.named_parameters()))
    ms.viz.render(dot, "graph.svg")          # needs the Graphviz program `dot`

The graph is read from the tensors themselves: ``loss.creator`` is the last op,
``creator.inputs`` its input tensors, and so on down to the leaves. Backward
frees ``creator.inputs`` (and the saved buffers) as it goes, so draw the graph
*before* ``backward()``, or after ``backward(retain_graph=True)``.

Graphviz runs as a separate program, only in ``render``.
"""

import math
import os
import shutil
import subprocess

from ..debug.stats import _mean_absmax, _norm, _shape_str
from ..debug.tracer import BackwardTrace
from ..io.atomic import atomic_path
from ..tensor import Tensor

__all__ = ["to_dot", "render", "GraphvizNotFoundError"]

_OP_STYLE = 'shape=ellipse, style=filled, fillcolor="#e8e8e8"'
_ROOT_STYLE = 'shape=ellipse, style=filled, fillcolor="#c8f0b0", penwidth=2'
_PARAM_STYLE = 'shape=box, style=filled, fillcolor="#cfe2f3"'
_CONST_STYLE = 'shape=box, style=dashed, fontcolor="#666666", color="#999999"'
_GROUP_STYLE = 'shape=box3d, style=filled, fillcolor="#fff2cc"'
_BAD_GRAD = 'color="#d00000", fontcolor="#d00000", penwidth=2'


# --- reading the graph ----------------------------------------------------------
def _freed_error(fn):
    return RuntimeError(
        f"to_dot: the graph behind this tensor was freed by backward() (the inputs of {fn.name} are gone). "
        "Call ms.viz.to_dot(...) before loss.backward(), or call loss.backward(retain_graph=True) "
        "to keep the graph for drawing (then the picture can show gradient statistics too)."
    )


def _walk(root):
    """Every op and leaf behind ``root``.

    Returns ``ops`` {id(fn): (fn, output tensor)} and ``leaves`` {id(t): t} in
    the order met from the root, and ``edges`` (source, id(consumer fn)) where
    source is ("op", id(fn)) or ("leaf", id(t)); an input used twice gives two edges.
    """
    ops, leaves, edges = {}, {}, []
    seen = set()
    stack = [root]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        fn = t.creator
        if fn is None:
            leaves[id(t)] = t
            continue
        if getattr(fn, "freed", False) or getattr(fn, "inputs", None) is None:
            raise _freed_error(fn)
        ops[id(fn)] = (fn, t)
        for x in fn.inputs:
            edges.append((("op", id(x.creator)) if x.creator is not None else ("leaf", id(x)), id(fn)))
        stack.extend(reversed(fn.inputs))
    return ops, leaves, edges


def _module_info(ops):
    """Module type name of every module path the ops ran in, and parameter names found on them.

    Parameters are named from each module's ``_parameters`` dict (how nn.Module
    stores them), so ``fc1.weight`` appears without passing ``params=``.
    """
    types, names, visited = {}, {}, set()
    for fn, _ in ops.values():
        stack = getattr(fn, "module_stack", ())
        path = fn.module_path.split(".") if stack and fn.module_path else []
        for depth, module in enumerate(stack):
            prefix = ".".join(path[:depth])
            types.setdefault(prefix, type(module).__name__)
            if id(module) in visited:
                continue
            visited.add(id(module))
            own = getattr(module, "_parameters", None)
            if isinstance(own, dict):
                for key, p in own.items():
                    if isinstance(p, Tensor):
                        names.setdefault(id(p), f"{prefix}.{key}" if prefix else key)
    return types, names


def _split(path):
    return tuple(path.split(".")) if path else ()


def _place_leaf(t, name, users, ops, node_of_op, groups, depth):
    """Where a leaf goes: (group node id it folds into, None) or (None, module path of its cluster).

    A named parameter sits in its module's cluster (``fc1.weight`` in ``fc1``)
    and folds into a collapsed module that is its only user. A one-element
    constant (the 2 of ``x * 2``) sits with the ops that use it when they share
    a module, and folds into a collapsed module that is its only user.
    Anything else (the input batch, for one) sits at the top level.
    """
    user_nodes = {node_of_op[u] for u in users}
    user_paths = {_split(ops[u][0].module_path) for u in users}
    if name and "." in name:
        owner = _split(name.rsplit(".", 1)[0])
    elif not t.requires_grad and t.numel() == 1 and len(user_paths) == 1:
        owner = next(iter(user_paths))
    else:
        return None, ()
    if not depth or len(owner) < depth:
        return None, owner
    gid = groups[owner[:depth]][0] if owner[:depth] in groups else None
    if gid is not None and user_nodes == {gid}:
        return gid, None
    return None, owner[:depth - 1]


# --- DOT text -------------------------------------------------------------------
def _quote(text):
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _label(lines):
    escaped = [str(line).replace("\\", "\\\\").replace('"', '\\"') for line in lines]
    return '"' + "\\n".join(escaped) + '"'


def _grad_lines(array, prefix="|grad|"):
    norm = _norm(array)
    _, absmax = _mean_absmax(array)
    bad = not (math.isfinite(norm) and math.isfinite(absmax))
    return [f"{prefix} {norm:.3g}  max {absmax:.3g}"], bad


def _collapse_depth(collapse_modules):
    if collapse_modules is True:
        return 1
    if collapse_modules is False or collapse_modules is None:
        return 0
    if isinstance(collapse_modules, int) and collapse_modules >= 1:
        return collapse_modules
    raise ValueError(f"to_dot: collapse_modules must be True, False or a depth >= 1, got {collapse_modules!r}")


def _assign_nodes(ops, depth):
    """Which node draws each op: its own ("opN"), or with collapsing the group of its module ("gN").

    Returns {id(fn): node id} and {module path tuple: (group node id, [fns])}.
    An op whose module path is shorter than ``depth`` keeps its own node.
    """
    node_of_op, groups = {}, {}
    for i, (key, (fn, _)) in enumerate(ops.items()):
        comps = _split(fn.module_path)
        if depth and len(comps) >= depth:
            gid, fns = groups.setdefault(comps[:depth], (f"g{len(groups)}", []))
            fns.append(fn)
            node_of_op[key] = gid
        else:
            node_of_op[key] = f"op{i}"
    return node_of_op, groups


def _op_grad_lines(record, out):
    """Gradient statistics of an op's output: from a trace record, else from a retained ``.grad``."""
    if record is not None:
        bad = not (math.isfinite(record.grad_output_norm) and math.isfinite(record.grad_output_absmax))
        return [f"|grad_out| {record.grad_output_norm:.3g}  max {record.grad_output_absmax:.3g}"], bad
    if out.grad is not None:
        return _grad_lines(out.grad.data)
    return [], False


def _group_lines(path, kind, fns, out_fns, records, n_params):
    """Label of a collapsed module: path and type, its ops, the shapes (and gradients) it hands on."""
    kinds = sorted({fn.name for fn in fns})
    lines = [f"{path}: {kind}",
             f"{len(fns)} op{'s' if len(fns) != 1 else ''}: " + ", ".join(kinds[:4])
             + (", ..." if len(kinds) > 4 else "")]
    bad = False
    for fn in out_fns:
        line = f"out {_shape_str(fn.output_shape)}"
        record = records.get(id(fn))
        if record is not None:
            line += f"  |grad_out| {record.grad_output_norm:.3g}"
            bad = bad or not math.isfinite(record.grad_output_norm)
        lines.append(line)
    if n_params:
        lines.append(f"{n_params} param{'s' if n_params != 1 else ''}")
    return lines, bad


def _leaf_look(t, name, show_grad):
    """Label lines and style of a leaf: a blue box if it requires grad, a dashed one if constant."""
    if t.requires_grad:
        lines, style = [name or "input", _shape_str(t.shape)], _PARAM_STYLE
    else:
        lines = [name or ("const" if t.numel() == 1 else "tensor (no grad)"),
                 _shape_str(t.shape) if t.numel() != 1 else f"= {t.item():.4g}"]
        style = _CONST_STYLE
    if show_grad and t.grad is not None:
        more, bad = _grad_lines(t.grad.data)
        lines += more
        style += (", " + _BAD_GRAD) if bad else ""
    return lines, style


def to_dot(tensor, params=None, show_grad=True, collapse_modules=False, trace=None, title=None):
    """Graphviz DOT text of the graph that computed ``tensor``.

        dot = ms.viz.to_dot(loss, params=dict(model.named_parameters()))
        ms.viz.render(dot, "graph.svg")

    Ops are ellipses labelled with the op name and output shape (the tensor
    itself is the green one); leaf tensors are boxes: parameters and inputs
    that require grad in blue, constants dashed. Ops are grouped by the module
    that ran them into nested ``cluster`` boxes (``layer2`` > ``layer2.1`` >
    ``layer2.1.se``), so a whole SE-ResNet stays readable.

    params: name -> Tensor (e.g. ``dict(model.named_parameters())``) to name
    the leaves; parameters of the modules that ran the ops are named
    automatically, and ``tensor.name`` is used when set.
    show_grad: after backward, add gradient statistics (L2 norm and max |g|):
    on leaves from ``.grad``, on ops from ``trace`` (a ``trace_backward()``
    recorded on this graph) or from an output that called ``retain_grad()``.
    Nodes whose gradient holds NaN or Inf are drawn in red.
    collapse_modules: True draws each top-level module as one node; an int d
    keeps d levels of module paths (2: one node per residual block,
    ``layer1.0``, ``layer1.1``, ...), a module's own parameters fold into it.
    title: a caption for the picture.

    The graph must still be there: backward frees it as it goes, so call
    to_dot before ``backward()`` or after ``backward(retain_graph=True)``.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"to_dot: expected a Tensor, got {type(tensor).__name__}")
    depth = _collapse_depth(collapse_modules)
    ops, leaves, edges = _walk(tensor)
    types, auto_names = _module_info(ops)
    names = dict(auto_names)
    if params is not None:
        items = params.items() if hasattr(params, "items") else params
        names.update({id(t): str(name) for name, t in items})
    records = {}
    if trace is not None:
        for rec in (trace.records if isinstance(trace, BackwardTrace) else trace):
            fn = rec._function_ref() if rec._function_ref is not None else None
            if fn is not None and id(fn) in ops:
                records[id(fn)] = rec

    node_of_op, groups = _assign_nodes(ops, depth)
    consumers = {}  # leaf id -> ids of the ops that use it
    for source, dst in edges:
        if source[0] == "leaf":
            consumers.setdefault(source[1], set()).add(dst)
    clusters = {}  # module path tuple -> the node lines drawn in that module's cluster

    def place(comps, line):
        clusters.setdefault(tuple(comps), []).append(line)

    for i, (key, (fn, out)) in enumerate(ops.items()):
        if node_of_op[key] == f"op{i}":
            lines, bad = [fn.name, _shape_str(fn.output_shape)], False
            if show_grad:
                more, bad = _op_grad_lines(records.get(key), out)
                lines += more
            style = (_ROOT_STYLE if out is tensor else _OP_STYLE) + (", " + _BAD_GRAD if bad else "")
            tip = _quote(fn.module_path or "(outside any module)")
            place(_split(fn.module_path), f"op{i} [label={_label(lines)}, {style}, tooltip={tip}];")

    folded, leaf_place = {}, {}  # group node id -> parameter names folded into it; leaf id -> cluster
    for key, t in leaves.items():
        into, where = _place_leaf(t, names.get(key), consumers.get(key, set()), ops, node_of_op, groups, depth)
        if into is None:
            leaf_place[key] = where
        elif t.requires_grad:  # constants fold in silently; parameters are counted on the node
            folded.setdefault(into, []).append(names.get(key))

    root_key = id(tensor.creator) if tensor.creator is not None else None
    outputs = {}  # group node id -> ids of its ops whose result leaves the group
    for source, dst in edges:
        if source[0] == "op" and node_of_op[source[1]] != node_of_op[dst]:
            outputs.setdefault(node_of_op[source[1]], []).append(source[1])
    if root_key is not None:
        outputs.setdefault(node_of_op[root_key], []).append(root_key)
    for group, (gid, fns) in groups.items():
        path = ".".join(group)
        out_fns = [ops[k][0] for k in dict.fromkeys(outputs.get(gid, []))]
        lines, bad = _group_lines(path, types.get(path, "module"), fns, out_fns,
                                  records if show_grad else {}, len(folded.get(gid, [])))
        style = _GROUP_STYLE + (", penwidth=2" if root_key is not None and node_of_op[root_key] == gid else "")
        style += (", " + _BAD_GRAD) if bad else ""
        place(group[:-1], f"{gid} [label={_label(lines)}, {style}, tooltip={_quote(path)}];")

    leaf_ids = {}
    for i, (key, t) in enumerate(leaves.items()):
        if key in leaf_place:
            leaf_ids[key] = f"t{i}"
            lines, style = _leaf_look(t, names.get(key) or t.name, show_grad)
            style += ", penwidth=2" if t is tensor else ""
            place(leaf_place[key], f"t{i} [label={_label(lines)}, {style}];")

    # edges: data flows from inputs to the ops that use them (once per pair between collapsed nodes)
    edge_lines, drawn = [], set()
    for source, dst in edges:
        src = node_of_op[source[1]] if source[0] == "op" else leaf_ids.get(source[1])
        line = f"  {src} -> {node_of_op[dst]};"
        if src is not None and src != node_of_op[dst] and not (depth and line in drawn):
            edge_lines.append(line)
            drawn.add(line)

    out = ["digraph minise {",
           '  graph [rankdir=TB, fontname="Helvetica", fontsize=10, nodesep=0.25, ranksep=0.3];',
           '  node [fontname="Helvetica", fontsize=10, height=0.3];',
           '  edge [color="#555555", arrowsize=0.6];']
    if title:
        out.append(f"  label={_quote(title)}; labelloc=t; fontsize=14;")
    _emit_clusters(out, clusters, types)
    out.extend(edge_lines)
    out.append("}")
    return "\n".join(out) + "\n"


def _emit_clusters(out, clusters, types):
    """Write the nodes of each module path inside nested ``subgraph cluster_N`` blocks."""
    paths = set()
    for comps in clusters:
        for k in range(1, len(comps) + 1):
            paths.add(comps[:k])
    children = {}
    for comps in sorted(paths):
        children.setdefault(comps[:-1], []).append(comps)
    counter = [0]

    def emit(comps, indent):
        pad = "  " * indent
        for line in clusters.get(comps, []):
            out.append(pad + line)
        for child in children.get(comps, []):
            path = ".".join(child)
            out.append(f"{pad}subgraph cluster_{counter[0]} {{")
            counter[0] += 1
            kind = types.get(path)
            out.append(f"{pad}  label={_quote(path + (f' ({kind})' if kind else ''))};")
            out.append(f'{pad}  style="rounded"; color="#8899aa"; fontcolor="#334455";')
            emit(child, indent + 1)
            out.append(pad + "}")

    emit((), 1)


# --- rendering ------------------------------------------------------------------
class GraphvizNotFoundError(RuntimeError):
    """The Graphviz program ``dot`` is not installed (``render`` needs it)."""


_FORMATS = ("svg", "png", "pdf", "dot")


def render(dot_text, path, format=None):
    """Write ``dot_text`` as a picture at ``path``; returns the path.

    format: "svg", "png", "pdf" (run through the Graphviz program ``dot``), or
    "dot" (the text itself); by default taken from the file's extension, else
    "svg". The file is written to a temporary name and renamed, so a failure
    never leaves half a picture. Without Graphviz it raises
    ``GraphvizNotFoundError`` saying how to install it.
    """
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lstrip(".").lower()
    if suffix == "gv":
        suffix = "dot"
    if format is None:
        format = suffix if suffix in _FORMATS else "svg"
    format = format.lower()
    if format not in _FORMATS:
        raise ValueError(f"render: format must be one of {', '.join(_FORMATS)}, got {format!r}")
    if suffix in _FORMATS and suffix != format:
        raise ValueError(f"render: the file name {path!r} says {suffix} but format={format!r}")
    with atomic_path(path) as tmp:
        if format == "dot":
            with open(tmp, "w") as f:
                f.write(dot_text)
        else:
            exe = shutil.which("dot")
            if exe is None:
                raise GraphvizNotFoundError(
                    "render: the Graphviz program `dot` is not installed, so the graph cannot be drawn as "
                    f"{format}. Install it with `sudo apt-get install graphviz` (Debian/Ubuntu), "
                    "`brew install graphviz` (macOS) or `conda install -c conda-forge graphviz`; "
                    "or save the text with render(dot_text, 'graph.dot') and view it elsewhere."
                )
            proc = subprocess.run([exe, f"-T{format}", "-o", str(tmp)], input=dot_text.encode(),
                                  capture_output=True, timeout=300)
            if proc.returncode != 0:
                raise RuntimeError(f"render: dot failed (exit {proc.returncode}): "
                                   f"{proc.stderr.decode(errors='replace').strip()}")
    return path
