"""The training loop around compiled functions: batches, progress, evaluation, history,
early stopping, checkpoints and exact resume.

Typical use::

    train = dandelion.function([x, y], [loss, accuracy], updates=updates)
    evaluate = dandelion.function([x, y], [test_loss, test_accuracy])
    history = fit(
        train, ArrayBatches(train_x, train_y, batch_size=32, seed=0), epochs=20,
        outputs=["loss", "accuracy"],
        eval_fn=evaluate, eval_batches=ArrayBatches(val_x, val_y, batch_size=256, shuffle=False),
        model=model, updates=updates,
        callbacks=[EarlyStopping("val_loss", patience=3), Checkpoint("run.ckpt")],
        resume=None,   # or "run.ckpt" to continue a run exactly
    )
    history.plot("curves.png")
"""

from dandelion.train.batches import ArrayBatches, PaddedSequences
from dandelion.train.callbacks import Callback, Checkpoint, EarlyStopping
from dandelion.train.history import History
from dandelion.train.loop import Trainer, fit

__all__ = [
    "ArrayBatches",
    "Callback",
    "Checkpoint",
    "EarlyStopping",
    "History",
    "PaddedSequences",
    "Trainer",
    "fit",
]
