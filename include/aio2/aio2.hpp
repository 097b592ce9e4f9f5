// SPDX-License-Identifier: MIT
//
// aio2/aio2.hpp - a thin, header-only C++20 layer over the aio2 C API
// (aio2/aio2.h). It adds ownership, spans and typed views, and nothing else:
// every operation is one call to the C API or one of its inline helpers.
//
// This header defines, in namespace aio2:
//   - attr_result_view / attr_range    one attribute result of an event, and
//                                      the results of an event in order;
//   - event_view / event_range         one completion event, and a forward
//                                      range over a buffer of events;
//   - request_builder                  builds requests (with attributes) into
//                                      an 8-byte aligned buffer, using
//                                      aio2_prep and aio2_attr_add;
//   - cancel_result, reap_result       results of context::cancel / reap;
//   - context                          RAII owner of an aio2_ctx*;
//   - call                             aio2_call on the process-wide SYNC
//                                      context.
//
// Errors. The C API returns -errno; here it becomes
// std::error_code(errno, std::generic_category()). Every fallible operation
// has two overloads: one taking `std::error_code&` (noexcept; it clears the
// code on success) and one that throws std::system_error carrying that code
// and aio2_strerror()'s sentence. Views never own memory: an event_view or
// event_range is valid as long as the buffer it points into.
#ifndef AIO2_AIO2_HPP
#define AIO2_AIO2_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <ranges>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "aio2/aio2.h"

namespace aio2 {

namespace detail {

// make_error - the error_code for a negative errno `err` returned by aio2.
inline std::error_code make_error(long long err) noexcept {
  return std::error_code(static_cast<int>(-err), std::generic_category());
}

// throw_error - throw std::system_error for `ec` with aio2_strerror's text.
[[noreturn]] inline void throw_error(const std::error_code &ec, const char *where) {
  std::string what(where);
  what += ": ";
  what += aio2_strerror(-ec.value());
  throw std::system_error(ec, what);
}

// throw_if - throw when `ec` holds an error.
inline void throw_if(const std::error_code &ec, const char *where) {
  if (ec) throw_error(ec, where);
}

}  // namespace detail

// ---- Attribute results -------------------------------------------------------

// attr_result_view - one struct aio2_attr_ret inside an event (non-owning).
class attr_result_view {
 public:
  // attr_result_view - wrap a result record; `r` must not be null.
  explicit attr_result_view(const aio2_attr_ret *r) noexcept : r_(r) {}
  // id - the attribute's id.
  uint16_t id() const noexcept { return r_->id; }
  // status - AIO2_ATTR_OK, _UNSUPPORTED, _NOT_APPLICABLE, _UNAVAILABLE or _ERROR.
  uint16_t status() const noexcept { return r_->status; }
  // ok - status() == AIO2_ATTR_OK.
  bool ok() const noexcept { return r_->status == AIO2_ATTR_OK; }
  // payload - the result payload after the 8-byte header (empty unless OK).
  std::span<const std::byte> payload() const noexcept {
    return {reinterpret_cast<const std::byte *>(r_) + sizeof(aio2_attr_ret),
            r_->len - sizeof(aio2_attr_ret)};
  }
  // native - the C record.
  const aio2_attr_ret *native() const noexcept { return r_; }

 private:
  const aio2_attr_ret *r_;
};

// attr_range - the attribute results of one event, in request order, walked
// with aio2_attr_next: a result shorter than its header, not a multiple of 8
// or running past the event ends the walk, so a damaged event cannot loop or
// overrun.
class attr_range : public std::ranges::view_base {
 public:
  // iterator - forward iterator yielding attr_result_view by value.
  class iterator {
   public:
    using iterator_concept = std::forward_iterator_tag;
    using iterator_category = std::input_iterator_tag;  // yields prvalues
    using value_type = attr_result_view;
    using difference_type = std::ptrdiff_t;

