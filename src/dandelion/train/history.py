"""Per-epoch values of every metric of a ``fit``, and their learning curves."""

from __future__ import annotations

import os

VALIDATION_PREFIX = "val_"


class History:
    """Every metric of every finished epoch.

    ``history["loss"]`` is the list of the training loss per epoch, ``history["val_loss"]``
    that of the evaluation; ``history.epochs`` the 1-based epoch numbers.
    """

    def __init__(self, epochs=None, metrics=None):
        self.epochs = list(epochs or [])
        self.metrics = {name: list(values) for name, values in (metrics or {}).items()}

    def append(self, epoch, metrics):
        """Record ``metrics`` ({name: float}) of epoch ``epoch`` (1-based)."""
        for name in metrics:
            if name not in self.metrics:
                # A metric first seen later has no value for the earlier epochs.
                self.metrics[name] = [float("nan")] * len(self.epochs)
        self.epochs.append(int(epoch))
        for name, values in self.metrics.items():
            values.append(float(metrics.get(name, float("nan"))))

    def __getitem__(self, name):
        return self.metrics[name]

    def __contains__(self, name):
        return name in self.metrics

    def __len__(self):
        return len(self.epochs)

    def __eq__(self, other):
        return isinstance(other, History) and self.to_dict() == other.to_dict()

    def __repr__(self):
        return f"History({len(self)} epochs: {', '.join(self.metrics)})"

    def to_dict(self):
        """JSON-like form, as checkpoints store it."""
        return {"epochs": list(self.epochs), "metrics": {name: list(v) for name, v in self.metrics.items()}}

    @classmethod
    def from_dict(cls, state):
        return cls(state["epochs"], state["metrics"])

    def curves(self):
        """[(panel name, [(label, metric name), ...]), ...]: training and evaluation of one
        quantity share a panel, in the order the metrics first appeared."""
        panels = {}
        for name in self.metrics:
            base = name[len(VALIDATION_PREFIX) :] if name.startswith(VALIDATION_PREFIX) else name
            label = "validation" if name.startswith(VALIDATION_PREFIX) else "training"
            panels.setdefault(base, []).append((label, name))
        return list(panels.items())

    def plot(self, path=None, dpi=100):
        """Learning curves: one panel per quantity (loss, accuracy, ...), training and
        validation curves against the epoch.

        Parameters
        ----------
        path : str or os.PathLike, optional
            Where to save the figure; the format follows the extension (``curves.png``).
        dpi : int

        Returns
        -------
        matplotlib.figure.Figure
            Made without pyplot, so no window opens and no global figure is left open.

        Raises
        ------
        ImportError
            matplotlib is not installed (``pip install "dandelion[plot]"``).
        """
        try:
            from matplotlib.figure import Figure
            from matplotlib.ticker import MaxNLocator
        except ImportError as error:
            raise ImportError('History.plot needs matplotlib: pip install "dandelion[plot]"') from error
        panels = self.curves()
        if not panels:
            raise ValueError("History.plot: the history is empty; train at least one epoch first")
        figure = Figure(figsize=(4.5 * len(panels), 3.5), dpi=dpi, layout="constrained")
        for axes, (base, lines) in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels):
            for label, name in lines:
                axes.plot(self.epochs, self.metrics[name], marker="o", markersize=3, label=label)
            axes.set_xlabel("epoch")
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
            axes.set_title(base)
            axes.grid(alpha=0.3)
            axes.legend()
        if path is not None:
            figure.savefig(os.fspath(path))
        return figure
