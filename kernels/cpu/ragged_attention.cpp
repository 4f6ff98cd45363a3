// Decode / chunk attention over ragged per-KV-head caches on the CPU (raggedAttention() of @draft/core,
// primitives/ragged-attention.ts). Issue 14: caches that hold only what they keep.
//
// Work unit = (KV head, entry chunk). The G·q query rows of a KV head (its G query heads are contiguous in Q
// and in the output) share each chunk, so K and V are read (and f16-converted) once per unit. Per block of
// 64 entries: keys transposed into (d × 64) so the logit loop runs over contiguous entries (vectorises without
// reassociation), values kept row-major so P·V is an axpy over d. Online softmax per row: running max m,
// denominator s, accumulator acc rescaled by exp(m_old − m_new) when the max grows. Units of one head are
// merged with log-sum-exp. Memory: per thread one K block, one V block, one (rows × 64) logit tile; plus
// (units × rows × (d + 2)) partials. Never the score matrix.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../common/ragged_plan.hpp"
#include "internal.hpp"

namespace {

using draft::half_to_float_vec;

constexpr int KB = 64;  // entries per block

struct Problem {
  const draft_ragged_attention_args* a;
  int group;  // G
  int rows;   // G·q
  float scale;
  size_t elem;
};

struct Scratch {
  std::vector<float> kt, kb, vb, tile;
};

// Rows [row0, row0 + nk) of the packed buffer as f32: keys transposed into kt (d × KB); returns the values
// row-major (the source itself for f32, else converted into vb). f16 rows are converted contiguously first
// (a loop that vectorises), then transposed.
DRAFT_HOT const float* load_block(const Problem& P, int64_t row0, int nk, float* kt, float* kb, float* vb) {
  const auto& a = *P.a;
  const int d = a.head_dim;
  const int64_t base = row0 * d;
  const int64_t n = static_cast<int64_t>(nk) * d;
  const float* k;
  const float* v;
  if (a.kv_dtype == DRAFT_DTYPE_F16) {
    const uint16_t* kh = static_cast<const uint16_t*>(a.keys) + base;
    const uint16_t* vh = static_cast<const uint16_t*>(a.values) + base;
    for (int64_t e = 0; e < n; ++e) kb[e] = half_to_float_vec(kh[e]);
    for (int64_t e = 0; e < n; ++e) vb[e] = half_to_float_vec(vh[e]);
    k = kb;
    v = vb;
  } else {
    k = static_cast<const float*>(a.keys) + base;
    v = static_cast<const float*>(a.values) + base;
  }
  for (int c = 0; c < nk; ++c)
    for (int x = 0; x < d; ++x) kt[x * KB + c] = k[static_cast<int64_t>(c) * d + x];
  return v;
}

// Partials of one unit: m[rows], s[rows], acc[rows × d].
DRAFT_HOT void unit(const Problem& P, Scratch& S, const draft_ragged::Item& it, float* pm, float* ps, float* pacc) {
  const auto& a = *P.a;
  const int d = a.head_dim, q = a.query_count, rows = P.rows;
  const int32_t len = a.lengths[it.head];
  const int64_t head_row0 = a.offsets[it.head];
  const float* qbase = a.queries + static_cast<int64_t>(it.head) * rows * d;
  for (int r = 0; r < rows; ++r) {
    pm[r] = -std::numeric_limits<float>::infinity();
    ps[r] = 0.0f;
  }
  std::fill(pacc, pacc + static_cast<size_t>(rows) * d, 0.0f);
  float* kt = S.kt.data();
  float* kb = S.kb.data();
  float* vb = S.vb.data();
  float* tile = S.tile.data();
  for (int32_t j0 = it.start; j0 < it.end; j0 += KB) {
    const int nk = std::min<int32_t>(KB, it.end - j0);
    const float* vblock = load_block(P, head_row0 + j0, nk, kt, kb, vb);
    for (int r = 0; r < rows; ++r) {
      const int lim = std::min<int32_t>(nk, std::max<int32_t>(0, draft_ragged::visible(a, len, r % q) - j0));
      if (lim == 0) continue;
      const float* qr = qbase + static_cast<int64_t>(r) * d;
      float* l = tile + static_cast<size_t>(r) * KB;
      float lanes[KB] = {};
      for (int x = 0; x < d; ++x) {
        const float qv = qr[x];
        const float* k = kt + x * KB;
        for (int c = 0; c < KB; ++c) lanes[c] += qv * k[c];
      }
      float bm = -std::numeric_limits<float>::infinity();
      for (int c = 0; c < lim; ++c) {
        l[c] = lanes[c] * P.scale;
        bm = l[c] > bm ? l[c] : bm;
      }
      const float m_old = pm[r];
      const float m_new = bm > m_old ? bm : m_old;
      float* acc = pacc + static_cast<size_t>(r) * d;
      if (m_new > m_old && m_old != -std::numeric_limits<float>::infinity()) {
        const float f = draft::exp_nonpos(m_old - m_new);
        ps[r] *= f;
        for (int x = 0; x < d; ++x) acc[x] *= f;
      }
      pm[r] = m_new;
      float sum = 0.0f;
      for (int c = 0; c < lim; ++c) {
        const float p = draft::exp_nonpos(l[c] - m_new);
        sum += p;
        const float* v = vblock + static_cast<size_t>(c) * d;
        for (int x = 0; x < d; ++x) acc[x] += p * v[x];
      }
      ps[r] += sum;
    }
  }
}

}  // namespace

