// SPDX-License-Identifier: MIT
// The io_uring executor, for the system calls io_uring implements with the
// call's meaning (liburing). Requests are translated to submission entries
// by the router (translate), queued in batches under their instance's
// submission lock, and their completions are harvested by whichever thread
// gets there first: the submitter right after it submits (cached reads
// complete inside io_uring_enter), a reaper in aio2_getevents, or the one
// reaper that waits on the executor's descriptor (core/waiter).
//
// The kernel runs a cached read inside io_uring_enter under the instance's
// own lock, so threads that share an instance take turns for the whole
// read. A context therefore makes several instances at setup (two per CPU
// this process may run on, at most kDefaultInstances, or as many as
// aio2_params.uring_instances asks). A thread that finds its instance's
// submission lock taken submits that batch to one whose lock is free and
// moves there at the end of its call; completions of every instance are
// reaped by any thread. docs/design.md ("The io_uring path") says why.
#pragma once

#include <liburing.h>
#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

#include "exec/executor.h"
#include "sys/creds.h"
#include "sys/fd_facts.h"
#include "util/adaptive_mutex.h"

namespace aio2::exec {

class uring final : public collected_executor {
 public:
  explicit uring(completion_sink &sink) noexcept;
  ~uring() override;
  uring(const uring &) = delete;
  uring &operator=(const uring &) = delete;

  // Sets up an instance with `entries` submission entries and probes the
  // opcodes. No eventfd is registered with the kernel: it would count every
  // completion entry, aio2's own included, where the context's eventfd
  // counts events (core/completion_queue.h). Returns 0, or -errno when
  // io_uring cannot be used (then active() is false and every request goes
  // elsewhere).
  // `max_instances` instances are made now, for the submitting threads to
  // spread over (fewer when some cannot be): 0 reads AIO2_URING_INSTANCES
  // from the environment, else takes twice the CPUs this process may run
  // on, at most kDefaultInstances; never more than kMaxInstances. With more
  // than one, fd() is an epoll descriptor that watches every instance.
  int init(unsigned entries, unsigned max_instances = 0) noexcept;
  bool active() const noexcept { return entries_ != 0; }
  unsigned entries() const noexcept { return entries_; }

  // Translates system call `nr` with `args` (a request's, or those of the
  // rest of a nowait-first read) into `sqe` (an io_uring_sqe) when this
  // kernel implements the call on io_uring with the same meaning. Returns
  // false when it does not (no opcode, not supported here, or arguments
  // io_uring would read differently).
  bool translate(uint32_t nr, const uint64_t *args, void *sqe) const noexcept;
  // Puts registered descriptor `fd` (aio2_register_fds: the context's own,
  // open until the executor is destroyed) into io_uring's file table of
  // every instance, at one slot, so that translate() names it by that slot
  // (IOSQE_FIXED_FILE) in the entries that take a file: the kernel then
  // looks the file up in the table instead of in the process's descriptor
  // table, and takes and drops no reference per request. The tables are
  // made at the first call (kFixedFiles slots each). Returns false when
  // the descriptor keeps being named by its number: no table (not active,
  // a kernel before 5.19, no memory), the table full, or fd out of range.
  bool add_fixed_file(int fd) noexcept;
  static constexpr unsigned kFixedFiles = 4096;
  // The slot of `fd` in the file tables, or -1.
  int fixed_slot(int fd) const noexcept;

  // Registers the `nr` buffers at `iov` with every instance
  // (io_uring_register_buffers), once per executor: a read or write
  // (read, pread64, write, pwrite64) whose whole buffer lies in one of them
  // is then submitted as READ_FIXED or WRITE_FIXED, which names the
  // buffer's pages pinned at registration instead of pinning them per
  // request. The buffers must stay mapped until the executor is destroyed.
  // All or nothing. Returns 0, or -EOPNOTSUPP (not active), -EBUSY
  // (registered already), -EINVAL (nr 0 or above kMaxBuffers, a NULL or
  // empty buffer, one above 1 GiB), or the kernel's error (-ENOMEM: over
  // RLIMIT_MEMLOCK, -EFAULT: not mapped).
  int register_buffers(const struct iovec *iov, unsigned nr) noexcept;
  static constexpr unsigned kMaxBuffers = 1024;
  // The index of the registered buffer that holds [addr, addr + len), or -1.
  int fixed_buffer(uint64_t addr, uint64_t len) const noexcept;

