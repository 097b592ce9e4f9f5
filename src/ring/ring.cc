// SPDX-License-Identifier: MIT
// The generic ring's setup calls: laying a ring over memory, validating a ring
// this process did not create, and the memory it lives in (anonymous, or a
// memfd shared between processes). The hot path is inline in aio2/ring.h.

#include "aio2/ring.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>

#include "util/fault.h"

namespace {

// The length of every mapping the setup calls made, by address. aio2_ring_unmap
// unmaps what was mapped, never what the header says now: a peer sharing the
// memory can write any data_bytes, and aio2_ring_map_fd maps the whole file,
// which may be longer than the ring.
std::mutex mappings_lock;
// Never destroyed, so a ring unmapped by a static destructor still finds it.
std::map<const void *, size_t> &mappings() {
  static auto *m = new std::map<const void *, size_t>;
  return *m;
}

int remember(void *mem, size_t bytes) {
  try {
    const std::lock_guard<std::mutex> hold(mappings_lock);
    mappings().emplace(mem, bytes);
  } catch (...) {
    return -ENOMEM;
  }
  return 0;
}

// The calling thread's producer id, 0 until first asked. A fork's child
// runs in a copy of the forking thread, whose cached id is the parent
// thread's: the child handler forgets it.
thread_local uint32_t producer_id_cache = 0;
pthread_once_t producer_id_once = PTHREAD_ONCE_INIT;
void forget_producer_id() { producer_id_cache = 0; }
void register_forget() { pthread_atfork(nullptr, nullptr, forget_producer_id); }

// The state letter of /proc/ID/stat ("pid (comm) S ..."; comm may hold
// spaces and parentheses, so look after the last ')'), or 0 if unreadable.
char proc_state(uint32_t id, int *open_errno) {
  char path[32];
  std::snprintf(path, sizeof path, "/proc/%u/stat", id);
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *open_errno = errno;
    return 0;
  }
  char buf[512];
  const ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  *open_errno = 0;
  if (n <= 0) return 0;
  buf[n] = 0;
  const char *paren = std::strrchr(buf, ')');
  return paren && paren[1] == ' ' ? paren[2] : 0;
}

bool is_pow2(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

bool geometry_ok(uint64_t data_bytes) {
  return is_pow2(data_bytes) && data_bytes >= AIO2_RING_MIN_DATA &&
         data_bytes <= AIO2_RING_MAX_DATA;
}

bool aligned64(const void *p) { return (reinterpret_cast<uintptr_t>(p) & 63) == 0; }

// The positions of a sound ring, in the order they are read. On a live ring
// each only moves forwards, and each is bounded by the one read after it:
// producer_head is an old head, and reaper_tail an old tail. Reading them in
// this order keeps those inequalities true for the values read even while
// peers move them. Each load is an acquire, pairing with the release that
// wrote it (R3 for head, R1 for tail, aio2_ring_init's release of tail for
// a new ring; the cached copies are written before the lock's or the
// reaper's next release), so no later load can be answered before it.
//   - every position is a multiple of 8 (tail's bit 0 is the reservation lock,
//     which a live producer may hold);
//   - tail - head is in [0, data_bytes];
//   - producer_head is not ahead of head (a producer trusting it would
//     overwrite records not yet reaped);
//   - reaper_tail is not ahead of tail (the single reaper trusting it would
//     return bytes no producer wrote). It may lag head: copying reapers move
//     head and leave it, and peek does not trust a reaper_tail behind head.
// "Ahead" is modulo 2^64, as positions wrap: a - b in (0, 2^63).
bool ahead(uint64_t a, uint64_t b) { return a != b && a - b < (uint64_t{1} << 63); }

int validate_positions(const aio2_ring *r) {
  const uint64_t size = r->data_bytes;
  const uint64_t ph = __atomic_load_n(&r->producer_head, __ATOMIC_ACQUIRE);
  const uint64_t h = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
  const uint64_t rt = __atomic_load_n(&r->reaper_tail, __ATOMIC_ACQUIRE);
  // The reservation lock is tail_owner: every bit of tail below 8 is corrupt.
  const uint64_t t = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
  if ((h | t | ph | rt) & 7) return -EUCLEAN;
  if (t - h > size) return -EUCLEAN;
  if (ahead(ph, h) || ahead(rt, t)) return -EUCLEAN;
  return 0;
}

// Validates everything a reaper or producer later trusts. Positions are read
// once each; a live ring may move them, and the hot path re-checks them anyway.
int validate(const aio2_ring *r, size_t mem_bytes) {
  if (mem_bytes < AIO2_RING_HDR_BYTES) return -EMSGSIZE;
  if (r->magic != AIO2_RING_MAGIC) return -ENOEXEC;
  if (r->version != AIO2_RING_VERSION) return -EPROTONOSUPPORT;
  if (r->hdr_bytes != AIO2_RING_HDR_BYTES || !geometry_ok(r->data_bytes) ||
      r->data_bytes > mem_bytes - AIO2_RING_HDR_BYTES)
    return -EMSGSIZE;
  if (r->setup_flags & ~AIO2_RING_F_ALL) return -EINVAL;
  return validate_positions(r);
}

int map_shared(int fd, size_t bytes, aio2_ring **out) {
  void *mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mem == MAP_FAILED) return -errno;
  *out = static_cast<aio2_ring *>(mem);
  return 0;
}

}  // namespace

