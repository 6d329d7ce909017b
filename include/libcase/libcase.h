/*
 * libcase — case processes as statecharts.
 *
 * Process designers write workflow definitions in YAML (docs/workflow-format.md);
 * guards and actions are Lua, run in a sandbox; a host program loads definitions
 * into an engine, creates cases and fires events at them.
 *
 * Conventions that hold for every function below unless its block says otherwise:
 *
 *  - Result codes.  Functions return an int result code: CASE_OK (0) on success,
 *    one of the CASE_* codes below on failure.  The engine handle keeps the code
 *    and a message for the last call that failed: case_errcode(), case_errmsg().
 *    A successful call leaves CASE_OK and an empty message.
 *  - Ownership.  Input strings are borrowed: the library copies what it keeps and
 *    never holds a pointer to caller memory after a call returns.  Strings
 *    returned through a `char **` out-parameter are owned by the caller and freed
 *    with case_free().  `const char *` returns are owned by the library; their
 *    lifetime is stated per function.
 *  - Time.  Every timestamp is an int64_t count of seconds since 1970-01-01T00:00:00Z
 *    (UTC, no leap seconds).  Where the law counts days, days are calendar dates
 *    in Europe/Amsterdam.
 *  - JSON.  Case data, payloads and structured results are UTF-8 JSON text.
 *  - Threads.  There is no global state.  One engine, with its definitions and
 *    cases, may be used by one thread at a time; different engines may be used by
 *    different threads at once.  case_errstr() and case_libversion*() are safe
 *    from any thread.
 *  - NULL.  Passing NULL where a handle or required string is expected returns
 *    CASE_MISUSE (never crashes).  Destructors accept NULL and do nothing.
 *  - Out-parameters.  A function that hands back a handle or string through an
 *    out-parameter first sets it to NULL, so on any failure it is NULL (unless
 *    the out-parameter itself is NULL, or the block says otherwise).
 */
#ifndef LIBCASE_H
#define LIBCASE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(CASE_BUILDING_SHARED)
#define CASE_API __declspec(dllexport)
#elif defined(__GNUC__) && __GNUC__ >= 4
#define CASE_API __attribute__((visibility("default")))
#else
#define CASE_API
#endif

/* ------------------------------------------------------------------ */
/* Version                                                             */
/* ------------------------------------------------------------------ */

#define CASE_VERSION_MAJOR 0
#define CASE_VERSION_MINOR 1
#define CASE_VERSION_PATCH 0
#define CASE_VERSION "0.1.0"
/** MAJOR*1000000 + MINOR*1000 + PATCH, as SQLITE_VERSION_NUMBER. */
#define CASE_VERSION_NUMBER 1000

/**
 * The version of the library actually linked, as "MAJOR.MINOR.PATCH".
 * Returns a static string; never NULL.  Thread-safe.
 */
CASE_API const char *case_libversion(void);

/**
 * The version of the library actually linked, as CASE_VERSION_NUMBER encodes it.
 * Compare with CASE_VERSION_NUMBER to detect a header/library mismatch.  Thread-safe.
 */
CASE_API int case_libversion_number(void);

/* ------------------------------------------------------------------ */
/* Result codes: never renumbered; retired codes stay as placeholders. */
/* ------------------------------------------------------------------ */

#define CASE_OK          0  /* success */
#define CASE_ERROR       1  /* generic failure not covered below */
#define CASE_INVALID     2  /* bad input: a definition, JSON, name or argument value */
#define CASE_NOMEM       3  /* an allocation failed; nothing was changed */
#define CASE_MISUSE      4  /* the API was called wrongly (NULL handle, wrong order) */
#define CASE_NOTFOUND    5  /* no such definition, case, state, field or timer */
#define CASE_EXISTS      6  /* a definition id+version or case id is taken */
#define CASE_NOTHANDLED  7  /* the event enables no transition in this configuration */
#define CASE_DENIED      8  /* the actor's role may not fire this event here */
#define CASE_GUARD       9  /* every transition for the event has a false guard */
#define CASE_SCRIPT     10  /* a guard or action raised a Lua error (or a native one failed) */
#define CASE_LIMIT      11  /* a limit was exceeded: instruction budget, memory cap,
                               eventless/internal-event bound, nesting */
#define CASE_CONFLICT   12  /* a stored case changed since it was read (store) */
#define CASE_IO         13  /* a file could not be read or written */
#define CASE_CORRUPT    14  /* stored or snapshot data is inconsistent */
#define CASE_BUSY       15  /* the store is locked by another writer (store) */
#define CASE_DONE       16  /* the case has reached a top-level final state */

/**
 * English text for a result code, e.g. "event not handled".  Returns a static
 * string; an unknown code gives "unknown error".  Thread-safe.
 */
CASE_API const char *case_errstr(int rc);

/**
 * A short stable name for a result code, for programs and logs: "ok", "error",
 * "invalid", "nomem", "misuse", "not_found", "exists", "not_handled", "denied",
 * "guard", "script", "limit", "conflict", "io", "corrupt", "busy", "done".
 * Scenario files, casectl --json and the Lua binding use these names.  Returns
 * a static string; an unknown code gives "unknown".  Thread-safe.
 */
CASE_API const char *case_errname(int rc);

/**
 * Frees memory the library handed to the caller (strings from `char **`
 * out-parameters).  NULL is allowed and does nothing.
 */
CASE_API void case_free(void *p);

/* ------------------------------------------------------------------ */
/* Engine                                                              */
/* ------------------------------------------------------------------ */

/** An engine: loaded definitions, limits, native guards/actions, last error. */
typedef struct case_engine case_engine;
/** A loaded workflow definition: immutable, owned by the engine that loaded it. */
typedef struct case_def case_def;
/** One case (an instance of a definition) held in memory. */
typedef struct case_instance case_instance;

