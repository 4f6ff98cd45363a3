// Native decode step for Llama-family decoders (see draft_kernels.h). A decode step is memory-bound: every
// weight is read once per step, so the work is split by output rows across a persistent thread pool (threads
// spawned per call cost more than a whole step on small models) and every sequence of a batch is served from
// the same weight rows while they sit in L1. Attention is split into blocks of columns that free threads take
// in turn: with a fixed split per thread, a thread that ran slower (on a shared VM, either one, for a while) left
// the other spinning at the barrier (barrier spin was 18% of an 8K step in one profile).
#include <algorithm>
#include <atomic>
#include <memory>

#include "decoder_internal.hpp"


namespace draft {
namespace dec {

constexpr int kChunk = 256;  // attention columns scored at a time
constexpr int kBlock = 512;  // attention columns of one work item (whole chunks)

// p[j] = exp(s[j] − m) for s[j] ≤ m (−inf → 0), vectorised.
DRAFT_HOT void exp_shifted(const float* s, float m, float* p, int n) {
  for (int j = 0; j < n; ++j) p[j] = exp_nonpos(s[j] - m);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define DRAFT_AVX2 __attribute__((target("avx2,fma")))

DRAFT_AVX2 inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// 8 weights as floats: f32 as they are, f16 bits widened (F16C).
DRAFT_AVX2 inline __m256 load8w(const float* p) { return _mm256_loadu_ps(p); }
__attribute__((target("avx2,fma,f16c"))) inline __m256 load8w(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// gemv_rows for cols % 8 == 0 with AVX2/FMA: 4 rows share each load of x. WT as for gemm_tile.
template <class WT>
__attribute__((target("avx2,fma,f16c"))) void gemv_rows_avx2(const WT* W, int cols, int r0, int r1, const float* X, int B, int x_stride, float* Y, int y_stride,
                               bool accumulate) {
  int r = r0;
  for (; r + 4 <= r1; r += 4) {
    const WT* w0 = W + static_cast<size_t>(r) * cols;
    const WT* w1 = w0 + cols;
    const WT* w2 = w1 + cols;
    const WT* w3 = w2 + cols;
    for (int b = 0; b < B; ++b) {
      const float* x = X + static_cast<size_t>(b) * x_stride;
      __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      for (int c = 0; c < cols; c += 8) {
        const __m256 xv = _mm256_loadu_ps(x + c);
        a0 = _mm256_fmadd_ps(load8w(w0 + c), xv, a0);
        a1 = _mm256_fmadd_ps(load8w(w1 + c), xv, a1);
        a2 = _mm256_fmadd_ps(load8w(w2 + c), xv, a2);
        a3 = _mm256_fmadd_ps(load8w(w3 + c), xv, a3);
      }
      float* y = Y + static_cast<size_t>(b) * y_stride + r;
      const float s[4] = {hsum8(a0), hsum8(a1), hsum8(a2), hsum8(a3)};
      for (int i = 0; i < 4; ++i) y[i] = accumulate ? y[i] + s[i] : s[i];
    }
  }
  for (; r < r1; ++r) {
    const WT* w = W + static_cast<size_t>(r) * cols;
    for (int b = 0; b < B; ++b) {
      const float* x = X + static_cast<size_t>(b) * x_stride;
      __m256 a = _mm256_setzero_ps();
      for (int c = 0; c < cols; c += 8) a = _mm256_fmadd_ps(load8w(w + c), _mm256_loadu_ps(x + c), a);
      float* y = Y + static_cast<size_t>(b) * y_stride + r;
      *y = accumulate ? *y + hsum8(a) : hsum8(a);
    }
  }
}

// Scores of `heads` query heads (d = 8·V, V ≤ 16) against keys [c0, c1): q in registers, one key row per column.
template <int V>
DRAFT_AVX2 void scores_avx2(const float* const* qs, int heads, const float* K, int c0, int c1, float scale, float* out, int stride) {
  for (int e = 0; e < heads; ++e) {
    __m256 q[V];
    for (int i = 0; i < V; ++i) q[i] = _mm256_loadu_ps(qs[e] + 8 * i);
    for (int j = c0; j < c1; ++j) {
      const float* k = K + static_cast<size_t>(j) * 8 * V;
      __m256 a = _mm256_mul_ps(q[0], _mm256_loadu_ps(k));
      for (int i = 1; i < V; ++i) a = _mm256_fmadd_ps(q[i], _mm256_loadu_ps(k + 8 * i), a);
      out[static_cast<size_t>(e) * stride + (j - c0)] = hsum8(a) * scale;
    }
  }
}

// acc_e += Σ_j p_e[j] V[j] for the same heads: the accumulator stays in registers across the chunk.
template <int V>
DRAFT_AVX2 void weighted_values_avx2(float* const* accs, int heads, const float* Vals, int c0, int c1, const float* p, int stride) {
  for (int e = 0; e < heads; ++e) {
    __m256 a[V];
    for (int i = 0; i < V; ++i) a[i] = _mm256_loadu_ps(accs[e] + 8 * i);
    const float* pe = p + static_cast<size_t>(e) * stride;
    for (int j = c0; j < c1; ++j) {
      const float w = pe[j - c0];
      if (w == 0.0f) continue;
      const __m256 wv = _mm256_set1_ps(w);
      const float* v = Vals + static_cast<size_t>(j) * 8 * V;
      for (int i = 0; i < V; ++i) a[i] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(v + 8 * i), a[i]);
    }
    for (int i = 0; i < V; ++i) _mm256_storeu_ps(accs[e] + 8 * i, a[i]);
  }
}

// Decode reads each row's cache in short runs (a thread's share of one KV head) that the hardware prefetcher barely
// ramps up on: the score and value loops ask for the row kAheadRows ahead themselves.
constexpr int kAheadRows = 12;
template <class E>
inline void prefetch_row(const E* p, int n) {
  for (size_t b = 0; b < n * sizeof(E); b += 64) _mm_prefetch(reinterpret_cast<const char*>(p) + b, _MM_HINT_T0);
}

// Scores of the heads sharing one KV head against keys [c0, c1), d = 16·V: each key row is loaded once for
// four heads (their queries stay in registers) and their four dot products are reduced together. Keys of
// element type E (float, or uint16_t f16 bits widened on load: half the bytes from memory).
template <int V, class E>
DRAFT_AVX512 void scores_avx512(const float* const* qs, int heads, const E* K, int c0, int c1, float scale, float* out,
                                                          int stride) {
  int e0 = 0;
  for (; e0 + 4 <= heads; e0 += 4) {
    __m512 q[4][V];
    for (int e = 0; e < 4; ++e)
      for (int i = 0; i < V; ++i) q[e][i] = _mm512_loadu_ps(qs[e0 + e] + 16 * i);
    for (int j = c0; j < c1; ++j) {
      const E* k = K + static_cast<size_t>(j) * 16 * V;
      prefetch_row(k + static_cast<size_t>(kAheadRows) * 16 * V, 16 * V);
      __m512 a[4];
      const __m512 k0 = load16(k);
      for (int e = 0; e < 4; ++e) a[e] = _mm512_mul_ps(q[e][0], k0);
      for (int i = 1; i < V; ++i) {
        const __m512 ki = load16(k + 16 * i);
        for (int e = 0; e < 4; ++e) a[e] = _mm512_fmadd_ps(q[e][i], ki, a[e]);
      }
      float sums[4];
      _mm_storeu_ps(sums, _mm_mul_ps(sum4_avx512(a[0], a[1], a[2], a[3]), _mm_set1_ps(scale)));
      for (int e = 0; e < 4; ++e) out[static_cast<size_t>(e0 + e) * stride + (j - c0)] = sums[e];
    }
  }
  for (; e0 < heads; ++e0) {
    for (int j = c0; j < c1; ++j) {
      const E* k = K + static_cast<size_t>(j) * 16 * V;
      __m512 a = _mm512_mul_ps(_mm512_loadu_ps(qs[e0]), load16(k));
      for (int i = 1; i < V; ++i) a = _mm512_fmadd_ps(_mm512_loadu_ps(qs[e0] + 16 * i), load16(k + 16 * i), a);
      out[static_cast<size_t>(e0) * stride + (j - c0)] = _mm512_reduce_add_ps(a) * scale;
    }
  }
}

// Online-softmax block update for one head: m = max(m_prev, s), p = exp(s − m), returns Σ p.
DRAFT_AVX512 float softmax_block_avx512(const float* s, int n, float* m_io, float* p) {
  __m512 mv = _mm512_set1_ps(*m_io);
  int j = 0;
  for (; j + 16 <= n; j += 16) mv = _mm512_max_ps(mv, _mm512_loadu_ps(s + j));
  float m = _mm512_reduce_max_ps(mv);
  for (; j < n; ++j) m = std::max(m, s[j]);
  *m_io = m;
  if (m == -INFINITY) {
    std::fill(p, p + n, 0.0f);
    return 0.0f;
  }
  // 16 lanes of exp with the sum alongside (the tail of the scalar exp_nonpos, same polynomial).
  const __m512 mb = _mm512_set1_ps(m);
  __m512 sv = _mm512_setzero_ps();
  j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(s + j), mb));
    _mm512_storeu_ps(p + j, e);
    sv = _mm512_add_ps(sv, e);
  }
  float sum = _mm512_reduce_add_ps(sv);
  for (; j < n; ++j) sum += p[j] = exp_nonpos(s[j] - m);
  return sum;
}

