// Status strings, and the CUDA entry points when the library is built without CUDA.
#include "draft_kernels.h"

extern "C" const char* draft_status_string(draft_status status) {
  switch (status) {
    case DRAFT_OK: return "ok";
    case DRAFT_ERR_INVALID_ARGUMENT: return "invalid argument";
    case DRAFT_ERR_OUT_OF_MEMORY: return "out of memory";
    case DRAFT_ERR_CUDA: return "CUDA error";
    case DRAFT_ERR_NO_DEVICE: return "no CUDA device";
    case DRAFT_ERR_NOT_BUILT: return "backend not built";
    case DRAFT_ERR_UNSUPPORTED: return "unsupported by this backend";
    case DRAFT_ERR_INTERNAL: return "internal error";
  }
  return "unknown status";
}

#ifndef DRAFT_WITH_CUDA
extern "C" int draft_cuda_built(void) { return 0; }
extern "C" draft_status draft_cuda_device_count(int32_t* count) {
  if (!count) return DRAFT_ERR_INVALID_ARGUMENT;
  *count = 0;
  return DRAFT_OK;
}
extern "C" draft_status draft_cuda_window_scores(const draft_window_scores_args*) { return DRAFT_ERR_NOT_BUILT; }
extern "C" draft_status draft_cuda_pool1d(const float*, int32_t, int32_t, int32_t, draft_pool_type, draft_pool_padding,
                                          float*) {
  return DRAFT_ERR_NOT_BUILT;
}
extern "C" draft_status draft_cuda_topk(const float*, int32_t, int64_t, int32_t, int32_t, draft_topk_order, int32_t*) {
  return DRAFT_ERR_NOT_BUILT;
}
extern "C" draft_status draft_cuda_gather_rows(const void*, draft_dtype, int32_t, int32_t, int32_t, const int32_t*,
                                               const int32_t*, int32_t, void*) {
  return DRAFT_ERR_NOT_BUILT;
}
extern "C" draft_status draft_cuda_specpc_aggregate(const float*, int32_t, int32_t, int32_t, int32_t, int32_t, float*) {
  return DRAFT_ERR_NOT_BUILT;
}
extern "C" draft_status draft_cuda_ragged_attention(const draft_ragged_attention_args*) { return DRAFT_ERR_NOT_BUILT; }
#endif
