/*
 * scxml.c — SCXML documents in and out (W3C SCXML 1.0, datamodel="lua").
 *
 * In: expat parses the document into a small element tree with positions;
 * the tree is translated into the loader's definition tree (the one YAML is
 * read into), so both syntaxes are built into the model by the same code,
 * with the same checks and the same file:line:column errors.  The SCXML
 * elements map onto the YAML keys of docs/workflow-format.md ("SCXML"):
 *
 *   <scxml initial name binding>       workflow/version/name/binding, initial
 *   <state>/<parallel>/<final>         states: with parallel:/final:
 *   <history type><transition>         history: shallow|deep, default:
 *   <initial><transition>              initial: {target, actions}
 *   <onentry>/<onexit>                 entry:/exit:
 *   <transition event cond target>     transitions: [{event, guard, target, type}]
 *   <datamodel><data id expr src>      data: (top level or the state's own)
 *   <invoke> <finalize> <param>        invoke:
 *   <donedata>                         donedata:
 *   <raise> <send> <cancel> <log> <assign> <if> <foreach> <script>
 *                                      executable content (one-key action maps)
 *
 * What SCXML has no words for is read from the libcase namespace
 * (urn:libcase:scxml:1): libcase:workflow, libcase:version, libcase:clock,
 * libcase:in_force_from, libcase:description, libcase:errors,
 * libcase:datamodel, libcase:roles on <scxml>; <libcase:param>,
 * <libcase:lua> children of <scxml>; libcase:roles, libcase:after,
 * libcase:guard, libcase:description on <transition>; <libcase:deadline> in
 * a state; libcase:type, libcase:default on <data>; <libcase:call> as
 * executable content.  Attributes and elements of other namespaces (editor
 * layout such as qt:editorinfo) on <scxml>, states and transitions are kept
 * as their `editor` (put_editor) and written back; elsewhere they are
 * dropped.
 *
 * Out: case_def_export_scxml() writes the model back in the same words, so
 * that reading the export gives a model with the same model hash.
 */
#include "internal.h"

#include <errno.h>
#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_SCXML "http://www.w3.org/2005/07/scxml"
#define NS_LIBCASE "urn:libcase:scxml:1"
#define NS_SEP '\x01'
#define XML_DEPTH_CAP 1000

/* ------------------------------------------------------------------ */
/* The element tree                                                    */
/* ------------------------------------------------------------------ */

typedef struct xattr {
  char *ns;      /* "" for no namespace */
  char *name;
  char *value;
  cs_pos pos;    /* where the value starts */
} xattr;

typedef struct xel {
  char *ns, *name;
  xattr *attrs;
  int nattrs;
  struct xel **kids;  /* elements only */
  int nkids, capkids;
  sbuf text;          /* the character data directly inside, concatenated */
  cs_pos text_pos;    /* where it starts */
  int has_text_pos;
  int text_elems;     /* child elements seen after text (mixed content) */
  cs_pos pos;
  size_t start, end;  /* byte offsets of the element in the document */
  struct xel *parent;
  char gen_id[24];    /* a state without id: the one libcase gives it */
} xel;

static void xel_free(xel *x) {
  if (!x) return;
  for (int i = 0; i < x->nattrs; i++) {
    free(x->attrs[i].ns);
    free(x->attrs[i].name);
    free(x->attrs[i].value);
  }
  free(x->attrs);
  for (int i = 0; i < x->nkids; i++) xel_free(x->kids[i]);
  free(x->kids);
  sbuf_free(&x->text);
  free(x->ns);
  free(x->name);
  free(x);
}

typedef struct xp {
  case_engine *e;
  const char *file;
  const char *text;
  size_t len;
  XML_Parser p;
  xel *root, *cur;
  int depth;
  int rc;          /* first failure */
  size_t *lines;   /* byte offset of each line start */
  size_t nlines;
  json_t *ns;      /* prefix -> uri of the namespaces other than SCXML's and libcase's */
} xp;

static cs_pos pos_of(const xp *x, size_t off) {
  /* binary search the line starts */
  size_t lo = 0, hi = x->nlines;
  while (hi - lo > 1) {
    size_t mid = (lo + hi) / 2;
    if (x->lines[mid] <= off) lo = mid;
    else hi = mid;
  }
  cs_pos p = {(int)lo + 1, (int)(off - x->lines[lo]) + 1};
  return p;
}

static int xp_fail(xp *x, int rc, cs_pos pos, const char *fmt, ...) CASE_PRINTF(4, 5);
static int xp_fail(xp *x, int rc, cs_pos pos, const char *fmt, ...) {
  if (x->rc != CASE_OK) return x->rc;
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  eng_err_at(x->e, rc, x->file, pos, "%s", msg);
  x->rc = rc;
  if (x->p) XML_StopParser(x->p, XML_FALSE);
  return rc;
}

static void split_name(const char *qn, char **ns, char **name) {
  const char *sep = strchr(qn, NS_SEP);
  if (sep) {
    *ns = xstrndup(qn, (size_t)(sep - qn));
    *name = xstrdup(sep + 1);
  } else {
    *ns = xstrdup("");
    *name = xstrdup(qn);
  }
}

/* Where the value of attribute `local` starts inside the start tag at
 * [off, off+n): after its quote.  The element's position if not found. */
static cs_pos attr_pos(const xp *x, size_t off, size_t n, const char *local) {
  size_t len = strlen(local);
  const char *t = x->text;
  for (size_t i = off; i + len < off + n && i + len < x->len; i++) {
    if (memcmp(t + i, local, len) != 0) continue;
    char before = i > off ? t[i - 1] : ' ';
    if (before != ' ' && before != '\t' && before != '\n' && before != '\r' && before != ':')
      continue;
    size_t j = i + len;
    while (j < x->len && (t[j] == ' ' || t[j] == '\t' || t[j] == '\n' || t[j] == '\r')) j++;
    if (j >= x->len || t[j] != '=') continue;
    j++;
    while (j < x->len && (t[j] == ' ' || t[j] == '\t' || t[j] == '\n' || t[j] == '\r')) j++;
    if (j < x->len && (t[j] == '"' || t[j] == '\'')) return pos_of(x, j + 1);
  }
  return pos_of(x, off);
}

static void XMLCALL on_start(void *ud, const XML_Char *qn, const XML_Char **atts) {
  xp *x = ud;
  if (x->rc != CASE_OK) return;
  size_t off = (size_t)XML_GetCurrentByteIndex(x->p);
  int n = XML_GetCurrentByteCount(x->p);
  cs_pos pos = pos_of(x, off);
  if (++x->depth > XML_DEPTH_CAP) {
    xp_fail(x, CASE_LIMIT, pos, "elements nested too deep (more than %d levels)", XML_DEPTH_CAP);
    return;
  }
  xel *el = calloc(1, sizeof *el);
  if (!el) {
    xp_fail(x, CASE_NOMEM, pos, "out of memory");
    return;
  }
  sbuf_init(&el->text);
  el->pos = pos;
  el->start = off;
  split_name(qn, &el->ns, &el->name);
  int na = 0;
  while (atts[2 * na]) na++;
  el->attrs = na ? calloc((size_t)na, sizeof *el->attrs) : NULL;
  int bad = !el->ns || !el->name || (na && !el->attrs);
  for (int i = 0; !bad && i < na; i++) {
    xattr *a = &el->attrs[el->nattrs++];
    split_name(atts[2 * i], &a->ns, &a->name);
    a->value = xstrdup(atts[2 * i + 1]);
    bad = !a->ns || !a->name || !a->value;
    if (!bad) a->pos = attr_pos(x, off, n > 0 ? (size_t)n : 0, a->name);
  }
  el->parent = x->cur;
  if (!bad && x->cur) {
    if (x->cur->text.len) x->cur->text_elems = 1;
    if (x->cur->nkids == x->cur->capkids) {
      int cap = x->cur->capkids ? 2 * x->cur->capkids : 4;
      xel **k = realloc(x->cur->kids, (size_t)cap * sizeof *k);
      if (!k) bad = 1;
      else {
        x->cur->kids = k;
        x->cur->capkids = cap;
      }
    }
    if (!bad) x->cur->kids[x->cur->nkids++] = el;
  } else if (!bad) {
    x->root = el;
  }
  if (bad) {
    xel_free(el);
    xp_fail(x, CASE_NOMEM, pos, "out of memory");
    return;
  }
  x->cur = el;
}

static void XMLCALL on_end(void *ud, const XML_Char *qn) {
  CASE_UNUSED(qn);
  xp *x = ud;
  if (x->rc != CASE_OK || !x->cur) return;
  x->depth--;
  x->cur->end = (size_t)XML_GetCurrentByteIndex(x->p) + (size_t)XML_GetCurrentByteCount(x->p);
  x->cur = x->cur->parent;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len) {
  xp *x = ud;
  if (x->rc != CASE_OK || !x->cur) return;
  xel *el = x->cur;
  if (!el->has_text_pos) {
    el->text_pos = pos_of(x, (size_t)XML_GetCurrentByteIndex(x->p));
    el->has_text_pos = 1;
  }
  sbuf_add(&el->text, s, (size_t)len);
  if (el->text.failed) xp_fail(x, CASE_NOMEM, el->pos, "out of memory");
}

static void XMLCALL on_ns(void *ud, const XML_Char *prefix, const XML_Char *uri) {
  xp *x = ud;
  if (x->rc != CASE_OK || !prefix || !uri || !strcmp(uri, NS_SCXML) || !strcmp(uri, NS_LIBCASE))
    return;
  if (!x->ns && !(x->ns = json_object())) return;
  if (!json_object_get(x->ns, prefix)) json_object_set_new(x->ns, prefix, json_string(uri));
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal) {
  CASE_UNUSED(name);
  CASE_UNUSED(sysid);
  CASE_UNUSED(pubid);
  CASE_UNUSED(has_internal);
  xp *x = ud;
  size_t off = (size_t)XML_GetCurrentByteIndex(x->p); /* inside it: find where it starts */
  while (off > 0 && off <= x->len && strncmp(x->text + off, "<!DOCTYPE", 9) != 0) off--;
  xp_fail(x, CASE_INVALID, pos_of(x, off),
          "a DOCTYPE is not allowed in an SCXML definition (entities could expand without "
          "bound)");
}

static int parse_xml(xp *x) {
  x->nlines = 1;
  for (size_t i = 0; i < x->len; i++) x->nlines += x->text[i] == '\n';
  x->lines = malloc(x->nlines * sizeof *x->lines);
  if (!x->lines) return eng_err(x->e, CASE_NOMEM, "out of memory");
  size_t k = 0;
  x->lines[k++] = 0;
  for (size_t i = 0; i < x->len; i++)
    if (x->text[i] == '\n') x->lines[k++] = i + 1;
  x->p = XML_ParserCreateNS(NULL, NS_SEP);
  if (!x->p) return eng_err(x->e, CASE_NOMEM, "out of memory");
  XML_SetUserData(x->p, x);
  XML_SetElementHandler(x->p, on_start, on_end);
  XML_SetCharacterDataHandler(x->p, on_text);
  XML_SetStartDoctypeDeclHandler(x->p, on_doctype);
  XML_SetStartNamespaceDeclHandler(x->p, on_ns);
  XML_SetParamEntityParsing(x->p, XML_PARAM_ENTITY_PARSING_NEVER);
  if (x->len > (size_t)INT32_MAX) {
    cs_pos one = {1, 1};
    return xp_fail(x, CASE_LIMIT, one, "document too large");
  }
  enum XML_Status st = XML_Parse(x->p, x->text, (int)x->len, XML_TRUE);
  if (x->rc != CASE_OK) return x->rc;
  if (st != XML_STATUS_OK) {
    cs_pos pos = {(int)XML_GetCurrentLineNumber(x->p), (int)XML_GetCurrentColumnNumber(x->p) + 1};
    enum XML_Error code = XML_GetErrorCode(x->p);
    if (code == XML_ERROR_NO_MEMORY) return eng_err(x->e, CASE_NOMEM, "out of memory");
    return xp_fail(x, CASE_INVALID, pos, "XML: %s", XML_ErrorString(code));
  }
  if (!x->root) {
    cs_pos one = {1, 1};
    return xp_fail(x, CASE_INVALID, one, "empty document (expected an <scxml> element)");
  }
  return CASE_OK;
}