  // translate() for the router (router_env::uring_translate).
  static bool translate_for(const void *self, uint32_t nr, const uint64_t *args,
                            void *sqe) noexcept {
    return static_cast<const uring *>(self)->translate(nr, args, sqe);
  }

  // Takes requests whose r->sqe is translated: runs their before hooks
  // (not for the rest of a nowait-first read, whose hooks ran), gives
  // each entry the priority the hooks asked for and, for a nowait-first
  // read made here, RWF_NOWAIT; then submits, in batches of up to 64, to
  // the calling thread's instance, or to another whose submission lock is
  // free when its own is taken and no request of the batch names a
  // personality (place). A request io_uring refuses at submission
  // completes with that error.
  void submit(request *const *reqs, size_t n) noexcept override;

  // Harvests what has completed, handing each request to the sink and
  // calling sink.batch_done(true) after each batch; returns how many.
  // Never called with an instance's sq_mu held. Starts with the calling
  // thread's instance, then visits the others with completions waiting;
  // `wait` blocks for the lock of those. The rest of a nowait-first read is
  // resubmitted by the harvesting thread on the instance of its attempt.
  size_t harvest(bool wait) noexcept override;
  uint64_t inflight() const noexcept override { return inflight_.load(std::memory_order_seq_cst); }
  bool ready() const noexcept override;
  int fd() const noexcept override { return poll_fd_; }

  // The calling thread's submit call is over. A thread that found its
  // instance's submission lock taken during the call moves for its next
  // call: to the instance its batch went to instead (submit), else to the
  // next (AIO2_URING_SPREAD=1 in the environment: every thread moves to
  // the next after every call, for tests). Its binding never changes
  // within a call: the personality it registered on its instance names
  // its credentials.
  void end_of_call() noexcept;
  // Instances made (0 when not active).
  unsigned instances() const noexcept { return ninst_.load(std::memory_order_acquire); }
  // The index of the calling thread's instance (binding it if it is new:
  // a new thread starts on the next instance in turn). Only while active.
  unsigned this_threads_instance() noexcept;
  // Holds instance i's submission lock until the lock returned is let go:
  // for tests of where a batch goes while another thread submits there.
  std::unique_lock<std::mutex> hold_submission(unsigned i) noexcept {
    return std::unique_lock(at(i).sq_mu);
  }
  static constexpr unsigned kDefaultInstances = 16;
  static constexpr unsigned kMaxInstances = 64;

  // Cancels the oldest in-flight request with this user_data, without
  // waiting: `cancelled` when it had not started (its completion, with
  // -ECANCELED, is harvested before this returns); `running` when the
  // kernel was asked to interrupt a call that may wait for ever (unbounded:
  // a pipe or socket); `in_flight` when it is ours and its completion is
  // still to come but nothing stops it: a read of a regular file under way,
  // one the kernel's cancel cannot find (-ENOENT: a buffered read waiting
  // for its pages, a completion posted and not yet harvested, the rest of
  // a nowait-first read between its attempt and its submission).
  cancel_result cancel(uint64_t user_data) noexcept override;
  // Cancels everything in flight and harvests until nothing is. Idempotent.
  void shutdown() noexcept override;
  // Closes this process's descriptors of the instances and nothing else (a
  // fork child's copy of a parent's context): no request is cancelled or
  // harvested, since they are the parent's.
  void close_descriptor() noexcept;

  // The io_uring personality (IORING_REGISTER_PERSONALITY) that holds the
  // calling thread's credentials, `mine` (its snapshot, just taken):
  // registered by the first caller with them and kept for the instance's
  // life. An entry whose personality is set runs with them wherever the
  // kernel issues it (in io_uring_enter, on an io-wq worker, in task work)
  // and whichever thread enters it. 0 when there is none: kPersonalities
  // sets are registered, or the registration failed, or the credentials
  // changed while it ran. A personality belongs to one instance: this is
  // the calling thread's, which its requests of this call are queued on.
  uint16_t personality_for(const sys::creds &mine) noexcept;
  static constexpr unsigned kPersonalities = 64;

 private:
  // Registered personalities, never unregistered before the instance is
  // torn down (an entry in flight keeps naming its id).
  struct personality {
    sys::creds creds;
    uint16_t id;
  };
  // One io_uring instance and what guards it. The requests in flight on it
  // are on its list; a nowait-first read's rest goes back to the instance
  // its attempt ran on.
  struct instance {
    io_uring ring{};
    std::mutex sq_mu;  // the submission queue, and io_uring_submit
    std::mutex cq_mu;  // the completion queue (harvest)
    // In-flight requests, for cancel; taken once per submitted batch and
    // once per harvested batch.
    util::adaptive_mutex list_mu;
    request_list inflight_list;  // guarded by list_mu
    std::mutex personality_mu;
    personality personalities[kPersonalities];  // guarded by personality_mu
    unsigned npersonalities = 0;                // guarded by personality_mu
  };

