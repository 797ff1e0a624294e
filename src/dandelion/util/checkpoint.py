"""Checkpoints: model weights, optimizer state, random-number states and user data in one file.

The file is an ``.npz`` archive read with ``allow_pickle=False`` (loading executes no
code) holding one array per weight and state variable, and a JSON metadata entry with
names, shapes, dtypes and a SHA-256 checksum of every array. It is written to a
temporary file and renamed into place, so a crash never leaves half a checkpoint, and
everything is read and checked before anything is assigned, so a corrupt file or a
mismatched model never leaves a half-loaded one.

Typical use::

    updates = adam(loss, model.collect_params())
    save_checkpoint("run.ckpt", model, updates, user_data={"epoch": 3})
    ...
    user_data = load_checkpoint("run.ckpt", model, updates)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from collections import OrderedDict

import numpy as np

from dandelion.util.atomic import atomic_write
from dandelion.util.casting import checked_cast

FORMAT = "dandelion-checkpoint"
VERSION = 1
_METADATA_KEY = "__metadata__"
_POLICIES = ("ignore", "warn", "raise")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read: truncated, corrupt, or not a checkpoint."""


# ----------------------------------------------------------------------- gathering
def _optimizer_variables(updates_or_optimizer_state, module=None):
    """{name: shared variable} from optimizer updates or an ``optimizer_state`` mapping.

    With the model at hand, a state is named after its parameter's path name
    (``adam.m@block1.fc.W``), which is unique whatever the Theano-era names.
    """
    if updates_or_optimizer_state is None:
        return OrderedDict()
    items = dict(updates_or_optimizer_state)
    named = all(isinstance(key, str) for key in items)
    if named and module is None:
        return OrderedDict(items)
    # Local import: the update package knows nothing of util, util may know of update.
    from dandelion.update.state import optimizer_state

    param_names = None if module is None else {id(v): path for path, v in module.named_params()}
    return optimizer_state(list(items.values()) if named else items, param_names)


def _random_state_variables(module):
    """[(path name, shared variable)] of a module tree's random-number states (dropout
    step counters), in tree order."""
    if module is None:
        return []
    randoms = {id(v) for _, m in module.named_modules() for v in m.random_states}
    return [(path, v) for path, v in module.named_variables() if id(v) in randoms]


def _by_saved_name(module, saved, variables):
    """{path name: value} of ``saved`` ({name: value}, path or Theano-era names, as older
    checkpoints have) and the saved names that match no variable."""
    resolved = module.resolve_names(list(saved), variables)
    matched = OrderedDict((resolved[n][0], value) for n, value in saved.items() if n in resolved)
    return matched, [n for n in saved if n not in resolved]


def _module_weights(module):
    return [] if module is None else [(path, np.asarray(v.get_value())) for path, v in module.named_weights()]


