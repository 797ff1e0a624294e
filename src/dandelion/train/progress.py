"""Progress of ``fit``: a bar on a terminal, one line per epoch elsewhere (logs, CI)."""

from __future__ import annotations

import sys
import time

MODES = ("auto", "bar", "epoch", "none")


def format_metrics(metrics):
    return " ".join(f"{name} {value:.4g}" for name, value in metrics.items())


class _Silent:
    def start_epoch(self, epoch, epochs, total, done=0):
        pass

    def step(self, metrics):
        pass

    def end_epoch(self, metrics):
        pass

    def abort(self):
        """The run stopped inside an epoch (an error, Ctrl-C): leave the terminal tidy."""


class _EpochLines(_Silent):
    """One line per epoch when it ends: what a log file or a CI run should hold."""

    def __init__(self, stream):
        self.stream = stream

    def start_epoch(self, epoch, epochs, total, done=0):
        self.desc, self.count, self.started = f"epoch {epoch + 1}/{epochs}", done, time.perf_counter()

    def step(self, metrics):
        self.count += 1

    def end_epoch(self, metrics):
        elapsed = time.perf_counter() - self.started
        print(f"{self.desc}: {self.count} steps, {format_metrics(metrics)} ({elapsed:.2f} s)", file=self.stream,
              flush=True)


class _LineBar(_EpochLines):
    """A bar without tqdm: the epoch's line rewritten in place, at most 4 times a second."""

    def start_epoch(self, epoch, epochs, total, done=0):
        super().start_epoch(epoch, epochs, total, done)
        self.total, self.shown, self.width = total, 0.0, 0

    def step(self, metrics):
        super().step(metrics)
        now = time.perf_counter()
        if now - self.shown >= 0.25:
            self.shown = now
            total = "?" if self.total is None else self.total
            line = f"{self.desc}: {self.count}/{total} {format_metrics(metrics)}"
            print("\r" + line.ljust(self.width), end="", file=self.stream, flush=True)
            self.width = max(self.width, len(line))

    def end_epoch(self, metrics):
        # Blank the redrawn line: the epoch's line may be shorter.
        print("\r" + " " * self.width + "\r", end="", file=self.stream)
        self.width = 0
        super().end_epoch(metrics)

    def abort(self):
        if getattr(self, "width", 0):
            print(file=self.stream, flush=True)


class _TqdmBar(_Silent):
    def __init__(self, stream, tqdm):
        self.stream, self.tqdm = stream, tqdm

    def start_epoch(self, epoch, epochs, total, done=0):
        self.bar = self.tqdm(total=total, initial=done, desc=f"epoch {epoch + 1}/{epochs}", leave=True,
                             dynamic_ncols=True, file=self.stream, mininterval=0.25)

    def step(self, metrics):
        self.bar.update(1)
        self.bar.set_postfix_str(format_metrics(metrics), refresh=False)

    def end_epoch(self, metrics):
        self.bar.set_postfix_str(format_metrics(metrics), refresh=True)
        self.bar.close()

    def abort(self):
        if getattr(self, "bar", None) is not None:
            self.bar.close()


def make_progress(progress, stream):
    """The reporter for ``fit(progress=...)``: 'auto' is a bar on a terminal, else epoch lines."""
    if progress is False or progress is None:
        progress = "none"
    if progress is True:
        progress = "auto"
    if progress not in MODES:
        raise ValueError(f"fit: progress must be one of {MODES} (or True/False), got {progress!r}")
    stream = sys.stderr if stream is None else stream
    if progress == "none":
        return _Silent()
    if progress == "auto":
        isatty = getattr(stream, "isatty", None)
        progress = "bar" if isatty is not None and isatty() else "epoch"
    if progress == "epoch":
        return _EpochLines(stream)
    try:
        from tqdm import tqdm
    except ImportError:
        return _LineBar(stream)
    return _TqdmBar(stream, tqdm)
