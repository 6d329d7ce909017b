/*
 * http.c — SCXML's Basic HTTP Event I/O Processor (Appendix C.2), without
 * the network: libcase writes the HTTP request a <send> of that type makes
 * and reads the requests a host's HTTP server receives; the host carries
 * them (a store or an engine never opens a socket: a case's run must replay).
 *
 *  - <send type="http://www.w3.org/TR/scxml/#BasicHTTPEventProcessor"
 *    target="URL"> becomes a notification named "basichttp" (in a store, an
 *    outbox row) whose payload says what to POST where:
 *      {"target":URL,"method":"POST","content_type":"application/x-www-form-urlencoded",
 *       "body":"_scxmleventname=test&Var1=2","request":"POST ... HTTP/1.1\r\n...",
 *       "event":"test","sendid":...}
 *    The event name travels as _scxmleventname, namelist and params as
 *    form fields; <content> is the body (the event name then in the query).
 *  - case_instance_fire_http() turns a received request into an external
 *    event: its name is the _scxmleventname field (else "HTTP.<METHOD>"),
 *    _event.data the other fields (or the body when it is no form), and
 *    _event.raw the request as received.
 *  - _ioprocessors.basichttp.location is the engine's HTTP base followed by
 *    the case id (case_engine_set_http_base; "urn:libcase:basichttp:" by
 *    default), the URL at which the host takes the case's requests.
 */
#include "internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_BASE "urn:libcase:basichttp:"

int case_engine_set_http_base(case_engine *e, const char *base) {
  if (!e) return CASE_MISUSE;
  if (!base) return eng_err(e, CASE_MISUSE, "case_engine_set_http_base: base is NULL");
  char *b = xstrdup(base);
  if (!b) return eng_err(e, CASE_NOMEM, "out of memory");
  free(e->http_base);
  e->http_base = b;
  return eng_ok(e);
}

char *http_location(const case_engine *e, const char *case_id) {
  sbuf b;
  sbuf_init(&b);
  sbuf_puts(&b, e->http_base ? e->http_base : DEFAULT_BASE);
  http_encode(&b, case_id, strlen(case_id));
  return sbuf_take(&b);
}

/* Percent-encoding: unreserved bytes stay, every other byte is %XX (a space
 * too: readers of forms take %20 as they take '+'). */
void http_encode(sbuf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':') {
      sbuf_add(b, (const char *)&s[i], 1);
    } else {
      char e[3] = {'%', hex[c >> 4], hex[c & 15]};
      sbuf_add(b, e, 3);
    }
  }
}

static void encode_value(sbuf *b, const json_t *v) {
  if (json_is_string(v)) {
    http_encode(b, json_string_value(v), json_string_length(v));
    return;
  }
  char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  if (!t) {
    b->failed = 1;
    return;
  }
  http_encode(b, t, strlen(t));
  free(t);
}

json_t *http_request(const char *target, const char *event, const json_t *fields,
                     const json_t *content, const char *sendid) {
  sbuf body, url;
  sbuf_init(&body);
  sbuf_init(&url);
  sbuf_puts(&url, target);
  int first = 1;
  if (content && !json_is_null(content)) {
    encode_value(&body, content);
    if (event && *event) {
      sbuf_puts(&url, strchr(target, '?') ? "&" : "?");
      sbuf_puts(&url, "_scxmleventname=");
      http_encode(&url, event, strlen(event));
    }
  } else {
    if (event && *event) {
      sbuf_puts(&body, "_scxmleventname=");
      http_encode(&body, event, strlen(event));
      first = 0;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)fields, k, v) {
      if (!first) sbuf_add(&body, "&", 1);
      first = 0;
      http_encode(&body, k, strlen(k));
      sbuf_add(&body, "=", 1);
      encode_value(&body, v);
    }
  }
  size_t blen = body.len;
  char *bt = sbuf_take(&body), *ut = sbuf_take(&url);
  json_t *out = NULL;
  if (bt && ut) {
    /* request-target and Host from an http(s) URL; any other URI as it is */
    const char *path = ut, *host = NULL;
    size_t hlen = 0;
    const char *p = strstr(ut, "://");
    if (p && (strncmp(ut, "http", 4) == 0)) {
      host = p + 3;
      const char *slash = strchr(host, '/');
      hlen = slash ? (size_t)(slash - host) : strlen(host);
      path = slash ? slash : "/";
    }
    sbuf r;
    sbuf_init(&r);
    sbuf_printf(&r, "POST %s HTTP/1.1\r\n", path);
    if (host) sbuf_printf(&r, "Host: %.*s\r\n", (int)hlen, host);
    sbuf_printf(&r, "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n\r\n",
                blen);
    sbuf_add(&r, bt, blen);
    char *rt = sbuf_take(&r);
    if (rt)
      out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?, s:s?}", "target", ut, "method", "POST",
                      "content_type", "application/x-www-form-urlencoded", "body", bt, "request",
                      rt, "event", event && *event ? event : NULL, "sendid", sendid);
    free(rt);
  }
  free(bt);
  free(ut);
  return out;
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static char *decode(const char *s, size_t n) {
  char *o = malloc(n + 1);
  if (!o) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '+') o[k++] = ' ';
    else if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
      o[k++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
      i += 2;
    } else o[k++] = s[i];
  }
  o[k] = '\0';
  return o;
}

