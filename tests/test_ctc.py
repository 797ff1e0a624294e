"""CTC cost, gradient, best-path decoding and CER against brute force.

The cost is checked against the sum over every frame-level path (all C+1 classes at
each of T frames) that collapses to the label sequence; its gradient against the same
enumeration; decoding against a plain loop; CER against a table edit distance. One
compiled function per backend holds every CTC graph (scan graphs compile slowly), and
hypothesis varies lengths, padding sides, blanks and values at a fixed padded shape.
"""

import itertools

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dandelion.objective import ctc_best_path_decode, ctc_CER, ctc_cost_logscale
from tests.helpers import GRAD_MODE, assert_close, compile_fn
from tests.op_harness import CTCForwardGradOp, CTCForwardOp, check_grad, check_infer_shape

B, T, K, L = 3, 5, 3, 3  # batch, frames, classes incl. blank, label slots

# ------------------------------------------------------------------ references


def collapse(path, blank):
    out, previous = [], None
    for symbol in path:
        if symbol != previous and symbol != blank:
            out.append(symbol)
        previous = symbol
    return out


def brute_force(labels, probs, blank):
    """(-log p(labels), d(-log p)/d probs) by enumerating all K**T paths."""
    frames, classes = probs.shape
    total, grad = 0.0, np.zeros_like(probs)
    for path in itertools.product(range(classes), repeat=frames):
        if collapse(path, blank) != list(labels):
            continue
        p = np.prod([probs[t, s] for t, s in enumerate(path)])
        total += p
        for t, s in enumerate(path):
            grad[t, s] += p / probs[t, s]
    return -np.log(total), -grad / total


def edit_distance(a, b):
    table = np.zeros((len(a) + 1, len(b) + 1), dtype=int)
    table[:, 0] = np.arange(len(a) + 1)
    table[0, :] = np.arange(len(b) + 1)
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i, j] = min(table[i - 1, j] + 1, table[i, j - 1] + 1, table[i - 1, j - 1] + (a[i - 1] != b[j - 1]))
    return table[-1, -1]


def place(values, width, side):
    """Pad ``values`` to ``width`` on the end ('pre' alignment) or the start ('post'); returns (row, mask)."""
    values = np.asarray(values)
    row = np.zeros((width,) + values.shape[1:], dtype=values.dtype)
    mask = np.zeros(width, dtype="float32")
    span = slice(0, len(values)) if side == "pre" else slice(width - len(values), width)
    row[span], mask[span] = values, 1
    return row, mask


# ------------------------------------------------------------------ graph

_CACHE = {}


def ctc_function(backend):
    """cost, d cost / d sm (masked, symbolic blank), cost without masks, decode and CER."""
    if backend not in _CACHE:
        seq = pt.tensor("seq", shape=(B, L), dtype="int64")
        sm = pt.tensor("sm", shape=(B, T, K), dtype="float32")
        full_seq = pt.tensor("full_seq", shape=(B, 2), dtype="int64")
        seq_mask = pt.tensor("seq_mask", shape=(B, L), dtype="float32")
        sm_mask = pt.tensor("sm_mask", shape=(B, T), dtype="float32")
        blank = pt.lscalar("blank")
        if backend != "jax":  # free shapes: any example reuses the compiled function
            seq, sm, full_seq, seq_mask, sm_mask = (
                pt.tensor(v.name, shape=(None,) * v.ndim, dtype=v.dtype) for v in (seq, sm, full_seq, seq_mask, sm_mask)
            )
        cost = ctc_cost_logscale(seq, sm, seq_mask, sm_mask, blank_symbol=blank, align="post")
        cost_plain = ctc_cost_logscale(full_seq, sm)
        decoded, decoded_mask = ctc_best_path_decode(sm, sm_mask, blank_symbol=blank)
        cer, edits, length = ctc_CER(decoded, seq.T, decoded_mask, seq_mask.T)
        outputs = [cost, pytensor.grad(cost, sm), cost_plain, decoded, decoded_mask, cer, edits, length]
        _CACHE[backend] = compile_fn([seq, sm, full_seq, seq_mask, sm_mask, blank], outputs, backend)
    return _CACHE[backend]


@st.composite
def ctc_batches(draw):
    """A padded batch whose samples can all be aligned (enough frames for labels and repeats)."""
    blank = draw(st.sampled_from([0, K - 1]))
    symbols = [s for s in range(K) if s != blank]
    rows = []
    for _ in range(B):
        labels = draw(st.lists(st.sampled_from(symbols), min_size=0, max_size=L))
        needed = len(labels) + sum(a == b for a, b in zip(labels, labels[1:]))
        frames = draw(st.integers(max(needed, 1), T))
        rows.append((labels, frames, draw(st.sampled_from(["pre", "post"])), draw(st.sampled_from(["pre", "post"]))))
    seed = draw(st.integers(0, 2**16))
    return blank, rows, seed


def make_inputs(blank, rows, seed):
    rng = np.random.default_rng(seed)
    probs = rng.random((B, T, K)).astype("float32") + 0.05
    probs /= probs.sum(-1, keepdims=True)
    seq, seq_mask, sm, sm_mask = [], [], [], []
    for b, (labels, frames, label_side, frame_side) in enumerate(rows):
        row, mask = place(np.array(labels, dtype="int64"), L, label_side)
        seq.append(row), seq_mask.append(mask)
        row, mask = place(probs[b, :frames], T, frame_side)
        # Padded frames hold probabilities too: the mask alone must exclude them.
        row[mask == 0] = probs[b, frames:][: int((mask == 0).sum())] if frames < T else row[mask == 0]
        sm.append(row), sm_mask.append(mask)
    return np.array(seq), np.array(sm, dtype="float32"), np.array(seq_mask), np.array(sm_mask)


