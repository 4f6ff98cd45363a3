// CUDA vs CPU on the same random inputs. Skips (ctest SKIP, exit 77) without a CUDA build or device.
#include "test_common.hpp"

int main() {
  int32_t devices = 0;
  if (!draft_cuda_built()) {
    std::printf("SKIP: built without CUDA\n");
    CHECK(draft_cuda_pool1d(nullptr, 0, 0, 1, DRAFT_POOL_MAX, DRAFT_PAD_SAME, nullptr) == DRAFT_ERR_NOT_BUILT, "stub status");
    return g_failures ? 1 : 77;
  }
  draft_status st = draft_cuda_device_count(&devices);
  if (st != DRAFT_OK || devices == 0) {
    std::printf("SKIP: no CUDA device (status: %s, devices: %d)\n", draft_status_string(st), devices);
    return 77;
  }
  std::mt19937_64 rng(test_seed());
  // window scores: GQA groups 1/2/7, windows 1/33/97, odd key lengths, f32 and f16 keys
  int c = 0;
  for (int group : {1, 2, 7})
    for (int w : {1, 33, 97})
      for (auto op : {DRAFT_REDUCE_MAX, DRAFT_REDUCE_MEAN, DRAFT_REDUCE_SUM}) {
        const int hkv = 1 + c % 2, hq = group * hkv, d = c % 2 ? 64 : 37, n = 1000 + 317 * (c % 4) + 1;
        const bool f16 = c % 3 == 2;
        auto q = random_floats(rng, static_cast<size_t>(hq) * w * d);
        auto k = random_floats(rng, static_cast<size_t>(hkv) * n * d);
        std::vector<uint16_t> kh(k.size());
        for (size_t i = 0; i < k.size(); ++i) kh[i] = float_to_half(k[i]);
        std::vector<float> weights(w);
        for (int i = 0; i < w; ++i) weights[i] = w > 1 ? static_cast<float>(i) / (w - 1) : 1.0f;
        std::vector<float> cpu(static_cast<size_t>(hkv) * n), gpu(cpu.size());
        draft_window_scores_args a{};
        a.queries = q.data();
        a.keys = f16 ? static_cast<const void*>(kh.data()) : static_cast<const void*>(k.data());
        a.key_dtype = f16 ? DRAFT_DTYPE_F16 : DRAFT_DTYPE_F32;
        a.num_heads = hq; a.num_kv_heads = hkv; a.head_dim = d; a.query_count = w; a.key_count = n;
        a.causal_tail = c % 4 != 3; a.op = op; a.query_weights = c % 2 ? weights.data() : nullptr; a.chunk_size = 256;
        a.out = cpu.data();
        CHECK(draft_cpu_window_scores(&a) == DRAFT_OK, "cpu");
        a.out = gpu.data();
        st = draft_cuda_window_scores(&a);
        CHECK(st == DRAFT_OK, "cuda window scores: %s", draft_status_string(st));
        double err = max_rel_error(gpu.data(), cpu.data(), gpu.size(), 1e-20);
        CHECK(err < 1e-5, "window scores group=%d w=%d op=%d f16=%d err=%g", group, w, op, f16, err);
        ++c;
      }
  // pool1d
  for (int k : {1, 7, 64})
    for (auto type : {DRAFT_POOL_MAX, DRAFT_POOL_AVG})
      for (auto pad : {DRAFT_PAD_SAME, DRAFT_PAD_CENTRED_ZERO}) {
        if (pad == DRAFT_PAD_SAME && k % 2 == 0) continue;
        auto s = random_floats(rng, 3 * 1001);
        std::vector<float> a(s.size()), b(s.size());
        draft_cpu_pool1d(s.data(), 3, 1001, k, type, pad, a.data());
        CHECK(draft_cuda_pool1d(s.data(), 3, 1001, k, type, pad, b.data()) == DRAFT_OK, "cuda pool");
        CHECK(max_rel_error(b.data(), a.data(), a.size(), 1e-6) < 1e-6, "pool k=%d type=%d pad=%d", k, type, pad);
      }
  // top-k with ties and NaN
  for (int n : {1, 97, 4099, 65537})
    for (int k : {1, 96, 2000}) {
      std::vector<float> s(3 * static_cast<size_t>(n));
      for (auto& x : s) x = static_cast<float>(rng() % 50) / 7.0f;
      s[rng() % s.size()] = NAN;
      const int take = std::min(k, n);
      std::vector<int32_t> a(3 * static_cast<size_t>(take)), b(a.size());
      draft_cpu_topk(s.data(), 3, n, n, k, DRAFT_TOPK_POSITION, 0, a.data());
      st = draft_cuda_topk(s.data(), 3, n, n, k, DRAFT_TOPK_POSITION, b.data());
      CHECK(st == DRAFT_OK, "cuda topk: %s", draft_status_string(st));
      CHECK(a == b, "topk n=%d k=%d", n, k);
    }
  // gather (ragged) and specpc aggregate
  {
    const int hkv = 3, n = 1001, d = 64;
    auto t = random_floats(rng, static_cast<size_t>(hkv) * n * d);
    std::vector<int32_t> counts = {5, 0, 17}, idx;
    for (int h = 0; h < hkv; ++h)
      for (int i = 0; i < counts[h]; ++i) idx.push_back((i * 37 + h) % n);
    std::vector<float> a(idx.size() * d), b(a.size());
    draft_cpu_gather_rows(t.data(), DRAFT_DTYPE_F32, hkv, n, d, idx.data(), counts.data(), 0, 1, a.data());
    CHECK(draft_cuda_gather_rows(t.data(), DRAFT_DTYPE_F32, hkv, n, d, idx.data(), counts.data(), 0, b.data()) == DRAFT_OK, "cuda gather");
    CHECK(a == b, "gather");
    auto s = random_floats(rng, 5ull * 2 * n, 0.f, 1.f);
    std::vector<float> x(n), y(n);
    draft_cpu_specpc_aggregate(s.data(), 5, 2, n, n - 3, 0, x.data());
    CHECK(draft_cuda_specpc_aggregate(s.data(), 5, 2, n, n - 3, 0, y.data()) == DRAFT_OK, "cuda specpc");
    CHECK(std::equal(x.begin(), x.end() - 3, y.begin()), "specpc aggregate");
  }
  // ragged attention: empty / length-1 / long heads with gaps, GQA 1/2/7, decode and chunk, f32 and f16
  for (int c = 0; c < 12; ++c) {
    const int group = c % 3 == 0 ? 1 : c % 3 == 1 ? 2 : 7, hkv = 1 + c % 4, hq = group * hkv;
    const int d = c % 2 ? 128 : 37, w = c % 4 == 3 ? 4 : 1;
    const bool f16 = c % 2 == 1;
    std::vector<int32_t> off(hkv), len(hkv);
    int64_t rows = 0;
    for (int h = 0; h < hkv; ++h) {
      const int pick = static_cast<int>(rng() % 5);
      len[h] = pick == 0 ? 0 : pick == 1 ? 1 : static_cast<int32_t>(rng() % 5000);
      rows += static_cast<int64_t>(rng() % 9);
      off[h] = static_cast<int32_t>(rows);
      rows += len[h];
    }
    auto q = random_floats(rng, static_cast<size_t>(hq) * w * d, -2, 2);
    auto k = random_floats(rng, static_cast<size_t>(rows) * d, -2, 2);
    auto v = random_floats(rng, static_cast<size_t>(rows) * d);
    std::vector<uint16_t> kh(k.size()), vh(v.size());
    for (size_t i = 0; i < k.size(); ++i) {
      kh[i] = float_to_half(k[i]);
      vh[i] = float_to_half(v[i]);
    }
    std::vector<float> cpu(static_cast<size_t>(hq) * w * d), gpu(cpu.size());
    draft_ragged_attention_args a{};
    a.queries = q.data();
    a.keys = f16 ? static_cast<const void*>(kh.data()) : k.data();
    a.values = f16 ? static_cast<const void*>(vh.data()) : v.data();
    a.kv_dtype = f16 ? DRAFT_DTYPE_F16 : DRAFT_DTYPE_F32;
    a.kv_rows = rows; a.offsets = off.data(); a.lengths = len.data();
    a.num_heads = hq; a.num_kv_heads = hkv; a.head_dim = d; a.query_count = w; a.causal = c % 5 != 4;
    a.out = cpu.data();
    CHECK(draft_cpu_ragged_attention(&a) == DRAFT_OK, "cpu ragged");
    a.out = gpu.data();
    st = draft_cuda_ragged_attention(&a);
    CHECK(st == DRAFT_OK, "cuda ragged attention: %s", draft_status_string(st));
    double worst = 0;
    for (size_t i = 0; i < cpu.size(); ++i) worst = std::max(worst, std::fabs(static_cast<double>(cpu[i]) - gpu[i]));
    CHECK(worst < 2e-5, "ragged attention G=%d hkv=%d d=%d w=%d f16=%d: max abs err %g", group, hkv, d, w, f16, worst);
  }
  return finish("cuda_parity");
}
