/*
 * profcheck.c — a location profile checked against a definition (pchk_*).
 *
 * A profile replaces a definition's param values for the cases of its
 * location.  A value of another type than the definition declares (`drempel =
 * "16"` where the default is 16), or a term param that is negative or not a
 * whole number, breaks every case of that location at run time; a misspelt
 * name is silently never used.  The engine runs these checks whenever a
 * profile or a definition is loaded and the other is already there (errors
 * refuse the load), and case_def_check_profile() lists them with the warnings.
 * Positions are in the profile's Lua source, found with luascan.c.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* The kind of JSON value a param holds, for messages and comparison. */
static const char *kind_of(const json_t *v) {
  if (json_is_integer(v)) return "an integer";
  if (json_is_real(v)) return "a number";
  if (json_is_string(v)) return "a string";
  if (json_is_boolean(v)) return "a boolean";
  return "a value";
}

/* 1 if a profile value `v` may stand for a param whose default is `def`. */
static int same_kind(const json_t *def, const json_t *v) {
  if (json_is_integer(def)) {
    if (json_is_integer(v)) return 1;
    if (json_is_real(v)) { /* Lua 16.0 is a float with a whole value */
      double x = json_real_value(v);
      return x == (double)(long long)x;
    }
    return 0;
  }
  if (json_is_real(def)) return json_is_number(v);
  if (json_is_string(def)) return json_is_string(v);
  if (json_is_boolean(def)) return json_is_boolean(v);
  return 1;
}

static cs_pos profile_pos(const cs_profile *p, const char *key) {
  cs_pos pos = {1, 1};
  size_t off = 0;
  if (!p->source || !lscan_table_key(p->source, p->source_len, "params", key, &off)) return pos;
  for (size_t i = 0; i < off && i < p->source_len; i++) {
    if (p->source[i] == '\n') {
      pos.line++;
      pos.col = 1;
    } else if (((unsigned char)p->source[i] & 0xC0) != 0x80) {
      pos.col++;
    }
  }
  return pos;
}

static int add(json_t *out, const cs_profile *p, const char *key, int error, const char *msg) {
  cs_pos pos = profile_pos(p, key);
  json_t *item = json_pack("{s:s, s:s, s:i, s:i, s:s}", "severity", error ? "error" : "warning",
                           "file", p->path ? p->path : p->name, "line", pos.line, "column",
                           pos.col, "message", msg);
  if (!item || json_array_append_new(out, item) != 0) return CASE_NOMEM;
  return CASE_OK;
}

/* "a string (\"16\")", "an integer (0)": the value as the message shows it. */
static char *show(const json_t *v) {
  char *j = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  sbuf b;
  sbuf_init(&b);
  sbuf_printf(&b, "%s (%.60s)", kind_of(v), j ? j : "?");
  free(j);
  return sbuf_take(&b);
}

static int declared_anywhere(const case_engine *e, const char *name) {
  for (const case_def *o = e ? e->defs : NULL; o; o = o->next)
    if (def_param_find(o, name) >= 0) return 1;
  return 0;
}

