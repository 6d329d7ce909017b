/*
 * casectl commands on one case: new, fire, show, events; and tick (the clock).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "casectl.h"

enum { O_WORKFLOW = 256, O_LOCATION, O_DATA, O_ROLE, O_ACTOR, O_PAYLOAD, O_EXPECT, O_KEY,
       O_DAILY, O_FROM, O_HISTORY, O_ALLOW_FUTURE, O_VERSION };

static struct {
  const char *workflow, *location, *data, *role, *actor, *payload, *key, *from;
  long long expect;
  int daily, history, version;
} o = {.expect = -1, .history = 1};

static int case_option(ctx *c, int code, const char *arg) {
  char *end;
  switch (code) {
  case O_WORKFLOW: o.workflow = arg; return EX_OK;
  case O_LOCATION: o.location = arg; return EX_OK;
  case O_DATA: o.data = arg; return EX_OK;
  case O_ROLE: o.role = arg; return EX_OK;
  case O_ACTOR: o.actor = arg; return EX_OK;
  case O_PAYLOAD: o.payload = arg; return EX_OK;
  case O_KEY: o.key = arg; return EX_OK;
  case O_DAILY: o.daily = 1; return EX_OK;
  case O_FROM: o.from = arg; return EX_OK;
  case O_HISTORY: o.history = 0; return EX_OK;
  case O_ALLOW_FUTURE: c->allow_future = 1; return EX_OK;
  case O_VERSION: {
    long v = strtol(arg, &end, 10);
    if (*end || v < 1 || v > 1000000) return usage_error(c, "--version: '%s' is not a version", arg);
    o.version = (int)v;
    return EX_OK;
  }
  case O_EXPECT:
    o.expect = strtoll(arg, &end, 10);
    if (*end || o.expect < 0) return usage_error(c, "--expect-revision: '%s' is not a revision", arg);
    return EX_OK;
  default: return usage_error(c, "unexpected option");
  }
}

/* ------------------------------------------------------------------ new */

static const struct option new_options[] = {
    {"workflow", required_argument, NULL, O_WORKFLOW},
    {"location", required_argument, NULL, O_LOCATION},
    {"data", required_argument, NULL, O_DATA},
    {"role", required_argument, NULL, O_ROLE},
    {"actor", required_argument, NULL, O_ACTOR},
    {"allow-future", no_argument, NULL, O_ALLOW_FUTURE},
    {NULL, 0, NULL, 0},
};

static int run_new(ctx *c, int argc, char **argv) {
  if (argc != 1) return usage_error(c, "give exactly one case id");
  if (!o.workflow) return usage_error(c, "--workflow ID[@VERSION] is required");
  char id[128];
  int version;
  if (parse_workflow(o.workflow, id, sizeof id, &version) != 0)
    return usage_error(c, "--workflow: '%s' is not ID or ID@VERSION", o.workflow);
  const case_def *d = version ? case_def_find(c->e, id, version) : case_def_in_force(c->e, id, c->at);
  /* Stored definitions load when asked for: one that does not load says why. */
  if (!d && case_errcode(c->e) != CASE_OK) return fail_engine(c, case_errcode(c->e), o.workflow);
  if (!d)
    return fail(c, EX_NOTFOUND, "%s: no such workflow in %s (store it with casectl load)",
                o.workflow, c->store_shown);
  /* Who creates the case is journalled: a declared role, never none (as fire). */
  if (!o.role) return usage_error(c, "--role ROLE is required (who creates the case)");
  int ex = check_role_of(c, d, o.role);
  if (ex != EX_OK) return ex;
  if (o.data) {
    json_t *v = parse_json_arg(c, "--data", o.data, &ex);
    if (!v) return ex;
    json_decref(v);
  }
  case_instance *inst = NULL;
  int rc = case_store_create(c->s, d, argv[0], o.location, o.data, o.actor, o.role, c->at, &inst);
  if (rc != CASE_OK) return fail_engine(c, rc, argv[0]);
  char *config = NULL;
  case_instance_configuration(inst, &config);
  if (c->json) {
    print_json(json_pack("{s:s, s:s, s:i, s:o, s:I}", "case", argv[0], "workflow", case_def_id(d),
                         "version", case_def_version(d),
                         "configuration", json_loads(config ? config : "[]", 0, NULL), "at",
                         (json_int_t)c->at));
  } else if (!c->quiet) {
    printf("%s created on %s version %d: %s\n", argv[0], case_def_id(d), case_def_version(d),
           config ? config : "?");
  }
  case_free(config);
  return EX_OK;
}

