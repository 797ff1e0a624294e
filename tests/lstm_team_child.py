"""Child process of tests/test_lstm_team.py: the fused LSTM Ops on one backend, in a process of its own.

``python -m tests.lstm_team_child MODE CASE OUT [CALLERS]``: compiles the forward and gradient Ops
(peepholes, mask, clip bound 0.5) on ``MODE`` ("c" or "numba") with ``perform`` patched
to fail, evaluates them on the arrays of ``CASE`` (.npz) and writes the outputs to
``OUT`` (.npz), with ``team``: the last thread team of the Numba backend's library
(size * 10 + kind, see ``dandelion.ops.c.team``; -1 where none ran) and ``native``:
whether that library served the Numba backend. The team's size is read once per
process (``DANDELION_KERNEL_THREADS``, ``OPENBLAS_NUM_THREADS``), hence the process.
With ``CALLERS`` > 1, that many more Python threads each call a function of their own at
once, with NumPy products between the calls (the kernels and OpenBLAS's pool are shared
by all of them), and ``agree`` says whether every call gave the first call's outputs.
"""

from __future__ import annotations

import sys
from unittest import mock

import numpy as np

NAMES = ("gi", "W", "w_ci", "w_cf", "w_co", "h0", "c0", "mask", "d_hs", "d_cs")
CLIP = 0.5


def _concurrent_calls_agree(compile_function, case, expected, callers, calls=5):
    """Each extra caller runs a function of its own (a PyTensor function's storage is not for
    several threads at once); the kernels, their team and OpenBLAS's pool are shared."""
    import threading

    functions = [compile_function() for _ in range(callers - 1)]
    agree = []

    def caller(function):
        for _ in range(calls):
            got = function(*(case[n] for n in NAMES))
            np.dot(case["gi"][0], case["W"].T)
            agree.append(all(np.array_equal(g, e) for g, e in zip(got, expected, strict=True)))

    threads = [threading.Thread(target=caller, args=(f,)) for f in functions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(agree) == (callers - 1) * calls and all(agree)


def main(mode, case_path, out_path, callers="1"):
    callers = int(callers)
    import pytensor.tensor as pt

    import dandelion
    from dandelion.ops.lstm import LSTMSequenceGradOp, LSTMSequenceOp

    case = np.load(case_path)
    variables = {n: pt.tensor(n, dtype="float32", shape=(None,) * case[n].ndim) for n in NAMES}
    v = variables
    inputs = [v["gi"], v["W"], v["w_ci"], v["w_cf"], v["w_co"], v["h0"], v["c0"], v["mask"]]
    hs, cs, gates = LSTMSequenceOp(True, True)(*inputs)
    grads = LSTMSequenceGradOp(True, True, CLIP)(*inputs[1:], hs, cs, gates, v["d_hs"], v["d_cs"])
    failing = [mock.patch.object(op, "perform", side_effect=AssertionError(f"{op.__name__} ran perform"))
               for op in (LSTMSequenceOp, LSTMSequenceGradOp)]  # fmt: skip
    def compile_function():
        return dandelion.function([v[n] for n in NAMES], [hs, cs, gates, *grads], mode=mode.upper())

    with failing[0], failing[1]:
        outputs = [np.array(o) for o in compile_function()(*(case[n] for n in NAMES))]
        agree = _concurrent_calls_agree(compile_function, case, outputs, callers)
    result = {f"out{k}": o for k, o in enumerate(outputs)}
    result["agree"] = np.array(agree)
    result["team"], result["native"] = np.array(-1), np.array(False)
    if mode == "numba":
        from dandelion.ops import native
        from dandelion.ops.c import lstm_kernels
        from dandelion.ops.numba.lstm_cfuncs import native_lstm

        if native_lstm() is not None:
            library = native.load_library("lstm", lstm_kernels.native_code())
            result["team"], result["native"] = np.array(library.dandelion_native_lstm_last_team()), np.array(True)
    np.savez(out_path, **result)


if __name__ == "__main__":
    main(*sys.argv[1:5])
