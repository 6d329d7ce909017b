/*
 * casectl main: the command table, the options every command takes, --help.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "casectl.h"

static const command *const commands[] = {
    &cmd_validate, &cmd_graph, &cmd_init,   &cmd_load,   &cmd_new,    &cmd_fire,
    &cmd_show,     &cmd_list,  &cmd_events, &cmd_explain, &cmd_tick,   &cmd_import, &cmd_report,
    &cmd_verify,   &cmd_follow, &cmd_test,   &cmd_checkpoint, &cmd_check_checkpoint,
    &cmd_prove,    &cmd_keygen,   &cmd_token,  &cmd_serve,
    &cmd_import_scxml, &cmd_export_scxml, &cmd_migrate_profile, &cmd_copy,
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

/* Codes of the common options; a command's own options use codes from 256. */
enum { OPT_STORE = 1, OPT_LUA_ROOT, OPT_PROFILE, OPT_AT, OPT_JSON, OPT_QUIET, OPT_HELP,
       OPT_HOLIDAY };

static const struct option common_options[] = {
    {"store", required_argument, NULL, OPT_STORE},
    {"lua-root", required_argument, NULL, OPT_LUA_ROOT},
    {"profile", required_argument, NULL, OPT_PROFILE},
    {"holiday", required_argument, NULL, OPT_HOLIDAY},
    {"at", required_argument, NULL, OPT_AT},
    {"json", no_argument, NULL, OPT_JSON},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"help", no_argument, NULL, OPT_HELP},
};
#define NCOMMON (sizeof common_options / sizeof common_options[0])

static const char common_help[] =
    "Options every command takes:\n"
    "  --store FILE|URI    the store (default: $CASECTL_STORE, else ./case.db): an\n"
    "                      SQLite file, or PostgreSQL: postgresql://USER@HOST/DB\n"
    "                      [?schema=NAME] or conninfo (docs/store.md, PostgreSQL)\n"
    "  --lua-root DIR      where definition files' relative lua: modules are found\n"
    "                      (for load, validate, graph and test; a store needs none)\n"
    "  --profile NAME=FILE a location profile (repeatable): commands that write\n"
    "                      (init, load, new, fire, tick, import) store it as a new\n"
    "                      version for new cases; stored cases keep the version\n"
    "                      they run on (migrate-profile moves one)\n"
    "  --holiday DATE[=NAME] a day added by Royal Decree (Atw art. 3(3);\n"
    "                      repeatable): stored like --profile by commands that write\n"
    "  --at WHEN           the time to act at: YYYY-MM-DD (10:00 Europe/Amsterdam),\n"
    "                      YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM] or @SECONDS (default now)\n"
    "  --json              machine-readable output on stdout\n"
    "  --quiet             no progress bar, no chatter\n"
    "  -h, --help          this help\n";

/*
 * Help is laid out for an 80-column terminal: no line is wider than
 * HELP_WIDTH.  Texts are written by hand to fit, but a longer command name or
 * option should not break the layout, so a line that does not fit is cut at
 * its last space that fits and the rest goes to the next line, at the
 * line's hanging indent (an option's description column, a usage line's
 * continuation, a paragraph's indent); when that next line is a continuation
 * of the same paragraph the rest flows into it, else it gets a line of its
 * own.  A word longer than the room is left whole.
 */
#define HELP_WIDTH 79

static size_t lead(const char *l, size_t n) {
  size_t i = 0;
  while (i < n && l[i] == ' ') i++;
  return i;
}

/* Where the continuation of line l (n bytes) starts; next the line after it. */
static size_t hang_of(const char *l, size_t n, const char *next, size_t nn) {
  size_t in = lead(l, n), nin = next ? lead(next, nn) : 0;
  if (next && nin > in && nin < nn && next[nin] != '-') return nin;
  if (n > 7 && strncmp(l, "usage: ", 7) == 0) { /* after "usage: casectl CMD " */
    size_t i = 7;
    for (int words = 0; i < n && words < 2; words++) {
      while (i < n && l[i] != ' ') i++;
      while (i < n && l[i] == ' ') i++;
    }
    return i < n ? i : 7;
  }
  if (in < n && l[in] == '-') /* "  --opt ARG   description" */
    for (size_t i = in; i + 1 < n; i++)
      if (l[i] == ' ' && l[i + 1] == ' ') {
        while (i < n && l[i] == ' ') i++;
        return i < n ? i : in;
      }
  return in;
}

/* Prints text (lines ending in '\n') laid out to HELP_WIDTH, as above; with
 * hang > 0 every line is an entry of its own (nothing flows into the next)
 * whose continuation starts at column hang. */
