// SPDX-License-Identifier: MIT
#include "exec/uring.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <iterator>
#include <new>
#include <thread>
#include <vector>

#include "attr/registry.h"
#include "exec/run.h"
#include "sys/rw_args.h"
#include "sys/syscall_table.h"
#include "util/cpu.h"
#include "util/fault.h"

namespace aio2::exec {

namespace {

// The SQE's user_data: the request's address with 16 bits of its slot
// generation on top (user-space addresses fit in 47 bits on x86_64), so a
// cancel aimed at a request that has just completed cannot hit the next
// request to use the slot. Zero marks aio2's own entries (cancellations).
uint64_t tag_of(const request *r) noexcept {
  return reinterpret_cast<uint64_t>(r) |
         (r->generation.load(std::memory_order_relaxed) & 0xffffu) << 48;
}
request *request_of(uint64_t tag) noexcept {
  return reinterpret_cast<request *>(tag & ((uint64_t{1} << 48) - 1));
}

// Names an executor in the threads' bindings; never reused, so a binding
// left by a destroyed executor cannot match a new one at its address.
// Relaxed: only uniqueness matters.
std::atomic<uint64_t> g_next_id{1};

// Which instance of an executor a thread submits to. A thread keeps a few
// (the executors it used last), so one that alternates between contexts
// keeps its place in each.
struct binding {
  uint64_t owner;   // the executor's id_; 0: free
  unsigned index;   // the instance
  bool contended;   // its submission lock was taken by another thread
  // Where to move at the end of the call: an instance whose lock was free
  // when this one's was taken (kNowhere: the next in turn).
  unsigned free_index;
};
constexpr unsigned kNowhere = ~0u;
constexpr unsigned kBindings = 4;
thread_local binding t_bindings[kBindings];
thread_local unsigned t_next_binding;

binding &binding_for(uint64_t owner, bool *fresh) noexcept {
  for (binding &b : t_bindings)
    if (b.owner == owner) {
      *fresh = false;
      return b;
    }
  binding &b = t_bindings[t_next_binding++ % kBindings];
  b = binding{owner, 0, false, kNowhere};
  *fresh = true;
  return b;
}

}  // namespace

uring::uring(completion_sink &sink) noexcept
    : id_(g_next_id.fetch_add(1, std::memory_order_relaxed)), sink_(sink) {}

uring::~uring() {
  shutdown();
  if (probe_) io_uring_free_probe(probe_);
  const unsigned n = ninst_.load(std::memory_order_acquire);
  for (unsigned i = 0; i < n; i++) {
    instance *in = inst_[i].load(std::memory_order_acquire);
    if (in->ring.ring_fd >= 0) io_uring_queue_exit(&in->ring);
    delete in;
  }
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

int uring::make_instance(instance **out, bool first) noexcept {
  if (fault::fail(fault::site::uring_setup)) return -ENOMEM;
  auto *in = new (std::nothrow) instance;
  if (in == nullptr) return -ENOMEM;
  // SUBMIT_ALL (5.18): one refused entry does not stop the rest of a
  // batch. The completion queue is four times the submission queue; beyond
  // that the kernel keeps completions on its own overflow list
  // (IORING_FEAT_NODROP). The others take the flags the first was made with.
  io_uring_params p{};
  p.flags = first ? IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE : setup_flags_;
  p.cq_entries = cq_entries_;
  int rc = io_uring_queue_init_params(sq_entries_, &in->ring, &p);
  if (first && rc == -EINVAL) {  // an older kernel: without the flags
    p = io_uring_params{};
    rc = io_uring_queue_init_params(sq_entries_, &in->ring, &p);
  }
  if (rc < 0) {
    delete in;
    return rc;
  }
  if (first) {
    // NODROP (5.5) so no completion is ever lost; RW_CUR_POS (5.6) for
    // reads and writes at the file position; EXT_ARG (5.11) marks a kernel
    // recent enough for every opcode translated below to behave as
    // documented.
    const unsigned need = IORING_FEAT_NODROP | IORING_FEAT_RW_CUR_POS | IORING_FEAT_EXT_ARG;
    if ((p.features & need) != need) {
      io_uring_queue_exit(&in->ring);
      delete in;
      return -EOPNOTSUPP;
    }
    setup_flags_ = p.flags;
    entries_ = p.sq_entries;
  }
  *out = in;
  return 0;
}

int uring::init(unsigned entries, unsigned max_instances) noexcept {
  sq_entries_ = entries;
  cq_entries_ = entries * 4 > 65536 ? 65536 : entries * 4;  // the kernel's most
  instance *first = nullptr;
  if (int rc = make_instance(&first, true)) return rc;
  probe_ = io_uring_get_probe_ring(&first->ring);
  if (probe_ == nullptr) {
    io_uring_queue_exit(&first->ring);
    delete first;
    entries_ = 0;
    return -EOPNOTSUPP;
  }
  inst_[0].store(first, std::memory_order_release);
  ninst_.store(1, std::memory_order_release);
  poll_fd_ = first->ring.ring_fd;

  if (max_instances == 0) {
    const char *v = std::getenv("AIO2_URING_INSTANCES");
    const long n = v && *v ? std::strtol(v, nullptr, 10) : 0;
    max_instances = n > 0 ? static_cast<unsigned>(n > kMaxInstances ? kMaxInstances : n)
                          : std::min(2 * util::usable_cpus(), kDefaultInstances);
  }
  if (const char *v = std::getenv("AIO2_URING_SPREAD")) spread_ = v[0] == '1';
  if (max_instances > kMaxInstances) max_instances = kMaxInstances;
  if (max_instances <= 1) return 0;
  // One descriptor for the reaper that sleeps (and the collector thread)
  // to watch every instance. Without it the context keeps one instance.
  const auto watch = [this](const instance &in) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    return epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, in.ring.ring_fd, &ev) == 0;
  };
  if (!fault::fail(fault::site::uring_setup)) epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0 || !watch(*first)) {
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
    epoll_fd_ = -1;
    return 0;
  }
  poll_fd_ = epoll_fd_;
  // Every instance is made now, inside aio2_setup, where the program
  // expects descriptors to be made: one made later, during a submit call,
  // would take the lowest free number, which may be one the program has
  // just closed with a request on it still in flight (that request would
  // then read io_uring's descriptor). An instance that cannot be made
  // lowers the count; the first is enough.
  for (unsigned i = 1; i < max_instances; i++) {
    instance *in = nullptr;
    if (make_instance(&in, false) != 0) break;
    if (!watch(*in)) {
      io_uring_queue_exit(&in->ring);
      delete in;
      break;
    }
    inst_[i].store(in, std::memory_order_release);
    ninst_.store(i + 1, std::memory_order_release);
  }
  return 0;
}