// acc_e += Σ_j p_e[j] V[j] for up to 4 heads with d = 16·V (V ≤ 4): all accumulators in registers, so each
// value row is loaded once for every head (AVX-512's 32 registers hold 4 heads × 64 floats).
template <int V, class E>
DRAFT_AVX512 void weighted_values_avx512(float* const* accs, int heads, const E* Vals, int c0, int c1, const float* p,
                                                                    int stride) {
  for (int e0 = 0; e0 < heads; e0 += 4) {
    const int n = std::min(4, heads - e0);
    __m512 a[4][V];
    for (int e = 0; e < 4; ++e)
      for (int i = 0; i < V; ++i) a[e][i] = e < n ? _mm512_loadu_ps(accs[e0 + e] + 16 * i) : _mm512_setzero_ps();
    for (int j = c0; j < c1; ++j) {
      const E* v = Vals + static_cast<size_t>(j) * 16 * V;
      prefetch_row(v + static_cast<size_t>(kAheadRows) * 16 * V, 16 * V);
      __m512 row[V];
      for (int i = 0; i < V; ++i) row[i] = load16(v + 16 * i);
      for (int e = 0; e < n; ++e) {
        const __m512 w = _mm512_set1_ps(p[static_cast<size_t>(e0 + e) * stride + (j - c0)]);
        for (int i = 0; i < V; ++i) a[e][i] = _mm512_fmadd_ps(w, row[i], a[e][i]);
      }
    }
    for (int e = 0; e < n; ++e)
      for (int i = 0; i < V; ++i) _mm512_storeu_ps(accs[e0 + e] + 16 * i, a[e][i]);
  }
}

