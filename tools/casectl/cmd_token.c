/*
 * casectl token: the agencies' access tokens for casectl serve
 * (case_store_token_*): create (the secret is printed once), revoke, list.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "casectl.h"

enum { K_ROLE = 256, K_NAME, K_MAY };
static struct {
  const char *role, *name, *may;
} ko;

static int token_option(ctx *c, int code, const char *arg) {
  switch (code) {
  case K_ROLE: ko.role = arg; return EX_OK;
  case K_NAME: ko.name = arg; return EX_OK;
  case K_MAY: ko.may = arg; return EX_OK;
  default: return usage_error(c, "unexpected option");
  }
}

/* "read", "signal", "read,signal" -> CASE_TOKEN_* bits; -1 if unknown. */
static int parse_scopes(const char *s) {
  int bits = 0;
  while (s && *s) {
    size_t n = strcspn(s, ",");
    if (n == 4 && !strncmp(s, "read", 4)) bits |= CASE_TOKEN_READ;
    else if (n == 6 && !strncmp(s, "signal", 6)) bits |= CASE_TOKEN_SIGNAL;
    else return -1;
    s += n;
    if (*s) s++;
  }
  return bits ? bits : -1;
}

static int run_token(ctx *c, int argc, char **argv) {
  if (argc < 1) return usage_error(c, "token needs create, revoke or list");
  const char *sub = argv[0];
  if (!strcmp(sub, "create")) {
    if (argc != 1) return usage_error(c, "token create takes no arguments (--role, --name)");
    if (!ko.role || !ko.name) return usage_error(c, "token create needs --role and --name");
    int scopes = parse_scopes(ko.may ? ko.may : "signal");
    if (scopes < 0)
      return usage_error(c, "--may: '%s' (expected read, signal or read,signal)", ko.may);
    int ex = check_role(c, ko.role);
    if (ex != EX_OK) return ex;
    char *token = NULL;
    int rc = case_store_token_create(c->s, ko.name, ko.role, scopes, &token);
    if (rc != CASE_OK) return fail_engine(c, rc, ko.name);
    if (c->json) {
      print_json(json_pack("{s:s, s:s, s:s, s:s}", "name", ko.name, "role", ko.role, "may",
                           ko.may ? ko.may : "signal", "token", token));
    } else {
      printf("%s\n", token);
      if (!c->quiet)
        fprintf(stderr, "token '%s' (%s, may %s) created; it is shown only now: the store "
                        "keeps its hash\n", ko.name, ko.role, ko.may ? ko.may : "signal");
    }
    case_free(token);
    return EX_OK;
  }
  if (!strcmp(sub, "revoke")) {
    if (argc != 2) return usage_error(c, "token revoke takes one NAME");
    int rc = case_store_token_revoke(c->s, argv[1]);
    if (rc != CASE_OK) return fail_engine(c, rc, argv[1]);
    if (!c->quiet) fprintf(stderr, "token '%s' revoked\n", argv[1]);
    return EX_OK;
  }
  if (!strcmp(sub, "list")) {
    if (argc != 1) return usage_error(c, "token list takes no arguments");
    char *text = NULL;
    int rc = case_store_token_list(c->s, &text);
    if (rc != CASE_OK) return fail_engine(c, rc, "tokens");
    json_t *a = json_loads(text, JSON_PRESERVE_ORDER, NULL);
    case_free(text);
    if (!a) return fail(c, EX_STORE, "out of memory");
    if (c->json) {
      print_json(a);
      return EX_OK;
    }
    size_t i;
    json_t *v;
    printf("%-4s %-24s %-10s %-12s %-17s %s\n", "id", "name", "role", "may", "created", "revoked");
    json_array_foreach(a, i, v) {
      char may[32] = "", cr[32], rv[32] = "";
      size_t k;
      json_t *sc;
      json_array_foreach(json_object_get(v, "scopes"), k, sc) {
        if (*may) strcat(may, ",");
        strncat(may, json_string_value(sc), sizeof may - strlen(may) - 1);
      }
      format_local(json_integer_value(json_object_get(v, "created")), cr, sizeof cr);
      if (json_object_get(v, "revoked"))
        format_local(json_integer_value(json_object_get(v, "revoked")), rv, sizeof rv);
      printf("%-4lld %-24s %-10s %-12s %-17s %s\n",
             (long long)json_integer_value(json_object_get(v, "id")),
             json_string_value(json_object_get(v, "name")),
             json_string_value(json_object_get(v, "role")), may, cr, rv);
    }
    json_decref(a);
    return EX_OK;
  }
  return usage_error(c, "token: unknown subcommand '%s' (expected create, revoke or list)", sub);
}

static const struct option token_options[] = {
    {"role", required_argument, NULL, K_ROLE},
    {"name", required_argument, NULL, K_NAME},
    {"may", required_argument, NULL, K_MAY},
    {NULL, 0, NULL, 0},
};

const command cmd_token = {
    "token", "access tokens for casectl serve: create, revoke, list",
    "usage: casectl token create --role ROLE --name NAME [--may read|signal|read,signal]\n"
    "       casectl token revoke NAME\n"
    "       casectl token list\n"
    "  Access tokens let an agency's people and tools use casectl serve.  create\n"
    "  prints the new token once (the store keeps only its SHA-256); NAME is who\n"
    "  holds it and is journalled as the actor of its signals; ROLE the role they are\n"
    "  fired as.  --may: read (the overview and its JSON), signal (submit signals;\n"
    "  the default) or both.  revoke refuses the token from then on.\n",
    token_options, token_option, run_token, 1};
