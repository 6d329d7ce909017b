/*
 * model.c — the hash of a definition's model (case_def_model_hash).
 *
 * case_def_hash() is the hash of the source bytes: a comment, a reordered
 * key or the other syntax changes it.  The model hash is the SHA-256 of a
 * canonical serialization of what the loader built, so a definition has one
 * model hash whether it was written in YAML or SCXML, and keeps it through
 * an export to SCXML and an import back (docs/workflow-format.md, "The model
 * hash").  The serialization is compact JSON with sorted keys and ASCII
 * escapes ("libcase.model.v1"):
 *
 *   {"model":"libcase.model.v1","workflow":..,"version":..,"settings":{...},
 *    "roles":[..],"params":[..],"data":[..],"modules":[{"name","source"}],
 *    "resources":[{"name","source"}],"scripts":[..],"states":[..],
 *    "transitions":[..],"timers":[..],"invokes":[..],"children":[model hashes]}
 *
 * Everything that changes what a case does or shows is in it: ids, kinds,
 * document order, scripts as their text, every attribute of executable
 * content, durations, legal sources, descriptions, the sources of the Lua
 * modules and the files the definition read.  Not in it: positions, file
 * names, comments and layout, warnings, and what the loader derives from
 * what is in it (compiled chunks, the send timer, values computed from inline
 * content).
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define MODEL_TAG "libcase.model.v1"

static json_t *jstr(const char *s) { return s ? json_string(s) : json_null(); }

static const char *kind_name(cs_script_kind k) {
  switch (k) {
  case SCRIPT_EXPR: return "expr";
  case SCRIPT_BLOCK: return "lua";
  case SCRIPT_NAMED:
  case SCRIPT_NATIVE: return "call"; /* a native or a module function: the same name */
  case EXEC_RAISE: return "raise";
  case EXEC_SEND: return "send";
  case EXEC_CANCEL: return "cancel";
  case EXEC_LOG: return "log";
  case EXEC_ASSIGN: return "assign";
  case EXEC_IF: return "if";
  case EXEC_FOREACH: return "foreach";
  case EXEC_BLOCK: return "block";
  }
  return "?";
}

static json_t *script_json(const cs_script *s);

static json_t *scripts_json(const cs_script *v, int n) {
  json_t *a = json_array();
  for (int i = 0; a && i < n; i++) json_array_append_new(a, script_json(&v[i]));
  return a;
}

static json_t *opt_script(const cs_script *s) { return s ? script_json(s) : json_null(); }

static json_t *names_json(const cs_namevalue *v, int n) {
  json_t *a = json_array();
  for (int i = 0; a && i < n; i++)
    json_array_append_new(a, json_pack("{s:o, s:o, s:b}", "name", jstr(v[i].name), "expr",
                                       opt_script(v[i].expr), "location", v[i].location));
  return a;
}

static json_t *content_json(const cs_exec *x) {
  if (x->content_text)
    return json_pack("{s:s, s:b}", "text", x->content_text, "markup", x->content_xml);
  if (x->content) return json_pack("{s:o}", "expr", script_json(x->content));
  return json_null();
}

static json_t *exec_json(const cs_script *s) {
  const cs_exec *x = s->exec;
  json_t *o = json_object();
  if (!o) return NULL;
  json_object_set_new(o, "kind", json_string(kind_name(s->kind)));
  switch (s->kind) {
  case EXEC_RAISE:
    json_object_set_new(o, "event", jstr(x->event));
    break;
  case EXEC_SEND:
    json_object_set_new(o, "event", jstr(x->event));
    json_object_set_new(o, "eventexpr", opt_script(x->eventexpr));
    json_object_set_new(o, "target", jstr(x->target));
    json_object_set_new(o, "targetexpr", opt_script(x->targetexpr));
    json_object_set_new(o, "type", jstr(x->type));
    json_object_set_new(o, "typeexpr", opt_script(x->typeexpr));
    json_object_set_new(o, "id", jstr(x->id));
    json_object_set_new(o, "idlocation", jstr(x->idlocation));
    json_object_set_new(o, "delay", jstr(x->delay));
    json_object_set_new(o, "delayexpr", opt_script(x->delayexpr));
    json_object_set_new(o, "names", names_json(x->names, x->nnames));
    json_object_set_new(o, "content", content_json(x));
    break;
  case EXEC_CANCEL:
    json_object_set_new(o, "sendid", jstr(x->id));
    json_object_set_new(o, "sendidexpr", opt_script(x->idexpr));
    break;
  case EXEC_LOG:
    json_object_set_new(o, "label", jstr(x->label));
    json_object_set_new(o, "expr", opt_script(x->expr));
    break;
  case EXEC_ASSIGN:
    json_object_set_new(o, "location", jstr(x->location));
    json_object_set_new(o, "expr", opt_script(x->expr));
    json_object_set_new(o, "content", content_json(x));
    break;
  case EXEC_IF: {
    json_t *b = json_array();
    for (int i = 0; b && i < x->nbranches; i++)
      json_array_append_new(b, json_pack("{s:o, s:o}", "cond", opt_script(x->conds[i]), "then",
                                         scripts_json(x->blocks[i], x->nblock[i])));
    json_object_set_new(o, "branches", b);
    break;
  }
  case EXEC_BLOCK:
    json_object_set_new(o, "do", scripts_json(x->blocks[0], x->nblock[0]));
    break;
  case EXEC_FOREACH:
    json_object_set_new(o, "array", opt_script(x->array));
    json_object_set_new(o, "item", jstr(x->location));
    json_object_set_new(o, "index", jstr(x->index));
    json_object_set_new(o, "do", scripts_json(x->blocks[0], x->nblock[0]));
    break;
  default:
    break;
  }
  return o;
}