extern "C" draft_status draft_cpu_ragged_attention(const draft_ragged_attention_args* args) {
  draft_status st = draft_ragged::validate(args);
  if (st != DRAFT_OK) return st;
  return draft::guarded([&]() -> draft_status {
    const auto& a = *args;
    Problem P;
    P.a = args;
    P.group = a.num_heads / a.num_kv_heads;
    P.rows = P.group * a.query_count;
    P.scale = draft_ragged::resolve_scale(a);
    P.elem = a.kv_dtype == DRAFT_DTYPE_F16 ? 2 : 4;
    const int d = a.head_dim;
    const int64_t out_n = static_cast<int64_t>(a.num_heads) * a.query_count * d;
    std::vector<draft_ragged::Item> items;
    std::vector<int32_t> first;
    const int max_threads = draft::resolve_threads(a.num_threads, 1 << 20);
    draft_ragged::plan(a, draft_ragged::choose_chunk(a, max_threads), items, first);
    const int64_t n_items = static_cast<int64_t>(items.size());
    const int64_t prow = P.rows;
    std::vector<float> pm(static_cast<size_t>(n_items * prow)), ps(pm.size()), pacc(pm.size() * d);
    if (n_items > 0) {
      // A decode step over a short cache is tens of microseconds of work: starting threads would cost more.
      // Each thread gets at least ~2^22 multiply-adds (QKᵀ and PV), about a millisecond.
      int64_t work = 0;
      for (int32_t h = 0; h < a.num_kv_heads; ++h) work += static_cast<int64_t>(a.lengths[h]) * P.rows * d * 2;
      const int threads = draft::resolve_threads(a.num_threads, std::min<int64_t>(n_items, std::max<int64_t>(1, work >> 22)));
      std::vector<Scratch> scratch(threads);
      for (auto& s : scratch) {
        s.kt.resize(static_cast<size_t>(d) * KB);
        s.vb.resize(static_cast<size_t>(d) * KB);
        if (a.kv_dtype == DRAFT_DTYPE_F16) s.kb.resize(static_cast<size_t>(d) * KB);
        s.tile.resize(static_cast<size_t>(P.rows) * KB);
      }
      draft::parallel_for(threads, n_items, [&](int t, int64_t i) {
        unit(P, scratch[t], items[i], &pm[i * prow], &ps[i * prow], &pacc[i * prow * d]);
      });
    }
    // Merge the units of each KV head per row: M = max m_u, S = Σ s_u·e^(m_u − M), out = Σ acc_u·e^(m_u − M) / S.
    // A row that saw nothing (empty head, short causal tail) stays 0.
    std::fill(a.out, a.out + out_n, 0.0f);
    for (int32_t h = 0; h < a.num_kv_heads; ++h) {
      for (int r = 0; r < P.rows; ++r) {
        float M = -std::numeric_limits<float>::infinity();
        for (int32_t u = first[h]; u < first[h + 1]; ++u) M = std::max(M, pm[u * prow + r]);
        if (M == -std::numeric_limits<float>::infinity()) continue;
        double S = 0.0;
        for (int32_t u = first[h]; u < first[h + 1]; ++u) {
          const float mu = pm[u * prow + r];
          if (mu != -std::numeric_limits<float>::infinity()) S += static_cast<double>(ps[u * prow + r]) * std::exp(static_cast<double>(mu) - M);
        }
        float* o = a.out + (static_cast<int64_t>(h) * P.rows + r) * d;
        for (int32_t u = first[h]; u < first[h + 1]; ++u) {
          const float mu = pm[u * prow + r];
          if (mu == -std::numeric_limits<float>::infinity()) continue;
          const float f = static_cast<float>(std::exp(static_cast<double>(mu) - M) / S);
          const float* acc = &pacc[(u * prow + r) * d];
          for (int x = 0; x < d; ++x) o[x] += acc[x] * f;
        }
      }
    }
    return DRAFT_OK;
  });
}
