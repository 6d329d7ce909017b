/*
 * casectl overview: case_store_report_v2() rendered as text, CSV or one HTML
 * page (inline SVG charts and a small inline script for sorting and filtering
 * the static file; nothing is loaded from elsewhere).  `casectl report` writes
 * it to a file; `casectl serve` renders the same page at every load.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "casectl.h"

static const char *js(const json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}
static long long ji(const json_t *o, const char *k) {
  return (long long)json_integer_value(json_object_get(o, k));
}
static double jr(const json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

/* "spoor 4" for a declared track label, the bare value otherwise. */
static void track_text(const json_t *rep, const char *value, char *buf, size_t len) {
  const char *label = js(json_object_get(rep, "track"), "label");
  if (*label && !strcmp(value, "none"))
    snprintf(buf, len, "no %s yet", label);
  else if (*label && strcmp(value, "all") && *value)
    snprintf(buf, len, "%s %s", label, value);
  else
    snprintf(buf, len, "%s", value);
}

/* "ended_without_ruling" -> "ended without ruling" */
static void words(const char *s, char *buf, size_t len) {
  snprintf(buf, len, "%s", s);
  for (char *p = buf; *p; p++)
    if (*p == '_') *p = ' ';
}

static const char *label_of(const json_t *rep, const char *state) {
  const char *l = json_string_value(json_object_get(json_object_get(rep, "state_labels"), state));
  return l ? l : state;
}

/* "overdue 12 d", "today", "in 3 d", "in 40 d" */
static void status_text(const json_t *t, char *buf, size_t len) {
  const char *st = js(t, "status");
  if (!strcmp(st, "overdue"))
    snprintf(buf, len, "overdue %lld d", ji(t, "days_overdue"));
  else if (!strcmp(st, "due_today"))
    snprintf(buf, len, "due today");
  else
    snprintf(buf, len, "in %lld d", ji(t, "days_left"));
}

static void last_day_text(const json_t *t, char *buf, size_t len) {
  const char *ld = js(t, "last_day");
  if (*ld) snprintf(buf, len, "%s", ld);
  else format_local(json_integer_value(json_object_get(t, "due")), buf, len);
}

/* ------------------------------------------------------------------ text */

/* Column widths fit the longest value (the agency "RECHTBANK/DTV/KMAR" too). */
static int width_of(json_t *arr, const char *key, int min) {
  size_t i;
  json_t *v;
  int w = min;
  json_array_foreach(arr, i, v) {
    int n = (int)strlen(js(v, key));
    if (n > w) w = n;
  }
  return w;
}

static void text_overview(FILE *f, json_t *r) {
  json_t *cases = json_object_get(r, "cases"), *terms = json_object_get(r, "terms");
  char tb[128], b1[64], b2[64];
  const char *k;
  json_t *v;
  size_t i;
  fprintf(f, "Caseload overview at %s\n\n", js(r, "date"));
  fprintf(f, "Cases      %lld  (open %lld, closed %lld)\n", ji(cases, "total"), ji(cases, "open"),
          ji(cases, "closed"));
  json_array_foreach(json_object_get(r, "counts"), i, v) {
    fprintf(f, "%-10s %lld  %s", js(v, "name"), ji(v, "cases"), js(v, "label"));
    json_t *oc = json_object_get(v, "outcomes");
    if (oc) {
      fprintf(f, ":");
      json_t *n;
      json_object_foreach(oc, k, n) {
        char w[128];
        words(k, w, sizeof w);
        fprintf(f, " %s %lld", w, (long long)json_integer_value(n));
      }
    }
    fputc('\n', f);
  }
  fprintf(f, "Terms      %lld overdue (%lld the court's), %lld due today, %lld due within %lld days\n",
          ji(terms, "overdue"), ji(terms, "court_overdue"), ji(terms, "due_today"),
          ji(terms, "due_soon"), ji(terms, "horizon_days"));

  json_t *by_loc = json_object_get(r, "by_location");
  int lw = 8;
  json_object_foreach(by_loc, k, v) if ((int)strlen(k) > lw) lw = (int)strlen(k);
  fprintf(f, "\nPer location\n  %-*s %6s %6s %6s %8s %6s %10s %8s\n", lw, "location", "cases",
          "open", "closed", "overdue", "court", "new 7 d", "median");
  json_object_foreach(by_loc, k, v) {
    json_t *lt = json_object_get(v, "lead_time_days");
    char med[16] = "-";
    if (json_is_object(lt)) snprintf(med, sizeof med, "%.1f", jr(lt, "median"));
    fprintf(f, "  %-*s %6lld %6lld %6lld %8lld %6lld %10lld %8s\n", lw, k, ji(v, "cases"),
            ji(v, "open"), ji(v, "closed"), ji(v, "overdue"), ji(v, "court_overdue"),
            ji(v, "new_last_7_days"), med);
  }

  json_t *oc = json_object_get(r, "open_cases");
  int cw = width_of(oc, "case", 4), locw = width_of(oc, "location", 8);
  int pw = width_of(oc, "procesregisseur", 15), aw;
  int sw = 10;
  json_array_foreach(oc, i, v) {
    int n = (int)strlen(js(v, "state_label"));
    if (n > sw) sw = n;
  }
  fprintf(f, "\nOpen cases (%zu, sorted by %s)\n  %-*s %-*s %-*s %-*s %5s  %-24s %-10s %-16s %s\n",
          json_array_size(oc), js(r, "sort"), cw, "case", locw, "location", pw, "procesregisseur",
          sw, "state", "days", "next term", "last day", "status", "must act");
  json_array_foreach(oc, i, v) {
    json_t *t = json_object_get(v, "next_term");
    b1[0] = b2[0] = 0;
    if (json_is_object(t)) {
      last_day_text(t, b1, sizeof b1);
      status_text(t, b2, sizeof b2);
    }
    fprintf(f, "  %-*s %-*s %-*s %-*s %5lld  %-24s %-10s %-16s %s\n", cw, js(v, "case"), locw,
            js(v, "location"), pw, js(v, "procesregisseur"), sw, js(v, "state_label"),
            ji(v, "days_open"), json_is_object(t) ? js(t, "name") : "-", b1, b2,
            js(v, "must_act"));
  }

  json_t *items = json_object_get(terms, "items");
  fprintf(f, "\nTerms by urgency: overdue, due today, due within %lld days\n",
          ji(terms, "horizon_days"));
  json_t *by_ag = json_object_get(terms, "by_agency");
  aw = 8;
  json_object_foreach(by_ag, k, v) if ((int)strlen(k) > aw) aw = (int)strlen(k);
  fprintf(f, "  %-*s %8s %9s %8s\n", aw, "agency", "overdue", "due today", "due soon");
  json_object_foreach(by_ag, k, v)
    fprintf(f, "  %-*s %8lld %9lld %8lld%s\n", aw, k, ji(v, "overdue"), ji(v, "due_today"),
            ji(v, "due_soon"), json_is_true(json_object_get(v, "court")) ? "  (court)" : "");
  if (json_array_size(items)) {
    cw = width_of(items, "case", 4);
    int dw = width_of(items, "deadline", 4);
    aw = width_of(items, "agency", 6);
    fprintf(f, "\n  %-16s %-*s %-*s %-10s %-*s %s\n", "status", cw, "case", dw, "term",
            "last day", aw, "agency", "");
    json_array_foreach(items, i, v) {
      status_text(v, b2, sizeof b2);
      last_day_text(v, b1, sizeof b1);
      fprintf(f, "  %-16s %-*s %-*s %-10s %-*s %s\n", b2, cw, js(v, "case"), dw,
              js(v, "deadline"), b1, aw, js(v, "agency"),
              json_is_true(json_object_get(v, "court")) ? "court" : "");
    }
  }

  if (json_object_size(json_object_get(r, "by_track"))) {
    fprintf(f, "\nPer track (%s)\n", js(json_object_get(r, "track"), "label"));
    json_object_foreach(json_object_get(r, "by_track"), k, v) {
      track_text(r, k, tb, sizeof tb);
      fprintf(f, "  %-12s %4lld cases, %4lld open, %4lld closed\n", tb, ji(v, "cases"),
              ji(v, "open"), ji(v, "closed"));
    }
  }
  json_t *obs = json_object_get(r, "open_by_state");
  sw = 8;
  json_object_foreach(obs, k, v) if ((int)strlen(label_of(r, k)) > sw) sw = (int)strlen(label_of(r, k));
  json_object_foreach(json_object_get(json_object_get(r, "closed"), "by_state"), k, v)
    if ((int)strlen(label_of(r, k)) > sw) sw = (int)strlen(label_of(r, k));
  fprintf(f, "\nOpen cases per state\n");
  json_object_foreach(obs, k, v) fprintf(f, "  %-*s %4lld\n", sw, label_of(r, k), (long long)json_integer_value(v));
  fprintf(f, "\nClosed cases by final state\n");
  json_object_foreach(json_object_get(json_object_get(r, "closed"), "by_state"), k, v)
    fprintf(f, "  %-*s %4lld\n", sw, label_of(r, k), (long long)json_integer_value(v));
  fprintf(f, "\nLead time in days, start to end (closed cases)\n");
  fprintf(f, "  %-12s %-12s %6s %8s %8s %8s\n", "track", "lane", "cases", "median", "p90", "mean");
  json_array_foreach(json_object_get(r, "lead_time_days"), i, v) {
    track_text(r, js(v, "track"), tb, sizeof tb);
    fprintf(f, "  %-12s %-12s %6lld %8.1f %8.1f %8.1f\n", tb, js(v, "lane"), ji(v, "cases"),
            jr(v, "median"), jr(v, "p90"), jr(v, "mean"));
  }
  json_t *sig = json_object_get(json_object_get(r, "trends"), "signals_per_source");
  if (json_object_size(sig)) {
    fprintf(f, "\nSignals per source\n");
    json_object_foreach(sig, k, v) fprintf(f, "  %-12s %4lld\n", k, ji(v, "total"));
  }
  size_t np = json_array_size(json_object_get(r, "problems"));
  if (np) {
    fprintf(f, "\nProblems (%zu): cases whose journal does not replay\n", np);
    json_array_foreach(json_object_get(r, "problems"), i, v)
      fprintf(f, "  %s: %s\n", js(v, "case"), js(v, "problem"));
  }
}

