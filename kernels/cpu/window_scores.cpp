// Fused window scoring on the CPU: windowAttentionScores() of @draft/core (window-scores.ts) without the
// (w, N) probability matrix. ALGORITHMS.md, shared primitives 1 and 2.
//
// Work unit = (KV head, key chunk). All G·w query rows of a KV head (its G query heads are contiguous in Q)
// share each key chunk, so the chunk is loaded (and f16-converted) once per row set. Inside a chunk, keys
// are transposed into a (d × 64) block so the inner loop runs over contiguous keys with 4 query rows held
// in registers (a small GEMM micro-kernel that GCC vectorises; an AVX2/FMA clone is picked at load time).
//   pass 1: per (row, chunk) partial softmax max / denominator (online rescaling inside the chunk);
//           partials are merged per row (log-sum-exp) between passes.
//   pass 2: logits again, p = fp32(exp(l − m) / s) · weight, reduced over rows into the chunk's keys.
// Memory: per thread one (d × 64) key block, one (4 × 64) logit tile and one chunk of accumulators, plus
// (Hkv · chunks · G·w) partials — O(G·w × chunk), never the full matrix.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "internal.hpp"

namespace {

constexpr int KB = 64;  // keys per micro block
constexpr int RB = 4;   // query rows per micro tile
constexpr int CB = 16;  // keys per register block

struct Problem {
  const draft_window_scores_args* a;
  int group;     // G
  int rows;      // G·w
  int chunk;     // keys per work unit
  int chunks;    // per KV head
  float scale;
};

// Loads keys [j0, j0 + nk) of KV head kvh transposed into kt (d × KB), zero-padding missing keys.
inline void load_block(const Problem& P, int kvh, int64_t j0, int nk, float* kt) {
  const auto& a = *P.a;
  const int d = a.head_dim;
  const int64_t base = (static_cast<int64_t>(kvh) * a.key_count + j0) * d;
  if (a.key_dtype == DRAFT_DTYPE_F16) {
    const uint16_t* k = static_cast<const uint16_t*>(a.keys) + base;
    for (int c = 0; c < nk; ++c)
      for (int x = 0; x < d; ++x) kt[x * KB + c] = draft::half_to_float(k[static_cast<int64_t>(c) * d + x]);
  } else {
    const float* k = static_cast<const float*>(a.keys) + base;
    for (int c = 0; c < nk; ++c)
      for (int x = 0; x < d; ++x) kt[x * KB + c] = k[static_cast<int64_t>(c) * d + x];
  }
  for (int c = nk; c < KB; ++c)
    for (int x = 0; x < d; ++x) kt[x * KB + c] = 0.0f;
}

// out[r][c] = scale · dot(q_r, key c) for RB rows × KB keys.
inline void tile_logits(const float* q0, const float* q1, const float* q2, const float* q3, const float* kt, int d,
                        float scale, float* out) {
  for (int cb = 0; cb < KB; cb += CB) {
    float a0[CB] = {}, a1[CB] = {}, a2[CB] = {}, a3[CB] = {};
    for (int x = 0; x < d; ++x) {
      const float* k = kt + x * KB + cb;
      const float v0 = q0[x], v1 = q1[x], v2 = q2[x], v3 = q3[x];
      for (int c = 0; c < CB; ++c) {
        a0[c] += v0 * k[c];
        a1[c] += v1 * k[c];
        a2[c] += v2 * k[c];
        a3[c] += v3 * k[c];
      }
    }
    for (int c = 0; c < CB; ++c) {
      out[0 * KB + cb + c] = a0[c] * scale;
      out[1 * KB + cb + c] = a1[c] * scale;
      out[2 * KB + cb + c] = a2[c] * scale;
      out[3 * KB + cb + c] = a3[c] * scale;
    }
  }
}

// Number of keys of the block [j0, j0 + nk) that query i may see.
inline int visible_in_block(const Problem& P, int i, int64_t j0, int nk) {
  if (!P.a->causal_tail) return nk;
  const int64_t limit = static_cast<int64_t>(P.a->key_count) - P.a->query_count + i + 1;  // exclusive
  const int64_t v = limit - j0;
  return v <= 0 ? 0 : (v >= nk ? nk : static_cast<int>(v));
}

struct Scratch {
  std::vector<float> kt, tile;
  std::vector<double> m, s;   // pass 1: per row running max / denominator for the current chunk
  std::vector<float> accf;    // pass 2, max
  std::vector<double> accd;   // pass 2, mean / sum
};

DRAFT_HOT void pass1(const Problem& P, Scratch& S, int kvh, int c, float* pm, float* ps) {
  const auto& a = *P.a;
  const int d = a.head_dim, w = a.query_count, rows = P.rows;
  const int64_t start = static_cast<int64_t>(c) * P.chunk;
  const int64_t end = std::min<int64_t>(a.key_count, start + P.chunk);
  const float* qbase = a.queries + static_cast<int64_t>(kvh) * rows * d;
  std::fill(S.m.begin(), S.m.end(), -std::numeric_limits<double>::infinity());
  std::fill(S.s.begin(), S.s.end(), 0.0);
  float* kt = S.kt.data();
  float* tile = S.tile.data();
  for (int64_t j0 = start; j0 < end; j0 += KB) {
    const int nk = static_cast<int>(std::min<int64_t>(KB, end - j0));
    load_block(P, kvh, j0, nk, kt);
    for (int r0 = 0; r0 < rows; r0 += RB) {
      const float* q[RB];
      for (int t = 0; t < RB; ++t) q[t] = qbase + static_cast<int64_t>(std::min(r0 + t, rows - 1)) * d;
      tile_logits(q[0], q[1], q[2], q[3], kt, d, P.scale, tile);
      for (int t = 0; t < RB && r0 + t < rows; ++t) {
        const int r = r0 + t;
        const int lim = visible_in_block(P, r % w, j0, nk);
        if (lim == 0) continue;
        const float* l = tile + t * KB;
        float bm = l[0];
        for (int x = 1; x < lim; ++x) bm = l[x] > bm ? l[x] : bm;
        const double m_old = S.m[r];
        const double m_new = bm > m_old ? static_cast<double>(bm) : m_old;
        const float mf = static_cast<float>(m_new);
        float lanes[CB] = {};
        int x = 0;
        for (; x + CB <= lim; x += CB)
          for (int u = 0; u < CB; ++u) lanes[u] += draft::exp_nonpos(l[x + u] - mf);
        for (; x < lim; ++x) lanes[x % CB] += draft::exp_nonpos(l[x] - mf);
        double sum = 0.0;
        for (int u = 0; u < CB; ++u) sum += lanes[u];
        S.s[r] = (m_old == -std::numeric_limits<double>::infinity() ? 0.0 : S.s[r] * std::exp(m_old - m_new)) + sum;
        S.m[r] = m_new;
      }
    }
  }
  for (int r = 0; r < rows; ++r) {
    pm[r] = static_cast<float>(S.m[r]);
    ps[r] = static_cast<float>(S.s[r]);
  }
}

DRAFT_HOT void pass2(const Problem& P, Scratch& S, int kvh, int c, const float* row_m, const float* row_inv) {
  const auto& a = *P.a;
  const int d = a.head_dim, w = a.query_count, rows = P.rows;
  const int64_t start = static_cast<int64_t>(c) * P.chunk;
  const int64_t end = std::min<int64_t>(a.key_count, start + P.chunk);
  const int len = static_cast<int>(end - start);
  const bool is_max = a.op == DRAFT_REDUCE_MAX;
  const float* qbase = a.queries + static_cast<int64_t>(kvh) * rows * d;
  float* accf = S.accf.data();
  double* accd = S.accd.data();
  if (is_max)
    std::fill(accf, accf + len, -std::numeric_limits<float>::infinity());
  else
    std::fill(accd, accd + len, 0.0);
  float* kt = S.kt.data();
  float* tile = S.tile.data();
  for (int64_t j0 = start; j0 < end; j0 += KB) {
    const int nk = static_cast<int>(std::min<int64_t>(KB, end - j0));
    const int off = static_cast<int>(j0 - start);
    load_block(P, kvh, j0, nk, kt);
    for (int r0 = 0; r0 < rows; r0 += RB) {
      const float* q[RB];
      for (int t = 0; t < RB; ++t) q[t] = qbase + static_cast<int64_t>(std::min(r0 + t, rows - 1)) * d;
      tile_logits(q[0], q[1], q[2], q[3], kt, d, P.scale, tile);
      for (int t = 0; t < RB && r0 + t < rows; ++t) {
        const int r = r0 + t;
        const int i = r % w;
        const int lim = visible_in_block(P, i, j0, nk);
        const float weight = a.query_weights ? a.query_weights[i] : 1.0f;
        const float m = row_m[r], inv = row_inv[r];
        const float* l = tile + t * KB;
        if (is_max) {
          float* acc = accf + off;
          for (int x = 0; x < lim; ++x) {
            const float p = draft::exp_nonpos(l[x] - m) * inv * weight;
            acc[x] = p > acc[x] ? p : acc[x];
          }
          const float masked = 0.0f * weight;  // masked keys have probability 0, as in the reference
          for (int x = lim; x < nk; ++x) acc[x] = masked > acc[x] ? masked : acc[x];
        } else {
          double* acc = accd + off;
          for (int x = 0; x < lim; ++x) acc[x] += static_cast<double>(draft::exp_nonpos(l[x] - m) * inv * weight);
        }
      }
    }
  }
  float* out = a.out + static_cast<int64_t>(kvh) * a.key_count + start;
  if (is_max) {
    std::copy(accf, accf + len, out);
  } else {
    const double div = a.op == DRAFT_REDUCE_MEAN ? static_cast<double>(P.rows) : 1.0;
    for (int x = 0; x < len; ++x) out[x] = static_cast<float>(accd[x] / div);
  }
}

draft_status validate(const draft_window_scores_args* a) {
  if (!a || !a->queries || !a->keys || !a->out) return DRAFT_ERR_INVALID_ARGUMENT;
  if (a->num_heads < 1 || a->num_kv_heads < 1 || a->head_dim < 1 || a->query_count < 1 || a->key_count < 1)
    return DRAFT_ERR_INVALID_ARGUMENT;
  if (a->num_heads % a->num_kv_heads != 0 || a->query_count > a->key_count) return DRAFT_ERR_INVALID_ARGUMENT;
  const int dtype = draft::raw_enum(a->key_dtype), op = draft::raw_enum(a->op);
  if (dtype != DRAFT_DTYPE_F32 && dtype != DRAFT_DTYPE_F16) return DRAFT_ERR_INVALID_ARGUMENT;
  if (op != DRAFT_REDUCE_MAX && op != DRAFT_REDUCE_MEAN && op != DRAFT_REDUCE_SUM) return DRAFT_ERR_INVALID_ARGUMENT;
  if (!std::isfinite(a->scale)) return DRAFT_ERR_INVALID_ARGUMENT;
  return DRAFT_OK;
}

}  // namespace

