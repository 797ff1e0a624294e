"""``fit``: the loop around compiled training and evaluation functions."""

from __future__ import annotations

import itertools
import os

import numpy as np

from dandelion.train.history import VALIDATION_PREFIX, History
from dandelion.train.progress import make_progress
from dandelion.util.checkpoint import load_checkpoint, save_checkpoint

STATE_KEY = "fit"
_STATE_VERSION = 1


class _Source:
    """Batches of one epoch from an ``ArrayBatches``, a function ``epoch -> iterable``
    or a re-iterable (a list of batches, a data-loader object)."""

    def __init__(self, batches, where, epochs):
        self.length = len(batches) if hasattr(batches, "__len__") else None
        if callable(getattr(batches, "epoch", None)) and callable(getattr(batches, "batch_length", None)):
            self._epoch, self.batch_length = batches.epoch, batches.batch_length
            return
        self.batch_length = _leading_length
        if callable(batches):
            self._epoch = lambda epoch, skip: itertools.islice(iter(batches(epoch)), skip, None)
            return
        try:
            iterator = iter(batches)
        except TypeError:
            raise TypeError(
                f"fit: {where} must be an ArrayBatches, an iterable of batches or a function epoch -> batches, "
                f"got {type(batches).__name__}"
            ) from None
        if iterator is batches and epochs > 1:
            raise TypeError(
                f"fit: {where} is a one-shot iterator ({type(batches).__name__}) but {epochs} epochs need it again; "
                "pass a list, an ArrayBatches, an object whose __iter__ starts over, or a function epoch -> batches"
            )
        self._epoch = lambda epoch, skip: itertools.islice(iter(batches), skip, None)

    def epoch(self, epoch, skip=0):
        return self._epoch(epoch, skip)


def _leading_length(batch):
    first = batch[0] if isinstance(batch, (tuple, list)) else batch
    shape = np.shape(first)
    return int(shape[0]) if shape else 1


def _names(names, where):
    names = [names] if isinstance(names, str) else list(names)
    if not names or not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise ValueError(f"fit: {where} must be distinct non-empty names, one per output, got {names!r}")
    return names


def _call(function, batch, names, where):
    """Call ``function`` on ``batch``; {name: float} of its scalar outputs."""
    result = function(*batch) if isinstance(batch, (tuple, list)) else function(batch)
    values = list(result) if isinstance(result, (tuple, list)) else [result]
    if len(values) != len(names):
        raise ValueError(
            f"fit: {where} returned {len(values)} outputs but its names are {names} ({len(names)}); "
            "give one name per output"
        )
    metrics = {}
    for name, value in zip(names, values):
        value = np.asarray(value)
        if value.size != 1:
            raise ValueError(f"fit: {where}'s output {name!r} has shape {value.shape}; metrics must be scalars")
        metrics[name] = float(value.reshape(()))
    return metrics


class _Mean:
    """Means weighted by batch size, kept as sums so that a checkpoint resumes them exactly."""

    def __init__(self, count=0, sums=None):
        self.count, self.sums = count, dict(sums or {})

    def add(self, metrics, weight):
        self.count += weight
        for name, value in metrics.items():
            self.sums[name] = self.sums.get(name, 0.0) + value * weight

    def means(self):
        return {name: total / self.count for name, total in self.sums.items()}


