"""``minise eval``: test accuracy and confusion matrix of a checkpoint."""

from pathlib import Path

from ..io import printable
from ..training import evaluate, format_confusion, load_model
from ..training.runs import checkpoint_test_loader
from ..viz import plot_confusion_matrix
from .common import bad_data_dir, bad_number_flag, check_writable, checkpoint_at, error, plot_text, unwritable
from .train import DATA_DIR_HELP, next_steps, print_next


def add(sub):
    p = sub.add_parser("eval", help="test accuracy and confusion matrix of a checkpoint",
                       description="Rebuild the model of a checkpoint, report its test accuracy and confusion "
                                   "matrix, and plot the matrix to <checkpoint>-confusion.png (or --out).")
    p.add_argument("checkpoint", metavar="CKPT",
                   help="a .ckpt file, or a run folder (its best.ckpt, else its last.ckpt)")
    p.add_argument("--dataset", choices=["embedded", "cifar10", "fashion-mnist"],
                   help="default: the checkpoint's")
    p.add_argument("--data-dir", metavar="DIR", help=DATA_DIR_HELP)
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--subset", type=int, metavar="N",
                   help="only the first N test images (default: as the run was trained; 0: all)")
    p.add_argument("--out", metavar="PNG", help="where to write the confusion-matrix plot")
    p.set_defaults(run=run)


def run(args):
    """``minise eval CKPT``: test accuracy and confusion matrix (printed and plotted).

    The plot's folder is checked for writing first, before the model and the data are built;
    failures are one line and an exit code (:func:`minise.cli.common.guarded`, docs/files.md).
    """
    message = bad_number_flag(args, at_least_1=("batch_size",), at_least_0=("subset",)) or bad_data_dir(args)
    if message:
        return error("eval", message)
    ckpt = checkpoint_at(args.checkpoint)
    out = Path(args.out) if args.out else ckpt.with_name(f"{ckpt.stem}-confusion.png")
    if out.is_dir():
        out = out / f"{ckpt.stem}-confusion.png"
    if args.out is None:
        check_writable(out.parent)
    elif (code := unwritable("eval", f"--out {args.out}", out.parent)) is not None:
        return code
    model, state = load_model(ckpt, device=args.device)
    loader = checkpoint_test_loader(state, args.device, args.dataset, args.data_dir, args.subset, args.batch_size)
    classes = [printable(name) for name in state["classes"]]  # strings from a file: escaped before printing
    result = evaluate(model, loader, num_classes=len(classes))
    config = state["config"]
    model_name, dataset = printable(config["model"]), printable(args.dataset or config["dataset"])
    print(f"{model_name} after epoch {state['epoch']} on the {dataset} test set ({result['count']} images): "
          f"accuracy {100 * result['acc']:.2f}%, loss {result['loss']:.4f}")
    print("\nconfusion matrix (rows: true class, columns: predicted; right: per-class accuracy)")
    print(format_confusion(result["confusion"], classes))
    plot_confusion_matrix(result["confusion"], [plot_text(name) for name in state["classes"]], out,
                          title=plot_text(f"{model_name} on {dataset}: {100 * result['acc']:.2f}% test accuracy"))
    print(f"\nwrote {out}")
    print_next(next_steps(ckpt.parent, model, evaluate=False))
    return 0
