/*
 * casectl commands for the journal's proofs (docs/store.md, "Checkpoints"):
 * keygen, checkpoint, check-checkpoint.  `verify --checkpoint` is in cmd_data.c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "casectl.h"

char *read_whole_file(const char *path, int *err) {
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    *err = errno;
    return NULL;
  }
  size_t cap = 4096, len = 0;
  char *p = malloc(cap);
  size_t n;
  while (p && (n = fread(p + len, 1, cap - len - 1, fp)) > 0) {
    len += n;
    if (cap - len - 1 == 0) {
      char *q = realloc(p, cap * 2);
      if (!q) {
        free(p);
        p = NULL;
        break;
      }
      p = q;
      cap *= 2;
    }
  }
  *err = !p ? ENOMEM : ferror(fp) ? EIO : 0;
  fclose(fp);
  if (*err) {
    free(p);
    return NULL;
  }
  p[len] = '\0';
  return p;
}

/* A file's text, or an exit code with the message printed. */
static char *file_arg(ctx *c, const char *what, const char *path, int *ex) {
  int err = 0;
  char *t = read_whole_file(path, &err);
  if (!t) *ex = fail(c, err == ENOENT ? EX_NOTFOUND : EX_STORE, "%s %s: %s", what, path,
                     strerror(err));
  return t;
}

/* Writes text to path (or stdout for NULL / "-"). */
static int write_out(ctx *c, const char *path, const char *text) {
  if (!path || strcmp(path, "-") == 0) {
    fputs(text, stdout);
    fputc('\n', stdout);
    return EX_OK;
  }
  FILE *fp = fopen(path, "wx");
  if (!fp)
    return fail(c, errno == EEXIST ? EX_INVALID : EX_STORE, "%s: %s%s", path, strerror(errno),
                errno == EEXIST ? " (a checkpoint is never overwritten)" : "");
  int ok = fputs(text, fp) >= 0 && fputc('\n', fp) != EOF;
  if (fclose(fp) != 0) ok = 0;
  return ok ? EX_OK : fail(c, EX_STORE, "%s: cannot write", path);
}

enum { P_OUT = 256, P_PUBOUT, P_KEY, P_SINCE, P_PUBKEY, P_CHECKPOINT, P_ROW };

static struct {
  const char *out, *pubout, *key, *since, *pubkey, *checkpoint, *row;
} po;

static int proof_option(ctx *c, int code, const char *arg) {
  switch (code) {
  case P_OUT: po.out = arg; return EX_OK;
  case P_PUBOUT: po.pubout = arg; return EX_OK;
  case P_KEY: po.key = arg; return EX_OK;
  case P_SINCE: po.since = arg; return EX_OK;
  case P_PUBKEY: po.pubkey = arg; return EX_OK;
  case P_CHECKPOINT: po.checkpoint = arg; return EX_OK;
  case P_ROW: po.row = arg; return EX_OK;
  default: return usage_error(c, "unexpected option");
  }
}

/* ------------------------------------------------------------------ keygen */

static const struct option keygen_options[] = {
    {"out", required_argument, NULL, P_OUT},
    {"pubout", required_argument, NULL, P_PUBOUT},
    {NULL, 0, NULL, 0},
};

static int run_keygen(ctx *c, int argc, char **argv) {
  (void)argv;
  if (argc != 0) return usage_error(c, "keygen takes no arguments");
  if (!po.out) return usage_error(c, "give --out KEY (the private key's new file)");
  int ex = ctx_engine(c);
  if (ex != EX_OK) return ex;
  int rc = case_key_generate(c->e, po.out, po.pubout);
  if (rc != CASE_OK) return fail_engine(c, rc, "keygen");
  if (!c->quiet) {
    printf("private key %s (mode 0600: keep it away from the store)\n", po.out);
    if (po.pubout) printf("public key  %s (give it to whoever checks the checkpoints)\n", po.pubout);
  }
  return EX_OK;
}

const command cmd_keygen = {
    "keygen", "make an Ed25519 key pair for signing checkpoints",
    "usage: casectl keygen --out KEY [--pubout PUB]\n"
    "  Writes a new Ed25519 private key (PEM PKCS#8, mode 0600) to KEY and its public\n"
    "  key (PEM) to PUB.  Never overwrites a file.  The same as\n"
    "  `openssl genpkey -algorithm ed25519 -out KEY` and\n"
    "  `openssl pkey -in KEY -pubout -out PUB`.  Keep KEY off the store's disk.\n",
    keygen_options, proof_option, run_keygen, 0};