const bool kHasAvx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
const bool kHasAvx512 = __builtin_cpu_supports("avx512f");
#else
const bool kHasAvx2 = false;
const bool kHasAvx512 = false;
#endif

// y[b] (+)= W x[b] for rows [r0, r1) of W (rows × cols): 4 rows at a time, 8 independent lanes per row so the
// loop vectorises without reassociation flags.
// WT as for gemm_tile (wf widens an f16 weight).
inline float wf(float w) { return w; }
inline float wf(uint16_t w) { return half_to_float_vec(w); }

template <class WT>
DRAFT_HOT void gemv_rows_generic(const WT* W, int cols, int r0, int r1, const float* X, int B, int x_stride, float* Y, int y_stride,
                                 bool accumulate) {
  const int c8 = cols & ~7;
  int r = r0;
  for (; r + 4 <= r1; r += 4) {
    const WT* w0 = W + static_cast<size_t>(r) * cols;
    const WT* w1 = w0 + cols;
    const WT* w2 = w1 + cols;
    const WT* w3 = w2 + cols;
    for (int b = 0; b < B; ++b) {
      const float* x = X + static_cast<size_t>(b) * x_stride;
      float a0[8] = {0}, a1[8] = {0}, a2[8] = {0}, a3[8] = {0};
      for (int c = 0; c < c8; c += 8) {
        for (int j = 0; j < 8; ++j) {
          const float xv = x[c + j];
          a0[j] += wf(w0[c + j]) * xv;
          a1[j] += wf(w1[c + j]) * xv;
          a2[j] += wf(w2[c + j]) * xv;
          a3[j] += wf(w3[c + j]) * xv;
        }
      }
      float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (int j = 0; j < 8; ++j) {
        s0 += a0[j];
        s1 += a1[j];
        s2 += a2[j];
        s3 += a3[j];
      }
      for (int c = c8; c < cols; ++c) {
        s0 += wf(w0[c]) * x[c];
        s1 += wf(w1[c]) * x[c];
        s2 += wf(w2[c]) * x[c];
        s3 += wf(w3[c]) * x[c];
      }
      float* y = Y + static_cast<size_t>(b) * y_stride + r;
      if (accumulate) {
        y[0] += s0;
        y[1] += s1;
        y[2] += s2;
        y[3] += s3;
      } else {
        y[0] = s0;
        y[1] = s1;
        y[2] = s2;
        y[3] = s3;
      }
    }
  }
  for (; r < r1; ++r) {
    const WT* w = W + static_cast<size_t>(r) * cols;
    for (int b = 0; b < B; ++b) {
      const float* x = X + static_cast<size_t>(b) * x_stride;
      float a[8] = {0};
      for (int c = 0; c < c8; c += 8)
        for (int j = 0; j < 8; ++j) a[j] += wf(w[c + j]) * x[c + j];
      float s = 0;
      for (int j = 0; j < 8; ++j) s += a[j];
      for (int c = c8; c < cols; ++c) s += wf(w[c]) * x[c];
      float* y = Y + static_cast<size_t>(b) * y_stride + r;
      *y = accumulate ? *y + s : s;
    }
  }
}

