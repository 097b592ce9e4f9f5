// SPDX-License-Identifier: MIT
// cache: the page-cache outcome of a read of a regular file (read, pread64,
// readv, preadv, preadv2), found in the executing thread just before the
// call: HIT, PARTIAL or MISS, and how many of the requested bytes were cached.
//
// Method. cachestat(2) (Linux 6.5+) over the requested range, which counts
// cached pages without touching them. It counts whole pages, so when the
// range is partly cached and does not start or end on a page boundary, the
// first and last pages are asked about once more on their own and the bytes
// of theirs outside the range are taken off: bytes_cached is exact (as of the
// moment each cachestat ran; pages may come and go meanwhile, and the count
// is clamped to [0, bytes_requested]).
//
// Fallback (AIO2_CACHE_BY_NOWAIT), when cachestat is missing (ENOSYS), refused
// (EPERM: since Linux 6.14 it needs a file the caller may write or owns) or
// not supported by the file system (EOPNOTSUPP): a preadv2(RWF_NOWAIT) first
// attempt into the request's own buffers at the request's offset. It copies
// the leading cached bytes and stops at the first page that is not cached (or
// at anything else that would make it wait, such as a file-system lock), so
// bytes_cached is the cached prefix, not every cached byte of the range (and
// may include pages the attempt's own readahead brought in as it went), and
// MISS means "the first page would have waited".
//   - Full length back: HIT. For a read at an explicit offset (pread64,
//     preadv, preadv2 with an offset other than -1) the data is already where
//     the caller wants it, so the call is skipped and completes with that
//     length. A read at the file position (read, readv, preadv2 at -1) is
//     probed at the position it would use, without moving it, and the call
//     still runs (it reads the same cached bytes again): skipping it would
//     leave the position unmoved, and moving it ourselves races with others
//     sharing the open file.
//   - Short: PARTIAL; the call then runs and reads everything.
//   - EAGAIN: MISS; the call runs.
//
// A read entirely at or beyond the end of the file (or of zero bytes) asks
// for nothing: it reports HIT with bytes_requested = bytes_cached = 0. It is
// served without device I/O, which is what HIT says, and NOT_APPLICABLE is
// kept for calls that are not regular-file reads at all.
//
// For a nowait-first read (the hook's nowait_first: on io_uring, where the
// handler's AIO2_ATTR_HANDLER_NOWAIT flag makes the read go with RWF_NOWAIT
// first, and for reads that start in the submitting thread), the read's own
// RWF_NOWAIT attempt is the measurement, with the NOWAIT method's meaning
// (the cached prefix), taken from the hook's nowait_done when the event is
// posted. It costs no system call on a hit (the attempt was the read) where
// cachestat costs two (fstat, cachestat) on top of the descriptor's facts:
// the goal is a cache answer at io_uring's speed. bytes_requested is then
// what the call returned in all (the file's end clips it).
//
// NOT_APPLICABLE: any other system call (decided at submit); a descriptor
// that is not an open regular file, is write-only or O_PATH, or is O_DIRECT
// (the read bypasses the page cache); a negative offset or an iovec array
// the call would refuse (more than 1024 entries, unreadable, a negative
// length): those calls fail before reading anything. A request cancelled
// before it ran is NOT_APPLICABLE too. ERROR: cachestat or the probe failed
// in another way.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "attr/builtins.h"
#include "sys/fd_facts.h"
#include "sys/rw_args.h"

