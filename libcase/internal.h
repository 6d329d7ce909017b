/*
 * Internal structures shared by the modules of libcase.  Not installed.
 *
 * Modules (one concern per file, a prefix per module):
 *   engine.c    case_engine_*, errors (eng_*), registries, version, case_free
 *   util.c      sbuf_* growable strings, xstrdup, sha256 hex, json helpers
 *   calendar.c  cal_*  dates, Europe/Amsterdam, holidays, legal terms (clocks)
 *   loader.c    def_*  YAML -> case_def, validation with positions
 *   sandbox.c   sbx_*  the Lua sandbox: modules, profiles, compile, guard/action calls
 *   chart.c     chart_* the SCXML algorithm (macrostep/microstep) on a case
 *   instance.c  case_instance_* API, snapshots, timers, explain/available
 *   coverage.c  cov_*  what process tests reached (case_coverage_*), its report
 *   skeleton.c  case_coverage_skeleton: a shortest event path as a scenario
 */
#ifndef LIBCASE_INTERNAL_H
#define LIBCASE_INTERNAL_H

#include "libcase/libcase.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>

#define CASE_UNUSED(x) ((void)(x))


#if defined(__GNUC__)
#define CASE_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CASE_PRINTF(a, b)
#endif

/* ------------------------------------------------------------------ */
/* util.c                                                              */
/* ------------------------------------------------------------------ */

typedef struct sbuf {
  char *p;
  size_t len, cap;
  int failed;   /* an allocation failed; p holds what fitted */
  int borrowed; /* p is the caller's buffer of cap bytes (a stack array): growing
                   copies it to the heap, sbuf_free leaves it */
} sbuf;

void sbuf_init(sbuf *b);
void sbuf_free(sbuf *b);
void sbuf_add(sbuf *b, const char *s, size_t n);
void sbuf_puts(sbuf *b, const char *s);
void sbuf_printf(sbuf *b, const char *fmt, ...) CASE_PRINTF(2, 3);
/* Hands the buffer (NUL-terminated) to the caller, or NULL if an allocation
 * failed; the sbuf is reset either way. */
char *sbuf_take(sbuf *b);

char *xstrdup(const char *s);           /* NULL on NULL or no memory */
char *xstrndup(const char *s, size_t n);
/* Lowercase hex SHA-256 of n bytes into out[65].  0 on success, -1 on failure. */
int sha256_hex(const void *data, size_t n, char out[65]);
/* 1 if s is a Lua/YAML identifier: [A-Za-z_][A-Za-z0-9_]*, optionally dotted. */
int is_identifier(const char *s, int allow_dots);
/* Levenshtein distance of two strings, for "did you mean" suggestions;
 * (size_t)-1 when either is longer than 64 bytes. */
size_t edit_distance(const char *a, const char *b);
/* NULL when `s` is well-formed UTF-8 (RFC 3629), else a static description;
 * *at (may be NULL) gets the 0-based byte offset of the first bad byte. */
const char *utf8_problem(const char *s, size_t *at);
/* NULL when `s` is fit for a journal text column shown in listings (actor,
 * role, location, idempotency key): well-formed UTF-8 without control
 * characters, line breaks, invisible formatting characters (bidirectional
 * overrides among them) or noncharacters; spaces are allowed.  Else a static
 * description ("not valid UTF-8", "a line break", ...); *at (may be NULL) gets
 * the 0-based byte offset, *cp (may be NULL) the code point (the byte when
 * not UTF-8). */
const char *text_problem(const char *s, size_t *at, uint32_t *cp);

/* The C locale for the calling thread while libcase computes, whatever the host
 * set with setlocale()/uselocale(): in a host running in nl_NL.UTF-8, Lua's
 * tostring(1.5) gave "1,5", string comparison collated ('a' < 'B' true) and
 * strtod("0.5") read 0, so a guard or a definition's param differed from its
 * replay by casectl (C locale).  c_locale_enter() switches the thread to the C
 * locale (uselocale, POSIX 2008) and c_locale_leave() puts the host's back;
 * pairs nest. */
typedef struct c_loc {
  void *c, *old; /* locale_t (a pointer in glibc and musl), kept opaque for
                  * files built without _POSIX_C_SOURCE */
} c_loc;
void c_locale_enter(c_loc *l);
void c_locale_leave(c_loc *l);
/* strtod() in the C locale: '.' is the decimal point. */
double c_strtod(const char *s, char **end);

/* ------------------------------------------------------------------ */
/* calendar.c — dates and legal terms                                  */
/* ------------------------------------------------------------------ */

/* A day is a count of days since 1970-01-01 (a civil date, no time zone). */
typedef int32_t cal_day;
#define CAL_NO_DAY INT32_MIN

typedef enum cs_clock {
  CLOCK_PLAIN = 0,  /* every day counts, no shift: terms the Atw excludes (art. 4),
                       detention terms, hours */
  CLOCK_ATW = 1,    /* Dutch statutory terms: Algemene termijnenwet art. 1-4 */
  CLOCK_EU = 2,     /* EU regulation terms (Dublin): every day counts, no Atw */
  CLOCK_PROCEDURE = 3 /* AA procedure days: weekends and Atw holidays not counted */
} cs_clock;

typedef enum cs_unit {
  UNIT_SECONDS, UNIT_MINUTES, UNIT_HOURS, UNIT_DAYS, UNIT_WORKING_DAYS,
  UNIT_WEEKS, UNIT_MONTHS, UNIT_YEARS
} cs_unit;

typedef struct cal_calendar cal_calendar;

int cal_open(cal_calendar **out);          /* with the built-in Atw days; CASE_OK/CASE_NOMEM */
void cal_close(cal_calendar *cal);
int cal_add_holiday(cal_calendar *cal, cal_day day, const char *name); /* CASE_OK/CASE_NOMEM */
/* The same, for what is computed at or after time `from` (UTC seconds) only:
 * a holiday stored in a store counts from when it was stored (holidays.added),
 * so replaying a row recorded before it (cal_set_asof) computes what the live
 * run computed.  The same day again keeps the earliest `from`. */
int cal_add_holiday_from(cal_calendar *cal, cal_day day, const char *name, int64_t from);
/* Added days whose `from` is after `t` stop counting; INT64_MAX (the default)
 * makes all count.  Replays set it to each row's `recorded` and reset it. */
void cal_set_asof(cal_calendar *cal, int64_t t);
/* 1 if `day` is an Atw holiday (art. 3 or added); *name (may be NULL) gets its name. */
int cal_is_holiday(const cal_calendar *cal, cal_day day, const char **name);
/* 1 if `day` is a Saturday, Sunday or holiday. */
int cal_is_rest_day(const cal_calendar *cal, cal_day day);

/* "YYYY-MM-DD" <-> day.  cal_parse_date returns 0 on success, -1 if invalid. */
int cal_parse_date(const char *s, cal_day *out);
void cal_format_date(cal_day day, char out[11]);
cal_day cal_from_ymd(int y, int m, int d);
void cal_to_ymd(cal_day day, int *y, int *m, int *d);
int cal_weekday(cal_day day); /* 0 = Monday ... 6 = Sunday */

/* Europe/Amsterdam: the local date of a UTC instant, and the UTC instant of
 * local midnight (00:00) starting a date.  CET/CEST per the EU rule. */
cal_day cal_local_day(int64_t utc);
int64_t cal_local_midnight(cal_day day);

/*
 * A legal term.  `trigger` is the UTC instant of the triggering act.  Terms in
 * seconds/minutes/hours: *due = trigger + amount, *last_day = CAL_NO_DAY.
 * Day-based terms: day 1 is the day after the trigger's local date (or the
 * trigger's own date when `same_day`), *last_day is the last day of the term
 * after the clock's rules, *due is local midnight after it (when the term has
 * run out).  Returns CASE_OK or CASE_INVALID (amount < 0, unit not possible on
 * the clock, e.g. months on the procedure clock).
 */
int cal_term(const cal_calendar *cal, cs_clock clock, int64_t trigger, long amount,
             cs_unit unit, int same_day, int64_t *due, cal_day *last_day);

