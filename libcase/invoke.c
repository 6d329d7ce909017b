/*
 * invoke.c — cases talking to cases: the engine's mail.
 *
 * A macrostep never changes another case.  What it sends to a parent or a
 * child case (SCXML <send target="#_parent"> / "#_<invokeid>"), the child
 * cases it starts (<invoke>) and cancels (leaving the invoking state) are
 * appended to the engine's mail when the macrostep commits (chart.c).  This
 * file delivers that mail, oldest first, each message as a macrostep of the
 * case it is for:
 *
 *   event   fired at the target as an external event with its _event fields
 *           (origin, origintype, sendid, invokeid), after the target's own
 *           timers due by then; an event from a child the parent no longer
 *           runs (cancelled, or done) is dropped, as SCXML 6.4 says;
 *   invoke  the child case is created (its own id "<parent>.<invokeid>", its
 *           own journal in a store) with the invoke's params as initial data;
 *   cancel  the child case runs the exit content of its active states
 *           (SCXML 6.4), then stops where it is: done, cancelled, its own
 *           children cancelled in turn.
 *
 * In memory the public calls deliver at once (case_instance_fire, _tick,
 * _create, case_engine_tick); a store delivers message by message, each in
 * the transaction of the case it changes (eng_deliver_one), so that every
 * case's journal holds exactly what changed it.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Messages one call may deliver: a ping-pong between two cases ends here. */
#define MAIL_MAX 100000

int case_engine_set_log(case_engine *e, case_log_fn fn, void *ud) {
  if (!e) return CASE_MISUSE;
  e->log = fn;
  e->log_ud = fn ? ud : NULL;
  return eng_ok(e);
}

static void log_line(case_engine *e, const case_instance *c, const char *fmt, ...)
    CASE_PRINTF(3, 4);
static void log_line(case_engine *e, const case_instance *c, const char *fmt, ...) {
  if (!e->log) return;
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  e->log(e->log_ud, c, "libcase", msg);
}

/* The mail's first message, removed from it (a new reference), or NULL. */
static json_t *take_first(case_engine *e) {
  if (!e->mail || json_array_size(e->mail) == 0) return NULL;
  json_t *m = json_incref(json_array_get(e->mail, 0));
  json_array_remove(e->mail, 0);
  if (json_array_size(e->mail) == 0) {
    json_decref(e->mail);
    e->mail = NULL;
  }
  return m;
}

static const char *str(const json_t *m, const char *k) {
  return json_string_value(json_object_get(m, k));
}

/* Cancels child case c: its exit content, then it stops where it is (and,
 * through the mail, its own children). */
int chart_cancel_case(case_engine *e, case_instance *c, int64_t at) {
  if (chart_exit_cancelled(c, at) == CASE_NOMEM) return CASE_NOMEM;
  size_t i;
  json_t *it;
  json_array_foreach(c->st.sx ? c->st.sx->invokes : NULL, i, it) {
    json_t *m = json_pack("{s:s, s:s, s:O, s:I}", "kind", "cancel", "from", c->id, "to",
                          json_object_get(it, "case"), "time", (json_int_t)at);
    if (!m || (!e->mail && !(e->mail = json_array())) || json_array_append_new(e->mail, m) != 0)
      return eng_err(e, CASE_NOMEM, "out of memory");
  }
  if (c->st.sx) {
    json_decref(c->st.sx->invokes);
    c->st.sx->invokes = NULL;
  }
  for (int k = 0; k < c->st.ntimers; k++) {
    free(c->st.timers[k].id);
    json_decref(c->st.timers[k].send);
  }
  c->st.ntimers = 0;
  c->st.done = 1;
  c->st.cancelled = 1;
  c->st.revision++;
  if (at > c->st.last_time) c->st.last_time = at;
  return CASE_OK;
}

