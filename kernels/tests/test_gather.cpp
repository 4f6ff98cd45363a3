#include "test_common.hpp"

int main() {
  std::mt19937_64 rng(test_seed());
  for (int hkv : {1, 2, 7})
    for (int n : {1, 13, 1001})
      for (int d : {1, 5, 64}) {
        auto t = random_floats(rng, static_cast<size_t>(hkv) * n * d);
        // ragged: head h keeps a random ascending subset
        std::vector<int32_t> counts(hkv), idx;
        for (int h = 0; h < hkv; ++h) {
          for (int i = 0; i < n; ++i)
            if (rng() % 3 == 0) idx.push_back(i);
          counts[h] = static_cast<int32_t>(idx.size()) - std::accumulate(counts.begin(), counts.begin() + h, 0);
        }
        std::vector<float> out(idx.size() * d + 1, 42.0f);
        CHECK(draft_cpu_gather_rows(t.data(), DRAFT_DTYPE_F32, hkv, n, d, idx.data(), counts.data(), 0, 2, out.data()) == DRAFT_OK, "status");
        size_t o = 0;
        bool same = true;
        for (int h = 0, at = 0; h < hkv; ++h)
          for (int c = 0; c < counts[h]; ++c, ++at)
            for (int x = 0; x < d; ++x) same &= out[o++] == t[(static_cast<size_t>(h) * n + idx[at]) * d + x];
        CHECK(same && out.back() == 42.0f, "ragged hkv=%d n=%d d=%d", hkv, n, d);
        // uniform, f16 (rows copied bitwise)
        const int k = std::min(n, 3);
        std::vector<int32_t> uidx;
        for (int h = 0; h < hkv; ++h)
          for (int c = 0; c < k; ++c) uidx.push_back(n - 1 - c);
        std::vector<uint16_t> th(t.size()), oh(static_cast<size_t>(hkv) * k * d);
        for (size_t i = 0; i < t.size(); ++i) th[i] = static_cast<uint16_t>(rng());
        CHECK(draft_cpu_gather_rows(th.data(), DRAFT_DTYPE_F16, hkv, n, d, uidx.data(), nullptr, k, 1, oh.data()) == DRAFT_OK, "uniform");
        bool same16 = true;
        for (int h = 0; h < hkv; ++h)
          for (int c = 0; c < k; ++c)
            for (int x = 0; x < d; ++x) same16 &= oh[(static_cast<size_t>(h) * k + c) * d + x] == th[(static_cast<size_t>(h) * n + uidx[h * k + c]) * d + x];
        CHECK(same16, "uniform f16 hkv=%d n=%d d=%d", hkv, n, d);
      }
  float t[4] = {1, 2, 3, 4}, o[4];
  int32_t bad[2] = {0, 2};
  CHECK(draft_cpu_gather_rows(t, DRAFT_DTYPE_F32, 1, 2, 2, bad, nullptr, 2, 1, o) == DRAFT_ERR_INVALID_ARGUMENT, "out of range");
  int32_t neg[1] = {-1};
  CHECK(draft_cpu_gather_rows(t, DRAFT_DTYPE_F32, 1, 2, 2, neg, nullptr, 1, 1, o) == DRAFT_ERR_INVALID_ARGUMENT, "negative");
  CHECK(draft_cpu_gather_rows(t, DRAFT_DTYPE_F32, 1, 2, 2, nullptr, nullptr, 0, 1, nullptr) == DRAFT_OK, "empty gather");
  return finish("gather");
}
