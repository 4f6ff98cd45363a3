// Pieces the decode step (decoder.cpp) and the prefill (prefill.cpp) share: the decoder object, its thread pool and
// the row kernels. Not part of the C ABI.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>

#include "internal.hpp"

#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's own AVX-512 helpers (_mm512_reduce_add_ps and others) (avx512fintrin.h) trips this warning.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define DRAFT_X86_SIMD 1
#endif

namespace draft {
namespace dec {

#ifdef DRAFT_X86_SIMD
// Sums of four 16-lane vectors, as one 4-lane vector: halves added, then two rounds of pairwise adds.
__attribute__((target("avx512f,avx2"))) inline __m256 half_sum_avx512(__m512 a) {
  return _mm256_add_ps(_mm512_castps512_ps256(a), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
}

__attribute__((target("avx512f,avx2"))) inline __m128 sum4_avx512(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
  const auto half = half_sum_avx512;
  const __m256 h01 = _mm256_hadd_ps(half(a0), half(a1));  // per 128-bit lane: a0 a0 a1 a1 partial sums
  const __m256 h23 = _mm256_hadd_ps(half(a2), half(a3));
  const __m256 h = _mm256_hadd_ps(h01, h23);  // per lane: a0 a1 a2 a3
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

#define DRAFT_AVX512 __attribute__((target("avx512f,avx2,fma")))

// exp(x) for x ≤ 0, 16 lanes (the Cephes polynomial of exp_nonpos); x < −87.3 and −inf give 0.
DRAFT_AVX512 inline __m512 exp512(__m512 x) {
  const __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.3f), _CMP_GE_OQ);
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_maskz_mov_ps(keep, _mm512_scalef_ps(p, n));
}

// 16 cache elements as floats: f32 as they are, f16 widened (F16C's conversion is exact).
DRAFT_AVX512 inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
DRAFT_AVX512 inline __m512 load16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }

// Y[t][r] (+)= W[r]·X[t] for rows [r0, r1) of W (rows × cols, cols % 16 == 0) and T token rows, in register tiles of
// R weight rows × NT tokens: each weight line is loaded once for all NT tokens and each token line once for all R rows
// (a decode step's sequences, a prefill's tokens). The weights stream from memory, so a tile prefetches the rows of
// the tile `ahead` of it while it computes; without that the core waits on each line and memory and FMAs take turns
// (8 tokens: half the GEMM's speed). The asm barriers keep loaded lines in registers: GCC otherwise folds one load
// into every FMA that uses it, and the tile becomes load-bound.
#define DRAFT_PIN(v) __asm__("" : "+v"(v))

template <int R>
DRAFT_AVX512 inline void store_sums(__m512 (&a)[R], float* y, bool accumulate) {
  for (int i = 0; i < R; i += 4) {
    const __m512 z = _mm512_setzero_ps();
    const __m128 s = sum4_avx512(a[i], i + 1 < R ? a[i + 1] : z, i + 2 < R ? a[i + 2] : z, i + 3 < R ? a[i + 3] : z);
    float out[4];
    _mm_storeu_ps(out, s);
    for (int j = 0; j < 4 && i + j < R; ++j) y[i + j] = accumulate ? y[i + j] + out[j] : out[j];
  }
}

// WT is the weights' element type: float, or uint16_t f16 bits (load16 widens them: half the bytes stream in).
template <int R, int NT, class WT>
DRAFT_AVX512 inline void gemm_tile(const WT* w, int cols, const float* x, int xs, float* y, int ys, bool accumulate, const WT* next,
                                   const WT* far = nullptr) {
  __m512 a[NT][R];
  for (int b = 0; b < NT; ++b)
    for (int i = 0; i < R; ++i) a[b][i] = _mm512_setzero_ps();
  for (int c = 0; c < cols; c += 16) {
    // A 64-byte line holds 16 floats or 32 halves: f16 rows need a prefetch every other step only.
    const bool line = sizeof(WT) == 4 || (c & 31) == 0;
    if (next && line)
      for (int i = 0; i < R; ++i) _mm_prefetch(reinterpret_cast<const char*>(next + static_cast<size_t>(i) * cols + c), _MM_HINT_T0);
    if (far && line)
      for (int i = 0; i < R; ++i) _mm_prefetch(reinterpret_cast<const char*>(far + static_cast<size_t>(i) * cols + c), _MM_HINT_T1);
    __m512 v[R];
    for (int i = 0; i < R; ++i) {
      v[i] = load16(w + static_cast<size_t>(i) * cols + c);
      DRAFT_PIN(v[i]);
    }
    for (int b = 0; b < NT; ++b) {
      __m512 xv = _mm512_loadu_ps(x + static_cast<size_t>(b) * xs + c);
      DRAFT_PIN(xv);
      for (int i = 0; i < R; ++i) a[b][i] = _mm512_fmadd_ps(v[i], xv, a[b][i]);
    }
  }
  for (int b = 0; b < NT; ++b) store_sums<R>(a[b], y + static_cast<size_t>(b) * ys, accumulate);
}

// Rows [r, r1) in tiles of R rows (then 4, then 1) for the NT tokens at x; `ahead` tiles are prefetched ahead.
template <int R, int NT, class WT>
DRAFT_AVX512 inline void gemm_rows_tiled(const WT* W, int cols, int r, int r1, const float* x, int xs, float* y, int ys, bool accumulate, int ahead,
                                         bool prefetch) {
  // Tiles of 4 tokens or more compute long enough per line that a second prefetch, 3 tiles further into L2, pays.
  const size_t skip = static_cast<size_t>(ahead) * R * cols, far = static_cast<size_t>(ahead + 3) * R * cols;
  for (; r + R <= r1; r += R) {
    const WT* w = W + static_cast<size_t>(r) * cols;
    gemm_tile<R, NT>(w, cols, x, xs, y + r, ys, accumulate, prefetch && r + R < r1 ? w + skip : nullptr,
                     NT >= 4 && prefetch && r + (ahead + 3) * R < r1 ? w + far : nullptr);
  }
  if constexpr (R > 4)
    for (; r + 4 <= r1; r += 4) gemm_tile<4, NT, WT>(W + static_cast<size_t>(r) * cols, cols, x, xs, y + r, ys, accumulate, nullptr);
  for (; r < r1; ++r) gemm_tile<1, NT, WT>(W + static_cast<size_t>(r) * cols, cols, x, xs, y + r, ys, accumulate, nullptr);
}

// Up to 8 tokens in one pass over the weights, the tile shape chosen for the count (accumulators ≤ 24 registers).
template <class WT>
DRAFT_AVX512 inline void gemm_rows_few(const WT* W, int cols, int r0, int r1, const float* X, int T, int xs, float* Y, int ys, bool accumulate,
                                       bool prefetch) {
  switch (T) {
    case 1: return gemm_rows_tiled<8, 1>(W, cols, r0, r1, X, xs, Y, ys, accumulate, 2, prefetch);
    case 2: return gemm_rows_tiled<8, 2>(W, cols, r0, r1, X, xs, Y, ys, accumulate, 1, prefetch);
    case 3: return gemm_rows_tiled<6, 3>(W, cols, r0, r1, X, xs, Y, ys, accumulate, 1, prefetch);
    case 4: return gemm_rows_tiled<4, 4>(W, cols, r0, r1, X, xs, Y, ys, accumulate, 1, prefetch);
    case 5: return gemm_rows_tiled<4, 5>(W, cols, r0, r1, X, xs, Y, ys, accumulate, 1, prefetch);
    case 6: return gemm_rows_tiled<4, 6>(W, cols, r0, r1, X, xs, Y, ys, accumulate, 1, prefetch);
    case 7: return gemm_rows_tiled<3, 7>(W, cols, r0, r1, X, xs, Y, ys, accumulate, 1, prefetch);
    case 8: return gemm_rows_tiled<3, 8>(W, cols, r0, r1, X, xs, Y, ys, accumulate, 1, prefetch);
    default: return;
  }
}

template <class WT>
DRAFT_AVX512 inline void gemm_rows_avx512(const WT* W, int cols, int r0, int r1, const float* X, int T, int xs, float* Y, int ys, bool accumulate) {
  if (T <= 8) return gemm_rows_few(W, cols, r0, r1, X, T, xs, Y, ys, accumulate, true);
  // More tokens (a prefill block): blocks of 4 rows stay in L1 while 6 tokens at a time pass over them; the first
  // pass, which brings them in from memory, prefetches the next block.
  for (int r = r0; r < r1; r += 4) {
    const int re = std::min(r1, r + 4);
    int t = 0;
    for (; t + 6 <= T; t += 6) {
      const float* x = X + static_cast<size_t>(t) * xs;
      float* y = Y + static_cast<size_t>(t) * ys;
      if (re - r == 4) gemm_tile<4, 6, WT>(W + static_cast<size_t>(r) * cols, cols, x, xs, y + r, ys, accumulate, t == 0 && re < r1 ? W + static_cast<size_t>(re) * cols : nullptr);
      else gemm_rows_tiled<4, 6>(W, cols, r, re, x, xs, y, ys, accumulate, 1, false);
    }
    if (t < T) gemm_rows_few(W, cols, r, re, X + static_cast<size_t>(t) * xs, T - t, xs, Y + static_cast<size_t>(t) * ys, ys, accumulate, false);
  }
}
#endif

// g[i] = silu(g[i]) · u[i] (SwiGLU's gate times up), as g / (1 + e^−g) written with e = exp(−|g|) ≤ 1 so one
// exp of a non-positive argument serves both signs: g ≥ 0 → g / (1 + e), g < 0 → g·e / (1 + e).
inline void silu_mul_generic(float* g, const float* u, int n) {
  for (int i = 0; i < n; ++i) {
    const float x = g[i], e = exp_nonpos(-std::fabs(x));
    const float y = (x < 0 ? x * e : x) / (1.0f + e);
    g[i] = y * u[i];
  }
}

#ifdef DRAFT_X86_SIMD
DRAFT_AVX512 inline void silu_mul_avx512(float* g, const float* u, int n) {
  int i = 0;
  const __m512 one = _mm512_set1_ps(1.0f);
  for (; i + 16 <= n; i += 16) {
    const __m512 x = _mm512_loadu_ps(g + i);
    const __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_abs_ps(x)));
    const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    const __m512 num = _mm512_mask_mul_ps(x, neg, x, e);
    _mm512_storeu_ps(g + i, _mm512_mul_ps(_mm512_div_ps(num, _mm512_add_ps(one, e)), _mm512_loadu_ps(u + i)));
  }
  silu_mul_generic(g + i, u + i, n - i);
}
#endif

