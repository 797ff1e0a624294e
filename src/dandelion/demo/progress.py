"""A progress bar: tqdm when installed, a plain text line otherwise."""

from __future__ import annotations

import sys


class PlainBar:
    def __init__(self, total, desc):
        self.total, self.desc, self.count, self.postfix = total, desc, 0, ""

    def update(self, n=1):
        self.count += n

    def set_postfix_str(self, text, refresh=True):
        self.postfix = text

    def close(self):
        print(f"{self.desc}: {self.count}/{self.total} {self.postfix}", file=sys.stderr, flush=True)


def progress_bar(total, desc):
    try:
        from tqdm import tqdm
    except ImportError:
        return PlainBar(total, desc)
    return tqdm(total=total, desc=desc, leave=True, dynamic_ncols=True, file=sys.stderr, mininterval=0.25)
