// Stable top-k per row on CUDA, position order (same contract as cpu/topk.cpp).
// One 1024-thread block per row: radix select (4 × 8-bit histogram passes) over order-preserving uint32
// keys finds the threshold key T and how many T-ties to take; then an in-order block-scan compaction emits
// every key > T plus the first `need` keys == T by position, so output is ascending and ties go to the lower
// position. NaN maps to key 0 (below −inf); −0 and +0 share a key, as in the reference.
#include "common.cuh"

namespace {

constexpr int THREADS = 1024;

__device__ __forceinline__ uint32_t order_key(float f) {
  if (isnan(f)) return 0u;
  if (f == 0.0f) f = 0.0f;  // fold −0 into +0
  const uint32_t u = __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Exclusive block scan of v (blockDim.x == THREADS). *total receives the block sum.
__device__ uint32_t block_exclusive_scan(uint32_t v, uint32_t* total, uint32_t* warp_sums) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  uint32_t x = v;
  for (int o = 1; o < 32; o <<= 1) {
    const uint32_t y = __shfl_up_sync(0xffffffffu, x, o);
    if (lane >= o) x += y;
  }
  if (lane == 31) warp_sums[warp] = x;
  __syncthreads();
  if (warp == 0) {
    uint32_t ws = lane < nwarps ? warp_sums[lane] : 0u;
    for (int o = 1; o < 32; o <<= 1) {
      const uint32_t y = __shfl_up_sync(0xffffffffu, ws, o);
      if (lane >= o) ws += y;
    }
    if (lane < nwarps) warp_sums[lane] = ws;
  }
  __syncthreads();
  const uint32_t base = warp > 0 ? warp_sums[warp - 1] : 0u;
  *total = warp_sums[nwarps - 1];
  __syncthreads();  // warp_sums is reused by the next call
  return base + x - v;
}

__global__ void topk_kernel(const float* __restrict__ scores, int64_t row_stride, int length, int take,
                            int32_t* __restrict__ out) {
  __shared__ uint32_t hist[256];
  __shared__ uint32_t warp_sums[32];
  __shared__ uint32_t s_digit, s_need;
  const float* s = scores + static_cast<int64_t>(blockIdx.x) * row_stride;
  int32_t* o = out + static_cast<int64_t>(blockIdx.x) * take;

  uint32_t prefix = 0, mask = 0, need = static_cast<uint32_t>(take);
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = threadIdx.x; b < 256; b += blockDim.x) hist[b] = 0;
    __syncthreads();
    for (int i = threadIdx.x; i < length; i += blockDim.x) {
      const uint32_t key = order_key(s[i]);
      if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 0xffu], 1u);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      uint32_t cum = 0;
      int digit = 0;
      for (int b = 255; b >= 0; --b) {
        if (cum + hist[b] >= need) {
          digit = b;
          break;
        }
        cum += hist[b];
      }
      s_digit = static_cast<uint32_t>(digit);
      s_need = need - cum;
    }
    __syncthreads();
    prefix |= s_digit << shift;
    mask |= 0xffu << shift;
    need = s_need;
    __syncthreads();
  }
  const uint32_t threshold = prefix;
  uint32_t eq_seen = 0, written = 0;
  for (int base = 0; base < length; base += blockDim.x) {
    const int i = base + threadIdx.x;
    const uint32_t key = i < length ? order_key(s[i]) : 0u;
    const bool valid = i < length;
    const uint32_t is_eq = valid && key == threshold ? 1u : 0u;
    uint32_t eq_total;
    const uint32_t eq_rank = block_exclusive_scan(is_eq, &eq_total, warp_sums);
    const uint32_t pick = valid && (key > threshold || (is_eq && eq_seen + eq_rank < need)) ? 1u : 0u;
    uint32_t pick_total;
    const uint32_t pos = block_exclusive_scan(pick, &pick_total, warp_sums);
    if (pick) o[written + pos] = i;
    eq_seen += eq_total;
    written += pick_total;
  }
}

}  // namespace

extern "C" draft_status draft_cuda_topk(const float* scores, int32_t rows, int64_t row_stride, int32_t length, int32_t k,
                                        draft_topk_order order, int32_t* out) {
  if (rows < 0 || length < 0 || k < 0 || row_stride < length) return DRAFT_ERR_INVALID_ARGUMENT;
  const int order_raw = draft_cuda::raw_enum(order);
  if (order_raw != DRAFT_TOPK_POSITION && order_raw != DRAFT_TOPK_SCORE) return DRAFT_ERR_INVALID_ARGUMENT;
  if (order == DRAFT_TOPK_SCORE) return DRAFT_ERR_UNSUPPORTED;  // callers use the CPU kernel for score order
  const int take = k < length ? k : length;
  if (rows == 0 || take == 0) return DRAFT_OK;  // empty output: pointers may be null
  if (!scores || !out) return DRAFT_ERR_INVALID_ARGUMENT;
  if (rows > 2147483647) return DRAFT_ERR_UNSUPPORTED;
  draft_status st = draft_cuda::ensure_device();
  if (st != DRAFT_OK) return st;
  const size_t in_n = static_cast<size_t>(rows - 1) * row_stride + length;
  const size_t out_n = static_cast<size_t>(rows) * take;
  draft_cuda::DeviceBuffer<float> ds;
  draft_cuda::DeviceBuffer<int32_t> dout;
  DRAFT_CUDA_TRY(ds.upload(scores, in_n));
  DRAFT_CUDA_TRY(dout.alloc(out_n));
  topk_kernel<<<static_cast<unsigned>(rows), THREADS>>>(ds.ptr, row_stride, length, take, dout.ptr);
  DRAFT_CUDA_CHECK_LAUNCH();
  DRAFT_CUDA_TRY(cudaDeviceSynchronize());
  DRAFT_CUDA_TRY(cudaMemcpy(out, dout.ptr, out_n * sizeof(int32_t), cudaMemcpyDeviceToHost));
  return DRAFT_OK;
}
