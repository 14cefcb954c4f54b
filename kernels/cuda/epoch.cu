// Kernels of the CuPy backend's fused epoch (kernels/cupy_epoch.py): a tiled GEMM whose epilogue
// adds the bias and applies the activation (forward), multiplies by the activation's slope
// (backward) or routes an implicit row of ones to the bias gradient (weight gradients); softmax
// cross-entropy writing per-row loss and correctness into epoch-long buffers, and their one
// reduction per epoch. The update over the flat parameter vector is optimizers.cu's.
//
// GEMMs accumulate with explicit fma (as cuBLAS does; --fmad=false does not touch explicit fma);
// every other operation rounds as the NumPy reference's.

#define GEMM_TILE 16  // GEMM blocks are GEMM_TILE x GEMM_TILE threads, one output each

enum Epilogue { EPI_STORE = 0, EPI_BIAS_ACT = 1, EPI_ACT_GRAD = 2 };

// C (M x N, row stride ldc) = op(A) (M x K) @ op(B) (K x N), then the epilogue EPI:
//   EPI_STORE:    C = acc; with ones_row >= 0, op(A) has an extra row `ones_row` (= M - 1) of ones
//                 whose output goes to row_out[col] instead of C (the bias gradient).
//   EPI_BIAS_ACT: C = act(acc + bias[col]).
//   EPI_ACT_GRAD: C = acc * act'(aux[row * ldaux + col]) (aux holds the stored activation).
// op(A)[r][k] = TRANS_A ? A[k * lda + r] : A[r * lda + k]; op(B)[k][c] likewise with TRANS_B.
// Tiles are loaded so that consecutive threads read consecutive addresses either way.
template <typename T, bool TRANS_A, bool TRANS_B, int EPI>
__global__ void gemm(const T* A, int lda, const T* B, int ldb, T* C, int ldc, int M, int N,
                     int K, int ones_row, T* row_out, const T* bias, const T* aux, int ldaux,
                     int act) {
    __shared__ T a_tile[GEMM_TILE][GEMM_TILE + 1];  // [row][k]
    __shared__ T b_tile[GEMM_TILE][GEMM_TILE + 1];  // [k][col]
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int row0 = blockIdx.y * GEMM_TILE, col0 = blockIdx.x * GEMM_TILE;
    T acc = 0;
    for (int k0 = 0; k0 < K; k0 += GEMM_TILE) {
        if (TRANS_A) {  // thread (ty, tx) loads op(A)[row0 + tx][k0 + ty] = A[(k0 + ty) * lda + ...]
            int r = row0 + tx, k = k0 + ty;
            T v = (T)0;
            if (r < M && k < K) v = r == ones_row ? (T)1 : A[(long long)k * lda + r];
            a_tile[tx][ty] = v;
        } else {
            int r = row0 + ty, k = k0 + tx;
            a_tile[ty][tx] = (r < M && k < K) ? A[(long long)r * lda + k] : (T)0;
        }
        if (TRANS_B) {  // op(B)[k0 + tx][col0 + ty] = B[(col0 + ty) * ldb + k0 + tx]
            int k = k0 + tx, c = col0 + ty;
            b_tile[tx][ty] = (k < K && c < N) ? B[(long long)c * ldb + k] : (T)0;
        } else {
            int k = k0 + ty, c = col0 + tx;
            b_tile[ty][tx] = (k < K && c < N) ? B[(long long)k * ldb + c] : (T)0;
        }
        __syncthreads();
        for (int kk = 0; kk < GEMM_TILE; ++kk) acc = fma(a_tile[ty][kk], b_tile[kk][tx], acc);
        __syncthreads();
    }
    const int row = row0 + ty, col = col0 + tx;
    if (row >= M || col >= N) return;
    if (EPI == EPI_BIAS_ACT) acc = activate(acc + bias[col], act);
    if (EPI == EPI_ACT_GRAD) acc = acc * activation_slope(aux[(long long)row * ldaux + col], act);
    if (EPI == EPI_STORE && row == ones_row) row_out[col] = acc;
    else C[(long long)row * ldc + col] = acc;
}

// Softmax cross-entropy of a step's m rows, one thread per row, in place on the logits (which
// become the gradient, times `scale`). Row i's label is labels[order ? order[i] : start + i]; its
// loss (in T, widened) and correctness go to row_loss[i], row_correct[i] of the epoch buffers
// (already offset to the step's first row).
template <typename T, typename L>
__global__ void softmax_xent_rows(T* logits, const L* labels, const long long* order,
                                  long long start, T scale, double* row_loss,
                                  double* row_correct, int m, int k) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= m) return;
    int label = (int)labels[order ? order[i] : start + i], best;
    T* z = logits + (long long)i * k;
    row_loss[i] = (double)softmax_xent_row(z, z, label, scale, k, &best);
    row_correct[i] = best == label ? 1.0 : 0.0;
}

// stats[0] += sum(row_loss[:n]), stats[1] += sum(row_correct[:n]): one block, fixed order.
__global__ void add_epoch_stats(const double* row_loss, const double* row_correct, long long n,
                                double* stats) {
    __shared__ double scratch[FASTFNN_BLOCK];
    double loss = 0, correct = 0;
    for (long long i = threadIdx.x; i < n; i += blockDim.x) {
        loss += row_loss[i];
        correct += row_correct[i];
    }
    loss = block_sum(loss, scratch);
    correct = block_sum(correct, scratch);
    if (threadIdx.x == 0) { stats[0] += loss; stats[1] += correct; }
}
