// Native decoder step against a naive double-precision Llama step written here (RMSNorm, rotate-half RoPE,
// GQA softmax attention over the masked cache plus the new token, SwiGLU, residuals, LM head): random weights
// and caches, several sequences with different lengths, masks and positions in one call, 1–3 threads, with and
// without projection biases; checks that the new K/V land in column `used`, and the argument checks.
#include "test_common.hpp"

namespace {

struct Model {
  draft_decoder_config cfg;
  std::vector<float> embed, final_norm, lm_head;
  std::vector<std::vector<float>> in_norm, post_norm, q, k, v, o, qb, kb, vb, gate, up, down;
  std::vector<draft_decoder_layer> layers;
};

Model make_model(std::mt19937_64& rng, int threads, bool bias) {
  Model m;
  m.cfg = {48, 2, 4, 2, 12, 72, 37, 1e-6f, threads};
  const auto& c = m.cfg;
  const int D = c.hidden_size, qd = c.num_heads * c.head_dim, kd = c.num_kv_heads * c.head_dim, I = c.intermediate_size;
  const float ws = 0.3f;
  m.embed = random_floats(rng, static_cast<size_t>(c.vocab_size) * D);
  m.final_norm = random_floats(rng, D, 0.5f, 1.5f);
  m.lm_head = random_floats(rng, static_cast<size_t>(c.vocab_size) * D, -ws, ws);
  for (int l = 0; l < c.num_layers; ++l) {
    m.in_norm.push_back(random_floats(rng, D, 0.5f, 1.5f));
    m.post_norm.push_back(random_floats(rng, D, 0.5f, 1.5f));
    m.q.push_back(random_floats(rng, static_cast<size_t>(qd) * D, -ws, ws));
    m.k.push_back(random_floats(rng, static_cast<size_t>(kd) * D, -ws, ws));
    m.v.push_back(random_floats(rng, static_cast<size_t>(kd) * D, -ws, ws));
    m.o.push_back(random_floats(rng, static_cast<size_t>(D) * qd, -ws, ws));
    m.qb.push_back(random_floats(rng, qd));
    m.kb.push_back(random_floats(rng, kd));
    m.vb.push_back(random_floats(rng, kd));
    m.gate.push_back(random_floats(rng, static_cast<size_t>(I) * D, -ws, ws));
    m.up.push_back(random_floats(rng, static_cast<size_t>(I) * D, -ws, ws));
    m.down.push_back(random_floats(rng, static_cast<size_t>(D) * I, -ws, ws));
  }
  for (int l = 0; l < c.num_layers; ++l) {
    m.layers.push_back({m.in_norm[l].data(), m.post_norm[l].data(), m.q[l].data(), m.k[l].data(), m.v[l].data(), m.o[l].data(),
                        bias ? m.qb[l].data() : nullptr, bias ? m.kb[l].data() : nullptr, bias ? m.vb[l].data() : nullptr,
                        m.gate[l].data(), m.up[l].data(), m.down[l].data()});
  }
  return m;
}

std::vector<double> matvec(const std::vector<float>& W, const std::vector<double>& x, int rows, int cols) {
  std::vector<double> y(rows, 0.0);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) y[r] += static_cast<double>(W[static_cast<size_t>(r) * cols + c]) * x[c];
  return y;
}

std::vector<double> norm(const std::vector<double>& x, const std::vector<float>& w, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double inv = 1.0 / std::sqrt(ss / x.size() + eps);
  std::vector<double> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = w[i] * x[i] * inv;
  return out;
}

void rope(double* x, const float* cos, const float* sin, int d) {
  for (int i = 0; i < d / 2; ++i) {
    const double a = x[i], b = x[i + d / 2];
    x[i] = a * cos[i] - b * sin[i];
    x[i + d / 2] = b * cos[i + d / 2] + a * sin[i + d / 2];
  }
}

struct Seq {
  int token, position, capacity, used;
  std::vector<uint8_t> mask;
  std::vector<std::vector<uint8_t>> head_masks;  // per layer (Hkv, capacity), or none
  std::vector<float> cos, sin;
  std::vector<std::vector<float>> keys, values;  // per layer (Hkv, capacity, d)
};

