#include "test_common.hpp"

static void run_case(std::mt19937_64& rng, int hq, int hkv, int d, int w, int n, bool causal, draft_reduce_op op,
                     bool weighted, int chunk, int threads, bool f16) {
  auto q = random_floats(rng, static_cast<size_t>(hq) * w * d, -2.f, 2.f);
  auto k = random_floats(rng, static_cast<size_t>(hkv) * n * d, -2.f, 2.f);
  std::vector<uint16_t> kh;
  if (f16) {
    kh.resize(k.size());
    for (size_t i = 0; i < k.size(); ++i) {
      kh[i] = float_to_half(k[i]);
    }
    for (size_t i = 0; i < k.size(); ++i) k[i] = half_to_float_ref(kh[i]);  // reference sees the rounded keys
  }
  std::vector<float> weights(w);
  for (int i = 0; i < w; ++i) weights[i] = w > 1 ? static_cast<float>(i) / (w - 1) : 1.0f;
  std::vector<float> out(static_cast<size_t>(hkv) * n, 123.0f);
  draft_window_scores_args a{};
  a.queries = q.data();
  a.keys = f16 ? static_cast<const void*>(kh.data()) : static_cast<const void*>(k.data());
  a.key_dtype = f16 ? DRAFT_DTYPE_F16 : DRAFT_DTYPE_F32;
  a.num_heads = hq;
  a.num_kv_heads = hkv;
  a.head_dim = d;
  a.query_count = w;
  a.key_count = n;
  a.causal_tail = causal;
  a.op = op;
  a.query_weights = weighted ? weights.data() : nullptr;
  a.chunk_size = chunk;
  a.num_threads = threads;
  a.out = out.data();
  draft_status st = draft_cpu_window_scores(&a);
  CHECK(st == DRAFT_OK, "status %d", st);
  auto ref = naive_window_scores(q, k, hq, hkv, d, w, n, causal, op, weighted ? weights.data() : nullptr);
  double err = max_rel_error(out.data(), ref.data(), out.size(), 1e-20);
  CHECK(err < 1e-5, "hq=%d hkv=%d d=%d w=%d n=%d causal=%d op=%d weighted=%d chunk=%d f16=%d: max rel err %g", hq, hkv,
        d, w, n, causal, op, weighted, chunk, f16, err);
}

int main() {
  std::mt19937_64 rng(test_seed());
  const draft_reduce_op ops[] = {DRAFT_REDUCE_MAX, DRAFT_REDUCE_MEAN, DRAFT_REDUCE_SUM};
  int c = 0;
  for (int group : {1, 2, 7})
    for (int w : {1, 33, 97})
      for (draft_reduce_op op : ops) {
        const int hkv = 1 + (c % 2), n = 97 + 131 * (c % 5) + 1;  // odd lengths, not multiples of the chunk
        const int d = (c % 3 == 0) ? 64 : (c % 3 == 1 ? 17 : 5);
        run_case(rng, group * hkv, hkv, d, w, n, c % 4 != 3, op, c % 2 == 0, c % 2 ? 100 : 0, 1 + c % 3, c % 5 == 4);
        ++c;
      }
  // single key, single query; chunk 1
  run_case(rng, 2, 1, 3, 1, 1, true, DRAFT_REDUCE_MAX, false, 1, 2, false);
  run_case(rng, 4, 2, 8, 3, 7, true, DRAFT_REDUCE_SUM, true, 1, 3, false);
  // invalid arguments
  draft_window_scores_args a{};
  CHECK(draft_cpu_window_scores(&a) == DRAFT_ERR_INVALID_ARGUMENT, "null pointers accepted");
  CHECK(draft_cpu_window_scores(nullptr) == DRAFT_ERR_INVALID_ARGUMENT, "null args accepted");
  float q[6] = {}, k[6] = {}, o[2];
  a.queries = q; a.keys = k; a.out = o; a.num_heads = 3; a.num_kv_heads = 2; a.head_dim = 1; a.query_count = 1; a.key_count = 1;
  CHECK(draft_cpu_window_scores(&a) == DRAFT_ERR_INVALID_ARGUMENT, "Hq not a multiple of Hkv accepted");
  a.num_heads = 2; a.query_count = 2;
  CHECK(draft_cpu_window_scores(&a) == DRAFT_ERR_INVALID_ARGUMENT, "w > N accepted");
  a.query_count = 1; a.op = static_cast<draft_reduce_op>(9);
  CHECK(draft_cpu_window_scores(&a) == DRAFT_ERR_INVALID_ARGUMENT, "bad op accepted");
  return finish("window_scores");
}
