"""Named optimizer state: the shared variables an optimizer keeps between steps.

Every state variable is named ``<optimizer>.<slot>@<parameter name>`` (a step counter
``<optimizer>.t``), zero-initialised like its parameter, and tagged, so that
``optimizer_state(updates)`` finds it among the keys of the returned updates and a
checkpoint can save and restore it by name.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytensor

from dandelion.config import floatx

_TAG = "dandelion_optimizer_state"
_OF_PARAM = "dandelion_state_of"  # (optimizer, slot, parameter): lets a checkpoint name it by the parameter's path


def _tagged(variable):
    setattr(variable.tag, _TAG, True)
    return variable


def param_label(param, index):
    """The parameter's name, or its position when it has none."""
    return param.name if param.name else f"param{index}"


def zeros_like_param(optimizer, slot, param, index):
    """A zero state variable shaped, typed and broadcastable like ``param``."""
    value = param.get_value(borrow=True)
    variable = pytensor.shared(
        np.zeros(value.shape, dtype=value.dtype),
        name=f"{optimizer}.{slot}@{param_label(param, index)}",
        shape=param.type.shape,
    )
    setattr(variable.tag, _OF_PARAM, (optimizer, slot, param))
    return _tagged(variable)


def state_label(variable, param_names):
    """The state variable's name with its parameter's name taken from ``param_names``
    ({id(param): name}, e.g. path names); its own name when its parameter is not there."""
    of = getattr(variable.tag, _OF_PARAM, None)
    if of is None or id(of[2]) not in param_names:
        return variable.name
    optimizer, slot, param = of
    return f"{optimizer}.{slot}@{param_names[id(param)]}"


def step_counter(optimizer):
    """A scalar floatX step counter ``<optimizer>.t`` starting at 0."""
    return _tagged(pytensor.shared(np.asarray(0, dtype=floatx()), name=f"{optimizer}.t"))


def is_optimizer_state(variable):
    return bool(getattr(variable.tag, _TAG, False))


def optimizer_state(updates, param_names=None):
    """``OrderedDict`` {name: shared variable} of the optimizer state in ``updates``.

    Parameters
    ----------
    updates : dict
        Updates returned by an optimizer of ``dandelion.update`` (possibly merged with
        other updates, such as ``Module.collect_self_updates()``).
    param_names : dict, optional
        {id(parameter): name} to name each state after its parameter (checkpoints pass
        the model's path names, so that states of same-named parameters never collide).

    Raises
    ------
    ValueError
        When two state variables share a name (two optimizers of the same kind over
        parameters with the same names): rename one (``variable.name = ...``).
    """
    state = OrderedDict()
    for variable in updates:
        if not is_optimizer_state(variable):
            continue
        name = variable.name if param_names is None else state_label(variable, param_names)
        if name in state and state[name] is not variable:
            raise ValueError(
                f"optimizer_state: two optimizer state variables are named {name!r}; "
                "give one of them another name before saving"
            )
        state[name] = variable
    return state
