"""``python -m dandelion.demo``: train a model on the bundled digits and report test accuracy."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from dandelion.demo.data import load_digits_split
from dandelion.demo.models import MODELS
from dandelion.demo.train import OUTPUTS, build_graphs, compile_graphs
from dandelion.train import ArrayBatches, Checkpoint, fit
from dandelion.util import read_checkpoint

DEFAULT_EPOCHS = {"mlp": 20, "cnn": 15, "lstm": 20, "transformer": 20}
DEFAULT_LEARNING_RATES = {"mlp": 2e-3, "cnn": 2e-3, "lstm": 5e-3, "transformer": 3e-3}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m dandelion.demo", description=__doc__)
    parser.add_argument("--backend", choices=["c", "numba", "jax"], default="numba")
    parser.add_argument("--model", choices=sorted(MODELS), default="mlp")
    parser.add_argument("--epochs", type=int, default=None, help="default depends on the model")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=None, help="default depends on the model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", metavar="PATH", help="write a checkpoint after every epoch")
    parser.add_argument("--resume", metavar="PATH", help="continue from a checkpoint written with --save")
    parser.add_argument("--plot", metavar="PNG", help="write the learning curves (needs matplotlib)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    epochs = args.epochs or DEFAULT_EPOCHS[args.model]
    learning_rate = args.learning_rate or DEFAULT_LEARNING_RATES[args.model]
    np.random.seed(args.seed)
    train_split, test_split = load_digits_split(seed=args.seed)
    model = MODELS[args.model](seed=args.seed)
    log = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    log(f"model {args.model}, backend {args.backend}: {len(train_split.labels)} training and "
        f"{len(test_split.labels)} test images")
    started = time.perf_counter()
    train_graph, eval_graph, updates = build_graphs(model, args.batch_size, len(test_split.labels), learning_rate)
    if args.resume:
        saved_model = read_checkpoint(args.resume)["user_data"].get("model")
        if saved_model != args.model:
            raise SystemExit(f"--resume: {args.resume} holds a {saved_model!r} model, not {args.model!r}")
        log(f"resumed from {args.resume}")
    train, evaluate = compile_graphs(train_graph, eval_graph, updates, args.backend)
    log(f"compiled in {time.perf_counter() - started:.1f} s")
    callbacks = [Checkpoint(args.save, user_data={"model": args.model})] if args.save else []
    history = fit(
        train,
        # JAX compiled for a static batch size: the last partial batch is dropped.
        ArrayBatches(train_split.images, train_split.labels, batch_size=args.batch_size, seed=args.seed,
                     drop_last=True),
        epochs,
        outputs=OUTPUTS,
        eval_fn=evaluate,
        eval_batches=[(test_split.images, test_split.labels)],
        model=model,
        updates=updates,
        callbacks=callbacks,
        resume=args.resume,
        progress="none" if args.quiet else "auto",
    )
    accuracy = history["val_accuracy"][-1] if len(history) else float(evaluate(test_split.images, test_split.labels)[1])
    log(f"trained in {time.perf_counter() - started:.1f} s")
    if args.plot:
        history.plot(args.plot)
        log(f"learning curves in {args.plot}")
    print(f"test accuracy: {accuracy:.3f}")
    return accuracy


if __name__ == "__main__":
    main()
