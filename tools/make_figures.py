"""Draw the documentation figures into docs/figures/*.svg.

    python tools/make_figures.py            # writes every figure
    python tools/make_figures.py --check    # exit 1 if a committed figure is out of date

The diagrams redraw, in our own style, the ideas of Hu et al.'s figures
("Squeeze-and-Excitation Networks", Fig. 1, 3 and 5): the SE block pipeline,
the residual module next to the SE-ResNet module, and the integration
variants; plus two of our own for the derivations (im2col, and the two
gradient paths through the SE reweight).

Output is deterministic (fixed hash salt, no date, text kept as text), so a
rerun on unchanged code leaves the files byte for byte the same.
"""

import argparse
import io
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle  # noqa: E402

OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "docs", "figures")

plt.rcParams.update(
    {
        "svg.hashsalt": "minise",
        "svg.fonttype": "none",  # text stays text: small files, selectable labels
        "font.family": "DejaVu Sans",
        "font.size": 10,
    }
)

GREY = "#d9d9d9"
EDGE = "#333333"
BLUE = "#4c72b0"
ORANGE = "#dd8452"
GREEN = "#55a868"
RED = "#c44e52"
PURPLE = "#8172b3"
# channel colours for the recalibrated feature map (one per channel)
CHANNEL_COLOURS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c"]
# example gate values s_c, used to shade the reweighted channels
GATES = [0.9, 0.25, 0.7, 0.1, 0.55, 0.95, 0.4, 0.8]


# --- drawing helpers ----------------------------------------------------------
def arrow(ax, start, end, color=EDGE, lw=1.4, style="-|>", ls="-", rad=0.0):
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle=style,
            mutation_scale=12,
            color=color,
            lw=lw,
            linestyle=ls,
            connectionstyle=f"arc3,rad={rad}",
            shrinkA=0,
            shrinkB=0,
        )
    )


def box(ax, x, y, w, h, text, face="white", edge=EDGE, fontsize=9, bold=False):
    """A rounded box centred at (x, y)."""
    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2),
            w,
            h,
            boxstyle="round,pad=0.02,rounding_size=0.08",
            facecolor=face,
            edgecolor=edge,
            lw=1.2,
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, weight="bold" if bold else "normal")


def circle_op(ax, x, y, symbol, r=0.16):
    ax.add_patch(plt.Circle((x, y), r, facecolor="white", edgecolor=EDGE, lw=1.2))
    ax.text(x, y, symbol, ha="center", va="center", fontsize=12)


def blend(colour, weight):
    """``colour`` faded towards white: weight 1 keeps it, weight 0 gives white."""
    r, g, b = matplotlib.colors.to_rgb(colour)
    return (1 - weight * (1 - r), 1 - weight * (1 - g), 1 - weight * (1 - b))


def feature_map(ax, x, y, w, h, depth, colours, weights=None, label=None):
    """A C x H x W feature map as C slabs stacked in depth, front slab at (x, y).

    ``weights`` (one per channel, in [0, 1]) fade each slab towards white:
    the picture of a channel scaled by its gate value.
    """
    n = len(colours)
    dx, dy = depth / n * 0.8, depth / n * 0.5
    for i in reversed(range(n)):
        face = colours[i] if weights is None else blend(colours[i], weights[i])
        ax.add_patch(Rectangle((x + i * dx, y + i * dy), w, h, facecolor=face, edgecolor=EDGE, lw=0.7))
    if label:
        ax.text(x + (w + depth * 0.8) / 2, y + h + depth * 0.5 + 0.15, label, ha="center", va="bottom",
                fontsize=9)


def channel_vector(ax, x, y, cell, colours, weights=None, label=None):
    """A 1 x 1 x C vector drawn as a column of C small cells (one per channel)."""
    n = len(colours)
    for i, c in enumerate(colours):
        face = c if weights is None else blend(c, weights[i])
        ax.add_patch(Rectangle((x, y + (n - 1 - i) * cell), cell, cell, facecolor=face, edgecolor=EDGE, lw=0.7))
    if label:
        ax.text(x + cell / 2, y - 0.15, label, ha="center", va="top", fontsize=9)


def new_axes(width, height, xlim, ylim):
    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig, ax