/* ------------------------------------------------------------------ */
/* Element tree -> definition tree                                     */
/* ------------------------------------------------------------------ */

typedef struct tr {
  xp *x;
  case_engine *e;
  int gen;        /* generated state ids */
} tr;

static int is_ns(const xel *el, const char *ns) { return strcmp(el->ns, ns) == 0; }
static int is_sc(const xel *el, const char *name) {
  return (is_ns(el, NS_SCXML) || !*el->ns) && strcmp(el->name, name) == 0;
}
static int is_lc(const xel *el, const char *name) {
  return is_ns(el, NS_LIBCASE) && strcmp(el->name, name) == 0;
}

static const xattr *attr(const xel *el, const char *ns, const char *name) {
  for (int i = 0; i < el->nattrs; i++)
    if (strcmp(el->attrs[i].ns, ns) == 0 && strcmp(el->attrs[i].name, name) == 0)
      return &el->attrs[i];
  return NULL;
}
static const xattr *sattr(const xel *el, const char *name) { return attr(el, "", name); }
static const xattr *lattr(const xel *el, const char *name) { return attr(el, NS_LIBCASE, name); }

static int nomem(tr *t) { return xp_fail(t->x, CASE_NOMEM, t->x->root->pos, "out of memory"); }

/* Attributes without a namespace must be ones SCXML defines for the element;
 * libcase attributes ones libcase defines.  Others' namespaces are ignored. */
static int check_attrs(tr *t, const xel *el, const char *const *scxml, const char *const *lc) {
  for (int i = 0; i < el->nattrs; i++) {
    const xattr *a = &el->attrs[i];
    const char *const *list = NULL;
    if (!*a->ns) list = scxml;
    else if (strcmp(a->ns, NS_LIBCASE) == 0) list = lc;
    else continue;
    int ok = 0;
    for (int k = 0; list && list[k] && !ok; k++) ok = strcmp(list[k], a->name) == 0;
    if (ok) continue;
    sbuf b;
    sbuf_init(&b);
    for (int k = 0; list && list[k]; k++) sbuf_printf(&b, "%s%s", k ? ", " : "", list[k]);
    char *names = sbuf_take(&b);
    int rc = xp_fail(t->x, CASE_INVALID, a->pos, "unknown attribute %s%s on <%s> (expected %s%s)",
                     *a->ns ? "libcase:" : "", a->name, el->name,
                     names && *names ? "one of: " : "none", names ? names : "");
    free(names);
    return rc;
  }
  return CASE_OK;
}

static int put(tr *t, def_node *map, const char *key, cs_pos pos, def_node *val) {
  if (!val || def_node_add(map, key, pos, val) != 0) return nomem(t);
  return CASE_OK;
}

static int put_str(tr *t, def_node *map, const char *key, const xattr *a) {
  if (!a) return CASE_OK;
  return put(t, map, key, a->pos, def_node_str(a->value, strlen(a->value), a->pos));
}

/* A Lua expression or block as written. */
static def_node *lua_node(const char *s, size_t len, cs_pos pos) {
  def_node *n = def_node_str(s, len, pos);
  def_node_script(n);
  return n;
}

static int put_lua(tr *t, def_node *map, const char *key, const xattr *a) {
  if (!a) return CASE_OK;
  return put(t, map, key, a->pos, lua_node(a->value, strlen(a->value), a->pos));
}

/* A space-separated attribute as a list of strings. */
static def_node *list_node(const xattr *a) {
  def_node *seq = def_node_seq(a->pos);
  const char *p = a->value;
  while (seq && *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
    if (!*p) break;
    const char *q = p;
    while (*q && *q != ' ' && *q != '\t' && *q != '\n' && *q != '\r') q++;
    if (def_node_add(seq, NULL, a->pos, def_node_str(p, (size_t)(q - p), a->pos)) != 0)
      return NULL; /* seq freed by nobody: the caller fails the load, the leak is bounded */
    p = q;
  }
  return seq;
}

/* JSON (a libcase:default or libcase:param value) as the YAML value it was. */
static def_node *json_node(const json_t *v, cs_pos pos) {
  char buf[64];
  switch (json_typeof(v)) {
  case JSON_OBJECT: {
    def_node *m = def_node_map(pos);
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x)
      if (m && def_node_add(m, k, pos, json_node(x, pos)) != 0) m = NULL;
    return m;
  }
  case JSON_ARRAY: {
    def_node *s = def_node_seq(pos);
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x)
      if (s && def_node_add(s, NULL, pos, json_node(x, pos)) != 0) s = NULL;
    return s;
  }
  case JSON_STRING: return def_node_str(json_string_value(v), json_string_length(v), pos);
  case JSON_INTEGER:
    snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
    return def_node_plain(buf, pos);
  case JSON_REAL: {
    c_loc loc; /* "0.5", not "0,5", in a host running in a Dutch locale */
    c_locale_enter(&loc);
    snprintf(buf, sizeof buf, "%.17g", json_real_value(v));
    c_locale_leave(&loc);
    if (!strpbrk(buf, ".eE")) strcat(buf, ".0");
    return def_node_plain(buf, pos);
  }
  case JSON_TRUE: return def_node_plain("true", pos);
  case JSON_FALSE: return def_node_plain("false", pos);
  default: return def_node_plain("null", pos);
  }
}

static int put_json(tr *t, def_node *map, const char *key, const xattr *a) {
  if (!a) return CASE_OK;
  json_error_t err;
  json_t *v = json_loads(a->value, JSON_DECODE_ANY, &err);
  if (!v)
    return xp_fail(t->x, CASE_INVALID, a->pos, "libcase:%s is not JSON: %s", a->name, err.text);
  def_node *n = json_node(v, a->pos);
  json_decref(v);
  return put(t, map, key, a->pos, n);
}

static int is_foreign(const xel *el) {
  return *el->ns && strcmp(el->ns, NS_SCXML) != 0 && strcmp(el->ns, NS_LIBCASE) != 0;
}

/* What an editor keeps on an element, in other namespaces than SCXML's and
 * libcase's (Qt Creator's qt:editorinfo, layout attributes): editor:
 * {"attrs": [[uri, name, value], ...], "xml": ["<qt:editorinfo .../>", ...]}
 * (with "ns" on the document), written back as it was on export. */
static int put_editor(tr *t, def_node *m, const xel *el, int root) {
  json_t *ed = json_object(), *attrs = json_array(), *xml = json_array();
  if (!ed || !attrs || !xml) {
    json_decref(ed), json_decref(attrs), json_decref(xml);
    return nomem(t);
  }
  for (int i = 0; i < el->nattrs; i++) {
    const xattr *a = &el->attrs[i];
    if (!*a->ns || !strcmp(a->ns, NS_LIBCASE) || !strcmp(a->ns, NS_SCXML)) continue;
    json_array_append_new(attrs, json_pack("[s, s, s]", a->ns, a->name, a->value));
  }
  for (int i = 0; i < el->nkids; i++) {
    const xel *k = el->kids[i];
    if (!is_foreign(k) || k->end <= k->start || k->end > t->x->len) continue;
    json_array_append_new(xml, json_stringn(t->x->text + k->start, k->end - k->start));
  }
  if (json_array_size(attrs)) json_object_set(ed, "attrs", attrs);
  if (json_array_size(xml)) json_object_set(ed, "xml", xml);
  if (root && t->x->ns) json_object_set(ed, "ns", t->x->ns);
  json_decref(attrs);
  json_decref(xml);
  int rc = CASE_OK;
  if (json_object_size(ed)) rc = put(t, m, "editor", el->pos, json_node(ed, el->pos));
  json_decref(ed);
  return rc;
}

static int unknown_child(tr *t, const xel *kid, const xel *in) {
  return xp_fail(t->x, CASE_INVALID, kid->pos, "unexpected <%s> in <%s>", kid->name, in->name);
}

/* Character data inside an element that should have none but white space. */
static int no_text(tr *t, const xel *el) {
  for (size_t i = 0; i < el->text.len; i++) {
    char c = el->text.p[i];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
      return xp_fail(t->x, CASE_INVALID, el->has_text_pos ? el->text_pos : el->pos,
                     "text in <%s> (expected only elements)", el->name);
  }
  return CASE_OK;
}

static int exec_block(tr *t, const xel *parent, def_node *seq);

/* <content> of send, assign, donedata (not invoke): {expr} or {text}. */
static int content_node(tr *t, const xel *c, def_node **out) {
  static const char *const sa[] = {"expr", NULL};
  int rc = check_attrs(t, c, sa, NULL);
  if (rc != CASE_OK) return rc;
  def_node *m = def_node_map(c->pos);
  if (!m) return nomem(t);
  *out = m;
  const xattr *ex = sattr(c, "expr");
  if (ex) {
    if (c->nkids || c->text.len) {
      for (size_t i = 0; i < c->text.len; i++)
        if (c->text.p[i] != ' ' && c->text.p[i] != '\n' && c->text.p[i] != '\t' &&
            c->text.p[i] != '\r')
          return xp_fail(t->x, CASE_INVALID, c->pos, "<content> has expr and a body (expected "
                         "one of them)");
    }
    return put_lua(t, m, "expr", ex);
  }
  if (c->nkids) {
    /* markup: kept as its text */
    size_t a = c->kids[0]->start, b = c->kids[c->nkids - 1]->end;
    if (b > t->x->len || a > b) b = a;
    def_node *s = def_node_str(t->x->text + a, b - a, c->kids[0]->pos);
    rc = put(t, m, "text", c->kids[0]->pos, s);
    if (rc == CASE_OK) rc = put(t, m, "markup", c->pos, def_node_plain("true", c->pos));
    return rc;
  }
  cs_pos p = c->has_text_pos ? c->text_pos : c->pos;
  return put(t, m, "text", p, def_node_str(c->text.p ? c->text.p : "", c->text.len, p));
}

/* <param name expr|location/> children as a params list. */
static int params_node(tr *t, const xel *el, def_node **out) {
  *out = NULL;
  for (int i = 0; i < el->nkids; i++) {
    const xel *k = el->kids[i];
    if (!is_sc(k, "param")) continue;
    static const char *const pa[] = {"name", "expr", "location", NULL};
    int rc = check_attrs(t, k, pa, NULL);
    if (rc != CASE_OK) return rc;
    if (!*out && !(*out = def_node_seq(k->pos))) return nomem(t);
    def_node *p = def_node_map(k->pos);
    if (!p || def_node_add(*out, NULL, k->pos, p) != 0) return nomem(t);
    if ((rc = put_str(t, p, "name", sattr(k, "name"))) != CASE_OK ||
        (rc = put_lua(t, p, "expr", sattr(k, "expr"))) != CASE_OK ||
        (rc = put_lua(t, p, "location", sattr(k, "location"))) != CASE_OK)
      return rc;
  }
  return CASE_OK;
}

