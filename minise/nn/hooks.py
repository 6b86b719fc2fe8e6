"""The handle ``Module.register_forward_hook`` returns: ``remove()`` unregisters the hook."""

import itertools

__all__ = ["RemovableHandle"]


class RemovableHandle:
    """Returned by ``register_forward_hook``; ``remove()`` unregisters the hook."""

    _ids = itertools.count()

    def __init__(self, hooks):
        self._hooks = hooks
        self.id = next(RemovableHandle._ids)

    def remove(self):
        self._hooks.pop(self.id, None)
