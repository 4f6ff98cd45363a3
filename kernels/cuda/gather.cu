// KV gather / compaction on CUDA (same contract as cpu/gather.cpp). Indices are validated and turned into
// absolute source rows on the host; the device copies one output row per thread-block stripe.
#include <vector>

#include "common.cuh"

namespace {

template <class T>
__global__ void gather_kernel(const T* __restrict__ src, const int64_t* __restrict__ rows, int64_t out_rows, int row_dim,
                              T* __restrict__ dst) {
  const int64_t total = out_rows * row_dim;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < total;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = t / row_dim, x = t % row_dim;
    dst[t] = src[rows[r] * row_dim + x];
  }
}

}  // namespace

extern "C" draft_status draft_cuda_gather_rows(const void* tensor, draft_dtype dtype, int32_t num_kv_heads, int32_t length,
                                               int32_t row_dim, const int32_t* indices, const int32_t* counts,
                                               int32_t uniform_count, void* out) {
  if (num_kv_heads < 0 || length < 0 || row_dim < 1) return DRAFT_ERR_INVALID_ARGUMENT;
  const int dtype_raw = draft_cuda::raw_enum(dtype);
  if (dtype_raw != DRAFT_DTYPE_F32 && dtype_raw != DRAFT_DTYPE_F16) return DRAFT_ERR_INVALID_ARGUMENT;
  if (!counts && uniform_count < 0) return DRAFT_ERR_INVALID_ARGUMENT;
  std::vector<int64_t> rows;
  try {
    for (int32_t h = 0, at = 0; h < num_kv_heads; ++h) {
      const int32_t c = counts ? counts[h] : uniform_count;
      if (c < 0) return DRAFT_ERR_INVALID_ARGUMENT;
      if (c > 0 && !indices) return DRAFT_ERR_INVALID_ARGUMENT;
      for (int32_t i = 0; i < c; ++i, ++at) {
        if (indices[at] < 0 || indices[at] >= length) return DRAFT_ERR_INVALID_ARGUMENT;
        rows.push_back(static_cast<int64_t>(h) * length + indices[at]);
      }
    }
  } catch (...) {
    return DRAFT_ERR_OUT_OF_MEMORY;
  }
  if (rows.empty()) return DRAFT_OK;  // nothing kept: pointers may be null
  if (!tensor || !out) return DRAFT_ERR_INVALID_ARGUMENT;
  draft_status st = draft_cuda::ensure_device();
  if (st != DRAFT_OK) return st;
  const size_t elem = dtype == DRAFT_DTYPE_F16 ? 2 : 4;
  const size_t in_bytes = static_cast<size_t>(num_kv_heads) * length * row_dim * elem;
  const size_t out_bytes = rows.size() * row_dim * elem;
  draft_cuda::DeviceBuffer<unsigned char> dsrc, ddst;
  draft_cuda::DeviceBuffer<int64_t> drows;
  DRAFT_CUDA_TRY(dsrc.upload(static_cast<const unsigned char*>(tensor), in_bytes));
  DRAFT_CUDA_TRY(drows.upload(rows.data(), rows.size()));
  DRAFT_CUDA_TRY(ddst.alloc(out_bytes));
  const int64_t total = static_cast<int64_t>(rows.size()) * row_dim;
  const unsigned grid = draft_cuda::grid_for(total, 256);
  if (elem == 2)
    gather_kernel<uint16_t><<<grid, 256>>>(reinterpret_cast<const uint16_t*>(dsrc.ptr), drows.ptr,
                                           static_cast<int64_t>(rows.size()), row_dim, reinterpret_cast<uint16_t*>(ddst.ptr));
  else
    gather_kernel<float><<<grid, 256>>>(reinterpret_cast<const float*>(dsrc.ptr), drows.ptr,
                                        static_cast<int64_t>(rows.size()), row_dim, reinterpret_cast<float*>(ddst.ptr));
  DRAFT_CUDA_CHECK_LAUNCH();
  DRAFT_CUDA_TRY(cudaDeviceSynchronize());
  DRAFT_CUDA_TRY(cudaMemcpy(out, ddst.ptr, out_bytes, cudaMemcpyDeviceToHost));
  return DRAFT_OK;
}
