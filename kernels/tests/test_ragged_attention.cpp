// Ragged attention (CPU) against a naive double-precision softmax attention written here: random ragged
// caches with gaps between head blocks, empty and length-1 heads, GQA 1/2/7, decode and chunk queries,
// causal and not, f32 and f16 storage; plus the argument checks.
#include "test_common.hpp"

namespace {

struct Case {
  int hkv, group, d, q;
  bool causal, f16;
  std::vector<int32_t> lengths;
};

// out[hq, i, :] = Σ_j softmax(scale·q·k_j) v_j over the visible entries of KV head hq / G; 0 when none.
std::vector<double> naive(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                          const std::vector<int32_t>& off, const std::vector<int32_t>& len, int hq, int hkv, int d, int w,
                          bool causal, double scale) {
  std::vector<double> out(static_cast<size_t>(hq) * w * d, 0.0);
  const int g = hq / hkv;
  for (int h = 0; h < hq; ++h) {
    const int kvh = h / g;
    for (int i = 0; i < w; ++i) {
      const int vis = causal ? std::max(0, len[kvh] - w + i + 1) : len[kvh];
      if (vis == 0) continue;
      std::vector<double> l(vis);
      double m = -INFINITY;
      for (int j = 0; j < vis; ++j) {
        double dot = 0;
        for (int x = 0; x < d; ++x) dot += static_cast<double>(q[(static_cast<size_t>(h) * w + i) * d + x]) * k[(static_cast<size_t>(off[kvh]) + j) * d + x];
        l[j] = dot * scale;
        m = std::max(m, l[j]);
      }
      double s = 0;
      for (int j = 0; j < vis; ++j) s += std::exp(l[j] - m);
      for (int j = 0; j < vis; ++j) {
        const double p = std::exp(l[j] - m) / s;
        for (int x = 0; x < d; ++x) out[(static_cast<size_t>(h) * w + i) * d + x] += p * v[(static_cast<size_t>(off[kvh]) + j) * d + x];
      }
    }
  }
  return out;
}

}  // namespace

