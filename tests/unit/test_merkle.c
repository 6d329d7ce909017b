/* The journal's Merkle tree (libcase/merkle.c): the RFC 6962 reference values of
 * Certificate Transparency, and every proof of every tree up to 70 leaves
 * against a direct recursive MTH. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "merkle.h"

/* The leaves of CT's reference tree (certificate-transparency merkle tests). */
static const char *const CT_ENTRIES[8] = {"",         "00",       "10",
                                          "2021",     "3031",     "40414243",
                                          "5051525354555657", "606162636465666768696a6b6c6d6e6f"};
static const char *const CT_ROOTS[9] = {
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

#define MAXN 70

typedef struct tree {
  mk_hasher h;
  unsigned char leaf[MAXN][MK_HASH_LEN];
  int n;
  int calls; /* subtree lookups */
} tree;

static void unhex(const char *s, unsigned char *out, size_t *n) {
  size_t len = strlen(s) / 2;
  for (size_t i = 0; i < len; i++) {
    unsigned v;
    sscanf(s + 2 * i, "%2x", &v);
    out[i] = (unsigned char)v;
  }
  *n = len;
}

static void assert_hex(const unsigned char h[MK_HASH_LEN], const char *want) {
  char got[65];
  mk_to_hex(h, got);
  assert_string_equal(got, want);
}

/* MTH(D[a:b]) straight from RFC 6962 §2.1. */
static void mth(tree *t, uint64_t a, uint64_t b, unsigned char out[MK_HASH_LEN]) {
  if (b - a == 1) {
    memcpy(out, t->leaf[a], MK_HASH_LEN);
    return;
  }
  uint64_t k = 1;
  while (k < b - a - k) k <<= 1;
  unsigned char l[MK_HASH_LEN], r[MK_HASH_LEN];
  mth(t, a, a + k, l);
  mth(t, a + k, b, r);
  assert_int_equal(mk_node_hash(&t->h, l, r, out), 0);
}

static int subtree(void *ud, int level, uint64_t index, unsigned char out[MK_HASH_LEN]) {
  tree *t = ud;
  t->calls++;
  uint64_t a = index << level, b = (index + 1) << level;
  assert_true(b <= (uint64_t)t->n);
  mth(t, a, b, out);
  return 0;
}

static void ct_tree(tree *t) {
  assert_int_equal(mk_hasher_init(&t->h), 0);
  t->n = 8;
  for (int i = 0; i < 8; i++) {
    unsigned char e[32];
    size_t n;
    unhex(CT_ENTRIES[i], e, &n);
    assert_int_equal(mk_leaf_hash(&t->h, e, n, t->leaf[i]), 0);
  }
}

static void test_reference_roots(void **state) {
  (void)state;
  tree t;
  ct_tree(&t);
  mk_frontier f;
  mk_frontier_init(&f);
  unsigned char root[MK_HASH_LEN];
  assert_int_equal(mk_frontier_root(&t.h, &f, root), 0);
  assert_hex(root, CT_ROOTS[0]);
  for (int i = 0; i < 8; i++) {
    unsigned char node[MK_HASH_LEN];
    int level = -1;
    assert_int_equal(mk_frontier_add(&t.h, &f, t.leaf[i], node, &level), 0);
    assert_int_equal(level, mk_ctz((uint64_t)i + 1));
    assert_int_equal(mk_frontier_root(&t.h, &f, root), 0);
    assert_hex(root, CT_ROOTS[i + 1]);
    /* The node that ends at leaf i is the perfect subtree of its level. */
    unsigned char want[MK_HASH_LEN];
    uint64_t e = (uint64_t)i + 1;
    mth(&t, e - ((uint64_t)1 << level), e, want);
    assert_memory_equal(node, want, MK_HASH_LEN);
  }
  mk_hasher_free(&t.h);
}

static void test_reference_proofs(void **state) {
  (void)state;
  tree t;
  ct_tree(&t);
  unsigned char p[MK_MAX_PATH][MK_HASH_LEN];
  int n = 0;
  assert_int_equal(mk_inclusion_proof(&t.h, subtree, &t, 0, 8, p, &n), 0);
  assert_int_equal(n, 3);
  assert_hex(p[0], "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7");
  assert_hex(p[1], "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e");
  assert_hex(p[2], "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4");
  assert_int_equal(mk_inclusion_proof(&t.h, subtree, &t, 5, 8, p, &n), 0);
  assert_int_equal(n, 3);
  assert_hex(p[0], "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b");
  assert_hex(p[1], "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0");
  assert_hex(p[2], "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7");
  assert_int_equal(mk_consistency_proof(&t.h, subtree, &t, 2, 8, p, &n), 0);
  assert_int_equal(n, 2);
  assert_hex(p[0], "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e");
  assert_hex(p[1], "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4");
  assert_int_equal(mk_consistency_proof(&t.h, subtree, &t, 6, 8, p, &n), 0);
  assert_int_equal(n, 3);
  assert_hex(p[0], "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a");
  assert_hex(p[1], "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0");
  assert_hex(p[2], "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7");
  unsigned char r6[MK_HASH_LEN], r8[MK_HASH_LEN];
  assert_int_equal(mk_from_hex(CT_ROOTS[6], r6), 0);
  assert_int_equal(mk_from_hex(CT_ROOTS[8], r8), 0);
  assert_int_equal(mk_check_consistency(&t.h, 6, r6, 8, r8, p, 3), 1);
  assert_int_equal(mk_check_consistency(&t.h, 6, r8, 8, r6, p, 3), 0);
  /* Out of range. */
  assert_int_equal(mk_inclusion_proof(&t.h, subtree, &t, 8, 8, p, &n), -2);
  assert_int_equal(mk_consistency_proof(&t.h, subtree, &t, 9, 8, p, &n), -2);
  assert_int_equal(mk_from_hex("5dc9", r6), -1);
  assert_int_equal(mk_from_hex("5DC9DA79A70659A9AD559CB701DED9A2AB9D823AAD2F4960CFE370EFF4604328", r6), -1);
  mk_hasher_free(&t.h);
}

/* Every leaf of every tree up to MAXN: proofs verify; a flipped bit, a swap, a
 * hash too few or too many, another index, old or new tree does not. */
static void test_every_proof(void **state) {
  (void)state;
  tree t;
  assert_int_equal(mk_hasher_init(&t.h), 0);
  t.n = MAXN;
  for (int i = 0; i < MAXN; i++) {
    unsigned char e[2] = {(unsigned char)i, (unsigned char)(i * 7)};
    assert_int_equal(mk_leaf_hash(&t.h, e, 2, t.leaf[i]), 0);
  }
  unsigned char roots[MAXN + 1][MK_HASH_LEN];
  mk_frontier f;
  mk_frontier_init(&f);
  assert_int_equal(mk_frontier_root(&t.h, &f, roots[0]), 0);
  for (int n = 1; n <= MAXN; n++) {
    assert_int_equal(mk_frontier_add(&t.h, &f, t.leaf[n - 1], NULL, NULL), 0);
    assert_int_equal(mk_frontier_root(&t.h, &f, roots[n]), 0);
    unsigned char want[MK_HASH_LEN];
    mth(&t, 0, (uint64_t)n, want);
    assert_memory_equal(roots[n], want, MK_HASH_LEN);
  }
  unsigned char p[MK_MAX_PATH][MK_HASH_LEN];
  int k;
  for (int n = 1; n <= MAXN; n++) {
    for (int i = 0; i < n; i++) {
      assert_int_equal(mk_inclusion_proof(&t.h, subtree, &t, (uint64_t)i, (uint64_t)n, p, &k), 0);
      assert_int_equal(mk_check_inclusion(&t.h, t.leaf[i], (uint64_t)i, (uint64_t)n, p, k, roots[n]), 1);
      if (n > 1)
        assert_int_equal(mk_check_inclusion(&t.h, t.leaf[i], (uint64_t)((i + 1) % n), (uint64_t)n,
                                            p, k, roots[n]), 0);
      if (k == 0) continue;
      assert_int_equal(mk_check_inclusion(&t.h, t.leaf[i], (uint64_t)i, (uint64_t)n, p, k - 1, roots[n]), 0);
      memcpy(p[k], t.leaf[0], MK_HASH_LEN);
      assert_int_equal(mk_check_inclusion(&t.h, t.leaf[i], (uint64_t)i, (uint64_t)n, p, k + 1, roots[n]), 0);
      p[k - 1][7] ^= 1;
      assert_int_equal(mk_check_inclusion(&t.h, t.leaf[i], (uint64_t)i, (uint64_t)n, p, k, roots[n]), 0);
    }
    for (int m = 0; m <= n; m++) {
      assert_int_equal(mk_consistency_proof(&t.h, subtree, &t, (uint64_t)m, (uint64_t)n, p, &k), 0);
      assert_true(k <= MK_MAX_PATH);
      assert_int_equal(mk_check_consistency(&t.h, (uint64_t)m, roots[m], (uint64_t)n, roots[n], p, k), 1);
      if (m > 0 && m < n) {
        /* Another old tree, another new tree, a changed hash, one fewer. */
        assert_int_equal(mk_check_consistency(&t.h, (uint64_t)m, roots[m - 1], (uint64_t)n, roots[n], p, k), 0);
        assert_int_equal(mk_check_consistency(&t.h, (uint64_t)m, roots[m], (uint64_t)n, roots[n - 1], p, k), 0);
        assert_int_equal(mk_check_consistency(&t.h, (uint64_t)m, roots[m], (uint64_t)n, roots[n], p, k - 1), 0);
        if (k >= 2 && memcmp(p[0], p[1], MK_HASH_LEN) != 0) {
          unsigned char tmp[MK_HASH_LEN];
          memcpy(tmp, p[0], MK_HASH_LEN);
          memcpy(p[0], p[1], MK_HASH_LEN);
          memcpy(p[1], tmp, MK_HASH_LEN);
          assert_int_equal(mk_check_consistency(&t.h, (uint64_t)m, roots[m], (uint64_t)n, roots[n], p, k), 0);
          memcpy(p[1], p[0], MK_HASH_LEN);
          memcpy(p[0], tmp, MK_HASH_LEN);
        }
        p[0][3] ^= 0x80;
        assert_int_equal(mk_check_consistency(&t.h, (uint64_t)m, roots[m], (uint64_t)n, roots[n], p, k), 0);
      }
    }
  }
  /* A proof needs O(log n) subtrees, not O(n). */
  t.calls = 0;
  assert_int_equal(mk_consistency_proof(&t.h, subtree, &t, 37, 70, p, &k), 0);
  assert_true(t.calls <= 2 * 7);
  mk_hasher_free(&t.h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reference_roots),
      cmocka_unit_test(test_reference_proofs),
      cmocka_unit_test(test_every_proof),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
