// SPDX-License-Identifier: MIT
#include "attr/registry.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <new>

#include "attr/builtins.h"
#include "util/fault.h"

namespace aio2::attr {

namespace {

constexpr uint32_t kMaxResult = 4096;

// One slot per id. A slot is written once, with release, by add() (under
// add_mu so two registrations of one id cannot both win) and read with
// acquire by lookup(), which then sees the handler's fields. Handlers are
// never freed. 64 Ki pointers of zero-filled BSS: pages are only touched
// where ids are registered.
std::atomic<const aio2_attr_handler *> g_table[65536];
std::mutex g_add_mu;

int add_locked(const aio2_attr_handler &h, bool builtin) noexcept {
  if (h.size < sizeof(aio2_attr_handler) || (h.flags & ~AIO2_ATTR_HANDLER_ALL) || (h.result_size & 7u) ||
      h.result_size > kMaxResult || h.payload_min > h.payload_max || !(h.paths & AIO2_PATH_ALL) ||
      (h.paths & ~AIO2_PATH_ALL) || h.id == 0)
    return -EINVAL;
  if (!builtin && h.id < AIO2_ATTR_USER_MIN) return -ERANGE;
  if (g_table[h.id].load(std::memory_order_acquire) != nullptr) return -EEXIST;
  // A built-in handler is a constant of static storage, used as it is (a
  // copy that failed would leave the id unregistered, without a word); a
  // user's is copied, since the caller's may go away.
  const aio2_attr_handler *copy = &h;
  if (!builtin) {
    copy = fault::fail(fault::site::attr_handler) ? nullptr
                                                  : new (std::nothrow) aio2_attr_handler(h);
    if (copy == nullptr) return -ENOMEM;
  }
  g_table[h.id].store(copy, std::memory_order_release);
  return 0;
}

bool register_builtins() noexcept {
  std::lock_guard lk(g_add_mu);
  for (const aio2_attr_handler *h :
       {&timing_handler, &tag_handler, &deadline_handler, &executor_handler, &cache_handler,
        &ioprio_handler, &rusage_handler})
    add_locked(*h, true);
  return true;
}

void ensure_builtins() noexcept {
  static const bool done = register_builtins();  // thread-safe once
  (void)done;
}

}  // namespace

void not_applicable_unless_started(aio2_attr_hook *h) noexcept {
  if (!h->started) h->status = AIO2_ATTR_NOT_APPLICABLE;
}

namespace {
thread_local uint64_t t_batch_now = 0;  // non-zero inside a one_clock_read scope

uint64_t read_clock() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}
}  // namespace

uint64_t monotonic_ns() noexcept { return t_batch_now ? t_batch_now : read_clock(); }

one_clock_read::one_clock_read() noexcept : saved_(t_batch_now) { t_batch_now = read_clock(); }
one_clock_read::~one_clock_read() { t_batch_now = saved_; }

namespace {
// One scope per shared_clock kind: whether one is open in this thread, and
// its reading (0 until its first use).
struct shared_state {
  bool in = false;
  uint64_t now = 0;
};
thread_local shared_state t_shared[2];

shared_state &state_of(shared_clock c) noexcept { return t_shared[static_cast<int>(c)]; }

uint64_t shared_ns(shared_clock c) noexcept {
  shared_state &st = state_of(c);
  if (!st.in) return monotonic_ns();
  if (st.now == 0) st.now = monotonic_ns();
  return st.now;
}
}  // namespace

uint64_t submit_ns() noexcept { return shared_ns(shared_clock::submit); }
uint64_t start_ns() noexcept { return shared_ns(shared_clock::queue); }

one_shared_reading::one_shared_reading(shared_clock c) noexcept
    : c_(c), saved_in_(state_of(c).in), saved_now_(state_of(c).now) {
  state_of(c).in = true;
  state_of(c).now = 0;
}

one_shared_reading::~one_shared_reading() {
  state_of(c_).in = saved_in_;
  state_of(c_).now = saved_now_;
}

