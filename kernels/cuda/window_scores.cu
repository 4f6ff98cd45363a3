// Fused window scoring on CUDA (same contract as cpu/window_scores.cpp; host pointers in and out).
// Grid = (key tiles, KV heads). Each block stages a tile of keys in shared memory (f16 converted on load).
//   pass 1: one thread per query row of the KV head's G·w rows computes the tile's partial softmax
//           max / denominator (online), written per (row, tile);
//   merge:  one thread per row folds the tile partials (log-sum-exp);
//   pass 2: one thread per key recomputes its logits for every row, normalises and reduces (max / sum).
// Memory: O(G·w × tiles) partials + the inputs and output; never the (w, N) matrix.
#include <cmath>

#include "common.cuh"

namespace {

constexpr int PASS1_THREADS = 128;

struct Dims {
  int d, w, n, rows, tile, tiles, causal;
  float scale;
};

template <bool F16>
__device__ void load_tile(const void* keys, const Dims& D, int kvh, int64_t j0, int nk, float* ks) {
  const int stride = D.d + 1;  // padding avoids bank conflicts in pass 2 (thread per key)
  const int64_t base = (static_cast<int64_t>(kvh) * D.n + j0) * D.d;
  for (int e = threadIdx.x; e < nk * D.d; e += blockDim.x) {
    const int c = e / D.d, x = e % D.d;
    float v;
    if (F16)
      v = __half2float(static_cast<const __half*>(keys)[base + e]);
    else
      v = static_cast<const float*>(keys)[base + e];
    ks[c * stride + x] = v;
  }
}

__device__ __forceinline__ int visible_in_tile(const Dims& D, int i, int64_t j0, int nk) {
  if (!D.causal) return nk;
  const int64_t v = static_cast<int64_t>(D.n) - D.w + i + 1 - j0;
  return v <= 0 ? 0 : (v >= nk ? nk : static_cast<int>(v));
}

template <bool F16>
__global__ void pass1_kernel(const float* __restrict__ q, const void* __restrict__ keys, Dims D, float* pm, float* ps) {
  extern __shared__ float ks[];
  const int tile = blockIdx.x, kvh = blockIdx.y;
  const int64_t j0 = static_cast<int64_t>(tile) * D.tile;
  const int nk = static_cast<int>(min(static_cast<int64_t>(D.tile), D.n - j0));
  load_tile<F16>(keys, D, kvh, j0, nk, ks);
  __syncthreads();
  const int stride = D.d + 1;
  for (int r = threadIdx.x; r < D.rows; r += blockDim.x) {
    const float* qr = q + (static_cast<int64_t>(kvh) * D.rows + r) * D.d;
    const int lim = visible_in_tile(D, r % D.w, j0, nk);
    float m = -INFINITY, s = 0.0f;
    for (int c = 0; c < lim; ++c) {
      float dot = 0.0f;
      for (int x = 0; x < D.d; ++x) dot = fmaf(qr[x], ks[c * stride + x], dot);
      const float l = dot * D.scale;
      if (l > m) {
        s = s * expf(m - l) + 1.0f;
        m = l;
      } else {
        s += expf(l - m);
      }
    }
    const int64_t at = (static_cast<int64_t>(kvh) * D.tiles + tile) * D.rows + r;
    pm[at] = m;
    ps[at] = s;
  }
}

__global__ void merge_kernel(const float* pm, const float* ps, Dims D, int hkv, float* row_m, float* row_inv) {
  const int64_t total = static_cast<int64_t>(hkv) * D.rows;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t kvh = t / D.rows, r = t % D.rows;
    double M = -INFINITY;
    for (int c = 0; c < D.tiles; ++c) M = fmax(M, static_cast<double>(pm[(kvh * D.tiles + c) * D.rows + r]));
    double S = 0.0;
    for (int c = 0; c < D.tiles; ++c) {
      const float mc = pm[(kvh * D.tiles + c) * D.rows + r];
      if (mc != -INFINITY) S += static_cast<double>(ps[(kvh * D.tiles + c) * D.rows + r]) * exp(static_cast<double>(mc) - M);
    }
    row_m[t] = static_cast<float>(M);
    row_inv[t] = static_cast<float>(1.0 / S);
  }
}

template <bool F16>
__global__ void pass2_kernel(const float* __restrict__ q, const void* __restrict__ keys, const float* __restrict__ weights,
                             const float* __restrict__ row_m, const float* __restrict__ row_inv, Dims D, int op,
                             float* __restrict__ out) {
  extern __shared__ float ks[];
  const int tile = blockIdx.x, kvh = blockIdx.y;
  const int64_t j0 = static_cast<int64_t>(tile) * D.tile;
  const int nk = static_cast<int>(min(static_cast<int64_t>(D.tile), D.n - j0));
  load_tile<F16>(keys, D, kvh, j0, nk, ks);
  __syncthreads();
  const int c = threadIdx.x;
  if (c >= nk) return;
  const int stride = D.d + 1;
  const float* kc = ks + c * stride;
  const int64_t j = j0 + c;
  const bool is_max = op == DRAFT_REDUCE_MAX;
  float accf = -INFINITY;
  double accd = 0.0;
  for (int r = 0; r < D.rows; ++r) {
    const int i = r % D.w;
    const float weight = weights ? weights[i] : 1.0f;
    const bool visible = !D.causal || j < static_cast<int64_t>(D.n) - D.w + i + 1;
    float p = 0.0f;
    if (visible) {
      const float* qr = q + (static_cast<int64_t>(kvh) * D.rows + r) * D.d;  // same address across the warp
      float dot = 0.0f;
      for (int x = 0; x < D.d; ++x) dot = fmaf(qr[x], kc[x], dot);
      const int64_t rr = static_cast<int64_t>(kvh) * D.rows + r;
      p = expf(dot * D.scale - row_m[rr]) * row_inv[rr];
    }
    p *= weight;
    if (is_max)
      accf = p > accf ? p : accf;
    else
      accd += static_cast<double>(p);
  }
  float result;
  if (is_max)
    result = accf;
  else
    result = static_cast<float>(op == DRAFT_REDUCE_MEAN ? accd / D.rows : accd);
  out[static_cast<int64_t>(kvh) * D.n + j] = result;
}

}  // namespace

