"""Out-of-range class labels and embedding indices raise on every backend, never a silent value."""

import numpy as np
import pytensor.tensor as pt
import pytest

from dandelion.module import Embedding
from dandelion.objective import categorical_crossentropy
from tests.helpers import compile_fn
from tests.op_harness import IndexBoundsCheck

B, C, ROWS, DIM = 4, 3, 5, 2


@pytest.fixture(scope="module")
def graph(backend):
    """One compiled graph per backend for the whole module."""
    np.random.seed(3)
    emb = Embedding(ROWS, DIM, name="emb")
    p = pt.tensor("p", shape=(B, C), dtype="float32")
    labels = pt.tensor("labels", shape=(B,), dtype="int32")
    idx = pt.tensor("idx", shape=(B,), dtype="int32")
    f = compile_fn([p, labels, idx], [categorical_crossentropy(p, labels), emb.forward(idx)], backend)
    return f, emb, backend


def expected_error(backend):
    return Exception if backend == "jax" else IndexError  # JAX raises from a host callback: JaxRuntimeError


def test_valid_labels_and_indices_match_numpy(graph):
    f, emb, _ = graph
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(C), size=B).astype("float32")
    labels = np.array([0, 2, 1, 2], "int32")
    idx = np.array([4, 0, 3, 3], "int32")
    loss, rows = f(p, labels, idx)
    np.testing.assert_allclose(loss, -np.log(np.clip(p[np.arange(B), labels], 1e-7, 1 - 1e-7)), rtol=1e-5)
    np.testing.assert_array_equal(rows, emb.W.get_value()[idx])


@pytest.mark.parametrize("bad", [C, -1, 100])
def test_a_class_label_outside_the_classes_raises(graph, bad):
    f, _, backend = graph
    p = np.full((B, C), 1.0 / C, "float32")
    with pytest.raises(expected_error(backend), match=r"categorical_crossentropy: targets holds a class index outside \[0, C\)"):
        f(p, np.array([0, bad, 1, 2], "int32"), np.zeros(B, "int32"))


@pytest.mark.parametrize("bad", [ROWS, -1])
def test_an_embedding_index_outside_the_table_raises(graph, bad):
    f, _, backend = graph
    p = np.full((B, C), 1.0 / C, "float32")
    with pytest.raises(expected_error(backend), match=r"Embedding\('emb'\): index_input holds an index outside \[0, num_embeddings = 5\)"):
        f(p, np.zeros(B, "int32"), np.array([0, 1, bad, 2], "int32"))


def test_check_bounds_false_builds_no_check():
    p = pt.fmatrix("p")
    labels = pt.ivector("labels")
    from pytensor.graph.traversal import apply_ancestors

    checked = categorical_crossentropy(p, labels)
    unchecked = categorical_crossentropy(p, labels, check_bounds=False)
    assert any(isinstance(n.op, IndexBoundsCheck) for n in apply_ancestors([checked]))
    assert not any(isinstance(n.op, IndexBoundsCheck) for n in apply_ancestors([unchecked]))