/**
 * Creates an engine with default limits (see case_engine_limit()) and the Dutch
 * Algemene termijnenwet holiday calendar.
 *
 * On success stores the new engine in *out and returns CASE_OK; the caller
 * closes it with case_engine_close().  On failure stores NULL in *out and returns
 * CASE_NOMEM (no memory) or CASE_MISUSE (out is NULL).  There is no handle to
 * hold a message in those cases.
 */
CASE_API int case_engine_open(case_engine **out);

/**
 * Frees the engine, every definition it loaded and every case created on it.
 * Pointers to those definitions and cases become invalid.  NULL does nothing.
 */
CASE_API void case_engine_close(case_engine *e);

/**
 * The result code of the last call on this engine (or on a definition or case
 * belonging to it) that failed, or CASE_OK if the last call succeeded.
 * A NULL engine gives CASE_MISUSE.
 */
CASE_API int case_errcode(const case_engine *e);

/**
 * The message of the last failed call on this engine, in English, saying where
 * (file:line:column for definitions) and what.  Owned by the engine; valid until
 * the next call on the engine or a definition or case of it.  "" after success;
 * a NULL engine gives a static message.
 */
CASE_API const char *case_errmsg(const case_engine *e);

/**
 * Where the last error was found in a definition: the file name (or the name
 * given to case_def_load_string) and 1-based line and column.  Returns CASE_OK
 * and fills the non-NULL out-parameters, or CASE_NOTFOUND (outputs untouched)
 * if the last error has no position.  *file is owned by the engine, valid as
 * long as case_errmsg()'s result.
 */
CASE_API int case_errpos(const case_engine *e, const char **file, int *line, int *column);

/* Limits, as sqlite3_limit(): identifiers for case_engine_limit(). */
#define CASE_LIMIT_INSTRUCTIONS 0 /* Lua VM instructions per guard/action call; default 1000000 */
#define CASE_LIMIT_MEMORY       1 /* bytes of Lua heap one call may add; default 8 MiB */
#define CASE_LIMIT_MICROSTEPS   2 /* microsteps (eventless + internal) per macrostep; default 1000 */
#define CASE_LIMIT_DEPTH        3 /* maximum nesting depth of states in a definition; default 64 */
#define CASE_LIMIT_EXPIRIES     4 /* timer and deadline expiries one case may have in one
                                     tick or fire; default 1000 */
#define CASE_LIMIT_TIME         5 /* wall-clock milliseconds per guard/action call; default 1000 */
#define CASE_LIMIT_PAYLOAD      6 /* bytes of one event payload as JSON text; default 1 MiB */
#define CASE_LIMIT_DATA         7 /* bytes of one case's data as compact JSON; default 4 MiB */

/**
 * Reads and optionally sets one limit.  `which` is a CASE_LIMIT_* value; a
 * `value` < 0 leaves the limit unchanged; 0 or more sets it (0 instructions,
 * memory, time, payload or data means no limit; 0 microsteps, depth or
 * expiries is raised to 1).  Returns the limit's value before the call, or -1
 * for an unknown `which` or NULL engine.  New limits apply from the next
 * guard/action call, definition load, tick, fire or case creation.  What each
 * limit counts (a call that reaches one returns CASE_LIMIT):
 *
 *  - CASE_LIMIT_INSTRUCTIONS: Lua VM instructions one guard or action call (or
 *    the top level of a `lua:` module or location profile while it loads) may
 *    run.  Work inside Lua's C library (patterns, string.rep, table.sort, ...)
 *    is charged to the same budget by its input size before it runs
 *    (docs/lua-sandbox.md lists the costs).
 *  - CASE_LIMIT_MEMORY: bytes one such call may allocate on the Lua heap,
 *    counted as allocated (memory freed again during the call is not given
 *    back), so the outcome does not depend on when the collector runs.
 *  - CASE_LIMIT_MICROSTEPS bounds one macrostep (eventless transitions and
 *    internal events keep firing): past it the macrostep fails with CASE_LIMIT
 *    and nothing of it is kept.
 *  - CASE_LIMIT_EXPIRIES bounds the timers of one case that one
 *    case_instance_tick(), case_instance_fire(), case_store_tick() or
 *    case_store_fire() call may fire (a delay of "0 seconds" that re-enters its
 *    own state runs out again at once, for ever): when a case has more due
 *    timers than the limit, none of them fires, the call fails with CASE_LIMIT
 *    for that case and the case is left as it was (case_store_tick() records the
 *    refusal and goes on with the other cases).
 *  - CASE_LIMIT_TIME: wall-clock milliseconds (CLOCK_MONOTONIC) one guard or
 *    action call (or module or profile load) may take, checked every 10,000
 *    instructions and before costly library calls.  A backstop behind the
 *    instruction budget: it depends on the machine's speed, so keep it well
 *    above what the budget allows.
 *  - CASE_LIMIT_PAYLOAD: bytes of an event payload as JSON text, for
 *    case_instance_fire() (the text as given), and for raise()/emit() and
 *    case_call_raise()/case_call_emit() payloads (as compact JSON).
 *  - CASE_LIMIT_DATA: bytes of a case's data object as compact JSON, checked
 *    at case_instance_create() (the initial data) and after every macrostep
 *    that ran an action: a macrostep that would leave the data larger than the
 *    limit, and larger than before, is refused (a case already above a lowered
 *    limit may still shrink; case_instance_restore() loads it as it is).
 */
CASE_API long long case_engine_limit(case_engine *e, int which, long long value);

/**
 * Sets the directory against which the `lua:` module paths of definitions are
 * resolved when they are not found next to the definition file (and always for
 * definitions loaded from a string).  The default is the current directory.
 * `dir` is copied.  Returns CASE_OK, CASE_MISUSE or CASE_NOMEM.
 */
CASE_API int case_engine_set_lua_root(case_engine *e, const char *dir);

