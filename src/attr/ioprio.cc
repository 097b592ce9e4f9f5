// SPDX-License-Identifier: MIT
// ioprio: run the call at an I/O priority. Just before the call the executing
// thread's priority is read (ioprio_get(IOPRIO_WHO_PROCESS, 0): 0 is the
// calling thread, not the process) and set to the requested one; just after,
// the previous one is put back, so a pool worker carries nothing over to the
// next request, nor aio2_call to its caller.
//
// When ioprio_set refuses the value (an unknown class, a level out of range,
// the RT class without CAP_SYS_ADMIN or CAP_SYS_NICE) the call still runs,
// at the thread's own priority, and the status stays OK with applied = 0
// and error = -errno: the result struct exists to say so, and a status other
// than OK would carry no payload, losing the reason and `previous`. Only a
// failure to put the previous priority back (the thread keeps the requested
// one) is an ERROR. Non-zero `reserved` is refused at submit with -EINVAL; the
// value itself is the kernel's to judge, at run time.
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "attr/builtins.h"
#include "sys/rw_args.h"

namespace aio2::attr {

namespace {

// IOPRIO_WHO_PROCESS. Defined here: <linux/ioprio.h> is a recent UAPI header
// that older systems lack, and where present it is an enum, not a macro.
constexpr int kWhoProcess = 1;

int on_submit(aio2_attr_hook *h) {
  aio2_attr_ioprio p;
  std::memcpy(&p, h->payload, sizeof p);
  return p.reserved != 0 ? -EINVAL : 0;
}

// Whether io_uring takes `v` in an SQE as the call would take it from
// ioprio_set: the kernel fails a request whose priority ioprio_check_cap()
// refuses. The RT class needs CAP_SYS_ADMIN or CAP_SYS_NICE in the initial
// user namespace, which a process cannot cheaply ask about (capget answers
// for its own namespace), so RT is never put in an SQE: it is not applied
// there (-EOPNOTSUPP); the pool applies it where allowed. Returns 0 or -errno.
int check_value(uint32_t v) noexcept {
  const uint32_t cls = v >> 13, level = v & 7u, rest = v & 0x1ff8u;
  switch (cls) {
    case 0:  // IOPRIO_CLASS_NONE: level must be 0
      return (level || rest) ? -EINVAL : 0;
    case 1:  // IOPRIO_CLASS_RT
      return rest ? -EINVAL : -EOPNOTSUPP;
    case 2:  // IOPRIO_CLASS_BE
    case 3:  // IOPRIO_CLASS_IDLE
      return rest ? -EINVAL : 0;
    default:
      return -EINVAL;
  }
}

int before(aio2_attr_hook *h) {
  aio2_attr_ioprio p;
  std::memcpy(&p, h->payload, sizeof p);
  aio2_attr_ioprio_ret r{};
  if (h->path == AIO2_PATH_URING) {
    // The request's entry carries the priority (h->ioprio); no thread's
    // priority changes, so previous stays 0. Only reads and writes take
    // one: the kernel fails any other operation whose entry has a
    // priority, so for those it is not applied (-EOPNOTSUPP).
    const uint32_t nr = h->req->nr;
    r.error = sys::is_read(nr) || sys::is_write(nr) ? check_value(p.ioprio) : -EOPNOTSUPP;
    r.applied = r.error == 0;
    if (r.applied) h->ioprio = static_cast<int32_t>(p.ioprio);
    std::memcpy(h->result, &r, sizeof r);
    return 0;
  }
  const long prev = syscall(SYS_ioprio_get, kWhoProcess, 0);
  if (prev < 0) {
    r.error = -errno;  // nothing to restore to, so nothing is changed
  } else {
    r.previous = static_cast<uint32_t>(prev);
    if (r.previous == p.ioprio ||
        syscall(SYS_ioprio_set, kWhoProcess, 0, static_cast<int>(p.ioprio)) == 0)
      r.applied = 1;
    else
      r.error = -errno;
  }
  std::memcpy(h->result, &r, sizeof r);
  return 0;
}

void after(aio2_attr_hook *h) {
  aio2_attr_ioprio_ret r;
  std::memcpy(&r, h->result, sizeof r);
  if (!r.applied || h->path == AIO2_PATH_URING) return;
  aio2_attr_ioprio p;
  std::memcpy(&p, h->payload, sizeof p);
  if (r.previous == p.ioprio) return;
  if (syscall(SYS_ioprio_set, kWhoProcess, 0, static_cast<int>(r.previous)) != 0)
    h->status = AIO2_ATTR_ERROR;
}


}  // namespace

const aio2_attr_handler ioprio_handler = {
    sizeof(aio2_attr_handler), AIO2_ATTR_IOPRIO, AIO2_ATTR_HANDLER_THREAD,
    sizeof(aio2_attr_ioprio), sizeof(aio2_attr_ioprio), sizeof(aio2_attr_ioprio_ret),
    AIO2_PATH_POOL | AIO2_PATH_CALL | AIO2_PATH_INLINE | AIO2_PATH_URING,
    "ioprio", on_submit, before, after, not_applicable_unless_started, nullptr};

}  // namespace aio2::attr
