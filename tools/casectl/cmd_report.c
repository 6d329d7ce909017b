/*
 * casectl report: case_store_report() rendered as text, JSON, CSV or one
 * self-contained HTML page with inline SVG charts (no scripts, no fonts).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "casectl.h"

enum { R_FORMAT = 256, R_OPTIONS };
static struct {
  const char *format, *options, *output;
} ro;

static int report_option(ctx *c, int code, const char *arg) {
  switch (code) {
  case R_FORMAT:
    if (strcmp(arg, "text") && strcmp(arg, "json") && strcmp(arg, "csv") && strcmp(arg, "html"))
      return usage_error(c, "--format: '%s' (expected text, json, csv or html)", arg);
    ro.format = arg;
    return EX_OK;
  case R_OPTIONS: ro.options = arg; return EX_OK;
  case 'o': ro.output = arg; return EX_OK;
  default: return usage_error(c, "unexpected option");
  }
}

static const char *track_name(const char *field, const char *t, char *buf, size_t len) {
  if (field && !strcmp(field, "spoor") && strcmp(t, "none") && strcmp(t, "all"))
    snprintf(buf, len, "spoor %s", t);
  else
    snprintf(buf, len, "%s", t);
  return buf;
}

static long long ival(json_t *o, const char *k) { return (long long)json_integer_value(json_object_get(o, k)); }
static double rval(json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

/* ------------------------------------------------------------------ text */

static void render_text(FILE *f, json_t *r) {
  const char *tf = json_string_value(json_object_get(r, "track_field"));
  json_t *cases = json_object_get(r, "cases");
  char tb[64];
  fprintf(f, "Caseload report at %s\n\n", json_string_value(json_object_get(r, "date")));
  fprintf(f, "Cases           %lld  (open %lld, closed %lld)\n", ival(cases, "total"),
          ival(cases, "open"), ival(cases, "closed"));
  fprintf(f, "Transferred     %lld\n", (long long)json_integer_value(json_object_get(r, "transferred")));
  json_t *ap = json_object_get(r, "appeals");
  fprintf(f, "Appeals         %lld lodged:", ival(ap, "lodged"));
  const char *k;
  json_t *v;
  json_object_foreach(json_object_get(ap, "outcomes"), k, v)
    fprintf(f, " %s %lld", k, (long long)json_integer_value(v));
  fprintf(f, "\n\nPer track (%s)\n", tf ? tf : "-");
  json_object_foreach(json_object_get(r, "by_track"), k, v) {
    fprintf(f, "  %-10s %4lld cases, %4lld open, %4lld closed\n", track_name(tf, k, tb, sizeof tb),
            ival(v, "cases"), ival(v, "open"), ival(v, "closed"));
    const char *s;
    json_t *n;
    json_object_foreach(json_object_get(v, "states"), s, n)
      fprintf(f, "      %-32s %4lld\n", s, (long long)json_integer_value(n));
  }
  fprintf(f, "\nClosed by final state\n");
  json_object_foreach(json_object_get(json_object_get(r, "closed"), "by_state"), k, v)
    fprintf(f, "  %-32s %4lld\n", k, (long long)json_integer_value(v));
  fprintf(f, "\nLead time in days, start to end (closed cases)\n");
  fprintf(f, "  %-10s %-12s %6s %8s %8s %8s\n", "track", "lane", "cases", "median", "p90", "mean");
  size_t i;
  json_array_foreach(json_object_get(r, "lead_time_days"), i, v)
    fprintf(f, "  %-10s %-12s %6lld %8.1f %8.1f %8.1f\n",
            track_name(tf, json_string_value(json_object_get(v, "track")), tb, sizeof tb),
            json_string_value(json_object_get(v, "lane")), ival(v, "cases"), rval(v, "median"),
            rval(v, "p90"), rval(v, "mean"));
  json_t *dl = json_object_get(r, "deadlines");
  fprintf(f, "\nLegal terms: %lld run out in the next %lld days, %lld overdue\n",
          ival(dl, "due_soon"), ival(dl, "horizon_days"), ival(dl, "overdue"));
  fprintf(f, "  %-20s %9s %8s\n", "agency", "due soon", "overdue");
  json_object_foreach(json_object_get(dl, "by_agency"), k, v)
    fprintf(f, "  %-20s %9lld %8lld\n", k, ival(v, "due_soon"), ival(v, "overdue"));
  json_t *items = json_object_get(dl, "items");
  if (json_array_size(items)) fprintf(f, "\n  %-16s %-10s %-26s %-10s %s\n", "case", "agency", "term", "last day", "status");
  json_array_foreach(items, i, v) {
    const char *ld = json_string_value(json_object_get(v, "last_day"));
    char due[32];
    format_date(json_integer_value(json_object_get(v, "due")), due, sizeof due);
    fprintf(f, "  %-16s %-10s %-26s %-10s %s\n", json_string_value(json_object_get(v, "case")),
            json_string_value(json_object_get(v, "agency")),
            json_string_value(json_object_get(v, "deadline")), ld ? ld : due,
            json_string_value(json_object_get(v, "status")));
  }
}

