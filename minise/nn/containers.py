"""Containers: Sequential, ModuleList, and Identity, the modules models are assembled from."""

import collections

from .module import Module

__all__ = ["Sequential", "ModuleList", "Identity"]


class _Container(Module):
    """What Sequential and ModuleList share: children by position, len(), iteration, append()."""

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        items = list(self._modules.items())
        if isinstance(index, slice):
            return self._from_items(items[index])
        return items[_check_index(self, index, len(items))][1]

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self


class Sequential(_Container):
    """Run modules one after another: ``Sequential(Conv2d(...), BatchNorm2d(...), ReLU())``.

    Children are named "0", "1", ... (or by the keys of an OrderedDict passed alone).
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], collections.OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for module in modules:
                self.append(module)

    @staticmethod
    def _from_items(items):
        return Sequential(collections.OrderedDict(items))

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x


class ModuleList(_Container):
    """A list of modules, registered as children "0", "1", ...; has no forward of its own."""

    def __init__(self, modules=()):
        super().__init__()
        self.extend(modules)

    @staticmethod
    def _from_items(items):
        return ModuleList(module for _, module in items)

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def forward(self, *args):
        raise NotImplementedError("ModuleList has no forward: iterate over it in your module's forward")


def _check_index(container, index, n):
    if not -n <= index < n:
        raise IndexError(f"{type(container).__name__}: index {index} is out of range for {n} modules")
    return index % n


class Identity(Module):
    """y = x (a placeholder where a block has nothing to do, e.g. a plain shortcut)."""

    def forward(self, x):
        return x
