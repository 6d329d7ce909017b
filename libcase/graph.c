/*
 * graph.c — a definition as a diagram: Graphviz DOT or Mermaid stateDiagram-v2,
 * optionally with one case's configuration highlighted (case_def_graph).
 *
 * Compound and parallel states become clusters (DOT) or composite states
 * (Mermaid); a parallel state's regions are dashed clusters (DOT) or separated
 * by "--" (Mermaid).  An edge to or from a compound state is drawn from its
 * initial dot (DOT, with lhead/ltail on the cluster) or from the composite
 * state itself (Mermaid).  Labels: events, then [guard], then (roles); delayed
 * transitions read "after <duration>"; deadlines are listed in their state.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct gctx {
  const case_def *d;
  sbuf b;
  unsigned char *active; /* per state: 1 if in the highlighted configuration */
} gctx;

static int is_cluster(const cs_state *st) {
  return st->kind == CS_COMPOUND || st->kind == CS_PARALLEL;
}

static void indent(sbuf *b, int n) {
  for (int i = 0; i < n; i++) sbuf_puts(b, "  ");
}

/* Escapes for a DOT double-quoted string (also fine inside Mermaid labels,
 * where quotes and colons are replaced). */
static void put_escaped(sbuf *b, const char *s, int mermaid) {
  for (; s && *s; s++) {
    char c = *s;
    if (c == '\n' || c == '\r') {
      sbuf_puts(b, " ");
    } else if (!mermaid && (c == '"' || c == '\\')) {
      sbuf_add(b, "\\", 1);
      sbuf_add(b, &c, 1);
    } else if (mermaid && c == '"') {
      sbuf_puts(b, "'");
    } else if (mermaid && (c == ':' || c == ';' || c == '#')) {
      sbuf_puts(b, c == ':' ? "#colon;" : c == ';' ? "#59;" : "#35;");
    } else if (mermaid && (c == '{' || c == '}')) {
      sbuf_puts(b, c == '{' ? "#123;" : "#125;");
    } else {
      sbuf_add(b, &c, 1);
    }
  }
}

/* "6 days", or for a param "6 days (rvt_dagen)" with the param's default, so
 * a reader sees the term itself and where a location can change it. */
static void put_duration(sbuf *b, const case_def *d, const cs_duration *du) {
  const char *unit = du->unit == UNIT_WORKING_DAYS ? "working days" : cal_unit_name(du->unit);
  if (du->param) {
    int p = def_param_find(d, du->param);
    if (p >= 0 && json_is_integer(d->params[p].value))
      sbuf_printf(b, "%lld %s (%s)", (long long)json_integer_value(d->params[p].value), unit,
                  du->param);
    else
      sbuf_printf(b, "${%s} %s", du->param, unit);
  } else {
    sbuf_printf(b, "%ld %s", du->amount, unit);
  }
}

/* The label of a transition: "ev1 ev2 [guard] (R1,R2)" or "after 6 days". */
static void put_label(gctx *g, const cs_transition *t, int mermaid) {
  sbuf lab;
  sbuf_init(&lab);
  if (t->timer >= 0) {
    sbuf_puts(&lab, "after ");
    put_duration(&lab, g->d, &g->d->timers[t->timer].dur);
  } else if (t->nevents == 0) {
    sbuf_puts(&lab, "always");
  } else {
    for (int i = 0; i < t->nevents; i++) {
      if (i) sbuf_puts(&lab, " ");
      sbuf_puts(&lab, t->events[i]);
    }
  }
  if (t->guard) {
    const char *gt = t->guard->text;
    size_t n = strlen(gt);
    sbuf_puts(&lab, " [");
    if (n > 40) {
      sbuf_add(&lab, gt, 37);
      sbuf_puts(&lab, "...");
    } else {
      sbuf_puts(&lab, gt);
    }
    sbuf_puts(&lab, "]");
  }
  if (t->nroles > 0) {
    sbuf_puts(&lab, " (");
    for (int i = 0; i < t->nroles; i++) {
      if (i) sbuf_puts(&lab, ",");
      sbuf_puts(&lab, g->d->roles[t->roles[i]]);
    }
    sbuf_puts(&lab, ")");
  }
  if (lab.failed) g->b.failed = 1;
  if (lab.p) put_escaped(&g->b, lab.p, mermaid);
  sbuf_free(&lab);
}

/* ------------------------------------------------------------------ DOT */

