/* merkle.c — RFC 6962 / RFC 9162 Merkle tree hashing, proofs and checks (merkle.h). */
#include "merkle.h"

#include <openssl/evp.h>
#include <string.h>

int mk_hasher_init(mk_hasher *h) {
  h->md = EVP_MD_fetch(NULL, "SHA256", NULL);
  h->ctx = EVP_MD_CTX_new();
  if (h->md && h->ctx) return 0;
  mk_hasher_free(h);
  return -1;
}

void mk_hasher_free(mk_hasher *h) {
  if (!h) return;
  EVP_MD_CTX_free(h->ctx);
  EVP_MD_free(h->md);
  h->ctx = h->md = NULL;
}

static int digest(mk_hasher *h, int prefix, const void *a, size_t na, const void *b, size_t nb,
                  unsigned char out[MK_HASH_LEN]) {
  unsigned char p = (unsigned char)prefix;
  unsigned int len = 0;
  if (EVP_DigestInit_ex(h->ctx, h->md, NULL) != 1) return -1;
  if (prefix >= 0 && EVP_DigestUpdate(h->ctx, &p, 1) != 1) return -1;
  if (na && EVP_DigestUpdate(h->ctx, a, na) != 1) return -1;
  if (nb && EVP_DigestUpdate(h->ctx, b, nb) != 1) return -1;
  if (EVP_DigestFinal_ex(h->ctx, out, &len) != 1 || len != MK_HASH_LEN) return -1;
  return 0;
}

int mk_leaf_hash(mk_hasher *h, const void *entry, size_t n, unsigned char out[MK_HASH_LEN]) {
  return digest(h, 0x00, entry, n, NULL, 0, out);
}

int mk_node_hash(mk_hasher *h, const unsigned char left[MK_HASH_LEN],
                 const unsigned char right[MK_HASH_LEN], unsigned char out[MK_HASH_LEN]) {
  return digest(h, 0x01, left, MK_HASH_LEN, right, MK_HASH_LEN, out);
}

int mk_sha256(mk_hasher *h, const void *data, size_t n, unsigned char out[MK_HASH_LEN]) {
  return digest(h, -1, data, n, NULL, 0, out);
}

int mk_empty_root(mk_hasher *h, unsigned char out[MK_HASH_LEN]) {
  return digest(h, -1, NULL, 0, NULL, 0, out);
}

int mk_ctz(uint64_t n) {
  int k = 0;
  while (n && !(n & 1)) {
    n >>= 1;
    k++;
  }
  return k;
}

/* The largest power of two smaller than n (n >= 2). */
static uint64_t split_of(uint64_t n) {
  uint64_t k = 1;
  while (k < n - k) k <<= 1;
  return k;
}

/* ------------------------------------------------------------------ */
/* The frontier                                                        */
/* ------------------------------------------------------------------ */

void mk_frontier_init(mk_frontier *f) {
  f->size = 0;
  f->n = 0;
}

int mk_frontier_add(mk_hasher *h, mk_frontier *f, const unsigned char leaf[MK_HASH_LEN],
                    unsigned char node[MK_HASH_LEN], int *level) {
  unsigned char cur[MK_HASH_LEN];
  memcpy(cur, leaf, MK_HASH_LEN);
  int lvl = 0;
  /* Every set low bit of the old size is a subtree the new leaf completes. */
  for (uint64_t s = f->size; s & 1; s >>= 1) {
    if (mk_node_hash(h, f->h[f->n - 1], cur, cur) != 0) return -1;
    f->n--;
    lvl++;
  }
  memcpy(f->h[f->n++], cur, MK_HASH_LEN);
  f->size++;
  if (node) memcpy(node, cur, MK_HASH_LEN);
  if (level) *level = lvl;
  return 0;
}

