"""NumPy-side utilities: padding, ring buffer, output tap, time stamp, weight look-up, safe_run."""

import io
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dandelion import util


def ref_pad(xs, maxlen, truncating, padding, value):
    """Element by element, independent of the vectorised implementation."""
    maxlen = max(len(x) for x in xs) if maxlen is None else maxlen
    out, mask = [], []
    for x in xs:
        kept = list(x[len(x) - maxlen :]) if truncating == "pre" and len(x) > maxlen else list(x[:maxlen])
        fill = [np.full(np.shape(x)[1:], value)] * (maxlen - len(kept))
        out.append(kept + fill if padding == "post" else fill + kept)
        ones, zeros = [1] * len(kept), [0] * (maxlen - len(kept))
        mask.append(ones + zeros if padding == "post" else zeros + ones)
    return np.array(out, dtype=np.asarray(xs[0]).dtype).reshape((len(xs), maxlen) + np.shape(xs[0])[1:]), np.array(mask)


@given(
    lengths=st.lists(st.integers(0, 5), min_size=1, max_size=4),
    feature=st.sampled_from([(), (2,)]),
    maxlen=st.one_of(st.none(), st.integers(1, 6)),
    truncating=st.sampled_from(["pre", "post"]),
    padding=st.sampled_from(["pre", "post"]),
)
def test_pad_sequence_into_array_matches_a_plain_loop(lengths, feature, maxlen, truncating, padding):
    rng = np.random.default_rng(len(lengths))
    xs = [rng.standard_normal((n,) + feature).astype("float32") for n in lengths]
    if maxlen is None and max(lengths) == 0:
        maxlen = 1
    out, mask = util.pad_sequence_into_array(xs, maxlen, truncating, padding, value=-1.0)
    ref_out, ref_mask = ref_pad(xs, maxlen, truncating, padding, -1.0)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(mask, ref_mask)
    assert out.dtype == np.float32 and mask.dtype == np.float32


def test_pad_sequence_errors():
    with pytest.raises(ValueError, match=r"padding must be one of \('pre', 'post'\), got 'left'"):
        util.pad_sequence_into_array([np.zeros(2)], padding="left")
    with pytest.raises(ValueError, match=r"Xs\[1\] has shape \(2, 3\)"):
        util.pad_sequence_into_array([np.zeros((2, 2)), np.zeros((2, 3))])


def test_finite_memory_array_keeps_the_last_values():
    memory = util.finite_memory_array(shape=(2, 3))
    assert memory.content.shape == (2, 0)
    for k in range(5):
        memory.update(np.array([k, 10 * k]))
    assert memory.get_current_position() == 2
    np.testing.assert_array_equal(memory.content, [[3, 4, 2], [30, 40, 20]])
    memory.clear()
    assert memory.content.shape == (2, 0)
    assert util.Finite_Memory_Array is util.finite_memory_array
    with pytest.raises(ValueError, match="give array or shape"):
        util.finite_memory_array()


def test_sys_output_tap_copies_output_to_a_file():
    screen, log = io.StringIO(), io.StringIO()
    tap = util.sys_output_tap(screen)
    print("before", file=tap)
    tap.set_file(log)
    print("after", file=tap)
    assert screen.getvalue() == "before\nafter\n" == log.getvalue()
    with pytest.raises(RuntimeError, match="already set"):
        tap.set_file(io.StringIO())
    tap.close()
    assert tap.file is None and not screen.closed


def test_time_stamp_and_weight_lookup():
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}", util.get_time_stamp())
    weights = [[np.ones(2), "W@Dense|a"], [np.zeros(3), "b@Dense|a"]]
    np.testing.assert_array_equal(util.get_weight_by_name(weights, "b@Dense|a"), np.zeros(3))
    assert util.get_weight_by_name(weights, "missing") is None


def test_safe_run_turns_out_of_memory_into_status_codes(capsys):
    def raises(error):
        def fn(*args):
            raise error

        return fn

    assert util.safe_run(lambda a, b: a * b, [3, 4]) == (0, 12)
    assert util.safe_run(raises(MemoryError()), []) == (1, None)
    assert util.safe_run(raises(RuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 4GiB")), []) == (2, None)
    with pytest.raises(ValueError, match="unrelated"):
        util.safe_run(raises(ValueError("unrelated")), [])
    assert "out of memory" in capsys.readouterr().out
    assert util.theano_safe_run is util.safe_run