/* Adds the fields of form text [s, s+n) to obj; the event name goes to *name. */
static int form_fields(const char *s, size_t n, json_t *obj, char **name) {
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n && s[j] != '&') j++;
    const char *eq = memchr(s + i, '=', j - i);
    char *k = decode(s + i, eq ? (size_t)(eq - s - i) : j - i);
    char *v = eq ? decode(eq + 1, (size_t)(s + j - eq - 1)) : xstrdup("");
    if (!k || !v) {
      free(k);
      free(v);
      return -1;
    }
    if (strcmp(k, "_scxmleventname") == 0) {
      free(*name);
      *name = v;
      v = NULL;
    } else if (*k) {
      json_t *x = json_string(v);
      if (!x || json_object_set_new(obj, k, x) != 0) {
        free(k);
        free(v);
        return -1;
      }
    }
    free(k);
    free(v);
    i = j + 1;
  }
  return 0;
}

int case_instance_fire_http(case_instance *c, const char *request, size_t len, int64_t at) {
  if (!c) return CASE_MISUSE;
  case_engine *e = c->engine;
  if (!request) return eng_err(e, CASE_MISUSE, "case_instance_fire_http: request is NULL");
  if (c->st.done) return eng_err(e, CASE_DONE, "case '%s' is done: it reached a final state", c->id);
  if (at < c->st.last_time)
    return eng_err(e, CASE_INVALID, "case '%s': an HTTP event earlier than the case's last "
                   "event (events are processed in time order)", c->id);
  /* request line */
  const char *end = memchr(request, '\n', len);
  if (!end) return eng_err(e, CASE_INVALID, "not an HTTP request: no request line");
  const char *sp1 = memchr(request, ' ', (size_t)(end - request));
  const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1)) : NULL;
  if (!sp1 || !sp2 || sp1 == request)
    return eng_err(e, CASE_INVALID, "not an HTTP request: '%.*s'",
                   (int)(end - request > 80 ? 80 : end - request), request);
  for (const char *p = request; p < sp1; p++)
    if (!isupper((unsigned char)*p))
      return eng_err(e, CASE_INVALID, "not an HTTP method: '%.*s'", (int)(sp1 - request), request);
  /* body after the blank line */
  const char *body = NULL;
  for (const char *p = end + 1; p < request + len; p++) {
    if (*p == '\n' && (p[-1] == '\n' || (p[-1] == '\r' && p - 2 >= request && p[-2] == '\n'))) {
      body = p + 1;
      break;
    }
  }
  size_t blen = body ? (size_t)(request + len - body) : 0;
  json_t *fields = json_object();
  char *name = NULL;
  int rc = fields ? CASE_OK : CASE_NOMEM;
  const char *q = memchr(sp1 + 1, '?', (size_t)(sp2 - sp1 - 1));
  if (rc == CASE_OK && q && form_fields(q + 1, (size_t)(sp2 - q - 1), fields, &name) != 0)
    rc = CASE_NOMEM;
  json_t *data = NULL;
  if (rc == CASE_OK && body && blen > 0) {
    if (memchr(body, '=', blen)) {
      if (form_fields(body, blen, fields, &name) != 0) rc = CASE_NOMEM;
    } else {
      char *t = decode(body, blen);
      data = t ? json_string(t) : NULL;
      free(t);
      if (!data) rc = CASE_NOMEM;
    }
  }
  if (rc == CASE_OK && !name) {
    sbuf b;
    sbuf_init(&b);
    sbuf_printf(&b, "HTTP.%.*s", (int)(sp1 - request), request);
    name = sbuf_take(&b);
    if (!name) rc = CASE_NOMEM;
  }
  if (rc == CASE_OK && !data) data = json_object_size(fields) ? json_incref(fields) : json_null();
  if (rc == CASE_OK && event_name_problem(name)) {
    rc = eng_err(e, CASE_INVALID, "case '%s': HTTP event '%s': %s", c->id, name,
                 event_name_problem(name));
  } else if (rc == CASE_OK) {
    json_t *meta = json_pack("{s:s, s:s, s:s%}", "type", "external", "origintype",
                             "http://www.w3.org/TR/scxml/#BasicHTTPEventProcessor", "raw",
                             request, len);
    rc = meta ? CASE_OK : CASE_NOMEM;
    /* the case's own timers due by then first, as for every event */
    for (int one = 1; rc == CASE_OK && one;) rc = chart_tick_one(c, at, &one);
    if (rc == CASE_OK) rc = chart_macrostep_ex(c, name, data, meta, NULL, NULL, at, 1);
    json_decref(meta);
    if (rc == CASE_OK && e->mail && !e->manual_mail) eng_deliver(e);
    if (rc == CASE_OK) eng_ok(e);
  }
  if (rc == CASE_NOMEM) eng_err(e, CASE_NOMEM, "out of memory");
  json_decref(fields);
  json_decref(data);
  free(name);
  return rc;
}