/* ------------------------------------------------------------------ checkpoint */

static const struct option checkpoint_options[] = {
    {"key", required_argument, NULL, P_KEY},
    {"since", required_argument, NULL, P_SINCE},
    {"out", required_argument, NULL, P_OUT},
    {NULL, 0, NULL, 0},
};

static int run_checkpoint(ctx *c, int argc, char **argv) {
  (void)argv;
  if (argc != 0) return usage_error(c, "checkpoint takes no arguments");
  if (!po.key) return usage_error(c, "give --key KEY (an Ed25519 private key file)");
  int ex = EX_OK;
  char *prev = po.since ? file_arg(c, "--since", po.since, &ex) : NULL;
  if (ex != EX_OK) return ex;
  char *cp = NULL;
  int rc = case_store_checkpoint(c->s, po.key, c->at, prev, &cp);
  free(prev);
  if (rc != CASE_OK) return fail_engine(c, rc, "checkpoint");
  ex = write_out(c, po.out, cp);
  if (ex == EX_OK && po.out && !c->quiet) {
    json_t *j = json_loads(cp, 0, NULL);
    printf("%s: checkpoint of %lld journal row(s), root %.16s...%s\n", po.out,
           (long long)json_integer_value(json_object_get(j, "size")),
           json_string_value(json_object_get(j, "root")),
           po.since ? ", with the proof that it extends --since" : "");
    json_decref(j);
  }
  case_free(cp);
  return ex;
}

const command cmd_checkpoint = {
    "checkpoint", "sign the journal's tree head (a checkpoint others keep)",
    "usage: casectl checkpoint --key KEY [--since OLD] [--out FILE] [--at WHEN]\n"
    "  Signs the head of the journal's Merkle tree (its size and root), the store's id\n"
    "  and the time (--at, else now) with the Ed25519 private key in KEY, and writes the\n"
    "  checkpoint (JSON) to FILE (never overwritten; default: stdout).  With --since, an\n"
    "  earlier checkpoint of this store, the new one carries the consistency proof from\n"
    "  it (check-checkpoint checks it without the store), and it is refused (exit 4) if\n"
    "  the journal does not extend OLD.  Writes nothing to the store.\n",
    checkpoint_options, proof_option, run_checkpoint, 3};

/* ------------------------------------------------------------------ prove */

static const struct option prove_options[] = {
    {"checkpoint", required_argument, NULL, P_CHECKPOINT},
    {"out", required_argument, NULL, P_OUT},
    {NULL, 0, NULL, 0},
};

static int run_prove(ctx *c, int argc, char **argv) {
  if (argc != 1) return usage_error(c, "give the journal row's seq");
  char *end;
  errno = 0;
  long long seq = strtoll(argv[0], &end, 10);
  if (errno || *end || seq < 1) return usage_error(c, "'%s' is not a journal seq", argv[0]);
  int ex = EX_OK;
  long long size = 0;
  if (po.checkpoint) {
    char *cp = file_arg(c, "--checkpoint", po.checkpoint, &ex);
    if (ex != EX_OK) return ex;
    json_t *j = json_loads(cp, 0, NULL);
    free(cp);
    json_t *n = json_object_get(j, "size");
    if (!json_is_integer(n)) {
      json_decref(j);
      return fail(c, EX_INVALID, "%s is not a checkpoint", po.checkpoint);
    }
    size = json_integer_value(n);
    json_decref(j);
  }
  char *proof = NULL;
  int rc = case_store_prove(c->s, seq, size, &proof);
  if (rc != CASE_OK) return fail_engine(c, rc, "prove");
  ex = write_out(c, po.out, proof);
  case_free(proof);
  if (ex == EX_OK && po.out && !c->quiet)
    printf("%s: the audit path of journal row %lld%s\n", po.out, seq,
           po.checkpoint ? " in the checkpoint's tree" : " in today's tree");
  return ex;
}

const command cmd_prove = {
    "prove", "the audit path of one journal row, for check-checkpoint",
    "usage: casectl prove [--checkpoint FILE] [--out FILE] SEQ\n"
    "  Writes the RFC 6962 audit path of journal row SEQ, with the row itself, in the\n"
    "  tree of the checkpoint's size (default: of every row now).  Whoever holds the\n"
    "  checkpoint checks it with `casectl check-checkpoint --row PROOF CHECKPOINT`.\n",
    prove_options, proof_option, run_prove, 3};

/* ------------------------------------------------------------------ check-checkpoint */

static const struct option check_options[] = {
    {"pubkey", required_argument, NULL, P_PUBKEY},
    {"row", required_argument, NULL, P_ROW},
    {NULL, 0, NULL, 0},
};

