"""What a model is and what it learned: its cost (``summary``) and its SE gates (``excitations``).

- ``summary.py``: parameters, multiply-adds and output shape of every layer (``ms.summary``);
- ``excitations.py``: the average excitation of every SE block per class (the paper's Figure 6).
"""

from .excitations import Excitations, excitations_per_class
from .summary import Summary, summary

__all__ = ["summary", "Summary", "Excitations", "excitations_per_class"]
