"""Crop a list of tensors to a common shape (U-Net style skip connections)."""

from __future__ import annotations

import pytensor.tensor as pt

CROP_MODES = (None, "lower", "upper", "center")


def align_crop(tensor_list, cropping):
    """Crop every tensor to the smallest size along each axis that has a cropping rule.

    Parameters
    ----------
    tensor_list : list of tensors of equal ndim
    cropping : None or sequence of {None, 'lower', 'upper', 'center'}, one per leading axis
        None (instead of a sequence) returns the tensors uncropped. Within the sequence, None leaves the axis alone; 'lower' keeps the first entries, 'upper' the last,
        'center' the middle (the extra one, for odd differences, is cut at the end).
        Axes beyond ``len(cropping)`` are not cropped.

    Returns
    -------
    list of tensors
    """
    tensors = [pt.as_tensor_variable(t) for t in tensor_list]
    if not tensors or cropping is None:
        return tensors
    ndim = tensors[0].ndim
    if any(t.ndim != ndim for t in tensors):
        raise ValueError(f"align_crop: all tensors must have the same ndim, got {[t.ndim for t in tensors]}")
    cropping = list(cropping)
    if len(cropping) > ndim:
        raise ValueError(f"align_crop: cropping has {len(cropping)} entries for tensors of ndim {ndim}")
    for rule in cropping:
        if rule not in CROP_MODES:
            raise ValueError(f"align_crop: cropping rules must be in {CROP_MODES}, got {rule!r}")
    slices = [[] for _ in tensors]
    for axis, rule in enumerate(cropping):
        if rule is None:
            for s in slices:
                s.append(slice(None))
            continue
        statics = [t.type.shape[axis] for t in tensors]
        if all(n is not None for n in statics):
            smallest = min(statics)
            sizes = statics
        else:
            sizes = [t.shape[axis] for t in tensors]
            smallest = sizes[0]
            for n in sizes[1:]:
                smallest = pt.minimum(smallest, n)
        for s, size in zip(slices, sizes):
            if rule == "lower":
                s.append(slice(0, smallest))
            elif rule == "upper":
                s.append(slice(size - smallest, size))
            else:
                offset = (size - smallest) // 2
                s.append(slice(offset, offset + smallest))
    return [t[tuple(s)] for t, s in zip(tensors, slices)]