static json_t *script_json(const cs_script *s) {
  if (s->kind >= EXEC_RAISE) return exec_json(s);
  if (s->src) return json_pack("{s:s, s:s}", "kind", "lua", "src", s->src);
  return json_pack("{s:s, s:o}", "kind", kind_name(s->kind), "text", jstr(s->text));
}

static json_t *ids(const case_def *d, const int *v, int n) {
  json_t *a = json_array();
  for (int i = 0; a && i < n; i++) json_array_append_new(a, json_string(d->states[v[i]].id));
  return a;
}

static const char *state_kind(cs_kind k) {
  switch (k) {
  case CS_ATOMIC: return "atomic";
  case CS_COMPOUND: return "compound";
  case CS_PARALLEL: return "parallel";
  case CS_FINAL: return "final";
  case CS_HISTORY_SHALLOW: return "shallow";
  case CS_HISTORY_DEEP: return "deep";
  }
  return "?";
}

static json_t *duration_json(const cs_duration *u) {
  return json_pack("{s:I, s:o, s:s, s:s, s:b}", "amount", (json_int_t)u->amount, "param",
                   jstr(u->param), "unit", cal_unit_name(u->unit), "clock",
                   cal_clock_name(u->clock), "same_day", u->same_day);
}

static json_t *model_json(const case_def *d) {
  json_t *m = json_object();
  if (!m) return NULL;
  json_object_set_new(m, "model", json_string(MODEL_TAG));
  json_object_set_new(m, "workflow", json_string(d->id));
  json_object_set_new(m, "version", json_integer(d->version));
  json_object_set_new(m, "description", jstr(d->description));
  json_object_set_new(m, "settings",
                      json_pack("{s:s, s:s, s:o, s:s, s:s, s:s}", "clock",
                                cal_clock_name(d->clock), "in_force_from", d->in_force_from_text,
                                "name", jstr(d->name), "errors",
                                d->errors_events ? "events" : "refuse", "datamodel",
                                d->globals ? "globals" : "case", "binding",
                                d->late_binding ? "late" : "early"));
  json_t *a = json_array();
  for (int i = 0; a && i < d->nroles; i++) json_array_append_new(a, json_string(d->roles[i]));
  json_object_set_new(m, "roles", a);
  a = json_array();
  for (int i = 0; a && i < d->nparams; i++) {
    const cs_param *p = &d->params[i];
    json_array_append_new(a, json_pack("{s:s, s:O, s:o, s:b, s:o}", "name", p->name, "value",
                                       p->value, "source", jstr(p->source), "unverified",
                                       p->unverified, "description", jstr(p->description)));
  }
  json_object_set_new(m, "params", a);
  a = json_array();
  for (int i = 0; a && i < d->nfields; i++) {
    const cs_field *f = &d->fields[i];
    int derived = f->content || f->src; /* the value comes from the text */
    json_array_append_new(
        a, json_pack("{s:s, s:s, s:O, s:o, s:o, s:o, s:s, s:o}", "name", f->name, "type",
                     type_name(f->type), "default",
                     derived || !f->def ? json_null() : f->def, "expr",
                     derived ? json_null() : opt_script(f->expr), "content", jstr(f->content),
                     "src", jstr(f->src), "state", d->states[f->state].id, "description",
                     jstr(f->description)));
  }
  json_object_set_new(m, "data", a);
  a = json_array();
  for (int i = 0; a && i < d->nmodules; i++) {
    const char *src = d->module_src ? d->module_src[i] : NULL;
    json_array_append_new(a, json_pack("{s:s, s:o}", "name", d->module_names[i], "source",
                                       src ? json_stringn(src, d->module_len[i]) : json_null()));
  }
  json_object_set_new(m, "modules", a);
  a = json_array();
  for (int i = 0; a && i < d->nres; i++)
    json_array_append_new(a, json_pack("{s:s, s:o}", "name", d->res_names[i], "source",
                                       json_stringn(d->res_src[i], d->res_len[i])));
  json_object_set_new(m, "resources", a);
  json_object_set_new(m, "scripts", scripts_json(d->scripts, d->nscripts));
  json_object_set(m, "report", d->report ? d->report : json_null());
  a = json_array();
  for (int i = 1; a && i < d->nstates; i++) {
    const cs_state *s = &d->states[i];
    json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o}", "id", s->id, "kind",
                          state_kind(s->kind), "parent", d->states[s->parent].id, "initial",
                          ids(d, s->initial, s->ninitial), "initial_actions",
                          scripts_json(s->initial_actions, s->ninitial_actions), "entry",
                          scripts_json(s->onentry, s->nonentry), "exit",
                          scripts_json(s->onexit, s->nonexit), "description",
                          jstr(s->description));
    if (o && s->donedata)
      json_object_set_new(o, "donedata",
                          json_pack("{s:o, s:o}", "names",
                                    names_json(s->donedata->names, s->donedata->nnames),
                                    "content", content_json(s->donedata)));
    json_array_append_new(a, o);
  }
  json_object_set_new(m, "states", a);
  json_object_set_new(m, "initial", ids(d, d->states[0].initial, d->states[0].ninitial));
  a = json_array();
  for (int i = 0; a && i < d->ntransitions; i++) {
    const cs_transition *t = &d->transitions[i];
    json_t *ev = json_array(), *roles = json_array();
    for (int k = 0; ev && k < t->nevents; k++) json_array_append_new(ev, json_string(t->events[k]));
    for (int k = 0; roles && k < t->nroles; k++)
      json_array_append_new(roles, json_string(d->roles[t->roles[k]]));
    json_array_append_new(
        a, json_pack("{s:s, s:o, s:o, s:o, s:o, s:b, s:o, s:o, s:o}", "source",
                     d->states[t->source].id, "events", t->timer >= 0 ? json_null() : ev, "guard",
                     opt_script(t->guard), "actions", scripts_json(t->actions, t->nactions),
                     "targets", ids(d, t->targets, t->ntargets), "internal", t->internal,
                     "roles", roles, "timer", t->timer >= 0 ? json_string(d->timers[t->timer].name)
                                                             : json_null(),
                     "description", jstr(t->description)));
    if (t->timer >= 0) json_decref(ev);
  }
  json_object_set_new(m, "transitions", a);
  a = json_array();
  for (int i = 0; a && i < d->ntimers; i++) {
    const cs_timer *t = &d->timers[i];
    if (t->kind == TIMER_SEND) continue; /* derived from the sends */
    json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o}", "kind",
                                       chart_timer_kind(t), "name", t->name, "state",
                                       d->states[t->state].id, "duration", duration_json(&t->dur),
                                       "event", jstr(t->event), "source", jstr(t->source),
                                       "description", jstr(t->description)));
  }
  json_object_set_new(m, "timers", a);
  a = json_array();
  for (int i = 0; a && i < d->ninvokes; i++) {
    const cs_invoke *v = &d->invokes[i];
    json_array_append_new(
        a, json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:i, s:o, s:b, s:o, s:b}", "state",
                     d->states[v->state].id, "id", jstr(v->id), "idlocation", jstr(v->idlocation),
                     "type", jstr(v->type), "typeexpr", opt_script(v->typeexpr), "src",
                     jstr(v->src), "srcexpr", opt_script(v->contentexpr ? v->contentexpr : v->srcexpr), "workflow",
                     jstr(v->inline_content ? NULL : v->workflow), "version",
                     v->inline_content ? 0 : v->version, "names", names_json(v->names, v->nnames),
                     "autoforward", v->autoforward, "finalize",
                     scripts_json(v->finalize, v->nfinalize), "inline", v->inline_content));
  }
  json_object_set_new(m, "invokes", a);
  a = json_array();
  for (int i = 0; a && i < d->nsubdefs; i++)
    json_array_append_new(a, json_string(d->subdefs[i]->model_hash));
  json_object_set_new(m, "children", a);
  return m;
}

int model_finish(case_engine *e, case_def *d) {
  json_t *m = model_json(d);
  char *text = m ? json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII) : NULL;
  json_decref(m);
  if (!text) return eng_err(e, CASE_NOMEM, "out of memory");
  int rc = sha256_hex(text, strlen(text), d->model_hash) == 0 ? CASE_OK : CASE_NOMEM;
  free(text);
  return rc == CASE_OK ? CASE_OK : eng_err(e, CASE_NOMEM, "out of memory");
}

const char *case_def_model_hash(const case_def *d) { return d ? d->model_hash : NULL; }
