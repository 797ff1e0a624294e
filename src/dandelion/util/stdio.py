"""``sys_output_tap``: copy what is written to a stream into a file as well."""

from __future__ import annotations


class sys_output_tap:  # noqa: N801 - the Theano-era public name
    """A stream wrapper that writes to ``stream`` and, once set, to a file.

    Text written before ``set_file`` is buffered and written to the file then.

    Examples
    --------
    >>> import io
    >>> screen, log = io.StringIO(), io.StringIO()
    >>> tap = sys_output_tap(screen)
    >>> _ = tap.write("epoch 1\\n")
    >>> tap.set_file(log)
    >>> log.getvalue()
    'epoch 1\\n'

    Use as ``sys.stdout = sys_output_tap(sys.stdout)``.
    """

    def __init__(self, stream):
        self.stream = stream
        self.buffer = ""
        self.file = None

    def write(self, s):
        self.stream.write(s)
        self.stream.flush()
        if self.file is not None:
            self.file.write(s)
            self.file.flush()
        else:
            self.buffer += s
        return len(s)

    def set_file(self, f):
        if self.file is not None:
            raise RuntimeError("sys_output_tap.set_file: a file is already set")
        self.file = f
        self.file.write(self.buffer)
        self.file.flush()
        self.buffer = ""

    def flush(self):
        self.stream.flush()
        if self.file is not None:
            self.file.flush()

    def close(self):
        """Close the file (if any). The wrapped stream (often ``sys.stdout``) stays open."""
        if self.file is not None:
            self.file.close()
            self.file = None

    def __getattr__(self, name):
        # isatty(), encoding, fileno() ... of the wrapped stream, for libraries that probe.
        return getattr(self.stream, name)
