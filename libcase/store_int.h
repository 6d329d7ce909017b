/*
 * store_int.h — what the durable store's files share (not public): the store
 * handle and the helpers of store.c used by verify.c.
 */
#ifndef LIBCASE_STORE_INT_H
#define LIBCASE_STORE_INT_H

#include "internal.h"
#include "libcase/store.h"
#include "store_backend.h"

struct case_store {
  case_engine *e;
  const sb_ops *ops;
  sb_db *db;
  int readonly;
  /* The store's clock (case_store_set_clock(); NULL: the wall clock) and how
   * far ahead of it an event time may be (case_store_set_future_limit()). */
  case_clock_fn clock;
  void *clock_ud;
  int64_t future_limit; /* seconds; < 0: no limit */
};

/* The prefix of the hashed serialisation of a journal row (docs/store.md). */
#define HASH_TAG "libcase.journal.v1"
/* Actor of timer rows; with no role it marks a row fired by case_store_tick(). */
#define TIMER_ACTOR "timer"

/* CASE_NOMEM with "out of memory" on the engine. */
int st_nomem(case_engine *e);
/* The backend's message as the engine error; returns rc. */
int st_berr(case_store *s, int rc);
/* Canonical JSON text: compact, keys sorted, ASCII only (docs/store.md); malloc'd. */
char *st_canon(const json_t *v);
/* JSON text (any value) parsed; JSON null for NULL text; NULL if invalid. */
json_t *st_parse_any(const char *text);
/*
 * The row hash: lowercase hex SHA-256 of the canonical JSON array of
 * docs/store.md.  Returns CASE_OK, CASE_CORRUPT (a JSON column does not parse)
 * or CASE_NOMEM.
 */
int st_row_hash(const sb_journal_row *r, char out[65]);
/* Loads stored definition `id` `version` (0: every version; id NULL: every
 * definition) the engine has not loaded yet: definitions are loaded lazily.
 * CASE_OK or the error (a stored definition that does not parse or whose hash
 * does not match: CASE_CORRUPT / CASE_INVALID ...) with the message set. */
int st_load_defs(case_store *s, const char *id, int version);
/* The journal event name of timer `i` of `c`: its event, or "deadline.<name>" (malloc'd). */
char *st_timer_event(const case_instance *c, int i);

#endif /* LIBCASE_STORE_INT_H */
