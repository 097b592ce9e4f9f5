// SPDX-License-Identifier: MIT
//
// aio2/co.hpp - C++20 coroutines over an aio2 context (header-only, on top
// of aio2/aio2.hpp): `co_await` a request and get its completion event,
// attribute results included, while one thread drives many coroutines.
//
// This header defines, in namespace aio2::co:
//   - event      an owned copy of one completion event;
//   - task<T>    a lazily started coroutine returning T, itself awaitable;
//   - request    the awaitable of one request (driver::submit);
//   - driver     submits what coroutines await, reaps with aio2_getevents
//                and resumes the coroutine whose request completed.
//
//   aio2::context ctx;
//   aio2::co::driver drv(ctx);
//   auto read_at = [&](int fd, void *buf, size_t len, off_t off) -> aio2::co::task<int64_t> {
//     aio2::co::event ev = co_await drv.submit(SYS_pread64, fd, buf, len, off);
//     co_return ev.res();
//   };
//   int64_t got = drv.run(read_at(fd, buf, sizeof buf, 0));  // runs it to the end
//
//   drv.spawn(task);      // any number of task<void>s, started by the loop,
//   drv.run();            // which returns when every one has finished
//
// How it works. Awaiting a request queues it in the driver; the driver's
// loop (run, run_for) resumes the coroutines that are ready, hands
// everything queued to one aio2_submit call, and waits in aio2_getevents.
// Each request is submitted with user_data = the address of its awaitable,
// so an event leads straight to the coroutine to resume; the event handed
// back carries the request's own user_data again. When aio2_submit refuses
// a request with -EAGAIN (the context's in-flight limit) while others are in
// flight, the driver keeps it queued and submits it again after reaping.
//
// Rules.
//   - One thread: a driver, its context's submissions and reaping, and every
//     coroutine that awaits on the driver belong to the thread that calls
//     run; coroutines are resumed only from run and run_for, which a
//     coroutine the driver resumes must not call.
//   - The driver is the only submitter and reaper of its context while it
//     lives (it takes every event's user_data for one of its requests), and
//     the context outlives the driver.
//   - Destruction is safe at any point, and never resumes a coroutine:
//       * a coroutine frame destroyed while it awaits a request (by its
//         owner, or by ~driver) cancels the request (aio2_cancel) and waits
//         for its event before the frame's memory goes, so nothing the
//         request points to is written after it is freed; a request not yet
//         submitted is simply dropped;
//       * ~driver cancels every request in flight, destroys the frames of
//         the tasks it was given with spawn that have not finished (their
//         locals' destructors run; the code after their co_await does not),
//         waits for the events of every request still in flight, and
//         detaches the requests of coroutines it does not own: such a
//         coroutine must then be destroyed, never resumed.
//
// Errors, as in aio2.hpp. A request that aio2_submit refuses (it never ran)
// makes `co_await` throw std::system_error with the errno as
// std::generic_category() and aio2_strerror()'s sentence; with the
// `std::error_code&` overloads, `co_await` sets the code instead and returns
// an empty event. A system call that ran and failed is not an error here:
// its -errno is the event's res(), as it is in the ring. An exception that
// leaves a task propagates to the coroutine that awaits it; one that leaves
// a spawned task is kept, and run (or run_for) rethrows the first such
// exception once everything has finished; the other tasks run on. The driver's own
// errors throw from run and run_for: std::system_error when aio2_getevents
// fails, std::logic_error when spawned tasks wait for nothing it drives.
#ifndef AIO2_CO_HPP
#define AIO2_CO_HPP

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <initializer_list>
#include <optional>
#include <span>
#include <stdexcept>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "aio2/aio2.hpp"

