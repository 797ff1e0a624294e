"""``python -m dandelion.demo``: train a model on the bundled digits and report test accuracy."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from dandelion.demo.data import load_digits_split
from dandelion.demo.models import MODELS
from dandelion.demo.train import build_graphs, compile_graphs, evaluate, train_epochs
from dandelion.util import load_checkpoint, read_checkpoint, save_checkpoint

DEFAULT_EPOCHS = {"mlp": 20, "cnn": 15, "lstm": 20}
DEFAULT_LEARNING_RATES = {"mlp": 2e-3, "cnn": 2e-3, "lstm": 5e-3}


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
    train_graph, predict_graph, updates = build_graphs(model, args.batch_size, len(test_split.labels), learning_rate)
    first_epoch = 0
    if args.resume:
        saved_model = read_checkpoint(args.resume)["user_data"].get("model")
        if saved_model != args.model:
            raise SystemExit(f"--resume: {args.resume} holds a {saved_model!r} model, not {args.model!r}")
        saved = load_checkpoint(args.resume, model, updates)
        first_epoch = int(saved["epochs_done"])
        log(f"resumed from {args.resume} after epoch {first_epoch}")
    train, predict = compile_graphs(train_graph, predict_graph, updates, args.backend)
    log(f"compiled in {time.perf_counter() - started:.1f} s")
    for epoch in train_epochs(train, train_split, args.batch_size, epochs, seed=args.seed, first_epoch=first_epoch):
        if args.save:
            save_checkpoint(args.save, model, updates, user_data={"model": args.model, "epochs_done": epoch + 1})
    accuracy, _ = evaluate(predict, test_split)
    log(f"trained in {time.perf_counter() - started:.1f} s")
    print(f"test accuracy: {accuracy:.3f}")
    return accuracy


if __name__ == "__main__":
    main()
