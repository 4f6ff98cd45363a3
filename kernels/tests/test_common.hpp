// Tiny test harness: naive double-precision references, random inputs with a printed seed
// (DRAFT_TEST_SEED=<n> to replay), and error metrics.
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "draft_kernels.h"

static int g_failures = 0;
#define CHECK(cond, ...)                                              \
  do {                                                                \
    if (!(cond)) {                                                    \
      ++g_failures;                                                   \
      std::fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                              \
      std::fprintf(stderr, "\n");                                     \
    }                                                                 \
  } while (0)

inline uint64_t test_seed() {
  const char* env = std::getenv("DRAFT_TEST_SEED");
  uint64_t seed = env ? std::strtoull(env, nullptr, 10)
                      : static_cast<uint64_t>(std::chrono::high_resolution_clock::now().time_since_epoch().count());
  std::printf("seed %llu (DRAFT_TEST_SEED to replay)\n", static_cast<unsigned long long>(seed));
  return seed;
}

inline std::vector<float> random_floats(std::mt19937_64& rng, size_t n, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

// Largest relative error |a−b| / max(|b|, floor).
inline double max_rel_error(const float* a, const float* b, size_t n, double floor = 1e-30) {
  double worst = 0.0;
  for (size_t i = 0; i < n; ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) {
      if (!(std::isnan(a[i]) && std::isnan(b[i]))) return INFINITY;
      continue;
    }
    if (a[i] == b[i]) continue;
    double e = std::fabs(static_cast<double>(a[i]) - b[i]) / std::max(std::fabs(static_cast<double>(b[i])), floor);
    worst = std::max(worst, e);
  }
  return worst;
}

// Naive reference of windowAttentionScores: full softmax rows in double, fp32 probabilities, then reduce.
inline std::vector<float> naive_window_scores(const std::vector<float>& q, const std::vector<float>& k, int hq, int hkv,
                                              int d, int w, int n, bool causal, draft_reduce_op op,
                                              const float* weights, float scale = 0.0f) {
  const int g = hq / hkv;
  const double sc = scale != 0.0f ? scale : 1.0 / std::sqrt(static_cast<double>(d));
  std::vector<double> acc(static_cast<size_t>(hkv) * n, op == DRAFT_REDUCE_MAX ? -INFINITY : 0.0);
  std::vector<double> row(n);
  for (int h = 0; h < hq; ++h) {
    const int kvh = h / g;
    for (int i = 0; i < w; ++i) {
      const int visible = causal ? n - w + i + 1 : n;
      double m = -INFINITY;
      for (int j = 0; j < visible; ++j) {
        double dot = 0;
        for (int x = 0; x < d; ++x) dot += static_cast<double>(q[(static_cast<size_t>(h) * w + i) * d + x]) * k[(static_cast<size_t>(kvh) * n + j) * d + x];
        row[j] = dot * sc;
        m = std::max(m, row[j]);
      }
      double s = 0;
      for (int j = 0; j < visible; ++j) s += std::exp(row[j] - m);
      const double wt = weights ? weights[i] : 1.0;
      for (int j = 0; j < n; ++j) {
        const double p = static_cast<float>(j < visible ? std::exp(row[j] - m) / s : 0.0) * wt;
        double& a = acc[static_cast<size_t>(kvh) * n + j];
        if (op == DRAFT_REDUCE_MAX)
          a = std::max(a, p);
        else
          a += p;
      }
    }
  }
  std::vector<float> out(acc.size());
  for (size_t i = 0; i < acc.size(); ++i) out[i] = static_cast<float>(op == DRAFT_REDUCE_MEAN ? acc[i] / (g * w) : acc[i]);
  return out;
}

inline int finish(const char* name) {
  if (g_failures) {
    std::fprintf(stderr, "%s: %d failure(s)\n", name, g_failures);
    return 1;
  }
  std::printf("%s: ok\n", name);
  return 0;
}

// float -> IEEE half (round to nearest even), for f16 key tests.
inline uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  int32_t exp = static_cast<int32_t>((x >> 23) & 0xff) - 127 + 15;
  uint32_t mant = x & 0x7fffffu;
  if (exp <= 0) {
    if (exp < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000u;
    uint32_t shift = static_cast<uint32_t>(14 - exp);
    uint32_t h = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  if (exp >= 31) return static_cast<uint16_t>(sign | 0x7c00u);
  uint32_t h = (static_cast<uint32_t>(exp) << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) ++h;
  return static_cast<uint16_t>(sign | h);
}

inline float half_to_float_ref(uint16_t h) {
  const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  const float sign = (h & 0x8000u) ? -1.0f : 1.0f;
  if (e == 0) return sign * std::ldexp(static_cast<float>(m), -24);
  if (e == 31) return m ? NAN : sign * INFINITY;
  return sign * std::ldexp(static_cast<float>(m + 1024), e - 25);
}
