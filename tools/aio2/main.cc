// SPDX-License-Identifier: MIT
// The `aio2` command: one program, subcommands, --help on each.

#include <cstdio>
#include <cstring>

#include "demo.h"

namespace {

struct subcommand {
  const char *name;
  const char *summary;
  const char *usage;
  int (*run)(int, char **);
};

const subcommand kCommands[] = {
    {"demo", "show what aio2 does, part by part, on data it makes itself",
     "usage: aio2 demo\n\n"
     "Runs every part of the demo with its own data and checks its own results.\n"
     "Exit status 0 when every part passed.\n",
     aio2_tool::demo_main},
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
