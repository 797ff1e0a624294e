"""``Module`` and its tree: sub-modules, containers, variables, names and weights.

One walk (``named_modules``) defines the tree; collecting parameters and updates,
weights in and out, checkpoints and the summary are all derived from it.

Two names per variable:

* the **path name** (``block1.fc.W``, ``blocks.0.W``): the attribute path from the root
  module. Unique by construction; checkpoints use it.
* the **Theano-era name** (``W@Dense|fc``, ``W@Conv2D|conv1@ResNet_bottleneck|res_block1``):
  ``variable.name``, what the old library produced, kept so old weight files load.
  A sub-module assigned without a name of its own is named by its attribute key, and
  the sub-modules of such an automatically named module carry its name
  (``key@Class|name``); a module named by the user (``Dense(..., name='fc')``, a root
  model) does not pass its name on. This one rule gives both the old zoo's qualified
  names and the plain ``Class|key`` names of user models.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict

import numpy as np
from pytensor.compile.sharedvalue import SharedVariable

from dandelion.self_update import pending_update
from dandelion.util.casting import checked_cast
from dandelion.util.graph import create_param

WORK_MODES = ("train", "inference")
POLICIES = ("ignore", "warn", "raise")
_VARIABLE_KINDS = ("params", "self_updating_variables", "random_states")


def _check_policy(where, argument, value):
    if value not in POLICIES:
        raise ValueError(f"{where}: {argument} must be one of {POLICIES}, got {value!r}")


def _apply_policy(policy, message):
    if policy == "raise":
        raise ValueError(message)
    if policy == "warn":
        warnings.warn(message, stacklevel=3)


def _join(prefix, key):
    return f"{prefix}.{key}" if prefix else str(key)


class Module:
    """Root class of all network modules.

    A subclass registers parameters in ``__init__`` and builds graphs in ``forward``
    (training) and ``predict`` (inference); ``predict`` defaults to ``forward``.

    Assigning a module to an attribute makes it a sub-module; so does assigning a list,
    tuple or dict of modules (kept as a ``ModuleList`` / ``ModuleDict``). Assigning a
    variable returned by ``register_param`` to an attribute names it after the
    attribute. Call ``super().__init__()`` before assigning either.

    Parameters
    ----------
    name : str, optional
    work_mode : {'train', 'inference'}
        Chooses what ``module(...)`` calls: ``forward`` or ``predict``.
    """

    def __init__(self, name=None, work_mode="inference"):
        state = self.__dict__
        state["_given_name"] = None
        state["_parent"] = None  # the module (or container) this one was first assigned to
        state["_key"] = None  # its key there
        state["params"] = []
        state["self_updating_variables"] = []
        state["random_states"] = []  # random-number states with pending updates (not weights)
        state["sub_modules"] = OrderedDict()
        state["_variable_keys"] = {}  # id(variable) -> attribute key
        self.work_mode = work_mode
        self.name = name

    # ------------------------------------------------------------------ modes
    @property
    def work_mode(self):
        return self.__dict__["_work_mode"]

    @work_mode.setter
    def work_mode(self, value):
        if value not in WORK_MODES:
            raise ValueError(f"{type(self).__name__}: work_mode must be one of {WORK_MODES}, got {value!r}")
        self.__dict__["_work_mode"] = value

    # ----------------------------------------------------------------- naming
    @property
    def name(self):
        """The Theano-era name (see the module docstring); ``None`` for an unnamed root."""
        local = self._given_name
        if local is None and self._parent is not None:
            local = self._parent._member_name(self._key)
        if local is None:
            return None
        owner = self._owner()
        if owner is not None and owner._passes_name_on():
            return f"{local}@{type(owner).__name__}|{owner.name}"
        return local

    @name.setter
    def name(self, value):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{type(self).__name__}: name must be a str or None, got {type(value).__name__}")
        self.__dict__["_given_name"] = value
        self._refresh_names()

    def _owner(self):
        """The nearest enclosing module that is not a container."""
        parent = self._parent
        while isinstance(parent, _Container):
            parent = parent._parent
        return parent

    def _passes_name_on(self):
        return self._given_name is None and self._parent is not None

    def _member_name(self, key):
        return key

    def _variable_name(self, key):
        name = self.name
        owner = type(self).__name__ if name is None else f"{type(self).__name__}|{name}"
        return f"{key}@{owner}"

    def _refresh_names(self):
        """Rename this subtree's automatically named variables after a name changed."""
        for module in self._walk_modules():
            for variable in module._own_variables():
                key = module._variable_keys.get(id(variable))
                if key is not None and getattr(variable.tag, "dandelion_auto_name", False):
                    variable.name = module._variable_name(key)

    def _own_variables(self):
        return [v for kind in _VARIABLE_KINDS for v in self.__dict__[kind]]

    # ------------------------------------------------------------- assignment
    def __setattr__(self, key, value):
        if "sub_modules" not in self.__dict__:
            if isinstance(value, (Module, SharedVariable)) or _modules_in(value):
                raise AttributeError(
                    f"{type(self).__name__}: cannot assign {key!r} before Module.__init__ ran; "
                    f"call super().__init__() first in {type(self).__name__}.__init__"
                )
            object.__setattr__(self, key, value)
            return
        if not key.startswith("_") and not isinstance(self, _Container):
            value = _as_container(type(self).__name__, key, value)
            if isinstance(value, Module):
                self._adopt(key, value)
            else:
                if key in self.sub_modules:
                    self._release(key)
                self._name_variable(key, value)
        object.__setattr__(self, key, value)

    def __delattr__(self, key):
        if key in self.sub_modules:
            self._release(key)
        object.__delattr__(self, key)

    def _name_variable(self, key, value):
        if not any(value is v for v in self._own_variables()):
            return
        if id(value) not in self._variable_keys:
            self._variable_keys[id(value)] = key  # its path-name key, whatever its Theano-era name
            if getattr(value.tag, "dandelion_auto_name", False):
                value.name = self._variable_name(key)

    def _adopt(self, key, module):
        where = type(self).__name__
        if module is self:
            raise ValueError(f"{where}: a module cannot be its own sub-module ({key!r})")
        if any(m is self for m in module._walk_modules()):
            raise ValueError(f"{where}: {key!r} would make the module tree a cycle")
        mine = self._owner() if isinstance(self, _Container) else self
        # A container still being filled has no owner yet: its members are checked when
        # it is assigned to a module.
        if mine is not None:
            if module._parent is not None and module._owner() is not mine:
                self._refuse(key, module)
            for member in _container_members(module):
                if member._owner() not in (None, mine):  # None: first adopted by this container
                    self._refuse(key, member)
        if key in self.sub_modules and self.sub_modules[key] is not module:
            self._release(key)
        self.sub_modules[key] = module
        if module._parent is None:
            module.__dict__["_parent"] = self
            module.__dict__["_key"] = key
            module._refresh_names()

    def _refuse(self, key, module):
        owner = module._owner() or module._parent
        raise ValueError(
            f"{type(self).__name__}: module {type(module).__name__}({module.name!r}) assigned to {key!r} already "
            f"belongs to {type(owner).__name__}({owner.name!r}); build a new instance instead of sharing "
            "one across models (sharing within one model is fine)"
        )

    def _release(self, key):
        module = self.sub_modules.pop(key)
        if module._parent is self and module._key == key:
            other_keys = [k for k, m in self.sub_modules.items() if m is module]
            module.__dict__["_parent"] = self if other_keys else None
            module.__dict__["_key"] = other_keys[0] if other_keys else None
            module._refresh_names()

    # ------------------------------------------------------------ registration
    def _register(self, kind, x, shape, name):
        if "sub_modules" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}: cannot register a variable before Module.__init__ ran; "
                f"call super().__init__() first in {type(self).__name__}.__init__"
            )
        variable = create_param(x, shape=shape, name=name)
        if isinstance(variable, SharedVariable):
            # Variables created here (not passed in with a name) take their attribute name.
            variable.tag.dandelion_auto_name = name is None and (x is not variable or variable.name is None)
            self.__dict__[kind].append(variable)
        return variable

    def register_param(self, x, shape=None, name=None):
        """Register a parameter the optimizer updates; returns the variable.

        x : shared variable, expression, ndarray or initializer callable. An expression
        built from other modules' parameters (tied weights) is returned as it is and not
        registered, since its shared variables belong to their own modules.
        """
        return self._register("params", x, shape, name)

    def register_self_updating_variable(self, x, shape=None, name=None):
        """Register a variable updated by an expression of its own (running statistics)."""
        return self._register("self_updating_variables", x, shape, name)

    def register_random_state(self, x, shape=None, name=None):
        """Register the state of a random-number stream (dropout's step counter).

        Its update is collected by ``collect_self_updates`` and it is saved by
        checkpoints, but it is not a weight: ``get_weights`` leaves it out, so weight files
        keep the Theano-era layout.
        """
        return self._register("random_states", x, shape, name)

    # ------------------------------------------------------------------ walking
    def _walk(self, prefix, seen):
        if id(self) in seen:
            return
        seen.add(id(self))
        yield prefix, self
        for key, module in self.sub_modules.items():
            yield from module._walk(_join(prefix, key), seen)

    def _walk_modules(self):
        return [module for _, module in self._walk("", set())]

    def named_modules(self, prefix=""):
        """``(path, module)`` for this module and every sub-module, depth first in
        assignment order; a module reached twice (shared) is listed once, at its first path.
        Containers (``ModuleList``, ``ModuleDict``) are listed too."""
        return list(self._walk(prefix, set()))

    def _variable_key(self, variable, taken):
        key = self._variable_keys.get(id(variable)) or variable.name or "var"
        if key in taken:
            key = f"{key}_{sum(1 for k in taken if k == key or k.startswith(key + '_'))}"
        taken.add(key)
        return key

    def _named(self, kinds, prefix=""):
        found, seen = [], set()
        for path, module in self._walk(prefix, set()):
            taken = set()
            keys = {id(v): module._variable_key(v, taken) for v in module._own_variables()}
            for kind in kinds:
                for variable in module.__dict__[kind]:
                    if id(variable) not in seen:
                        seen.add(id(variable))
                        found.append((_join(path, keys[id(variable)]), variable))
        return found

    def named_params(self):
        """``[(path name, parameter)]`` of the whole tree, in ``collect_params`` order."""
        return self._named(("params",))

    def named_variables(self):
        """``[(path name, variable)]``: parameters, self-updating variables and
        random-number states of every module, module by module in tree order."""
        return self._named(_VARIABLE_KINDS)

    def named_weights(self):
        """``[(path name, variable)]`` of what ``get_weights`` returns, in its order."""
        return [(path, v) for path, v in self._named(_VARIABLE_KINDS[:2]) if isinstance(v, SharedVariable)]

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

    def _collect(self, where, kinds, include, exclude, include_self):
        variables, seen = [], set()
        roots = self._selected_sub_modules(where, include, exclude)
        if include_self:
            variables += [v for kind in kinds for v in self.__dict__[kind]]
            seen.add(id(self))
        for module in roots:
            for _, sub in module._walk("", seen):
                variables += [v for kind in kinds for v in sub.__dict__[kind]]
        unique, ids = [], set()
        for variable in variables:
            if id(variable) not in ids:
                ids.add(id(variable))
                unique.append(variable)
        return unique

    def collect_params(self, include=None, exclude=None, include_self=True):
        """Parameters for the optimizer: own (if ``include_self``), then sub-modules in order.

        include / exclude : sub-module keys of this module. The given lists are not changed.
        A parameter or module reached twice is collected once.
        """
        return self._collect("collect_params", ("params",), include, exclude, include_self)

    def collect_self_updates(self, include=None, exclude=None, include_self=True):
        """``OrderedDict`` {variable: update expression} of self-updating variables.

        Holds the updates ``forward`` recorded (``variable.update``, or a user's
        ``default_update``) and dropout generator states, own first, then sub-modules.
        """
        updates = OrderedDict()
        kinds = ("self_updating_variables", "random_states")
        for variable in self._collect("collect_self_updates", kinds, include, exclude, include_self):
            expression = pending_update(variable)
            if expression is not None:
                updates[variable] = expression
        return updates

    def count_params(self, trainable=True, self_updating=False):
        """Number of scalar entries in the tree's parameters (and/or self-updating variables)."""
        kinds = (("params",) if trainable else ()) + (("self_updating_variables",) if self_updating else ())
        return int(sum(np.prod(v.get_value(borrow=True).shape, dtype=np.int64) for _, v in self._named(kinds)))

    # ------------------------------------------------------------------ weights
    def get_weights(self):
        """``[[value, name], ...]``: own params, own self-updating variables, then sub-modules,
        with Theano-era names (``named_variables`` gives the path names)."""
        # np.asarray: after a JAX-compiled update the stored value is an immutable JAX array.
        return [[np.asarray(v.get_value()), v.name] for _, v in self.named_weights()]

    def _check_value(self, variable, value, where, allow_downcast, label=None):
        label = label or variable.name
        value = checked_cast(value, variable.dtype, label, f"{type(self).__name__}.{where}", allow_downcast)
        expected = variable.get_value(borrow=True).shape
        if value.shape != expected:
            raise ValueError(
                f"{type(self).__name__}({self.name!r}): weight for {label!r} has shape "
                f"{value.shape}, expected {expected}; nothing was changed"
            )
        return value

    def set_weights(self, module_weights, check_name="ignore", allow_downcast=False):
        """Set weights in ``get_weights()`` order. Validates all, then assigns all.

        check_name : {'ignore', 'warn', 'raise'} what to do when a saved name is neither
        the variable's Theano-era name nor its path name.
        allow_downcast : bool
            Values are cast to a variable's dtype only when the cast is safe or keeps
            every value exactly (a ``TypeError`` names the weight otherwise: 0.75 into
            int32, complex into float, text); ``True`` also accepts float64 values that
            float32 rounds.
        """
        _check_policy(f"{type(self).__name__}.set_weights", "check_name", check_name)
        named = self.named_weights()
        if len(module_weights) != len(named):
            raise ValueError(
                f"{type(self).__name__}({self.name!r}).set_weights: got {len(module_weights)} weights, "
                f"expected {len(named)}; nothing was changed"
            )
        values = []
        for (path, variable), (value, name) in zip(named, module_weights):
            if name not in (variable.name, path):
                _apply_policy(check_name, f"{type(self).__name__}.set_weights: saved name {name!r} differs from variable {variable.name!r}")
            values.append(self._check_value(variable, value, "set_weights", allow_downcast))
        for (_, variable), value in zip(named, values):
            variable.set_value(value)

    def resolve_names(self, names, variables=None):
        """{name: (path, variable)} for the names that identify one variable of the tree.

        A name is a path name (``block1.fc.W``) or a Theano-era name (``W@Dense|fc``);
        Theano-era names that several variables share are refused with their paths.
        ``variables`` defaults to the weights (parameters and self-updating variables).
        """
        named = self.named_weights() if variables is None else variables
        by_path = {path: (path, v) for path, v in named}
        by_old = {}
        for path, variable in named:
            by_old.setdefault(variable.name, []).append((path, variable))
        resolved = {}
        for name in names:
            if name in by_path:
                resolved[name] = by_path[name]
            elif name in by_old:
                if len(by_old[name]) > 1:
                    paths = [p for p, _ in by_old[name]]
                    raise ValueError(
                        f"{type(self).__name__}: {len(paths)} variables are named {name!r} ({paths}); "
                        "use their path names"
                    )
                resolved[name] = by_old[name][0]
        return resolved

    def set_weights_by_name(self, module_weights, unmatched="raise", name_map=None, allow_downcast=False):
        """Set weights by matching saved names to the variables' path or Theano-era names.

        unmatched : {'ignore', 'warn', 'raise'} for saved weights with no variable and
            variables with no saved weight (checked before anything is assigned).
        name_map : dict, optional
            {saved name: variable name}, for weights saved under other names.
        allow_downcast : bool
            As in ``set_weights``.
        """
        _check_policy(f"{type(self).__name__}.set_weights_by_name", "unmatched", unmatched)
        name_map = dict(name_map or {})
        named = self.named_weights()
        targets = [name_map.get(saved_name, saved_name) for _, saved_name in module_weights]
        resolved = self.resolve_names(targets, named)
        assignments, unused = [], []
        for (value, saved_name), target in zip(module_weights, targets):
            if target not in resolved:
                unused.append(saved_name)
                continue
            path, variable = resolved[target]
            assignments.append((variable, self._check_value(variable, value, "set_weights_by_name", allow_downcast, path)))
        assigned = {id(v) for v, _ in assignments}
        missing = [variable.name for _, variable in named if id(variable) not in assigned]
        if unused or missing:
            _apply_policy(
                unmatched,
                f"{type(self).__name__}({self.name!r}).set_weights_by_name: saved weights with no variable: "
                f"{unused}; variables with no saved weight: {missing}",
            )
        for variable, value in assignments:
            variable.set_value(value)

    # ---------------------------------------------------------------- showing
    def summary(self):
        """A table of sub-module paths, classes, parameter shapes and counts, with totals."""
        from dandelion.module.summary import model_summary  # summary reads the tree: no cycle at import

        return model_summary(self)

    def __str__(self):
        return self.summary()

    # ---------------------------------------------------------------- calling
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def predict(self, *args, **kwargs):
        """Inference graph; the same as ``forward`` unless a module overrides it."""
        return self.forward(*args, **kwargs)

    def __call__(self, *args, **kwargs):
        if self.work_mode == "train":
            return self.forward(*args, **kwargs)
        return self.predict(*args, **kwargs)

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"