const command cmd_new = {
    "new", "create a case on a stored workflow",
    "usage: casectl new --workflow ID[@VERSION] --role ROLE [--actor WHO] [--location NAME]\n"
    "                   [--data JSON] [--at WHEN] [--allow-future] CASE_ID\n"
    "  Creates case CASE_ID on a stored workflow at --at: it enters the initial states\n"
    "  (their entry actions run, their terms start at --at) and the creation is the\n"
    "  case's first journal row.  Prints the case's configuration.\n"
    "  --workflow W    a stored definition (without @VERSION: the version in force at --at)\n"
    "  --role ROLE     who creates it: a role the workflow declares (required; journalled)\n"
    "  --actor WHO     the person or system acting (journalled)\n"
    "  --location L    the location profile the case belongs to (see --profile)\n"
    "  --data JSON     initial case data, a JSON object of declared fields\n"
    "  --allow-future  accept an --at more than a day after now (the store's clock)\n"
    "  Exit 3 for an unknown workflow, 5 for an undeclared role, bad JSON or a taken id.\n",
    new_options, case_option, run_new, 1};

/* ------------------------------------------------------------------ fire */

static const struct option fire_options[] = {
    {"role", required_argument, NULL, O_ROLE},
    {"actor", required_argument, NULL, O_ACTOR},
    {"payload", required_argument, NULL, O_PAYLOAD},
    {"expect-revision", required_argument, NULL, O_EXPECT},
    {"key", required_argument, NULL, O_KEY},
    {"allow-future", no_argument, NULL, O_ALLOW_FUTURE},
    {NULL, 0, NULL, 0},
};

static int run_fire(ctx *c, int argc, char **argv) {
  if (argc != 2) return usage_error(c, "give a case id and an event");
  if (!o.role) return usage_error(c, "--role ROLE is required (who fires the event)");
  int ex = EX_OK;
  if (o.payload) {
    json_t *v = parse_json_arg(c, "--payload", o.payload, &ex);
    if (!v) return ex;
    json_decref(v);
  }
  /* A role the case's workflow does not declare is invalid input (exit 5,
   * naming the declared roles), as in new, events, explain and list; not a
   * refusal (exit 1) of an event some role could fire. */
  case_instance *cur = NULL;
  if (case_store_get(c->s, argv[0], &cur) == CASE_OK &&
      (ex = check_role_of(c, case_instance_def(cur), o.role)) != EX_OK)
    return ex;
  int64_t seq = 0;
  int replayed = 0;
  /* An explicit --at is part of the request a --key names; "now" is not (a
   * retry a minute later is the same request). */
  int rc = case_store_fire_v2(c->s, argv[0], argv[1], o.payload, o.actor, o.role, c->at, o.expect,
                              o.key, c->have_at ? CASE_FIRE_KEY_TIME : 0, &seq, &replayed);
  if (rc != CASE_OK) {
    char *msg = strdup(case_errmsg(c->e));
    char *why = NULL;
    case_instance *inst = NULL;
    if (rc_exit(rc) == EX_REFUSED && case_store_get(c->s, argv[0], &inst) == CASE_OK)
      case_instance_explain_v2(inst, argv[1], o.role, o.actor, o.payload, c->at, &why);
    if (c->json) {
      json_t *out = json_pack("{s:s, s:s, s:b, s:s, s:s}", "case", argv[0], "event", argv[1],
                              "accepted", 0, "code", case_errstr(rc), "message", msg ? msg : "");
      if (why) json_object_set_new(out, "explain", json_loads(why, 0, NULL));
      print_json(out);
    }
    fprintf(stderr, "%s fire: %s: %s %s as %s: %s (%s)\n", c->prog, argv[0], argv[1],
            rc_exit(rc) == EX_REFUSED ? "refused" : "not fired", o.role, msg ? msg : "",
            case_errstr(rc));
    free(msg);
    case_free(why);
    return rc_exit(rc);
  }
  case_instance *inst = NULL;
  char *config = NULL;
  if (case_store_get(c->s, argv[0], &inst) == CASE_OK) case_instance_configuration(inst, &config);
  if (c->json) {
    json_t *out = json_pack("{s:s, s:s, s:b, s:I, s:I, s:o, s:b, s:b}", "case", argv[0], "event",
                            argv[1], "accepted", 1, "seq", (json_int_t)seq, "revision",
                            (json_int_t)case_instance_revision(inst), "configuration",
                            json_loads(config ? config : "[]", 0, NULL), "done",
                            case_instance_done(inst), "replayed", replayed);
    if (out && replayed) json_object_set_new(out, "key", json_string(o.key));
    print_json(out);
  } else if (replayed) {
    /* Not "accepted (journal seq N)": this call wrote nothing. */
    if (!c->quiet)
      printf("%s: %s already accepted as journal seq %lld (idempotency key %s); nothing "
             "written\n", argv[0], argv[1], (long long)seq, o.key);
  } else if (!c->quiet) {
    printf("%s: %s accepted (journal seq %lld, revision %lld): %s%s\n", argv[0], argv[1],
           (long long)seq, (long long)case_instance_revision(inst), config ? config : "?",
           case_instance_done(inst) ? " (done)" : "");
  }
  case_free(config);
  return EX_OK;
}

