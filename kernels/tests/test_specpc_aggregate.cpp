#include "test_common.hpp"

int main() {
  std::mt19937_64 rng(test_seed());
  for (int layers : {1, 3, 8})
    for (int rows : {1, 2})
      for (int n : {1, 97, 1001}) {
        auto s = random_floats(rng, static_cast<size_t>(layers) * rows * n, 0.f, 1.f);
        s[rng() % s.size()] = NAN;
        const int keep = n > 2 ? n - 2 : n;
        std::vector<float> out(n, 7.0f);
        CHECK(draft_cpu_specpc_aggregate(s.data(), layers, rows, n, keep, 0, out.data()) == DRAFT_OK, "status");
        bool ok = true;
        for (int j = 0; j < keep; ++j) {
          float m = -INFINITY;
          for (int r = 0; r < layers * rows; ++r)
            if (!std::isnan(s[static_cast<size_t>(r) * n + j])) m = std::max(m, s[static_cast<size_t>(r) * n + j]);
          ok &= out[j] == m;
        }
        for (int j = keep; j < n; ++j) ok &= out[j] == 7.0f;
        CHECK(ok, "layers=%d rows=%d n=%d", layers, rows, n);
        // streaming layer by layer gives the same result
        std::vector<float> streamed(n);
        for (int l = 0; l < layers; ++l)
          draft_cpu_specpc_aggregate(s.data() + static_cast<size_t>(l) * rows * n, 1, rows, n, keep, l > 0, streamed.data());
        CHECK(std::equal(out.begin(), out.begin() + keep, streamed.begin()), "streamed layers=%d", layers);
      }
  float o[2];
  CHECK(draft_cpu_specpc_aggregate(nullptr, 1, 1, 2, 3, 0, o) == DRAFT_ERR_INVALID_ARGUMENT, "out_length > key_count");
  return finish("specpc_aggregate");
}