int eng_deliver_one(case_engine *e, case_instance **target, char **event, json_t **payload,
                    char **actor) {
  *target = NULL;
  if (event) *event = NULL;
  if (payload) *payload = NULL;
  if (actor) *actor = NULL;
  json_t *m = take_first(e);
  if (!m) return CASE_NOTFOUND;
  const char *kind = str(m, "kind"), *from = str(m, "from"), *to = str(m, "to");
  int64_t at = (int64_t)json_integer_value(json_object_get(m, "time"));
  int rc = CASE_OK;
  case_instance *c = to ? case_instance_find(e, to) : NULL;
  if (!kind || !from || !to) {
    rc = eng_err(e, CASE_CORRUPT, "mail: a message without kind, from or to");
  } else if (strcmp(kind, "invoke") == 0) {
    const case_def *d = case_def_find(e, str(m, "workflow"),
                                      (int)json_integer_value(json_object_get(m, "version")));
    case_instance *parent = case_instance_find(e, from);
    if (c) {
      log_line(e, parent, "invoke: a case '%s' exists already; not started again", to);
    } else if (!d || !parent) {
      log_line(e, parent, "invoke: workflow '%s' version %d is not loaded",
               str(m, "workflow") ? str(m, "workflow") : "?",
               (int)json_integer_value(json_object_get(m, "version")));
    } else {
      if (at < parent->st.last_time) at = parent->st.last_time;
      /* at its parent's location, on the same profile version */
      rc = chart_case_create_pinned(e, d, to, parent->location, parent->profile,
                                    json_object_get(m, "data"), from, str(m, "invokeid"), at, &c);
      if (rc == CASE_OK) c->profile_version = c->profile_first = parent->profile_version;
      if (rc != CASE_OK) {
        log_line(e, parent, "invoke '%s': the child case does not start: %s",
                 str(m, "invokeid"), case_errmsg(e));
        /* SCXML: the parent learns of the failure as error.execution */
        json_t *err = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "kind", "event", "from", to,
                                "to", from, "event", "error.execution", "data", case_errmsg(e),
                                "time", (json_int_t)at);
        if (err) json_object_set_new(err, "platform", json_true());
        if (!err || (!e->mail && !(e->mail = json_array())) ||
            json_array_append_new(e->mail, err) != 0)
          rc = eng_err(e, CASE_NOMEM, "out of memory");
        else
          rc = CASE_OK;
        c = NULL;
      } else {
        if (event) *event = xstrdup("create");
        if (payload) *payload = json_incref(json_object_get(m, "data"));
        if (actor) {
          sbuf b;
          sbuf_init(&b);
          sbuf_printf(&b, "#_scxml_%s", from);
          *actor = sbuf_take(&b);
        }
      }
    }
  } else if (strcmp(kind, "cancel") == 0) {
    if (c && !c->st.done) {
      rc = chart_cancel_case(e, c, at);
      if (rc == CASE_OK && event) *event = xstrdup("cancel.invoke");
      /* by its parent, as every delivery (verify replays it as one) */
      if (rc == CASE_OK && actor) {
        sbuf b;
        sbuf_init(&b);
        sbuf_printf(&b, "#_scxml_%s", from);
        *actor = sbuf_take(&b);
      }
    } else {
      c = NULL;
    }
  } else if (strcmp(kind, "event") == 0) {
    const char *invokeid = str(m, "invokeid");
    case_instance *sender = case_instance_find(e, from);
    int from_child = invokeid && c && sender && sender->parent && strcmp(sender->parent, to) == 0;
    if (!c || c->st.done) {
      c = NULL; /* the case ended: SCXML drops what it is sent */
    } else if (from_child && sender->st.cancelled) {
      /* sent after its parent cancelled it (a message sent before the cancel
       * was in the parent's queue already and is delivered, done.invoke of a
       * child that ended first too) */
      c = NULL;
    } else {
      if (at < c->st.last_time) at = c->st.last_time;
      /* Its own timers due by then come first (events are in time order); a
       * store fires them as rows of their own, so not here. */
      for (int one = 1; rc == CASE_OK && one && !e->manual_mail;) rc = chart_tick_one(c, at, &one);
      json_t *meta = NULL;
      if (rc == CASE_OK) {
        meta = json_pack("{s:s, s:O?, s:O?, s:O?, s:O?}", "type",
                         json_is_true(json_object_get(m, "platform")) ? "platform" : "external",
                         "sendid", json_object_get(m, "sendid"), "origin",
                         json_object_get(m, "origin"), "origintype",
                         json_object_get(m, "origintype"), "invokeid",
                         from_child ? json_object_get(m, "invokeid") : NULL);
        rc = meta ? chart_macrostep_ex(c, str(m, "event"), json_object_get(m, "data"), meta,
                                       NULL, NULL, at, 1)
                  : eng_err(e, CASE_NOMEM, "out of memory");
        if (rc != CASE_OK && rc != CASE_NOMEM) {
          log_line(e, c, "event '%s' from case '%s' failed: %s", str(m, "event"), from,
                   case_errmsg(e));
          rc = CASE_OK;
          c = NULL;
        }
      }
      if (rc == CASE_OK && c) {
        if (event) *event = xstrdup(str(m, "event"));
        /* the journal keeps the data and the _event fields, for an exact replay */
        if (payload)
          *payload = json_pack("{s:O?, s:O}", "data", json_object_get(m, "data"), "event", meta);
        if (actor) {
          sbuf b;
          sbuf_init(&b);
          sbuf_printf(&b, "#_scxml_%s", from);
          *actor = sbuf_take(&b);
        }
      }
      json_decref(meta);
    }
  } else {
    rc = eng_err(e, CASE_CORRUPT, "mail: unknown message kind '%s'", kind);
  }
  json_decref(m);
  if (rc == CASE_OK) *target = c;
  return rc;
}