unsigned uring::this_threads_instance() noexcept {
  bool fresh;
  binding &b = binding_for(id_, &fresh);
  const unsigned n = ninst_.load(std::memory_order_acquire);
  if (fresh && n > 1) b.index = next_start_.fetch_add(1, std::memory_order_relaxed) % n;
  return b.index;
}

void uring::end_of_call() noexcept {
  const unsigned n = ninst_.load(std::memory_order_acquire);
  if (n <= 1) return;
  bool fresh;
  binding &b = binding_for(id_, &fresh);
  if (fresh) return;  // it submitted nothing here since it was bound elsewhere
  if (!(b.contended || spread_)) return;
  b.contended = false;
  b.index = b.free_index < n && !spread_ ? b.free_index : (b.index + 1) % n;
  b.free_index = kNowhere;
}

void uring::submit(request *const *reqs, size_t n) noexcept {
  // The entries of this batch are queued together: their start stamps
  // share one clock reading (taken only if a request has the timing
  // attribute).
  const attr::one_shared_reading queued_now(attr::shared_clock::queue);
  instance &in = mine();
  request *go[64];
  size_t ngo = 0;
  bool done_here = false;
  bool creds = false;  // a request of the batch names a personality of `in`
  const auto flush = [&] {
    if (ngo == 0) return;
    std::unique_lock<std::mutex> lk;
    instance &to = place(in, creds, &lk);
    link(to, go, ngo);
    // Counted before the kernel can complete any of them (harvest subtracts).
    inflight_.fetch_add(ngo, std::memory_order_seq_cst);
    queue(to, go, ngo, std::move(lk));
    ngo = 0;
    creds = false;
  };
  for (size_t i = 0; i < n; i++) {
    request *r = reqs[i];
    auto *sqe = reinterpret_cast<io_uring_sqe *>(r->sqe);
    // The rest of a nowait-first read started in the submitter: its before
    // hooks ran there.
    if (!r->nowait.rest_pending()) {
      if (!begin(r, 0)) {  // a hook completed it (a deadline passed, say)
        sink_.complete(r);
        done_here = true;
        continue;
      }
      if (const int32_t prio = r->attrs.run_ioprio(); prio >= 0)
        sqe->ioprio = static_cast<uint16_t>(prio);
      // A nowait-first read made here: RWF_NOWAIT first, the rest again
      // (harvest), while an attribute that measures it still applies.
      if (r->plan.attempt == attempt::executor && !r->attrs.wants_nowait())
        r->plan.attempt = attempt::none;
      if (r->plan.attempt == attempt::executor) sqe->rw_flags |= RWF_NOWAIT;
    }
    // The submitter's credentials, wherever and by whichever thread the
    // kernel issues it (a personality of this instance: personality_for).
    if (r->has_creds) {
      sqe->personality = r->personality;
      creds = creds || r->personality != 0;
    }
    go[ngo++] = r;
    if (ngo == std::size(go)) flush();
  }
  flush();
  if (done_here) sink_.batch_done(false);
}