template <class WT>
void gemv_rows_of(const WT* W, int cols, int r0, int r1, const float* X, int B, int x_stride, float* Y, int y_stride, bool accumulate) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (kHasAvx512 && cols % 16 == 0) return gemm_rows_avx512(W, cols, r0, r1, X, B, x_stride, Y, y_stride, accumulate);
  if (kHasAvx2 && cols % 8 == 0) return gemv_rows_avx2(W, cols, r0, r1, X, B, x_stride, Y, y_stride, accumulate);
#endif
  gemv_rows_generic(W, cols, r0, r1, X, B, x_stride, Y, y_stride, accumulate);
}

void gemv_rows(const void* W, bool f16, int cols, int r0, int r1, const float* X, int B, int x_stride, float* Y, int y_stride, bool accumulate) {
  if (f16) return gemv_rows_of(static_cast<const uint16_t*>(W), cols, r0, r1, X, B, x_stride, Y, y_stride, accumulate);
  gemv_rows_of(static_cast<const float*>(W), cols, r0, r1, X, B, x_stride, Y, y_stride, accumulate);
}

DRAFT_HOT float dot(const float* a, const float* b, int n) {
  float acc[8] = {0};
  const int n8 = n & ~7;
  for (int i = 0; i < n8; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  float s = 0;
  for (int j = 0; j < 8; ++j) s += acc[j];
  for (int i = n8; i < n; ++i) s += a[i] * b[i];
  return s;
}

DRAFT_HOT void axpy(float* y, const float* x, float a, int n) {
  for (int i = 0; i < n; ++i) y[i] += a * x[i];
}

float softmax_block(const float* s, int n, float* m_io, float* p) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (kHasAvx512) return softmax_block_avx512(s, n, m_io, p);
#endif
  float m = *m_io;
  for (int j = 0; j < n; ++j) m = std::max(m, s[j]);
  *m_io = m;
  if (m == -INFINITY) {
    std::fill(p, p + n, 0.0f);
    return 0.0f;
  }
  exp_shifted(s, m, p, n);
  float sum = 0;
  for (int j = 0; j < n; ++j) sum += p[j];
  return sum;
}

// Rows [c0, c1) of an f16 cache widened into `conv` (rows from 0), for the kernels that read f32 only.
const float* widen_rows(const void* rows, int c0, int c1, int d, float* conv) {
  load_kv(rows, static_cast<size_t>(c0) * d, conv, static_cast<size_t>(c1 - c0) * d, true);
  return conv;
}

// Scores of `heads` query heads against cache rows [c0, c1) (f32, or f16 bits); `conv` holds kChunk rows of f32.
void chunk_scores(const float* const* qs, int heads, const void* K, bool f16, int c0, int c1, int d, float scale, float* out, int stride, float* conv) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (kHasAvx512 && (d == 64 || d == 128)) {
    const auto* K16 = static_cast<const uint16_t*>(K);
    const auto* K32 = static_cast<const float*>(K);
    if (d == 64) return f16 ? scores_avx512<4>(qs, heads, K16, c0, c1, scale, out, stride) : scores_avx512<4>(qs, heads, K32, c0, c1, scale, out, stride);
    return f16 ? scores_avx512<8>(qs, heads, K16, c0, c1, scale, out, stride) : scores_avx512<8>(qs, heads, K32, c0, c1, scale, out, stride);
  }
#endif
  // The f32 kernels below over rows renumbered from 0 (out is indexed j − c0 either way).
  const float* Kf = f16 ? widen_rows(K, c0, c1, d, conv) : static_cast<const float*>(K) + static_cast<size_t>(c0) * d;
  const int n = c1 - c0;
