// Native decoder step against a naive double-precision Llama step written here (RMSNorm, rotate-half RoPE,
// GQA softmax attention over the masked cache plus the new token, SwiGLU, residuals, LM head): random weights
// and caches, several sequences with different lengths, masks and positions in one call, 1–3 threads, with and
// without projection biases; checks that the new K/V land in column `used`, and the argument checks.
#include "decoder_reference.hpp"

namespace {

using namespace decoder_reference;

// f16: the caches hold half bits (kv_dtype F16); the reference reads the same values as floats. half_weights: the
// matrices are half bits (weight_dtype F16) and the reference computes with their values.
void run_case(std::mt19937_64& rng, int threads, bool bias, const std::vector<int>& useds, bool f16 = false, int d_head = 12, bool half_weights = false) {
  Model m = make_model(rng, {4 * d_head, 2, 4, 2, d_head, 72, 37, 1e-6f, threads, f16 ? DRAFT_DTYPE_F16 : DRAFT_DTYPE_F32, half_weights ? DRAFT_DTYPE_F16 : DRAFT_DTYPE_F32}, bias);
  const auto& c = m.cfg;
  const int Hkv = c.num_kv_heads, d = c.head_dim;
  const draft_decoder_weights w = weights_of(m);
  draft_decoder* dec = nullptr;
  CHECK(draft_cpu_decoder_create(&m.cfg, &w, &dec) == DRAFT_OK, "create");
  if (!dec) return;
  std::vector<Seq> seqs;
  std::uniform_int_distribution<int> tok(0, c.vocab_size - 1), pos(0, 5000);
  for (int used : useds) {
    Seq s;
    s.token = tok(rng);
    s.position = used + pos(rng);
    s.used = used;
    s.capacity = used + 1 + static_cast<int>(rng() % 5);
    if (rng() % 2) {
      s.mask.resize(used);
      for (auto& b : s.mask) b = rng() % 4 != 0;
    }
    for (int i = 0; i < d; ++i) {
      const double th = s.position * std::pow(10000.0, -2.0 * (i % (d / 2)) / d);
      s.cos.push_back(static_cast<float>(std::cos(th)));
      s.sin.push_back(static_cast<float>(std::sin(th)));
    }
    if (rng() % 2) {
      for (int l = 0; l < c.num_layers; ++l) {
        std::vector<uint8_t> hm(static_cast<size_t>(Hkv) * s.capacity);
        for (auto& v : hm) v = rng() % 3 != 0;
        s.head_masks.push_back(std::move(hm));
      }
    }
    for (int l = 0; l < c.num_layers; ++l) {
      s.keys.push_back(random_floats(rng, static_cast<size_t>(Hkv) * s.capacity * d, -2, 2));
      s.values.push_back(random_floats(rng, static_cast<size_t>(Hkv) * s.capacity * d));
      if (f16)
        for (auto* a : {&s.keys.back(), &s.values.back()})
          for (float& x : *a) x = half_to_float_ref(float_to_half(x));
    }
    seqs.push_back(std::move(s));
  }
  // The kernel's caches: the floats themselves, or their half bits.
  std::vector<std::vector<std::vector<uint16_t>>> hk(seqs.size()), hv(seqs.size());
  const auto halves = [](const std::vector<float>& a) {
    std::vector<uint16_t> h(a.size());
    for (size_t i = 0; i < a.size(); ++i) h[i] = float_to_half(a[i]);
    return h;
  };
  if (f16)
    for (size_t b = 0; b < seqs.size(); ++b)
      for (int l = 0; l < c.num_layers; ++l) hk[b].push_back(halves(seqs[b].keys[l])), hv[b].push_back(halves(seqs[b].values[l]));
  std::vector<std::vector<void*>> kp(seqs.size()), vp(seqs.size());
  std::vector<std::vector<float>> logits(seqs.size(), std::vector<float>(c.vocab_size));
  std::vector<draft_decoder_row> rows;
  std::vector<std::vector<const uint8_t*>> hp(seqs.size());
  for (size_t b = 0; b < seqs.size(); ++b) {
    for (int l = 0; l < c.num_layers; ++l) {
      kp[b].push_back(f16 ? static_cast<void*>(hk[b][l].data()) : seqs[b].keys[l].data());
      vp[b].push_back(f16 ? static_cast<void*>(hv[b][l].data()) : seqs[b].values[l].data());
    }
    const Seq& s = seqs[b];
    for (const auto& hm : s.head_masks) hp[b].push_back(hm.data());
    rows.push_back({s.token, s.cos.data(), s.sin.data(), kp[b].data(), vp[b].data(), s.capacity, s.used, s.mask.empty() ? nullptr : s.mask.data(),
                    hp[b].empty() ? nullptr : hp[b].data(), logits[b].data()});
  }
  // The reference reads the caches before the step writes column `used` (it is never read as past).
  std::vector<std::vector<double>> expect;
  std::vector<std::vector<std::vector<double>>> nk(seqs.size()), nv(seqs.size());
  for (size_t b = 0; b < seqs.size(); ++b) expect.push_back(naive_step(m, seqs[b], bias, nk[b], nv[b], nullptr));
  CHECK(draft_cpu_decoder_step(dec, rows.data(), static_cast<int32_t>(rows.size())) == DRAFT_OK, "step");
  for (size_t b = 0; b < seqs.size(); ++b) {
    double worst = 0, scale = 0;
    for (int i = 0; i < c.vocab_size; ++i) scale = std::max(scale, std::fabs(expect[b][i]));
    for (int i = 0; i < c.vocab_size; ++i) worst = std::max(worst, std::fabs(logits[b][i] - expect[b][i]));
    CHECK(worst <= logit_tolerance(f16) * std::max(1.0, scale), "threads %d bias %d f16 %d d %d row %zu used %d: logits off by %g (scale %g)", threads, bias, f16, d, b, seqs[b].used, worst,
          scale);
    const Seq& s = seqs[b];
    double kv = 0;
    for (int l = 0; l < c.num_layers; ++l)
      for (int g = 0; g < Hkv; ++g)
        for (int i = 0; i < d; ++i) {
          const size_t at = (static_cast<size_t>(g) * s.capacity + s.used) * d + i;
          const double k = f16 ? half_to_float_ref(hk[b][l][at]) : s.keys[l][at], v = f16 ? half_to_float_ref(hv[b][l][at]) : s.values[l][at];
          kv = std::max({kv, std::fabs(k - nk[b][l][g * d + i]) - half_ulps(nk[b][l][g * d + i], f16), std::fabs(v - nv[b][l][g * d + i]) - half_ulps(nv[b][l][g * d + i], f16)});
        }
    CHECK(kv <= 1e-4, "row %zu f16 %d: new K/V in column used off by %g", b, f16, kv);
  }
  // Bad rows are refused and leave the decoder usable.
  draft_decoder_row bad = rows[0];
  bad.used = bad.capacity;
  CHECK(draft_cpu_decoder_step(dec, &bad, 1) == DRAFT_ERR_INVALID_ARGUMENT, "used >= capacity");
  bad = rows[0];
  bad.token = c.vocab_size;
  CHECK(draft_cpu_decoder_step(dec, &bad, 1) == DRAFT_ERR_INVALID_ARGUMENT, "token out of range");
  CHECK(draft_cpu_decoder_step(dec, rows.data(), 0) == DRAFT_ERR_INVALID_ARGUMENT, "no rows");
  draft_cpu_decoder_destroy(dec);
}

// Packed heads: each KV head holds exactly the entries a head mask would leave visible, at its own offset (gaps
// between heads), so the step must give the masked reference's logits and write the new K/V after each head's rows.
void run_packed_case(std::mt19937_64& rng, int threads, int used) {
  Model m = make_model(rng, {48, 2, 4, 2, 12, 72, 37, 1e-6f, threads}, false);
  const auto& c = m.cfg;
  const int Hkv = c.num_kv_heads, d = c.head_dim, L = c.num_layers;
  const draft_decoder_weights w = weights_of(m);
  draft_decoder* dec = nullptr;
  CHECK(draft_cpu_decoder_create(&m.cfg, &w, &dec) == DRAFT_OK, "create");
  if (!dec) return;
  Seq s;
  s.token = static_cast<int>(rng() % c.vocab_size);
  s.used = used;
  s.capacity = used + 1;
  for (int i = 0; i < d; ++i) {
    const double th = (used + 3) * std::pow(10000.0, -2.0 * (i % (d / 2)) / d);
    s.cos.push_back(static_cast<float>(std::cos(th)));
    s.sin.push_back(static_cast<float>(std::sin(th)));
  }
  for (int l = 0; l < L; ++l) {
    s.keys.push_back(random_floats(rng, static_cast<size_t>(Hkv) * s.capacity * d, -2, 2));
    s.values.push_back(random_floats(rng, static_cast<size_t>(Hkv) * s.capacity * d));
    std::vector<uint8_t> hm(static_cast<size_t>(Hkv) * s.capacity);
    for (auto& v : hm) v = rng() % 3 != 0;
    s.head_masks.push_back(std::move(hm));
  }
  std::vector<std::vector<double>> nk, nv;
  const std::vector<double> expect = naive_step(m, s, false, nk, nv, nullptr);
  // Packed: head g's visible columns in order from offsets[l][g], then 1–3 spare rows before the next head.
  std::vector<std::vector<float>> pk(L), pv(L);
  std::vector<std::vector<int32_t>> offsets(L), counts(L);
  for (int l = 0; l < L; ++l) {
    int row = static_cast<int>(rng() % 3);
    for (int g = 0; g < Hkv; ++g) {
      offsets[l].push_back(row);
      int n = 0;
      for (int j = 0; j < used; ++j) {
        if (!s.head_masks[l][static_cast<size_t>(g) * s.capacity + j]) continue;
        const size_t src = (static_cast<size_t>(g) * s.capacity + j) * d;
        pk[l].resize(static_cast<size_t>(row + n + 1) * d);
        pv[l].resize(static_cast<size_t>(row + n + 1) * d);
        std::copy(s.keys[l].begin() + src, s.keys[l].begin() + src + d, pk[l].begin() + static_cast<size_t>(row + n) * d);
        std::copy(s.values[l].begin() + src, s.values[l].begin() + src + d, pv[l].begin() + static_cast<size_t>(row + n) * d);
        ++n;
      }
      counts[l].push_back(n);
      row += n + 1 + static_cast<int>(rng() % 3);
    }
    pk[l].resize(static_cast<size_t>(row) * d, 7.0f);
    pv[l].resize(static_cast<size_t>(row) * d, 7.0f);
  }
  std::vector<void*> kp, vp;
  std::vector<const int32_t*> op, cp;
  for (int l = 0; l < L; ++l) kp.push_back(pk[l].data()), vp.push_back(pv[l].data()), op.push_back(offsets[l].data()), cp.push_back(counts[l].data());
  std::vector<float> logits(c.vocab_size);
  draft_decoder_row row{s.token, s.cos.data(), s.sin.data(), kp.data(), vp.data(), 1, 0, nullptr, nullptr, logits.data(), op.data(), cp.data()};
  CHECK(draft_cpu_decoder_step(dec, &row, 1) == DRAFT_OK, "packed step");
  double worst = 0, scale = 1;
  for (int i = 0; i < c.vocab_size; ++i) scale = std::max(scale, std::fabs(expect[i])), worst = std::max(worst, std::fabs(logits[i] - expect[i]));
  CHECK(worst <= 1e-4 * scale, "packed used %d threads %d: logits off by %g (scale %g)", used, threads, worst, scale);
  double kv = 0;
  for (int l = 0; l < L; ++l)
    for (int g = 0; g < Hkv; ++g)
      for (int i = 0; i < d; ++i) {
        const size_t at = static_cast<size_t>(offsets[l][g] + counts[l][g]) * d + i;
        kv = std::max({kv, std::fabs(pk[l][at] - nk[l][g * d + i]), std::fabs(pv[l][at] - nv[l][g * d + i])});
      }
  CHECK(kv <= 1e-4, "packed: new K/V after each head's rows off by %g", kv);
  draft_decoder_row bad = row;
  bad.head_used = nullptr;
  CHECK(draft_cpu_decoder_step(dec, &bad, 1) == DRAFT_ERR_INVALID_ARGUMENT, "offsets without counts");
  draft_cpu_decoder_destroy(dec);
}

}  // namespace