  // The calling thread's instance (binding a thread new to this executor).
  instance &mine() noexcept { return at(this_threads_instance()); }
  instance &at(unsigned i) const noexcept { return *inst_[i].load(std::memory_order_acquire); }
  // Sets up one instance (`first`: probing the kernel's flags and
  // features; the others take the first's); -errno on failure.
  int make_instance(instance **out, bool first) noexcept;
  bool ready_one(const instance &in) const noexcept;
  size_t harvest_one(instance &in, bool wait) noexcept;
  void link(instance &in, request *const *reqs, size_t n) noexcept;
  instance &place(instance &own, bool creds, std::unique_lock<std::mutex> *lk) noexcept;
  // `held`: in.sq_mu, when the caller holds it already.
  void queue(instance &in, request *const *reqs, size_t n,
             std::unique_lock<std::mutex> held = {}) noexcept;
  void queue_cancel(instance &in, uint64_t tag, int flags) noexcept;
  void cancel_all(instance &in) noexcept;

  bool translate_call(uint32_t nr, const uint64_t *args, io_uring_sqe *sqe) const noexcept;

  const uint64_t id_;  // unique per executor, names it in threads' bindings
  io_uring_probe *probe_ = nullptr;
  unsigned entries_ = 0;
  unsigned sq_entries_ = 0, cq_entries_ = 0;  // asked of each instance
  unsigned setup_flags_ = 0;                  // as the first instance was made
  bool spread_ = false;  // AIO2_URING_SPREAD: move after every call
  completion_sink &sink_;
  bool shut_down_ = false;
  // Set by shutdown: harvest submits no more rests of nowait-first reads
  // (they complete as rests that never ran). Relaxed: it publishes nothing.
  std::atomic<bool> stopping_{false};

  // The instances, made by init: each published (release) before ninst_
  // counts it (release; readers load ninst_ acquire, then the pointer).
  // Never removed before the executor is destroyed, when no other thread
  // uses it.
  std::atomic<instance *> inst_[kMaxInstances] = {};
  std::atomic<unsigned> ninst_{0};
  // Where a thread new to this executor starts (round robin over the
  // instances made). Relaxed: any start is correct.
  std::atomic<unsigned> next_start_{0};
  int epoll_fd_ = -1;  // watches every instance when there are several
  int poll_fd_ = -1;   // fd(): epoll_fd_, or the only instance's descriptor

  // Registered descriptors' slots in the instances' file tables, by
  // descriptor number (slot + 1; 0: none), made by the first
  // add_fixed_file (kFdRange entries: every number aio2_register_fds can
  // pin). The pointer is published (release)
  // after the tables exist; an entry is stored (release) after every
  // instance has the file at that slot, and translate loads it (acquire).
  // A descriptor is named by a request only after aio2_register_fds has
  // returned it, so an entry is never read while it changes in a way that
  // matters; entries stay until the executor is destroyed.
  static constexpr int kFdRange = sys::kFactSlots;
  std::mutex files_mu_;            // add_fixed_file
  bool files_failed_ = false;      // guarded by files_mu_: no tables here
  unsigned files_used_ = 0;        // guarded by files_mu_: slots handed out
  std::unique_ptr<std::atomic<uint16_t>[]> fixed_owner_;  // guarded by files_mu_
  std::atomic<std::atomic<uint16_t> *> fixed_{nullptr};

  // Registered buffers, sorted by address, published once (release) by
  // register_buffers after every instance has them; fixed_buffer loads
  // the count (acquire) and reads the array, which never changes after.
  struct buffer {
    uint64_t begin, end;
    unsigned index;
  };
  std::mutex buffers_mu_;  // register_buffers
  std::unique_ptr<buffer[]> buffers_;  // written before nbuffers_ is published
  std::atomic<unsigned> nbuffers_{0};

  // Requests taken and not yet harvested, on every instance (a nowait-first
  // read's rest stays counted). Raised before the kernel sees them, lowered
  // after their events are posted; seq_cst (see inflight()).
  std::atomic<uint64_t> inflight_{0};
};

}  // namespace aio2::exec
