"""``minise summary MODEL``: per-layer output shapes, parameters and multiply-adds."""

from .. import models
from ..analysis import summary
from .common import bad_number_flag, error


def _shape(args):
    """(N, C, H, W) from --input CxHxW (one image) or --input-shape N,C,H,W; raises ValueError."""
    if args.input is not None:
        parts = args.input.lower().split("x")
        if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"--input must be CxHxW like 3x224x224, got {args.input!r}")
        if not all(int(p) > 0 for p in parts):
            raise ValueError(f"--input must be CxHxW of positive sizes, got {args.input!r}")
        return (1,) + tuple(int(p) for p in parts)
    try:
        shape = tuple(int(n) for n in args.input_shape.split(","))
    except ValueError:
        raise ValueError(f"--input-shape must be comma-separated ints like 1,3,32,32, got {args.input_shape!r}") \
            from None
    if len(shape) != 4:
        raise ValueError(f"--input-shape must be N,C,H,W (4 numbers), got {args.input_shape!r}")
    if min(shape) <= 0:
        raise ValueError(f"--input-shape must be N,C,H,W of positive sizes, got {args.input_shape!r}")
    return shape


def run(args):
    message = bad_number_flag(args, at_least_1=("num_classes", "reduction"), at_least_0=("depth",))
    if message:
        return error("summary", message)
    try:
        shape = _shape(args)
    except ValueError as exc:
        return error("summary", exc)
    kwargs = {"in_channels": shape[1]}
    if args.num_classes is not None:
        kwargs["num_classes"] = args.num_classes
    if args.name.startswith("se_"):
        kwargs["reduction"] = args.reduction
    elif args.reduction is not None and args.reduction != 16:
        return error("summary", f"--reduction applies to SE models only, not {args.name}")
    if args.layout is not None:
        if args.name not in ("resnet50", "se_resnet50"):
            return error("summary", f"--layout applies to resnet50 and se_resnet50 only, not {args.name}")
        kwargs["layout"] = args.layout
    if args.name not in models.list():
        return error("summary", f"unknown model {args.name!r}; choose from {', '.join(models.list())}")
    print(summary(models.get(args.name, **kwargs), shape, max_depth=args.depth, name=args.name))
    return 0


def add(sub):
    p = sub.add_parser("summary", help="per-layer table of output shapes, parameters and MACs of a model",
                       description="Run one forward pass of MODEL and print each module's output shape, "
                                   "parameters and multiply-accumulates, the totals, and for SE models the "
                                   "SE parameter overhead checked against the paper's formula.")
    p.add_argument("name", metavar="MODEL", help="a name from minise.models.list(), e.g. se_resnet20")
    p.add_argument("--input", metavar="CxHxW", help="one input image's shape, e.g. 3x224x224 for the ImageNet "
                                                    "models (overrides --input-shape); C sets in_channels")
    p.add_argument("--input-shape", default="1,3,32,32", metavar="N,C,H,W",
                   help="input shape (default 1,3,32,32); C sets the model's in_channels")
    p.add_argument("--reduction", type=int, default=16, help="SE reduction ratio r (SE models, default 16)")
    p.add_argument("--num-classes", type=int, default=None,
                   help="default: the model's (10 for the CIFAR models, 1000 for resnet50 / se_resnet50)")
    p.add_argument("--layout", choices=["caffe", "torchvision"], default=None,
                   help="resnet50 / se_resnet50: stride 2 in the first 1x1 conv (caffe, the paper's; default) "
                        "or in the 3x3 conv (torchvision, timm's seresnet50)")
    p.add_argument("--depth", type=int, default=None, help="show modules only down to this depth")
    p.set_defaults(run=run)
