/*
 * SCXML in and out, and the SCXML semantics in both syntaxes (issue 13):
 * round trips by model hash, errors at their file:line:col, and send,
 * cancel, invoke, donedata, In(), _event, errors as events, late binding and
 * <initial> content, each written in YAML and (where the W3C suite does not
 * already prove it) in SCXML.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>

#include "internal.h"
#include "libcase/libcase.h"
#include "libcase/store.h"

#define T0 INT64_C(1772442000) /* 2026-03-02T09:00:00Z, a Monday */
#define DAY INT64_C(86400)
#define DATA CASE_TEST_DATA "/scxml"
#define WORKFLOWS CASE_SOURCE_DIR "/workflows"

static int setup(void **state) {
  case_engine *e = NULL;
  assert_int_equal(case_engine_open(&e), CASE_OK);
  *state = e;
  return 0;
}

static int teardown(void **state) {
  case_engine_close(*state);
  return 0;
}

static const case_def *yaml(case_engine *e, const char *text) {
  const case_def *d = NULL;
  if (case_def_load_string(e, text, strlen(text), "t.yaml", &d) != CASE_OK)
    fail_msg("YAML does not load: %s", case_errmsg(e));
  return d;
}

static const case_def *scxml(case_engine *e, const char *text) {
  const case_def *d = NULL;
  if (case_def_load_scxml_string(e, text, strlen(text), "t.scxml", &d) != CASE_OK)
    fail_msg("SCXML does not load: %s", case_errmsg(e));
  return d;
}

static case_instance *start(case_engine *e, const case_def *d, const char *id) {
  case_instance *c = NULL;
  if (case_instance_create(e, d, id, NULL, NULL, T0, &c) != CASE_OK)
    fail_msg("create: %s", case_errmsg(e));
  return c;
}

static void assert_config(const case_instance *c, const char *want) {
  char *cfg = NULL;
  assert_int_equal(case_instance_configuration(c, &cfg), CASE_OK);
  if (strcmp(cfg, want) != 0) fail_msg("configuration %s, expected %s", cfg, want);
  case_free(cfg);
}

static json_t *data_of(const case_instance *c) {
  char *s = NULL;
  assert_int_equal(case_instance_data(c, &s), CASE_OK);
  json_t *j = json_loads(s, 0, NULL);
  case_free(s);
  assert_non_null(j);
  return j;
}

/* Exports d, imports the text on a fresh engine (with `root` as Lua root),
 * and checks the model hash is the same and a second export the same text. */
static void round_trip(const case_def *d, const char *root) {
  char *x = NULL;
  assert_int_equal(case_def_export_scxml(d, &x), CASE_OK);
  case_engine *e2 = NULL;
  assert_int_equal(case_engine_open(&e2), CASE_OK);
  if (root) assert_int_equal(case_engine_set_lua_root(e2, root), CASE_OK);
  const case_def *d2 = NULL;
  if (case_def_load_scxml_string(e2, x, strlen(x), "export.scxml", &d2) != CASE_OK)
    fail_msg("the export does not load: %s", case_errmsg(e2));
  assert_string_equal(case_def_model_hash(d2), case_def_model_hash(d));
  assert_string_not_equal(case_def_hash(d2), case_def_hash(d)); /* other bytes */
  char *y = NULL;
  assert_int_equal(case_def_export_scxml(d2, &y), CASE_OK);
  assert_string_equal(y, x);
  case_free(x);
  case_free(y);
  case_engine_close(e2);
}

/* ---- round trips ---- */

static void asylum_round_trip(const char *file) {
  case_engine *e = NULL;
  assert_int_equal(case_engine_open(&e), CASE_OK);
  char path[512];
  snprintf(path, sizeof path, "%s/%s", WORKFLOWS, file);
  const case_def *d = NULL;
  if (case_def_load_file(e, path, &d) != CASE_OK) fail_msg("%s: %s", path, case_errmsg(e));
  round_trip(d, WORKFLOWS); /* lua: ../lua/asiel.lua is relative to the workflows */
  case_engine_close(e);
}

static void test_asylum_round_trip(void **state) {
  (void)state;
  asylum_round_trip("asielprocedure.yaml");
  asylum_round_trip("asielprocedure-v2.yaml");
}

/* The model hash does not change with the syntax: one chart in YAML and in
 * SCXML (with the libcase settings a YAML definition has by default). */