/* The DOT node that stands for state i: a cluster's initial dot. */
static void dot_node(gctx *g, int i) {
  const cs_state *st = &g->d->states[i];
  if (is_cluster(st))
    sbuf_printf(&g->b, "\"%s::init\"", st->id);
  else
    sbuf_printf(&g->b, "\"%s\"", st->id);
}

static void dot_state(gctx *g, int i, int depth) {
  const case_def *d = g->d;
  const cs_state *st = &d->states[i];
  sbuf *b = &g->b;
  int on = g->active[i];
  if (is_cluster(st)) {
    indent(b, depth);
    sbuf_printf(b, "subgraph \"cluster_%s\" {\n", st->id);
    indent(b, depth + 1);
    sbuf_printf(b, "label=\"%s%s\"; style=\"rounded%s%s\"; color=\"%s\";%s\n", st->id,
                st->kind == CS_PARALLEL ? " (parallel)" : "",
                (st->parent > 0 && d->states[st->parent].kind == CS_PARALLEL) ? ",dashed" : "",
                on ? ",filled,bold" : "", on ? "#c0392b" : "#555555",
                on ? " fillcolor=\"#fdf2e9\";" : "");
    indent(b, depth + 1);
    sbuf_printf(b, "\"%s::init\" [shape=point, width=0.12, label=\"\"];\n", st->id);
    if (st->kind == CS_COMPOUND && st->ninitial > 0) {
      for (int k = 0; k < st->ninitial; k++) {
        indent(b, depth + 1);
        sbuf_printf(b, "\"%s::init\" -> ", st->id);
        dot_node(g, st->initial[k]);
        if (is_cluster(&d->states[st->initial[k]]))
          sbuf_printf(b, " [lhead=\"cluster_%s\"]", d->states[st->initial[k]].id);
        sbuf_puts(b, ";\n");
      }
    }
    for (int k = 0; k < st->nchildren; k++) dot_state(g, st->children[k], depth + 1);
    indent(b, depth);
    sbuf_puts(b, "}\n");
    return;
  }
  indent(b, depth);
  sbuf_printf(b, "\"%s\" [", st->id);
  switch (st->kind) {
  case CS_FINAL: sbuf_puts(b, "shape=doublecircle, "); break;
  case CS_HISTORY_SHALLOW: sbuf_printf(b, "shape=circle, label=\"H\", tooltip=\"%s\", ", st->id); break;
  case CS_HISTORY_DEEP: sbuf_printf(b, "shape=circle, label=\"H*\", tooltip=\"%s\", ", st->id); break;
  default: sbuf_puts(b, "shape=box, style=\"rounded\", "); break;
  }
  if (st->kind != CS_HISTORY_SHALLOW && st->kind != CS_HISTORY_DEEP) {
    /* The label lists the state's deadlines under its id. */
    sbuf_puts(b, "label=\"");
    put_escaped(b, st->id, 0);
    for (int k = 0; k < st->ntimers; k++) {
      const cs_timer *tm = &d->timers[st->timers[k]];
      if (tm->kind != TIMER_DEADLINE) continue;
      sbuf_puts(b, "\\n");
      put_escaped(b, tm->name, 0);
      sbuf_puts(b, ": ");
      put_duration(b, d, &tm->dur);
      sbuf_printf(b, ", %s", cal_clock_name(tm->dur.clock));
    }
    sbuf_puts(b, "\", ");
  }
  if (on)
    sbuf_puts(b, "style=\"rounded,filled,bold\", fillcolor=\"#f5b041\", color=\"#c0392b\", penwidth=2");
  else
    sbuf_puts(b, "color=\"#555555\"");
  sbuf_puts(b, "];\n");
}

