#include "heap_trim.hpp"

#include <cstdio>

#if defined(__GLIBC__)
#include <malloc.h>
#include <unistd.h>
#endif

namespace {

#if defined(__GLIBC__)
// Resident bytes from /proc/self/statm (second field, in pages); -1 when unreadable.
double resident_bytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return -1;
  long size = 0, resident = 0;
  const int read = std::fscanf(f, "%ld %ld", &size, &resident);
  std::fclose(f);
  if (read != 2) return -1;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
}
#endif

}  // namespace

// Returns { supported, trimmed, releasedBytes? , reason? }.
Napi::Value TrimHeap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
#if defined(__GLIBC__)
  const double before = resident_bytes();
  // malloc_trim(0) walks every arena (all threads'), returning whole free pages, not only the heap's top.
  const int released = malloc_trim(0);
  const double after = resident_bytes();
  o.Set("supported", Napi::Boolean::New(env, true));
  o.Set("trimmed", Napi::Boolean::New(env, released != 0));
  if (before >= 0 && after >= 0) o.Set("releasedBytes", Napi::Number::New(env, before > after ? before - after : 0));
#else
  o.Set("supported", Napi::Boolean::New(env, false));
  o.Set("trimmed", Napi::Boolean::New(env, false));
  o.Set("reason", Napi::String::New(env, "the C library has no malloc_trim (glibc only)"));
#endif
  return o;
}
