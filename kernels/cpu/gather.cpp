// KV gather / compaction (gatherRows() in @draft/core gather.ts), uniform or ragged per-head counts.
// ALGORITHMS.md primitive 5. Rows are copied as bytes, so f32 and f16 caches are gathered alike.
#include <vector>

#include "internal.hpp"

extern "C" draft_status draft_cpu_gather_rows(const void* tensor, draft_dtype dtype, int32_t num_kv_heads,
                                              int32_t length, int32_t row_dim, const int32_t* indices,
                                              const int32_t* counts, int32_t uniform_count, int32_t num_threads,
                                              void* out) {
  if (num_kv_heads < 0 || length < 0 || row_dim < 1) return DRAFT_ERR_INVALID_ARGUMENT;
  const int dtype_raw = draft::raw_enum(dtype);
  if (dtype_raw != DRAFT_DTYPE_F32 && dtype_raw != DRAFT_DTYPE_F16) return DRAFT_ERR_INVALID_ARGUMENT;
  if (!counts && uniform_count < 0) return DRAFT_ERR_INVALID_ARGUMENT;
  const size_t elem = dtype == DRAFT_DTYPE_F16 ? 2 : 4;
  const size_t row_bytes = elem * static_cast<size_t>(row_dim);
  return draft::guarded([&]() -> draft_status {
    std::vector<int64_t> offsets(static_cast<size_t>(num_kv_heads) + 1, 0);
    for (int32_t h = 0; h < num_kv_heads; ++h) {
      const int32_t c = counts ? counts[h] : uniform_count;
      if (c < 0) return DRAFT_ERR_INVALID_ARGUMENT;
      offsets[h + 1] = offsets[h] + c;
    }
    if (offsets[num_kv_heads] == 0) return DRAFT_OK;  // nothing kept: pointers may be null
    if (!indices || !tensor || !out) return DRAFT_ERR_INVALID_ARGUMENT;
    // Validate every index before writing anything.
    for (int32_t h = 0; h < num_kv_heads; ++h)
      for (int64_t i = offsets[h]; i < offsets[h + 1]; ++i)
        if (indices[i] < 0 || indices[i] >= length) return DRAFT_ERR_INVALID_ARGUMENT;
    const auto* src = static_cast<const unsigned char*>(tensor);
    auto* dst = static_cast<unsigned char*>(out);
    const int threads = draft::resolve_threads(num_threads, num_kv_heads);
    draft::parallel_for(threads, num_kv_heads, [&](int, int64_t h) {
      const unsigned char* head = src + static_cast<size_t>(h) * length * row_bytes;
      for (int64_t i = offsets[h]; i < offsets[h + 1]; ++i)
        std::memcpy(dst + static_cast<size_t>(i) * row_bytes, head + static_cast<size_t>(indices[i]) * row_bytes, row_bytes);
    });
    return DRAFT_OK;
  });
}
