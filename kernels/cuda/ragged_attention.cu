// Decode / chunk attention over ragged per-KV-head caches on CUDA (same contract as cpu/ragged_attention.cpp;
// host pointers in and out, the whole kv_rows buffers are copied to the device).
// Work units (KV head, entry chunk) are planned on the host exactly as on the CPU (common/ragged_plan.hpp).
//   partials: grid (units, ceil(rows / WARPS)); one warp per (unit, query row). Each lane holds d/32 query
//             dims and accumulator dims in registers; per entry a warp-shuffle dot product, then an online
//             softmax step (running max, rescaled denominator and accumulator). K/V rows of a unit are read
//             by the warps of every row of the KV head (L1/L2 reuse).
//   merge:    one block per (KV head, row): log-sum-exp over the head's units, one thread per output dim.
// head_dim <= 256 (8 registers per lane); larger heads return DRAFT_ERR_UNSUPPORTED.
#include <cmath>
#include <vector>

#include "../common/ragged_plan.hpp"
#include "common.cuh"

namespace {

constexpr int WARPS = 4;
constexpr int MAX_PER_LANE = 8;  // head_dim <= 32 · 8

struct Dims {
  int d, q, rows, causal;
  float scale;
};

__device__ __forceinline__ int visible_dev(const Dims& D, int len, int i) {
  if (!D.causal) return len;
  const int v = len - D.q + i + 1;
  return v < 0 ? 0 : v;
}

template <bool F16>
__device__ __forceinline__ float load(const void* p, int64_t at) {
  if (F16) return __half2float(static_cast<const __half*>(p)[at]);
  return static_cast<const float*>(p)[at];
}

template <bool F16>
__global__ void partials_kernel(const float* __restrict__ queries, const void* __restrict__ keys, const void* __restrict__ values,
                                const int32_t* __restrict__ offsets, const int32_t* __restrict__ lengths,
                                const draft_ragged::Item* __restrict__ items, Dims D, float* pm, float* ps, float* pacc) {
  const int unit = blockIdx.x;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int r = blockIdx.y * WARPS + warp;
  if (r >= D.rows) return;
  const draft_ragged::Item it = items[unit];
  const int len = lengths[it.head];
  const int64_t row0 = offsets[it.head];
  const int lim = min(it.end, visible_dev(D, len, r % D.q));
  const float* qr = queries + (static_cast<int64_t>(it.head) * D.rows + r) * D.d;
  float qv[MAX_PER_LANE], acc[MAX_PER_LANE];
#pragma unroll
  for (int t = 0; t < MAX_PER_LANE; ++t) {
    const int x = lane + 32 * t;
    qv[t] = x < D.d ? qr[x] : 0.0f;
    acc[t] = 0.0f;
  }
  float m = -INFINITY, s = 0.0f;
  for (int j = it.start; j < lim; ++j) {
    const int64_t base = (row0 + j) * D.d;
    float dot = 0.0f;
#pragma unroll
    for (int t = 0; t < MAX_PER_LANE; ++t) {
      const int x = lane + 32 * t;
      if (x < D.d) dot = fmaf(qv[t], load<F16>(keys, base + x), dot);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
    const float l = dot * D.scale;
    float p;
    if (l > m) {
      const float f = expf(m - l);  // 0 when m = -inf
      s *= f;
#pragma unroll
      for (int t = 0; t < MAX_PER_LANE; ++t) acc[t] *= f;
      m = l;
      p = 1.0f;
    } else {
      p = expf(l - m);
    }
    s += p;
#pragma unroll
    for (int t = 0; t < MAX_PER_LANE; ++t) {
      const int x = lane + 32 * t;
      if (x < D.d) acc[t] = fmaf(p, load<F16>(values, base + x), acc[t]);
    }
  }
  const int64_t at = static_cast<int64_t>(unit) * D.rows + r;
  if (lane == 0) {
    pm[at] = m;
    ps[at] = s;
  }
#pragma unroll
  for (int t = 0; t < MAX_PER_LANE; ++t) {
    const int x = lane + 32 * t;
    if (x < D.d) pacc[at * D.d + x] = acc[t];
  }
}

__global__ void merge_kernel(const float* pm, const float* ps, const float* pacc, const int32_t* first, Dims D, float* out) {
  const int h = blockIdx.x / D.rows, r = blockIdx.x % D.rows;
  const int u0 = first[h], u1 = first[h + 1];
  float M = -INFINITY;
  for (int u = u0; u < u1; ++u) M = fmaxf(M, pm[static_cast<int64_t>(u) * D.rows + r]);
  float* o = out + (static_cast<int64_t>(h) * D.rows + r) * D.d;
  if (M == -INFINITY) {
    for (int x = threadIdx.x; x < D.d; x += blockDim.x) o[x] = 0.0f;
    return;
  }
  double S = 0.0;
  for (int u = u0; u < u1; ++u) {
    const float mu = pm[static_cast<int64_t>(u) * D.rows + r];
    if (mu != -INFINITY) S += static_cast<double>(ps[static_cast<int64_t>(u) * D.rows + r]) * exp(static_cast<double>(mu) - M);
  }
  for (int x = threadIdx.x; x < D.d; x += blockDim.x) {
    double v = 0.0;
    for (int u = u0; u < u1; ++u) {
      const int64_t at = static_cast<int64_t>(u) * D.rows + r;
      if (pm[at] != -INFINITY) v += static_cast<double>(pacc[at * D.d + x]) * exp(static_cast<double>(pm[at]) - M);
    }
    o[x] = static_cast<float>(v / S);
  }
}

}  // namespace

extern "C" draft_status draft_cuda_ragged_attention(const draft_ragged_attention_args* args) {
  draft_status st = draft_ragged::validate(args);
  if (st != DRAFT_OK) return st;
  const auto& a = *args;
  if (a.head_dim > 32 * MAX_PER_LANE) return DRAFT_ERR_UNSUPPORTED;
  st = draft_cuda::ensure_device();
  if (st != DRAFT_OK) return st;
  std::vector<draft_ragged::Item> items;
  std::vector<int32_t> first;
  try {
    // Fewer, longer units than on the CPU would starve the GPU: aim for many units of 256 entries.
    draft_ragged_attention_args planned = a;
    if (planned.chunk_size <= 0) planned.chunk_size = 256;
    draft_ragged::plan(planned, planned.chunk_size, items, first);
  } catch (...) {
    return DRAFT_ERR_OUT_OF_MEMORY;
  }
  Dims D;
  D.d = a.head_dim;
  D.q = a.query_count;
  D.rows = (a.num_heads / a.num_kv_heads) * a.query_count;
  D.causal = a.causal != 0;
  D.scale = draft_ragged::resolve_scale(a);
  const size_t elem = a.kv_dtype == DRAFT_DTYPE_F16 ? 2 : 4;
  const size_t q_n = static_cast<size_t>(a.num_heads) * a.query_count * a.head_dim;
  const size_t kv_bytes = static_cast<size_t>(a.kv_rows) * a.head_dim * elem;
  const size_t n_items = items.size();
  draft_cuda::DeviceBuffer<float> dq, dout, dm, ds, dacc;
  draft_cuda::DeviceBuffer<unsigned char> dk, dv;
  draft_cuda::DeviceBuffer<int32_t> doff, dlen, dfirst;
  draft_cuda::DeviceBuffer<draft_ragged::Item> ditems;
  DRAFT_CUDA_TRY(dq.upload(a.queries, q_n));
  DRAFT_CUDA_TRY(dk.upload(static_cast<const unsigned char*>(a.keys), a.keys ? kv_bytes : 0));
  DRAFT_CUDA_TRY(dv.upload(static_cast<const unsigned char*>(a.values), a.values ? kv_bytes : 0));
  DRAFT_CUDA_TRY(doff.upload(a.offsets, static_cast<size_t>(a.num_kv_heads)));
  DRAFT_CUDA_TRY(dlen.upload(a.lengths, static_cast<size_t>(a.num_kv_heads)));
  DRAFT_CUDA_TRY(dfirst.upload(first.data(), first.size()));
  DRAFT_CUDA_TRY(ditems.upload(items.data(), n_items));
  DRAFT_CUDA_TRY(dm.alloc(n_items * D.rows));
  DRAFT_CUDA_TRY(ds.alloc(n_items * D.rows));
  DRAFT_CUDA_TRY(dacc.alloc(n_items * D.rows * D.d));
  DRAFT_CUDA_TRY(dout.alloc(q_n));
  if (n_items > 0) {
    const dim3 grid(static_cast<unsigned>(n_items), static_cast<unsigned>((D.rows + WARPS - 1) / WARPS));
    if (elem == 2)
      partials_kernel<true><<<grid, 32 * WARPS>>>(dq.ptr, dk.ptr, dv.ptr, doff.ptr, dlen.ptr, ditems.ptr, D, dm.ptr, ds.ptr, dacc.ptr);
    else
      partials_kernel<false><<<grid, 32 * WARPS>>>(dq.ptr, dk.ptr, dv.ptr, doff.ptr, dlen.ptr, ditems.ptr, D, dm.ptr, ds.ptr, dacc.ptr);
    DRAFT_CUDA_CHECK_LAUNCH();
  }
  merge_kernel<<<static_cast<unsigned>(a.num_kv_heads) * D.rows, 128>>>(dm.ptr, ds.ptr, dacc.ptr, dfirst.ptr, D, dout.ptr);
  DRAFT_CUDA_CHECK_LAUNCH();
  DRAFT_CUDA_TRY(cudaDeviceSynchronize());
  DRAFT_CUDA_TRY(cudaMemcpy(a.out, dout.ptr, q_n * sizeof(float), cudaMemcpyDeviceToHost));
  return DRAFT_OK;
}