/* ------------------------------------------------------------------ CSV */

static void csv_cell(FILE *f, const char *s) {
  if (strpbrk(s, ",\"\n")) {
    fputc('"', f);
    for (; *s; s++) {
      if (*s == '"') fputc('"', f);
      fputc(*s, f);
    }
    fputc('"', f);
  } else {
    fputs(s, f);
  }
}

static void csv_line(FILE *f, const char *section, const char *a, const char *b, const char *c,
                     double value, int integer) {
  csv_cell(f, section);
  fputc(',', f);
  csv_cell(f, a);
  fputc(',', f);
  csv_cell(f, b);
  fputc(',', f);
  csv_cell(f, c);
  if (integer) fprintf(f, ",%lld\n", (long long)value);
  else fprintf(f, ",%.1f\n", value);
}

static void render_csv(FILE *f, json_t *r) {
  fprintf(f, "section,key,subkey,measure,value\n");
  json_t *cases = json_object_get(r, "cases");
  const char *k;
  json_t *v;
  json_object_foreach(cases, k, v) csv_line(f, "cases", "", "", k, (double)json_integer_value(v), 1);
  csv_line(f, "transferred", "", "", "cases", (double)json_integer_value(json_object_get(r, "transferred")), 1);
  json_t *ap = json_object_get(r, "appeals");
  csv_line(f, "appeals", "", "", "lodged", (double)ival(ap, "lodged"), 1);
  json_object_foreach(json_object_get(ap, "outcomes"), k, v)
    csv_line(f, "appeals", k, "", "cases", (double)json_integer_value(v), 1);
  json_object_foreach(json_object_get(r, "by_track"), k, v) {
    csv_line(f, "track", k, "", "cases", (double)ival(v, "cases"), 1);
    csv_line(f, "track", k, "", "open", (double)ival(v, "open"), 1);
    csv_line(f, "track", k, "", "closed", (double)ival(v, "closed"), 1);
    const char *s;
    json_t *n;
    json_object_foreach(json_object_get(v, "states"), s, n)
      csv_line(f, "track_state", k, s, "cases", (double)json_integer_value(n), 1);
  }
  json_object_foreach(json_object_get(json_object_get(r, "closed"), "by_state"), k, v)
    csv_line(f, "closed", k, "", "cases", (double)json_integer_value(v), 1);
  size_t i;
  json_array_foreach(json_object_get(r, "lead_time_days"), i, v) {
    const char *t = json_string_value(json_object_get(v, "track"));
    const char *l = json_string_value(json_object_get(v, "lane"));
    csv_line(f, "lead_time_days", t, l, "cases", (double)ival(v, "cases"), 1);
    csv_line(f, "lead_time_days", t, l, "median", rval(v, "median"), 0);
    csv_line(f, "lead_time_days", t, l, "p90", rval(v, "p90"), 0);
    csv_line(f, "lead_time_days", t, l, "mean", rval(v, "mean"), 0);
  }
  json_object_foreach(json_object_get(json_object_get(r, "deadlines"), "by_agency"), k, v) {
    csv_line(f, "deadlines", k, "", "due_soon", (double)ival(v, "due_soon"), 1);
    csv_line(f, "deadlines", k, "", "overdue", (double)ival(v, "overdue"), 1);
  }
  json_object_foreach(json_object_get(r, "new_per_week"), k, v)
    csv_line(f, "new_per_week", k, "", "cases", (double)json_integer_value(v), 1);
}

