/*
 * Fuzz target: any bytes as a workflow definition.  If the definition loads,
 * a case is created and a few events are fired, explained and snapshotted, so
 * the engine runs on whatever the loader accepted.  Built with libFuzzer
 * (-DCASE_FUZZ=ON with clang) or, by default, with a small main() that runs the
 * files given on the command line: CTest runs it over the definitions under
 * tests/data/defs so every crash found once stays fixed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libcase/libcase.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  case_engine *e = NULL;
  if (case_engine_open(&e) != CASE_OK) return 0;
  case_engine_limit(e, CASE_LIMIT_INSTRUCTIONS, 20000);
  case_engine_limit(e, CASE_LIMIT_MEMORY, 1 << 20);
  case_engine_limit(e, CASE_LIMIT_MICROSTEPS, 100);
  const case_def *d = NULL;
  if (case_def_load_string(e, (const char *)data, size, "fuzz.yaml", &d) == CASE_OK) {
    case_instance *c = NULL;
    if (case_instance_create(e, d, "f", NULL, NULL, 1772442000, &c) == CASE_OK) {
      static const char *events[] = {"a", "b", "go", "next", "done.state.x", "*", "x.y"};
      for (size_t i = 0; i < sizeof events / sizeof *events; i++) {
        char *s = NULL;
        case_instance_fire(c, events[i], "{\"k\":1}", "fuzz", NULL, 1772442000 + (int64_t)i);
        case_instance_explain(c, events[i], NULL, 1772442000, &s);
        case_free(s);
      }
      char *s = NULL;
      case_instance_available(c, NULL, 1772442000, &s);
      case_free(s);
      case_instance_tick(c, 1772442000 + 400 * 86400LL, NULL);
      case_instance_snapshot(c, &s);
      case_instance_free(c);
      case_instance *r = NULL;
      if (s && case_instance_restore(e, s, &r) == CASE_OK) case_instance_free(r);
      case_free(s);
    }
  }
  case_engine_close(e);
  return 0;
}

#include "replay_main.h"