/*
 * Parses a duration "<number> <unit>" (or, when `param` is not NULL,
 * "${name} <unit>", storing a malloc'd copy of name in *param and 0 in
 * *amount).  Units: second(s), minute(s), hour(s), day(s), working day(s),
 * week(s), month(s), year(s).  Returns 0; -1 bad text; -2 number above
 * CAL_DURATION_MAX; -3 out of memory.
 */
#define CAL_DURATION_MAX 100000000L
int cal_duration_parse(const char *s, long *amount, char **param, cs_unit *unit);

const char *cal_clock_name(cs_clock c);              /* "plain", "atw", "eu", "procedure" */
int cal_clock_parse(const char *s, cs_clock *out);   /* 0 ok, -1 unknown */
const char *cal_unit_name(cs_unit u);

/* ------------------------------------------------------------------ */
/* The definition model (built by loader.c, immutable afterwards)      */
/* ------------------------------------------------------------------ */

typedef struct cs_pos {
  int line, col; /* 1-based; 0 when unknown */
} cs_pos;

typedef enum cs_kind {
  CS_ATOMIC, CS_COMPOUND, CS_PARALLEL, CS_FINAL, CS_HISTORY_SHALLOW, CS_HISTORY_DEEP
} cs_kind;

typedef enum cs_script_kind {
  SCRIPT_EXPR,   /* guard: a Lua expression, compiled as `return (<expr>)` */
  SCRIPT_BLOCK,  /* action: Lua statements */
  SCRIPT_NAMED,  /* a function of a `lua:` module (or a profile's override) */
  SCRIPT_NATIVE, /* a C guard/action registered on the engine */
  /* Executable content of the SCXML recommendation (section 4), written as
   * elements in SCXML and as one-key maps in YAML; script->exec holds the
   * parts, script->text is NULL. */
  EXEC_RAISE,    /* <raise event>: an internal event */
  EXEC_SEND,     /* <send>: an event to the case itself, a parent/child case or the host */
  EXEC_CANCEL,   /* <cancel sendid|sendidexpr>: drops a delayed send not yet delivered */
  EXEC_LOG,      /* <log label expr>: a line for the engine's log callback */
  EXEC_ASSIGN,   /* <assign location expr>: a data location gets a value */
  EXEC_IF,       /* <if>/<elseif>/<else> */
  EXEC_FOREACH,  /* <foreach array item index> */
  EXEC_BLOCK     /* a block of its own: one of several <onentry>/<onexit>; an error
                    stops it, not the content after it */
} cs_script_kind;

typedef struct cs_exec cs_exec;

typedef struct cs_script {
  cs_script_kind kind;
  char *text;    /* the source as written (expression, block or name); NULL for EXEC_* */
  cs_pos pos;    /* where the text (or the element) starts in the definition */
  int ref;       /* SCRIPT_EXPR/BLOCK: Lua registry ref of the compiled chunk;
                    SCRIPT_NATIVE: index in the engine's native table; else -1 */
  cs_pos *lines; /* where line k+1 of `text` (as Lua counts lines) starts in the
                    YAML, through the scalar's folding and escapes; NULL: count
                    lines from `pos` */
  int nlines;
  cs_exec *exec; /* EXEC_*: the element's parts; else NULL */
  char *error;   /* a compile error kept for run time (definitions with errors:
                    events): evaluating the script raises error.execution */
  char *src;     /* SCRIPT_BLOCK read from a file (<script src>): the name as written */
} cs_script;

/* scalarmap.c: the YAML position of line `lua_line` (1-based, as Lua numbers
 * the lines of s->text) of a script; past the last line (the closing ")" an
 * expression is wrapped in) gives the last line. */
cs_pos script_line_pos(const cs_script *s, int lua_line);

typedef struct cs_duration {
  long amount;    /* used when param is NULL */
  char *param;    /* "${name}": the amount comes from this param at run time */
  cs_unit unit;
  cs_clock clock;
  int same_day;   /* day 1 is the trigger's own date */
  cs_pos pos;
} cs_duration;

/* A name with a value: <param name expr|location>, a namelist entry (the
 * name is the location), a donedata param. */
typedef struct cs_namevalue {
  char *name;
  cs_script *expr;   /* SCRIPT_EXPR giving the value */
  int location;      /* 0 <param expr>, 1 <param location>, 2 a namelist entry */
} cs_namevalue;

/* The parts of one executable content element; what a kind does not use stays
 * NULL / 0.  Text attributes are kept as written; an attribute and its
 * ...expr form exclude each other (the loaders refuse both). */
struct cs_exec {
  char *event;            /* raise, send */
  cs_script *eventexpr;   /* send */
  char *target;           /* send: "#_internal", "#_parent", "#_<invokeid>",
                             "#_scxml_<case id>", "#_host", or NULL (the case itself) */
  cs_script *targetexpr;
  char *type;             /* send: the I/O processor (NULL: SCXML) */
  cs_script *typeexpr;
  char *id;               /* send: sendid; cancel: sendid */
  cs_script *idexpr;      /* cancel: sendidexpr */
  char *idlocation;       /* send: location that gets the generated sendid */
  cs_script *idassign;    /* compiled "<idlocation> = ..." */
  char *delay;            /* send: as written ("5s", "500ms", "2 days") */
  int64_t delay_ms;       /* the parsed delay (day-based delays: see dur) */
  cs_duration *dur;       /* send: a delay on the legal calendar ("6 weeks"), or NULL */
  cs_script *delayexpr;
  cs_namevalue *names;    /* send: namelist then params, in document order */
  int nnames;
  cs_script *content;     /* send/assign/donedata: <content expr=...> or inline value */
  char *content_text;     /* inline <content> text as written (exported back) */
  json_t *content_value;  /* its value when it is JSON (or, if content does not
                             compile as Lua, the text as a string) */
  int content_xml;        /* the inline content was markup, kept as a string */
  char *label;            /* log */
  cs_script *expr;        /* log, assign (the value expression) */
  char *location;         /* assign; foreach item */
  cs_script *assign;      /* assign: compiled "<location> = (<expr>)"; foreach: "<item> = ..." */
  char *index;            /* foreach */
  cs_script *index_assign;/* foreach: "<index> = ..." */
  cs_script *array;       /* foreach */
  cs_script **conds;      /* if: the conditions of if, elseif...; NULL entry for else */
  cs_script **blocks;     /* if: one block per branch; foreach: blocks[0] */
  int *nblock;
  int nbranches;
};

/* TIMER_SEND: the one timer of a definition whose actions send with a delay
 * or to the case itself (def->send_timer); its instances carry the message
 * (cs_timer_inst.send) and belong to the root, so leaving a state cancels
 * none of them (SCXML: only <cancel> does). */
typedef enum cs_timer_kind { TIMER_AFTER, TIMER_DEADLINE, TIMER_SEND } cs_timer_kind;

/* One <invoke> of a state (YAML: `invoke:`): a child case started when the
 * state is entered (at the end of the macrostep) and cancelled when it is
 * left. */
typedef struct cs_invoke {
  int state;
  char *id;              /* invokeid as written, or NULL (generated: "<state>.<n>") */
  char *idlocation;      /* location that gets the generated id */
  cs_script *idassign;   /* compiled "<idlocation> = ..." */
  char *type;            /* as written; NULL: SCXML */
  cs_script *typeexpr;
  char *src;             /* as written ("file:x.scxml"); read at load */
  cs_script *srcexpr;    /* evaluated when the child starts: names a definition
                            loaded on the engine (its file, or its workflow id) */
  cs_script *contentexpr;/* <content expr>: evaluated when the child starts, an SCXML
                            document as text, loaded then as a definition */
  char *workflow;        /* the child definition's id (src, content or YAML workflow:) */
  int version;           /* its version; 0: the version in force when the child starts */
  cs_namevalue *names;   /* namelist then params: the child's initial data */
  int nnames;
  int autoforward;
  cs_script *finalize;   /* run in the parent on events from the child */
  int nfinalize;
  int inline_content;    /* the child was written inline (<content><scxml>) */
  cs_pos pos;
} cs_invoke;

/* A delayed transition (`after:`) or a named legal term (`deadlines:`).  Both
 * start when `state` is entered and are cancelled when it is left. */