/* ------------------------------------------------------------------ HTML */

static void html_text(FILE *f, const char *s) {
  for (; s && *s; s++) {
    switch (*s) {
    case '<': fputs("&lt;", f); break;
    case '>': fputs("&gt;", f); break;
    case '&': fputs("&amp;", f); break;
    case '"': fputs("&quot;", f); break;
    default: fputc(*s, f);
    }
  }
}

typedef struct series {
  const char *name, *color;
  double values[128];
} series;

/* A horizontal bar chart: one row per label, one bar per series. */
static void svg_hbars(FILE *f, const char *title, const char *id, const char **labels, int n,
                      const series *s, int ns, const char *unit) {
  double max = 0;
  for (int j = 0; j < ns; j++)
    for (int i = 0; i < n; i++)
      if (s[j].values[i] > max) max = s[j].values[i];
  if (max <= 0) max = 1;
  int bar = 14, gap = 8, left = 190, width = 420;
  int rowh = bar * ns + gap;
  int h = 40 + n * rowh + 20;
  fprintf(f, "<figure><figcaption>");
  html_text(f, title);
  fprintf(f, "</figcaption>\n<svg class=\"chart\" id=\"%s\" xmlns=\"http://www.w3.org/2000/svg\" "
             "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n",
          id, left + width + 80, h, left + width + 80, h);
  for (int j = 0; j < ns; j++) {
    fprintf(f, "<rect x=\"%d\" y=\"8\" width=\"12\" height=\"12\" fill=\"%s\"/>"
               "<text x=\"%d\" y=\"18\" font-size=\"12\">",
            left + j * 130, s[j].color, left + j * 130 + 16);
    html_text(f, s[j].name);
    fprintf(f, "</text>\n");
  }
  for (int i = 0; i < n; i++) {
    int y = 34 + i * rowh;
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"end\">", left - 8,
            y + rowh / 2);
    html_text(f, labels[i]);
    fprintf(f, "</text>\n");
    for (int j = 0; j < ns; j++) {
      double v = s[j].values[i];
      int w = (int)(v / max * width + 0.5);
      fprintf(f, "<rect class=\"bar\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\">"
                 "<title>%s: %g%s</title></rect>"
                 "<text x=\"%d\" y=\"%d\" font-size=\"11\">%g</text>\n",
              left, y + j * bar, w, bar - 2, s[j].color, s[j].name, v, unit, left + w + 4,
              y + j * bar + bar - 4, v);
    }
  }
  fprintf(f, "</svg></figure>\n");
}

/* A column chart over weeks (new cases per week). */
static void svg_columns(FILE *f, const char *title, const char *id, const char **labels, int n,
                        const double *v) {
  double max = 1;
  for (int i = 0; i < n; i++)
    if (v[i] > max) max = v[i];
  int colw = n > 0 ? (n > 60 ? 8 : 14) : 14, h = 200, left = 40, top = 10;
  int width = left + n * (colw + 2) + 20;
  fprintf(f, "<figure><figcaption>");
  html_text(f, title);
  fprintf(f, "</figcaption>\n<svg class=\"chart\" id=\"%s\" xmlns=\"http://www.w3.org/2000/svg\" "
             "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n",
          id, width, h + 50, width, h + 50);
  fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#999\"/>\n", left, top + h,
          width - 10, top + h);
  fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">%g</text>\n", left - 4,
          top + 10, max);
  fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">0</text>\n", left - 4,
          top + h);
  for (int i = 0; i < n; i++) {
    int bh = (int)(v[i] / max * h + 0.5);
    int x = left + 2 + i * (colw + 2);
    fprintf(f, "<rect class=\"bar\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#2e86c1\">"
               "<title>%s: %g</title></rect>\n",
            x, top + h - bh, colw, bh, labels[i], v[i]);
    if (i % 4 == 0)
      fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"10\" transform=\"rotate(60 %d %d)\">%s</text>\n",
              x, top + h + 12, x, top + h + 12, labels[i]);
  }
  fprintf(f, "</svg></figure>\n");
}

