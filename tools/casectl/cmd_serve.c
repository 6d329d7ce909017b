/*
 * casectl serve: the caseload overview of a store, live, over HTTP
 * (libmicrohttpd), and the signals intake of the agencies.
 *
 * Every request needs an access token (casectl token create): a browser signs in
 * once on /login (the token goes into an HttpOnly, SameSite=Strict cookie), other
 * tools send "Authorization: Bearer TOKEN".  A token with scope "read" sees the
 * overview (/, /api/report, /cases.csv, /terms.csv); one with scope "signal" may
 * submit signals (/signal, POST /api/signals), fired at the case as an event of the
 * token's role with the token's name as actor, and journalled like any event.
 *
 * Only the public store API is used (case_store_report_v2, case_store_fire,
 * case_store_token_check, case_store_follow), so any store backend serves.  One
 * thread serves every request (MHD's internal polling thread without a pool),
 * so the engine and store are used by one thread at a time; the main thread only
 * waits for SIGINT or SIGTERM.  Bounded: request body (--max-body), connections
 * (64, 16 per address), a per-address request rate (--rate per minute) and
 * failed sign-ins (10 per minute per address), 15 s idle timeout.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "casectl.h"

enum { S_LISTEN = 256, S_PORT, S_RATE, S_MAXBODY, S_SECURE, S_PORTFILE };
static struct {
  const char *listen, *port_file;
  long port, rate, max_body;
  int secure;
} so = {NULL, NULL, 8080, 120, 16384, 0};

static int serve_option(ctx *c, int code, const char *arg) {
  char *end;
  long v;
  switch (code) {
  case S_LISTEN: so.listen = arg; return EX_OK;
  case S_PORTFILE: so.port_file = arg; return EX_OK;
  case S_SECURE: so.secure = 1; return EX_OK;
  case S_PORT:
  case S_RATE:
  case S_MAXBODY:
    v = strtol(arg, &end, 10);
    if (*end || end == arg || v < 0 || (code == S_PORT && v > 65535) ||
        (code == S_RATE && (v < 1 || v > 100000)) ||
        (code == S_MAXBODY && (v < 256 || v > 1048576)))
      return usage_error(c, "%s: '%s' (expected %s)", code == S_PORT ? "--port" :
                         code == S_RATE ? "--rate" : "--max-body", arg,
                         code == S_PORT ? "0 to 65535" : code == S_RATE ?
                         "1 to 100000 requests a minute" : "256 to 1048576 bytes");
    if (code == S_PORT) so.port = v;
    else if (code == S_RATE) so.rate = v;
    else so.max_body = v;
    return EX_OK;
  default: return usage_error(c, "unexpected option");
  }
}

/* ------------------------------------------------------------------ state */

#define RATE_SLOTS 512
#define CACHE_SLOTS 8

typedef struct bucket {
  char addr[64];
  double tokens;     /* requests left */
  double last;       /* when refilled */
  int fails;         /* failed sign-ins in the current minute */
  double fail_start;
} bucket;

typedef struct cached {
  char *key;         /* options + reference minute */
  int64_t seq;       /* journal sequence it was computed at */
  json_t *rep;
} cached;

typedef struct server {
  ctx *c;
  int64_t at0, started; /* --at: the clock starts at at0 when the server starts */
  int64_t seq;          /* the journal's last sequence seen */
  bucket buckets[RATE_SLOTS];
  cached cache[CACHE_SLOTS];
  int next_slot;
  long requests, refused;
} server;

static int64_t server_now(const server *sv) {
  int64_t wall = (int64_t)time(NULL);
  return sv->c->have_at ? sv->at0 + (wall - sv->started) : wall;
}

static int64_t store_clock(void *ud) { return server_now(ud); }

static double mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static bucket *bucket_of(server *sv, const char *addr) {
  bucket *oldest = &sv->buckets[0];
  for (int i = 0; i < RATE_SLOTS; i++) {
    bucket *b = &sv->buckets[i];
    if (!strcmp(b->addr, addr)) return b;
    if (b->last < oldest->last) oldest = b;
  }
  memset(oldest, 0, sizeof *oldest);
  snprintf(oldest->addr, sizeof oldest->addr, "%s", addr);
  oldest->tokens = (double)so.rate;
  oldest->last = mono();
  return oldest;
}

/* 1 if the address may make another request now (token bucket: --rate a minute). */
static int rate_ok(server *sv, const char *addr) {
  bucket *b = bucket_of(sv, addr);
  double now = mono();
  b->tokens += (now - b->last) * (double)so.rate / 60.0;
  if (b->tokens > (double)so.rate) b->tokens = (double)so.rate;
  b->last = now;
  if (b->tokens < 1) return 0;
  b->tokens -= 1;
  return 1;
}

/* Failed sign-ins: at most 10 a minute per address. */
static int fails_ok(server *sv, const char *addr, int add) {
  bucket *b = bucket_of(sv, addr);
  double now = mono();
  if (now - b->fail_start > 60) {
    b->fail_start = now;
    b->fails = 0;
  }
  b->fails += add;
  return b->fails <= 10;
}