static void help_print(FILE *f, const char *text, size_t hang_all) {
  size_t cap = strlen(text) + 2 * HELP_WIDTH + 2;
  char *cur = malloc(cap), *next = malloc(cap);
  if (!cur || !next) { /* no memory for the layout: the text as written */
    fputs(text, f);
    free(cur);
    free(next);
    return;
  }
  const char *p = text;
  while (*p) {
    const char *e = strchr(p, '\n');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    const char *q = e ? e + 1 : p + n;
    const char *qe = *q ? strchr(q, '\n') : NULL;
    size_t qn = *q ? (qe ? (size_t)(qe - q) : strlen(q)) : 0;
    size_t hang = hang_all ? hang_all : hang_of(p, n, *q ? q : NULL, qn), len = n;
    memcpy(cur, p, n);
    p = q;
    while (len > HELP_WIDTH) {
      size_t cut = HELP_WIDTH;
      /* a usage line breaks between its [options], not inside one */
      if (hang < len && (strncmp(cur, "usage: ", 7) == 0 || cur[lead(cur, len)] == '['))
        while (cut > hang && !(cur[cut] == ' ' && cur[cut + 1] == '[')) cut--;
      if (cut <= hang) cut = HELP_WIDTH;
      while (cut > hang && cur[cut] != ' ') cut--;
      if (cut <= hang) break; /* one word wider than the room */
      size_t end = cut;
      while (end > 0 && cur[end - 1] == ' ') end--;
      fprintf(f, "%.*s\n", (int)end, cur);
      size_t rest = cut;
      while (rest < len && cur[rest] == ' ') rest++;
      memset(next, ' ', hang);
      memcpy(next + hang, cur + rest, len - rest);
      size_t nlen = hang + len - rest;
      /* the rest flows into the next line when it continues the paragraph */
      const char *ne = *p ? strchr(p, '\n') : NULL;
      size_t nn = *p ? (ne ? (size_t)(ne - p) : strlen(p)) : 0;
      if (!hang_all && nn > hang && lead(p, nn) == hang && p[hang] != '-' && p[hang] != '[') {
        next[nlen++] = ' ';
        memcpy(next + nlen, p + hang, nn - hang);
        nlen += nn - hang;
        p = ne ? ne + 1 : p + nn;
      }
      char *t = cur;
      cur = next;
      next = t;
      len = nlen;
    }
    fprintf(f, "%.*s\n", (int)len, cur);
  }
  free(cur);
  free(next);
}

/* The text the printf-style arguments make, laid out by help_print. */
static void help_printf(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void help_printf(FILE *f, const char *fmt, ...) {
  char *buf = NULL;
  size_t n = 0;
  FILE *m = open_memstream(&buf, &n);
  if (!m) return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(m, fmt, ap);
  va_end(ap);
  fclose(m);
  help_print(f, buf, 0);
  free(buf);
}

static void general_usage(FILE *f) {
  int w = 0;
  for (size_t i = 0; i < NCOMMANDS; i++)
    if ((int)strlen(commands[i]->name) > w) w = (int)strlen(commands[i]->name);
  fprintf(f, "usage: casectl [OPTIONS] COMMAND [OPTIONS] [ARGS]\n"
             "  (the options every command takes may stand before the command too:\n"
             "  casectl --store zaken.db list)\n\ncommands:\n");
  /* the names' column is as wide as the longest name; a summary too long for
   * its line wraps under its own column */
  for (size_t i = 0; i < NCOMMANDS; i++) {
    char line[512];
    snprintf(line, sizeof line, "  %-*s  %s\n", w, commands[i]->name, commands[i]->summary);
    help_print(f, line, (size_t)w + 4);
  }
  help_printf(f, "\n%s\n"
                 "Exit codes: 0 ok, 1 refused or check failed, 2 usage, 3 not found,\n"
                 "4 store or I/O error, 5 invalid input.  `casectl COMMAND --help` for more;\n"
                 "docs/casectl.md is the manual.\n",
              common_help);
}

static void command_usage(const command *cmd, FILE *f) {
  help_printf(f, "%s\n\n%s\n%s", cmd->summary, cmd->usage, common_help);
}

/*
 * Moves the common options given before the command behind it, so that
 * `casectl --store x.db list` is `casectl list --store x.db`: argv becomes
 * [prog, COMMAND, leading options..., the rest].  An option that takes an
 * argument takes the next word unless written --name=value.  Returns EX_OK,
 * or EX_USAGE (message printed) for a leading word that is no common option.
 */
static int hoist_common(int argc, char **argv) {
  int i = 1;
  while (i < argc && argv[i][0] == '-' && argv[i][1] != '\0') {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h") || !strcmp(a, "--version")) {
      if (i == 1) return EX_OK; /* main answers these */
      /* `casectl --store x --help`: the help the first word asks for */
      memmove(argv + 1, argv + i, sizeof *argv);
      return EX_OK;
    }
    if (!strcmp(a, "--")) break;
    const struct option *o = NULL;
    for (size_t k = 0; k < NCOMMON && !o; k++) {
      size_t n = strlen(common_options[k].name);
      if (a[0] == '-' && a[1] == '-' && !strncmp(a + 2, common_options[k].name, n) &&
          (a[2 + n] == '\0' || a[2 + n] == '='))
        o = &common_options[k];
    }
    if (!o) {
      fprintf(stderr, "casectl: '%s' before the command is not an option every command takes "
                      "(--store, --lua-root, --profile, --holiday, --at, --json, --quiet; a "
                      "command's own options follow the command; see casectl --help)\n", a);
      return EX_USAGE;
    }
    int takes = o->has_arg == required_argument && !strchr(a, '=');
    if (takes && i + 1 >= argc) {
      fprintf(stderr, "casectl: %s needs a value (see casectl --help)\n", a);
      return EX_USAGE;
    }
    i += takes ? 2 : 1;
  }
  if (i == 1) return EX_OK;
  if (i >= argc || !strcmp(argv[i], "--")) {
    fprintf(stderr, "casectl: no command after the options (see casectl --help)\n");
    return EX_USAGE;
  }
  char *cmd = argv[i];
  memmove(argv + 2, argv + 1, (size_t)(i - 1) * sizeof *argv);
  argv[1] = cmd;
  return EX_OK;
}

