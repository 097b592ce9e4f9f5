// SPDX-License-Identifier: MIT
// Helpers the tests of the aio2 command share (tool_trace_test; the same
// names as tool_bench_test's own): a temporary directory that removes
// itself, reading a file whole, and running the built command
// (AIO2_TOOL_PATH) with TMPDIR pointed at a directory of the test's.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef AIO2_TOOL_PATH
#error "AIO2_TOOL_PATH must name the built aio2 command"
#endif

extern char **environ;

namespace aio2_tool_test {

// A fresh directory, removed with everything in it at the end.
class temp_dir {
 public:
  temp_dir() {
    std::string t = (std::filesystem::temp_directory_path() / "aio2-tool-test.XXXXXX").string();
    if (mkdtemp(t.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = t;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir &) = delete;
  temp_dir &operator=(const temp_dir &) = delete;
  const std::filesystem::path &path() const { return path_; }
  std::string operator/(const std::string &name) const { return (path_ / name).string(); }
  // The names of the entries, sorted.
  std::vector<std::string> entries() const {
    std::vector<std::string> v;
    for (const auto &e : std::filesystem::directory_iterator(path_))
      v.push_back(e.path().filename().string());
    std::sort(v.begin(), v.end());
    return v;
  }

 private:
  std::filesystem::path path_;
};

inline std::string read_file(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct run_result {
  int status = -1;  // exit status, or -1 when it did not exit normally
  std::string out, err;
};

// Runs `args` (argv[0] found on PATH unless it has a slash) with `env`
// added to the environment, replacing variables of the same names, and
// TMPDIR set to `tmpdir`; standard input is /dev/null, and stdout and
// stderr go to files in a scratch directory of their own, so `tmpdir` holds
// only what the command leaves.
inline run_result spawn(const std::vector<std::string> &args, const std::vector<std::string> &env,
                        const std::string &tmpdir) {
  temp_dir scratch;
  const std::string out = scratch / "stdout", err = scratch / "stderr";
  std::vector<std::string> argv_s = args, env_s;
  std::vector<std::string> add = env;
  add.push_back("TMPDIR=" + tmpdir);
  for (char **e = environ; *e; e++) {
    const std::string v = *e;
    const bool replaced = std::any_of(add.begin(), add.end(), [&](const std::string &a) {
      return v.compare(0, a.find('=') + 1, a, 0, a.find('=') + 1) == 0;
    });
    if (!replaced) env_s.push_back(v);
  }
  env_s.insert(env_s.end(), add.begin(), add.end());
  std::vector<char *> argv, envp;
  for (std::string &a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (std::string &e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  run_result r;
  const int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    r.err = std::string("posix_spawn: ") + std::strerror(rc);
    return r;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

// Runs `aio2 args...` with TMPDIR set to `tmpdir` (spawn).
inline run_result run_aio2(const std::vector<std::string> &args, const std::string &tmpdir) {
  std::vector<std::string> argv = {AIO2_TOOL_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  return spawn(argv, {}, tmpdir);
}

}  // namespace aio2_tool_test
