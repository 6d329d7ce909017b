/*
 * run_scenarios — runs process-test scenarios (docs/process-tests.md).
 *
 *   run_scenarios [-C root] file.yaml...
 *
 * Each file runs on a fresh engine whose Lua root is `root` (default: the
 * current directory), so paths in scenarios resolve against the repository.
 * Prints each failing step and a summary per file; exits 1 if any step failed
 * or a file is not a valid scenario, 2 on bad usage.
 */
#include <stdio.h>
#include <string.h>

#include "libcase/libcase.h"
#include "libcase/scenario.h"

int main(int argc, char **argv) {
  const char *root = ".";
  int i = 1, bad = 0;
  if (i + 1 < argc && strcmp(argv[i], "-C") == 0) {
    root = argv[i + 1];
    i += 2;
  }
  if (i >= argc) {
    fprintf(stderr, "usage: run_scenarios [-C root] scenario.yaml...\n");
    return 2;
  }
  for (; i < argc; i++) {
    case_engine *e = NULL;
    if (case_engine_open(&e) != CASE_OK || case_engine_set_lua_root(e, root) != CASE_OK) {
      fprintf(stderr, "run_scenarios: cannot open an engine\n");
      case_engine_close(e);
      return 1;
    }
    int failures = 0;
    char *report = NULL;
    int rc = case_scenario_run_file(e, argv[i], &failures, &report);
    if (rc != CASE_OK) {
      fprintf(stderr, "%s\n", case_errmsg(e));
      bad = 1;
    } else {
      fputs(report, failures ? stderr : stdout);
      if (failures) bad = 1;
    }
    case_free(report);
    case_engine_close(e);
  }
  return bad;
}
