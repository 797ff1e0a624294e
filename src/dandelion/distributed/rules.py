"""Sharding rules: which state variable is split over which mesh axes.

A rule maps a name pattern (``fnmatch`` syntax) to a partition spec: one entry per
leading axis of the variable, each ``None`` (not split), a mesh axis name, or a tuple of
mesh axis names. Patterns match a variable's path name in the model (``fc1.W``, with
the model given) or its variable name (``W@Dense|fc1``). Optimizer state follows its
parameter's rule (Adam's moments are split like the weight they belong to); a rule
may also name the state itself (``adam.m@fc1.W``).
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from dandelion.update.state import is_optimizer_state, state_label


def path_names(module):
    """{id(variable): path name} of a module tree's variables (empty without a module)."""
    return {} if module is None else {id(v): path for path, v in module.named_variables()}


def display_name(variable, paths):
    """The path name, else (optimizer state) ``<optimizer>.<slot>@<parameter path>``, else the variable name."""
    if id(variable) in paths:
        return paths[id(variable)]
    return state_label(variable, paths) if is_optimizer_state(variable) else variable.name


def _own_names(variable, paths):
    return [name for name in (display_name(variable, paths), variable.name) if name]


def _owner_names(variable, paths):
    """The names of the parameter an optimizer state variable belongs to."""
    if not is_optimizer_state(variable):
        return []
    return [name.split("@", 1)[1] for name in _own_names(variable, paths) if "@" in name]


def _check_spec(where, pattern, spec, mesh, variable, name):
    spec = tuple(spec)
    shape = variable.get_value(borrow=True).shape
    if len(spec) > len(shape):
        raise ValueError(
            f"{where}: rule {pattern!r} gives {len(spec)} axes for {name!r} of shape {shape}; "
            f"expected at most {len(shape)} entries"
        )
    for axis_index, entry in enumerate(spec):
        axes = () if entry is None else (entry,) if isinstance(entry, str) else tuple(entry)
        size = 1
        for axis in axes:
            if axis not in mesh.axis_names:
                raise ValueError(
                    f"{where}: rule {pattern!r} names mesh axis {axis!r}; expected one of {list(mesh.axis_names)}"
                )
            size *= mesh.shape[axis]
        if shape[axis_index] % size:
            raise ValueError(
                f"{where}: rule {pattern!r} splits axis {axis_index} of {name!r} (length "
                f"{shape[axis_index]}) over {size} devices; expected a length divisible by {size}"
            )
    return spec


def resolve_rules(where, mesh, variables, rules, paths):
    """One partition spec (a tuple; ``()`` is replicated) per variable in ``variables``.

    paths : {id(variable): path name}, from ``path_names(module)``.

    Raises
    ------
    ValueError
        A rule whose pattern matches no variable name, a mesh axis that does not exist,
        more spec entries than the variable has axes, or a length the axes do not divide.
    """
    rules = dict(rules or {})
    names = {id(v): _own_names(v, paths) for v in variables}
    for pattern in rules:
        if not isinstance(pattern, str):
            raise TypeError(f"{where}: sharding rule keys must be name patterns (str), got {pattern!r}")
        if not any(fnmatchcase(name, pattern) for own in names.values() for name in own):
            shown = [display_name(v, paths) for v in variables]
            raise ValueError(
                f"{where}: sharding rule {pattern!r} matches no parameter; expected a pattern matching one of {shown}"
            )
    specs = []
    for variable in variables:
        spec = ()
        candidates = names[id(variable)] + _owner_names(variable, paths)
        for pattern, rule_spec in rules.items():
            if any(fnmatchcase(name, pattern) for name in candidates):
                spec = _check_spec(where, pattern, rule_spec, mesh, variable, display_name(variable, paths))
                break
        specs.append(spec)
    return specs