int main() {
  std::mt19937_64 rng(test_seed());
  std::vector<Case> cases;
  const int groups[] = {1, 2, 7};
  for (int c = 0; c < 18; ++c) {
    Case k;
    k.group = groups[c % 3];
    k.hkv = 1 + c % 4;
    k.d = c % 3 == 0 ? 64 : c % 3 == 1 ? 17 : 128;
    k.q = c % 4 == 3 ? 5 : 1;
    k.causal = c % 5 != 4;
    k.f16 = c % 2 == 1;
    for (int h = 0; h < k.hkv; ++h) {
      const int pick = static_cast<int>(rng() % 6);
      k.lengths.push_back(pick == 0 ? 0 : pick == 1 ? 1 : static_cast<int32_t>(rng() % (c < 9 ? 300 : 3000)));
    }
    cases.push_back(k);
  }
  for (const auto& c : cases) {
    const int hq = c.group * c.hkv;
    // head blocks with random gaps (spare capacity) between them, in shuffled order
    std::vector<int32_t> off(c.hkv);
    std::vector<int> order(c.hkv);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    int64_t rows = 0;
    for (int h : order) {
      rows += static_cast<int64_t>(rng() % 7);
      off[h] = static_cast<int32_t>(rows);
      rows += c.lengths[h];
    }
    rows += 3;
    auto q = random_floats(rng, static_cast<size_t>(hq) * c.q * c.d, -2, 2);
    auto k = random_floats(rng, static_cast<size_t>(rows) * c.d, -2, 2);
    auto v = random_floats(rng, static_cast<size_t>(rows) * c.d, -1, 1);
    std::vector<uint16_t> kh(k.size()), vh(v.size());
    if (c.f16) {
      for (size_t i = 0; i < k.size(); ++i) {
        kh[i] = float_to_half(k[i]);
        k[i] = half_to_float_ref(kh[i]);
        vh[i] = float_to_half(v[i]);
        v[i] = half_to_float_ref(vh[i]);
      }
    }
    const double scale = 1.0 / std::sqrt(static_cast<double>(c.d));
    auto ref = naive(q, k, v, off, c.lengths, hq, c.hkv, c.d, c.q, c.causal, scale);
    for (int chunk : {0, 64, 100}) {
      std::vector<float> out(ref.size(), 42.0f);
      draft_ragged_attention_args a{};
      a.queries = q.data();
      a.keys = c.f16 ? static_cast<const void*>(kh.data()) : k.data();
      a.values = c.f16 ? static_cast<const void*>(vh.data()) : v.data();
      a.kv_dtype = c.f16 ? DRAFT_DTYPE_F16 : DRAFT_DTYPE_F32;
      a.kv_rows = rows;
      a.offsets = off.data();
      a.lengths = c.lengths.data();
      a.num_heads = hq;
      a.num_kv_heads = c.hkv;
      a.head_dim = c.d;
      a.query_count = c.q;
      a.causal = c.causal;
      a.chunk_size = chunk;
      a.num_threads = 2;
      a.out = out.data();
      draft_status st = draft_cpu_ragged_attention(&a);
      CHECK(st == DRAFT_OK, "status %s", draft_status_string(st));
      double worst = 0;
      for (size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, std::fabs(out[i] - ref[i]));
      CHECK(worst < 2e-5, "hkv=%d G=%d d=%d q=%d causal=%d f16=%d chunk=%d: max abs err %g", c.hkv, c.group, c.d, c.q, c.causal, c.f16, chunk, worst);
    }
  }
  // Large logits: max subtraction keeps it finite (a naive exp would overflow).
  {
    float q[4] = {100, 100, 100, 100}, k[8] = {100, 100, 100, 100, 99, 99, 99, 99}, v[8] = {1, 0, 0, 0, 0, 1, 0, 0}, out[4];
    int32_t off[1] = {0}, len[1] = {2};
    draft_ragged_attention_args a{};
    a.queries = q; a.keys = k; a.values = v; a.kv_dtype = DRAFT_DTYPE_F32; a.kv_rows = 2; a.offsets = off; a.lengths = len;
    a.num_heads = 1; a.num_kv_heads = 1; a.head_dim = 4; a.query_count = 1; a.causal = 1; a.num_threads = 1; a.out = out;
    CHECK(draft_cpu_ragged_attention(&a) == DRAFT_OK, "large logits status");
    // logits 20000 and 19800 (scale 1/2): p = [1/(1+e^-200), ...] = [1, ~0]
    CHECK(std::fabs(out[0] - 1.0f) < 1e-6 && std::fabs(out[1]) < 1e-6 && std::isfinite(out[0]), "large logits %g %g", out[0], out[1]);
  }
  // Every f16 bit pattern (subnormals, inf, NaN included) decodes exactly: one entry per head → out = its value.
  {
    const int d = 256;
    std::vector<float> q(d, 0.0f), out(d);
    std::vector<uint16_t> k(d, 0), v(d);
    int32_t off[1] = {0}, len[1] = {1};
    int bad = 0;
    for (int block = 0; block < 65536 / d; ++block) {
      for (int x = 0; x < d; ++x) v[x] = static_cast<uint16_t>(block * d + x);
      draft_ragged_attention_args a{};
      a.queries = q.data(); a.keys = k.data(); a.values = v.data(); a.kv_dtype = DRAFT_DTYPE_F16; a.kv_rows = 1;
      a.offsets = off; a.lengths = len; a.num_heads = 1; a.num_kv_heads = 1; a.head_dim = d; a.query_count = 1;
      a.num_threads = 1; a.out = out.data();
      if (draft_cpu_ragged_attention(&a) != DRAFT_OK) ++bad;
      for (int x = 0; x < d; ++x) {
        const float want = half_to_float_ref(v[x]);
        if (!(out[x] == want || (std::isnan(out[x]) && std::isnan(want)))) ++bad;
      }
    }
    CHECK(bad == 0, "f16 decode: %d mismatches", bad);
  }
  // Argument checks.
  {
    float q[4] = {}, k[8] = {}, out[4];
    int32_t off[2] = {0, 1}, len[2] = {1, 1};
    draft_ragged_attention_args a{};
    a.queries = q; a.keys = k; a.values = k; a.kv_dtype = DRAFT_DTYPE_F32; a.kv_rows = 2; a.offsets = off; a.lengths = len;
    a.num_heads = 2; a.num_kv_heads = 2; a.head_dim = 2; a.query_count = 1; a.causal = 1; a.out = out;
    CHECK(draft_cpu_ragged_attention(&a) == DRAFT_OK, "valid");
    auto bad = [&](auto mutate, const char* what) {
      draft_ragged_attention_args b = a;
      int32_t o2[2] = {0, 1}, l2[2] = {1, 1};
      b.offsets = o2;
      b.lengths = l2;
      mutate(b, o2, l2);
      CHECK(draft_cpu_ragged_attention(&b) == DRAFT_ERR_INVALID_ARGUMENT, "%s", what);
    };
    bad([](auto& b, int32_t*, int32_t* l) { l[1] = 2; }, "block past kv_rows");
    bad([](auto& b, int32_t* o, int32_t*) { o[0] = -1; }, "negative offset");
    bad([](auto& b, int32_t*, int32_t* l) { l[0] = -1; }, "negative length");
    bad([](auto& b, int32_t*, int32_t*) { b.num_heads = 3; }, "heads not a multiple");
    bad([](auto& b, int32_t*, int32_t*) { b.query_count = 0; }, "no queries");
    bad([](auto& b, int32_t*, int32_t*) { b.values = nullptr; }, "null values");
    bad([](auto& b, int32_t*, int32_t*) { b.scale = NAN; }, "NaN scale");
    bad([](auto& b, int32_t*, int32_t*) { int x = 7; std::memcpy(&b.kv_dtype, &x, sizeof x); }, "bad dtype");
    // all heads empty: no K/V needed, zero output
    int32_t zero[2] = {0, 0};
    draft_ragged_attention_args e = a;
    e.keys = nullptr; e.values = nullptr; e.kv_rows = 0; e.offsets = zero; e.lengths = zero;
    out[0] = 5;
    CHECK(draft_cpu_ragged_attention(&e) == DRAFT_OK && out[0] == 0.0f, "all empty");
  }
  return finish("ragged_attention");
}