#if defined(__x86_64__) && defined(__GNUC__)
  if (kHasAvx2 && d == 64) return scores_avx2<8>(qs, heads, Kf, 0, n, scale, out, stride);
  if (kHasAvx2 && d == 128) return scores_avx2<16>(qs, heads, Kf, 0, n, scale, out, stride);
#endif
  for (int e = 0; e < heads; ++e)
    for (int j = 0; j < n; ++j) out[static_cast<size_t>(e) * stride + j] = dot(qs[e], Kf + static_cast<size_t>(j) * d, d) * scale;
}

// acc_e += Σ_j p_e[j] V[j] over cache rows [c0, c1) (f32, or f16 bits); `conv` as for chunk_scores.
void chunk_values(float* const* accs, int heads, const void* V, bool f16, int c0, int c1, int d, const float* p, int stride, float* conv) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (kHasAvx512 && d == 64) {
    if (f16) return weighted_values_avx512<4>(accs, heads, static_cast<const uint16_t*>(V), c0, c1, p, stride);
    return weighted_values_avx512<4>(accs, heads, static_cast<const float*>(V), c0, c1, p, stride);
  }
#endif
  const float* Vf = f16 ? widen_rows(V, c0, c1, d, conv) : static_cast<const float*>(V) + static_cast<size_t>(c0) * d;
  const int n = c1 - c0;
#if defined(__x86_64__) && defined(__GNUC__)
  if (kHasAvx2 && d == 64) return weighted_values_avx2<8>(accs, heads, Vf, 0, n, p, stride);
  if (kHasAvx2 && d == 128) return weighted_values_avx2<16>(accs, heads, Vf, 0, n, p, stride);
#endif
  for (int e = 0; e < heads; ++e)
    for (int j = 0; j < n; ++j) {
      const float w = p[static_cast<size_t>(e) * stride + j];
      if (w != 0.0f) axpy(accs[e], Vf + static_cast<size_t>(j) * d, w, d);
    }
}

// out = x / sqrt(mean(x²) + eps) * w, as the exported graphs compute it (f32 throughout).
void rms_norm(const float* x, const float* w, float* out, int n, float eps) {
  float ss = 0;
  for (int i = 0; i < n; ++i) ss += x[i] * x[i];
  const float inv = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  for (int i = 0; i < n; ++i) out[i] = w[i] * (x[i] * inv);
}

// Rotate-half RoPE in place: out[i] = x[i]·cos[i] − x[i + d/2]·sin[i], out[i + d/2] = x[i + d/2]·cos + x[i]·sin.
void rope(float* x, const float* cos, const float* sin, int d) {
  const int h = d / 2;
  for (int i = 0; i < h; ++i) {
    const float a = x[i], b = x[i + h];
    x[i] = a * cos[i] - b * sin[i];
    x[i + h] = b * cos[i + h] + a * sin[i + h];
  }
}


}  // namespace dec
}  // namespace draft