// A batch of new requests goes to the calling thread's instance when its
// submission lock is free. When another thread holds it (running its reads
// inside io_uring_enter, or preempted there), the batch goes to the first
// other instance whose lock is free, unless a request of the batch names
// one of `own`'s personalities; the thread then moves to that instance at
// the end of the call (end_of_call), so that threads that collide spread
// to instances nobody is using instead of taking turns. When every lock is
// taken the batch waits for `own`'s. Returns the instance, its lock held
// in *lk.
uring::instance &uring::place(instance &own, bool creds,
                              std::unique_lock<std::mutex> *lk) noexcept {
  *lk = std::unique_lock(own.sq_mu, std::try_to_lock);
  const unsigned n = ninst_.load(std::memory_order_relaxed);
  if (lk->owns_lock()) return own;
  if (n > 1) {
    bool fresh;
    binding &b = binding_for(id_, &fresh);
    b.contended = true;
    for (unsigned k = 1; k < n && !(creds || spread_); k++) {
      const unsigned j = (b.index + k) % n;
      instance &other = at(j);
      *lk = std::unique_lock(other.sq_mu, std::try_to_lock);
      if (lk->owns_lock()) {
        b.free_index = j;
        return other;
      }
    }
  }
  *lk = std::unique_lock(own.sq_mu);
  return own;
}

void uring::link(instance &in, request *const *reqs, size_t n) noexcept {
  // Linked under list_mu after every field of each request is written; the
  // harvester unlinks under list_mu before it reads them, so the mutex
  // orders the hand-over through the kernel (which ThreadSanitizer cannot
  // see).
  std::lock_guard lk(in.list_mu);
  for (size_t i = 0; i < n; i++) in.inflight_list.push_back(reqs[i]);
}

