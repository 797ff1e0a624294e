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

# One handler per entry point and dtype. The buffers keep the Numba callbacks' order; the
# sizes come from the buffers' shapes, the options from the call's attributes.
_HANDLERS = r"""
#include <sched.h>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include "xla/ffi/api/ffi.h"
namespace ffi = xla::ffi;

/* The team on XLA's intra-op pool: one pool for the whole process, as OpenBLAS's is on the other
   backends (threads of ours would share the cores with XLA's, which spin after each task). XLA may be
   running other work on the pool, this call's own thread among it, so the team is whoever joins within
   DL_XLA_JOIN_US: a member that starts later finds the team's size fixed and leaves, and the caller never
   waits on a task that cannot start (two such calls on a two-thread pool would wait on each other). */
#define DL_XLA_JOIN_US 500

struct dl_xla_team {
    std::atomic<int> joined{0}; /* members started so far, the caller not counted; each one's number */
    std::atomic<int> size{0};   /* 0 until the caller fixes the team */
    std::atomic<int> done{0};
};

static void dl_xla_wait(long spins)
{
    if (spins > 2000) sched_yield();
}

static int dl_xla_pool_run(void* pool, int n, dl_lstm_team_fn fn, void* arg)
{
    ffi::ThreadPool* threads = static_cast<ffi::ThreadPool*>(pool);
    std::shared_ptr<dl_xla_team> team = std::make_shared<dl_xla_team>();
    for (int k = 1; k < n; ++k)
        threads->Schedule([team, fn, arg] {
            const int thread = team->joined.fetch_add(1, std::memory_order_acq_rel) + 1;
            int size;
            for (long spins = 0; (size = team->size.load(std::memory_order_acquire)) == 0; ++spins) dl_xla_wait(spins);
            if (thread >= size) return; /* late: the team ran without this member */
            fn(arg, thread, size);
            team->done.fetch_add(1, std::memory_order_release);
        });
    const auto start = std::chrono::steady_clock::now();
    for (long spins = 0; team->joined.load(std::memory_order_acquire) < n - 1; ++spins) {
        if (std::chrono::steady_clock::now() - start > std::chrono::microseconds(DL_XLA_JOIN_US)) break;
        dl_xla_wait(spins);
    }
    /* members numbered below the size run; one that joins after this store finds itself above it */
    int joined = team->joined.load(std::memory_order_acquire);
    joined = joined < n - 1 ? joined : n - 1;
    const int size = joined + 1;
    team->size.store(size, std::memory_order_release);
    fn(arg, 0, size);
    for (long spins = 0; team->done.load(std::memory_order_acquire) < joined; ++spins) dl_xla_wait(spins);
    return size;
}

/* Lends XLA's pool to the teams the kernel starts on this thread, for the length of one call. */
struct dl_xla_lent_pool {
    explicit dl_xla_lent_pool(ffi::ThreadPool& threads)
    {
        const int size = (int)threads.num_threads();
        if (size > 1) dl_lstm_team_lend_pool(dl_xla_pool_run, &threads, size);
    }
    ~dl_xla_lent_pool() { dl_lstm_team_lend_pool(NULL, NULL, 0); }
};

template <ffi::DataType D, typename T, void (*KERNEL)(const T*, const T*, const T*, const T*, const T*, const T*, T*, T*, T*, const int64_t*)>
static ffi::Error dl_xla_lstm_forward(ffi::Buffer<D> gi, ffi::Buffer<D> w, ffi::Buffer<D> peep, ffi::Buffer<D> h0,
                                      ffi::Buffer<D> c0, ffi::Buffer<D> mask, ffi::ResultBuffer<D> hs,
                                      ffi::ResultBuffer<D> cs, ffi::ResultBuffer<D> gates, ffi::ThreadPool threads, int64_t peephole,
                                      int64_t has_mask)
{
    dl_xla_lent_pool lent(threads);
    const int64_t p[5] = {gi.dimensions()[0], gi.dimensions()[1], w.dimensions()[0], peephole, has_mask};
    KERNEL(gi.typed_data(), w.typed_data(), peep.typed_data(), h0.typed_data(), c0.typed_data(), mask.typed_data(),
           hs->typed_data(), cs->typed_data(), gates->typed_data(), p);
    return ffi::Error::Success();
}

template <ffi::DataType D, typename T,
          void (*KERNEL)(const T*, const T*, const T*, const T*, const T*, const T*, const T*, const T*, const T*,
                         const T*, T*, T*, T*, T*, T*, const int64_t*, double)>
static ffi::Error dl_xla_lstm_backward(ffi::Buffer<D> w, ffi::Buffer<D> peep, ffi::Buffer<D> h0, ffi::Buffer<D> c0,
                                       ffi::Buffer<D> mask, ffi::Buffer<D> hs, ffi::Buffer<D> cs, ffi::Buffer<D> gates,
                                       ffi::Buffer<D> d_hs, ffi::Buffer<D> d_cs, ffi::ResultBuffer<D> d_gi,
                                       ffi::ResultBuffer<D> d_peep, ffi::ResultBuffer<D> d_h0, ffi::ResultBuffer<D> d_c0,
                                       ffi::ThreadPool threads, int64_t peephole, int64_t has_mask, double grad_clipping)
{
    dl_xla_lent_pool lent(threads);
    const int64_t p[5] = {hs.dimensions()[0], hs.dimensions()[1], w.dimensions()[0], peephole, has_mask};
    /* d_w NULL: XLA forms dW_hid, on its own threads */
    KERNEL(w.typed_data(), peep.typed_data(), h0.typed_data(), c0.typed_data(), mask.typed_data(), hs.typed_data(),
           cs.typed_data(), gates.typed_data(), d_hs.typed_data(), d_cs.typed_data(), d_gi->typed_data(), nullptr,
           d_peep->typed_data(), d_h0->typed_data(), d_c0->typed_data(), p, grad_clipping);
    return ffi::Error::Success();
}

#define DL_XLA_LSTM(SUFFIX, D, T)                                                                              \
    XLA_FFI_DEFINE_HANDLER_SYMBOL(dandelion_xla_lstm_forward_##SUFFIX,                                       \
                                  (dl_xla_lstm_forward<D, T, dandelion_native_lstm_forward_##T>),            \
                                  ffi::Ffi::Bind()                                                           \
                                      .Arg<ffi::Buffer<D>>().Arg<ffi::Buffer<D>>().Arg<ffi::Buffer<D>>()     \
                                      .Arg<ffi::Buffer<D>>().Arg<ffi::Buffer<D>>().Arg<ffi::Buffer<D>>()     \
                                      .Ret<ffi::Buffer<D>>().Ret<ffi::Buffer<D>>().Ret<ffi::Buffer<D>>()     \
                                      .Ctx<ffi::ThreadPool>()                                                \
                                      .Attr<int64_t>("peephole").Attr<int64_t>("has_mask"));                 \
    XLA_FFI_DEFINE_HANDLER_SYMBOL(dandelion_xla_lstm_backward_##SUFFIX,                                      \
                                  (dl_xla_lstm_backward<D, T, dandelion_native_lstm_backward_##T>),          \
                                  ffi::Ffi::Bind()                                                           \
                                      .Arg<ffi::Buffer<D>>().Arg<ffi::Buffer<D>>().Arg<ffi::Buffer<D>>()     \
                                      .Arg<ffi::Buffer<D>>().Arg<ffi::Buffer<D>>().Arg<ffi::Buffer<D>>()     \
                                      .Arg<ffi::Buffer<D>>().Arg<ffi::Buffer<D>>().Arg<ffi::Buffer<D>>()     \
                                      .Arg<ffi::Buffer<D>>()                                                 \
                                      .Ret<ffi::Buffer<D>>().Ret<ffi::Buffer<D>>().Ret<ffi::Buffer<D>>()     \
                                      .Ret<ffi::Buffer<D>>()                                                 \
                                      .Ctx<ffi::ThreadPool>()                                                \
                                      .Attr<int64_t>("peephole").Attr<int64_t>("has_mask")                   \
                                      .Attr<double>("grad_clipping"));

DL_XLA_LSTM(float32, ffi::F32, float)
DL_XLA_LSTM(float64, ffi::F64, double)
"""


def xla_code():
    """``native_code`` (the kernels and their C entry points) followed by the XLA FFI handlers."""
    return c_lstm_kernels.native_code() + _HANDLERS


def xla_library():
    """The loaded library (``ctypes.CDLL``), or None where it could not be built."""
    return native.load_library("lstm_xla", xla_code(), ("-std=c++17", f"-I{jax.ffi.include_dir()}"))


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
