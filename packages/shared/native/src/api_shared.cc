// mapShared: memory that two processes on one machine both see, for a worker on the
// coordinator's machine to exchange frames without a socket (Node itself cannot map files).
#include <node_api.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "api.h"
#include "napi_util.h"

#ifndef _WIN32
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#endif

namespace ganfleet {
namespace {

struct Mapping {
  void* address;
  std::size_t bytes;
};

void Unmap(napi_env env, void*, void* hint) {
  auto* m = static_cast<Mapping*>(hint);
#ifndef _WIN32
  munmap(m->address, m->bytes);
#endif
  int64_t ignored;
  napi_adjust_external_memory(env, -static_cast<int64_t>(m->bytes), &ignored);
  delete m;
}

}  // namespace

// mapShared(path, bytes): an ArrayBuffer over the first `bytes` bytes of the file at `path`
// (a regular file of this user's, not through a symbolic link), mapped shared (writes are seen by every process that maps it); unmapped when collected.
napi_value ApiMapShared(napi_env env, napi_callback_info info) {
  CallArgs args;
  if (!ReadArgs(env, info, 2, &args)) return nullptr;
  char path[4096];
  std::size_t len = 0;
  if (napi_get_value_string_utf8(env, args.v[0], path, sizeof(path), &len) != napi_ok || len == 0 || len >= sizeof(path) - 1) {
    napi_throw_type_error(env, nullptr, "mapShared: expected a path");
    return nullptr;
  }
  long long bytes;
  if (!GetInt(env, args.v[1], "bytes", 1, 1LL << 40, &bytes)) return nullptr;
#ifdef _WIN32
  napi_throw_error(env, nullptr, "mapShared: not supported on Windows");
  return nullptr;
#else
  const int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    napi_throw_error(env, nullptr, (std::string("mapShared: cannot open ") + path + ": " + std::strerror(errno)).c_str());
    return nullptr;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < bytes) {
    close(fd);
    napi_throw_range_error(env, nullptr, (std::string("mapShared: ") + path + " is not a regular file of at least " + std::to_string(bytes) + " bytes").c_str());
    return nullptr;
  }
  // Another user's file (a peer naming one it planted) is never written to.
  if (st.st_uid != geteuid()) {
    close(fd);
    napi_throw_error(env, nullptr, (std::string("mapShared: ") + path + " belongs to another user").c_str());
    return nullptr;
  }
#ifdef __linux__
  // Reserves the memory now: a tmpfs that is full (a container's small /dev/shm) then fails here,
  // where writing to a page it could not provide would kill the process with SIGBUS.
  const int reserveError = posix_fallocate(fd, 0, static_cast<off_t>(bytes));
  if (reserveError != 0) {
    close(fd);
    napi_throw_error(env, nullptr, (std::string("mapShared: cannot reserve ") + std::to_string(bytes) + " bytes for " + path + ": " + std::strerror(reserveError)).c_str());
    return nullptr;
  }
#endif
  void* address = mmap(nullptr, static_cast<std::size_t>(bytes), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  const int mapError = errno;
  close(fd);  // the mapping holds the file
  if (address == MAP_FAILED) {
    napi_throw_error(env, nullptr, (std::string("mapShared: cannot map ") + path + ": " + std::strerror(mapError)).c_str());
    return nullptr;
  }
  auto* m = new Mapping{address, static_cast<std::size_t>(bytes)};
  napi_value buffer;
  if (napi_create_external_arraybuffer(env, address, m->bytes, Unmap, m, &buffer) != napi_ok) {
    munmap(address, m->bytes);
    delete m;
    napi_throw_error(env, nullptr, "mapShared: could not create the ArrayBuffer");
    return nullptr;
  }
  // Tells V8 what the buffer holds, so that dropped mappings are collected (and unmapped) in time.
  int64_t ignored;
  napi_adjust_external_memory(env, bytes, &ignored);
  return buffer;
#endif
}

}  // namespace ganfleet
