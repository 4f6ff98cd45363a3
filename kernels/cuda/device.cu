// CUDA build marker and device discovery.
#include "common.cuh"

extern "C" int draft_cuda_built(void) { return 1; }

extern "C" draft_status draft_cuda_device_count(int32_t* count) {
  if (!count) return DRAFT_ERR_INVALID_ARGUMENT;
  *count = 0;
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    // No driver / no device is not an error for discovery: report zero devices.
    return DRAFT_OK;
  }
  *count = n;
  return DRAFT_OK;
}
