// SPDX-License-Identifier: MIT
// The `aio2` command: one program, subcommands, --help on each.

#include <cstdio>
#include <cstring>

#include "engines/bench_main.h"
#include "demo.h"
#include "run.h"
#include "trace.h"

namespace {

int bench_cmd(int argc, char **argv) { return aio2_tool::bench_main("aio2 bench", argc, argv); }

struct subcommand {
  const char *name;
  const char *summary;
  // Usage text main prints for --help, for a command that takes no
  // arguments; NULL for one that parses its own (and its own --help).
  const char *usage;
  int (*run)(int, char **);
};

const subcommand kCommands[] = {
    {"demo", "show what aio2 does, part by part, on data it makes itself",
     "usage: aio2 demo\n\n"
     "Runs every part of the demo with its own data and checks its own results.\n"
     "Exit status 0 when every part passed.\n",
     aio2_tool::demo_main},
    {"bench", "compare aio2 with liburing, libaio, POSIX AIO, libuv and plain calls", nullptr,
     bench_cmd},
    {"trace", "run a workload with attributes on and report what they say", nullptr,
     aio2_tool::trace_main},
    {"run", "run a program on aio2's libaio and POSIX AIO and report its requests", nullptr,
     aio2_tool::run_main},
};

void usage(FILE *out) {
  std::fprintf(out, "usage: aio2 COMMAND [ARGS]\n\ncommands:\n");
  for (const auto &c : kCommands) std::fprintf(out, "  %-8s %s\n", c.name, c.summary);
  std::fprintf(out, "\n'aio2 COMMAND --help' describes one command.\n");
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  for (const auto &c : kCommands) {
    if (std::strcmp(argv[1], c.name) != 0) continue;
    // The command sees its own arguments, argv[0] being its name.
    if (c.usage == nullptr) return c.run(argc - 1, argv + 1);
    for (int i = 2; i < argc; i++) {
      if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
        std::fputs(c.usage, stdout);
        return 0;
      }
    }
    if (argc > 2) {
      std::fprintf(stderr, "aio2 %s: unexpected argument '%s' (see 'aio2 %s --help')\n", c.name,
                   argv[2], c.name);
      return 2;
    }
    return c.run(argc - 1, argv + 1);
  }
  std::fprintf(stderr, "aio2: unknown command '%s' (see 'aio2 --help')\n", argv[1]);
  return 2;
}
