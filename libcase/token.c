/*
 * token.c — the agencies' access tokens (case_store_token_*): made from 256
 * random bits, handed to the caller once, stored only as their SHA-256, looked
 * up by that hash.  casectl serve checks every request against them.
 */
#include "store_int.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_PREFIX "lct_"
#define TOKEN_BYTES 32
#define TOKEN_LEN (4 + 43) /* prefix + unpadded base64url of 32 bytes */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void encode(const unsigned char *in, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)in[i] << 16;
    if (i + 1 < n) v |= (unsigned)in[i + 1] << 8;
    if (i + 2 < n) v |= in[i + 2];
    out[o++] = b64url[(v >> 18) & 63];
    out[o++] = b64url[(v >> 12) & 63];
    if (i + 1 < n) out[o++] = b64url[(v >> 6) & 63];
    if (i + 2 < n) out[o++] = b64url[v & 63];
  }
  out[o] = '\0';
}

static int name_ok(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > 64) return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          strchr("._@-", *s)))
      return 0;
  return 1;
}

static int role_declared(case_engine *e, const char *role) {
  for (const case_def *d = case_def_next(e, NULL); d; d = case_def_next(e, d))
    if (def_role_find(d, role) >= 0) return 1;
  return 0;
}

static json_t *token_json(const sb_token_row *r) {
  json_t *sc = json_array();
  if (!sc) return NULL;
  if (r->scopes & CASE_TOKEN_READ) json_array_append_new(sc, json_string("read"));
  if (r->scopes & CASE_TOKEN_SIGNAL) json_array_append_new(sc, json_string("signal"));
  json_t *o = json_pack("{s:I, s:s, s:s, s:o, s:I}", "id", (json_int_t)r->id, "name", r->name,
                        "role", r->role, "scopes", sc, "created", (json_int_t)r->created);
  if (o && r->revoked) json_object_set_new(o, "revoked", json_integer(r->revoked));
  return o;
}

int case_store_token_create(case_store *s, const char *name, const char *role, int scopes,
                            char **token) {
  if (token) *token = NULL;
  if (!s) return CASE_MISUSE;
  case_engine *e = s->e;
  if (!name || !role || !token)
    return eng_err(e, CASE_MISUSE, "case_store_token_create: NULL argument");
  if (s->readonly) return eng_err(e, CASE_MISUSE, "the store was opened read-only");
  if (!name_ok(name))
    return eng_err(e, CASE_INVALID, "token name '%s' is not 1 to 64 letters, digits, '.', '_', "
                   "'@' or '-'", name);
  if (scopes == 0 || (scopes & ~(CASE_TOKEN_READ | CASE_TOKEN_SIGNAL)))
    return eng_err(e, CASE_INVALID, "token scopes %d: expected CASE_TOKEN_READ, "
                   "CASE_TOKEN_SIGNAL or both", scopes);
  if (!role_declared(e, role))
    return eng_err(e, CASE_INVALID, "role '%s' is not declared by any workflow of the store",
                   role);
  unsigned char raw[TOKEN_BYTES];
  if (RAND_bytes(raw, sizeof raw) != 1)
    return eng_err(e, CASE_IO, "no random bytes for the token (OpenSSL RAND_bytes failed)");
  char *secret = malloc(TOKEN_LEN + 1);
  if (!secret) return st_nomem(e);
  memcpy(secret, TOKEN_PREFIX, 4);
  encode(raw, sizeof raw, secret + 4);
  memset(raw, 0, sizeof raw);
  char hash[65];
  if (sha256_hex(secret, strlen(secret), hash) != 0) {
    free(secret);
    return st_nomem(e);
  }
  sb_token_row row = {0, (char *)name, (char *)role, scopes, hash, case_store_clock(s), 0};
  int rc = s->ops->begin(s->db, 1);
  if (rc == CASE_OK) rc = s->ops->token_put(s->db, &row);
  if (rc == CASE_OK) rc = s->ops->commit(s->db);
  if (rc != CASE_OK) {
    st_berr(s, rc);
    s->ops->rollback(s->db);
    free(secret);
    return rc;
  }
  *token = secret;
  return eng_ok(e);
}

int case_store_token_revoke(case_store *s, const char *name) {
  if (!s) return CASE_MISUSE;
  if (!name) return eng_err(s->e, CASE_MISUSE, "case_store_token_revoke: name is NULL");
  if (s->readonly) return eng_err(s->e, CASE_MISUSE, "the store was opened read-only");
  int rc = s->ops->begin(s->db, 1);
  if (rc == CASE_OK) rc = s->ops->token_revoke(s->db, name, case_store_clock(s));
  if (rc == CASE_OK) rc = s->ops->commit(s->db);
  if (rc != CASE_OK) {
    st_berr(s, rc);
    s->ops->rollback(s->db);
    return rc;
  }
  return eng_ok(s->e);
}

int case_store_token_check(case_store *s, const char *token, char **json) {
  if (json) *json = NULL;
  if (!s) return CASE_MISUSE;
  case_engine *e = s->e;
  if (!json) return eng_err(e, CASE_MISUSE, "case_store_token_check: json is NULL");
  /* Anything that is not of the form is refused without a look-up. */
  if (!token || strlen(token) != TOKEN_LEN || strncmp(token, TOKEN_PREFIX, 4) != 0 ||
      strspn(token + 4, b64url) != TOKEN_LEN - 4)
    return eng_err(e, CASE_DENIED, "not a valid access token");
  char hash[65];
  if (sha256_hex(token, TOKEN_LEN, hash) != 0) return st_nomem(e);
  sb_token_row row;
  int rc = s->ops->begin(s->db, 0);
  if (rc == CASE_OK) rc = s->ops->token_get(s->db, hash, &row);
  if (rc != CASE_OK && rc != CASE_NOTFOUND) st_berr(s, rc);
  s->ops->rollback(s->db);
  if (rc == CASE_NOTFOUND) return eng_err(e, CASE_DENIED, "unknown or revoked access token");
  if (rc != CASE_OK) return rc;
  json_t *o = token_json(&row);
  sb_token_row_free(&row);
  *json = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(o);
  return *json ? eng_ok(e) : st_nomem(e);
}

static int list_row(void *ud, const sb_token_row *r) {
  json_t *o = token_json(r);
  return o && json_array_append_new(ud, o) == 0 ? CASE_OK : CASE_NOMEM;
}

int case_store_token_list(case_store *s, char **json) {
  if (json) *json = NULL;
  if (!s) return CASE_MISUSE;
  if (!json) return eng_err(s->e, CASE_MISUSE, "case_store_token_list: json is NULL");
  json_t *a = json_array();
  if (!a) return st_nomem(s->e);
  int rc = s->ops->begin(s->db, 0);
  if (rc == CASE_OK) rc = s->ops->token_list(s->db, list_row, a);
  s->ops->rollback(s->db);
  if (rc != CASE_OK) {
    json_decref(a);
    return rc == CASE_NOMEM ? st_nomem(s->e) : st_berr(s, rc);
  }
  *json = json_dumps(a, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(a);
  return *json ? eng_ok(s->e) : st_nomem(s->e);
}
