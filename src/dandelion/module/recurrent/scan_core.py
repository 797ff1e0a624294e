"""The one scan helper behind every recurrent module.

It owns what the Theano-era code copied into each layer: masked steps carry the
previous state forward, ``backward`` scans from the end and returns outputs in the
input's time order, parameters enter ``scan`` as explicit ``non_sequences`` with
``strict=True`` (so the inner graph reads nothing from outside), and
``truncate_gradient`` bounds back-propagation through time.
"""

from __future__ import annotations

import pytensor.tensor as pt
from pytensor.gradient import zero_grad

from dandelion._compat import scan
from dandelion.ops.recurrent_cells import carry_masked


def truncated_run(run, steps, truncate_gradient, initial_states):
    """Theano's truncated back-propagation through time, without a truncated scan.

    ``run(start, stop, states)`` computes the state sequences (each (T', ...), in scan
    order) of steps ``start:stop`` from ``states``. With a static length ``steps`` longer
    than ``truncate_gradient``, the steps are run in two parts split where truncation
    starts; the first part's states are handed on with their gradient stopped, so no
    gradient reaches the earlier steps, as in a truncated scan. (PyTensor's JAX backend
    cannot differentiate a truncated scan.) Otherwise one run, which the caller
    truncates itself if the length is unknown.

    Returns the state sequences over all steps.
    """
    if truncate_gradient == -1 or steps is None or truncate_gradient >= steps:
        return list(run(None, None, initial_states))
    split = steps - truncate_gradient
    early = [zero_grad(seq) for seq in run(None, split, initial_states)]
    late = run(split, None, [seq[-1] for seq in early])
    return [pt.concatenate([first, second]) for first, second in zip(early, late, strict=True)]


def recurrent_scan(
    step,
    sequences,
    initial_states,
    params=(),
    *,
    mask=None,
    backward=False,
    truncate_gradient=-1,
    state_batch_axes=None,
    name=None,
):
    """Run ``step`` over axis 0 of ``sequences``; return every step's states.

    Parameters
    ----------
    step : callable
        ``step(*sequence_slices, *states, *params) -> list of new states``; a pure
        function of its arguments.
    sequences : list of tensors, each (T, ...)
    initial_states : list of tensors
        State before the first step, each with the batch on axis
        ``state_batch_axes[i]`` (0 by default).
    params : list of tensors
        Everything else ``step`` reads (weights); passed as ``non_sequences``.
    mask : (T, B) tensor, optional
        Where zero, the step is skipped for that batch entry: every state keeps its
        previous value.
    backward : bool
        Scan from the last step to the first. The returned sequences are still in
        the input's time order; ``final`` is the state after the first time step.
    truncate_gradient : int
        -1 for full back-propagation through time, else the number of steps. With a
        static sequence length the scan is split where truncation starts
        (``truncated_run``), which every backend differentiates; otherwise a truncated
        scan, which PyTensor's JAX backend cannot differentiate.
    state_batch_axes : list of int, optional
        Batch axis of each state, where the mask applies.

    Returns
    -------
    sequences_out : list of tensors, each (T, ...) in input time order
    final : list of tensors, the states after the last scanned step
    """
    sequences = list(sequences)
    initial_states = list(initial_states)
    params = list(params)
    n_seq, n_state = len(sequences), len(initial_states)
    batch_axes = list(state_batch_axes) if state_batch_axes is not None else [0] * n_state

    if mask is not None:
        sequences.append(pt.neq(mask, 0))

    def inner(*args):
        seq_slices = list(args[:n_seq])
        states = list(args[len(sequences) : len(sequences) + n_state])
        inner_params = list(args[len(sequences) + n_state :])
        new_states = step(*seq_slices, *states, *inner_params)
        if not isinstance(new_states, (list, tuple)):
            new_states = [new_states]
        new_states = list(new_states)
        if len(new_states) != n_state:
            raise ValueError(f"recurrent_scan: step returned {len(new_states)} states, expected {n_state}")
        if mask is not None:
            mask_t = args[n_seq]
            new_states = [carry_masked(pt.switch, mask_t, new, old, axis) for new, old, axis in zip(new_states, states, batch_axes, strict=True)]
        # Keep each state's type identical to its initial state's, which scan requires.
        return [pt.specify_shape(new, old.type.shape) if new.type != old.type else new for new, old in zip(new_states, states, strict=True)]

    def run(seqs, states, go_backwards=False, truncate=-1):
        return scan(
            inner,
            sequences=seqs,
            outputs_info=states,
            non_sequences=params,
            go_backwards=go_backwards,
            truncate_gradient=truncate,
            strict=True,
            return_list=True,
            name=name,
        )

    steps = sequences[0].type.shape[0] if sequences else None
    if truncate_gradient != -1 and steps is not None and truncate_gradient < steps:
        # split in scan order (reversed for backward), see truncated_run
        ordered = [seq[::-1] for seq in sequences] if backward else sequences
        outputs = truncated_run(
            lambda start, stop, states: run([seq[start:stop] for seq in ordered], states),
            steps,
            truncate_gradient,
            initial_states,
        )
    else:
        outputs = run(sequences, initial_states, backward, truncate_gradient)
    final = [out[-1] for out in outputs]
    if backward:
        outputs = [out[::-1] for out in outputs]
    return outputs, final