const aio2_attr_handler *lookup(uint16_t id) noexcept {
  ensure_builtins();
  return g_table[id].load(std::memory_order_acquire);
}

int add(const aio2_attr_handler &h, bool builtin) noexcept {
  ensure_builtins();
  std::lock_guard lk(g_add_mu);
  return add_locked(h, builtin);
}

// ---- per-request state ------------------------------------------------------

bool request_attrs::make() noexcept {
  if (d_) return true;
  d_.reset(new (std::nothrow) data);
  return d_ != nullptr;
}

int request_attrs::keep_records(const unsigned char *src, uint32_t n) noexcept {
  if (n == 0) {
    if (d_) d_->records.clear();
    return 0;
  }
  if (fault::fail(fault::site::attr_bytes) || !make()) return -ENOMEM;
  try {
    d_->records.assign(src, src + n);  // keeps capacity across reuse
  } catch (...) {
    return -ENOMEM;
  }
  return 0;
}

int request_attrs::reserve_event(size_t len) noexcept {
  if (d_ && d_->event.capacity() >= len) return 0;
  if (fault::fail(fault::site::event_bytes) || !make()) return -ENOMEM;
  try {
    d_->event.reserve(len);
  } catch (...) {
    return -ENOMEM;
  }
  return 0;
}

unsigned char *request_attrs::event_room(size_t len) noexcept {
  d_->event.resize(len);  // within the capacity reserve_event took: never allocates
  return d_->event.data();
}

int request_attrs::prepare(const aio2_iocb &io, const unsigned char *attrs, uint32_t bytes,
                           uint32_t path, bool nowait_first) noexcept {
  if (bytes == 0) {  // nothing to set up: the hooks never run
    if (d_) d_->insts.clear();
    return 0;
  }
  if (fault::fail(fault::site::attr_state) || !make()) return -ENOMEM;
  data &d = *d_;
  d.insts.clear();
  d.path = path;
  d.nowait_first = nowait_first;
  d.nowait_done = -1;
  d.ioprio = -1;
  d.ran = false;
  d.befores = 0;
  uint32_t result_words = 0;
  try {
    for (uint32_t off = 0; off < bytes;) {
      aio2_attr a;
      std::memcpy(&a, attrs + off, sizeof a);
      instance in{lookup(a.id), off + static_cast<uint32_t>(sizeof a),
                  a.len - static_cast<uint32_t>(sizeof a), result_words * 8, a.id,
                  AIO2_ATTR_OK};
      if (in.h == nullptr) in.status = AIO2_ATTR_UNSUPPORTED;
      else if (!(in.h->paths & path)) in.status = AIO2_ATTR_UNAVAILABLE;
      else result_words += in.h->result_size / 8;
      d.insts.push_back(in);
      off += a.len;
    }
    d.results.assign(result_words, 0);  // keeps capacity across reuse
  } catch (...) {
    d.insts.clear();
    return -ENOMEM;
  }
  for (size_t i = 0; i < d.insts.size(); i++) {
    instance &in = d.insts[i];
    if (in.status != AIO2_ATTR_OK || in.h->on_submit == nullptr) continue;
    aio2_attr_hook h = hook(i, io, attrs, 0, 0);
    if (int err = in.h->on_submit(&h)) return err < 0 ? err : -EINVAL;
    take(in, h);
  }
  return 0;
}

aio2_attr_hook request_attrs::hook(size_t index, const aio2_iocb &io,
                                   const unsigned char *attrs, uint32_t worker,
                                   int64_t res) noexcept {
  const data &d = *d_;
  const instance &in = d.insts[index];
  aio2_attr_hook h{};
  h.req = &io;
  h.payload = attrs + in.payload_off;
  h.payload_len = in.payload_len;
  h.path = d.path;
  h.result = reinterpret_cast<unsigned char *>(d_->results.data()) + in.result_off;
  h.result_len = in.h->result_size;
  h.status = in.status;
  h.ran = d.ran;
  h.res = res;
  h.worker = worker;
  h.started = index < d.befores;
  h.nowait_first = d.nowait_first;
  h.nowait_done = d.nowait_done;
  h.ioprio = -1;
  h.user = in.h->user;
  return h;
}