// Copies the requests' SQEs in and hands them to the kernel, under sq_mu
// only: nothing is ever harvested while sq_mu is held (a harvest may
// resubmit, which takes sq_mu). When the kernel cannot take more (a full
// submission queue, -EBUSY from a full completion queue on older kernels,
// -EAGAIN when it is short of memory), sq_mu is let go, completions are
// harvested, and it tries again: every request keeps its promise of one
// event. A lock found taken marks the thread's binding contended
// (end_of_call moves it on).
void uring::queue(instance &in, request *const *reqs, size_t n,
                  std::unique_lock<std::mutex> held) noexcept {
  size_t i = 0;
  for (;;) {
    int rc = 0;
    {
      std::unique_lock lk = std::move(held);
      if (!lk.owns_lock()) lk = std::unique_lock(in.sq_mu, std::try_to_lock);
      if (!lk.owns_lock()) {
        if (ninst_.load(std::memory_order_relaxed) > 1) {
          bool fresh;
          binding_for(id_, &fresh).contended = true;
        }
        lk.lock();
      }
      for (; i < n; i++) {
        io_uring_sqe *sqe = io_uring_get_sqe(&in.ring);
        if (sqe == nullptr) break;
        std::memcpy(static_cast<void *>(sqe), reqs[i]->sqe, sizeof *sqe);
        sqe->user_data = tag_of(reqs[i]);
      }
      while (io_uring_sq_ready(&in.ring) != 0 &&
             ((rc = io_uring_submit(&in.ring)) >= 0 || rc == -EINTR)) {
      }
      if (i == n && io_uring_sq_ready(&in.ring) == 0) return;
    }
    if (harvest_one(in, true) == 0) std::this_thread::yield();
  }
}

// Queues aio2's own cancellation entry for `tag` (0 with ANY|ALL flags: all).
void uring::queue_cancel(instance &in, uint64_t tag, int flags) noexcept {
  for (;;) {
    {
      std::lock_guard lk(in.sq_mu);
      if (io_uring_sqe *sqe = io_uring_get_sqe(&in.ring)) {
        io_uring_prep_cancel64(sqe, tag, flags);
        sqe->user_data = 0;  // aio2's own: harvest skips it
        int rc;
        while (io_uring_sq_ready(&in.ring) != 0 &&
               ((rc = io_uring_submit(&in.ring)) >= 0 || rc == -EINTR)) {
        }
        if (io_uring_sq_ready(&in.ring) == 0) return;
      }
    }
    if (harvest_one(in, true) == 0) std::this_thread::yield();
  }
}

bool uring::ready_one(const instance &in) const noexcept {
  // Called without cq_mu, so both positions are read atomically (liburing's
  // io_uring_cq_ready reads the head plainly, a race with harvest's store).
  return __atomic_load_n(in.ring.cq.ktail, __ATOMIC_ACQUIRE) !=
         __atomic_load_n(in.ring.cq.khead, __ATOMIC_RELAXED);
}

bool uring::ready() const noexcept {
  if (!active()) return false;
  const unsigned n = ninst_.load(std::memory_order_acquire);
  for (unsigned i = 0; i < n; i++)
    if (ready_one(at(i))) return true;
  return false;
}

size_t uring::harvest(bool wait) noexcept {
  if (!active()) return 0;
  instance &own = mine();
  size_t total = harvest_one(own, wait);
  const unsigned n = ninst_.load(std::memory_order_acquire);
  for (unsigned i = 0; n > 1 && i < n; i++) {
    instance &in = at(i);
    if (&in != &own && ready_one(in)) total += harvest_one(in, wait);
  }
  return total;
}

