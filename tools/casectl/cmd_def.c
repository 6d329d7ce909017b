/*
 * casectl commands on definitions and stores: validate, graph, init, load.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "casectl.h"

/* ------------------------------------------------------------------ validate */

/* The --profile files checked against definition d: their warnings on stderr as
 * file:line:col: warning: text (errors refused the load already), and in `item`
 * (may be NULL) as "profile_warnings".  Returns the number of warnings. */
static int profile_checks(ctx *c, const case_def *d, json_t *item) {
  int n = 0;
  json_t *all = json_array();
  for (int i = 0; i < c->nprofiles; i++) {
    char *text = NULL;
    if (case_def_check_profile(d, c->profile_name[i], &text) != CASE_OK) continue;
    json_t *list = json_loads(text, 0, NULL);
    case_free(text);
    size_t k;
    json_t *it;
    json_array_foreach(list, k, it) {
      n++;
      if (!c->json)
        fprintf(stderr, "%s:%lld:%lld: %s: %s\n",
                json_string_value(json_object_get(it, "file")),
                (long long)json_integer_value(json_object_get(it, "line")),
                (long long)json_integer_value(json_object_get(it, "column")),
                json_string_value(json_object_get(it, "severity")),
                json_string_value(json_object_get(it, "message")));
      json_array_append(all, it);
    }
    json_decref(list);
  }
  if (item) json_object_set_new(item, "profile_warnings", all);
  else json_decref(all);
  return n;
}

static int run_validate(ctx *c, int argc, char **argv) {
  if (argc < 1) return usage_error(c, "give one or more definition files");
  int ex = ctx_engine(c);
  if (ex != EX_OK) return ex;
  json_t *out = json_array();
  int bad = 0, missing = 0;
  for (int i = 0; i < argc; i++) {
    const case_def *d = NULL;
    int rc = case_def_load_file(c->e, argv[i], &d);
    json_t *item = json_pack("{s:s, s:b}", "file", argv[i], "valid", rc == CASE_OK);
    if (rc != CASE_OK) {
      bad++;
      if (file_exit(argv[i], rc) == EX_NOTFOUND) missing++;
      const char *file = NULL;
      int line = 0, col = 0;
      json_t *err = json_pack("{s:s, s:s}", "code", case_errstr(rc), "message", case_errmsg(c->e));
      if (case_errpos(c->e, &file, &line, &col) == CASE_OK) {
        json_object_set_new(err, "line", json_integer(line));
        json_object_set_new(err, "column", json_integer(col));
      }
      json_object_set_new(item, "error", err);
      /* The message already says file:line:col. */
      fprintf(stderr, "%s\n", case_errmsg(c->e));
    } else {
      json_object_set_new(item, "workflow", json_string(case_def_id(d)));
      json_object_set_new(item, "version", json_integer(case_def_version(d)));
      json_object_set_new(item, "hash", json_string(case_def_hash(d)));
      json_t *w = json_array();
      for (int k = 0; k < case_def_warning_count(d); k++) {
        json_array_append_new(w, json_string(case_def_warning(d, k)));
        if (!c->json) {
          /* "file:line:col: text" -> "file:line:col: warning: text", as compilers do */
          const char *wt = case_def_warning(d, k);
          const char *sep = strstr(wt, ": ");
          if (sep) fprintf(stderr, "%.*s: warning: %s\n", (int)(sep - wt), wt, sep + 2);
          else fprintf(stderr, "warning: %s\n", wt);
        }
      }
      json_object_set_new(item, "warnings", w);
      int pw = profile_checks(c, d, item);
      if (!c->json && !c->quiet)
        printf("%s: ok: %s version %d, sha256 %.12s..., %d warning(s)\n", argv[i], case_def_id(d),
               case_def_version(d), case_def_hash(d), case_def_warning_count(d) + pw);
    }
    json_array_append_new(out, item);
  }
  if (c->json)
    print_json(out);
  else
    json_decref(out);
  return missing ? EX_NOTFOUND : bad ? EX_REFUSED : EX_OK;
}

