/* util.c — growable strings, string copies, hashing, pending-event lists. */
#include "internal.h"

#include <locale.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sbuf_init(sbuf *b) { memset(b, 0, sizeof *b); }

void sbuf_free(sbuf *b) {
  if (!b->borrowed) free(b->p);
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
  char *p = b->borrowed ? malloc(cap) : realloc(b->p, cap);
  if (!p) { b->failed = 1; return -1; }
  if (b->borrowed) {
    memcpy(p, b->p, b->len + 1);
    b->borrowed = 0;
  }
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
    p = b->borrowed ? xstrndup(b->p, b->len) : b->p ? b->p : xstrdup("");
    if (!b->borrowed) b->p = NULL;
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
  return plist_push_meta(l, name, payload, NULL);
}

int plist_push_meta(cs_plist *l, const char *name, json_t *payload, json_t *meta) {
  if (!payload) payload = json_null();
  if (l->n == l->cap) {
    int cap = l->cap ? l->cap * 2 : 4;
    cs_pending *v = realloc(l->v, (size_t)cap * sizeof *v);
    if (!v) { json_decref(payload); json_decref(meta); return CASE_NOMEM; }
    l->v = v;
    l->cap = cap;
  }
  char *n = xstrdup(name);
  if (!n) { json_decref(payload); json_decref(meta); return CASE_NOMEM; }
  l->v[l->n].name = n;
  l->v[l->n].payload = payload;
  l->v[l->n].meta = meta;
  l->n++;
  return CASE_OK;
}

void plist_clear(cs_plist *l) {
  for (int i = 0; i < l->n; i++) {
    free(l->v[i].name);
    json_decref(l->v[i].payload);
    json_decref(l->v[i].meta);
  }
  l->n = 0;
}

/* ------------------------------------------------------------------ */
/* UTF-8 and case ids                                                  */
/* ------------------------------------------------------------------ */

/* Decodes one well-formed UTF-8 sequence (RFC 3629: shortest form, no
 * surrogates, at most U+10FFFF) at p; returns its length and stores the code
 * point, or 0 when the bytes are not UTF-8. */