namespace aio2::attr {

namespace {

// cachestat(2) is system call 451 on every architecture (numbers from 424 on
// are shared), but headers older than Linux 6.5 (Debian 12's are 6.1) do not
// define __NR_cachestat or its structures.
#ifdef __NR_cachestat
constexpr long kNrCachestat = __NR_cachestat;
#else
constexpr long kNrCachestat = 451;
#endif

struct cachestat_range {  // as <linux/mman.h> of Linux 6.5
  uint64_t off;
  uint64_t len;  // 0: to the end of the file
};

struct cachestat_result {  // struct cachestat, as <linux/mman.h> of Linux 6.5
  uint64_t nr_cache;
  uint64_t nr_dirty;
  uint64_t nr_writeback;
  uint64_t nr_evicted;
  uint64_t nr_recently_evicted;
};

// Set once cachestat answers ENOSYS: this kernel will not grow it.
std::atomic<bool> g_no_cachestat{false};
// Tests force the RWF_NOWAIT method with this.
std::atomic<bool> g_force_nowait{false};

uint64_t page_size() noexcept {
  static const uint64_t p = [] {
    const long v = sysconf(_SC_PAGESIZE);
    return v > 0 ? static_cast<uint64_t>(v) : uint64_t{4096};
  }();
  return p;
}


// Cached pages of [off, off + len), or -errno.
int64_t cached_pages(int fd, uint64_t off, uint64_t len) noexcept {
  cachestat_range r{off, len};
  cachestat_result cs{};
  if (syscall(kNrCachestat, fd, &r, &cs, 0) != 0) return -errno;
  return static_cast<int64_t>(cs.nr_cache);
}

// Cached bytes of [start, end) (end > start) by cachestat, or -errno.
int64_t cached_bytes(int fd, uint64_t start, uint64_t end) noexcept {
  const uint64_t ps = page_size();
  const uint64_t first = start / ps, last = (end - 1) / ps;
  const int64_t n = cached_pages(fd, start, end - start);
  if (n < 0) return n;
  const uint64_t pages = static_cast<uint64_t>(n);
  if (pages >= last - first + 1) return static_cast<int64_t>(end - start);
  if (pages == 0) return 0;
  // Partly cached, so first != last. Each cached page counts ps bytes; the
  // first and last pages hold fewer bytes of the range when it does not
  // start or end on a page boundary.
  int64_t bytes = static_cast<int64_t>(pages * ps);
  if (start % ps) {
    const int64_t c = cached_pages(fd, first * ps, ps);
    if (c < 0) return c;
    if (c > 0) bytes -= static_cast<int64_t>(start % ps);
  }
  if (end % ps) {
    const int64_t c = cached_pages(fd, last * ps, ps);
    if (c < 0) return c;
    if (c > 0) bytes -= static_cast<int64_t>(ps - end % ps);
  }
  return std::clamp<int64_t>(bytes, 0, static_cast<int64_t>(end - start));
}

uint32_t outcome_of(uint64_t cached, uint64_t requested) noexcept {
  if (cached >= requested) return AIO2_CACHE_HIT;
  return cached == 0 ? AIO2_CACHE_MISS : AIO2_CACHE_PARTIAL;
}

void put(aio2_attr_hook *h, const aio2_attr_cache &c) noexcept {
  std::memcpy(h->result, &c, sizeof c);
}

int on_submit(aio2_attr_hook *h) {
  if (!sys::is_read(h->req->nr)) h->status = AIO2_ATTR_NOT_APPLICABLE;
  return 0;
}

int before(aio2_attr_hook *h) {
  const aio2_iocb &io = *h->req;
  const int fd = static_cast<int>(io.args[0]);
  // Whether the attribute applies: a read through the page cache that the
  // call will not refuse outright. One fcntl per descriptor and aio2_submit
  // (sys/fd_facts.h).
  sys::fd_facts f{};
  if (sys::bad_offset(io) || sys::facts_of(fd, &f) != 0 || !sys::reads_through_cache(f)) {
    h->status = AIO2_ATTR_NOT_APPLICABLE;
    return 0;
  }
  // A nowait-first read's own attempt is the measurement (on_post).
  if (h->nowait_first) return 0;
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    h->status = AIO2_ATTR_ERROR;
    return 0;
  }

  // Where the read starts: a read at the position is measured there.
  const bool at_position = sys::where(io) == sys::rw_at::position;
  const int64_t off = at_position ? lseek(fd, 0, SEEK_CUR) : static_cast<int64_t>(io.args[3]);
  if (off < 0) {
    h->status = AIO2_ATTR_NOT_APPLICABLE;  // the call fails with EINVAL
    return 0;
  }

