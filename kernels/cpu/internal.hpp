// Shared helpers of the CPU kernels (not part of the C ABI).
#pragma once

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <new>
#include <thread>
#include <vector>

#include "draft_kernels.h"

// Hot loops get an AVX2/FMA clone next to the baseline (x86-64 / SSE2) build, picked at load time by the
// dynamic loader (GNU ifunc). Shipped builds never use -march=native.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && !defined(DRAFT_NO_CLONES)
#define DRAFT_HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define DRAFT_HOT
#endif

namespace draft {

// Reads an enum argument as its raw int: values arriving from C or JS may lie outside the enumerators, and
// loading such a value as the enum type is undefined behaviour in C++.
template <class E>
inline int raw_enum(const E& e) {
  static_assert(sizeof(E) == sizeof(int), "C enums are int-sized");
  int v;
  std::memcpy(&v, &e, sizeof v);
  return v;
}

inline int resolve_threads(int32_t requested, int64_t items) {
  int n = requested > 0 ? requested : static_cast<int>(std::thread::hardware_concurrency());
  if (n < 1) n = 1;
  if (n > 256) n = 256;
  if (items < n) n = static_cast<int>(items < 1 ? 1 : items);
  return n;
}

// Runs fn(thread_index, item) for item in [0, items) on `threads` threads (work stealing via an atomic
// counter). Exceptions in workers are captured and rethrown on the caller. If a thread cannot be started
// the remaining items simply run on the threads that did start.
template <class Fn>
void parallel_for(int threads, int64_t items, Fn&& fn) {
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::atomic<bool> failed{false};
  auto worker = [&](int t) {
    try {
      for (;;) {
        if (failed.load(std::memory_order_relaxed)) return;
        int64_t i = next.fetch_add(1);
        if (i >= items) return;
        fn(t, i);
      }
    } catch (...) {
      if (!failed.exchange(true)) error = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) {
    try {
      pool.emplace_back(worker, t);
    } catch (...) {
      break;  // run with fewer threads
    }
  }
  worker(0);
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

// Maps C++ exceptions to status codes at the ABI boundary.
template <class Fn>
draft_status guarded(Fn&& fn) {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    return DRAFT_ERR_OUT_OF_MEMORY;
  } catch (...) {
    return DRAFT_ERR_INTERNAL;
  }
}

// IEEE binary16 -> binary32 (exact, handles subnormals, inf and NaN).
inline float half_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        mant <<= 1;
        ++e;
      } while ((mant & 0x400u) == 0);
      mant &= 0x3ffu;
      bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | (mant << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// IEEE half -> float without branches, so the conversion loops vectorise: placing the 15 magnitude bits at
// the float's exponent/mantissa boundary and scaling by 2^112 rebias the exponent, exactly for normal and
// subnormal halves (the CPU must not flush denormals, the default); inf/NaN are patched with a bit mask.
inline float half_to_float_vec(uint16_t h) {
  const uint32_t mag = static_cast<uint32_t>(h & 0x7fffu) << 13;
  float f;
  std::memcpy(&f, &mag, sizeof f);
  f *= 0x1p112f;
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  const uint32_t special = 0u - static_cast<uint32_t>((h & 0x7c00u) == 0x7c00u);  // all ones for inf/NaN
  bits = (bits & ~special) | ((0x7f800000u | mag) & special);
  bits |= static_cast<uint32_t>(h & 0x8000u) << 16;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// float -> IEEE half, rounded to nearest even (overflow to ±inf, NaN stays NaN), for caches stored as f16.
inline uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to ≥ 65520: inf
  if (abs < 0x38800000u) {  // below 2^-14: a subnormal half (or zero), rounded on the 2^-24 grid
    float a;
    std::memcpy(&a, &abs, sizeof a);
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(a * 0x1p24f)));
  }
  // Normal: rebias the exponent, then round the 13 dropped mantissa bits to nearest even (a carry may bump the exponent).
  const uint32_t rebased = abs - (112u << 23);
  const uint32_t h = rebased >> 13, rem = rebased & 0x1fffu;
  return static_cast<uint16_t>(sign | (h + (rem > 0x1000u || (rem == 0x1000u && (h & 1u)))));
}

// exp(x) for x <= 0 in float, branch-free so that loops over it auto-vectorise (Cephes polynomial,
// ~1-2 ulp). Results below ~1.2e-38 (x < -87.3) flush to 0; x = -inf gives 0.
inline float exp_nonpos(float x) {
  const bool tiny = !(x >= -87.3f);  // also catches -inf / NaN
  x = tiny ? -87.3f : x;
  // n = round(x / ln2) via the 1.5·2^23 trick (valid for |n| < 2^22; plain SSE2, no roundps needed).
  const float magic = 12582912.0f;
  float t = x * 1.44269504088896341f + magic;
  float n = t - magic;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t ni = static_cast<int32_t>(n);
  int32_t bits = (ni + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  float y = p * scale;
  return tiny ? 0.0f : y;
}

}  // namespace draft