const command cmd_fire = {
    "fire", "fire an event at a case as a role",
    "usage: casectl fire --role ROLE [--actor WHO] [--payload JSON] [--at WHEN]\n"
    "                    [--expect-revision N] [--key KEY] CASE_ID EVENT\n"
    "  Fires EVENT at the stored case as ROLE at --at, as one journal row; the terms of\n"
    "  the case already due by --at run out first, each as its own row.  Prints the\n"
    "  journal sequence, the revision and the configuration after it.  A refused event\n"
    "  changes nothing and exits 1 with the reasons (every blocker) on stderr\n"
    "  (casectl explain gives them without trying); a role the case's workflow does\n"
    "  not declare exits 5, naming the declared roles.\n"
    "  --expect-revision N  refuse with exit 4 if the case changed since revision N\n"
    "  --allow-future       accept an --at more than a day after now (the store's clock)\n"
    "  --key KEY            idempotency key: the same request again with it writes\n"
    "                       nothing and says \"already accepted as journal seq N\"; another\n"
    "                       request with it is refused (exit 5).  The request is the case,\n"
    "                       event, payload, actor, role and, when --at is given, the time\n",
    fire_options, case_option, run_fire, 1};

/* ------------------------------------------------------------------ show */

typedef struct hist {
  ctx *c;
  json_t *rows;
} hist;

static int on_hist_row(void *ud, int64_t seq, const char *row_json) {
  (void)seq;
  hist *h = ud;
  json_t *row = json_loads(row_json, JSON_PRESERVE_ORDER, NULL);
  if (!row) return CASE_NOMEM;
  warn_corrupt_row(h->c, row); /* shown as well as it can be; verify says more */
  json_object_del(row, "data");
  json_object_del(row, "prev");
  json_array_append(h->rows, row);
  json_decref(row);
  return 0;
}

static const struct option show_options[] = {
    {"no-history", no_argument, NULL, O_HISTORY},
    {NULL, 0, NULL, 0},
};

