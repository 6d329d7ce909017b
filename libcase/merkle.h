/*
 * merkle.h — the journal's Merkle tree (RFC 6962 §2.1, RFC 9162 §2.1): hashes,
 * the frontier of a growing tree, audit paths and consistency proofs, and
 * their checks.  Internal; docs/store.md ("The journal's Merkle tree")
 * describes the tree and how the store keeps it.
 *
 *   leaf hash = SHA-256(0x00 || entry)
 *   node hash = SHA-256(0x01 || left || right)
 *   MTH(D[n]) splits at k, the largest power of two smaller than n; the hash
 *   of the empty tree is SHA-256 of nothing.
 *
 * Leaves are numbered from 0; a "perfect subtree" (level, index) covers the
 * leaves [index * 2^level, (index + 1) * 2^level).  Nothing here allocates
 * except the hasher; every function is safe to call from several threads on
 * distinct hashers.
 */
#ifndef LIBCASE_MERKLE_H
#define LIBCASE_MERKLE_H

#include <stddef.h>
#include <stdint.h>

#define MK_HASH_LEN 32
/* Proofs over trees of up to 2^63 leaves: at most 63 hashes in an audit path,
 * at most 2 * 63 in a consistency proof. */
#define MK_MAX_PATH 130

/* SHA-256 fetched once, and a digest context reused for every hash. */
typedef struct mk_hasher {
  void *md;  /* EVP_MD * */
  void *ctx; /* EVP_MD_CTX * */
} mk_hasher;

int mk_hasher_init(mk_hasher *h); /* 0, or -1 when libcrypto fails (no memory) */
void mk_hasher_free(mk_hasher *h); /* NULL contents are fine */

/* Each returns 0, or -1 when libcrypto fails. */
int mk_leaf_hash(mk_hasher *h, const void *entry, size_t n, unsigned char out[MK_HASH_LEN]);
int mk_node_hash(mk_hasher *h, const unsigned char left[MK_HASH_LEN],
                 const unsigned char right[MK_HASH_LEN], unsigned char out[MK_HASH_LEN]);
int mk_empty_root(mk_hasher *h, unsigned char out[MK_HASH_LEN]);
/* Plain SHA-256 of n bytes (no prefix), with the hasher's fetched algorithm. */
int mk_sha256(mk_hasher *h, const void *data, size_t n, unsigned char out[MK_HASH_LEN]);

/* The number of trailing zero bits of n > 0. */
int mk_ctz(uint64_t n);

/*
 * The frontier of a tree of `size` leaves: the roots of the perfect subtrees
 * its size decomposes into (one per set bit), largest (leftmost) first.
 * Adding a leaf merges the subtrees that complete; what remains on top is the
 * perfect subtree of level ctz(size + 1) that ends at the new leaf.
 */
typedef struct mk_frontier {
  uint64_t size;
  int n;
  unsigned char h[64][MK_HASH_LEN];
} mk_frontier;

void mk_frontier_init(mk_frontier *f);
/* Adds a leaf; `node` (may be NULL) gets the subtree ending at it, *level its level. */
int mk_frontier_add(mk_hasher *h, mk_frontier *f, const unsigned char leaf[MK_HASH_LEN],
                    unsigned char node[MK_HASH_LEN], int *level);
/* MTH of the tree the frontier stands for. */
int mk_frontier_root(mk_hasher *h, const mk_frontier *f, unsigned char out[MK_HASH_LEN]);

/*
 * Proofs are computed from perfect subtrees a caller supplies: `fn` writes
 * the hash of subtree (level, index) and returns 0, or a nonzero code that is
 * passed back.
 */
typedef int (*mk_subtree_fn)(void *ud, int level, uint64_t index, unsigned char out[MK_HASH_LEN]);

/* MTH(D[a:b]) for 0 <= a < b, from the aligned perfect subtrees it splits into. */
int mk_range_hash(mk_hasher *h, mk_subtree_fn fn, void *ud, uint64_t a, uint64_t b,
                  unsigned char out[MK_HASH_LEN]);

/* PATH(index, D[size]) (RFC 6962 §2.1.1): *n hashes into out, deepest first.
 * Returns 0, the code of fn, or -2 when index >= size. */
int mk_inclusion_proof(mk_hasher *h, mk_subtree_fn fn, void *ud, uint64_t index, uint64_t size,
                       unsigned char out[][MK_HASH_LEN], int *n);

/* PROOF(m, D[size]) (RFC 6962 §2.1.2) for 0 <= m <= size (empty for m = 0 or
 * m = size).  Returns 0, the code of fn, or -2 when m > size. */
int mk_consistency_proof(mk_hasher *h, mk_subtree_fn fn, void *ud, uint64_t m, uint64_t size,
                         unsigned char out[][MK_HASH_LEN], int *n);

/* RFC 9162 §2.1.3.2: 1 when `path` proves leaf hash `leaf` is leaf `index` of
 * the tree of `size` leaves with root `root`; 0 when it does not; -1 when
 * libcrypto fails. */
int mk_check_inclusion(mk_hasher *h, const unsigned char leaf[MK_HASH_LEN], uint64_t index,
                       uint64_t size, const unsigned char path[][MK_HASH_LEN], int n,
                       const unsigned char root[MK_HASH_LEN]);

/* RFC 9162 §2.1.4.2: 1 when `proof` proves that the tree of size `m` with
 * root `old_root` is a prefix of the tree of size `size` with root
 * `new_root`; 0 when it does not; -1 when libcrypto fails.  m = size needs an
 * empty proof and equal roots; m = 0 an empty proof and old_root the empty
 * tree's hash. */
int mk_check_consistency(mk_hasher *h, uint64_t m, const unsigned char old_root[MK_HASH_LEN],
                         uint64_t size, const unsigned char new_root[MK_HASH_LEN],
                         const unsigned char proof[][MK_HASH_LEN], int n);

/* Hex (64 lowercase digits) to 32 bytes; 0, or -1 when `hex` is not that. */
int mk_from_hex(const char *hex, unsigned char out[MK_HASH_LEN]);
void mk_to_hex(const unsigned char h[MK_HASH_LEN], char out[2 * MK_HASH_LEN + 1]);

#endif /* LIBCASE_MERKLE_H */
