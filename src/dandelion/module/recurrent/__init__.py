"""Recurrent modules on one scan core: LSTM, GRU, their cells, and LSTM2D."""

from dandelion.module.recurrent.cells import GRUCell, LSTMCell
from dandelion.module.recurrent.gru import GRU
from dandelion.module.recurrent.lstm import LSTM
from dandelion.module.recurrent.lstm2d import LSTM2D
from dandelion.module.recurrent.scan_core import recurrent_scan

__all__ = ["LSTM", "GRU", "LSTMCell", "GRUCell", "LSTM2D", "recurrent_scan"]
