/*
 * casectl — the command-line tool over libcase (docs/casectl.md).
 *
 * main.c parses the common options and dispatches to one function per command;
 * the commands live in files by concern (cmd_def.c: definitions and stores,
 * cmd_case.c: one case, cmd_data.c: the journal as a whole: import, follow,
 * verify, list; cmd_test.c: scenarios, coverage, skeletons; cmd_report.c: the report and its renderings).
 * util.c holds what they share: opening the engine and store, exit codes,
 * dates, the progress bar and output helpers.  Everything a store needs (definitions,
 * their Lua modules, location profiles) is kept in the store itself.
 */
#ifndef CASECTL_H
#define CASECTL_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "libcase/libcase.h"
#include "libcase/scenario.h"
#include "libcase/store.h"

/* Exit codes (docs/casectl.md, "Exit codes"). */
#define EX_OK 0        /* done */
#define EX_REFUSED 1   /* an event was refused, or a check failed (validate, verify, test, import) */
#define EX_USAGE 2     /* wrong options or arguments */
#define EX_NOTFOUND 3  /* no such store, case, workflow or file */
#define EX_STORE 4     /* store or I/O error: unreadable, locked, corrupt, out of memory */
#define EX_INVALID 5   /* invalid input: a bad definition, JSON, date or import row */

#define MAX_PROFILES 32

typedef struct ctx {
  const char *prog;        /* "casectl" */
  const char *cmd;         /* the command name */
  const char *store_path;  /* --store, $CASECTL_STORE or ./case.db */
  char *store_shown;       /* store_path as messages show it (a password as ***; owned) */
  char *lua_root;          /* --lua-root: for loading definition files (owned) */
  int nprofiles;
  char *profile_name[MAX_PROFILES]; /* owned */
  char *profile_path[MAX_PROFILES]; /* owned */
  int nholidays;
  char *holiday[MAX_PROFILES];      /* owned: "YYYY-MM-DD" or "YYYY-MM-DD=NAME" */
  int have_at;
  int64_t at;              /* --at, else the wall clock */
  int json;                /* --json */
  int quiet;               /* --quiet */
  int allow_future;        /* --allow-future (new, fire, tick, import) */
  case_engine *e;
  case_store *s;
} ctx;

/* A command: its name, one-line summary, usage text, its own long options
 * (terminated by a zero entry; may be NULL), an option handler and a runner. */
typedef struct command {
  const char *name;
  const char *summary;
  const char *usage; /* "casectl NAME ..." lines and option help */
  const struct option *options;
  int (*option)(ctx *c, int code, const char *arg); /* EX_OK or EX_USAGE */
  int (*run)(ctx *c, int argc, char **argv);
  int needs_store;   /* 0 none, 1 existing, 2 create, 3 read only */
} command;