static int put_namelist(tr *t, def_node *m, const xel *el) {
  const xattr *nl = sattr(el, "namelist");
  if (!nl) return CASE_OK;
  /* each entry is a location (a Lua expression) */
  return put(t, m, "namelist", nl->pos, list_node(nl));
}

/* One executable content element as an action (appended to seq). */
static int exec_one(tr *t, const xel *el, def_node *seq) {
  def_node *m = def_node_map(el->pos);
  if (!m || def_node_add(seq, NULL, el->pos, m) != 0) return nomem(t);
  int rc;
  if (is_sc(el, "raise")) {
    static const char *const a[] = {"event", NULL};
    if ((rc = check_attrs(t, el, a, NULL)) != CASE_OK) return rc;
    const xattr *ev = sattr(el, "event");
    if (!ev) return xp_fail(t->x, CASE_INVALID, el->pos, "<raise> without event");
    return put_str(t, m, "raise", ev);
  }
  if (is_sc(el, "script")) {
    static const char *const a[] = {"src", NULL};
    if ((rc = check_attrs(t, el, a, NULL)) != CASE_OK) return rc;
    const xattr *src = sattr(el, "src");
    if (src) {
      def_node *s = def_node_map(el->pos);
      if ((rc = put(t, m, "script", el->pos, s)) != CASE_OK) return rc;
      return put_str(t, s, "src", src);
    }
    cs_pos p = el->has_text_pos ? el->text_pos : el->pos;
    return put(t, m, "script", p, lua_node(el->text.p ? el->text.p : "", el->text.len, p));
  }
  if (is_lc(el, "block")) {
    if ((rc = check_attrs(t, el, NULL, NULL)) != CASE_OK) return rc;
    def_node *b = def_node_seq(el->pos);
    if ((rc = put(t, m, "block", el->pos, b)) != CASE_OK) return rc;
    return exec_block(t, el, b);
  }
  if (is_lc(el, "call")) {
    static const char *const a[] = {"name", NULL};
    if ((rc = check_attrs(t, el, a, a)) != CASE_OK) return rc;
    const xattr *nm = lattr(el, "name");
    if (!nm) nm = sattr(el, "name");
    if (!nm) return xp_fail(t->x, CASE_INVALID, el->pos, "<libcase:call> without name");
    return put_str(t, m, "call", nm);
  }
  if (is_sc(el, "log")) {
    static const char *const a[] = {"label", "expr", NULL};
    if ((rc = check_attrs(t, el, a, NULL)) != CASE_OK) return rc;
    def_node *v = def_node_map(el->pos);
    if ((rc = put(t, m, "log", el->pos, v)) != CASE_OK) return rc;
    if ((rc = put_str(t, v, "label", sattr(el, "label"))) != CASE_OK) return rc;
    return put_lua(t, v, "expr", sattr(el, "expr"));
  }
  if (is_sc(el, "cancel")) {
    static const char *const a[] = {"sendid", "sendidexpr", NULL};
    if ((rc = check_attrs(t, el, a, NULL)) != CASE_OK) return rc;
    def_node *v = def_node_map(el->pos);
    if ((rc = put(t, m, "cancel", el->pos, v)) != CASE_OK) return rc;
    if ((rc = put_str(t, v, "sendid", sattr(el, "sendid"))) != CASE_OK) return rc;
    return put_lua(t, v, "sendidexpr", sattr(el, "sendidexpr"));
  }
  if (is_sc(el, "assign")) {
    static const char *const a[] = {"location", "expr", NULL};
    if ((rc = check_attrs(t, el, a, NULL)) != CASE_OK) return rc;
    def_node *v = def_node_map(el->pos);
    if ((rc = put(t, m, "assign", el->pos, v)) != CASE_OK) return rc;
    if ((rc = put_str(t, v, "location", sattr(el, "location"))) != CASE_OK) return rc;
    if (sattr(el, "expr")) return put_lua(t, v, "expr", sattr(el, "expr"));
    /* the body is the value */
    def_node *c = def_node_map(el->pos);
    if ((rc = put(t, v, "content", el->pos, c)) != CASE_OK) return rc;
    if (el->nkids) {
      size_t a0 = el->kids[0]->start, b0 = el->kids[el->nkids - 1]->end;
      if (b0 > t->x->len || a0 > b0) b0 = a0;
      if ((rc = put(t, c, "text", el->kids[0]->pos,
                    def_node_str(t->x->text + a0, b0 - a0, el->kids[0]->pos))) != CASE_OK)
        return rc;
      return put(t, c, "markup", el->pos, def_node_plain("true", el->pos));
    }
    cs_pos p = el->has_text_pos ? el->text_pos : el->pos;
    return put(t, c, "text", p, def_node_str(el->text.p ? el->text.p : "", el->text.len, p));
  }
  if (is_sc(el, "if")) {
    static const char *const a[] = {"cond", NULL};
    if ((rc = check_attrs(t, el, a, NULL)) != CASE_OK) return rc;
    const xattr *cond = sattr(el, "cond");
    if (!cond) return xp_fail(t->x, CASE_INVALID, el->pos, "<if> without cond");
    if ((rc = put_lua(t, m, "if", cond)) != CASE_OK) return rc;
    /* split the children at <elseif>/<else> */
    def_node *block = def_node_seq(el->pos), *elifs = NULL;
    if ((rc = put(t, m, "then", el->pos, block)) != CASE_OK) return rc;
    int in_else = 0;
    for (int i = 0; i < el->nkids; i++) {
      const xel *k = el->kids[i];
      if (is_sc(k, "elseif")) {
        if (in_else) return xp_fail(t->x, CASE_INVALID, k->pos, "<elseif> after <else>");
        static const char *const ea[] = {"cond", NULL};
        if ((rc = check_attrs(t, k, ea, NULL)) != CASE_OK) return rc;
        const xattr *c2 = sattr(k, "cond");
        if (!c2) return xp_fail(t->x, CASE_INVALID, k->pos, "<elseif> without cond");
        if (!elifs) {
          elifs = def_node_seq(k->pos);
          if ((rc = put(t, m, "elseif", k->pos, elifs)) != CASE_OK) return rc;
        }
        def_node *br = def_node_map(k->pos);
        if (!br || def_node_add(elifs, NULL, k->pos, br) != 0) return nomem(t);
        if ((rc = put_lua(t, br, "cond", c2)) != CASE_OK) return rc;
        block = def_node_seq(k->pos);
        if ((rc = put(t, br, "then", k->pos, block)) != CASE_OK) return rc;
        continue;
      }
      if (is_sc(k, "else")) {
        if (in_else) return xp_fail(t->x, CASE_INVALID, k->pos, "a second <else>");
        if ((rc = check_attrs(t, k, NULL, NULL)) != CASE_OK) return rc;
        in_else = 1;
        block = def_node_seq(k->pos);
        if ((rc = put(t, m, "else", k->pos, block)) != CASE_OK) return rc;
        continue;
      }
      if (!is_ns(k, NS_SCXML) && !is_ns(k, NS_LIBCASE) && *k->ns) continue;
      if ((rc = exec_one(t, k, block)) != CASE_OK) return rc;
    }
    return no_text(t, el);
  }
  if (is_sc(el, "foreach")) {
    static const char *const a[] = {"array", "item", "index", NULL};
    if ((rc = check_attrs(t, el, a, NULL)) != CASE_OK) return rc;
    def_node *v = def_node_map(el->pos);
    if ((rc = put(t, m, "foreach", el->pos, v)) != CASE_OK) return rc;
    if (!sattr(el, "array") || !sattr(el, "item"))
      return xp_fail(t->x, CASE_INVALID, el->pos, "<foreach> without array or item");
    if ((rc = put_lua(t, v, "array", sattr(el, "array"))) != CASE_OK ||
        (rc = put_str(t, v, "item", sattr(el, "item"))) != CASE_OK ||
        (rc = put_str(t, v, "index", sattr(el, "index"))) != CASE_OK)
      return rc;
    def_node *block = def_node_seq(el->pos);
    if ((rc = put(t, v, "do", el->pos, block)) != CASE_OK) return rc;
    return exec_block(t, el, block);
  }
  if (is_sc(el, "send")) {
    static const char *const a[] = {"event", "eventexpr", "target", "targetexpr", "type",
                                    "typeexpr", "id", "idlocation", "delay", "delayexpr",
                                    "namelist", NULL};
    if ((rc = check_attrs(t, el, a, NULL)) != CASE_OK) return rc;
    def_node *v = def_node_map(el->pos);
    if ((rc = put(t, m, "send", el->pos, v)) != CASE_OK) return rc;
    static const char *const strs[] = {"event", "target", "type", "id", "idlocation", "delay", NULL};
    static const char *const exprs[] = {"eventexpr", "targetexpr", "typeexpr", "delayexpr", NULL};
    for (int i = 0; strs[i]; i++)
      if ((rc = put_str(t, v, strs[i], sattr(el, strs[i]))) != CASE_OK) return rc;
    for (int i = 0; exprs[i]; i++)
      if ((rc = put_lua(t, v, exprs[i], sattr(el, exprs[i]))) != CASE_OK) return rc;
    if ((rc = put_namelist(t, v, el)) != CASE_OK) return rc;
    def_node *params = NULL;
    if ((rc = params_node(t, el, &params)) != CASE_OK) return rc;
    if (params && (rc = put(t, v, "params", el->pos, params)) != CASE_OK) return rc;
    for (int i = 0; i < el->nkids; i++) {
      const xel *k = el->kids[i];
      if (is_sc(k, "param")) continue;
      if (is_sc(k, "content")) {
        def_node *c = NULL;
        if ((rc = content_node(t, k, &c)) != CASE_OK) {
          def_node_free(c);
          return rc;
        }
        if ((rc = put(t, v, "content", k->pos, c)) != CASE_OK) return rc;
        continue;
      }
      if (*k->ns && !is_ns(k, NS_SCXML)) continue;
      return unknown_child(t, k, el);
    }
    return no_text(t, el);
  }
  return xp_fail(t->x, CASE_INVALID, el->pos, "unknown executable content <%s> (expected raise, "
                 "send, cancel, log, assign, if, foreach, script or libcase:call)", el->name);
}

static int exec_block(tr *t, const xel *parent, def_node *seq) {
  for (int i = 0; i < parent->nkids; i++) {
    const xel *k = parent->kids[i];
    if (*k->ns && !is_ns(k, NS_SCXML) && !is_ns(k, NS_LIBCASE)) continue; /* foreign */
    int rc = exec_one(t, k, seq);
    if (rc != CASE_OK) return rc;
  }
  return no_text(t, parent);
}