class Trainer:
    """The state of one ``fit`` run: what callbacks see and checkpoints save.

    Attributes
    ----------
    epoch : int
        Epochs finished (the running epoch is ``epoch + 1``, 1-based).
    step : int
        Training steps finished in the running epoch.
    global_step : int
        Training steps finished in the whole run.
    history : History
    stop_training : bool
        Set by a callback to stop after the running epoch.
    model, updates
        As given to ``fit``; what checkpoints save.
    metric_names : list of str
        The training outputs' names, then ``'val_'`` + the evaluation outputs' names.

    See ``fit`` for the parameters.
    """

    def __init__(self, train_fn, batches, epochs, *, outputs="loss", eval_fn=None, eval_batches=None,
                 eval_outputs=None, callbacks=(), model=None, updates=None, progress="auto", stream=None):
        if not callable(train_fn):
            raise TypeError(f"fit: train_fn must be callable (a compiled function), got {type(train_fn).__name__}")
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"fit: epochs must be a non-negative integer, got {epochs!r}")
        if (eval_fn is None) != (eval_batches is None):
            raise ValueError("fit: eval_fn and eval_batches go together; give both or neither")
        if eval_fn is not None and not callable(eval_fn):
            raise TypeError(f"fit: eval_fn must be callable, got {type(eval_fn).__name__}")
        self.train_fn, self.eval_fn, self.epochs = train_fn, eval_fn, int(epochs)
        self.outputs = _names(outputs, "outputs")
        self.eval_outputs = None if eval_fn is None else _names(
            self.outputs if eval_outputs is None else eval_outputs, "eval_outputs")
        self.batches = _Source(batches, "batches", self.epochs)
        self.eval_batches = None if eval_batches is None else _Source(eval_batches, "eval_batches", self.epochs)
        self.callbacks = sorted(callbacks, key=lambda callback: getattr(callback, "order", 0))
        self.model, self.updates = model, updates
        self.progress = make_progress(progress, stream)
        self.epoch = self.step = self.global_step = 0
        self.history = History()
        self.stop_training = False
        self._running = _Mean()

    @property
    def metric_names(self):
        names = list(self.outputs)
        if self.eval_outputs is not None:
            names += [VALIDATION_PREFIX + name for name in self.eval_outputs]
        return names

    # ------------------------------------------------------------------ checkpoints
    def state(self):
        """The run's position, JSON-like: what ``resume`` needs besides the weights."""
        return {
            "version": _STATE_VERSION,
            "epoch": self.epoch,
            "step": self.step,
            "global_step": self.global_step,
            "batches_per_epoch": self.batches.length,
            "running": {"count": self._running.count, "sums": dict(self._running.sums)},
            "history": self.history.to_dict(),
            "callbacks": [{"type": type(c).__name__, "state": c.state()} for c in self.callbacks],
        }

    def save(self, path, user_data=None):
        """``save_checkpoint`` of the model, the optimizer and the run's position."""
        data = dict(user_data or {})
        data[STATE_KEY] = self.state()
        save_checkpoint(path, self.model, self.updates, user_data=data)

    def resume(self, path):
        """Load a checkpoint written by ``save`` (weights, optimizer, position)."""
        user_data = load_checkpoint(path, self.model, self.updates)
        state = user_data.get(STATE_KEY) if isinstance(user_data, dict) else None
        if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
            raise ValueError(
                f"fit: resume={os.fspath(path)!r} holds no fit state; write it with a Checkpoint callback"
            )
        saved_length = state["batches_per_epoch"]
        if None not in (saved_length, self.batches.length) and saved_length != self.batches.length:
            # Skipping the batches already done would skip the wrong samples.
            raise ValueError(
                f"fit: resume={os.fspath(path)!r} was written with {saved_length} batches an epoch, "
                f"these batches have {self.batches.length}; resume with the same data and batch_size"
            )
        self.epoch, self.step, self.global_step = state["epoch"], state["step"], state["global_step"]
        self._running = _Mean(state["running"]["count"], state["running"]["sums"])
        self.history = History.from_dict(state["history"])
        # A callback list changed since the checkpoint keeps the state of the callbacks still in place.
        for callback, saved in zip(self.callbacks, state["callbacks"]):
            if saved["type"] == type(callback).__name__:
                callback.load_state(saved["state"])

    # ------------------------------------------------------------------------ loop
    def fit(self, resume=None):
        """Train until ``epochs`` epochs are done or a callback stops; returns the history."""
        if resume is not None:
            self.resume(resume)
        for callback in self.callbacks:
            callback.on_train_begin(self)
        try:
            while self.epoch < self.epochs and not self.stop_training:
                self._run_epoch()
        except BaseException as error:
            self.progress.abort()
            if isinstance(error, KeyboardInterrupt):
                for callback in self.callbacks:
                    callback.on_interrupt(self)
            raise
        for callback in self.callbacks:
            callback.on_train_end(self)
        return self.history

    def _run_epoch(self):
        self.progress.start_epoch(self.epoch, self.epochs, self.batches.length, done=self.step)
        for batch in self.batches.epoch(self.epoch, skip=self.step):
            outputs = _call(self.train_fn, batch, self.outputs, "train_fn")
            self._running.add(outputs, self.batches.batch_length(batch))
            self.step += 1
            self.global_step += 1
            self.progress.step(self._running.means())
            for callback in self.callbacks:
                callback.on_step_end(self, outputs)
        if self._running.count == 0:
            raise ValueError(f"fit: batches gave no batch in epoch {self.epoch + 1}")
        metrics = self._running.means()
        if self.eval_fn is not None:
            metrics.update((VALIDATION_PREFIX + name, value) for name, value in self.evaluate().items())
        self.epoch += 1
        self.step = 0
        self._running = _Mean()
        self.history.append(self.epoch, metrics)
        self.progress.end_epoch(metrics)
        for callback in self.callbacks:
            callback.on_epoch_end(self, metrics)

    def evaluate(self):
        """{name: mean over the evaluation batches (weighted by batch size)} of ``eval_fn``."""
        mean = _Mean()
        for batch in self.eval_batches.epoch(self.epoch):
            mean.add(_call(self.eval_fn, batch, self.eval_outputs, "eval_fn"), self.eval_batches.batch_length(batch))
        if mean.count == 0:
            raise ValueError("fit: eval_batches gave no batch")
        return mean.means()


