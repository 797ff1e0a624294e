"""C support code for recurrent kernels that run one time loop on several threads.

A recurrence cannot split its time steps, so the kernels split each step's units between
the threads of a *team* and meet at a barrier once per step, where the next step needs
every thread's output. OpenBLAS, called once per step, wakes its pool, packs ``W_hid``
into its blocked layout and reaches about two thirds of the machine's rate on W1's
32x256 by 256x1024 product (156 us per step on 2 threads, AMD EPYC); a team whose
threads keep their own part of ``W_hid`` packed for the whole sequence runs the same
product and the cell in 5.0-5.7 ms for 50 steps (OpenBLAS: 7.8 ms for the products, 1.2
for the cell).

``team_code(prefix, blas_address)`` defines, under ``{prefix}_``:

- ``team_size(blocks, small)``: how many threads to use for ``blocks`` independent
  blocks of work: one when the caller says the work is ``small``, else the size of
  OpenBLAS's pool (``blas_cpu_number``, read on every call: ``openblas_set_num_threads``
  changes it), else ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS``, else the CPUs this
  process may run on; never more than ``blocks`` or 64. ``DANDELION_KERNEL_THREADS=n``
  (read once per compiled module) overrides all of them (the tests force several threads
  on small shapes with it);
- ``team_run(n, fn, arg)``: runs ``fn(arg, thread, n_threads)`` on ``n`` threads (the
  caller's one of them) and returns when all have: on OpenBLAS's own pool
  (``gotoblas_pthread``, in the library holding the BLAS function at ``blas_address``)
  when ``n`` fits it, else on threads of its own; if those cannot be created it runs
  with those it has (``n_threads`` says how many);
- ``barrier(team_barrier*, n_threads, int* phase)``: a spinning barrier (steps last tens
  of microseconds: a futex wake would cost as much), which yields the CPU after 2000
  spins so that a member sharing its core with another lets it run;
- ``tile(K, A, lda, panel, out)`` and ``tile_rows``: ``out (MR x NR) = A[MR rows, K] @ panel (K x NR)``
  for a panel packed row by row, in GCC vector types (AVX-512: 8 x 32 in 16 registers;
  narrower targets 2 x 32), the one product both directions of a kernel use.
"""

from __future__ import annotations