# --------------------------------------------------------------------- containers
class _Container(Module):
    """A module that only holds other modules; transparent for Theano-era names."""

    def _passes_name_on(self):
        return False

    def forward(self, *args, **kwargs):
        raise NotImplementedError(
            f"{type(self).__name__} only holds modules; call its members' forward() in your own module"
        )

    @staticmethod
    def _check_member(where, module):
        if not isinstance(module, Module):
            raise TypeError(f"{where} must be a Module, got {type(module).__name__}")
        return module


class ModuleList(_Container):
    """A list of sub-modules, collected, saved and trained with their parent.

    A plain list or tuple of modules assigned to an attribute becomes one. Member ``i``
    of the attribute ``blocks`` has the path name ``blocks.i`` and, unless it has a name,
    the Theano-era name ``blocks_i`` (as ``Sequential`` names ``submodule_i``).
    """

    def __init__(self, modules=(), name=None):
        super().__init__(name=name)
        self.extend(modules)

    def _member_name(self, key):
        prefix = self._given_name if self._given_name is not None else self._key
        return key if prefix is None else f"{prefix}_{key}"

    def append(self, module):
        self._adopt(str(len(self.sub_modules)), self._check_member(f"ModuleList[{len(self)}]", module))
        return self

    def extend(self, modules):
        for module in modules:
            self.append(module)
        return self

    def __len__(self):
        return len(self.sub_modules)

    def __iter__(self):
        return iter(list(self.sub_modules.values()))

    def __getitem__(self, index):
        members = list(self.sub_modules.values())
        try:
            return members[index]
        except (IndexError, TypeError):
            raise IndexError(f"ModuleList: index {index!r} out of range for {len(members)} modules") from None


