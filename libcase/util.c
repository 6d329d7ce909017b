/* util.c — growable strings, string copies, hashing, pending-event lists. */
#include "internal.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sbuf_init(sbuf *b) { memset(b, 0, sizeof *b); }

void sbuf_free(sbuf *b) {
  free(b->p);
  sbuf_init(b);
}

static int grow(sbuf *b, size_t need) {
  if (b->failed) return -1;
  if (b->len + need + 1 <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < b->len + need + 1) {
    if (cap > SIZE_MAX / 2) { b->failed = 1; return -1; }
    cap *= 2;
  }
  char *p = realloc(b->p, cap);
  if (!p) { b->failed = 1; return -1; }
  b->p = p;
  b->cap = cap;
  return 0;
}

void sbuf_add(sbuf *b, const char *s, size_t n) {
  if (grow(b, n) != 0) return;
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

void sbuf_puts(sbuf *b, const char *s) { sbuf_add(b, s, strlen(s)); }

void sbuf_printf(sbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || grow(b, (size_t)n) != 0) {
    if (n < 0) b->failed = 1;
    va_end(ap2);
    return;
  }
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  b->len += (size_t)n;
}

char *sbuf_take(sbuf *b) {
  char *p = NULL;
  if (!b->failed) {
    p = b->p ? b->p : xstrdup("");
    b->p = NULL;
  }
  sbuf_free(b);
  return p;
}

char *xstrdup(const char *s) {
  if (!s) return NULL;
  return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n) {
  if (!s) return NULL;
  char *p = malloc(n + 1);
  if (!p) return NULL;
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

int sha256_hex(const void *data, size_t n, char out[65]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (!EVP_Digest(data, n, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) return -1;
  static const char hex[] = "0123456789abcdef";
  for (unsigned i = 0; i < 32; i++) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 15];
  }
  out[64] = '\0';
  return 0;
}

static int ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

int is_identifier(const char *s, int allow_dots) {
  if (!s || !ident_start(*s)) return 0;
  for (const char *p = s; *p; p++) {
    if (*p == '.' && allow_dots) {
      if (!ident_start(p[1])) return 0;
      continue;
    }
    if (!ident_start(*p) && !(*p >= '0' && *p <= '9')) return 0;
  }
  return 1;
}

int plist_push(cs_plist *l, const char *name, json_t *payload) {
  if (!payload) payload = json_null();
  if (l->n == l->cap) {
    int cap = l->cap ? l->cap * 2 : 4;
    cs_pending *v = realloc(l->v, (size_t)cap * sizeof *v);
    if (!v) { json_decref(payload); return CASE_NOMEM; }
    l->v = v;
    l->cap = cap;
  }
  char *n = xstrdup(name);
  if (!n) { json_decref(payload); return CASE_NOMEM; }
  l->v[l->n].name = n;
  l->v[l->n].payload = payload;
  l->n++;
  return CASE_OK;
}

void plist_clear(cs_plist *l) {
  for (int i = 0; i < l->n; i++) {
    free(l->v[i].name);
    json_decref(l->v[i].payload);
  }
  l->n = 0;
}