    // iterator - the end iterator.
    iterator() noexcept = default;
    // iterator - position at `r` (null: end), a result of `ev` that
    // aio2_attr_next returned.
    iterator(const aio2_event *ev, const aio2_attr_ret *r) noexcept : ev_(ev), r_(r) {}
    // operator* - the current result.
    attr_result_view operator*() const noexcept { return attr_result_view(r_); }
    // operator++ - the next result (aio2_attr_next), or end.
    iterator &operator++() noexcept {
      r_ = aio2_attr_next(ev_, r_);
      return *this;
    }
    iterator operator++(int) noexcept {
      iterator old = *this;
      ++*this;
      return old;
    }
    friend bool operator==(const iterator &a, const iterator &b) noexcept { return a.r_ == b.r_; }

   private:
    const aio2_event *ev_ = nullptr;
    const aio2_attr_ret *r_ = nullptr;
  };

  // attr_range - empty.
  attr_range() noexcept = default;
  // attr_range - the results of `ev` (not null).
  explicit attr_range(const aio2_event *ev) noexcept : ev_(ev) {}
  // begin - the first result.
  iterator begin() const noexcept {
    return iterator(ev_, ev_ != nullptr ? aio2_attr_next(ev_, nullptr) : nullptr);
  }
  // end - past the last result.
  iterator end() const noexcept { return iterator(); }
  // empty - no result.
  bool empty() const noexcept { return begin() == end(); }
  // front - the first result; the range must not be empty.
  attr_result_view front() const noexcept { return *begin(); }

 private:
  const aio2_event *ev_ = nullptr;
};

// ---- Events -------------------------------------------------------------------

// event_view - one struct aio2_event in a caller's buffer (non-owning).
class event_view {
 public:
  // event_view - wrap an event; `ev` must not be null.
  explicit event_view(const aio2_event *ev) noexcept : ev_(ev) {}
  // user_data - the request's user_data.
  uint64_t user_data() const noexcept { return ev_->user_data; }
  // res - the system call's return value, or -errno.
  int64_t res() const noexcept { return ev_->res; }
  // error - res() as an error_code when negative, else the empty code.
  std::error_code error() const noexcept {
    return ev_->res < 0 ? detail::make_error(ev_->res) : std::error_code();
  }
  // flags - AIO2_EVENT_* bits.
  uint32_t flags() const noexcept { return ev_->flags; }
  // cancelled - the request never ran (AIO2_EVENT_CANCELED, res -ECANCELED).
  bool cancelled() const noexcept { return (ev_->flags & AIO2_EVENT_CANCELED) != 0; }
  // size - bytes of the event, attribute results included.
  std::size_t size() const noexcept { return ev_->len; }
  // bytes - the whole event as bytes (for copying it out of a reused buffer).
  std::span<const std::byte> bytes() const noexcept {
    return {reinterpret_cast<const std::byte *>(ev_), ev_->len};
  }
  // attrs - the attribute results, one per request attribute, in order.
  attr_range attrs() const noexcept { return attr_range(ev_); }
  // find_attr - the first result with `id` (aio2_event_find_attr), or nullopt.
  std::optional<attr_result_view> find_attr(uint16_t id) const noexcept {
    const aio2_attr_ret *r = aio2_event_find_attr(ev_, id);
    if (r == nullptr) return std::nullopt;
    return attr_result_view(r);
  }
  // attr_as - the payload of attribute `id` copied into a T, when its status
  // is OK and the payload holds at least sizeof(T) bytes
  // (aio2_event_attr_payload); else nullopt.
  template <class T>
  std::optional<T> attr_as(uint16_t id) const noexcept {
    static_assert(std::is_trivially_copyable_v<T>, "attr_as<T> needs a trivially copyable T");
    static_assert(std::is_default_constructible_v<T>, "attr_as<T> needs a default-constructible T");
    const void *p = aio2_event_attr_payload(ev_, id, sizeof(T), nullptr);
    if (p == nullptr) return std::nullopt;
    T out;
    std::memcpy(&out, p, sizeof(T));
    return out;
  }
  // native - the C event.
  const aio2_event *native() const noexcept { return ev_; }

