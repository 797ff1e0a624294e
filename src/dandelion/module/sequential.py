"""``Sequential``: modules applied one after another."""

from __future__ import annotations

from dandelion.activation import linear
from dandelion.module.base import Module, ModuleList


class Sequential(Module):
    """Apply ``module_list`` in order, with ``activation`` after each module.

    Parameters
    ----------
    module_list : list of Module
        Fresh modules: one that already belongs to another module is refused. They are
        held in the ``ModuleList`` ``submodule`` (path names ``submodule.0``, ...) and
        named ``submodule_0``, ``submodule_1``, ... unless they have names.
    activation : callable or list of callables (one per module)
    """

    def __init__(self, module_list, activation=linear, name=None):
        super().__init__(name=name)
        module_list = list(module_list)
        if isinstance(activation, (list, tuple)):
            if len(activation) != len(module_list):
                raise ValueError(
                    f"Sequential: activation list must have one entry per module ({len(module_list)}), got {len(activation)}"
                )
            activations = list(activation)
        else:
            activations = [activation] * len(module_list)
        for index, module in enumerate(module_list):
            if not isinstance(module, Module):
                raise TypeError(f"Sequential: module_list[{index}] must be a Module, got {type(module).__name__}")
        self.submodule = ModuleList(module_list)
        self.activations = activations

    @property
    def module_list(self):
        return list(self.submodule)

    def __getattr__(self, key):
        # The old Sequential held its members as attributes submodule_0, submodule_1, ...
        prefix, _, index = key.partition("submodule_")
        if not prefix and index.isdigit() and "submodule" in self.__dict__.get("sub_modules", {}):
            members = self.__dict__["sub_modules"]["submodule"]
            if int(index) < len(members):
                return members[int(index)]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {key!r}")

    def forward(self, x):
        for module, activation in zip(self.module_list, self.activations):
            x = activation(module.forward(x))
        return x

    def predict(self, x):
        for module, activation in zip(self.module_list, self.activations):
            x = activation(module.predict(x))
        return x