typedef struct cs_timer {
  cs_timer_kind kind;
  char *name;    /* deadline name; for `after`, "after.<state>.<n>" */
  int state;
  cs_duration dur;
  char *event;   /* event fired at expiry: for `after` the same as name (its
                    transition listens to it); for a deadline `on_expiry` or NULL */
  char *source;  /* legal source, NULL if none */
  char *description;
  cs_pos pos;
  cs_pos event_pos; /* deadlines: where on_expiry's value is (0 when none) */
} cs_timer;

typedef struct cs_transition {
  int index;        /* position in def->transitions == document order */
  int source;       /* state index */
  char **events;    /* event descriptors ("a", "a.b", "*"); NULL when eventless */
  int nevents;
  cs_script *guard; /* NULL: always enabled */
  cs_script *actions;
  int nactions;
  int *targets;     /* state indices; ntargets 0 = targetless */
  int ntargets;
  int internal;     /* type: internal */
  int *roles;       /* role indices; nroles 0 = any role */
  int nroles;
  int timer;        /* index in def->timers for an `after` transition, else -1 */
  char *description;
  cs_pos pos;
  json_t *editor;   /* an SCXML editor's attributes and elements (as cs_state.editor) */
  int system;       /* set by chart_prepare(): no `roles` and every event is a
                       timer's event (1) or one the definition raises itself (2,
                       or 1 when both), so only the engine (not roles) may take it */
} cs_transition;

typedef struct cs_state {
  char *id;         /* unique in the definition; the root's id is "" */
  int index;        /* document order; 0 is the synthetic root */
  int parent;       /* -1 for the root */
  int depth;        /* root 0, top-level states 1 */
  cs_kind kind;
  int *children;    /* document order, history pseudo-states included */
  int nchildren;
  int *initial;     /* compound: targets of the initial transition (default:
                       the first non-history child); history: the default targets */
  int ninitial;
  cs_script *initial_actions; /* history `default:` transition actions (rare) */
  int ninitial_actions;
  int *transitions; /* indices in def->transitions, document order */
  int ntransitions;
  cs_script *onentry;
  int nonentry;
  cs_script *onexit;
  int nonexit;
  int *timers;      /* indices in def->timers started on entry */
  int ntimers;
  int *invokes;     /* indices in def->invokes, document order */
  int ninvokes;
  cs_exec *donedata;/* final states: <donedata> (names and/or content), or NULL */
  int initial_elem; /* compound: the initial was an <initial> element (exported back) */
  json_t *editor;   /* what an SCXML editor keeps on it (another namespace's attributes
                       and elements), written back on export; not in the model hash */
  int eventless;    /* chart_prepare(): eventless transitions of the state itself (1 bit)
                       and of it or an ancestor (2): selection skips the others */
  int extras;       /* entering it needs more than entry content and timers: late
                       binding, invokes, <initial> content (chart.c's slow path) */
  char *description;
  cs_pos pos;
} cs_state;

typedef enum cs_type {
  TYPE_ANY, TYPE_STRING, TYPE_INTEGER, TYPE_NUMBER, TYPE_BOOLEAN, TYPE_DATE,
  TYPE_LIST, TYPE_MAP
} cs_type;

typedef struct cs_field {
  char *name;
  cs_type type;
  json_t *def;      /* default value; json null when none given */
  char *description;
  cs_pos pos;
  int state;        /* the state whose <datamodel> declares it (0: the top) */
  cs_script *expr;  /* initial value computed when the data is bound, or NULL */
  char *src;        /* <data src>: the resource as written (its value is in def) */
  char *content;    /* inline <data> content as written (its value is in def or expr) */
} cs_field;

typedef struct cs_param {
  char *name;
  json_t *value;    /* default: a JSON string, integer, real or boolean */
  char *source;     /* legal source or NULL */
  int unverified;   /* marked unverified in the domain notes */
  char *description;
  cs_pos pos;
} cs_param;

#define DEF_FORMAT_YAML 0
#define DEF_FORMAT_SCXML 1

struct case_def {
  case_engine *engine;
  char *id;
  int version;
  char hash[65];
  char *file;        /* file name as given, or the string name */
  char *dir;         /* directory of the file, or NULL */
  char *source;      /* the YAML text */
  size_t source_len;
  char *description;
  cs_clock clock;    /* default clock for terms (top-level `clock:`), plain if absent */
  cal_day in_force_from;      /* `in_force_from:`, CAL_NO_DAY when absent */
  char in_force_from_text[11];/* the same as "YYYY-MM-DD", "" when absent */

  cs_state *states;  /* [0] is the root; nstates >= 2 */
  int nstates;
  cs_transition *transitions;
  int ntransitions;
  cs_timer *timers;
  int ntimers;
  cs_field *fields;
  int nfields;
  cs_param *params;
  int nparams;
  char **roles;
  int nroles;
  char **modules;    /* resolved paths of the `lua:` modules */
  int nmodules;
  char **module_names; /* the `lua:` entries as written (the key a store pins them by) */
  char **module_src;   /* the modules' source text as loaded: part of the pinned definition */
  size_t *module_len;
  int functions_ref; /* Lua registry ref of the table of module functions, -1 if none */
  int fields_ref;    /* Lua registry ref of the table field name -> slot (0-based),
                        made when the modules load (the sandbox's case view), -1 if none */
  char **raised;     /* event names the definition's actions and modules pass literally
                        to raise() (found in their compiled code by the sandbox) */
  int nraised;

  json_t *report_src; /* the `report:` section as written (JSON), for an SCXML export */
  json_t *editor;    /* the document's editor data: {"ns": {prefix: uri}, "attrs": ..., "xml": ...} */
  json_t *report;    /* the `report:` section, validated, as canonical JSON (loader.c's
                        parse_report; read by report.c), NULL when absent */

  char **warnings;   /* "file:line:col: text" */
  int nwarnings;

  /* SCXML semantics (issue 13).  Zero for a definition that uses none of them. */
  int format;        /* DEF_FORMAT_YAML or DEF_FORMAT_SCXML: the source's syntax */
  char *name;        /* <scxml name>: the value of _name (NULL: the workflow id) */
  int errors_events; /* `errors: events`: errors become error.execution /
                        error.communication events instead of refusing the event */
  int globals;       /* the datamodel's variables are Lua globals (SCXML's Lua
                        datamodel); assigning an undeclared global creates one */
  int late_binding;  /* data of a state is bound when it is first entered */
  cs_script *scripts;/* top-level <script>: run once when a case is created */
  int nscripts;
  cs_invoke *invokes;
  int ninvokes;
  int send_timer;    /* index in timers of the TIMER_SEND timer, or -1 */
  int exec_content;  /* actions hold executable content elements, scripts kept
                        with compile errors, or errors are events: chart.c runs
                        blocks the SCXML way (else the plain loop) */
  /* Files read at load (<script src>, <data src>, <invoke src>): pinned with
   * the definition like its Lua modules (def_modules_json). */
  char **res_names;  /* as written */
  char **res_src;
  size_t *res_len;
  int nres;
  struct case_def **subdefs; /* definitions read with this one (<invoke src>, inline
                                <content><scxml>): registered on the engine with it */
  int nsubdefs;
  int subdefs_owned; /* 1 until the engine registered them (engine.c add_def) */
  char model_hash[65]; /* hash of the model, independent of the syntax (model.c) */

  /* Derived by chart_prepare() once the loader succeeded (not the loader's job). */
  int words;         /* uint64 words in a bitset over the states */
  int nhistory;      /* number of history pseudo-states */
  int *history_slot; /* per state: its slot in cs_status.history, or -1 */
  uint64_t *desc;    /* per state a bitset (words words) of its proper descendants */
  uint64_t *leaves;  /* bitset of the atomic and final states */

  struct case_def *next; /* engine's list */
};

/* Helpers on the model (chart.c). */
int def_state_find(const case_def *d, const char *id);    /* index or -1 */
int def_field_find(const case_def *d, const char *name);  /* index or -1 */
int def_param_find(const case_def *d, const char *name);  /* index or -1 */
int def_role_find(const case_def *d, const char *name);   /* index or -1 */
/* 1 if `a` is a proper descendant of `b`. */
int def_is_descendant(const case_def *d, int a, int b);
/* Does event name `name` match descriptor `desc` (SCXML prefix match, "*")?
 * A delayed transition's "after.<state>.<n>" matches only itself. */