/* ------------------------------------------------------------------ CSV */

static void csv_cell(FILE *f, const char *s) {
  /* A leading =, +, - or @ would be a formula in a spreadsheet: quote it with '. */
  int formula = s && (*s == '=' || *s == '+' || *s == '-' || *s == '@');
  if (s && (strpbrk(s, ",\"\n\r") || formula)) {
    fputc('"', f);
    if (formula) fputc('\'', f);
    for (; *s; s++) {
      if (*s == '"') fputc('"', f);
      fputc(*s, f);
    }
    fputc('"', f);
  } else if (s) {
    fputs(s, f);
  }
}

static void csv_row(FILE *f, const char *const *cells, int n) {
  for (int i = 0; i < n; i++) {
    if (i) fputc(',', f);
    csv_cell(f, cells[i]);
  }
  fputs("\r\n", f);
}

static void csv_cases(FILE *f, json_t *r) {
  static const char *const head[] = {"case", "workflow", "location", "procesregisseur", "state",
                                     "state_label", "track", "lane", "days_open", "next_term",
                                     "last_day", "status", "days_overdue", "days_left", "court",
                                     "must_act", "signals"};
  csv_row(f, head, 17);
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(r, "open_cases"), i, v) {
    json_t *t = json_object_get(v, "next_term");
    char days[24], over[24] = "", left[24] = "", sig[24], ld[32] = "";
    snprintf(days, sizeof days, "%lld", ji(v, "days_open"));
    snprintf(sig, sizeof sig, "%lld", ji(v, "signals"));
    if (json_is_object(t)) {
      if (json_object_get(t, "days_overdue")) snprintf(over, sizeof over, "%lld", ji(t, "days_overdue"));
      if (json_object_get(t, "days_left")) snprintf(left, sizeof left, "%lld", ji(t, "days_left"));
      last_day_text(t, ld, sizeof ld);
    }
    const char *cells[] = {js(v, "case"), js(v, "workflow"), js(v, "location"),
                           js(v, "procesregisseur"), js(v, "state"), js(v, "state_label"),
                           js(v, "track"), js(v, "lane"), days, js(t, "name"), ld,
                           js(t, "status"), over, left,
                           json_is_object(t) ? (json_is_true(json_object_get(t, "court")) ? "yes" : "no") : "",
                           js(v, "must_act"), sig};
    csv_row(f, cells, 17);
  }
}

static void csv_terms(FILE *f, json_t *r) {
  static const char *const head[] = {"status", "days_overdue", "days_left", "case", "location",
                                     "procesregisseur", "track", "term", "state", "last_day",
                                     "agency", "court", "source"};
  csv_row(f, head, 13);
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(json_object_get(r, "terms"), "items"), i, v) {
    char over[24] = "", left[24] = "", ld[32];
    if (json_object_get(v, "days_overdue")) snprintf(over, sizeof over, "%lld", ji(v, "days_overdue"));
    if (json_object_get(v, "days_left")) snprintf(left, sizeof left, "%lld", ji(v, "days_left"));
    last_day_text(v, ld, sizeof ld);
    const char *cells[] = {js(v, "status"), over, left, js(v, "case"), js(v, "location"),
                           js(v, "procesregisseur"), js(v, "track"), js(v, "deadline"),
                           js(v, "state"), ld, js(v, "agency"),
                           json_is_true(json_object_get(v, "court")) ? "yes" : "no",
                           js(v, "source")};
    csv_row(f, cells, 13);
  }
}

static void csv_num(FILE *f, const char *sec, const char *a, const char *b, const char *m,
                    double x, int integer) {
  const char *cells[] = {sec, a, b, m};
  for (int i = 0; i < 4; i++) {
    csv_cell(f, cells[i]);
    fputc(',', f);
  }
  if (integer) fprintf(f, "%lld\r\n", (long long)x);
  else fprintf(f, "%.1f\r\n", x);
}

