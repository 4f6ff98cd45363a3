// Stride-1 1-D pooling on CUDA, one thread per output (same contract as cpu/pool1d.cpp).
#include "common.cuh"

namespace {

__global__ void pool1d_kernel(const float* __restrict__ s, int rows, int n, int k, int is_max, int same, float* __restrict__ o) {
  const int64_t total = static_cast<int64_t>(rows) * n;
  const int left = (k - 1) / 2;
  const bool zero_pad = !same || !is_max;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = t / n, i = t % n;
    const float* row = s + r * n;
    if (k == 1) {
      o[t] = row[i];
      continue;
    }
    const int64_t from = i - left, to = from + k;
    const int64_t lo = from < 0 ? 0 : from, hi = to > n ? n : to;
    const bool padded = (to - from) - (hi - lo) > 0;
    if (is_max) {
      float m = zero_pad && padded ? 0.0f : -INFINITY;
      for (int64_t j = lo; j < hi; ++j) m = row[j] > m ? row[j] : m;
      o[t] = m;
    } else {
      double acc = 0.0;
      for (int64_t j = lo; j < hi; ++j) acc += row[j];
      o[t] = static_cast<float>(acc / k);
    }
  }
}

}  // namespace

extern "C" draft_status draft_cuda_pool1d(const float* scores, int32_t rows, int32_t length, int32_t kernel,
                                          draft_pool_type type, draft_pool_padding padding, float* out) {
  if (rows < 0 || length < 0 || kernel < 1) return DRAFT_ERR_INVALID_ARGUMENT;
  if ((!scores || !out) && static_cast<int64_t>(rows) * length > 0) return DRAFT_ERR_INVALID_ARGUMENT;
  const int type_raw = draft_cuda::raw_enum(type), pad_raw = draft_cuda::raw_enum(padding);
  if (type_raw != DRAFT_POOL_MAX && type_raw != DRAFT_POOL_AVG) return DRAFT_ERR_INVALID_ARGUMENT;
  if (pad_raw != DRAFT_PAD_SAME && pad_raw != DRAFT_PAD_CENTRED_ZERO) return DRAFT_ERR_INVALID_ARGUMENT;
  if (padding == DRAFT_PAD_SAME && kernel % 2 == 0) return DRAFT_ERR_INVALID_ARGUMENT;
  const size_t n = static_cast<size_t>(rows) * length;
  if (n == 0) return DRAFT_OK;
  draft_status st = draft_cuda::ensure_device();
  if (st != DRAFT_OK) return st;
  draft_cuda::DeviceBuffer<float> ds, dout;
  DRAFT_CUDA_TRY(ds.upload(scores, n));
  DRAFT_CUDA_TRY(dout.alloc(n));
  pool1d_kernel<<<draft_cuda::grid_for(static_cast<int64_t>(n), 256), 256>>>(
      ds.ptr, rows, length, kernel, type == DRAFT_POOL_MAX, padding == DRAFT_PAD_SAME, dout.ptr);
  DRAFT_CUDA_CHECK_LAUNCH();
  DRAFT_CUDA_TRY(cudaDeviceSynchronize());
  DRAFT_CUDA_TRY(cudaMemcpy(out, dout.ptr, n * sizeof(float), cudaMemcpyDeviceToHost));
  return DRAFT_OK;
}
