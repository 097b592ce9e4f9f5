// SPDX-License-Identifier: MIT
// aio2_call: one request run synchronously in the calling thread, between
// its attribute hooks, with its event written into the caller's buffer.
// It shares parsing, the attribute registry and the event encoding with
// the asynchronous path, and nothing else: no slot, no executor, no queue.
#include <cerrno>

#include "attr/registry.h"
#include "core/completion_queue.h"
#include "core/context.h"
#include "core/parse.h"
#include "sys/raw_syscall.h"

namespace aio2::core {

ssize_t call_sync(const aio2_iocb *req, void *ev, size_t ev_bytes,
                  const allowlist *allow) noexcept {
  if (req == nullptr || (reinterpret_cast<uintptr_t>(req) & 7u)) return -EINVAL;
  if (ev == nullptr || (reinterpret_cast<uintptr_t>(ev) & 7u)) return -EINVAL;
  parsed_request pr;
  const size_t len = req->len < sizeof *req ? sizeof *req : req->len;
  const auto *bytes = reinterpret_cast<const unsigned char *>(req);
  if (int err = parse_request(bytes, len, &pr)) return err;
  if (allow)
    if (int err = allow->check(req->nr, pr.attrs, pr.attr_bytes)) return err;
  if (!required_ok(pr, AIO2_PATH_CALL)) return -EOPNOTSUPP;
  // Each thread reuses one attribute state, so a call allocates nothing
  // once the thread has made one as large; a hook that calls aio2_call from
  // inside a call gets a fresh one.
  thread_local attr::request_attrs reused;
  thread_local bool reused_busy = false;
  attr::request_attrs fresh;
  const bool mine = !reused_busy;
  attr::request_attrs &attrs = mine ? reused : fresh;
  reused_busy = true;
  struct release {
    bool mine;
    ~release() {
      if (mine) reused_busy = false;
    }
  } release_on_return{mine};
  if (int err = attrs.prepare(*req, pr.attrs, pr.attr_bytes, AIO2_PATH_CALL, false)) return err;
  // Refuse before running when even the largest possible event would not fit.
  if (ev_bytes < sizeof(aio2_event) + attrs.max_result_bytes()) return -ENOBUFS;
  int64_t res = 0;
  if (attrs.empty() || attrs.before(*req, pr.attrs, 0, &res))
    res = sys::raw_syscall(static_cast<long>(req->nr), req->args);
  attrs.after(*req, pr.attrs, 0, res);
  attrs.post(*req, pr.attrs, res);
  encode_event(static_cast<unsigned char *>(ev), req->user_data, res, 0, attrs);
  return static_cast<ssize_t>(sizeof(aio2_event) + attrs.result_bytes());
}

}  // namespace aio2::core
