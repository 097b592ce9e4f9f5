// SPDX-License-Identifier: MIT
// util::intrusive_list: FIFO order, unlinking anywhere, moving everything
// to another list, and the links of an object that has left a list.

#include <gtest/gtest.h>

#include <vector>

#include "util/intrusive_list.h"

namespace {

struct node {
  int v = 0;
  aio2::util::list_link<node> link;
};
using list = aio2::util::intrusive_list<node, &node::link>;

// The values from front to back, walking next(); checks the prev links on
// the way back too.
std::vector<int> values(const list &l) {
  std::vector<int> out;
  const node *last = nullptr;
  for (const node *n = l.front(); n; n = list::next(n)) {
    EXPECT_EQ(n->link.prev, last) << "prev of " << n->v;
    out.push_back(n->v);
    last = n;
  }
  return out;
}

bool unlinked(const node &n) { return n.link.next == nullptr && n.link.prev == nullptr; }

TEST(IntrusiveList, EmptyList) {
  list l;
  EXPECT_TRUE(l.empty());
  EXPECT_EQ(l.front(), nullptr);
  EXPECT_EQ(l.pop_front(), nullptr);
}

TEST(IntrusiveList, PushBackIsFifo) {
  node n[4];
  list l;
  for (int i = 0; i < 4; i++) {
    n[i].v = i;
    l.push_back(&n[i]);
  }
  EXPECT_FALSE(l.empty());
  EXPECT_EQ(values(l), (std::vector<int>{0, 1, 2, 3}));
  for (int i = 0; i < 4; i++) {
    node *p = l.pop_front();
    ASSERT_EQ(p, &n[i]);
    EXPECT_TRUE(unlinked(*p));
  }
  EXPECT_TRUE(l.empty());
  EXPECT_EQ(l.pop_front(), nullptr);
}

TEST(IntrusiveList, PushFront) {
  node n[3];
  list l;
  for (int i = 0; i < 3; i++) {
    n[i].v = i;
    l.push_front(&n[i]);
  }
  EXPECT_EQ(values(l), (std::vector<int>{2, 1, 0}));
  node extra;
  extra.v = 9;
  l.push_back(&extra);  // the tail is still right after push_front
  EXPECT_EQ(values(l), (std::vector<int>{2, 1, 0, 9}));
}

TEST(IntrusiveList, PushFrontOnEmptySetsTheTail) {
  node a, b;
  a.v = 1;
  b.v = 2;
  list l;
  l.push_front(&a);
  l.push_back(&b);
  EXPECT_EQ(values(l), (std::vector<int>{1, 2}));
  EXPECT_EQ(l.pop_front(), &a);
  EXPECT_EQ(l.pop_front(), &b);
  EXPECT_TRUE(l.empty());
}

class IntrusiveListUnlink : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 5; i++) {
      n[i].v = i;
      l.push_back(&n[i]);
    }
  }
  node n[5];
  list l;
};

TEST_F(IntrusiveListUnlink, Middle) {
  l.unlink(&n[2]);
  EXPECT_TRUE(unlinked(n[2]));
  EXPECT_EQ(values(l), (std::vector<int>{0, 1, 3, 4}));
}

TEST_F(IntrusiveListUnlink, Head) {
  l.unlink(&n[0]);
  EXPECT_TRUE(unlinked(n[0]));
  EXPECT_EQ(l.front(), &n[1]);
  EXPECT_EQ(values(l), (std::vector<int>{1, 2, 3, 4}));
}

TEST_F(IntrusiveListUnlink, Tail) {
  l.unlink(&n[4]);
  EXPECT_TRUE(unlinked(n[4]));
  EXPECT_EQ(values(l), (std::vector<int>{0, 1, 2, 3}));
  node extra;
  extra.v = 7;
  l.push_back(&extra);  // goes after the new tail
  EXPECT_EQ(values(l), (std::vector<int>{0, 1, 2, 3, 7}));
}

TEST_F(IntrusiveListUnlink, EverythingInAnyOrder) {
  for (int i : {3, 0, 4, 1, 2}) l.unlink(&n[i]);
  EXPECT_TRUE(l.empty());
  EXPECT_EQ(l.front(), nullptr);
  for (const node &x : n) EXPECT_TRUE(unlinked(x));
  l.push_back(&n[1]);  // head and tail were both reset
  EXPECT_EQ(values(l), (std::vector<int>{1}));
}

TEST_F(IntrusiveListUnlink, Relink) {
  l.unlink(&n[1]);
  l.push_back(&n[1]);
  l.unlink(&n[3]);
  l.push_front(&n[3]);
  EXPECT_EQ(values(l), (std::vector<int>{3, 0, 2, 4, 1}));
}

TEST_F(IntrusiveListUnlink, TakeAll) {
  list all = l.take_all();
  EXPECT_TRUE(l.empty());
  EXPECT_EQ(l.front(), nullptr);
  EXPECT_EQ(values(all), (std::vector<int>{0, 1, 2, 3, 4}));
  // The emptied list is usable again, apart from the moved one.
  node extra;
  extra.v = 8;
  l.push_back(&extra);
  EXPECT_EQ(values(l), (std::vector<int>{8}));
  EXPECT_EQ(values(all), (std::vector<int>{0, 1, 2, 3, 4}));
  // The taken list keeps working: its tail is right.
  all.unlink(&n[4]);
  node tail;
  tail.v = 9;
  all.push_back(&tail);
  EXPECT_EQ(values(all), (std::vector<int>{0, 1, 2, 3, 9}));
}

TEST(IntrusiveList, TakeAllOfEmpty) {
  list l;
  list all = l.take_all();
  EXPECT_TRUE(all.empty());
  EXPECT_TRUE(l.empty());
}

TEST(IntrusiveList, NextOfTheLastIsNull) {
  node a, b;
  list l;
  l.push_back(&a);
  l.push_back(&b);
  EXPECT_EQ(list::next(&a), &b);
  EXPECT_EQ(list::next(&b), nullptr);
}

}  // namespace
