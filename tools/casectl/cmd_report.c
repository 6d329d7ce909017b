/*
 * casectl report: case_store_report_v2() (the caseload overview at a date) as
 * text, JSON, CSV or one self-contained HTML page (overview.c renders it).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "casectl.h"

enum { R_FORMAT = 256, R_OPTIONS, R_LOCATION, R_AGENCY, R_REGISSEUR, R_TRACK, R_SORT, R_TABLE,
       R_HORIZON };
static struct {
  const char *format, *options, *output, *table, *sort, *horizon;
  const char *filter[4]; /* location, agency, procesregisseur, track */
} ro;

static const char *const filter_keys[4] = {"location", "agency", "procesregisseur", "track"};

static int report_option(ctx *c, int code, const char *arg) {
  switch (code) {
  case R_FORMAT:
    if (strcmp(arg, "text") && strcmp(arg, "json") && strcmp(arg, "csv") && strcmp(arg, "html"))
      return usage_error(c, "--format: '%s' (expected text, json, csv or html)", arg);
    ro.format = arg;
    return EX_OK;
  case R_TABLE:
    if (strcmp(arg, "cases") && strcmp(arg, "terms") && strcmp(arg, "summary"))
      return usage_error(c, "--table: '%s' (expected cases, terms or summary)", arg);
    ro.table = arg;
    return EX_OK;
  case R_OPTIONS: ro.options = arg; return EX_OK;
  case R_LOCATION: ro.filter[0] = arg; return EX_OK;
  case R_AGENCY: ro.filter[1] = arg; return EX_OK;
  case R_REGISSEUR: ro.filter[2] = arg; return EX_OK;
  case R_TRACK: ro.filter[3] = arg; return EX_OK;
  case R_SORT: {
    static const char *const sorts[] = {"urgency", "case", "location", "procesregisseur",
                                        "state", "days", "agency", "track", NULL};
    for (int i = 0; sorts[i]; i++)
      if (!strcmp(arg, sorts[i])) {
        ro.sort = arg;
        return EX_OK;
      }
    return usage_error(c, "--sort: '%s' (expected urgency, case, location, procesregisseur, "
                          "state, days, agency or track)", arg);
  }
  case R_HORIZON: ro.horizon = arg; return EX_OK;
  case 'o': ro.output = arg; return EX_OK;
  default: return usage_error(c, "unexpected option");
  }
}

json_t *report_options_json(const char *const filter[4], const char *sort, int horizon) {
  json_t *o = json_object(), *f = json_object();
  if (!o || !f) {
    json_decref(o);
    json_decref(f);
    return NULL;
  }
  for (int i = 0; i < 4; i++)
    if (filter[i] && *filter[i]) json_object_set_new(f, filter_keys[i], json_string(filter[i]));
  if (json_object_size(f)) json_object_set(o, "filter", f);
  json_decref(f);
  if (sort && *sort) json_object_set_new(o, "sort", json_string(sort));
  if (horizon >= 0) json_object_set_new(o, "horizon_days", json_integer(horizon));
  return o;
}

static const struct option report_options[] = {
    {"format", required_argument, NULL, R_FORMAT},
    {"table", required_argument, NULL, R_TABLE},
    {"options", required_argument, NULL, R_OPTIONS},
    {"location", required_argument, NULL, R_LOCATION},
    {"agency", required_argument, NULL, R_AGENCY},
    {"procesregisseur", required_argument, NULL, R_REGISSEUR},
    {"track", required_argument, NULL, R_TRACK},
    {"sort", required_argument, NULL, R_SORT},
    {"horizon", required_argument, NULL, R_HORIZON},
    {"output", required_argument, NULL, 'o'},
    {NULL, 0, NULL, 0},
};

static int run_report(ctx *c, int argc, char **argv) {
  (void)argv;
  if (argc != 0) return usage_error(c, "report takes no arguments");
  int64_t at = c->at;
  if (!c->have_at) {
    int ex = latest_event_time(c, &at);
    if (ex != EX_OK) return ex;
  }
  int horizon = -1;
  if (ro.horizon) {
    char *end;
    long h = strtol(ro.horizon, &end, 10);
    if (*end || end == ro.horizon || h < 0 || h > 3660)
      return usage_error(c, "--horizon: '%s' (expected days, 0 to 3660)", ro.horizon);
    horizon = (int)h;
  }
  json_t *opts = NULL;
  if (ro.options) {
    int ex;
    opts = parse_json_arg(c, "--options", ro.options, &ex);
    if (!opts) return ex;
    if (!json_is_object(opts)) {
      json_decref(opts);
      return fail(c, EX_INVALID, "--options: not a JSON object");
    }
  } else {
    opts = json_object();
  }
  json_t *mine = report_options_json(ro.filter, ro.sort, horizon);
  if (!opts || !mine || json_object_update(opts, mine)) {
    json_decref(opts);
    json_decref(mine);
    return fail(c, EX_STORE, "out of memory");
  }
  json_decref(mine);
  char *otext = json_dumps(opts, JSON_COMPACT);
  json_decref(opts);
  char *text = NULL;
  int rc = otext ? case_store_report_v2(c->s, at, otext, &text) : CASE_NOMEM;
  free(otext);
  if (rc != CASE_OK) return fail_engine(c, rc, "report");
  json_t *rep = json_loads(text, JSON_PRESERVE_ORDER, NULL);
  case_free(text);
  if (!rep) return fail(c, EX_STORE, "out of memory");
  const char *format = ro.format ? ro.format : c->json ? "json" : "text";
  FILE *f = stdout;
  if (ro.output && !(f = fopen(ro.output, "w"))) {
    json_decref(rep);
    return fail(c, EX_STORE, "%s: cannot write", ro.output);
  }
  int bad = render_overview(f, rep, format, ro.table);
  json_decref(rep);
  if (f != stdout && fclose(f) != 0) bad = 1;
  if (bad) return fail(c, EX_STORE, "%s: write error", ro.output ? ro.output : "stdout");
  if (ro.output && !c->quiet) fprintf(stderr, "wrote %s (%s)\n", ro.output, format);
  return EX_OK;
}

const command cmd_report = {
    "report", "the caseload overview: text, JSON, CSV or an HTML page",
    "usage: casectl report [--at WHEN] [--format text|json|csv|html] [--table cases|terms|summary]\n"
    "                      [--location L] [--agency A] [--procesregisseur P] [--track T]\n"
    "                      [--sort urgency|case|location|procesregisseur|state|days|\n"
    "                       agency|track]\n"
    "                      [--horizon DAYS] [--options JSON] [-o FILE]\n"
    "  The open cases (state in words, days since the aanmelding, next term and its\n"
    "  last day, who must act), terms by urgency (overdue first, court terms marked),\n"
    "  per location, trends, and what each workflow's report: section counts.  Cases\n"
    "  and terms are computed as they were at --at (the journal replayed up to it);\n"
    "  --at defaults to the latest event in the journal.\n"
    "  --location, --agency, --procesregisseur, --track  keep only those open cases\n"
    "                  and terms (the summary counts every case)\n"
    "  --sort          the open cases' order (default urgency)\n"
    "  --horizon DAYS  terms due within this many days are due soon (default: declared, 7)\n"
    "  --table         with --format csv: the open cases (default), the terms, or the\n"
    "                  summary figures as section,key,subkey,measure,value\n"
    "  --options JSON  case_store_report_v2() options (include/libcase/store.h)\n"
    "  -o FILE         write there (the HTML page is self-contained: inline SVG, an\n"
    "                  inline script to sort and filter, nothing loaded from elsewhere)\n",
    report_options, report_option, run_report, 3};