 private:
  const aio2_event *ev_;
};

// event_range - the events in a buffer filled by aio2_getevents,
// aio2_reap_events or aio2_call, walked with aio2_event_next: a record whose
// len is below 24 bytes, not a multiple of 8 or past the buffer ends the
// walk, so a damaged buffer cannot loop or overrun.
class event_range : public std::ranges::view_base {
 public:
  // iterator - forward iterator yielding event_view by value.
  class iterator {
   public:
    using iterator_concept = std::forward_iterator_tag;
    using iterator_category = std::input_iterator_tag;  // yields prvalues
    using value_type = event_view;
    using difference_type = std::ptrdiff_t;

    // iterator - the end iterator.
    iterator() noexcept = default;
    // iterator - position at `ev` (null: end) in `buf`.
    iterator(std::span<const std::byte> buf, const aio2_event *ev) noexcept : buf_(buf), ev_(ev) {}
    // operator* - the current event.
    event_view operator*() const noexcept { return event_view(ev_); }
    // operator++ - the next event, or end.
    iterator &operator++() noexcept {
      ev_ = next(buf_, ev_);
      return *this;
    }
    iterator operator++(int) noexcept {
      iterator old = *this;
      ++*this;
      return old;
    }
    friend bool operator==(const iterator &a, const iterator &b) noexcept { return a.ev_ == b.ev_; }

    // next - the event after `ev` in `buf` (the first when `ev` is null), or
    // null: aio2_event_next.
    static const aio2_event *next(std::span<const std::byte> buf, const aio2_event *ev) noexcept {
      return aio2_event_next(buf.data(), buf.size(), ev);
    }

   private:
    std::span<const std::byte> buf_{};
    const aio2_event *ev_ = nullptr;
  };

  // event_range - empty.
  event_range() noexcept = default;
  // event_range - the events in `buf` (the bytes a call reported, not more).
  explicit event_range(std::span<const std::byte> buf) noexcept : buf_(buf) {}
  // begin - the first event.
  iterator begin() const noexcept { return iterator(buf_, iterator::next(buf_, nullptr)); }
  // end - past the last event.
  iterator end() const noexcept { return iterator(); }
  // empty - no event.
  bool empty() const noexcept { return begin() == end(); }
  // front - the first event; the range must not be empty.
  event_view front() const noexcept { return *begin(); }
  // bytes - the buffer the events lie in.
  std::span<const std::byte> bytes() const noexcept { return buf_; }

 private:
  std::span<const std::byte> buf_{};
};

static_assert(std::forward_iterator<attr_range::iterator>);
static_assert(std::forward_iterator<event_range::iterator>);
static_assert(std::ranges::forward_range<attr_range> && std::ranges::view<attr_range>);
static_assert(std::ranges::forward_range<event_range> && std::ranges::view<event_range>);

// ---- Requests -------------------------------------------------------------------

// request_builder - requests back to back in 8-byte aligned storage, ready
// for aio2_submit. Layout is done by aio2_prep and aio2_attr_add. Builder
// methods allocate, so they may throw std::bad_alloc.
class request_builder {
 public:
  // add - append a request for system call `nr` with up to six `args`
  // (missing ones are zero); throws std::invalid_argument for more than six.
  request_builder &add(long nr, uint64_t user_data, std::initializer_list<uint64_t> args,
                       uint32_t flags = 0) {
    return add(nr, user_data, std::span<const uint64_t>(args.begin(), args.size()), flags);
  }
  // add - the same, with the arguments in a span.
  request_builder &add(long nr, uint64_t user_data, std::span<const uint64_t> args,
                       uint32_t flags = 0) {
    if (args.size() > 6)
      throw std::invalid_argument("aio2::request_builder::add: more than 6 args");
    uint64_t a[6] = {};
    for (std::size_t i = 0; i < args.size(); i++) a[i] = args[i];
    const std::size_t at = words_.size();
    words_.resize(at + sizeof(aio2_iocb) / 8);  // may throw: nothing changed yet
    last_ = at;
    aio2_iocb *io = last();
    aio2_prep(io, nr, user_data, a[0], a[1], a[2], a[3], a[4], a[5]);
    io->flags = flags;
    count_++;
    return *this;
  }
  // attr - append an attribute with `payload` (zero-padded to 8 bytes) to the
  // last request, growing its len; throws std::logic_error with no request,
  // std::length_error when the request would pass 4 GiB.
  request_builder &attr(uint16_t id, std::span<const std::byte> payload, uint16_t attr_flags = 0) {
    if (count_ == 0) throw std::logic_error("aio2::request_builder::attr: no request yet");
    const std::size_t grow = (sizeof(aio2_attr) + payload.size() + 7u) / 8u;
    const std::size_t old = words_.size();
    words_.resize(old + grow);
    const std::size_t cap = (words_.size() - last_) * 8u;
    if (aio2_attr_add(last(), cap, id, attr_flags, payload.data(), payload.size()) == nullptr) {
      words_.resize(old);
      throw std::length_error("aio2::request_builder::attr: request too long");
    }
    return *this;
  }
  // bytes - every request built so far, for context::submit.
  std::span<const std::byte> bytes() const noexcept {
    return std::as_bytes(std::span<const uint64_t>(words_));
  }
  // count - requests built so far.
  std::size_t count() const noexcept { return count_; }
  // empty - no request yet.
  bool empty() const noexcept { return count_ == 0; }
  // clear - forget every request (keeps the capacity).
  void clear() noexcept {
    words_.clear();
    last_ = 0;
    count_ = 0;
  }

