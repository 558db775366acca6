// Doorbells: a 32-bit counter in memory two processes map (mapShared). The sender writes a frame,
// then rings (increments the counter and wakes the waiters: a Linux futex); the receiver waits on
// the counter. A round's frames in shared memory are announced this way instead of by a socket
// message, which would cost a trip through the TCP stack and each side's event loop.
#include <node_api.h>

#include <atomic>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <thread>

#include "api.h"
#include "napi_util.h"

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#endif

namespace ganfleet {
namespace {

#ifdef __linux__
constexpr bool kSupported = true;

// Shared (not FUTEX_PRIVATE): the other side is another process.
void FutexWait(uint32_t* word, uint32_t seen, long long timeoutMs) {
  timespec ts{static_cast<time_t>(timeoutMs / 1000), static_cast<long>((timeoutMs % 1000) * 1000000)};
  syscall(SYS_futex, word, FUTEX_WAIT, seen, &ts, nullptr, 0);
}
void FutexWake(uint32_t* word) { syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0); }
#else
constexpr bool kSupported = false;
void FutexWait(uint32_t*, uint32_t, long long) {}
void FutexWake(uint32_t*) {}
#endif

uint32_t Load(const uint32_t* word) { return __atomic_load_n(word, __ATOMIC_ACQUIRE); }

// The counter at byte `offset` of `buffer` (4-byte aligned, inside it); throws otherwise.
bool GetWord(napi_env env, const CallArgs& args, uint32_t** word) {
  if (!kSupported) {
    napi_throw_error(env, nullptr, "doorbells need Linux (futex)");
    return false;
  }
  void* data = nullptr;
  std::size_t length = 0;
  bool isBuffer = false;
  if (napi_is_arraybuffer(env, args.v[0], &isBuffer) != napi_ok || !isBuffer ||
      napi_get_arraybuffer_info(env, args.v[0], &data, &length) != napi_ok || length < 4) {
    napi_throw_type_error(env, nullptr, "doorbell: expected an ArrayBuffer of at least 4 bytes");
    return false;
  }
  long long offset;
  if (!GetInt(env, args.v[1], "offset", 0, static_cast<long long>(length) - 4, &offset)) return false;
  if (offset % 4 != 0) {
    napi_throw_range_error(env, nullptr, "doorbell: offset must be a multiple of 4");
    return false;
  }
  *word = reinterpret_cast<uint32_t*>(static_cast<char*>(data) + offset);
  return true;
}

// A thread that waits on one counter and calls back on the event loop of the thread that started
// it. At most one call is queued at a time: however fast the peer rings, the loop sees one call,
// and the callback reads what it needs from the memory itself.
struct Watch {
  uint32_t* word = nullptr;
  napi_env env = nullptr;
  napi_ref buffer = nullptr;  // keeps the mapping alive while the thread reads it
  napi_threadsafe_function call = nullptr;
  std::atomic<bool> stop{false};
  std::atomic<bool> queued{false};
  std::thread thread;
  uint32_t seen = 0;  // the counter when the watch began: a ring from then on is reported
  bool stopped = false;
  bool hooked = false;  // the environment's cleanup hook is registered
  // Freed once both are gone (both happen on the event loop's thread): the callback's queue,
  // which may still hold a call after stop(), and the stop function, which may still be called.
  bool callFinalized = false;
  bool stopCollected = false;
};

void Release(Watch* w) {
  if (w->callFinalized && w->stopCollected) delete w;
}

constexpr long long kWatchSliceMs = 1000;

void WatchLoop(Watch* w) {
  uint32_t seen = w->seen;
  while (!w->stop.load()) {
    FutexWait(w->word, seen, kWatchSliceMs);
    const uint32_t now = Load(w->word);
    if (now == seen || w->stop.load()) continue;
    seen = now;
    if (!w->queued.exchange(true)) napi_call_threadsafe_function(w->call, nullptr, napi_tsfn_nonblocking);
  }
}

void CallJs(napi_env env, napi_value fn, void* context, void*) {
  auto* w = static_cast<Watch*>(context);
  w->queued.store(false);
  if (env == nullptr || fn == nullptr || w->stopped) return;
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  napi_call_function(env, undefined, fn, 0, nullptr, nullptr);
}

// Ends the thread; `release`: also give back what it held (not while the environment is torn down).
void StopWatch(Watch* w, bool release) {
  if (w->stopped) return;
  w->stopped = true;
  w->stop.store(true);
  FutexWake(w->word);
  if (w->thread.joinable()) w->thread.join();
  if (!release) return;
  napi_release_threadsafe_function(w->call, napi_tsfn_release);
  napi_delete_reference(w->env, w->buffer);
}

void StopAtTeardown(void* data) {
  auto* w = static_cast<Watch*>(data);
  w->hooked = false;
  StopWatch(w, false);
}

void Unhook(napi_env env, Watch* w) {
  if (w->hooked) napi_remove_env_cleanup_hook(env, StopAtTeardown, w);
  w->hooked = false;
}

napi_value ApiStopWatch(napi_env env, napi_callback_info info) {
  CallArgs args;
  if (!ReadArgs(env, info, 0, &args)) return nullptr;
  auto* w = static_cast<Watch*>(args.data);
  Unhook(env, w);
  StopWatch(w, true);
  return Undefined(env);
}

// The stop function was collected: the watch ends with it.
void StopCollected(napi_env env, void* data, void*) {
  auto* w = static_cast<Watch*>(data);
  Unhook(env, w);
  StopWatch(w, true);
  w->stopCollected = true;
  Release(w);
}

void CallFinalized(napi_env, void* data, void*) {
  auto* w = static_cast<Watch*>(data);
  w->callFinalized = true;
  Release(w);
}

}  // namespace