static int datamodel(tr *t, const xel *dm, def_node *map) {
  int rc = check_attrs(t, dm, NULL, NULL);
  if (rc != CASE_OK) return rc;
  for (int i = 0; i < dm->nkids; i++) {
    const xel *d = dm->kids[i];
    if (*d->ns && !is_sc(d, "data")) continue;
    if (!is_sc(d, "data")) return unknown_child(t, d, dm);
    static const char *const sa[] = {"id", "expr", "src", NULL};
    static const char *const la[] = {"type", "default", "description", NULL};
    if ((rc = check_attrs(t, d, sa, la)) != CASE_OK) return rc;
    const xattr *id = sattr(d, "id");
    if (!id) return xp_fail(t->x, CASE_INVALID, d->pos, "<data> without id");
    def_node *f = def_node_map(d->pos);
    if ((rc = put(t, map, id->value, id->pos, f)) != CASE_OK) return rc;
    if ((rc = put_str(t, f, "type", lattr(d, "type"))) != CASE_OK ||
        (rc = put_json(t, f, "default", lattr(d, "default"))) != CASE_OK ||
        (rc = put_str(t, f, "description", lattr(d, "description"))) != CASE_OK ||
        (rc = put_lua(t, f, "expr", sattr(d, "expr"))) != CASE_OK ||
        (rc = put_str(t, f, "src", sattr(d, "src"))) != CASE_OK)
      return rc;
    int body = d->nkids > 0;
    for (size_t k = 0; k < d->text.len && !body; k++)
      body = d->text.p[k] != ' ' && d->text.p[k] != '\n' && d->text.p[k] != '\t' &&
             d->text.p[k] != '\r';
    if (body) {
      if (sattr(d, "expr") || sattr(d, "src"))
        return xp_fail(t->x, CASE_INVALID, d->pos, "<data id=\"%s\"> has a body and expr or "
                       "src (expected one)", id->value);
      size_t a0 = d->nkids ? d->kids[0]->start : 0, b0 = d->nkids ? d->kids[d->nkids - 1]->end : 0;
      cs_pos p = d->has_text_pos ? d->text_pos : d->pos;
      def_node *c = d->nkids ? def_node_str(t->x->text + a0, b0 > a0 ? b0 - a0 : 0, p)
                             : def_node_str(d->text.p, d->text.len, p);
      if ((rc = put(t, f, "content", p, c)) != CASE_OK) return rc;
    } else if (!sattr(d, "expr") && !sattr(d, "src") && !lattr(d, "default") &&
               !lattr(d, "type")) {
      /* declared without a value: unbound (nil) */
      if ((rc = put(t, f, "type", d->pos, def_node_str("any", 3, d->pos))) != CASE_OK) return rc;
    }
  }
  return CASE_OK;
}

static int transition_node(tr *t, const xel *el, def_node *seq, int in_state) {
  static const char *const sa[] = {"event", "cond", "target", "type", NULL};
  static const char *const la[] = {"roles", "after", "guard", "description", NULL};
  int rc = check_attrs(t, el, sa, in_state ? la : NULL);
  if (rc != CASE_OK) return rc;
  def_node *m = def_node_map(el->pos);
  if (!m || def_node_add(seq, NULL, el->pos, m) != 0) return nomem(t);
  const xattr *ev = sattr(el, "event");
  if (ev) {
    /* ".*" is how some converted documents write "*" */
    const char *v = ev->value;
    if (strcmp(v, ".*") == 0) v = "*";
    if ((rc = put(t, m, "event", ev->pos, def_node_str(v, strlen(v), ev->pos))) != CASE_OK)
      return rc;
  }
  const xattr *tg = sattr(el, "target");
  if (tg) {
    def_node *l = list_node(tg);
    if ((rc = put(t, m, "target", tg->pos, l)) != CASE_OK) return rc;
  }
  const xattr *g = lattr(el, "guard");
  if (g && sattr(el, "cond"))
    return xp_fail(t->x, CASE_INVALID, g->pos, "cond and libcase:guard on one transition");
  if ((rc = put_lua(t, m, "guard", sattr(el, "cond"))) != CASE_OK ||
      (rc = put_str(t, m, "guard", g)) != CASE_OK ||
      (rc = put_str(t, m, "type", sattr(el, "type"))) != CASE_OK ||
      (rc = put_str(t, m, "delay", lattr(el, "after"))) != CASE_OK ||
      (rc = put_str(t, m, "description", lattr(el, "description"))) != CASE_OK)
    return rc;
  const xattr *ro = lattr(el, "roles");
  if (ro && (rc = put(t, m, "roles", ro->pos, list_node(ro))) != CASE_OK) return rc;
  if (in_state && (rc = put_editor(t, m, el, 0)) != CASE_OK) return rc;
  if (el->nkids) {
    def_node *acts = def_node_seq(el->pos);
    if ((rc = put(t, m, "actions", el->pos, acts)) != CASE_OK) return rc;
    return exec_block(t, el, acts);
  }
  return no_text(t, el);
}

static int state_node(tr *t, const xel *el, def_node *states, int depth);
static int document(tr *t, const xel *el, def_node *doc, int child);

/* The children of <scxml>, <state> or <parallel>: states, transitions, ... */
static int state_body(tr *t, const xel *el, def_node *m, int depth) {
  int rc;
  def_node *states = NULL, *trs = NULL, *entry = NULL, *exit_ = NULL, *data = NULL, *inv = NULL,
           *deadlines = NULL;
  int is_root = is_sc(el, "scxml");
  for (int i = 0; i < el->nkids; i++) {
    const xel *k = el->kids[i];
    if (*k->ns && !is_ns(k, NS_SCXML) && !is_ns(k, NS_LIBCASE)) continue; /* foreign */
    if (is_sc(k, "state") || is_sc(k, "parallel") || is_sc(k, "final") ||
        (is_sc(k, "history") && !is_root)) {
      if (!states && (!(states = def_node_map(k->pos)) ||
                      def_node_add(m, "states", k->pos, states) != 0))
        return nomem(t);
      if ((rc = state_node(t, k, states, depth + 1)) != CASE_OK) return rc;
    } else if (is_sc(k, "transition") && !is_root) {
      if (!trs && (!(trs = def_node_seq(k->pos)) ||
                   def_node_add(m, "transitions", k->pos, trs) != 0))
        return nomem(t);
      if ((rc = transition_node(t, k, trs, 1)) != CASE_OK) return rc;
    } else if ((is_sc(k, "onentry") || is_sc(k, "onexit")) && !is_root) {
      def_node **blk = is_sc(k, "onentry") ? &entry : &exit_;
      if ((rc = check_attrs(t, k, NULL, NULL)) != CASE_OK) return rc;
      if (!*blk && (!(*blk = def_node_seq(k->pos)) ||
                    def_node_add(m, is_sc(k, "onentry") ? "entry" : "exit", k->pos, *blk) != 0))
        return nomem(t);
      /* Several handlers are blocks of their own (SCXML 3.8): an error in one
       * does not stop the next. */
      int handlers = 0;
      for (int q = 0; q < el->nkids; q++) handlers += is_sc(el->kids[q], k->name);
      if (handlers > 1) {
        def_node *item = def_node_map(k->pos), *b = def_node_seq(k->pos);
        if (!item || def_node_add(*blk, NULL, k->pos, item) != 0) {
          def_node_free(b);
          return nomem(t);
        }
        if ((rc = put(t, item, "block", k->pos, b)) != CASE_OK) return rc;
        if ((rc = exec_block(t, k, b)) != CASE_OK) return rc;
        continue;
      }
      if ((rc = exec_block(t, k, *blk)) != CASE_OK) return rc;
    } else if (is_sc(k, "datamodel")) {
      if (!data && (!(data = def_node_map(k->pos)) || def_node_add(m, "data", k->pos, data) != 0))
        return nomem(t);
      if ((rc = datamodel(t, k, data)) != CASE_OK) return rc;
    } else if (is_sc(k, "invoke") && !is_root) {
      if (!inv && (!(inv = def_node_seq(k->pos)) || def_node_add(m, "invoke", k->pos, inv) != 0))
        return nomem(t);
      static const char *const sa[] = {"type", "typeexpr", "src", "srcexpr", "id", "idlocation",
                                       "namelist", "autoforward", NULL};
      static const char *const la[] = {"workflow", "version", "description", NULL};
      if ((rc = check_attrs(t, k, sa, la)) != CASE_OK) return rc;
      def_node *v = def_node_map(k->pos);
      if (!v || def_node_add(inv, NULL, k->pos, v) != 0) return nomem(t);
      static const char *const strs[] = {"type", "src", "id", "idlocation", NULL};
      for (int j = 0; strs[j]; j++)
        if ((rc = put_str(t, v, strs[j], sattr(k, strs[j]))) != CASE_OK) return rc;
      if ((rc = put_lua(t, v, "typeexpr", sattr(k, "typeexpr"))) != CASE_OK ||
          (rc = put_lua(t, v, "srcexpr", sattr(k, "srcexpr"))) != CASE_OK ||
          (rc = put_str(t, v, "workflow", lattr(k, "workflow"))) != CASE_OK ||
          (rc = put_str(t, v, "description", lattr(k, "description"))) != CASE_OK)
        return rc;
      const xattr *ver = lattr(k, "version"), *af = sattr(k, "autoforward");
      if (ver && (rc = put(t, v, "version", ver->pos, def_node_plain(ver->value, ver->pos))) != CASE_OK)
        return rc;
      if (af) {
        if (strcmp(af->value, "true") != 0 && strcmp(af->value, "false") != 0)
          return xp_fail(t->x, CASE_INVALID, af->pos, "autoforward is '%s' (expected true or "
                         "false)", af->value);
        if ((rc = put(t, v, "autoforward", af->pos, def_node_plain(af->value, af->pos))) != CASE_OK)
          return rc;
      }
      if ((rc = put_namelist(t, v, k)) != CASE_OK) return rc;
      def_node *params = NULL;
      if ((rc = params_node(t, k, &params)) != CASE_OK) return rc;
      if (params && (rc = put(t, v, "params", k->pos, params)) != CASE_OK) return rc;
      for (int j = 0; j < k->nkids; j++) {
        const xel *c = k->kids[j];
        if (is_sc(c, "param")) continue;
        if (is_sc(c, "finalize")) {
          if ((rc = check_attrs(t, c, NULL, NULL)) != CASE_OK) return rc;
          def_node *f = def_node_seq(c->pos);
          if ((rc = put(t, v, "finalize", c->pos, f)) != CASE_OK) return rc;
          if ((rc = exec_block(t, c, f)) != CASE_OK) return rc;
          continue;
        }
        if (is_sc(c, "content")) {
          static const char *const ca[] = {"expr", NULL};
          if ((rc = check_attrs(t, c, ca, NULL)) != CASE_OK) return rc;
          if (sattr(c, "expr")) {
            if (c->nkids) return xp_fail(t->x, CASE_INVALID, c->pos, "<content> has expr and a body");
            if ((rc = put_lua(t, v, "contentexpr", sattr(c, "expr"))) != CASE_OK) return rc;
            continue;
          }
          const xel *child = NULL;
          for (int q = 0; q < c->nkids; q++)
            if (is_sc(c->kids[q], "scxml")) child = c->kids[q];
          if (!child || c->nkids != 1)
            return xp_fail(t->x, CASE_INVALID, c->pos, "<content> in <invoke> holds one "
                           "<scxml> document");
          def_node *doc = def_node_map(child->pos);
          if ((rc = put(t, v, "content", c->pos, doc)) != CASE_OK) return rc;
          if ((rc = document(t, child, doc, 1)) != CASE_OK) return rc;
          continue;
        }
        if (*c->ns && !is_ns(c, NS_SCXML)) continue;
        return unknown_child(t, c, k);
      }
    } else if (is_lc(k, "deadline") && !is_root) {
      static const char *const la[] = {"name", "after", "clock", "source", "on_expiry", "start",
                                       "description", NULL};
      if ((rc = check_attrs(t, k, la, la)) != CASE_OK) return rc;
      const xattr *nm = sattr(k, "name") ? sattr(k, "name") : lattr(k, "name");
      if (!nm) return xp_fail(t->x, CASE_INVALID, k->pos, "<libcase:deadline> without name");
      if (!deadlines && (!(deadlines = def_node_map(k->pos)) ||
                         def_node_add(m, "deadlines", k->pos, deadlines) != 0))
        return nomem(t);
      def_node *dl = def_node_map(k->pos);
      if ((rc = put(t, deadlines, nm->value, nm->pos, dl)) != CASE_OK) return rc;
      static const char *const keys[] = {"after", "clock", "source", "on_expiry", "start",
                                         "description", NULL};
      for (int j = 0; keys[j]; j++) {
        const xattr *a = sattr(k, keys[j]) ? sattr(k, keys[j]) : lattr(k, keys[j]);
        if ((rc = put_str(t, dl, keys[j], a)) != CASE_OK) return rc;
      }
    } else if (is_root && (is_sc(k, "script") || is_lc(k, "lua") || is_lc(k, "param") ||
                           is_lc(k, "report"))) {
      continue; /* document(): top-level only */
    } else if (is_sc(k, "initial") && !is_root) {
      continue; /* state_node() */
    } else if (is_sc(k, "donedata") && is_sc(el, "final")) {
      continue; /* state_node() */
    } else {
      return unknown_child(t, k, el);
    }
  }
  return no_text(t, el);
}