int mk_frontier_root(mk_hasher *h, const mk_frontier *f, unsigned char out[MK_HASH_LEN]) {
  if (f->n == 0) return mk_empty_root(h, out);
  unsigned char acc[MK_HASH_LEN];
  memcpy(acc, f->h[f->n - 1], MK_HASH_LEN);
  for (int i = f->n - 2; i >= 0; i--)
    if (mk_node_hash(h, f->h[i], acc, acc) != 0) return -1;
  memcpy(out, acc, MK_HASH_LEN);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Proofs                                                              */
/* ------------------------------------------------------------------ */

int mk_range_hash(mk_hasher *h, mk_subtree_fn fn, void *ud, uint64_t a, uint64_t b,
                  unsigned char out[MK_HASH_LEN]) {
  uint64_t n = b - a;
  if ((n & (n - 1)) == 0 && a % n == 0) {
    int level = mk_ctz(n);
    return fn(ud, level, a >> level, out);
  }
  uint64_t k = split_of(n);
  unsigned char l[MK_HASH_LEN], r[MK_HASH_LEN];
  int rc = mk_range_hash(h, fn, ud, a, a + k, l);
  if (rc == 0) rc = mk_range_hash(h, fn, ud, a + k, b, r);
  if (rc == 0 && mk_node_hash(h, l, r, out) != 0) rc = -1;
  return rc;
}

typedef struct prover {
  mk_hasher *h;
  mk_subtree_fn fn;
  void *ud;
  unsigned char (*out)[MK_HASH_LEN];
  int n;
} prover;

static int put_range(prover *p, uint64_t a, uint64_t b) {
  if (p->n >= MK_MAX_PATH) return -1;
  int rc = mk_range_hash(p->h, p->fn, p->ud, a, b, p->out[p->n]);
  if (rc == 0) p->n++;
  return rc;
}

/* PATH(m, D[a:b]), m absolute. */
static int path(prover *p, uint64_t m, uint64_t a, uint64_t b) {
  if (b - a == 1) return 0;
  uint64_t k = split_of(b - a);
  if (m < a + k) {
    int rc = path(p, m, a, a + k);
    return rc ? rc : put_range(p, a + k, b);
  }
  int rc = path(p, m, a + k, b);
  return rc ? rc : put_range(p, a, a + k);
}

int mk_inclusion_proof(mk_hasher *h, mk_subtree_fn fn, void *ud, uint64_t index, uint64_t size,
                       unsigned char out[][MK_HASH_LEN], int *n) {
  *n = 0;
  if (index >= size) return -2;
  prover p = {h, fn, ud, out, 0};
  int rc = path(&p, index, 0, size);
  *n = p.n;
  return rc;
}

/* SUBPROOF(m, D[a:b], whole), m absolute. */
static int subproof(prover *p, uint64_t m, uint64_t a, uint64_t b, int whole) {
  if (m == b) return whole ? 0 : put_range(p, a, b);
  uint64_t k = split_of(b - a);
  if (m <= a + k) {
    int rc = subproof(p, m, a, a + k, whole);
    return rc ? rc : put_range(p, a + k, b);
  }
  int rc = subproof(p, m, a + k, b, 0);
  return rc ? rc : put_range(p, a, a + k);
}

int mk_consistency_proof(mk_hasher *h, mk_subtree_fn fn, void *ud, uint64_t m, uint64_t size,
                         unsigned char out[][MK_HASH_LEN], int *n) {
  *n = 0;
  if (m > size) return -2;
  if (m == 0 || m == size) return 0;
  prover p = {h, fn, ud, out, 0};
  int rc = subproof(&p, m, 0, size, 1);
  *n = p.n;
  return rc;
}

/* ------------------------------------------------------------------ */
/* Checks (RFC 9162 §2.1.3.2 and §2.1.4.2)                             */
/* ------------------------------------------------------------------ */

int mk_check_inclusion(mk_hasher *h, const unsigned char leaf[MK_HASH_LEN], uint64_t index,
                       uint64_t size, const unsigned char path_[][MK_HASH_LEN], int n,
                       const unsigned char root[MK_HASH_LEN]) {
  if (index >= size || n < 0) return 0;
  uint64_t fn = index, sn = size - 1;
  unsigned char r[MK_HASH_LEN];
  memcpy(r, leaf, MK_HASH_LEN);
  for (int i = 0; i < n; i++) {
    if (sn == 0) return 0;
    if ((fn & 1) || fn == sn) {
      if (mk_node_hash(h, path_[i], r, r) != 0) return -1;
      if (!(fn & 1))
        while (!(fn & 1) && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
    } else {
      if (mk_node_hash(h, r, path_[i], r) != 0) return -1;
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn == 0 && memcmp(r, root, MK_HASH_LEN) == 0;
}

int mk_check_consistency(mk_hasher *h, uint64_t m, const unsigned char old_root[MK_HASH_LEN],
                         uint64_t size, const unsigned char new_root[MK_HASH_LEN],
                         const unsigned char proof[][MK_HASH_LEN], int n) {
  if (m > size || n < 0) return 0;
  if (m == size) return n == 0 && memcmp(old_root, new_root, MK_HASH_LEN) == 0;
  if (m == 0) {
    unsigned char e[MK_HASH_LEN];
    if (mk_empty_root(h, e) != 0) return -1;
    return n == 0 && memcmp(old_root, e, MK_HASH_LEN) == 0;
  }
  if (n == 0) return 0;
  /* When m is a power of two the old root is the proof's implicit first node. */
  int pow2 = (m & (m - 1)) == 0;
  int total = n + pow2;
  uint64_t fn = m - 1, sn = size - 1;
  while (fn & 1) {
    fn >>= 1;
    sn >>= 1;
  }
  unsigned char fr[MK_HASH_LEN], sr[MK_HASH_LEN];
  const unsigned char *first = pow2 ? old_root : proof[0];
  memcpy(fr, first, MK_HASH_LEN);
  memcpy(sr, first, MK_HASH_LEN);
  for (int i = 1; i < total; i++) {
    const unsigned char *c = proof[i - pow2];
    if (sn == 0) return 0;
    if ((fn & 1) || fn == sn) {
      if (mk_node_hash(h, c, fr, fr) != 0 || mk_node_hash(h, c, sr, sr) != 0) return -1;
      if (!(fn & 1))
        while (!(fn & 1) && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
    } else {
      if (mk_node_hash(h, sr, c, sr) != 0) return -1;
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn == 0 && memcmp(fr, old_root, MK_HASH_LEN) == 0 &&
         memcmp(sr, new_root, MK_HASH_LEN) == 0;
}

/* ------------------------------------------------------------------ */
/* Hex                                                                 */
/* ------------------------------------------------------------------ */

static int nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

int mk_from_hex(const char *hex, unsigned char out[MK_HASH_LEN]) {
  if (!hex) return -1;
  for (int i = 0; i < MK_HASH_LEN; i++) {
    int hi = nibble(hex[2 * i]), lo = hi < 0 ? -1 : nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return -1;
    out[i] = (unsigned char)(hi << 4 | lo);
  }
  return hex[2 * MK_HASH_LEN] == '\0' ? 0 : -1;
}

void mk_to_hex(const unsigned char h[MK_HASH_LEN], char out[2 * MK_HASH_LEN + 1]) {
  static const char digits[] = "0123456789abcdef";
  for (int i = 0; i < MK_HASH_LEN; i++) {
    out[2 * i] = digits[h[i] >> 4];
    out[2 * i + 1] = digits[h[i] & 15];
  }
  out[2 * MK_HASH_LEN] = '\0';
}