class ModuleDict(_Container):
    """A mapping of names to sub-modules, collected, saved and trained with their parent.

    A plain dict of modules (string keys) assigned to an attribute becomes one. Member
    ``key`` of the attribute ``heads`` has the path name ``heads.key`` and, unless it has a
    name, the Theano-era name ``key``.
    """

    def __init__(self, modules=None, name=None):
        super().__init__(name=name)
        for key, module in dict(modules or {}).items():
            self[key] = module

    def __setitem__(self, key, module):
        if not isinstance(key, str) or not key or "." in key:
            raise KeyError(f"ModuleDict: keys must be non-empty str without '.', got {key!r}")
        self._adopt(key, self._check_member(f"ModuleDict[{key!r}]", module))

    def __getitem__(self, key):
        try:
            return self.sub_modules[key]
        except KeyError:
            raise KeyError(f"ModuleDict: no module {key!r}; keys: {list(self.sub_modules)}") from None

    def __delitem__(self, key):
        self[key]  # the KeyError with the keys
        self._release(key)

    def __contains__(self, key):
        return key in self.sub_modules

    def __iter__(self):
        return iter(list(self.sub_modules))

    def __len__(self):
        return len(self.sub_modules)

    def get(self, key, default=None):
        return self.sub_modules.get(key, default)

    def keys(self):
        return list(self.sub_modules.keys())

    def values(self):
        return list(self.sub_modules.values())

    def items(self):
        return list(self.sub_modules.items())


def _container_members(module):
    """The modules a container holds, through nested containers (none for a plain module)."""
    if not isinstance(module, _Container):
        return []
    members = []
    for member in module.sub_modules.values():
        members += _container_members(member) if isinstance(member, _Container) else [member]
    return members


def _modules_in(value):
    """True for a non-empty list, tuple or dict that holds a module."""
    if isinstance(value, (list, tuple)):
        return any(isinstance(v, Module) for v in value)
    if isinstance(value, dict):
        return any(isinstance(v, Module) for v in value.values())
    return False


def _as_container(where, key, value):
    """A list/tuple/dict of modules as a ModuleList/ModuleDict; anything else unchanged."""
    if not _modules_in(value) or isinstance(value, Module):
        return value
    items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
    strays = [(k, type(v).__name__) for k, v in items if not isinstance(v, Module)]
    if strays:
        raise TypeError(
            f"{where}: {key!r} mixes modules with other values {strays}; a list, tuple or dict that holds "
            "modules must hold only modules (keep other values in a separate attribute)"
        )
    return ModuleDict(value) if isinstance(value, dict) else ModuleList(value)
