// SPDX-License-Identifier: MIT
// tag: opaque bytes (1..AIO2_TAG_MAX) echoed back in the event, for
// correlating a completion with a trace. The registry refuses a longer
// payload at submit (payload_max).
#include <cstring>

#include "attr/builtins.h"

namespace aio2::attr {

namespace {

int on_submit(aio2_attr_hook *h) {
  std::memcpy(h->result, h->payload, h->payload_len);  // payload_len <= result_len
  return 0;
}

}  // namespace

const aio2_attr_handler tag_handler = {
    sizeof(aio2_attr_handler), AIO2_ATTR_TAG, 0, 1, AIO2_TAG_MAX, AIO2_TAG_MAX, AIO2_PATH_ALL,
    "tag", on_submit, nullptr, nullptr, nullptr, nullptr};

}  // namespace aio2::attr
