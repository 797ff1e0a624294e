"""``Embedding``: a lookup table of learned vectors."""

from __future__ import annotations

import pytensor.tensor as pt

from dandelion import initialization as init
from dandelion.module.base import Module
from dandelion.util.graph import shape_of


class Embedding(Module):
    """Word/character embedding.

    Parameters
    ----------
    num_embeddings : int
    embedding_dim : int
    W : initializer, ndarray or shared variable (num_embeddings, embedding_dim)

    ``forward(index_input)``: integer tensor of any shape -> ``index_input.shape + (embedding_dim,)``.
    """

    def __init__(self, num_embeddings, embedding_dim, W=init.Normal(), name=None):
        super().__init__(name=name)
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        self.W = self.register_param(W, shape=(self.num_embeddings, self.embedding_dim))

    def forward(self, index_input):
        index_input = pt.as_tensor_variable(index_input)
        if index_input.dtype[:3] not in ("int", "uin"):
            raise TypeError(f"Embedding: index_input must be an integer tensor, got dtype {index_input.dtype}")
        # Gather from the flattened index and reshape with static lengths: JAX cannot
        # reshape to the symbolic shape that indexing with an N-d index produces.
        rows = self.W[index_input.flatten()]
        return rows.reshape((*shape_of(index_input), self.embedding_dim))
