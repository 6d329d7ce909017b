/*
 * The host's locale does not reach what libcase computes (issue 15 §3, found
 * in review: a host running in nl_NL.UTF-8 — any C program that calls
 * setlocale(LC_ALL, "") on a Dutch desktop or server — made Lua's tostring(1.5)
 * "1,5", string comparison collate ('a' < 'B' true instead of bytewise false)
 * and strtod read a definition's "0.5" as 0, so its guards and actions
 * computed otherwise than their replay by casectl verify, in the C locale).
 *
 * The test makes a real Dutch locale with localedef (Debian's `locales`
 * package, which scripts/bootstrap installs) in a temporary LOCPATH, checks
 * that the C library really formats "1,5" there (the premise), and then runs
 * the same definition in it and in the C locale: the same data.
 */
#define _POSIX_C_SOURCE 200809L
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "libcase/libcase.h"

static const char *WF =
    "workflow: locale\n"
    "version: 1\n"
    "roles: [IND]\n"
    "params:\n"
    "  ratio: 0.5\n"
    "data:\n"
    "  s: {type: string}\n"
    "  ok: {type: boolean, default: false}\n"
    "  low: {type: boolean, default: false}\n"
    "initial: a\n"
    "states:\n"
    "  a:\n"
    "    on:\n"
    "      go:\n"
    "        actions: |\n"
    "          case.s = tostring(1.5) .. ' ' .. string.format('%.2f', 2.25) .. ' ' ..\n"
    "                   tostring(params.ratio) .. ' ' .. tostring(tonumber('0.25')) .. ' ' ..\n"
    "                   ('%g'):format(1e-5) .. ' ' .. ('\xc3\xa9t\xc3\xa9'):upper()\n"
    "          case.ok = ('a' < 'B')\n"
    "          case.low = ('Z' < 'a')\n";

/* Runs WF's `go` on a new engine in the current locale; the data as JSON. */
static char *run(void) {
  case_engine *e;
  assert_int_equal(case_engine_open(&e), CASE_OK);
  const case_def *d;
  if (case_def_load_string(e, WF, strlen(WF), "locale.yaml", &d) != CASE_OK)
    fail_msg("load: %s", case_errmsg(e));
  case_instance *c;
  assert_int_equal(case_instance_create(e, d, "K1", NULL, NULL, 1800000000, &c), CASE_OK);
  if (case_instance_fire(c, "go", NULL, "a", "IND", 1800000001) != CASE_OK)
    fail_msg("fire: %s", case_errmsg(e));
  char *data = NULL;
  assert_int_equal(case_instance_data(c, &data), CASE_OK);
  case_engine_close(e);
  return data;
}

static void test_host_locale_does_not_count(void **state) {
  (void)state;
  static const char *want =
      "{\"s\":\"1.5 2.25 0.5 0.25 1e-05 \xc3\xa9T\xc3\xa9\",\"ok\":false,\"low\":true}";
  char *in_c = run();
  assert_string_equal(in_c, want);

  char dir[] = "/tmp/test_locale.XXXXXX";
  assert_non_null(mkdtemp(dir));
  char cmd[256];
  snprintf(cmd, sizeof cmd, "localedef -i nl_NL -f UTF-8 %s/nl_NL.UTF-8 >/dev/null 2>&1", dir);
  int rc = system(cmd);
  if (rc != 0)
    fail_msg("localedef -i nl_NL -f UTF-8 failed (%d): the test needs Debian's locales "
             "package (scripts/bootstrap installs it)", rc);
  setenv("LOCPATH", dir, 1);
  if (!setlocale(LC_ALL, "nl_NL.UTF-8")) fail_msg("setlocale(nl_NL.UTF-8) failed in %s", dir);
  char b[16];
  snprintf(b, sizeof b, "%.1f", 1.5);
  assert_string_equal(b, "1,5"); /* the premise: this locale writes a decimal comma */
  assert_true(strcoll("a", "B") < 0); /* and collates, where bytes say 'a' > 'B' */

  char *in_nl = run();
  setlocale(LC_ALL, "C");
  unsetenv("LOCPATH");
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
  assert_string_equal(in_nl, want);
  /* and the host's locale is the host's again afterwards */
  case_free(in_c);
  case_free(in_nl);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_host_locale_does_not_count),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