size_t uring::harvest_one(instance &in, bool wait) noexcept {
  size_t total = 0;
  for (;;) {
    request *again[64];
    size_t na = 0, m = 0;
    {
      std::unique_lock lk(in.cq_mu, std::defer_lock);
      if (wait && total == 0) lk.lock();
      else if (!lk.try_lock()) break;  // another thread harvests now
      io_uring_cqe *cqes[64];
      const unsigned k = io_uring_peek_batch_cqe(&in.ring, cqes, 64);
      if (k == 0) break;
      request *done[64];
      int32_t res[64];
      for (unsigned i = 0; i < k; i++) {
        // aio2's own entries (cancellations), and liburing's timeouts.
        if (cqes[i]->user_data == 0 || cqes[i]->user_data == LIBURING_UDATA_TIMEOUT) continue;
        done[m] = request_of(cqes[i]->user_data);
        int32_t v = cqes[i]->res;
        // The kernel's restart codes (ERESTARTSYS..ERESTART_RESTARTBLOCK,
        // 512..516) mean "interrupted" to a caller: a cancelled call.
        if (v <= -512 && v >= -516) v = -EINTR;
        res[m++] = v;
      }
      io_uring_cq_advance(&in.ring, k);
      // These completions were all seen now: timing's finished and posted
      // stamps share one clock reading (its documented meaning on io_uring).
      const attr::one_clock_read seen_now;
      size_t nd = 0;
      {
        // Pairs with link (see there). A nowait-first read whose rest runs
        // next stays on the list, so that a cancel finds it between its
        // attempt and its rest; the others leave it before they are
        // posted.
        std::lock_guard ll(in.list_mu);
        for (size_t i = 0; i < m; i++) {
          request *r = done[i];
          if (r->plan.attempt == attempt::executor && !r->nowait.attempted()) {
            // A nowait-first read's attempt: read the rest (or all of it,
            // after an error) again without RWF_NOWAIT, unless the kernel
            // cancelled the attempt (a cancel that answered 0) or the
            // executor is shutting down. A cancel that answered -EALREADY
            // (cancel_requested without -ECANCELED) lets it run to the end.
            auto *sqe = reinterpret_cast<io_uring_sqe *>(r->sqe);
            const uint16_t prio = sqe->ioprio;  // the hooks' priority, kept
            const uint16_t who = sqe->personality;  // and the submitter's credentials
            const bool rest = r->nowait.attempted(r->io, res[i]);
            if (rest && res[i] != -ECANCELED && !stopping_.load(std::memory_order_relaxed) &&
                translate(r->io.nr, r->nowait.rest_args(), sqe)) {
              sqe->ioprio = prio;
              sqe->personality = who;
              again[na++] = r;
              continue;
            }
            // Finished by the attempt (its bytes, or its error: combine),
            // or no rest will run: cancelled, as a rest that never ran
            // (the attempt's bytes, or -ECANCELED), never the attempt's
            // own -EAGAIN.
            if (res[i] >= 0 || rest) res[i] = rest ? -ECANCELED : 0;
          }
          in.inflight_list.unlink(r);
          done[nd] = r;
          res[nd++] = res[i];
        }
      }
      for (size_t i = 0; i < nd; i++) {
        request *r = done[i];
        finish(r, res[i], 0);
        if (r->res == -ECANCELED && r->cancel_requested.load(std::memory_order_relaxed))
          r->event_flags |= AIO2_EVENT_CANCELED;
      }
      sink_.complete_many(done, nd);
      // Retries stay counted; the others are done. After the events are
      // posted: a reaper that sees the count drop finds them (seq_cst, see
      // inflight()).
      inflight_.fetch_sub(m - na, std::memory_order_seq_cst);
    }
    // Outside cq_mu: queueing may need to harvest to make room. The
    // retries are still on their instance's in-flight list, and go back to
    // that instance, where their personality is.
    if (na) queue(in, again, na);
    total += m;
    if (m) sink_.batch_done(true);
  }
  return total;
}

bool uring::add_fixed_file(int fd) noexcept {
  if (!active() || fd < 0 || fd >= kFdRange) return false;
  std::lock_guard lk(files_mu_);
  if (files_failed_ || files_used_ == kFixedFiles) return false;
  const unsigned n = ninst_.load(std::memory_order_acquire);
  if (!fixed_owner_) {
    // Every instance gets an empty table of kFixedFiles slots (sparse
    // registration, Linux 5.19); one that cannot keeps every descriptor
    // named by its number.
    auto *m = new (std::nothrow) std::atomic<uint16_t>[kFdRange];
    if (m == nullptr) {
      files_failed_ = true;
      return false;
    }
    fixed_owner_.reset(m);
    for (int i = 0; i < kFdRange; i++) m[i].store(0, std::memory_order_relaxed);
    for (unsigned i = 0; i < n; i++)
      if (io_uring_register_files_sparse(&at(i).ring, kFixedFiles) != 0) {
        files_failed_ = true;
        return false;  // the tables made stay empty until teardown
      }
    // Release: pairs with fixed_slot()'s acquire of the pointer (the
    // entries' zeroes).
    fixed_.store(m, std::memory_order_release);
  }
  const unsigned slot = files_used_++;
  for (unsigned i = 0; i < n; i++)
    if (io_uring_register_files_update(&at(i).ring, slot, &fd, 1) != 1)
      return false;  // the slot stays unused (the tables that took it hold the file)
  // Release: pairs with fixed_slot()'s acquire; after every table has it.
  fixed_owner_[fd].store(static_cast<uint16_t>(slot + 1), std::memory_order_release);
  return true;
}

