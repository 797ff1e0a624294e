"""Losses and accuracies of dandelion.objective against NumPy formulas.

One compiled function per backend computes every objective at once (C and Numba with
free shapes, so hypothesis examples reuse it; JAX once per static shape).
"""

import numpy as np
import pytensor.tensor as pt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dandelion import objective as obj
from tests.helpers import assert_close, compile_fn, verify_grad

# ------------------------------------------------------------------ references


def ref_bce(p, t):
    return -(t * np.log(p) + (1 - t) * np.log(1 - p))


def ref_cce(p, t_dense, eps=1e-7, w=None):
    logp = np.log(np.clip(p, eps, 1 - eps))
    w = np.ones(p.shape[-1]) if w is None else w
    return -(t_dense * logp * w).sum(-1)


def ref_cce_log(logp, t_dense, w=None):
    w = np.ones(logp.shape[-1]) if w is None else w
    return -(t_dense * logp * w).sum(-1)


def ref_multiclass_hinge(scores, labels, delta):
    out = np.empty(len(labels))
    for i, label in enumerate(labels):
        others = [scores[i, j] for j in range(scores.shape[1]) if j != label]
        out[i] = max(0.0, max(others) - scores[i, label] + delta)
    return out


def ref_topk(p, labels, k):
    ranked = np.argsort(-p, axis=-1, kind="stable")[:, :k]
    return np.array([labels[i] in ranked[i] for i in range(len(labels))], dtype=float)


def dense_targets(labels, c):
    return np.eye(c)[labels]


# ------------------------------------------------------------------ graph

NAMES = [
    "bce", "cce_idx", "cce_soft", "cce_idx_w", "cce_soft_w", "cce_float_idx", "ccel_idx", "ccel_soft_w",
    "sq", "agg_mean", "agg_sum", "agg_norm", "agg_mean_w", "agg_sum_w",
    "bhinge_logodds", "bhinge_prob_pm1", "mhinge_idx", "mhinge_onehot",
    "bacc", "cacc1", "cacc2", "cacc1_onehot",
]  # fmt: skip


def build(shape):
    """All objectives as outputs of one graph; ``shape`` is (B, C) or (None, None)."""
    b, c = shape
    f32 = lambda name, s: pt.tensor(name, shape=s, dtype="float32")  # noqa: E731
    p, soft, logits = f32("p", (b, c)), f32("soft", (b, c)), f32("logits", (b, c))
    labels = pt.tensor("labels", shape=(b,), dtype="int64")
    float_labels = f32("float_labels", (b,))
    weight = f32("weight", (c,))
    bp, bt, pm1 = f32("bp", (b, c)), f32("bt", (b, c)), f32("pm1", (b, c))
    loss_w = f32("loss_w", (b, c))
    logp = pt.log(p)
    item = obj.categorical_crossentropy(p, labels)
    outs = [
        obj.binary_crossentropy(bp, bt),
        item,
        obj.categorical_crossentropy(p, soft),
        obj.categorical_crossentropy(p, labels, class_weight=weight),
        obj.categorical_crossentropy(p, soft, class_weight=weight),
        obj.categorical_crossentropy(p, float_labels, eps=1e-3),
        obj.categorical_crossentropy_log(logp, labels),
        obj.categorical_crossentropy_log(logp, soft, class_weight=weight),
        obj.squared_error(bp, bt),
        obj.aggregate(item),
        obj.aggregate(item, mode="sum"),
        obj.aggregate(obj.squared_error(bp, bt), loss_w, mode="normalized_sum"),
        obj.aggregate(obj.squared_error(bp, bt), loss_w, mode="mean"),
        obj.aggregate(obj.squared_error(bp, bt), loss_w, mode="sum"),
        obj.binary_hinge_loss(logits, bt, delta=0.5, log_odds=True),
        obj.binary_hinge_loss(bp, pm1, log_odds=False, binary=False),
        obj.multiclass_hinge_loss(logits, labels, delta=0.7),
        obj.multiclass_hinge_loss(logits, pt.eq(labels[:, None], pt.arange(logits.shape[1])).astype("float32")),
        obj.binary_accuracy(bp, bt, threshold=0.4),
        obj.categorical_accuracy(p, labels),
        obj.categorical_accuracy(p, labels, top_k=2),
        obj.categorical_accuracy(p, soft_onehot := f32("onehot", (b, c))),
    ]
    return [p, soft, logits, labels, float_labels, weight, bp, bt, pm1, loss_w, soft_onehot], outs


_CACHE = {}


def compiled(backend, shape):
    key = (backend, shape if backend == "jax" else None)
    if key not in _CACHE:
        inputs, outs = build(shape if backend == "jax" else (None, None))
        _CACHE[key] = compile_fn(inputs, outs, backend)
    return _CACHE[key]


def make_data(seed, b, c):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((b, c)).astype("float32") * 2
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    soft = rng.random((b, c)).astype("float32")
    soft /= soft.sum(-1, keepdims=True)
    labels = rng.integers(0, c, b)
    weight = rng.random(c).astype("float32") + 0.5
    bp = rng.uniform(0.05, 0.95, (b, c)).astype("float32")
    bt = rng.integers(0, 2, (b, c)).astype("float32")
    loss_w = rng.random((b, c)).astype("float32") + 0.1
    onehot = dense_targets(labels, c).astype("float32")
    return dict(p=p.astype("float32"), soft=soft, logits=logits, labels=labels, float_labels=labels.astype("float32"),
                weight=weight, bp=bp, bt=bt, pm1=2 * bt - 1, loss_w=loss_w, onehot=onehot)  # fmt: skip


