// Shared helpers of the CUDA kernels: status mapping, checked launches, RAII device buffers.
// Every CUDA call is checked; errors become draft_status codes (never exit/abort).
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "draft_kernels.h"

#include <cstring>

namespace draft_cuda {

// Reads an enum argument as its raw int (out-of-range enum values are UB when loaded as the enum type).
template <class E>
inline int raw_enum(const E& e) {
  int v;
  std::memcpy(&v, &e, sizeof v);
  return v;
}

inline draft_status from_cuda(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return DRAFT_OK;
    case cudaErrorMemoryAllocation: return DRAFT_ERR_OUT_OF_MEMORY;
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver: return DRAFT_ERR_NO_DEVICE;
    default: return DRAFT_ERR_CUDA;
  }
}

// Checks a runtime call; on failure clears the (non-sticky) error state and returns its status.
#define DRAFT_CUDA_TRY(expr)                            \
  do {                                                  \
    cudaError_t draft_e_ = (expr);                      \
    if (draft_e_ != cudaSuccess) {                      \
      (void)cudaGetLastError();                         \
      return ::draft_cuda::from_cuda(draft_e_);         \
    }                                                   \
  } while (0)

// After a <<<launch>>>: configuration errors surface from cudaGetLastError, execution errors on sync.
#define DRAFT_CUDA_CHECK_LAUNCH() DRAFT_CUDA_TRY(cudaGetLastError())

inline draft_status ensure_device() {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    return DRAFT_ERR_NO_DEVICE;
  }
  return n > 0 ? DRAFT_OK : DRAFT_ERR_NO_DEVICE;
}

template <class T>
struct DeviceBuffer {
  T* ptr = nullptr;
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr) cudaFree(ptr);
  }
  cudaError_t alloc(size_t count) { return cudaMalloc(reinterpret_cast<void**>(&ptr), (count ? count : 1) * sizeof(T)); }
  // Allocates and copies `count` elements from the host.
  cudaError_t upload(const T* host, size_t count) {
    cudaError_t e = alloc(count);
    if (e != cudaSuccess || count == 0) return e;
    return cudaMemcpy(ptr, host, count * sizeof(T), cudaMemcpyHostToDevice);
  }
};

inline unsigned grid_for(int64_t items, int block) {
  int64_t g = (items + block - 1) / block;
  if (g < 1) g = 1;
  if (g > 65535LL * 32) g = 65535LL * 32;  // grid-stride loops cover the rest
  return static_cast<unsigned>(g);
}

}  // namespace draft_cuda