const command cmd_validate = {
    "validate", "check workflow definitions (YAML): errors as file:line:col",
    "usage: casectl validate [--lua-root DIR] [--profile NAME=FILE] [--json] FILE...\n"
    "  Loads each definition as the library would and prints its id, version and hash,\n"
    "  or the error with its position, and its warnings as file:line:col: warning: text.\n"
    "  Each --profile is checked against each definition: a param of the wrong type, or\n"
    "  a term param that is no whole number, is an error (in the profile, with its\n"
    "  position); a misspelt param or one that makes a term zero is a warning.\n"
    "  Exit 1 when a file is not a valid definition, 3 when a file does not exist.\n",
    NULL, NULL, run_validate, 0};

/* ------------------------------------------------------------------ graph */

enum { G_FORMAT = 256, G_CASE, G_WORKFLOW };
static const struct option graph_options[] = {
    {"format", required_argument, NULL, G_FORMAT},
    {"case", required_argument, NULL, G_CASE},
    {"workflow", required_argument, NULL, G_WORKFLOW},
    {"output", required_argument, NULL, 'o'},
    {NULL, 0, NULL, 0},
};
static struct {
  const char *format, *case_id, *workflow, *output;
} gopt;

static int graph_option(ctx *c, int code, const char *arg) {
  switch (code) {
  case G_FORMAT:
    if (strcmp(arg, "dot") && strcmp(arg, "mermaid"))
      return usage_error(c, "--format: '%s' (expected dot or mermaid)", arg);
    gopt.format = arg;
    return EX_OK;
  case G_CASE: gopt.case_id = arg; return EX_OK;
  case G_WORKFLOW: gopt.workflow = arg; return EX_OK;
  case 'o': gopt.output = arg; return EX_OK;
  default: return usage_error(c, "unexpected option");
  }
}

static int run_graph(ctx *c, int argc, char **argv) {
  if (c->json)
    return usage_error(c, "graph has no JSON output (--format dot or mermaid; the JSON of a "
                          "case is casectl show --json)");
  if (argc > 1) return usage_error(c, "give at most one definition file");
  if (argc == 0 && !gopt.case_id && !gopt.workflow)
    return usage_error(c, "give a definition file, --workflow ID[@VERSION] or --case ID");
  int ex;
  const case_def *d = NULL;
  char *config = NULL;
  int rc;
  if (gopt.case_id || gopt.workflow) {
    if ((ex = ctx_store(c, 3)) != EX_OK) return ex;
  } else if ((ex = ctx_engine(c)) != EX_OK) {
    return ex;
  }
  if (argc == 1) {
    rc = case_def_load_file(c->e, argv[0], &d);
    if (rc != CASE_OK) {
      fprintf(stderr, "%s\n", case_errmsg(c->e));
      return file_exit(argv[0], rc);
    }
  }
  if (gopt.case_id) {
    case_instance *inst = NULL;
    rc = case_store_get(c->s, gopt.case_id, &inst);
    if (rc != CASE_OK) return fail_engine(c, rc, gopt.case_id);
    if (!d) d = case_instance_def(inst);
    if ((rc = case_instance_configuration(inst, &config)) != CASE_OK)
      return fail_engine(c, rc, gopt.case_id);
  }
  if (!d && gopt.workflow) {
    char id[128];
    int version;
    if (parse_workflow(gopt.workflow, id, sizeof id, &version) != 0)
      return usage_error(c, "--workflow: '%s' is not ID or ID@VERSION", gopt.workflow);
    d = case_def_find(c->e, id, version);
    if (!d) return fail(c, EX_NOTFOUND, "%s: no such workflow in %s", gopt.workflow, c->store_shown);
  }
  int format = gopt.format && !strcmp(gopt.format, "mermaid") ? CASE_GRAPH_MERMAID : CASE_GRAPH_DOT;
  char *text = NULL;
  rc = case_def_graph(d, format, config, &text);
  case_free(config);
  if (rc != CASE_OK) return fail_engine(c, rc, "graph");
  FILE *f = stdout;
  if (gopt.output && !(f = fopen(gopt.output, "w"))) {
    case_free(text);
    return fail(c, EX_STORE, "%s: cannot write", gopt.output);
  }
  fputs(text, f);
  case_free(text);
  if (f != stdout && fclose(f) != 0) return fail(c, EX_STORE, "%s: write error", gopt.output);
  return EX_OK;
}

