"""The layout of ``dandelion.ops``: no import cycles, no function-local imports hiding one,
every module importable on its own and in any order, and Op classes that pickle by their home path."""

from __future__ import annotations

import ast
import pickle
import subprocess
import sys
from pathlib import Path

import pytensor.tensor as pt

import dandelion.ops
from dandelion.ops.conv import Conv2dGradInputOp, Conv2dOp
from dandelion.ops.pool import MaxPoolGatherOp, PoolGradOp, PoolOp

OPS_DIR = Path(dandelion.ops.__file__).parent
SRC_DIR = OPS_DIR.parent.parent


def module_name(path):
    parts = path.relative_to(SRC_DIR).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def ops_modules():
    return {module_name(path): path for path in sorted(OPS_DIR.rglob("*.py"))}


def module_level_imports(path, modules):
    """The ``dandelion.ops`` modules that ``path`` imports at module level (``from pkg import sub`` names sub)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
    return {name for name in found if name in modules}


def test_no_module_level_import_cycle():
    modules = ops_modules()
    graph = {name: module_level_imports(path, modules) for name, path in modules.items()}
    state = {}

    def visit(name, stack):
        state[name] = "open"
        for target in sorted(graph[name]):
            assert state.get(target) != "open", f"import cycle: {' -> '.join(stack + [name, target])}"
            if target not in state:
                visit(target, stack + [name])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def test_no_function_local_imports_of_dandelion():
    offenders = []
    for name, path in ops_modules().items():
        tree = ast.parse(path.read_text())
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top:
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                offenders += [f"{name}:{node.lineno} {ast.unparse(node)}" for n in names if n.startswith("dandelion")]
    assert not offenders, offenders


_IMPORT_EACH = """
import importlib, random, sys


def purge():
    for loaded in [m for m in sys.modules if m == "dandelion.ops" or m.startswith("dandelion.ops.")]:
        del sys.modules[loaded]


names = sys.argv[1:]
for name in names:  # each module as the first of dandelion.ops to be imported
    purge()
    importlib.import_module(name)
shuffled = list(names)
random.Random(0).shuffle(shuffled)
for order in (names, names[::-1], shuffled):
    purge()
    for name in order:
        importlib.import_module(name)
"""


def test_every_module_imports_first_and_in_any_order():
    """A fresh interpreter imports each module as the first of ``dandelion.ops``, then all in three orders."""
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH, *sorted(ops_modules())], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_ops_are_internal():
    """``dandelion.ops`` does not export the Op classes (``Conv2D`` is the module's name)."""
    public = set(dandelion.ops.__all__)
    assert not public & {"Conv2D", "Conv2dOp", "Conv2dGradInputOp", "Conv2dGradFiltersOp", "PoolOp", "PoolGradOp", "MaxPoolGatherOp"}
    assert not hasattr(dandelion.ops, "Conv2D")


def test_graphs_holding_the_ops_pickle_by_their_home_path():
    x = pt.tensor("x", shape=(None, 2, 6, 6))
    w = pt.tensor("w", shape=(3, 2, 3, 3))
    y = PoolOp(2, (2, 2))(Conv2dOp(pad=(1, 1))(x, w))
    data = pickle.dumps(y)
    for path in (b"dandelion.ops.conv", b"dandelion.ops.pool"):
        assert path in data
    restored = pickle.loads(data)
    assert restored.owner.op == y.owner.op and restored.owner.inputs[0].owner.op == y.owner.inputs[0].owner.op
    for op in (Conv2dGradInputOp(stride=(2, 1)), PoolGradOp(1, (3,)), MaxPoolGatherOp(3, (2, 2, 2))):
        assert pickle.loads(pickle.dumps(op)) == op
