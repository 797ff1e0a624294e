"""The LSTM and GRU cell arithmetic and the masked carry-over, each written once.

Every function here is plain Python over operators and the activations it is passed,
so the same source runs on PyTensor tensors (the scan path,
``dandelion.module.recurrent.steps``), on NumPy and ``jax.numpy`` arrays (the fused
Op's NumPy and JAX kernels) and, jitted from this source, on the scalars of the Numba
kernels (``dandelion.ops.numba.lstm_kernels``). Arguments are elementwise: (B, H)
blocks, (T, B, H) stacks or scalars alike, with (H,) weights broadcasting.

Gate blocks follow the Theano-era weight layout: LSTM ``[input | forget | cell |
output]``, GRU ``[reset | update | candidate]``. An optional term is ``None`` where it
is absent (the scan path then builds no node for it); the Numba kernels pass zeros
instead, which leave the result unchanged.
"""

from __future__ import annotations


def lstm_cell(a_i, a_f, a_g, a_o, c_prev, peep_i, peep_f, w_co, sigmoid, tanh, cell_activation):
    """One LSTM step from its gate pre-activations (Graves 2013, peepholes as in Lasagne).

    Parameters
    ----------
    a_i, a_f, a_g, a_o : (B, H)
        Pre-activations of the input, forget, cell and output gates
        (``gate_input + h_prev @ W_hid``, clipped where the caller clips).
    c_prev : (B, H)
        The cell the forget gate scales.
    peep_i, peep_f : (B, H) or None
        Peephole terms added to ``a_i`` and ``a_f`` (``c_prev * w_cell_to_igate`` ...).
    w_co : (H,) or None
        Peephole weight from the new cell to the output gate.
    sigmoid, tanh, cell_activation : callables
        The gate nonlinearities and ``h = o * cell_activation(c)``.

    Returns
    -------
    i, f, g, o : (B, H)
        The gate activations (the backward pass needs them).
    c, h : (B, H)
        The new cell and hidden state.
    """
    if peep_i is not None:
        a_i = a_i + peep_i
    if peep_f is not None:
        a_f = a_f + peep_f
    i = sigmoid(a_i)
    f = sigmoid(a_f)
    g = tanh(a_g)
    c = f * c_prev + i * g
    if w_co is not None:
        a_o = a_o + c * w_co
    o = sigmoid(a_o)
    return i, f, g, o, c, o * cell_activation(c)


def lstm_cell_backward_factors(i, f, g, o, c_prev, c, tanh):
    """What ``lstm_cell_backward`` multiplies by; independent of the cotangents.

    From a step's gate activations, its previous and new cell (any common shape; the
    fused kernels pass all T steps at once). Returns ``k_o, k_c, k_i, k_f, k_g``:
    ``d a_o = dh * k_o``, ``d c = dc + dh * k_c`` and ``d a_x = d c * k_x`` for the other
    gates (tanh cell activation).

    Written without numeric literals (``o - o * o`` for ``o * (1 - o)``): Numba types a
    literal ``1`` as int64, which would promote every float32 term of the jitted kernels
    to float64 and halve their vector width.
    """
    tanh_c = tanh(c)
    k_o = tanh_c * (o - o * o)
    k_c = o - o * tanh_c * tanh_c
    k_i = g * (i - i * i)
    k_f = c_prev * (f - f * f)
    k_g = i - i * g * g
    return k_o, k_c, k_i, k_f, k_g


def lstm_cell_backward(dh, dc, k_o, k_c, k_i, k_f, k_g, f, w_ci, w_cf, w_co):
    """Back-propagate one ``lstm_cell`` step.

    Parameters
    ----------
    dh, dc : (B, H)
        Cotangents of the step's h and c outputs.
    k_o, k_c, k_i, k_f, k_g : (B, H)
        ``lstm_cell_backward_factors`` of the step.
    f : (B, H)
        The forget gate's activation.
    w_ci, w_cf, w_co : (H,) or None
        Peephole weights (None without peepholes).

    Returns
    -------
    da_i, da_f, da_g, da_o : (B, H)
        Cotangents of the pre-activations, before any clipping.
    dc_prev : (B, H)
        Cotangent of ``c_prev``, through the forget gate and the peepholes.
    """
    da_o = dh * k_o
    dc_new = dc + dh * k_c
    if w_co is not None:
        dc_new = dc_new + da_o * w_co
    da_i = dc_new * k_i
    da_f = dc_new * k_f
    da_g = dc_new * k_g
    dc_prev = dc_new * f
    if w_ci is not None:
        dc_prev = dc_prev + da_i * w_ci
    if w_cf is not None:
        dc_prev = dc_prev + da_f * w_cf
    return da_i, da_f, da_g, da_o, dc_prev