const command cmd_graph = {
    "graph", "draw a workflow (DOT or Mermaid), a case's states lit",
    "usage: casectl graph [--format dot|mermaid] [-o FILE] FILE\n"
    "       casectl graph [--format dot|mermaid] [-o FILE] --workflow ID[@VERSION]\n"
    "       casectl graph [--format dot|mermaid] [-o FILE] --case ID [FILE]\n"
    "  Writes the workflow as a diagram: states (compound and parallel ones as\n"
    "  clusters), transitions labelled with their events, guards and roles, the terms\n"
    "  in their states; with --case the case's active states are lit.\n"
    "  --format F      dot (default) or mermaid\n"
    "  --workflow W    a definition stored in the store (highest version without @VERSION)\n"
    "  --case ID       highlight this stored case's active states (its own definition\n"
    "                  unless FILE is given)\n"
    "  -o, --output F  write to F instead of stdout (render DOT with `dot -Tsvg`)\n"
    "  graph has no JSON output: --json is a usage error (exit 2).\n",
    graph_options, graph_option, run_graph, 0};

/* ------------------------------------------------------------------ init */

/* --grant ROLE=LOGIN[,ROLE=LOGIN]... (repeatable): the mappings, in order. */
#define MAX_GRANTS 64
static struct {
  char *role[MAX_GRANTS], *login[MAX_GRANTS];
  int n;
} grants;

enum { I_GRANT = 300 };

static const struct option init_options[] = {
    {"grant", required_argument, NULL, I_GRANT},
    {NULL, 0, NULL, 0},
};

/* A PostgreSQL location (URI or conninfo), as the store tells them apart. */
static int pg_location(const char *loc) {
  if (!strncmp(loc, "postgresql:", 11) || !strncmp(loc, "postgres:", 9)) return 1;
  const char *eq = strchr(loc, '='), *sl = strchr(loc, '/');
  return eq && (!sl || eq < sl);
}

static int init_option(ctx *c, int code, const char *arg) {
  if (code != I_GRANT) return usage_error(c, "unexpected option");
  const char *p = arg;
  for (;;) {
    size_t len = strcspn(p, ",");
    const char *eq = memchr(p, '=', len);
    if (!eq || eq == p || eq + 1 == p + len)
      return usage_error(c, "--grant: '%.*s' is not ROLE=LOGIN (e.g. --grant IND=ind_login,"
                            "COA=coa_login)", (int)len, p);
    if (grants.n == MAX_GRANTS) return usage_error(c, "--grant: more than %d mappings", MAX_GRANTS);
    grants.role[grants.n] = strndup(p, (size_t)(eq - p));
    grants.login[grants.n] = strndup(eq + 1, (size_t)(p + len - eq - 1));
    if (!grants.role[grants.n] || !grants.login[grants.n]) return fail(c, EX_STORE, "out of memory");
    grants.n++;
    if (!p[len]) break;
    p += len + 1;
  }
  return EX_OK;
}

static void grants_free(void) {
  for (int i = 0; i < grants.n; i++) {
    free(grants.role[i]);
    free(grants.login[i]);
  }
  grants.n = 0;
}

/* The --grant mappings on the open store; EX_OK or the failure's exit. */
static int init_grants(ctx *c, json_t **out) {
  *out = NULL;
  for (int i = 0; i < grants.n; i++) {
    int rc = case_store_grant(c->s, grants.role[i], grants.login[i]);
    if (rc != CASE_OK) return fail_engine(c, rc, "--grant");
    if (!c->json && !c->quiet)
      printf("%s: login %s may act as %s\n", c->store_shown, grants.login[i], grants.role[i]);
  }
  char *list = NULL;
  int rc = case_store_grants(c->s, &list);
  if (rc != CASE_OK) return fail_engine(c, rc, "--grant");
  *out = json_loads(list, 0, NULL);
  case_free(list);
  return EX_OK;
}