int main() {
  std::mt19937_64 rng(test_seed());
  for (int threads : {1, 2, 3}) {
    run_case(rng, threads, false, {0});
    run_case(rng, threads, true, {5});
    run_case(rng, threads, false, {700, 3, 0, 1});  // 700 > one 256-column chunk
    // Attention works in 512-column blocks: 1025 columns end in a block of one, 512 fill exactly one.
    run_case(rng, threads, true, {1024, 511}, false, 64);
    run_case(rng, threads, true, {40, 9, 0, 1, 300, 5});  // sequences in a group of 4 and one of 2
    // Every batch size up to 8 has its own GEMM tile shape (rows × tokens): 2, 5, 7 and 8 here.
    run_case(rng, threads, false, {3, 260});
    run_case(rng, threads, true, {11, 0, 4, 2, 9});
    run_case(rng, threads, false, {1, 2, 3, 4, 5, 6, 7});
    run_case(rng, threads, true, {9, 0, 1, 5, 2, 270, 3, 0}, false, 64);
    for (int used : {0, 7, 600}) run_packed_case(rng, threads, used);
    // Caches of f16 bits: the plain kernels (d 12) and the AVX-512 ones (d 64) that widen on load.
    run_case(rng, threads, true, {700, 3, 0, 1}, true);
    run_case(rng, threads, false, {300, 0, 9}, true, 64);
    // f16 weights: AVX-512 tiles for 1–8 tokens (hidden 48 and 256) and the AVX2 rows (the down projection's 72
    // columns), with f32 and f16 caches.
    run_case(rng, threads, true, {5}, false, 12, true);
    run_case(rng, threads, false, {1, 2, 3, 4, 5, 6, 7}, false, 12, true);
    run_case(rng, threads, true, {9, 0, 1, 5, 2, 270, 3, 0}, false, 64, true);
    run_case(rng, threads, false, {300, 0}, true, 64, true);
  }
  draft_decoder_config bad{48, 2, 4, 3, 12, 72, 37, 1e-6f, 1};  // 4 heads over 3 KV heads
  std::vector<float> z(1);
  draft_decoder_layer layer{};
  draft_decoder_weights w{z.data(), &layer, z.data(), z.data()};
  draft_decoder* dec = nullptr;
  CHECK(draft_cpu_decoder_create(&bad, &w, &dec) == DRAFT_ERR_INVALID_ARGUMENT && dec == nullptr, "heads not a multiple of KV heads");
  bad.num_kv_heads = 2;
  CHECK(draft_cpu_decoder_create(&bad, &w, &dec) == DRAFT_ERR_INVALID_ARGUMENT && dec == nullptr, "missing layer weights");

  if (g_failures == 0) std::printf("decoder: ok\n");
  return g_failures == 0 ? 0 : 1;
}
