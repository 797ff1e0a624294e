"""``Module.summary()``: what a model holds, as a table."""

from __future__ import annotations

import numpy as np


def _size(variable):
    value = variable.get_value(borrow=True)
    return int(np.prod(value.shape, dtype=np.int64)), int(value.nbytes)


def _shapes(variables, keys):
    return ", ".join(f"{keys[id(v)]} {tuple(v.get_value(borrow=True).shape)}" for v in variables)


def model_summary(module):
    """One row per module that owns variables (and the root): path, class, variables
    with shapes, trainable and self-updating counts; then totals and bytes.

    Shared modules and variables are counted once. Random-number states (dropout
    counters) are neither weights nor trainable and are left out.
    """
    rows = [("path", "class", "variables", "trainable", "self-updating")]
    trainable_total = updating_total = bytes_total = 0
    seen = set()
    for path, sub in module.named_modules():
        own = [v for v in sub.params + sub.self_updating_variables if id(v) not in seen]
        seen.update(id(v) for v in own)
        if not own and path:
            continue
        taken = set()
        keys = {id(v): sub._variable_key(v, taken) for v in sub._own_variables()}
        param_ids = {id(v) for v in sub.params}
        trainable = sum(_size(v)[0] for v in own if id(v) in param_ids)
        updating = sum(_size(v)[0] for v in own if id(v) not in param_ids)
        bytes_total += sum(_size(v)[1] for v in own)
        trainable_total += trainable
        updating_total += updating
        rows.append((path or "(root)", type(sub).__name__, _shapes(own, keys), f"{trainable:,}", f"{updating:,}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    aligned = []
    for row in rows:
        cells = [cell.ljust(width) if i < 3 else cell.rjust(width) for i, (cell, width) in enumerate(zip(row, widths))]
        aligned.append("  ".join(cells).rstrip())
    rule = "-" * max(len(line) for line in aligned)
    title = f"{type(module).__name__}({module.name!r})" if module.name is not None else type(module).__name__
    totals = (
        f"total: {trainable_total:,} trainable, {updating_total:,} self-updating, "
        f"{trainable_total + updating_total:,} in all, {bytes_total:,} bytes"
    )
    return "\n".join([title, aligned[0], rule, *aligned[1:], rule, totals])
