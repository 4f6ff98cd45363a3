// NativeDecoder: holds the weights' typed arrays (references, never copies) and a draft_decoder; step() runs
// synchronously on the calling thread (a runtime's worker) with the decoder's own pool. mapFile() maps a
// weights file read-only so the decoder reads the OS's cached pages instead of a copy in the JS heap.
#include "decoder.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "draft_kernels.h"

namespace {

Napi::Float32Array f32(const Napi::Value& v, const std::string& what, size_t length) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(v.Env(), what + " must be a Float32Array");
  auto a = v.As<Napi::Float32Array>();
  if (length > 0 && a.ElementLength() != length)
    throw Napi::RangeError::New(v.Env(), what + " has " + std::to_string(a.ElementLength()) + " elements; expected " + std::to_string(length));
  return a;
}

// A cache array in the decoder's element type: Float32Array (kv_dtype F32) or Uint16Array of half bits (F16).
struct KvView {
  void* data;
  size_t length;
};

// `option` names the config key that chose the type, for the error.
KvView typed_array(const Napi::Value& v, const std::string& what, draft_dtype dtype, const char* option) {
  const napi_typedarray_type want = dtype == DRAFT_DTYPE_F16 ? napi_uint16_array : napi_float32_array;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != want)
    throw Napi::TypeError::New(v.Env(), what + (dtype == DRAFT_DTYPE_F16 ? std::string(" must be a Uint16Array (float16 bits: ") + option + " 'float16')" : " must be a Float32Array"));
  auto a = v.As<Napi::TypedArray>();
  return {static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset(), a.ElementLength()};
}

KvView kv_array(const Napi::Value& v, const std::string& what, draft_dtype dtype) { return typed_array(v, what, dtype, "kvDtype"); }

// config[key]: undefined or 'float32' → F32, 'float16' → F16.
draft_dtype dtype_of(const Napi::Object& c, const char* key) {
  Napi::Value v = c.Get(key);
  if (v.IsUndefined() || (v.IsString() && v.As<Napi::String>().Utf8Value() == "float32")) return DRAFT_DTYPE_F32;
  if (v.IsString() && v.As<Napi::String>().Utf8Value() == "float16") return DRAFT_DTYPE_F16;
  throw Napi::TypeError::New(c.Env(), std::string(key) + " must be 'float32' or 'float16'");
}

int32_t positive(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
  return v.As<Napi::Number>().Int32Value();
}

