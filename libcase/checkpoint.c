/*
 * checkpoint.c — signed tree heads of the journal's Merkle tree: the tree head
 * from the stored nodes, checkpoints signed with Ed25519 (a key file or a host
 * callback, through libcrypto's EVP interface), consistency proofs between
 * checkpoints and their check without the store (docs/store.md,
 * "Checkpoints").
 */
#include "internal.h"
#include "libcase/store.h"
#include "store_backend.h"
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* The checkpoint format                                               */
/* ------------------------------------------------------------------ */

/* The signed message: five lines of text (docs/store.md shows one). */
static int cp_message(const cp_head *h, char *buf, size_t n) {
  char root[65], cal[65];
  mk_to_hex(h->root, root);
  mk_to_hex(h->calendar, cal);
  int len = h->has_calendar
                ? snprintf(buf, n, CP_TAG2 "\norigin %s\nsize %lld\ntime %lld\nroot %s\n"
                           "calendar %s\n", h->origin, (long long)h->size, (long long)h->time,
                           root, cal)
                : snprintf(buf, n, CP_TAG "\norigin %s\nsize %lld\ntime %lld\nroot %s\n",
                           h->origin, (long long)h->size, (long long)h->time, root);
  return len > 0 && (size_t)len < n ? len : -1;
}

typedef struct cal_acc {
  json_t *list;
  int64_t upto;
  int n;
} cal_acc;

static int cal_holiday(void *ud, const char *day, const char *name, int64_t added) {
  CASE_UNUSED(name);
  cal_acc *a = ud;
  if (added > a->upto) return CASE_OK;
  a->n++;
  return json_array_append_new(a->list, json_pack("[s, I]", day, (json_int_t)added)) ? CASE_NOMEM
                                                                                      : CASE_OK;
}

static int cal_recorded(void *ud, const sb_journal_row *r) {
  *(int64_t *)ud = r->recorded;
  return CASE_OK;
}

int st_calendar_hash(case_store *s, int64_t size, unsigned char out[MK_HASH_LEN], int *count) {
  cal_acc a = {json_array(), INT64_MIN, 0};
  if (!a.list) return CASE_NOMEM;
  int rc = CASE_OK;
  if (size > 0) {
    int64_t rec = INT64_MIN;
    rc = s->ops->journal_get(s->db, size, cal_recorded, &rec);
    if (rc == CASE_OK && rec == INT64_MIN) rc = CASE_NOTFOUND;
    a.upto = rec;
  }
  if (rc == CASE_OK && size > 0) rc = s->ops->holiday_list(s->db, cal_holiday, &a);
  char *text = NULL;
  if (rc == CASE_OK) {
    json_t *v = json_pack("[s, O]", "libcase.calendar.v1", a.list);
    text = v ? st_canon(v) : NULL;
    json_decref(v);
    if (!text) rc = CASE_NOMEM;
  }
  char hex[65];
  if (rc == CASE_OK && (sha256_hex(text, strlen(text), hex) != 0 || mk_from_hex(hex, out) != 0))
    rc = CASE_NOMEM;
  free(text);
  json_decref(a.list);
  if (count) *count = a.n;
  return rc;
}

static int hex_bytes(const char *hex, unsigned char *out, size_t n) {
  if (!hex || strlen(hex) != 2 * n) return -1;
  for (size_t i = 0; i < n; i++) {
    unsigned v = 0;
    for (int k = 0; k < 2; k++) {
      char c = hex[2 * i + (size_t)k];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) return -1;
      v = v << 4 | (unsigned)d;
    }
    out[i] = (unsigned char)v;
  }
  return 0;
}

static void bytes_hex(const unsigned char *b, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[b[i] >> 4];
    out[2 * i + 1] = digits[b[i] & 15];
  }
  out[2 * n] = '\0';
}

