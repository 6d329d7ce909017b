/*
 * Fuzz target: any bytes as a snapshot to restore, then as an event payload
 * and initial data.  A fixed definition with history, parallel regions,
 * timers and typed data is loaded first, so a restored case exercises every
 * part of the status.  Built like fuzz_definition.c (libFuzzer with
 * -DCASE_FUZZ=ON, else a replay driver run by CTest over tests/fuzz/snapshots).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libcase/libcase.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *DEF =
    "workflow: fz\nversion: 1\nroles: [IND]\n"
    "data: {n: {type: integer, default: 0}, d: {type: date}, l: {type: list}}\n"
    "initial: p\n"
    "states:\n"
    "  p:\n"
    "    parallel: true\n"
    "    on: {stop: end}\n"
    "    states:\n"
    "      r1:\n"
    "        initial: a\n"
    "        states:\n"
    "          h: {history: deep, default: a}\n"
    "          a: {on: {go: {target: b, actions: [case.n = case.n + 1]}}}\n"
    "          b:\n"
    "            deadlines: {t: {after: 3 days, clock: atw, on_expiry: go}}\n"
    "            on: {go: a}\n"
    "      r2:\n"
    "        initial: c\n"
    "        states:\n"
    "          c: {after: [{delay: 2 hours, target: e}]}\n"
    "          e: {}\n"
    "  end: {final: true}\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  case_engine *e = NULL;
  if (case_engine_open(&e) != CASE_OK) {
    free(text);
    return 0;
  }
  const case_def *d = NULL;
  if (case_def_load_string(e, DEF, strlen(DEF), "fz.yaml", &d) == CASE_OK) {
    case_instance *c = NULL;
    if (case_instance_restore(e, text, &c) == CASE_OK) {
      char *s = NULL;
      case_instance_fire(c, "go", NULL, NULL, "IND", 1772442000);
      case_instance_tick(c, 1772442000 + 30 * 86400LL, NULL);
      case_instance_snapshot(c, &s);
      case_free(s);
      case_instance_free(c);
    }
    if (case_instance_create(e, d, "x", NULL, text, 1772442000, &c) == CASE_OK) {
      case_instance_fire(c, "go", text, "a", "IND", 1772442000);
      case_instance_free(c);
    }
  }
  case_engine_close(e);
  free(text);
  return 0;
}

#include "replay_main.h"