 private:
  aio2_iocb *last() noexcept { return reinterpret_cast<aio2_iocb *>(words_.data() + last_); }

  std::vector<uint64_t> words_{};  // uint64_t: 8-byte alignment for free
  std::size_t last_ = 0;           // word index of the last request
  std::size_t count_ = 0;
};

namespace detail {

// call - aio2_call on `ctx` (null: the process-wide SYNC context). `req`
// must hold exactly one request (aio2_call takes no length, so the span is
// checked against the request's len here); otherwise -EINVAL.
[[nodiscard]] inline std::optional<event_view> call(aio2_ctx *ctx, std::span<const std::byte> req,
                                                    std::span<std::byte> ev,
                                                    std::error_code &ec) noexcept {
  uint32_t len = 0;
  if (req.size() >= sizeof len) std::memcpy(&len, req.data(), sizeof len);
  if (req.size() < sizeof(aio2_iocb) || len != req.size()) {
    ec = make_error(-EINVAL);
    return std::nullopt;
  }
  const ssize_t got =
      aio2_call(ctx, reinterpret_cast<const aio2_iocb *>(req.data()), ev.data(), ev.size());
  if (got < 0) {
    ec = make_error(got);
    return std::nullopt;
  }
  ec.clear();
  return event_view(reinterpret_cast<const aio2_event *>(ev.data()));
}

}  // namespace detail

// call - run one request synchronously on the process-wide SYNC context
// (aio2_call with ctx NULL); the event is written to `ev` (8-aligned).
// `req` holds exactly one request (a one-request builder's bytes()).
[[nodiscard]] inline std::optional<event_view> call(std::span<const std::byte> req,
                                                    std::span<std::byte> ev,
                                                    std::error_code &ec) noexcept {
  return detail::call(nullptr, req, ev, ec);
}
// call - the same; throws std::system_error.
[[nodiscard]] inline event_view call(std::span<const std::byte> req, std::span<std::byte> ev) {
  std::error_code ec;
  auto r = detail::call(nullptr, req, ev, ec);
  detail::throw_if(ec, "aio2_call");
  return *r;
}

// ---- Context ----------------------------------------------------------------------

// cancel_result - what aio2_cancel found: cancelled (0: it was queued and
// will not run), running (-EALREADY: it was interrupted where possible), not_found
// (-ENOENT: nothing outstanding has that user_data).
enum class cancel_result { cancelled, running, not_found };

// reap_result - what context::reap got: the events copied, and whether the
// ring was empty while aio2 holds events elsewhere or needs a call
// (aio2_reap_events' -EAGAIN): then call context::getevents.
struct reap_result {
  event_range events;
  bool need_getevents = false;
};

// context - owns one aio2_ctx (RING or SYNC). Move-only; a moved-from or
// failed-to-create context is empty: its handle is null, and its calls fail
// with EBADF as the C API does for a NULL context.
class context {
 public:
  // context - a RING context with every default; throws std::system_error.
  context() : context(aio2_params{}) {}
  // context - a context from `p`; size 0 means sizeof(aio2_params), a size
  // above it is E2BIG (the struct has no more bytes to read). The values in
  // force are kept (params()). Throws std::system_error.
  explicit context(const aio2_params &p, unsigned version = AIO2_ABI_VERSION) {
    std::error_code ec;
    setup(p, version, ec);
    detail::throw_if(ec, "aio2_setup");
  }
  // context - adopt `owned` (it will be destroyed here); null gives an empty context.
  explicit context(aio2_ctx *owned) noexcept : ctx_(owned), ring_(aio2_ring_get(owned)) {}
  // create - like the constructor, without throwing: an empty context and
  // `ec` set on failure, `ec` cleared on success.
  [[nodiscard]] static context create(const aio2_params &p, std::error_code &ec,
                                      unsigned version = AIO2_ABI_VERSION) noexcept {
    context c(nullptr);
    c.setup(p, version, ec);
    return c;
  }