// Logits of one step; also returns the new K/V per layer (Hkv·d) for the column check.
std::vector<double> naive_step(const Model& m, const Seq& s, bool bias, std::vector<std::vector<double>>& new_k, std::vector<std::vector<double>>& new_v) {
  const auto& c = m.cfg;
  const int D = c.hidden_size, H = c.num_heads, Hkv = c.num_kv_heads, d = c.head_dim, G = H / Hkv;
  std::vector<double> x(D);
  for (int i = 0; i < D; ++i) x[i] = m.embed[static_cast<size_t>(s.token) * D + i];
  for (int l = 0; l < c.num_layers; ++l) {
    auto h = norm(x, m.in_norm[l], c.rms_norm_eps);
    auto q = matvec(m.q[l], h, H * d, D), k = matvec(m.k[l], h, Hkv * d, D), v = matvec(m.v[l], h, Hkv * d, D);
    if (bias) {
      for (int i = 0; i < H * d; ++i) q[i] += m.qb[l][i];
      for (int i = 0; i < Hkv * d; ++i) k[i] += m.kb[l][i], v[i] += m.vb[l][i];
    }
    for (int hh = 0; hh < H; ++hh) rope(&q[hh * d], s.cos.data(), s.sin.data(), d);
    for (int g = 0; g < Hkv; ++g) rope(&k[g * d], s.cos.data(), s.sin.data(), d);
    new_k.push_back(k);
    new_v.push_back(v);
    std::vector<double> att(H * d, 0.0);
    for (int hh = 0; hh < H; ++hh) {
      const int g = hh / G;
      std::vector<double> sc;
      std::vector<const float*> kr, vr;
      std::vector<double> kn(k.begin() + g * d, k.begin() + (g + 1) * d), vn(v.begin() + g * d, v.begin() + (g + 1) * d);
      for (int j = 0; j < s.used; ++j) {
        if (!s.mask.empty() && !s.mask[j]) continue;
        if (!s.head_masks.empty() && !s.head_masks[l][static_cast<size_t>(g) * s.capacity + j]) continue;
        const float* kj = &s.keys[l][(static_cast<size_t>(g) * s.capacity + j) * d];
        double dot = 0;
        for (int i = 0; i < d; ++i) dot += q[hh * d + i] * kj[i];
        sc.push_back(dot / std::sqrt(static_cast<double>(d)));
        vr.push_back(&s.values[l][(static_cast<size_t>(g) * s.capacity + j) * d]);
      }
      double dn = 0;
      for (int i = 0; i < d; ++i) dn += q[hh * d + i] * kn[i];
      sc.push_back(dn / std::sqrt(static_cast<double>(d)));
      const double mx = *std::max_element(sc.begin(), sc.end());
      double sum = 0;
      for (double& e : sc) sum += (e = std::exp(e - mx));
      for (size_t j = 0; j < sc.size(); ++j)
        for (int i = 0; i < d; ++i) att[hh * d + i] += sc[j] / sum * (j + 1 == sc.size() ? vn[i] : vr[j][i]);
    }
    auto o = matvec(m.o[l], att, D, H * d);
    for (int i = 0; i < D; ++i) x[i] += o[i];
    h = norm(x, m.post_norm[l], c.rms_norm_eps);
    auto ga = matvec(m.gate[l], h, c.intermediate_size, D), u = matvec(m.up[l], h, c.intermediate_size, D);
    for (int i = 0; i < c.intermediate_size; ++i) ga[i] = ga[i] / (1 + std::exp(-ga[i])) * u[i];
    auto dn = matvec(m.down[l], ga, D, c.intermediate_size);
    for (int i = 0; i < D; ++i) x[i] += dn[i];
  }
  return matvec(m.lm_head, norm(x, m.final_norm, c.rms_norm_eps), c.vocab_size, D);
}

void run_case(std::mt19937_64& rng, int threads, bool bias, const std::vector<int>& useds) {
  Model m = make_model(rng, threads, bias);
  const auto& c = m.cfg;
  const int Hkv = c.num_kv_heads, d = c.head_dim;
  draft_decoder_weights w{m.embed.data(), m.layers.data(), m.final_norm.data(), m.lm_head.data()};
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
    }
    seqs.push_back(std::move(s));
  }
  std::vector<std::vector<float*>> kp(seqs.size()), vp(seqs.size());
  std::vector<std::vector<float>> logits(seqs.size(), std::vector<float>(c.vocab_size));
  std::vector<draft_decoder_row> rows;
  std::vector<std::vector<const uint8_t*>> hp(seqs.size());
  for (size_t b = 0; b < seqs.size(); ++b) {
    for (int l = 0; l < c.num_layers; ++l) kp[b].push_back(seqs[b].keys[l].data()), vp[b].push_back(seqs[b].values[l].data());
    const Seq& s = seqs[b];
    for (const auto& hm : s.head_masks) hp[b].push_back(hm.data());
    rows.push_back({s.token, s.cos.data(), s.sin.data(), kp[b].data(), vp[b].data(), s.capacity, s.used, s.mask.empty() ? nullptr : s.mask.data(),
                    hp[b].empty() ? nullptr : hp[b].data(), logits[b].data()});
  }
  // The reference reads the caches before the step writes column `used` (it is never read as past).
  std::vector<std::vector<double>> expect;
  std::vector<std::vector<std::vector<double>>> nk(seqs.size()), nv(seqs.size());
  for (size_t b = 0; b < seqs.size(); ++b) expect.push_back(naive_step(m, seqs[b], bias, nk[b], nv[b]));
  CHECK(draft_cpu_decoder_step(dec, rows.data(), static_cast<int32_t>(rows.size())) == DRAFT_OK, "step");
  for (size_t b = 0; b < seqs.size(); ++b) {
    double worst = 0, scale = 0;
    for (int i = 0; i < c.vocab_size; ++i) scale = std::max(scale, std::fabs(expect[b][i]));
    for (int i = 0; i < c.vocab_size; ++i) worst = std::max(worst, std::fabs(logits[b][i] - expect[b][i]));
    CHECK(worst <= 1e-4 * std::max(1.0, scale), "threads %d bias %d row %zu used %d: logits off by %g (scale %g)", threads, bias, b, seqs[b].used, worst, scale);
    const Seq& s = seqs[b];
    double kv = 0;
    for (int l = 0; l < c.num_layers; ++l)
      for (int g = 0; g < Hkv; ++g)
        for (int i = 0; i < d; ++i) {
          const size_t at = (static_cast<size_t>(g) * s.capacity + s.used) * d + i;
          kv = std::max({kv, std::fabs(s.keys[l][at] - nk[b][l][g * d + i]), std::fabs(s.values[l][at] - nv[b][l][g * d + i])});
        }
    CHECK(kv <= 1e-4, "row %zu: new K/V in column used off by %g", b, kv);
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

}  // namespace

int main() {
  std::mt19937_64 rng(test_seed());
  for (int threads : {1, 2, 3}) {
    run_case(rng, threads, false, {0});
    run_case(rng, threads, true, {5});
    run_case(rng, threads, false, {700, 3, 0, 1});  // 700 > one 256-column chunk
    run_case(rng, threads, true, {40, 9, 0, 1, 300, 5});  // sequences in a group of 4 and one of 2
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