# --- figure 1: the SE block ---------------------------------------------------
def se_block():
    fig, ax = new_axes(10, 3.4, (-0.3, 14.6), (-1.5, 3.9))
    n = len(GATES)
    grey = [GREY] * n
    mid = 1.6

    feature_map(ax, 0.0, 0.4, 1.3, 1.6, 0.9, ["#f2f2f2"] * 4, label="X  (H' x W' x C')")
    arrow(ax, (2.2, mid), (3.15, mid))
    ax.text(2.67, mid + 0.15, r"$F_{tr}$", ha="center", va="bottom", fontsize=11)

    feature_map(ax, 3.3, 0.4, 1.3, 1.6, 1.6, grey, label="U  (H x W x C)")

    arrow(ax, (6.0, 2.2), (7.1, 2.2), color=BLUE)
    ax.text(6.55, 2.35, r"$F_{sq}(\cdot)$", ha="center", va="bottom", fontsize=10, color=BLUE)
    ax.text(6.55, 2.05, "squeeze", ha="center", va="top", fontsize=8.5, color=BLUE)
    channel_vector(ax, 7.2, 1.2, 0.24, grey, label="z  (1 x 1 x C)")

    arrow(ax, (7.6, 2.2), (9.3, 2.2), color=ORANGE)
    ax.text(8.45, 2.35, r"$F_{ex}(\cdot, W)$", ha="center", va="bottom", fontsize=10, color=ORANGE)
    ax.text(8.45, 2.05, "excitation", ha="center", va="top", fontsize=8.5, color=ORANGE)
    channel_vector(ax, 9.4, 1.2, 0.24, CHANNEL_COLOURS, weights=GATES, label="s  (1 x 1 x C)")

    arrow(ax, (9.8, 2.2), (11.7, 1.5), color=GREEN)
    ax.text(10.75, 2.2, r"$F_{scale}(\cdot, \cdot)$", ha="center", va="bottom", fontsize=10, color=GREEN)
    # U also goes straight to the scale step
    arrow(ax, (4.6, 0.3), (11.9, 0.3), color=GREEN, rad=0.25)
    ax.text(8.2, 0.25, "reweight: channel c of U times s_c", ha="center", va="center", fontsize=8.5, color=GREEN)

    feature_map(ax, 11.8, 0.4, 1.3, 1.6, 1.6, CHANNEL_COLOURS, weights=GATES, label=r"$\tilde{X}$  (H x W x C)")

    ax.text(
        7.15,
        -1.25,
        "squeeze: global average pool, one number per channel    "
        "excitation: FC - ReLU - FC - sigmoid, one gate per channel",
        ha="center",
        va="center",
        fontsize=8.5,
        color="#555555",
    )
    return fig


# --- figure 2: residual module vs SE-ResNet module ------------------------------
def _flow(ax, x, steps, top, dy, width=2.3, height=0.42):
    """Boxes down a column; returns the y of each box."""
    ys = []
    y = top
    for i, (text, face) in enumerate(steps):
        box(ax, x, y, width, height, text, face=face)
        ys.append(y)
        if i + 1 < len(steps):
            arrow(ax, (x, y - height / 2), (x, y - dy + height / 2))
        y -= dy
    return ys


