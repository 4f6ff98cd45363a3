// Stride-1 1-D pooling that keeps the length (pool1d() in @draft/core pool1d.ts). ALGORITHMS.md primitive 3.
#include <limits>

#include "internal.hpp"

extern "C" draft_status draft_cpu_pool1d(const float* scores, int32_t rows, int32_t length, int32_t kernel,
                                         draft_pool_type type, draft_pool_padding padding, float* out) {
  if (rows < 0 || length < 0 || kernel < 1) return DRAFT_ERR_INVALID_ARGUMENT;
  if ((!scores || !out) && static_cast<int64_t>(rows) * length > 0) return DRAFT_ERR_INVALID_ARGUMENT;
  const int type_raw = draft::raw_enum(type), pad_raw = draft::raw_enum(padding);
  if (type_raw != DRAFT_POOL_MAX && type_raw != DRAFT_POOL_AVG) return DRAFT_ERR_INVALID_ARGUMENT;
  if (pad_raw != DRAFT_PAD_SAME && pad_raw != DRAFT_PAD_CENTRED_ZERO) return DRAFT_ERR_INVALID_ARGUMENT;
  if (padding == DRAFT_PAD_SAME && kernel % 2 == 0) return DRAFT_ERR_INVALID_ARGUMENT;
  const int64_t n = length;
  const int64_t left = (kernel - 1) / 2;  // k//2 for odd k (same), (k−1)//2 for centred-zero
  // Max pads with −inf for 'same' and with zeros for 'centred-zero'; avg always pads with zeros and ÷ k.
  const bool zero_pad = padding == DRAFT_PAD_CENTRED_ZERO || type == DRAFT_POOL_AVG;
  for (int64_t r = 0; r < rows; ++r) {
    const float* s = scores + r * n;
    float* o = out + r * n;
    if (kernel == 1) {
      for (int64_t i = 0; i < n; ++i) o[i] = s[i];
      continue;
    }
    for (int64_t i = 0; i < n; ++i) {
      const int64_t from = i - left, to = from + kernel;
      const int64_t lo = from < 0 ? 0 : from, hi = to > n ? n : to;
      const bool padded = (to - from) - (hi - lo) > 0;
      if (type == DRAFT_POOL_MAX) {
        float m = zero_pad && padded ? 0.0f : -std::numeric_limits<float>::infinity();
        for (int64_t j = lo; j < hi; ++j) m = s[j] > m ? s[j] : m;  // NaN never wins
        o[i] = m;
      } else {
        double acc = 0.0;  // the reference sums in double
        for (int64_t j = lo; j < hi; ++j) acc += s[j];
        o[i] = static_cast<float>(acc / kernel);
      }
    }
  }
  return DRAFT_OK;
}
