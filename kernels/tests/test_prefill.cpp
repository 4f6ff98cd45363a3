// Native prefill (embed, one call per layer, head) against the naive double-precision step of
// decoder_reference.hpp run token by token: a prompt of N tokens after `used` random cached columns (with and
// without per-head masks on them), every token's logits, the K/V written to columns [used, used + N), and the
// captured post-RoPE window queries. Two shapes: head_dim 12 (the plain path) and head_dim 64 with sizes that take
// the AVX-512 GEMM and blocked attention where the CPU has them; token counts over several 64-token passes and
// 64-key blocks; 1–3 threads; argument checks.
#include "decoder_reference.hpp"

namespace {

using namespace decoder_reference;

void run_case(std::mt19937_64& rng, const draft_decoder_config& cfg, bool bias, int used, int N, bool head_masks) {
  Model m = make_model(rng, cfg, bias);
  const auto& c = m.cfg;
  const int Hkv = c.num_kv_heads, H = c.num_heads, d = c.head_dim, D = c.hidden_size, V = c.vocab_size, Lc = c.num_layers;
  const draft_decoder_weights w = weights_of(m);
  draft_decoder* dec = nullptr;
  CHECK(draft_cpu_decoder_create(&m.cfg, &w, &dec) == DRAFT_OK, "create");
  if (!dec) return;
  const int cap = used + N + static_cast<int>(rng() % 3);
  std::uniform_int_distribution<int> tok(0, V - 1);
  std::vector<int32_t> tokens(N);
  for (auto& t : tokens) t = tok(rng);
  const int start = used + static_cast<int>(rng() % 100);
  std::vector<float> cos(static_cast<size_t>(N) * d), sin(static_cast<size_t>(N) * d);
  for (int t = 0; t < N; ++t)
    for (int i = 0; i < d; ++i) {
      const double th = (start + t) * std::pow(10000.0, -2.0 * (i % (d / 2)) / d);
      cos[static_cast<size_t>(t) * d + i] = static_cast<float>(std::cos(th));
      sin[static_cast<size_t>(t) * d + i] = static_cast<float>(std::sin(th));
    }
  // The reference's cache: the random past, then each token's own K/V as the reference computed it.
  Seq s;
  s.capacity = cap;
  const bool f16 = c.kv_dtype == DRAFT_DTYPE_F16;
  for (int l = 0; l < Lc; ++l) {
    s.keys.push_back(random_floats(rng, static_cast<size_t>(Hkv) * cap * d, -2, 2));
    s.values.push_back(random_floats(rng, static_cast<size_t>(Hkv) * cap * d));
    if (f16)
      for (auto* a : {&s.keys.back(), &s.values.back()})
        for (float& x : *a) x = half_to_float_ref(float_to_half(x));
    if (head_masks) {
      std::vector<uint8_t> hm(static_cast<size_t>(Hkv) * cap, 1);
      for (int g = 0; g < Hkv; ++g)
        for (int j = 0; j < used; ++j) hm[static_cast<size_t>(g) * cap + j] = rng() % 3 != 0;
      s.head_masks.push_back(std::move(hm));
    }
  }
  // The kernel's caches: the floats, or their half bits (read back as floats for the checks).
  std::vector<std::vector<float>> keys = s.keys, values = s.values;
  std::vector<std::vector<uint16_t>> hkeys(Lc), hvalues(Lc);
  for (int l = 0; l < Lc && f16; ++l)
    for (size_t i = 0; i < keys[l].size(); ++i) hkeys[l].push_back(float_to_half(keys[l][i])), hvalues[l].push_back(float_to_half(values[l][i]));
  const auto kv_ptr = [&](int l, bool value) -> void* {
    if (f16) return value ? static_cast<void*>(hvalues[l].data()) : hkeys[l].data();
    return value ? values[l].data() : keys[l].data();
  };
  const int qrows = std::min(N, 5);
  std::vector<std::vector<double>> expect;
  std::vector<std::vector<std::vector<double>>> exp_q;  // per window token: per layer (H·d)
  std::vector<std::vector<std::vector<double>>> exp_k(N), exp_v(N);
  for (int t = 0; t < N; ++t) {
    s.token = tokens[t];
    s.used = used + t;
    s.cos.assign(cos.begin() + static_cast<size_t>(t) * d, cos.begin() + static_cast<size_t>(t + 1) * d);
    s.sin.assign(sin.begin() + static_cast<size_t>(t) * d, sin.begin() + static_cast<size_t>(t + 1) * d);
    std::vector<std::vector<double>> nq;
    expect.push_back(naive_step(m, s, bias, exp_k[t], exp_v[t], &nq));
    if (t >= N - qrows) exp_q.push_back(nq);
    for (int l = 0; l < Lc; ++l)
      for (int g = 0; g < Hkv; ++g)
        for (int i = 0; i < d; ++i) {
          const size_t at = (static_cast<size_t>(g) * cap + s.used) * d + i;
          s.keys[l][at] = static_cast<float>(exp_k[t][l][g * d + i]);
          s.values[l][at] = static_cast<float>(exp_v[t][l][g * d + i]);
        }
  }
  std::vector<float> hidden(static_cast<size_t>(N) * D), logits(static_cast<size_t>(N) * V);
  std::vector<std::vector<float>> queries(Lc, std::vector<float>(static_cast<size_t>(H) * qrows * d));
  CHECK(draft_cpu_decoder_embed(dec, tokens.data(), N, hidden.data()) == DRAFT_OK, "embed");
  for (int l = 0; l < Lc; ++l) {
    draft_decoder_layer_call call{l, hidden.data(), N, cos.data(), sin.data(), kv_ptr(l, false), kv_ptr(l, true), cap, used,
                                  head_masks ? s.head_masks[l].data() : nullptr, queries[l].data(), qrows};
    CHECK(draft_cpu_decoder_layer(dec, &call) == DRAFT_OK, "layer %d", l);
  }
  CHECK(draft_cpu_decoder_head(dec, hidden.data(), N, logits.data()) == DRAFT_OK, "head");
  for (int l = 0; l < Lc && f16; ++l)
    for (size_t i = 0; i < keys[l].size(); ++i) keys[l][i] = half_to_float_ref(hkeys[l][i]), values[l][i] = half_to_float_ref(hvalues[l][i]);
  double worst = 0, scale = 1;
  for (int t = 0; t < N; ++t)
    for (int i = 0; i < V; ++i) {
      scale = std::max(scale, std::fabs(expect[t][i]));
      worst = std::max(worst, std::fabs(logits[static_cast<size_t>(t) * V + i] - expect[t][i]));
    }
  CHECK(worst <= logit_tolerance(f16) * scale, "d %d used %d N %d masks %d threads %d f16 %d: logits off by %g (scale %g)", d, used, N, head_masks, c.num_threads, f16, worst, scale);
  double kv = 0, past = 0;
  for (int l = 0; l < Lc; ++l)
    for (int g = 0; g < Hkv; ++g)
      for (int j = 0; j < cap; ++j)
        for (int i = 0; i < d; ++i) {
          const size_t at = (static_cast<size_t>(g) * cap + j) * d + i;
          if (j >= used && j < used + N) {
            const double ek = exp_k[j - used][l][g * d + i], ev = exp_v[j - used][l][g * d + i];
            kv = std::max({kv, std::fabs(keys[l][at] - ek) - half_ulps(ek, f16), std::fabs(values[l][at] - ev) - half_ulps(ev, f16)});
          } else {
            past = std::max({past, static_cast<double>(std::fabs(keys[l][at] - s.keys[l][at])), static_cast<double>(std::fabs(values[l][at] - s.values[l][at]))});
          }
        }
  CHECK(kv <= 1e-4, "d %d used %d N %d: written K/V off by %g", d, used, N, kv);
  CHECK(past == 0, "columns outside [used, used + N) changed by %g", past);
  double qerr = 0;
  for (int l = 0; l < Lc; ++l)
    for (int h = 0; h < H; ++h)
      for (int r = 0; r < qrows; ++r)
        for (int i = 0; i < d; ++i)
          qerr = std::max(qerr, std::fabs(queries[l][(static_cast<size_t>(h) * qrows + r) * d + i] - exp_q[r][l][h * d + i]));
  CHECK(qerr <= logit_tolerance(f16), "window queries off by %g", qerr);
  // Bad calls are refused and leave the decoder usable.
  draft_decoder_layer_call bad{0, hidden.data(), N, cos.data(), sin.data(), kv_ptr(0, false), kv_ptr(0, true), used + N - 1, used, nullptr, nullptr, 0};
  CHECK(draft_cpu_decoder_layer(dec, &bad) == DRAFT_ERR_INVALID_ARGUMENT, "used + count > capacity");
  bad.capacity = cap;
  bad.layer = Lc;
  CHECK(draft_cpu_decoder_layer(dec, &bad) == DRAFT_ERR_INVALID_ARGUMENT, "layer out of range");
  bad.layer = 0;
  bad.query_rows = 1;
  CHECK(draft_cpu_decoder_layer(dec, &bad) == DRAFT_ERR_INVALID_ARGUMENT, "query rows without a buffer");
  tokens[0] = V;
  CHECK(draft_cpu_decoder_embed(dec, tokens.data(), N, hidden.data()) == DRAFT_ERR_INVALID_ARGUMENT, "token out of range");
  draft_cpu_decoder_destroy(dec);
}

}  // namespace

