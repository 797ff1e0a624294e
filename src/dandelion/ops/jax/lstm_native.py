"""The C backend's LSTM kernels as XLA custom calls, for JAX on CPU.

XLA runs ``lax.scan`` as a while loop whose every step pays the loop's bookkeeping and
a GEMM of its own choosing; on W1 (AMD EPYC, 2 threads) dandelion-JAX's training step
took 35 ms against the C backend's 24, and its cost per step rose with T * B (0.17 ms
per forward step at T=50, 0.25 from T=60). The kernels of ``dandelion.ops.c.lstm_packed``
(a thread team over OpenBLAS's pool, ``W_hid`` packed once per call) are built here as a
library with XLA FFI handlers around their entry points (``native_code`` plus the
handlers below, once per machine through ``dandelion.ops.native``) and registered as CPU
targets. ``dandelion.ops.jax.lstm`` calls them through ``lax.platform_dependent``, so a
GPU still runs the scans.

``native_lstm_targets()`` is None, and the scans run on CPU too, without a C++ compiler,
without SciPy's BLAS, when the build fails, or with ``DANDELION_NATIVE_KERNELS=0``.
"""

from __future__ import annotations

import ctypes
from functools import cache

import jax

from dandelion.ops import native
from dandelion.ops.c import lstm_kernels as c_lstm_kernels
from dandelion.ops.scipy_blas import scipy_gemm_addresses

FORWARD, BACKWARD = "dandelion_lstm_forward", "dandelion_lstm_backward"