static void csv_summary(FILE *f, json_t *r) {
  fputs("section,key,subkey,measure,value\r\n", f);
  const char *k;
  json_t *v;
  size_t i;
  json_object_foreach(json_object_get(r, "cases"), k, v)
    csv_num(f, "cases", "", "", k, (double)json_integer_value(v), 1);
  json_array_foreach(json_object_get(r, "counts"), i, v) {
    csv_num(f, "count", js(v, "name"), "", "cases", (double)ji(v, "cases"), 1);
    const char *o;
    json_t *n;
    json_object_foreach(json_object_get(v, "outcomes"), o, n)
      csv_num(f, "count", js(v, "name"), o, "cases", (double)json_integer_value(n), 1);
  }
  json_object_foreach(json_object_get(r, "by_track"), k, v) {
    csv_num(f, "track", k, "", "cases", (double)ji(v, "cases"), 1);
    csv_num(f, "track", k, "", "open", (double)ji(v, "open"), 1);
    csv_num(f, "track", k, "", "closed", (double)ji(v, "closed"), 1);
  }
  json_object_foreach(json_object_get(r, "open_by_state"), k, v)
    csv_num(f, "open_state", k, "", "cases", (double)json_integer_value(v), 1);
  json_object_foreach(json_object_get(json_object_get(r, "closed"), "by_state"), k, v)
    csv_num(f, "closed", k, "", "cases", (double)json_integer_value(v), 1);
  json_array_foreach(json_object_get(r, "lead_time_days"), i, v) {
    csv_num(f, "lead_time_days", js(v, "track"), js(v, "lane"), "cases", (double)ji(v, "cases"), 1);
    csv_num(f, "lead_time_days", js(v, "track"), js(v, "lane"), "median", jr(v, "median"), 0);
    csv_num(f, "lead_time_days", js(v, "track"), js(v, "lane"), "p90", jr(v, "p90"), 0);
  }
  json_t *t = json_object_get(r, "terms");
  json_object_foreach(json_object_get(t, "by_agency"), k, v) {
    csv_num(f, "terms", k, "", "overdue", (double)ji(v, "overdue"), 1);
    csv_num(f, "terms", k, "", "due_today", (double)ji(v, "due_today"), 1);
    csv_num(f, "terms", k, "", "due_soon", (double)ji(v, "due_soon"), 1);
  }
  json_object_foreach(json_object_get(r, "by_location"), k, v) {
    static const char *const m[] = {"cases", "open", "closed", "overdue", "court_overdue",
                                    "due_today", "due_soon", "signals", "new_last_7_days"};
    for (int q = 0; q < 9; q++) csv_num(f, "location", k, "", m[q], (double)ji(v, m[q]), 1);
  }
  json_t *tr = json_object_get(r, "trends");
  json_array_foreach(json_object_get(tr, "new_per_week"), i, v)
    csv_num(f, "new_per_week", js(v, "week"), "", "cases", (double)ji(v, "cases"), 1);
  json_array_foreach(json_object_get(tr, "overdue_per_week"), i, v) {
    csv_num(f, "overdue_per_week", js(v, "week"), "", "overdue", (double)ji(v, "overdue"), 1);
    csv_num(f, "overdue_per_week", js(v, "week"), "", "court", (double)ji(v, "court"), 1);
  }
  json_array_foreach(json_object_get(tr, "lead_time_per_month"), i, v) {
    csv_num(f, "lead_time_per_month", js(v, "month"), "", "cases", (double)ji(v, "cases"), 1);
    csv_num(f, "lead_time_per_month", js(v, "month"), "", "median", jr(v, "median"), 0);
  }
  json_object_foreach(json_object_get(tr, "signals_per_source"), k, v)
    csv_num(f, "signals", k, "", "total", (double)ji(v, "total"), 1);
}

/* ------------------------------------------------------------------ HTML */

void html_text(FILE *f, const char *s) {
  for (; s && *s; s++) {
    switch (*s) {
    case '<': fputs("&lt;", f); break;
    case '>': fputs("&gt;", f); break;
    case '&': fputs("&amp;", f); break;
    case '"': fputs("&quot;", f); break;
    case '\'': fputs("&#39;", f); break;
    default: fputc(*s, f);
    }
  }
}

/* Percent-encodes s for a query string. */
static void url_text(FILE *f, const char *s) {
  for (; s && *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (isalnum(ch) || strchr("-_.~", ch)) fputc(ch, f);
    else fprintf(f, "%%%02X", ch);
  }
}

/* Width of a text in px at 12px sans-serif, on the wide side so nothing is cut. */
static int text_px(const char *s, double size) {
  int n = 0;
  for (; s && *s; s++)
    if (((unsigned char)*s & 0xC0) != 0x80) n++; /* UTF-8: count characters */
  return (int)ceil(n * size * 0.62) + 4;
}

#define MAXBARS 256

typedef struct series {
  const char *name, *color;
  double v[MAXBARS];
} series;

static void fig_start(FILE *f, const char *caption, const char *id, int w, int h) {
  fprintf(f, "<figure><figcaption>");
  html_text(f, caption);
  fprintf(f, "</figcaption>\n<svg class=\"chart\" id=\"%s\" xmlns=\"http://www.w3.org/2000/svg\" "
             "viewBox=\"0 0 %d %d\" width=\"100%%\" preserveAspectRatio=\"xMinYMin meet\" "
             "role=\"img\" aria-label=\"",
          id, w, h);
  html_text(f, caption);
  fprintf(f, "\">\n");
}

/* The legend on one line, each entry as wide as its text. */
static int legend(FILE *f, int x, int y, const series *s, int ns) {
  for (int j = 0; j < ns; j++) {
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>"
               "<text x=\"%d\" y=\"%d\" font-size=\"12\">",
            x, y, s[j].color, x + 16, y + 10);
    html_text(f, s[j].name);
    fprintf(f, "</text>\n");
    x += 16 + text_px(s[j].name, 12) + 18;
  }
  return x;
}

/* Horizontal bars: one row per label, one bar per series; the left margin fits the
 * longest label. */
static void svg_hbars(FILE *f, const char *caption, const char *id, const char **labels, int n,
                      const series *s, int ns, const char *unit) {
  double max = 0;
  int left = 60;
  for (int i = 0; i < n; i++) {
    int w = text_px(labels[i], 12) + 12;
    if (w > left) left = w;
    for (int j = 0; j < ns; j++)
      if (s[j].v[i] > max) max = s[j].v[i];
  }
  if (max <= 0) max = 1;
  int W = 1280, right = 60, bar = 16, gap = 10;
  int plot = W - left - right;
  if (plot < 300) {
    plot = 300;
    W = left + plot + right;
  }
  int rowh = bar * ns + gap, top = ns > 1 ? 30 : 8;
  int H = top + n * rowh + 8;
  fig_start(f, caption, id, W, H);
  if (ns > 1) legend(f, left, 6, s, ns);
  for (int i = 0; i < n; i++) {
    int y = top + i * rowh;
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"end\" "
               "dominant-baseline=\"middle\">", left - 8, y + (bar * ns) / 2);
    html_text(f, labels[i]);
    fprintf(f, "</text>\n");
    for (int j = 0; j < ns; j++) {
      double v = s[j].v[i];
      int w = (int)(v / max * plot + 0.5);
      fprintf(f, "<rect class=\"bar\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\">"
                 "<title>", left, y + j * bar, w, bar - 2, s[j].color);
      html_text(f, labels[i]);
      fprintf(f, ", %s: %g%s</title></rect><text x=\"%d\" y=\"%d\" font-size=\"11\" "
                 "dominant-baseline=\"middle\">%g</text>\n",
              s[j].name, v, unit, left + w + 4, y + j * bar + (bar - 2) / 2, v);
    }
  }
  fprintf(f, "</svg></figure>\n");
}

/* Columns over time (weeks, months): up to two stacked series; labels rotated so
 * none is cut, every k-th label where they would overlap. */
