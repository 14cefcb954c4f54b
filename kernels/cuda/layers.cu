// Layer kernels of the contract: bias + activation, activation gradient, bias gradient (column
// sums), row softmax, row argmax and mini-batch gathering. Arrays are C-contiguous (the backend
// checks); element-wise kernels take a grid-stride loop over `total` elements.

#include "common.cuh"

template <typename T>
__global__ void bias_act(T* z, const T* b, int act, long long total, int n) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x)
        z[i] = activate(z[i] + b[i % n], act);
}

template <typename T>
__global__ void act_grad(T* da, const T* a, int act, long long total) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x)
        da[i] = da[i] * activation_slope(a[i], act);
}

// out[j] = sum_i dz[i, j], one thread per column adding rows in order (NumPy's order for axis 0).
template <typename T>
__global__ void col_sum(const T* dz, T* out, int m, int n) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= n) return;
    T total = 0;
    for (int i = 0; i < m; ++i) total += dz[(long long)i * n + j];
    out[j] = total;
}

// In place stable softmax of each row, one thread per row.
template <typename T>
__global__ void softmax_rows(T* z, int m, int k) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= m) return;
    T* row = z + (long long)i * k;
    T top = row[0];
    for (int j = 1; j < k; ++j) top = row[j] > top ? row[j] : top;
    T total = 0;
    for (int j = 0; j < k; ++j) { row[j] = exp(row[j] - top); total += row[j]; }
    for (int j = 0; j < k; ++j) row[j] = row[j] / total;
}

// out[i] = first index of the largest z[i, :].
template <typename T>
__global__ void argmax_rows(const T* z, long long* out, int m, int k) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= m) return;
    const T* row = z + (long long)i * k;
    int best = 0;
    for (int j = 1; j < k; ++j) if (row[j] > row[best]) best = j;
    out[i] = best;
}

// out[i, :] = (T)X[idx[i], :] * scale: the cast, then the product in T (NumPy's order).
template <typename T, typename S, typename I>
__global__ void gather_rows(const S* X, const I* idx, T* out, T scale, long long total, int d) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x)
        out[i] = (T)X[(long long)idx[i / d] * d + i % d] * scale;
}