/* ------------------------------------------------------------------ responses */

typedef struct membuf {
  char *p;
  size_t n;
  FILE *f;
} membuf;

static FILE *mb_open(membuf *m) {
  memset(m, 0, sizeof *m);
  m->f = open_memstream(&m->p, &m->n);
  return m->f;
}

static const char *const security_headers[][2] = {
    {"Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"},
    {"X-Content-Type-Options", "nosniff"},
    {"Referrer-Policy", "no-referrer"},
    {"X-Frame-Options", "DENY"},
    {"Cache-Control", "no-store"},
};

/* Queues `body` (taken) with `status` and `type`; extra header pairs may follow. */
static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *type,
                               char *body, size_t len, const char *h1, const char *v1) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(len, body ? body : (char *)"", body ? MHD_RESPMEM_MUST_FREE
                                                                         : MHD_RESPMEM_PERSISTENT);
  if (!r) {
    free(body);
    return MHD_NO;
  }
  MHD_add_response_header(r, "Content-Type", type);
  for (size_t i = 0; i < sizeof security_headers / sizeof security_headers[0]; i++)
    MHD_add_response_header(r, security_headers[i][0], security_headers[i][1]);
  if (h1 && v1) MHD_add_response_header(r, h1, v1);
  /* Refused before the request was read: the connection is not reused. */
  if (status == MHD_HTTP_TOO_MANY_REQUESTS || status == MHD_HTTP_CONTENT_TOO_LARGE)
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
  enum MHD_Result ok = MHD_queue_response(conn, status, r);
  MHD_destroy_response(r);
  return ok;
}

static enum MHD_Result respond_mb(struct MHD_Connection *conn, unsigned status,
                                  const char *type, membuf *m, const char *h1, const char *v1) {
  fclose(m->f);
  return respond(conn, status, type, m->p, m->n, h1, v1);
}

static void page_start(FILE *f, const char *title) {
  fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
             "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
             "<title>");
  html_text(f, title);
  fprintf(f, "</title>\n<style>\n%s</style></head><body>\n<header><h1>", overview_css);
  html_text(f, title);
  fprintf(f, "</h1></header>\n<main>\n");
}

static void page_end(FILE *f) { fprintf(f, "</main></body></html>\n"); }

/* JSON for the API and for clients that ask for it; a page for a browser. */
static int wants_json(struct MHD_Connection *conn, const char *url) {
  const char *acc = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept");
  if (acc && strstr(acc, "text/html")) return 0;
  return !strncmp(url, "/api/", 5) || (acc && strstr(acc, "application/json"));
}

static enum MHD_Result respond_error(struct MHD_Connection *conn, const char *url,
                                     unsigned status, const char *title, const char *msg,
                                     const char *h1, const char *v1) {
  membuf m;
  if (!mb_open(&m)) return MHD_NO;
  if (wants_json(conn, url)) {
    json_t *o = json_pack("{s:i, s:s, s:s}", "status", (int)status, "error", title, "message", msg);
    if (o) json_dumpf(o, m.f, JSON_COMPACT);
    json_decref(o);
    fputc('\n', m.f);
    return respond_mb(conn, status, "application/json", &m, h1, v1);
  }
  page_start(m.f, title);
  fprintf(m.f, "<div class=\"notice bad\" id=\"error\" role=\"alert\">");
  html_text(m.f, msg);
  fprintf(m.f, "</div>\n");
  if (status == MHD_HTTP_UNAUTHORIZED || status == MHD_HTTP_FORBIDDEN)
    fprintf(m.f, "<p><a href=\"/login\">Sign in with an access token</a></p>\n");
  else
    fprintf(m.f, "<p><a href=\"/\">Back to the overview</a></p>\n");
  page_end(m.f);
  return respond_mb(conn, status, "text/html; charset=utf-8", &m, h1, v1);
}

/* ------------------------------------------------------------------ requests */

/* How much of a body over --max-body is read and dropped so its client gets the 413. */
#define DROP_MAX 1048576

typedef struct request {
  char *body;
  size_t len;
  int too_big;    /* 1: over --max-body (answered 413 once read), 2: answered already */
  size_t dropped; /* bytes of a body over the limit, read and dropped */
} request;

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)conn;
  (void)toe;
  request *rq = *con_cls;
  if (rq) {
    free(rq->body);
    free(rq);
  }
  *con_cls = NULL;
}

static int hexval(int ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

/* The value of `key` in an application/x-www-form-urlencoded body (malloc'd,
 * decoded), or NULL. */
static char *form_value(const char *body, size_t len, const char *key) {
  size_t klen = strlen(key);
  const char *p = body, *end = body + len;
  while (p && p < end) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    const char *stop = amp ? amp : end;
    if ((size_t)(stop - p) > klen && !strncmp(p, key, klen) && p[klen] == '=') {
      const char *v = p + klen + 1;
      char *out = malloc((size_t)(stop - v) + 1), *o = out;
      if (!out) return NULL;
      while (v < stop) {
        if (*v == '+') {
          *o++ = ' ';
          v++;
        } else if (*v == '%' && stop - v >= 3 && hexval(v[1]) >= 0 && hexval(v[2]) >= 0) {
          *o++ = (char)(hexval(v[1]) * 16 + hexval(v[2]));
          v += 3;
        } else {
          *o++ = *v++;
        }
      }
      *o = '\0';
      return out;
    }
    p = amp ? amp + 1 : NULL;
  }
  return NULL;
}

