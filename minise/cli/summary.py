"""``minise summary MODEL``: per-layer output shapes, parameters and multiply-adds."""

import sys

from .. import models
from ..analysis import summary


def run(args):
    try:
        shape = tuple(int(n) for n in args.input_shape.split(","))
    except ValueError:
        print(f"minise summary: --input-shape must be comma-separated ints like 1,3,32,32, got {args.input_shape!r}",
              file=sys.stderr)
        return 2
    if len(shape) != 4:
        print(f"minise summary: --input-shape must be N,C,H,W (4 numbers), got {args.input_shape!r}", file=sys.stderr)
        return 2
    kwargs = {"num_classes": args.num_classes, "in_channels": shape[1]}
    if args.name.startswith("se_"):
        kwargs["reduction"] = args.reduction
    elif args.reduction is not None and args.reduction != 16:
        print(f"minise summary: --reduction applies to SE models only, not {args.name}", file=sys.stderr)
        return 2
    if args.name not in models.list():
        print(f"minise summary: unknown model {args.name!r}; choose from {', '.join(models.list())}",
              file=sys.stderr)
        return 2
    print(summary(models.get(args.name, **kwargs), shape, max_depth=args.depth, name=args.name))
    return 0


def add(sub):
    p = sub.add_parser("summary", help="per-layer table of output shapes, parameters and MACs of a model",
                       description="Run one forward pass of MODEL and print each module's output shape, "
                                   "parameters and multiply-accumulates, the totals, and for SE models the "
                                   "SE parameter overhead checked against the paper's formula.")
    p.add_argument("name", metavar="MODEL", help="a name from minise.models.list(), e.g. se_resnet20")
    p.add_argument("--input-shape", default="1,3,32,32", metavar="N,C,H,W",
                   help="input shape (default 1,3,32,32); C sets the model's in_channels")
    p.add_argument("--reduction", type=int, default=16, help="SE reduction ratio r (SE models, default 16)")
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--depth", type=int, default=None, help="show modules only down to this depth")
    p.set_defaults(run=run)