# --------------------------------------------------------------------- JSON + arrays
class _ArrayStash:
    """Arrays found inside JSON-like data go into the archive; the JSON keeps a reference."""

    def __init__(self, prefix, arrays):
        self.prefix, self.arrays = prefix, arrays

    def encode(self, value, where):
        if isinstance(value, np.ndarray):
            key = f"{self.prefix}/{len([k for k in self.arrays if k.startswith(self.prefix + '/')])}"
            self.arrays[key] = value
            return {"__ndarray__": key}
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise TypeError(f"save_checkpoint: {where} has a dict with non-string keys; JSON needs string keys")
            if "__ndarray__" in value:
                raise TypeError(f"save_checkpoint: {where} uses the reserved key '__ndarray__'")
            return {k: self.encode(v, f"{where}[{k!r}]") for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise TypeError(
            f"save_checkpoint: {where} holds a {type(value).__name__}; user data may hold dicts, lists, "
            "str, numbers, bool, None and NumPy arrays"
        )


def _decode(value, arrays):
    if isinstance(value, dict):
        if set(value) == {"__ndarray__"}:
            return arrays[value["__ndarray__"]]
        return {k: _decode(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    return value


def _digest(array):
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


# ---------------------------------------------------------------------------- save
def save_checkpoint(path, module=None, updates_or_optimizer_state=None, user_data=None):
    """Write a checkpoint of ``module`` and the optimizer to ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        Written atomically (``dandelion.util.atomic``: temporary file in the same
        folder, fsynced, then renamed; the file gets the mode a plain ``open`` gives
        under the umask; temporary files of killed saves are removed by the next save).
    module : Module, optional
        Its ``get_weights()`` (parameters and self-updating variables, by name and
        in order) and the random-number states of its dropout modules are saved.
    updates_or_optimizer_state : dict, optional
        The ``OrderedDict`` an optimizer of ``dandelion.update`` returned (its state
        variables are found by tag), or an ``optimizer_state(updates)`` mapping.
    user_data : JSON-like, optional
        dicts (string keys), lists, str, numbers, bool, None and NumPy arrays; e.g.
        the epoch and the learning-rate schedule's position.
    """
    arrays = OrderedDict()
    metadata = {"format": FORMAT, "version": VERSION, "model": [], "optimizer": [], "random_states": []}
    for index, (name, value) in enumerate(_module_weights(module)):
        key = f"model/{index}"
        arrays[key] = value
        metadata["model"].append({"name": name, "key": key})
    for index, (name, variable) in enumerate(_optimizer_variables(updates_or_optimizer_state, module).items()):
        key = f"optimizer/{index}"
        arrays[key] = np.asarray(variable.get_value())
        metadata["optimizer"].append({"name": name, "key": key})
    for index, (name, variable) in enumerate(_random_state_variables(module)):
        key = f"random/{index}"
        arrays[key] = np.asarray(variable.get_value())
        metadata["random_states"].append({"name": name, "key": key})
    metadata["user_data"] = _ArrayStash("user", arrays).encode(user_data, "user_data")
    metadata["arrays"] = {
        key: {"shape": list(a.shape), "dtype": a.dtype.str, "sha256": _digest(a)} for key, a in arrays.items()
    }
    for key, array in arrays.items():
        if array.dtype.hasobject:
            raise TypeError(f"save_checkpoint: {key} has dtype object, which cannot be stored without pickle")
    arrays[_METADATA_KEY] = np.frombuffer(json.dumps(metadata).encode("utf-8"), dtype=np.uint8)

    # A file object, so NumPy does not append ".npz" to the name.
    atomic_write(path, lambda file: np.savez(file, **arrays))


# ---------------------------------------------------------------------------- read
def _read_archive(path):
    """Every array of the ``.npz`` at ``path``; ``CheckpointError`` for anything unreadable."""
    with open(path, "rb") as file:
        raw = file.read()
    try:
        loaded = np.load(io.BytesIO(raw), allow_pickle=False)
    except Exception as error:  # NumPy and zipfile raise a dozen kinds on corrupt bytes
        raise CheckpointError(
            f"load_checkpoint: {path!r} is truncated or corrupt ({type(error).__name__}: {error})"
        ) from error
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise CheckpointError(
            f"load_checkpoint: {path!r} is not a dandelion checkpoint (a single .npy array, not an .npz archive)"
        )
    try:
        with loaded as archive:
            return {key: archive[key] for key in archive.files}
    except Exception as error:  # bad zip directory, CRC, array header, encrypted flag, ...
        raise CheckpointError(
            f"load_checkpoint: {path!r} is truncated or corrupt ({type(error).__name__}: {error})"
        ) from error


def _entries(metadata, kind, arrays, path):
    """The ``[{name, key}]`` list ``kind`` of the metadata as (name, array) pairs."""
    entries = metadata.get(kind)
    if not isinstance(entries, list):
        raise CheckpointError(f"load_checkpoint: {path!r} has corrupt metadata: {kind!r} is not a list")
    pairs = []
    for index, entry in enumerate(entries):
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("name"), str)
            or not isinstance(entry.get("key"), str)
            or entry["key"] not in arrays
        ):
            raise CheckpointError(
                f"load_checkpoint: {path!r} has corrupt metadata: {kind}[{index}] is not a name and a stored entry"
            )
        pairs.append((entry["name"], arrays[entry["key"]]))
    return pairs


def _check_arrays(described, arrays, path):
    if not isinstance(described, dict):
        raise CheckpointError(f"load_checkpoint: {path!r} has corrupt metadata: 'arrays' is not a mapping")
    if set(described) != set(arrays):
        raise CheckpointError(
            f"load_checkpoint: {path!r} is corrupt: entries {sorted(set(arrays) ^ set(described))} "
            "are missing or not described"
        )
    for key, info in described.items():
        array = arrays[key]
        if not isinstance(info, dict) or not {"shape", "dtype", "sha256"} <= set(info):
            raise CheckpointError(f"load_checkpoint: {path!r} has corrupt metadata: entry {key!r} has no shape, dtype and sha256")
        if list(array.shape) != info["shape"] or array.dtype.str != info["dtype"] or _digest(array) != info["sha256"]:
            raise CheckpointError(f"load_checkpoint: {path!r} is corrupt: entry {key!r} fails its checksum")


def read_checkpoint(path):
    """Read and verify a checkpoint without assigning anything.

    Returns
    -------
    dict with ``model`` (list of (name, array) in saved order), ``optimizer``
    (OrderedDict name -> array), ``random_states`` (OrderedDict name -> array) and
    ``user_data``.

    Raises
    ------
    CheckpointError
        Whatever keeps the file from being read as a checkpoint: truncated, corrupt
        bytes anywhere, a failed checksum, inconsistent metadata, another kind of file.
        The message names the file and what is wrong.
    FileNotFoundError
        No file at ``path``.
    """
    path = os.fspath(path)
    arrays = _read_archive(path)
    if _METADATA_KEY not in arrays:
        raise CheckpointError(f"load_checkpoint: {path!r} is not a dandelion checkpoint (no metadata entry)")
    try:
        metadata = json.loads(arrays.pop(_METADATA_KEY).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise CheckpointError(f"load_checkpoint: {path!r} has corrupt metadata ({type(error).__name__}: {error})") from error
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise CheckpointError(f"load_checkpoint: {path!r} is not a dandelion checkpoint")
    if metadata.get("version") != VERSION:
        raise CheckpointError(
            f"load_checkpoint: {path!r} has format version {metadata.get('version')!r}; this dandelion reads {VERSION}"
        )
    _check_arrays(metadata.get("arrays"), arrays, path)
    model = _entries(metadata, "model", arrays, path)
    optimizer = OrderedDict(_entries(metadata, "optimizer", arrays, path))
    random_states = OrderedDict(_entries(metadata, "random_states", arrays, path))
    try:
        user_data = _decode(metadata.get("user_data"), arrays)
    except (KeyError, TypeError, RecursionError) as error:
        raise CheckpointError(f"load_checkpoint: {path!r} has corrupt metadata in user_data ({type(error).__name__}: {error})") from error
    return {"model": model, "optimizer": optimizer, "random_states": random_states, "user_data": user_data}


# ---------------------------------------------------------------------------- load
def _compare(kind, saved, current):
    """Pairs (target, saved value) matched by name, and what does not match.

    saved : {name: value}; current : {name: (shape or None to skip the check, target)}.
    """
    matched, problems = [], []
    missing = [name for name in current if name not in saved]
    unexpected = [name for name in saved if name not in current]
    shapes = []
    for name, array in saved.items():
        if name not in current:
            continue
        shape, target = current[name]
        if shape is not None and tuple(array.shape) != tuple(shape):
            shapes.append(f"{name}: saved {tuple(array.shape)}, model {tuple(shape)}")
        else:
            matched.append((target, array))
    if missing:
        problems.append(f"{kind} missing from the checkpoint: {missing}")
    if unexpected:
        problems.append(f"{kind} in the checkpoint but not in the model: {unexpected}")
    if shapes:
        problems.append(f"{kind} with different shapes: {shapes}")
    return matched, problems


def load_checkpoint(path, module=None, updates_or_optimizer_state=None, unmatched="raise", allow_downcast=False):
    """Restore a checkpoint written by ``save_checkpoint``; returns its user data.

    Build the model and the optimizer as for a fresh run, load, and compile (before or
    after loading): the next training step gives exactly the result the uninterrupted
    run would have on the same backend, dropout masks included.

    Parameters
    ----------
    path : str or os.PathLike
    module : Module, optional
        Receives weights by name (``set_weights_by_name``) and random-number states.
    updates_or_optimizer_state : dict, optional
        The optimizer's updates (or ``optimizer_state(updates)``) whose state to restore.
    unmatched : {'ignore', 'warn', 'raise'}
        As in ``Module.set_weights_by_name``: what to do when names are missing on either
        side or shapes differ; mismatched entries are skipped under 'ignore' and 'warn'.
        Nothing is assigned unless every check passed.
    allow_downcast : bool
        Accept saved floats that the variable's float dtype rounds (float64 values into
        float32). Without it a value is assigned only when its dtype converts safely
        or every value survives the cast exactly; a float into an integer variable,
        complex into real or text is always refused (``dandelion.util.casting``).

    Raises
    ------
    CheckpointError
        Truncated or corrupt file (nothing is assigned).
    ValueError
        Structure mismatch under ``unmatched='raise'`` (nothing is assigned).
    TypeError
        A saved value the variable's dtype cannot hold (nothing is assigned).
    """
    if unmatched not in _POLICIES:
        raise ValueError(f"load_checkpoint: unmatched must be one of {_POLICIES}, got {unmatched!r}")
    content = read_checkpoint(path)

    saved_model = OrderedDict()
    for name, array in content["model"]:
        if name in saved_model:
            raise CheckpointError(f"load_checkpoint: {os.fspath(path)!r} holds two weights named {name!r}")
        saved_model[name] = array
    problems = []
    model_pairs = []
    if module is not None:
        named = module.named_weights()
        weights = OrderedDict((p, (v.get_value(borrow=True).shape, (p, v.dtype))) for p, v in named)
        matched, strays = _by_saved_name(module, saved_model, named)
        model_pairs, found = _compare("model weights", {**matched, **{n: saved_model[n] for n in strays}}, weights)
        problems += found

    optimizer_pairs = []
    if updates_or_optimizer_state is not None:
        variables = _optimizer_variables(updates_or_optimizer_state, module)
        current = OrderedDict((name, (v.get_value(borrow=True).shape, v)) for name, v in variables.items())
        # Checkpoints written before path names named states after Theano-era names.
        aliases = {v.name: name for name, v in variables.items() if v.name not in variables}
        saved = OrderedDict((aliases.get(n, n), a) for n, a in content["optimizer"].items())
        optimizer_pairs, found = _compare("optimizer state", saved, current)
        problems += found

    random_pairs = []
    if module is not None:
        randoms = _random_state_variables(module)
        current = OrderedDict((p, (v.get_value(borrow=True).shape, v)) for p, v in randoms)
        matched, strays = _by_saved_name(module, content["random_states"], randoms)
        saved = {**matched, **{n: content["random_states"][n] for n in strays}}
        random_pairs, found = _compare("random-number states", saved, current)
        problems += found

    if problems:
        message = f"load_checkpoint({os.fspath(path)!r}): checkpoint and model differ; " + "; ".join(problems)
        if unmatched == "raise":
            raise ValueError(message + "; nothing was loaded")
        if unmatched == "warn":
            warnings.warn(message, stacklevel=2)

    # Every value converted (and refused) before anything is assigned.
    where = f"load_checkpoint({os.fspath(path)!r})"
    model_values = [
        [checked_cast(array, dtype, name, where, allow_downcast), name] for (name, dtype), array in model_pairs
    ]
    state_values = [
        (variable, checked_cast(array, variable.dtype, variable.name, where, allow_downcast))
        for variable, array in optimizer_pairs + random_pairs
    ]
    if module is not None and model_values:
        module.set_weights_by_name(model_values, unmatched="ignore")
    for variable, value in state_values:
        variable.set_value(value)
    return content["user_data"]