static int is_state_el(const xel *k) {
  return is_sc(k, "state") || is_sc(k, "parallel") || is_sc(k, "final") || is_sc(k, "history");
}

/* SCXML lets a state go without an id; libcase names it "_state<n>" (n in
 * document order), an id like any other from then on.  Nested <scxml>
 * documents are named on their own. */
static void name_states(xel *el, int *n) {
  for (int i = 0; i < el->nkids; i++) {
    xel *k = el->kids[i];
    if (is_sc(k, "scxml")) {
      int m = 0;
      name_states(k, &m);
      continue;
    }
    if (is_state_el(k) && !sattr(k, "id")) snprintf(k->gen_id, sizeof k->gen_id, "_state%d", ++*n);
    name_states(k, n);
  }
}

static const char *state_id(const xel *k) {
  const xattr *id = sattr(k, "id");
  return id ? id->value : k->gen_id;
}

/* The first child state's id (SCXML's default initial), or NULL. */
static const char *first_child(const xel *el) {
  for (int i = 0; i < el->nkids; i++) {
    const xel *k = el->kids[i];
    if (is_sc(k, "state") || is_sc(k, "parallel") || is_sc(k, "final")) return state_id(k);
  }
  return NULL;
}

static int state_node(tr *t, const xel *el, def_node *states, int depth) {
  int rc;
  static const char *const state_a[] = {"id", "initial", NULL};
  static const char *const par_a[] = {"id", NULL};
  static const char *const hist_a[] = {"id", "type", NULL};
  static const char *const la[] = {"description", NULL};
  int hist = is_sc(el, "history"), par = is_sc(el, "parallel"), fin = is_sc(el, "final");
  if ((rc = check_attrs(t, el, hist ? hist_a : (par || fin) ? par_a : state_a, la)) != CASE_OK)
    return rc;
  const xattr *id = sattr(el, "id");
  const char *sid = state_id(el);
  cs_pos ipos = id ? id->pos : el->pos;
  def_node *m = def_node_map(el->pos);
  if ((rc = put(t, states, sid, ipos, m)) != CASE_OK) return rc;
  if ((rc = put_str(t, m, "description", lattr(el, "description"))) != CASE_OK) return rc;
  if ((rc = put_editor(t, m, el, 0)) != CASE_OK) return rc;
  if (hist) {
    const xattr *ty = sattr(el, "type");
    const char *kind = ty ? ty->value : "shallow";
    if (strcmp(kind, "shallow") != 0 && strcmp(kind, "deep") != 0)
      return xp_fail(t->x, CASE_INVALID, ty->pos, "history type '%s' (expected shallow or deep)",
                     kind);
    if ((rc = put(t, m, "history", ty ? ty->pos : el->pos,
                  def_node_str(kind, strlen(kind), ty ? ty->pos : el->pos))) != CASE_OK)
      return rc;
    for (int i = 0; i < el->nkids; i++) {
      const xel *k = el->kids[i];
      if (*k->ns && !is_ns(k, NS_SCXML)) continue;
      if (!is_sc(k, "transition")) return unknown_child(t, k, el);
      static const char *const ta[] = {"target", "type", NULL};
      if ((rc = check_attrs(t, k, ta, NULL)) != CASE_OK) return rc;
      /* default: target, or {target, actions} with content */
      const xattr *tg = sattr(k, "target");
      if (!tg) return xp_fail(t->x, CASE_INVALID, k->pos, "the transition of a history has no target");
      if (k->nkids) {
        def_node *d = def_node_map(k->pos);
        if ((rc = put(t, m, "default", k->pos, d)) != CASE_OK) return rc;
        if ((rc = put(t, d, "target", tg->pos, list_node(tg))) != CASE_OK) return rc;
        def_node *acts = def_node_seq(k->pos);
        if ((rc = put(t, d, "actions", k->pos, acts)) != CASE_OK) return rc;
        if ((rc = exec_block(t, k, acts)) != CASE_OK) return rc;
      } else if ((rc = put(t, m, "default", k->pos, list_node(tg))) != CASE_OK) {
        return rc;
      }
    }
    return no_text(t, el);
  }
  if (par && (rc = put(t, m, "parallel", el->pos, def_node_plain("true", el->pos))) != CASE_OK)
    return rc;
  if (fin && (rc = put(t, m, "final", el->pos, def_node_plain("true", el->pos))) != CASE_OK)
    return rc;
  /* initial: the attribute, an <initial> element, or the first child */
  const xattr *ini = sattr(el, "initial");
  const xel *inie = NULL;
  for (int i = 0; i < el->nkids; i++)
    if (is_sc(el->kids[i], "initial")) inie = el->kids[i];
  if (ini && inie)
    return xp_fail(t->x, CASE_INVALID, inie->pos, "state '%s' has an initial attribute and an "
                   "<initial> element (expected one)", sid);
  const char *fc = first_child(el);
  int compound = !par && !fin && fc;
  if ((ini || inie) && !compound)
    return xp_fail(t->x, CASE_INVALID, ini ? ini->pos : inie->pos, "initial on state '%s', "
                   "which has no child states", sid);
  if (inie) {
    if ((rc = check_attrs(t, inie, NULL, NULL)) != CASE_OK) return rc;
    const xel *tk = inie->nkids == 1 && is_sc(inie->kids[0], "transition") ? inie->kids[0] : NULL;
    const xattr *tg = tk ? sattr(tk, "target") : NULL;
    if (!tg)
      return xp_fail(t->x, CASE_INVALID, inie->pos, "<initial> holds one <transition> with a "
                     "target");
    static const char *const ta[] = {"target", NULL};
    if ((rc = check_attrs(t, tk, ta, NULL)) != CASE_OK) return rc;
    def_node *d = def_node_map(inie->pos);
    if ((rc = put(t, m, "initial", inie->pos, d)) != CASE_OK) return rc;
    if ((rc = put(t, d, "target", tg->pos, list_node(tg))) != CASE_OK) return rc;
    def_node *acts = def_node_seq(tk->pos);
    if ((rc = put(t, d, "actions", tk->pos, acts)) != CASE_OK) return rc;
    if ((rc = exec_block(t, tk, acts)) != CASE_OK) return rc;
  } else if (ini) {
    if ((rc = put(t, m, "initial", ini->pos, list_node(ini))) != CASE_OK) return rc;
  } else if (compound) {
    if ((rc = put(t, m, "initial", el->pos, def_node_str(fc, strlen(fc), el->pos))) != CASE_OK)
      return rc;
  }
  if (fin) {
    for (int i = 0; i < el->nkids; i++) {
      const xel *k = el->kids[i];
      if (!is_sc(k, "donedata")) continue;
      if ((rc = check_attrs(t, k, NULL, NULL)) != CASE_OK) return rc;
      def_node *dd = def_node_map(k->pos);
      if ((rc = put(t, m, "donedata", k->pos, dd)) != CASE_OK) return rc;
      def_node *params = NULL;
      if ((rc = params_node(t, k, &params)) != CASE_OK) return rc;
      if (params && (rc = put(t, dd, "params", k->pos, params)) != CASE_OK) return rc;
      for (int j = 0; j < k->nkids; j++) {
        const xel *c = k->kids[j];
        if (is_sc(c, "param")) continue;
        if (!is_sc(c, "content")) return unknown_child(t, c, k);
        def_node *cn = NULL;
        if ((rc = content_node(t, c, &cn)) != CASE_OK) {
          def_node_free(cn);
          return rc;
        }
        if ((rc = put(t, dd, "content", c->pos, cn)) != CASE_OK) return rc;
      }
    }
  }
  return state_body(t, el, m, depth);
}