static int run_init(ctx *c, int argc, char **argv) {
  (void)argv;
  if (argc != 0) return usage_error(c, "init takes no arguments (the store is --store FILE)");
  if (grants.n && !pg_location(c->store_path)) {
    grants_free();
    return usage_error(c, "--grant is PostgreSQL-only: '%s' is an SQLite file, whose access is "
                          "the file's mode (chmod/chown); give --store postgresql://... to map "
                          "database logins to roles", c->store_shown);
  }
  int existed = access(c->store_path, F_OK) == 0;
  if (strcmp(case_store_backend(c->store_path), "postgresql") == 0) {
    /* A schema holds the store: it exists when it opens without creating. */
    case_engine *pe = NULL;
    case_store *ps = NULL;
    existed = case_engine_open(&pe) == CASE_OK &&
              case_store_open(pe, c->store_path, CASE_STORE_READONLY, &ps) == CASE_OK;
    case_store_close(ps);
    case_engine_close(pe);
  }
  int ex = ctx_store(c, 2); /* stores the --profile files */
  if (ex != EX_OK) return ex;
  /* The profiles against the workflows already stored: their warnings (errors
   * refused the profile when it was loaded). */
  for (const case_def *d = case_def_next(c->e, NULL); d; d = case_def_next(c->e, d))
    profile_checks(c, d, NULL);
  json_t *granted = NULL;
  if (grants.n) {
    ex = init_grants(c, &granted);
    grants_free();
    if (ex != EX_OK) return ex;
  }
  if (c->json) {
    json_t *names = json_array();
    for (int i = 0; i < c->nprofiles; i++)
      json_array_append_new(names, json_string(c->profile_name[i]));
    json_t *o = json_pack("{s:s, s:b, s:o}", "store", c->store_shown, "created", !existed,
                          "profiles_stored", names);
    if (granted) json_object_set_new(o, "grants", granted);
    print_json(o);
  } else if (!c->quiet) {
    json_decref(granted);
    printf("%s: %s, %d profile(s) stored\n", c->store_shown,
           existed ? "already a store, kept" : "created", c->nprofiles);
  }
  return EX_OK;
}

const command cmd_init = {
    "init", "create a store and store location profiles in it",
    "usage: casectl init [--store FILE] [--profile NAME=FILE]...\n"
    "       casectl init --store postgresql://... [--grant ROLE=LOGIN,...]...\n"
    "  Creates the store if it does not exist (an existing store is kept) and stores\n"
    "  each location profile in it (its Lua text; a stored profile of the same name is\n"
    "  replaced).  Every later command on the store, or on a copy of the file, loads\n"
    "  the stored profiles without the profile files.\n"
    "  --grant ROLE=LOGIN  PostgreSQL only, as the schema's owner: the database\n"
    "                  login LOGIN (CREATE ROLE ... LOGIN first) may act as ROLE,\n"
    "                  and the server refuses it the rest: rows under other roles,\n"
    "                  changing or deleting journal rows, reading grants and\n"
    "                  tokens (docs/store.md, \"Who may write what\").  Repeatable;\n"
    "                  a login may hold several roles.  On an SQLite file: exit 2.\n",
    init_options, init_option, run_init, 0};

/* ------------------------------------------------------------------ load */

static int run_load(ctx *c, int argc, char **argv) {
  if (argc < 1) return usage_error(c, "give one or more definition files");
  int ex = ctx_store(c, 1);
  if (ex != EX_OK) return ex;
  json_t *out = json_array();
  for (int i = 0; i < argc; i++) {
    const case_def *d = NULL;
    int rc = case_def_load_file(c->e, argv[i], &d);
    if (rc == CASE_OK) rc = case_store_add_def(c->s, d);
    if (rc != CASE_OK) {
      json_decref(out);
      fprintf(stderr, "%s\n", case_errmsg(c->e));
      return file_exit(argv[i], rc);
    }
    json_t *item = json_pack("{s:s, s:s, s:i, s:s}", "file", argv[i], "workflow",
                             case_def_id(d), "version", case_def_version(d), "hash",
                             case_def_hash(d));
    profile_checks(c, d, item);
    json_array_append_new(out, item);
    if (!c->json && !c->quiet)
      printf("loaded %s version %d from %s (sha256 %.12s...)\n", case_def_id(d),
             case_def_version(d), argv[i], case_def_hash(d));
  }
  if (c->json)
    print_json(out);
  else
    json_decref(out);
  return EX_OK;
}

const command cmd_load = {
    "load", "store workflow definitions so cases can be created on them",
    "usage: casectl load [--lua-root DIR] [--profile NAME=FILE]... FILE...\n"
    "  Loads and validates each definition and stores it (source and hash).  The same\n"
    "  id, version and content again does nothing; the same id and version with other\n"
    "  content is refused (exit 5): give changed content a new version.  The store\n"
    "  keeps each definition's text and its lua: modules' source, so it never needs\n"
    "  --lua-root again; --lua-root DIR is where relative lua: paths not found next to\n"
    "  the definition file are looked up (default: the current directory).  Profiles\n"
    "  given with --profile are stored, as with init.\n",
    NULL, NULL, run_load, 0};
