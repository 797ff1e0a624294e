"""C support code for XLA custom calls into dandelion's kernels, written against XLA's C API.

``ffi_support_code(prefix)`` defines, for handlers compiled after ``team_code(prefix)``
(``dandelion.ops.c.team``):

- ``dl_xla_error(api, message)``: an INVALID_ARGUMENT error for XLA to raise;
- ``dl_xla_answer_metadata(call)``: answers XLA's question, asked before a handler's first
  call, of the FFI version the handler was built against (true when it was that question);
- ``dl_xla_buffers(list, count, expected, dtype, ranks, data)``: the data pointers of
  ``expected`` buffers of ``dtype`` and the ranks given, false when any differs;
- ``dl_xla_attribute(attrs, name, dtype)``: a scalar attribute's value (int64, float32 or float64),
  NULL when missing;
- ``dl_xla_lend_pool(call, pool)`` (``team=True``): lends XLA's intra-op pool to the teams
  the kernel starts on this thread until ``{prefix}_team_lend_pool(NULL, NULL, 0)``.

The C API (``c_api.h``) instead of the C++ bindings of ``ffi.h``: those took 4.7 s more to
compile than the LSTM kernels themselves (1.9 s, AMD EPYC), paid on every cold cache.
"""

from __future__ import annotations

from dandelion.ops.c.sequence import fill

_SUPPORT = r"""
#include <time.h>
#include "xla/ffi/api/c_api.h"

static XLA_FFI_Error* dl_xla_error(const XLA_FFI_Api* api, const char* message)
{
    XLA_FFI_Error_Create_Args args = {XLA_FFI_Error_Create_Args_STRUCT_SIZE, NULL, message,
                                      XLA_FFI_Error_Code_INVALID_ARGUMENT};
    return api->XLA_FFI_Error_Create(&args);
}

/* The call frame's extension type: XLA_FFI_Extension_Base up to FFI API 0.3 (jaxlib 0.10),
   XLA_FFI_InternalExtension from 0.5 (jaxlib 0.12), the same fields. */
typedef __typeof__(((XLA_FFI_CallFrame*)0)->extension_start) dl_xla_extension;

/* XLA asks each handler for the FFI version it was built against before it first calls it. */
static int dl_xla_answer_metadata(XLA_FFI_CallFrame* call)
{
    dl_xla_extension extension = call->extension_start;
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

/* The scalar attribute ``name`` of dtype ``dtype`` (int64, float32 or float64), else NULL. */
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

"""

# Needs team_code(prefix): only kernels that start thread teams include it.
_POOL = r"""
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
    @P@_team_fn fn;
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

static int dl_xla_pool_run(void* pool_p, int n, @P@_team_fn fn, void* arg)
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
    if (threads > 1) @P@_team_lend_pool(dl_xla_pool_run, pool, threads < 64 ? (int)threads : 64);
}

"""


def ffi_support_code(prefix, team=True):
    """The helpers above; ``dl_xla_lend_pool`` only with ``team``, for the team of ``team_code(prefix)``."""
    return _SUPPORT + (fill(_POOL, {"P": prefix}) if team else "")