int uring::register_buffers(const iovec *iov, unsigned nr) noexcept {
  if (!active()) return -EOPNOTSUPP;
  if (iov == nullptr || nr == 0 || nr > kMaxBuffers) return -EINVAL;
  std::lock_guard lk(buffers_mu_);
  if (nbuffers_.load(std::memory_order_relaxed) != 0) return -EBUSY;
  std::unique_ptr<buffer[]> b(new (std::nothrow) buffer[nr]);
  if (!b) return -ENOMEM;
  for (unsigned i = 0; i < nr; i++) {
    const auto base = reinterpret_cast<uint64_t>(iov[i].iov_base);
    if (base == 0 || iov[i].iov_len == 0 || iov[i].iov_len > (size_t{1} << 30)) return -EINVAL;
    b[i] = buffer{base, base + iov[i].iov_len, i};
  }
  std::sort(b.get(), b.get() + nr, [](const buffer &x, const buffer &y) { return x.begin < y.begin; });
  for (unsigned i = 1; i < nr; i++)
    if (b[i].begin < b[i - 1].end) return -EINVAL;  // overlapping: one index would be ambiguous
  const unsigned n = ninst_.load(std::memory_order_acquire);
  for (unsigned i = 0; i < n; i++) {
    const int rc = io_uring_register_buffers(&at(i).ring, iov, nr);
    if (rc != 0) {
      for (unsigned k = 0; k < i; k++) io_uring_unregister_buffers(&at(k).ring);
      return rc;
    }
  }
  buffers_ = std::move(b);
  // Release: pairs with fixed_buffer's acquire; after every instance has them.
  nbuffers_.store(nr, std::memory_order_release);
  return 0;
}

uint16_t uring::personality_for(const sys::creds &mine_creds) noexcept {
  if (!active()) return 0;
  instance &in = mine();
  std::lock_guard lk(in.personality_mu);
  for (unsigned i = 0; i < in.npersonalities; i++)
    if (sys::same_creds(in.personalities[i].creds, mine_creds)) return in.personalities[i].id;
  if (in.npersonalities == kPersonalities) return 0;
  const int id = io_uring_register_personality(&in.ring);
  if (id <= 0) return 0;
  // The kernel took this thread's credentials as they were during the
  // call; another thread's setuid() (which changes this one too) may have
  // come between the snapshot and the registration. Kept only when the
  // credentials are still the snapshot's.
  sys::creds now;
  if (sys::thread_creds(&now) != 0 || !sys::same_creds(now, mine_creds)) {
    io_uring_unregister_personality(&in.ring, id);
    return 0;
  }
  in.personalities[in.npersonalities++] = {mine_creds, static_cast<uint16_t>(id)};
  return static_cast<uint16_t>(id);
}

uring::cancel_result uring::cancel(uint64_t user_data) noexcept {
  if (!active()) return cancel_result::not_found;
  // The request may be on any thread's instance.
  const unsigned n = ninst_.load(std::memory_order_acquire);
  instance *where = nullptr;
  uint64_t tag = 0;
  bool unbounded = false;
  for (unsigned i = 0; i < n && tag == 0; i++) {
    instance &in = at(i);
    std::lock_guard lk(in.list_mu);
    for (request *r = in.inflight_list.front(); r; r = request_list::next(r)) {
      if (r->io.user_data != user_data) continue;
      // Read by harvest: a completion of -ECANCELED is then the cancel's.
      // Read by harvest: a completion of -ECANCELED is then the cancel's.
      r->cancel_requested.store(true, std::memory_order_relaxed);
      tag = tag_of(r);
      unbounded = r->plan.unbounded;
      where = &in;
      break;
    }
  }
  if (tag == 0) return cancel_result::not_found;
  io_uring_sync_cancel_reg reg{};
  reg.addr = tag;
  reg.fd = -1;
  // No waiting: a request that is running answers -EALREADY (or, with a
  // zero timeout, -ETIME) at once, as a running call on the pool does.
  reg.timeout.tv_sec = 0;
  reg.timeout.tv_nsec = 0;
  const int rc = io_uring_register_sync_cancel(&where->ring, &reg);
  // The kernel was asked to stop a running call (an io-wq worker gets a
  // signal): that interrupts a call that waits (a pipe, a socket), not a
  // read of a regular file, which runs to its end.
  cancel_result out = unbounded ? cancel_result::running : cancel_result::in_flight;
  if (rc == 0) {
    out = cancel_result::cancelled;
  } else if (rc == -ENOENT) {
    // Not found by the kernel, yet on the in-flight list: its completion
    // is posted and not harvested yet, or the kernel holds it where its
    // cancel does not look (a buffered read waiting for its pages, a retry
    // in task work, the rest of a nowait-first read not yet submitted).
    // Its event is still to come, with its own result.
    out = cancel_result::in_flight;
  } else if (rc == -EINVAL) {
    queue_cancel(*where, tag, 0);  // before Linux 6.0: ask asynchronously
  }
  harvest_one(*where, false);  // the cancelled request's completion is posted by now
  return out;
}