def se_resnet_module():
    fig, ax = new_axes(9.6, 7.2, (-0.5, 12.3), (-0.9, 8.4))

    # left: the residual module
    ax.text(2.2, 8.15, "Residual module", ha="center", fontsize=11, weight="bold")
    xl = 1.7
    box(ax, xl, 7.45, 1.4, 0.42, "X")
    arrow(ax, (xl, 7.24), (xl, 6.74))
    box(ax, xl, 6.5, 2.7, 0.48, "Residual branch\n(conv-BN-ReLU-conv-BN)", face=GREY, fontsize=8)
    arrow(ax, (xl, 6.26), (xl, 1.66))
    ax.text(xl + 0.1, 4.0, "H x W x C", ha="left", va="center", fontsize=8, color="#555555")
    circle_op(ax, xl, 1.5, "+")
    arrow(ax, (xl, 1.34), (xl, 0.93))
    box(ax, xl, 0.72, 1.6, 0.42, "ReLU")
    arrow(ax, (xl, 0.51), (xl, 0.0))
    box(ax, xl, -0.25, 1.4, 0.42, r"$\tilde{X}$")
    # identity
    ax.plot([xl - 0.7, 0.0, 0.0], [7.45, 7.45, 1.5], color=EDGE, lw=1.4)
    arrow(ax, (0.0, 1.5), (xl - 0.16, 1.5))
    ax.text(-0.1, 4.6, "identity", rotation=90, ha="right", va="center", fontsize=9)

    # right: the SE-ResNet module
    ax.text(7.6, 8.15, "SE-ResNet module", ha="center", fontsize=11, weight="bold")
    xr = 7.6
    box(ax, xr, 7.45, 1.4, 0.42, "X")
    arrow(ax, (xr, 7.24), (xr, 6.74))
    box(ax, xr, 6.5, 2.7, 0.48, "Residual branch\n(conv-BN-ReLU-conv-BN)", face=GREY, fontsize=8)
    steps = [
        ("Global average pool", "#dfe7f3"),
        ("FC  C -> C/r", "#f6e0d3"),
        ("ReLU", "#f6e0d3"),
        ("FC  C/r -> C", "#f6e0d3"),
        ("Sigmoid", "#f6e0d3"),
    ]
    xs = xr + 1.7
    ys = _flow(ax, xs, steps, 5.65, 0.72, width=2.3, height=0.4)
    shapes = ["1 x 1 x C", "1 x 1 x C/r", "1 x 1 x C/r", "1 x 1 x C", "1 x 1 x C"]
    for y, s in zip(ys, shapes):
        ax.text(xs + 1.25, y, s, ha="left", va="center", fontsize=7.5, color="#555555")
    # U goes into the pool and straight to scale
    ax.plot([xr, xr], [6.26, 5.95], color=EDGE, lw=1.4)
    ax.plot([xr, xs], [5.95, 5.95], color=EDGE, lw=1.4)
    arrow(ax, (xs, 5.95), (xs, 5.85))
    arrow(ax, (xr, 5.95), (xr, 2.43))
    ax.text(xr - 0.1, 4.2, "U", ha="right", va="center", fontsize=9)
    box(ax, xr, 2.22, 1.4, 0.42, "Scale", face="#dcefdc")
    ax.plot([xs, xs], [ys[-1] - 0.2, 2.22], color=EDGE, lw=1.4)
    arrow(ax, (xs, 2.22), (xr + 0.72, 2.22))
    ax.text((xs + xr) / 2 + 0.35, 2.3, "s", ha="center", va="bottom", fontsize=9)
    arrow(ax, (xr, 2.01), (xr, 1.66))
    circle_op(ax, xr, 1.5, "+")
    arrow(ax, (xr, 1.34), (xr, 0.93))
    box(ax, xr, 0.72, 1.6, 0.42, "ReLU")
    arrow(ax, (xr, 0.51), (xr, 0.0))
    box(ax, xr, -0.25, 1.4, 0.42, r"$\tilde{X}$")
    xi = 5.4
    ax.plot([xr - 0.7, xi, xi], [7.45, 7.45, 1.5], color=EDGE, lw=1.4)
    arrow(ax, (xi, 1.5), (xr - 0.16, 1.5))
    ax.text(xi - 0.1, 4.6, "identity", rotation=90, ha="right", va="center", fontsize=9)
    return fig


