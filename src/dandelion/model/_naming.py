"""Theano-era qualified names for nested sub-modules.

The old zoo named a sub-module of a named module ``key@ParentClass|parent_name`` (so
``W@Conv2D|conv1@ResNet_bottleneck|res_block1``), and only ``key`` under an unnamed
top-level model. ``dandelion.module.Module`` names every sub-module by its key alone, which
repeats names in nested models (``set_weights_by_name`` and checkpoints refuse repeated
names), so zoo modules keep the qualified names themselves, through the public ``name``.
"""

from __future__ import annotations

from dandelion.module import Module


class ZooModule(Module):
    """A ``Module`` whose automatically named sub-modules carry their parent's name."""

    @property
    def name(self):
        return Module.name.fget(self)

    @name.setter
    def name(self, value):
        Module.name.fset(self, value)
        for key in getattr(self, "_auto_named", ()):
            self.sub_modules[key].name = self._qualified(key)

    def _qualified(self, key):
        return key if self.name is None else f"{key}@{type(self).__name__}|{self.name}"

    def __setattr__(self, key, value):
        unnamed = isinstance(value, Module) and not key.startswith("_") and value.name is None
        super().__setattr__(key, value)
        if unnamed:
            if "_auto_named" not in self.__dict__:
                object.__setattr__(self, "_auto_named", [])
            self._auto_named.append(key)
            value.name = self._qualified(key)
