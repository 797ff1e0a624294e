"""dandelion.train.fit: exact resume on every backend, Ctrl-C, early stopping, partial
batches, progress output, learning curves and bad input."""

from __future__ import annotations

import doctest
import io
import sys

import numpy as np
import pytensor.tensor as pt
import pytest

import dandelion
import dandelion.train.batches
import dandelion.train.loop
from dandelion.activation import relu, softmax
from dandelion.module import Dense, Dropout, Module
from dandelion.objective import categorical_crossentropy
from dandelion.train import ArrayBatches, Callback, Checkpoint, EarlyStopping, History, fit
from dandelion.train.loop import STATE_KEY
from dandelion.update import adam, optimizer_state
from dandelion.util import load_checkpoint, read_checkpoint, save_checkpoint

BATCH, FEATURES, CLASSES = 8, 6, 3


class SmallMLP(Module):
    def __init__(self):
        super().__init__(name="mlp")
        np.random.seed(5)
        self.hidden = Dense(FEATURES, 16)
        self.dropout = Dropout(seed=3)
        self.output = Dense(16, CLASSES)

    def forward(self, x):
        return softmax(self.output.forward(self.dropout.forward(relu(self.hidden.forward(x)), p=0.3)))

    def predict(self, x):
        return softmax(self.output.predict(relu(self.hidden.predict(x))))


def _loss_accuracy(probabilities, labels):
    return [categorical_crossentropy(probabilities, labels).mean(),
            pt.mean(pt.eq(pt.argmax(probabilities, axis=-1), labels))]


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(44, FEATURES)).astype("float32")  # 5 full batches and a dropped 4
    y = (x[:, 0] > 0).astype("int32") + (x[:, 1] > 0.5).astype("int32")
    return x, y


_RUNS = {}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fit")


def _run_parts(backend, folder):
    """Model, updates, compiled functions and the initial state, once per backend."""
    if backend not in _RUNS:
        model = SmallMLP()
        x, y = pt.tensor("x", shape=(BATCH, FEATURES), dtype="float32"), pt.tensor("y", shape=(BATCH,), dtype="int32")
        train_outputs = _loss_accuracy(model.forward(x), y)
        updates = adam(train_outputs[0], model.collect_params(), learning_rate=0.01)
        updates.update(model.collect_self_updates())
        train = dandelion.function([x, y], train_outputs, updates=updates, mode=backend)
        ex, ey = pt.tensor("ex", shape=(44, FEATURES), dtype="float32"), pt.tensor("ey", shape=(44,), dtype="int32")
        evaluate = dandelion.function([ex, ey], _loss_accuracy(model.predict(ex), ey), mode=backend)
        initial = folder / f"initial-{backend}.ckpt"
        save_checkpoint(initial, model, updates)
        _RUNS[backend] = model, updates, train, evaluate, initial
    model, updates, train, evaluate, initial = _RUNS[backend]
    load_checkpoint(initial, model, updates)  # every test starts from the same state
    return model, updates, train, evaluate


def _fit(backend, folder, epochs=3, train=None, callbacks=(), resume=None):
    model, updates, compiled_train, evaluate = _run_parts(backend, folder)
    x, y = _data()
    history = fit(
        train or compiled_train,
        ArrayBatches(x, y, batch_size=BATCH, seed=7, drop_last=True),
        epochs,
        outputs=["loss", "accuracy"],
        eval_fn=evaluate,
        eval_batches=[(x, y)],
        model=model,
        updates=updates,
        callbacks=[EarlyStopping("val_loss", patience=2), *callbacks],
        resume=resume,
        progress=False,
    )
    state = [value.copy() for value, _ in model.get_weights()]
    state += [np.asarray(v.get_value()).copy() for v in optimizer_state(updates).values()]
    return history, state


class _InterruptAt(Callback):
    def __init__(self, global_step):
        self.global_step = global_step

    def on_step_end(self, trainer, outputs):
        if trainer.global_step == self.global_step:
            raise KeyboardInterrupt


def _interrupting(function, calls):
    """``function``, but Ctrl-C arrives during its ``calls``-th call."""
    count = [0]

    def train(*batch):
        count[0] += 1
        if count[0] == calls:
            raise KeyboardInterrupt
        return function(*batch)

    return train


@pytest.mark.parametrize("where", ["callback", "train_fn"])
def test_resumed_fit_matches_uninterrupted_run(backend, folder, where):
    reference_history, reference_state = _fit(backend, folder)
    assert len(reference_history) == 3 and reference_history["loss"][2] < reference_history["loss"][0]

    path = folder / f"interrupted-{backend}-{where}.ckpt"
    checkpoint = Checkpoint(path, every_epochs=None, every_steps=4)
    _, _, train, _ = _run_parts(backend, folder)
    with pytest.raises(KeyboardInterrupt):  # in epoch 2 of 3, 5 steps an epoch
        if where == "callback":
            _fit(backend, folder, callbacks=[checkpoint, _InterruptAt(7)])
        else:
            _fit(backend, folder, train=_interrupting(train, 7), callbacks=[checkpoint])
    saved = read_checkpoint(path)["user_data"][STATE_KEY]
    # Ctrl-C wrote the checkpoint (the every-4-steps one was at step 4): after 7 steps,
    # or 6 when the 7th call was the one interrupted.
    done = 7 if where == "callback" else 6
    assert (saved["epoch"], saved["step"], saved["global_step"]) == (1, done - 5, done)
    assert saved["history"]["epochs"] == [1]

    history, state = _fit(backend, folder, resume=path)  # _fit reset the weights to the initial ones first
    assert history == reference_history
    for got, expected in zip(state, reference_state, strict=True):
        np.testing.assert_array_equal(got, expected)


