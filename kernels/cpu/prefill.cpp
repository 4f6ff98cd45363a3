// Native prefill, one layer at a time (see draft_kernels.h). A prefill is compute-bound where a decode step is
// memory-bound: the projections run as GEMMs (a register tile of 4 weight rows × 6 tokens loads each weight line
// once for six tokens) and attention runs blocked, flash style: per KV head, the query rows of the heads sharing
// it meet 64 transposed keys at a time with a running max and sum, so no score matrix outlives a block.
#include <algorithm>

#include "decoder_internal.hpp"

namespace draft {
namespace dec {
namespace {

constexpr int kTokens = 64;        // tokens per pass through the layer: their activations stay in L2
constexpr int kKeys = 64;          // keys per attention block (four 16-lane score vectors per query row)
constexpr int kTileRows = 6;       // query rows per attention register tile
constexpr int kItemRows = 48;      // query rows one work item carries through every key block
constexpr float kNegInf = -INFINITY;

#ifdef DRAFT_X86_SIMD
// One tile of `rows` (≤ 6) query rows against one block of kKeys keys: scores from the transposed keys Kt
// (d × ldk), the mask (column < lim[r], plus `bias` (0 or −inf) per column), the online-softmax update of each
// row's (m, l), then O (rows × d, rescaled) += P · V. d = 16·V.
template <int V>
DRAFT_AVX512 void flash_tile(const float* q, int rows, const float* Kt, int ldk, const float* Vals, const float* bias, int j0, int nb, const int* lim,
                             float* m, float* l, float* O, float* P) {
  constexpr int d = 16 * V;
  __m512 s[kTileRows][4];
  for (int r = 0; r < kTileRows; ++r)
    for (int z = 0; z < 4; ++z) s[r][z] = _mm512_setzero_ps();
  const float* kt = Kt + j0;
  for (int i = 0; i < d; ++i) {
    const float* ki = kt + static_cast<size_t>(i) * ldk;
    const __m512 k0 = _mm512_loadu_ps(ki), k1 = _mm512_loadu_ps(ki + 16), k2 = _mm512_loadu_ps(ki + 32), k3 = _mm512_loadu_ps(ki + 48);
    for (int r = 0; r < kTileRows; ++r) {
      const __m512 qv = _mm512_set1_ps(q[r * d + i]);
      s[r][0] = _mm512_fmadd_ps(qv, k0, s[r][0]);
      s[r][1] = _mm512_fmadd_ps(qv, k1, s[r][1]);
      s[r][2] = _mm512_fmadd_ps(qv, k2, s[r][2]);
      s[r][3] = _mm512_fmadd_ps(qv, k3, s[r][3]);
    }
  }
  float alpha[kTileRows];
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (int r = 0; r < rows; ++r) {
    __m512 mx = _mm512_set1_ps(kNegInf);
    for (int z = 0; z < 4; ++z) {
      const __m512i col = _mm512_add_epi32(lane, _mm512_set1_epi32(j0 + 16 * z));
      const __mmask16 ok = _mm512_cmp_epi32_mask(col, _mm512_set1_epi32(lim[r]), _MM_CMPINT_LT);
      __m512 v = _mm512_mask_blend_ps(ok, _mm512_set1_ps(kNegInf), s[r][z]);
      if (bias) v = _mm512_add_ps(v, _mm512_loadu_ps(bias + j0 + 16 * z));
      s[r][z] = v;
      mx = _mm512_max_ps(mx, v);
    }
    const float m_new = std::max(m[r], _mm512_reduce_max_ps(mx));
    float* pr = P + r * kKeys;
    if (m_new == kNegInf) {
      alpha[r] = 1.0f;
      for (int z = 0; z < 4; ++z) _mm512_storeu_ps(pr + 16 * z, _mm512_setzero_ps());
      continue;
    }
    const __m512 mv = _mm512_set1_ps(m_new);
    __m512 sum = _mm512_setzero_ps();
    for (int z = 0; z < 4; ++z) {
      const __m512 p = exp512(_mm512_sub_ps(s[r][z], mv));
      sum = _mm512_add_ps(sum, p);
      _mm512_storeu_ps(pr + 16 * z, p);
    }
    alpha[r] = m[r] == kNegInf ? 0.0f : std::exp(m[r] - m_new);
    l[r] = l[r] * alpha[r] + _mm512_reduce_add_ps(sum);
    m[r] = m_new;
  }
  // O += P · V in sub-tiles whose accumulators fit the registers (24 lines).
  constexpr int sub = 24 / V;
  for (int r0 = 0; r0 < rows; r0 += sub) {
    const int n = std::min(sub, rows - r0);
    __m512 acc[sub][V];
    for (int r = 0; r < sub; ++r)
      for (int z = 0; z < V; ++z)
        acc[r][z] = r < n ? _mm512_mul_ps(_mm512_loadu_ps(O + (r0 + r) * d + 16 * z), _mm512_set1_ps(alpha[r0 + r])) : _mm512_setzero_ps();
    for (int j = 0; j < nb; ++j) {
      const float* vr = Vals + static_cast<size_t>(j0 + j) * d;
      __m512 vv[V];
      for (int z = 0; z < V; ++z) vv[z] = _mm512_loadu_ps(vr + 16 * z);
      for (int r = 0; r < sub; ++r) {
        if (r >= n) break;
        const __m512 pv = _mm512_set1_ps(P[(r0 + r) * kKeys + j]);
        for (int z = 0; z < V; ++z) acc[r][z] = _mm512_fmadd_ps(pv, vv[z], acc[r][z]);
      }
    }
    for (int r = 0; r < n; ++r)
      for (int z = 0; z < V; ++z) _mm512_storeu_ps(O + (r0 + r) * d + 16 * z, acc[r][z]);
  }
}
#endif

// Attention of query rows [ra, rb) of one KV head (row r = token r / G, head r % G of the group), scalar: every
// row runs its own online softmax over its visible columns. Any head size.
void attend_rows_generic(const float* qs, int ra, int rb, int d, const float* K, const float* Vals, const float* bias, const int* lim, float* out_rows) {
  std::vector<float> acc(d);
  for (int r = ra; r < rb; ++r) {
    const float* q = qs + static_cast<size_t>(r - ra) * d;
    float m = kNegInf, l = 0;
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int j = 0; j < lim[r - ra]; ++j) {
      if (bias && bias[j] != 0.0f) continue;
      const float* k = K + static_cast<size_t>(j) * d;
      float sdot = 0;
      for (int i = 0; i < d; ++i) sdot += q[i] * k[i];
      const float m_new = std::max(m, sdot);
      const float alpha = m == kNegInf ? 0.0f : std::exp(m - m_new);
      const float p = std::exp(sdot - m_new);
      l = l * alpha + p;
      const float* v = Vals + static_cast<size_t>(j) * d;
      for (int i = 0; i < d; ++i) acc[i] = acc[i] * alpha + p * v[i];
      m = m_new;
    }
    float* o = out_rows + static_cast<size_t>(r - ra) * d;
    for (int i = 0; i < d; ++i) o[i] = l > 0 ? acc[i] / l : 0.0f;
  }
}

}  // namespace

// One layer over call.count tokens, in passes of kTokens tokens; every phase splits over the pool's threads.
void prefill_layer(draft_decoder& dec, const draft_decoder_layer_call& call) {
  const draft_decoder_config& c = dec.cfg;
  const draft_decoder_layer& L = dec.layers[call.layer];
  const int D = c.hidden_size, H = c.num_heads, Hkv = c.num_kv_heads, d = c.head_dim, I = c.intermediate_size;
  const int G = H / Hkv, T = dec.pool.threads();
  const int qd = H * d, kd = Hkv * d;
  const int N = call.count, used = call.used, cap = call.capacity;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
#ifdef DRAFT_X86_SIMD
  const bool flash = kHasAvx512 && (d == 64 || d == 128);
#else
  const bool flash = false;
#endif
  // Transposed keys (per KV head d × ldk, zero beyond the written columns) for the blocked scores, and the head
  // mask as a score bias.
  const int total = used + N;
  const int ldk = (total + kKeys - 1) / kKeys * kKeys;
  std::vector<float> kt(flash ? static_cast<size_t>(Hkv) * d * ldk : 0);
  // An f16 cache is read through f32 copies of this layer's rows ((Hkv, ldk, d)): the values always, the keys
  // where the generic path reads them row-major (the flash path reads the transposed copy above).
  const bool f16 = c.kv_dtype == DRAFT_DTYPE_F16, wh = c.weight_dtype == DRAFT_DTYPE_F16;
  std::vector<float> kf(f16 && !flash ? static_cast<size_t>(Hkv) * ldk * d : 0), vf(f16 ? static_cast<size_t>(Hkv) * ldk * d : 0);
  float* const keys32 = static_cast<float*>(call.keys);
  float* const values32 = static_cast<float*>(call.values);
  std::vector<float> bias(call.head_mask ? static_cast<size_t>(Hkv) * ldk : 0, 0.0f);
  if (call.head_mask)
    for (int g = 0; g < Hkv; ++g)
      for (int j = 0; j < used; ++j)
        if (!call.head_mask[static_cast<size_t>(g) * cap + j]) bias[static_cast<size_t>(g) * ldk + j] = kNegInf;
  std::vector<float> xn(static_cast<size_t>(kTokens) * D), q(static_cast<size_t>(kTokens) * qd), k(static_cast<size_t>(kTokens) * kd),
      v(static_cast<size_t>(kTokens) * kd), att(static_cast<size_t>(kTokens) * qd), gate(static_cast<size_t>(kTokens) * I),
      up(static_cast<size_t>(kTokens) * I);
  const int item_rows = flash ? kItemRows : kTileRows;
  const size_t per_thread = static_cast<size_t>(item_rows) * d * 2 + kTileRows * kKeys + item_rows * 3;
  std::vector<float> scratch(static_cast<size_t>(T) * per_thread);
  std::atomic<int> next_item{0};
  const int window0 = N - call.query_rows;

  dec.pool.run([&](int t) {
    int r0, r1;
    float* mine = &scratch[static_cast<size_t>(t) * per_thread];
    // Keys already cached, transposed once for the whole layer (and an f16 cache's rows widened).
    if (flash || f16) {
      std::vector<float> row(d);
      for (int item = t; item < Hkv * used; item += T) {
        const int g = item / used, j = item % used;
        const size_t at = (static_cast<size_t>(g) * cap + j) * d, to = (static_cast<size_t>(g) * ldk + j) * d;
        const float* src = keys32 + at;
        if (f16) {
          float* widened = flash ? row.data() : &kf[to];
          load_kv(call.keys, at, widened, d, true);
          load_kv(call.values, at, &vf[to], d, true);
          src = widened;
        }
        if (flash) {
          float* dst = &kt[static_cast<size_t>(g) * d * ldk + j];
          for (int i = 0; i < d; ++i) dst[static_cast<size_t>(i) * ldk] = src[i];
        }
      }
    }
    for (int c0 = 0; c0 < N; c0 += kTokens) {
      const int n = std::min(kTokens, N - c0);
      float* x = call.hidden + static_cast<size_t>(c0) * D;
      for (int i = t; i < n; i += T) rms_norm(x + static_cast<size_t>(i) * D, L.input_norm, &xn[static_cast<size_t>(i) * D], D, c.rms_norm_eps);
      if (t == 0) next_item.store(0);
      dec.pool.barrier();
      share(qd, T, t, &r0, &r1);
      gemv_rows(L.q, wh, D, r0, r1, xn.data(), n, D, q.data(), qd, false);
      share(kd, T, t, &r0, &r1);
      gemv_rows(L.k, wh, D, r0, r1, xn.data(), n, D, k.data(), kd, false);
      gemv_rows(L.v, wh, D, r0, r1, xn.data(), n, D, v.data(), kd, false);
      dec.pool.barrier();
      // Biases and RoPE; new K/V to their cache columns (and the transposed keys); window queries out.
      for (int item = t; item < n * (H + Hkv); item += T) {
        const int i = item / (H + Hkv), h = item % (H + Hkv);
        const int tok = c0 + i, col = used + tok;
        const float* cs = call.cos + static_cast<size_t>(tok) * d;
        const float* sn = call.sin + static_cast<size_t>(tok) * d;
        if (h < H) {
          float* qh = &q[static_cast<size_t>(i) * qd + static_cast<size_t>(h) * d];
          if (L.q_bias) for (int e = 0; e < d; ++e) qh[e] += L.q_bias[h * d + e];
          rope(qh, cs, sn, d);
          if (call.queries && tok >= window0)
            std::memcpy(call.queries + (static_cast<size_t>(h) * call.query_rows + (tok - window0)) * d, qh, sizeof(float) * d);
        } else {
          const int g = h - H;
          float* kh = &k[static_cast<size_t>(i) * kd + static_cast<size_t>(g) * d];
          float* vh = &v[static_cast<size_t>(i) * kd + static_cast<size_t>(g) * d];
          if (L.k_bias) for (int e = 0; e < d; ++e) kh[e] += L.k_bias[g * d + e];
          if (L.v_bias) for (int e = 0; e < d; ++e) vh[e] += L.v_bias[g * d + e];
          rope(kh, cs, sn, d);
          // This layer's attention reads what the cache holds: f16-rounded rows for an f16 cache.
          round_kv(kh, d, f16);
          round_kv(vh, d, f16);
          const size_t at = (static_cast<size_t>(g) * cap + col) * d;
          store_kv(call.keys, at, kh, d, f16);
          store_kv(call.values, at, vh, d, f16);
          if (f16) {
            const size_t to = (static_cast<size_t>(g) * ldk + col) * d;
            if (!flash) std::memcpy(&kf[to], kh, sizeof(float) * d);
            std::memcpy(&vf[to], vh, sizeof(float) * d);
          }
          if (flash)
            for (int e = 0; e < d; ++e) kt[(static_cast<size_t>(g) * d + e) * ldk + col] = kh[e];
        }
      }
      dec.pool.barrier();
      // Attention: items of up to item_rows query rows of one KV head, taken from a shared counter.
      const int rows = n * G;
      const int per_g = (rows + item_rows - 1) / item_rows;
      for (int item = next_item.fetch_add(1); item < Hkv * per_g; item = next_item.fetch_add(1)) {
        const int g = item / per_g, ra = (item % per_g) * item_rows, rb = std::min(rows, ra + item_rows);
        float* qs = mine;
        float* O = qs + static_cast<size_t>(item_rows) * d;
        float* P = O + static_cast<size_t>(item_rows) * d;
        float* m = P + kTileRows * kKeys;
        float* lsum = m + item_rows;
        int* lim = reinterpret_cast<int*>(lsum + item_rows);
        for (int r = ra; r < rb; ++r) {
          const int i = r / G, e = r % G;
          const float* src = &q[static_cast<size_t>(i) * qd + static_cast<size_t>(g * G + e) * d];
          for (int z = 0; z < d; ++z) qs[static_cast<size_t>(r - ra) * d + z] = src[z] * scale;
          lim[r - ra] = used + c0 + i + 1;
        }
        const float* K = f16 ? (flash ? nullptr : &kf[static_cast<size_t>(g) * ldk * d]) : keys32 + static_cast<size_t>(g) * cap * d;
        const float* Vg = f16 ? &vf[static_cast<size_t>(g) * ldk * d] : values32 + static_cast<size_t>(g) * cap * d;
        const float* bg = call.head_mask ? &bias[static_cast<size_t>(g) * ldk] : nullptr;
        const int count = rb - ra;
        if (!flash) {
          attend_rows_generic(qs, ra, rb, d, K, Vg, bg, lim, O);
        } else {
#ifdef DRAFT_X86_SIMD
          // Rows past `count` in the last tile repeat the last row (computed, never written out).
          for (int r = count; r < (count + kTileRows - 1) / kTileRows * kTileRows; ++r) {
            std::memcpy(qs + static_cast<size_t>(r) * d, qs + static_cast<size_t>(count - 1) * d, sizeof(float) * d);
            lim[r] = lim[count - 1];
          }
          std::fill(O, O + static_cast<size_t>(item_rows) * d, 0.0f);
          std::fill(m, m + item_rows, kNegInf);
          std::fill(lsum, lsum + item_rows, 0.0f);
          const float* Ktg = &kt[static_cast<size_t>(g) * d * ldk];
          for (int j0 = 0; j0 < lim[count - 1]; j0 += kKeys) {
            for (int r0t = 0; r0t < count; r0t += kTileRows) {
              const int tile = std::min(kTileRows, count - r0t);
              const int last = lim[r0t + tile - 1];
              if (last <= j0) continue;
              const int nb = std::min(kKeys, last - j0);
              const float* qt = qs + static_cast<size_t>(r0t) * d;
              float* Ot = O + static_cast<size_t>(r0t) * d;
              if (d == 64)
                flash_tile<4>(qt, tile, Ktg, ldk, Vg, bg, j0, nb, lim + r0t, m + r0t, lsum + r0t, Ot, P);
              else
                flash_tile<8>(qt, tile, Ktg, ldk, Vg, bg, j0, nb, lim + r0t, m + r0t, lsum + r0t, Ot, P);
            }
          }
          for (int r = 0; r < count; ++r) {
            const float inv = lsum[r] > 0 ? 1.0f / lsum[r] : 0.0f;
            for (int z = 0; z < d; ++z) O[static_cast<size_t>(r) * d + z] *= inv;
          }
#endif
        }
        for (int r = ra; r < rb; ++r) {
          const int i = r / G, e = r % G;
          std::memcpy(&att[static_cast<size_t>(i) * qd + static_cast<size_t>(g * G + e) * d], O + static_cast<size_t>(r - ra) * d, sizeof(float) * d);
        }
      }
      dec.pool.barrier();
      share(D, T, t, &r0, &r1);
      gemv_rows(L.o, wh, qd, r0, r1, att.data(), n, qd, x, D, true);
      dec.pool.barrier();
      for (int i = t; i < n; i += T) rms_norm(x + static_cast<size_t>(i) * D, L.post_norm, &xn[static_cast<size_t>(i) * D], D, c.rms_norm_eps);
      dec.pool.barrier();
      share(I, T, t, &r0, &r1);
      gemv_rows(L.gate, wh, D, r0, r1, xn.data(), n, D, gate.data(), I, false);
      gemv_rows(L.up, wh, D, r0, r1, xn.data(), n, D, up.data(), I, false);
      for (int i = 0; i < n; ++i) {
        float* gi = &gate[static_cast<size_t>(i) * I];
        const float* ui = &up[static_cast<size_t>(i) * I];
        silu_mul(gi + r0, ui + r0, r1 - r0);
      }
      dec.pool.barrier();
      share(D, T, t, &r0, &r1);
      gemv_rows(L.down, wh, I, r0, r1, gate.data(), n, I, x, D, true);
      dec.pool.barrier();
    }
  });
}

void prefill_head(draft_decoder& dec, const float* hidden, int count, float* logits) {
  const draft_decoder_config& c = dec.cfg;
  const int D = c.hidden_size, T = dec.pool.threads();
  const bool wh = c.weight_dtype == DRAFT_DTYPE_F16;
  std::vector<float> xn(static_cast<size_t>(count) * D);
  dec.pool.run([&](int t) {
    for (int i = t; i < count; i += T) rms_norm(hidden + static_cast<size_t>(i) * D, dec.w.final_norm, &xn[static_cast<size_t>(i) * D], D, c.rms_norm_eps);
    dec.pool.barrier();
    int r0, r1;
    share(c.vocab_size, T, t, &r0, &r1);
    gemv_rows(dec.w.lm_head, wh, D, r0, r1, xn.data(), count, D, logits, c.vocab_size, false);
  });
}

}  // namespace dec
}  // namespace draft

