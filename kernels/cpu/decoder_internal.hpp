// Pieces the decode step (decoder.cpp) and the prefill (prefill.cpp) share: the decoder object, its thread pool and
// the row kernels. Not part of the C ABI.
#pragma once

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

// Y[t][r] (+)= W[r]·X[t] for rows [r0, r1) of W (rows × cols, cols % 16 == 0) and T token rows: register tiles
// of 4 weight rows × up to 6 tokens, each weight line loaded once for all of them (a decode step's sequences,
// a prefill's tokens). gemm_tile: y[b][0..4) (+)= W[0..4)·x[b] for NT tokens in one pass over the columns.
template <int NT>
DRAFT_AVX512 inline void gemm_tile(const float* w0, int cols, const float* x, int xs, float* y, int ys, bool accumulate) {
  const float* w1 = w0 + cols;
  const float* w2 = w1 + cols;
  const float* w3 = w2 + cols;
  __m512 a[NT][4];
  for (int b = 0; b < NT; ++b)
    for (int i = 0; i < 4; ++i) a[b][i] = _mm512_setzero_ps();
  for (int c = 0; c < cols; c += 16) {
    const __m512 v0 = _mm512_loadu_ps(w0 + c), v1 = _mm512_loadu_ps(w1 + c), v2 = _mm512_loadu_ps(w2 + c), v3 = _mm512_loadu_ps(w3 + c);
    for (int b = 0; b < NT; ++b) {
      const __m512 xv = _mm512_loadu_ps(x + static_cast<size_t>(b) * xs + c);
      a[b][0] = _mm512_fmadd_ps(v0, xv, a[b][0]);
      a[b][1] = _mm512_fmadd_ps(v1, xv, a[b][1]);
      a[b][2] = _mm512_fmadd_ps(v2, xv, a[b][2]);
      a[b][3] = _mm512_fmadd_ps(v3, xv, a[b][3]);
    }
  }
  for (int b = 0; b < NT; ++b) {
    float* yb = y + static_cast<size_t>(b) * ys;
    __m128 s = sum4_avx512(a[b][0], a[b][1], a[b][2], a[b][3]);
    if (accumulate) s = _mm_add_ps(s, _mm_loadu_ps(yb));
    _mm_storeu_ps(yb, s);
  }
}

DRAFT_AVX512 inline void gemm_rows_avx512(const float* W, int cols, int r0, int r1, const float* X, int T, int xs, float* Y, int ys, bool accumulate) {
  int r = r0;
  for (; r + 4 <= r1; r += 4) {
    const float* w = W + static_cast<size_t>(r) * cols;
    int t = 0;
    for (; t + 6 <= T; t += 6) gemm_tile<6>(w, cols, X + static_cast<size_t>(t) * xs, xs, Y + static_cast<size_t>(t) * ys + r, ys, accumulate);
    const float* xt = X + static_cast<size_t>(t) * xs;
    float* yt = Y + static_cast<size_t>(t) * ys + r;
    switch (T - t) {
      case 1: gemm_tile<1>(w, cols, xt, xs, yt, ys, accumulate); break;
      case 2: gemm_tile<2>(w, cols, xt, xs, yt, ys, accumulate); break;
      case 3: gemm_tile<3>(w, cols, xt, xs, yt, ys, accumulate); break;
      case 4: gemm_tile<4>(w, cols, xt, xs, yt, ys, accumulate); break;
      case 5: gemm_tile<5>(w, cols, xt, xs, yt, ys, accumulate); break;
      default: break;
    }
  }
  for (; r < r1; ++r) {
    const float* w = W + static_cast<size_t>(r) * cols;
    for (int t = 0; t < T; ++t) {
      const float* x = X + static_cast<size_t>(t) * xs;
      __m512 a = _mm512_setzero_ps();
      for (int c = 0; c < cols; c += 16) a = _mm512_fmadd_ps(_mm512_loadu_ps(w + c), _mm512_loadu_ps(x + c), a);
      float* y = Y + static_cast<size_t>(t) * ys + r;
      *y = accumulate ? *y + _mm512_reduce_add_ps(a) : _mm512_reduce_add_ps(a);
    }
  }
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

// y[b] (+)= W x[b] for rows [r0, r1) of W (rows × cols, row-major), b < B.
void gemv_rows(const float* W, int cols, int r0, int r1, const float* X, int B, int x_stride, float* Y, int y_stride, bool accumulate);
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