def references(d):
    p, soft, labels, w = (d[k].astype("float64") for k in ("p", "soft", "labels", "weight"))
    labels = d["labels"]
    c = p.shape[1]
    onehot = dense_targets(labels, c)
    bp, bt, lw = (d[k].astype("float64") for k in ("bp", "bt", "loss_w"))
    logits = d["logits"].astype("float64")
    sq = (bp - bt) ** 2
    item = ref_cce(p, onehot)
    return {
        "bce": ref_bce(bp, bt),
        "cce_idx": item,
        "cce_soft": ref_cce(p, soft),
        "cce_idx_w": ref_cce(p, onehot, w=w),
        "cce_soft_w": ref_cce(p, soft, w=w),
        "cce_float_idx": ref_cce(p, onehot, eps=1e-3),
        "ccel_idx": ref_cce_log(np.log(p), onehot),
        "ccel_soft_w": ref_cce_log(np.log(p), soft, w=w),
        "sq": sq,
        "agg_mean": item.mean(),
        "agg_sum": item.sum(),
        "agg_norm": (sq * lw).sum() / lw.sum(),
        "agg_mean_w": (sq * lw).mean(),
        "agg_sum_w": (sq * lw).sum(),
        "bhinge_logodds": np.maximum(0, 0.5 - logits * (2 * bt - 1)),
        "bhinge_prob_pm1": np.maximum(0, 1 - np.log(bp / (1 - bp)) * (2 * bt - 1)),
        "mhinge_idx": ref_multiclass_hinge(logits, labels, 0.7),
        "mhinge_onehot": ref_multiclass_hinge(logits, labels, 1.0),
        "bacc": ((bp >= 0.4) == bt).astype(float),
        "cacc1": (p.argmax(-1) == labels).astype(float),
        "cacc2": ref_topk(p, labels, 2),
        "cacc1_onehot": (p.argmax(-1) == labels).astype(float),
    }


# JAX compiles once per static shape, so shapes come from a small set covering the edges.
SHAPES = [(1, 2), (4, 5), (3, 3)]


@given(shape=st.sampled_from(SHAPES), seed=st.integers(0, 2**16))
def test_every_objective_matches_numpy(backend, shape, seed):
    b, c = shape
    d = make_data(seed, b, c)
    f = compiled(backend, (b, c))
    outs = f(d["p"], d["soft"], d["logits"], d["labels"], d["float_labels"], d["weight"], d["bp"], d["bt"], d["pm1"],
             d["loss_w"], d["onehot"])  # fmt: skip
    expected = references(d)
    for name, out in zip(NAMES, outs):
        out = np.asarray(out)
        assert out.dtype == np.float32, name
        assert out.shape == np.shape(expected[name]), name
        assert_close(out, expected[name], rtol=2e-4, atol=2e-5, err_msg=name)


def test_column_predictions_are_not_broadcast_against_vector_targets():
    p = pt.tensor("p", shape=(None, 1), dtype="float32")
    t = pt.fvector("t")
    assert obj.binary_crossentropy(p, t).type.shape == (None, 1)
    assert obj.squared_error(p, t).type.shape == (None, 1)


def test_objective_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    labels = np.array([0, 2, 1])
    soft = rng.random((3, 4))
    soft /= soft.sum(-1, keepdims=True)
    w = rng.random(4) + 0.5

    def total(p_logits, b_logits, target):
        p = pt.special.softmax(p_logits, axis=-1)
        bp = pt.sigmoid(b_logits)
        return (
            obj.categorical_crossentropy(p, labels, class_weight=w).sum()
            + obj.categorical_crossentropy(p, soft).sum()
            + obj.categorical_crossentropy_log(pt.special.log_softmax(p_logits, axis=-1), soft, class_weight=w).sum()
            + obj.binary_crossentropy(bp, target).sum()
            + obj.squared_error(b_logits, target).sum()
            + obj.multiclass_hinge_loss(p_logits, labels, delta=10.0).sum()
        )

    verify_grad(total, [rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), rng.random((3, 4))])


# ------------------------------------------------------------------ errors


def test_aggregate_rejects_unknown_mode_and_missing_weights():
    loss = pt.fvector("loss")
    with pytest.raises(
        ValueError, match=r"aggregate: mode must be one of \('mean', 'sum', 'normalized_sum'\), got 'avg'"
    ):
        obj.aggregate(loss, mode="avg")
    with pytest.raises(ValueError, match="normalized_sum.*needs weights"):
        obj.aggregate(loss, mode="normalized_sum")


def test_target_rank_and_class_weight_errors_name_the_function():
    p = pt.tensor("p", shape=(3, 4), dtype="float32")
    with pytest.raises(ValueError, match="categorical_crossentropy: targets must have ndim 2 .* or 1 .* got ndim 3"):
        obj.categorical_crossentropy(p, pt.tensor3("t"))
    with pytest.raises(ValueError, match="class_weight has 3 entries, predictions have 4 classes"):
        obj.categorical_crossentropy(p, pt.lvector("t"), class_weight=np.ones(3, "float32"))
    with pytest.raises(ValueError, match="targets shape .* does not match predictions shape"):
        obj.categorical_crossentropy(p, pt.tensor("t", shape=(5,), dtype="int64"))
    with pytest.raises(ValueError, match="m=5 but predictions have 4 classes"):
        obj.categorical_crossentropy_log(p, pt.lvector("t"), m=5)
    with pytest.raises(ValueError, match="top_k must be a positive int"):
        obj.categorical_accuracy(p, pt.lvector("t"), top_k=0)
    with pytest.raises(ValueError, match="categorical_accuracy: targets must have ndim 2"):
        obj.categorical_accuracy(p, pt.tensor3("t"))