namespace draft {
namespace {

using namespace dec;

void step(draft_decoder& dec, const draft_decoder_row* rows, int B) {
  const draft_decoder_config& c = dec.cfg;
  const int D = c.hidden_size, H = c.num_heads, Hkv = c.num_kv_heads, d = c.head_dim, I = c.intermediate_size;
  const int G = H / Hkv, T = dec.pool.threads();
  const int qd = H * d, kd = Hkv * d;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  // Shared activations; per-thread normed copies need no barrier.
  std::vector<float> x(static_cast<size_t>(B) * D), q(static_cast<size_t>(B) * qd), k(static_cast<size_t>(B) * kd),
      v(static_cast<size_t>(B) * kd), att(static_cast<size_t>(B) * qd), mlp(static_cast<size_t>(B) * I), up(static_cast<size_t>(B) * I),
      logits(static_cast<size_t>(B) * c.vocab_size);
  std::vector<float> normed(static_cast<size_t>(T) * B * D);
  // Attention work: blocks of kBlock columns of one (row, KV head), taken by whichever thread is free (one counter per
  // layer), each leaving a partial per query head: running max, denominator, and d accumulated values. The merge
  // combines a head's partials in block order, so the result does not depend on which thread ran which block.
  const auto columns = [&](int b, int l, int g) {
    const draft_decoder_row& R = rows[b];
    return (R.head_offsets ? R.head_used[l][g] : R.used) + 1;
  };
  const auto blocks_of = [&](int b, int l, int g) { return (columns(b, l, g) + kBlock - 1) / kBlock; };
  int max_blocks = 1;
  for (int b = 0; b < B; ++b)
    for (int l = 0; l < c.num_layers; ++l)
      for (int g = 0; g < Hkv; ++g) max_blocks = std::max(max_blocks, blocks_of(b, l, g));
  const size_t part = static_cast<size_t>(d) + 2;
  std::vector<float> partial(static_cast<size_t>(B) * H * max_blocks * part);
  std::unique_ptr<std::atomic<int>[]> next_block(new std::atomic<int>[c.num_layers]);
  for (int l = 0; l < c.num_layers; ++l) next_block[l].store(0, std::memory_order_relaxed);
  std::vector<float> scores(static_cast<size_t>(T) * 2 * G * kChunk);
  const bool f16 = c.kv_dtype == DRAFT_DTYPE_F16;
  const size_t es = f16 ? sizeof(uint16_t) : sizeof(float);
  // f16 rows widened for the non-AVX-512 kernels: one chunk per thread.
  std::vector<float> conv(f16 ? static_cast<size_t>(T) * kChunk * d : 0);
  const bool wh = c.weight_dtype == DRAFT_DTYPE_F16;
  for (int b = 0; b < B; ++b) embed_row(dec, rows[b].token, &x[static_cast<size_t>(b) * D]);

  dec.pool.run([&](int t) {
    float* xn = &normed[static_cast<size_t>(t) * B * D];
    float* sc = &scores[static_cast<size_t>(t) * 2 * G * kChunk];
    float* cv = f16 ? &conv[static_cast<size_t>(t) * kChunk * d] : nullptr;
    int r0, r1;
    for (int l = 0; l < c.num_layers; ++l) {
      const draft_decoder_layer& L = dec.layers[l];
      for (int b = 0; b < B; ++b) rms_norm(&x[static_cast<size_t>(b) * D], L.input_norm, xn + static_cast<size_t>(b) * D, D, c.rms_norm_eps);
      share(qd, T, t, &r0, &r1);
      gemv_rows(L.q, wh, D, r0, r1, xn, B, D, q.data(), qd, false);
      share(kd, T, t, &r0, &r1);
      gemv_rows(L.k, wh, D, r0, r1, xn, B, D, k.data(), kd, false);
      gemv_rows(L.v, wh, D, r0, r1, xn, B, D, v.data(), kd, false);
      dec.pool.barrier();
      // Biases, RoPE, and the new K/V into column `used`: one item per (row, head).
      for (int item = t; item < B * (H + Hkv); item += T) {
        const int b = item / (H + Hkv), h = item % (H + Hkv);
        const draft_decoder_row& R = rows[b];
        if (h < H) {
          float* qh = &q[static_cast<size_t>(b) * qd + static_cast<size_t>(h) * d];
          if (L.q_bias) for (int i = 0; i < d; ++i) qh[i] += L.q_bias[h * d + i];
          rope(qh, R.cos, R.sin, d);
        } else {
          const int g = h - H;
          float* kh = &k[static_cast<size_t>(b) * kd + static_cast<size_t>(g) * d];
          float* vh = &v[static_cast<size_t>(b) * kd + static_cast<size_t>(g) * d];
          if (L.k_bias) for (int i = 0; i < d; ++i) kh[i] += L.k_bias[g * d + i];
          if (L.v_bias) for (int i = 0; i < d; ++i) vh[i] += L.v_bias[g * d + i];
          rope(kh, R.cos, R.sin, d);
          const size_t at = R.head_offsets ? static_cast<size_t>(R.head_offsets[l][g] + R.head_used[l][g]) * d
                                           : (static_cast<size_t>(g) * R.capacity + R.used) * d;
          store_kv(R.keys[l], at, kh, d, f16);
          store_kv(R.values[l], at, vh, d, f16);
        }
      }
      dec.pool.barrier();
      // Attention: each block (row b, KV head g, kBlock columns) scores the G query heads sharing the KV head (keys
      // read once per group) with an online softmax, in chunks of kChunk columns.
      for (;;) {
        int item = next_block[l].fetch_add(1, std::memory_order_relaxed);
        int b = 0, g = 0;
        for (; b < B; ++b) {
          for (g = 0; g < Hkv; ++g) {
            const int blocks = blocks_of(b, l, g);
            if (item < blocks) break;
            item -= blocks;
          }
          if (g < Hkv) break;
        }
        if (b == B) break;
        const draft_decoder_row& R = rows[b];
        // Packed heads: this head's own rows and count; otherwise its block of the (Hkv, capacity) layout.
        const bool packed = R.head_offsets != nullptr;
        const int n = columns(b, l, g);
        const int j0 = item * kBlock, j1 = std::min(n, j0 + kBlock);
        const size_t first = packed ? static_cast<size_t>(R.head_offsets[l][g]) : static_cast<size_t>(g) * R.capacity;
        const void* K = static_cast<const char*>(R.keys[l]) + first * d * es;
        const void* V = static_cast<const char*>(R.values[l]) + first * d * es;
        float* P[64];
        for (int e = 0; e < G; ++e) {
          P[e] = &partial[((static_cast<size_t>(b) * H + g * G + e) * max_blocks + item) * part];
          P[e][0] = -INFINITY;
          P[e][1] = 0;
          std::fill(P[e] + 2, P[e] + 2 + d, 0.0f);
        }
        for (int c0 = j0; c0 < j1; c0 += kChunk) {
          const int c1 = std::min(j1, c0 + kChunk), n_c = c1 - c0;
          // Scores of the chunk for the G heads sharing this KV head, masked columns at −inf; then an
          // online-softmax update of each head's partial.
          const float* qs[64];
          for (int e = 0; e < G; ++e) qs[e] = &q[static_cast<size_t>(b) * qd + static_cast<size_t>(g * G + e) * d];
          chunk_scores(qs, G, K, f16, c0, c1, d, scale, sc, kChunk, cv);
          const uint8_t* head_mask = R.head_masks && !packed ? R.head_masks[l] + static_cast<size_t>(g) * R.capacity : nullptr;
          const uint8_t* mask = packed ? nullptr : R.mask;
          if (mask || head_mask)
            for (int j = c0; j < std::min(c1, R.used); ++j)
              if ((mask && !mask[j]) || (head_mask && !head_mask[j]))
                for (int e = 0; e < G; ++e) sc[e * kChunk + (j - c0)] = -INFINITY;
          float* p = sc + static_cast<size_t>(G) * kChunk;
          for (int e = 0; e < G; ++e) {
            const float* s = sc + static_cast<size_t>(e) * kChunk;
            float* pe = p + static_cast<size_t>(e) * kChunk;
            const float m_prev = P[e][0];
            float m = m_prev;
            const float sum = softmax_block(s, n_c, &m, pe);
            if (m == -INFINITY) continue;
            const float rescale = m_prev == -INFINITY ? 0.0f : std::exp(m_prev - m);
            P[e][1] = P[e][1] * rescale + sum;
            P[e][0] = m;
            if (rescale != 1.0f) for (int i = 0; i < d; ++i) P[e][2 + i] *= rescale;
          }
          float* accs[64];
          for (int e = 0; e < G; ++e) accs[e] = P[e] + 2;
          chunk_values(accs, G, V, f16, c0, c1, d, p, kChunk, cv);
        }
      }
      dec.pool.barrier();
      for (int item = t; item < B * H; item += T) {
        const int blocks = blocks_of(item / H, l, (item % H) / G);
        const float* P0 = &partial[static_cast<size_t>(item) * max_blocks * part];
        float m = -INFINITY;
        for (int u = 0; u < blocks; ++u) m = std::max(m, P0[u * part]);
        float sum = 0;
        float* out = &att[static_cast<size_t>(item) * d];
        std::fill(out, out + d, 0.0f);
        for (int u = 0; u < blocks; ++u) {
          const float* Pu = P0 + u * part;
          if (Pu[0] == -INFINITY) continue;
          const float f = std::exp(Pu[0] - m);
          sum += Pu[1] * f;
          axpy(out, Pu + 2, f, d);
        }
        const float inv = 1.0f / sum;
        for (int i = 0; i < d; ++i) out[i] *= inv;
      }
      dec.pool.barrier();
      share(D, T, t, &r0, &r1);
      gemv_rows(L.o, wh, qd, r0, r1, att.data(), B, qd, x.data(), D, true);
      dec.pool.barrier();
      for (int b = 0; b < B; ++b) rms_norm(&x[static_cast<size_t>(b) * D], L.post_norm, xn + static_cast<size_t>(b) * D, D, c.rms_norm_eps);
      share(I, T, t, &r0, &r1);
      gemv_rows(L.gate, wh, D, r0, r1, xn, B, D, mlp.data(), I, false);
      gemv_rows(L.up, wh, D, r0, r1, xn, B, D, up.data(), I, false);
      for (int b = 0; b < B; ++b) silu_mul(&mlp[static_cast<size_t>(b) * I + r0], &up[static_cast<size_t>(b) * I + r0], r1 - r0);
      dec.pool.barrier();
      share(D, T, t, &r0, &r1);
      gemv_rows(L.down, wh, I, r0, r1, mlp.data(), B, I, x.data(), D, true);
      dec.pool.barrier();
    }
    for (int b = 0; b < B; ++b) rms_norm(&x[static_cast<size_t>(b) * D], dec.w.final_norm, xn + static_cast<size_t>(b) * D, D, c.rms_norm_eps);
    share(c.vocab_size, T, t, &r0, &r1);
    // All rows in one pass over the LM head, then each thread copies out the columns it computed.
    gemv_rows(dec.w.lm_head, wh, D, r0, r1, xn, B, D, logits.data(), c.vocab_size, false);
    for (int b = 0; b < B; ++b)
      std::copy(&logits[static_cast<size_t>(b) * c.vocab_size + r0], &logits[static_cast<size_t>(b) * c.vocab_size + r1], rows[b].logits + r0);
  });
}

}  // namespace
}  // namespace draft

