#include "test_common.hpp"

// Naive reference: explicit padded array, exactly as ALGORITHMS.md words it.
static std::vector<float> naive_pool(const std::vector<float>& s, int rows, int n, int k, draft_pool_type type,
                                     draft_pool_padding pad) {
  std::vector<float> out(s.size());
  const int left = (k - 1) / 2, right = k - 1 - left;
  const double fill = (type == DRAFT_POOL_MAX && pad == DRAFT_PAD_SAME) ? -INFINITY : 0.0;
  for (int r = 0; r < rows; ++r) {
    std::vector<double> padded(left, fill);
    for (int i = 0; i < n; ++i) padded.push_back(s[static_cast<size_t>(r) * n + i]);
    padded.insert(padded.end(), right, fill);
    for (int i = 0; i < n; ++i) {
      double acc = type == DRAFT_POOL_MAX ? -INFINITY : 0.0;
      for (int j = 0; j < k; ++j) acc = type == DRAFT_POOL_MAX ? std::max(acc, padded[i + j]) : acc + padded[i + j];
      out[static_cast<size_t>(r) * n + i] = static_cast<float>(type == DRAFT_POOL_MAX ? acc : acc / k);
    }
  }
  return out;
}

int main() {
  std::mt19937_64 rng(test_seed());
  for (int k : {1, 3, 7, 13, 64, 65})
    for (int rows : {1, 3})
      for (int n : {1, 5, 97, 1001})
        for (auto type : {DRAFT_POOL_MAX, DRAFT_POOL_AVG})
          for (auto pad : {DRAFT_PAD_SAME, DRAFT_PAD_CENTRED_ZERO}) {
            if (pad == DRAFT_PAD_SAME && k % 2 == 0) {
              std::vector<float> s(n), o(n);
              CHECK(draft_cpu_pool1d(s.data(), 1, n, k, type, pad, o.data()) == DRAFT_ERR_INVALID_ARGUMENT, "even k same");
              continue;
            }
            auto s = random_floats(rng, static_cast<size_t>(rows) * n, -1.f, 1.f);
            std::vector<float> o(s.size());
            CHECK(draft_cpu_pool1d(s.data(), rows, n, k, type, pad, o.data()) == DRAFT_OK, "status");
            auto ref = naive_pool(s, rows, n, k, type, pad);
            double err = max_rel_error(o.data(), ref.data(), o.size(), 1e-6);
            CHECK(err < 1e-6, "k=%d rows=%d n=%d type=%d pad=%d err=%g", k, rows, n, type, pad, err);
          }
  // hand-made: max 'same' k=3 keeps −inf out; centred-zero max clips negatives at the borders to 0
  const float s[4] = {-1, -2, -3, -4};
  float o[4];
  draft_cpu_pool1d(s, 1, 4, 3, DRAFT_POOL_MAX, DRAFT_PAD_SAME, o);
  CHECK(o[0] == -1 && o[1] == -1 && o[2] == -2 && o[3] == -3, "max same: %g %g %g %g", o[0], o[1], o[2], o[3]);
  draft_cpu_pool1d(s, 1, 4, 3, DRAFT_POOL_MAX, DRAFT_PAD_CENTRED_ZERO, o);
  CHECK(o[0] == 0 && o[1] == -1 && o[2] == -2 && o[3] == 0, "max centred: %g %g %g %g", o[0], o[1], o[2], o[3]);
  draft_cpu_pool1d(s, 1, 4, 3, DRAFT_POOL_AVG, DRAFT_PAD_SAME, o);
  CHECK(o[0] == -1.0f && o[3] == static_cast<float>(-7.0 / 3), "avg same: %g %g", o[0], o[3]);
  CHECK(draft_cpu_pool1d(nullptr, 1, 4, 3, DRAFT_POOL_MAX, DRAFT_PAD_SAME, o) == DRAFT_ERR_INVALID_ARGUMENT, "null");
  CHECK(draft_cpu_pool1d(s, 1, 4, 0, DRAFT_POOL_MAX, DRAFT_PAD_SAME, o) == DRAFT_ERR_INVALID_ARGUMENT, "k=0");
  return finish("pool1d");
}
