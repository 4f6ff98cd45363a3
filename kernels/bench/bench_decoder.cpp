// Native decode step on a random perf-shaped model (hidden 512, 12 layers, 8 heads / 2 KV heads, d 64, MLP 1408,
// vocab 512: the bundled perf model's shape): milliseconds per step for B rows of `used` cached columns, and the
// batch's tokens/s over one row's. Random weights time the same as trained ones.
// Usage: bench_decoder [threads] [used] [B or B@used ...]   (B@used: that batch's rows hold `used` columns)
//        bench_decoder [threads] p<N>                        (prefill of N tokens, 512 at a time, all layers)
//        --f16-weights anywhere: the matrices as f16 bits (weight_dtype F16), half the bytes per step
//        --f16-kv anywhere: the caches as f16 bits (kv_dtype F16)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "draft_kernels.h"

static double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static std::vector<float> random_floats(std::mt19937& rng, size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

// Milliseconds of a native prefill of n tokens: 512-token chunks, each through every layer, then the last row's logits.
static bool bench_prefill(draft_decoder* dec, const draft_decoder_config& cfg, int n) {
  const int D = cfg.hidden_size, d = cfg.head_dim, kd = cfg.num_kv_heads * d, chunk = 512;
  std::vector<std::vector<float>> keys(cfg.num_layers, std::vector<float>(static_cast<size_t>(kd) * n)), values = keys;
  std::vector<float> cosv(static_cast<size_t>(chunk) * d, 1.0f), sinv(static_cast<size_t>(chunk) * d, 0.0f), hidden(static_cast<size_t>(chunk) * D),
      logits(cfg.vocab_size);
  std::vector<int32_t> tokens(chunk);
  for (int i = 0; i < chunk; ++i) tokens[i] = (i * 31) % cfg.vocab_size;
  std::vector<double> times;
  for (int round = 0; round < 3; ++round) {
    const double t0 = now_ms();
    for (int used = 0; used < n; used += chunk) {
      const int count = std::min(chunk, n - used);
      if (draft_cpu_decoder_embed(dec, tokens.data(), count, hidden.data()) != DRAFT_OK) return false;
      for (int l = 0; l < cfg.num_layers; ++l) {
        draft_decoder_layer_call call{};
        call.layer = l;
        call.hidden = hidden.data();
        call.count = count;
        call.cos = cosv.data();
        call.sin = sinv.data();
        call.keys = keys[l].data();
        call.values = values[l].data();
        call.capacity = n;
        call.used = used;
        if (draft_cpu_decoder_layer(dec, &call) != DRAFT_OK) return false;
      }
    }
    if (draft_cpu_decoder_head(dec, hidden.data(), 1, logits.data()) != DRAFT_OK) return false;
    times.push_back(now_ms() - t0);
  }
  std::sort(times.begin(), times.end());
  std::printf("prefill %d tokens: %.0f ms, %.0f tok/s (median of 3)\n", n, times[1], n * 1000.0 / times[1]);
  return true;
}

static uint16_t to_half(float f) {
  // Round to nearest even; the random weights are normal halves, so no subnormal or overflow cases.
  uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  const uint32_t sign = (x >> 16) & 0x8000u;
  if ((x & 0x7fffffffu) < 0x38800000u) return static_cast<uint16_t>(sign);  // below the normal range: 0
  uint32_t m = (x & 0x7fffffu) | 0x800000u;
  int e = static_cast<int>((x >> 23) & 0xff) - 127 + 15;
  uint32_t h = m >> 13, rest = m & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1))) ++h;
  if (h == 0x800u) h = 0x400u, ++e;
  return static_cast<uint16_t>(sign | (static_cast<uint32_t>(e) << 10) | (h & 0x3ffu));
}

// Removes `flag` from argv if present; returns whether it was.
static bool take_flag(int& argc, char** argv, const char* flag) {
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], flag) == 0) {
      for (int j = i; j + 1 < argc; ++j) argv[j] = argv[j + 1];
      --argc;
      return true;
    }
  return false;
}

