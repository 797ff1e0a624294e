"""gzip + pickle, the Theano-era weight format (``util.gpickle``).

Pickle executes code on load: only open files you trust. The checkpoint format in
``dandelion.util.checkpoint`` is the safe choice for new work.
"""

from __future__ import annotations

import gzip
import pickle


def dump(data, filename, compresslevel=9):
    with gzip.open(filename, "wb", compresslevel=compresslevel) as file:
        pickle.dump(data, file, protocol=pickle.HIGHEST_PROTOCOL)


def load(filename):
    with gzip.open(filename, "rb") as file:
        # Files written under Python 2 by the old library hold byte strings.
        return pickle.load(file, encoding="latin1")
