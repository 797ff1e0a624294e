"""The Theano-era "uneven" initialisation of input weights for several input parts."""

from __future__ import annotations

import numpy as np


def input_weight_spec(initializer, parts, columns):
    """What to register for a (sum(parts), columns) input weight.

    With several parts and an initializer, each block is sampled for its own fan-in and
    divided by the number of parts: a layer fed by a concatenation (say both directions
    of a bidirectional LSTM) then starts with the magnitude of a single input. Arrays and
    shared variables given by the user are returned untouched.
    """
    if len(parts) == 1 or not callable(initializer):
        return initializer
    blocks = [np.asarray(initializer((rows, columns))) / len(parts) for rows in parts]
    return np.concatenate(blocks, axis=0).astype(blocks[0].dtype)