static void render_html(FILE *f, json_t *r) {
  const char *tf = json_string_value(json_object_get(r, "track_field"));
  const char *date = json_string_value(json_object_get(r, "date"));
  json_t *cases = json_object_get(r, "cases");
  json_t *ap = json_object_get(r, "appeals");
  json_t *dl = json_object_get(r, "deadlines");
  char tb[64];
  fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
             "<title>Caseload report %s</title>\n<style>\n"
             "body{font-family:sans-serif;margin:2em;color:#222;max-width:1100px}\n"
             "h1{font-size:1.5em} h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}\n"
             ".kpi{display:inline-block;margin:0 1.5em 1em 0;padding:.6em 1em;background:#f4f6f7;border-radius:6px}\n"
             ".kpi b{display:block;font-size:1.6em}\n"
             "table{border-collapse:collapse;font-size:.9em} td,th{padding:.2em .7em;border-bottom:1px solid #eee;text-align:left}\n"
             "td.n{text-align:right} figure{margin:1em 0} figcaption{font-weight:bold;margin-bottom:.3em}\n"
             "svg text{font-family:sans-serif}\n</style></head><body>\n",
          date);
  fprintf(f, "<h1>Caseload report at %s</h1>\n", date);
  fprintf(f, "<p>Computed from the journal of the store by <code>casectl report</code>.</p>\n");
  fprintf(f, "<div class=\"kpi\">cases<b id=\"k-total\">%lld</b></div>", ival(cases, "total"));
  fprintf(f, "<div class=\"kpi\">closed<b id=\"k-closed\">%lld</b></div>", ival(cases, "closed"));
  fprintf(f, "<div class=\"kpi\">open<b id=\"k-open\">%lld</b></div>", ival(cases, "open"));
  fprintf(f, "<div class=\"kpi\">transferred<b id=\"k-transferred\">%lld</b></div>",
          (long long)json_integer_value(json_object_get(r, "transferred")));
  fprintf(f, "<div class=\"kpi\">appeals<b id=\"k-appeals\">%lld</b></div>", ival(ap, "lodged"));
  fprintf(f, "<div class=\"kpi\">terms overdue<b id=\"k-overdue\">%lld</b></div>\n", ival(dl, "overdue"));

  /* Cases per track. */
  const char *labels[128];
  char lbuf[128][64];
  series s[3];
  memset(s, 0, sizeof s);
  int n = 0;
  const char *k;
  json_t *v;
  s[0].name = "open";
  s[0].color = "#f5b041";
  s[1].name = "closed";
  s[1].color = "#27ae60";
  json_object_foreach(json_object_get(r, "by_track"), k, v) {
    if (n == 128) break;
    labels[n] = track_name(tf, k, lbuf[n], sizeof lbuf[n]);
    s[0].values[n] = (double)ival(v, "open");
    s[1].values[n] = (double)ival(v, "closed");
    n++;
  }
  fprintf(f, "<h2>Cases per track</h2>\n");
  svg_hbars(f, "Cases per track, open and closed", "chart-tracks", labels, n, s, 2, " cases");

  /* Cases per state. */
  n = 0;
  memset(s, 0, sizeof s);
  s[0].name = "cases";
  s[0].color = "#5d6d7e";
  json_object_foreach(json_object_get(r, "by_state"), k, v) {
    if (n == 128) break;
    labels[n] = k;
    s[0].values[n] = (double)json_integer_value(v);
    n++;
  }
  svg_hbars(f, "Cases per state (closed cases by final state)", "chart-states", labels, n, s, 1, " cases");
  fprintf(f, "<table><tr><th>track</th><th>state</th><th>cases</th></tr>\n");
  json_object_foreach(json_object_get(r, "by_track"), k, v) {
    const char *st;
    json_t *c;
    json_object_foreach(json_object_get(v, "states"), st, c) {
      fprintf(f, "<tr><td>%s</td><td>", track_name(tf, k, tb, sizeof tb));
      html_text(f, st);
      fprintf(f, "</td><td class=\"n\">%lld</td></tr>\n", (long long)json_integer_value(c));
    }
  }
  fprintf(f, "</table>\n");

  /* Appeals. */
  n = 0;
  memset(s, 0, sizeof s);
  s[0].name = "appeals";
  s[0].color = "#8e44ad";
  json_object_foreach(json_object_get(ap, "outcomes"), k, v) {
    if (n == 128) break;
    labels[n] = k;
    s[0].values[n] = (double)json_integer_value(v);
    n++;
  }
  fprintf(f, "<h2>Appeals (%lld lodged)</h2>\n", ival(ap, "lodged"));
  svg_hbars(f, "Appeal outcomes", "chart-appeals", labels, n, s, 1, " appeals");

  /* Lead times. */
  n = 0;
  memset(s, 0, sizeof s);
  s[0].name = "median";
  s[0].color = "#2e86c1";
  s[1].name = "90th percentile";
  s[1].color = "#c0392b";
  size_t i;
  fprintf(f, "<h2>Lead time, start to end (days, closed cases)</h2>\n");
  json_array_foreach(json_object_get(r, "lead_time_days"), i, v) {
    if (n == 128) break;
    char tn[64];
    snprintf(lbuf[n], sizeof lbuf[n], "%s, %s",
             track_name(tf, json_string_value(json_object_get(v, "track")), tn, sizeof tn),
             json_string_value(json_object_get(v, "lane")));
    labels[n] = lbuf[n];
    s[0].values[n] = rval(v, "median");
    s[1].values[n] = rval(v, "p90");
    n++;
  }
  svg_hbars(f, "Lead time per track: accelerated lane against regular", "chart-leadtime", labels, n,
            s, 2, " days");
  fprintf(f, "<table><tr><th>track</th><th>lane</th><th>cases</th><th>median</th><th>p90</th><th>mean</th></tr>\n");
  json_array_foreach(json_object_get(r, "lead_time_days"), i, v)
    fprintf(f, "<tr><td>%s</td><td>%s</td><td class=\"n\">%lld</td><td class=\"n\">%.1f</td>"
               "<td class=\"n\">%.1f</td><td class=\"n\">%.1f</td></tr>\n",
            track_name(tf, json_string_value(json_object_get(v, "track")), tb, sizeof tb),
            json_string_value(json_object_get(v, "lane")), ival(v, "cases"), rval(v, "median"),
            rval(v, "p90"), rval(v, "mean"));
  fprintf(f, "</table>\n");

  /* Deadlines per agency. */
  n = 0;
  memset(s, 0, sizeof s);
  s[0].name = "run out within the horizon";
  s[0].color = "#f39c12";
  s[1].name = "overdue";
  s[1].color = "#c0392b";
  json_object_foreach(json_object_get(dl, "by_agency"), k, v) {
    if (n == 128) break;
    labels[n] = k;
    s[0].values[n] = (double)ival(v, "due_soon");
    s[1].values[n] = (double)ival(v, "overdue");
    n++;
  }
  fprintf(f, "<h2>Legal terms: next %lld days and overdue, per agency that must act</h2>\n",
          ival(dl, "horizon_days"));
  svg_hbars(f, "Running terms per agency", "chart-deadlines", labels, n, s, 2, " terms");
  fprintf(f, "<table><tr><th>case</th><th>agency</th><th>term</th><th>last day</th><th>source</th><th>status</th></tr>\n");
  json_array_foreach(json_object_get(dl, "items"), i, v) {
    const char *ld = json_string_value(json_object_get(v, "last_day"));
    const char *src = json_string_value(json_object_get(v, "source"));
    char due[32];
    format_date(json_integer_value(json_object_get(v, "due")), due, sizeof due);
    fprintf(f, "<tr><td>");
    html_text(f, json_string_value(json_object_get(v, "case")));
    fprintf(f, "</td><td>");
    html_text(f, json_string_value(json_object_get(v, "agency")));
    fprintf(f, "</td><td>");
    html_text(f, json_string_value(json_object_get(v, "deadline")));
    fprintf(f, "</td><td>%s</td><td>", ld ? ld : due);
    html_text(f, src ? src : "");
    fprintf(f, "</td><td>%s</td></tr>\n", json_string_value(json_object_get(v, "status")));
  }
  fprintf(f, "</table>\n");

  /* New cases per week. */
  const char *wl[512];
  double wv[512];
  int nw = 0;
  json_object_foreach(json_object_get(r, "new_per_week"), k, v) {
    if (nw == 512) break;
    wl[nw] = k;
    wv[nw] = (double)json_integer_value(v);
    nw++;
  }
  fprintf(f, "<h2>New cases per week</h2>\n");
  svg_columns(f, "New cases per ISO week", "chart-weeks", wl, nw, wv);
  fprintf(f, "</body></html>\n");
}