/* <scxml> (the document, or an inline child under <invoke><content>). */
static int document(tr *t, const xel *el, def_node *doc, int child) {
  int rc;
  if (!is_sc(el, "scxml"))
    return xp_fail(t->x, CASE_INVALID, el->pos, "the root element is <%s>, not <scxml> (expected "
                   "an SCXML document in the namespace %s)", el->name, NS_SCXML);
  static const char *const sa[] = {"initial", "name", "version", "datamodel", "binding", NULL};
  static const char *const la[] = {"workflow", "version", "description", "clock", "calendar",
                                   "in_force_from", "errors", "datamodel", "roles", NULL};
  if ((rc = check_attrs(t, el, sa, la)) != CASE_OK) return rc;
  const xattr *a;
  if ((a = sattr(el, "version")) && strcmp(a->value, "1.0") != 0)
    return xp_fail(t->x, CASE_INVALID, a->pos, "SCXML version '%s' (expected 1.0)", a->value);
  if ((a = sattr(el, "datamodel")) && strcmp(a->value, "lua") != 0)
    return xp_fail(t->x, CASE_INVALID, a->pos, "datamodel '%s' (libcase runs the Lua datamodel: "
                   "expected datamodel=\"lua\")", a->value);
  if ((a = sattr(el, "binding")) && strcmp(a->value, "early") != 0 && strcmp(a->value, "late") != 0)
    return xp_fail(t->x, CASE_INVALID, a->pos, "binding '%s' (expected early or late)", a->value);
  /* workflow: libcase:workflow, else the name if it is one, else the file's
   * name (a child written inline gets its parent's). */
  const xattr *wf = lattr(el, "workflow"), *nm = sattr(el, "name");
  if (wf) {
    if ((rc = put_str(t, doc, "workflow", wf)) != CASE_OK) return rc;
  } else if (nm && is_identifier(nm->value, 0)) {
    if ((rc = put(t, doc, "workflow", nm->pos, def_node_str(nm->value, strlen(nm->value), nm->pos))) != CASE_OK)
      return rc;
  } else if (!child) {
    const char *base = strrchr(t->x->file, '/');
    base = base ? base + 1 : t->x->file;
    char id[128];
    size_t n = 0;
    for (const char *p = base; *p && *p != '.' && n + 1 < sizeof id; p++)
      id[n++] = ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                 (*p >= '0' && *p <= '9') || *p == '_') ? *p : '_';
    id[n] = '\0';
    if (n == 0 || (id[0] >= '0' && id[0] <= '9')) {
      memmove(id + 1, id, n + 1 < sizeof id - 1 ? n + 1 : sizeof id - 2);
      id[0] = '_';
    }
    if ((rc = put(t, doc, "workflow", el->pos, def_node_str(id, strlen(id), el->pos))) != CASE_OK)
      return rc;
  }
  const xattr *ver = lattr(el, "version");
  if (ver) {
    if ((rc = put(t, doc, "version", ver->pos, def_node_plain(ver->value, ver->pos))) != CASE_OK)
      return rc;
  } else if (!child && (rc = put(t, doc, "version", el->pos, def_node_plain("1", el->pos))) != CASE_OK) {
    return rc;
  }
  if ((rc = put_str(t, doc, "name", nm)) != CASE_OK ||
      (rc = put_str(t, doc, "description", lattr(el, "description"))) != CASE_OK ||
      (rc = put_str(t, doc, "clock", lattr(el, "clock"))) != CASE_OK ||
      (rc = put_str(t, doc, "calendar", lattr(el, "calendar"))) != CASE_OK ||
      (rc = put_str(t, doc, "in_force_from", lattr(el, "in_force_from"))) != CASE_OK)
    return rc;
  /* SCXML semantics unless the document says otherwise */
  const xattr *er = lattr(el, "errors"), *dm = lattr(el, "datamodel");
  if (er) {
    if ((rc = put_str(t, doc, "errors", er)) != CASE_OK) return rc;
  } else if ((rc = put(t, doc, "errors", el->pos, def_node_str("events", 6, el->pos))) != CASE_OK) {
    return rc;
  }
  if (dm) {
    if ((rc = put_str(t, doc, "datamodel", dm)) != CASE_OK) return rc;
  } else if ((rc = put(t, doc, "datamodel", el->pos, def_node_str("globals", 7, el->pos))) != CASE_OK) {
    return rc;
  }
  if ((a = sattr(el, "binding")) && (rc = put_str(t, doc, "binding", a)) != CASE_OK) return rc;
  if (!child && (rc = put_editor(t, doc, el, 1)) != CASE_OK) return rc;
  if ((a = lattr(el, "roles")) && (rc = put(t, doc, "roles", a->pos, list_node(a))) != CASE_OK)
    return rc;
  /* top-level libcase:param, libcase:lua, script */
  def_node *params = NULL, *lua = NULL, *scripts = NULL;
  for (int i = 0; i < el->nkids; i++) {
    const xel *k = el->kids[i];
    if (is_lc(k, "param")) {
      static const char *const pa[] = {"name", "value", "source", "unverified", "description", NULL};
      if ((rc = check_attrs(t, k, pa, pa)) != CASE_OK) return rc;
      const xattr *pn = sattr(k, "name") ? sattr(k, "name") : lattr(k, "name");
      const xattr *pv = sattr(k, "value") ? sattr(k, "value") : lattr(k, "value");
      if (!pn || !pv)
        return xp_fail(t->x, CASE_INVALID, k->pos, "<libcase:param> needs name and value");
      if (!params && (!(params = def_node_map(k->pos)) ||
                      def_node_add(doc, "params", k->pos, params) != 0))
        return nomem(t);
      def_node *p = def_node_map(k->pos);
      if ((rc = put(t, params, pn->value, pn->pos, p)) != CASE_OK) return rc;
      if ((rc = put_json(t, p, "value", pv)) != CASE_OK) return rc;
      static const char *const keys[] = {"source", "description", NULL};
      for (int j = 0; keys[j]; j++) {
        const xattr *x2 = sattr(k, keys[j]) ? sattr(k, keys[j]) : lattr(k, keys[j]);
        if ((rc = put_str(t, p, keys[j], x2)) != CASE_OK) return rc;
      }
      const xattr *uv = sattr(k, "unverified") ? sattr(k, "unverified") : lattr(k, "unverified");
      if (uv && (rc = put(t, p, "unverified", uv->pos, def_node_plain(uv->value, uv->pos))) != CASE_OK)
        return rc;
    } else if (is_lc(k, "lua")) {
      static const char *const la2[] = {"src", NULL};
      if ((rc = check_attrs(t, k, la2, la2)) != CASE_OK) return rc;
      const xattr *src = sattr(k, "src") ? sattr(k, "src") : lattr(k, "src");
      if (!src) return xp_fail(t->x, CASE_INVALID, k->pos, "<libcase:lua> without src");
      if (!lua && (!(lua = def_node_seq(k->pos)) || def_node_add(doc, "lua", k->pos, lua) != 0))
        return nomem(t);
      if (def_node_add(lua, NULL, src->pos, def_node_str(src->value, strlen(src->value), src->pos)))
        return nomem(t);
    } else if (is_lc(k, "report")) {
      /* the report: section as JSON (docs/workflow-format.md, "report") */
      if ((rc = check_attrs(t, k, NULL, NULL)) != CASE_OK) return rc;
      json_error_t err;
      json_t *v = json_loadb(k->text.p ? k->text.p : "", k->text.len, 0, &err);
      if (!v)
        return xp_fail(t->x, CASE_INVALID, k->has_text_pos ? k->text_pos : k->pos,
                       "<libcase:report> is not JSON: %s", err.text);
      def_node *rn = json_node(v, k->pos);
      json_decref(v);
      if ((rc = put(t, doc, "report", k->pos, rn)) != CASE_OK) return rc;
    } else if (is_sc(k, "script")) {
      if (!scripts && (!(scripts = def_node_seq(k->pos)) ||
                       def_node_add(doc, "script", k->pos, scripts) != 0))
        return nomem(t);
      if ((rc = exec_one(t, k, scripts)) != CASE_OK) return rc;
    }
  }
  const xattr *ini = sattr(el, "initial");
  const char *fc = first_child(el);
  if (ini) {
    if ((rc = put(t, doc, "initial", ini->pos, list_node(ini))) != CASE_OK) return rc;
  } else if (fc) {
    if ((rc = put(t, doc, "initial", el->pos, def_node_str(fc, strlen(fc), el->pos))) != CASE_OK)
      return rc;
  }
  return state_body(t, el, doc, 0);
}

int scxml_parse(case_engine *e, const char *text, size_t len, const char *file, const char *dir,
                const json_t *pinned, case_def **out) {
  *out = NULL;
  if (!file) file = "<string>";
  xp x;
  memset(&x, 0, sizeof x);
  x.e = e;
  x.file = file;
  x.text = text;
  x.len = len;
  int rc = parse_xml(&x);
  def_node *doc = NULL;
  if (rc == CASE_OK) {
    tr t = {&x, e, 0};
    int n = 0;
    name_states(x.root, &n);
    doc = def_node_map(x.root->pos);
    rc = doc ? document(&t, x.root, doc, 0) : eng_err(e, CASE_NOMEM, "out of memory");
  }
  if (x.p) XML_ParserFree(x.p);
  x.p = NULL;
  xel_free(x.root);
  free(x.lines);
  json_decref(x.ns);
  if (rc != CASE_OK) {
    def_node_free(doc);
    return rc;
  }
  return def_parse_tree(e, doc, text, len, DEF_FORMAT_SCXML, file, dir, pinned, out);
}

/* ------------------------------------------------------------------ */
/* Model -> SCXML                                                      */
/* ------------------------------------------------------------------ */

typedef struct wr {
  sbuf b;
  const case_def *d;
  int depth;
  const json_t *ns; /* the document's editor namespaces: prefix -> uri */
} wr;

/* An editor's attributes on an element, with the prefixes of the document. */
static void at(wr *w, const char *name, const char *v);

static void w_editor_attrs(wr *w, const json_t *ed) {
  size_t i;
  json_t *a;
  json_array_foreach(json_object_get(ed, "attrs"), i, a) {
    const char *uri = json_string_value(json_array_get(a, 0));
    const char *name = json_string_value(json_array_get(a, 1));
    const char *val = json_string_value(json_array_get(a, 2));
    const char *k;
    json_t *u;
    json_object_foreach((json_t *)w->ns, k, u) {
      if (!uri || !name || !val || strcmp(json_string_value(u), uri) != 0) continue;
      char q[256];
      snprintf(q, sizeof q, "%s:%s", k, name);
      at(w, q, val);
      break;
    }
  }
}

static void ind(wr *w);

/* An editor's elements, as they were written. */
static void w_editor_xml(wr *w, const json_t *ed) {
  size_t i;
  json_t *x;
  json_array_foreach(json_object_get(ed, "xml"), i, x) {
    ind(w);
    sbuf_puts(&w->b, json_string_value(x) ? json_string_value(x) : "");
    sbuf_puts(&w->b, "\n");
  }
}

static void esc(sbuf *b, const char *s, int in_attr) {
  for (const char *p = s; *p; p++) {
    switch (*p) {
    case '&': sbuf_puts(b, "&amp;"); break;
    case '<': sbuf_puts(b, "&lt;"); break;
    case '>': sbuf_puts(b, "&gt;"); break;
    case '"':
      if (in_attr) sbuf_puts(b, "&quot;");
      else sbuf_add(b, p, 1);
      break;
    /* attribute values keep their line breaks and tabs only as references */
    case '\n':
      if (in_attr) sbuf_puts(b, "&#10;");
      else sbuf_add(b, p, 1);
      break;
    case '\r': sbuf_puts(b, "&#13;"); break;
    case '\t':
      if (in_attr) sbuf_puts(b, "&#9;");
      else sbuf_add(b, p, 1);
      break;
    default: sbuf_add(b, p, 1);
    }
  }
}

static void ind(wr *w) {
  for (int i = 0; i < w->depth; i++) sbuf_puts(&w->b, "  ");
}

static void at(wr *w, const char *name, const char *v) {
  if (!v) return;
  sbuf_printf(&w->b, " %s=\"", name);
  esc(&w->b, v, 1);
  sbuf_puts(&w->b, "\"");
}

static void at_json(wr *w, const char *name, const json_t *v) {
  char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  if (!t) {
    w->b.failed = 1;
    return;
  }
  at(w, name, t);
  free(t);
}

static void at_ids(wr *w, const char *name, const int *v, int n) {
  if (n <= 0) return;
  sbuf_printf(&w->b, " %s=\"", name);
  for (int i = 0; i < n; i++) {
    if (i) sbuf_puts(&w->b, " ");
    esc(&w->b, w->d->states[v[i]].id, 1);
  }
  sbuf_puts(&w->b, "\"");
}

static const char *unit_words(cs_unit u) {
  switch (u) {
  case UNIT_SECONDS: return "seconds";
  case UNIT_MINUTES: return "minutes";
  case UNIT_HOURS: return "hours";
  case UNIT_DAYS: return "days";
  case UNIT_WORKING_DAYS: return "working days";
  case UNIT_WEEKS: return "weeks";
  case UNIT_MONTHS: return "months";
  case UNIT_YEARS: return "years";
  }
  return "days";
}