_TEAM = """
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

typedef struct { volatile int arrived; } @P@_team_barrier;

static int @P@_env_threads(const char* name)
{
    const char* v = getenv(name);
    int n = v ? atoi(v) : 0;
    return n > 0 ? n : 0;
}

/* OpenBLAS's pool, when the BLAS the kernels call is OpenBLAS with its own threads: gotoblas_pthread runs
   a function on n of the pool's threads (the caller's one of them) and returns when all have;
   blas_cpu_number is the pool's size. Looked up from the library holding the BLAS function at
   @BLAS_ADDRESS@, whose dependencies dlsym searches too. */
typedef int (*@P@_pool_fn)(int, void*, void*, int);
static @P@_pool_fn @P@_pool_run = NULL;
static int* @P@_pool_size = NULL;

static void @P@_find_pool(void)
{
    static int searched = 0;
    if (searched) return;
    searched = 1;
    Dl_info info;
    void* blas = (void*)(@BLAS_ADDRESS@);
    if (!blas || !dladdr(blas, &info) || !info.dli_fname) return;
    void* library = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
    if (!library) return;
    @P@_pool_fn run = (@P@_pool_fn)dlsym(library, "gotoblas_pthread");
    int* size = (int*)dlsym(library, "blas_cpu_number");
    if (run && size) {
        @P@_pool_run = run;
        @P@_pool_size = size;
    }
}

/* Teams of threads of their own from now on: for a process whose other work runs on another pool (XLA's),
   where OpenBLAS's workers, spinning after each team, would take its cores. */
static inline void @P@_team_without_pool(void)
{
    @P@_find_pool();
    @P@_pool_run = NULL;
    @P@_pool_size = NULL;
}

typedef void (*@P@_team_fn)(void* arg, int thread, int n_threads);

/* A pool the caller lends for its calls on this thread (XLA's intra-op threads, for the JAX backend):
   run(pool, n, fn, arg) runs fn(arg, thread, m) on m <= n threads, the caller's thread 0, and returns m
   when all have. It takes precedence over OpenBLAS's pool while set. */
typedef int (*@P@_lent_pool_fn)(void* pool, int n, @P@_team_fn fn, void* arg);
static __thread @P@_lent_pool_fn @P@_lent_run = NULL;
static __thread void* @P@_lent_pool = NULL;
static __thread int @P@_lent_size = 0;

static inline void @P@_team_lend_pool(@P@_lent_pool_fn run, void* pool, int size)
{
    @P@_lent_run = run;
    @P@_lent_pool = pool;
    @P@_lent_size = size;
}

static int @P@_team_size(int blocks, int small)
{
    static int own = 0, forced = -1;
    @P@_find_pool();
    if (forced < 0) forced = @P@_env_threads("DANDELION_KERNEL_THREADS");
    if (!own) {
        int n = @P@_env_threads("OPENBLAS_NUM_THREADS");
        if (!n) n = @P@_env_threads("OMP_NUM_THREADS");
        if (!n) {
            cpu_set_t set;
            n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
        }
        own = n;
    }
    /* the pool's size can change at run time (openblas_set_num_threads, threadpoolctl) */
    const int available = @P@_lent_run ? @P@_lent_size : (@P@_pool_size ? *@P@_pool_size : own);
    int n = forced ? forced : (small ? 1 : available);
    n = n < blocks ? n : blocks;
    return n < 1 ? 1 : (n > 64 ? 64 : n);
}

static void @P@_barrier(@P@_team_barrier* b, int n, int* phase)
{
    if (n <= 1) return;
    const int target = ++*phase * n;
    __atomic_add_fetch(&b->arrived, 1, __ATOMIC_ACQ_REL);
    for (long spins = 0; __atomic_load_n(&b->arrived, __ATOMIC_ACQUIRE) < target; ++spins) {
        if (spins < 2000) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        } else {
            sched_yield();
        }
    }
}

typedef struct {
    @P@_team_fn fn;
    void* arg;
    int thread, n;
    volatile int* go; /* threads of our own: 0 until the team's size is known, then that size */
} @P@_team_member;

/* A member on OpenBLAS's pool (the size is known in advance). */
static void @P@_pool_main(void* p)
{
    @P@_team_member* m = (@P@_team_member*)p;
    m->fn(m->arg, m->thread, m->n);
}

static void* @P@_thread_main(void* p)
{
    @P@_team_member* m = (@P@_team_member*)p;
    int n;
    while ((n = __atomic_load_n(m->go, __ATOMIC_ACQUIRE)) == 0) sched_yield();
    if (m->thread < n) m->fn(m->arg, m->thread, n);
    return NULL;
}

/* The size and kind of the last team that ran (1 own threads, 2 OpenBLAS's pool, 3 a lent pool): the tests read them. */
static int @P@_last_team_size = 0, @P@_last_team_kind = 0;

static void @P@_team_run(int n, @P@_team_fn fn, void* arg)
{
    @P@_team_member members[64];
    if (n <= 1) {
        @P@_last_team_size = 1;
        @P@_last_team_kind = 0;
        fn(arg, 0, 1);
        return;
    }
    if (@P@_lent_run && n <= @P@_lent_size) {
        @P@_last_team_size = @P@_lent_run(@P@_lent_pool, n, fn, arg);
        @P@_last_team_kind = 3;
        return;
    }
    if (@P@_pool_run && n <= *@P@_pool_size) {
        /* OpenBLAS's own threads: threads of ours would share the cores with them, and they spin
           for a while after each BLAS call (a W1 backward took 83 ms instead of 11 so) */
        for (int k = 0; k < n; ++k) members[k] = (@P@_team_member){fn, arg, k, n, NULL};
        @P@_last_team_size = n;
        @P@_last_team_kind = 2;
        @P@_pool_run(n, (void*)@P@_pool_main, members, (int)sizeof(members[0]));
        return;
    }
    pthread_t ids[64];
    volatile int go = 0;
    int started = 1;
    for (int k = 1; k < n; ++k) {
        members[k] = (@P@_team_member){fn, arg, k, n, &go};
        if (pthread_create(&ids[k], NULL, @P@_thread_main, &members[k]) != 0) break;
        started = k + 1;
    }
    __atomic_store_n(&go, started, __ATOMIC_RELEASE);
    @P@_last_team_size = started;
    @P@_last_team_kind = 1;
    fn(arg, 0, started);
    for (int k = 1; k < started; ++k) pthread_join(ids[k], NULL);
}

typedef float @P@_v16 __attribute__((vector_size(64), aligned(4)));
#define @P@_NR 32
#ifdef __AVX512F__
#define @P@_MR 8
#else
#define @P@_MR 2
#endif

static inline @P@_v16 @P@_load16(const float* p) { @P@_v16 v; memcpy(&v, p, sizeof(v)); return v; }

/* out[r][c] = sum_k A[r * lda + k] * panel[k * NR + c], r < MR, c < NR. */
static inline __attribute__((always_inline)) void @P@_tile(int K, const float* A, npy_intp lda, const float* panel, float* out)
{
    @P@_v16 lo[@P@_MR], hi[@P@_MR];
#pragma GCC unroll 8
    for (int r = 0; r < @P@_MR; ++r) { lo[r] = (@P@_v16){0}; hi[r] = (@P@_v16){0}; }
    for (int k = 0; k < K; ++k) {
        const @P@_v16 w0 = @P@_load16(panel + (npy_intp)k * @P@_NR), w1 = @P@_load16(panel + (npy_intp)k * @P@_NR + 16);
#pragma GCC unroll 8
        for (int r = 0; r < @P@_MR; ++r) {
            const float x = A[r * lda + k];
            lo[r] += x * w0;
            hi[r] += x * w1;
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < @P@_MR; ++r) {
        memcpy(out + r * @P@_NR, &lo[r], sizeof(lo[r]));
        memcpy(out + r * @P@_NR + 16, &hi[r], sizeof(hi[r]));
    }
}

/* The MR rows of A from row r0 as tile() reads them, their leading dimension in *ld: in place, or
   copied into scratch (MR x K) and zero-padded past row `rows`. */
static inline const float* @P@_tile_rows(const float* A, npy_intp lda, int r0, int rows, int K, float* scratch, npy_intp* ld)
{
    if (r0 + @P@_MR <= rows) {
        *ld = lda;
        return A + (npy_intp)r0 * lda;
    }
    memset(scratch, 0, sizeof(float) * @P@_MR * K);
    for (int r = 0; r0 + r < rows; ++r) memcpy(scratch + (npy_intp)r * K, A + (npy_intp)(r0 + r) * lda, sizeof(float) * K);
    *ld = K;
    return scratch;
}
"""


def team_code(prefix, blas_address):
    """The team, barrier and tile support code, its names under ``{prefix}_``.

    ``blas_address`` is a C expression for the address of the BLAS function the kernels
    call (the function or pointer declared before this code): the team runs on that
    library's thread pool when it is OpenBLAS's.
    """
    return _TEAM.replace("@P@", prefix).replace("@BLAS_ADDRESS@", blas_address)