// ring(buffer, offset): increments the counter and wakes whoever waits on it; returns its new value.
napi_value ApiRing(napi_env env, napi_callback_info info) {
  CallArgs args;
  if (!ReadArgs(env, info, 2, &args)) return nullptr;
  uint32_t* word;
  if (!GetWord(env, args, &word)) return nullptr;
  // Sequentially consistent: the frame written before the ring is visible to whoever sees the new value.
  const uint32_t value = __atomic_add_fetch(word, 1u, __ATOMIC_SEQ_CST);
  FutexWake(word);
  napi_value out;
  napi_create_uint32(env, value, &out);
  return out;
}

// waitRing(buffer, offset, seen, timeoutMs): blocks this thread until the counter differs from
// `seen` or the time passes (or a spurious wake-up); returns the counter's value.
napi_value ApiWaitRing(napi_env env, napi_callback_info info) {
  CallArgs args;
  if (!ReadArgs(env, info, 4, &args)) return nullptr;
  uint32_t* word;
  long long seen, timeoutMs;
  if (!GetWord(env, args, &word) || !GetInt(env, args.v[2], "seen", 0, UINT32_MAX, &seen) ||
      !GetInt(env, args.v[3], "timeoutMs", 0, 60000, &timeoutMs))
    return nullptr;
  if (Load(word) == static_cast<uint32_t>(seen) && timeoutMs > 0) FutexWait(word, static_cast<uint32_t>(seen), timeoutMs);
  napi_value out;
  napi_create_uint32(env, Load(word), &out);
  return out;
}

// watchRing(buffer, offset, callback): calls `callback` (no arguments, on this thread's event
// loop) after the counter changes, until the returned function is called (or collected). Does
// not keep the process alive.
napi_value ApiWatchRing(napi_env env, napi_callback_info info) {
  CallArgs args;
  if (!ReadArgs(env, info, 3, &args)) return nullptr;
  uint32_t* word;
  if (!GetWord(env, args, &word)) return nullptr;
  napi_valuetype type;
  if (napi_typeof(env, args.v[2], &type) != napi_ok || type != napi_function) {
    napi_throw_type_error(env, nullptr, "watchRing: expected a callback");
    return nullptr;
  }
  auto* w = new Watch();
  w->word = word;
  w->seen = Load(word);
  w->env = env;
  napi_value name;
  napi_create_string_utf8(env, "ganfleet doorbell", NAPI_AUTO_LENGTH, &name);
  napi_value stop;
  if (napi_create_reference(env, args.v[0], 1, &w->buffer) != napi_ok ||
      napi_create_threadsafe_function(env, args.v[2], nullptr, name, 0, 1, w, CallFinalized, w, CallJs, &w->call) != napi_ok ||
      napi_unref_threadsafe_function(env, w->call) != napi_ok ||
      napi_create_function(env, "stop", NAPI_AUTO_LENGTH, ApiStopWatch, w, &stop) != napi_ok ||
      napi_add_finalizer(env, stop, w, StopCollected, nullptr, nullptr) != napi_ok) {
    // Not started: nothing but these to give back (the callback's finalizer frees w, or nothing was made).
    w->stopped = true;
    w->stopCollected = true;
    if (w->buffer != nullptr) napi_delete_reference(env, w->buffer);
    if (w->call != nullptr) napi_release_threadsafe_function(w->call, napi_tsfn_release);
    else delete w;
    napi_throw_error(env, nullptr, "watchRing: could not set up the watch");
    return nullptr;
  }
  w->hooked = napi_add_env_cleanup_hook(env, StopAtTeardown, w) == napi_ok;
  w->thread = std::thread(WatchLoop, w);
  return stop;
}

}  // namespace ganfleet