# ------------------------------------------------------------- constructed sequences
def _scripted_fit(val_losses, epochs, callbacks, **kwargs):
    """A fit whose evaluation reports ``val_losses`` epoch by epoch."""
    epoch = iter(range(len(val_losses)))
    return fit(
        lambda x: np.float32(0.5),
        [(np.zeros(2),)],
        epochs,
        eval_fn=lambda x: val_losses[next(epoch)],
        eval_batches=[(np.zeros(2),)],
        callbacks=callbacks,
        progress=False,
        **kwargs,
    )


def test_early_stopping_stops_at_the_right_epoch():
    #           best at 3 ... then 3 epochs without beating 3.0 by 0.1 -> stop after epoch 6
    sequence = [5.0, 4.0, 3.0, 3.5, 2.95, 3.1, 1.0, 0.5]
    stopper = EarlyStopping("val_loss", patience=3, min_delta=0.1)
    history = _scripted_fit(sequence, 8, [stopper])
    assert history.epochs == [1, 2, 3, 4, 5, 6] and history["val_loss"] == sequence[:6]
    assert stopper.stopped_epoch == 6 and stopper.best == 3.0

    rising = EarlyStopping("val_loss", mode="max", patience=1)
    assert len(_scripted_fit([1.0, 2.0, 2.0, 3.0], 4, [rising])) == 3  # 2.0 does not beat 2.0


class _Tiny(Module):
    def __init__(self):
        super().__init__(name="tiny")
        self.d = Dense(2, 2)


def test_checkpoint_keeps_the_best_epoch(tmp_path):
    best = tmp_path / "best.ckpt"
    checkpoint = Checkpoint(tmp_path / "last.ckpt", monitor="val_loss", best_path=best, user_data={"run": "a"})
    _scripted_fit([3.0, 1.0, 2.0, 1.5], 4, [checkpoint], model=_Tiny())
    user_data = read_checkpoint(best)["user_data"]
    assert user_data["run"] == "a" and user_data[STATE_KEY]["epoch"] == 2
    assert read_checkpoint(tmp_path / "last.ckpt")["user_data"][STATE_KEY]["epoch"] == 4


@pytest.mark.parametrize("drop_last", [False, True])
def test_last_partial_batch_both_ways(drop_last):
    values = np.arange(10, dtype="float64") ** 2
    batches = ArrayBatches(values, batch_size=4, seed=2, drop_last=drop_last)
    sizes = []

    def train(batch):
        sizes.append(len(batch))
        return batch.mean()

    history = fit(train, batches, 2, progress=False)
    assert sizes == ([4, 4, 2] if not drop_last else [4, 4]) * 2
    for epoch in range(2):
        used = batches.order(epoch)[: sum(sizes[:3] if not drop_last else sizes[:2])]
        # The epoch's loss is the mean over the samples it trained on.
        assert history["loss"][epoch] == pytest.approx(values[used].mean(), rel=1e-12)


def test_plain_iterables_and_epoch_functions():
    seen = []
    fit(lambda x: (seen.append(x.tolist()), 0.0)[1], lambda epoch: [np.array([epoch, epoch])], 3, progress=False)
    assert seen == [[0, 0], [1, 1], [2, 2]]
    one_shot = iter([np.zeros(1)])
    assert len(fit(lambda x: 0.0, one_shot, 1, progress=False)) == 1
    with pytest.raises(TypeError, match="fit: batches is a one-shot iterator .* but 2 epochs need it again"):
        fit(lambda x: 0.0, iter([np.zeros(1)]), 2, progress=False)


# ----------------------------------------------------------------- progress output
class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_is_one_line_per_epoch_off_a_terminal():
    stream = io.StringIO()
    x = np.arange(12.0)
    fit(lambda b: [b.mean(), b.max()], ArrayBatches(x, batch_size=4), 3, outputs=["loss", "peak"], stream=stream,
        eval_fn=lambda b: b.min(), eval_batches=[x], eval_outputs="low")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and "\r" not in stream.getvalue()
    for epoch, line in enumerate(lines, 1):
        assert line.startswith(f"epoch {epoch}/3: 3 steps, loss 5.5 peak ") and "val_low 0 " in line

    quiet = io.StringIO()
    fit(lambda b: b.mean(), ArrayBatches(x, batch_size=4), 2, stream=quiet, progress="none")
    assert quiet.getvalue() == ""

    terminal = _Terminal()
    fit(lambda b: b.mean(), ArrayBatches(x, batch_size=4), 2, stream=terminal)
    assert "\r" in terminal.getvalue() and "epoch 2/2" in terminal.getvalue()  # a bar, redrawn in place