/* The form-protection value of a token: hex SHA-256("csrf:" token), 32 digits.
 * Pages signed in by cookie carry it; a cross-site form cannot know it. */
static void csrf_of(const char *token, char out[33]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_MD_CTX *x = EVP_MD_CTX_new();
  out[0] = '\0';
  if (!x) return;
  if (EVP_DigestInit_ex(x, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(x, "csrf:", 5) == 1 &&
      EVP_DigestUpdate(x, token, strlen(token)) == 1 && EVP_DigestFinal_ex(x, md, &n) == 1)
    for (unsigned i = 0; i < 16 && i < n; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
  EVP_MD_CTX_free(x);
}

typedef struct who {
  const char *token; /* as presented (borrowed from the request) */
  int by_cookie;
  json_t *info;      /* case_store_token_check()'s object */
  char label[160];   /* "name (ROLE)" */
} who;

static int has_scope(const who *w, const char *scope) {
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(w->info, "scopes"), i, v)
    if (!strcmp(json_string_value(v), scope)) return 1;
  return 0;
}

/* The token of the request: "Authorization: Bearer T", else the cookie. */
static const char *presented(struct MHD_Connection *conn, int *by_cookie) {
  const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
  *by_cookie = 0;
  if (auth && !strncasecmp(auth, "Bearer ", 7)) return auth + 7;
  const char *ck = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, "lct");
  if (ck) *by_cookie = 1;
  return ck;
}

/* CASE_OK with w filled, CASE_DENIED (no or a bad token), or a store error. */
static int authenticate(server *sv, const char *token, int by_cookie, who *w) {
  memset(w, 0, sizeof *w);
  if (!token) return CASE_DENIED;
  char *text = NULL;
  int rc = case_store_token_check(sv->c->s, token, &text);
  if (rc != CASE_OK) return rc;
  w->info = json_loads(text, 0, NULL);
  case_free(text);
  if (!w->info) return CASE_NOMEM;
  w->token = token;
  w->by_cookie = by_cookie;
  snprintf(w->label, sizeof w->label, "%s (%s)", json_string_value(json_object_get(w->info, "name")),
           json_string_value(json_object_get(w->info, "role")));
  return CASE_OK;
}

/* Journal rows after the last one seen: the cache stays valid while there are none. */
static int count_row(void *ud, int64_t seq, const char *row) {
  (void)row;
  *(int64_t *)ud = seq;
  return 0;
}

static int journal_seq(server *sv, int64_t *seq) {
  int64_t last = sv->seq;
  int rc = case_store_follow(sv->c->s, sv->seq, 0, count_row, &last, NULL);
  if (rc == CASE_OK) sv->seq = last;
  *seq = sv->seq;
  return rc;
}

/* The report for these options at `at`, from the cache when it was computed in
 * the same minute and nothing was journalled since.  Borrowed reference, or NULL
 * with the engine's error (rc in *rc). */
static json_t *report_for(server *sv, json_t *opts, int64_t at, int *rcp) {
  int64_t seq;
  int rc = journal_seq(sv, &seq);
  if (rc != CASE_OK) {
    *rcp = rc;
    return NULL;
  }
  char *otext = json_dumps(opts, JSON_COMPACT | JSON_SORT_KEYS);
  if (!otext) {
    *rcp = CASE_NOMEM;
    return NULL;
  }
  char key[1024];
  snprintf(key, sizeof key, "%lld %s", (long long)(at / 60), otext);
  for (int i = 0; i < CACHE_SLOTS; i++)
    if (sv->cache[i].key && !strcmp(sv->cache[i].key, key) && sv->cache[i].seq == seq) {
      free(otext);
      return sv->cache[i].rep;
    }
  char *text = NULL;
  rc = case_store_report_v2(sv->c->s, at, otext, &text);
  free(otext);
  if (rc != CASE_OK) {
    *rcp = rc;
    return NULL;
  }
  json_t *rep = json_loads(text, JSON_PRESERVE_ORDER, NULL);
  case_free(text);
  if (!rep) {
    *rcp = CASE_NOMEM;
    return NULL;
  }
  cached *slot = &sv->cache[sv->next_slot];
  sv->next_slot = (sv->next_slot + 1) % CACHE_SLOTS;
  free(slot->key);
  json_decref(slot->rep);
  slot->key = strdup(key);
  slot->seq = seq;
  slot->rep = rep;
  return rep;
}

static json_t *query_options(struct MHD_Connection *conn) {
  static const char *const keys[4] = {"location", "agency", "procesregisseur", "track"};
  const char *filter[4];
  for (int i = 0; i < 4; i++) filter[i] = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, keys[i]);
  return report_options_json(filter, MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "sort"), -1);
}

