// SpecPC per-token aggregation on CUDA: max over layers × rows, one thread per kept key.
#include "common.cuh"

namespace {

__global__ void aggregate_kernel(const float* __restrict__ s, int64_t total_rows, int key_count, int out_length,
                                 int accumulate, float* __restrict__ out) {
  for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < out_length;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float m = accumulate ? out[j] : -INFINITY;
    for (int64_t r = 0; r < total_rows; ++r) {
      const float v = s[r * key_count + j];
      m = v > m ? v : m;
    }
    out[j] = m;
  }
}

}  // namespace

extern "C" draft_status draft_cuda_specpc_aggregate(const float* scores, int32_t num_layers, int32_t rows_per_layer,
                                                    int32_t key_count, int32_t out_length, int32_t accumulate, float* out) {
  if ((!out && out_length > 0) || num_layers < 0 || rows_per_layer < 0 || key_count < 0 || out_length < 0 || out_length > key_count)
    return DRAFT_ERR_INVALID_ARGUMENT;
  const int64_t total_rows = static_cast<int64_t>(num_layers) * rows_per_layer;
  if (!scores && total_rows > 0) return DRAFT_ERR_INVALID_ARGUMENT;
  if (out_length == 0) return DRAFT_OK;
  draft_status st = draft_cuda::ensure_device();
  if (st != DRAFT_OK) return st;
  draft_cuda::DeviceBuffer<float> ds, dout;
  DRAFT_CUDA_TRY(ds.upload(scores, static_cast<size_t>(total_rows) * key_count));
  if (accumulate)
    DRAFT_CUDA_TRY(dout.upload(out, out_length));
  else
    DRAFT_CUDA_TRY(dout.alloc(out_length));
  aggregate_kernel<<<draft_cuda::grid_for(out_length, 256), 256>>>(ds.ptr, total_rows, key_count, out_length, accumulate,
                                                                   dout.ptr);
  DRAFT_CUDA_CHECK_LAUNCH();
  DRAFT_CUDA_TRY(cudaDeviceSynchronize());
  DRAFT_CUDA_TRY(cudaMemcpy(out, dout.ptr, static_cast<size_t>(out_length) * sizeof(float), cudaMemcpyDeviceToHost));
  return DRAFT_OK;
}