/* util.c */
int rc_exit(int rc);                      /* CASE_* -> EX_* */
int file_exit(const char *path, int rc);  /* rc_exit, but EX_NOTFOUND when path does not exist */
int fail(ctx *c, int ex, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int fail_engine(ctx *c, int rc, const char *what); /* prints case_errmsg, returns rc_exit */
int usage_error(ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int ctx_engine(ctx *c);                   /* opens the engine with lua root and profiles */
/* Opens the store (1 existing, 2 create, 3 read only) on ctx_engine(); the profiles it
 * holds are loaded unless a --profile of the same name was given, and with modes 1 and 2
 * the --profile files are stored in it (case_store_add_profile). */
int ctx_store(ctx *c, int mode);
/* Refuses (EX_INVALID, message on stderr naming `where`) a time more than the
 * store's future limit after its clock, unless --allow-future was given. */
int check_future(ctx *c, const char *where, int64_t t);
void ctx_close(ctx *c);
int add_profile(ctx *c, const char *spec);
/* --holiday DATE[=NAME]: a day added by Royal Decree (Atw art. 3(3)). */
int add_holiday(ctx *c, const char *spec); /* "NAME=FILE" */
char *abs_path(const char *p);            /* malloc'd */

/* Dates: Europe/Amsterdam. */
int parse_time(const char *s, int64_t *out); /* 0 ok, -1 bad */
void format_local(int64_t t, char *buf, size_t len);   /* "2023-06-15 10:00" */
void format_date(int64_t t, char *buf, size_t len);    /* "2023-06-15" */
int64_t local_to_utc(int y, int m, int d, int hh, int mm, int ss);
void utc_to_local(int64_t t, int *y, int *m, int *d, int *hh, int *mi, int *ss);

/* Progress bar on stderr, shown only on a terminal and after one second. */
typedef struct progress {
  int enabled;
  const char *label;
  double start, last;
  long total;
  int shown;
} progress;
void progress_start(progress *p, const char *label, long total);
void progress_update(progress *p, long done, const char *note);
void progress_end(progress *p);

/* Output. */
void print_json(json_t *v);                /* pretty, to stdout, then "\n"; steals v */
json_t *parse_json_arg(ctx *c, const char *what, const char *text, int *ex);
int parse_workflow(const char *spec, char *id, size_t len, int *version); /* "ID[@V]" */

/* A journal row the feed marked "corrupt" (a column not UTF-8 or not JSON): a
 * warning on stderr naming its seq, case and columns.  Returns 1 for such a row. */
int warn_corrupt_row(ctx *c, json_t *row);
/* Journal helpers (cmd_data.c): the latest event time in the journal (0 for
 * an empty one); EX_OK or the store's failure (printed). */
int latest_event_time(ctx *c, int64_t *t);

/* defs.c: filters checked against the stored definitions (EX_OK or EX_INVALID,
 * with the declared roles or a suggested state on stderr). */
int check_role(ctx *c, const char *role);                    /* any stored workflow */
int check_role_of(ctx *c, const case_def *d, const char *role);
int check_state(ctx *c, const char *state);

/* Commands. */
extern const command cmd_validate, cmd_graph, cmd_init, cmd_load, cmd_new, cmd_fire, cmd_show,
    cmd_list, cmd_events, cmd_explain, cmd_tick, cmd_import, cmd_report, cmd_verify, cmd_follow,
    cmd_test, cmd_token, cmd_serve, cmd_migrate_profile, cmd_copy;
/* cmd_scxml.c */
extern const command cmd_import_scxml, cmd_export_scxml;
/* cmd_proof.c */
extern const command cmd_keygen, cmd_checkpoint, cmd_check_checkpoint, cmd_prove;
/* A whole file's text (malloc'd), or NULL with *err an errno. */
char *read_whole_file(const char *path, int *err);

/* overview.c: renderings of a case_store_report_v2() object. */
typedef struct overview_page {
  int live;            /* served by casectl serve: links to the JSON and CSV, live header */
  int64_t generated;   /* when the page was made (live) */
  int can_signal;      /* the viewer may submit signals: a link to the form */
  const char *who;     /* the signed-in token's name and role, or NULL */
  const char *notice;  /* a message on top (a signal accepted or refused), or NULL */
  int notice_bad;
} overview_page;
/* format "text", "json", "csv" (table "cases", "terms" or "summary") or "html".
 * Returns 0, or -1 on a write error. */
int render_overview(FILE *out, json_t *rep, const char *format, const char *table);
void render_overview_html(FILE *out, json_t *rep, const overview_page *page);
void html_text(FILE *f, const char *s); /* HTML-escaped */
extern const char overview_css[];       /* the pages' style sheet */
/* cmd_report.c: the options object for case_store_report_v2() from filters
 * (location, agency, procesregisseur, track; NULL or "" for none), a sort and a
 * horizon (< 0: default).  A new reference or NULL when out of memory. */
json_t *report_options_json(const char *const filter[4], const char *sort, int horizon);

#endif