int eng_deliver(case_engine *e) {
  for (long n = 0; e->mail; n++) {
    if (n >= MAIL_MAX) {
      json_decref(e->mail);
      e->mail = NULL;
      return eng_err(e, CASE_LIMIT, "more than %d messages between cases in one call: cases "
                     "keep sending to each other", MAIL_MAX);
    }
    case_instance *c;
    int rc = eng_deliver_one(e, &c, NULL, NULL, NULL);
    if (rc == CASE_NOMEM || rc == CASE_LIMIT) return rc;
  }
  return CASE_OK;
}

/* The case with the timer due first (due ms, then case id, then sequence). */
static case_instance *first_due(case_engine *e, int64_t now, int64_t *due_ms) {
  case_instance *best = NULL;
  const cs_timer_inst *bt = NULL;
  for (case_instance *c = e->cases; c; c = c->next) {
    int i = chart_timer_next(c, now);
    if (i < 0) continue;
    const cs_timer_inst *t = &c->st.timers[i];
    if (!best || t->due_ms < bt->due_ms ||
        (t->due_ms == bt->due_ms && strcmp(c->id, best->id) < 0)) {
      best = c;
      bt = t;
    }
  }
  if (best && due_ms) *due_ms = bt->due_ms;
  return best;
}

int case_engine_tick(case_engine *e, int64_t now, int *fired) {
  if (fired) *fired = 0;
  if (!e) return CASE_MISUSE;
  int n = 0;
  int rc = eng_deliver(e);
  for (long guard = 0; rc == CASE_OK; guard++) {
    if (guard >= MAIL_MAX) {
      rc = eng_err(e, CASE_LIMIT, "more than %d timers fired in one tick: timers keep "
                   "starting timers due at once", MAIL_MAX);
      break;
    }
    case_instance *c = first_due(e, now, NULL);
    if (!c) break;
    int one = 0;
    rc = chart_tick_one(c, now, &one);
    if (rc != CASE_OK) break;
    n += one;
    rc = eng_deliver(e);
  }
  if (fired) *fired = n;
  return rc == CASE_OK ? eng_ok(e) : rc;
}

int case_engine_next_due(case_engine *e, int64_t *due) {
  if (!e || !due) return e ? eng_err(e, CASE_MISUSE, "case_engine_next_due: due is NULL")
                           : CASE_MISUSE;
  int64_t best = 0;
  int found = 0;
  for (case_instance *c = e->cases; c; c = c->next) {
    int i = chart_timer_next(c, INT64_MAX);
    if (i < 0) continue;
    if (!found || c->st.timers[i].due < best) best = c->st.timers[i].due;
    found = 1;
  }
  if (!found) return eng_err(e, CASE_NOTFOUND, "no timer is pending");
  *due = best;
  return eng_ok(e);
}

int chart_replay_delivery(case_instance *c, const char *event, const char *payload_json,
                          const char *actor, int64_t at) {
  case_engine *e = c->engine;
  if (strcmp(event, "cancel.invoke") == 0) return chart_cancel_case(e, c, at);
  json_t *p = payload_json ? json_loads(payload_json, JSON_DECODE_ANY, NULL) : NULL;
  json_t *meta = json_object_get(p, "event");
  if (!json_is_object(p) || !json_is_object(meta)) {
    json_decref(p);
    return eng_err(e, CASE_CORRUPT, "case '%s': the row of '%s' from %s holds no delivered "
                   "event ({\"data\", \"event\"})", c->id, event, actor ? actor : "?");
  }
  int rc = chart_macrostep_ex(c, event, json_object_get(p, "data"), meta, NULL, NULL, at, 1);
  json_decref(p);
  return rc;
}