static enum MHD_Result store_error(server *sv, struct MHD_Connection *conn, const char *url,
                                   int rc) {
  char msg[1200];
  snprintf(msg, sizeof msg, "The store cannot be read (%s): %s. Nothing was changed; try again, "
                            "and if it persists run casectl verify on the store.",
           case_errname(rc), case_errmsg(sv->c->e));
  fprintf(stderr, "casectl serve: %s %s: %s\n", url, case_errname(rc), case_errmsg(sv->c->e));
  if (rc == CASE_INVALID) return respond_error(conn, url, MHD_HTTP_BAD_REQUEST, "Bad request", case_errmsg(sv->c->e), NULL, NULL);
  return respond_error(conn, url, MHD_HTTP_SERVICE_UNAVAILABLE, "Store unavailable", msg,
                       "Retry-After", "10");
}

static enum MHD_Result page_overview(server *sv, struct MHD_Connection *conn, const char *url,
                                     const who *w, const char *fmt, const char *notice,
                                     int notice_bad) {
  json_t *opts = query_options(conn);
  if (!opts) return MHD_NO;
  int rc = CASE_OK;
  int64_t now = server_now(sv);
  json_t *rep = report_for(sv, opts, now, &rc);
  json_decref(opts);
  if (!rep) return store_error(sv, conn, url, rc);
  membuf m;
  if (!mb_open(&m)) return MHD_NO;
  if (!strcmp(fmt, "html")) {
    overview_page p = {1, now, has_scope(w, "signal"), w->label, notice, notice_bad};
    render_overview_html(m.f, rep, &p);
    return respond_mb(conn, MHD_HTTP_OK, "text/html; charset=utf-8", &m, NULL, NULL);
  }
  if (!strcmp(fmt, "json")) {
    render_overview(m.f, rep, "json", NULL);
    return respond_mb(conn, MHD_HTTP_OK, "application/json", &m, NULL, NULL);
  }
  render_overview(m.f, rep, "csv", fmt);
  char disp[64];
  snprintf(disp, sizeof disp, "attachment; filename=\"%s.csv\"", fmt);
  return respond_mb(conn, MHD_HTTP_OK, "text/csv; charset=utf-8", &m, "Content-Disposition", disp);
}

static void login_form(FILE *f, const char *msg) {
  page_start(f, "Caseload overview: sign in");
  if (msg) {
    fprintf(f, "<div class=\"notice bad\" id=\"error\" role=\"alert\">");
    html_text(f, msg);
    fprintf(f, "</div>\n");
  }
  fprintf(f, "<p>Sign in with the access token your agency was given (<code>casectl token "
             "create</code>). It is kept in a cookie of this browser until you sign out.</p>\n"
             "<form method=\"post\" action=\"/login\" class=\"filters\">"
             "<label>access token<input type=\"password\" name=\"token\" id=\"token\" size=\"52\" "
             "autocomplete=\"off\" required></label>"
             "<button type=\"submit\" id=\"sign-in\">sign in</button></form>\n");
  page_end(f);
}

/* The signal form: the declared signal events the token's role may fire. */
static enum MHD_Result page_signal(server *sv, struct MHD_Connection *conn, const char *url,
                                   const who *w, unsigned status, const char *notice, int bad,
                                   const char *case_id) {
  json_t *opts = json_object();
  int rc = CASE_OK;
  json_t *rep = opts ? report_for(sv, opts, server_now(sv), &rc) : NULL;
  json_decref(opts);
  if (!rep) return store_error(sv, conn, url, rc);
  const char *role = json_string_value(json_object_get(w->info, "role"));
  membuf m;
  if (!mb_open(&m)) return MHD_NO;
  page_start(m.f, "Submit a signal");
  if (notice) {
    fprintf(m.f, "<div class=\"notice%s\" id=\"notice\" role=\"status\">", bad ? " bad" : "");
    html_text(m.f, notice);
    fprintf(m.f, "</div>\n");
  }
  fprintf(m.f, "<p>Signed in as ");
  html_text(m.f, w->label);
  fprintf(m.f, ". The signal is recorded on the case as an event of your role, with your "
               "token's name as who sent it.%s</p>\n",
          has_scope(w, "read") ? " <a href=\"/\">Back to the overview</a>." : "");
  fprintf(m.f, "<form method=\"post\" action=\"/api/signals\" id=\"signal-form\" "
               "class=\"filters\">\n<input type=\"hidden\" name=\"csrf\" value=\"");
  char csrf[33];
  csrf_of(w->token, csrf);
  fprintf(m.f, "%s\"><label>case<input name=\"case\" id=\"s-case\" required size=\"14\" value=\"",
          csrf);
  html_text(m.f, case_id ? case_id : "");
  fprintf(m.f, "\"></label>\n<label>signal<select name=\"event\" id=\"s-event\">");
  const char *ev;
  json_t *roles;
  int any = 0;
  json_object_foreach(json_object_get(rep, "signal_events"), ev, roles) {
    size_t i;
    json_t *r;
    int mine = 0;
    json_array_foreach(roles, i, r) mine |= !strcmp(json_string_value(r), role);
    if (!mine) continue;
    any = 1;
    fprintf(m.f, "<option value=\"");
    html_text(m.f, ev);
    fprintf(m.f, "\">");
    html_text(m.f, ev);
    fprintf(m.f, "</option>");
  }
  fprintf(m.f, "</select></label>\n<label>note<textarea name=\"note\" id=\"s-note\" rows=\"2\" "
               "cols=\"48\" maxlength=\"1000\"></textarea></label>\n"
               "<button type=\"submit\" id=\"s-submit\">submit the signal</button></form>\n");
  if (!any) {
    fprintf(m.f, "<p class=\"muted\" id=\"no-signal-events\">No workflow of the store lets the "
                 "role ");
    html_text(m.f, role);
    fprintf(m.f, " send signals.</p>\n");
  }
  page_end(m.f);
  return respond_mb(conn, status, "text/html; charset=utf-8", &m, NULL, NULL);
}