int main(int argc, char** argv) {
  const bool f16_weights = take_flag(argc, argv, "--f16-weights");
  const bool f16_kv = take_flag(argc, argv, "--f16-kv");
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const int used = argc > 2 ? std::atoi(argv[2]) : 256;
  std::vector<int> batches, useds;
  const int prefill = argc > 2 && argv[2][0] == 'p' ? std::atoi(argv[2] + 1) : 0;
  for (int i = 3; i < argc; ++i) {
    batches.push_back(std::atoi(argv[i]));
    const char* at = std::strchr(argv[i], '@');
    useds.push_back(at ? std::atoi(at + 1) : used);
  }
  if (batches.empty()) batches = {1, 4, 8}, useds = {used, used, used};
  draft_decoder_config cfg{};
  cfg.hidden_size = 512;
  cfg.num_layers = 12;
  cfg.num_heads = 8;
  cfg.num_kv_heads = 2;
  cfg.head_dim = 64;
  cfg.intermediate_size = 1408;
  cfg.vocab_size = 512;
  cfg.rms_norm_eps = 1e-6f;
  cfg.num_threads = threads;
  cfg.weight_dtype = f16_weights ? DRAFT_DTYPE_F16 : DRAFT_DTYPE_F32;
  cfg.kv_dtype = f16_kv ? DRAFT_DTYPE_F16 : DRAFT_DTYPE_F32;
  const int D = cfg.hidden_size, L = cfg.num_layers, d = cfg.head_dim, I = cfg.intermediate_size, V = cfg.vocab_size;
  const int qd = cfg.num_heads * d, kd = cfg.num_kv_heads * d;
  std::mt19937 rng(7);
  const float ws = 0.05f;
  std::vector<std::vector<float>> store;
  auto make = [&](size_t n, float lo, float hi) {
    store.push_back(random_floats(rng, n, lo, hi));
    return store.back().data();
  };
  store.reserve(16 * L + 8);
  std::vector<std::vector<uint16_t>> halves;
  halves.reserve(16 * L + 8);
  // A matrix in the decoder's weight type.
  auto matrix = [&](size_t n, float lo, float hi) -> const void* {
    const float* f = make(n, lo, hi);
    if (!f16_weights) return f;
    halves.emplace_back(n);
    for (size_t i = 0; i < n; ++i) halves.back()[i] = to_half(f[i]);
    return halves.back().data();
  };
  std::vector<draft_decoder_layer> layers(L);
  for (int l = 0; l < L; ++l) {
    draft_decoder_layer& y = layers[l];
    y.input_norm = make(D, 0.5f, 1.5f);
    y.post_norm = make(D, 0.5f, 1.5f);
    y.q = matrix(static_cast<size_t>(qd) * D, -ws, ws);
    y.k = matrix(static_cast<size_t>(kd) * D, -ws, ws);
    y.v = matrix(static_cast<size_t>(kd) * D, -ws, ws);
    y.o = matrix(static_cast<size_t>(D) * qd, -ws, ws);
    y.gate = matrix(static_cast<size_t>(I) * D, -ws, ws);
    y.up = matrix(static_cast<size_t>(I) * D, -ws, ws);
    y.down = matrix(static_cast<size_t>(D) * I, -ws, ws);
  }
  draft_decoder_weights w{};
  w.embed = matrix(static_cast<size_t>(V) * D, -1, 1);
  w.layers = layers.data();
  w.final_norm = make(D, 0.5f, 1.5f);
  w.lm_head = matrix(static_cast<size_t>(V) * D, -ws, ws);
  draft_decoder* dec = nullptr;
  if (draft_cpu_decoder_create(&cfg, &w, &dec) != DRAFT_OK) return 1;

  if (prefill > 0) return bench_prefill(dec, cfg, prefill) ? 0 : 1;
  const int maxB = *std::max_element(batches.begin(), batches.end());
  const int capacity = *std::max_element(useds.begin(), useds.end()) + 64;
  std::vector<float> cosv(d, 1.0f), sinv(d, 0.0f);
  // Per row: one cache per layer for keys and values, and logits.
  std::vector<std::vector<float>> caches;
  std::vector<std::vector<uint16_t>> half_caches;
  caches.reserve(2 * maxB * L);
  half_caches.reserve(2 * maxB * L);
  std::vector<std::vector<void*>> keys(maxB), values(maxB);
  std::vector<std::vector<float>> logits(maxB, std::vector<float>(V));
  // A cache array in the decoder's KV type.
  auto cache = [&]() -> void* {
    caches.push_back(random_floats(rng, static_cast<size_t>(kd) * capacity, -1, 1));
    if (!f16_kv) return caches.back().data();
    half_caches.emplace_back(caches.back().size());
    for (size_t i = 0; i < caches.back().size(); ++i) half_caches.back()[i] = to_half(caches.back()[i]);
    caches.back() = {};
    return half_caches.back().data();
  };
  for (int b = 0; b < maxB; ++b)
    for (int l = 0; l < L; ++l) {
      keys[b].push_back(cache());
      values[b].push_back(cache());
    }
  std::printf("threads %d, %s weights %.0f MiB, %s KV\n", threads, f16_weights ? "f16" : "f32",
              (static_cast<double>(L) * (2 * qd * D + 2 * kd * D + 3 * I * D) + 2.0 * V * D) * (f16_weights ? 2 : 4) / (1 << 20), f16_kv ? "f16" : "f32");
  std::printf("%4s %8s %12s %12s %14s\n", "B", "columns", "ms / step", "tok/s", "÷ first row");
  // Rows per batch size, then rounds that alternate the sizes (this machine's speed drifts; a median over
  // interleaved rounds compares them fairly).
  std::vector<std::vector<draft_decoder_row>> all;
  for (size_t i = 0; i < batches.size(); ++i) {
    const int B = batches[i];
    std::vector<draft_decoder_row> rows(B);
    for (int b = 0; b < B; ++b) {
      draft_decoder_row& r = rows[b];
      r = draft_decoder_row{};
      r.token = (b * 37) % V;
      r.cos = cosv.data();
      r.sin = sinv.data();
      r.keys = keys[b].data();
      r.values = values[b].data();
      r.capacity = capacity;
      r.used = useds[i];  // every step rewrites column `used`, so the length stays fixed
      r.logits = logits[b].data();
    }
    all.push_back(rows);
  }
  std::vector<std::vector<double>> times(batches.size());
  for (int round = 0; round < 12; ++round)
    for (size_t i = 0; i < batches.size(); ++i)
      for (int s = 0; s < 8; ++s) {
        const double t0 = now_ms();
        if (draft_cpu_decoder_step(dec, all[i].data(), batches[i]) != DRAFT_OK) return 1;
        if (round > 0) times[i].push_back(now_ms() - t0);
      }
  double one = 0;
  for (size_t i = 0; i < batches.size(); ++i) {
    std::sort(times[i].begin(), times[i].end());
    const int B = batches[i];
    const double ms = times[i][times[i].size() / 2], tps = B * 1000.0 / ms;
    if (i == 0) one = tps / B;
    std::printf("%4d %8d %12.2f %12.1f %13.2fx\n", B, useds[i], ms, tps, tps / one);
  }
  draft_cpu_decoder_destroy(dec);
  return 0;
}