def test_progress_bar_without_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # the import fails as if not installed
    terminal = _Terminal()
    fit(lambda b: b.mean(), ArrayBatches(np.arange(12.0), batch_size=4), 2, stream=terminal)
    finished = [line.rsplit("\r", 1)[-1] for line in terminal.getvalue().split("\n")[:-1]]
    assert len(finished) == 2 and finished[1].startswith("epoch 2/2: 3 steps, loss 5.5 ")
    assert terminal.getvalue().startswith("\repoch 1/2: 1/3 loss ")  # the line redrawn in place
    interrupted = _Terminal()
    with pytest.raises(KeyboardInterrupt):
        fit(lambda b: b.mean(), ArrayBatches(np.arange(12.0), batch_size=4), 2, stream=interrupted,
            callbacks=[_InterruptAt(2)])
    assert interrupted.getvalue().startswith("\repoch 1/2: 1/3 ") and interrupted.getvalue().endswith("\n")


# --------------------------------------------------------------------------- plots
def test_history_plot_is_a_png_with_one_curve_per_metric(tmp_path):
    image = pytest.importorskip("matplotlib.image", reason="the plot extra (matplotlib) is not installed")
    history = History()
    for epoch, (loss, acc) in enumerate([(1.0, 0.5), (0.6, 0.7), (0.4, 0.8)], 1):
        history.append(epoch, {"loss": loss, "accuracy": acc, "val_loss": loss + 0.1, "val_accuracy": acc - 0.1})
    path = tmp_path / "curves.png"
    figure = history.plot(path, dpi=50)
    with open(path, "rb") as file:
        assert file.read(8) == b"\x89PNG\r\n\x1a\n"
    pixels = image.imread(path)
    width, height = figure.get_size_inches() * 50
    assert pixels.shape[:2] == (round(height), round(width)) and pixels.std() > 0
    assert [axes.get_title() for axes in figure.axes] == ["loss", "accuracy"]
    curves = {(axes.get_title(), line.get_label()): list(line.get_ydata()) for axes in figure.axes
              for line in axes.get_lines()}
    assert curves == {
        ("loss", "training"): history["loss"],
        ("loss", "validation"): history["val_loss"],
        ("accuracy", "training"): history["accuracy"],
        ("accuracy", "validation"): history["val_accuracy"],
    }
    assert len(History([1, 2], {"loss": [2.0, 1.0]}).plot().axes[0].get_lines()) == 1


# ------------------------------------------------------------------------ bad input
def test_bad_input_names_the_argument():
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match=r"EarlyStopping: monitor='val_acc' is never produced; .*\['loss'\]"):
        fit(lambda b: 0.0, [x], 2, callbacks=[EarlyStopping("val_acc")], progress=False)
    with pytest.raises(ValueError, match=r"Checkpoint: monitor='accuracy' is never produced"):
        fit(lambda b: 0.0, [x], 2, model=_Tiny(), progress=False,
            callbacks=[Checkpoint("unused.ckpt", monitor="accuracy", best_path="unused-best.ckpt")])
    with pytest.raises(ValueError, match=r"fit: train_fn returned 2 outputs but its names are \['loss'\]"):
        fit(lambda b: [0.0, 1.0], [x], 1, progress=False)
    with pytest.raises(ValueError, match=r"fit: train_fn's output 'loss' has shape \(4, 2\)"):
        fit(lambda b: b, [x], 1, progress=False)
    with pytest.raises(ValueError, match="fit: progress must be one of"):
        fit(lambda b: 0.0, [x], 1, progress="loud")
    with pytest.raises(ValueError, match="fit: eval_fn and eval_batches go together"):
        fit(lambda b: 0.0, [x], 1, eval_fn=lambda b: 0.0)
    with pytest.raises(ValueError, match="Checkpoint: fit needs model="):
        fit(lambda b: 0.0, [x], 1, callbacks=[Checkpoint("unused.ckpt")], progress=False)


def test_resume_errors_name_the_argument(tmp_path):
    path = tmp_path / "run.ckpt"
    model = _Tiny()
    fit(lambda b: 0.0, ArrayBatches(np.zeros(8), batch_size=2), 1, model=model, callbacks=[Checkpoint(path)],
        progress=False)
    with pytest.raises(ValueError, match=r"fit: resume=.* was written with 4 batches an epoch, these batches have 2"):
        fit(lambda b: 0.0, ArrayBatches(np.zeros(8), batch_size=4), 2, model=model, resume=path, progress=False)
    plain = tmp_path / "plain.ckpt"
    save_checkpoint(plain, model)
    with pytest.raises(ValueError, match=r"fit: resume=.* holds no fit state"):
        fit(lambda b: 0.0, [np.zeros(2)], 2, model=model, resume=plain, progress=False)


def test_docstring_examples_run():
    for module in (dandelion.train.loop, dandelion.train.batches):
        assert doctest.testmod(module).failed == 0