static int is_signal_event(json_t *rep, const char *event) {
  return event && json_object_get(json_object_get(rep, "signal_events"), event) != NULL;
}

/* POST /api/signals: JSON {"case","event","note"?,"payload"?} with a bearer token,
 * or the form of /signal (with its csrf value) signed in by cookie. */
static enum MHD_Result post_signal(server *sv, struct MHD_Connection *conn, const char *url,
                                   const who *w, request *rq) {
  const char *ctype = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
  int form = ctype && !strncasecmp(ctype, "application/x-www-form-urlencoded", 33);
  char *case_id = NULL, *event = NULL, *note = NULL;
  json_t *payload = NULL, *body = NULL;
  const char *key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Idempotency-Key");
  enum MHD_Result ret;
  if (form) {
    char *csrf = form_value(rq->body ? rq->body : "", rq->len, "csrf");
    char want[33];
    csrf_of(w->token, want);
    int ok = csrf && !strcmp(csrf, want);
    free(csrf);
    if (!ok)
      return respond_error(conn, url, MHD_HTTP_FORBIDDEN, "Refused",
                           "The form is not from this server's signal page (missing or wrong "
                           "form token): open /signal and submit it from there.", NULL, NULL);
    case_id = form_value(rq->body, rq->len, "case");
    event = form_value(rq->body, rq->len, "event");
    note = form_value(rq->body, rq->len, "note");
  } else {
    if (w->by_cookie)
      return respond_error(conn, url, MHD_HTTP_FORBIDDEN, "Refused",
                           "A JSON signal needs \"Authorization: Bearer TOKEN\"; a signed-in "
                           "browser uses the form of /signal.", NULL, NULL);
    json_error_t jerr;
    body = rq->body ? json_loadb(rq->body, rq->len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (!json_is_object(body)) {
      json_decref(body);
      return respond_error(conn, url, MHD_HTTP_BAD_REQUEST, "Bad request",
                           "expected a JSON object {\"case\":ID,\"event\":SIGNAL,\"note\":TEXT}",
                           NULL, NULL);
    }
    const char *cs = json_string_value(json_object_get(body, "case"));
    const char *es = json_string_value(json_object_get(body, "event"));
    const char *ns = json_string_value(json_object_get(body, "note"));
    case_id = cs ? strdup(cs) : NULL;
    event = es ? strdup(es) : NULL;
    note = ns ? strdup(ns) : NULL;
    json_t *p = json_object_get(body, "payload");
    if (p && !json_is_object(p)) {
      json_decref(body);
      free(case_id);
      free(event);
      free(note);
      return respond_error(conn, url, MHD_HTTP_BAD_REQUEST, "Bad request",
                           "\"payload\" must be an object", NULL, NULL);
    }
    if (p) payload = json_deep_copy(p);
  }
  json_decref(body);
  const char *name = json_string_value(json_object_get(w->info, "name"));
  const char *role = json_string_value(json_object_get(w->info, "role"));
  char msg[1400];
  unsigned status = MHD_HTTP_OK;
  int rc = CASE_OK;
  int64_t seq = 0, now = server_now(sv);
  json_t *none = json_object();
  json_t *rep = none ? report_for(sv, none, now, &rc) : NULL;
  json_decref(none);
  if (!rep) {
    ret = store_error(sv, conn, url, rc);
    goto out;
  }
  if (!case_id || !*case_id || !event || !*event) {
    status = MHD_HTTP_BAD_REQUEST;
    snprintf(msg, sizeof msg, "A signal needs a case and a signal kind.");
  } else if (note && strlen(note) > 1000) {
    status = MHD_HTTP_BAD_REQUEST;
    snprintf(msg, sizeof msg, "The note is longer than 1000 characters.");
  } else if (!is_signal_event(rep, event)) {
    status = MHD_HTTP_BAD_REQUEST;
    snprintf(msg, sizeof msg, "'%.100s' is not a signal of any workflow of the store (its "
                              "report: section lists the signals).", event);
  } else {
    if (!payload) payload = json_object();
    if (note && *note) json_object_set_new(payload, "toelichting", json_string(note));
    json_object_set_new(payload, "bron", json_string(name));
    char *ptext = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
    rc = ptext ? case_store_fire(sv->c->s, case_id, event, ptext, name, role, now, -1, key, &seq)
               : CASE_NOMEM;
    free(ptext);
    if (rc == CASE_OK) {
      status = form ? MHD_HTTP_OK : MHD_HTTP_CREATED;
      snprintf(msg, sizeof msg, "Signal %.100s on case %.128s recorded (journal row %lld), sent "
                                "by %.150s.", event, case_id, (long long)seq, w->label);
      fprintf(stderr, "casectl serve: signal %s on %s by %s: journal row %lld\n", event, case_id,
              w->label, (long long)seq);
    } else {
      status = rc == CASE_NOTFOUND                       ? MHD_HTTP_NOT_FOUND
               : rc == CASE_DENIED                        ? MHD_HTTP_FORBIDDEN
               : rc == CASE_INVALID || rc == CASE_MISUSE ? MHD_HTTP_BAD_REQUEST
               : rc == CASE_BUSY || rc == CASE_IO || rc == CASE_CORRUPT || rc == CASE_NOMEM
                   ? MHD_HTTP_SERVICE_UNAVAILABLE
                   : MHD_HTTP_CONFLICT; /* not handled now, a guard, done, a conflict */
      snprintf(msg, sizeof msg, "Signal refused (%s): %.1200s", case_errname(rc),
               case_errmsg(sv->c->e));
    }
  }
  if (form) {
    ret = page_signal(sv, conn, url, w, status, msg, status >= 400, status >= 400 ? case_id : NULL);
  } else if (status >= 400) {
    ret = respond_error(conn, url, status, status == MHD_HTTP_FORBIDDEN ? "Forbidden" : "Refused",
                        msg, NULL, NULL);
  } else {
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s}", "case", case_id, "event", event,
                          "seq", (json_int_t)seq, "actor", name, "role", role, "message", msg);
    char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    ret = t ? respond(conn, status, "application/json", t, strlen(t), NULL, NULL) : MHD_NO;
  }