// Cache rows in the decoder's element type (config.kv_dtype): `at` and `n` count elements.
inline void store_kv(void* base, size_t at, const float* src, int n, bool f16) {
  if (!f16) {
    std::memcpy(static_cast<float*>(base) + at, src, sizeof(float) * n);
    return;
  }
  uint16_t* dst = static_cast<uint16_t*>(base) + at;
  for (int i = 0; i < n; ++i) dst[i] = float_to_half(src[i]);
}

inline void load_kv(const void* base, size_t at, float* dst, size_t n, bool f16) {
  if (!f16) {
    std::memcpy(dst, static_cast<const float*>(base) + at, sizeof(float) * n);
    return;
  }
  const uint16_t* src = static_cast<const uint16_t*>(base) + at;
  for (size_t i = 0; i < n; ++i) dst[i] = half_to_float_vec(src[i]);
}

// x rounded to what an f16 cache stores (in place), so a pass that also uses x directly sees the stored values.
inline void round_kv(float* x, int n, bool f16) {
  if (f16)
    for (int i = 0; i < n; ++i) x[i] = half_to_float_vec(float_to_half(x[i]));
}

constexpr int kSpinMicros = 3000;  // how long idle pool threads spin before sleeping

extern const bool kHasAvx2;
extern const bool kHasAvx512;