int event_matches(const char *desc, const char *name);
/* NULL if `name` may be fired or raised by a host or an action; else why not
 * (syntax, or a name reserved for the engine: after.*, done.*). */
const char *event_name_problem(const char *name);
/* Checks a JSON value against a field type; 1 ok, 0 not. null is always ok. */
int type_accepts(cs_type t, const json_t *v);
const char *type_name(cs_type t);

/* ------------------------------------------------------------------ */
/* scalarmap.c — where each byte of a YAML scalar's value comes from     */
/* ------------------------------------------------------------------ */

enum { SMAP_PLAIN, SMAP_SINGLE, SMAP_DOUBLE, SMAP_LITERAL, SMAP_FOLDED };

/*
 * Rebuilds the value of the scalar of style `style` (SMAP_*) between libyaml's
 * start mark (line0, col0) and end mark (end_line0, end_col0) (0-based, columns
 * in characters) of `text`, and stores in *out a malloc'd array of vlen + 1
 * positions: [i] is where value byte i comes from (1-based line and column),
 * [vlen] the end.  The rebuilt value must equal `value` (libyaml's): returns
 * CASE_OK, CASE_INVALID (it does not: no map) or CASE_NOMEM.
 */
int smap_build(const char *text, size_t len, int style, int line0, int col0, int end_line0,
               int end_col0, const char *value, size_t vlen, cs_pos **out);
/*
 * The start of every line of `value` as Lua counts lines (\n, \r, \r\n): a
 * malloc'd array in *out of *nout entries, from `map` (smap_build's) or, when
 * map is NULL, counted from `first` one source line per value line.
 * Returns CASE_OK or CASE_NOMEM.
 */
int smap_line_starts(const char *value, size_t vlen, const cs_pos *map, cs_pos first,
                     cs_pos **out, int *nout);

/* ------------------------------------------------------------------ */
/* luascan.c — what a guard or action refers to, from its Lua source    */
/* ------------------------------------------------------------------ */

typedef enum lscan_kind { LSCAN_CASE, LSCAN_PARAMS, LSCAN_EVENT, LSCAN_GLOBAL } lscan_kind;

typedef struct lscan_ref {
  lscan_kind kind;  /* case.NAME, params.NAME, event.NAME, or a global NAME read */
  size_t off, len;  /* the NAME in the text (for case["x"]: the string's content) */
  int write;        /* case.NAME = ... (an assignment to it) */
  int indexed;      /* globals: NAME.x, NAME[x] or NAME:x follows */
} lscan_ref;

/*
 * Scans Lua source `text` (len bytes) with Lua 5.4's lexical rules (names,
 * keywords, numbers, short strings with escapes, long brackets, comments) and
 * lists what it refers to: `case.NAME`, `case["NAME"]`, `params.NAME`,
 * `event.NAME` (not after `.` or `:`, and not when the script declares a local,
 * parameter or loop variable of that name), and reads of global names that the
 * script does not declare as locals.  Stores a malloc'd array in *out (*nout
 * entries).  Returns CASE_OK, CASE_INVALID (the text does not lex: an
 * unfinished string or comment; the compiler reports those) or CASE_NOMEM.
 */
int lscan_refs(const char *text, size_t len, lscan_ref **out, int *nout);
/*
 * What the function `fname` of a lua: module refers to, by the same lexical
 * scan: its definition in module source `text` (`function M.fname(...)`,
 * `M.fname = function(...)`, `fname = function(...)` or `["fname"] =
 * function(...)` in the returned table; not a local helper) is called as
 * fn(case, event, params), so in its body `P1.NAME`/`P1["NAME"]` is
 * LSCAN_CASE, `P2.NAME` LSCAN_EVENT and `P3.NAME` LSCAN_PARAMS, where P1..P3
 * are its parameters, whatever their names.  Calls to other functions of the
 * module that pass one of them on (`helper(case)`, `M.other(case, event,
 * params)`) are followed, the callee's parameter at that place taking the
 * role.  A parameter the body declares again or assigns is left alone there
 * (the scan can miss a reference, never invent one); methods (`M:f`) and
 * varargs are not followed.  Offsets are in `text`.  *found is 1 when the
 * definition was found.  Returns CASE_OK, CASE_INVALID (the text does not
 * lex) or CASE_NOMEM; *out is malloc'd (*nout entries).
 */
int lscan_function_refs(const char *text, size_t len, const char *fname, lscan_ref **out,
                        int *nout, int *found);
/* The same over one lexed module, for many names: lscan_module_open() lexes
 * `text` (which must outlive the handle) once; CASE_OK, CASE_INVALID or
 * CASE_NOMEM.  lscan_module_refs() is lscan_function_refs() on it;
 * lscan_module_close() frees it (NULL is fine). */
typedef struct lscan_module lscan_module;
int lscan_module_open(const char *text, size_t len, lscan_module **out);
int lscan_module_refs(lscan_module *m, const char *fname, lscan_ref **out, int *nout,
                      int *found);
void lscan_module_close(lscan_module *m);
/* Where `key` is set in the table constructor assigned to `table` in Lua
 * source `text` (`params = { drempel = 16 }`): 1 and the key's byte offset in
 * *off; falls back to any `key =`, then to `table`; 0 when none is found. */
int lscan_table_key(const char *text, size_t len, const char *table, const char *key,
                    size_t *off);

/* ------------------------------------------------------------------ */
/* loader.c                                                            */
/* ------------------------------------------------------------------ */

/*
 * Parses and validates YAML text into a new definition.  `file` names the text
 * in messages; `dir` is the directory for relative `lua:` paths (NULL: the
 * engine's Lua root).  Compiles every guard and action through the sandbox
 * and loads the modules.  On failure sets the engine error (with position) and
 * returns its code; *out is NULL and nothing is left behind.
 */
int def_parse(case_engine *e, const char *text, size_t len, const char *file,
              const char *dir, case_def **out);
/*
 * As def_parse, with the `lua:` modules' source given (`modules`: a JSON object,
 * the `lua:` entry as written -> its text) instead of read from files: the
 * store reloads a definition with exactly the module code it was pinned with.
 * An entry missing from `modules` is resolved and read as usual.
 */
int def_parse_pinned(case_engine *e, const char *text, size_t len, const char *file,
                     const char *dir, const json_t *modules, case_def **out);
/* Frees a definition and releases its Lua references. */
void def_free(case_def *d);

/* scxml.c: as def_parse_pinned, for an SCXML document. */
int scxml_parse(case_engine *e, const char *text, size_t len, const char *file, const char *dir,
                const json_t *pinned, case_def **out);

/* The node tree both syntaxes are read into (loader.c builds it from YAML,
 * scxml.c from SCXML) before the one builder and its checks make the model.
 * Strings are copied; a node added to another belongs to it. */
typedef struct node def_node;
def_node *def_node_map(cs_pos pos);
def_node *def_node_seq(cs_pos pos);
/* A string scalar (quoted: never typed by its content). */
def_node *def_node_str(const char *s, size_t len, cs_pos pos);
/* A plain scalar, typed as YAML would (numbers, booleans). */
def_node *def_node_plain(const char *s, cs_pos pos);
/* Marks a scalar as Lua as written: never read as a function name. */
void def_node_script(def_node *n);
/* Appends to a sequence (key NULL) or a map; takes val (and is NULL-safe:
 * a NULL val fails).  0 on success, -1 out of memory (val is freed). */
int def_node_add(def_node *parent, const char *key, cs_pos keypos, def_node *val);
/* The value of key in a map, or NULL. */
def_node *def_node_get(def_node *map, const char *key);
void def_node_free(def_node *n);
/* Builds, checks and compiles a definition from a tree (taken: freed here).
 * `text` is the source (kept and hashed), `format` DEF_FORMAT_*.  As
 * def_parse_pinned otherwise. */
int def_parse_tree(case_engine *e, def_node *doc, const char *text, size_t len, int format,
                   const char *file, const char *dir, const json_t *pinned, case_def **out);

/* model.c: the model hash (case_def_model_hash) of a freshly built definition. */
int model_finish(case_engine *e, case_def *d);

/* ------------------------------------------------------------------ */
/* Evaluation context shared by chart.c, sandbox.c and natives         */
/* ------------------------------------------------------------------ */