  context(const context &) = delete;
  context &operator=(const context &) = delete;
  // context - take `o`'s context; `o` becomes empty.
  context(context &&o) noexcept
      : ctx_(std::exchange(o.ctx_, nullptr)),
        ring_(std::exchange(o.ring_, nullptr)),
        params_(std::exchange(o.params_, aio2_params{})) {}
  // operator= - destroy ours, take `o`'s; `o` becomes empty.
  context &operator=(context &&o) noexcept {
    if (this != &o) {
      reset();
      ctx_ = std::exchange(o.ctx_, nullptr);
      ring_ = std::exchange(o.ring_, nullptr);
      params_ = std::exchange(o.params_, aio2_params{});
    }
    return *this;
  }
  // ~context - aio2_destroy: cancels queued requests, interrupts running
  // ones and waits for them; no other thread may still be using the context.
  // Its only error is -EBADF (the handle is null or already destroyed), which
  // no retry can fix and a destructor must not throw, so it is ignored.
  ~context() { reset(); }

  // reset - destroy the context now (as the destructor does); becomes empty.
  void reset() noexcept {
    if (ctx_ != nullptr) (void)aio2_destroy(ctx_);
    ctx_ = nullptr;
    ring_ = nullptr;
    params_ = aio2_params{};
  }
  // release - give up ownership without destroying; becomes empty.
  [[nodiscard]] aio2_ctx *release() noexcept {
    ring_ = nullptr;
    params_ = aio2_params{};
    return std::exchange(ctx_, nullptr);
  }
  // operator bool - holds a context.
  explicit operator bool() const noexcept { return ctx_ != nullptr; }
  // native_handle - the aio2_ctx*, for the C API (null when empty).
  aio2_ctx *native_handle() const noexcept { return ctx_; }
  // params - the parameters in force, as aio2_setup wrote them back (zero
  // when empty or adopted).
  const aio2_params &params() const noexcept { return params_; }
  // ring - the completion ring (aio2_ring_get), null for SYNC or empty.
  aio2_ring *ring() const noexcept { return ring_; }
  // eventfd - the context's eventfd (AIO2_SETUP_EVENTFD; owned by the
  // context, do not close it), or nullopt when it has none or is empty.
  std::optional<int> eventfd() const noexcept {
    const int fd = aio2_eventfd(ctx_);
    if (fd < 0) return std::nullopt;
    return fd;
  }