int render_report(FILE *out, json_t *rep, const char *format) {
  if (!strcmp(format, "json")) {
    json_dumpf(rep, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', out);
  } else if (!strcmp(format, "csv")) {
    render_csv(out, rep);
  } else if (!strcmp(format, "html")) {
    render_html(out, rep);
  } else {
    render_text(out, rep);
  }
  return ferror(out) ? -1 : 0;
}

static const struct option report_options[] = {
    {"format", required_argument, NULL, R_FORMAT},
    {"options", required_argument, NULL, R_OPTIONS},
    {"output", required_argument, NULL, 'o'},
    {NULL, 0, NULL, 0},
};

static int run_report(ctx *c, int argc, char **argv) {
  (void)argv;
  if (argc != 0) return usage_error(c, "report takes no arguments");
  int64_t at = c->at;
  if (!c->have_at) {
    case_ids ids;
    int ex = collect_case_ids(c, &ids);
    at = ids.last_time;
    case_ids_free(&ids);
    if (ex != EX_OK) return ex;
  }
  char *text = NULL;
  int rc = case_store_report(c->s, c->e, at, ro.options, &text);
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
  int bad = render_report(f, rep, format);
  json_decref(rep);
  if (f != stdout && fclose(f) != 0) bad = 1;
  if (bad) return fail(c, EX_STORE, "%s: write error", ro.output ? ro.output : "stdout");
  if (ro.output && !c->quiet) fprintf(stderr, "wrote %s (%s)\n", ro.output, format);
  return EX_OK;
}

const command cmd_report = {
    "report", "the caseload report at a date: text, JSON, CSV or an HTML page with charts",
    "usage: casectl report [--at WHEN] [--format text|json|csv|html] [--options JSON]\n"
    "                      [-o FILE]\n"
    "  Cases per track and state; closed, transferred, appeal outcomes; lead time\n"
    "  (median, 90th percentile) per track, accelerated lane against regular; legal\n"
    "  terms that run out within 7 days or are overdue, per agency.  Every figure is\n"
    "  computed from the journal.  --at defaults to the latest event in the journal.\n"
    "  --options JSON  how the report reads the workflow (see case_store_report() in\n"
    "                  include/libcase/store.h; the defaults fit asielprocedure)\n"
    "  -o FILE         write there (the HTML page is self-contained: inline SVG)\n",
    report_options, report_option, run_report, 3};