static void svg_columns(FILE *f, const char *caption, const char *id, const char **labels, int n,
                        const series *s, int ns, const char *unit) {
  double max = 1;
  int lab = 0;
  for (int i = 0; i < n; i++) {
    double tot = 0;
    for (int j = 0; j < ns; j++) tot += s[j].v[i];
    if (tot > max) max = tot;
    int w = text_px(labels[i], 11);
    if (w > lab) lab = w;
  }
  int W = 1280, left = 44, right = 12, top = ns > 1 ? 30 : 12, h = 200;
  int bottom = (int)(lab * 0.75) + 16; /* labels at -50 degrees: sin(50) of their length */
  int plot = W - left - right;
  double step = n ? (double)plot / n : plot;
  int every = 1;
  while (step * every < 16) every++;
  int H = top + h + bottom;
  fig_start(f, caption, id, W, H);
  if (ns > 1) legend(f, left, 6, s, ns);
  double tick = pow(10, floor(log10(max)));
  if (max / tick < 2) tick /= 5;
  else if (max / tick < 5) tick /= 2;
  for (double y = 0; y <= max + 1e-9; y += tick) {
    int py = top + h - (int)(y / max * h + 0.5);
    fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#e5e8e8\"/>"
               "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\" "
               "dominant-baseline=\"middle\">%g</text>\n",
            left, py, W - right, py, left - 6, py, y);
  }
  for (int i = 0; i < n; i++) {
    double x = left + i * step;
    double base = 0;
    for (int j = 0; j < ns; j++) {
      double v = s[j].v[i];
      int y0 = top + h - (int)((base + v) / max * h + 0.5);
      int bh = (int)((base + v) / max * h + 0.5) - (int)(base / max * h + 0.5);
      fprintf(f, "<rect class=\"bar\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" "
                 "fill=\"%s\"><title>", x + 1, y0, step > 3 ? step - 2 : step, bh, s[j].color);
      html_text(f, labels[i]);
      fprintf(f, ", %s: %g%s</title></rect>\n", s[j].name, v, unit);
      base += v;
    }
    if (i % every == 0) {
      double cx = x + step / 2;
      fprintf(f, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"end\" "
                 "transform=\"rotate(-50 %.1f %d)\">",
              cx, top + h + 12, cx, top + h + 12);
      html_text(f, labels[i]);
      fprintf(f, "</text>\n");
    }
  }
  fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888\"/>\n", left, top + h,
          W - right, top + h);
  fprintf(f, "</svg></figure>\n");
}

const char overview_css[] =
    ":root{--bg:#fff;--fg:#1f2d3d;--muted:#5f6b7a;--line:#e3e7eb;--soft:#f4f6f8;"
    "--over:#c0392b;--today:#d35400;--soon:#b7950b;--court:#6c3483}\n"
    "*{box-sizing:border-box}\n"
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;"
    "margin:0;color:var(--fg);background:var(--bg);font-size:15px;line-height:1.4}\n"
    "header{background:#1f3a5f;color:#fff;padding:14px 28px;position:relative}\n"
    "header .who{position:absolute;right:28px;top:14px;font-size:.9em;color:#cdd9e6}\n"
    "header .who button{font-size:.85em;margin-left:6px}\n"
    "header h1{margin:0;font-size:1.35em} header p{margin:.2em 0 0;color:#cdd9e6;font-size:.9em}\n"
    "header a{color:#fff}\n"
    "main{padding:8px 28px 40px;max-width:1500px}\n"
    "h2{font-size:1.15em;margin:1.6em 0 .5em;padding-bottom:.2em;border-bottom:2px solid var(--line)}\n"
    ".kpis{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}\n"
    ".kpi{padding:10px 16px;background:var(--soft);border-radius:8px;min-width:130px}\n"
    ".kpi b{display:block;font-size:1.7em} .kpi.over b{color:var(--over)}\n"
    ".kpi small{color:var(--muted)}\n"
    "table{border-collapse:collapse;width:100%;font-size:.92em} table.compact{width:auto}\n"
    "th,td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:left;"
    "vertical-align:top;white-space:nowrap}\n"
    "td.wrap{white-space:normal} td.n,th.n{text-align:right}\n"
    "th{background:var(--soft);position:sticky;top:0} th a{color:inherit}\n"
    "th.sorted{background:#dde6f0}\n"
    "tr.overdue td:first-child{border-left:4px solid var(--over)}\n"
    "tr.due_today td:first-child{border-left:4px solid var(--today)}\n"
    "tr.due_soon td:first-child{border-left:4px solid var(--soon)}\n"
    ".badge{display:inline-block;padding:0 7px;border-radius:9px;font-size:.85em;color:#fff;"
    "background:#7f8c8d}\n"
    ".badge.overdue{background:var(--over)} .badge.due_today{background:var(--today)}\n"
    ".badge.due_soon{background:var(--soon)} .badge.court{background:var(--court)}\n"
    "form.filters{display:flex;flex-wrap:wrap;gap:10px 18px;align-items:end;margin:8px 0 12px}\n"
    "form.filters label{display:flex;flex-direction:column;font-size:.85em;color:var(--muted)}\n"
    "select,input,textarea,button{font:inherit;padding:4px 6px}\n"
    ".scroll.short{max-height:340px}\n"
    ".scroll{max-height:640px;overflow:auto;border:1px solid var(--line);border-radius:6px}\n"
    ".cols{display:block}\n"
    "figure{margin:.6em 0 1.2em} figcaption{font-weight:600;margin-bottom:.3em}\n"
    "svg text{font-family:system-ui,'DejaVu Sans',sans-serif;fill:#1f2d3d}\n"
    ".notice{padding:10px 14px;border-radius:6px;margin:14px 0;background:#eafaf1;"
    "border:1px solid #27ae60} .notice.bad{background:#fdedec;border-color:var(--over)}\n"
    ".muted{color:var(--muted)} footer{color:var(--muted);font-size:.85em;margin-top:3em}\n";

/* Sorting and filtering of the static file, where there is no server to ask. */
static const char script[] =
    "(function(){\n"
    "if(location.protocol!=='file:')return;\n"
    "var f=document.getElementById('filters'),t=document.getElementById('cases');\n"
    "if(!f||!t)return;\n"
    "var body=t.tBodies[0];\n"
    "function apply(){var keep=0;Array.prototype.forEach.call(body.rows,function(r){\n"
    " var ok=['location','agency','procesregisseur','track'].every(function(k){\n"
    "  var v=f.elements[k]?f.elements[k].value:'';if(!v)return true;\n"
    "  if(k==='agency')return ('/'+r.dataset.agency+'/').indexOf('/'+v+'/')>=0;\n"
    "  return r.dataset[k]===v;});\n"
    " r.hidden=!ok;if(ok)keep++;});\n"
    " document.getElementById('shown').textContent=keep;\n"
    " var any=['location','agency','procesregisseur','track'].some(function(k){return f.elements[k]&&f.elements[k].value;});\n"
    " var sc=document.getElementById('k-scope');if(sc)sc.hidden=!any;\n"
    " var s=f.elements.sort.value,rows=Array.prototype.slice.call(body.rows);\n"
    " rows.sort(function(a,b){var x=a.dataset['s_'+s],y=b.dataset['s_'+s];\n"
    "  return x<y?-1:x>y?1:(a.dataset.s_urgency<b.dataset.s_urgency?-1:1);});\n"
    " rows.forEach(function(r){body.appendChild(r);});}\n"
    "f.addEventListener('change',apply);f.addEventListener('submit',function(e){e.preventDefault();apply();});\n"
    "Array.prototype.forEach.call(t.tHead.querySelectorAll('a[data-sort]'),function(a){\n"
    " a.addEventListener('click',function(e){e.preventDefault();f.elements.sort.value=a.dataset.sort;apply();});});\n"
    "apply();})();\n";

