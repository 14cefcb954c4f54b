// Output losses fused with their gradients. Each runs as ONE block of FASTFNN_BLOCK threads
// striding over the rows: per-row losses are summed in double in a fixed order (block_sum), and
// thread 0 adds (loss, correct rows) to stats, so a launch allocates nothing and is deterministic.
// `row_weight` may be null (every row weighs 1). `d` may alias the input: each element is read
// before it is written.

#include "common.cuh"

template <typename T>
__device__ __forceinline__ void add_to_stats(double* stats, double loss, double correct,
                                             double* scratch) {
    loss = block_sum(loss, scratch);
    correct = block_sum(correct, scratch);
    if (threadIdx.x == 0) { stats[0] += loss; stats[1] += correct; }
}

// One row of softmax cross-entropy: writes the gradient (softmax - onehot) * row_scale into d
// (which may alias z), stores the first argmax in *best, returns the row's loss.
template <typename T>
__device__ __forceinline__ T softmax_xent_row(const T* z, T* d, int label, T row_scale, int k,
                                              int* best) {
    int top_j = 0;
    for (int j = 1; j < k; ++j) if (z[j] > z[top_j]) top_j = j;
    T top = z[top_j];
    T total = 0;
    for (int j = 0; j < k; ++j) total += exp(z[j] - top);
    T row_loss = log(total) - (z[label] - top);
    T factor = row_scale / total;
    for (int j = 0; j < k; ++j) d[j] = exp(z[j] - top) * factor;
    d[label] = d[label] - row_scale;
    *best = top_j;
    return row_loss;
}

template <typename T, typename L>
__global__ void softmax_xent(const T* logits, const L* labels, T* d, const T* row_weight,
                             double* stats, T scale, int m, int k) {
    __shared__ double scratch[FASTFNN_BLOCK];
    double loss = 0, correct = 0;
    for (int i = threadIdx.x; i < m; i += blockDim.x) {
        int label = (int)labels[i], best;
        T w = row_weight ? row_weight[i] : (T)1;
        T row_loss = softmax_xent_row(logits + (long long)i * k, d + (long long)i * k, label,
                                      row_weight ? scale * w : scale, k, &best);
        loss += (double)(row_weight ? row_loss * w : row_loss);
        correct += best == label ? 1.0 : 0.0;
    }
    add_to_stats<T>(stats, loss, correct, scratch);
}

// Sigmoid + binary cross-entropy of one element; returns the loss, writes the gradient.
template <typename T>
__device__ __forceinline__ T sigmoid_bce_element(T z, T t, T scale, T w, bool weighted, T* dz) {
    T diff = (logistic(z) - t) * scale;
    *dz = weighted ? diff * w : diff;
    T loss = (z > (T)0 ? z : (T)0) - t * z + log1p(exp(-fabs(z)));
    return weighted ? loss * w : loss;
}

// Targets as class indices: an implicit one-hot row; correct when the first argmax is the label.
template <typename T, typename L>
__global__ void sigmoid_bce_labels(const T* logits, const L* labels, T* d, const T* row_weight,
                                   double* stats, T scale, int m, int k) {
    __shared__ double scratch[FASTFNN_BLOCK];
    double loss = 0, correct = 0;
    for (int i = threadIdx.x; i < m; i += blockDim.x) {
        const T* z = logits + (long long)i * k;
        int label = (int)labels[i];
        int best = 0;
        for (int j = 1; j < k; ++j) if (z[j] > z[best]) best = j;
        correct += best == label ? 1.0 : 0.0;
        T w = row_weight ? row_weight[i] : (T)1;
        for (int j = 0; j < k; ++j)
            loss += (double)sigmoid_bce_element(z[j], j == label ? (T)1 : (T)0, scale, w,
                                                row_weight != 0, d + (long long)i * k + j);
    }
    add_to_stats<T>(stats, loss, correct, scratch);
}

// Targets as a 0/1 indicator matrix: correct when every (logit > 0) matches (target > 0.5).
template <typename T>
__global__ void sigmoid_bce_indicators(const T* logits, const T* targets, T* d,
                                       const T* row_weight, double* stats, T scale, int m, int k) {
    __shared__ double scratch[FASTFNN_BLOCK];
    double loss = 0, correct = 0;
    for (int i = threadIdx.x; i < m; i += blockDim.x) {
        const T* z = logits + (long long)i * k;
        const T* t = targets + (long long)i * k;
        bool all_match = true;
        for (int j = 0; j < k; ++j) all_match = all_match && ((z[j] > (T)0) == (t[j] > (T)0.5));
        correct += all_match ? 1.0 : 0.0;
        T w = row_weight ? row_weight[i] : (T)1;
        for (int j = 0; j < k; ++j)
            loss += (double)sigmoid_bce_element(z[j], t[j], scale, w, row_weight != 0,
                                                d + (long long)i * k + j);
    }
    add_to_stats<T>(stats, loss, correct, scratch);
}

// Identity output, loss 0.5 * mean_j (out - t)^2 per row; adds nothing to stats[1].
template <typename T>
__global__ void squared_error(const T* out, const T* targets, T* d, const T* row_weight,
                              double* stats, T scale, int m, int k) {
    __shared__ double scratch[FASTFNN_BLOCK];
    double loss = 0;
    T half_mean = (T)0.5 / (T)k;
    for (int i = threadIdx.x; i < m; i += blockDim.x) {
        T w = row_weight ? row_weight[i] : (T)1;
        T row_loss = 0;
        for (int j = 0; j < k; ++j) {
            long long e = (long long)i * k + j;
            T diff = out[e] - targets[e];
            row_loss += diff * diff;
            T g = diff * scale;
            d[e] = row_weight ? g * w : g;
        }
        row_loss = row_loss * half_mean;
        loss += (double)(row_weight ? row_loss * w : row_loss);
    }
    add_to_stats<T>(stats, loss, 0.0, scratch);
}

// Exponential output, Poisson deviance sum_j xlogy(t, t / p) - t + p per row, p = exp(raw).
template <typename T>
__global__ void poisson(const T* raw, const T* targets, T* d, const T* row_weight,
                        double* stats, T scale, int m, int k) {
    __shared__ double scratch[FASTFNN_BLOCK];
    double loss = 0;
    for (int i = threadIdx.x; i < m; i += blockDim.x) {
        T w = row_weight ? row_weight[i] : (T)1;
        T row_loss = 0;
        for (int j = 0; j < k; ++j) {
            long long e = (long long)i * k + j;
            T p = exp(raw[e]);
            T t = targets[e];
            row_loss += (t > (T)0 ? t * log(t / p) : (T)0) - t + p;
            T g = (p - t) * scale;
            d[e] = row_weight ? g * w : g;
        }
        loss += (double)(row_weight ? row_loss * w : row_loss);
    }
    add_to_stats<T>(stats, loss, 0.0, scratch);
}