extern "C" draft_status draft_cpu_window_scores(const draft_window_scores_args* args) {
  draft_status st = validate(args);
  if (st != DRAFT_OK) return st;
  return draft::guarded([&]() -> draft_status {
    const auto& a = *args;
    Problem P;
    P.a = args;
    P.group = a.num_heads / a.num_kv_heads;
    P.rows = P.group * a.query_count;
    P.chunk = a.chunk_size > 0 ? std::min(a.chunk_size, a.key_count) : std::min(1024, a.key_count);
    P.chunks = static_cast<int>((static_cast<int64_t>(a.key_count) + P.chunk - 1) / P.chunk);
    P.scale = a.scale != 0.0f ? a.scale : static_cast<float>(1.0 / std::sqrt(static_cast<double>(a.head_dim)));
    const int64_t items = static_cast<int64_t>(a.num_kv_heads) * P.chunks;
    const int threads = draft::resolve_threads(a.num_threads, items);
    const int64_t prow = static_cast<int64_t>(P.rows);
    std::vector<float> pm(items * prow), ps(items * prow);
    std::vector<float> row_m(static_cast<int64_t>(a.num_kv_heads) * prow), row_inv(row_m.size());
    std::vector<Scratch> scratch(threads);
    for (auto& s : scratch) {
      s.kt.resize(static_cast<size_t>(a.head_dim) * KB);
      s.tile.resize(RB * KB);
      s.m.resize(P.rows);
      s.s.resize(P.rows);
      if (a.op == DRAFT_REDUCE_MAX)
        s.accf.resize(P.chunk);
      else
        s.accd.resize(P.chunk);
    }
    draft::parallel_for(threads, items, [&](int t, int64_t item) {
      pass1(P, scratch[t], static_cast<int>(item / P.chunks), static_cast<int>(item % P.chunks), &pm[item * prow],
            &ps[item * prow]);
    });
    // Merge the per-chunk partials of each row: M = max m_c, S = Σ s_c · exp(m_c − M).
    for (int kvh = 0; kvh < a.num_kv_heads; ++kvh) {
      for (int r = 0; r < P.rows; ++r) {
        double M = -std::numeric_limits<double>::infinity();
        for (int c = 0; c < P.chunks; ++c) M = std::max<double>(M, pm[(static_cast<int64_t>(kvh) * P.chunks + c) * prow + r]);
        double S = 0.0;
        for (int c = 0; c < P.chunks; ++c) {
          const int64_t at = (static_cast<int64_t>(kvh) * P.chunks + c) * prow + r;
          if (pm[at] != -std::numeric_limits<float>::infinity()) S += static_cast<double>(ps[at]) * std::exp(pm[at] - M);
        }
        row_m[static_cast<int64_t>(kvh) * prow + r] = static_cast<float>(M);
        row_inv[static_cast<int64_t>(kvh) * prow + r] = static_cast<float>(1.0 / S);
      }
    }
    draft::parallel_for(threads, items, [&](int t, int64_t item) {
      const int kvh = static_cast<int>(item / P.chunks);
      pass2(P, scratch[t], kvh, static_cast<int>(item % P.chunks), &row_m[kvh * prow], &row_inv[kvh * prow]);
    });
    return DRAFT_OK;
  });
}
