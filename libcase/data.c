/*
 * A case's data by slot (issue 14): one value per declared field, in the
 * definition's order, instead of a JSON object per case.
 *
 * The values are jansson values that nothing changes in place (an action
 * replaces a field's value as a whole), so they are shared: between the
 * committed status and a macrostep's working copy, and with the definition's
 * defaults.  An idle case holds a block of one pointer per field; a field
 * without a value points to JSON null, a field at its default to the
 * definition's default value.
 *
 * The JSON form (snapshots, the journal's data column, case_instance_data())
 * is made from the slots when asked for: an object with every declared field,
 * in declaration order, then the variables a script created in the globals
 * datamodel (`extra`), unless the case was restored from a snapshot that had
 * another order, which is then kept (`order`), so a snapshot written again is
 * byte for byte what was read.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static cs_data *block(int n) {
  cs_data *x = malloc(sizeof *x + (size_t)(n > 0 ? n : 1) * sizeof x->v[0]);
  if (!x) return NULL;
  x->refs = 1;
  x->n = n;
  x->norder = 0;
  x->extra = NULL;
  x->order = NULL;
  return x;
}

cs_data *data_new(const case_def *d) {
  cs_data *x = block(d->nfields);
  if (!x) return NULL;
  for (int i = 0; i < d->nfields; i++) x->v[i] = json_null();
  return x;
}

void data_release(cs_data *x) {
  if (!x || --x->refs > 0) return;
  for (int i = 0; i < x->n; i++) json_decref(x->v[i]);
  json_decref(x->extra);
  free(x->order);
  free(x);
}

cs_data *data_share(cs_data *x) {
  if (x) x->refs++;
  return x;
}

int data_own(cs_data **p) {
  cs_data *x = *p;
  if (x->refs == 1) return 0;
  cs_data *y = block(x->n);
  if (!y) return -1;
  if (x->extra && !(y->extra = json_copy(x->extra))) goto fail;
  if (x->order) {
    if (!(y->order = malloc((size_t)x->norder * sizeof *y->order))) goto fail;
    memcpy(y->order, x->order, (size_t)x->norder * sizeof *y->order);
    y->norder = x->norder;
  }
  for (int i = 0; i < x->n; i++) y->v[i] = json_incref(x->v[i]);
  x->refs--;
  *p = y;
  return 0;
fail:
  json_decref(y->extra);
  free(y);
  return -1;
}

json_t *data_get(const cs_data *x, const case_def *d, const char *name) {
  if (!x || !name) return NULL;
  int f = def_field_find(d, name);
  if (f >= 0 && f < x->n) return x->v[f];
  return x->extra ? json_object_get(x->extra, name) : NULL;
}

static size_t nkeys(const cs_data *x) {
  return (size_t)x->n + (x->extra ? json_object_size(x->extra) : 0);
}

int data_set_slot(cs_data *x, int slot, json_t *v, int64_t *delta) {
  if (!v) return -1;
  if (delta) *delta += json_size(v) - json_size(x->v[slot]);
  json_decref(x->v[slot]);
  x->v[slot] = v;
  return 0;
}

int data_set(cs_data *x, const case_def *d, const char *key, json_t *v, int64_t *delta) {
  if (!v) return -1;
  int f = def_field_find(d, key);
  if (f >= 0 && f < x->n) return data_set_slot(x, f, v, delta);
  json_t *was = x->extra ? json_object_get(x->extra, key) : NULL;
  if (!was) {
    if (!x->extra && !(x->extra = json_object())) {
      json_decref(v);
      return -1;
    }
    if (x->order) { /* a kept order: the new variable comes last */
      int *o = realloc(x->order, (size_t)(x->norder + 1) * sizeof *o);
      if (!o) {
        json_decref(v);
        return -1;
      }
      x->order = o;
      x->order[x->norder++] = -1;
    }
  }
  if (delta) {
    if (was) *delta += json_size(v) - json_size(was);
    else *delta += json_str_size(key, strlen(key)) + 1 + (nkeys(x) ? 1 : 0) + json_size(v);
  }
  return json_object_set_new(x->extra, key, v);
}