extern "C" draft_status draft_cuda_window_scores(const draft_window_scores_args* a) {
  if (!a || !a->queries || !a->keys || !a->out) return DRAFT_ERR_INVALID_ARGUMENT;
  if (a->num_heads < 1 || a->num_kv_heads < 1 || a->head_dim < 1 || a->query_count < 1 || a->key_count < 1 ||
      a->num_heads % a->num_kv_heads != 0 || a->query_count > a->key_count)
    return DRAFT_ERR_INVALID_ARGUMENT;
  const int dtype = draft_cuda::raw_enum(a->key_dtype), op = draft_cuda::raw_enum(a->op);
  if (dtype != DRAFT_DTYPE_F32 && dtype != DRAFT_DTYPE_F16) return DRAFT_ERR_INVALID_ARGUMENT;
  if (op != DRAFT_REDUCE_MAX && op != DRAFT_REDUCE_MEAN && op != DRAFT_REDUCE_SUM) return DRAFT_ERR_INVALID_ARGUMENT;
  if (!std::isfinite(a->scale)) return DRAFT_ERR_INVALID_ARGUMENT;
  draft_status st = draft_cuda::ensure_device();
  if (st != DRAFT_OK) return st;

  Dims D;
  D.d = a->head_dim;
  D.w = a->query_count;
  D.n = a->key_count;
  D.rows = (a->num_heads / a->num_kv_heads) * a->query_count;
  D.causal = a->causal_tail != 0;
  D.scale = a->scale != 0.0f ? a->scale : static_cast<float>(1.0 / std::sqrt(static_cast<double>(a->head_dim)));
  D.tile = 64;
  while (D.tile > 32 && static_cast<size_t>(D.tile) * (D.d + 1) * sizeof(float) > 48 * 1024) D.tile /= 2;
  const size_t smem = static_cast<size_t>(D.tile) * (D.d + 1) * sizeof(float);
  if (smem > 48 * 1024) return DRAFT_ERR_UNSUPPORTED;  // head_dim > ~380
  D.tiles = static_cast<int>((static_cast<int64_t>(D.n) + D.tile - 1) / D.tile);
  if (D.tiles > 2147483647 || a->num_kv_heads > 65535) return DRAFT_ERR_UNSUPPORTED;

  const bool f16 = a->key_dtype == DRAFT_DTYPE_F16;
  const size_t qn = static_cast<size_t>(a->num_heads) * D.w * D.d;
  const size_t kn = static_cast<size_t>(a->num_kv_heads) * D.n * D.d;
  const size_t parts = static_cast<size_t>(a->num_kv_heads) * D.tiles * D.rows;
  const size_t rowsn = static_cast<size_t>(a->num_kv_heads) * D.rows;
  const size_t outn = static_cast<size_t>(a->num_kv_heads) * D.n;

  draft_cuda::DeviceBuffer<float> dq, dw, dpm, dps, drm, dri, dout;
  draft_cuda::DeviceBuffer<unsigned char> dk;
  DRAFT_CUDA_TRY(dq.upload(a->queries, qn));
  DRAFT_CUDA_TRY(dk.upload(static_cast<const unsigned char*>(a->keys), kn * (f16 ? 2 : 4)));
  if (a->query_weights) DRAFT_CUDA_TRY(dw.upload(a->query_weights, D.w));
  DRAFT_CUDA_TRY(dpm.alloc(parts));
  DRAFT_CUDA_TRY(dps.alloc(parts));
  DRAFT_CUDA_TRY(drm.alloc(rowsn));
  DRAFT_CUDA_TRY(dri.alloc(rowsn));
  DRAFT_CUDA_TRY(dout.alloc(outn));

  const dim3 grid(static_cast<unsigned>(D.tiles), static_cast<unsigned>(a->num_kv_heads));
  if (f16)
    pass1_kernel<true><<<grid, PASS1_THREADS, smem>>>(dq.ptr, dk.ptr, D, dpm.ptr, dps.ptr);
  else
    pass1_kernel<false><<<grid, PASS1_THREADS, smem>>>(dq.ptr, dk.ptr, D, dpm.ptr, dps.ptr);
  DRAFT_CUDA_CHECK_LAUNCH();
  merge_kernel<<<draft_cuda::grid_for(static_cast<int64_t>(rowsn), 256), 256>>>(dpm.ptr, dps.ptr, D, a->num_kv_heads,
                                                                                 drm.ptr, dri.ptr);
  DRAFT_CUDA_CHECK_LAUNCH();
  const float* w = a->query_weights ? dw.ptr : nullptr;
  if (f16)
    pass2_kernel<true><<<grid, D.tile, smem>>>(dq.ptr, dk.ptr, w, drm.ptr, dri.ptr, D, a->op, dout.ptr);
  else
    pass2_kernel<false><<<grid, D.tile, smem>>>(dq.ptr, dk.ptr, w, drm.ptr, dri.ptr, D, a->op, dout.ptr);
  DRAFT_CUDA_CHECK_LAUNCH();
  DRAFT_CUDA_TRY(cudaDeviceSynchronize());
  DRAFT_CUDA_TRY(cudaMemcpy(a->out, dout.ptr, outn * sizeof(float), cudaMemcpyDeviceToHost));
  return DRAFT_OK;
}