namespace aio2::co {

class driver;
class request;
template <class T = void>
class task;

// ---- Events -----------------------------------------------------------------------

// event - an owned copy of one completion event (an event_view's bytes), so
// that it outlives the buffer it was reaped into. Every accessor but empty()
// needs a non-empty event: co_await gives an empty one only when it reports
// a submission error through a std::error_code.
class event {
 public:
  // event - empty.
  event() noexcept = default;
  // empty - holds no event.
  bool empty() const noexcept { return words_.empty(); }
  // view - the event as an aio2::event_view, valid while this event lives.
  event_view view() const noexcept {
    return event_view(reinterpret_cast<const aio2_event *>(words_.data()));
  }
  // user_data - the request's user_data, as it was built.
  uint64_t user_data() const noexcept { return view().user_data(); }
  // res - the system call's return value, or -errno.
  int64_t res() const noexcept { return view().res(); }
  // error - res() as an error_code when negative, else the empty code.
  std::error_code error() const noexcept { return view().error(); }
  // flags - AIO2_EVENT_* bits.
  uint32_t flags() const noexcept { return view().flags(); }
  // cancelled - the request never ran (AIO2_EVENT_CANCELED, res -ECANCELED).
  bool cancelled() const noexcept { return view().cancelled(); }
  // attrs - the attribute results, one per request attribute, in order.
  attr_range attrs() const noexcept { return view().attrs(); }
  // find_attr - the first result with `id`, or nullopt.
  std::optional<attr_result_view> find_attr(uint16_t id) const noexcept {
    return view().find_attr(id);
  }
  // attr_as - the OK payload of attribute `id` as a T (event_view::attr_as).
  template <class T>
  std::optional<T> attr_as(uint16_t id) const noexcept {
    return view().attr_as<T>(id);
  }
  // bytes - the whole event.
  std::span<const std::byte> bytes() const noexcept { return view().bytes(); }

 private:
  friend class request;
  explicit event(std::vector<uint64_t> words) noexcept : words_(std::move(words)) {}
  std::vector<uint64_t> words_{};
};

namespace detail {

// link / list - an intrusive doubly linked list of waiters, so that a
// waiter destroyed anywhere unlinks itself in constant time.
struct link {
  link *prev = nullptr;
  link *next = nullptr;  // null: not in a list
  std::coroutine_handle<> handle{};
  bool linked() const noexcept { return next != nullptr; }
};

class list {
 public:
  list() noexcept { head_.prev = head_.next = &head_; }
  list(const list &) = delete;
  list &operator=(const list &) = delete;
  bool empty() const noexcept { return head_.next == &head_; }
  std::size_t size() const noexcept { return size_; }
  link *front() const noexcept { return empty() ? nullptr : head_.next; }
  // next - the link after `l` (which is in this list), or null at the end.
  link *next(const link *l) const noexcept { return l->next == &head_ ? nullptr : l->next; }
  void push_back(link *l) noexcept {
    l->prev = head_.prev;
    l->next = &head_;
    head_.prev->next = l;
    head_.prev = l;
    size_++;
  }
  // remove - unlink `l` when it is in a list (this one).
  void remove(link *l) noexcept {
    if (!l->linked()) return;
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l->next = nullptr;
    size_--;
  }
  link *pop_front() noexcept {
    link *l = front();
    if (l != nullptr) remove(l);
    return l;
  }

 private:
  link head_{};
  std::size_t size_ = 0;
};

// The part of every task's promise that does not depend on T.
struct promise_base {
  std::coroutine_handle<> continuation{};  // who awaits this task
  std::exception_ptr error{};
  driver *owner = nullptr;  // spawned: the driver that owns the frame
  link start{};             // spawned: queued to start in the driver's loop
  link root{};              // spawned: in the driver's list of tasks

  // A task that finishes resumes its awaiter, or, spawned, tells its driver,
  // which destroys the frame (it is suspended for good here).
  struct final_awaiter {
    bool await_ready() const noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept;
    void await_resume() const noexcept {}
  };
  std::suspend_always initial_suspend() const noexcept { return {}; }
  final_awaiter final_suspend() const noexcept { return {}; }
  void unhandled_exception() noexcept { error = std::current_exception(); }
};

template <class T>
struct promise : promise_base {
  std::optional<T> value{};
  task<T> get_return_object() noexcept;
  template <class U = T>
  void return_value(U &&v) noexcept(std::is_nothrow_constructible_v<T, U &&>) {
    value.emplace(std::forward<U>(v));
  }
  T result() {
    if (error) std::rethrow_exception(error);
    return std::move(*value);
  }
};

template <>
struct promise<void> : promise_base {
  task<void> get_return_object() noexcept;
  void return_void() const noexcept {}
  void result() const {
    if (error) std::rethrow_exception(error);
  }
};

// A spawned task finished (defined after driver).
void task_done(driver *d, promise_base &p) noexcept;

template <class P>
std::coroutine_handle<> promise_base::final_awaiter::await_suspend(
    std::coroutine_handle<P> h) noexcept {
  promise_base &p = h.promise();
  if (p.continuation) return p.continuation;
  if (p.owner != nullptr) task_done(p.owner, p);  // destroys the frame: touch nothing after
  return std::noop_coroutine();
}

}  // namespace detail

// ---- Tasks -------------------------------------------------------------------------

// task - a coroutine returning T that starts when it is awaited (co_await
// runs it and gives its value or rethrows its exception) or given to
// driver::spawn. Move-only; destroying a task that has not finished
// destroys its frame (see the destruction rules above). Await it once.
template <class T>
class task {
 public:
  using promise_type = detail::promise<T>;