static int run_show(ctx *c, int argc, char **argv) {
  if (argc != 1) return usage_error(c, "give exactly one case id");
  case_instance *inst = NULL;
  int rc = case_store_get(c->s, argv[0], &inst);
  if (rc != CASE_OK) return fail_engine(c, rc, argv[0]);
  char *config = NULL, *data = NULL, *timers = NULL;
  if ((rc = case_instance_configuration(inst, &config)) != CASE_OK ||
      (rc = case_instance_data(inst, &data)) != CASE_OK ||
      (rc = case_instance_timers(inst, &timers)) != CASE_OK) {
    case_free(config);
    case_free(data);
    return fail_engine(c, rc, argv[0]);
  }
  const case_def *d = case_instance_def(inst);
  json_t *out = json_pack("{s:s, s:s, s:i, s:s?, s:I, s:b, s:o, s:o, s:o}", "case", argv[0],
                          "workflow", case_def_id(d), "version", case_def_version(d), "location",
                          case_instance_location(inst), "revision",
                          (json_int_t)case_instance_revision(inst), "done",
                          case_instance_done(inst), "configuration", json_loads(config, 0, NULL),
                          "data", json_loads(data, 0, NULL), "deadlines",
                          json_loads(timers, 0, NULL));
  case_free(config);
  case_free(data);
  case_free(timers);
  if (!out) return fail(c, EX_STORE, "out of memory");
  json_t *tl;
  size_t i;
  json_t *t;
  json_array_foreach(json_object_get(out, "deadlines"), i, t) {
    int64_t due = json_integer_value(json_object_get(t, "due"));
    char buf[32];
    format_local(due, buf, sizeof buf);
    json_object_set_new(t, "due_local", json_string(buf));
    if (!json_object_get(t, "overdue"))
      json_object_set_new(t, "overdue", json_boolean(due <= c->at));
    else if (due <= c->at)
      json_object_set_new(t, "overdue", json_true());
  }
  int pver = case_instance_profile_version(inst);
  if (pver) json_object_set_new(out, "profile_version", json_integer(pver));
  if (o.history) {
    hist h = {c, json_array()};
    rc = case_store_history(c->s, argv[0], -1, on_hist_row, &h, NULL);
    if (rc != CASE_OK) {
      json_decref(h.rows);
      json_decref(out);
      return fail_engine(c, rc, "history");
    }
    json_object_set_new(out, "history", h.rows);
  }
  if (c->json) {
    print_json(out);
    return EX_OK;
  }
  char *cfg = json_dumps(json_object_get(out, "configuration"), JSON_COMPACT);
  char pv[48] = "";
  if (pver) snprintf(pv, sizeof pv, " (profile version %d)", pver);
  printf("case          %s\nworkflow      %s version %d\nlocation      %s%s\nrevision      %lld%s\n"
         "configuration %s\n",
         argv[0], case_def_id(d), case_def_version(d),
         case_instance_location(inst) ? case_instance_location(inst) : "-", pv,
         (long long)case_instance_revision(inst), case_instance_done(inst) ? " (done)" : "",
         cfg ? cfg : "?");
  free(cfg);
  printf("data\n");
  const char *k;
  json_t *v;
  json_object_foreach(json_object_get(out, "data"), k, v) {
    if (json_is_null(v)) continue;
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    printf("  %-24s %s\n", k, s ? s : "?");
    free(s);
  }
  tl = json_object_get(out, "deadlines");
  printf("running terms (%zu)\n", json_array_size(tl));
  json_array_foreach(tl, i, t) {
    const char *ld = json_string_value(json_object_get(t, "last_day"));
    const char *src = json_string_value(json_object_get(t, "source"));
    printf("  %-8s %-26s last day %-10s due %s%s%s%s",
           json_string_value(json_object_get(t, "kind")),
           json_string_value(json_object_get(t, "name")), ld ? ld : "-",
           json_string_value(json_object_get(t, "due_local")),
           json_is_true(json_object_get(t, "overdue")) ? "  OVERDUE" : "", src ? "  [" : "",
           src ? src : "");
    if (src) printf("]\n"); else printf("\n");
  }
  if (o.history) {
    tl = json_object_get(out, "history");
    printf("history (%zu)\n", json_array_size(tl));
    json_array_foreach(tl, i, t) {
      char buf[32];
      format_local(json_integer_value(json_object_get(t, "time")), buf, sizeof buf);
      const char *role = json_string_value(json_object_get(t, "role"));
      const char *actor = json_string_value(json_object_get(t, "actor"));
      char *conf = json_dumps(json_object_get(t, "configuration"), JSON_COMPACT);
      printf("  %4lld %s  %-28s %-9s %-14s -> %s\n",
             (long long)json_integer_value(json_object_get(t, "revision")), buf,
             json_string_value(json_object_get(t, "event")), role ? role : "-",
             actor ? actor : "-", conf ? conf : "?");
      free(conf);
    }
  }
  json_decref(out);
  return EX_OK;
}