int cp_parse(const char *text, cp_head *h, char *err, size_t errlen) {
  memset(h, 0, sizeof *h);
  json_error_t jerr;
  json_t *o = text ? json_loads(text, JSON_REJECT_DUPLICATES, &jerr) : NULL;
  if (!json_is_object(o)) {
    if (o) snprintf(err, errlen, "not a JSON object");
    else snprintf(err, errlen, "not JSON: %s (line %d)", text ? jerr.text : "no text",
                  text ? jerr.line : 0);
    json_decref(o);
    return CASE_INVALID;
  }
  const char *tag = json_string_value(json_object_get(o, "checkpoint"));
  const char *origin = json_string_value(json_object_get(o, "origin"));
  json_t *size = json_object_get(o, "size"), *time = json_object_get(o, "time");
  const char *root = json_string_value(json_object_get(o, "root"));
  const char *key = json_string_value(json_object_get(o, "key"));
  const char *sig = json_string_value(json_object_get(o, "signature"));
  int rc = CASE_INVALID;
  int v2 = tag && strcmp(tag, CP_TAG2) == 0;
  const char *cal = json_string_value(json_object_get(o, "calendar"));
  if (!tag || (strcmp(tag, CP_TAG) != 0 && !v2))
    snprintf(err, errlen, "not a libcase checkpoint (\"checkpoint\": \"" CP_TAG2 "\" or \""
             CP_TAG "\")");
  else if (v2 && mk_from_hex(cal, h->calendar) != 0)
    snprintf(err, errlen, "\"calendar\" is not 64 hex digits");
  else if (!origin || strlen(origin) >= sizeof h->origin || strchr(origin, '\n'))
    snprintf(err, errlen, "\"origin\" is not a store id");
  else if (!json_is_integer(size) || json_integer_value(size) < 0)
    snprintf(err, errlen, "\"size\" is not a number of rows");
  else if (!json_is_integer(time))
    snprintf(err, errlen, "\"time\" is not a number of seconds");
  else if (mk_from_hex(root, h->root) != 0)
    snprintf(err, errlen, "\"root\" is not 64 hex digits");
  else if (hex_bytes(key, h->key, 32) != 0)
    snprintf(err, errlen, "\"key\" is not an Ed25519 public key (64 hex digits)");
  else if (hex_bytes(sig, h->sig, 64) != 0)
    snprintf(err, errlen, "\"signature\" is not an Ed25519 signature (128 hex digits)");
  else
    rc = CASE_OK;
  if (rc == CASE_OK) {
    snprintf(h->origin, sizeof h->origin, "%s", origin);
    h->has_calendar = v2;
    h->size = json_integer_value(size);
    h->time = json_integer_value(time);
    json_t *p = json_object_get(o, "proof");
    if (p && !json_is_null(p)) {
      json_t *fs = json_object_get(p, "from_size"), *hs = json_object_get(p, "hashes");
      const char *fr = json_string_value(json_object_get(p, "from_root"));
      if (!json_is_integer(fs) || json_integer_value(fs) < 0 || mk_from_hex(fr, h->from_root) ||
          !json_is_array(hs) || json_array_size(hs) > MK_MAX_PATH) {
        snprintf(err, errlen, "\"proof\" is not {\"from_size\", \"from_root\", \"hashes\"}");
        rc = CASE_INVALID;
      } else {
        h->has_proof = 1;
        h->from_size = json_integer_value(fs);
        size_t i;
        json_t *x;
        json_array_foreach(hs, i, x) {
          if (mk_from_hex(json_string_value(x), h->proof[i]) != 0) {
            snprintf(err, errlen, "\"proof\": hash %zu is not 64 hex digits", i + 1);
            rc = CASE_INVALID;
            break;
          }
          h->nproof++;
        }
      }
    }
  }
  json_decref(o);
  return rc;
}

static char *cp_dump(const cp_head *h) {
  char root[65], key[65], sig[129];
  mk_to_hex(h->root, root);
  bytes_hex(h->key, 32, key);
  bytes_hex(h->sig, 64, sig);
  char cal[65];
  mk_to_hex(h->calendar, cal);
  json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:s}", "checkpoint",
                        h->has_calendar ? CP_TAG2 : CP_TAG, "origin", h->origin, "size",
                        (json_int_t)h->size, "time", (json_int_t)h->time, "root", root);
  if (o && h->has_calendar && json_object_set_new(o, "calendar", json_string(cal)) != 0) {
    json_decref(o);
    o = NULL;
  }
  if (o && (json_object_set_new(o, "key", json_string(key)) != 0 ||
            json_object_set_new(o, "signature", json_string(sig)) != 0)) {
    json_decref(o);
    o = NULL;
  }
  if (o && h->has_proof) {
    char fr[65], x[65];
    mk_to_hex(h->from_root, fr);
    json_t *a = json_array();
    for (int i = 0; a && i < h->nproof; i++) {
      mk_to_hex(h->proof[i], x);
      if (json_array_append_new(a, json_string(x)) != 0) {
        json_decref(a);
        a = NULL;
      }
    }
    json_t *p = a ? json_pack("{s:I, s:s, s:o}", "from_size", (json_int_t)h->from_size,
                              "from_root", fr, "hashes", a)
                  : NULL;
    if (!p || json_object_set_new(o, "proof", p) != 0) {
      json_decref(o);
      o = NULL;
    }
  }
  char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
  json_decref(o);
  return text;
}

/* ------------------------------------------------------------------ */
/* Ed25519 through EVP                                                 */
/* ------------------------------------------------------------------ */

int cp_signature_valid(const cp_head *h) {
  char msg[512];
  int n = cp_message(h, msg, sizeof msg);
  if (n < 0) return 0;
  EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, h->key, 32);
  if (!pk) return 0; /* not a point on the curve: no valid signature */
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int ok = -1;
  if (ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk) == 1)
    ok = EVP_DigestVerify(ctx, h->sig, 64, (const unsigned char *)msg, (size_t)n) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pk);
  return ok;
}

static int raw_public(EVP_PKEY *pk, unsigned char key[32], char *err, size_t errlen) {
  size_t len = 32;
  if (EVP_PKEY_get_id(pk) != EVP_PKEY_ED25519) {
    snprintf(err, errlen, "not an Ed25519 key");
    return CASE_INVALID;
  }
  if (EVP_PKEY_get_raw_public_key(pk, key, &len) != 1 || len != 32) {
    snprintf(err, errlen, "cannot read the public key");
    return CASE_INVALID;
  }
  return CASE_OK;
}

