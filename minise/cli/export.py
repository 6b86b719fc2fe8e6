"""``minise export CKPT OUT.safetensors``: a checkpoint's model weights as a file PyTorch loads."""

from pathlib import Path

import numpy as np

from ..io import load, save_safetensors
from ..io.checkpoint import CHECKPOINT_FORMAT
from .common import EXIT_USAGE, checkpoint_at, describe_os_error, exit_code_for, unwritable
from .common import error as _error


def add(sub):
    p = sub.add_parser("export", help="write a checkpoint's model weights as .safetensors (for PyTorch)",
                       description="Read the model state dict of a training checkpoint (a .ckpt file, or a run "
                                   "folder: its best.ckpt, else its last.ckpt) or of a file saved with "
                                   "ms.save(model.state_dict()), "
                                   "and write it as safetensors with PyTorch's key names and layouts: "
                                   "twin.load_state_dict(safetensors.torch.load_file(OUT)). Needs the "
                                   "safetensors package (pip install 'minise[torch-bridge]').")
    p.add_argument("checkpoint", metavar="CKPT", help="a .ckpt file, a run folder (its best.ckpt, else its "
                                                      "last.ckpt), or a state dict saved with ms.save")
    p.add_argument("out", metavar="OUT", help="the .safetensors file to write")
    p.set_defaults(run=run)


def run(args):
    """``minise export CKPT OUT``: print what was written, and how to load it in PyTorch."""
    path, out = Path(args.checkpoint), Path(args.out)
    if out.is_dir():                      # before reading anything
        return _error("export", f"OUT {args.out}: {out} is a folder, not a file; name the .safetensors file "
                                f"to write, e.g. {out / 'model.safetensors'}")
    code = unwritable("export", f"OUT {args.out}", out.parent)
    if code is not None:
        return code
    reading = True                        # an OSError while reading CKPT names it; while writing, OUT
    try:
        path = checkpoint_at(args.checkpoint)   # a run folder: its best.ckpt, else its last.ckpt (as eval)
        state = load(str(path))
        if isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT:
            model_name = state.get("config", {}).get("model", "model")
            state = state["model"]
        else:
            model_name = "model"
        if not isinstance(state, dict) or not state or not all(isinstance(v, np.ndarray) for v in state.values()):
            raise ValueError(f"{path} holds neither a minise training checkpoint nor a state dict of arrays")
        reading = False
        save_safetensors(state, args.out, metadata={"minise_model": model_name, "source": path.name})
    except (ValueError, TypeError, ImportError) as exc:
        return _error("export", exc, exit_code_for(exc) or EXIT_USAGE)   # a bad checkpoint: 3, as eval says
    except OSError as exc:
        where = "" if reading else f"OUT {args.out}: "
        return _error("export", where + describe_os_error(exc), exit_code_for(exc))
    count = sum(int(v.size) for v in state.values())
    print(f"wrote {args.out}: {len(state)} tensors, {count:,} numbers of {model_name} from {path}")
    print("in PyTorch:  import safetensors.torch; twin.load_state_dict(safetensors.torch.load_file("
          f"{str(args.out)!r}))")
    print("             (twin: the same network built in PyTorch; docs/pytorch.md shows how, e.g. "
          "minise.models.torch_twins)")
    return 0
