// SPDX-License-Identifier: MIT
// Descriptor facts taken on trust (sys::trusted_cached_read): only files
// read through the page cache, at most kTrustedUses times per check, and
// never after distrust() or a check that found something else; pinned
// descriptors (sys::pin_fd) always, until unpinned.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <string>

#include "fs_util.h"
#include "sys/fd_facts.h"

namespace {

using aio2::sys::fd_facts;

unsigned trusted_uses(int fd) {
  unsigned n = 0;
  fd_facts f{};
  while (n < 1000 && aio2::sys::trusted_cached_read(fd, &f)) n++;
  return n;
}

struct file_fd {
  int fd;
  explicit file_fd(const std::string &path, int flags) : fd(open(path.c_str(), flags, 0600)) {}
  ~file_fd() {
    if (fd >= 0) close(fd);
  }
};

TEST(FdFacts, CachedFileIsTrustedForABoundedNumberOfUses) {
  aio2_test::scratch_dir dir("aio2-fdfacts");
  ASSERT_TRUE(dir.ok());
  file_fd f(dir / "f", O_CREAT | O_RDWR | O_CLOEXEC);
  ASSERT_GE(f.fd, 0);
  EXPECT_EQ(trusted_uses(f.fd), 0u) << "trusted before any check";
  fd_facts got{};
  ASSERT_EQ(aio2::sys::get_fd_facts(f.fd, &got), 0);
  EXPECT_TRUE(got.regular);
  fd_facts trusted{};
  ASSERT_TRUE(aio2::sys::trusted_cached_read(f.fd, &trusted));
  EXPECT_EQ(trusted.flags, got.flags);
  EXPECT_TRUE(trusted.regular && trusted.positionable);
  EXPECT_EQ(trusted_uses(f.fd) + 1, aio2::sys::kTrustedUses);
  // A check gives the uses back; distrust takes them away.
  ASSERT_EQ(aio2::sys::get_fd_facts(f.fd, &got), 0);
  EXPECT_EQ(trusted_uses(f.fd), aio2::sys::kTrustedUses);
  ASSERT_EQ(aio2::sys::get_fd_facts(f.fd, &got), 0);
  aio2::sys::distrust(f.fd);
  EXPECT_EQ(trusted_uses(f.fd), 0u);
}

TEST(FdFacts, WhatIsNotReadThroughTheCacheIsNeverTrusted) {
  aio2_test::scratch_dir dir("aio2-fdfacts");
  ASSERT_TRUE(dir.ok());
  const std::string path = dir / "f";
  file_fd wronly(path, O_CREAT | O_WRONLY | O_CLOEXEC);
  file_fd direct(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
  file_fd dirfd(dir.path(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  for (int fd : {wronly.fd, direct.fd, dirfd.fd, p[0]}) {
    if (fd < 0) continue;  // O_DIRECT may be refused by the file system
    fd_facts got{};
    ASSERT_EQ(aio2::sys::get_fd_facts(fd, &got), 0);
    EXPECT_EQ(trusted_uses(fd), 0u) << "fd " << fd << " flags " << got.flags;
  }
  // A trusted file switched to O_DIRECT: the next check withdraws the trust.
  file_fd f(path, O_RDONLY | O_CLOEXEC);
  fd_facts got{};
  ASSERT_EQ(aio2::sys::get_fd_facts(f.fd, &got), 0);
  ASSERT_GT(trusted_uses(f.fd), 0u);
  ASSERT_EQ(aio2::sys::get_fd_facts(f.fd, &got), 0);
  if (fcntl(f.fd, F_SETFL, O_DIRECT) == 0) {
    ASSERT_EQ(aio2::sys::get_fd_facts(f.fd, &got), 0);
    EXPECT_EQ(trusted_uses(f.fd), 0u);
  }
  close(p[0]);
  close(p[1]);
}

// A pinned descriptor (aio2_register_fds) is trusted without limit, keeps
// its facts through distrust() and F_SETFL, and is asked about again once
// unpinned; what is not a regular file or a block device is not pinned.
TEST(FdFacts, PinnedFactsHoldUntilUnpinned) {
  aio2_test::scratch_dir dir("aio2-fdfacts");
  ASSERT_TRUE(dir.ok());
  file_fd f(dir / "f", O_CREAT | O_RDWR | O_CLOEXEC);
  ASSERT_GE(f.fd, 0);
  ASSERT_EQ(aio2::sys::pin_fd(f.fd), 0);
  EXPECT_EQ(trusted_uses(f.fd), 1000u) << "a pinned descriptor's uses ran out";
  aio2::sys::distrust(f.fd);
  EXPECT_EQ(trusted_uses(f.fd), 1000u) << "distrust() unpinned it";
  const int flags = fcntl(f.fd, F_GETFL);
  ASSERT_EQ(fcntl(f.fd, F_SETFL, flags | O_NONBLOCK), 0);
  fd_facts got{};
  ASSERT_EQ(aio2::sys::get_fd_facts(f.fd, &got), 0);
  EXPECT_EQ(got.flags & O_NONBLOCK, 0) << "pinned facts follow F_SETFL";
  EXPECT_TRUE(got.regular);
  aio2::sys::unpin_fd(f.fd);
  ASSERT_EQ(aio2::sys::get_fd_facts(f.fd, &got), 0);
  EXPECT_EQ(got.flags & O_NONBLOCK, O_NONBLOCK) << "unpinned facts are not asked again";
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  EXPECT_EQ(aio2::sys::pin_fd(p[0]), -EINVAL);
  close(p[0]);
  close(p[1]);
  EXPECT_EQ(aio2::sys::pin_fd(-1), -EBADF);
  EXPECT_EQ(aio2::sys::pin_fd(aio2::sys::kFactSlots), -EMFILE);
}

}  // namespace
