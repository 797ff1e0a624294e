"""Write a file so that a crash, a kill or an error half way never costs the old file.

The content goes to a temporary file in the target's folder, is flushed and fsynced,
then renamed over the target (``os.replace`` is atomic on POSIX and Windows), and the
folder is fsynced so the rename survives a power cut. The temporary file is created
with mode 0666 less the umask, the mode a plain ``open(path, "w")`` gives, so the
rename hands the target the permissions the user expects (``mkstemp``'s 0600 would
survive the rename).

A killed save leaves its temporary file behind; the next save of the same target
removes the ones whose writing process no longer runs (on POSIX; Windows keeps them).
Their names carry the writer's process id: ``.<target name>.<pid>.<random>.tmp``.
"""

from __future__ import annotations

import os
import re
import secrets


def _temporary_name(path):
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")


def _process_is_running(pid):
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there; keep its file
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except OSError:  # pragma: no cover - platforms without signal 0
        return True
    return True


def stale_temporaries(path):
    """Temporary files of earlier saves of ``path`` whose writer no longer runs."""
    folder, name = os.path.split(os.path.abspath(path))
    pattern = re.compile(rf"\.{re.escape(name)}\.(\d+)\.[0-9a-f]{{12}}\.tmp")
    stale = []
    try:
        entries = os.listdir(folder)
    except OSError:
        return stale
    for entry in entries:
        match = pattern.fullmatch(entry)
        if match and not _process_is_running(int(match.group(1))):
            stale.append(os.path.join(folder, entry))
    return stale


def _fsync_folder(folder):
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows cannot open folders
        return
    try:
        os.fsync(descriptor)
    except OSError:  # pragma: no cover - file systems without folder fsync
        pass
    finally:
        os.close(descriptor)


def atomic_write(path, write):
    """Call ``write(binary_file)`` on a temporary file, then rename it to ``path``.

    Parameters
    ----------
    path : str or os.PathLike
    write : callable taking an open binary file
        Whatever it raises propagates; the temporary file is removed and ``path`` is
        left as it was.
    """
    path = os.fsdecode(path)
    for leftover in stale_temporaries(path):
        try:
            os.remove(leftover)
        except OSError:
            pass
    temporary = _temporary_name(path)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(descriptor, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    _fsync_folder(os.path.dirname(os.path.abspath(path)))
