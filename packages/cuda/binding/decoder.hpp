// The native decoder (kernels' draft_cpu_decoder_*) as a JS class, and read-only file mapping for its weights.
#pragma once
#include <napi.h>

Napi::Function NativeDecoderClass(Napi::Env env);
Napi::Value MapFile(const Napi::CallbackInfo& info);
