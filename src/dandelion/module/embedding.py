"""``Embedding``: a lookup table of learned vectors."""

from __future__ import annotations

import pytensor.tensor as pt

from dandelion import initialization as init
from dandelion.module.base import Module
from dandelion.ops.index_bounds import check_index_bounds
from dandelion.util.graph import shape_of


class Embedding(Module):
    """Word/character embedding.

    Parameters
    ----------
    num_embeddings : int
    embedding_dim : int
    W : initializer, ndarray or shared variable (num_embeddings, embedding_dim)

    ``forward(index_input, check_bounds=True)``: integer tensor of any shape ->
    ``index_input.shape + (embedding_dim,)``. An index outside ``[0, num_embeddings)``
    raises ``IndexError`` when the graph runs, on every backend (JAX would otherwise
    clamp it to the last row; there the error comes from a host callback, as a
    ``JaxRuntimeError`` carrying the message); ``check_bounds=False`` skips the check.
    """

    def __init__(self, num_embeddings, embedding_dim, W=init.Normal(), name=None):
        super().__init__(name=name)
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        self.W = self.register_param(W, shape=(self.num_embeddings, self.embedding_dim))

    def forward(self, index_input, check_bounds=True):
        index_input = pt.as_tensor_variable(index_input)
        if index_input.dtype[:3] not in ("int", "uin"):
            raise TypeError(f"Embedding: index_input must be an integer tensor, got dtype {index_input.dtype}")
        if check_bounds:
            index_input = check_index_bounds(
                index_input,
                self.num_embeddings,
                f"Embedding({self.name!r}): index_input holds an index outside [0, num_embeddings = {self.num_embeddings})",
            )
        # Gather from the flattened index and reshape with static lengths: JAX cannot
        # reshape to the symbolic shape that indexing with an N-d index produces.
        rows = self.W[index_input.flatten()]
        return rows.reshape((*shape_of(index_input), self.embedding_dim))
