"""Network modules: ``forward`` builds the training graph, ``predict`` the inference graph."""

from dandelion.module.base import Module
from dandelion.module.dense import Dense
from dandelion.module.dropout import Dropout
from dandelion.module.embedding import Embedding
from dandelion.module.sequential import Sequential

__all__ = ["Module", "Dense", "Dropout", "Embedding", "Sequential"]
