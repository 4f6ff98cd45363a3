// A naive double-precision Llama step (RMSNorm, rotate-half RoPE, GQA softmax attention over the masked cache plus
// the new token, SwiGLU, residuals, LM head) and a random model for it: the reference of the decoder's step and
// prefill tests.
#pragma once

#include "test_common.hpp"

namespace decoder_reference {

struct Model {
  draft_decoder_config cfg;
  std::vector<float> embed, final_norm, lm_head;
  std::vector<std::vector<float>> in_norm, post_norm, q, k, v, o, qb, kb, vb, gate, up, down;
  std::vector<draft_decoder_layer> layers;
  // cfg.weight_dtype F16: the matrices' half bits, which the kernel reads (the floats above are rounded to them,
  // so the reference computes with the very values the kernel widens).
  std::vector<std::vector<uint16_t>> halves;
  const void* embed_w = nullptr;
  const void* lm_head_w = nullptr;
};

// The kernel's weights of a model made by make_model.
inline draft_decoder_weights weights_of(const Model& m) { return {m.embed_w, m.layers.data(), m.final_norm.data(), m.lm_head_w}; }

// Rounds `a` to half precision in place and returns its half bits (kept by m).
inline const void* as_halves(Model& m, std::vector<float>& a) {
  std::vector<uint16_t> h(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    h[i] = float_to_half(a[i]);
    a[i] = half_to_float_ref(h[i]);
  }
  m.halves.push_back(std::move(h));
  return m.halves.back().data();
}

inline Model make_model(std::mt19937_64& rng, const draft_decoder_config& cfg, bool bias) {
  Model m;
  m.cfg = cfg;
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
  const bool half = c.weight_dtype == DRAFT_DTYPE_F16;
  m.halves.reserve(2 + 7 * static_cast<size_t>(c.num_layers));
  const auto matrix = [&](std::vector<float>& a) -> const void* { return half ? as_halves(m, a) : a.data(); };
  m.embed_w = matrix(m.embed);
  m.lm_head_w = matrix(m.lm_head);
  for (int l = 0; l < c.num_layers; ++l) {
    m.layers.push_back({m.in_norm[l].data(), m.post_norm[l].data(), matrix(m.q[l]), matrix(m.k[l]), matrix(m.v[l]), matrix(m.o[l]),
                        bias ? m.qb[l].data() : nullptr, bias ? m.kb[l].data() : nullptr, bias ? m.vb[l].data() : nullptr,
                        matrix(m.gate[l]), matrix(m.up[l]), matrix(m.down[l])});
  }
  return m;
}

inline std::vector<double> matvec(const std::vector<float>& W, const std::vector<double>& x, int rows, int cols) {
  std::vector<double> y(rows, 0.0);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) y[r] += static_cast<double>(W[static_cast<size_t>(r) * cols + c]) * x[c];
  return y;
}

inline std::vector<double> norm(const std::vector<double>& x, const std::vector<float>& w, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double inv = 1.0 / std::sqrt(ss / x.size() + eps);
  std::vector<double> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = w[i] * x[i] * inv;
  return out;
}

inline void rope(double* x, const float* cos, const float* sin, int d) {
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

// Logits of one step; also returns the new K/V per layer (Hkv·d) for the column check, and optionally the
// post-RoPE queries per layer (H·d).
// A cache of f16 (config.kv_dtype F16) stores, and every read sees, the new K/V rounded to half precision.
inline double stored(double x, bool f16) { return f16 ? half_to_float_ref(float_to_half(static_cast<float>(x))) : x; }

// What an f16 cache may differ by from the reference's rounding: the kernel rounds its f32 K/V, the reference its
// double ones, and the two can land on neighbouring halves (two ulps allowed: 2^-9 relative, at least 2^-9).
inline double half_ulps(double x, bool f16) { return f16 ? std::ldexp(1.0, -9) * std::max(1.0, std::fabs(x)) : 0.0; }

// Logit tolerance (relative to the largest logit): f32 caches 1e-4; f16 caches 1e-3, since those neighbouring-half
// roundings (about one K/V element in 5000) then feed every later token and layer.
inline double logit_tolerance(bool f16) { return f16 ? 1e-3 : 1e-4; }

inline std::vector<double> naive_step(const Model& m, const Seq& s, bool bias, std::vector<std::vector<double>>& new_k, std::vector<std::vector<double>>& new_v,
                                      std::vector<std::vector<double>>* new_q) {
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
    const bool f16 = c.kv_dtype == DRAFT_DTYPE_F16;
    for (int i = 0; i < Hkv * d; ++i) k[i] = stored(k[i], f16), v[i] = stored(v[i], f16);
    if (new_q) new_q->push_back(q);
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

}  // namespace decoder_reference
