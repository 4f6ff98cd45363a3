// Standalone kernel benchmark: SpecKV-shaped scoring (Hq 14, Hkv 2, d 64, w 97) + max-pool 7 + top-k +
// gather at several key lengths, CPU (and CUDA when present).
// Usage: bench_kernels [threads] [keyLength...]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "draft_kernels.h"

static double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 0;
  std::vector<int> lengths;
  for (int i = 2; i < argc; ++i) lengths.push_back(std::atoi(argv[i]));
  if (lengths.empty()) lengths = {4096, 16384, 65536};
  const int hq = 14, hkv = 2, d = 64, w = 97, budget = 1024;
  int32_t devices = 0;
  draft_cuda_device_count(&devices);
  std::printf("%8s %12s %12s %12s %12s %12s\n", "keys", "score ms", "pool ms", "topk ms", "gather ms", "cuda score ms");
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1, 1);
  for (int n : lengths) {
    std::vector<float> q(static_cast<size_t>(hq) * w * d), k(static_cast<size_t>(hkv) * n * d), s(static_cast<size_t>(hkv) * n),
        p(s.size()), g(static_cast<size_t>(hkv) * budget * d);
    for (auto& x : q) x = u(rng);
    for (auto& x : k) x = u(rng);
    std::vector<int32_t> idx(static_cast<size_t>(hkv) * budget);
    draft_window_scores_args a{};
    a.queries = q.data(); a.keys = k.data(); a.key_dtype = DRAFT_DTYPE_F32; a.num_heads = hq; a.num_kv_heads = hkv;
    a.head_dim = d; a.query_count = w; a.key_count = n; a.causal_tail = 1; a.op = DRAFT_REDUCE_MAX;
    a.num_threads = threads; a.out = s.data();
    double t0 = now_ms();
    if (draft_cpu_window_scores(&a) != DRAFT_OK) return 1;
    double t1 = now_ms();
    draft_cpu_pool1d(s.data(), hkv, n, 7, DRAFT_POOL_MAX, DRAFT_PAD_SAME, p.data());
    double t2 = now_ms();
    draft_cpu_topk(p.data(), hkv, n, n, budget, DRAFT_TOPK_POSITION, threads, idx.data());
    double t3 = now_ms();
    draft_cpu_gather_rows(k.data(), DRAFT_DTYPE_F32, hkv, n, d, idx.data(), nullptr, budget, threads, g.data());
    double t4 = now_ms();
    double cuda_ms = -1;
    if (devices > 0) {
      draft_cuda_window_scores(&a);  // warm-up
      double c0 = now_ms();
      draft_cuda_window_scores(&a);
      cuda_ms = now_ms() - c0;
    }
    std::printf("%8d %12.2f %12.3f %12.3f %12.3f %12.2f\n", n, t1 - t0, t2 - t1, t3 - t2, t4 - t3, cuda_ms);
  }
  return 0;
}