  // submit - queue the requests in `reqs` (8-aligned). Returns the bytes
  // accepted, a prefix of whole requests: fewer than reqs.size() when a later
  // request was refused (resubmit the rest to learn why). When the first
  // request fails, returns 0 and sets `ec` to its error.
  [[nodiscard]] std::size_t submit(std::span<const std::byte> reqs, std::error_code &ec) noexcept {
    const ssize_t got = aio2_submit(ctx_, reqs.data(), reqs.size());
    if (got < 0) {
      ec = detail::make_error(got);
      return 0;
    }
    ec.clear();
    return static_cast<std::size_t>(got);
  }
  // submit - the same; throws std::system_error when the first request fails.
  [[nodiscard]] std::size_t submit(std::span<const std::byte> reqs) {
    std::error_code ec;
    const std::size_t n = submit(reqs, ec);
    detail::throw_if(ec, "aio2_submit");
    return n;
  }
  // submit - the requests of a builder.
  [[nodiscard]] std::size_t submit(const request_builder &b, std::error_code &ec) noexcept {
    return submit(b.bytes(), ec);
  }
  // submit - the requests of a builder; throws std::system_error.
  [[nodiscard]] std::size_t submit(const request_builder &b) { return submit(b.bytes()); }

  // getevents - copy whole events into `buf` (8-aligned), waiting until
  // `min` arrived or `timeout` passed (nullopt or over 100 years: for ever;
  // zero: poll; negative: EINVAL).
  // Returns the events written (empty on timeout). On error the range is
  // empty and `ec` set; EINVAL with a buffer too small for the next event
  // leaves the bytes that event needs in buf's first 4 bytes (uint32_t).
  [[nodiscard]] event_range getevents(unsigned min, std::span<std::byte> buf,
                                      std::optional<std::chrono::nanoseconds> timeout,
                                      std::error_code &ec) noexcept {
    // A timeout beyond 100 years waits for ever: aio2_getevents adds it to
    // the monotonic clock in signed 64-bit nanoseconds, which overflows for
    // values near nanoseconds::max() (a common way to say "no timeout").
    if (timeout && *timeout > std::chrono::hours(24 * 365 * 100)) timeout.reset();
    timespec ts{};
    if (timeout) {
      const auto secs = std::chrono::duration_cast<std::chrono::seconds>(*timeout);
      ts.tv_sec = static_cast<time_t>(secs.count());
      ts.tv_nsec = static_cast<long>((*timeout - secs).count());
    }
    const ssize_t got = aio2_getevents(ctx_, min, buf.data(), buf.size(), timeout ? &ts : nullptr);
    if (got < 0) {
      ec = detail::make_error(got);
      return event_range();
    }
    ec.clear();
    return event_range(std::span<const std::byte>(buf.data(), static_cast<std::size_t>(got)));
  }
  // getevents - the same; throws std::system_error (EINTR included).
  [[nodiscard]] event_range getevents(unsigned min, std::span<std::byte> buf,
                                      std::optional<std::chrono::nanoseconds> timeout) {
    std::error_code ec;
    const event_range r = getevents(min, buf, timeout, ec);
    detail::throw_if(ec, "aio2_getevents");
    return r;
  }

  // reap - copy whole events from the ring into `buf` (8-aligned) without a
  // call into the library (aio2_reap_events). need_getevents says the ring
  // was empty but aio2 holds events elsewhere or needs a call. Errors in
  // `ec`: EBADF (empty), EBADFD (SYNC context: no ring), ENOBUFS (the next
  // event does not fit), EUCLEAN or EBADMSG (ring corruption).
  [[nodiscard]] reap_result reap(std::span<std::byte> buf, std::error_code &ec) noexcept {
    if (ring_ == nullptr) {
      ec = detail::make_error(ctx_ == nullptr ? -EBADF : -EBADFD);
      return {};
    }
    const int64_t got = aio2_reap_events(ring_, buf.data(), buf.size());
    ec.clear();
    if (got == -EAGAIN) return {event_range(), true};
    if (got < 0) {
      ec = detail::make_error(got);
      return {};
    }
    return {event_range(std::span<const std::byte>(buf.data(), static_cast<std::size_t>(got))),
            false};
  }
  // reap - the same; throws std::system_error.
  [[nodiscard]] reap_result reap(std::span<std::byte> buf) {
    std::error_code ec;
    const reap_result r = reap(buf, ec);
    detail::throw_if(ec, "aio2_reap_events");
    return r;
  }

