// trimHeap(): gives memory that native code freed back to the OS (malloc_trim on glibc). Not a kernel:
// process memory hygiene for runtimes that host ORT sessions (see src/heap-trimmer.ts).
#pragma once
#include <napi.h>

Napi::Value TrimHeap(const Napi::CallbackInfo& info);
