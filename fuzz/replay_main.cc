// SPDX-License-Identifier: MIT
// The plain build of a fuzz target: runs LLVMFuzzerTestOneInput once on each
// file named on the command line, or on each file in each directory named
// (not recursively), so that ctest replays the committed corpora with g++ and
// no fuzzing engine. A target reports a broken invariant by aborting, which
// fails the test; a run that finds no file fails too, so a moved corpus
// cannot pass by replaying nothing.

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern "C" int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

namespace {

bool run_file(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "replay: cannot read %s\n", path.c_str());
    return false;
  }
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // A copy of exactly the input's size, so that a read past it is a heap
  // overflow under AddressSanitizer, as it is under libFuzzer.
  std::vector<uint8_t> data(bytes.begin(), bytes.end());
  LLVMFuzzerTestOneInput(data.empty() ? nullptr : data.data(), data.size());
  return true;
}

}  // namespace

int main(int argc, char **argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  std::vector<std::string> files;
  for (int i = 1; i < argc; i++) {
    struct stat st {};
    if (stat(argv[i], &st) != 0) {
      std::fprintf(stderr, "replay: %s: no such file or directory\n", argv[i]);
      return 2;
    }
    if (!S_ISDIR(st.st_mode)) {
      files.emplace_back(argv[i]);
      continue;
    }
    DIR *d = opendir(argv[i]);
    if (d == nullptr) return 2;
    while (const dirent *e = readdir(d)) {
      const std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      files.push_back(std::string(argv[i]) + "/" + name);
    }
    closedir(d);
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::fprintf(stderr, "replay: no input files\n");
    return 2;
  }
  for (const auto &f : files)
    if (!run_file(f)) return 2;
  std::printf("replay: %zu inputs, no invariant broken\n", files.size());
  return 0;
}