typedef struct cs_pending {  /* a raised internal event or an emitted notification */
  char *name;
  json_t *payload;           /* owned; json null when none */
  json_t *meta;              /* owned or NULL: the _event fields besides name and data
                                ({"type":..,"sendid":..,"origin":..,"invokeid":..}) */
} cs_pending;

typedef struct cs_plist {
  cs_pending *v;
  int n, cap;
} cs_plist;

int plist_push(cs_plist *l, const char *name, json_t *payload_stolen); /* CASE_OK/CASE_NOMEM */
/* As plist_push, with the event's other _event fields (stolen, may be NULL). */
int plist_push_meta(cs_plist *l, const char *name, json_t *payload_stolen, json_t *meta_stolen);
void plist_clear(cs_plist *l);

typedef struct cs_profile cs_profile;

/* What a guard or action sees.  Built by chart.c for each call. */
struct case_call {
  case_engine *engine;
  const case_def *def;
  case_instance *inst;
  const cs_profile *profile; /* the case's location profile or NULL */
  struct cs_data *data;      /* the working data of this macrostep (owned when an
                                action runs), or NULL */
  const char *event;         /* event name being processed; "" on entry of the initial config */
  json_t *payload;           /* borrowed; never NULL (json null) */
  const char *actor;         /* may be NULL */
  const char *role;          /* may be NULL (timers, internal events) */
  int64_t time;
  int is_guard;              /* guards may not change data, raise or emit */
  cs_plist *raised;          /* internal events raised (appended) */
  cs_plist *emitted;         /* notifications (appended) */
  const cs_script *script;   /* the guard/action being run, for messages */
  char *errmsg;              /* set by case_call_error or the sandbox; freed by the caller */
  char **scratch;            /* strings handed out by case_call_get/payload: all live
                                until the callback returns (freed by the caller) */
  int nscratch;
  struct cs_status *status;  /* the working status of the macrostep (timers, for
                                extend_deadline/set_deadline); NULL outside one */
  int64_t *data_delta;       /* what data_set() adds to the data's JSON length is
                                summed here (the macrostep's), or NULL */
  const char *evtype;        /* _event.type: "external", "internal", "platform";
                                NULL before the first event (_event unbound) */
  const json_t *meta;        /* _event.sendid/origin/origintype/invokeid, or NULL */
};

/* ------------------------------------------------------------------ */
/* sandbox.c                                                           */
/* ------------------------------------------------------------------ */

typedef struct sbx sbx;

struct cs_profile {
  char *name;
  char *path;
  json_t *params;    /* object: name -> value */
  int functions_ref; /* Lua registry ref of the profile's function table, -1 if none */
  char *source;      /* the profile's Lua text (a store pins it) */
  size_t source_len;
  char hash[65];     /* hex SHA-256 of source ("" without one): set by the engine */
  cs_profile *next;
};

int sbx_open(case_engine *e, sbx **out);     /* CASE_OK / CASE_NOMEM */
void sbx_close(sbx *s);

/*
 * Loads the definition's `lua:` modules (def->modules, already resolved to
 * paths) into one table of functions, stored as def->functions_ref.  Each module
 * is a Lua file run in the sandbox that returns a table of functions.  A name
 * defined by two modules is an error.  On failure sets the engine error
 * (CASE_IO / CASE_SCRIPT, "path:line: message") and returns its code.
 */
int sbx_load_modules(sbx *s, case_def *d);

/*
 * Compiles one guard (as an expression) or action (as a block) in text mode
 * and stores a registry ref in script->ref; for SCRIPT_NAMED checks that the
 * name exists among def's module functions.  On a compile error sets the engine
 * error at the script's position in `d->file` ("file:line:col: guard does not
 * compile: <Lua message>") and returns CASE_SCRIPT.
 */
int sbx_compile(sbx *s, case_def *d, cs_script *script, int is_guard);

/* 1 if a guard or action of `d` that reads the global `name` finds something:
 * a name of the sandbox's environment (Lua's base functions it keeps, string,
 * math, case, params, raise, today, ...) or a function of d's `lua:` modules.
 * Location profile functions are not known here.  0 otherwise (also when out
 * of memory). */
int sbx_global_known(sbx *s, const case_def *d, const char *name);

/* Releases a registry ref (ignores -1). */
void sbx_unref(sbx *s, int ref);
/* The bytes the engine's Lua heap holds after a full collection (tests). */
size_t sbx_heap_bytes(sbx *s);

/* Charges `cost` instructions to the budget of the running call (or load) for
 * work done inside C that the count hook does not see; raises a Lua error when
 * the budget or the time limit is exhausted.  Does nothing outside calls. */
struct lua_State;
void sbx_charge(struct lua_State *L, double cost);
/* sandbox_lib.c: replaces the functions of the string, table and utf8 tables
 * (and tonumber) of the global table at G with charged ones, and table.sort
 * with a stable merge sort. */
void sbx_lib_install(struct lua_State *L, int G);

/* ------------------------------------------------------------------ */
/* luacode.c: what a dumped Lua 5.4 function can do                    */
/* ------------------------------------------------------------------ */

typedef struct lc_report {
  int nupvalues;   /* upvalues of the dumped function */
  int *assigned;   /* per upvalue: a line of code (in it or a function nested in it) that
                      assigns it, -1 when the line is unknown, 0 when nothing does */
  char **names;    /* per upvalue: its name, or NULL */
  char **raised;   /* event names passed literally to the global raise() */
  int nraised;
} lc_report;

/* Reads the output of lua_dump(L, ..., strip 0).  Returns 0 and fills *out (free
 * it with lc_report_free), or -1 when the bytes are not a Lua 5.4 dump of this
 * machine's format (or on no memory); *out is then empty. */
int lc_analyse(const void *buf, size_t len, lc_report *out);
void lc_report_free(lc_report *r);

/*
 * Runs a guard: stores its truth in *result.  Runs an action: may change
 * call->data (only declared fields, type-checked), and append to call->raised /
 * call->emitted.  Both apply the engine's instruction and memory limits.
 * On failure returns CASE_SCRIPT (Lua error), CASE_LIMIT (budget or memory) or
 * CASE_INVALID (bad data write), with a malloc'd message in call->errmsg that
 * names the YAML position of the script; call->data is then unspecified (the
 * caller discards its working copy).
 */
int sbx_guard(sbx *s, case_call *call, const cs_script *g, int *result);
int sbx_action(sbx *s, case_call *call, const cs_script *a);
/* Evaluates expression `x` (SCRIPT_EXPR) as an action would (it may read and
 * write data) and stores its value as JSON in *out (nil: json null).  Errors
 * as sbx_action; a value JSON cannot hold is CASE_INVALID. */
int sbx_eval(sbx *s, case_call *call, const cs_script *x, json_t **out);
/* Runs block `b` (SCRIPT_BLOCK) as an action, with the JSON values args[0..n)
 * (NULL entries are nil) as the chunk's `...`. */
int sbx_exec(sbx *s, case_call *call, const cs_script *b, json_t *const *args, int nargs);

/* Loads a profile file; on success returns a new cs_profile (caller links it). */
int sbx_load_profile(sbx *s, const char *name, const char *path, cs_profile **out);
/* The same from text; `path` only names it in messages. */
int sbx_load_profile_text(sbx *s, const char *name, const char *path, const char *text,
                          size_t len, cs_profile **out);
void sbx_profile_free(sbx *s, cs_profile *p);

/* ------------------------------------------------------------------ */
/* profcheck.c — a location profile checked against a definition        */
/* ------------------------------------------------------------------ */

/*
 * Appends to `out` (a JSON array) the problems of profile `p` applied to
 * definition `d`, each {"severity":"error"|"warning","file":...,"line":..,
 * "column":..,"message":"..."} with the position in the profile's source:
 * errors for a param value whose type differs from the declared param's (its
 * default's JSON type; an integer is a number), and for a param used in a
 * duration that is not a whole number from 0 to CAL_DURATION_MAX; warnings for
 * a param that makes a term zero, and for a param `d` does not declare when it
 * is close to one `d` declares or no loaded definition declares it.  Returns
 * CASE_OK or CASE_NOMEM.
 */
int pchk_run(const cs_profile *p, const case_def *d, json_t *out);
/* The first error of pchk_run() as the engine error (file:line:col: message),
 * returning CASE_INVALID; CASE_OK when there is none; CASE_NOMEM. */
