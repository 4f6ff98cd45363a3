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