out:
  json_decref(payload);
  free(case_id);
  free(event);
  free(note);
  return ret;
}

static const char *client_addr(struct MHD_Connection *conn, char *buf, size_t len) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  snprintf(buf, len, "?");
  if (!ci || !ci->client_addr) return buf;
  const struct sockaddr *sa = ci->client_addr;
  if (sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf,
              (socklen_t)len);
  else if (sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, buf,
              (socklen_t)len);
  return buf;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls) {
  (void)version;
  server *sv = cls;
  request *rq = *con_cls;
  int is_post = !strcmp(method, "POST");
  if (!rq) {
    /* First call: the headers are in.  Count the request, bound the body. */
    rq = calloc(1, sizeof *rq);
    if (!rq) return MHD_NO;
    *con_cls = rq;
    sv->requests++;
    char addr[64];
    client_addr(conn, addr, sizeof addr);
    if (!rate_ok(sv, addr)) {
      sv->refused++;
      rq->too_big = 2;
      return respond_error(conn, url, MHD_HTTP_TOO_MANY_REQUESTS, "Too many requests",
                           "Too many requests from this address; wait a minute.", "Retry-After",
                           "60");
    }
    /* A body announced over --max-body but of at most DROP_MAX bytes is read and dropped, and
     * then answered 413 (below): the client has sent it all and reads the answer, whether
     * or not it waited for 100 Continue.  A larger one is answered 413 at once, before
     * MHD sends 100 Continue, so a client that waits for it (curl does) sends nothing of
     * the body; one that sends it regardless may see the connection closed while it
     * writes.  A body that grows past the limit unannounced (chunked) is handled below. */
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    long long announced = cl ? strtoll(cl, NULL, 10) : 0;
    if (announced > so.max_body && announced <= DROP_MAX) {
      rq->too_big = 1;
    } else if (announced > so.max_body) {
      char msg[128];
      rq->too_big = 2;
      snprintf(msg, sizeof msg, "The request body is larger than %ld bytes.", so.max_body);
      return respond_error(conn, url, MHD_HTTP_CONTENT_TOO_LARGE, "Too large", msg, NULL, NULL);
    }
    return MHD_YES;
  }
  if (rq->too_big == 2) return MHD_YES; /* a response is queued already */
  if (*upload_size) {
    /* A body over --max-body is read and dropped (up to DROP_MAX more, so the client
     * gets its 413), never kept; past that the connection is closed. */
    if (!is_post) return MHD_NO;
    if (rq->too_big || rq->len + *upload_size > (size_t)so.max_body) {
      rq->too_big = 1;
      rq->dropped += *upload_size;
      *upload_size = 0;
      return rq->dropped > DROP_MAX ? MHD_NO : MHD_YES;
    }
    char *p = realloc(rq->body, rq->len + *upload_size + 1);
    if (!p) return MHD_NO;
    memcpy(p + rq->len, upload, *upload_size);
    rq->body = p;
    rq->len += *upload_size;
    rq->body[rq->len] = '\0';
    *upload_size = 0;
    return MHD_YES;
  }
  if (rq->too_big == 1) {
    char msg[128];
    snprintf(msg, sizeof msg, "The request body is larger than %ld bytes.", so.max_body);
    return respond_error(conn, url, MHD_HTTP_CONTENT_TOO_LARGE, "Too large", msg, NULL, NULL);
  }
  int is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
  if (!is_get && !is_post)
    return respond_error(conn, url, MHD_HTTP_METHOD_NOT_ALLOWED, "Method not allowed",
                         "Only GET and POST are served.", "Allow", "GET, HEAD, POST");
  char addr[64];
  client_addr(conn, addr, sizeof addr);

  /* Signing in and out need no token. */
  if (!strcmp(url, "/login")) {
    membuf m;
    if (is_get) {
      if (!mb_open(&m)) return MHD_NO;
      login_form(m.f, NULL);
      return respond_mb(conn, MHD_HTTP_OK, "text/html; charset=utf-8", &m, NULL, NULL);
    }
    if (!fails_ok(sv, addr, 0))
      return respond_error(conn, url, MHD_HTTP_TOO_MANY_REQUESTS, "Too many requests",
                           "Too many failed sign-ins from this address; wait a minute.",
                           "Retry-After", "60");
    char *token = form_value(rq->body ? rq->body : "", rq->len, "token");
    who w;
    int rc = authenticate(sv, token, 0, &w);
    if (rc != CASE_OK) {
      free(token);
      if (rc != CASE_DENIED) return store_error(sv, conn, url, rc);
      fails_ok(sv, addr, 1);
      if (!mb_open(&m)) return MHD_NO;
      login_form(m.f, "Unknown or revoked access token.");
      return respond_mb(conn, MHD_HTTP_UNAUTHORIZED, "text/html; charset=utf-8", &m, NULL, NULL);
    }
    char cookie[256];
    snprintf(cookie, sizeof cookie, "lct=%s; Path=/; HttpOnly; SameSite=Strict%s", token,
             so.secure ? "; Secure" : "");
    free(token);
    const char *to = has_scope(&w, "read") ? "/" : "/signal";
    json_decref(w.info);
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Set-Cookie", cookie);
    MHD_add_response_header(r, "Location", to);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ok = MHD_queue_response(conn, MHD_HTTP_SEE_OTHER, r);
    MHD_destroy_response(r);
    return ok;
  }
  if (!strcmp(url, "/logout") && is_post) {
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Set-Cookie", "lct=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
    MHD_add_response_header(r, "Location", "/login");
    enum MHD_Result ok = MHD_queue_response(conn, MHD_HTTP_SEE_OTHER, r);
    MHD_destroy_response(r);
    return ok;
  }

  /* Everything else: a valid token, or refused. */
  int by_cookie = 0;
  const char *token = presented(conn, &by_cookie);
  who w;
  int rc = authenticate(sv, token, by_cookie, &w);
  if (rc != CASE_OK) {
    if (rc != CASE_DENIED) return store_error(sv, conn, url, rc);
    if (token && !fails_ok(sv, addr, 1))
      return respond_error(conn, url, MHD_HTTP_TOO_MANY_REQUESTS, "Too many requests",
                           "Too many refused tokens from this address; wait a minute.",
                           "Retry-After", "60");
    return respond_error(conn, url, MHD_HTTP_UNAUTHORIZED, "Sign in",
                         token ? "Unknown or revoked access token."
                               : "This server needs an access token: sign in, or send "
                                 "\"Authorization: Bearer TOKEN\".",
                         "WWW-Authenticate", "Bearer realm=\"libcase\"");
  }
  enum MHD_Result ret;
  int read_ok = has_scope(&w, "read"), signal_ok = has_scope(&w, "signal");
  const char *fmt = !strcmp(url, "/") ? "html" : !strcmp(url, "/api/report") ? "json"
                    : !strcmp(url, "/cases.csv") ? "cases" : !strcmp(url, "/terms.csv") ? "terms"
                                                                                        : NULL;
  if (fmt && is_get) {
    ret = read_ok ? page_overview(sv, conn, url, &w, fmt, NULL, 0)
                  : respond_error(conn, url, MHD_HTTP_FORBIDDEN, "Forbidden",
                                  "This token may submit signals, not read the overview.",
                                  NULL, NULL);
  } else if (!strcmp(url, "/signal") && is_get) {
    ret = signal_ok ? page_signal(sv, conn, url, &w, MHD_HTTP_OK, NULL, 0, NULL)
                    : respond_error(conn, url, MHD_HTTP_FORBIDDEN, "Forbidden",
                                    "This token may read the overview, not submit signals.",
                                    NULL, NULL);
  } else if (!strcmp(url, "/api/signals") && is_post) {
    ret = signal_ok ? post_signal(sv, conn, url, &w, rq)
                    : respond_error(conn, url, MHD_HTTP_FORBIDDEN, "Forbidden",
                                    "This token may not submit signals.", NULL, NULL);
  } else {
    ret = respond_error(conn, url, MHD_HTTP_NOT_FOUND, "Not found",
                        "No such page: /, /signal, /api/report, /api/signals, /cases.csv and "
                        "/terms.csv are served.", NULL, NULL);
  }
  json_decref(w.info);
  return ret;
}