static void dot_edges(gctx *g) {
  const case_def *d = g->d;
  for (int t = 0; t < d->ntransitions; t++) {
    const cs_transition *tr = &d->transitions[t];
    const cs_state *src = &d->states[tr->source];
    int ntarget = tr->ntargets ? tr->ntargets : 1;
    for (int k = 0; k < ntarget; k++) {
      int target = tr->ntargets ? tr->targets[k] : tr->source; /* targetless: a self loop */
      const cs_state *dst = &d->states[target];
      sbuf_puts(&g->b, "  ");
      dot_node(g, tr->source);
      sbuf_puts(&g->b, " -> ");
      dot_node(g, target);
      sbuf_puts(&g->b, " [label=\"");
      put_label(g, tr, 0);
      sbuf_puts(&g->b, "\"");
      /* Clip at a cluster only where the other end lies outside it: Graphviz cannot
       * clip an edge at a cluster that holds both its ends ("head is inside tail
       * cluster"), so an edge from a compound state to itself or into its own
       * children starts at its initial dot, and one from inside a compound state to
       * that state ends at its initial dot. */
      int inner = target == tr->source || def_is_descendant(d, target, tr->source);
      int outer = target == tr->source || def_is_descendant(d, tr->source, target);
      if (is_cluster(src) && !inner) sbuf_printf(&g->b, ", ltail=\"cluster_%s\"", src->id);
      if (is_cluster(dst) && !outer) sbuf_printf(&g->b, ", lhead=\"cluster_%s\"", dst->id);
      if (tr->ntargets == 0) sbuf_puts(&g->b, ", style=dotted");
      if (tr->timer >= 0) sbuf_puts(&g->b, ", style=dashed");
      sbuf_puts(&g->b, "];\n");
    }
  }
}

static void graph_dot(gctx *g) {
  const case_def *d = g->d;
  sbuf *b = &g->b;
  sbuf_printf(b, "digraph \"%s_v%d\" {\n", d->id, d->version);
  sbuf_puts(b, "  compound=true; rankdir=LR; fontname=\"Helvetica\";\n");
  sbuf_puts(b, "  node [fontname=\"Helvetica\", fontsize=10];\n");
  sbuf_puts(b, "  edge [fontname=\"Helvetica\", fontsize=8];\n");
  sbuf_printf(b, "  label=\"%s version %d\"; labelloc=t;\n", d->id, d->version);
  sbuf_puts(b, "  \"::start\" [shape=point, width=0.18, label=\"\"];\n");
  const cs_state *root = &d->states[0];
  for (int k = 0; k < root->nchildren; k++) dot_state(g, root->children[k], 1);
  for (int k = 0; k < root->ninitial; k++) {
    sbuf_puts(b, "  \"::start\" -> ");
    dot_node(g, root->initial[k]);
    if (is_cluster(&d->states[root->initial[k]]))
      sbuf_printf(b, " [lhead=\"cluster_%s\"]", d->states[root->initial[k]].id);
    sbuf_puts(b, ";\n");
  }
  dot_edges(g);
  sbuf_puts(b, "}\n");
}

/* ------------------------------------------------------------------ Mermaid */

static void mm_state(gctx *g, int i, int depth) {
  const case_def *d = g->d;
  const cs_state *st = &d->states[i];
  sbuf *b = &g->b;
  if (st->kind == CS_HISTORY_SHALLOW || st->kind == CS_HISTORY_DEEP) {
    indent(b, depth);
    sbuf_printf(b, "state \"%s\" as %s\n", st->kind == CS_HISTORY_DEEP ? "H*" : "H", st->id);
    return;
  }
  if (!is_cluster(st)) {
    indent(b, depth);
    sbuf_printf(b, "state \"%s", st->id);
    for (int k = 0; k < st->ntimers; k++) {
      const cs_timer *tm = &d->timers[st->timers[k]];
      if (tm->kind != TIMER_DEADLINE) continue;
      sbuf_puts(b, "<br/>");
      put_escaped(b, tm->name, 1);
      sbuf_puts(b, " ");
      put_duration(b, d, &tm->dur);
      sbuf_printf(b, ", %s", cal_clock_name(tm->dur.clock));
    }
    sbuf_printf(b, "\" as %s\n", st->id);
    return;
  }
  indent(b, depth);
  sbuf_printf(b, "state %s {\n", st->id);
  if (st->kind == CS_COMPOUND) {
    for (int k = 0; k < st->ninitial; k++) {
      indent(b, depth + 1);
      sbuf_printf(b, "[*] --> %s\n", d->states[st->initial[k]].id);
    }
    for (int k = 0; k < st->nchildren; k++) mm_state(g, st->children[k], depth + 1);
  } else {
    int first = 1;
    for (int k = 0; k < st->nchildren; k++) {
      const cs_state *c = &d->states[st->children[k]];
      if (c->kind == CS_HISTORY_SHALLOW || c->kind == CS_HISTORY_DEEP) continue;
      if (!first) {
        indent(b, depth + 1);
        sbuf_puts(b, "--\n");
      }
      first = 0;
      mm_state(g, st->children[k], depth + 1);
    }
    for (int k = 0; k < st->nchildren; k++) {
      const cs_state *c = &d->states[st->children[k]];
      if (c->kind == CS_HISTORY_SHALLOW || c->kind == CS_HISTORY_DEEP)
        mm_state(g, st->children[k], depth + 1);
    }
  }
  indent(b, depth);
  sbuf_puts(b, "}\n");
}