/**
 * Adds a day to the holiday calendar used by the `atw` and `procedure` clocks:
 * `date` as "YYYY-MM-DD" (a Europe/Amsterdam calendar date), `name` for display
 * (may be NULL).  Days added by Royal Decree under Atw art. 3(3) go here; the
 * fixed Atw art. 3 days (New Year, Good Friday, Easter Monday, King's Day, 5 May,
 * Ascension, Whit Monday, Christmas) and the decree days known at release are
 * built in.  Adding a date twice is allowed.  Applies to terms computed after
 * the call.  Returns CASE_OK, CASE_INVALID (not a valid date), CASE_MISUSE or
 * CASE_NOMEM.
 */
CASE_API int case_engine_add_holiday(case_engine *e, const char *date, const char *name);

/**
 * Loads a location profile: a Lua file (run in the sandbox) returning a table
 *   { params = { name = value, ... }, functions = { name = function ... end, ... } }
 * Cases created with `location` = `name` see these params instead of the
 * definition's defaults and these functions instead of same-named module
 * functions, in guards and actions (docs/workflow-format.md, "Location
 * profiles").  Loading a name again replaces it for evaluations after the call.
 * `name` and `path` are copied.
 * The profile is checked against every loaded definition (and every
 * definition loaded later is checked against it): a param value of another
 * type than the definition's default, or a param counting a term that is not a
 * whole number from 0 to 100000000, is refused with CASE_INVALID and the
 * position of the param in the profile ("loc.lua:3:5: profile 'budel' sets
 * param 'drempel' to a string ("16"), but workflow 'w' declares it an integer
 * at w.yaml:6:3 ..."); case_def_check_profile() also lists the warnings.
 * Returns CASE_OK, CASE_IO (unreadable), CASE_SCRIPT (the file does not compile
 * or run, or does not return such a table: the message says file:line),
 * CASE_INVALID (a param value that is not a boolean, number or string, or one
 * a loaded definition cannot use, as above), CASE_NOMEM, CASE_MISUSE.
 */
CASE_API int case_engine_load_profile(case_engine *e, const char *name, const char *path);

/* ------------------------------------------------------------------ */
/* Definitions                                                         */
/* ------------------------------------------------------------------ */

/**
 * Loads and validates a workflow definition from a YAML file
 * (docs/workflow-format.md).  On success stores the definition in *out (owned
 * by the engine, valid until case_engine_close()) and returns CASE_OK; `out`
 * may be NULL.  A definition that fails validation is never added.
 *
 * Errors: CASE_IO (cannot read the file), CASE_INVALID (the YAML or the
 * definition is wrong: case_errmsg() says "file:line:col: what (expected ...)"
 * and case_errpos() gives the position), CASE_SCRIPT (a guard or action does not
 * compile; the position is the YAML node holding it), CASE_EXISTS (the same id and
 * version with different content is already loaded; the same content again
 * succeeds and returns the loaded definition), CASE_LIMIT (nesting too deep),
 * CASE_NOMEM, CASE_MISUSE.  CASE_INVALID also when a loaded location profile
 * sets one of the definition's params to a value it cannot use (see
 * case_engine_load_profile(); the position is then in the profile).
 */
CASE_API int case_def_load_file(case_engine *e, const char *path, const case_def **out);

/**
 * As case_def_load_file(), from `len` bytes of YAML at `text` (copied).  `name`
 * is used as the file name in messages (NULL gives "<string>").  Lua module
 * paths resolve against the engine's Lua root.
 */
CASE_API int case_def_load_string(case_engine *e, const char *text, size_t len,
                                  const char *name, const case_def **out);

/**
 * Finds a loaded definition by id and version; version 0 finds the highest
 * loaded version.  Returns NULL if there is none (no error is recorded) or if
 * `e` or `id` is NULL.  The result is owned by the engine.  With a store open
 * on the engine (libcase/store.h), definitions it holds count as loaded: they
 * are parsed on the first lookup that needs them (version 0 and
 * case_def_in_force() load every stored version of `id`, case_def_next() every
 * stored definition); when one fails to load, NULL is returned and the error
 * is recorded on the engine.
 */
CASE_API const case_def *case_def_find(case_engine *e, const char *id, int version);

/**
 * The version of workflow `id` in force at `at` (UTC seconds): of the loaded
 * versions whose `in_force_from:` date (a Europe/Amsterdam date) is on or before
 * the local date of `at`, or that have no such date, the highest version.  A
 * case is created on the version in force on its application date, so old cases
 * keep their law when a new version is loaded.  Returns NULL when none is in
 * force (no error is recorded) or when `e` or `id` is NULL.  Owned by the engine.
 */
CASE_API const case_def *case_def_in_force(case_engine *e, const char *id, int64_t at);

/**
 * The definition's `in_force_from:` date as "YYYY-MM-DD", or "" when it has
 * none.  Owned by the definition.  NULL gives NULL.
 */
CASE_API const char *case_def_in_force_from(const case_def *d);

/** The definition's `workflow:` id.  Owned by the definition. NULL gives NULL. */
CASE_API const char *case_def_id(const case_def *d);
/** The definition's `version:`, 1 or more; 0 for NULL. */
CASE_API int case_def_version(const case_def *d);
/**
 * The definition's content hash: lowercase hex SHA-256 of the YAML source bytes
 * (64 characters).  Owned by the definition.  NULL gives NULL.
 */
CASE_API const char *case_def_hash(const case_def *d);

/**
 * Iterates over the engine's loaded definitions: NULL gives the first, a
 * definition gives the next one, NULL after the last (order: most recently
 * loaded first).  Returns NULL for a NULL engine.  Owned by the engine.
 */
CASE_API const case_def *case_def_next(case_engine *e, const case_def *prev);

/** The number of states of the definition (every level, history states included). */
CASE_API int case_def_state_count(const case_def *d);
/**
 * The id of state `i`, 0-based in document order (a parent before its
 * children).  Owned by the definition; NULL if `i` is out of range.
 */