int pchk_enforce(case_engine *e, const cs_profile *p, const case_def *d);

/* ------------------------------------------------------------------ */
/* engine.c                                                            */
/* ------------------------------------------------------------------ */

typedef struct cs_native {
  char *name;
  int is_action;
  case_guard_fn guard;
  case_action_fn action;
  void *ud;
} cs_native;

/* One more than the highest CASE_LIMIT_* identifier. */
#define CASE_NLIMITS (CASE_LIMIT_DATA + 1)

struct case_engine {
  int errcode;
  char *errmsg;          /* never NULL after open ("" when none) */
  char *errfile;         /* position of the last error, or NULL */
  int errline, errcol;

  long long limits[CASE_NLIMITS]; /* CASE_LIMIT_* */
  char *lua_root;

  case_def *defs;        /* linked list, newest first */
  case_instance *cases;  /* doubly linked list, newest first */
  case_instance **buckets; /* hash index of cases by id (NULL: scan the list) */
  size_t nbuckets, ncases;
  cs_native *natives;
  int nnatives, cap_natives;
  cs_profile *profiles;
  cs_profile *kept_profiles; /* replaced or adopted profiles that pinned cases may
                                use: freed only when the engine closes */

  sbx *sandbox;
  cal_calendar *calendar;

  case_notify_fn notify;
  void *notify_ud;

  cal_calendar *own_calendar; /* a replay engine (eng_replay_open): its own calendar,
                                 put back before closing; NULL otherwise */
  struct cs_probe *probe; /* its coverage (case_engine_set_coverage) or, during
                             case_coverage_skeleton, the search; NULL when off */

  /* Where definitions not loaded yet come from: the open stores (lazy loading,
   * eng_def_source_add).  `sourcing` stops a source's own lookups from asking
   * the sources again. */
  struct cs_def_source *def_sources;
  int ndef_sources;
  int sourcing;
  case_log_fn log;
  void *log_ud;

  /* Messages between cases (sends to a parent or child, invokes, cancels),
   * made by committed macrosteps and not yet delivered: a JSON array of
   * {"kind":"event"|"invoke"|"cancel","from":id,"to":id,...}, oldest first.
   * NULL when empty.  invoke.c delivers them (eng_deliver). */
  json_t *mail;
  int manual_mail;       /* the store delivers mail itself, one case per transaction */
  char *http_base;       /* case_engine_set_http_base(), NULL: the default (http.c) */
};

/* A source of definitions the engine has not loaded: need(ud, id, version)
 * loads definition `id` `version` (version 0: every version of `id`; id NULL:
 * every definition) onto the engine if the source holds it.  Returns CASE_OK
 * (also when it holds none) or an error code with the message on the engine. */
typedef int (*cs_def_need_fn)(void *ud, const char *id, int version);
struct cs_def_source {
  cs_def_need_fn need;
  void *ud;
};
/* Adds / removes (by ud) a source.  CASE_OK or CASE_NOMEM. */
int eng_def_source_add(case_engine *e, cs_def_need_fn fn, void *ud);
void eng_def_source_remove(case_engine *e, void *ud);
/* Asks every source for definition `id` `version` (as cs_def_need_fn).  The
 * first failure's code, or CASE_OK. */
int eng_def_need(case_engine *e, const char *id, int version);
/* The loaded definition `id` `version` (exact), without asking the sources. */
const case_def *eng_def_loaded(const case_engine *e, const char *id, int version);

/* Sets the engine's error and returns rc.  The message is formatted. */
int eng_err(case_engine *e, int rc, const char *fmt, ...) CASE_PRINTF(3, 4);
/* As eng_err, with a position: the message becomes "file:line:col: <text>". */
int eng_err_at(case_engine *e, int rc, const char *file, cs_pos pos, const char *fmt, ...)
    CASE_PRINTF(5, 6);
/* Clears the error (CASE_OK, ""). Returns CASE_OK. */
int eng_ok(case_engine *e);
/* Native lookup: index in e->natives or -1. */
int eng_native_find(const case_engine *e, const char *name, int is_action);
const cs_profile *eng_profile_find(const case_engine *e, const char *name);
/* The profile case `c` runs with: its pinned one, else the current one of its
 * location, else NULL. */
const cs_profile *eng_case_profile(const case_instance *c);
/* A profile object of `name` whose text has hex SHA-256 `hash` (the current one
 * or one kept alive for pinned cases), or NULL. */
const cs_profile *eng_profile_by_hash(const case_engine *e, const char *name, const char *hash);
/* Loads a version of profile `name` from its text for pinned cases, without
 * making it the current one of that name (reuses an object with the same
 * text).  The object lives until the engine closes.  CASE_OK or the error. */
int eng_profile_adopt_text(case_engine *e, const char *name, const char *path, const char *text,
                           size_t len, const cs_profile **out);
/* case_instance_create() with a pinned profile (NULL: none, as that function). */
int eng_instance_create(case_engine *e, const case_def *d, const char *id, const char *location,
                        const cs_profile *profile, const char *data_json, int64_t at,
                        case_instance **out);
/* case_instance_restore() with a pinned profile (NULL: none). */
int eng_instance_restore(case_engine *e, const char *json, const cs_profile *profile,
                         case_instance **out);
/* A stored case in the columns the store keeps it in (schema 10): the case
 * row's identity and the latest journal row's revision, done, configuration,
 * data and state (the snapshot without those; eng_instance_state()).  Strings
 * are borrowed. */
typedef struct eng_parts {
  const char *workflow, *hash, *id, *location;
  int version;
  int64_t revision;
  int done;
  const char *configuration, *data, *state;
} eng_parts;
/* eng_instance_restore() from the parts.  CASE_OK, or the error (CASE_INVALID
 * for a text that is not JSON, and every error of case_instance_restore()). */
int eng_instance_restore_parts(case_engine *e, const eng_parts *p, const cs_profile *profile,
                               case_instance **out);
/* The snapshot of `c` without format, workflow, version, hash, case,
 * location, revision, done, configuration and data: compact JSON in *json
 * (malloc'd; the caller frees it).  CASE_OK or CASE_NOMEM. */
int eng_instance_state(const case_instance *c, char **json);
/* Loads a profile from text (as case_engine_load_profile does from a file). */
int eng_profile_load_text(case_engine *e, const char *name, const char *path, const char *text,
                          size_t len);
/* As case_def_load_string, with the `lua:` modules' sources given (see
 * def_parse_pinned; `modules` may be NULL). */
int eng_def_load_pinned(case_engine *e, const char *text, size_t len, const char *name,
                        const json_t *modules, const case_def **out);
/* A second engine for replaying journals (verify, the report at a date): the
 * same limits, natives and location profiles as `e`, sharing e's calendar (so
 * holidays added by decree count).  Close it with eng_replay_close() before `e`.
 * Returns CASE_OK or the failing code with the message on `e`. */
int eng_replay_open(case_engine *e, case_engine **out);
/* case_engine_add_holiday() for what is computed at or after `from` only
 * (cal_add_holiday_from): a store's holidays count from when they were stored. */
int eng_add_holiday_from(case_engine *e, const char *date, const char *name, int64_t from);
void eng_replay_close(case_engine *r);
/* Definition `host` (loaded on another engine) on replay engine `r`, with the
 * same YAML and the same pinned module code; loaded on first use.  NULL when it
 * does not load (the message is on `r`). */
const case_def *eng_replay_def(case_engine *r, const case_def *host);
/* Registers a freshly parsed definition (and first the definitions read with
 * it) on the engine, as case_def_load_file() does; takes d. */
int eng_add_def(case_engine *e, case_def *d, const case_def **out);
/* The definition's module sources as a JSON object (`lua:` entry as written ->
 * source), a new reference; NULL when out of memory. */
json_t *def_modules_json(const case_def *d);

/* ------------------------------------------------------------------ */
/* instance.c / chart.c                                                */
/* ------------------------------------------------------------------ */