const command cmd_show = {
    "show", "a case: configuration, data, running terms, history",
    "usage: casectl show [--json] [--no-history] [--at WHEN] CASE_ID\n"
    "  Prints the stored case: its workflow and version, location, revision, the\n"
    "  active states, the data, the running terms (last day, due time, legal source)\n"
    "  and the journal rows of the case.  Reads only.  Terms due at or before --at\n"
    "  (default now) are marked overdue.\n",
    show_options, case_option, run_show, 3};

/* ------------------------------------------------------------------ migrate-profile */

static const struct option migrate_options[] = {
    {"version", required_argument, NULL, O_VERSION},
    {"role", required_argument, NULL, O_ROLE},
    {"actor", required_argument, NULL, O_ACTOR},
    {"allow-future", no_argument, NULL, O_ALLOW_FUTURE},
    {NULL, 0, NULL, 0},
};

static int run_migrate_profile(ctx *c, int argc, char **argv) {
  if (argc != 1) return usage_error(c, "give exactly one case id");
  if (!o.actor) return usage_error(c, "--actor WHO is required (the step is journalled)");
  case_instance *inst = NULL;
  int rc = case_store_get(c->s, argv[0], &inst);
  if (rc != CASE_OK) return fail_engine(c, rc, argv[0]);
  int ex = o.role ? check_role_of(c, case_instance_def(inst), o.role) : EX_OK;
  if (ex != EX_OK) return ex;
  int from = case_instance_profile_version(inst);
  const char *loc = case_instance_location(inst);
  char *where = strdup(loc ? loc : "");
  int64_t seq = 0;
  rc = case_store_set_profile(c->s, argv[0], o.version, o.actor, o.role, c->at, &seq);
  if (rc != CASE_OK) {
    free(where);
    return fail_engine(c, rc, argv[0]);
  }
  int to = from;
  if (case_store_get(c->s, argv[0], &inst) == CASE_OK) to = case_instance_profile_version(inst);
  if (c->json)
    print_json(json_pack("{s:s, s:s, s:i, s:i, s:b, s:I}", "case", argv[0], "location", where,
                         "from", from, "to", to, "changed", seq != 0, "seq", (json_int_t)seq));
  else if (!c->quiet && seq == 0)
    printf("%s already runs on profile %s version %d; nothing written\n", argv[0], where, to);
  else if (!c->quiet)
    printf("%s: profile %s version %d -> %d (journal seq %lld)\n", argv[0], where, from, to,
           (long long)seq);
  free(where);
  return EX_OK;
}

const command cmd_migrate_profile = {
    "migrate-profile", "move a case to another version of its location profile",
    "usage: casectl migrate-profile --actor WHO [--role ROLE] [--version N] [--at WHEN]\n"
    "                               CASE_ID\n"
    "  Moves one case to version N (default: the latest) of its location's profile\n"
    "  as a journalled step (event libcase:profile) at --at.  Each case runs on the\n"
    "  version it was created with; storing a changed profile (init/load/new ...\n"
    "  --profile) adds a version that only new cases get.  verify replays a moved\n"
    "  case's earlier events on the old version and later ones on the new; nothing\n"
    "  is overwritten.  A case already on version N: nothing written.  Exit 3 for an\n"
    "  unknown case or version, 1 for a closed case, 5 for a case without location\n"
    "  or a --role the case's workflow does not declare.\n",
    migrate_options, case_option, run_migrate_profile, 1};

/* ------------------------------------------------------------------ events */

static const struct option events_options[] = {
    {"role", required_argument, NULL, O_ROLE},
    {"actor", required_argument, NULL, O_ACTOR},
    {NULL, 0, NULL, 0},
};