def fit(train_fn, batches, epochs, *, outputs="loss", eval_fn=None, eval_batches=None, eval_outputs=None,
        callbacks=(), model=None, updates=None, resume=None, progress="auto", stream=None):
    """Train with a compiled function for ``epochs`` epochs; returns the ``History``.

    Each step calls ``train_fn(*batch)`` (its updates change the parameters); each epoch
    ends with the mean of every output over the epoch's batches, weighted by batch size,
    and, with ``eval_fn``, the same means of ``eval_fn`` over ``eval_batches`` (named
    ``'val_' + name``). Nothing is hidden: the functions are yours, compiled for any
    backend.

    Parameters
    ----------
    train_fn : callable
        Typically ``dandelion.function(inputs, outputs, updates=...)``; returns one scalar
        or a list of scalars (loss, accuracy, ...).
    batches : ArrayBatches, iterable of batches, or callable
        A batch is a tuple of arrays (passed as ``train_fn``'s arguments) or one array.
        An iterable is iterated once per epoch (a list, or an object whose ``__iter__``
        reads data from disk); a callable is called as ``batches(epoch)`` (0-based) and
        returns that epoch's iterable. Resuming in the middle of an epoch skips the
        batches already done, which is exact when the data order is reproducible
        (``ArrayBatches`` with a seed is).
    epochs : int
        Epochs in total, those of a resumed checkpoint included.
    outputs : str or list of str
        Names of ``train_fn``'s outputs, in order.
    eval_fn : callable, optional
        Compiled evaluation function (``model.predict`` graph), called on each batch of
        ``eval_batches`` after every epoch.
    eval_batches : ArrayBatches or iterable of batches, optional
    eval_outputs : str or list of str, optional
        Names of ``eval_fn``'s outputs; default ``outputs``.
    callbacks : list of Callback
        E.g. ``EarlyStopping``, ``Checkpoint``.
    model : Module, optional
    updates : dict, optional
        The updates ``train_fn`` was compiled with; checkpoints save and restore the
        optimizer state found in them.
    resume : str or os.PathLike, optional
        A checkpoint written by a ``Checkpoint`` callback: weights, optimizer state,
        dropout streams, epoch, step, data position, history and callback state are
        restored, and the run continues as the uninterrupted run would have.
    progress : {'auto', 'bar', 'epoch', 'none'} or bool
        'auto': a bar (tqdm when installed) on a terminal, one line per epoch otherwise
        (a log file, CI); 'none' or False prints nothing.
    stream : file, optional
        Where progress goes; default ``sys.stderr``.

    Returns
    -------
    History

    Raises
    ------
    KeyboardInterrupt
        After every callback's ``on_interrupt`` (a ``Checkpoint`` writes its file).

    Examples
    --------
    >>> import numpy as np, pytensor, pytensor.tensor as pt
    >>> from dandelion.train import ArrayBatches, fit
    >>> w = pytensor.shared(np.zeros(2), name="w")
    >>> x, y = pt.dmatrix("x"), pt.dvector("y")
    >>> loss = pt.mean((x @ w - y) ** 2)
    >>> train = pytensor.function([x, y], loss, updates={w: w - 0.1 * pytensor.grad(loss, w)})
    >>> xs = np.random.default_rng(0).normal(size=(64, 2)); ys = xs @ np.array([1.0, -2.0])
    >>> history = fit(train, ArrayBatches(xs, ys, batch_size=16), epochs=30, progress=False)
    >>> bool(history["loss"][-1] < 1e-3 * history["loss"][0])
    True
    """
    trainer = Trainer(train_fn, batches, epochs, outputs=outputs, eval_fn=eval_fn, eval_batches=eval_batches,
                      eval_outputs=eval_outputs, callbacks=callbacks, model=model, updates=updates,
                      progress=progress, stream=stream)
    return trainer.fit(resume=resume)