inline void silu_mul(float* g, const float* u, int n) {
#ifdef DRAFT_X86_SIMD
  if (kHasAvx512) return silu_mul_avx512(g, u, n);
#endif
  silu_mul_generic(g, u, n);
}

// y[b] (+)= W x[b] for rows [r0, r1) of W (rows × cols, row-major; f32, or f16 bits when f16), b < B.
void gemv_rows(const void* W, bool f16, int cols, int r0, int r1, const float* X, int B, int x_stride, float* Y, int y_stride, bool accumulate);
// out = x / sqrt(mean(x²) + eps) * w.
void rms_norm(const float* x, const float* w, float* out, int n, float eps);
// Rotate-half RoPE in place.
void rope(float* x, const float* cos, const float* sin, int d);
// Online-softmax block update: m = max(m, s), p = exp(s − m); returns Σ p.
float softmax_block(const float* s, int n, float* m_io, float* p);

// Rows [r0, r1) of `rows` split evenly over `threads` in multiples of 4 (the GEMV's row block).
inline void share(int rows, int threads, int t, int* r0, int* r1) {
  const int per = ((rows + threads - 1) / threads + 3) & ~3;
  *r0 = std::min(rows, t * per);
  *r1 = std::min(rows, *r0 + per);
}

// Threads that live as long as the decoder: run(fn) calls fn(t) on every thread (the caller is thread 0) and
// returns when all are done; barrier() inside fn is a spinning sense barrier. Idle workers spin briefly, then
// sleep, so a pool between steps costs nothing while ORT runs a prefill on the same cores.
class Pool {
 public:
  explicit Pool(int threads) : threads_(threads) {
    for (int t = 1; t < threads; ++t) workers_.emplace_back([this, t] { loop(t); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }
  int threads() const { return threads_; }

  template <class Fn>
  void run(Fn&& fn) {
    job_ = [&fn](int t) { fn(t); };
    done_.store(0);
    error_ = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    call(0);
    while (done_.load(std::memory_order_acquire) < threads_ - 1) std::this_thread::yield();
    if (error_) std::rethrow_exception(error_);
  }

  void barrier() {
    if (threads_ == 1) return;
    const int sense = sense_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == threads_) {
      arrived_.store(0, std::memory_order_relaxed);
      sense_.store(sense ^ 1, std::memory_order_release);
      return;
    }
    // Yield once spinning lasts: on a loaded machine the thread we wait for may be off its core, and spinning
    // through our time slice keeps it there (a batch step took 40× longer with one core too few).
    for (int i = 0; sense_.load(std::memory_order_acquire) == sense; ++i) {
      if (i < 4096) {
        spin_pause();
      } else {
        std::this_thread::yield();
      }
    }
  }

 private:
  static void spin_pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    std::this_thread::yield();
#endif
  }

