"""Plain NumPy loops for the recurrent modules, written from the equations.

They share nothing with ``dandelion.module.recurrent``: each time step is written out
from the formulas in the module reference (Graves' LSTM with peepholes, Cho's GRU, the
raster-scanned 2-D LSTM), in float64.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _keep(mask, t):
    """(B, 1) boolean: which batch entries take the new state at step ``t``."""
    return None if mask is None else (np.asarray(mask[t]) != 0)[:, None]


def lstm_cell(x_proj, h, c, W_hid, peep=None, act=np.tanh):
    """One LSTM step; x_proj (B, 4H) already includes W_in and b_in."""
    H = h.shape[1]
    a = x_proj + h @ W_hid
    i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
    if peep is not None:
        i = i + c * peep[0]
        f = f + c * peep[1]
    c_new = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    if peep is not None:
        o = o + c_new * peep[2]
    return sigmoid(o) * act(c_new), c_new


def lstm_sequence(x, W_in, b_in, W_hid, h0, c0, peep=None, mask=None, backward=False, act=np.tanh):
    """Returns (seq_h (T, B, H) in input order, h_final, c_final)."""
    T = x.shape[0]
    h, c = np.array(h0, dtype="float64"), np.array(c0, dtype="float64")
    seq = np.zeros((T,) + h.shape)
    for t in reversed(range(T)) if backward else range(T):
        h_new, c_new = lstm_cell(x[t] @ W_in + b_in, h, c, W_hid, peep, act)
        keep = _keep(mask, t)
        if keep is not None:
            h_new, c_new = np.where(keep, h_new, h), np.where(keep, c_new, c)
        h, c = h_new, c_new
        seq[t] = h
    return seq, h, c


def gru_cell(x_proj, h, W_hid, act=np.tanh):
    """One GRU step; x_proj (B, 3H) already includes W_in and b_in."""
    H = h.shape[1]
    hid = h @ W_hid
    r = sigmoid(x_proj[:, :H] + hid[:, :H])
    u = sigmoid(x_proj[:, H : 2 * H] + hid[:, H : 2 * H])
    cand = act(x_proj[:, 2 * H :] + r * hid[:, 2 * H :])
    return (1 - u) * h + u * cand


def gru_sequence(x, W_in, b_in, W_hid, h0, mask=None, backward=False, act=np.tanh):
    """Returns (seq_h (T, B, H) in input order, h_final)."""
    T = x.shape[0]
    h = np.array(h0, dtype="float64")
    seq = np.zeros((T,) + h.shape)
    for t in reversed(range(T)) if backward else range(T):
        h_new = gru_cell(x[t] @ W_in + b_in, h, W_hid, act)
        keep = _keep(mask, t)
        if keep is not None:
            h_new = np.where(keep, h_new, h)
        h = h_new
        seq[t] = h
    return seq, h


def lstm2d_cell(x_proj, h_left, c_left, h_up, c_up, W_left, W_up, peep=None, act=np.tanh):
    H = h_left.shape[1]
    a = x_proj + h_left @ W_left + h_up @ W_up
    i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
    if peep is not None:
        i = i + c_left * peep[0] + c_up * peep[1]
        f = f + c_left * peep[2] + c_up * peep[3]
    c = sigmoid(f) * (c_left + c_up) * 0.5 + sigmoid(i) * np.tanh(g)
    if peep is not None:
        o = o + c * peep[4]
    return sigmoid(o) * act(c), c


def lstm2d_grid(x, W_in, b_in, W_left, W_up, h0, c0, peep=None, mask=None, backward=False, act=np.tanh):
    """2-D LSTM over x (Hgt, Wid, B, C) in raster order (reversed when ``backward``).

    "left" is the previous position in scan order (h0/c0 before the first); "up" is
    the position one row earlier in scan order at the same column, zero in the first
    scanned row. A masked position hands on its left state and leaves its column's
    "up" value as it was. Returns (seq_h (Hgt, Wid, B, H), h_final, c_final).
    """
    Hgt, Wid, B, _ = x.shape
    H = W_left.shape[0]
    positions = [(i, j) for i in range(Hgt) for j in range(Wid)]
    if backward:
        positions = positions[::-1]
    h, c = np.array(h0, dtype="float64"), np.array(c0, dtype="float64")
    up_h = {j: np.zeros((B, H)) for j in range(Wid)}
    up_c = {j: np.zeros((B, H)) for j in range(Wid)}
    out = np.zeros((Hgt, Wid, B, H))
    for i, j in positions:
        h_new, c_new = lstm2d_cell(x[i, j] @ W_in + b_in, h, c, up_h[j], up_c[j], W_left, W_up, peep, act)
        if mask is not None:
            keep = (np.asarray(mask[i, j]) != 0)[:, None]
            up_h[j] = np.where(keep, h_new, up_h[j])
            up_c[j] = np.where(keep, c_new, up_c[j])
            h_new, c_new = np.where(keep, h_new, h), np.where(keep, c_new, c)
        else:
            up_h[j], up_c[j] = h_new, c_new
        h, c = h_new, c_new
        out[i, j] = h
    return out, h, c