int cp_pubkey_pem(const char *pem, unsigned char key[32], char *err, size_t errlen) {
  BIO *bio = BIO_new_mem_buf(pem, -1);
  if (!bio) {
    snprintf(err, errlen, "out of memory");
    return CASE_NOMEM;
  }
  EVP_PKEY *pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
  if (!pk) {
    /* A private key file holds its public half too. */
    (void)BIO_reset(bio);
    pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
  }
  BIO_free(bio);
  if (!pk) {
    snprintf(err, errlen, "not a PEM public key (openssl pkey -in KEY -pubout)");
    return CASE_INVALID;
  }
  int rc = raw_public(pk, key, err, errlen);
  EVP_PKEY_free(pk);
  return rc;
}

/* Signs with the private key of a PEM file (PKCS#8, unencrypted). */
typedef struct file_signer {
  EVP_PKEY *pk;
} file_signer;

static int sign_with_file(void *ud, const unsigned char *msg, size_t len,
                          unsigned char sig[64]) {
  file_signer *f = ud;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  size_t n = 64;
  int ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, f->pk) == 1 &&
           EVP_DigestSign(ctx, sig, &n, msg, len) == 1 && n == 64;
  EVP_MD_CTX_free(ctx);
  return ok ? 0 : -1;
}

static char *read_text_file(const char *path, int *err_no) {
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    *err_no = errno;
    return NULL;
  }
  sbuf b;
  sbuf_init(&b);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, fp)) > 0) sbuf_add(&b, buf, n);
  *err_no = ferror(fp) ? EIO : 0;
  fclose(fp);
  char *t = sbuf_take(&b);
  if (*err_no) {
    free(t);
    return NULL;
  }
  if (!t) *err_no = ENOMEM;
  return t;
}