int main() {
  std::mt19937_64 rng(test_seed());
  for (int threads : {1, 2, 3}) {
    const draft_decoder_config small{48, 2, 4, 2, 12, 72, 37, 1e-6f, threads};
    run_case(rng, small, true, 0, 70, false);
    run_case(rng, small, false, 9, 3, true);
    // head_dim 64, sizes multiples of 16: the AVX-512 GEMM and blocked attention (plain path elsewhere).
    const draft_decoder_config wide{64, 2, 8, 2, 64, 96, 41, 1e-6f, threads};
    run_case(rng, wide, false, 0, 150, false);
    run_case(rng, wide, true, 70, 131, true);
    run_case(rng, wide, false, 5, 1, false);
    // Token counts whose last GEMM pass takes 7, 8 and 2 tokens (the few-token tile shapes).
    run_case(rng, wide, true, 3, 71, false);
    run_case(rng, wide, false, 0, 8, true);
    run_case(rng, wide, false, 12, 2, false);
  }
  const draft_decoder_config big_head{64, 1, 2, 1, 128, 32, 11, 1e-6f, 2};
  run_case(rng, big_head, false, 33, 80, true);
  // Caches of f16 bits: written rounded, and every read (this prefill's own attention included) sees the stored
  // values; the plain path (d 12) and the blocked one (d 64).
  for (int threads : {1, 2}) {
    run_case(rng, {48, 2, 4, 2, 12, 72, 37, 1e-6f, threads, DRAFT_DTYPE_F16}, true, 9, 70, true);
    run_case(rng, {64, 2, 8, 2, 64, 96, 41, 1e-6f, threads, DRAFT_DTYPE_F16}, true, 70, 131, true);
  }
  // f16 weights (the reference computes with their values): the many-token GEMM and its few-token tail (131 = 21·6
  // + 5), the plain path, and with f16 caches.
  for (int threads : {1, 2}) {
    run_case(rng, {64, 2, 8, 2, 64, 96, 41, 1e-6f, threads, DRAFT_DTYPE_F32, DRAFT_DTYPE_F16}, true, 70, 131, true);
    run_case(rng, {48, 2, 4, 2, 12, 72, 37, 1e-6f, threads, DRAFT_DTYPE_F32, DRAFT_DTYPE_F16}, false, 9, 70, false);
    run_case(rng, {64, 2, 8, 2, 64, 96, 41, 1e-6f, threads, DRAFT_DTYPE_F16, DRAFT_DTYPE_F16}, false, 0, 150, true);
  }
  if (g_failures == 0) std::printf("prefill: ok\n");
  return g_failures == 0 ? 0 : 1;
}