typedef struct cs_timer_inst {   /* a running timer or deadline of a case */
  char *id;          /* stable: "t<seq>" */
  int64_t seq;       /* the number in the id; orders timers due at the same time */
  int timer;         /* index in def->timers */
  int64_t started;   /* UTC */
  int64_t due;       /* UTC */
  cal_day last_day;  /* CAL_NO_DAY for non-day terms */
  int fired;         /* a deadline whose expiry event was fired (stays listed, overdue) */
  int64_t due_ms;    /* due in milliseconds: orders sends due in the same second
                        (due is its ceiling in seconds); due * 1000 for other timers */
  json_t *send;      /* TIMER_SEND: the message {"event","data","sendid","to",...};
                        immutable, shared between status copies; else NULL */
} cs_timer_inst;

/* data.c: a case's data by slot (issue 14).  Values are never changed in
 * place (a write replaces a slot's value), so they are shared between blocks
 * and with the definition's defaults; a block is shared between the committed
 * status and a macrostep's working copy until the first write (data_own). */
typedef struct cs_data {
  int refs;          /* statuses holding this block */
  int n;             /* slots: def->nfields */
  json_t *extra;     /* variables no field declares (globals datamodel): an object,
                        or NULL */
  int *order;        /* the JSON object's key order when it is not the fields in
                        declaration order then `extra`'s (kept from a snapshot):
                        per key its slot, or -1 for the next key of extra; NULL */
  int norder;
  json_t *v[];       /* per declared field its value; never NULL (json null: none) */
} cs_data;

/* A block of d's fields, all null (refs 1); NULL when out of memory. */
cs_data *data_new(const case_def *d);
/* Another holder of x (x returned); data_release() lets go, freeing the last. */
cs_data *data_share(cs_data *x);
void data_release(cs_data *x);
/* Makes *p a block of its own (copying the slots, sharing the values) unless it
 * is already.  0, or -1 out of memory (*p unchanged). */
int data_own(cs_data **p);
/* The value of field or variable `name` (borrowed), NULL when there is none. */
json_t *data_get(const cs_data *x, const case_def *d, const char *name);
/* Slot `slot` (or field/variable `key`) gets v (stolen), adding what that
 * changes in the length of the data's compact JSON to *delta (when not NULL).
 * Every write to a macrostep's working data goes through these, so
 * CASE_LIMIT_DATA is checked at the cost of what changed.  x must be owned
 * (data_own).  A key no field declares becomes a variable in `extra`.  0, or -1
 * (no memory; v is freed). */
int data_set_slot(cs_data *x, int slot, json_t *v, int64_t *delta);
int data_set(cs_data *x, const case_def *d, const char *key, json_t *v, int64_t *delta);
/* The data as a JSON object (a new reference; values shared), in its order;
 * NULL when out of memory. */
json_t *data_json(const cs_data *x, const case_def *d);
/* Bytes of data_json()'s compact JSON text, counted without making it. */
int64_t data_json_size(const cs_data *x, const case_def *d);
/* A block from a JSON object (a snapshot's data): declared keys by slot, others
 * as variables, fields the object lacks get their defaults (after its keys);
 * an order other than the plain one is kept.  No type checks.  0, or -1. */
int data_from_object(const case_def *d, const json_t *obj, cs_data **out);

/* The state of a case that a macrostep changes: copied for rollback. */
typedef struct cs_status {
  uint64_t *config;    /* bitset over def->nstates */
  uint64_t *history;   /* def->nhistory bitsets of def->words words; all zero = no value yet */
  cs_data *data;       /* by slot; shared with copies until a write (data_own) */
  cs_timer_inst *timers;
  int ntimers, cap_timers;
  int64_t timer_seq;   /* next timer id number */
  int64_t last_time;   /* time of the latest accepted event (UTC); events are in time order */
  int64_t revision;
  int done;
  int cancelled;       /* a child case its parent cancelled (done is 1 too) */
  struct cs_sx *sx;    /* SCXML's part, for definitions with invokes or late
                          binding; NULL for the others (nothing to copy) */
  int64_t data_size;   /* bytes of `data` as compact JSON; 0 while not yet measured */
} cs_status;

typedef struct cs_sx {
  json_t *invokes;     /* running child cases: [{"id":invokeid,"case":id,"invoke":k,
                          "state":s}], immutable (replaced on change); NULL: none */
  uint64_t *bound;     /* late binding: states whose data is bound; else NULL */
} cs_sx;

struct case_instance {
  case_engine *engine;
  const case_def *def;
  char *id;
  char *location;
  /* The location profile the case runs with when pinned (a stored case: the
   * version it was created or migrated to; owned by the engine, alive until it
   * closes); NULL: the engine's current profile of that name (eng_case_profile). */
  const cs_profile *profile;
  int profile_version; /* the store's version number of it; 0: not pinned */
  int profile_first;   /* the version the case was created with; 0: not pinned */
  cs_status st;
  char *parent;                /* the invoking case's id, or NULL */
  char *invokeid;              /* the invokeid this case runs under in its parent */
  const json_t *given;         /* during creation only: the host's initial data */
  case_instance *next, *prev; /* engine's list */
  case_instance *hnext;        /* engine's hash bucket chain */
  /* The case cache of the store that restored or created this case (NULL: a
   * case the host made, never evicted): its LRU list, most recent first. */
  struct case_store *cached_by;
  case_instance *lru_prev, *lru_next;
};

/* chart.c: derived data for a freshly parsed definition (history slots, bitset
 * size).  Called by the engine before a definition is registered. */
int chart_prepare(case_engine *e, case_def *d);
void chart_unprepare(case_def *d);

/* Copies / frees a case status (for rollback).  chart_status_copy returns
 * CASE_OK or CASE_NOMEM (dst then holds nothing to free). */
int chart_status_init(const case_def *d, cs_status *st);
int chart_status_copy(const case_def *d, cs_status *dst, const cs_status *src);
void chart_status_free(cs_status *st);

/* Runs one macrostep on c->st.  `event` NULL enters the initial configuration.
 * `role`/`actor` NULL for system events (timers).  `is_timer` makes an event
 * that enables no transition a no-op instead of a refusal.  On success replaces
 * c->st with the new status, delivers notifications and returns CASE_OK; on
 * failure leaves c->st untouched and sets the engine error. */
int chart_macrostep(case_instance *c, const char *event, json_t *payload, const char *actor,
                    const char *role, int64_t at, int is_timer);
/* As chart_macrostep, with the event's other _event fields (`meta`: type,
 * sendid, origin, origintype, invokeid; NULL for a host's event).  Messages
 * to other cases the macrostep made are appended to the engine's mail. */
int chart_macrostep_ex(case_instance *c, const char *event, json_t *payload, const json_t *meta,
                       const char *actor, const char *role, int64_t at, int is_timer);
/* A send delay: CSS2 ("5s", ".5s", "200ms") or a bare number of ms.  0 and
 * *ms; -1 not a time; -2 a unit CSS2 does not have (maybe a duration). */
int chart_parse_delay(const char *s, int64_t *ms);

/* http.c: the Basic HTTP Event I/O Processor.  The case's access URI (malloc'd). */
char *http_location(const case_engine *e, const char *case_id);
/* Appends s form-urlencoded. */
void http_encode(sbuf *b, const char *s, size_t n);
/* The "basichttp" notification's payload for a send (a new reference, NULL
 * when out of memory): `fields` an object (namelist, params), or `content`. */
json_t *http_request(const char *target, const char *event, const json_t *fields,
                     const json_t *content, const char *sendid);

/* invoke.c: delivers the engine's mail (events between cases, child cases
 * started and cancelled), including what the deliveries make, in order.
 * Failures of single deliveries go to the log callback; returns CASE_OK,
 * CASE_LIMIT (a loop of messages) or CASE_NOMEM. */
int eng_deliver(case_engine *e);
/* Delivers the first message of the mail only; *target gets the case it
 * changed (NULL: none, the message was dropped).  For the store, which
 * journals each delivery.  CASE_NOTFOUND when the mail is empty. */
int eng_deliver_one(case_engine *e, case_instance **target, char **event, json_t **payload,
                    char **actor);
/* invoke.c: cancels child case c (SCXML 6.4): runs the exit content of its
 * active states (chart_exit_cancelled), then stops it where it is (done,
 * cancelled, timers dropped) and mails its own children's cancels.  CASE_OK
 * or CASE_NOMEM (a failing exit content is logged, not returned). */
