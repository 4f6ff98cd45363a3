// SpecPC per-token aggregation (ALGORITHMS.md SpecPC step 3): s = max over layers (and rows: KV heads or
// decode steps) of the per-layer scores, truncated to the prompt. Streaming-friendly via `accumulate`.
#include <limits>

#include "internal.hpp"

extern "C" draft_status draft_cpu_specpc_aggregate(const float* scores, int32_t num_layers, int32_t rows_per_layer,
                                                   int32_t key_count, int32_t out_length, int32_t accumulate,
                                                   float* out) {
  if ((!out && out_length > 0) || num_layers < 0 || rows_per_layer < 0 || key_count < 0 || out_length < 0 || out_length > key_count)
    return DRAFT_ERR_INVALID_ARGUMENT;
  if (!scores && num_layers > 0 && rows_per_layer > 0) return DRAFT_ERR_INVALID_ARGUMENT;
  if (!accumulate)
    for (int32_t j = 0; j < out_length; ++j) out[j] = -std::numeric_limits<float>::infinity();
  const int64_t total_rows = static_cast<int64_t>(num_layers) * rows_per_layer;
  for (int64_t r = 0; r < total_rows; ++r) {
    const float* s = scores + r * key_count;
    for (int32_t j = 0; j < out_length; ++j) out[j] = s[j] > out[j] ? s[j] : out[j];
  }
  return DRAFT_OK;
}
