"""Network modules: ``forward`` builds the training graph, ``predict`` the inference graph."""

from dandelion.module.attention import MultiHeadAttention
from dandelion.module.base import Module, ModuleDict, ModuleList
from dandelion.module.batchnorm import BatchNorm
from dandelion.module.bidirectional import Bidirectional
from dandelion.module.center import Center
from dandelion.module.chaincrf import ChainCRF
from dandelion.module.conv import Conv2D, ConvTransposed2D
from dandelion.module.conv1d import Conv1D
from dandelion.module.dense import Dense
from dandelion.module.dropout import Dropout
from dandelion.module.embedding import Embedding
from dandelion.module.groupnorm import GroupNorm
from dandelion.module.layernorm import LayerNorm, RMSNorm
from dandelion.module.positional import LearnedPositionalEmbedding, SinusoidalPositionalEmbedding
from dandelion.module.recurrent import GRU, LSTM, LSTM2D, GRUCell, LSTMCell
from dandelion.module.sequential import Sequential
from dandelion.module.substitution import functional_call
from dandelion.module.transformer import TransformerEncoder, TransformerEncoderLayer

__all__ = ["Module", "ModuleList", "ModuleDict", "functional_call", "Dense", "Dropout", "Embedding", "Sequential", "LSTM", "GRU", "LSTMCell", "GRUCell", "LSTM2D", "BatchNorm", "GroupNorm", "Center", "ChainCRF", "Conv2D", "ConvTransposed2D"]
__all__ += ["Bidirectional", "Conv1D", "LayerNorm", "RMSNorm", "MultiHeadAttention", "TransformerEncoder", "TransformerEncoderLayer"]
__all__ += ["LearnedPositionalEmbedding", "SinusoidalPositionalEmbedding"]
