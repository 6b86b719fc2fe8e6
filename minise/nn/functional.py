"""``import minise.nn.functional as F``: PyTorch's path to the stateless ops, the same module as ``minise.functional``.

PyTorch scripts write ``import torch.nn.functional as F``; with ``torch`` renamed to ``minise`` that
line keeps working. Every name here is ``minise.functional``'s (see that package for the ops).
"""

from ..functional import *  # noqa: F403 - the whole of minise.functional, under PyTorch's path