  void call(int t) {
    try {
      job_(t);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
  }

  void loop(int t) {
    uint64_t seen = 0;
    for (;;) {
      // Steps come back to back while a sequence decodes, ~1 ms apart (the token goes to the main thread and
      // back): spin through such a gap, since waking from a futex costs as much again, then sleep.
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
      for (int i = 0; generation_.load(std::memory_order_acquire) == seen; ++i) {
        spin_pause();
        if ((i & 255) != 255) continue;
        if (std::chrono::steady_clock::now() > until) break;
        std::this_thread::yield();
      }
      if (generation_.load(std::memory_order_acquire) == seen) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_.load() != seen; });
      }
      seen = generation_.load(std::memory_order_acquire);
      if (stop_) return;
      call(t);
      done_.fetch_add(1, std::memory_order_acq_rel);
    }
  }

  const int threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> done_{0};
  std::atomic<int> arrived_{0};
  std::atomic<int> sense_{0};
  bool stop_ = false;
  std::function<void(int)> job_;
  std::exception_ptr error_;
};

}  // namespace dec
}  // namespace draft

struct draft_decoder {
  draft_decoder_config cfg;
  draft_decoder_weights w;
  std::vector<draft_decoder_layer> layers;
  draft::dec::Pool pool;
  explicit draft_decoder(int threads) : pool(threads) {}
};

namespace draft {
namespace dec {
// out = the embedding row of `token` (hidden_size floats), widened when the weights are f16.
inline void embed_row(const draft_decoder& dec, int token, float* out) {
  const size_t D = static_cast<size_t>(dec.cfg.hidden_size), at = static_cast<size_t>(token) * D;
  if (dec.cfg.weight_dtype == DRAFT_DTYPE_F16) {
    const uint16_t* row = static_cast<const uint16_t*>(dec.w.embed) + at;
    for (size_t i = 0; i < D; ++i) out[i] = half_to_float_vec(row[i]);
  } else {
    std::memcpy(out, static_cast<const float*>(dec.w.embed) + at, sizeof(float) * D);
  }
}
}  // namespace dec
}  // namespace draft
