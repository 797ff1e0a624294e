"""Callbacks of ``fit``: hooks that see the ``Trainer`` at a few fixed points.

A callback that keeps state across epochs returns it from ``state()`` (JSON-like) and
takes it back in ``load_state``, so a checkpoint resumes it with the run.
"""

from __future__ import annotations

import math
import os

_MODES = ("min", "max")


class Callback:
    """Base class; override the hooks you need. Each receives the running ``Trainer``
    (``epoch``, ``step``, ``global_step``, ``history``, ``stop_training``, ...).

    Callbacks run in ascending ``order``, then as listed. ``Checkpoint`` has a high
    ``order`` so that it saves the other callbacks' state of the same epoch.
    """

    order = 0

    def on_train_begin(self, trainer):
        """Before the first step, after a resume's state is loaded; check arguments here."""

    def on_step_end(self, trainer, outputs):
        """After every training step; ``outputs`` is {name: float} of that step."""

    def on_epoch_end(self, trainer, metrics):
        """After the epoch's evaluation; ``metrics`` is {name: float}, already in the history."""

    def on_interrupt(self, trainer):
        """Ctrl-C (KeyboardInterrupt) stopped the run; it propagates after every callback ran."""

    def on_train_end(self, trainer):
        """After the last epoch, or when ``stop_training`` was set."""

    def state(self):
        return {}

    def load_state(self, state):
        pass


class _Monitor:
    """Best value so far of one metric; 'better' means by more than ``min_delta``."""

    def __init__(self, where, monitor, mode, min_delta=0.0):
        if mode not in _MODES:
            raise ValueError(f"{where}: mode must be one of {_MODES}, got {mode!r}")
        self.where, self.monitor, self.mode, self.min_delta = where, monitor, mode, float(min_delta)
        self.best = None

    def check(self, trainer):
        if self.monitor not in trainer.metric_names:
            raise ValueError(
                f"{self.where}: monitor={self.monitor!r} is never produced; this fit's metrics are "
                f"{list(trainer.metric_names)} (evaluation metrics are 'val_' + eval_outputs)"
            )

    def improved(self, value):
        """Whether ``value`` beats the best so far (and becomes the best)."""
        if math.isnan(value):
            return False
        better = self.best is None or (
            value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta
        )
        if better:
            self.best = value
        return better


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs.

    Parameters
    ----------
    monitor : str
        A metric name of the fit: one of ``outputs`` or ``'val_' + eval_outputs``.
    mode : {'min', 'max'}
    patience : int
        The run stops at the end of the ``patience``-th epoch in a row without improvement.
    min_delta : float
        Smaller changes do not count as improvement.
    """

    def __init__(self, monitor="val_loss", mode="min", patience=3, min_delta=0.0):
        self._best = _Monitor("EarlyStopping", monitor, mode, min_delta)
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"EarlyStopping: patience must be a positive integer, got {patience!r}")
        self.patience = patience
        self.wait = 0
        self.stopped_epoch = None

    @property
    def best(self):
        return self._best.best

    def on_train_begin(self, trainer):
        self._best.check(trainer)

    def on_epoch_end(self, trainer, metrics):
        if self._best.improved(metrics[self._best.monitor]):
            self.wait = 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            trainer.stop_training = True
            self.stopped_epoch = trainer.epoch

    def state(self):
        return {"best": self._best.best, "wait": self.wait}

    def load_state(self, state):
        self._best.best, self.wait = state["best"], state["wait"]


class Checkpoint(Callback):
    """Write resumable checkpoints with ``dandelion.util.save_checkpoint``.

    The file holds the model's weights, the optimizer's state, the dropout streams and
    the run's position (epoch, step, history, callbacks), so ``fit(..., resume=path)``
    continues exactly. On Ctrl-C it is written before the run stops.

    Parameters
    ----------
    path : str or os.PathLike
        Written at the end of every ``every_epochs``-th epoch, after every
        ``every_steps``-th step and on Ctrl-C.
    every_epochs : int or None
    every_steps : int or None
        Counted over the whole run (``trainer.global_step``).
    monitor : str, optional
        With ``best_path``: a metric whose best value so far is kept in ``best_path``.
    mode : {'min', 'max'}
    best_path : str or os.PathLike, optional
    user_data : JSON-like dict, optional
        Stored next to the run's state (``read_checkpoint(path)["user_data"]``).
    """

    order = 100

    def __init__(self, path, every_epochs=1, every_steps=None, monitor=None, mode="min", best_path=None,
                 user_data=None):
        for name, value in (("every_epochs", every_epochs), ("every_steps", every_steps)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"Checkpoint: {name} must be a positive integer or None, got {value!r}")
        if (monitor is None) != (best_path is None):
            raise ValueError("Checkpoint: monitor and best_path go together; give both or neither")
        self.path, self.best_path = os.fspath(path), None if best_path is None else os.fspath(best_path)
        self.every_epochs, self.every_steps = every_epochs, every_steps
        self._best = None if monitor is None else _Monitor("Checkpoint", monitor, mode)
        self.user_data = dict(user_data or {})

    def on_train_begin(self, trainer):
        if trainer.model is None:
            raise ValueError("Checkpoint: fit needs model= (and updates=) so that the checkpoint holds the weights")
        if self._best is not None:
            self._best.check(trainer)

    def on_step_end(self, trainer, outputs):
        if self.every_steps and trainer.global_step % self.every_steps == 0:
            trainer.save(self.path, self.user_data)

    def on_epoch_end(self, trainer, metrics):
        if self._best is not None and self._best.improved(metrics[self._best.monitor]):
            trainer.save(self.best_path, self.user_data)
        if self.every_epochs and trainer.epoch % self.every_epochs == 0:
            trainer.save(self.path, self.user_data)

    def on_interrupt(self, trainer):
        trainer.save(self.path, self.user_data)

    def state(self):
        return {"best": None if self._best is None else self._best.best}

    def load_state(self, state):
        if self._best is not None:
            self._best.best = state["best"]