  // cancel - cancel the oldest outstanding request with `user_data`. Other
  // errors (EBADF, EBADFD) go to `ec`, and the result is then not_found.
  [[nodiscard]] cancel_result cancel(uint64_t user_data, std::error_code &ec) noexcept {
    const int rc = aio2_cancel(ctx_, user_data);
    ec.clear();
    switch (rc) {
      case 0: return cancel_result::cancelled;
      case -EALREADY: return cancel_result::running;
      case -ENOENT: return cancel_result::not_found;
      default: ec = detail::make_error(rc); return cancel_result::not_found;
    }
  }
  // cancel - the same; throws std::system_error for errors other than the three results.
  [[nodiscard]] cancel_result cancel(uint64_t user_data) {
    std::error_code ec;
    const cancel_result r = cancel(user_data, ec);
    detail::throw_if(ec, "aio2_cancel");
    return r;
  }

  // restrict_to - fix the context's allowlist, once (aio2_restrict): only
  // the system calls and attribute ids of `allowed` run from then on,
  // others are refused with EPERM. Errors (EBUSY: already fixed; EINVAL: a
  // bad entry, nothing fixed; EBADF) go to `ec`.
  void restrict_to(std::span<const aio2_restriction> allowed, std::error_code &ec) noexcept {
    const int rc = aio2_restrict(ctx_, allowed.data(), allowed.size());
    ec = rc < 0 ? detail::make_error(rc) : std::error_code();
  }
  // restrict_to - the same; throws std::system_error.
  void restrict_to(std::span<const aio2_restriction> allowed) {
    std::error_code ec;
    restrict_to(allowed, ec);
    detail::throw_if(ec, "aio2_restrict");
  }

  // call - run one request synchronously in this thread on this context
  // (aio2_call); its event goes to `ev` (8-aligned), not to the ring. `req`
  // holds exactly one request, else EINVAL. An empty context gives EBADF
  // (aio2_call's NULL would mean the process-wide context: see aio2::call).
  [[nodiscard]] std::optional<event_view> call(std::span<const std::byte> req,
                                               std::span<std::byte> ev,
                                               std::error_code &ec) noexcept {
    if (ctx_ == nullptr) {
      ec = detail::make_error(-EBADF);
      return std::nullopt;
    }
    return detail::call(ctx_, req, ev, ec);
  }
  // call - the same; throws std::system_error.
  [[nodiscard]] event_view call(std::span<const std::byte> req, std::span<std::byte> ev) {
    std::error_code ec;
    auto r = call(req, ev, ec);
    detail::throw_if(ec, "aio2_call");
    return *r;
  }

 private:
  // setup - aio2_setup into *this (which is empty); sets or clears `ec`.
  void setup(const aio2_params &p, unsigned version, std::error_code &ec) noexcept {
    aio2_params in = p;
    if (in.size == 0) in.size = sizeof in;
    // aio2_setup would read p->size bytes, past the struct we were given.
    if (in.size > sizeof in) {
      ec = detail::make_error(-E2BIG);
      return;
    }
    aio2_ctx *c = nullptr;
    const int err = aio2_setup(version, &in, &c);
    if (err != 0) {
      ec = detail::make_error(err);
      return;
    }
    ec.clear();
    ctx_ = c;
    ring_ = aio2_ring_get(c);
    params_ = in;
  }

  aio2_ctx *ctx_ = nullptr;
  aio2_ring *ring_ = nullptr;  // cached: valid for the context's life
  aio2_params params_{};
};

// register_attribute - add a user-defined attribute handler for the
// process's life (aio2_attr_register): EINVAL, ERANGE (id below
// AIO2_ATTR_USER_MIN) or EEXIST in `ec`.
inline void register_attribute(const aio2_attr_handler &h, std::error_code &ec) noexcept {
  ec = detail::make_error(aio2_attr_register(&h));
}

// register_attribute - as above, throwing std::system_error on failure.
inline void register_attribute(const aio2_attr_handler &h) {
  std::error_code ec;
  register_attribute(h, ec);
  detail::throw_if(ec, "aio2_attr_register");
}

}  // namespace aio2

#endif  // AIO2_AIO2_HPP
