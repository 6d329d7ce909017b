/*
 * casectl defs: what the stored definitions declare (roles, state ids), so a
 * filter naming an undeclared role or an unknown state is an error rather than
 * an empty answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casectl.h"

static int has_role(const case_def *d, const char *role) {
  for (int i = 0; i < case_def_role_count(d); i++)
    if (strcmp(case_def_role(d, i), role) == 0) return 1;
  return 0;
}

static int has_state(const case_def *d, const char *state) {
  for (int i = 0; i < case_def_state_count(d); i++)
    if (strcmp(case_def_state_id(d, i), state) == 0) return 1;
  return 0;
}

/* Appends `s` to the comma-separated list in buf unless it is there already. */
static void list_add(char *buf, size_t len, const char *s) {
  size_t n = strlen(s);
  for (const char *p = buf; *p;) {
    size_t k = strcspn(p, ",");
    if (k == n && !memcmp(p, s, n)) return;
    p += k;
    while (*p == ',' || *p == ' ') p++;
  }
  size_t used = strlen(buf);
  if (used + n + 3 >= len) return;
  snprintf(buf + used, len - used, "%s%s", used ? ", " : "", s);
}

int check_role(ctx *c, const char *role) {
  char declared[1024] = "";
  int ndefs = 0;
  for (const case_def *d = case_def_next(c->e, NULL); d; d = case_def_next(c->e, d)) {
    ndefs++;
    if (has_role(d, role)) return EX_OK;
    for (int i = 0; i < case_def_role_count(d); i++)
      list_add(declared, sizeof declared, case_def_role(d, i));
  }
  if (ndefs == 0) return EX_OK; /* nothing stored: nothing to check against */
  return fail(c, EX_INVALID, "--role: '%s' is not a role of any stored workflow (declared: %s)",
              role, *declared ? declared : "none");
}

int check_role_of(ctx *c, const case_def *d, const char *role) {
  if (has_role(d, role)) return EX_OK;
  char declared[1024] = "";
  for (int i = 0; i < case_def_role_count(d); i++)
    list_add(declared, sizeof declared, case_def_role(d, i));
  return fail(c, EX_INVALID, "--role: '%s' is not a role of %s version %d (declared: %s)", role,
              case_def_id(d), case_def_version(d), *declared ? declared : "none");
}

/* Levenshtein distance, capped at 100 characters. */
static int distance(const char *a, const char *b) {
  size_t m = strlen(a), n = strlen(b);
  if (m > 100 || n > 100) return 1000;
  int row[101];
  for (size_t j = 0; j <= n; j++) row[j] = (int)j;
  for (size_t i = 1; i <= m; i++) {
    int prev = row[0];
    row[0] = (int)i;
    for (size_t j = 1; j <= n; j++) {
      int cur = row[j];
      int best = prev + (a[i - 1] != b[j - 1]);
      if (row[j] + 1 < best) best = row[j] + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      prev = cur;
    }
  }
  return row[n];
}

int check_state(ctx *c, const char *state) {
  const char *best = NULL;
  int bestd = 1 << 30, ndefs = 0;
  for (const case_def *d = case_def_next(c->e, NULL); d; d = case_def_next(c->e, d)) {
    ndefs++;
    if (has_state(d, state)) return EX_OK;
    for (int i = 0; i < case_def_state_count(d); i++) {
      const char *id = case_def_state_id(d, i);
      int k = distance(state, id);
      if (k < bestd) {
        bestd = k;
        best = id;
      }
    }
  }
  if (ndefs == 0) return EX_OK;
  if (best && bestd <= ((int)strlen(state) < 6 ? 2 : (int)strlen(state) / 3))
    return fail(c, EX_INVALID, "--state: no state '%s' in any stored workflow (did you mean '%s'?)",
                state, best);
  return fail(c, EX_INVALID, "--state: no state '%s' in any stored workflow", state);
}