/* ------------------------------------------------------------------ running */

static int bind_address(const char *host, long port, struct sockaddr_storage *ss, int *v6) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((unsigned short)port);
    *v6 = 0;
    return 0;
  }
  if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((unsigned short)port);
    *v6 = 1;
    return 0;
  }
  return -1;
}

static int run_serve(ctx *c, int argc, char **argv) {
  (void)argv;
  if (argc != 0) return usage_error(c, "serve takes no arguments");
  const char *host = so.listen ? so.listen : "127.0.0.1";
  struct sockaddr_storage ss;
  int v6 = 0;
  if (bind_address(host, so.port, &ss, &v6) != 0)
    return usage_error(c, "--listen: '%s' is not an IPv4 or IPv6 address", host);
  server *sv = calloc(1, sizeof *sv);
  if (!sv) return fail(c, EX_STORE, "out of memory");
  sv->c = c;
  sv->at0 = c->at;
  sv->started = (int64_t)time(NULL);
  case_store_set_clock(c->s, store_clock, sv);
  /* The report once before serving: a store that cannot be read says so now. */
  json_t *none = json_object();
  int rc = CASE_OK;
  if (!none || !report_for(sv, none, server_now(sv), &rc)) {
    json_decref(none);
    free(sv);
    return fail_engine(c, rc, "report");
  }
  json_decref(none);

  /* SIGINT/SIGTERM blocked in every thread; the main thread waits for them. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);
  struct MHD_Daemon *d = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0),
      (uint16_t)so.port, NULL, NULL, handle, sv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
      MHD_OPTION_NOTIFY_COMPLETED, completed, sv, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
      MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)16, MHD_OPTION_CONNECTION_TIMEOUT,
      (unsigned)15, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536, MHD_OPTION_END);
  if (!d) {
    free(sv);
    return fail(c, EX_STORE, "cannot listen on %s port %ld: %s", host, so.port, strerror(errno));
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  unsigned port = di ? di->port : (unsigned)so.port;
  char url[128];
  snprintf(url, sizeof url, v6 ? "http://[%s]:%u/" : "http://%s:%u/", host, port);
  printf("serving %s (store %s)%s\n", url, c->store_shown,
         c->have_at ? ", the clock starting at --at" : "");
  fflush(stdout);
  if (so.port_file) {
    FILE *pf = fopen(so.port_file, "w");
    if (pf) {
      fprintf(pf, "%u\n", port);
      fclose(pf);
    }
  }
  int sig = 0;
  sigwait(&set, &sig);
  MHD_stop_daemon(d);
  if (!c->quiet)
    fprintf(stderr, "casectl serve: stopped (%s), %ld request(s), %ld over the rate\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM", sv->requests, sv->refused);
  for (int i = 0; i < CACHE_SLOTS; i++) {
    free(sv->cache[i].key);
    json_decref(sv->cache[i].rep);
  }
  free(sv);
  return EX_OK;
}

static const struct option serve_options[] = {
    {"listen", required_argument, NULL, S_LISTEN},
    {"port", required_argument, NULL, S_PORT},
    {"port-file", required_argument, NULL, S_PORTFILE},
    {"rate", required_argument, NULL, S_RATE},
    {"max-body", required_argument, NULL, S_MAXBODY},
    {"secure-cookies", no_argument, NULL, S_SECURE},
    {NULL, 0, NULL, 0},
};

const command cmd_serve = {
    "serve", "the live overview over HTTP and the signals intake",
    "usage: casectl serve [--listen ADDR] [--port N] [--rate N] [--max-body BYTES]\n"
    "                     [--secure-cookies] [--port-file FILE] [--at WHEN]\n"
    "  Serves the store's caseload overview, computed at every load (/: the page,\n"
    "  /api/report: its JSON, /cases.csv, /terms.csv; ?location=&agency=\n"
    "  &procesregisseur=&track=&sort= filter and sort), and takes signals\n"
    "  (/signal: a form; POST /api/signals {\"case\",\"event\",\"note\"}).  Every\n"
    "  request needs an access token (casectl token create): a browser signs in on\n"
    "  /login, other tools send \"Authorization: Bearer TOKEN\".  Stops on SIGINT or\n"
    "  SIGTERM.\n"
    "  --listen ADDR     the address to bind (default 127.0.0.1, loopback only)\n"
    "  --port N          default 8080; 0 picks a free port (printed, and --port-file)\n"
    "  --rate N          requests a minute per client address (default 120)\n"
    "  --max-body BYTES  the largest request body (default 16384)\n"
    "  --secure-cookies  mark the sign-in cookie Secure (behind a TLS reverse proxy)\n"
    "  --at WHEN         the server's clock starts at WHEN and runs on from there (a\n"
    "                    replayed pilot); signals are recorded at that clock\n",
    serve_options, serve_option, run_serve, 1};