CASE_API const char *case_def_state_id(const case_def *d, int i);
/** The number of roles the definition declares (`roles:`). */
CASE_API int case_def_role_count(const case_def *d);
/** Role `i` (0-based, as declared).  Owned by the definition; NULL if out of range. */
CASE_API const char *case_def_role(const case_def *d, int i);

/** The number of validator warnings (e.g. a non-final state with no way out). */
CASE_API int case_def_warning_count(const case_def *d);
/**
 * Warning `i` (0-based) as "file:line:col: text".  Owned by the definition.
 * NULL if `i` is out of range.
 */
CASE_API const char *case_def_warning(const case_def *d, int i);

/**
 * Checks location profile `profile` (loaded on d's engine) against definition
 * `d`: the problems as a JSON array in *json (caller-owned, free with
 * case_free()), each
 *   {"severity":"error"|"warning","file":"loc.lua","line":3,"column":5,
 *    "message":"profile 'budel' sets param 'drempel' to ..."}
 * with the position of the param in the profile's Lua source.  Errors (which
 * loading refuses, see case_engine_load_profile()): a value of another type
 * than the param's default (an integer where a number is declared is fine), a
 * param counting a term that is not a whole number from 0 to 100000000.
 * Warnings: a param that makes a term 0 (it runs out as soon as its state is
 * entered; an `after` that re-enters its state runs out for ever, see
 * CASE_LIMIT_EXPIRIES); a param the definition does not declare that is close
 * to one it declares ("did you mean") or that no loaded definition declares.
 * "[]" when there is nothing to say.  Returns CASE_OK, CASE_NOTFOUND (no such
 * profile loaded), CASE_NOMEM, CASE_MISUSE (a NULL argument).
 */
CASE_API int case_def_check_profile(const case_def *d, const char *profile, char **json);

/**
 * Loads and validates a workflow definition from an SCXML document
 * (W3C SCXML 1.0 with datamodel="lua"; docs/workflow-format.md, "SCXML") into
 * the same definition model as YAML: the engine runs it, stores it and
 * exports it exactly as one loaded with case_def_load_file().  Features SCXML
 * has no words for (roles, legal terms, params, the libcase clock) are read
 * from the libcase namespace "urn:libcase:scxml:1".  Files the document names
 * (<script src>, <data src>, <invoke src>) are read now, relative to the
 * document's directory, and become part of the definition (pinned in a store
 * with it); a child document named by <invoke src> or written inline in
 * <invoke><content> is loaded as a definition of its own at the same time.
 *
 * On success stores the definition in *out (owned by the engine, valid until
 * case_engine_close(); `out` may be NULL) and returns CASE_OK.  Errors as
 * case_def_load_file(): CASE_IO (cannot read the file or a file it names),
 * CASE_INVALID (not well-formed XML, not SCXML, or not a valid chart:
 * case_errmsg() says "file:line:col: what (expected ...)" and case_errpos()
 * gives the position), CASE_SCRIPT (an expression or script that does not
 * compile, in a document with libcase:errors="refuse"), CASE_EXISTS,
 * CASE_LIMIT, CASE_NOMEM, CASE_MISUSE.  An SCXML document's errors are events
 * (error.execution, error.communication) unless it says libcase:errors="refuse".
 */
CASE_API int case_def_load_scxml_file(case_engine *e, const char *path, const case_def **out);

/**
 * As case_def_load_scxml_file(), from `len` bytes of SCXML at `text` (copied).
 * `name` is used as the file name in messages (NULL gives "<string>"); files
 * the document names are resolved against the engine's Lua root.
 */
CASE_API int case_def_load_scxml_string(case_engine *e, const char *text, size_t len,
                                        const char *name, const case_def **out);

/**
 * The definition as an SCXML document (datamodel="lua"), whatever syntax it
 * was loaded from: features SCXML lacks are written in the libcase namespace,
 * so that case_def_load_scxml_string() of the result gives a definition with
 * the same case_def_model_hash().  Lua modules (`lua:`) and files the
 * definition read are referenced by the names it was loaded with.  Stores a
 * caller-owned string in *out (free with case_free()) and returns CASE_OK;
 * CASE_NOMEM or CASE_MISUSE (d or out NULL).
 */
CASE_API int case_def_export_scxml(const case_def *d, char **out);

/**
 * The hash of the definition's model: lowercase hex SHA-256 (64 characters)
 * of a canonical serialization of what was loaded (docs/workflow-format.md,
 * "The model hash"): states, transitions, scripts as text, timers, data,
 * params, roles, settings and the sources of the Lua modules and files the
 * definition read; not the syntax it was written in, its layout, comments or
 * positions.  A definition exported to SCXML and imported again has the same
 * model hash; case_def_hash() (of the source bytes) differs.  Owned by the
 * definition.  NULL gives NULL.
 */
CASE_API const char *case_def_model_hash(const case_def *d);

/* Formats for case_def_graph(). */
#define CASE_GRAPH_DOT     0 /* Graphviz DOT (`dot -Tsvg`) */
#define CASE_GRAPH_MERMAID 1 /* Mermaid stateDiagram-v2 */

/**
 * The definition as a diagram, in `format` (CASE_GRAPH_DOT or
 * CASE_GRAPH_MERMAID).  Compound and parallel states are drawn as clusters
 * (Mermaid: composite states; regions separated by "--"), final states as
 * double circles, history states as "H" / "H*".  Each transition is an edge
 * labelled with its events (or "after <duration>" / "always"), its guard in
 * brackets (cut at 40 characters) and its roles in parentheses; a targetless
 * transition is a loop on its source.  Deadlines are listed in their state.
 *
 * `configuration_json` (may be NULL) is a JSON array of state ids, e.g. what
 * case_instance_configuration() returns: those states are highlighted (DOT:
 * filled and bold; Mermaid: class "active").
 *
 * Stores a caller-owned string in *out (free with case_free()) and returns
 * CASE_OK.  Errors (message on the definition's engine): CASE_INVALID (unknown
 * format, or the configuration is not a JSON array of strings), CASE_NOTFOUND
 * (the configuration names a state the definition does not have: the message
 * names it), CASE_NOMEM, CASE_MISUSE (d or out NULL).  *out is NULL on error.
 */