int case_key_generate(case_engine *e, const char *private_path, const char *public_path) {
  if (!e) return CASE_MISUSE;
  if (!private_path) return eng_err(e, CASE_MISUSE, "case_key_generate: NULL path");
  EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  if (!pk) return eng_err(e, CASE_NOMEM, "cannot generate an Ed25519 key");
  int rc = CASE_OK;
  /* The private key is the owner's alone: created new, mode 0600. */
  int fd = open(private_path, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    rc = errno == EEXIST ? eng_err(e, CASE_EXISTS, "%s exists; a key is never overwritten",
                                   private_path)
                         : eng_err(e, CASE_IO, "%s: %s", private_path, strerror(errno));
  } else {
    FILE *fp = fdopen(fd, "w");
    int ok = fp && PEM_write_PrivateKey(fp, pk, NULL, NULL, 0, NULL, NULL) == 1;
    if (fp ? fclose(fp) != 0 : close(fd) != 0) ok = 0;
    if (!ok) {
      unlink(private_path);
      rc = eng_err(e, CASE_IO, "%s: cannot write the key", private_path);
    }
  }
  if (rc == CASE_OK && public_path) {
    int pfd = open(public_path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (pfd < 0) {
      rc = errno == EEXIST ? eng_err(e, CASE_EXISTS, "%s exists", public_path)
                           : eng_err(e, CASE_IO, "%s: %s", public_path, strerror(errno));
    } else {
      FILE *fp = fdopen(pfd, "w");
      int ok = fp && PEM_write_PUBKEY(fp, pk) == 1;
      if (fp ? fclose(fp) != 0 : close(pfd) != 0) ok = 0;
      if (!ok) {
        unlink(public_path);
        rc = eng_err(e, CASE_IO, "%s: cannot write the public key", public_path);
      }
    }
    if (rc != CASE_OK) unlink(private_path);
  }
  EVP_PKEY_free(pk);
  return rc == CASE_OK ? eng_ok(e) : rc;
}

/* ------------------------------------------------------------------ */
/* The tree head                                                       */
/* ------------------------------------------------------------------ */

/* MTH of the first `size` rows from the stored nodes (O(log size) reads). */
static int tree_root(case_store *s, int64_t size, unsigned char root[MK_HASH_LEN]) {
  if (size == 0) return mk_empty_root(&s->h, root) == 0 ? CASE_OK : CASE_NOMEM;
  /* The perfect subtrees of the size's set bits, largest first, folded from the right. */
  unsigned char parts[64][MK_HASH_LEN];
  int n = 0;
  uint64_t start = 0;
  for (int bit = 63; bit >= 0; bit--) {
    uint64_t w = (uint64_t)1 << bit;
    if (!((uint64_t)size & w)) continue;
    int rc = st_tree_subtree(s, bit, start >> bit, parts[n]);
    if (rc != CASE_OK) return rc;
    n++;
    start += w;
  }
  unsigned char acc[MK_HASH_LEN];
  memcpy(acc, parts[n - 1], MK_HASH_LEN);
  for (int i = n - 2; i >= 0; i--)
    if (mk_node_hash(&s->h, parts[i], acc, acc) != 0) return CASE_NOMEM;
  memcpy(root, acc, MK_HASH_LEN);
  return CASE_OK;
}

/* The tree's error as the engine error. */
static int tree_err(case_store *s, int rc) {
  if (rc == CASE_NOMEM) return st_nomem(s->e);
  if (rc == CASE_NOTFOUND)
    return eng_err(s->e, CASE_CORRUPT, "the journal's tree cannot be computed: %s (run verify)",
                   s->ops->errmsg(s->db));
  return st_berr(s, rc);
}

static int head_locked(case_store *s, int64_t *size, unsigned char root[MK_HASH_LEN]) {
  unsigned char tail[MK_HASH_LEN];
  int have = 0;
  int rc = s->ops->journal_tail(s->db, size, tail, &have);
  if (rc != CASE_OK) return st_berr(s, rc);
  rc = tree_root(s, *size, root);
  return rc == CASE_OK ? CASE_OK : tree_err(s, rc);
}

int case_store_tree_head(case_store *s, int64_t *size, char root[65]) {
  if (size) *size = 0;
  if (root) root[0] = '\0';
  if (!s) return CASE_MISUSE;
  if (!size || !root) return eng_err(s->e, CASE_MISUSE, "case_store_tree_head: NULL argument");
  int rc = s->ops->begin(s->db, 0);
  if (rc != CASE_OK) return st_berr(s, rc);
  unsigned char r[MK_HASH_LEN];
  rc = head_locked(s, size, r);
  s->ops->rollback(s->db);
  if (rc != CASE_OK) {
    *size = 0;
    return rc;
  }
  mk_to_hex(r, root);
  return eng_ok(s->e);
}

/* ------------------------------------------------------------------ */
/* Checkpoints                                                         */
/* ------------------------------------------------------------------ */

static int subtree_fn(void *ud, int level, uint64_t index, unsigned char out[MK_HASH_LEN]) {
  return st_tree_subtree(ud, level, index, out);
}

int case_store_checkpoint_sign(case_store *s, const unsigned char public_key[32],
                               case_sign_fn sign, void *ud, int64_t at, const char *previous,
                               char **checkpoint) {
  if (checkpoint) *checkpoint = NULL;
  if (!s) return CASE_MISUSE;
  case_engine *e = s->e;
  if (!public_key || !sign || !checkpoint)
    return eng_err(e, CASE_MISUSE, "case_store_checkpoint: NULL argument");
  cp_head prev;
  char err[300];
  if (previous && cp_parse(previous, &prev, err, sizeof err) != CASE_OK)
    return eng_err(e, CASE_INVALID, "the previous checkpoint: %s", err);
  if (previous && cp_signature_valid(&prev) != 1)
    return eng_err(e, CASE_INVALID, "the previous checkpoint's signature is not valid");
  cp_head h;
  memset(&h, 0, sizeof h);
  memcpy(h.key, public_key, 32);
  h.time = at;
  int rc = s->ops->begin(s->db, 0);
  if (rc != CASE_OK) return st_berr(s, rc);
  char *origin = NULL;
  rc = s->ops->meta_get(s->db, "store_id", &origin);
  if (rc != CASE_OK) {
    rc = rc == CASE_NOTFOUND ? eng_err(e, CASE_CORRUPT, "the store has no id (meta.store_id)")
                             : st_berr(s, rc);
  } else if (strlen(origin) >= sizeof h.origin || strchr(origin, '\n')) {
    rc = eng_err(e, CASE_CORRUPT, "the store's id (meta.store_id) is damaged");
  } else {
    snprintf(h.origin, sizeof h.origin, "%s", origin);
    rc = head_locked(s, &h.size, h.root);
    /* The holidays those rows were computed with are signed with them: a
     * holiday added, removed or dated back moves terms without changing a
     * row. */
    if (rc == CASE_OK) {
      rc = st_calendar_hash(s, h.size, h.calendar, NULL);
      if (rc != CASE_OK) rc = rc == CASE_NOMEM ? st_nomem(e) : st_berr(s, rc);
      h.has_calendar = 1;
    }
  }
  free(origin);
  if (rc == CASE_OK && previous) {
    unsigned char old[MK_HASH_LEN];
    if (strcmp(prev.origin, h.origin) != 0)
      rc = eng_err(e, CASE_INVALID, "the previous checkpoint is of store '%s', this is '%s'",
                   prev.origin, h.origin);
    else if (prev.size > h.size)
      rc = eng_err(e, CASE_CORRUPT, "the previous checkpoint covers %lld journal rows, the "
                   "journal has %lld: rows were removed", (long long)prev.size,
                   (long long)h.size);
    else if ((rc = tree_root(s, prev.size, old)) != CASE_OK)
      rc = tree_err(s, rc);
    else if (memcmp(old, prev.root, MK_HASH_LEN) != 0)
      rc = eng_err(e, CASE_CORRUPT, "the journal does not extend the previous checkpoint: its "
                   "first %lld rows give another root", (long long)prev.size);
    if (rc == CASE_OK) {
      int n = 0;
      int prc = mk_consistency_proof(&s->h, subtree_fn, s, (uint64_t)prev.size,
                                     (uint64_t)h.size, h.proof, &n);
      if (prc != 0) rc = tree_err(s, prc > 0 ? prc : CASE_NOMEM);
      h.has_proof = 1;
      h.from_size = prev.size;
      memcpy(h.from_root, prev.root, MK_HASH_LEN);
      h.nproof = n;
    }
  }
  s->ops->rollback(s->db);
  if (rc != CASE_OK) return rc;
  char msg[512];
  int n = cp_message(&h, msg, sizeof msg);
  if (n < 0) return eng_err(e, CASE_MISUSE, "checkpoint message too long");
  if (sign(ud, (const unsigned char *)msg, (size_t)n, h.sig) != 0)
    return eng_err(e, CASE_DENIED, "the signing callback refused to sign");
  int valid = cp_signature_valid(&h);
  if (valid < 0) return st_nomem(e);
  if (!valid)
    return eng_err(e, CASE_INVALID, "the signature does not verify with the public key given");
  *checkpoint = cp_dump(&h);
  return *checkpoint ? eng_ok(e) : st_nomem(e);
}

int case_store_checkpoint(case_store *s, const char *key_file, int64_t at, const char *previous,
                          char **checkpoint) {
  if (checkpoint) *checkpoint = NULL;
  if (!s) return CASE_MISUSE;
  case_engine *e = s->e;
  if (!key_file || !checkpoint)
    return eng_err(e, CASE_MISUSE, "case_store_checkpoint: NULL argument");
  int en = 0;
  char *pem = read_text_file(key_file, &en);
  if (!pem)
    return en == ENOENT ? eng_err(e, CASE_NOTFOUND, "%s: no such key file", key_file)
                        : en == ENOMEM ? st_nomem(e)
                                       : eng_err(e, CASE_IO, "%s: %s", key_file, strerror(en));
  BIO *bio = BIO_new_mem_buf(pem, -1);
  EVP_PKEY *pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
  BIO_free(bio);
  OPENSSL_cleanse(pem, strlen(pem));
  free(pem);
  if (!pk)
    return eng_err(e, CASE_INVALID, "%s: not a PEM private key (openssl genpkey -algorithm "
                   "ed25519)", key_file);
  unsigned char pub[32];
  char err[200];
  int rc = raw_public(pk, pub, err, sizeof err);
  if (rc != CASE_OK) {
    EVP_PKEY_free(pk);
    return eng_err(e, rc, "%s: %s", key_file, err);
  }
  file_signer f = {pk};
  rc = case_store_checkpoint_sign(s, pub, sign_with_file, &f, at, previous, checkpoint);
  EVP_PKEY_free(pk);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Two checkpoints, without the store                                  */
/* ------------------------------------------------------------------ */

static json_t *head_json(const cp_head *h) {
  char root[65], key[65], cal[65];
  mk_to_hex(h->root, root);
  bytes_hex(h->key, 32, key);
  mk_to_hex(h->calendar, cal);
  return json_pack("{s:s, s:I, s:I, s:s, s:s?, s:s}", "origin", h->origin, "size",
                   (json_int_t)h->size, "time", (json_int_t)h->time, "root", root, "calendar",
                   h->has_calendar ? cal : NULL, "key", key);
}

int case_checkpoint_check(case_engine *e, const char *older, const char *newer,
                          const char *public_key_pem, char **report) {
  if (report) *report = NULL;
  if (!e) return CASE_MISUSE;
  if (!older || !newer || !report)
    return eng_err(e, CASE_MISUSE, "case_checkpoint_check: NULL argument");
  cp_head a, b;
  unsigned char key[32];
  char err[300];
  if (cp_parse(older, &a, err, sizeof err) != CASE_OK)
    return eng_err(e, CASE_INVALID, "the older checkpoint: %s", err);
  if (cp_parse(newer, &b, err, sizeof err) != CASE_OK)
    return eng_err(e, CASE_INVALID, "the newer checkpoint: %s", err);
  if (public_key_pem && cp_pubkey_pem(public_key_pem, key, err, sizeof err) != CASE_OK)
    return eng_err(e, CASE_INVALID, "the public key: %s", err);
  json_t *problems = json_array();
  if (!problems) return eng_err(e, CASE_NOMEM, "out of memory");
#define PROBLEM(...)                                          \
  do {                                                        \
    snprintf(err, sizeof err, __VA_ARGS__);                   \
    json_array_append_new(problems, json_string(err));        \
  } while (0)
  int va = cp_signature_valid(&a), vb = cp_signature_valid(&b);
  if (va < 0 || vb < 0) {
    json_decref(problems);
    return eng_err(e, CASE_NOMEM, "out of memory");
  }
  if (!va) PROBLEM("the older checkpoint's signature is not valid");
  if (!vb) PROBLEM("the newer checkpoint's signature is not valid");
  if (public_key_pem) {
    if (memcmp(a.key, key, 32) != 0) PROBLEM("the older checkpoint is not signed with the key given");
    if (memcmp(b.key, key, 32) != 0) PROBLEM("the newer checkpoint is not signed with the key given");
  } else if (memcmp(a.key, b.key, 32) != 0) {
    PROBLEM("the checkpoints are signed with different keys (give the public key to trust)");
  }
  if (strcmp(a.origin, b.origin) != 0)
    PROBLEM("the checkpoints are of different stores ('%s', '%s')", a.origin, b.origin);
  mk_hasher h;
  if (mk_hasher_init(&h) != 0) {
    json_decref(problems);
    return eng_err(e, CASE_NOMEM, "out of memory");
  }
  if (b.size < a.size) {
    PROBLEM("the newer checkpoint covers fewer rows (%lld) than the older (%lld): the journal "
            "was truncated", (long long)b.size, (long long)a.size);
  } else if (b.size == a.size) {
    if (memcmp(a.root, b.root, MK_HASH_LEN) != 0)
      PROBLEM("the checkpoints cover the same %lld rows with different roots: the journal was "
              "rewritten", (long long)a.size);
  } else if (!b.has_proof) {
    PROBLEM("the newer checkpoint carries no consistency proof (make it with the older one "
            "as the previous checkpoint)");
  } else if (b.from_size != a.size || memcmp(b.from_root, a.root, MK_HASH_LEN) != 0) {
    PROBLEM("the newer checkpoint's proof starts from another tree (%lld rows), not from the "
            "older checkpoint", (long long)b.from_size);
  } else {
    int ok = mk_check_consistency(&h, (uint64_t)a.size, a.root, (uint64_t)b.size, b.root,
                                  (const unsigned char(*)[MK_HASH_LEN])b.proof, b.nproof);
    if (ok < 0) {
      mk_hasher_free(&h);
      json_decref(problems);
      return eng_err(e, CASE_NOMEM, "out of memory");
    }
    if (!ok)
      PROBLEM("the consistency proof does not hold: the newer tree does not extend the older "
              "one (a row before it was changed, removed or moved)");
  }
#undef PROBLEM
  mk_hasher_free(&h);
  size_t np = json_array_size(problems);
  json_t *rep = json_pack("{s:b, s:o, s:o, s:o}", "consistent", np == 0, "older", head_json(&a),
                          "newer", head_json(&b), "problems", problems);
  *report = rep ? json_dumps(rep, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(rep);
  if (!*report) return eng_err(e, CASE_NOMEM, "out of memory");
  if (np == 0) return eng_ok(e);
  return eng_err(e, CASE_CORRUPT, "the checkpoints are not consistent: %zu problem(s)", np);
}

/* ------------------------------------------------------------------ */
/* One row's audit path                                                */
/* ------------------------------------------------------------------ */

/* The leaf entry text of a row (as st_leaf_hash() hashes it) and its feed row. */
typedef struct row_proof {
  case_store *s;
  char *entry;      /* the leaf entry */
  char *row;        /* the row as the feed gives it */
  unsigned char leaf[MK_HASH_LEN];
  int rc;
} row_proof;

/* The entry text: st_leaf_hash() hashes exactly these bytes. */
static char *leaf_entry_text(int64_t seq, int64_t recorded, const char *row_hash, const st_pin *pin) {
  json_t *p = pin ? json_pack("{s:s, s:s?, s:s?, s:i, s:s}", "definition", pin->definition,
                              "location", pin->location, "modules", pin->modules, "version",
                              pin->version, "workflow", pin->workflow)
                  : json_null();
  if (p && pin && pin->profile > 0 &&
      json_object_set_new(p, "profile", json_pack("{s:s?, s:i}", "hash", pin->profile_hash,
                                                  "version", pin->profile)) != 0) {
    json_decref(p);
    p = NULL;
  }
  json_t *a = p ? json_pack("[s, I, I, s, o]", LEAF_TAG, (json_int_t)seq, (json_int_t)recorded,
                            row_hash, p)
                : NULL;
  char *t = a ? st_canon(a) : NULL;
  json_decref(a);
  return t;
}

static int prove_row(void *ud, const sb_journal_row *r) {
  row_proof *p = ud;
  st_pinbuf pin;
  int have_pin = 0;
  if (r->revision == 0) {
    p->rc = st_pin_of_case(p->s, r->case_id, 0, &pin);
    if (p->rc == CASE_NOTFOUND) p->rc = CASE_OK;
    else have_pin = p->rc == CASE_OK;
  }
  if (p->rc == CASE_OK)
    p->rc = st_leaf_hash(&p->s->h, r->seq, r->recorded, r->hash, have_pin ? &pin.pin : NULL,
                         p->leaf);
  if (p->rc == CASE_OK) {
    p->entry = leaf_entry_text(r->seq, r->recorded, r->hash, have_pin ? &pin.pin : NULL);
    p->row = st_feed_row_text(r);
    if (!p->entry || !p->row) p->rc = CASE_NOMEM;
  }
  /* The entry shown is the one hashed: a checker hashes these very bytes. */
  unsigned char again[MK_HASH_LEN];
  if (p->rc == CASE_OK &&
      (mk_leaf_hash(&p->s->h, p->entry, strlen(p->entry), again) != 0 ||
       memcmp(again, p->leaf, MK_HASH_LEN) != 0))
    p->rc = CASE_CORRUPT;
  if (have_pin) st_pin_free(&pin);
  return p->rc;
}

int case_store_prove(case_store *s, int64_t seq, int64_t size, char **proof) {
  if (proof) *proof = NULL;
  if (!s) return CASE_MISUSE;
  case_engine *e = s->e;
  if (!proof) return eng_err(e, CASE_MISUSE, "case_store_prove: proof is NULL");
  int rc = s->ops->begin(s->db, 0);
  if (rc != CASE_OK) return st_berr(s, rc);
  int64_t n = 0;
  unsigned char tail[MK_HASH_LEN], root[MK_HASH_LEN];
  int have = 0;
  row_proof p = {s, NULL, NULL, {0}, CASE_OK};
  unsigned char path[MK_MAX_PATH][MK_HASH_LEN];
  int np = 0;
  rc = s->ops->journal_tail(s->db, &n, tail, &have);
  if (rc != CASE_OK) {
    st_berr(s, rc);
  } else if (size == 0) {
    size = n;
  }
  if (rc == CASE_OK && (size < 0 || size > n))
    rc = eng_err(e, CASE_INVALID, "the journal has %lld rows, not %lld", (long long)n,
                 (long long)size);
  else if (rc == CASE_OK && (seq < 1 || seq > size))
    rc = eng_err(e, CASE_NOTFOUND, "no journal row %lld in a tree of %lld rows", (long long)seq,
                 (long long)size);
  if (rc == CASE_OK) {
    rc = s->ops->journal_get(s->db, seq, prove_row, &p);
    if (rc == CASE_OK) rc = p.rc;
    if (rc != CASE_OK) rc = rc == CASE_NOMEM ? st_nomem(e) : tree_err(s, rc);
  }
  if (rc == CASE_OK) {
    int prc = mk_inclusion_proof(&s->h, subtree_fn, s, (uint64_t)seq - 1, (uint64_t)size, path, &np);
    if (prc != 0) rc = tree_err(s, prc > 0 ? prc : CASE_NOMEM);
  }
  if (rc == CASE_OK && (rc = tree_root(s, size, root)) != CASE_OK) rc = tree_err(s, rc);
  s->ops->rollback(s->db);
  if (rc == CASE_OK) {
    char hex[65];
    json_t *a = json_array();
    for (int i = 0; a && i < np; i++) {
      mk_to_hex(path[i], hex);
      if (json_array_append_new(a, json_string(hex))) {
        json_decref(a);
        a = NULL;
      }
    }
    char lh[65], rh[65];
    mk_to_hex(p.leaf, lh);
    mk_to_hex(root, rh);
    json_t *row = json_loads(p.row, 0, NULL);
    json_t *o = a && row ? json_pack("{s:s, s:I, s:I, s:s, s:s, s:o, s:s, s:o}", "proof",
                                     "libcase.inclusion.v1", "seq", (json_int_t)seq, "size",
                                     (json_int_t)size, "leaf", p.entry, "leaf_hash", lh, "path",
                                     a, "root", rh, "row", row)
                         : NULL;
    if (!o) {
      if (!a || !row) {
        json_decref(a);
        json_decref(row);
      }
    }
    *proof = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!*proof) rc = st_nomem(e);
  }
  free(p.entry);
  free(p.row);
  return rc == CASE_OK ? eng_ok(e) : rc;
}

/* The row hash of a feed row (docs/store.md "The journal hash chain"), or -1. */
static int feed_row_hash(const json_t *row, char out[65]) {
  sb_journal_row r;
  memset(&r, 0, sizeof r);
  json_t *pl = json_object_get(row, "payload"), *cfg = json_object_get(row, "configuration"),
         *data = json_object_get(row, "data");
  r.case_id = (char *)json_string_value(json_object_get(row, "case"));
  r.revision = json_integer_value(json_object_get(row, "revision"));
  r.event = (char *)json_string_value(json_object_get(row, "event"));
  r.actor = (char *)json_string_value(json_object_get(row, "actor"));
  r.role = (char *)json_string_value(json_object_get(row, "role"));
  r.time = json_integer_value(json_object_get(row, "time"));
  r.prev_hash = (char *)json_string_value(json_object_get(row, "prev"));
  if (!r.case_id || !r.event || !r.prev_hash || !pl || !cfg || !data ||
      json_object_get(row, "corrupt"))
    return -1;
  r.payload = json_dumps(pl, JSON_ENCODE_ANY | JSON_COMPACT);
  r.configuration = json_dumps(cfg, JSON_ENCODE_ANY | JSON_COMPACT);
  r.data = json_dumps(data, JSON_ENCODE_ANY | JSON_COMPACT);
  int rc = r.payload && r.configuration && r.data ? st_row_hash(&r, out) : CASE_NOMEM;
  free(r.payload);
  free(r.configuration);
  free(r.data);
  return rc == CASE_OK ? 0 : -1;
}

int case_checkpoint_check_row(case_engine *e, const char *checkpoint, const char *proof,
                              const char *public_key_pem, char **report) {
  if (report) *report = NULL;
  if (!e) return CASE_MISUSE;
  if (!checkpoint || !proof || !report)
    return eng_err(e, CASE_MISUSE, "case_checkpoint_check_row: NULL argument");
  cp_head cp;
  unsigned char key[32];
  char err[300];
  if (cp_parse(checkpoint, &cp, err, sizeof err) != CASE_OK)
    return eng_err(e, CASE_INVALID, "the checkpoint: %s", err);
  if (public_key_pem && cp_pubkey_pem(public_key_pem, key, err, sizeof err) != CASE_OK)
    return eng_err(e, CASE_INVALID, "the public key: %s", err);
  json_t *o = json_loads(proof, 0, NULL);
  const char *tag = json_string_value(json_object_get(o, "proof"));
  const char *entry = json_string_value(json_object_get(o, "leaf"));
  json_t *path = json_object_get(o, "path"), *row = json_object_get(o, "row");
  json_t *jseq = json_object_get(o, "seq"), *jsize = json_object_get(o, "size");
  if (!tag || strcmp(tag, "libcase.inclusion.v1") != 0 || !entry || !json_is_array(path) ||
      json_array_size(path) > MK_MAX_PATH || !json_is_object(row) || !json_is_integer(jseq) ||
      !json_is_integer(jsize)) {
    json_decref(o);
    return eng_err(e, CASE_INVALID, "the proof is not one of case_store_prove() "
                   "(\"proof\": \"libcase.inclusion.v1\")");
  }
  unsigned char p[MK_MAX_PATH][MK_HASH_LEN];
  int np = 0;
  size_t i;
  json_t *x;
  json_array_foreach(path, i, x) if (mk_from_hex(json_string_value(x), p[np++]) != 0) {
    json_decref(o);
    return eng_err(e, CASE_INVALID, "the proof's path: hash %zu is not 64 hex digits", i + 1);
  }
  json_t *problems = json_array();
  mk_hasher h;
  if (!problems || mk_hasher_init(&h) != 0) {
    json_decref(problems);
    json_decref(o);
    return eng_err(e, CASE_NOMEM, "out of memory");
  }
#define PROBLEM(...)                                          \
  do {                                                        \
    snprintf(err, sizeof err, __VA_ARGS__);                   \
    json_array_append_new(problems, json_string(err));        \
  } while (0)
  int64_t seq = json_integer_value(jseq), size = json_integer_value(jsize);
  int sig = cp_signature_valid(&cp);
  if (sig <= 0) PROBLEM("the checkpoint's signature is not valid");
  if (public_key_pem && memcmp(key, cp.key, 32) != 0)
    PROBLEM("the checkpoint is not signed with the key given");
  if (size != cp.size) PROBLEM("the proof is for a tree of %lld rows, the checkpoint's has %lld",
                               (long long)size, (long long)cp.size);
  /* The row is the one the leaf names: same seq, recorded and hash. */
  json_t *le = json_loads(entry, JSON_DECODE_ANY, NULL);
  char rh[65];
  if (!json_is_array(le) || json_array_size(le) != 5 ||
      strcmp(json_string_value(json_array_get(le, 0)) ? json_string_value(json_array_get(le, 0)) : "", LEAF_TAG) != 0)
    PROBLEM("the leaf entry is not a libcase leaf");
  else if (json_integer_value(json_array_get(le, 1)) != seq ||
           json_integer_value(json_array_get(le, 1)) != json_integer_value(json_object_get(row, "seq")))
    PROBLEM("the leaf is not of row %lld", (long long)seq);
  else if (json_integer_value(json_array_get(le, 2)) != json_integer_value(json_object_get(row, "recorded")))
    PROBLEM("the row's recorded time is not the leaf's");
  else if (feed_row_hash(row, rh) != 0)
    PROBLEM("the row cannot be hashed (a column is missing or damaged)");
  else if (strcmp(rh, json_string_value(json_array_get(le, 3)) ? json_string_value(json_array_get(le, 3)) : "") != 0)
    PROBLEM("the row's content does not give the hash in the leaf: the row was changed");
  json_decref(le);
  unsigned char leaf[MK_HASH_LEN];
  int ok = mk_leaf_hash(&h, entry, strlen(entry), leaf) == 0 ? 1 : -1;
  if (ok > 0)
    ok = mk_check_inclusion(&h, leaf, (uint64_t)seq - 1, (uint64_t)cp.size,
                            (const unsigned char(*)[MK_HASH_LEN])p, np, cp.root);
  if (ok < 0) {
    mk_hasher_free(&h);
    json_decref(problems);
    json_decref(o);
    return eng_err(e, CASE_NOMEM, "out of memory");
  }
  if (!ok) PROBLEM("the audit path does not lead from the leaf to the checkpoint's root");
#undef PROBLEM
  mk_hasher_free(&h);
  size_t n = json_array_size(problems);
  json_t *rep = json_pack("{s:b, s:I, s:s?, s:I, s:o, s:o}", "included", n == 0, "seq",
                          (json_int_t)seq, "case", json_string_value(json_object_get(row, "case")),
                          "size", (json_int_t)cp.size, "checkpoint", head_json(&cp), "problems",
                          problems);
  json_decref(o);
  *report = rep ? json_dumps(rep, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(rep);
  if (!*report) return eng_err(e, CASE_NOMEM, "out of memory");
  if (n == 0) return eng_ok(e);
  return eng_err(e, CASE_CORRUPT, "the row is not proven: %zu problem(s)", n);
}