static int key_cmp(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int pchk_run(const cs_profile *p, const case_def *d, json_t *out) {
  if (!p || !d || !p->params) return CASE_OK;
  /* in name order, so that messages come out the same every time */
  size_t nkeys = json_object_size(p->params), q = 0;
  const char **keys = nkeys ? malloc(nkeys * sizeof *keys) : NULL;
  if (nkeys && !keys) return CASE_NOMEM;
  const char *k;
  json_t *v;
  json_object_foreach(p->params, k, v) keys[q++] = k;
  if (nkeys) qsort(keys, nkeys, sizeof *keys, key_cmp);
  int rc = CASE_OK;
  for (q = 0; q < nkeys && rc == CASE_OK; q++) {
    k = keys[q];
    v = json_object_get(p->params, k);
    sbuf m;
    sbuf_init(&m);
    int error = 0;
    int i = def_param_find(d, k);
    if (i < 0) {
      /* Not this workflow's: a typo of one of its params, or of nobody's. */
      const char *best = NULL;
      size_t bestd = (size_t)-1, len = strlen(k), maxd = len < 6 ? 2 : len / 3;
      for (int j = 0; j < d->nparams; j++) {
        size_t dist = edit_distance(k, d->params[j].name);
        if (dist < bestd) bestd = dist, best = d->params[j].name;
      }
      if (best && bestd <= maxd && !json_object_get(p->params, best))
        sbuf_printf(&m, "profile '%s' sets param '%s', which workflow '%s' does not declare "
                    "(did you mean '%s'?): the value is never used", p->name, k, d->id, best);
      else if (!declared_anywhere(d->engine, k))
        sbuf_printf(&m, "profile '%s' sets param '%s', which no loaded workflow declares: the "
                    "value is never used", p->name, k);
      else
        continue;
    } else {
      const cs_param *dp = &d->params[i];
      if (!same_kind(dp->value, v)) {
        char *got = show(v), *want = show(dp->value);
        sbuf_printf(&m, "profile '%s' sets param '%s' to %s, but workflow '%s' declares it %s "
                    "at %s:%d:%d (a guard or term that uses it fails for every case of the "
                    "location)", p->name, k, got ? got : "?", d->id,
                    want ? want : "?", d->file, dp->pos.line, dp->pos.col);
        free(got);
        free(want);
        error = 1;
      } else {
        /* A param that counts a term: a whole number of units, and not 0. */
        const cs_timer *use = NULL;
        for (int t = 0; t < d->ntimers && !use; t++)
          if (d->timers[t].dur.param && strcmp(d->timers[t].dur.param, k) == 0)
            use = &d->timers[t];
        if (!use) continue;
        double x = json_is_integer(v) ? (double)json_integer_value(v)
                   : json_is_real(v)  ? json_real_value(v) : -1;
        const char *what = use->kind == TIMER_AFTER ? "delay" : "deadline";
        if (!json_is_number(v) || x < 0 || x > (double)CAL_DURATION_MAX ||
            x != (double)(long long)x) {
          char *got = show(v);
          sbuf_printf(&m, "profile '%s' sets param '%s' to %s, but workflow '%s' counts the "
                      "%s '%s' at %s:%d:%d with it (expected a whole number from 0 to %ld)",
                      p->name, k, got ? got : "?", d->id, what, use->name, d->file,
                      use->dur.pos.line, use->dur.pos.col, CAL_DURATION_MAX);
          free(got);
          error = 1;
        } else if (x == 0) {
          sbuf_printf(&m, "profile '%s' sets param '%s' to 0, which makes the %s '%s' of "
                      "workflow '%s' at %s:%d:%d zero: it runs out as soon as '%s' is entered%s",
                      p->name, k, what, use->name, d->id, d->file, use->dur.pos.line,
                      use->dur.pos.col, d->states[use->state].id,
                      use->kind == TIMER_AFTER ? " (leading back into it, it runs out again at "
                                                 "once: each tick or fire stops at "
                                                 "CASE_LIMIT_EXPIRIES)"
                                               : "");
        } else {
          continue;
        }
      }
    }
    char *msg = sbuf_take(&m);
    rc = msg ? add(out, p, k, error, msg) : CASE_NOMEM;
    free(msg);
  }
  free(keys);
  return rc;
}

int pchk_enforce(case_engine *e, const cs_profile *p, const case_def *d) {
  json_t *list = json_array();
  if (!list || pchk_run(p, d, list) != CASE_OK) {
    json_decref(list);
    return eng_err(e, CASE_NOMEM, "out of memory");
  }
  size_t i;
  json_t *it;
  int rc = CASE_OK;
  json_array_foreach(list, i, it) {
    if (strcmp(json_string_value(json_object_get(it, "severity")), "error") != 0) continue;
    cs_pos pos = {(int)json_integer_value(json_object_get(it, "line")),
                  (int)json_integer_value(json_object_get(it, "column"))};
    rc = eng_err_at(e, CASE_INVALID, json_string_value(json_object_get(it, "file")), pos, "%s",
                    json_string_value(json_object_get(it, "message")));
    break;
  }
  json_decref(list);
  return rc;
}

int case_def_check_profile(const case_def *d, const char *profile, char **json) {
  if (json) *json = NULL;
  if (!d) return CASE_MISUSE;
  case_engine *e = d->engine;
  if (!profile || !json) return eng_err(e, CASE_MISUSE, "case_def_check_profile: NULL argument");
  const cs_profile *p = eng_profile_find(e, profile);
  if (!p) return eng_err(e, CASE_NOTFOUND, "no location profile '%s' is loaded", profile);
  json_t *list = json_array();
  if (!list || pchk_run(p, d, list) != CASE_OK) {
    json_decref(list);
    return eng_err(e, CASE_NOMEM, "out of memory");
  }
  *json = json_dumps(list, JSON_COMPACT);
  json_decref(list);
  if (!*json) return eng_err(e, CASE_NOMEM, "out of memory");
  return eng_ok(e);
}