CASE_API int case_def_graph(const case_def *d, int format, const char *configuration_json,
                            char **out);

/* ------------------------------------------------------------------ */
/* Native guards and actions                                           */
/* ------------------------------------------------------------------ */

/** The context a native guard or action runs in; valid only during the call. */
typedef struct case_call case_call;

/**
 * A native guard.  Stores 1 (true) or 0 (false) in *result and returns CASE_OK,
 * or returns another result code to refuse the event (the message set with
 * case_call_error() is reported).  Must be deterministic: it may read only the
 * call context, never a clock, a file or a random source.
 */
typedef int (*case_guard_fn)(void *ud, case_call *call, int *result);

/**
 * A native action.  Returns CASE_OK, or another code to refuse the whole event
 * (the case is left as it was).  May change data, raise and emit through the call.
 */
typedef int (*case_action_fn)(void *ud, case_call *call);

/**
 * Registers a native guard under `name`, usable in definitions as `guard: name`.
 * Definitions loaded after the call can use it; names are shared with Lua module
 * functions and a native name wins.  `name` is copied; `ud` is passed back
 * untouched and stays the caller's.  Registering a name again replaces it.
 * Returns CASE_OK, CASE_INVALID (not an identifier), CASE_MISUSE or CASE_NOMEM.
 */
CASE_API int case_engine_register_guard(case_engine *e, const char *name,
                                        case_guard_fn fn, void *ud);

/** As case_engine_register_guard(), for an action used as `actions: [name]`. */
CASE_API int case_engine_register_action(case_engine *e, const char *name,
                                         case_action_fn fn, void *ud);

/** The name of the event being processed.  Owned by the call. */
CASE_API const char *case_call_event(const case_call *call);
/** The event's timestamp (seconds since the epoch, UTC): the only clock. */
CASE_API int64_t case_call_time(const case_call *call);
/** The role that fired the external event, or NULL for timers and internal events. */
CASE_API const char *case_call_role(const case_call *call);
/**
 * A case-data field (`field` not NULL) or the whole data object (`field` NULL) as
 * JSON text, as changed so far in this macrostep.  Owned by the call, valid until
 * the callback returns.  NULL if the field is unknown.
 */
CASE_API const char *case_call_get(case_call *call, const char *field);
/**
 * The event payload as JSON text ("null" when there is none).  Owned by the
 * call, valid until the callback returns.
 */
CASE_API const char *case_call_payload(case_call *call);
/**
 * Sets a declared case-data field to `json` (a JSON value).  Actions only.
 * Returns CASE_OK, CASE_NOTFOUND (undeclared field), CASE_INVALID (bad JSON or
 * wrong type for the field), CASE_MISUSE (called from a guard).
 */
CASE_API int case_call_set(case_call *call, const char *field, const char *json);
/**
 * Raises an internal event, processed in this macrostep after the current
 * microstep.  `payload_json` may be NULL.  Actions only.  Returns CASE_OK,
 * CASE_INVALID, CASE_LIMIT (the payload is longer than CASE_LIMIT_PAYLOAD),
 * CASE_MISUSE or CASE_NOMEM.
 */
CASE_API int case_call_raise(case_call *call, const char *event, const char *payload_json);
/**
 * Emits a notification for the host (see case_engine_set_notify()), delivered
 * only if the macrostep completes.  Actions only.  Returns as case_call_raise().
 */
CASE_API int case_call_emit(case_call *call, const char *name, const char *payload_json);
/** Sets the message reported when the callback returns an error code. */
CASE_API void case_call_error(case_call *call, const char *message);

/**
 * Called once per notification that an action emitted, after the macrostep that
 * emitted it completed, in emission order.  `name` and `payload_json` are owned by
 * the library and valid during the call only.  The callback must not call into
 * the engine.
 */
typedef void (*case_notify_fn)(void *ud, const case_instance *c, const char *name,
                               const char *payload_json);

/** Sets (or with NULL clears) the notification callback.  Returns CASE_OK or CASE_MISUSE. */
CASE_API int case_engine_set_notify(case_engine *e, case_notify_fn fn, void *ud);

/**
 * Called once per <log> element (YAML: `log:` action) a committed macrostep
 * ran, in order, after the macrostep: `label` as written ("" when none) and
 * `text`, the value of its expression as text.  Also called with label
 * "libcase" when a message between cases could not be delivered.  Strings are
 * owned by the library, valid during the call only.  The callback must not
 * call into the engine.
 */
typedef void (*case_log_fn)(void *ud, const case_instance *c, const char *label,
                            const char *text);

/** Sets (or with NULL clears) the log callback.  Returns CASE_OK or CASE_MISUSE. */
CASE_API int case_engine_set_log(case_engine *e, case_log_fn fn, void *ud);

/* ------------------------------------------------------------------ */
/* Cases                                                               */
/* ------------------------------------------------------------------ */

/** The longest case id, in bytes (of UTF-8). */
#define CASE_ID_MAX 128