# --- figure 3: integration variants -----------------------------------------------
def _variant(ax, x0, title, where):
    """One residual unit with SE placed at ``where`` (None, standard, pre, post, identity)."""
    xm = x0 + 1.0
    ax.text(xm, 6.1, title, ha="center", fontsize=10, weight="bold")
    box(ax, xm, 5.5, 0.9, 0.36, "x")
    se_face = ORANGE
    # residual branch column
    y = 5.5 - 0.18
    seq = []
    if where == "pre":
        seq.append(("SE", se_face))
    seq.append(("Residual", GREY))
    if where == "standard":
        seq.append(("SE", se_face))
    ytop = 4.65
    positions = []
    for i, (_text, _face) in enumerate(seq):
        yy = ytop - i * 0.8
        positions.append(yy)
    arrow(ax, (xm, y), (xm, positions[0] + 0.2))
    for i, ((text, face), yy) in enumerate(zip(seq, positions)):
        box(ax, xm, yy, 1.45, 0.4, text, face=face, fontsize=8.5)
        if i + 1 < len(seq):
            arrow(ax, (xm, yy - 0.2), (xm, positions[i + 1] + 0.2))
    y_add = 2.35
    arrow(ax, (xm, positions[-1] - 0.2), (xm, y_add + 0.15))
    circle_op(ax, xm, y_add, "+", r=0.15)
    # identity path on the left
    xi = x0 + 0.05
    ax.plot([xm - 0.45, xi, xi], [5.5, 5.5, y_add], color=EDGE, lw=1.3)
    if where == "identity":
        ax.plot([xi, xi], [5.5, 3.95], color=EDGE, lw=1.3)
        box(ax, xi + 0.05, 3.75, 0.55, 0.4, "SE", face=se_face, fontsize=9)
    arrow(ax, (xi, y_add), (xm - 0.15, y_add))
    # after the addition: ReLU, then (SE-POST only) the SE block
    y = y_add - 0.15
    arrow(ax, (xm, y), (xm, 1.55))
    box(ax, xm, 1.35, 1.1, 0.4, "ReLU", fontsize=9)
    y = 1.15
    if where == "post":
        arrow(ax, (xm, y), (xm, 0.95))
        box(ax, xm, 0.75, 1.1, 0.4, "SE", face=se_face, fontsize=9)
        y = 0.55
    arrow(ax, (xm, y), (xm, y - 0.35))


def se_variants():
    fig, ax = new_axes(10.5, 3.6, (-0.2, 12.6), (-0.1, 6.4))
    variants = [
        ("Residual", None),
        ("Standard SE", "standard"),
        ("SE-PRE", "pre"),
        ("SE-POST", "post"),
        ("SE-Identity", "identity"),
    ]
    for i, (title, where) in enumerate(variants):
        _variant(ax, i * 2.5, title, where)
    return fig


# --- figure 4: im2col ---------------------------------------------------------------
def im2col():
    """A 4x4 single-channel input, 3x3 kernel, stride 1: 4 output pixels, col is (9, 4)."""
    fig, ax = new_axes(9.5, 3.6, (-0.3, 13.8), (-1.0, 4.6))
    patch_colours = [BLUE, ORANGE, GREEN, RED]
    # input grid with numbered pixels
    for r in range(4):
        for c in range(4):
            ax.add_patch(Rectangle((c * 0.7, 3.2 - r * 0.7), 0.7, 0.7, facecolor="white", edgecolor=EDGE, lw=0.8))
            ax.text(c * 0.7 + 0.35, 3.2 - r * 0.7 + 0.35, str(r * 4 + c), ha="center", va="center", fontsize=8)
    # outline the four 3x3 windows
    offsets = [(0, 0), (0, 1), (1, 0), (1, 1)]
    for k, (dr, dc) in enumerate(offsets):
        pad = 0.04 * (k + 1)
        ax.add_patch(
            Rectangle(
                (dc * 0.7 + pad, 3.9 - (dr + 3) * 0.7 + pad),
                2.1 - 2 * pad,
                2.1 - 2 * pad,
                fill=False,
                edgecolor=patch_colours[k],
                lw=1.6,
            )
        )
    ax.text(1.4, -0.25, "x: 1 x 4 x 4 (C x H x W)\nkernel 3 x 3, stride 1", ha="center", va="top", fontsize=8.5)

    arrow(ax, (3.1, 2.1), (4.2, 2.1))
    ax.text(3.65, 2.3, "im2col", ha="center", fontsize=9)

    # col matrix: rows = C*kh*kw = 9, columns = output pixels = 4
    x0, y0, cw, ch = 4.5, 0.4, 0.55, 0.4
    for j, (dr, dc) in enumerate(offsets):
        for i in range(9):
            r, c = dr + i // 3, dc + i % 3
            ax.add_patch(
                Rectangle((x0 + j * cw, y0 + (8 - i) * ch), cw, ch, facecolor=patch_colours[j], alpha=0.25,
                          edgecolor=EDGE, lw=0.6)
            )
            ax.text(x0 + j * cw + cw / 2, y0 + (8 - i) * ch + ch / 2, str(r * 4 + c), ha="center", va="center",
                    fontsize=7.5)
    ax.text(x0 + 2 * cw, y0 - 0.2, "col: (C kh kw) x (N Ho Wo)\n= 9 x 4", ha="center", va="top", fontsize=8.5)

    # the GEMM
    ax.text(7.45, 2.2, "W_col (Cout x 9)  @  col  =  y_col (Cout x 4)", ha="left", va="center", fontsize=9)
    ax.text(7.45, 1.6, "dW_col = gy_col @ col^T", ha="left", va="center", fontsize=9)
    ax.text(7.45, 1.1, "dcol = W_col^T @ gy_col  -> col2im", ha="left", va="center", fontsize=9)
    ax.text(7.45, 0.45, "col2im adds each column back onto\nits window: overlaps accumulate", ha="left",
            va="center", fontsize=8.5, color="#555555")
    return fig


