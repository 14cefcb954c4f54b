// Kernels of the CuPy backend's fused epoch (kernels/cupy_epoch.py): a tiled GEMM whose epilogue
// adds the bias and applies the activation (forward), multiplies by the activation's slope
// (backward) or routes an implicit row of ones to the bias gradient (weight gradients); softmax
// and sigmoid cross-entropy writing per-row loss and correctness into epoch-long buffers, and their
// one reduction per epoch. The update over the flat parameter vector is optimizers.cu's.
//
// GEMMs accumulate with explicit fma (as cuBLAS does; --fmad=false does not touch explicit fma);
// every other operation rounds as the NumPy reference's.

#include "common.cuh"

#define GEMM_THREADS 16  // a GEMM block has GEMM_THREADS x GEMM_THREADS threads
#define GEMM_DEPTH 16    // k-slice of op(A) and op(B) staged in shared memory per iteration

enum Epilogue { EPI_STORE = 0, EPI_BIAS_ACT = 1, EPI_ACT_GRAD = 2 };

// C (M x N, row stride ldc) = op(A) (M x K) @ op(B) (K x N), then the epilogue EPI:
//   EPI_STORE:    C = acc; with ones_row >= 0, op(A) has an extra row `ones_row` (= M - 1) of ones
//                 whose output goes to row_out[col] instead of C (the bias gradient).
//   EPI_BIAS_ACT: C = act(acc + bias[col]).
//   EPI_ACT_GRAD: C = acc * act'(aux[row * ldaux + col]) (aux holds the stored activation).
// op(A)[r][k] = TRANS_A ? A[k * lda + r] : A[r * lda + k]; op(B)[k][c] likewise with TRANS_B.
// A block computes a (16 PER) x (16 PER) tile of C, thread (ty, tx) the PER x PER outputs at rows
// ty + 16 i and columns tx + 16 j (i, j < PER): strided, so a warp's shared-memory reads do not
// conflict. PER trades blocks for reuse: the backend takes the largest PER that still gives a
// GPU enough blocks (cupy_epoch.gemm_per). Tiles are loaded so that consecutive threads
// read consecutive addresses whichever operand is transposed. Each output sums over k in order.
template <typename T, bool TRANS_A, bool TRANS_B, int EPI, int PER>
__global__ void gemm(const T* A, int lda, const T* B, int ldb, T* C, int ldc, int M, int N,
                     int K, int ones_row, T* row_out, const T* bias, const T* aux, int ldaux,
                     int act) {
    constexpr int TILE = GEMM_THREADS * PER;
    __shared__ T a_tile[TILE][GEMM_DEPTH + 1];  // [row][k]
    __shared__ T b_tile[GEMM_DEPTH][TILE + 1];  // [k][col]
    const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * GEMM_THREADS + tx;
    const int row0 = blockIdx.y * TILE, col0 = blockIdx.x * TILE;
    T acc[PER][PER];
    for (int i = 0; i < PER; ++i)
        for (int j = 0; j < PER; ++j) acc[i][j] = (T)0;
    for (int k0 = 0; k0 < K; k0 += GEMM_DEPTH) {
        for (int e = tid; e < TILE * GEMM_DEPTH; e += GEMM_THREADS * GEMM_THREADS) {
            // consecutive e walk the operand's contiguous dimension
            int r = TRANS_A ? e % TILE : e / GEMM_DEPTH;
            int k = TRANS_A ? e / TILE : e % GEMM_DEPTH;
            int gr = row0 + r, gk = k0 + k;
            T v = (T)0;
            if (gr < M && gk < K) {
                if (!TRANS_A) v = A[(long long)gr * lda + gk];
                else v = gr == ones_row ? (T)1 : A[(long long)gk * lda + gr];
            }
            a_tile[r][k] = v;
            int c = TRANS_B ? e / GEMM_DEPTH : e % TILE;
            k = TRANS_B ? e % GEMM_DEPTH : e / TILE;
            int gc = col0 + c;
            gk = k0 + k;
            b_tile[k][c] = (gc < N && gk < K)
                ? (TRANS_B ? B[(long long)gc * ldb + gk] : B[(long long)gk * ldb + gc]) : (T)0;
        }
        __syncthreads();
        for (int kk = 0; kk < GEMM_DEPTH; ++kk) {
            T a[PER], b[PER];
            for (int i = 0; i < PER; ++i) a[i] = a_tile[ty + GEMM_THREADS * i][kk];
            for (int j = 0; j < PER; ++j) b[j] = b_tile[kk][tx + GEMM_THREADS * j];
            for (int i = 0; i < PER; ++i)
                for (int j = 0; j < PER; ++j) acc[i][j] = fma(a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }
    for (int i = 0; i < PER; ++i) {
        const int row = row0 + ty + GEMM_THREADS * i;
        if (row >= M) break;
        for (int j = 0; j < PER; ++j) {
            const int col = col0 + tx + GEMM_THREADS * j;
            if (col >= N) break;
            T v = acc[i][j];
            if (EPI == EPI_BIAS_ACT) v = activate(v + bias[col], act);
            if (EPI == EPI_ACT_GRAD)
                v = v * activation_slope(aux[(long long)row * ldaux + col], act);
            if (EPI == EPI_STORE && row == ones_row) row_out[col] = v;
            else C[(long long)row * ldc + col] = v;
        }
    }
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

// Sigmoid binary cross-entropy of a step's m rows with class-index targets, as softmax_xent_rows
// (a thread per row, in place, epoch buffers); a row is correct when its first argmax is the label.
template <typename T, typename L>
__global__ void sigmoid_bce_label_rows(T* logits, const L* labels, const long long* order,
                                       long long start, T scale, double* row_loss,
                                       double* row_correct, int m, int k) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= m) return;
    int label = (int)labels[order ? order[i] : start + i];
    T* z = logits + (long long)i * k;
    int best = 0;
    for (int j = 1; j < k; ++j) if (z[j] > z[best]) best = j;
    row_correct[i] = best == label ? 1.0 : 0.0;
    double loss = 0;
    for (int j = 0; j < k; ++j)
        loss += (double)sigmoid_bce_element(z[j], j == label ? (T)1 : (T)0, scale, (T)1, false,
                                            z + j);
    row_loss[i] = loss;
}

// The same with (n, k) 0/1 indicator targets; a row is correct when every (logit > 0) matches.
template <typename T>
__global__ void sigmoid_bce_indicator_rows(T* logits, const T* targets, const long long* order,
                                           long long start, T scale, double* row_loss,
                                           double* row_correct, int m, int k) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= m) return;
    const T* t = targets + (order ? order[i] : start + i) * k;
    T* z = logits + (long long)i * k;
    bool all_match = true;
    for (int j = 0; j < k; ++j) all_match = all_match && ((z[j] > (T)0) == (t[j] > (T)0.5));
    row_correct[i] = all_match ? 1.0 : 0.0;
    double loss = 0;
    for (int j = 0; j < k; ++j)
        loss += (double)sigmoid_bce_element(z[j], t[j], scale, (T)1, false, z + j);
    row_loss[i] = loss;
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
