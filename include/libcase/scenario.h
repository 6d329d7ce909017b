/*
 * libcase scenarios — process tests written as YAML.
 *
 * A scenario names a workflow definition, a location and a start date, creates
 * one or more cases and walks them through a list of steps (events fired by a
 * role on a date, or the clock running to a date), checking after each step
 * what must hold: the active states, data fields, the last day of running
 * terms, that an event is refused and why, what a role may do, which
 * notifications were emitted.  The format is in docs/process-tests.md.
 *
 * The conventions of libcase.h hold here too: result codes, errors kept on the
 * engine (case_errcode(), case_errmsg(), case_errpos()), caller-owned strings
 * freed with case_free(), one thread per engine at a time.
 */
#ifndef LIBCASE_SCENARIO_H
#define LIBCASE_SCENARIO_H

#include "libcase/libcase.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Runs the scenario in the YAML file `path` on engine `e`.
 *
 * The workflow file(s) and location profile the scenario names are loaded on
 * `e` first (a definition already loaded with the same bytes is reused, a
 * profile already loaded under the location's name is kept).  A relative path
 * in the scenario is looked up next to the scenario file first, then under the
 * engine's Lua root (case_engine_set_lua_root(), by default the current
 * directory), so a repository's scenarios run with the root set to the
 * repository.  The cases the scenario creates are freed before the call
 * returns; the definitions and profiles stay loaded.  The engine's
 * notification callback is replaced while the scenario runs and restored
 * afterwards.
 *
 * Every step date is a Europe/Amsterdam date; a step on date D happens at
 * 10:00 local time unless the step gives a time.  Before each event the case's
 * timers due by then fire, as case_instance_tick() would.
 *
 * On return *failures (if not NULL) holds the number of failing steps (a step
 * fails when any of its expectations fails) and *report (if not NULL) a
 * caller-owned string, freed with case_free(): one line per failing step,
 *   "file:line: step N (event X as ROLE on DATE): expected ..., got ..."
 * and a final summary line "file: S steps, F failing".  Both are set for
 * CASE_OK only; on other results *failures is 0 and *report NULL.
 *
 * Returns CASE_OK when the scenario ran, whatever its failures.  Errors, with
 * "file:line:col: what (expected ...)" in case_errmsg() and the position in
 * case_errpos(): CASE_IO (the scenario file cannot be read), CASE_INVALID (not
 * a valid scenario: YAML syntax, anchors or aliases, unknown keys, bad dates,
 * dates that go back in time, unknown states, fields or roles, a missing
 * workflow); a failure to load the workflow or profile returns that call's
 * code (CASE_IO, CASE_INVALID, CASE_SCRIPT, ...) with its message.
 * CASE_NOMEM, CASE_MISUSE (e or path NULL).
 */
CASE_API int case_scenario_run_file(case_engine *e, const char *path, int *failures,
                                    char **report);

#ifdef __cplusplus
}
#endif
#endif /* LIBCASE_SCENARIO_H */