static int run_events(ctx *c, int argc, char **argv) {
  if (argc != 1) return usage_error(c, "give exactly one case id");
  if (!o.role) return usage_error(c, "--role ROLE is required");
  case_instance *inst = NULL;
  int rc = case_store_get(c->s, argv[0], &inst);
  if (rc != CASE_OK) return fail_engine(c, rc, argv[0]);
  int ex = check_role_of(c, case_instance_def(inst), o.role);
  if (ex != EX_OK) return ex;
  char *avail = NULL;
  if ((rc = case_instance_available_v2(inst, o.role, o.actor, c->at, &avail)) != CASE_OK)
    return fail_engine(c, rc, argv[0]);
  json_t *list = json_loads(avail, 0, NULL);
  case_free(avail);
  if (c->json) {
    print_json(list);
    return EX_OK;
  }
  size_t i;
  json_t *v;
  if (json_array_size(list) == 0) printf("%s may fire nothing on %s now\n", o.role, argv[0]);
  json_array_foreach(list, i, v) {
    char *tgt = json_dumps(json_object_get(v, "target"), JSON_COMPACT | JSON_ENCODE_ANY);
    printf("%-28s from %-28s to %s\n", json_string_value(json_object_get(v, "event")),
           json_string_value(json_object_get(v, "source")), tgt ? tgt : "[]");
    free(tgt);
  }
  json_decref(list);
  return EX_OK;
}

const command cmd_events = {
    "events", "what a role may fire at a case now (guards evaluated)",
    "usage: casectl events --role ROLE [--actor WHO] [--at WHEN] [--json] CASE_ID\n"
    "  Lists the events ROLE may fire at the case at --at: those with a transition in the\n"
    "  active states whose guard holds, as a fire at --at would find the case (terms due\n"
    "  by then run out first, on a copy).  Events only the engine raises (done.state.*,\n"
    "  after.*, a term's clock-only events) are never listed.\n"
    "  --actor WHO     who asks: guards that read event.actor see it, as in a fire\n"
    "  Exit 5 for a role the case's workflow does not declare.\n",
    events_options, case_option, run_events, 3};

/* ------------------------------------------------------------------ explain */

static const struct option explain_options[] = {
    {"role", required_argument, NULL, O_ROLE},
    {"actor", required_argument, NULL, O_ACTOR},
    {"payload", required_argument, NULL, O_PAYLOAD},
    {NULL, 0, NULL, 0},
};

static int run_explain(ctx *c, int argc, char **argv) {
  if (argc != 2) return usage_error(c, "give a case id and an event");
  if (!o.role) return usage_error(c, "--role ROLE is required (who would fire the event)");
  int ex = EX_OK;
  if (o.payload) {
    json_t *v = parse_json_arg(c, "--payload", o.payload, &ex);
    if (!v) return ex;
    json_decref(v);
  }
  case_instance *inst = NULL;
  int rc = case_store_get(c->s, argv[0], &inst);
  if (rc != CASE_OK) return fail_engine(c, rc, argv[0]);
  if ((ex = check_role_of(c, case_instance_def(inst), o.role)) != EX_OK) return ex;
  char *text = NULL;
  rc = case_instance_explain_v2(inst, argv[1], o.role, o.actor, o.payload, c->at, &text);
  if (rc != CASE_OK) return fail_engine(c, rc, argv[0]);
  json_t *res = json_loads(text, 0, NULL);
  case_free(text);
  if (!res) return fail(c, EX_STORE, "out of memory");
  int possible = json_is_true(json_object_get(res, "possible"));
  if (c->json) {
    json_object_set_new(res, "case", json_string(argv[0]));
    print_json(res);
    return possible ? EX_OK : EX_REFUSED;
  }
  char when[32];
  format_local(c->at, when, sizeof when);
  if (possible) {
    printf("%s: %s as %s%s%s at %s would be accepted\n", argv[0], argv[1], o.role,
           o.actor ? " by " : "", o.actor ? o.actor : "", when);
  } else {
    json_t *bl = json_object_get(res, "blockers");
    printf("%s: %s as %s%s%s at %s would be refused (%zu blocker%s):\n", argv[0], argv[1],
           o.role, o.actor ? " by " : "", o.actor ? o.actor : "", when, json_array_size(bl),
           json_array_size(bl) == 1 ? "" : "s");
    size_t i;
    json_t *b;
    json_array_foreach(bl, i, b)
      printf("  %-11s %s\n", json_string_value(json_object_get(b, "code")),
             json_string_value(json_object_get(b, "message")));
  }
  json_decref(res);
  return possible ? EX_OK : EX_REFUSED;
}

