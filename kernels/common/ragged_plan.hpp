// Argument checks and work planning of the ragged attention kernels, shared by cpu/ and cuda/ (plain C++,
// no CUDA or thread code) so both backends accept and split exactly the same problems.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "draft_kernels.h"

namespace draft_ragged {

// One work unit: entries [start, end) of KV head `head` (relative to the head's first row).
struct Item {
  int32_t head;
  int32_t start;
  int32_t end;
};

inline int raw_enum(const draft_dtype& e) {
  int v;
  std::memcpy(&v, &e, sizeof v);
  return v;
}

inline draft_status validate(const draft_ragged_attention_args* a) {
  if (!a || !a->queries || !a->out || !a->offsets || !a->lengths) return DRAFT_ERR_INVALID_ARGUMENT;
  if (a->num_heads < 1 || a->num_kv_heads < 1 || a->head_dim < 1 || a->query_count < 1) return DRAFT_ERR_INVALID_ARGUMENT;
  if (a->num_heads % a->num_kv_heads != 0 || a->kv_rows < 0) return DRAFT_ERR_INVALID_ARGUMENT;
  const int dtype = raw_enum(a->kv_dtype);
  if (dtype != DRAFT_DTYPE_F32 && dtype != DRAFT_DTYPE_F16) return DRAFT_ERR_INVALID_ARGUMENT;
  if (!std::isfinite(a->scale)) return DRAFT_ERR_INVALID_ARGUMENT;
  bool any = false;
  for (int32_t h = 0; h < a->num_kv_heads; ++h) {
    const int64_t off = a->offsets[h], len = a->lengths[h];
    if (off < 0 || len < 0 || off + len > a->kv_rows) return DRAFT_ERR_INVALID_ARGUMENT;
    any |= len > 0;
  }
  if (any && (!a->keys || !a->values)) return DRAFT_ERR_INVALID_ARGUMENT;
  return DRAFT_OK;
}

inline float resolve_scale(const draft_ragged_attention_args& a) {
  return a.scale != 0.0f ? a.scale : static_cast<float>(1.0 / std::sqrt(static_cast<double>(a.head_dim)));
}

// Entries per work unit: the caller's choice, else ~8 units per thread (heads of very different lengths
// still balance), 128..2048 entries each (a multiple of 64, the CPU block size).
inline int32_t choose_chunk(const draft_ragged_attention_args& a, int threads) {
  if (a.chunk_size > 0) return a.chunk_size;
  int64_t total = 0;
  for (int32_t h = 0; h < a.num_kv_heads; ++h) total += a.lengths[h];
  int64_t c = (total + 8LL * threads - 1) / (8LL * threads);
  c = (c + 63) / 64 * 64;
  if (c < 128) c = 128;
  if (c > 2048) c = 2048;
  return static_cast<int32_t>(c);
}

// Work units head after head; first[h] .. first[h + 1] are head h's units (none for an empty head).
inline void plan(const draft_ragged_attention_args& a, int32_t chunk, std::vector<Item>& items, std::vector<int32_t>& first) {
  items.clear();
  first.assign(static_cast<size_t>(a.num_kv_heads) + 1, 0);
  for (int32_t h = 0; h < a.num_kv_heads; ++h) {
    first[h] = static_cast<int32_t>(items.size());
    for (int32_t s = 0; s < a.lengths[h]; s += chunk) {
      const int32_t e = a.lengths[h] - s > chunk ? s + chunk : a.lengths[h];
      items.push_back({h, s, e});
    }
  }
  first[a.num_kv_heads] = static_cast<int32_t>(items.size());
}

// Entries of a head of length `len` that query i (of query_count) may see.
inline int32_t visible(const draft_ragged_attention_args& a, int32_t len, int32_t i) {
  if (!a.causal) return len;
  const int64_t v = static_cast<int64_t>(len) - a.query_count + i + 1;
  return v <= 0 ? 0 : static_cast<int32_t>(v);
}

}  // namespace draft_ragged