  task(task &&o) noexcept : h_(std::exchange(o.h_, {})) {}
  task &operator=(task &&o) noexcept {
    if (this != &o) {
      if (h_) h_.destroy();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  task(const task &) = delete;
  task &operator=(const task &) = delete;
  ~task() {
    if (h_) h_.destroy();
  }

  // awaiter - runs the task with the awaiting coroutine as its continuation.
  struct awaiter {
    std::coroutine_handle<promise_type> h;
    bool await_ready() const noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> cont) noexcept {
      h.promise().continuation = cont;
      return h;
    }
    T await_resume() { return h.promise().result(); }
  };
  // operator co_await - start the task; resume when it finishes.
  awaiter operator co_await() const noexcept { return awaiter{h_}; }

 private:
  friend struct detail::promise<T>;
  friend class driver;
  explicit task(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}
  std::coroutine_handle<promise_type> release() noexcept { return std::exchange(h_, {}); }

  std::coroutine_handle<promise_type> h_{};
};

namespace detail {
template <class T>
task<T> promise<T>::get_return_object() noexcept {
  return task<T>(std::coroutine_handle<promise<T>>::from_promise(*this));
}
inline task<void> promise<void>::get_return_object() noexcept {
  return task<void>(std::coroutine_handle<promise<void>>::from_promise(*this));
}
}  // namespace detail

// ---- Requests ----------------------------------------------------------------------

// request - the awaitable of one request (driver::submit). co_await queues
// it in the driver, which submits it; the coroutine resumes with its event.
// Not copyable or movable: its address is the request's user_data.
class request : private detail::link {
 public:
  request(const request &) = delete;
  request &operator=(const request &) = delete;
  // ~request - a request still queued is dropped; one in flight is
  // cancelled and its event waited for (see the destruction rules above).
  ~request();

  // await_ready - true only when the request was refused before it was
  // queued (more or fewer than one request in the builder: EINVAL).
  bool await_ready() const noexcept { return state_ == state::done; }
  // await_suspend - queue the request in the driver.
  void await_suspend(std::coroutine_handle<> h) noexcept;
  // await_resume - the event; throws std::system_error when the request was
  // refused, or sets the caller's error_code and returns an empty event.
  event await_resume() {
    state_ = state::done;
    if (err_) {
      if (ec_ == nullptr) aio2::detail::throw_error(err_, "aio2_submit");
      *ec_ = err_;
      return event();
    }
    if (ec_ != nullptr) ec_->clear();
    return event(std::move(ev_));
  }

 private:
  friend class driver;
  enum class state : uint8_t { idle, queued, in_flight, ready, done };

  // request - from the bytes of `count` built requests: one, else EINVAL.
  request(driver &d, std::error_code *ec, std::span<const std::byte> one, std::size_t count)
      : drv_(&d), ec_(ec) {
    uint32_t len = 0;
    if (one.size() >= sizeof len) std::memcpy(&len, one.data(), sizeof len);
    if (count != 1 || one.size() < sizeof(aio2_iocb) || len != one.size()) {
      fail(aio2::detail::make_error(-EINVAL));
      return;
    }
    req_.resize(one.size() / 8);
    std::memcpy(req_.data(), one.data(), one.size());
    aio2_iocb *io = reinterpret_cast<aio2_iocb *>(req_.data());
    user_data_ = io->user_data;
    io->user_data = reinterpret_cast<uintptr_t>(this);
  }
  void fail(std::error_code ec) noexcept {
    err_ = ec;
    state_ = state::done;
  }
  // The event arrived: keep a copy with the caller's user_data.
  void complete(event_view ev) {
    ev_.assign((ev.size() + 7) / 8, 0);
    std::memcpy(ev_.data(), ev.bytes().data(), ev.size());
    reinterpret_cast<aio2_event *>(ev_.data())->user_data = user_data_;
  }
  std::span<const std::byte> bytes() const noexcept {
    return std::as_bytes(std::span<const uint64_t>(req_));
  }