extern "C" {

draft_status draft_cpu_decoder_embed(draft_decoder* decoder, const int32_t* tokens, int32_t count, float* hidden) {
  if (!decoder || !tokens || !hidden || count <= 0) return DRAFT_ERR_INVALID_ARGUMENT;
  const int D = decoder->cfg.hidden_size;
  for (int32_t t = 0; t < count; ++t)
    if (tokens[t] < 0 || tokens[t] >= decoder->cfg.vocab_size) return DRAFT_ERR_INVALID_ARGUMENT;
  for (int32_t t = 0; t < count; ++t)
    draft::dec::embed_row(*decoder, tokens[t], hidden + static_cast<size_t>(t) * D);
  return DRAFT_OK;
}

draft_status draft_cpu_decoder_layer(draft_decoder* decoder, const draft_decoder_layer_call* call) {
  if (!decoder || !call) return DRAFT_ERR_INVALID_ARGUMENT;
  const draft_decoder_layer_call& c = *call;
  if (c.layer < 0 || c.layer >= decoder->cfg.num_layers || !c.hidden || c.count <= 0 || !c.cos || !c.sin || !c.keys || !c.values || c.used < 0 ||
      c.capacity <= 0 || static_cast<int64_t>(c.used) + c.count > c.capacity || c.query_rows < 0 || c.query_rows > c.count ||
      (c.query_rows > 0 && !c.queries))
    return DRAFT_ERR_INVALID_ARGUMENT;
  return draft::guarded([&] {
    draft::dec::prefill_layer(*decoder, c);
    return DRAFT_OK;
  });
}

draft_status draft_cpu_decoder_head(draft_decoder* decoder, const float* hidden, int32_t count, float* logits) {
  if (!decoder || !hidden || !logits || count <= 0) return DRAFT_ERR_INVALID_ARGUMENT;
  return draft::guarded([&] {
    draft::dec::prefill_head(*decoder, hidden, count, logits);
    return DRAFT_OK;
  });
}

}  // extern "C"