def gru_cell(r_x, u_x, c_x, r_h, u_h, c_h, h_prev, sigmoid, activation):
    """One GRU step (Cho et al. 2014, as Lasagne).

    Parameters
    ----------
    r_x, u_x, c_x : (B, H)
        Reset, update and candidate blocks of ``x @ W_in + b_in``.
    r_h, u_h, c_h : (B, H)
        The same blocks of ``h_prev @ W_hid``.
    h_prev : (B, H)
    sigmoid, activation : callables
        The gate nonlinearity and the candidate's activation.

    Returns
    -------
    r, u, candidate : (B, H)
        The reset and update gates and the candidate state (the backward pass needs them).
    h : (B, H)
        ``(1 - u) * h_prev + u * candidate``, written ``h_prev + u * (candidate - h_prev)``
        (no numeric literal, see ``lstm_cell_backward_factors``).
    """
    r = sigmoid(r_x + r_h)
    u = sigmoid(u_x + u_h)
    candidate = activation(c_x + r * c_h)
    return r, u, candidate, h_prev + u * (candidate - h_prev)


def gru_cell_backward_factors(r, u, candidate, c_h, h_prev):
    """What ``gru_cell_backward`` multiplies by; independent of the cotangents (tanh candidate).

    From a step's gates, candidate, ``c_h`` (the candidate block of ``h_prev @ W_hid``)
    and previous state (any common shape; the fused kernels pass all T steps at once).
    Returns ``k_r, k_u, k_c``: ``d a_u = dh * k_u``, ``d a_c = dh * k_c`` and
    ``d a_r = d a_c * k_r`` for the gates' pre-activations ``a_r = r_x + r_h``,
    ``a_u = u_x + u_h`` and ``a_c = c_x + r * c_h``. Written without numeric literals,
    as ``lstm_cell_backward_factors``.
    """
    k_r = c_h * (r - r * r)
    k_u = (candidate - h_prev) * (u - u * u)
    k_c = u - u * candidate * candidate
    return k_r, k_u, k_c


def gru_cell_backward(dh, k_r, k_u, k_c, r, u):
    """Back-propagate one ``gru_cell`` step.

    Parameters
    ----------
    dh : (B, H)
        Cotangent of the step's h (clipped where the caller clips).
    k_r, k_u, k_c : (B, H)
        ``gru_cell_backward_factors`` of the step.
    r, u : (B, H)
        The reset and update gates.

    Returns
    -------
    da_r, da_u, da_c : (B, H)
        Cotangents of the gate pre-activations, so of ``r_x``, ``u_x``, ``c_x`` and of
        ``r_h``, ``u_h``.
    dc_h : (B, H)
        Cotangent of ``c_h`` (``da_c * r``).
    dh_direct : (B, H)
        The part of ``h_prev``'s cotangent that does not pass through ``W_hid``
        (``dh * (1 - u)``).
    """
    da_c = dh * k_c
    return da_c * k_r, dh * k_u, da_c, da_c * r, dh - dh * u


def carry_masked(where, keep, new, previous, axis=0):
    """A masked step: ``new`` where ``keep`` (B,) is true, ``previous`` elsewhere.

    ``where`` is the namespace's select (``pt.switch``, ``np.where``, ``jnp.where``);
    the batch lies on ``axis`` of ``new`` and ``previous``.
    """
    index = [None] * new.ndim
    index[axis] = slice(None)
    return where(keep[tuple(index)], new, previous)


def clip_symmetric(xp, x, bound):
    """``x`` clipped to ``[-bound, bound]`` by the array namespace ``xp``, the bound in ``x``'s dtype.

    A Python float bound would enter a JAX program (x64 enabled, as PyTensor runs it) as a
    float64 constant.
    """
    bound = xp.asarray(bound, dtype=x.dtype)
    return xp.clip(x, -bound, bound)

