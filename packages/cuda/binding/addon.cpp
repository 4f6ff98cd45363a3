// N-API glue over kernels/include/draft_kernels.h. No maths here: argument unpacking, AsyncWorkers, and
// status codes turned into rejected promises ({ status, kernel }) that src/ maps to KernelError.
// Callers (src/native.ts) validate shapes first with typed errors; the checks here are a backstop.
#include <napi.h>

#include <cstring>
#include <functional>
#include <type_traits>
#include <string>
#include <vector>

#include "draft_kernels.h"
#include "heap_trim.hpp"
#include "decoder.hpp"

namespace {

Napi::Error status_error(Napi::Env env, const char* kernel, draft_status st) {
  Napi::Error e = Napi::Error::New(env, std::string(kernel) + ": " + draft_status_string(st));
  e.Set("status", Napi::Number::New(env, st));
  e.Set("kernel", Napi::String::New(env, kernel));
  return e;
}

template <class T>
Napi::TypedArrayOf<T> typed(const Napi::Value& v, const char* what) {
  if (!v.IsTypedArray()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a typed array");
  auto arr = v.As<Napi::TypedArray>();
  napi_typedarray_type want;
  if (std::is_same<T, float>::value)
    want = napi_float32_array;
  else if (std::is_same<T, int32_t>::value)
    want = napi_int32_array;
  else
    want = napi_uint16_array;
  if (arr.TypedArrayType() != want) throw Napi::TypeError::New(v.Env(), std::string(what) + " has the wrong element type");
  return v.As<Napi::TypedArrayOf<T>>();
}

int32_t int_prop(const Napi::Object& o, const char* key, int32_t fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
  return v.As<Napi::Number>().Int32Value();
}

bool use_cuda(const Napi::Object& o) {
  Napi::Value v = o.Get("device");
  return v.IsString() && v.As<Napi::String>().Utf8Value() == "cuda";
}

// Base worker: keeps the JS arrays alive, runs `compute` off the main thread, resolves with `result`.
class KernelWorker : public Napi::AsyncWorker {
 public:
  KernelWorker(Napi::Env env, const char* kernel)
      : Napi::AsyncWorker(env, kernel), deferred_(Napi::Promise::Deferred::New(env)), kernel_(kernel) {}
  void keep(const Napi::Value& v) { refs_.push_back(Napi::Persistent(v.As<Napi::Object>())); }
  void set_result(const Napi::Value& v) { result_ = Napi::Persistent(v.As<Napi::Object>()); }
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  virtual draft_status compute() = 0;
  void Execute() override { status_ = compute(); }
  void OnOK() override {
    Napi::HandleScope scope(Env());
    if (status_ == DRAFT_OK)
      deferred_.Resolve(result_.Value());
    else
      deferred_.Reject(status_error(Env(), kernel_, status_).Value());
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  const char* kernel_;
  std::vector<Napi::ObjectReference> refs_;
  Napi::ObjectReference result_;
  draft_status status_ = DRAFT_ERR_INTERNAL;
};

// windowScores(queries: Float32Array, keys: Float32Array | Uint16Array (f16), options) -> Promise<Float32Array>
class WindowScoresWorker : public KernelWorker {
 public:
  WindowScoresWorker(Napi::Env env, bool cuda) : KernelWorker(env, cuda ? "cuda_window_scores" : "cpu_window_scores"), cuda_(cuda) {}
  draft_window_scores_args args{};

 protected:
  draft_status compute() override { return cuda_ ? draft_cuda_window_scores(&args) : draft_cpu_window_scores(&args); }

 private:
  bool cuda_;
};

Napi::Value WindowScores(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto q = typed<float>(info[0], "queries");
  if (!info[1].IsTypedArray()) throw Napi::TypeError::New(env, "keys must be a Float32Array or Uint16Array");
  auto karr = info[1].As<Napi::TypedArray>();
  const bool f16 = karr.TypedArrayType() == napi_uint16_array;
  if (!f16 && karr.TypedArrayType() != napi_float32_array) throw Napi::TypeError::New(env, "keys must be a Float32Array or Uint16Array");
  Napi::Object o = info[2].As<Napi::Object>();
  auto* w = new WindowScoresWorker(env, use_cuda(o));
  auto& a = w->args;
  a.num_heads = int_prop(o, "numHeads", 0);
  a.num_kv_heads = int_prop(o, "numKvHeads", 0);
  a.head_dim = int_prop(o, "headDim", 0);
  a.query_count = int_prop(o, "queryCount", 0);
  a.key_count = int_prop(o, "keyCount", 0);
  a.causal_tail = int_prop(o, "causalTail", 1);
  a.op = static_cast<draft_reduce_op>(int_prop(o, "op", 0));
  a.chunk_size = int_prop(o, "chunkSize", 0);
  a.num_threads = int_prop(o, "numThreads", 0);
  Napi::Value scale = o.Get("scale");
  a.scale = scale.IsNumber() ? scale.As<Napi::Number>().FloatValue() : 0.0f;
  const size_t qn = static_cast<size_t>(a.num_heads) * a.query_count * a.head_dim;
  const size_t kn = static_cast<size_t>(a.num_kv_heads) * a.key_count * a.head_dim;
  if (q.ElementLength() != qn || karr.ElementLength() != kn) {
    delete w;
    throw Napi::RangeError::New(env, "queries/keys length does not match the shape");
  }
  a.queries = q.Data();
  a.keys = static_cast<const unsigned char*>(karr.ArrayBuffer().Data()) + karr.ByteOffset();
  a.key_dtype = f16 ? DRAFT_DTYPE_F16 : DRAFT_DTYPE_F32;
  w->keep(q);
  w->keep(karr);
  Napi::Value weights = o.Get("queryWeights");
  if (!weights.IsUndefined() && !weights.IsNull()) {
    auto wt = typed<float>(weights, "queryWeights");
    if (wt.ElementLength() != static_cast<size_t>(a.query_count)) {
      delete w;
      throw Napi::RangeError::New(env, "queryWeights length must equal queryCount");
    }
    a.query_weights = wt.Data();
    w->keep(wt);
  }
  auto out = Napi::Float32Array::New(env, static_cast<size_t>(a.num_kv_heads) * a.key_count);
  a.out = out.Data();
  w->set_result(out);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

class FnWorker : public KernelWorker {
 public:
  FnWorker(Napi::Env env, const char* kernel, std::function<draft_status()> fn) : KernelWorker(env, kernel), fn_(std::move(fn)) {}

 protected:
  draft_status compute() override { return fn_(); }

 private:
  std::function<draft_status()> fn_;
};

// pool1d(scores: Float32Array, { rows, length, kernel, type: 0|1, padding: 0|1, device }) -> Promise<Float32Array>
Napi::Value Pool1d(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto s = typed<float>(info[0], "scores");
  Napi::Object o = info[1].As<Napi::Object>();
  const int32_t rows = int_prop(o, "rows", 1), length = int_prop(o, "length", 0), kernel = int_prop(o, "kernel", 1);
  const auto type = static_cast<draft_pool_type>(int_prop(o, "type", 0));
  const auto padding = static_cast<draft_pool_padding>(int_prop(o, "padding", 0));
  if (s.ElementLength() != static_cast<size_t>(rows) * length) throw Napi::RangeError::New(env, "scores length must be rows·length");
  auto out = Napi::Float32Array::New(env, s.ElementLength());
  const float* sp = s.Data();
  float* op = out.Data();
  const bool cuda = use_cuda(o);
  auto* w = new FnWorker(env, cuda ? "cuda_pool1d" : "cpu_pool1d", [=]() {
    return cuda ? draft_cuda_pool1d(sp, rows, length, kernel, type, padding, op) : draft_cpu_pool1d(sp, rows, length, kernel, type, padding, op);
  });
  w->keep(s);
  w->set_result(out);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

// topk(scores: Float32Array, { rows, length, k, order: 0|1, numThreads, device }) -> Promise<Int32Array (rows, min(k, length))>
Napi::Value TopK(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto s = typed<float>(info[0], "scores");
  Napi::Object o = info[1].As<Napi::Object>();
  const int32_t rows = int_prop(o, "rows", 1), length = int_prop(o, "length", 0), k = int_prop(o, "k", 0);
  const auto order = static_cast<draft_topk_order>(int_prop(o, "order", 0));
  const int32_t threads = int_prop(o, "numThreads", 0);
  if (rows < 0 || length < 0 || k < 0 || s.ElementLength() != static_cast<size_t>(rows) * length)
    throw Napi::RangeError::New(env, "scores length must be rows·length");
  const int32_t take = k < length ? k : length;
  auto out = Napi::Int32Array::New(env, static_cast<size_t>(rows) * take);
  const float* sp = s.Data();
  int32_t* op = out.Data();
  const bool cuda = use_cuda(o);
  auto* w = new FnWorker(env, cuda ? "cuda_topk" : "cpu_topk", [=]() {
    return cuda ? draft_cuda_topk(sp, rows, length, length, k, order, op) : draft_cpu_topk(sp, rows, length, length, k, order, threads, op);
  });
  w->keep(s);
  w->set_result(out);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

// gatherRows(tensor: Float32Array | Uint16Array, { numKvHeads, length, rowDim, numThreads, device },
//            indices: Int32Array, counts: Int32Array) -> Promise<same type as tensor>
Napi::Value GatherRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray()) throw Napi::TypeError::New(env, "tensor must be a Float32Array or Uint16Array");
  auto t = info[0].As<Napi::TypedArray>();
  const bool f16 = t.TypedArrayType() == napi_uint16_array;
  if (!f16 && t.TypedArrayType() != napi_float32_array) throw Napi::TypeError::New(env, "tensor must be a Float32Array or Uint16Array");
  Napi::Object o = info[1].As<Napi::Object>();
  auto idx = typed<int32_t>(info[2], "indices");
  auto counts = typed<int32_t>(info[3], "counts");
  const int32_t hkv = int_prop(o, "numKvHeads", 0), length = int_prop(o, "length", 0), dim = int_prop(o, "rowDim", 0);
  const int32_t threads = int_prop(o, "numThreads", 0);
  if (hkv < 0 || length < 0 || dim < 1 || t.ElementLength() != static_cast<size_t>(hkv) * length * dim || counts.ElementLength() != static_cast<size_t>(hkv))
    throw Napi::RangeError::New(env, "tensor/counts length does not match the shape");
  int64_t total = 0;
  for (size_t h = 0; h < counts.ElementLength(); ++h) total += counts[h] < 0 ? 0 : counts[h];
  if (static_cast<size_t>(total) != idx.ElementLength()) throw Napi::RangeError::New(env, "indices length must be the sum of counts");
  const size_t out_n = static_cast<size_t>(total) * dim;
  Napi::TypedArray out = f16 ? static_cast<Napi::TypedArray>(Napi::Uint16Array::New(env, out_n))
                             : static_cast<Napi::TypedArray>(Napi::Float32Array::New(env, out_n));
  const void* tp = static_cast<const unsigned char*>(t.ArrayBuffer().Data()) + t.ByteOffset();
  void* op = static_cast<unsigned char*>(out.ArrayBuffer().Data()) + out.ByteOffset();
  const int32_t* ip = idx.Data();
  const int32_t* cp = counts.Data();
  const draft_dtype dt = f16 ? DRAFT_DTYPE_F16 : DRAFT_DTYPE_F32;
  const bool cuda = use_cuda(o);
  auto* w = new FnWorker(env, cuda ? "cuda_gather_rows" : "cpu_gather_rows", [=]() {
    return cuda ? draft_cuda_gather_rows(tp, dt, hkv, length, dim, ip, cp, 0, op)
                : draft_cpu_gather_rows(tp, dt, hkv, length, dim, ip, cp, 0, threads, op);
  });
  w->keep(t);
  w->keep(idx);
  w->keep(counts);
  w->set_result(out);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

// specpcAggregate(scores: Float32Array, { numLayers, rowsPerLayer, keyCount, outLength, device }, out?: Float32Array)
// -> Float32Array (sync: one pass over the scores). With `out` given, it joins the max (streaming layers).
Napi::Value SpecPCAggregate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto s = typed<float>(info[0], "scores");
  Napi::Object o = info[1].As<Napi::Object>();
  const int32_t layers = int_prop(o, "numLayers", 1), rows = int_prop(o, "rowsPerLayer", 1), n = int_prop(o, "keyCount", 0);
  const int32_t out_len = int_prop(o, "outLength", n);
  if (layers < 0 || rows < 0 || n < 0 || s.ElementLength() != static_cast<size_t>(layers) * rows * n)
    throw Napi::RangeError::New(env, "scores length must be numLayers·rowsPerLayer·keyCount");
  const bool accumulate = info.Length() > 2 && info[2].IsTypedArray();
  Napi::Float32Array out = accumulate ? typed<float>(info[2], "out") : Napi::Float32Array::New(env, out_len < 0 ? 0 : out_len);
  if (out.ElementLength() != static_cast<size_t>(out_len)) throw Napi::RangeError::New(env, "out length must be outLength");
  const draft_status st = use_cuda(o) ? draft_cuda_specpc_aggregate(s.Data(), layers, rows, n, out_len, accumulate, out.Data())
                                      : draft_cpu_specpc_aggregate(s.Data(), layers, rows, n, out_len, accumulate, out.Data());
  if (st != DRAFT_OK) throw status_error(env, "specpc_aggregate", st);
  return out;
}

// raggedAttention(queries: Float32Array, keys: Float32Array | Uint16Array, values: same type, offsets: Int32Array,
//                 lengths: Int32Array, { numHeads, numKvHeads, headDim, queryCount, causal, scale, chunkSize,
//                 numThreads, device }) -> Promise<Float32Array (numHeads, queryCount, headDim)>
Napi::Value RaggedAttention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto q = typed<float>(info[0], "queries");
  if (!info[1].IsTypedArray() || !info[2].IsTypedArray()) throw Napi::TypeError::New(env, "keys/values must be Float32Array or Uint16Array");
  auto karr = info[1].As<Napi::TypedArray>();
  auto varr = info[2].As<Napi::TypedArray>();
  const bool f16 = karr.TypedArrayType() == napi_uint16_array;
  if ((!f16 && karr.TypedArrayType() != napi_float32_array) || varr.TypedArrayType() != karr.TypedArrayType())
    throw Napi::TypeError::New(env, "keys and values must both be Float32Array or both Uint16Array");
  auto off = typed<int32_t>(info[3], "offsets");
  auto len = typed<int32_t>(info[4], "lengths");
  Napi::Object o = info[5].As<Napi::Object>();
  draft_ragged_attention_args a{};
  a.num_heads = int_prop(o, "numHeads", 0);
  a.num_kv_heads = int_prop(o, "numKvHeads", 0);
  a.head_dim = int_prop(o, "headDim", 0);
  a.query_count = int_prop(o, "queryCount", 1);
  a.causal = int_prop(o, "causal", 1);
  a.chunk_size = int_prop(o, "chunkSize", 0);
  a.num_threads = int_prop(o, "numThreads", 0);
  Napi::Value scale = o.Get("scale");
  a.scale = scale.IsNumber() ? scale.As<Napi::Number>().FloatValue() : 0.0f;
  if (a.num_heads < 1 || a.num_kv_heads < 1 || a.head_dim < 1 || a.query_count < 1) throw Napi::RangeError::New(env, "bad shape");
  const size_t qn = static_cast<size_t>(a.num_heads) * a.query_count * a.head_dim;
  if (q.ElementLength() != qn || karr.ElementLength() != varr.ElementLength() || karr.ElementLength() % a.head_dim != 0 ||
      off.ElementLength() != static_cast<size_t>(a.num_kv_heads) || len.ElementLength() != static_cast<size_t>(a.num_kv_heads))
    throw Napi::RangeError::New(env, "queries/keys/values/offsets/lengths length does not match the shape");
  a.queries = q.Data();
  a.keys = static_cast<const unsigned char*>(karr.ArrayBuffer().Data()) + karr.ByteOffset();
  a.values = static_cast<const unsigned char*>(varr.ArrayBuffer().Data()) + varr.ByteOffset();
  a.kv_dtype = f16 ? DRAFT_DTYPE_F16 : DRAFT_DTYPE_F32;
  a.kv_rows = static_cast<int64_t>(karr.ElementLength() / a.head_dim);
  a.offsets = off.Data();
  a.lengths = len.Data();
  auto out = Napi::Float32Array::New(env, qn);
  a.out = out.Data();
  const bool cuda = use_cuda(o);
  auto* w = new FnWorker(env, cuda ? "cuda_ragged_attention" : "cpu_ragged_attention",
                         [a, cuda]() { return cuda ? draft_cuda_ragged_attention(&a) : draft_cpu_ragged_attention(&a); });
  w->keep(q);
  w->keep(karr);
  w->keep(varr);
  w->keep(off);
  w->keep(len);
  w->set_result(out);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  int32_t devices = 0;
  const draft_status st = draft_cuda_device_count(&devices);
  o.Set("cudaBuilt", Napi::Boolean::New(env, draft_cuda_built() != 0));
  o.Set("cudaDevices", Napi::Number::New(env, st == DRAFT_OK ? devices : 0));
  o.Set("kernelsVersion", Napi::String::New(env, std::to_string(DRAFT_KERNELS_VERSION_MAJOR) + "." + std::to_string(DRAFT_KERNELS_VERSION_MINOR)));
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("windowScores", Napi::Function::New(env, WindowScores));
  exports.Set("pool1d", Napi::Function::New(env, Pool1d));
  exports.Set("topk", Napi::Function::New(env, TopK));
  exports.Set("gatherRows", Napi::Function::New(env, GatherRows));
  exports.Set("specpcAggregate", Napi::Function::New(env, SpecPCAggregate));
  exports.Set("raggedAttention", Napi::Function::New(env, RaggedAttention));
  exports.Set("trimHeap", Napi::Function::New(env, TrimHeap));
  exports.Set("NativeDecoder", NativeDecoderClass(env));
  exports.Set("mapFile", Napi::Function::New(env, MapFile));
  return exports;
}

}  // namespace

NODE_API_MODULE(draft_native, Init)
