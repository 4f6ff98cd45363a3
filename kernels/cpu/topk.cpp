// Stable top-k per row (topK() in @draft/core top-k.ts). ALGORITHMS.md primitive 4: equal scores -> lower
// position wins; NaN ranks below −inf (NaNs among themselves by position); output ascending by position or
// by descending score. O(N) selection (nth_element) + O(k log k) ordering per row.
#include <algorithm>
#include <cmath>
#include <vector>

#include "internal.hpp"

namespace {

struct Better {
  const float* s;
  // true when a ranks strictly before b.
  bool operator()(int32_t a, int32_t b) const {
    const float sa = s[a], sb = s[b];
    const bool na = std::isnan(sa), nb = std::isnan(sb);
    if (na || nb) return na && nb ? a < b : nb;
    if (sa == sb) return a < b;
    return sa > sb;
  }
};

}  // namespace

extern "C" draft_status draft_cpu_topk(const float* scores, int32_t rows, int64_t row_stride, int32_t length,
                                       int32_t k, draft_topk_order order, int32_t num_threads, int32_t* out) {
  if (rows < 0 || length < 0 || k < 0 || row_stride < length) return DRAFT_ERR_INVALID_ARGUMENT;
  const int order_raw = draft::raw_enum(order);
  if (order_raw != DRAFT_TOPK_POSITION && order_raw != DRAFT_TOPK_SCORE) return DRAFT_ERR_INVALID_ARGUMENT;
  const int32_t take = std::min(k, length);
  if (rows == 0 || take == 0) return DRAFT_OK;  // empty output: pointers may be null
  if (!scores || !out) return DRAFT_ERR_INVALID_ARGUMENT;
  return draft::guarded([&]() -> draft_status {
    const int threads = draft::resolve_threads(num_threads, rows);
    std::vector<std::vector<int32_t>> idx(threads);
    draft::parallel_for(threads, rows, [&](int t, int64_t r) {
      auto& v = idx[t];
      v.resize(length);
      for (int32_t i = 0; i < length; ++i) v[i] = i;
      Better better{scores + r * row_stride};
      if (take < length) std::nth_element(v.begin(), v.begin() + take, v.end(), better);
      if (order == DRAFT_TOPK_POSITION)
        std::sort(v.begin(), v.begin() + take);
      else
        std::sort(v.begin(), v.begin() + take, better);
      std::copy(v.begin(), v.begin() + take, out + r * take);
    });
    return DRAFT_OK;
  });
}