int chart_cancel_case(case_engine *e, case_instance *c, int64_t at);
/* chart.c: the exit content of cancelled case c's active states, innermost
 * first, committed to c (data, logs, notifications, mail); on a failure
 * nothing of it is kept and the log callback says why.  CASE_OK or
 * CASE_NOMEM. */
int chart_exit_cancelled(case_instance *c, int64_t at);
/* invoke.c: replays a delivery a store journalled (actor "#_scxml_<sender>"):
 * "cancel.invoke" cancels the case, any other event is fired with the data and
 * _event fields of its payload ({"data":..., "event":{...}}).  Returns the
 * macrostep's code, or CASE_CORRUPT for a payload that is not such an object. */
int chart_replay_delivery(case_instance *c, const char *event, const char *payload_json,
                          const char *actor, int64_t at);

/* What the _v2 questions add to the old ones (NULL: case_instance_explain /
 * _available as they were). */
typedef struct cs_ask {
  const char *actor;     /* event.actor for the guards; may be NULL */
  json_t *payload;       /* event.data for the guards; borrowed; NULL: none */
  int due_timers;        /* ask about the case as a fire at `at` finds it: the timers
                            due by then fired first, on a copy */
} cs_ask;

/* Builds the blocker list for case_instance_explain(_v2) / the refusal message. */
int chart_explain(case_instance *c, const char *event, const char *role, const cs_ask *ask,
                  int64_t at, json_t **out);
/* Builds the list for case_instance_available(_v2). */
int chart_available(case_instance *c, const char *role, const cs_ask *ask, int64_t at,
                    json_t **out);
/* instance.c: *shadow becomes `c` on a copy of its status, with the timers due
 * by `at` fired on it as case_instance_fire() would (notifications suppressed;
 * CASE_LIMIT_EXPIRIES applies).  Returns CASE_OK (free shadow->st with
 * chart_status_free), or the failing timer's code with the engine error set
 * (nothing to free). */
int chart_shadow_at(case_instance *c, int64_t at, case_instance *shadow);
/* The Europe/Amsterdam-date based value of a param as an integer (profile first). */
int chart_param_long(const case_instance *c, const char *name, long *out);

/* instance.c: "after", "deadline" or "send". */
const char *chart_timer_kind(const cs_timer *tm);
/* instance.c: a running timer's name: the deadline's, "after.<state>.<n>", or
 * for a send the event it carries (a store's timer rows hold it). */
const char *chart_timer_name(const case_def *d, const cs_timer_inst *ti);
/* instance.c: creates and links a case (initial macrostep included) without
 * delivering its mail; `given` (may be NULL) is its initial data, `parent` and
 * `invokeid` (NULL for a host's case) its place under an invoking case.
 * Errors as case_instance_create(). */
int chart_case_create(case_engine *e, const case_def *d, const char *id, const char *location,
                      const json_t *given, const char *parent, const char *invokeid, int64_t at,
                      case_instance **out);
/* The same with the case pinned to a profile (NULL: its location's current one). */
int chart_case_create_pinned(case_engine *e, const case_def *d, const char *id,
                             const char *location, const cs_profile *profile,
                             const json_t *given, const char *parent, const char *invokeid,
                             int64_t at, case_instance **out);
/* instance.c: the index in c->st.timers of the unfired timer due first at or
 * before `now` (due time, then sequence), or -1 (also for a done case). */
int chart_timer_next(const case_instance *c, int64_t now);
/* instance.c: fires only the first due timer (case_instance_tick loops over
 * it; the store fires one timer per transaction).  *fired gets 1 or 0.
 * Returns CASE_OK or the failing macrostep's code (the timer stays pending). */
int chart_tick_one(case_instance *c, int64_t now, int *fired);
/* instance.c: how many timers of `c` would run out by `now` (up to cap + 1),
 * counted on a throw-away copy of its status with notifications suppressed;
 * the case is not changed.  A failing macrostep stops the count.  Returns
 * CASE_OK or CASE_NOMEM.  The store uses it to keep a case whose timers keep
 * running out (CASE_LIMIT_EXPIRIES) from committing anything in a tick. */
int chart_expiries(case_instance *c, int64_t now, long long cap, long long *count);
/* chart.c: changes running deadline `name` of the call's case from an action.
 * `duration` is "<number> <unit>".  from_start 0 extends: the new last day is
 * the term counted from the current last day (or due time for hour terms);
 * 1 recounts the term from the deadline's start.  Same clock as the deadline.
 * Returns CASE_OK, CASE_NOTFOUND (no such running deadline), CASE_INVALID
 * (bad duration or unit not possible on the clock), CASE_MISUSE (not in an
 * action), with a message in msg. */
int chart_deadline_change(case_call *call, const char *name, const char *duration,
                          int from_start, char *msg, size_t msglen);

/* store.c: the engine a store was opened on (NULL for NULL). */
struct case_store;
case_engine *store_engine(const struct case_store *s);
/* store.c: case `c` (c->cached_by set) is being freed: it leaves its store's
 * case cache.  Called by case_instance_free(). */
void store_cache_drop(case_instance *c);

/* ------------------------------------------------------------------ */
/* coverage.c — probes on the statechart algorithm                     */
/* ------------------------------------------------------------------ */

/*
 * While e->probe is NULL (the default) nothing below is called: each site in
 * chart.c and instance.c tests that one pointer.  A macrostep records what it
 * did in a trace of its own; the trace reaches the probe only when the
 * macrostep commits (or is refused: then only its guard results count), so a
 * rolled-back macrostep leaves no mark.
 */
enum {
  TR_GUARD_TRUE = 0, /* index: transition */
  TR_GUARD_FALSE = 1,
  TR_TAKEN = 2,      /* transition */
  TR_ENTERED = 3,    /* state */
  TR_MET = 4         /* timer: its state was left before it ran out */
};

typedef struct cs_trace {
  int *v;           /* (index << 3) | kind */
  int n, cap;
  int failed;       /* an entry could not be stored (out of memory) */
} cs_trace;

void trace_add(cs_trace *t, int kind, int index);

typedef struct cs_probe {
  /* 1: the skeleton search (skeleton.c): guards give `force`, actions do not
   * run (only their literal raise('x') calls are followed), nothing is counted. */
  int abstract;
  const unsigned char *force; /* abstract: per transition, 1 = its guard holds */
  cs_trace last;              /* abstract: the trace of the last committed macrostep */
} cs_probe; /* collecting: the first member of a case_coverage (coverage.c) */

/* A macrostep of case c committed (refused 0) or was refused (1).  event NULL:
 * the case was created. */
void probe_commit(cs_probe *p, const case_instance *c, const char *event, cs_trace *t,
                  int refused);
/* Timer `timer` (index in def->timers) of case c ran out (tick). */
void probe_expired(cs_probe *p, const case_instance *c, int timer);
/* Abstract mode: the actions `v` "run": each literal raise('name') is queued. */
int probe_actions(cs_probe *p, const cs_script *v, int n, cs_plist *queue);
/* scenario.c: a step time as a scenario writes it: "YYYY-MM-DD" for 10:00
 * Europe/Amsterdam, else "YYYY-MM-DD HH:MM" (local). */
void scenario_format_time(int64_t t, char out[24]);
/* A file name as reports write it: "./" and "dir/.." removed.  Caller frees; NULL
 * when out of memory. */
char *cov_tidy_path(const char *path);
/* A definition was loaded on an engine that collects: it is reported even when
 * no case runs on it. */
void probe_def_added(cs_probe *p, const case_def *d);
/* The engine lets go of its probe (engine close, or another coverage set). */
void probe_release(cs_probe *p);

/* util.c: bytes of a JSON value as compact JSON text, as json_dumps(v,
 * JSON_COMPACT | JSON_ENCODE_ANY) writes it, counted without writing it; NULL
 * counts as null. */
int64_t json_size(const json_t *v);
/* util.c: bytes of string p (n bytes) as a JSON string, quotes included, as
 * jansson writes it without JSON_ENSURE_ASCII. */
int64_t json_str_size(const char *p, size_t n);
/* Snapshot values no run reaches (2^62): a revision or timer sequence at or
 * above it is refused by restore, so counting on from it cannot overflow. */
#define CASE_COUNTER_MAX ((int64_t)1 << 62)

#endif /* LIBCASE_INTERNAL_H */