static void at_duration(wr *w, const char *name, const cs_duration *u) {
  char buf[160];
  if (u->param) snprintf(buf, sizeof buf, "${%s} %s", u->param, unit_words(u->unit));
  else snprintf(buf, sizeof buf, "%ld %s", u->amount, unit_words(u->unit));
  at(w, name, buf);
}

static void w_block(wr *w, const cs_script *v, int n);

static void w_names(wr *w, const cs_namevalue *v, int n) {
  for (int i = 0; i < n; i++) {
    if (v[i].location == 2) continue; /* in namelist= */
    ind(w);
    sbuf_puts(&w->b, "<param");
    at(w, "name", v[i].name);
    at(w, v[i].location ? "location" : "expr", v[i].expr ? v[i].expr->text : "");
    sbuf_puts(&w->b, "/>\n");
  }
}

static void at_namelist(wr *w, const cs_namevalue *v, int n) {
  int any = 0;
  for (int i = 0; i < n; i++) {
    if (v[i].location != 2) continue;
    sbuf_puts(&w->b, any ? " " : " namelist=\"");
    esc(&w->b, v[i].name, 1);
    any = 1;
  }
  if (any) sbuf_puts(&w->b, "\"");
}

static void w_content(wr *w, const cs_exec *x) {
  if (x->content_text) {
    ind(w);
    sbuf_puts(&w->b, "<content>");
    if (x->content_xml) sbuf_puts(&w->b, x->content_text);
    else esc(&w->b, x->content_text, 0);
    sbuf_puts(&w->b, "</content>\n");
  } else if (x->content) {
    ind(w);
    sbuf_puts(&w->b, "<content");
    at(w, "expr", x->content->text);
    sbuf_puts(&w->b, "/>\n");
  }
}

static void w_exec(wr *w, const cs_script *s) {
  const cs_exec *x = s->exec;
  ind(w);
  switch (s->kind) {
  case SCRIPT_BLOCK:
  case SCRIPT_EXPR:
    if (s->src) {
      sbuf_puts(&w->b, "<script");
      at(w, "src", s->src);
      sbuf_puts(&w->b, "/>\n");
    } else {
      sbuf_puts(&w->b, "<script>");
      esc(&w->b, s->text ? s->text : "", 0);
      sbuf_puts(&w->b, "</script>\n");
    }
    return;
  case SCRIPT_NAMED:
  case SCRIPT_NATIVE:
    sbuf_puts(&w->b, "<libcase:call");
    at(w, "name", s->text);
    sbuf_puts(&w->b, "/>\n");
    return;
  case EXEC_RAISE:
    sbuf_puts(&w->b, "<raise");
    at(w, "event", x->event);
    sbuf_puts(&w->b, "/>\n");
    return;
  case EXEC_SEND:
    sbuf_puts(&w->b, "<send");
    at(w, "event", x->event);
    at(w, "eventexpr", x->eventexpr ? x->eventexpr->text : NULL);
    at(w, "target", x->target);
    at(w, "targetexpr", x->targetexpr ? x->targetexpr->text : NULL);
    at(w, "type", x->type);
    at(w, "typeexpr", x->typeexpr ? x->typeexpr->text : NULL);
    at(w, "id", x->id);
    at(w, "idlocation", x->idlocation);
    at(w, "delay", x->delay);
    at(w, "delayexpr", x->delayexpr ? x->delayexpr->text : NULL);
    at_namelist(w, x->names, x->nnames);
    {
      int body = x->content_text || x->content;
      for (int i = 0; i < x->nnames && !body; i++) body = x->names[i].location != 2;
      if (!body) {
        sbuf_puts(&w->b, "/>\n");
        return;
      }
    }
    sbuf_puts(&w->b, ">\n");
    w->depth++;
    w_names(w, x->names, x->nnames);
    w_content(w, x);
    w->depth--;
    ind(w);
    sbuf_puts(&w->b, "</send>\n");
    return;
  case EXEC_CANCEL:
    sbuf_puts(&w->b, "<cancel");
    at(w, "sendid", x->idexpr ? NULL : x->id);
    at(w, "sendidexpr", x->idexpr ? x->idexpr->text : NULL);
    sbuf_puts(&w->b, "/>\n");
    return;
  case EXEC_LOG:
    sbuf_puts(&w->b, "<log");
    at(w, "label", x->label);
    at(w, "expr", x->expr ? x->expr->text : NULL);
    sbuf_puts(&w->b, "/>\n");
    return;
  case EXEC_ASSIGN:
    sbuf_puts(&w->b, "<assign");
    at(w, "location", x->location);
    if (x->expr) {
      at(w, "expr", x->expr->text);
      sbuf_puts(&w->b, "/>\n");
      return;
    }
    sbuf_puts(&w->b, ">");
    if (x->content_xml) sbuf_puts(&w->b, x->content_text ? x->content_text : "");
    else esc(&w->b, x->content_text ? x->content_text : "", 0);
    sbuf_puts(&w->b, "</assign>\n");
    return;
  case EXEC_IF:
    sbuf_puts(&w->b, "<if");
    at(w, "cond", x->conds[0] ? x->conds[0]->text : "true");
    sbuf_puts(&w->b, ">\n");
    for (int i = 0; i < x->nbranches; i++) {
      if (i > 0) {
        ind(w);
        if (x->conds[i]) {
          sbuf_puts(&w->b, "<elseif");
          at(w, "cond", x->conds[i]->text);
          sbuf_puts(&w->b, "/>\n");
        } else {
          sbuf_puts(&w->b, "<else/>\n");
        }
      }
      w->depth++;
      w_block(w, x->blocks[i], x->nblock[i]);
      w->depth--;
    }
    ind(w);
    sbuf_puts(&w->b, "</if>\n");
    return;
  case EXEC_BLOCK:
    sbuf_puts(&w->b, "<libcase:block>\n");
    w->depth++;
    w_block(w, x->blocks[0], x->nblock[0]);
    w->depth--;
    ind(w);
    sbuf_puts(&w->b, "</libcase:block>\n");
    return;
  case EXEC_FOREACH:
    sbuf_puts(&w->b, "<foreach");
    at(w, "array", x->array->text);
    at(w, "item", x->location);
    at(w, "index", x->index);
    if (x->nblock[0] == 0) {
      sbuf_puts(&w->b, "/>\n");
      return;
    }
    sbuf_puts(&w->b, ">\n");
    w->depth++;
    w_block(w, x->blocks[0], x->nblock[0]);
    w->depth--;
    ind(w);
    sbuf_puts(&w->b, "</foreach>\n");
    return;
  }
}

static void w_block(wr *w, const cs_script *v, int n) {
  for (int i = 0; i < n; i++) w_exec(w, &v[i]);
}

static void w_handler(wr *w, const char *tag, const cs_script *v, int n) {
  if (n == 0) return;
  int blocks = n > 1;
  for (int i = 0; i < n && blocks; i++) blocks = v[i].kind == EXEC_BLOCK;
  if (blocks) { /* handlers of their own */
    for (int i = 0; i < n; i++) {
      ind(w);
      sbuf_printf(&w->b, "<%s>\n", tag);
      w->depth++;
      w_block(w, v[i].exec->blocks[0], v[i].exec->nblock[0]);
      w->depth--;
      ind(w);
      sbuf_printf(&w->b, "</%s>\n", tag);
    }
    return;
  }
  ind(w);
  sbuf_printf(&w->b, "<%s>\n", tag);
  w->depth++;
  w_block(w, v, n);
  w->depth--;
  ind(w);
  sbuf_printf(&w->b, "</%s>\n", tag);
}

static void w_data(wr *w, int state) {
  const case_def *d = w->d;
  int any = 0;
  for (int i = 0; i < d->nfields; i++) {
    const cs_field *f = &d->fields[i];
    if (f->state != state) continue;
    if (!any) {
      ind(w);
      sbuf_puts(&w->b, "<datamodel>\n");
      w->depth++;
      any = 1;
    }
    ind(w);
    sbuf_puts(&w->b, "<data");
    at(w, "id", f->name);
    if (f->type != TYPE_ANY) at(w, "libcase:type", type_name(f->type));
    at(w, "libcase:description", f->description);
    if (f->src) {
      at(w, "src", f->src);
    } else if (!f->content && f->expr) {
      at(w, "expr", f->expr->text);
    } else if (!f->content && f->def && !json_is_null(f->def)) {
      at_json(w, "libcase:default", f->def);
    } else if (!f->content && f->type == TYPE_ANY) {
      /* declared without a value */
    }
    if (f->content) {
      sbuf_puts(&w->b, ">");
      esc(&w->b, f->content, 0);
      sbuf_puts(&w->b, "</data>\n");
    } else {
      sbuf_puts(&w->b, "/>\n");
    }
  }
  if (any) {
    w->depth--;
    ind(w);
    sbuf_puts(&w->b, "</datamodel>\n");
  }
}

static const case_def *subdef(const case_def *d, const char *id, int version) {
  for (int i = 0; i < d->nsubdefs; i++)
    if (strcmp(d->subdefs[i]->id, id) == 0 && d->subdefs[i]->version == version)
      return d->subdefs[i];
  return NULL;
}

static void w_document(wr *w, const case_def *d, int child);

static void w_invoke(wr *w, const cs_invoke *v) {
  ind(w);
  sbuf_puts(&w->b, "<invoke");
  at(w, "id", v->id);
  at(w, "idlocation", v->idlocation);
  at(w, "type", v->type);
  at(w, "typeexpr", v->typeexpr ? v->typeexpr->text : NULL);
  at(w, "src", v->src);
  at(w, "srcexpr", v->srcexpr ? v->srcexpr->text : NULL);
  at_namelist(w, v->names, v->nnames);
  int ce = v->contentexpr != NULL;
  if (v->autoforward) at(w, "autoforward", "true");
  if (!v->src && !v->srcexpr && !v->inline_content && !ce) {
    at(w, "libcase:workflow", v->workflow);
    if (v->version > 0) {
      char buf[16];
      snprintf(buf, sizeof buf, "%d", v->version);
      at(w, "libcase:version", buf);
    }
  }
  sbuf_puts(&w->b, ">\n");
  w->depth++;
  w_names(w, v->names, v->nnames);
  if (v->nfinalize) w_handler(w, "finalize", v->finalize, v->nfinalize);
  if (ce) {
    ind(w);
    sbuf_puts(&w->b, "<content");
    at(w, "expr", v->contentexpr->text);
    sbuf_puts(&w->b, "/>\n");
  }
  if (v->inline_content) {
    const case_def *c = subdef(w->d, v->workflow, v->version);
    if (c) {
      ind(w);
      sbuf_puts(&w->b, "<content>\n");
      const case_def *save = w->d;
      w->depth++;
      w_document(w, c, 1);
      w->depth--;
      w->d = save;
      ind(w);
      sbuf_puts(&w->b, "</content>\n");
    }
  }
  w->depth--;
  ind(w);
  sbuf_puts(&w->b, "</invoke>\n");
}