  driver *drv_;                // null once detached by ~driver
  std::error_code *ec_;        // the caller's code, or null: throw
  std::vector<uint64_t> req_;  // the request, with user_data = this
  uint64_t user_data_ = 0;     // the caller's user_data
  std::vector<uint64_t> ev_;   // the event, once it came
  std::error_code err_{};      // why it was refused
  state state_ = state::idle;
};

// ---- The driver ---------------------------------------------------------------------

// driver - runs coroutines over one RING context (not owned; it must
// outlive the driver) from the thread that calls run. Neither copyable nor
// movable: requests point at it.
class driver {
 public:
  // driver - over `ctx`; events are reaped into a buffer of `reap_bytes`
  // (grown when an event needs more).
  explicit driver(context &ctx, std::size_t reap_bytes = 65536)
      : ctx_(ctx), buf_((reap_bytes + 7) / 8 > 0 ? (reap_bytes + 7) / 8 : 1) {}
  driver(const driver &) = delete;
  driver &operator=(const driver &) = delete;
  // ~driver - see the destruction rules at the top of this header.
  ~driver();

  // submit - the awaitable of the one request in `b` (copied: `b` may be
  // changed or destroyed at once). It is submitted when awaited. More or
  // fewer than one request: co_await reports EINVAL.
  [[nodiscard]] request submit(const request_builder &b) { return make(b, nullptr); }
  // submit - the same; co_await reports refusal in `ec` instead of throwing.
  [[nodiscard]] request submit(const request_builder &b, std::error_code &ec) {
    return make(b, &ec);
  }
  // submit - the awaitable of system call `nr` with up to six arguments,
  // each an integer (converted to uint64_t as the kernel takes it: -1 is all
  // ones) or a pointer; no attributes, user_data 0, no flags. For those, or
  // for errors in a std::error_code, build the request.
  template <class... Args>
  [[nodiscard]] request submit(long nr, Args... args) {
    static_assert(sizeof...(Args) <= 6, "a system call takes at most six arguments");
    request_builder b;
    b.add(nr, 0, {arg(args)...});
    return make(b, nullptr);
  }

  // spawn - take `t`, start it in the driver's loop, destroy its frame when
  // it finishes; an exception that leaves it is rethrown by run.
  void spawn(task<void> t) {
    auto h = t.release();
    if (!h) return;
    detail::promise_base &p = h.promise();
    p.owner = this;
    p.start.handle = h;
    p.root.handle = h;
    tasks_.push_back(&p.root);
    starting_.push_back(&p.start);
  }
  // post - resume `h` from the driver's loop, after what is ready now
  // (`h` must stay suspended and alive until then).
  void post(std::coroutine_handle<> h) { posted_.push_back(h); }

  // run - until every spawned task has finished and no request is queued or
  // in flight. Rethrows the first exception that left a spawned task. Throws
  // std::logic_error when spawned tasks remain but wait for nothing the
  // driver drives (nothing is queued, ready or in flight).
  void run() {
    while (turn(nullptr)) {
    }
    finish();
  }
  // run - spawn `t`, run, and return its value (or rethrow its exception,
  // or the first exception of another spawned task).
  template <class T>
  T run(task<T> t) {
    if constexpr (std::is_void_v<T>) {
      spawn(std::move(t));
      run();
    } else {
      std::optional<T> out;
      spawn(capture(std::move(t), out));
      run();
      return std::move(*out);
    }
  }
  // run_for - run for at most `limit`; true when everything finished (it
  // then rethrows as run does), false when work remains.
  bool run_for(std::chrono::nanoseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    for (;;) {
      const auto left = end - std::chrono::steady_clock::now();
      timespec ts{};
      if (left > std::chrono::nanoseconds::zero()) {
        const auto s = std::chrono::duration_cast<std::chrono::seconds>(left);
        ts.tv_sec = static_cast<time_t>(s.count());
        ts.tv_nsec = static_cast<long>((left - s).count());
      }
      if (!turn(&ts)) break;
      if (left <= std::chrono::nanoseconds::zero()) return false;
    }
    finish();
    return true;
  }

