// SPDX-License-Identifier: MIT
// A doubly linked FIFO of objects that carry their own links, so that moving
// a request between lists (free slots, a worker class's queue, its running
// requests, io_uring's requests in flight, the overflow list) allocates
// nothing. An object is on at most one list at a time. Not thread-safe: each
// list is guarded by its owner's lock, which callers hold.
#pragma once

namespace aio2::util {

// The links an object embeds; both null while it is on no list.
template <class T>
struct list_link {
  T *next = nullptr;
  T *prev = nullptr;
};

// A list of T linked through the member `Link` (a list_link<T>).
template <class T, list_link<T> T::*Link>
class intrusive_list {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  T *front() const noexcept { return head_; }
  // The object after `t` on this list, or nullptr.
  static T *next(const T *t) noexcept { return (t->*Link).next; }

  void push_back(T *t) noexcept {
    list_link<T> &l = t->*Link;
    l.next = nullptr;
    l.prev = tail_;
    if (tail_) (tail_->*Link).next = t;
    else head_ = t;
    tail_ = t;
  }

  void push_front(T *t) noexcept {
    list_link<T> &l = t->*Link;
    l.prev = nullptr;
    l.next = head_;
    if (head_) (head_->*Link).prev = t;
    else tail_ = t;
    head_ = t;
  }

  // Removes `t`, which must be on this list.
  void unlink(T *t) noexcept {
    list_link<T> &l = t->*Link;
    if (l.prev) (l.prev->*Link).next = l.next;
    else head_ = l.next;
    if (l.next) (l.next->*Link).prev = l.prev;
    else tail_ = l.prev;
    l.next = l.prev = nullptr;
  }

  // Removes and returns the oldest object, or nullptr.
  T *pop_front() noexcept {
    T *t = head_;
    if (t) unlink(t);
    return t;
  }

  // Moves every object to a new list, leaving this one empty.
  intrusive_list take_all() noexcept {
    intrusive_list all;
    all.head_ = head_;
    all.tail_ = tail_;
    head_ = tail_ = nullptr;
    return all;
  }

 private:
  T *head_ = nullptr;
  T *tail_ = nullptr;
};

}  // namespace aio2::util