static void option_list(FILE *f, const char *name, const char *label, json_t *values,
                        const char *selected, json_t *words) {
  fprintf(f, "<label>%s<select name=\"%s\" id=\"f-%s\"><option value=\"\">all</option>", label,
          name, name);
  /* Sorted for the eye. */
  size_t n = json_object_size(values), i = 0;
  const char **keys = n ? malloc(n * sizeof *keys) : NULL;
  const char *k;
  json_t *v;
  if (keys) {
    json_object_foreach(values, k, v) keys[i++] = k;
    for (size_t a = 1; a < n; a++)
      for (size_t b = a; b > 0 && strcmp(keys[b - 1], keys[b]) > 0; b--) {
        const char *t = keys[b];
        keys[b] = keys[b - 1];
        keys[b - 1] = t;
      }
    for (i = 0; i < n; i++) {
      fprintf(f, "<option value=\"");
      html_text(f, keys[i]);
      fprintf(f, "\"%s>", selected && !strcmp(selected, keys[i]) ? " selected" : "");
      /* Shown in words where the report has them (the location's label). */
      const char *w = words ? js(json_object_get(words, keys[i]), "label") : "";
      html_text(f, *w ? w : keys[i]);
      fprintf(f, " (%lld)</option>", (long long)json_integer_value(json_object_get(values, keys[i])));
    }
    free(keys);
  }
  fprintf(f, "</select></label>\n");
}

/* A sortable column head: a link to the same page sorted by `key`. */
static void sort_head(FILE *f, const overview_page *p, const json_t *rep, const char *key,
                      const char *label, const char *cls) {
  const char *cur = js(rep, "sort");
  fprintf(f, "<th class=\"%s%s\"><a href=\"?", cls, !strcmp(cur, key) ? " sorted" : "");
  const json_t *flt = json_object_get(rep, "filter");
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)flt, k, v) {
    fprintf(f, "%s=", k);
    url_text(f, json_string_value(v));
    fprintf(f, "&amp;");
  }
  fprintf(f, "sort=%s\" data-sort=\"%s\">%s</a></th>", key, key, label);
  (void)p;
}

/* A sortable value for the static page's script: a string that sorts as the
 * server sorts (urgency as a zero-padded rank). */
static void sort_attr(FILE *f, const char *key, const char *value) {
  fprintf(f, " data-s_%s=\"", key);
  html_text(f, value);
  fputc('"', f);
}

static void html_cases(FILE *f, json_t *r, const overview_page *p) {
  json_t *oc = json_object_get(r, "open_cases"), *flt = json_object_get(r, "filter");
  json_t *choices = json_object_get(r, "choices");
  int has_track = json_is_object(json_object_get(r, "track"));
  fprintf(f, "<section id=\"s-open\"><h2 id=\"open\">Open cases: <span id=\"shown\">%zu</span> shown</h2>\n",
          json_array_size(oc));
  fprintf(f, "<form class=\"filters\" id=\"filters\" method=\"get\" action=\"%s\">\n",
          p && p->live ? "/" : "");
  option_list(f, "location", "location", json_object_get(choices, "location"), js(flt, "location"),
              json_object_get(r, "by_location"));
  option_list(f, "agency", "must act", json_object_get(choices, "agency"), js(flt, "agency"), NULL);
  option_list(f, "procesregisseur", "procesregisseur", json_object_get(choices, "procesregisseur"),
              js(flt, "procesregisseur"), NULL);
  if (has_track)
    option_list(f, "track", js(json_object_get(r, "track"), "label"),
                json_object_get(choices, "track"), js(flt, "track"), NULL);
  static const char *const sorts[][2] = {{"urgency", "urgency"}, {"case", "case"},
                                         {"location", "location"},
                                         {"procesregisseur", "procesregisseur"},
                                         {"state", "state"}, {"days", "days open"},
                                         {"agency", "must act"}, {"track", "track"}};
  fprintf(f, "<label>sort by<select name=\"sort\" id=\"f-sort\">");
  for (size_t i = 0; i < sizeof sorts / sizeof sorts[0]; i++)
    fprintf(f, "<option value=\"%s\"%s>%s</option>", sorts[i][0],
            !strcmp(js(r, "sort"), sorts[i][0]) ? " selected" : "", sorts[i][1]);
  fprintf(f, "</select></label>\n<button type=\"submit\" id=\"f-apply\">apply</button>");
  if (p && p->live) fprintf(f, " <a href=\"/\">clear</a>");
  fprintf(f, "</form>\n<div class=\"scroll\"><table id=\"cases\"><thead><tr>");
  sort_head(f, p, r, "case", "case", "");
  sort_head(f, p, r, "location", "location", "");
  sort_head(f, p, r, "procesregisseur", "procesregisseur", "");
  sort_head(f, p, r, "state", "current state", "");
  sort_head(f, p, r, "days", "days", "n");
  sort_head(f, p, r, "urgency", "next term", "");
  fprintf(f, "<th>last day</th><th>status</th>");
  sort_head(f, p, r, "agency", "must act", "");
  if (has_track) sort_head(f, p, r, "track", js(json_object_get(r, "track"), "label"), "");
  fprintf(f, "<th class=\"n\">signals</th></tr></thead><tbody>\n");
  size_t i;
  json_t *v;
  json_array_foreach(oc, i, v) {
    json_t *t = json_object_get(v, "next_term");
    const char *st = json_is_object(t) ? js(t, "status") : "none";
    fprintf(f, "<tr class=\"%s\" data-case=\"", st);
    html_text(f, js(v, "case"));
    fprintf(f, "\" data-location=\"");
    html_text(f, js(v, "location"));
    fprintf(f, "\" data-agency=\"");
    html_text(f, js(v, "must_act"));
    fprintf(f, "\" data-procesregisseur=\"");
    html_text(f, js(v, "procesregisseur"));
    fprintf(f, "\" data-track=\"");
    html_text(f, js(v, "track"));
    fputc('"', f);
    char key[64];
    snprintf(key, sizeof key, "%06zu", i);
    if (!strcmp(js(r, "sort"), "urgency")) sort_attr(f, "urgency", key);
    else {
      /* The server's urgency order is not known here: rank by status and due time. */
      long long due = json_is_object(t) ? ji(t, "due") : 9999999999LL;
      int rank = !strcmp(st, "overdue") ? 0 : !strcmp(st, "due_today") ? 1 : !strcmp(st, "due_soon") ? 2 : !strcmp(st, "running") ? 3 : 4;
      snprintf(key, sizeof key, "%d%012lld", rank, due);
      sort_attr(f, "urgency", key);
    }
    sort_attr(f, "case", js(v, "case"));
    sort_attr(f, "location", js(v, "location"));
    sort_attr(f, "procesregisseur", *js(v, "procesregisseur") ? js(v, "procesregisseur") : "\x7f");
    sort_attr(f, "state", js(v, "state_label"));
    snprintf(key, sizeof key, "%08lld", 99999999LL - ji(v, "days_open"));
    sort_attr(f, "days", key);
    sort_attr(f, "agency", js(v, "must_act"));
    sort_attr(f, "track", js(v, "track"));
    fprintf(f, "><td>");
    html_text(f, js(v, "case"));
    fprintf(f, "</td><td>");
    html_text(f, *js(v, "location_label") ? js(v, "location_label") : js(v, "location"));
    fprintf(f, "</td><td>");
    html_text(f, *js(v, "procesregisseur") ? js(v, "procesregisseur") : "-");
    fprintf(f, "</td><td class=\"wrap\" title=\"");
    html_text(f, js(v, "state"));
    fprintf(f, "\">");
    html_text(f, js(v, "state_label"));
    fprintf(f, "</td><td class=\"n\">%lld</td>", ji(v, "days_open"));
    if (json_is_object(t)) {
      char ld[32], stt[64];
      last_day_text(t, ld, sizeof ld);
      status_text(t, stt, sizeof stt);
      fprintf(f, "<td title=\"");
      html_text(f, js(t, "source"));
      fprintf(f, "\">");
      html_text(f, js(t, "name"));
      fprintf(f, "</td><td>%s</td><td><span class=\"badge %s\">%s</span>%s</td>", ld, st, stt,
              json_is_true(json_object_get(t, "court")) ? " <span class=\"badge court\">court</span>" : "");
    } else {
      fprintf(f, "<td class=\"muted\">no term</td><td></td><td></td>");
    }
    fprintf(f, "<td>");
    html_text(f, js(v, "must_act"));
    fprintf(f, "</td>");
    if (has_track) {
      char tb[128];
      track_text(r, js(v, "track"), tb, sizeof tb);
      fprintf(f, "<td>");
      html_text(f, tb);
      fprintf(f, "</td>");
    }
    fprintf(f, "<td class=\"n\">%lld</td></tr>\n", ji(v, "signals"));
  }
  fprintf(f, "</tbody></table></div></section>\n");
}

