"""``Module``: parameters, self-updating variables, sub-modules and their weights."""

from __future__ import annotations

import warnings
from collections import OrderedDict

import numpy as np
from pytensor.compile.sharedvalue import SharedVariable

from dandelion.self_update import pending_update
from dandelion.util.graph import create_param

WORK_MODES = ("train", "inference")
POLICIES = ("ignore", "warn", "raise")


def _check_policy(where, argument, value):
    if value not in POLICIES:
        raise ValueError(f"{where}: {argument} must be one of {POLICIES}, got {value!r}")


def _apply_policy(policy, message):
    if policy == "raise":
        raise ValueError(message)
    if policy == "warn":
        warnings.warn(message, stacklevel=3)


class Module:
    """Root class of all network modules.

    A subclass registers parameters in ``__init__`` and builds graphs in ``forward``
    (training) and ``predict`` (inference); ``predict`` defaults to ``forward``.

    Assigning a variable returned by ``register_param`` to an attribute names it
    ``attr@ClassName|module_name``; assigning a module makes it a sub-module, named after
    the attribute when it has no name of its own. Renaming a module renames its
    variables, so names always follow the Theano-era scheme that saved weights use.

    Parameters
    ----------
    name : str, optional
    work_mode : {'train', 'inference'}
        Chooses what ``module(...)`` calls: ``forward`` or ``predict``.
    """

    def __init__(self, name=None, work_mode="inference"):
        object.__setattr__(self, "_name", None)
        self.params = []
        self.self_updating_variables = []
        self.sub_modules = OrderedDict()
        self.random_states = []  # random-number states with pending updates (not weights)
        self._variable_keys = {}  # id(variable) -> attribute key, for naming
        self._parent = None
        self.work_mode = work_mode
        self.name = name

    # ----------------------------------------------------------------- naming
    @property
    def name(self):
        return self._name

    @name.setter
    def name(self, value):
        object.__setattr__(self, "_name", value)
        self._rename_variables()

    def _variable_name(self, key):
        owner = type(self).__name__ if self._name is None else f"{type(self).__name__}|{self._name}"
        return f"{key}@{owner}"

    def _rename_variables(self):
        for variable in self._own_variables() + list(self.random_states):
            key = self._variable_keys.get(id(variable))
            if key is not None:
                variable.name = self._variable_name(key)

    def _own_variables(self):
        return list(self.params) + list(self.self_updating_variables)

    def __setattr__(self, key, value):
        if isinstance(value, Module) and not key.startswith("_"):
            self._adopt(key, value)
        elif getattr(self, "_variable_keys", None) is not None and any(
            value is v for v in self._own_variables() + list(self.random_states)
        ):
            if id(value) not in self._variable_keys and getattr(value.tag, "dandelion_auto_name", False):
                self._variable_keys[id(value)] = key
                value.name = self._variable_name(key)
        object.__setattr__(self, key, value)

    def _adopt(self, key, module):
        if module is self:
            raise ValueError(f"{type(self).__name__}: a module cannot be its own sub-module ({key!r})")
        owner = module._parent
        if owner is not None and not (owner is self and self.sub_modules.get(key) is module):
            raise ValueError(
                f"{type(self).__name__}: module {type(module).__name__}({module.name!r}) assigned to "
                f"{key!r} already belongs to {type(owner).__name__}({owner.name!r}); "
                "build a new instance instead of sharing one"
            )
        module._parent = self
        self.sub_modules[key] = module
        if module.name is None:
            module.name = key

    # ------------------------------------------------------------ registration
    def _register(self, collection, x, shape, name):
        variable = create_param(x, shape=shape, name=name)
        if isinstance(variable, SharedVariable):
            # Variables created here (not passed in with a name) take their attribute name.
            variable.tag.dandelion_auto_name = name is None and (x is not variable or variable.name is None)
            collection.append(variable)
        return variable

    def register_param(self, x, shape=None, name=None):
        """Register a parameter the optimizer updates; returns the variable.

        x : shared variable, expression, ndarray or initializer callable. An expression
        built from other modules' parameters (tied weights) is returned as it is and not
        registered, since its shared variables belong to their own modules.
        """
        return self._register(self.params, x, shape, name)

    def register_self_updating_variable(self, x, shape=None, name=None):
        """Register a variable updated by an expression of its own (running statistics)."""
        return self._register(self.self_updating_variables, x, shape, name)

    def register_random_state(self, x, shape=None, name=None):
        """Register the state of a random-number stream (dropout's step counter).

        Its update is collected by ``collect_self_updates`` and it is saved by
        checkpoints, but it is not a weight: ``get_weights`` leaves it out, so weight files
        keep the Theano-era layout.
        """
        return self._register(self.random_states, x, shape, name)

    # -------------------------------------------------------------- collecting
    def _selected_sub_modules(self, where, include, exclude):
        keys = list(self.sub_modules)
        for argument, given in (("include", include), ("exclude", exclude)):
            if given is None:
                continue
            unknown = [k for k in given if k not in self.sub_modules]
            if unknown:
                raise KeyError(f"{type(self).__name__}.{where}: unknown sub-module key(s) {unknown} in {argument}; available keys: {keys}")
        if include is not None:
            keys = [k for k in keys if k in set(include)]
        if exclude is not None:
            keys = [k for k in keys if k not in set(exclude)]
        return [self.sub_modules[k] for k in keys]

    def collect_params(self, include=None, exclude=None, include_self=True):
        """Parameters for the optimizer: own (if ``include_self``), then sub-modules in order.

        include / exclude : sub-module keys of this module. The given lists are not changed.
        """
        params = list(self.params) if include_self else []
        for module in self._selected_sub_modules("collect_params", include, exclude):
            params.extend(module.collect_params())
        return params

    def collect_self_updates(self, include=None, exclude=None, include_self=True):
        """``OrderedDict`` {variable: update expression} of self-updating variables.

        Holds the updates ``forward`` recorded (``variable.update``, or a user's
        ``default_update``) and dropout generator states, own first, then sub-modules.
        """
        updates = OrderedDict()
        if include_self:
            for variable in list(self.self_updating_variables) + list(self.random_states):
                expression = pending_update(variable)
                if expression is not None:
                    updates[variable] = expression
        for module in self._selected_sub_modules("collect_self_updates", include, exclude):
            updates.update(module.collect_self_updates())
        return updates

    def _weight_variables(self):
        variables = [v for v in self._own_variables() if isinstance(v, SharedVariable)]
        for module in self.sub_modules.values():
            variables.extend(module._weight_variables())
        return variables

    # ------------------------------------------------------------------ weights
    def get_weights(self):
        """``[[value, name], ...]``: own params, own self-updating variables, then sub-modules."""
        # np.asarray: after a JAX-compiled update the stored value is an immutable JAX array.
        return [[np.asarray(v.get_value()), v.name] for v in self._weight_variables()]

    def _check_value(self, variable, value):
        value = np.asarray(value)
        expected = variable.get_value(borrow=True).shape
        if value.shape != expected:
            raise ValueError(
                f"{type(self).__name__}({self.name!r}): weight for {variable.name!r} has shape "
                f"{value.shape}, expected {expected}; nothing was changed"
            )
        return value.astype(variable.dtype)

    def set_weights(self, module_weights, check_name="ignore"):
        """Set weights in ``get_weights()`` order. Validates all, then assigns all.

        check_name : {'ignore', 'warn', 'raise'} what to do when a saved name differs from
        the variable's name.
        """
        _check_policy(f"{type(self).__name__}.set_weights", "check_name", check_name)
        variables = self._weight_variables()
        if len(module_weights) != len(variables):
            raise ValueError(
                f"{type(self).__name__}({self.name!r}).set_weights: got {len(module_weights)} weights, "
                f"expected {len(variables)}; nothing was changed"
            )
        values = []
        for variable, (value, name) in zip(variables, module_weights):
            if name != variable.name:
                _apply_policy(check_name, f"{type(self).__name__}.set_weights: saved name {name!r} differs from variable {variable.name!r}")
            values.append(self._check_value(variable, value))
        for variable, value in zip(variables, values):
            variable.set_value(value)

    def set_weights_by_name(self, module_weights, unmatched="raise", name_map=None):
        """Set weights by matching saved names to variable names.

        unmatched : {'ignore', 'warn', 'raise'} for saved weights with no variable and
            variables with no saved weight (checked before anything is assigned).
        name_map : dict, optional
            {saved name: variable name}, for weights saved under other names.
        """
        _check_policy(f"{type(self).__name__}.set_weights_by_name", "unmatched", unmatched)
        name_map = dict(name_map or {})
        variables = OrderedDict()
        for variable in self._weight_variables():
            if variable.name in variables:
                raise ValueError(f"{type(self).__name__}.set_weights_by_name: two variables are named {variable.name!r}; rename a module")
            variables[variable.name] = variable
        assignments = []
        unused = []
        for value, saved_name in module_weights:
            target = name_map.get(saved_name, saved_name)
            variable = variables.get(target)
            if variable is None:
                unused.append(saved_name)
                continue
            assignments.append((variable, self._check_value(variable, value)))
        assigned = {id(v) for v, _ in assignments}
        missing = [name for name, v in variables.items() if id(v) not in assigned]
        if unused or missing:
            _apply_policy(
                unmatched,
                f"{type(self).__name__}({self.name!r}).set_weights_by_name: saved weights with no variable: "
                f"{unused}; variables with no saved weight: {missing}",
            )
        for variable, value in assignments:
            variable.set_value(value)

    # ---------------------------------------------------------------- calling
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def predict(self, *args, **kwargs):
        """Inference graph; the same as ``forward`` unless a module overrides it."""
        return self.forward(*args, **kwargs)

    def __call__(self, *args, **kwargs):
        if self.work_mode == "train":
            return self.forward(*args, **kwargs)
        if self.work_mode == "inference":
            return self.predict(*args, **kwargs)
        raise ValueError(f"{type(self).__name__}: work_mode must be one of {WORK_MODES}, got {self.work_mode!r}")

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"