/* Calls fn for every key in the JSON object's order; stops at a nonzero return. */
typedef int (*key_fn)(void *ud, const char *key, json_t *v);
static int each_key(const cs_data *x, const case_def *d, key_fn fn, void *ud) {
  if (!x->order) {
    for (int i = 0; i < x->n; i++)
      if (fn(ud, d->fields[i].name, x->v[i])) return -1;
    const char *k;
    json_t *v;
    if (x->extra) json_object_foreach(x->extra, k, v) if (fn(ud, k, v)) return -1;
    return 0;
  }
  void *it = x->extra ? json_object_iter(x->extra) : NULL;
  for (int i = 0; i < x->norder; i++) {
    int s = x->order[i];
    if (s >= 0) {
      if (fn(ud, d->fields[s].name, x->v[s])) return -1;
    } else if (it) {
      if (fn(ud, json_object_iter_key(it), json_object_iter_value(it))) return -1;
      it = json_object_iter_next(x->extra, it);
    }
  }
  return 0;
}

static int add_key(void *ud, const char *key, json_t *v) {
  return json_object_set_nocheck(ud, key, v);
}

json_t *data_json(const cs_data *x, const case_def *d) {
  json_t *o = json_object();
  if (!o) return NULL;
  if (x && each_key(x, d, add_key, o) != 0) {
    json_decref(o);
    return NULL;
  }
  return o;
}

typedef struct sizer {
  int64_t len;
  size_t i;
} sizer;

static int size_key(void *ud, const char *key, json_t *v) {
  sizer *z = ud;
  z->len += (z->i++ ? 1 : 0) + json_str_size(key, strlen(key)) + 1 + json_size(v);
  return 0;
}

int64_t data_json_size(const cs_data *x, const case_def *d) {
  sizer z = {2, 0};
  if (x) each_key(x, d, size_key, &z);
  return z.len;
}

int data_from_object(const case_def *d, const json_t *obj, cs_data **out) {
  *out = NULL;
  cs_data *x = block(d->nfields);
  if (!x) return -1;
  for (int i = 0; i < d->nfields; i++) x->v[i] = NULL;
  size_t n = json_object_size(obj);
  int *order = malloc((n + (size_t)d->nfields + 1) * sizeof *order);
  int norder = 0, in_order = 1, seen_extra = 0, next = 0;
  const char *k;
  json_t *v;
  if (!order) goto fail;
  json_object_foreach((json_t *)obj, k, v) {
    int f = def_field_find(d, k);
    if (f >= 0) {
      if (x->v[f]) continue; /* cannot happen: a JSON object has each key once */
      x->v[f] = json_incref(v);
      order[norder++] = f;
      if (seen_extra || f != next) in_order = 0;
      next = f + 1;
    } else {
      if (!x->extra && !(x->extra = json_object())) goto fail;
      if (json_object_set_nocheck(x->extra, k, v) != 0) goto fail;
      order[norder++] = -1;
      seen_extra = 1;
    }
  }
  /* Fields the object does not have (added to the definition since) get their
   * defaults, after the keys it has. */
  for (int i = 0; i < d->nfields; i++) {
    if (x->v[i]) continue;
    x->v[i] = d->fields[i].def ? json_incref(d->fields[i].def) : json_null();
    order[norder++] = i;
    if (seen_extra || i != next) in_order = 0;
    next = i + 1;
  }
  if (in_order) {
    free(order);
  } else {
    x->order = order;
    x->norder = norder;
  }
  *out = x;
  return 0;
fail:
  free(order);
  for (int i = 0; i < d->nfields; i++)
    if (!x->v[i]) x->v[i] = json_null();
  data_release(x);
  return -1;
}