/**
 * Checks that `id` has the form of a case id.  A case id is 1 to CASE_ID_MAX
 * bytes of well-formed UTF-8 (RFC 3629: shortest form, no surrogates) made of
 * printable characters of any script: no control characters (U+0000-U+001F,
 * U+007F-U+009F: tabs and line breaks among them), no white space (the space
 * U+0020, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F,
 * U+3000), no invisible formatting characters (U+00AD, U+061C, U+180E,
 * U+200B-U+200F, U+202A-U+202E, U+2060-U+2064, U+2066-U+206F, U+FEFF,
 * U+FFF9-U+FFFB) and no noncharacters (U+FDD0-U+FDEF, U+xxFFFE, U+xxFFFF).
 * So "Z-2026-0001", "TA/0256" and "zaak-ß-✓" are ids; "Z 1", "Z\t1" and a
 * string cut in the middle of a character are not.  case_instance_create()
 * and case_store_create() (and everything built on them: casectl new and
 * import, the Lua binding, scenarios) refuse other ids with CASE_INVALID.
 *
 * Returns CASE_OK, CASE_INVALID or CASE_MISUSE (NULL id).  When `why` is not
 * NULL, a message saying which byte is wrong and why is written into it
 * (at most `whylen` bytes, always terminated; "" for CASE_OK).  Pure and
 * thread-safe; needs no engine.
 */
CASE_API int case_id_check(const char *id, char *why, size_t whylen);

/**
 * Checks that `text` may go into a journal row as an actor, role, location or
 * idempotency key: well-formed UTF-8 (RFC 3629) that is one line of printable
 * text.  Refused are control characters (U+0000-U+001F, U+007F-U+009F: tabs,
 * line breaks and ESC among them), the line breaks U+0085, U+2028 and U+2029,
 * the invisible formatting characters and noncharacters case_id_check()
 * refuses (bidirectional overrides among them).  Spaces are allowed ("Jan de
 * Vries").  An actor "a\n   9 ... timer" used to print a forged history line
 * in casectl show (a person's row that looked fired by the clock).
 * case_store_create(), case_store_fire() / _v2() and case_store_set_profile()
 * refuse other text with CASE_INVALID, and so casectl new, fire and import
 * (every row checked before anything is written) and the Lua binding.
 *
 * Returns CASE_OK, CASE_INVALID or CASE_MISUSE (NULL text).  When `why` is not
 * NULL, a message naming the byte and the character ("byte 2 is a line break
 * (U+000A)", "byte 2 (0xFF) is not valid UTF-8") is written into it (at most
 * `whylen` bytes, always terminated; "" for CASE_OK).  Pure and thread-safe;
 * needs no engine.
 */
CASE_API int case_text_check(const char *text, char *why, size_t whylen);

/**
 * Creates a case of definition `d` with id `id`, at `location` (the name of a
 * location profile, or NULL for none), with initial data `data_json` (a JSON
 * object whose keys are declared data fields; NULL or "{}" for the defaults),
 * entering the initial configuration at time `at` (its entry actions and
 * eventless transitions run; timers and deadlines start at `at`).
 *
 * On success stores the case in *out (owned by the engine; free it earlier with
 * case_instance_free()) and returns CASE_OK.  Errors: CASE_EXISTS (id in use on
 * this engine), CASE_INVALID (an id that case_id_check() refuses, bad JSON,
 * undeclared field, wrong type), CASE_SCRIPT /
 * CASE_LIMIT (an entry action or guard failed: no case is created; CASE_LIMIT also
 * when the data is larger than CASE_LIMIT_DATA), CASE_NOTFOUND (unknown location
 * profile), CASE_NOMEM, CASE_MISUSE.
 */
CASE_API int case_instance_create(case_engine *e, const case_def *d, const char *id,
                                  const char *location, const char *data_json,
                                  int64_t at, case_instance **out);

/** Frees a case and removes it from its engine.  NULL does nothing. */
CASE_API void case_instance_free(case_instance *c);

/** Finds a case of the engine by id, or NULL. */
CASE_API case_instance *case_instance_find(case_engine *e, const char *id);

/** The case id.  Owned by the case.  NULL gives NULL. */
CASE_API const char *case_instance_id(const case_instance *c);
/** The definition the case runs on.  Owned by the engine.  NULL gives NULL. */
CASE_API const case_def *case_instance_def(const case_instance *c);
/** The case's location, or NULL.  Owned by the case. */
CASE_API const char *case_instance_location(const case_instance *c);
/** 1 if the case reached a top-level final state, else 0 (also for NULL). */
CASE_API int case_instance_done(const case_instance *c);
/**
 * The version of its location profile a stored case is pinned to
 * (case_store_add_profile(), case_store_set_profile()): 1 or more; 0 when it is
 * not pinned (a case created with case_instance_create(), a case without a
 * location, or one stored before schema 8 whose profile was not stored), which
 * then uses the engine's current profile of its location.  0 for NULL.
 */
CASE_API int case_instance_profile_version(const case_instance *c);

/**
 * The number of macrosteps the case has completed (its revision): 0 after
 * creation, +1 per accepted event or timer.  Refused events do not count.
 */
CASE_API int64_t case_instance_revision(const case_instance *c);

/**
 * Fires external event `event` at the case as one macrostep (SCXML run to
 * completion; docs/semantics.md).  `payload_json` is a JSON value or NULL;
 * `actor` identifies who acts (journalled, not interpreted; may be NULL);
 * `role` is one of the definition's roles (NULL fires as the system: role
 * checks are skipped, as for timers — hosts acting for a person should always
 * pass the role); `at` is the event time, the only clock guards and actions see.
 *
 * Events are processed in time order.  An `at` earlier than the case's last
 * accepted event is refused with CASE_INVALID.  Timers and deadlines already
 * due at `at` fire first, each as its own macrostep at its due time (as
 * case_instance_tick(c, at) would), then the event; a failing timer returns its
 * code and the event is not processed.  Transitions that only listen to a
 * timer's event are the clock's: a fire never takes them, whatever the role.
 *
 * The event is accepted when it enables at least one transition for `role`.
 * If it is refused or anything fails, the case is left exactly as it was (data,
 * configuration, history, timers) and no notification is delivered.
 *
 * Returns CASE_OK; CASE_DONE (the case is already final); CASE_NOTHANDLED (no
 * transition for this event in the configuration); CASE_DENIED (there are
 * transitions but `role` may fire none of them; also for a role the definition
 * does not declare); CASE_GUARD (the role may, but every guard is false);
 * CASE_SCRIPT (a guard or action raised an error); CASE_LIMIT (instruction
 * budget, memory cap, time limit, microstep bound or CASE_LIMIT_EXPIRIES
 * exceeded: a timer failing before the event leaves the case as it was too; the
 * payload longer than CASE_LIMIT_PAYLOAD, the data grown past CASE_LIMIT_DATA, or
 * the case's revision at its largest, 2^62); CASE_INVALID (bad payload
 * JSON, an action wrote a wrong type or undeclared field); CASE_NOMEM;
 * CASE_MISUSE.  case_errmsg() gives the reasons; case_instance_explain() lists
 * every blocker.
 */
