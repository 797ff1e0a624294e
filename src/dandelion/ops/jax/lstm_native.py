"""The C backend's LSTM kernels as XLA custom calls, for JAX on CPU.

XLA runs ``lax.scan`` as a while loop whose every step pays the loop's bookkeeping and
a product of its own choosing: dandelion-JAX's W1 training step took 35.6 ms against the
C backend's 24 (AMD EPYC, 2 threads). The kernels of ``dandelion.ops.c.lstm_packed``
(``W_hid`` packed once per call, a thread team) are built here as one library with XLA
FFI handlers around their entry points (``native_code``, ``xla_ffi_code``'s helpers and
the handlers below, once per machine through ``dandelion.ops.native``) and registered as
CPU targets. The team runs on XLA's own intra-op pool (see ``xla_ffi_code``), and
``dW_hid`` is left to XLA, so the kernels make no BLAS call there: OpenBLAS's workers,
spinning after each call, would take XLA's cores. ``dandelion.ops.jax.lstm`` calls the
targets through ``lax.platform_dependent``, so a GPU still runs the scans.

``native_lstm_targets()`` is None, and the scans run on CPU too, without a C++ compiler,
without SciPy's BLAS, with a JAX older than ``jax.ffi``, when the build fails (a jaxlib
whose ``c_api.h`` the handlers do not know), or with ``DANDELION_NATIVE_KERNELS=0``.
"""

from __future__ import annotations

from functools import cache

from dandelion.ops.c import lstm_kernels as c_lstm_kernels
from dandelion.ops.jax.native_targets import build_library, jax_ffi_available, register_targets
from dandelion.ops.jax.xla_ffi_code import ffi_support_code

FORWARD, BACKWARD = "dandelion_lstm_forward", "dandelion_lstm_backward"

# One handler per entry point and dtype (on ``xla_ffi_code``'s helpers). The buffers keep
# the Numba callbacks' order; the sizes come from their shapes, the options from the
# attributes (the clip in the kernel's dtype, which is the precision the kernels bound in, so
# that a float32 program holds no float64 at all).
_HANDLERS = r"""
static const int64_t dl_xla_forward_ranks[9] = {3, 2, 2, 2, 2, 2, 3, 3, 3};
static const int64_t dl_xla_backward_ranks[14] = {2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 2, 2, 2};

#define DL_XLA_LSTM(SUFFIX, T, DTYPE)                                                                          \
    extern "C" XLA_FFI_Error* dandelion_xla_lstm_forward_##SUFFIX(XLA_FFI_CallFrame* call)                    \
    {                                                                                                          \
        if (dl_xla_answer_metadata(call) || call->stage != XLA_FFI_ExecutionStage_EXECUTE) return NULL;       \
        void* b[9];                                                                                            \
        const int64_t* peephole = (const int64_t*)dl_xla_attribute(&call->attrs, "peephole", XLA_FFI_DataType_S64); \
        const int64_t* has_mask = (const int64_t*)dl_xla_attribute(&call->attrs, "has_mask", XLA_FFI_DataType_S64); \
        if (!peephole || !has_mask                                                                             \
            || !dl_xla_buffers(call->args.args, call->args.size, 6, DTYPE, dl_xla_forward_ranks, b)            \
            || !dl_xla_buffers(call->rets.rets, call->rets.size, 3, DTYPE, dl_xla_forward_ranks + 6, b + 6))   \
            return dl_xla_error(call->api, "dandelion_lstm_forward: unexpected buffers or attributes");        \
        const int64_t* gi = ((XLA_FFI_Buffer*)call->args.args[0])->dims;                                       \
        const int64_t p[5] = {gi[0], gi[1], ((XLA_FFI_Buffer*)call->args.args[1])->dims[0], *peephole, *has_mask}; \
        dl_xla_pool pool;                                                                                      \
        dl_xla_lend_pool(call, &pool);                                                                         \
        dandelion_native_lstm_forward_##T((const T*)b[0], (const T*)b[1], (const T*)b[2], (const T*)b[3],     \
                                          (const T*)b[4], (const T*)b[5], (T*)b[6], (T*)b[7], (T*)b[8], p);   \
        dl_lstm_team_lend_pool(NULL, NULL, 0);                                                                 \
        return NULL;                                                                                           \
    }                                                                                                          \
                                                                                                               \
    /* d_W (NULL): XLA forms dW_hid, on its own threads */                                                     \
    extern "C" XLA_FFI_Error* dandelion_xla_lstm_backward_##SUFFIX(XLA_FFI_CallFrame* call)                   \
    {                                                                                                          \
        if (dl_xla_answer_metadata(call) || call->stage != XLA_FFI_ExecutionStage_EXECUTE) return NULL;       \
        void* b[14];                                                                                           \
        const int64_t* peephole = (const int64_t*)dl_xla_attribute(&call->attrs, "peephole", XLA_FFI_DataType_S64); \
        const int64_t* has_mask = (const int64_t*)dl_xla_attribute(&call->attrs, "has_mask", XLA_FFI_DataType_S64); \
        const T* clip = (const T*)dl_xla_attribute(&call->attrs, "grad_clipping", DTYPE);                      \
        if (!peephole || !has_mask || !clip                                                                    \
            || !dl_xla_buffers(call->args.args, call->args.size, 10, DTYPE, dl_xla_backward_ranks, b)          \
            || !dl_xla_buffers(call->rets.rets, call->rets.size, 4, DTYPE, dl_xla_backward_ranks + 10, b + 10)) \
            return dl_xla_error(call->api, "dandelion_lstm_backward: unexpected buffers or attributes");       \
        const int64_t* hs = ((XLA_FFI_Buffer*)call->args.args[5])->dims;                                       \
        const int64_t p[5] = {hs[0], hs[1], ((XLA_FFI_Buffer*)call->args.args[0])->dims[0], *peephole, *has_mask}; \
        dl_xla_pool pool;                                                                                      \
        dl_xla_lend_pool(call, &pool);                                                                         \
        dandelion_native_lstm_backward_##T((const T*)b[0], (const T*)b[1], (const T*)b[2], (const T*)b[3],    \
                                           (const T*)b[4], (const T*)b[5], (const T*)b[6], (const T*)b[7],    \
                                           (const T*)b[8], (const T*)b[9], (T*)b[10], NULL, (T*)b[11],         \
                                           (T*)b[12], (T*)b[13], p, *clip);                                    \
        dl_lstm_team_lend_pool(NULL, NULL, 0);                                                                 \
        return NULL;                                                                                           \
    }

DL_XLA_LSTM(float32, float, XLA_FFI_DataType_F32)
DL_XLA_LSTM(float64, double, XLA_FFI_DataType_F64)
"""


def xla_code():
    """``native_code`` (the kernels and their C entry points) followed by the XLA FFI handlers."""
    return c_lstm_kernels.native_code() + ffi_support_code("dl_lstm") + _HANDLERS


def xla_library():
    """The loaded library (``ctypes.CDLL``), or None where it could not be built."""
    return build_library("lstm_xla", xla_code(), "lstm")


@cache
def native_lstm_targets():
    """``{dtype: (forward, backward)}`` registered XLA CPU target names, or None (see the module's doc)."""
    if not jax_ffi_available():
        return None  # a JAX before its ``jax.ffi`` module: the scans
    library = xla_library()
    if library is None:
        return None
    library.dandelion_native_lstm_without_pool()
    return register_targets(library, (FORWARD, BACKWARD))
