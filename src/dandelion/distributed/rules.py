"""Sharding rules: which state variable is split over which mesh axes.

A rule maps a name pattern (``fnmatch`` syntax, matched against variable names such as
``W@Dense|fc1``) to a partition spec: one entry per leading axis of the variable, each
``None`` (not split), a mesh axis name, or a tuple of mesh axis names. Optimizer state
``<optimizer>.<slot>@<parameter name>`` follows its parameter's rule when it has the
parameter's shape, so Adam's moments are split like the weight they belong to.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from dandelion.update.state import is_optimizer_state


def _owner_name(variable):
    """The parameter an optimizer state variable belongs to (``adam.m@W@Dense|fc1`` -> ``W@Dense|fc1``)."""
    if is_optimizer_state(variable) and variable.name and "@" in variable.name:
        return variable.name.split("@", 1)[1]
    return None


def _check_spec(where, pattern, spec, mesh, variable):
    spec = tuple(spec)
    shape = variable.get_value(borrow=True).shape
    if len(spec) > len(shape):
        raise ValueError(
            f"{where}: rule {pattern!r} gives {len(spec)} axes for {variable.name!r} of shape {shape}; "
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
                f"{where}: rule {pattern!r} splits axis {axis_index} of {variable.name!r} (length "
                f"{shape[axis_index]}) over {size} devices; expected a length divisible by {size}"
            )
    return spec


def resolve_rules(where, mesh, variables, rules):
    """One partition spec (a tuple; ``()`` is replicated) per variable in ``variables``.

    Raises
    ------
    ValueError
        A rule whose pattern matches no variable name, a mesh axis that does not exist,
        more spec entries than the variable has axes, or a length the axes do not divide.
    """
    rules = dict(rules or {})
    names = [v.name for v in variables if v.name]
    for pattern in rules:
        if not isinstance(pattern, str):
            raise TypeError(f"{where}: sharding rule keys must be name patterns (str), got {pattern!r}")
        if not any(fnmatchcase(name, pattern) for name in names):
            raise ValueError(
                f"{where}: sharding rule {pattern!r} matches no parameter; expected a pattern matching one of {names}"
            )
    specs = []
    for variable in variables:
        spec = ()
        for pattern, rule_spec in rules.items():
            owner = _owner_name(variable)
            own_match = variable.name is not None and fnmatchcase(variable.name, pattern)
            owner_match = owner is not None and fnmatchcase(owner, pattern)
            if own_match or owner_match:
                spec = _check_spec(where, pattern, rule_spec, mesh, variable)
                break
        specs.append(spec)
    return specs
