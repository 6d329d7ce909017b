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

/* ------------------------------------------------------------------ */
/* Coverage: what the scenarios reached, and what they left untested   */
/* ------------------------------------------------------------------ */

/** Coverage counts, merged over every engine they are set on (case_engine_set_coverage()). */
typedef struct case_coverage case_coverage;

/**
 * Creates an empty coverage record in *out (docs/process-tests.md, "Coverage").
 * Set it on one or more engines with case_engine_set_coverage(); read it with
 * case_coverage_report(); free it with case_coverage_close().
 * Returns CASE_OK, CASE_NOMEM (*out NULL) or CASE_MISUSE (out NULL).
 */
CASE_API int case_coverage_open(case_coverage **out);

/**
 * Lets go of the caller's handle.  The record itself lives on while an engine
 * still has it set, and is freed with the last of them; so engines and the
 * record may be closed in any order.  NULL does nothing.
 */
CASE_API void case_coverage_close(case_coverage *cov);

/**
 * Makes engine `e` count into `cov` (NULL: stop counting).
 *
 * From this call on, every macrostep that a case of `e` completes (its creation,
 * an accepted event, a timer that fires) counts, per definition, the states it
 * entered, the transitions it took, each guard result it saw (true or false), and
 * for the named deadlines (`deadlines:`) those that ran out (a tick reached their
 * end) and those that were met (their state was left before they ran out).  An
 * event that is refused counts only the guard results that refused it; a
 * macrostep that fails and is rolled back counts nothing.  Guards evaluated for
 * case_instance_available() and case_instance_explain() do not count.  Every
 * definition loaded on `e` (before or after this call) is reported, also when
 * no case runs on it.
 *
 * Counts add up over every case and every engine `cov` is set on: a definition
 * with the same id, version and content (hash) is one definition whichever
 * engine loaded it, so scenario files run on one engine or several merge.  An
 * engine holds a reference to `cov` until it is closed or given another one.
 * While no coverage is set, the engine pays one pointer test per counting site
 * and nothing else.  One thread at a time for `cov` and every engine it is set on.
 *
 * Returns CASE_OK, CASE_NOMEM (nothing changed), CASE_MISUSE (e NULL, or
 * called from a callback during case_coverage_skeleton()).
 */
CASE_API int case_engine_set_coverage(case_engine *e, case_coverage *cov);

#define CASE_COVERAGE_TEXT 0 /* lines for people: figures, then untested items by file:line:col */
#define CASE_COVERAGE_JSON 1 /* one JSON object for programs */

/**
 * The counts of `cov`, per definition in the order they were first seen.
 *
 * CASE_COVERAGE_JSON gives
 *   {"incomplete": false, "definitions": [{"workflow", "version", "file", "cases",
 *     "states":      {"total", "covered", "untested": [{"state", "line", "column"}]},
 *     "transitions": {"total", "covered", "untested": [{"source", "events", "targets",
 *                                                       "line", "column"}]},
 *     "guards":      {"total", "covered", "untested": [{"guard", "source", "events",
 *                                                       "true", "false", "line", "column"}]},
 *     "deadlines":   {"total", "ran_out", "met", "untested": [{"deadline", "state",
 *                                                       "ran_out", "met", "line", "column"}]}}]}
 * where states exclude history pseudo-states; every transition counts (also
 * eventless, `after` and done.state ones); a guard is covered once it was seen
 * both true and false ("true"/"false" say how often); a deadline is listed as
 * untested unless it both ran out and was met; "cases" counts the cases created.
 * Positions are 1-based, in the definition's file (`file`: the path it was
 * loaded from, with "./" and "dir/.." removed); a transition's position is its
 * event key (or `always` / `after` entry), a guard's is where its text starts.
 * "incomplete" is true when a record was lost for want of memory.
 *
 * CASE_COVERAGE_TEXT gives per definition
 *   asielprocedure version 1 (workflows/asielprocedure.yaml): 31 cases
 *     states entered           59/60 (98.3%)
 *     transitions taken        84/112 (75.0%)
 *     guards true and false    16/32 (50.0%)
 *     deadlines ran out        16/22 (72.7%)
 *     deadlines met            19/22 (86.4%)
 *     untested:
 *       workflows/asielprocedure.yaml:237:15: transition on 'x' from 'a' (targetless) never taken
 *       ...
 * with the untested items in file order, a definition per paragraph.
 *
 * On success stores a caller-owned string in *out (free with case_free()) and
 * returns CASE_OK.  Errors (*out NULL): CASE_MISUSE (cov or out NULL, an
 * unknown format), CASE_NOMEM.
 */
CASE_API int case_coverage_report(case_coverage *cov, int format, char **out);

/**
 * A shortest event path from the initial configuration of definition `d` to the
 * transition at `line` (and `column`, or 0 for any column) of its file, as a
 * scenario skeleton: YAML that case_scenario_run_file() accepts.
 *
 * The path is found by a breadth-first search over configurations (and history
 * values).  Data is unknown, so guards count as either way: each step takes the
 * transition it aims at with its guard true, every other guard is taken as
 * false, and the target's guard as true.  Actions do not run; only their literal
 * raise('name') calls are followed (events raised by `lua:` module functions
 * are not).  A step is an event fired by a role the transition allows (the
 * first of them; a transition open to every role takes the workflow's first
 * role) or a tick to the day a term or delay runs out.  Each step of the
 * skeleton says, in comments, which guards must hold and which must not
 * ("TODO"), carries `payload: {}` with a TODO where the transition has a guard
 * or actions, and checks the leaf states the path expects (`configuration:
 * {includes: [...]}`); the last step takes the target.  Event steps happen at
 * the time of the step before; a tick goes to the moment the term runs out,
 * counted from `start` with the definition's params (or the params of profile
 * `location`, when loaded on `e`); a note says so when other terms would run out
 * first on the way.  The search explores at most 200000 configurations.
 *
 * `workflow_path` is written as the skeleton's `workflow:` (NULL: d's file as
 * loaded); `location` (may be NULL) as its `location:`; `start` (UTC seconds) is
 * when the case is created, written as its local date and time.
 *
 * On success stores the caller-owned YAML in *yaml (free with case_free()) and
 * returns CASE_OK.  Errors (*yaml NULL, message in case_errmsg()): CASE_NOTFOUND
 * (no transition of `d` at that position, or no event path reaches it: the
 * message says which), CASE_INVALID (several transitions at that line: give
 * the column; the message lists them), CASE_LIMIT (the search space is larger
 * than the bound), CASE_NOMEM, CASE_MISUSE (e, d or yaml NULL, or d of another
 * engine).  A coverage set on `e` is neither used nor changed.
 */
CASE_API int case_coverage_skeleton(case_engine *e, const case_def *d, int line, int column,
                                    const char *workflow_path, const char *location,
                                    int64_t start, char **yaml);

#ifdef __cplusplus
}
#endif
#endif /* LIBCASE_SCENARIO_H */
