// Shared device helpers of the FastFNN CUDA kernels: activation codes, the overflow-free logistic
// function, the flush of subnormal values and a deterministic block reduction. Every kernel is a
// template over the float type T (float or double) and computes in T; only the float64 `stats`
// accumulators are double.
// Assumes: blocks of FASTFNN_BLOCK threads wherever a kernel reduces across its block.

#define FASTFNN_BLOCK 256

// Hidden activations, numbered as the backend passes them (cupy_backend.ACTIVATION_CODES).
enum Activation { ACT_IDENTITY = 0, ACT_RELU = 1, ACT_SIGMOID = 2, ACT_TANH = 3 };

// 1 / (1 + exp(-z)) taking exp only of -|z|, so it never overflows.
template <typename T>
__device__ __forceinline__ T logistic(T z) {
    T e = exp(-fabs(z));
    return z >= (T)0 ? (T)1 / ((T)1 + e) : e / ((T)1 + e);
}

template <typename T>
__device__ __forceinline__ T activate(T v, int act) {
    if (act == ACT_RELU) return v > (T)0 ? v : (T)0;
    if (act == ACT_SIGMOID) return logistic(v);
    if (act == ACT_TANH) return tanh(v);
    return v;
}

// act'(z) written through the stored activation a = act(z).
template <typename T>
__device__ __forceinline__ T activation_slope(T a, int act) {
    if (act == ACT_RELU) return a > (T)0 ? (T)1 : (T)0;
    if (act == ACT_SIGMOID) return a * ((T)1 - a);
    if (act == ACT_TANH) return (T)1 - a * a;
    return (T)1;
}

// The smallest normal number of T (FLT_MIN, DBL_MIN: NVRTC has no <cfloat>).
template <typename T> __device__ __forceinline__ T smallest_normal();
template <> __device__ __forceinline__ float smallest_normal<float>() { return 1.17549435e-38f; }
template <> __device__ __forceinline__ double smallest_normal<double>() {
    return 2.2250738585072014e-308;
}

// 0 where x is subnormal (nonzero, below the smallest normal), else x: how Adam stores its
// moments (base.Backend.adam_step says why).
template <typename T>
__device__ __forceinline__ T flush_subnormal(T x) {
    return fabs(x) < smallest_normal<T>() && x != (T)0 ? (T)0 : x;
}

// Sum of `value` over the block's FASTFNN_BLOCK threads, in a fixed tree order (deterministic, no
// atomics); every thread gets the total. `scratch` is a __shared__ array of FASTFNN_BLOCK doubles.
__device__ __forceinline__ double block_sum(double value, double* scratch) {
    scratch[threadIdx.x] = value;
    __syncthreads();
    for (int half = FASTFNN_BLOCK / 2; half > 0; half /= 2) {
        if ((int)threadIdx.x < half) scratch[threadIdx.x] += scratch[threadIdx.x + half];
        __syncthreads();
    }
    double total = scratch[0];
    __syncthreads();  // scratch may be reused right after
    return total;
}
