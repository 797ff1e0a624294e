"""The C backend's GRU kernels as XLA custom calls, for JAX on CPU.

As ``lstm_native`` for the LSTM: XLA compiling the GRU's two scans took 194 MB of W2's
training step's peak memory (591 MB against PyTorch's 341) and ran each step through the
while loop's bookkeeping. The kernels of ``dandelion.ops.c.gru_kernels`` (one BLAS
product per step, SciPy's GEMM at the pointers ``dandelion_native_gru_init`` receives)
are built here as one library with XLA FFI handlers around their entry points and
registered as CPU targets. Unlike the LSTM's, the backward forms ``dW_hid`` itself, one
SciPy GEMM over all T * B rows: the kernels call that BLAS every step anyway, and with
XLA forming it from the kernel's cotangents the GRU's forward and backward at T=100,
B=32, H=256 took 60 ms against 45-49 (AMD EPYC, 2 threads).
``dandelion.ops.jax.gru`` calls the targets through ``lax.platform_dependent``, so a GPU
still runs the scans.

``native_gru_targets()`` is None, and the scans run on CPU too, in the cases
``lstm_native`` lists.
"""

from __future__ import annotations

from functools import cache

from dandelion.ops.c import gru_kernels as c_gru_kernels
from dandelion.ops.jax.native_targets import build_library, jax_ffi_available, register_targets
from dandelion.ops.jax.xla_ffi_code import ffi_support_code

FORWARD, BACKWARD = "dandelion_gru_forward", "dandelion_gru_backward"

# One handler per entry point and dtype (on ``xla_ffi_code``'s helpers): the buffers in
# the order of the entry points' arguments, the sizes from their shapes.
_HANDLERS = r"""
static const int64_t dl_xla_forward_ranks[6] = {3, 2, 2, 2, 3, 3};
static const int64_t dl_xla_backward_ranks[10] = {2, 2, 2, 3, 3, 3, 3, 2, 2, 3};

#define DL_XLA_GRU(SUFFIX, T, DTYPE)                                                                           \
    extern "C" XLA_FFI_Error* dandelion_xla_gru_forward_##SUFFIX(XLA_FFI_CallFrame* call)                     \
    {                                                                                                          \
        if (dl_xla_answer_metadata(call) || call->stage != XLA_FFI_ExecutionStage_EXECUTE) return NULL;       \
        void* b[6];                                                                                            \
        const int64_t* has_mask = (const int64_t*)dl_xla_attribute(&call->attrs, "has_mask", XLA_FFI_DataType_S64); \
        if (!has_mask || !dl_xla_buffers(call->args.args, call->args.size, 4, DTYPE, dl_xla_forward_ranks, b)  \
            || !dl_xla_buffers(call->rets.rets, call->rets.size, 2, DTYPE, dl_xla_forward_ranks + 4, b + 4))   \
            return dl_xla_error(call->api, "dandelion_gru_forward: unexpected buffers or attributes");         \
        const int64_t* gi = ((XLA_FFI_Buffer*)call->args.args[0])->dims;                                       \
        const int64_t p[4] = {gi[0], gi[1], ((XLA_FFI_Buffer*)call->args.args[1])->dims[0], *has_mask};       \
        dandelion_native_gru_forward_##T((const T*)b[0], (const T*)b[1], (const T*)b[2], (const T*)b[3],      \
                                         (T*)b[4], (T*)b[5], p);                                              \
        return NULL;                                                                                           \
    }                                                                                                          \
                                                                                                               \
    extern "C" XLA_FFI_Error* dandelion_xla_gru_backward_##SUFFIX(XLA_FFI_CallFrame* call)                    \
    {                                                                                                          \
        if (dl_xla_answer_metadata(call) || call->stage != XLA_FFI_ExecutionStage_EXECUTE) return NULL;       \
        void* b[10];                                                                                           \
        const int64_t* has_mask = (const int64_t*)dl_xla_attribute(&call->attrs, "has_mask", XLA_FFI_DataType_S64); \
        const T* clip = (const T*)dl_xla_attribute(&call->attrs, "grad_clipping", DTYPE);                     \
        if (!has_mask || !clip                                                                                 \
            || !dl_xla_buffers(call->args.args, call->args.size, 6, DTYPE, dl_xla_backward_ranks, b)           \
            || !dl_xla_buffers(call->rets.rets, call->rets.size, 4, DTYPE, dl_xla_backward_ranks + 6, b + 6))  \
            return dl_xla_error(call->api, "dandelion_gru_backward: unexpected buffers or attributes");        \
        const int64_t* hs = ((XLA_FFI_Buffer*)call->args.args[3])->dims;                                       \
        const int64_t p[4] = {hs[0], hs[1], hs[2], *has_mask};                                                 \
        dandelion_native_gru_backward_##T((const T*)b[0], (const T*)b[1], (const T*)b[2], (const T*)b[3],      \
                                          (const T*)b[4], (const T*)b[5], (T*)b[6], (T*)b[7], (T*)b[8],        \
                                          (T*)b[9], p, *clip);                                                 \
        return NULL;                                                                                           \
    }

DL_XLA_GRU(float32, float, XLA_FFI_DataType_F32)
DL_XLA_GRU(float64, double, XLA_FFI_DataType_F64)
"""


def xla_code():
    """``native_code`` (the kernels and their C entry points) followed by the XLA FFI handlers."""
    return c_gru_kernels.native_code() + ffi_support_code("dl_gru", team=False) + _HANDLERS


@cache
def native_gru_targets():
    """``{dtype: (forward, backward)}`` registered XLA CPU target names, or None (see the module's doc)."""
    if not jax_ffi_available():
        return None
    library = build_library("gru_xla", xla_code(), "gru")
    return None if library is None else register_targets(library, (FORWARD, BACKWARD))