CASE_API int case_instance_fire(case_instance *c, const char *event, const char *payload_json,
                                const char *actor, const char *role, int64_t at);

/**
 * Fires every timer (delayed transition or deadline) due at or before `now`, in
 * order of due time and then timer id, each as its own macrostep with the due
 * time as its event time.  A timer whose state was left was cancelled and never
 * fires.  Stores the number fired in *fired (may be NULL).
 * Returns CASE_OK, or the first failing macrostep's code (timers before it stay
 * fired; the failing one and later ones stay pending), or CASE_LIMIT when more
 * than CASE_LIMIT_EXPIRIES timers would fire: then none fires, *fired is 0 and
 * the case is left exactly as it was (the message names the case and the timer
 * that keeps running out).
 */
CASE_API int case_instance_tick(case_instance *c, int64_t now, int *fired);

/**
 * Runs every case of the engine up to time `now`: fires their due timers,
 * delayed sends and sends to themselves in order of due time (then case id,
 * then timer id), and delivers the messages between cases (sends to a parent
 * or child case, child cases started by invoke and cancelled on exit), until
 * nothing is due at or before `now`.  Each is its own macrostep at its due
 * time.  Stores the number of macrosteps run in *fired (may be NULL).
 * Returns CASE_OK, or the first failing timer's code (as case_instance_tick);
 * CASE_LIMIT when messages keep making messages (more than 100000 in one
 * call); CASE_NOMEM; CASE_MISUSE.
 */
CASE_API int case_engine_tick(case_engine *e, int64_t now, int *fired);

/**
 * The earliest due time (UTC seconds) of a pending timer, delayed send or
 * deadline of any unfinished case on the engine, in *due.  Returns CASE_OK,
 * CASE_NOTFOUND (nothing pending; *due untouched) or CASE_MISUSE.
 */
CASE_API int case_engine_next_due(case_engine *e, int64_t *due);

/**
 * Fires an HTTP request a host received for the case as an external event:
 * the SCXML Basic HTTP Event I/O Processor (SCXML Appendix C.2).  `request`
 * is the whole request as received ("POST /path HTTP/1.1\r\n", headers, a
 * blank line, the body), `len` bytes.  The event's name is the form field
 * _scxmleventname (in the body or the query), or "HTTP.<METHOD>" without one;
 * _event.data holds the other form fields as strings (or the body as a string
 * when it is no form); _event.raw the request; _event.origintype the BasicHTTP
 * type.  The case's timers due by `at` fire first.  An event no transition
 * takes is dropped (as SCXML drops unhandled external events), not refused.
 * A <send type="...#BasicHTTPEventProcessor"> of a case becomes a
 * notification named "basichttp" whose payload says what to POST where
 * (docs/workflow-format.md, "Sends"); the host carries it.
 * Returns CASE_OK; CASE_INVALID (not an HTTP request, a bad event name, an
 * `at` before the case's last event); CASE_DONE; CASE_SCRIPT / CASE_LIMIT (as
 * case_instance_fire); CASE_NOMEM; CASE_MISUSE.
 */
CASE_API int case_instance_fire_http(case_instance *c, const char *request, size_t len,
                                     int64_t at);

/**
 * Sets the base of the URLs at which the host takes BasicHTTP requests for
 * cases: a case's _ioprocessors.basichttp.location is `base` followed by its
 * id, form-urlencoded.  The default is "urn:libcase:basichttp:".  `base` is
 * copied.  Returns CASE_OK, CASE_MISUSE or CASE_NOMEM.
 */
CASE_API int case_engine_set_http_base(case_engine *e, const char *base);

/**
 * The case that started this one with invoke (its parent), or NULL: a case
 * created by the host, or a parent no longer on the engine.  Owned by the
 * engine.
 */
CASE_API case_instance *case_instance_parent(const case_instance *c);

/**
 * The invokeid the case runs under in its parent (SCXML's invokeid), or NULL
 * for a case created by the host.  Owned by the case.
 */
CASE_API const char *case_instance_invokeid(const case_instance *c);

/**
 * The active states as a JSON array of state ids in document order, e.g.
 * ["procedure","dublin"].  Stores a caller-owned string in *json (free with
 * case_free()).  Returns CASE_OK, CASE_NOMEM or CASE_MISUSE.
 */
CASE_API int case_instance_configuration(const case_instance *c, char **json);

/** 1 if state `state_id` is active, 0 if not or unknown. */
CASE_API int case_instance_in(const case_instance *c, const char *state_id);

/**
 * The case data as a JSON object with every declared field.  Caller-owned
 * string in *json, freed with case_free().  Returns CASE_OK, CASE_NOMEM, CASE_MISUSE.
 */
CASE_API int case_instance_data(const case_instance *c, char **json);

/**
 * What `role` may do now: the events it may fire at time `at` whose transitions
 * have a true guard (guards are evaluated as they stand; actions are not run),
 * as a JSON array in document order:
 *   [{"event":"geregistreerd","source":"identificatie","target":["rust_en_voorbereiding"]}, ...]
 * An event with a wildcard or prefix descriptor is listed as written.  Eventless
 * transitions are not listed, nor are events only the engine raises, which a
 * fire refuses: done.state.*, done.invoke.*, after.* (delayed transitions), and
 * the events of transitions that belong to the clock (a deadline's on_expiry
 * handled without roles).  Caller-owned string in *json.
 * Returns CASE_OK, CASE_SCRIPT / CASE_LIMIT (a guard failed; nothing listed),
 * CASE_NOMEM or CASE_MISUSE.
 */