static void test_same_model_both_syntaxes(void **state) {
  case_engine *e = *state;
  const case_def *a = yaml(e,
      "workflow: w\nversion: 1\nroles: [IND]\n"
      "data:\n  n: {type: integer, default: 0}\n"
      "initial: s\n"
      "states:\n"
      "  s:\n"
      "    entry:\n"
      "      - send: {event: tik, delay: 2 days, id: t1}\n"
      "      - \"case.n = case.n + 1\"\n"
      "    on:\n"
      "      tik: {target: s, guard: \"case.n < 3\"}\n"
      "      stop: {target: klaar, roles: [IND], actions: [{cancel: t1}]}\n"
      "    deadlines:\n"
      "      termijn: {after: 6 weeks, source: \"Vw 2000 art. 42\", on_expiry: tik}\n"
      "  klaar: {final: true}\n");
  case_engine *e2 = NULL;
  assert_int_equal(case_engine_open(&e2), CASE_OK);
  const case_def *b = scxml(e2,
      "<scxml xmlns='http://www.w3.org/2005/07/scxml' xmlns:libcase='urn:libcase:scxml:1'\n"
      "       version='1.0' datamodel='lua' initial='s' libcase:workflow='w' libcase:version='1'\n"
      "       libcase:errors='refuse' libcase:datamodel='case' libcase:roles='IND'>\n"
      "  <datamodel><data id='n' libcase:type='integer' libcase:default='0'/></datamodel>\n"
      "  <!-- the same state, written by hand -->\n"
      "  <state id='s'>\n"
      "    <onentry><send event='tik' delay='2 days' id='t1'/><script>case.n = case.n + 1</script></onentry>\n"
      "    <transition event='tik' target='s' cond='case.n &lt; 3'/>\n"
      "    <transition event='stop' target='klaar' libcase:roles='IND'><cancel sendid='t1'/></transition>\n"
      "    <libcase:deadline name='termijn' after='6 weeks' source='Vw 2000 art. 42' on_expiry='tik'/>\n"
      "  </state>\n"
      "  <final id='klaar'/>\n"
      "</scxml>\n");
  assert_string_equal(case_def_model_hash(a), case_def_model_hash(b));
  assert_string_not_equal(case_def_hash(a), case_def_hash(b));
  round_trip(a, NULL);
  case_engine_close(e2);
}

/* A chart as an SCXML editor writes it: comments, another namespace's layout
 * attributes and elements, tabs, an <initial> element, history, parallel
 * regions, donedata.  It loads, runs, and round-trips. */
static void test_editor_chart(void **state) {
  case_engine *e = *state;
  const case_def *d = NULL;
  if (case_def_load_scxml_file(e, DATA "/editor_chart.scxml", &d) != CASE_OK)
    fail_msg("%s", case_errmsg(e));
  assert_string_equal(case_def_id(d), "Aanvraag");
  assert_int_equal(case_def_warning_count(d), 0);
  round_trip(d, NULL);
  /* the editor's layout comes back out, where it was */
  char *x = NULL;
  assert_int_equal(case_def_export_scxml(d, &x), CASE_OK);
  assert_non_null(strstr(x, "xmlns:qt=\"http://www.qt.io/2015/02/scxml-ext\""));
  assert_non_null(strstr(x, "qt:editorversion=\"4.14.1\""));
  assert_non_null(strstr(x, "<qt:editorinfo initialGeometry=\"-120.75;-60.12;-20;-20;40;40\"/>"));
  const char *st = strstr(x, "<state id=\"ontvangen\">");
  assert_non_null(st);
  assert_non_null(strstr(st, "<qt:editorinfo scenegeometry=\"84.58;159.71"));
  assert_non_null(strstr(x, "<qt:editorinfo endTargetFactors=\"32.74;52.11\"/>"));
  case_free(x);
  case_instance *c = start(e, d, "a1");
  assert_config(c, "[\"ontvangen\"]");
  /* the reminder is a durable send: "14 days" is a term on the definition's
   * (plain) clock, due at the end of its last day, Monday 16 March 2026 */
  char *t = NULL;
  assert_int_equal(case_instance_timers(c, &t), CASE_OK);
  json_t *tj = json_loads(t, 0, NULL);
  case_free(t);
  assert_int_equal(json_array_size(tj), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(tj, 0), "kind")), "send");
  assert_int_equal(json_integer_value(json_object_get(json_array_get(tj, 0), "due")),
                   INT64_C(1773702000)); /* 2026-03-16T23:00:00Z: midnight in Amsterdam */
  json_decref(tj);
  assert_int_equal(case_instance_tick(c, T0 + 14 * DAY, NULL), CASE_OK);
  json_t *dj = data_of(c);
  assert_int_equal(json_integer_value(json_object_get(dj, "herinneringen")), 0); /* not yet */
  json_decref(dj);
  assert_int_equal(case_instance_tick(c, T0 + 15 * DAY, NULL), CASE_OK);
  dj = data_of(c);
  assert_int_equal(json_integer_value(json_object_get(dj, "herinneringen")), 1);
  json_decref(dj);
  assert_int_equal(case_instance_fire(c, "compleet", NULL, NULL, NULL, T0 + 15 * DAY), CASE_OK);
  assert_config(c, "[\"behandeling\",\"inhoud\",\"toets\",\"administratie\",\"registreren\"]");
  /* the cancelled reminder never comes */
  assert_int_equal(case_instance_tick(c, T0 + 60 * DAY, NULL), CASE_OK);
  assert_config(c, "[\"behandeling\",\"inhoud\",\"toets\",\"administratie\",\"registreren\"]");
  assert_int_equal(case_instance_fire(c, "getoetst", NULL, NULL, NULL, T0 + 61 * DAY), CASE_OK);
  assert_int_equal(case_instance_fire(c, "onderbreken", NULL, NULL, NULL, T0 + 62 * DAY), CASE_OK);
  assert_config(c, "[\"wacht\"]");
  /* the shallow history restores besluit */
  assert_int_equal(case_instance_fire(c, "hervatten", NULL, NULL, NULL, T0 + 63 * DAY), CASE_OK);
  assert_config(c, "[\"behandeling\",\"inhoud\",\"besluit\",\"administratie\",\"registreren\"]");
  assert_int_equal(case_instance_fire(c, "besloten", NULL, NULL, NULL, T0 + 64 * DAY), CASE_OK);
  assert_int_equal(case_instance_fire(c, "geregistreerd", NULL, NULL, NULL, T0 + 64 * DAY), CASE_OK);
  assert_config(c, "[\"afgehandeld\"]");
  assert_true(case_instance_done(c));
}