# --- figure 5: the two gradient paths through the SE block --------------------------
def se_backward():
    fig, ax = new_axes(10, 3.6, (-0.4, 14.6), (-0.7, 4.6))
    box(ax, 0.9, 1.6, 1.6, 0.6, "U\n(N, C, H, W)", face=GREY)
    box(ax, 4.2, 3.3, 2.4, 0.7, "squeeze\n" + r"$z_c = \frac{1}{HW}\sum_{i,j} U_c(i,j)$", face="#dfe7f3", fontsize=8.5)
    box(ax, 7.9, 3.3, 3.0, 0.7, "excite\n" + r"$s = \sigma(W_2\,\mathrm{relu}(W_1 z))$", face="#f6e0d3", fontsize=8.5)
    box(ax, 10.9, 1.6, 1.8, 0.6, "reweight\ny = U * s", face="#dcefdc", fontsize=8.5)
    box(ax, 13.4, 1.6, 1.6, 0.6, "y\n(N, C, H, W)")
    # forward (solid)
    arrow(ax, (1.7, 1.95), (3.0, 3.05))
    arrow(ax, (5.4, 3.3), (6.4, 3.3))
    arrow(ax, (9.1, 3.0), (10.3, 1.93))
    arrow(ax, (1.7, 1.6), (10.0, 1.6))
    arrow(ax, (11.8, 1.6), (12.6, 1.6))
    # backward (dashed)
    arrow(ax, (12.6, 1.2), (11.8, 1.2), color=RED, ls="--")
    ax.text(12.2, 1.05, "gy", ha="center", va="top", color=RED, fontsize=9)
    arrow(ax, (10.0, 1.2), (1.7, 1.2), color=RED, ls="--")
    ax.text(5.8, 1.05, "path 1, to the features:  dU += gy * s", ha="center", va="top", color=RED, fontsize=9)
    arrow(ax, (10.95, 1.93), (9.6, 3.05), color=PURPLE, ls="--")
    ax.text(11.2, 2.45, "path 2, to the gate:\nds = sum over H, W of gy * U", ha="left", va="bottom",
            color=PURPLE, fontsize=8.5)
    arrow(ax, (6.4, 2.9), (5.4, 2.9), color=PURPLE, ls="--")
    ax.text(5.9, 2.82, "dz", ha="center", va="top", color=PURPLE, fontsize=9)
    arrow(ax, (3.3, 2.95), (2.0, 1.95), color=PURPLE, ls="--")
    ax.text(0.9, 2.65, "dU += dz / (H W)", ha="center", va="bottom", color=PURPLE, fontsize=9)
    ax.text(7.0, -0.45, "dU = gy * s  +  dz / (H W)   (s and dz broadcast over H, W)", ha="center",
            va="center", fontsize=9.5)
    return fig


FIGURES = {
    "se_block.svg": se_block,
    "se_resnet_module.svg": se_resnet_module,
    "se_variants.svg": se_variants,
    "im2col.svg": im2col,
    "se_backward.svg": se_backward,
}


def render(make):
    """The SVG text of one figure."""
    fig = make()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return buf.getvalue()


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare with the committed files")
    parser.add_argument("--out", default=OUT_DIR, help="output folder (default docs/figures)")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    stale = []
    for name, make in FIGURES.items():
        path = os.path.join(args.out, name)
        text = render(make)
        if args.check:
            old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
            if old != text:
                stale.append(name)
        else:
            write_atomic(path, text)
            print(f"wrote {os.path.normpath(path)} ({len(text.encode()) // 1024} KiB)")
    if stale:
        print("out of date: " + ", ".join(stale) + " (run python tools/make_figures.py)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