void request_attrs::take(instance &in, const aio2_attr_hook &h) noexcept { in.status = h.status; }

bool request_attrs::before(const aio2_iocb &io, const unsigned char *attrs, uint32_t worker,
                           int64_t *res) noexcept {
  if (empty()) return true;
  // In request order, up to the first hook that says not to run the call:
  // later attributes never see a before (nor an after) for a call that will
  // not run.
  data &d = *d_;
  d.ran = true;
  d.befores = 0;
  while (d.befores < d.insts.size()) {
    const size_t i = d.befores++;
    instance &in = d.insts[i];
    if (in.status != AIO2_ATTR_OK || in.h->before == nullptr) continue;
    aio2_attr_hook h = hook(i, io, attrs, worker, 0);
    const int rc = in.h->before(&h);
    take(in, h);
    if (h.ioprio >= 0) d.ioprio = h.ioprio;
    if (rc == 1) {
      *res = h.res;
      d.ran = false;
      break;
    }
  }
  return d.ran;
}

void request_attrs::after(const aio2_iocb &io, const unsigned char *attrs, uint32_t worker,
                          int64_t res) noexcept {
  if (empty()) return;
  // Reverse order, and only for the attributes whose before turn came.
  for (size_t i = d_->befores; i-- > 0;) {
    instance &in = d_->insts[i];
    if (in.status != AIO2_ATTR_OK || in.h->after == nullptr) continue;
    aio2_attr_hook h = hook(i, io, attrs, worker, res);
    in.h->after(&h);
    take(in, h);
  }
}

void request_attrs::post(const aio2_iocb &io, const unsigned char *attrs, int64_t res) noexcept {
  if (empty()) return;
  for (size_t i = 0; i < d_->insts.size(); i++) {
    instance &in = d_->insts[i];
    if (in.status != AIO2_ATTR_OK || in.h->on_post == nullptr) continue;
    aio2_attr_hook h = hook(i, io, attrs, 0, res);
    in.h->on_post(&h);
    take(in, h);
  }
}

bool request_attrs::wants_nowait() const noexcept {
  if (empty()) return false;
  for (const instance &in : d_->insts)
    if (in.status == AIO2_ATTR_OK && (in.h->flags & AIO2_ATTR_HANDLER_NOWAIT)) return true;
  return false;
}

uint32_t request_attrs::result_bytes() const noexcept {
  if (empty()) return 0;
  uint32_t n = 0;
  for (const instance &in : d_->insts)
    n += static_cast<uint32_t>(sizeof(aio2_attr_ret)) +
         (in.status == AIO2_ATTR_OK ? in.h->result_size : 0);
  return n;
}

uint32_t request_attrs::max_result_bytes() const noexcept {
  if (empty()) return 0;
  uint32_t n = 0;
  for (const instance &in : d_->insts)
    n += static_cast<uint32_t>(sizeof(aio2_attr_ret)) + (in.h ? in.h->result_size : 0);
  return n;
}

void request_attrs::write_results(unsigned char *dst) const noexcept {
  if (empty()) return;
  const auto *res = reinterpret_cast<const unsigned char *>(d_->results.data());
  for (const instance &in : d_->insts) {
    const uint32_t payload = in.status == AIO2_ATTR_OK ? in.h->result_size : 0;
    const aio2_attr_ret r{in.id, in.status, static_cast<uint32_t>(sizeof(aio2_attr_ret)) + payload};
    std::memcpy(dst, &r, sizeof r);
    if (payload) std::memcpy(dst + sizeof r, res + in.result_off, payload);
    dst += sizeof r + payload;
  }
}

}  // namespace aio2::attr

extern "C" int aio2_attr_register(const aio2_attr_handler *h) {
  return h ? aio2::attr::add(*h, false) : -EINVAL;
}