/* ---- errors at their position ---- */

/* Every file of tests/data/scxml/invalid/ starts with a comment
 *   <!-- expect[ CODE]: L:C: text -->
 * and fails to load with that code (CASE_INVALID by default) at L:C. */
static void test_invalid_files(void **state) {
  (void)state;
  DIR *dh = opendir(DATA "/invalid");
  assert_non_null(dh);
  struct dirent *de;
  int n = 0;
  while ((de = readdir(dh))) {
    if (!strstr(de->d_name, ".scxml")) continue;
    char path[512];
    snprintf(path, sizeof path, "%s/invalid/%s", DATA, de->d_name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[512] = "";
    char *got = fgets(line, sizeof line, f);
    fclose(f);
    assert_non_null(got);
    char code[32] = "INVALID", text[400];
    int l = 0, col = 0;
    if (sscanf(line, "<!-- expect %31[A-Z]: %d:%d: %399[^\n]", code, &l, &col, text) != 4 &&
        sscanf(line, "<!-- expect: %d:%d: %399[^\n]", &l, &col, text) != 3)
      fail_msg("%s: no '<!-- expect: L:C: text -->' first line", path);
    char *end = strstr(text, " -->");
    if (end) *end = '\0';
    int want = !strcmp(code, "SCRIPT") ? CASE_SCRIPT : !strcmp(code, "IO") ? CASE_IO
             : !strcmp(code, "LIMIT") ? CASE_LIMIT : CASE_INVALID;
    case_engine *e = NULL;
    assert_int_equal(case_engine_open(&e), CASE_OK);
    int rc = case_def_load_scxml_file(e, path, NULL);
    if (rc != want) fail_msg("%s: got %s, expected %s: %s", path, case_errname(rc),
                             case_errname(want), case_errmsg(e));
    char prefix[600];
    snprintf(prefix, sizeof prefix, "%s:%d:%d: ", path, l, col);
    if (strncmp(case_errmsg(e), prefix, strlen(prefix)) != 0 || !strstr(case_errmsg(e), text))
      fail_msg("%s: expected '%s%s', got '%s'", path, prefix, text, case_errmsg(e));
    assert_null(e->defs); /* nothing was registered */
    case_engine_close(e);
    n++;
  }
  closedir(dh);
  assert_true(n >= 8);
}

/* ---- the semantics in YAML ---- */

/* send with a delay is a durable timer (in the snapshot), cancel drops it. */
static void test_yaml_send_cancel(void **state) {
  case_engine *e = *state;
  const case_def *d = yaml(e,
      "workflow: s\nversion: 1\n"
      "initial: a\n"
      "states:\n"
      "  a:\n"
      "    entry:\n"
      "      - send: {event: herinnering, delay: 1 day, id: h}\n"
      "      - send: {event: aanmaning, delay: 2 days, id: m, params: [{name: n, expr: 7}]}\n"
      "    on:\n"
      "      herinnering: {actions: [{cancel: m}], target: b}\n"
      "      aanmaning: z\n"
      "  b:\n"
      "    on: {'*': z}\n"
      "  z: {final: true}\n");
  case_instance *c = start(e, d, "s1");
  char *snap = NULL;
  assert_int_equal(case_instance_snapshot(c, &snap), CASE_OK);
  assert_non_null(strstr(snap, "\"kind\":\"send\""));
  /* restored from its snapshot, the case keeps its sends */
  case_instance_free(c);
  assert_int_equal(case_instance_restore(e, snap, &c), CASE_OK);
  case_free(snap);
  /* "1 day" on the plain clock: due at the end of Tuesday 3 March */
  assert_int_equal(case_instance_tick(c, T0 + DAY, NULL), CASE_OK);
  assert_config(c, "[\"a\"]");
  assert_int_equal(case_instance_tick(c, T0 + 2 * DAY, NULL), CASE_OK);
  assert_config(c, "[\"b\"]");
  /* the aanmaning was cancelled: nothing is due any more */
  int64_t due = 0;
  assert_int_equal(case_engine_next_due(e, &due), CASE_NOTFOUND);
  assert_int_equal(case_instance_tick(c, T0 + 5 * DAY, NULL), CASE_OK);
  assert_config(c, "[\"b\"]");
}

/* invoke: a child case of another definition with params, talking to its
 * parent; done.invoke with donedata; leaving the state cancels a child. */
static void test_yaml_invoke(void **state) {
  case_engine *e = *state;
  yaml(e,
      "workflow: dublin\nversion: 1\n"
      "datamodel: globals\n"
      "data:\n  lidstaat: {type: string}\n"
      "initial: verzoek\n"
      "states:\n"
      "  verzoek:\n"
      "    entry: [{send: {event: claim_gelegd, target: '#_parent', params: [{name: aan, expr: lidstaat}]}}]\n"
      "    on: {akkoord: overgedragen}\n"
      "  overgedragen:\n"
      "    final: true\n"
      "    donedata: {params: [{name: lidstaat, expr: lidstaat}]}\n");
  const case_def *p = yaml(e,
      "workflow: asiel\nversion: 1\n"
      "data:\n  claim: {type: any}\n  uitkomst: {type: any}\n"
      "initial: dublin\n"
      "states:\n"
      "  dublin:\n"
      "    invoke:\n"
      "      - {id: claim, workflow: dublin, params: [{name: lidstaat, expr: \"'DE'\"}]}\n"
      "    on:\n"
      "      claim_gelegd: {actions: [\"case.claim = event.data.aan\"]}\n"
      "      done.invoke.claim: {target: klaar, actions: [\"case.uitkomst = event.data.lidstaat\"]}\n"
      "      stop: weg\n"
      "  klaar: {final: true}\n"
      "  weg: {final: true}\n");
  case_instance *c = start(e, p, "z1");
  case_instance *child = case_instance_find(e, "z1.claim");
  assert_non_null(child);
  assert_ptr_equal(case_instance_parent(child), c);
  assert_string_equal(case_instance_invokeid(child), "claim");
  json_t *dj = data_of(c);
  assert_string_equal(json_string_value(json_object_get(dj, "claim")), "DE");
  json_decref(dj);
  assert_int_equal(case_instance_fire(child, "akkoord", NULL, NULL, NULL, T0 + DAY), CASE_OK);
  assert_true(case_instance_done(child));
  assert_config(c, "[\"klaar\"]");
  dj = data_of(c);
  assert_string_equal(json_string_value(json_object_get(dj, "uitkomst")), "DE");
  json_decref(dj);

  /* a second case leaves the invoking state: its child is cancelled */
  case_instance *c2 = start(e, p, "z2");
  case_instance *child2 = case_instance_find(e, "z2.claim");
  assert_non_null(child2);
  assert_int_equal(case_instance_fire(c2, "stop", NULL, NULL, NULL, T0 + DAY), CASE_OK);
  assert_true(case_instance_done(child2));
  assert_config(child2, "[\"verzoek\"]"); /* stopped where it was */
  /* and what it would send is no longer delivered */
  assert_int_equal(case_instance_fire(child2, "akkoord", NULL, NULL, NULL, T0 + 2 * DAY),
                   CASE_DONE);
}

/* errors: events turns a failing action into error.execution; the default
 * refuses the event and leaves the case as it was. */
static void test_yaml_errors_as_events(void **state) {
  case_engine *e = *state;
  static const char *const body =
      "version: 1\n"
      "data:\n  n: {type: integer, default: 0}\n"
      "initial: a\n"
      "states:\n"
      "  a:\n"
      "    on:\n"
      "      go: {target: b, actions: [\"case.n = 1\", \"error('kapot')\", \"case.n = 2\"]}\n"
      "  b:\n"
      "    on:\n"
      "      error.execution: {target: fout, actions: [\"case.n = case.n + 10\"]}\n"
      "  fout: {final: true}\n";
  char text[1024];
  snprintf(text, sizeof text, "workflow: r\n%s", body);
  const case_def *r = yaml(e, text);
  snprintf(text, sizeof text, "workflow: v\nerrors: events\n%s", body);
  const case_def *v = yaml(e, text);
  case_instance *cr = start(e, r, "r1"), *cv = start(e, v, "v1");
  assert_int_equal(case_instance_fire(cr, "go", NULL, NULL, NULL, T0), CASE_SCRIPT);
  assert_config(cr, "[\"a\"]");
  assert_int_equal(case_instance_fire(cv, "go", NULL, NULL, NULL, T0), CASE_OK);
  assert_config(cv, "[\"fout\"]");
  json_t *dj = data_of(cv);
  assert_int_equal(json_integer_value(json_object_get(dj, "n")), 11); /* the block stopped */
  json_decref(dj);
}

/* In(), _event fields, <initial> content and history default content, late
 * binding, in YAML. */
static void test_yaml_system_variables(void **state) {
  case_engine *e = *state;
  const case_def *d = yaml(e,
      "workflow: sv\nversion: 1\n"
      "datamodel: globals\nbinding: late\n"
      "data:\n  log: {type: list, default: []}\n"
      "initial: p\n"
      "states:\n"
      "  p:\n"
      "    parallel: true\n"
      "    states:\n"
      "      r1:\n"
      "        initial: {target: x, actions: [\"log[#log + 1] = 'init'\"]}\n"
      "        states:\n"
      "          x:\n"
      "            on:\n"
      "              go: {target: y, guard: \"In('q') and _event.name == 'go' and _event.type == 'external'\"}\n"
      "              lib: {target: y, actions: [\"string = 1\"]}\n"
      "          y:\n"
      "            data: {laat: {expr: \"#log\"}}\n"
      "            entry: [\"log[#log + 1] = 'y' .. laat\"]\n"
      "      r2:\n"
      "        initial: q\n"
      "        states:\n"
      "          q: {}\n");
  case_instance *c = start(e, d, "sv1");
  /* a global of the sandbox stays read-only in the globals datamodel */
  assert_int_equal(case_instance_fire(c, "lib", NULL, NULL, NULL, T0), CASE_SCRIPT);
  assert_non_null(strstr(case_errmsg(e), "'string' is a sandbox global"));
  assert_int_equal(case_instance_fire(c, "go", NULL, NULL, NULL, T0), CASE_OK);
  assert_config(c, "[\"p\",\"r1\",\"y\",\"r2\",\"q\"]");
  json_t *dj = data_of(c);
  /* laat was bound on y's first entry, when log held one entry */
  assert_string_equal(json_string_value(json_array_get(json_object_get(dj, "log"), 1)), "y1");
  assert_int_equal(json_integer_value(json_object_get(dj, "laat")), 1);
  json_decref(dj);
}

/* A case of a definition read from SCXML survives a store: its sends and
 * its data are in the snapshot, and the definition reloads from its source
 * with the files it read pinned. */
static void test_scxml_in_store(void **state) {
  case_engine *e = *state;
  const case_def *d = NULL;
  if (case_def_load_scxml_file(e, DATA "/editor_chart.scxml", &d) != CASE_OK)
    fail_msg("%s", case_errmsg(e));
  char path[] = "/tmp/test_scxml_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  remove(path);
  case_store *s = NULL;
  assert_int_equal(case_store_open(e, path, CASE_STORE_CREATE, &s), CASE_OK);
  assert_int_equal(case_store_add_def(s, d), CASE_OK);
  assert_int_equal(case_store_create(s, d, "st1", NULL, NULL, NULL, NULL, T0, NULL), CASE_OK);
  assert_int_equal(case_store_tick(s, T0 + 15 * DAY, NULL), CASE_OK);
  case_store_close(s);
  /* another engine, with nothing loaded */
  case_engine *e2 = NULL;
  assert_int_equal(case_engine_open(&e2), CASE_OK);
  assert_int_equal(case_store_open(e2, path, 0, &s), CASE_OK);
  case_instance *c = NULL;
  assert_int_equal(case_store_get(s, "st1", &c), CASE_OK);
  assert_string_equal(case_def_model_hash(case_instance_def(c)), case_def_model_hash(d));
  json_t *dj = data_of(c);
  assert_int_equal(json_integer_value(json_object_get(dj, "herinneringen")), 1);
  json_decref(dj);
  char *report = NULL;
  int rc = case_store_verify(s, &report);
  if (rc != CASE_OK) fail_msg("verify: %s", report ? report : case_errmsg(e2));
  case_free(report);
  case_store_close(s);
  case_engine_close(e2);
  remove(path);
}

/* In a store a child case is a case of its own, with its own journal, linked
 * to its parent; what they send each other is journalled by the receiver
 * (actor "#_scxml_<sender>"), and verify replays every journal alone. */
static void test_store_invoke(void **state) {
  case_engine *e = *state;
  yaml(e,
      "workflow: beroep\nversion: 1\n"
      "data:\n  zaak: {type: string}\n"
      "initial: ingesteld\n"
      "states:\n"
      "  ingesteld:\n"
      "    entry: [{send: {event: ontvangen, target: '#_parent', namelist: [case.zaak]}}]\n"
      "    on: {uitspraak: gedaan}\n"
      "  gedaan:\n"
      "    final: true\n"
      "    donedata: {params: [{name: uitkomst, expr: \"'gegrond'\"}]}\n");
  const case_def *p = yaml(e,
      "workflow: zaak\nversion: 1\n"
      "data:\n  ontvangen: {type: any}\n  uitkomst: {type: any}\n"
      "initial: beroep\n"
      "states:\n"
      "  beroep:\n"
      "    invoke: [{id: rb, workflow: beroep, params: [{name: zaak, expr: \"'Z1'\"}]}]\n"
      "    on:\n"
      "      ontvangen: {actions: [\"case.ontvangen = event.data['case.zaak']\"]}\n"
      "      done.invoke.rb: {target: klaar, actions: [\"case.uitkomst = event.data.uitkomst\"]}\n"
      "  klaar: {final: true}\n");
  char path[] = "/tmp/test_scxml_inv_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  remove(path);
  case_store *s = NULL;
  assert_int_equal(case_store_open(e, path, CASE_STORE_CREATE, &s), CASE_OK);
  assert_int_equal(case_store_add_def(s, p), CASE_OK);
  if (case_store_create(s, p, "Z1", NULL, NULL, "ind", NULL, T0, NULL) != CASE_OK)
    fail_msg("create: %s", case_errmsg(e));
  case_instance *c = NULL, *child = NULL;
  assert_int_equal(case_store_get(s, "Z1", &c), CASE_OK);
  json_t *dj = data_of(c);
  assert_string_equal(json_string_value(json_object_get(dj, "ontvangen")), "Z1");
  json_decref(dj);
  assert_int_equal(case_store_get(s, "Z1.rb", &child), CASE_OK);
  assert_string_equal(case_instance_invokeid(child), "rb");
  if (case_store_fire(s, "Z1.rb", "uitspraak", NULL, "rechter", NULL, T0 + DAY, -1, NULL, NULL) !=
      CASE_OK)
    fail_msg("fire: %s", case_errmsg(e));
  case_store_close(s);

  /* another engine: everything is in the store */
  case_engine *e2 = NULL;
  assert_int_equal(case_engine_open(&e2), CASE_OK);
  assert_int_equal(case_store_open(e2, path, 0, &s), CASE_OK);
  assert_int_equal(case_store_get(s, "Z1", &c), CASE_OK);
  assert_config(c, "[\"klaar\"]");
  dj = data_of(c);
  assert_string_equal(json_string_value(json_object_get(dj, "uitkomst")), "gegrond");
  json_decref(dj);
  assert_int_equal(case_store_get(s, "Z1.rb", &child), CASE_OK);
  assert_true(case_instance_done(child));
  assert_string_equal(case_instance_invokeid(child), "rb");
  /* each journal on its own: the parent's holds the child's messages */
  char *report = NULL;
  int rc = case_store_verify(s, &report);
  if (rc != CASE_OK) fail_msg("verify: %s", report ? report : case_errmsg(e2));
  json_t *rj = json_loads(report, 0, NULL);
  assert_int_equal(json_integer_value(json_object_get(rj, "cases")), 2);
  /* Z1: create, ontvangen, done.invoke.rb; Z1.rb: create, uitspraak */
  assert_int_equal(json_integer_value(json_object_get(rj, "events")), 5);
  json_decref(rj);
  case_free(report);
  case_store_close(s);
  case_engine_close(e2);
  remove(path);
}

/* SCXML 6.4: a cancelled child case runs the exit content of its active
 * states (innermost first), its own children too; what it sends its parent
 * then is dropped, its log lines and notifications are delivered.  In a store
 * the child's journal records the cancellation (a cancel.invoke row holding
 * the exit content's data) and verify replays it. */
typedef struct seen {
  char lines[8][160];
  int n;
} seen;

static void on_line(void *ud, const case_instance *c, const char *label, const char *text) {
  seen *s = ud;
  if (s->n < 8)
    snprintf(s->lines[s->n++], sizeof s->lines[0], "%s %s: %s", case_instance_id(c),
             label ? label : "", text);
}

static void on_note(void *ud, const case_instance *c, const char *name, const char *payload) {
  (void)payload;
  on_line(ud, c, "notify", name);
}

static const char *const kleinkind_yaml =
    "workflow: kleinkind\nversion: 1\n"
    "data:\n  gestopt: {type: boolean, default: false}\n"
    "initial: wacht\n"
    "states:\n"
    "  wacht:\n"
    "    exit: [\"case.gestopt = true\", {log: {label: kleinkind, expr: \"'weg'\"}}]\n"
    "    on: {klaar: af}\n"
    "  af: {final: true}\n";
static const char *const kind_yaml =
    "workflow: kind\nversion: 1\n"
    "data:\n  stappen: {type: string, default: \"\"}\n"
    "initial: onderzoek\n"
    "states:\n"
    "  onderzoek:\n"
    "    initial: lopend\n"
    "    exit: [\"case.stappen = case.stappen .. 'onderzoek;'\", {send: {event: bijna, target: '#_parent'}}]\n"
    "    states:\n"
    "      lopend:\n"
    "        invoke: [{id: kk, workflow: kleinkind}]\n"
    "        exit: [\"case.stappen = case.stappen .. 'lopend;'\", {send: {event: gestopt, target: '#_host'}}]\n"
    "        on: {klaar: af}\n"
    "  af: {final: true}\n";
static const char *const ouder_yaml =
    "workflow: ouder\nversion: 1\n"
    "roles: [IND]\n"
    "data:\n  bijna: {type: boolean, default: false}\n"
    "initial: bezig\n"
    "states:\n"
    "  bezig:\n"
    "    invoke: [{id: k, workflow: kind}]\n"
    "    on:\n"
    "      bijna: {actions: [\"case.bijna = true\"]}\n"
    "      stop: {target: gestopt, roles: [IND]}\n"
    "  gestopt: {final: true}\n";

static void check_cancelled(case_instance *child, case_instance *grandchild) {
  assert_true(case_instance_done(child));
  assert_config(child, "[\"onderzoek\",\"lopend\"]"); /* where it stopped */
  json_t *dj = data_of(child);
  /* innermost first: lopend's exit before onderzoek's */
  assert_string_equal(json_string_value(json_object_get(dj, "stappen")), "lopend;onderzoek;");
  json_decref(dj);
  assert_true(case_instance_done(grandchild));
  dj = data_of(grandchild);
  assert_true(json_is_true(json_object_get(dj, "gestopt")));
  json_decref(dj);
}

static void test_cancel_runs_exit_content(void **state) {
  case_engine *e = *state;
  seen got = {0};
  assert_int_equal(case_engine_set_log(e, on_line, &got), CASE_OK);
  assert_int_equal(case_engine_set_notify(e, on_note, &got), CASE_OK);
  yaml(e, kleinkind_yaml);
  yaml(e, kind_yaml);
  const case_def *p = yaml(e, ouder_yaml);
  case_instance *c = start(e, p, "z1");
  case_instance *child = case_instance_find(e, "z1.k");
  case_instance *grandchild = case_instance_find(e, "z1.k.kk");
  assert_non_null(child);
  assert_non_null(grandchild);
  assert_int_equal(got.n, 0);
  assert_int_equal(case_instance_fire(c, "stop", NULL, NULL, "IND", T0 + DAY), CASE_OK);
  check_cancelled(child, grandchild);
  /* the child's #_parent send from its exit content is dropped (it was cancelled) */
  json_t *dj = data_of(c);
  assert_false(json_is_true(json_object_get(dj, "bijna")));
  json_decref(dj);
  assert_int_equal(got.n, 2);
  assert_string_equal(got.lines[0], "z1.k notify: gestopt");
  assert_string_equal(got.lines[1], "z1.k.kk kleinkind: weg");
  assert_int_equal(case_engine_set_log(e, NULL, NULL), CASE_OK);
  assert_int_equal(case_engine_set_notify(e, NULL, NULL), CASE_OK);
}

typedef struct rows {
  char events[8][64];
  char payload[8][200];
  int n;
} rows;

static int on_row(void *ud, int64_t seq, const char *row_json) {
  (void)seq;
  rows *r = ud;
  json_t *j = json_loads(row_json, 0, NULL);
  if (r->n < 8 && j) {
    snprintf(r->events[r->n], sizeof r->events[0], "%s %s",
             json_string_value(json_object_get(j, "event")),
             json_string_value(json_object_get(j, "actor")));
    char *d = json_dumps(json_object_get(j, "data"), JSON_COMPACT | JSON_SORT_KEYS);
    snprintf(r->payload[r->n], sizeof r->payload[0], "%s", d ? d : "");
    free(d);
    r->n++;
  }
  json_decref(j);
  return 0;
}

static void test_store_cancel_runs_exit_content(void **state) {
  case_engine *e = *state;
  const case_def *kk = yaml(e, kleinkind_yaml);
  const case_def *k = yaml(e, kind_yaml);
  const case_def *p = yaml(e, ouder_yaml);
  char path[] = "/tmp/test_scxml_cancel_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  remove(path);
  case_store *s = NULL;
  assert_int_equal(case_store_open(e, path, CASE_STORE_CREATE, &s), CASE_OK);
  assert_int_equal(case_store_add_def(s, kk), CASE_OK);
  assert_int_equal(case_store_add_def(s, k), CASE_OK);
  assert_int_equal(case_store_add_def(s, p), CASE_OK);
  if (case_store_create(s, p, "Z1", NULL, NULL, "ind", "IND", T0, NULL) != CASE_OK)
    fail_msg("create: %s", case_errmsg(e));
  if (case_store_fire(s, "Z1", "stop", NULL, "ind", "IND", T0 + DAY, -1, NULL, NULL) != CASE_OK)
    fail_msg("fire: %s", case_errmsg(e));
  case_store_close(s);

  /* another engine: the cancellations are in the children's journals */
  case_engine *e2 = NULL;
  assert_int_equal(case_engine_open(&e2), CASE_OK);
  assert_int_equal(case_store_open(e2, path, 0, &s), CASE_OK);
  case_instance *child = NULL, *grandchild = NULL;
  assert_int_equal(case_store_get(s, "Z1.k", &child), CASE_OK);
  assert_int_equal(case_store_get(s, "Z1.k.kk", &grandchild), CASE_OK);
  check_cancelled(child, grandchild);
  rows r = {0};
  assert_int_equal(case_store_history(s, "Z1.k", -1, on_row, &r, NULL), CASE_OK);
  assert_int_equal(r.n, 2);
  assert_string_equal(r.events[0], "create #_scxml_Z1");
  assert_string_equal(r.events[1], "cancel.invoke #_scxml_Z1");
  assert_string_equal(r.payload[1], "{\"stappen\":\"lopend;onderzoek;\"}");
  memset(&r, 0, sizeof r);
  assert_int_equal(case_store_history(s, "Z1.k.kk", -1, on_row, &r, NULL), CASE_OK);
  assert_int_equal(r.n, 2);
  assert_string_equal(r.events[1], "cancel.invoke #_scxml_Z1.k");
  assert_string_equal(r.payload[1], "{\"gestopt\":true}");
  /* the #_host send of the exit content is in the outbox, replay agrees */
  char *report = NULL;
  int rc = case_store_verify(s, &report);
  if (rc != CASE_OK) fail_msg("verify: %s", report ? report : case_errmsg(e2));
  case_free(report);
  case_store_close(s);
  case_engine_close(e2);
  remove(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_asylum_round_trip),
      cmocka_unit_test_setup_teardown(test_same_model_both_syntaxes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_editor_chart, setup, teardown),
      cmocka_unit_test(test_invalid_files),
      cmocka_unit_test_setup_teardown(test_yaml_send_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_yaml_invoke, setup, teardown),
      cmocka_unit_test_setup_teardown(test_yaml_errors_as_events, setup, teardown),
      cmocka_unit_test_setup_teardown(test_yaml_system_variables, setup, teardown),
      cmocka_unit_test_setup_teardown(test_scxml_in_store, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_invoke, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel_runs_exit_content, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_cancel_runs_exit_content, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