CASE_API int case_instance_available(case_instance *c, const char *role, int64_t at,
                                     char **json);

/**
 * Why `event` fired by `role` at `at` is or is not possible, as Symfony
 * Workflow's blocker list: a JSON object
 *   {"event":"x","role":"COA","possible":false,"blockers":[
 *      {"code":"not_handled","message":"..."} |
 *      {"code":"role","source":"s","allowed":["IND"],"message":"..."} |
 *      {"code":"guard","source":"s","guard":"case.x > 1","line":12,"column":16,
 *       "message":"..."} |
 *      {"code":"guard_error","source":"s","guard":"...","message":"<Lua error>"} |
 *      {"code":"done","message":"..."} ]}
 * Every transition that matches the event contributes its blocker; "possible"
 * is true with an empty list when the event would be accepted.  Actions are not
 * run and the case is not changed.  Caller-owned string in *json.
 * Returns CASE_OK (whatever the answer), CASE_NOMEM or CASE_MISUSE.
 */
CASE_API int case_instance_explain(case_instance *c, const char *event, const char *role,
                                   int64_t at, char **json);

/**
 * As case_instance_available(), knowing who asks, and about the case as a fire
 * at `at` would find it, so that the list and a fire agree:
 *  - guards see `actor` as event.actor (NULL: nil), as they would in a fire;
 *  - timers and deadlines due by `at` are fired first on a throw-away copy (as
 *    case_instance_fire() does before its event; the case is not changed and
 *    no notification is delivered), so an event a term that ran out disabled
 *    is not offered, and one it enabled is;
 *  - an `at` earlier than the case's last event gives [] (a fire would be
 *    refused), as do a case that is done and a role the workflow does not
 *    declare.
 * Only events a person may fire are listed (no done.state.*, done.invoke.*,
 * after.* or clock-only events).  Caller-owned string in *json.
 * Returns CASE_OK; CASE_SCRIPT / CASE_LIMIT (a guard, or a timer due by `at`,
 * failed: nothing listed; the message says which); CASE_NOMEM; CASE_MISUSE.
 */
CASE_API int case_instance_available_v2(case_instance *c, const char *role, const char *actor,
                                        int64_t at, char **json);

/**
 * As case_instance_explain(), knowing who asks and with what: guards see
 * `actor` as event.actor and `payload_json` (a JSON value, or NULL for none) as
 * event.data, and the case as a fire at `at` would find it (timers due by then
 * fired first on a throw-away copy, as case_instance_available_v2()).  Every
 * blocker is listed; on top of the codes of case_instance_explain():
 *   {"code":"reserved","message":"'done.state.a' cannot be fired: ..."}
 *   {"code":"time","message":"the time ... is earlier than the case's last event ..."}
 *   {"code":"timer","message":"a timer due before x fails, ...: <its error>"}
 * and "role" names the role and the declared roles.  The object also has
 * "actor" when one is given.  Actions are not run, the case is not changed
 * and nothing is written anywhere (a store records no refusal).
 * Caller-owned string in *json.  Returns CASE_OK (whatever the answer),
 * CASE_INVALID (payload_json is not JSON), CASE_NOMEM or CASE_MISUSE.
 */
CASE_API int case_instance_explain_v2(case_instance *c, const char *event, const char *role,
                                      const char *actor, const char *payload_json, int64_t at,
                                      char **json);

/**
 * Pending timers and running deadlines as a JSON array ordered by due time:
 *   [{"id":"t3","kind":"deadline","name":"beslistermijn","state":"aa","due":1790000000,
 *     "last_day":"2026-09-30","clock":"atw","source":"Vw 2000 art. 42 lid 1",
 *     "event":"beslistermijn_verstreken"}, ...]
 * "kind" is "after" (a delayed transition), "deadline" or "send" (a delayed
 * <send>: {"id","kind":"send","name" (its event),"event","started","due",
 * "due_ms"} and "sendid", "to" when it has them); "last_day" (the last
 * Europe/Amsterdam date of the term) only for day-based terms.  Caller-owned
 * string in *json.  Returns CASE_OK, CASE_NOMEM or CASE_MISUSE.
 */
CASE_API int case_instance_timers(const case_instance *c, char **json);

/**
 * A snapshot of the case as JSON (format in docs/semantics.md): definition id,
 * version and hash, case id, location, revision, configuration, history values,
 * data, pending internal events and timers with their ids and absolute due times.
 * No Lua state is included.  Caller-owned string in *json.
 * Returns CASE_OK, CASE_NOMEM or CASE_MISUSE.
 */
CASE_API int case_instance_snapshot(const case_instance *c, char **json);

/**
 * Recreates a case from a snapshot.  Runs no actions and no guards.  The
 * definition is found on the engine by the snapshot's id and version.
 * Errors: CASE_NOTFOUND (definition not loaded, or a state, history state or
 * data field of the snapshot no longer exists: the message names it),
 * CASE_CORRUPT (the definition's hash differs from the snapshot's; or the
 * snapshot is one no run can produce: an illegal configuration, a history value
 * outside its parent, a timer of an inactive state or a duplicated timer id,
 * pending internal events, `done` not matching the configuration, a revision or
 * timer sequence below 0 or at 2^62 or above),
 * CASE_INVALID (not a snapshot),
 * CASE_EXISTS (a case with that id is on the engine), CASE_NOMEM, CASE_MISUSE.
 */
CASE_API int case_instance_restore(case_engine *e, const char *json, case_instance **out);

#ifdef __cplusplus
}
#endif
#endif /* LIBCASE_H */