static void w_transition(wr *w, const cs_transition *t) {
  const case_def *d = w->d;
  ind(w);
  sbuf_puts(&w->b, "<transition");
  if (t->timer >= 0) {
    at_duration(w, "libcase:after", &d->timers[t->timer].dur);
  } else if (t->nevents > 0) {
    sbuf_puts(&w->b, " event=\"");
    for (int i = 0; i < t->nevents; i++) {
      if (i) sbuf_puts(&w->b, " ");
      esc(&w->b, t->events[i], 1);
    }
    sbuf_puts(&w->b, "\"");
  }
  if (t->guard) {
    if (t->guard->kind == SCRIPT_NAMED || t->guard->kind == SCRIPT_NATIVE)
      at(w, "libcase:guard", t->guard->text);
    else
      at(w, "cond", t->guard->text);
  }
  at_ids(w, "target", t->targets, t->ntargets);
  if (t->internal) at(w, "type", "internal");
  if (t->nroles > 0) {
    sbuf_puts(&w->b, " libcase:roles=\"");
    for (int i = 0; i < t->nroles; i++) {
      if (i) sbuf_puts(&w->b, " ");
      esc(&w->b, d->roles[t->roles[i]], 1);
    }
    sbuf_puts(&w->b, "\"");
  }
  at(w, "libcase:description", t->description);
  w_editor_attrs(w, t->editor);
  if (t->nactions == 0 && !json_object_get(t->editor, "xml")) {
    sbuf_puts(&w->b, "/>\n");
    return;
  }
  sbuf_puts(&w->b, ">\n");
  w->depth++;
  w_editor_xml(w, t->editor);
  w_block(w, t->actions, t->nactions);
  w->depth--;
  ind(w);
  sbuf_puts(&w->b, "</transition>\n");
}

static void w_state(wr *w, int s) {
  const case_def *d = w->d;
  const cs_state *st = &d->states[s];
  const char *tag = st->kind == CS_PARALLEL ? "parallel"
                    : st->kind == CS_FINAL ? "final"
                    : (st->kind == CS_HISTORY_SHALLOW || st->kind == CS_HISTORY_DEEP) ? "history"
                                                                                       : "state";
  ind(w);
  sbuf_printf(&w->b, "<%s", tag);
  at(w, "id", st->id);
  if (st->kind == CS_HISTORY_SHALLOW || st->kind == CS_HISTORY_DEEP) {
    at(w, "type", st->kind == CS_HISTORY_DEEP ? "deep" : "shallow");
    at(w, "libcase:description", st->description);
    w_editor_attrs(w, st->editor);
    sbuf_puts(&w->b, ">\n");
    w->depth++;
    w_editor_xml(w, st->editor);
    ind(w);
    sbuf_puts(&w->b, "<transition");
    at_ids(w, "target", st->initial, st->ninitial);
    if (st->ninitial_actions) {
      sbuf_puts(&w->b, ">\n");
      w->depth++;
      w_block(w, st->initial_actions, st->ninitial_actions);
      w->depth--;
      ind(w);
      sbuf_puts(&w->b, "</transition>\n");
    } else {
      sbuf_puts(&w->b, "/>\n");
    }
    w->depth--;
    ind(w);
    sbuf_puts(&w->b, "</history>\n");
    return;
  }
  int elem = st->kind == CS_COMPOUND && (st->initial_elem || st->ninitial_actions > 0);
  if (st->kind == CS_COMPOUND && !elem) at_ids(w, "initial", st->initial, st->ninitial);
  at(w, "libcase:description", st->description);
  w_editor_attrs(w, st->editor);
  sbuf_puts(&w->b, ">\n");
  w->depth++;
  w_editor_xml(w, st->editor);
  if (elem) {
    ind(w);
    sbuf_puts(&w->b, "<initial>\n");
    w->depth++;
    ind(w);
    sbuf_puts(&w->b, "<transition");
    at_ids(w, "target", st->initial, st->ninitial);
    if (st->ninitial_actions) {
      sbuf_puts(&w->b, ">\n");
      w->depth++;
      w_block(w, st->initial_actions, st->ninitial_actions);
      w->depth--;
      ind(w);
      sbuf_puts(&w->b, "</transition>\n");
    } else {
      sbuf_puts(&w->b, "/>\n");
    }
    w->depth--;
    ind(w);
    sbuf_puts(&w->b, "</initial>\n");
  }
  w_data(w, s);
  w_handler(w, "onentry", st->onentry, st->nonentry);
  w_handler(w, "onexit", st->onexit, st->nonexit);
  for (int k = 0; k < st->ntransitions; k++) w_transition(w, &d->transitions[st->transitions[k]]);
  for (int k = 0; k < st->ntimers; k++) {
    const cs_timer *tm = &d->timers[st->timers[k]];
    if (tm->kind != TIMER_DEADLINE) continue;
    ind(w);
    sbuf_puts(&w->b, "<libcase:deadline");
    at(w, "name", tm->name);
    at_duration(w, "after", &tm->dur);
    if (tm->dur.clock != d->clock) at(w, "clock", cal_clock_name(tm->dur.clock));
    if (tm->dur.same_day) at(w, "start", "same_day");
    at(w, "source", tm->source);
    at(w, "on_expiry", tm->event);
    at(w, "description", tm->description);
    sbuf_puts(&w->b, "/>\n");
  }
  for (int k = 0; k < st->ninvokes; k++) w_invoke(w, &d->invokes[st->invokes[k]]);
  if (st->donedata) {
    ind(w);
    sbuf_puts(&w->b, "<donedata>\n");
    w->depth++;
    w_names(w, st->donedata->names, st->donedata->nnames);
    w_content(w, st->donedata);
    w->depth--;
    ind(w);
    sbuf_puts(&w->b, "</donedata>\n");
  }
  for (int k = 0; k < st->nchildren; k++) w_state(w, st->children[k]);
  w->depth--;
  ind(w);
  sbuf_printf(&w->b, "</%s>\n", tag);
}

static void w_document(wr *w, const case_def *d, int child) {
  w->d = d;
  if (!child) w->ns = json_object_get(d->editor, "ns");
  ind(w);
  sbuf_puts(&w->b, "<scxml xmlns=\"" NS_SCXML "\" xmlns:libcase=\"" NS_LIBCASE
                   "\" version=\"1.0\" datamodel=\"lua\"");
  if (!child) {
    const char *k;
    json_t *u;
    json_object_foreach((json_t *)w->ns, k, u) {
      char q[160];
      snprintf(q, sizeof q, "xmlns:%s", k);
      at(w, q, json_string_value(u));
    }
  }
  at(w, "name", d->name);
  at_ids(w, "initial", d->states[0].initial, d->states[0].ninitial);
  if (d->late_binding) at(w, "binding", "late");
  at(w, "libcase:workflow", d->id);
  char buf[16];
  snprintf(buf, sizeof buf, "%d", d->version);
  at(w, "libcase:version", buf);
  at(w, "libcase:description", d->description);
  if (d->clock != CLOCK_PLAIN) at(w, "libcase:clock", cal_clock_name(d->clock));
  if (d->in_force_from_text[0]) at(w, "libcase:in_force_from", d->in_force_from_text);
  if (!d->errors_events) at(w, "libcase:errors", "refuse");
  if (!d->globals) at(w, "libcase:datamodel", "case");
  if (d->nroles > 0) {
    sbuf_puts(&w->b, " libcase:roles=\"");
    for (int i = 0; i < d->nroles; i++) {
      if (i) sbuf_puts(&w->b, " ");
      esc(&w->b, d->roles[i], 1);
    }
    sbuf_puts(&w->b, "\"");
  }
  if (!child) w_editor_attrs(w, d->editor);
  sbuf_puts(&w->b, ">\n");
  w->depth++;
  if (!child) w_editor_xml(w, d->editor);
  for (int i = 0; i < d->nmodules; i++) {
    ind(w);
    sbuf_puts(&w->b, "<libcase:lua");
    at(w, "src", d->module_names[i]);
    sbuf_puts(&w->b, "/>\n");
  }
  for (int i = 0; i < d->nparams; i++) {
    const cs_param *p = &d->params[i];
    ind(w);
    sbuf_puts(&w->b, "<libcase:param");
    at(w, "name", p->name);
    at_json(w, "value", p->value);
    at(w, "source", p->source);
    if (p->unverified) at(w, "unverified", "true");
    at(w, "description", p->description);
    sbuf_puts(&w->b, "/>\n");
  }
  if (d->report_src) {
    char *t = json_dumps(d->report_src, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!t) w->b.failed = 1;
    ind(w);
    sbuf_puts(&w->b, "<libcase:report>");
    esc(&w->b, t ? t : "{}", 0);
    sbuf_puts(&w->b, "</libcase:report>\n");
    free(t);
  }
  w_data(w, 0);
  w_block(w, d->scripts, d->nscripts);
  for (int k = 0; k < d->states[0].nchildren; k++) w_state(w, d->states[0].children[k]);
  w->depth--;
  ind(w);
  sbuf_puts(&w->b, "</scxml>\n");
  CASE_UNUSED(child);
}

int case_def_export_scxml(const case_def *d, char **out) {
  if (out) *out = NULL;
  if (!d) return CASE_MISUSE;
  if (!out) return eng_err(d->engine, CASE_MISUSE, "case_def_export_scxml: out is NULL");
  wr w;
  memset(&w, 0, sizeof w);
  sbuf_init(&w.b);
  sbuf_puts(&w.b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
  w_document(&w, d, 0);
  char *text = sbuf_take(&w.b);
  if (!text) return eng_err(d->engine, CASE_NOMEM, "out of memory");
  *out = text;
  return CASE_OK;
}

/* ------------------------------------------------------------------ */
/* Public loading                                                      */
/* ------------------------------------------------------------------ */

int eng_add_def(case_engine *e, case_def *d, const case_def **out);

static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return xstrdup(".");
  if (slash == path) return xstrdup("/");
  return xstrndup(path, (size_t)(slash - path));
}

int case_def_load_scxml_file(case_engine *e, const char *path, const case_def **out) {
  if (out) *out = NULL;
  if (!e) return CASE_MISUSE;
  if (!path) return eng_err(e, CASE_MISUSE, "case_def_load_scxml_file: path is NULL");
  FILE *f = fopen(path, "rb");
  if (!f) return eng_err(e, CASE_IO, "%s: cannot open: %s", path, strerror(errno));
  sbuf b;
  sbuf_init(&b);
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) sbuf_add(&b, chunk, n);
  int bad = ferror(f);
  fclose(f);
  if (bad || b.failed) {
    sbuf_free(&b);
    return bad ? eng_err(e, CASE_IO, "%s: read error", path)
               : eng_err(e, CASE_NOMEM, "out of memory reading %s", path);
  }
  size_t len = b.len;
  char *text = sbuf_take(&b);
  char *dir = dir_of(path);
  if (!text || !dir) {
    free(text);
    free(dir);
    return eng_err(e, CASE_NOMEM, "out of memory");
  }
  case_def *d = NULL;
  int rc = scxml_parse(e, text, len, path, dir, NULL, &d);
  free(text);
  free(dir);
  if (rc != CASE_OK) return rc;
  return eng_add_def(e, d, out);
}

int case_def_load_scxml_string(case_engine *e, const char *text, size_t len, const char *name,
                               const case_def **out) {
  if (out) *out = NULL;
  if (!e) return CASE_MISUSE;
  if (!text) return eng_err(e, CASE_MISUSE, "case_def_load_scxml_string: text is NULL");
  case_def *d = NULL;
  int rc = scxml_parse(e, text, len, name ? name : "<string>", NULL, NULL, &d);
  if (rc != CASE_OK) return rc;
  return eng_add_def(e, d, out);
}