extern "C" {

int aio2_ring_init(void *mem, size_t mem_bytes, uint64_t data_bytes, uint32_t flags,
                   uint64_t start_pos) {
  if (mem == nullptr || !aligned64(mem) || !geometry_ok(data_bytes) ||
      mem_bytes < aio2_ring_mem_bytes(data_bytes) || (flags & ~AIO2_RING_F_ALL) ||
      (start_pos & 7))
    return -EINVAL;
  auto *r = static_cast<aio2_ring *>(mem);
  std::memset(r, 0, AIO2_RING_HDR_BYTES);
  r->magic = AIO2_RING_MAGIC;
  r->version = AIO2_RING_VERSION;
  r->hdr_bytes = AIO2_RING_HDR_BYTES;
  r->setup_flags = flags;
  r->data_bytes = data_bytes;
  r->head = start_pos;
  r->reaper_tail = start_pos;
  r->producer_head = start_pos;
  // Release: whoever is handed the ring after init (a thread, or a process
  // through shared memory and some later synchronisation) sees the header
  // complete. Pairs with the acquire loads in validate().
  __atomic_store_n(&r->tail, start_pos, __ATOMIC_RELEASE);
  return 0;
}

int aio2_ring_attach(const void *mem, size_t mem_bytes) {
  if (mem == nullptr || !aligned64(mem)) return -EINVAL;
  return validate(static_cast<const aio2_ring *>(mem), mem_bytes);
}

int aio2_ring_new(uint64_t data_bytes, uint32_t flags, uint64_t start_pos, aio2_ring **out) {
  if (out == nullptr || !geometry_ok(data_bytes)) return -EINVAL;
  const size_t bytes = aio2_ring_mem_bytes(data_bytes);
  if (aio2::fault::fail(aio2::fault::site::ring_map)) return -ENOMEM;
  void *mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return -errno;
  int err = aio2_ring_init(mem, bytes, data_bytes, flags, start_pos);
  if (!err) err = remember(mem, bytes);
  if (err) {
    munmap(mem, bytes);
    return err;
  }
  *out = static_cast<aio2_ring *>(mem);
  return 0;
}

int aio2_ring_memfd_create(const char *name, uint64_t data_bytes, uint32_t flags,
                           uint64_t start_pos, int fd_inherit, int *fd, aio2_ring **out) {
  if (fd == nullptr || out == nullptr || !geometry_ok(data_bytes)) return -EINVAL;
  const size_t bytes = aio2_ring_mem_bytes(data_bytes);
  if (aio2::fault::fail(aio2::fault::site::ring_map)) return -ENOMEM;
  const int mfd = memfd_create(name ? name : "aio2-ring", fd_inherit ? 0 : MFD_CLOEXEC);
  if (mfd < 0) return -errno;
  aio2_ring *r = nullptr;
  int err = ftruncate(mfd, static_cast<off_t>(bytes)) ? -errno : map_shared(mfd, bytes, &r);
  if (!err) {
    err = aio2_ring_init(r, bytes, data_bytes, flags, start_pos);
    if (!err) err = remember(r, bytes);
    if (err) munmap(r, bytes);
  }
  if (err) {
    close(mfd);
    return err;
  }
  *fd = mfd;
  *out = r;
  return 0;
}

int aio2_ring_map_fd(int fd, aio2_ring **out) {
  if (out == nullptr) return -EINVAL;
  struct stat st {};
  if (fstat(fd, &st)) return -errno;
  const auto bytes = static_cast<size_t>(st.st_size);
  if (bytes < AIO2_RING_HDR_BYTES) return -EMSGSIZE;
  aio2_ring *r = nullptr;
  int err = map_shared(fd, bytes, &r);
  if (err) return err;
  err = validate(r, bytes);
  if (!err) err = remember(r, bytes);
  if (err) {
    munmap(r, bytes);
    return err;
  }
  *out = r;
  return 0;
}

int aio2_ring_unmap(aio2_ring *r) {
  if (r == nullptr) return -EINVAL;
  size_t bytes = 0;
  {
    const std::lock_guard<std::mutex> hold(mappings_lock);
    const auto it = mappings().find(r);
    if (it == mappings().end()) return -EINVAL;  // not mapped by these calls
    bytes = it->second;
    mappings().erase(it);
  }
  return munmap(r, bytes) ? -errno : 0;
}

uint32_t aio2_ring_producer_id(void) {
  uint32_t id = producer_id_cache;
  if (id == 0) {
    pthread_once(&producer_id_once, register_forget);
    id = static_cast<uint32_t>(gettid());
    producer_id_cache = id;
  }
  return id;
}

// Gone: the kernel no longer knows the id, or it is a zombie (a killed
// process its parent has not waited for: it runs no more). Everything else,
// including what cannot be read (a hidepid /proc, or none), counts as alive,
// since taking over from a live producer would corrupt the ring.
int aio2_ring_producer_alive(uint32_t id) {
  if (id == 0 || id > static_cast<uint32_t>(INT32_MAX)) return 1;
  int open_errno = 0;
  const char state = proc_state(id, &open_errno);
  if (state == 'Z' || state == 'X' || state == 'x') return 0;
  if (state != 0 || open_errno != ENOENT) return 1;
  // No /proc entry: gone, or a /proc that hides it or is not mounted. kill(2)
  // with signal 0 tells (ESRCH: no such thread; EPERM: it exists).
  if (kill(static_cast<pid_t>(id), 0) == 0 || errno != ESRCH) return 1;
  return 0;
}

const char *aio2_ring_strerror(int err) {
  switch (err) {
    case 0: return "success";
    case -EINVAL: return "invalid argument (length not a multiple of 8 or below 8, ring-owned flag bits, or bad geometry)";
    case -E2BIG: return "record larger than the ring's largest record (half its data area)";
    case -EAGAIN: return "ring full: no room for this record now";
    case -ENOBUFS: return "buffer too small for the next record";
    case -ENOEXEC: return "not a ring: wrong magic number in the header";
    case -EPROTONOSUPPORT: return "ring header version not supported by this build";
    case -EMSGSIZE: return "ring header sizes are wrong (header size, data size, or larger than the mapping)";
    case -EUCLEAN: return "ring positions are corrupt (unaligned, or more bytes in use than the ring holds)";
    case -EBADMSG: return "corrupt record header (bad length, or it runs past the tail or the data area)";
    default: return "unknown ring error";
  }
}

}  // extern "C"