static void html_terms(FILE *f, json_t *r) {
  json_t *t = json_object_get(r, "terms"), *items = json_object_get(t, "items");
  fprintf(f, "<section id=\"s-terms\"><h2 id=\"terms\">Terms by urgency: overdue, due today, due within %lld days</h2>\n",
          ji(t, "horizon_days"));
  /* The sentence counts what the table lists: the filter's selection. */
  json_t *sel = json_object_get(r, "selection");
  int filtered = json_is_true(json_object_get(sel, "filtered"));
  const json_t *c = filtered ? sel : t;
  fprintf(f, "<p id=\"terms-summary\">%lld overdue, of which %lld are the court's to act on (marked <span "
             "class=\"badge court\">court</span>: the location cannot act on them); %lld due "
             "today; %lld due within %lld days%s.</p>\n",
          ji(c, "overdue"), ji(c, "court_overdue"), ji(c, "due_today"), ji(c, "due_soon"),
          ji(t, "horizon_days"), filtered ? ", for the filter" : "");
  fprintf(f, "<div class=\"scroll\"><table id=\"terms-table\"><thead><tr><th>status</th>"
             "<th>case</th><th>term</th><th>last day</th><th>must act</th><th>location</th>"
             "<th>procesregisseur</th><th>legal source</th></tr></thead><tbody>\n");
  size_t i;
  json_t *v;
  json_array_foreach(items, i, v) {
    char ld[32], stt[64];
    last_day_text(v, ld, sizeof ld);
    status_text(v, stt, sizeof stt);
    const char *st = js(v, "status");
    fprintf(f, "<tr class=\"%s\"><td><span class=\"badge %s\">%s</span>%s</td><td>", st, st, stt,
            json_is_true(json_object_get(v, "court")) ? " <span class=\"badge court\">court</span>" : "");
    html_text(f, js(v, "case"));
    fprintf(f, "</td><td>");
    html_text(f, js(v, "deadline"));
    fprintf(f, "</td><td>%s</td><td>", ld);
    html_text(f, js(v, "agency"));
    fprintf(f, "</td><td title=\"");
    html_text(f, js(v, "location"));
    fprintf(f, "\">");
    /* In words, as the open cases' list names it. */
    const char *ll = js(json_object_get(json_object_get(r, "by_location"), js(v, "location")), "label");
    html_text(f, *ll ? ll : js(v, "location"));
    fprintf(f, "</td><td>");
    html_text(f, *js(v, "procesregisseur") ? js(v, "procesregisseur") : "-");
    fprintf(f, "</td><td class=\"wrap\">");
    html_text(f, js(v, "source"));
    fprintf(f, "</td></tr>\n");
  }
  fprintf(f, "</tbody></table></div></section>\n");
}

static void html_locations(FILE *f, json_t *r) {
  json_t *locs = json_object_get(r, "by_location");
  fprintf(f, "<section id=\"s-locations\"><h2 id=\"locations\">Per location</h2>\n<table id=\"locations-table\" class=\"compact\"><thead><tr>"
             "<th>location</th><th class=\"n\">cases</th><th class=\"n\">open</th>"
             "<th class=\"n\">closed</th><th class=\"n\">terms overdue</th>"
             "<th class=\"n\">of which court</th><th class=\"n\">due today</th>"
             "<th class=\"n\">due soon</th><th class=\"n\">new, last 7 days</th>"
             "<th class=\"n\">signals</th><th class=\"n\">median lead time (d)</th></tr></thead>"
             "<tbody>\n");
  const char *k;
  json_t *v;
  const char *labels[MAXBARS];
  static series s[3];
  memset(s, 0, sizeof s);
  s[0].name = "open";
  s[0].color = "#f0a030";
  s[1].name = "closed";
  s[1].color = "#27ae60";
  s[2].name = "terms overdue";
  s[2].color = "#c0392b";
  int n = 0;
  json_object_foreach(locs, k, v) {
    json_t *lt = json_object_get(v, "lead_time_days");
    fprintf(f, "<tr><td>");
    html_text(f, *js(v, "label") ? js(v, "label") : k);
    fprintf(f, "</td><td class=\"n\">%lld</td><td class=\"n\">%lld</td><td class=\"n\">%lld</td>"
               "<td class=\"n\">%lld</td><td class=\"n\">%lld</td><td class=\"n\">%lld</td>"
               "<td class=\"n\">%lld</td><td class=\"n\">%lld</td><td class=\"n\">%lld</td>",
            ji(v, "cases"), ji(v, "open"), ji(v, "closed"), ji(v, "overdue"),
            ji(v, "court_overdue"), ji(v, "due_today"), ji(v, "due_soon"),
            ji(v, "new_last_7_days"), ji(v, "signals"));
    if (json_is_object(lt)) fprintf(f, "<td class=\"n\">%.1f</td></tr>\n", jr(lt, "median"));
    else fprintf(f, "<td class=\"n\">-</td></tr>\n");
    if (n < MAXBARS) {
      labels[n] = *js(v, "label") ? js(v, "label") : k;
      s[0].v[n] = (double)ji(v, "open");
      s[1].v[n] = (double)ji(v, "closed");
      s[2].v[n] = (double)ji(v, "overdue");
      n++;
    }
  }
  fprintf(f, "</tbody></table>\n");
  svg_hbars(f, "Cases and overdue terms per location", "chart-locations", labels, n, s, 3,
            "");
  fprintf(f, "</section>\n");
}