  uint64_t len = io.args[2];
  if (sys::is_vectored(io.nr)) {
    if (const int err = sys::iov_total(io.args[1], io.args[2], &len)) {
      h->status = err == -EINVAL ? AIO2_ATTR_NOT_APPLICABLE : AIO2_ATTR_ERROR;
      return 0;
    }
  }
  len = sys::clip_rw(len);

  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const uint64_t start = static_cast<uint64_t>(off);
  const uint64_t end = start >= size ? start : std::min(start + len, size);

  aio2_attr_cache c{};
  c.bytes_requested = end - start;
  const bool nowait = g_force_nowait.load(std::memory_order_relaxed) ||
                      g_no_cachestat.load(std::memory_order_relaxed);
  c.method = nowait ? AIO2_CACHE_BY_NOWAIT : AIO2_CACHE_BY_CACHESTAT;
  if (c.bytes_requested == 0) {  // at or past the end: nothing to fetch
    c.outcome = AIO2_CACHE_HIT;
    put(h, c);
    return 0;
  }

  if (!nowait) {
    const int64_t got = cached_bytes(fd, start, end);
    if (got >= 0) {
      c.bytes_cached = static_cast<uint64_t>(got);
      c.outcome = outcome_of(c.bytes_cached, c.bytes_requested);
      put(h, c);
      return 0;
    }
    if (got == -ENOSYS) g_no_cachestat.store(true, std::memory_order_relaxed);
    if (got != -ENOSYS && got != -EPERM && got != -EOPNOTSUPP) {
      h->status = AIO2_ATTR_ERROR;
      return 0;
    }
    c.method = AIO2_CACHE_BY_NOWAIT;
  }

  // RWF_NOWAIT first attempt into the request's own buffers.
  const int64_t n = sys::read_nowait(io, static_cast<uint64_t>(off));
  if (n < 0) {
    if (n != -EAGAIN) {
      h->status = AIO2_ATTR_ERROR;
      return 0;
    }
    c.bytes_cached = 0;
  } else {
    c.bytes_cached = std::min(static_cast<uint64_t>(n), c.bytes_requested);
  }
  c.outcome = outcome_of(c.bytes_cached, c.bytes_requested);
  put(h, c);
  if (c.outcome == AIO2_CACHE_HIT && !at_position) {
    h->res = n;  // the data is in place: complete without the call
    return 1;
  }
  return 0;
}


// A nowait-first read: its attempt read nowait_done bytes of the res the
// call returned in all. A request that never ran, or failed before reading
// anything, has no page-cache outcome.
void on_post(aio2_attr_hook *h) {
  not_applicable_unless_started(h);
  if (h->status != AIO2_ATTR_OK || !h->nowait_first) return;
  if (h->nowait_done < 0 || h->res < 0) {
    h->status = AIO2_ATTR_NOT_APPLICABLE;
    return;
  }
  const auto total = static_cast<uint64_t>(h->res);
  aio2_attr_cache c{};
  c.method = AIO2_CACHE_BY_NOWAIT;
  c.bytes_requested = total;  // what the call returned: clipped to the file's end
  c.bytes_cached = std::min(static_cast<uint64_t>(h->nowait_done), total);
  c.outcome = total == 0 ? AIO2_CACHE_HIT : outcome_of(c.bytes_cached, total);
  put(h, c);
}

}  // namespace

// For tests: use the RWF_NOWAIT method even where cachestat works.
void cache_force_nowait_for_test(bool on) noexcept {
  g_force_nowait.store(on, std::memory_order_relaxed);
}

const aio2_attr_handler cache_handler = {
    sizeof(aio2_attr_handler), AIO2_ATTR_CACHE, AIO2_ATTR_HANDLER_NOWAIT, 0, 0,
    sizeof(aio2_attr_cache), AIO2_PATH_ALL, "cache", on_submit, before, nullptr, on_post, nullptr};

}  // namespace aio2::attr