const command cmd_explain = {
    "explain", "whether an event would be accepted; every blocker if not",
    "usage: casectl explain --role ROLE [--actor WHO] [--payload JSON] [--at WHEN] [--json]\n"
    "                       CASE_ID EVENT\n"
    "  Says whether EVENT fired by ROLE (as WHO, with JSON as its payload) at --at would\n"
    "  be accepted, and if not, every reason: each transition for the event that the\n"
    "  role may not take, each false or failing guard, a case that is done, a time\n"
    "  before the case's last event, a name only the engine raises.  Guards see the\n"
    "  actor and the payload as in a fire, and the case as a fire at --at would find it\n"
    "  (terms due by then run out first, on a copy).  Opens the store read-only: no\n"
    "  refused row is written, nothing changes.  Exit 0 when it would be accepted, 1\n"
    "  when refused, 5 for a role the workflow does not declare.\n",
    explain_options, case_option, run_explain, 3};

/* ------------------------------------------------------------------ tick */

static const struct option tick_options[] = {
    {"daily", no_argument, NULL, O_DAILY},
    {"from", required_argument, NULL, O_FROM},
    {"allow-future", no_argument, NULL, O_ALLOW_FUTURE},
    {NULL, 0, NULL, 0},
};

static int run_tick(ctx *c, int argc, char **argv) {
  (void)argv;
  if (argc != 0) return usage_error(c, "tick takes no arguments");
  int64_t from = c->at;
  if (o.daily) {
    if (o.from) {
      if (parse_time(o.from, &from) != 0) return usage_error(c, "--from: '%s' is not a date", o.from);
    } else {
      int ex = latest_event_time(c, &from);
      if (ex != EX_OK) return ex;
    }
  }
  long days = from < c->at ? (long)((c->at - from + 86399) / 86400) : 0;
  progress p;
  progress_start(&p, "tick", days);
  int total = 0;
  int ex = EX_OK;
  int64_t t = from;
  for (long day = 1; day <= days + 1; day++) {
    if (o.daily && day <= days) {
      t = from + (int64_t)day * 86400;
      if (t > c->at) t = c->at;
    } else {
      t = c->at;
    }
    int fired = 0;
    int rc = case_store_tick_v2(c->s, t, 0, &fired); /* batches of 100, a savepoint each */
    total += fired;
    if (rc != CASE_OK) {
      fprintf(stderr, "%s tick: %s (%s)\n", c->prog, case_errmsg(c->e), case_errstr(rc));
      ex = rc_exit(rc);
    }
    char note[16];
    format_date(t, note, sizeof note);
    progress_update(&p, day <= days ? day : days, note);
    if (!o.daily || t >= c->at) break;
  }
  progress_end(&p);
  char buf[32];
  format_local(c->at, buf, sizeof buf);
  if (c->json)
    print_json(json_pack("{s:I, s:s, s:i}", "at", (json_int_t)c->at, "local", buf, "fired", total));
  else if (!c->quiet)
    printf("tick to %s: %d timer(s) fired%s\n", buf, total, o.daily ? " (day by day)" : "");
  return ex;
}

const command cmd_tick = {
    "tick", "advance the clock: fire every term and timer due by --at",
    "usage: casectl tick [--at WHEN] [--daily [--from WHEN]] [--json]\n"
    "  Fires due timers over all cases, each as its own journal row at its due time,\n"
    "  100 to a transaction (each timer all-or-nothing: one that fails is recorded and\n"
    "  rolled back alone; a crash loses at most the batch being written, fired again\n"
    "  by the next tick).\n"
    "  --daily steps one day at a time from --from (default: the latest event in\n"
    "  the journal) to --at, with a progress bar on a terminal.\n"
    "  An --at more than a day after now (the store's clock) is refused (exit 5):\n"
    "  it would fire every term of every case up to it.  --allow-future allows it.\n",
    tick_options, case_option, run_tick, 1};