@given(batch=ctc_batches())
def test_ctc_cost_gradient_decode_and_cer_match_brute_force(backend, batch):
    blank, rows, seed = batch
    seq, sm, seq_mask, sm_mask = make_inputs(blank, rows, seed)
    full_seq = np.array(
        [[s for s in range(K) if s != blank][:1] * 2] * B, dtype="int64"
    )  # labels (a, a): needs a blank
    f = ctc_function(backend)
    cost, grad, cost_plain, decoded, decoded_mask, cer, edits, length = f(seq, sm, full_seq, seq_mask, sm_mask, blank)

    nll, expected_grad, plain, total_edits = [], np.zeros(sm.shape), [], 0
    for b, (labels, _, _, _) in enumerate(rows):
        valid = sm_mask[b] > 0
        value, g = brute_force(labels, sm[b][valid].astype("float64"), blank)
        nll.append(value)
        expected_grad[b][valid] = g / B
        plain.append(brute_force(full_seq[b], sm[b].astype("float64"), K - 1)[0])
        best = collapse(sm[b][valid].argmax(-1), blank)
        got = decoded[: int(decoded_mask[:, b].sum()), b]
        np.testing.assert_array_equal(got, best)
        assert np.all(decoded[len(best) :, b] == -1) and np.all(decoded_mask[len(best) :, b] == 0)
        total_edits += edit_distance(best, labels)
    assert np.asarray(cost).dtype == np.float32 and grad.dtype == np.float32 and np.asarray(cer).dtype == np.float32
    assert_close(cost, np.mean(nll), rtol=1e-5, atol=1e-5)
    assert_close(grad, expected_grad, rtol=1e-3, atol=1e-4)
    assert_close(cost_plain, np.mean(plain), rtol=1e-5, atol=1e-5)
    total_length = sum(len(r[0]) for r in rows)
    assert int(edits) == total_edits and int(length) == total_length
    if total_length:
        assert_close(cer, total_edits / total_length)


def test_ctc_labels_the_frames_cannot_hold_cost_about_1e30_with_finite_gradient(backend):
    f = ctc_function(backend)
    seq = np.array([[0, 0, 0]] * B, dtype="int64")  # (a, a, a) needs 5 frames
    sm = np.full((B, T, K), 1.0 / K, dtype="float32")
    sm_mask = np.ones((B, T), "float32")
    sm_mask[:, 4:] = 0
    cost, grad = f(seq, sm, np.zeros((B, 2), "int64"), np.ones((B, L), "float32"), sm_mask, K - 1)[:2]
    assert cost > 1e29 and np.isfinite(cost)
    assert np.all(np.isfinite(grad))


def test_ctc_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    seq = np.array([[0, 1], [1, 1]])
    seq_mask = np.array([[1.0, 1.0], [1.0, 0.0]])
    sm_mask = np.array([[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 1.0]])

    # Scores need not be normalised for the recursion; positive values keep the graph small.
    def cost(scores):
        return ctc_cost_logscale(seq, scores, seq_mask, sm_mask)

    check_grad(cost, [rng.uniform(0.2, 1.0, (2, 4, 3))], mode=GRAD_MODE)


def test_ctc_shapes_come_from_infer_shape():
    seq, sm = pt.lmatrix("seq"), pt.tensor("sm", shape=(None, None, None), dtype="float32")
    cost = ctc_cost_logscale(seq, sm)
    grad = pytensor.grad(cost, sm)
    values = [np.zeros((2, 2), "int64"), np.ones((2, 4, 3), "float32")]
    check_infer_shape([seq, sm], [cost, grad], values, [(), (2, 4, 3)], (CTCForwardOp, CTCForwardGradOp))


def test_ctc_errors_are_clear():
    seq = pt.tensor("seq", shape=(2, 6), dtype="int64")
    sm = pt.tensor("sm", shape=(2, 4, 3), dtype="float32")
    with pytest.raises(ValueError, match="ctc_cost_logscale: labels of length 6 cannot be aligned to 4 frames"):
        ctc_cost_logscale(seq, sm)
    with pytest.raises(ValueError, match=r"align must be one of \('pre', 'post'\), got 'middle'"):
        ctc_cost_logscale(pt.lmatrix(), sm, align="middle")
    with pytest.raises(ValueError, match=r"sm must be \(B, T, C\+1\) \(ndim 3\), got ndim 2"):
        ctc_cost_logscale(pt.lmatrix(), pt.fmatrix())
    with pytest.raises(ValueError, match="seq and sm disagree on the batch size: 3 vs 2"):
        ctc_cost_logscale(pt.tensor("s", shape=(3, 2), dtype="int64"), sm)
    with pytest.raises(ValueError, match="sm and sm_mask disagree on axis 1: 4 vs 5"):
        ctc_cost_logscale(pt.lmatrix(), sm, sm_mask=pt.tensor("m", shape=(2, 5), dtype="float32"))
    with pytest.raises(ValueError, match=r"ctc_best_path_decode: Y must be \(B, T, C\+1\)"):
        ctc_best_path_decode(pt.fmatrix())
    with pytest.raises(ValueError, match=r"ctc_CER: resultseq and targetseq disagree on the batch size"):
        ctc_CER(pt.tensor("r", shape=(4, 2), dtype="int64"), pt.tensor("t", shape=(4, 3), dtype="int64"))
