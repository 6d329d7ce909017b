/*
 * casectl import-scxml / export-scxml: definitions in and out of SCXML
 * (docs/casectl.md, docs/workflow-format.md "SCXML").
 */
#include <getopt.h>
#include <string.h>
#include <unistd.h>

#include "casectl.h"

/* ------------------------------------------------------------------ import-scxml */

static int run_import_scxml(ctx *c, int argc, char **argv) {
  if (argc < 1) return usage_error(c, "give one or more SCXML files");
  int ex = ctx_store(c, 1);
  if (ex != EX_OK) return ex;
  json_t *out = json_array();
  for (int i = 0; i < argc; i++) {
    const case_def *d = NULL;
    int rc = case_def_load_scxml_file(c->e, argv[i], &d);
    if (rc == CASE_OK) rc = case_store_add_def(c->s, d);
    if (rc != CASE_OK) {
      json_decref(out);
      fprintf(stderr, "%s\n", case_errmsg(c->e));
      return file_exit(argv[i], rc);
    }
    json_t *warnings = json_array();
    for (int k = 0; k < case_def_warning_count(d); k++) {
      json_array_append_new(warnings, json_string(case_def_warning(d, k)));
      if (!c->json && !c->quiet) fprintf(stderr, "%s\n", case_def_warning(d, k));
    }
    json_array_append_new(out, json_pack("{s:s, s:s, s:i, s:s, s:s, s:o}", "file", argv[i],
                                         "workflow", case_def_id(d), "version",
                                         case_def_version(d), "hash", case_def_hash(d),
                                         "model_hash", case_def_model_hash(d), "warnings",
                                         warnings));
    if (!c->json && !c->quiet)
      printf("imported %s version %d from %s (sha256 %.12s..., model %.12s...)\n",
             case_def_id(d), case_def_version(d), argv[i], case_def_hash(d),
             case_def_model_hash(d));
  }
  if (c->json)
    print_json(out);
  else
    json_decref(out);
  return EX_OK;
}

const command cmd_import_scxml = {
    "import-scxml", "store SCXML documents (datamodel=\"lua\") as workflows",
    "usage: casectl import-scxml [--store FILE] FILE...\n"
    "  Reads each SCXML document into the same definition model as a YAML one, checks\n"
    "  it as load does, and stores it: cases can then be created on it.  Files it names\n"
    "  (<script src>, <data src>, <invoke src>) are read now and stored with it; child\n"
    "  documents of <invoke> are stored as definitions of their own.  An error prints\n"
    "  file:line:col: what (exit 5; 3 when a file does not exist); warnings (unreachable\n"
    "  states, expressions that do not compile in a document whose errors are events)\n"
    "  go to stderr.  Prints the workflow id, version, the source's sha256 and the\n"
    "  model hash (the same for the YAML this document was exported from).\n",
    NULL, NULL, run_import_scxml, 0};

/* ------------------------------------------------------------------ export-scxml */

static const struct option export_options[] = {
    {"output", required_argument, NULL, 'o'},
    {NULL, 0, NULL, 0},
};
static const char *export_output;

static int export_option(ctx *c, int code, const char *arg) {
  if (code == 'o') {
    export_output = arg;
    return EX_OK;
  }
  return usage_error(c, "unexpected option");
}

static int run_export_scxml(ctx *c, int argc, char **argv) {
  if (c->json) return usage_error(c, "export-scxml writes SCXML: --json is a usage error");
  if (argc != 1) return usage_error(c, "give one workflow: ID[@VERSION] in the store, or a file");
  const char *what = argv[0];
  const case_def *d = NULL;
  int ex, rc;
  size_t n = strlen(what);
  int is_file = access(what, F_OK) == 0 &&
                ((n > 5 && !strcmp(what + n - 5, ".yaml")) || (n > 4 && !strcmp(what + n - 4, ".yml")) ||
                 (n > 6 && !strcmp(what + n - 6, ".scxml")));
  if (is_file) {
    if ((ex = ctx_engine(c)) != EX_OK) return ex;
    rc = !strcmp(what + n - 6 > what ? what + n - 6 : what, ".scxml")
             ? case_def_load_scxml_file(c->e, what, &d)
             : case_def_load_file(c->e, what, &d);
    if (rc != CASE_OK) {
      fprintf(stderr, "%s\n", case_errmsg(c->e));
      return file_exit(what, rc);
    }
  } else {
    if ((ex = ctx_store(c, 3)) != EX_OK) return ex;
    char id[128];
    int version;
    if (parse_workflow(what, id, sizeof id, &version) != 0)
      return usage_error(c, "'%s' is no file and not ID or ID@VERSION", what);
    d = case_def_find(c->e, id, version);
    if (!d || (version > 0 && case_def_version(d) != version))
      return fail(c, EX_NOTFOUND, "%s: no such workflow in %s", what, c->store_shown);
  }
  char *text = NULL;
  rc = case_def_export_scxml(d, &text);
  if (rc != CASE_OK) return fail_engine(c, rc, "export-scxml");
  FILE *f = stdout;
  if (export_output && !(f = fopen(export_output, "w"))) {
    case_free(text);
    return fail(c, EX_STORE, "%s: cannot write", export_output);
  }
  fputs(text, f);
  case_free(text);
  if (f != stdout && fclose(f) != 0) return fail(c, EX_STORE, "%s: write error", export_output);
  if (!c->quiet && export_output)
    fprintf(stderr, "exported %s version %d to %s (model %.12s...)\n", case_def_id(d),
            case_def_version(d), export_output, case_def_model_hash(d));
  return EX_OK;
}

const command cmd_export_scxml = {
    "export-scxml", "write a workflow as an SCXML document",
    "usage: casectl export-scxml [-o FILE] ID[@VERSION]\n"
    "       casectl export-scxml [-o FILE] FILE.yaml\n"
    "  Writes the workflow (stored in the store: the highest version without @VERSION;\n"
    "  or read from a YAML or SCXML file) as SCXML with datamodel=\"lua\", for SCXML\n"
    "  editors.  What SCXML has no words for (roles, legal terms on the calendar,\n"
    "  params, lua: modules, the report section) is written in the libcase namespace,\n"
    "  so import-scxml of the result gives the same model hash.\n"
    "  -o, --output F  write to F instead of stdout\n",
    export_options, export_option, run_export_scxml, 0};