extern "C" {

draft_status draft_cpu_decoder_create(const draft_decoder_config* config, const draft_decoder_weights* weights, draft_decoder** out) {
  if (!config || !weights || !out) return DRAFT_ERR_INVALID_ARGUMENT;
  const draft_decoder_config& c = *config;
  if (c.hidden_size <= 0 || c.num_layers <= 0 || c.num_heads <= 0 || c.num_kv_heads <= 0 || c.head_dim <= 0 || c.head_dim % 2 != 0 ||
      c.intermediate_size <= 0 || c.vocab_size <= 0 || c.num_heads % c.num_kv_heads != 0 || c.num_heads / c.num_kv_heads > 64 || !(c.rms_norm_eps >= 0) ||
      (c.kv_dtype != DRAFT_DTYPE_F32 && c.kv_dtype != DRAFT_DTYPE_F16) || (c.weight_dtype != DRAFT_DTYPE_F32 && c.weight_dtype != DRAFT_DTYPE_F16))
    return DRAFT_ERR_INVALID_ARGUMENT;
  if (!weights->embed || !weights->layers || !weights->final_norm || !weights->lm_head) return DRAFT_ERR_INVALID_ARGUMENT;
  for (int l = 0; l < c.num_layers; ++l) {
    const draft_decoder_layer& L = weights->layers[l];
    if (!L.input_norm || !L.post_norm || !L.q || !L.k || !L.v || !L.o || !L.gate || !L.up || !L.down) return DRAFT_ERR_INVALID_ARGUMENT;
  }
  return draft::guarded([&] {
    const int threads = draft::resolve_threads(c.num_threads, 1 << 20);
    auto* dec = new draft_decoder(threads);
    dec->cfg = c;
    dec->layers.assign(weights->layers, weights->layers + c.num_layers);
    dec->w = *weights;
    dec->w.layers = dec->layers.data();
    *out = dec;
    return DRAFT_OK;
  });
}

draft_status draft_cpu_decoder_step(draft_decoder* decoder, const draft_decoder_row* rows, int32_t count) {
  if (!decoder || !rows || count <= 0 || count > 64) return DRAFT_ERR_INVALID_ARGUMENT;
  for (int b = 0; b < count; ++b) {
    const draft_decoder_row& R = rows[b];
    if (R.token < 0 || R.token >= decoder->cfg.vocab_size || !R.cos || !R.sin || !R.keys || !R.values || !R.logits || R.used < 0 ||
        R.used >= R.capacity)
      return DRAFT_ERR_INVALID_ARGUMENT;
    if ((R.head_offsets == nullptr) != (R.head_used == nullptr)) return DRAFT_ERR_INVALID_ARGUMENT;
    for (int l = 0; l < decoder->cfg.num_layers; ++l) {
      if (!R.keys[l] || !R.values[l] || (R.head_masks && !R.head_masks[l])) return DRAFT_ERR_INVALID_ARGUMENT;
      if (R.head_offsets && (!R.head_offsets[l] || !R.head_used[l])) return DRAFT_ERR_INVALID_ARGUMENT;
      if (R.head_offsets)
        for (int g = 0; g < decoder->cfg.num_kv_heads; ++g)
          if (R.head_offsets[l][g] < 0 || R.head_used[l][g] < 0) return DRAFT_ERR_INVALID_ARGUMENT;
    }
  }
  return draft::guarded([&] {
    draft::step(*decoder, rows, count);
    return DRAFT_OK;
  });
}

void draft_cpu_decoder_destroy(draft_decoder* decoder) { delete decoder; }

}  // extern "C"