static void html_trends(FILE *f, json_t *r) {
  json_t *tr = json_object_get(r, "trends");
  static series s[2];
  const char *labels[MAXBARS];
  char lb[MAXBARS][16];
  size_t i;
  json_t *v;
  int n;
  fprintf(f, "<section id=\"s-trends\"><h2 id=\"trends\">Trends</h2>\n<div class=\"cols\">\n<div>");
  /* New cases per week: the last MAXBARS weeks. */
  json_t *nw = json_object_get(tr, "new_per_week");
  size_t from = json_array_size(nw) > MAXBARS ? json_array_size(nw) - MAXBARS : 0;
  memset(s, 0, sizeof s);
  s[0].name = "new cases";
  s[0].color = "#2e86c1";
  n = 0;
  for (i = from; i < json_array_size(nw); i++) {
    v = json_array_get(nw, i);
    snprintf(lb[n], sizeof lb[n], "%s", js(v, "week"));
    labels[n] = lb[n];
    s[0].v[n++] = (double)ji(v, "cases");
  }
  svg_columns(f, "New cases per week", "chart-weeks", labels, n, s, 1, " cases");
  fprintf(f, "</div><div>");
  json_t *ow = json_object_get(tr, "overdue_per_week");
  from = json_array_size(ow) > MAXBARS ? json_array_size(ow) - MAXBARS : 0;
  memset(s, 0, sizeof s);
  s[0].name = "overdue, the court's";
  s[0].color = "#6c3483";
  s[1].name = "overdue, others";
  s[1].color = "#c0392b";
  n = 0;
  for (i = from; i < json_array_size(ow); i++) {
    v = json_array_get(ow, i);
    snprintf(lb[n], sizeof lb[n], "%s", js(v, "week"));
    labels[n] = lb[n];
    s[0].v[n] = (double)ji(v, "court");
    s[1].v[n++] = (double)(ji(v, "overdue") - ji(v, "court"));
  }
  svg_columns(f, "Terms overdue at the end of each week", "chart-overdue", labels, n, s, 2,
              " terms");
  fprintf(f, "</div><div>");
  json_t *lm = json_object_get(tr, "lead_time_per_month");
  memset(s, 0, sizeof s);
  s[0].name = "median";
  s[0].color = "#2e86c1";
  s[1].name = "90th percentile";
  s[1].color = "#c0392b";
  n = 0;
  json_array_foreach(lm, i, v) {
    if (n == MAXBARS) break;
    snprintf(lb[n], sizeof lb[n], "%s", js(v, "month"));
    labels[n] = lb[n];
    s[0].v[n] = jr(v, "median");
    s[1].v[n++] = jr(v, "p90");
  }
  svg_hbars(f, "Lead time of the cases closed per month (days)", "chart-leadmonth", labels, n,
            s, 2, " days");
  fprintf(f, "</div><div>");
  json_t *sig = json_object_get(tr, "signals_per_source");
  memset(s, 0, sizeof s);
  s[0].name = "signals";
  s[0].color = "#16a085";
  n = 0;
  const char *k;
  json_object_foreach(sig, k, v) {
    if (n == MAXBARS) break;
    labels[n] = k;
    s[0].v[n++] = (double)ji(v, "total");
  }
  svg_hbars(f, "Signals per source (the role that sent them)", "chart-signals", labels, n, s, 1,
            " signals");
  fprintf(f, "</div></div></section>\n");
}

static void html_signals(FILE *f, json_t *r) {
  json_t *recent = json_object_get(json_object_get(r, "trends"), "recent_signals");
  fprintf(f, "<section id=\"s-signals\"><h2 id=\"signals\">Recent signals</h2>\n");
  if (!json_array_size(recent)) {
    fprintf(f, "<p class=\"muted\" id=\"no-signals\">No signals yet.</p></section>\n");
    return;
  }
  fprintf(f, "<div class=\"scroll short\"><table id=\"signals-table\"><thead><tr><th>date</th><th>case</th><th>signal</th>"
             "<th>source</th><th>by</th><th>note</th></tr></thead><tbody>\n");
  for (size_t i = json_array_size(recent); i-- > 0;) {
    json_t *v = json_array_get(recent, i), *p = json_object_get(v, "payload");
    char when[32];
    format_local(json_integer_value(json_object_get(v, "time")), when, sizeof when);
    fprintf(f, "<tr><td>%s</td><td>", when);
    html_text(f, js(v, "case"));
    fprintf(f, "</td><td>");
    html_text(f, js(v, "event"));
    fprintf(f, "</td><td>");
    html_text(f, js(v, "source"));
    fprintf(f, "</td><td>");
    html_text(f, js(v, "actor"));
    fprintf(f, "</td><td class=\"wrap\">");
    const char *note = js(p, "toelichting");
    if (!*note) note = js(p, "soort");
    html_text(f, note);
    fprintf(f, "</td></tr>\n");
  }
  fprintf(f, "</tbody></table></div></section>\n");
}

static void html_caseload(FILE *f, json_t *r) {
  static series s[2];
  const char *labels[MAXBARS];
  char lb[MAXBARS][128];
  const char *k;
  json_t *v;
  size_t i;
  int n;
  fprintf(f, "<section id=\"s-caseload\"><h2 id=\"caseload\">Caseload</h2>\n<div class=\"kpis\">");
  json_array_foreach(json_object_get(r, "counts"), i, v) {
    fprintf(f, "<div class=\"kpi\" id=\"count-");
    html_text(f, js(v, "name"));
    fprintf(f, "\">");
    html_text(f, js(v, "label"));
    fprintf(f, "<b>%lld</b>", ji(v, "cases"));
    json_t *oc = json_object_get(v, "outcomes");
    if (oc) {
      fprintf(f, "<small>");
      int first = 1;
      json_t *x;
      json_object_foreach(oc, k, x) {
        char w[128];
        words(k, w, sizeof w);
        fprintf(f, "%s", first ? "" : ", ");
        html_text(f, w);
        fprintf(f, " %lld", (long long)json_integer_value(x));
        first = 0;
      }
      fprintf(f, "</small>");
    }
    fprintf(f, "</div>");
  }
  fprintf(f, "</div>\n<div class=\"cols\"><div>");
  memset(s, 0, sizeof s);
  s[0].name = "open cases";
  s[0].color = "#f0a030";
  n = 0;
  json_object_foreach(json_object_get(r, "open_by_state"), k, v) {
    if (n == MAXBARS) break;
    labels[n] = label_of(r, k);
    s[0].v[n++] = (double)json_integer_value(v);
  }
  svg_hbars(f, "Open cases per current state", "chart-states", labels, n, s, 1, " cases");
  fprintf(f, "</div><div>");
  memset(s, 0, sizeof s);
  s[0].name = "closed cases";
  s[0].color = "#27ae60";
  n = 0;
  json_object_foreach(json_object_get(json_object_get(r, "closed"), "by_state"), k, v) {
    if (n == MAXBARS) break;
    labels[n] = label_of(r, k);
    s[0].v[n++] = (double)json_integer_value(v);
  }
  svg_hbars(f, "Closed cases by final state", "chart-closed", labels, n, s, 1, " cases");
  fprintf(f, "</div>");
  if (json_object_size(json_object_get(r, "by_track"))) {
    fprintf(f, "<div>");
    memset(s, 0, sizeof s);
    s[0].name = "open";
    s[0].color = "#f0a030";
    s[1].name = "closed";
    s[1].color = "#27ae60";
    n = 0;
    json_object_foreach(json_object_get(r, "by_track"), k, v) {
      if (n == MAXBARS) break;
      track_text(r, k, lb[n], sizeof lb[n]);
      labels[n] = lb[n];
      s[0].v[n] = (double)ji(v, "open");
      s[1].v[n++] = (double)ji(v, "closed");
    }
    svg_hbars(f, "Cases per track, open and closed", "chart-tracks", labels, n, s, 2, " cases");
    fprintf(f, "</div>");
  }
  fprintf(f, "<div>");
  memset(s, 0, sizeof s);
  s[0].name = "median";
  s[0].color = "#2e86c1";
  s[1].name = "90th percentile";
  s[1].color = "#c0392b";
  n = 0;
  json_array_foreach(json_object_get(r, "lead_time_days"), i, v) {
    if (n == MAXBARS) break;
    char tb[64];
    track_text(r, js(v, "track"), tb, sizeof tb);
    snprintf(lb[n], sizeof lb[n], "%s, %s", tb, js(v, "lane"));
    labels[n] = lb[n];
    s[0].v[n] = jr(v, "median");
    s[1].v[n++] = jr(v, "p90");
  }
  svg_hbars(f, "Lead time, start to end (days, closed cases)", "chart-leadtime", labels, n, s,
            2, " days");
  fprintf(f, "</div></div>\n<table id=\"leadtime-table\" class=\"compact\"><thead><tr><th>track</th><th>lane</th>"
             "<th class=\"n\">cases</th><th class=\"n\">median</th><th class=\"n\">p90</th>"
             "<th class=\"n\">mean</th></tr></thead><tbody>\n");
  json_array_foreach(json_object_get(r, "lead_time_days"), i, v) {
    char tb[64];
    track_text(r, js(v, "track"), tb, sizeof tb);
    fprintf(f, "<tr><td>");
    html_text(f, tb);
    fprintf(f, "</td><td>");
    html_text(f, js(v, "lane"));
    fprintf(f, "</td><td class=\"n\">%lld</td><td class=\"n\">%.1f</td><td class=\"n\">%.1f</td>"
               "<td class=\"n\">%.1f</td></tr>\n",
            ji(v, "cases"), jr(v, "median"), jr(v, "p90"), jr(v, "mean"));
  }
  fprintf(f, "</tbody></table></section>\n");
}