  // in_flight - requests submitted whose events have not been reaped.
  std::size_t in_flight() const noexcept { return in_flight_.size(); }
  // queued - requests awaited and not yet submitted.
  std::size_t queued() const noexcept { return queued_.size(); }
  // tasks - spawned tasks that have not finished.
  std::size_t tasks() const noexcept { return tasks_.size(); }
  // ctx - the context.
  context &ctx() const noexcept { return ctx_; }

 private:
  friend class request;
  friend void detail::task_done(driver *, detail::promise_base &) noexcept;

  request make(const request_builder &b, std::error_code *ec) {
    return request(*this, ec, b.bytes(), b.count());
  }

  template <class T>
  static task<void> capture(task<T> t, std::optional<T> &out) {
    out.emplace(co_await t);
  }

  // arg - one system-call argument as the request holds it.
  template <class A>
  static uint64_t arg(A a) noexcept {
    static_assert(std::is_integral_v<A> || std::is_enum_v<A> || std::is_pointer_v<A> ||
                      std::is_null_pointer_v<A>,
                  "system-call arguments are integers or pointers");
    if constexpr (std::is_pointer_v<A>)
      return reinterpret_cast<uintptr_t>(a);
    else if constexpr (std::is_null_pointer_v<A>)
      return 0;
    else if constexpr (std::is_enum_v<A>)
      return static_cast<uint64_t>(static_cast<std::underlying_type_t<A>>(a));
    else
      return static_cast<uint64_t>(a);
  }

  static request *as_request(detail::link *l) noexcept { return static_cast<request *>(l); }

  // One turn of the loop: resume what is ready, submit what is queued, and
  // wait up to `wait` (null: for ever) for events. False when nothing is
  // left to do.
  bool turn(const timespec *wait) {
    resume_ready();
    flush();
    if (!ready_.empty() || !starting_.empty() || !posted_.empty()) return true;
    if (in_flight_.empty()) {
      if (!tasks_.empty() && queued_.empty())
        throw std::logic_error(
            "aio2::co::driver::run: tasks wait for nothing the driver drives");
      return !queued_.empty();
    }
    std::error_code ec;
    reap(1, wait, ec);
    if (ec) aio2::detail::throw_error(ec, "aio2_getevents");
    return true;
  }

  void finish() {
    if (first_error_) std::rethrow_exception(std::exchange(first_error_, nullptr));
  }

  void resume_ready() {
    for (;;) {
      if (detail::link *l = ready_.pop_front()) {
        l->handle.resume();
      } else if (detail::link *t = starting_.pop_front()) {
        t->handle.resume();
      } else if (!posted_.empty()) {
        const std::coroutine_handle<> h = posted_.front();
        posted_.pop_front();
        h.resume();
      } else {
        return;
      }
    }
  }

  // Submits the queued requests in order, as few aio2_submit calls as the
  // context accepts them in.
  void flush() {
    while (!queued_.empty()) {
      batch_.clear();
      std::size_t n = 0;
      for (detail::link *l = queued_.front(); l != nullptr && n < kBatch; l = queued_.next(l), n++) {
        const std::span<const std::byte> b = as_request(l)->bytes();
        const std::size_t at = batch_.size();
        batch_.resize(at + b.size() / 8);
        std::memcpy(batch_.data() + at, b.data(), b.size());
      }
      const ssize_t got = aio2_submit(ctx_.native_handle(), batch_.data(), batch_.size() * 8);
      if (got < 0) {
        request *r = as_request(queued_.front());
        // The in-flight limit: submit it again once events came back.
        if (got == -EAGAIN && !in_flight_.empty()) return;
        queued_.remove(r);
        r->fail(aio2::detail::make_error(got));
        r->state_ = request::state::ready;
        ready_.push_back(r);
        continue;
      }
      for (std::size_t done = 0; done < static_cast<std::size_t>(got);) {
        request *r = as_request(queued_.pop_front());
        done += r->req_.size() * 8;
        r->state_ = request::state::in_flight;
        in_flight_.push_back(r);
      }
    }
  }