class NativeDecoder : public Napi::ObjectWrap<NativeDecoder> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeDecoder",
                       {InstanceMethod("step", &NativeDecoder::Step), InstanceMethod("embed", &NativeDecoder::Embed), InstanceMethod("layer", &NativeDecoder::Layer),
                        InstanceMethod("head", &NativeDecoder::Head), InstanceMethod("close", &NativeDecoder::Close)});
  }

  NativeDecoder(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeDecoder>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject() || !info[1].IsObject()) throw Napi::TypeError::New(env, "NativeDecoder(config, weights)");
    Napi::Object c = info[0].As<Napi::Object>();
    cfg_.hidden_size = positive(c, "hiddenSize");
    cfg_.num_layers = positive(c, "numLayers");
    cfg_.num_heads = positive(c, "numHeads");
    cfg_.num_kv_heads = positive(c, "numKvHeads");
    cfg_.head_dim = positive(c, "headDim");
    cfg_.intermediate_size = positive(c, "intermediateSize");
    cfg_.vocab_size = positive(c, "vocabSize");
    Napi::Value eps = c.Get("rmsNormEps");
    if (!eps.IsNumber()) throw Napi::TypeError::New(env, "rmsNormEps must be a number");
    cfg_.rms_norm_eps = eps.As<Napi::Number>().FloatValue();
    Napi::Value threads = c.Get("threads");
    cfg_.num_threads = threads.IsNumber() ? threads.As<Napi::Number>().Int32Value() : 0;
    cfg_.kv_dtype = dtype_of(c, "kvDtype");
    cfg_.weight_dtype = dtype_of(c, "weightDtype");
    if (cfg_.hidden_size <= 0 || cfg_.num_layers <= 0 || cfg_.num_heads <= 0 || cfg_.num_kv_heads <= 0 || cfg_.head_dim <= 0 ||
        cfg_.intermediate_size <= 0 || cfg_.vocab_size <= 0)
      throw Napi::RangeError::New(env, "decoder sizes must be positive");
    const size_t D = cfg_.hidden_size, qd = static_cast<size_t>(cfg_.num_heads) * cfg_.head_dim,
                 kd = static_cast<size_t>(cfg_.num_kv_heads) * cfg_.head_dim, I = cfg_.intermediate_size, V = cfg_.vocab_size;
    Napi::Object w = info[1].As<Napi::Object>();
    auto keep = [&](const Napi::Value& v, const std::string& what, size_t length) -> const float* {
      auto a = f32(v, what, length);
      refs_.push_back(Napi::Persistent(a.As<Napi::Object>()));
      return a.Data();
    };
    // A matrix in the configured weight type: Float32Array, or Uint16Array of half bits (weightDtype 'float16').
    auto matrix = [&](const Napi::Value& v, const std::string& what, size_t length) -> const void* {
      if (cfg_.weight_dtype == DRAFT_DTYPE_F32) return keep(v, what, length);
      const KvView a = typed_array(v, what, DRAFT_DTYPE_F16, "weightDtype");
      if (a.length != length)
        throw Napi::RangeError::New(env, what + " has " + std::to_string(a.length) + " elements; expected " + std::to_string(length));
      refs_.push_back(Napi::Persistent(v.As<Napi::Object>()));
      return a.data;
    };
    auto optional = [&](Napi::Object o, const char* key, const std::string& what, size_t length) -> const float* {
      Napi::Value v = o.Get(key);
      return v.IsUndefined() || v.IsNull() ? nullptr : keep(v, what, length);
    };
    weights_.embed = matrix(w.Get("embed"), "embed", V * D);
    weights_.final_norm = keep(w.Get("finalNorm"), "finalNorm", D);
    weights_.lm_head = matrix(w.Get("lmHead"), "lmHead", V * D);
    Napi::Value lv = w.Get("layers");
    if (!lv.IsArray() || lv.As<Napi::Array>().Length() != static_cast<uint32_t>(cfg_.num_layers))
      throw Napi::TypeError::New(env, "weights.layers must be an array of numLayers entries");
    Napi::Array layers = lv.As<Napi::Array>();
    for (uint32_t l = 0; l < layers.Length(); ++l) {
      Napi::Value entry = layers.Get(l);
      if (!entry.IsObject()) throw Napi::TypeError::New(env, "weights.layers[" + std::to_string(l) + "] must be an object");
      Napi::Object o = entry.As<Napi::Object>();
      const std::string p = "layers[" + std::to_string(l) + "].";
      draft_decoder_layer L{};
      L.input_norm = keep(o.Get("inputNorm"), p + "inputNorm", D);
      L.post_norm = keep(o.Get("postNorm"), p + "postNorm", D);
      L.q = matrix(o.Get("q"), p + "q", qd * D);
      L.k = matrix(o.Get("k"), p + "k", kd * D);
      L.v = matrix(o.Get("v"), p + "v", kd * D);
      L.o = matrix(o.Get("o"), p + "o", D * qd);
      L.q_bias = optional(o, "qBias", p + "qBias", qd);
      L.k_bias = optional(o, "kBias", p + "kBias", kd);
      L.v_bias = optional(o, "vBias", p + "vBias", kd);
      L.gate = matrix(o.Get("gate"), p + "gate", I * D);
      L.up = matrix(o.Get("up"), p + "up", I * D);
      L.down = matrix(o.Get("down"), p + "down", D * I);
      layers_.push_back(L);
    }
    weights_.layers = layers_.data();
    const draft_status st = draft_cpu_decoder_create(&cfg_, &weights_, &decoder_);
    if (st != DRAFT_OK) throw Napi::Error::New(env, std::string("cpu_decoder_create: ") + draft_status_string(st));
  }

  ~NativeDecoder() override { release(); }

 private:
  void release() {
    if (decoder_) draft_cpu_decoder_destroy(decoder_);
    decoder_ = nullptr;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    release();
    refs_.clear();
    return info.Env().Undefined();
  }

  Napi::Value Step(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!decoder_) throw Napi::Error::New(env, "the decoder is closed");
    if (!info[0].IsArray()) throw Napi::TypeError::New(env, "step(rows): rows must be an array");
    Napi::Array list = info[0].As<Napi::Array>();
    const uint32_t B = list.Length();
    const size_t L = cfg_.num_layers, d = cfg_.head_dim, Hkv = cfg_.num_kv_heads;
    std::vector<draft_decoder_row> rows(B);
    std::vector<std::vector<void*>> keys(B), values(B);
    std::vector<std::vector<const uint8_t*>> heads(B);
    std::vector<std::vector<const int32_t*>> offsets(B), useds(B);
    for (uint32_t b = 0; b < B; ++b) {
      Napi::Value rv = list.Get(b);
      if (!rv.IsObject()) throw Napi::TypeError::New(env, "rows[" + std::to_string(b) + "] must be an object");
      Napi::Object r = rv.As<Napi::Object>();
      draft_decoder_row& R = rows[b];
      R.token = positive(r, "token");
      R.capacity = positive(r, "capacity");
      R.used = positive(r, "used");
      if (R.capacity <= 0 || R.used < 0 || R.used >= R.capacity) throw Napi::RangeError::New(env, "rows[" + std::to_string(b) + "]: need 0 <= used < capacity");
      R.cos = f32(r.Get("cos"), "cos", d).Data();
      R.sin = f32(r.Get("sin"), "sin", d).Data();
      R.logits = f32(r.Get("logits"), "logits", cfg_.vocab_size).Data();
      Napi::Value mask = r.Get("mask");
      if (mask.IsUndefined() || mask.IsNull()) {
        R.mask = nullptr;
      } else {
        if (!mask.IsTypedArray() || mask.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
          throw Napi::TypeError::New(env, "mask must be a Uint8Array");
        auto m = mask.As<Napi::Uint8Array>();
        if (m.ElementLength() < static_cast<size_t>(R.used)) throw Napi::RangeError::New(env, "mask is shorter than used");
        R.mask = m.Data();
      }
      Napi::Value hm = r.Get("headMasks");
      if (hm.IsUndefined() || hm.IsNull()) {
        R.head_masks = nullptr;
      } else {
        if (!hm.IsArray() || hm.As<Napi::Array>().Length() != L) throw Napi::TypeError::New(env, "headMasks must hold one Uint8Array per layer");
        Napi::Array arr = hm.As<Napi::Array>();
        for (uint32_t l = 0; l < L; ++l) {
          Napi::Value m = arr.Get(l);
          if (!m.IsTypedArray() || m.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
            throw Napi::TypeError::New(env, "headMasks[" + std::to_string(l) + "] must be a Uint8Array");
          auto u = m.As<Napi::Uint8Array>();
          if (u.ElementLength() < Hkv * static_cast<size_t>(R.capacity))
            throw Napi::RangeError::New(env, "headMasks[" + std::to_string(l) + "] is shorter than numKvHeads × capacity");
          heads[b].push_back(u.Data());
        }
        R.head_masks = heads[b].data();
      }
      const size_t cache = Hkv * static_cast<size_t>(R.capacity) * d;
      for (const char* which : {"keys", "values"}) {
        Napi::Value av = r.Get(which);
        if (!av.IsArray() || av.As<Napi::Array>().Length() != L) throw Napi::TypeError::New(env, std::string(which) + " must hold one array per layer");
        Napi::Array arr = av.As<Napi::Array>();
        auto& out = which[0] == 'k' ? keys[b] : values[b];
        for (uint32_t l = 0; l < L; ++l) {
          const KvView a = kv_array(arr.Get(l), std::string(which) + "[" + std::to_string(l) + "]", cfg_.kv_dtype);
          if (a.length < cache) throw Napi::RangeError::New(env, std::string(which) + "[" + std::to_string(l) + "] is shorter than numKvHeads × capacity × headDim");
          out.push_back(a.data);
        }
      }
      R.keys = keys[b].data();
      R.values = values[b].data();
      // Packed heads: per layer Int32Arrays of numKvHeads row offsets and counts, every head's rows (plus the new
      // one) inside that layer's keys and values.
      Napi::Value ho = r.Get("headOffsets");
      Napi::Value hu = r.Get("headUsed");
      const bool hasOffsets = !ho.IsUndefined() && !ho.IsNull(), hasUsed = !hu.IsUndefined() && !hu.IsNull();
      if (hasOffsets != hasUsed) throw Napi::TypeError::New(env, "headOffsets and headUsed go together");
      if (hasOffsets) {
        if (!ho.IsArray() || ho.As<Napi::Array>().Length() != L || !hu.IsArray() || hu.As<Napi::Array>().Length() != L)
          throw Napi::TypeError::New(env, "headOffsets and headUsed must hold one Int32Array per layer");
        for (uint32_t l = 0; l < L; ++l) {
          Napi::Value ov = ho.As<Napi::Array>().Get(l), uv = hu.As<Napi::Array>().Get(l);
          for (const Napi::Value& v : {ov, uv})
            if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array || v.As<Napi::Int32Array>().ElementLength() != Hkv)
              throw Napi::TypeError::New(env, "headOffsets[" + std::to_string(l) + "] / headUsed[" + std::to_string(l) + "] must be Int32Arrays of numKvHeads");
          auto o = ov.As<Napi::Int32Array>();
          auto u = uv.As<Napi::Int32Array>();
          const auto elements = [&](const char* which) { return r.Get(which).As<Napi::Array>().Get(l).As<Napi::TypedArray>().ElementLength(); };
          const size_t rows = std::min(elements("keys"), elements("values")) / d;
          for (size_t g = 0; g < Hkv; ++g)
            if (o[g] < 0 || u[g] < 0 || static_cast<size_t>(o[g]) + u[g] + 1 > rows)
              throw Napi::RangeError::New(env, "layer " + std::to_string(l) + " head " + std::to_string(g) + ": rows offset + used + 1 exceed keys/values");
          offsets[b].push_back(o.Data());
          useds[b].push_back(u.Data());
        }
        R.head_offsets = offsets[b].data();
        R.head_used = useds[b].data();
      }
    }
    const draft_status st = draft_cpu_decoder_step(decoder_, rows.data(), static_cast<int32_t>(B));
    if (st != DRAFT_OK) {
      Napi::Error e = Napi::Error::New(env, std::string("cpu_decoder_step: ") + draft_status_string(st));
      e.Set("status", Napi::Number::New(env, st));
      throw e;
    }
    return env.Undefined();
  }

  void check(draft_status st, const char* what) {
    if (st == DRAFT_OK) return;
    Napi::Error e = Napi::Error::New(Env(), std::string(what) + ": " + draft_status_string(st));
    e.Set("status", Napi::Number::New(Env(), st));
    throw e;
  }

  void ensureOpen(const Napi::Env& env) {
    if (!decoder_) throw Napi::Error::New(env, "the decoder is closed");
  }

  // embed(tokens: Int32Array, hidden: Float32Array (tokens × hiddenSize))
  Napi::Value Embed(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ensureOpen(env);
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
      throw Napi::TypeError::New(env, "embed(tokens, hidden): tokens must be an Int32Array");
    auto tokens = info[0].As<Napi::Int32Array>();
    if (tokens.ElementLength() == 0) throw Napi::RangeError::New(env, "embed: no tokens");
    auto hidden = f32(info[1], "hidden", 0);
    if (hidden.ElementLength() < tokens.ElementLength() * cfg_.hidden_size) throw Napi::RangeError::New(env, "hidden is shorter than tokens × hiddenSize");
    check(draft_cpu_decoder_embed(decoder_, tokens.Data(), static_cast<int32_t>(tokens.ElementLength()), hidden.Data()), "cpu_decoder_embed");
    return env.Undefined();
  }

  // layer(call): see NativeLayerCallV1 (@draft/core).
  Napi::Value Layer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ensureOpen(env);
    if (!info[0].IsObject()) throw Napi::TypeError::New(env, "layer(call): call must be an object");
    Napi::Object o = info[0].As<Napi::Object>();
    draft_decoder_layer_call c{};
    c.layer = positive(o, "layer");
    c.count = positive(o, "count");
    c.capacity = positive(o, "capacity");
    c.used = positive(o, "used");
    const size_t d = cfg_.head_dim, Hkv = cfg_.num_kv_heads;
    if (c.count <= 0 || c.used < 0 || c.capacity <= 0 || static_cast<int64_t>(c.used) + c.count > c.capacity)
      throw Napi::RangeError::New(env, "layer: need count >= 1, used >= 0 and used + count <= capacity");
    auto hidden = f32(o.Get("hidden"), "hidden", 0);
    if (hidden.ElementLength() < static_cast<size_t>(c.count) * cfg_.hidden_size) throw Napi::RangeError::New(env, "hidden is shorter than count × hiddenSize");
    c.hidden = hidden.Data();
    c.cos = f32(o.Get("cos"), "cos", static_cast<size_t>(c.count) * d).Data();
    c.sin = f32(o.Get("sin"), "sin", static_cast<size_t>(c.count) * d).Data();
    const size_t cache = Hkv * static_cast<size_t>(c.capacity) * d;
    const KvView keys = kv_array(o.Get("keys"), "keys", cfg_.kv_dtype);
    const KvView values = kv_array(o.Get("values"), "values", cfg_.kv_dtype);
    if (keys.length < cache || values.length < cache) throw Napi::RangeError::New(env, "keys/values are shorter than numKvHeads × capacity × headDim");
    c.keys = keys.data;
    c.values = values.data;
    Napi::Value mask = o.Get("headMask");
    if (!mask.IsUndefined() && !mask.IsNull()) {
      if (!mask.IsTypedArray() || mask.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) throw Napi::TypeError::New(env, "headMask must be a Uint8Array");
      auto m = mask.As<Napi::Uint8Array>();
      if (m.ElementLength() < Hkv * static_cast<size_t>(c.capacity)) throw Napi::RangeError::New(env, "headMask is shorter than numKvHeads × capacity");
      c.head_mask = m.Data();
    }
    Napi::Value rows = o.Get("queryRows");
    c.query_rows = rows.IsNumber() ? rows.As<Napi::Number>().Int32Value() : 0;
    if (c.query_rows < 0 || c.query_rows > c.count) throw Napi::RangeError::New(env, "queryRows must lie in [0, count]");
    if (c.query_rows > 0) c.queries = f32(o.Get("queries"), "queries", static_cast<size_t>(cfg_.num_heads) * c.query_rows * d).Data();
    check(draft_cpu_decoder_layer(decoder_, &c), "cpu_decoder_layer");
    return env.Undefined();
  }

  // head(hidden, count, logits (count × vocabSize))
  Napi::Value Head(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ensureOpen(env);
    auto hidden = f32(info[0], "hidden", 0);
    if (!info[1].IsNumber()) throw Napi::TypeError::New(env, "head(hidden, count, logits): count must be a number");
    const int32_t count = info[1].As<Napi::Number>().Int32Value();
    auto logits = f32(info[2], "logits", 0);
    if (count <= 0 || hidden.ElementLength() < static_cast<size_t>(count) * cfg_.hidden_size || logits.ElementLength() < static_cast<size_t>(count) * cfg_.vocab_size)
      throw Napi::RangeError::New(env, "head: need count >= 1 rows of hidden and of logits");
    check(draft_cpu_decoder_head(decoder_, hidden.Data(), count, logits.Data()), "cpu_decoder_head");
    return env.Undefined();
  }

  draft_decoder_config cfg_{};
  draft_decoder_weights weights_{};
  std::vector<draft_decoder_layer> layers_;
  std::vector<Napi::ObjectReference> refs_;
  draft_decoder* decoder_ = nullptr;
};

}  // namespace

Napi::Function NativeDecoderClass(Napi::Env env) { return NativeDecoder::Define(env); }

Napi::Value MapFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "mapFile(path): path must be a string");
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Napi::Error::New(env, "mapFile: cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || st.st_size <= 0) {
    close(fd);
    throw Napi::Error::New(env, "mapFile: cannot map an empty or unreadable file: " + path);
  }
  const size_t size = static_cast<size_t>(st.st_size);
  void* p = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (p == MAP_FAILED) throw Napi::Error::New(env, "mapFile: mmap failed for " + path + ": " + std::strerror(errno));
  // V8 never writes an external buffer on its own; views made from it must stay read-only (PROT_READ).
  return Napi::ArrayBuffer::New(
      env, p, size, [](Napi::Env, void* data, size_t* bytes) { munmap(data, *bytes); delete bytes; }, new size_t(size));
}