void render_overview_html(FILE *f, json_t *r, const overview_page *p) {
  json_t *cases = json_object_get(r, "cases"), *t = json_object_get(r, "terms");
  const char *date = js(r, "date");
  fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
             "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
             "<title>Caseload overview %s</title>\n<style>\n%s</style></head><body>\n",
          date, overview_css);
  fprintf(f, "<header><h1>Caseload overview at %s</h1><p>", date);
  if (p && p->live) {
    char now[32];
    format_local(p->generated, now, sizeof now);
    fprintf(f, "Live from the store: current at every load (this page: %s). "
               "<a href=\"/api/report\">JSON</a> · <a href=\"/cases.csv\">cases CSV</a> · "
               "<a href=\"/terms.csv\">terms CSV</a>",
            now);
    if (p->can_signal) fprintf(f, " · <a href=\"/signal\" id=\"signal-link\">submit a signal</a>");
  } else {
    fprintf(f, "Computed from the journal of the store by <code>casectl report</code>; "
               "cases and terms as they were on that date.");
  }
  fprintf(f, "</p>");
  if (p && p->live && p->who) {
    fprintf(f, "<div class=\"who\">signed in as ");
    html_text(f, p->who);
    fprintf(f, "<form method=\"post\" action=\"/logout\" style=\"display:inline\">"
               "<button type=\"submit\" id=\"logout\">sign out</button></form></div>");
  }
  fprintf(f, "</header>\n<main>\n");
  if (p && p->notice) {
    fprintf(f, "<div class=\"notice%s\" id=\"notice\" role=\"status\">", p->notice_bad ? " bad" : "");
    html_text(f, p->notice);
    fprintf(f, "</div>\n");
  }
  long long new7 = 0;
  const char *k;
  json_t *v;
  json_object_foreach(json_object_get(r, "by_location"), k, v) new7 += ji(v, "new_last_7_days");
  /* The key figures follow the filter (the report's "selection"); each says what it is
   * of the whole caseload.  The static file filters in its script, which says so. */
  json_t *sel = json_object_get(r, "selection");
  if (json_is_true(json_object_get(sel, "filtered"))) {
    fprintf(f, "<p id=\"k-scope\" class=\"muted\">Key figures for the filter:");
    json_object_foreach(json_object_get(r, "filter"), k, v) {
      fprintf(f, " %s ", !strcmp(k, "agency") ? "must act" : k);
      fprintf(f, "<b>");
      html_text(f, json_string_value(v));
      fprintf(f, "</b>");
    }
    fprintf(f, "%s; the whole caseload in small print.</p>\n",
            json_object_get(json_object_get(r, "filter"), "agency")
                ? " (closed cases: nobody must act on them, so none)" : "");
    fprintf(f, "<div class=\"kpis\">"
               "<div class=\"kpi\">open cases<b id=\"k-open\">%lld</b><small>of %lld open</small></div>"
               "<div class=\"kpi over\">terms overdue<b id=\"k-overdue\">%lld</b>"
               "<small>%lld of them the court's; %lld in all</small></div>"
               "<div class=\"kpi\">due today<b id=\"k-today\">%lld</b><small>of %lld</small></div>"
               "<div class=\"kpi\">due within %lld days<b id=\"k-soon\">%lld</b><small>of %lld</small></div>"
               "<div class=\"kpi\">new, last 7 days<b id=\"k-new\">%lld</b><small>of %lld</small></div>"
               "<div class=\"kpi\">closed<b id=\"k-closed\">%lld</b><small>of %lld</small></div></div>\n",
            ji(sel, "open"), ji(cases, "open"), ji(sel, "overdue"), ji(sel, "court_overdue"),
            ji(t, "overdue"), ji(sel, "due_today"), ji(t, "due_today"), ji(t, "horizon_days"),
            ji(sel, "due_soon"), ji(t, "due_soon"), ji(sel, "new_last_7_days"), new7,
            ji(sel, "closed"), ji(cases, "closed"));
  } else {
    fprintf(f, "<p id=\"k-scope\" class=\"muted\" hidden>The key figures count the whole "
               "caseload; the list below is filtered.</p>\n");
    fprintf(f, "<div class=\"kpis\">"
               "<div class=\"kpi\">open cases<b id=\"k-open\">%lld</b><small>of %lld</small></div>"
               "<div class=\"kpi over\">terms overdue<b id=\"k-overdue\">%lld</b>"
               "<small>%lld of them the court's</small></div>"
               "<div class=\"kpi\">due today<b id=\"k-today\">%lld</b></div>"
               "<div class=\"kpi\">due within %lld days<b id=\"k-soon\">%lld</b></div>"
               "<div class=\"kpi\">new, last 7 days<b id=\"k-new\">%lld</b></div>"
               "<div class=\"kpi\">closed<b id=\"k-closed\">%lld</b></div></div>\n",
            ji(cases, "open"), ji(cases, "total"), ji(t, "overdue"), ji(t, "court_overdue"),
            ji(t, "due_today"), ji(t, "horizon_days"), ji(t, "due_soon"), new7,
            ji(cases, "closed"));
  }
  html_cases(f, r, p);
  html_terms(f, r);
  html_locations(f, r);
  html_trends(f, r);
  html_signals(f, r);
  html_caseload(f, r);
  size_t np = json_array_size(json_object_get(r, "problems"));
  if (np) {
    fprintf(f, "<h2>Problems</h2><p>%zu case(s) whose journal does not replay; their terms "
               "may be missing here. Run <code>casectl verify</code>.</p><ul>", np);
    size_t i;
    json_array_foreach(json_object_get(r, "problems"), i, v) {
      fprintf(f, "<li>");
      html_text(f, js(v, "case"));
      fprintf(f, ": ");
      html_text(f, js(v, "problem"));
      fprintf(f, "</li>");
    }
    fprintf(f, "</ul>\n");
  }
  fprintf(f, "<footer>libcase %s · workflows:", case_libversion());
  json_object_foreach(json_object_get(r, "workflows"), k, v) {
    fprintf(f, " ");
    html_text(f, k);
    fprintf(f, " (%lld)", (long long)json_integer_value(v));
  }
  fprintf(f, "</footer>\n</main>\n");
  /* The served page sorts and filters on the server (and its Content-Security-Policy
   * allows no script); the file opened from disk does it here. */
  if (!(p && p->live)) fprintf(f, "<script>\n%s</script>\n", script);
  fprintf(f, "</body></html>\n");
}

int render_overview(FILE *out, json_t *rep, const char *format, const char *table) {
  if (!strcmp(format, "json")) {
    json_dumpf(rep, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    fputc('\n', out);
  } else if (!strcmp(format, "csv")) {
    if (!table || !strcmp(table, "cases")) csv_cases(out, rep);
    else if (!strcmp(table, "terms")) csv_terms(out, rep);
    else csv_summary(out, rep);
  } else if (!strcmp(format, "html")) {
    render_overview_html(out, rep, NULL);
  } else {
    text_overview(out, rep);
  }
  return ferror(out) ? -1 : 0;
}