void uring::close_descriptor() noexcept {
  if (!active()) return;
  const unsigned n = ninst_.load(std::memory_order_acquire);
  for (unsigned i = 0; i < n; i++) {
    instance &in = at(i);
    if (in.ring.ring_fd >= 0) ::close(in.ring.ring_fd);
    in.ring.ring_fd = in.ring.enter_ring_fd = -1;
  }
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  epoll_fd_ = poll_fd_ = -1;
}

void uring::cancel_all(instance &in) noexcept {
  {
    std::lock_guard lk(in.list_mu);
    for (request *r = in.inflight_list.front(); r; r = request_list::next(r))
      r->cancel_requested.store(true, std::memory_order_relaxed);
  }
  // Cancel everything at once (Linux 6.0+); older kernels get one
  // asynchronous cancellation per request.
  io_uring_sync_cancel_reg reg{};
  reg.flags = IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL;
  reg.fd = -1;
  reg.timeout.tv_sec = -1;
  reg.timeout.tv_nsec = -1;
  if (io_uring_register_sync_cancel(&in.ring, &reg) != -EINVAL) return;
  // Before Linux 6.0 (and ANY|ALL before 5.19): one cancellation per
  // request still linked, by its tag.
  std::vector<uint64_t> tags;
  {
    std::lock_guard lk(in.list_mu);
    for (request *r = in.inflight_list.front(); r; r = request_list::next(r)) {
      r->cancel_requested.store(true, std::memory_order_relaxed);
      try {
        if (fault::fail(fault::site::uring_cancel_tags)) throw std::bad_alloc();
        tags.push_back(tag_of(r));
      } catch (...) {
        break;  // what is left finishes on its own
      }
    }
  }
  for (uint64_t t : tags) queue_cancel(in, t, 0);
}

void uring::shutdown() noexcept {
  if (!active() || shut_down_) return;
  shut_down_ = true;
  // Read by harvest: no rest of a nowait-first read is submitted from now
  // on. Relaxed: a harvest that read it false just before submits a rest,
  // which finishes (and is waited for below) like any read under way.
  stopping_.store(true, std::memory_order_relaxed);
  // Every request in flight completes cancelled (AIO2_EVENT_CANCELED when
  // it had not started), however the kernel is asked.
  const unsigned n = ninst_.load(std::memory_order_acquire);
  for (unsigned i = 0; i < n; i++) cancel_all(at(i));
  // What cannot be cancelled (disk I/O under way) finishes; every request
  // gets its event.
  for (unsigned round = 0; inflight() != 0; round++) {
    if (harvest(true) != 0) continue;
    // Waits without consuming (harvest consumes), in io_uring_enter, which
    // also runs this thread's pending task work; each instance in turn.
    instance &in = at(round % n);
    io_uring_cqe *cqe = nullptr;
    __kernel_timespec ts{0, 10 * 1000 * 1000 / n};
    std::lock_guard lk(in.cq_mu);
    io_uring_wait_cqe_timeout(&in.ring, &cqe, &ts);
  }
}

}  // namespace aio2::exec
