// Optimizer steps on flat parameter arrays (scikit-learn's formulations), grid-stride loops.
// Weight decay applies to the first n_decay elements: all of one contract array, or the weights
// at the front of the fused epoch's flat vector (its biases follow them). The step size is `lr`
// (`lr_t`), or lr_table[step] when lr_table is not null: a captured CUDA graph replays its launches
// with the arguments they had, so an epoch's step sizes come from a table uploaded before it runs.
// Step-size constants such as 1 - beta are computed on the host in double and passed in T, as
// the NumPy reference rounds them (computing them in float on the device drifts Adam's v). Adam
// stores a moment that comes out subnormal as 0, as the reference does.

#include "common.cuh"

template <typename T>
__global__ void sgd_step(T* param, const T* grad, T* velocity, long long n, long long n_decay,
                         T lr, const T* lr_table, int step, T momentum, int nesterov, T decay) {
    if (lr_table) lr = lr_table[step];
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        T d = i < n_decay ? decay : (T)0;
        T g = d != (T)0 ? grad[i] + d * param[i] : grad[i];
        if (momentum == (T)0) { param[i] = param[i] - lr * g; continue; }
        T v = velocity[i] * momentum - lr * g;
        velocity[i] = v;
        param[i] = param[i] + (nesterov ? momentum * v - lr * g : v);
    }
}

template <typename T>
__global__ void adam_step(T* param, const T* grad, T* m1, T* m2, long long n, long long n_decay,
                          T lr_t, const T* lr_table, int step, T beta1, T one_minus_beta1,
                          T beta2, T one_minus_beta2, T eps, T decay) {
    if (lr_table) lr_t = lr_table[step];
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)gridDim.x * blockDim.x) {
        T d = i < n_decay ? decay : (T)0;
        T g = d != (T)0 ? grad[i] + d * param[i] : grad[i];
        T a = flush_subnormal(m1[i] * beta1 + one_minus_beta1 * g);
        T b = flush_subnormal(m2[i] * beta2 + one_minus_beta2 * (g * g));
        m1[i] = a;
        m2[i] = b;
        param[i] = param[i] - lr_t * a / (sqrt(b) + eps);
    }
}