  // Reaps what has come (waiting up to `wait` for `min` events) and hands
  // each event to its request, which becomes ready. Errors in `ec`.
  void reap(unsigned min, const timespec *wait, std::error_code &ec) {
    ec.clear();
    for (;;) {
      const ssize_t got = aio2_getevents(ctx_.native_handle(), min, buf_.data(), buf_.size() * 8,
                                         wait);
      if (got == -EINTR) return;
      if (got == -EINVAL) {
        uint32_t need = 0;
        std::memcpy(&need, buf_.data(), sizeof need);
        if (need > buf_.size() * 8) {
          buf_.resize((need + 7) / 8);
          continue;
        }
      }
      if (got < 0) {
        ec = aio2::detail::make_error(got);
        return;
      }
      const std::span<const std::byte> bytes(reinterpret_cast<const std::byte *>(buf_.data()),
                                             static_cast<std::size_t>(got));
      for (event_view ev : event_range(bytes)) {
        request *r = reinterpret_cast<request *>(static_cast<uintptr_t>(ev.user_data()));
        r->complete(ev);
        in_flight_.remove(r);
        r->state_ = request::state::ready;
        ready_.push_back(r);
      }
      return;
    }
  }

  // A request in flight whose coroutine is being destroyed: cancel it and
  // wait for its event. Its memory stays safe only if the event comes, so a
  // driver that can no longer reap ends the program.
  void abandon(request &r) noexcept {
    (void)aio2_cancel(ctx_.native_handle(), reinterpret_cast<uintptr_t>(&r));
    while (r.state_ == request::state::in_flight) {
      std::error_code ec;
      try {
        reap(1, nullptr, ec);
      } catch (...) {
        std::terminate();  // no memory for an event copy
      }
      if (ec) std::terminate();
    }
  }

  static constexpr std::size_t kBatch = 256;  // requests per aio2_submit

  context &ctx_;
  std::vector<uint64_t> buf_;    // reaped events
  std::vector<uint64_t> batch_;  // requests being submitted
  detail::list queued_;          // requests awaited, not yet submitted
  detail::list in_flight_;       // requests submitted, events not reaped
  detail::list ready_;           // requests whose coroutines are to resume
  detail::list starting_;        // spawned tasks to start
  detail::list tasks_;           // spawned tasks not finished
  std::deque<std::coroutine_handle<>> posted_;
  std::exception_ptr first_error_{};
};

inline void request::await_suspend(std::coroutine_handle<> h) noexcept {
  handle = h;
  state_ = state::queued;
  drv_->queued_.push_back(this);
}

inline request::~request() {
  if (drv_ == nullptr) return;
  switch (state_) {
    case state::queued: drv_->queued_.remove(this); break;
    case state::in_flight: drv_->abandon(*this); [[fallthrough]];
    case state::ready: drv_->ready_.remove(this); break;
    case state::idle:
    case state::done: break;
  }
}

inline driver::~driver() {
  // Nothing is resumed from here on, and nothing queued is submitted.
  for (detail::link *l = in_flight_.front(); l != nullptr; l = in_flight_.next(l))
    (void)aio2_cancel(ctx_.native_handle(), reinterpret_cast<uintptr_t>(as_request(l)));
  while (starting_.pop_front() != nullptr) {
  }
  posted_.clear();
  // The spawned tasks' frames: a request in flight in one waits for its
  // event in its destructor.
  while (detail::link *l = tasks_.pop_front()) l->handle.destroy();
  // Requests of coroutines this driver does not own.
  while (!in_flight_.empty()) {
    std::error_code ec;
    try {
      reap(1, nullptr, ec);
    } catch (...) {
      std::terminate();
    }
    if (ec) std::terminate();
  }
  for (detail::list *l : {&queued_, &ready_})
    while (detail::link *r = l->pop_front()) as_request(r)->drv_ = nullptr;
}

namespace detail {
inline void task_done(driver *d, promise_base &p) noexcept {
  d->tasks_.remove(&p.root);
  if (p.error && !d->first_error_) d->first_error_ = p.error;
  p.root.handle.destroy();
}
}  // namespace detail

}  // namespace aio2::co

#endif  // AIO2_CO_HPP