static int utf8_next(const unsigned char *p, uint32_t *cp) {
  unsigned c = p[0];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  int n;
  uint32_t v, min;
  if (c >= 0xC2 && c <= 0xDF) n = 2, v = c & 0x1F, min = 0x80;
  else if (c >= 0xE0 && c <= 0xEF) n = 3, v = c & 0x0F, min = 0x800;
  else if (c >= 0xF0 && c <= 0xF4) n = 4, v = c & 0x07, min = 0x10000;
  else return 0;
  for (int i = 1; i < n; i++) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    v = (v << 6) | (p[i] & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return n;
}

const char *utf8_problem(const char *s, size_t *at) {
  const unsigned char *p = (const unsigned char *)s;
  uint32_t cp;
  for (size_t i = 0; p[i];) {
    int n = utf8_next(p + i, &cp);
    if (!n) {
      if (at) *at = i;
      return "not valid UTF-8";
    }
    i += (size_t)n;
  }
  return NULL;
}

/* What kind of character a case id may not contain, or NULL when it may. */
static const char *id_char_problem(uint32_t c) {
  if (c == '\t') return "a tab";
  if (c == '\n' || c == '\r') return "a line break";
  if (c < 0x20 || (c >= 0x7F && c <= 0x9F)) return "a control character";
  if (c == 0x20 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
      c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000 || c == 0x85)
    return "white space";
  if (c == 0xAD || c == 0x61C || c == 0x180E || (c >= 0x200B && c <= 0x200F) ||
      (c >= 0x202A && c <= 0x202E) || (c >= 0x2060 && c <= 0x2064) ||
      (c >= 0x2066 && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFB))
    return "an invisible formatting character";
  if ((c >= 0xFDD0 && c <= 0xFDEF) || (c & 0xFFFE) == 0xFFFE) return "a noncharacter";
  return NULL;
}

/* What a journal text (actor, role, location, idempotency key) may not
 * contain: what would forge or hide a line of a listing.  Spaces are fine. */
static const char *text_char_problem(uint32_t c) {
  if (c == '\t') return "a tab";
  if (c == '\n' || c == '\r' || c == 0x85 || c == 0x2028 || c == 0x2029) return "a line break";
  if (c < 0x20 || (c >= 0x7F && c <= 0x9F)) return "a control character";
  const char *k = id_char_problem(c);
  return k && strcmp(k, "white space") ? k : NULL;
}

const char *text_problem(const char *s, size_t *at, uint32_t *cp) {
  const unsigned char *p = (const unsigned char *)s;
  uint32_t c = 0;
  for (size_t i = 0; p[i];) {
    int n = utf8_next(p + i, &c);
    if (!n) {
      if (at) *at = i;
      if (cp) *cp = p[i];
      return "not valid UTF-8";
    }
    const char *k = text_char_problem(c);
    if (k) {
      if (at) *at = i;
      if (cp) *cp = c;
      return k;
    }
    i += (size_t)n;
  }
  return NULL;
}

void c_locale_enter(c_loc *l) {
  locale_t c = newlocale(LC_ALL_MASK, "C", (locale_t)0);
  l->c = (void *)c;
  l->old = c ? (void *)uselocale(c) : NULL;
}

void c_locale_leave(c_loc *l) {
  if (!l->c) return;
  uselocale((locale_t)l->old);
  freelocale((locale_t)l->c);
  l->c = NULL;
}

double c_strtod(const char *s, char **end) {
  c_loc l;
  c_locale_enter(&l);
  double v = strtod(s, end);
  c_locale_leave(&l);
  return v;
}

int case_text_check(const char *text, char *why, size_t whylen) {
  char dummy[1];
  if (!why || whylen == 0) why = dummy, whylen = sizeof dummy;
  why[0] = '\0';
  if (!text) {
    snprintf(why, whylen, "the text is NULL");
    return CASE_MISUSE;
  }
  size_t at = 0;
  uint32_t cp = 0;
  const char *k = text_problem(text, &at, &cp);
  if (!k) return CASE_OK;
  if (!strcmp(k, "not valid UTF-8"))
    snprintf(why, whylen, "byte %zu (0x%02X) is not valid UTF-8", at + 1, (unsigned)cp);
  else
    snprintf(why, whylen, "byte %zu is %s (U+%04X): a journal text is one line of printable "
             "text", at + 1, k, (unsigned)cp);
  return CASE_INVALID;
}

int case_id_check(const char *id, char *why, size_t whylen) {
  char dummy[1];
  if (!why || whylen == 0) why = dummy, whylen = sizeof dummy;
  why[0] = '\0';
  if (!id) {
    snprintf(why, whylen, "the case id is NULL");
    return CASE_MISUSE;
  }
  size_t len = strlen(id);
  if (len == 0) {
    snprintf(why, whylen, "a case id must not be empty");
    return CASE_INVALID;
  }
  if (len > CASE_ID_MAX) {
    snprintf(why, whylen, "a case id is at most %d bytes, this one has %zu", CASE_ID_MAX, len);
    return CASE_INVALID;
  }
  const unsigned char *p = (const unsigned char *)id;
  uint32_t cp;
  for (size_t i = 0; i < len;) {
    int n = utf8_next(p + i, &cp);
    if (!n) {
      snprintf(why, whylen, "byte %zu of the case id (0x%02X) is not valid UTF-8", i + 1, p[i]);
      return CASE_INVALID;
    }
    const char *kind = id_char_problem(cp);
    if (kind) {
      snprintf(why, whylen, "byte %zu of the case id is %s (U+%04X); a case id is printable "
               "text without spaces", i + 1, kind, (unsigned)cp);
      return CASE_INVALID;
    }
    i += (size_t)n;
  }
  return CASE_OK;
}

/* Levenshtein distance, for "did you mean" suggestions; (size_t)-1 past 64 bytes. */
size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 64 || lb > 64) return (size_t)-1;
  size_t row[65];
  for (size_t j = 0; j <= lb; j++) row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t best = diag + (a[i - 1] != b[j - 1]);
      if (row[j] + 1 < best) best = row[j] + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

/* The length of a string's JSON form: quotes, and jansson's escapes (\" \\
 * \b \f \n \r \t, \u00XX for the other control characters; '/' and
 * non-ASCII bytes as they are). */
int64_t json_str_size(const char *p, size_t n) {
  int64_t len = (int64_t)n + 2;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
      len += 1;
    else if (c < 0x20)
      len += 5;
  }
  return len;
}

int64_t json_size(const json_t *v) {
  if (!v) return 4;
  switch (json_typeof(v)) {
  case JSON_OBJECT: {
    int64_t len = 2;
    const char *k;
    json_t *x;
    size_t i = 0;
    json_object_foreach((json_t *)v, k, x) {
      len += (i++ ? 1 : 0) + json_str_size(k, strlen(k)) + 1 + json_size(x);
    }
    return len;
  }
  case JSON_ARRAY: {
    size_t n = json_array_size(v);
    int64_t len = 2 + (n ? (int64_t)n - 1 : 0);
    for (size_t i = 0; i < n; i++) len += json_size(json_array_get(v, i));
    return len;
  }
  case JSON_STRING: return json_str_size(json_string_value(v), json_string_length(v));
  case JSON_INTEGER: {
    json_int_t i = json_integer_value(v);
    uint64_t u = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
    int64_t len = i < 0 ? 2 : 1;
    while (u >= 10) {
      u /= 10;
      len++;
    }
    return len;
  }
  case JSON_REAL: return (int64_t)json_dumpb(v, NULL, 0, JSON_ENCODE_ANY); /* rare: as jansson does */
  case JSON_TRUE: return 4;
  case JSON_FALSE: return 5;
  default: return 4; /* null */
  }
}