# One handler per entry point and dtype, written against XLA's C API (``c_api.h``): the C++
# bindings of ``ffi.h`` took 4.7 s more to compile than the kernels themselves (1.9 s,
# AMD EPYC), and the library is built on every cold cache. The buffers keep the Numba
# callbacks' order; the sizes come from their shapes, the options from the attributes.
_HANDLERS = r"""
#include <time.h>
#include "xla/ffi/api/c_api.h"

static XLA_FFI_Error* dl_xla_error(const XLA_FFI_Api* api, const char* message)
{
    XLA_FFI_Error_Create_Args args = {XLA_FFI_Error_Create_Args_STRUCT_SIZE, NULL, message,
                                      XLA_FFI_Error_Code_INVALID_ARGUMENT};
    return api->XLA_FFI_Error_Create(&args);
}

/* XLA asks each handler for the FFI version it was built against before it first calls it. */
static int dl_xla_answer_metadata(XLA_FFI_CallFrame* call)
{
    XLA_FFI_Extension_Base* extension = call->extension_start;
    if (!extension || extension->type != XLA_FFI_Extension_Metadata) return 0;
    XLA_FFI_Metadata* metadata = ((XLA_FFI_Metadata_Extension*)extension)->metadata;
    metadata->api_version.struct_size = XLA_FFI_Api_Version_STRUCT_SIZE;
    metadata->api_version.extension_start = NULL;
    metadata->api_version.major_version = XLA_FFI_API_MAJOR;
    metadata->api_version.minor_version = XLA_FFI_API_MINOR;
    metadata->traits = 0;
#ifdef XLA_FFI_UNKNOWN_TYPE_ID
    metadata->state_type_id = XLA_FFI_UNKNOWN_TYPE_ID;
#endif
    return 1;
}

/* The i-th buffer when it has the dtype and rank given, else NULL (the shapes are checked at trace time). */
static XLA_FFI_Buffer* dl_xla_buffer(void** buffers, int i, XLA_FFI_DataType dtype, int64_t rank)
{
    XLA_FFI_Buffer* buffer = (XLA_FFI_Buffer*)buffers[i];
    return buffer->dtype == dtype && buffer->rank == rank ? buffer : NULL;
}

static int dl_xla_buffers(void** buffers, int64_t count, int64_t expected, XLA_FFI_DataType dtype,
                          const int64_t* ranks, void** data)
{
    if (count != expected) return 0;
    for (int i = 0; i < count; ++i) {
        XLA_FFI_Buffer* buffer = dl_xla_buffer(buffers, i, dtype, ranks[i]);
        if (!buffer) return 0;
        data[i] = buffer->data;
    }
    return 1;
}

/* The scalar attribute ``name`` of dtype ``dtype`` (int64 or float64), else NULL. */
static const void* dl_xla_attribute(const XLA_FFI_Attrs* attrs, const char* name, XLA_FFI_DataType dtype)
{
    const size_t length = strlen(name);
    for (int64_t i = 0; i < attrs->size; ++i) {
        const XLA_FFI_ByteSpan* key = attrs->names[i];
        if (key->len != length || memcmp(key->ptr, name, length) != 0) continue;
        const XLA_FFI_Scalar* scalar = (const XLA_FFI_Scalar*)attrs->attrs[i];
        return attrs->types[i] == XLA_FFI_AttrType_SCALAR && scalar->dtype == dtype ? scalar->value : NULL;
    }
    return NULL;
}

/* The team on XLA's intra-op pool: one pool for the whole process, as OpenBLAS's is on the other
   backends (threads of ours would share the cores with XLA's, which spin after each task). XLA may be
   running other work on the pool, this call's own thread among it, so the team is whoever joins within
   DL_XLA_JOIN_NS: a member that starts later finds the team's size fixed and leaves, and the caller never
   waits on a task that cannot start (two such calls on a two-thread pool would wait on each other). */
#define DL_XLA_JOIN_NS 500000L

typedef struct {
    const XLA_FFI_Api* api;
    XLA_FFI_ExecutionContext* ctx;
} dl_xla_pool;

typedef struct {
    int references; /* the caller's and each scheduled member's; the last one frees the team */
    int joined;     /* members started so far, the caller not counted; each one's number */
    int size;       /* 0 until the caller fixes the team */
    int done;
    dl_lstm_team_fn fn;
    void* arg;
} dl_xla_team;

static void dl_xla_wait(long spins)
{
    if (spins > 2000) sched_yield();
}

static void dl_xla_release(dl_xla_team* team)
{
    if (__atomic_sub_fetch(&team->references, 1, __ATOMIC_ACQ_REL) == 0) free(team);
}

static void dl_xla_member(void* data)
{
    dl_xla_team* team = (dl_xla_team*)data;
    const int thread = __atomic_add_fetch(&team->joined, 1, __ATOMIC_ACQ_REL);
    int size;
    for (long spins = 0; (size = __atomic_load_n(&team->size, __ATOMIC_ACQUIRE)) == 0; ++spins) dl_xla_wait(spins);
    if (thread < size) { /* else late: the team ran without this member */
        team->fn(team->arg, thread, size);
        __atomic_add_fetch(&team->done, 1, __ATOMIC_RELEASE);
    }
    dl_xla_release(team);
}

static long dl_xla_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec * 1000000000L + now.tv_nsec;
}

static int dl_xla_pool_run(void* pool_p, int n, dl_lstm_team_fn fn, void* arg)
{
    const dl_xla_pool* pool = (const dl_xla_pool*)pool_p;
    dl_xla_team* team = (dl_xla_team*)calloc(1, sizeof(dl_xla_team));
    if (!team) {
        fn(arg, 0, 1);
        return 1;
    }
    team->references = 1;
    team->fn = fn;
    team->arg = arg;
    int scheduled = 0;
    for (int k = 1; k < n; ++k) {
        __atomic_add_fetch(&team->references, 1, __ATOMIC_ACQ_REL);
        XLA_FFI_ThreadPool_Schedule_Args args = {XLA_FFI_ThreadPool_Schedule_Args_STRUCT_SIZE, NULL, pool->ctx,
                                                 dl_xla_member, team};
        XLA_FFI_Error* error = pool->api->XLA_FFI_ThreadPool_Schedule(&args);
        if (error) {
            XLA_FFI_Error_Destroy_Args destroy = {XLA_FFI_Error_Destroy_Args_STRUCT_SIZE, NULL, error};
            pool->api->XLA_FFI_Error_Destroy(&destroy);
            __atomic_sub_fetch(&team->references, 1, __ATOMIC_ACQ_REL);
            break;
        }
        ++scheduled;
    }
    const long start = dl_xla_now_ns();
    for (long spins = 0; __atomic_load_n(&team->joined, __ATOMIC_ACQUIRE) < scheduled; ++spins) {
        if (dl_xla_now_ns() - start > DL_XLA_JOIN_NS) break;
        dl_xla_wait(spins);
    }
    /* members numbered below the size run; one that joins after this store finds itself above it */
    int joined = __atomic_load_n(&team->joined, __ATOMIC_ACQUIRE);
    joined = joined < scheduled ? joined : scheduled;
    const int size = joined + 1;
    __atomic_store_n(&team->size, size, __ATOMIC_RELEASE);
    fn(arg, 0, size);
    for (long spins = 0; __atomic_load_n(&team->done, __ATOMIC_ACQUIRE) < joined; ++spins) dl_xla_wait(spins);
    dl_xla_release(team);
    return size;
}

/* Lends XLA's pool to the teams the kernel starts on this thread, for the length of one call. */
static void dl_xla_lend_pool(XLA_FFI_CallFrame* call, dl_xla_pool* pool)
{
    int64_t threads = 0;
    XLA_FFI_ThreadPool_NumThreads_Args args = {XLA_FFI_ThreadPool_NumThreads_Args_STRUCT_SIZE, NULL, call->ctx, &threads};
    XLA_FFI_Error* error = call->api->XLA_FFI_ThreadPool_NumThreads(&args);
    if (error) { /* no pool: the team's own threads */
        XLA_FFI_Error_Destroy_Args destroy = {XLA_FFI_Error_Destroy_Args_STRUCT_SIZE, NULL, error};
        call->api->XLA_FFI_Error_Destroy(&destroy);
        return;
    }
    pool->api = call->api;
    pool->ctx = call->ctx;
    if (threads > 1) dl_lstm_team_lend_pool(dl_xla_pool_run, pool, threads < 64 ? (int)threads : 64);
}

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
        const double* clip = (const double*)dl_xla_attribute(&call->attrs, "grad_clipping", XLA_FFI_DataType_F64); \
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
    return c_lstm_kernels.native_code() + _HANDLERS


def xla_library():
    """The loaded library (``ctypes.CDLL``), or None where it could not be built."""
    return native.load_library("lstm_xla", xla_code(), (f"-I{jax.ffi.include_dir()}",))


@cache
def native_lstm_targets():
    """``{dtype: (forward, backward)}`` registered XLA CPU target names, or None (see the module's doc)."""
    gemms = scipy_gemm_addresses()
    library = None if gemms is None else xla_library()
    if library is None:
        return None
    library.dandelion_native_lstm_init(ctypes.c_void_p(gemms["float32"]), ctypes.c_void_p(gemms["float64"]))
    library.dandelion_native_lstm_without_pool()
    targets = {}
    for dtype in ("float32", "float64"):
        names = []
        for entry in (FORWARD, BACKWARD):
            name = f"{entry}_{dtype}"
            handler = getattr(library, f"dandelion_xla_{entry.removeprefix('dandelion_')}_{dtype}")
            jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(handler), platform="cpu")
            names.append(name)
        targets[dtype] = tuple(names)
    return targets