/* check-checkpoint --row PROOF CHECKPOINT */
static int check_row(ctx *c, const char *cp_path) {
  int ex = EX_OK;
  char *cp = file_arg(c, "checkpoint", cp_path, &ex);
  char *proof = ex == EX_OK ? file_arg(c, "--row", po.row, &ex) : NULL;
  char *pub = ex == EX_OK && po.pubkey ? file_arg(c, "--pubkey", po.pubkey, &ex) : NULL;
  char *report = NULL;
  int rc = CASE_OK;
  if (ex == EX_OK) {
    rc = case_checkpoint_check_row(c->e, cp, proof, pub, &report);
    if (rc != CASE_OK && rc != CASE_CORRUPT) ex = fail_engine(c, rc, "check-checkpoint");
  }
  free(cp);
  free(proof);
  free(pub);
  if (ex != EX_OK) return ex;
  json_t *r = json_loads(report, 0, NULL);
  case_free(report);
  if (c->json) {
    print_json(r);
  } else {
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(r, "problems"), i, p)
      fprintf(stderr, "%s: %s\n", po.row, json_string_value(p));
    if (!c->quiet)
      printf("journal row %lld (case %s) %s the %lld rows of %s\n",
             (long long)json_integer_value(json_object_get(r, "seq")),
             json_string_value(json_object_get(r, "case")),
             rc == CASE_OK ? "is, as shown, among" : "is NOT proven among",
             (long long)json_integer_value(json_object_get(r, "size")), cp_path);
    json_decref(r);
  }
  return rc == CASE_OK ? EX_OK : EX_REFUSED;
}

static int run_check_checkpoint(ctx *c, int argc, char **argv) {
  int ex = ctx_engine(c);
  if (ex != EX_OK) return ex;
  if (po.row) {
    if (argc != 1) return usage_error(c, "with --row give one checkpoint file");
    return check_row(c, argv[0]);
  }
  if (argc != 2) return usage_error(c, "give two checkpoint files: OLDER NEWER");
  char *older = file_arg(c, "checkpoint", argv[0], &ex);
  char *newer = ex == EX_OK ? file_arg(c, "checkpoint", argv[1], &ex) : NULL;
  char *pub = ex == EX_OK && po.pubkey ? file_arg(c, "--pubkey", po.pubkey, &ex) : NULL;
  char *report = NULL;
  int rc = CASE_OK;
  if (ex == EX_OK) {
    rc = case_checkpoint_check(c->e, older, newer, pub, &report);
    if (rc != CASE_OK && rc != CASE_CORRUPT) ex = fail_engine(c, rc, "check-checkpoint");
  }
  free(older);
  free(newer);
  free(pub);
  if (ex != EX_OK) return ex;
  json_t *r = json_loads(report, 0, NULL);
  case_free(report);
  if (c->json) {
    print_json(r);
  } else {
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(r, "problems"), i, p)
      fprintf(stderr, "%s: %s\n", argv[1], json_string_value(p));
    if (!c->quiet) {
      json_t *a = json_object_get(r, "older"), *b = json_object_get(r, "newer");
      printf("%s (%lld rows) %s %s (%lld rows)%s\n", argv[1],
             (long long)json_integer_value(json_object_get(b, "size")),
             rc == CASE_OK ? "extends" : "does NOT extend", argv[0],
             (long long)json_integer_value(json_object_get(a, "size")),
             po.pubkey ? "" : " (signatures checked with the key in the checkpoints)");
    }
    json_decref(r);
  }
  return rc == CASE_OK ? EX_OK : EX_REFUSED;
}

const command cmd_check_checkpoint = {
    "check-checkpoint", "prove that one checkpoint extends another (no store needed)",
    "usage: casectl check-checkpoint [--pubkey PUB] [--json] OLDER NEWER\n"
    "       casectl check-checkpoint [--pubkey PUB] [--json] --row PROOF CHECKPOINT\n"
    "  Checks both signatures (with PUB, else with the key in OLDER), that both are of\n"
    "  the same store, and NEWER's consistency proof from OLDER (made with\n"
    "  `checkpoint --since OLDER`).  Exit 0 when NEWER extends OLDER: no row OLDER covers\n"
    "  was changed, removed or moved; 1 when not (each reason on stderr).\n"
    "  With --row: that the journal row in PROOF (made with `casectl prove`) is, with\n"
    "  the content shown, in the tree CHECKPOINT signed.\n",
    check_options, proof_option, run_check_checkpoint, 0};