int main(int argc, char **argv) {
  ctx c;
  memset(&c, 0, sizeof c);
  c.prog = "casectl";
  if (argc < 2) {
    general_usage(stderr);
    return EX_USAGE;
  }
  if (hoist_common(argc, argv) != EX_OK) return EX_USAGE;
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    if (argc > 2) {
      for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(argv[2], commands[i]->name)) {
          command_usage(commands[i], stdout);
          return EX_OK;
        }
    }
    general_usage(stdout);
    return EX_OK;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("casectl (libcase %s)\n", case_libversion());
    return EX_OK;
  }
  const command *cmd = NULL;
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (!strcmp(argv[1], commands[i]->name)) cmd = commands[i];
  if (!cmd) {
    fprintf(stderr, "casectl: unknown command '%s' (try casectl --help)\n", argv[1]);
    return EX_USAGE;
  }
  c.cmd = cmd->name;

  /* The command's options after the common ones. */
  struct option opts[64];
  size_t n = 0;
  for (size_t i = 0; i < NCOMMON; i++) opts[n++] = common_options[i];
  for (const struct option *o = cmd->options; o && o->name && n < 63; o++) opts[n++] = *o;
  memset(&opts[n], 0, sizeof opts[n]);

  const char *env = getenv("CASECTL_STORE");
  c.store_path = env && *env ? env : "case.db";
  int ex = EX_OK;
  char **args = argv + 1;
  int nargs = argc - 1;
  optind = 1;
  opterr = 0;
  for (;;) {
    int longindex = -1;
    int code = getopt_long(nargs, args, "ho:", opts, &longindex);
    if (code == -1) break;
    switch (code) {
    case OPT_STORE: c.store_path = optarg; break;
    case OPT_LUA_ROOT:
      free(c.lua_root);
      c.lua_root = abs_path(optarg);
      break;
    case OPT_PROFILE: ex = add_profile(&c, optarg); break;
    case OPT_HOLIDAY: ex = add_holiday(&c, optarg); break;
    case OPT_AT:
      if (parse_time(optarg, &c.at) != 0)
        ex = usage_error(&c, "--at: '%s' is not a date or time (expected YYYY-MM-DD, "
                             "YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM] or @SECONDS)", optarg);
      c.have_at = 1;
      break;
    case OPT_JSON: c.json = 1; break;
    case OPT_QUIET: c.quiet = 1; break;
    case 'h':
    case OPT_HELP: command_usage(cmd, stdout); ex = -1; break;
    case '?':
      if (optopt)
        ex = usage_error(&c, "unknown option or missing argument for -%c", optopt);
      else
        ex = usage_error(&c, "unknown option or missing argument: %s", args[optind - 1]);
      break;
    case ':': ex = usage_error(&c, "missing argument for %s", args[optind - 1]); break;
    default:
      if (cmd->option)
        ex = cmd->option(&c, code, optarg);
      else
        ex = usage_error(&c, "unexpected option");
      break;
    }
    if (ex != EX_OK) break;
  }
  if (ex == -1) {
    ctx_close(&c);
    return EX_OK;
  }
  if (ex == EX_OK && !c.have_at) {
    c.at = (int64_t)time(NULL);
  }
  /* Every message and report line names the store as shown: never a password. */
  c.store_shown = case_store_shown_location(c.store_path);
  if (!c.store_shown) ex = fail(&c, EX_STORE, "out of memory");
  if (ex == EX_OK && cmd->needs_store) ex = ctx_store(&c, cmd->needs_store);
  if (ex == EX_OK) ex = cmd->run(&c, nargs - optind, args + optind);
  ctx_close(&c);
  return ex;
}
