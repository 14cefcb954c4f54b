// Host shim: lets the FastFNN .cu sources compile as C++ for the CPU emulation
// (kernels/cuda_host.py). Assumes g++ (C++17, x86-64 or aarch64 Linux with <ucontext.h>).
//
// A launch runs the grid's blocks one after another. Within a block, each CUDA thread is a fiber
// on the calling OS thread (started with makecontext/setcontext, then switched with
// _setjmp/_longjmp, which unlike swapcontext make no system call); __syncthreads() switches back
// to the block's scheduler,
// which resumes every live thread in turn, so a barrier is a real barrier: no thread passes it
// before every live thread of its block has reached it. __shared__ variables become static
// locals: one copy for the block that is running. If thread (0, 0) finishes without reaching a
// barrier the kernel has none, and the rest of the grid runs as plain calls (fast); a barrier met
// later in that mode is a bug in the kernel and aborts with a message.
// glibc's fortified longjmp refuses jumps between stacks, which is what fibers do.
#undef _FORTIFY_SOURCE
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cstddef>
#include <utility>
#include <vector>
#include <ucontext.h>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __restrict__

using std::exp; using std::log; using std::log1p; using std::fabs; using std::tanh;
using std::sqrt; using std::fmin; using std::fmax;

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

namespace fastfnn_emu {

struct Context {
    dim3 thread_idx, block_idx, block_dim, grid_dim;
    std::jmp_buf* scheduler = nullptr;  // null: threads run as plain calls, barriers are illegal
    std::jmp_buf* fiber = nullptr;
    bool barrier_seen = false;  // false when the fiber came back because its thread ended
};
inline Context ctx;

inline void syncthreads() {
    if (!ctx.scheduler) {
        std::fprintf(stderr, "fastfnn CUDA emulation: __syncthreads() reached by a thread other "
                             "than (0, 0) of a kernel whose thread (0, 0) never reached one\n");
        std::abort();
    }
    ctx.barrier_seen = true;
    if (!_setjmp(*ctx.fiber)) _longjmp(*ctx.scheduler, 1);
}

constexpr size_t kStackBytes = 128 * 1024;

struct Jump { std::jmp_buf buf; };

struct FiberPool {
    std::vector<ucontext_t> starts;  // where a fiber begins (its stack and entry point)
    std::vector<Jump> jumps;         // where a started fiber waits at a barrier
    std::vector<std::vector<char>> stacks;
    std::vector<char> alive, started;
    void reserve(size_t n) {
        starts.resize(n);
        jumps.resize(n);
        alive.resize(n);
        started.resize(n);
        while (stacks.size() < n) stacks.emplace_back(kStackBytes);
    }
};

template <typename Body>
struct Trampoline {
    static Body* body;
    static void run() {  // never returns: an ended thread jumps back to its scheduler
        (*body)();
        ctx.barrier_seen = false;
        _longjmp(*ctx.scheduler, 1);
    }
};
template <typename Body> Body* Trampoline<Body>::body = nullptr;

inline dim3 thread_of(unsigned t, const dim3& block) {
    dim3 d;
    d.x = t % block.x; d.y = (t / block.x) % block.y; d.z = t / (block.x * block.y);
    return d;
}

// Runs one block's threads as fibers, round-robin from barrier to barrier. With `probe`, thread
// (0, 0) runs alone first: if it ends without a barrier, nothing else runs and this returns false
// (the kernel has no barriers); otherwise the others start and thread (0, 0) resumes where it
// waits, so no thread ever runs twice.
template <typename Body>
bool run_block_fibers(Body& body, unsigned n_threads, bool probe) {
    static FiberPool pool;
    static std::jmp_buf scheduler;
    pool.reserve(n_threads);
    Trampoline<Body>::body = &body;
    auto start = [&](unsigned t) {
        getcontext(&pool.starts[t]);
        pool.starts[t].uc_stack.ss_sp = pool.stacks[t].data();
        pool.starts[t].uc_stack.ss_size = kStackBytes;
        pool.starts[t].uc_link = nullptr;
        makecontext(&pool.starts[t], &Trampoline<Body>::run, 0);
        pool.alive[t] = 1;
        pool.started[t] = 0;
    };
    auto resume = [&](unsigned t) {  // returns whether thread t is still alive
        ctx.thread_idx = thread_of(t, ctx.block_dim);
        ctx.scheduler = &scheduler;
        ctx.fiber = &pool.jumps[t].buf;
        if (!_setjmp(scheduler)) {
            if (pool.started[t]) _longjmp(pool.jumps[t].buf, 1);
            pool.started[t] = 1;
            setcontext(&pool.starts[t]);
        }
        ctx.scheduler = nullptr;
        return ctx.barrier_seen;
    };
    unsigned first = 0, live = n_threads;
    if (probe) {
        start(0);
        if (!resume(0)) return false;
        first = 1;
    }
    for (unsigned t = first; t < n_threads; ++t) start(t);
    for (unsigned round = 0; live; ++round) {
        for (unsigned t = round == 0 ? first : 0; t < n_threads; ++t) {
            if (!pool.alive[t]) continue;
            if (!resume(t)) { pool.alive[t] = 0; --live; }
        }
    }
    return true;
}

// dims: grid x, y, z, block x, y, z. Returns 0.
template <typename Body>
int run_grid(Body body, const unsigned* dims) {
    ctx.grid_dim = dim3{dims[0], dims[1], dims[2]};
    ctx.block_dim = dim3{dims[3], dims[4], dims[5]};
    unsigned n_blocks = dims[0] * dims[1] * dims[2];
    unsigned n_threads = dims[3] * dims[4] * dims[5];
    ctx.block_idx = thread_of(0, ctx.grid_dim);
    bool barriers = run_block_fibers(body, n_threads, true);
    for (unsigned blk = 0; blk < n_blocks; ++blk) {
        ctx.block_idx = thread_of(blk, ctx.grid_dim);
        if (barriers) {
            if (blk > 0) run_block_fibers(body, n_threads, false);
            continue;
        }
        for (unsigned t = blk == 0 ? 1 : 0; t < n_threads; ++t) {  // (0, 0) of block 0 has run
            ctx.thread_idx = thread_of(t, ctx.block_dim);
            body();
        }
    }
    return 0;
}

// Parameter type codes, checked by the Python side against what it passes: lower case a scalar,
// upper case a pointer to it.
template <typename A> struct code_of;
template <> struct code_of<float> { static constexpr char value = 'f'; };
template <> struct code_of<double> { static constexpr char value = 'd'; };
template <> struct code_of<int> { static constexpr char value = 'i'; };
template <> struct code_of<long long> { static constexpr char value = 'l'; };
template <> struct code_of<unsigned char> { static constexpr char value = 'u'; };
template <> struct code_of<bool> { static constexpr char value = 'b'; };
template <typename A> struct code_of<A*> {
    static constexpr char value = code_of<typename std::remove_const<A>::type>::value - 'a' + 'A';
};
template <typename A> struct code_of<const A> : code_of<A> {};

template <typename... A>
const char* signature_of(void (*)(A...)) {
    static const char codes[] = {code_of<A>::value..., '\0'};
    return codes;
}

template <typename... A, size_t... I>
void call_with(void (*kernel)(A...), void** args, std::index_sequence<I...>) {
    kernel(*static_cast<typename std::remove_const<A>::type*>(args[I])...);
}

template <typename... A>
int launch(void (*kernel)(A...), const unsigned* dims, void** args) {
    return run_grid([=] { call_with(kernel, args, std::index_sequence_for<A...>{}); }, dims);
}

}  // namespace fastfnn_emu

#define threadIdx (fastfnn_emu::ctx.thread_idx)
#define blockIdx (fastfnn_emu::ctx.block_idx)
#define blockDim (fastfnn_emu::ctx.block_dim)
#define gridDim (fastfnn_emu::ctx.grid_dim)
#define __syncthreads() fastfnn_emu::syncthreads()
