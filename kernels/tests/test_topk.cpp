#include "test_common.hpp"

// Naive reference: full stable sort (score desc, NaN last, ties by position).
static std::vector<int32_t> naive_topk(const float* s, int n, int k, bool by_position) {
  std::vector<int32_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) {
    if (std::isnan(s[a]) || std::isnan(s[b])) return !std::isnan(s[a]) && std::isnan(s[b]);
    return s[a] > s[b];
  });
  idx.resize(std::min(k, n));
  if (by_position) std::sort(idx.begin(), idx.end());
  return idx;
}

int main() {
  std::mt19937_64 rng(test_seed());
  std::uniform_int_distribution<int> small(0, 5);
  for (int n : {1, 2, 17, 97, 1000, 4099})
    for (int k : {0, 1, 3, 96, 5000})
      for (int rows : {1, 3})
        for (int order = 0; order < 2; ++order) {
          // many ties: integer-valued scores; some NaN, ±inf and −0
          std::vector<float> s(static_cast<size_t>(rows) * (n + 2));
          for (auto& x : s) {
            int v = small(rng);
            x = v == 5 ? (rng() % 7 == 0 ? NAN : (rng() % 2 ? INFINITY : -INFINITY)) : (v == 0 ? (rng() % 2 ? -0.0f : 0.0f) : static_cast<float>(v));
          }
          const int take = std::min(k, n);
          std::vector<int32_t> out(static_cast<size_t>(rows) * take + 1, -7);
          auto st = draft_cpu_topk(s.data(), rows, n + 2, n, k, static_cast<draft_topk_order>(order), 2, out.data());
          CHECK(st == DRAFT_OK, "status %d", st);
          for (int r = 0; r < rows; ++r) {
            auto ref = naive_topk(s.data() + static_cast<size_t>(r) * (n + 2), n, k, order == 0);
            CHECK(std::equal(ref.begin(), ref.end(), out.begin() + static_cast<size_t>(r) * take), "n=%d k=%d row=%d order=%d", n, k, r, order);
          }
          CHECK(out.back() == -7, "wrote past the end");
        }
  // hand-made ties: [1, 3, 3, 2, 3] k=2 -> positions 1, 2
  const float s[5] = {1, 3, 3, 2, 3};
  int32_t o[2];
  draft_cpu_topk(s, 1, 5, 5, 2, DRAFT_TOPK_POSITION, 1, o);
  CHECK(o[0] == 1 && o[1] == 2, "ties: %d %d", o[0], o[1]);
  CHECK(draft_cpu_topk(s, 1, 4, 5, 2, DRAFT_TOPK_POSITION, 1, o) == DRAFT_ERR_INVALID_ARGUMENT, "stride < length");
  CHECK(draft_cpu_topk(s, 1, 5, 5, 0, DRAFT_TOPK_POSITION, 1, nullptr) == DRAFT_OK, "k = 0 with a null (empty) output");
  return finish("topk");
}