static void graph_mermaid(gctx *g) {
  const case_def *d = g->d;
  sbuf *b = &g->b;
  sbuf_printf(b, "---\ntitle: %s version %d\n---\nstateDiagram-v2\n", d->id, d->version);
  const cs_state *root = &d->states[0];
  for (int k = 0; k < root->ninitial; k++)
    sbuf_printf(b, "  [*] --> %s\n", d->states[root->initial[k]].id);
  for (int k = 0; k < root->nchildren; k++) mm_state(g, root->children[k], 1);
  for (int k = 0; k < root->nchildren; k++) {
    const cs_state *c = &d->states[root->children[k]];
    if (c->kind == CS_FINAL) sbuf_printf(b, "  %s --> [*]\n", c->id);
  }
  for (int t = 0; t < d->ntransitions; t++) {
    const cs_transition *tr = &d->transitions[t];
    int ntarget = tr->ntargets ? tr->ntargets : 1;
    for (int k = 0; k < ntarget; k++) {
      int target = tr->ntargets ? tr->targets[k] : tr->source;
      sbuf_printf(b, "  %s --> %s : ", d->states[tr->source].id, d->states[target].id);
      put_label(g, tr, 1);
      sbuf_puts(b, "\n");
    }
  }
  int any = 0;
  for (int i = 1; i < d->nstates; i++) {
    if (!g->active[i]) continue;
    if (!any) sbuf_puts(b, "  classDef active fill:#f5b041,stroke:#c0392b,stroke-width:3px\n");
    any = 1;
    sbuf_printf(b, "  class %s active\n", d->states[i].id);
  }
}

/* ------------------------------------------------------------------ API */

int case_def_graph(const case_def *d, int format, const char *configuration_json, char **out) {
  if (out) *out = NULL;
  if (!d || !out) return d ? eng_err(d->engine, CASE_MISUSE, "case_def_graph: out is NULL")
                           : CASE_MISUSE;
  case_engine *e = d->engine;
  if (format != CASE_GRAPH_DOT && format != CASE_GRAPH_MERMAID)
    return eng_err(e, CASE_INVALID, "case_def_graph: unknown format %d (expected "
                   "CASE_GRAPH_DOT or CASE_GRAPH_MERMAID)", format);
  gctx g;
  memset(&g, 0, sizeof g);
  g.d = d;
  g.active = calloc((size_t)d->nstates, 1);
  if (!g.active) return eng_err(e, CASE_NOMEM, "out of memory");
  if (configuration_json) {
    json_error_t jerr;
    json_t *cfg = json_loads(configuration_json, JSON_DECODE_ANY, &jerr);
    if (!cfg || !json_is_array(cfg)) {
      int is_json = cfg != NULL;
      json_decref(cfg);
      free(g.active);
      if (is_json)
        return eng_err(e, CASE_INVALID, "case_def_graph: configuration is not a JSON array "
                       "of state ids (it is valid JSON of another kind)");
      return eng_err(e, CASE_INVALID,
                     "case_def_graph: configuration is not a JSON array of state ids "
                     "(line %d, column %d: %s)", jerr.line, jerr.column, jerr.text);
    }
    size_t k;
    json_t *v;
    json_array_foreach(cfg, k, v) {
      int idx = json_is_string(v) ? def_state_find(d, json_string_value(v)) : -1;
      if (idx < 0) {
        int rc = eng_err(e, json_is_string(v) ? CASE_NOTFOUND : CASE_INVALID,
                         "case_def_graph: configuration item %zu: %s%s%s is not a state of %s",
                         k, json_is_string(v) ? "'" : "",
                         json_is_string(v) ? json_string_value(v) : "(not a string)",
                         json_is_string(v) ? "'" : "", d->id);
        json_decref(cfg);
        free(g.active);
        return rc;
      }
      g.active[idx] = 1;
    }
    json_decref(cfg);
  }
  sbuf_init(&g.b);
  if (format == CASE_GRAPH_DOT)
    graph_dot(&g);
  else
    graph_mermaid(&g);
  free(g.active);
  char *text = sbuf_take(&g.b);
  if (!text) return eng_err(e, CASE_NOMEM, "out of memory");
  *out = text;
  return eng_ok(e);
}
