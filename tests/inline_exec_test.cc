// SPDX-License-Identifier: MIT
// exec::inline_executor on its own: it runs each request in the calling
// thread and hands it to the sink before submit() returns; it has nothing
// to cancel or to wait for, and wakes nobody (the caller ends the batch).

#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <thread>
#include <vector>

#include "exec/inline.h"
#include "exec_util.h"

namespace {

using aio2::exec::executor;
using aio2::exec::inline_executor;
using aio2::exec::request;
using aio2_test::recording_sink;

TEST(InlineExec, RunsInTheCallingThreadBeforeSubmitReturns) {
  recording_sink sink;
  aio2_test::request_set reqs;
  inline_executor ex(sink);
  std::vector<request *> batch;
  for (uint64_t i = 0; i < 8; i++) batch.push_back(reqs.add(SYS_gettid, i, {}, AIO2_PATH_INLINE));
  ex.submit(batch.data(), batch.size());
  // All done already, in order, each once, by this thread.
  const auto all = sink.all();
  ASSERT_EQ(all.size(), 8u);
  const pid_t me = aio2_test::this_tid();
  for (uint64_t i = 0; i < 8; i++) {
    EXPECT_EQ(all[i].user_data, i);
    EXPECT_EQ(all[i].r, batch[i]);
    EXPECT_EQ(all[i].res, me) << "gettid ran in the submitting thread";
    EXPECT_EQ(all[i].tid, me) << "completed in the submitting thread";
    EXPECT_EQ(all[i].flags, 0u);
  }
  EXPECT_EQ(sink.batches(false) + sink.batches(true), 0u) << "the caller ends the batch";
}

TEST(InlineExec, RunsInWhicheverThreadSubmits) {
  recording_sink sink;
  aio2_test::request_set reqs;
  inline_executor ex(sink);
  request *r = reqs.add(SYS_gettid, 1, {}, AIO2_PATH_INLINE);
  pid_t other = 0;
  std::thread t([&] {
    other = aio2_test::this_tid();
    ex.submit(&r, 1);
  });
  t.join();
  ASSERT_EQ(sink.count(), 1u);
  EXPECT_EQ(sink.all()[0].res, other);
  EXPECT_NE(other, aio2_test::this_tid());
}

TEST(InlineExec, ErrorsAreTheCallsOwn) {
  recording_sink sink;
  aio2_test::request_set reqs;
  inline_executor ex(sink);
  request *r = reqs.add(SYS_close, 1, {static_cast<uint64_t>(-1)}, AIO2_PATH_INLINE);
  ex.submit(&r, 1);
  ASSERT_EQ(sink.count(), 1u);
  EXPECT_EQ(sink.all()[0].res, -EBADF);
}

TEST(InlineExec, CancelFindsNothingAndShutdownIsANoOp) {
  recording_sink sink;
  aio2_test::request_set reqs;
  inline_executor ex(sink);
  EXPECT_EQ(ex.cancel(1), executor::cancel_result::not_found);
  request *r = reqs.add(SYS_getppid, 1, {}, AIO2_PATH_INLINE);
  ex.submit(&r, 1);
  EXPECT_EQ(ex.cancel(1), executor::cancel_result::not_found);
  ex.shutdown();
  ex.shutdown();
  EXPECT_EQ(sink.count(), 1u);
  EXPECT_EQ(sink.all()[0].res, getppid());
}

}  // namespace
