/*
 * C test client for the jwtguard C ABI. Exercises every exported function, including NULL and
 * bad-length arguments, against a JWKS served over loopback by the Rust test harness
 * (tests/c_api.rs), which passes:
 *
 *   test_client ISSUER AUDIENCE JWKS_URL JWKS_FILE VALID_TOKEN EXPIRED_TOKEN NO_SCOPE_TOKEN
 *               ISSUER_B JWKS_FILE_B TOKEN_B FORGED_FOR_A STRANGER
 *
 * (TOKEN_B: issuer B's token, signed by B's key; FORGED_FOR_A: B's key signing a token that
 * claims the first issuer; STRANGER: a token whose iss no issuer owns.)
 *
 * Run under valgrind by the harness; any failed check, leak or invalid access fails the build.
 */
#include "jwtguard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;

/* Log messages received through jwt_set_log_callback. */
struct log_sink {
  int messages;
  int errors;
};

static void
on_log(void *userdata, uint32_t level, const char *message, size_t message_len)
{
  struct log_sink *sink = userdata;
  sink->messages++;
  if (level == JWT_LOG_LEVEL_ERROR)
    sink->errors++;
  /* The message is NUL-terminated as well as counted. */
  if (message[message_len] != '\0' || strlen(message) != message_len)
    sink->errors += 1000;
}

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                                \
    }                                                                            \
  } while (0)

#define CHECK_STATUS(expr, want)                                                     \
  do {                                                                               \
    jwt_status got_ = (expr);                                                        \
    if (got_ != (jwt_status)(want)) {                                                \
      fprintf(stderr, "%s:%d: %s returned %u (%s), want %u (%s)\n", __FILE__,        \
              __LINE__, #expr, (unsigned)got_, jwt_status_reason(got_),              \
              (unsigned)(want), jwt_status_reason(want));                            \
      failures++;                                                                    \
    }                                                                                \
  } while (0)

/* Length of a NUL-terminated string, for the (pointer, length) convention. */
#define S(str) (str), strlen(str)

static void
test_status_functions(void)
{
  CHECK(strcmp(jwt_version(), JWTGUARD_VERSION) == 0);
  CHECK(strcmp(jwt_status_reason(JWT_STATUS_TOKEN_EXPIRED), "token_expired") == 0);
  CHECK(strcmp(jwt_status_code(JWT_STATUS_TOKEN_EXPIRED), "token_expired") == 0);
  CHECK(strcmp(jwt_status_rfc6750_error(JWT_STATUS_TOKEN_EXPIRED), "invalid_token") == 0);
  CHECK(strcmp(jwt_status_rfc6750_error(JWT_STATUS_TOKEN_MISSING), "") == 0);
  CHECK(strcmp(jwt_status_code(JWT_STATUS_TOKEN_MISSING), "authorization_header_missing") == 0);
  CHECK(strcmp(jwt_status_code(JWT_STATUS_INSUFFICIENT_SCOPE), "Unauthorized") == 0);
  CHECK(strlen(jwt_status_description(JWT_STATUS_SIGNATURE_INVALID)) > 0);
  CHECK(jwt_status_http_status(JWT_STATUS_OK) == 200);
  CHECK(jwt_status_http_status(JWT_STATUS_SIGNATURE_INVALID) == 401);
  CHECK(jwt_status_http_status(JWT_STATUS_INSUFFICIENT_SCOPE) == 403);
  CHECK(jwt_status_http_status(JWT_STATUS_KEYS_UNAVAILABLE) == 503);
  /* Numbers that are not statuses still get answers. */
  CHECK(strcmp(jwt_status_reason(123456), "unknown") == 0);
  CHECK(jwt_status_http_status(123456) == 500);
  CHECK(jwt_status_description(123456) != NULL);
  CHECK(jwt_status_code(123456) != NULL);
  CHECK(jwt_status_rfc6750_error(123456) != NULL);
}

static void
test_config_misuse(void)
{
  jwt_config *config = NULL;
  jwt_verifier *verifier = NULL;
  const char bad_utf8[] = { (char)0xff, (char)0xfe, 0 };

  /* NULL handles. */
  CHECK_STATUS(jwt_config_add_issuer(NULL, S("x")), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_config_add_audience(NULL, S("x")), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_config_add_algorithm(NULL, S("RS256")), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_config_set_leeway(NULL, 5), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_config_add_required_claim(NULL, S("sub")), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_config_set_strict(NULL, true), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_config_set_max_token_size(NULL, 100), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_config_set_jwks_uri(NULL, S("https://x/")), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_config_set_jwks_json(NULL, S("{}")), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_config_set_jwks_file(NULL, S("/x")), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_config_set_allow_insecure_http(NULL, true), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_config_set_cache_ttl(NULL, 1), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_config_set_refetch_cooldown(NULL, 1), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_config_set_refresh_ahead(NULL, 1), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_config_set_max_stale(NULL, 1), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_config_set_backoff(NULL, 1, 2), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_config_set_fetch_timeouts(NULL, 1, 2), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_config_set_max_jwks_size(NULL, 1), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_config_set_non_blocking(NULL, true), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_config_set_snapshot(NULL, S("/tmp/x")), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_config_set_ca_file(NULL, S("/tmp/x")), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_config_set_ttl_bounds(NULL, 1, 2), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_config_set_token_cache(NULL, 1), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_verifier_refresh(NULL), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_verifier_prefetch(NULL), JWT_STATUS_NULL_ARGUMENT);
  CHECK(jwt_verifier_count(NULL, JWT_COUNTER_VERIFY_OK) == 0);
  CHECK(jwt_verifier_count_status(NULL, JWT_STATUS_OK) == 0);
  CHECK_STATUS(jwt_set_log_callback(on_log, NULL, 0), JWT_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(jwt_set_log_callback(on_log, NULL, 5), JWT_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(jwt_verifier_new(NULL, &verifier), JWT_STATUS_NULL_ARGUMENT);
  CHECK(verifier == NULL);
  jwt_config_free(NULL);
  jwt_verifier_free(NULL);
  jwt_claims_free(NULL);

  config = jwt_config_new();
  CHECK(config != NULL);
  if (config == NULL)
    goto cleanup;

  /* NULL strings, empty strings, invalid UTF-8, unknown names. */
  CHECK_STATUS(jwt_config_add_issuer(config, NULL, 0), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_config_add_issuer(config, NULL, 5), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_config_add_issuer(config, "", 0), JWT_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(jwt_config_add_audience(config, bad_utf8, 2), JWT_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(jwt_config_add_algorithm(config, S("none")), JWT_STATUS_INVALID_ARGUMENT);
  /* A negative entry count arrives as a huge one: refused. */
  CHECK_STATUS(jwt_config_set_token_cache(config, (uint64_t)-1), JWT_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(jwt_config_add_algorithm(config, S("HS256")), JWT_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(jwt_config_add_algorithm(config, S("rs256")), JWT_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(jwt_config_set_max_token_size(config, 0), JWT_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(jwt_config_set_jwks_file(config, S("/nonexistent/jwks.json")),
               JWT_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(jwt_config_set_backoff(config, 0, 10), JWT_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(jwt_config_set_backoff(config, 10, 5), JWT_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(jwt_config_set_fetch_timeouts(config, 0, 10), JWT_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(jwt_config_set_max_jwks_size(config, 0), JWT_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(jwt_config_set_snapshot(config, "", 0), JWT_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(jwt_config_set_ca_file(config, "", 0), JWT_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(jwt_config_set_ttl_bounds(config, 10, 5), JWT_STATUS_INVALID_ARGUMENT);
  /* Negative numbers converted to uint64_t, and absurd values, are refused (review item 7). */
  CHECK_STATUS(jwt_config_set_leeway(config, (uint64_t)-1), JWT_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(jwt_config_set_leeway(config, 3601), JWT_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(jwt_config_set_leeway(config, 3600), JWT_STATUS_OK);
  CHECK_STATUS(jwt_config_set_refetch_cooldown(config, (uint64_t)-1), JWT_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(jwt_config_set_max_stale(config, (uint64_t)-1), JWT_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(jwt_config_set_cache_ttl(config, (uint64_t)-1), JWT_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(jwt_config_set_refresh_ahead(config, (uint64_t)-1), JWT_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(jwt_config_set_backoff(config, 1, (uint64_t)-1), JWT_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(jwt_config_set_fetch_timeouts(config, 1000, (uint64_t)-1), JWT_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(jwt_config_set_ttl_bounds(config, 60, (uint64_t)-1), JWT_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(jwt_config_set_max_token_size(config, (size_t)-1), JWT_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(jwt_config_set_max_jwks_size(config, (size_t)-1), JWT_STATUS_INVALID_ARGUMENT);

  /* Incomplete configurations. */
  CHECK_STATUS(jwt_verifier_new(config, NULL), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_verifier_new(config, &verifier), JWT_STATUS_CONFIG_INVALID);
  CHECK(verifier == NULL);
  CHECK_STATUS(jwt_config_add_issuer(config, S("https://tenant.example/")), JWT_STATUS_OK);
  CHECK_STATUS(jwt_config_add_audience(config, S("api")), JWT_STATUS_OK);
  CHECK_STATUS(jwt_config_set_jwks_uri(config, S("http://tenant.example/jwks")), JWT_STATUS_OK);
  CHECK_STATUS(jwt_verifier_new(config, &verifier), JWT_STATUS_CONFIG_INVALID);
  CHECK_STATUS(jwt_config_set_jwks_uri(config, S("https://tenant.example/jwks")), JWT_STATUS_OK);
  CHECK_STATUS(jwt_verifier_new(config, &verifier), JWT_STATUS_OK);
  jwt_verifier_free(verifier);
  verifier = NULL;
  CHECK_STATUS(jwt_config_set_ca_file(config, S("/nonexistent/ca.pem")), JWT_STATUS_OK);
  CHECK_STATUS(jwt_verifier_new(config, &verifier), JWT_STATUS_CONFIG_INVALID);
  jwt_config_free(config);
  config = jwt_config_new();
  if (config == NULL)
    goto cleanup;
  CHECK_STATUS(jwt_config_add_issuer(config, S("https://tenant.example/")), JWT_STATUS_OK);
  CHECK_STATUS(jwt_config_add_audience(config, S("api")), JWT_STATUS_OK);
  CHECK_STATUS(jwt_config_set_jwks_json(config, S("{\"keys\":[]}")), JWT_STATUS_OK);
  CHECK_STATUS(jwt_verifier_new(config, &verifier), JWT_STATUS_JWKS_INVALID);
  CHECK_STATUS(jwt_config_set_jwks_json(config, S("not json")), JWT_STATUS_OK);
  CHECK_STATUS(jwt_verifier_new(config, &verifier), JWT_STATUS_JWKS_INVALID);
  CHECK(verifier == NULL);

cleanup:
  jwt_verifier_free(verifier);
  jwt_config_free(config);
}

static jwt_verifier *
make_verifier(const char *issuer, const char *audience, const char *jwks_url,
              const char *jwks_file)
{
  jwt_config *config = jwt_config_new();
  jwt_verifier *verifier = NULL;

  if (config == NULL)
    return NULL;
  CHECK_STATUS(jwt_config_add_issuer(config, S(issuer)), JWT_STATUS_OK);
  CHECK_STATUS(jwt_config_add_audience(config, S(audience)), JWT_STATUS_OK);
  CHECK_STATUS(jwt_config_add_algorithm(config, S("RS256")), JWT_STATUS_OK);
  CHECK_STATUS(jwt_config_add_algorithm(config, S("ES256")), JWT_STATUS_OK);
  CHECK_STATUS(jwt_config_set_leeway(config, 30), JWT_STATUS_OK);
  CHECK_STATUS(jwt_config_add_required_claim(config, S("sub")), JWT_STATUS_OK);
  CHECK_STATUS(jwt_config_set_strict(config, false), JWT_STATUS_OK);
  CHECK_STATUS(jwt_config_set_max_token_size(config, 8192), JWT_STATUS_OK);
  CHECK_STATUS(jwt_config_set_allow_insecure_http(config, false), JWT_STATUS_OK);
  CHECK_STATUS(jwt_config_set_cache_ttl(config, 300), JWT_STATUS_OK);
  CHECK_STATUS(jwt_config_set_refetch_cooldown(config, 30), JWT_STATUS_OK);
  CHECK_STATUS(jwt_config_set_refresh_ahead(config, 30), JWT_STATUS_OK);
  CHECK_STATUS(jwt_config_set_max_stale(config, 3600), JWT_STATUS_OK);
  CHECK_STATUS(jwt_config_set_backoff(config, 500, 60000), JWT_STATUS_OK);
  CHECK_STATUS(jwt_config_set_fetch_timeouts(config, 1000, 3000), JWT_STATUS_OK);
  CHECK_STATUS(jwt_config_set_max_jwks_size(config, 65536), JWT_STATUS_OK);
  CHECK_STATUS(jwt_config_set_non_blocking(config, false), JWT_STATUS_OK);
  CHECK_STATUS(jwt_config_set_ttl_bounds(config, 60, 3600), JWT_STATUS_OK);
  if (jwks_file != NULL)
    CHECK_STATUS(jwt_config_set_jwks_file(config, S(jwks_file)), JWT_STATUS_OK);
  else
    CHECK_STATUS(jwt_config_set_jwks_uri(config, S(jwks_url)), JWT_STATUS_OK);
  CHECK_STATUS(jwt_verifier_new(config, &verifier), JWT_STATUS_OK);
  jwt_config_free(config);
  return verifier;
}

static void
test_verify(jwt_verifier *verifier, const char *valid, const char *expired,
            const char *no_scope)
{
  jwt_claims *claims = NULL;
  jwt_claims *other = NULL;
  const char *text = NULL;
  size_t text_len = 0;
  double number = 0;
  uint64_t hits;
  char *header = NULL;
  char *padded = NULL;
  size_t valid_len = strlen(valid);

  /* A real RS256 token against the JWKS over loopback. */
  CHECK_STATUS(jwt_verify(verifier, valid, valid_len, &claims), JWT_STATUS_OK);
  CHECK(claims != NULL);
  if (claims == NULL)
    goto cleanup;

  /* The same token again: answered by the token cache, with claims of its own handle. */
  {
    uint64_t hits = jwt_verifier_count(verifier, JWT_COUNTER_TOKEN_CACHE_HIT);
    jwt_claims *again = NULL;
    CHECK_STATUS(jwt_verify(verifier, valid, valid_len, &again), JWT_STATUS_OK);
    CHECK(jwt_verifier_count(verifier, JWT_COUNTER_TOKEN_CACHE_HIT) == hits + 1);
    CHECK(again != NULL && again != claims && jwt_has_scope(again, S("read:messages")));
    jwt_claims_free(again);
    CHECK(jwt_has_scope(claims, S("read:messages")));
  }

  CHECK(jwt_has_scope(claims, S("read:messages")));
  CHECK(!jwt_has_scope(claims, S("read:message")));
  CHECK(!jwt_has_scope(claims, S("read:messages2")));
  CHECK(!jwt_has_scope(claims, "read:messages", 0));
  CHECK(!jwt_has_scope(NULL, S("read:messages")));
  CHECK(!jwt_has_scope(claims, NULL, 4));
  CHECK(jwt_has_scope_json(S("{\"scp\":[\"read:messages\"]}"), S("read:messages")));
  CHECK(!jwt_has_scope_json(S("{\"scope\":\"read:messages2\"}"), S("read:messages")));
  CHECK(!jwt_has_scope_json(S("[\"read:messages\"]"), S("read:messages")));
  CHECK(!jwt_has_scope_json(S("not json"), S("read:messages")));
  CHECK(!jwt_has_scope_json(NULL, 3, S("read:messages")));

  CHECK_STATUS(jwt_claims_get_string(claims, S("sub"), &text, &text_len), JWT_STATUS_OK);
  CHECK(text_len == strlen("client-1@clients") && memcmp(text, "client-1@clients", text_len) == 0);
  CHECK_STATUS(jwt_claims_get_string(claims, S("exp"), &text, &text_len),
               JWT_STATUS_CLAIM_WRONG_TYPE);
  CHECK_STATUS(jwt_claims_get_string(claims, S("nope"), &text, &text_len),
               JWT_STATUS_CLAIM_NOT_FOUND);
  CHECK_STATUS(jwt_claims_get_string(claims, S("sub"), NULL, &text_len), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_claims_get_string(claims, S("sub"), &text, NULL), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_claims_get_string(claims, NULL, 3, &text, &text_len), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_claims_get_string(NULL, S("sub"), &text, &text_len), JWT_STATUS_NULL_ARGUMENT);

  CHECK_STATUS(jwt_claims_get_number(claims, S("exp"), &number), JWT_STATUS_OK);
  CHECK(number > 1.7e9);
  CHECK_STATUS(jwt_claims_get_number(claims, S("sub"), &number), JWT_STATUS_CLAIM_WRONG_TYPE);
  CHECK_STATUS(jwt_claims_get_number(claims, S("nope"), &number), JWT_STATUS_CLAIM_NOT_FOUND);
  CHECK_STATUS(jwt_claims_get_number(claims, S("exp"), NULL), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_claims_get_number(NULL, S("exp"), &number), JWT_STATUS_NULL_ARGUMENT);

  {
    char buf[64];
    size_t needed = 0;
    CHECK_STATUS(jwt_claims_get_text(claims, S("roles"), buf, sizeof buf, &needed), JWT_STATUS_OK);
    CHECK(strcmp(buf, "admin ops") == 0 && needed == 9);
    CHECK_STATUS(jwt_claims_get_text(claims, S("roles"), NULL, 0, &needed), JWT_STATUS_INVALID_ARGUMENT);
    CHECK(needed == 9);
    CHECK_STATUS(jwt_claims_get_text(claims, S("roles"), buf, 9, &needed), JWT_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(jwt_claims_get_text(claims, S("exp"), buf, sizeof buf, &needed), JWT_STATUS_OK);
    CHECK(needed == 10 && strlen(buf) == 10);
    CHECK_STATUS(jwt_claims_get_text(claims, S("sub"), buf, sizeof buf, &needed), JWT_STATUS_OK);
    CHECK(strcmp(buf, "client-1@clients") == 0);
    CHECK_STATUS(jwt_claims_get_text(claims, S("nope"), buf, sizeof buf, &needed), JWT_STATUS_CLAIM_NOT_FOUND);
    CHECK_STATUS(jwt_claims_get_text(claims, S("sub"), buf, sizeof buf, NULL), JWT_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(jwt_claims_get_text(NULL, S("sub"), buf, sizeof buf, &needed), JWT_STATUS_NULL_ARGUMENT);
    /* *needed_out is written on every path (review item 12). */
    needed = 77;
    CHECK_STATUS(jwt_claims_get_text(claims, "\xff", 1, buf, sizeof buf, &needed), JWT_STATUS_INVALID_ARGUMENT);
    CHECK(needed == 0);
    needed = 77;
    CHECK_STATUS(jwt_claims_get_text(claims, S("nope"), NULL, 0, &needed), JWT_STATUS_CLAIM_NOT_FOUND);
    CHECK(needed == 0);
    needed = 77;
    CHECK_STATUS(jwt_claims_get_text(NULL, S("sub"), NULL, 0, &needed), JWT_STATUS_NULL_ARGUMENT);
    CHECK(needed == 0);
    /* The raw text keeps the claim's own characters; the header text escapes them (item 3). */
    CHECK_STATUS(jwt_claims_get_text(claims, S("name"), buf, sizeof buf, &needed), JWT_STATUS_OK);
    CHECK(needed == 24 && buf[1] == '\r' && buf[2] == '\n');
    CHECK_STATUS(jwt_claims_get_header_text(claims, S("name"), buf, sizeof buf, &needed), JWT_STATUS_OK);
    CHECK(strcmp(buf, "x\\r\\nSet-Cookie: pwned=1\\u0000\\\\") == 0);
    CHECK(needed == strlen(buf));
    CHECK(strpbrk(buf, "\r\n") == NULL);
    CHECK_STATUS(jwt_claims_get_header_text(claims, S("tags"), buf, sizeof buf, &needed), JWT_STATUS_OK);
    CHECK(strcmp(buf, "a\\nb c") == 0);
    CHECK_STATUS(jwt_claims_get_header_text(claims, S("sub"), buf, sizeof buf, &needed), JWT_STATUS_OK);
    CHECK(strcmp(buf, "client-1@clients") == 0);
    CHECK_STATUS(jwt_claims_get_header_text(claims, S("name"), buf, 4, &needed), JWT_STATUS_INVALID_ARGUMENT);
    CHECK(needed == 32);
    CHECK_STATUS(jwt_claims_get_header_text(claims, S("nope"), buf, sizeof buf, &needed), JWT_STATUS_CLAIM_NOT_FOUND);
    CHECK_STATUS(jwt_claims_get_header_text(NULL, S("sub"), buf, sizeof buf, &needed), JWT_STATUS_NULL_ARGUMENT);
  }

  CHECK_STATUS(jwt_claims_json(claims, &text, &text_len), JWT_STATUS_OK);
  CHECK(text_len > 2 && text[0] == '{' && text[text_len - 1] == '}');
  CHECK_STATUS(jwt_claims_json(claims, NULL, &text_len), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_claims_json(NULL, &text, &text_len), JWT_STATUS_NULL_ARGUMENT);

  /* Refusals leave *claims_out NULL. */
  other = (jwt_claims *)&number; /* any non-NULL value: must be overwritten */
  CHECK_STATUS(jwt_verify(verifier, S(expired), &other), JWT_STATUS_TOKEN_EXPIRED);
  CHECK(other == NULL);
  CHECK_STATUS(jwt_verify(verifier, S(no_scope), &other), JWT_STATUS_OK);
  CHECK(other != NULL && !jwt_has_scope(other, S("read:messages")));
  jwt_claims_free(other);
  other = NULL;
  CHECK_STATUS(jwt_verify(verifier, S("not.a.token"), &other), JWT_STATUS_TOKEN_MALFORMED);
  CHECK_STATUS(jwt_verify(verifier, "", 0, &other), JWT_STATUS_TOKEN_MALFORMED);
  CHECK(other == NULL);

  /* NULL and bad lengths. */
  CHECK_STATUS(jwt_verify(NULL, valid, valid_len, &other), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_verify(verifier, NULL, valid_len, &other), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_verify(verifier, valid, valid_len, NULL), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_verify(verifier, valid, valid_len - 1, &other), JWT_STATUS_TOKEN_MALFORMED);
  CHECK_STATUS(jwt_verify(verifier, valid, (size_t)-1, &other), JWT_STATUS_TOKEN_TOO_LARGE);
  CHECK_STATUS(jwt_verify(verifier, valid, 8193, &other), JWT_STATUS_TOKEN_TOO_LARGE);
  /* A length past the token (into more data of the same buffer). */
  padded = malloc(valid_len + 8);
  if (padded != NULL) {
    memcpy(padded, valid, valid_len);
    memcpy(padded + valid_len, "garbage", 8);
    CHECK_STATUS(jwt_verify(verifier, padded, valid_len + 7, &other), JWT_STATUS_TOKEN_MALFORMED);
    padded[valid_len] = (char)0xff;
    CHECK_STATUS(jwt_verify(verifier, padded, valid_len + 1, &other), JWT_STATUS_TOKEN_MALFORMED);
    padded[valid_len] = '\0';
    CHECK_STATUS(jwt_verify(verifier, padded, valid_len + 1, &other), JWT_STATUS_TOKEN_MALFORMED);
  }
  CHECK(other == NULL);

  /* Authorization header forms. */
  header = malloc(valid_len + 16);
  if (header != NULL) {
    snprintf(header, valid_len + 16, "Bearer %s", valid);
    CHECK_STATUS(jwt_verify_authorization(verifier, S(header), &other), JWT_STATUS_OK);
    jwt_claims_free(other);
    other = NULL;
    snprintf(header, valid_len + 16, "Basic %s", valid);
    CHECK_STATUS(jwt_verify_authorization(verifier, S(header), &other),
                 JWT_STATUS_AUTHORIZATION_SCHEME_UNSUPPORTED);
    CHECK(jwt_status_http_status(JWT_STATUS_AUTHORIZATION_SCHEME_UNSUPPORTED) == 401);
  }
  /* The authority check hosts run on Host before building a proof URL (review 3, item 4). */
  CHECK(jwt_is_authority(S("api.example:8443")));
  CHECK(jwt_is_authority(S("[::1]:80")));
  CHECK(!jwt_is_authority(S("api.example/x")));
  CHECK(!jwt_is_authority(S("api.example?")));
  CHECK(!jwt_is_authority(S("a@b")));
  CHECK(!jwt_is_authority(S("a:99999")));
  CHECK(!jwt_is_authority(S("")));
  CHECK(!jwt_is_authority(NULL, 3));
  CHECK_STATUS(jwt_verify_authorization(verifier, NULL, 0, &other), JWT_STATUS_TOKEN_MISSING);
  CHECK_STATUS(jwt_verify_authorization(verifier, S(""), &other), JWT_STATUS_TOKEN_MISSING);
  /* NULL with a length is a NULL argument (review item 13); bytes that are not UTF-8 a
   * malformed header. */
  CHECK_STATUS(jwt_verify_authorization(verifier, NULL, 7, &other), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_verify_authorization(verifier, "Bearer \xff", 8, &other),
               JWT_STATUS_AUTHORIZATION_HEADER_MALFORMED);
  CHECK_STATUS(jwt_verify_authorization(NULL, S("Bearer x"), &other), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_verify_authorization(verifier, S("Bearer x"), NULL), JWT_STATUS_NULL_ARGUMENT);
  CHECK(other == NULL);

  /* The verdict alone (answered by the token cache too). */
  hits = jwt_verifier_count(verifier, JWT_COUNTER_TOKEN_CACHE_HIT);
  CHECK_STATUS(jwt_verify_status(verifier, valid, valid_len), JWT_STATUS_OK);
  CHECK(jwt_verifier_count(verifier, JWT_COUNTER_TOKEN_CACHE_HIT) == hits + 1);
  CHECK_STATUS(jwt_verify_status(verifier, S(no_scope)), JWT_STATUS_OK);
  CHECK_STATUS(jwt_verify_status(verifier, valid, valid_len - 1), JWT_STATUS_TOKEN_MALFORMED);
  CHECK_STATUS(jwt_verify_status(verifier, valid, (size_t)-1), JWT_STATUS_TOKEN_TOO_LARGE);
  CHECK_STATUS(jwt_verify_status(verifier, NULL, valid_len), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_verify_status(NULL, valid, valid_len), JWT_STATUS_NULL_ARGUMENT);
  if (header != NULL) {
    snprintf(header, valid_len + 16, "Bearer %s", valid);
    CHECK_STATUS(jwt_verify_authorization_status(verifier, S(header)), JWT_STATUS_OK);
    header[0] = 'X';
    CHECK_STATUS(jwt_verify_authorization_status(verifier, S(header)),
                 JWT_STATUS_AUTHORIZATION_SCHEME_UNSUPPORTED);
    header[0] = 'B';
    header[6] = '\x01';
    CHECK_STATUS(jwt_verify_authorization_status(verifier, S(header)),
                 JWT_STATUS_AUTHORIZATION_HEADER_MALFORMED);
  }
  CHECK_STATUS(jwt_verify_authorization_status(verifier, NULL, 0), JWT_STATUS_TOKEN_MISSING);
  CHECK_STATUS(jwt_verify_authorization_status(verifier, NULL, 7), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_verify_authorization_status(NULL, S("Bearer x")), JWT_STATUS_NULL_ARGUMENT);

  /* Counters: this verifier's outcomes. */
  CHECK(jwt_verifier_count(verifier, JWT_COUNTER_VERIFY_OK) >= 3);
  CHECK(jwt_verifier_count(verifier, JWT_COUNTER_VERIFY_FAILED) >= 5);
  CHECK(jwt_verifier_count_status(verifier, JWT_STATUS_TOKEN_EXPIRED) == 1);
  CHECK(jwt_verifier_count_status(verifier, JWT_STATUS_TOKEN_MISSING) == 3);
  CHECK(jwt_verifier_count_status(verifier, 123456) == 0);
  CHECK(jwt_verifier_count(verifier, 99) == 0);
  CHECK_STATUS(jwt_verifier_refresh(verifier), JWT_STATUS_OK);
  CHECK_STATUS(jwt_verifier_prefetch(verifier), JWT_STATUS_OK);

cleanup:
  free(header);
  free(padded);
  jwt_claims_free(claims);
}

/* Two issuers in one verifier (jwt_config_add_issuer_config): each token is verified against
 * its own issuer's keys only. */
static void
test_two_issuers(char **argv)
{
  jwt_config *a = jwt_config_new();
  jwt_config *b = jwt_config_new();
  jwt_verifier *verifier = NULL;
  jwt_claims *claims = NULL;
  const char *text = NULL;
  size_t text_len = 0;

  CHECK(a != NULL && b != NULL);
  if (a == NULL || b == NULL)
    goto done;
  CHECK_STATUS(jwt_config_add_issuer(a, S(argv[1])), JWT_STATUS_OK);
  CHECK_STATUS(jwt_config_add_audience(a, S(argv[2])), JWT_STATUS_OK);
  CHECK_STATUS(jwt_config_set_jwks_file(a, S(argv[4])), JWT_STATUS_OK);
  CHECK_STATUS(jwt_config_add_issuer(b, S(argv[8])), JWT_STATUS_OK);
  CHECK_STATUS(jwt_config_add_audience(b, S(argv[2])), JWT_STATUS_OK);
  CHECK_STATUS(jwt_config_set_jwks_file(b, S(argv[9])), JWT_STATUS_OK);

  CHECK_STATUS(jwt_config_add_issuer_config(a, a), JWT_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(jwt_config_add_issuer_config(NULL, b), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_config_add_issuer_config(a, NULL), JWT_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(jwt_config_add_issuer_config(a, b), JWT_STATUS_OK);
  /* The added issuer is a copy: b may go now. */
  jwt_config_free(b);
  b = NULL;
  CHECK_STATUS(jwt_verifier_new(a, &verifier), JWT_STATUS_OK);
  if (verifier == NULL)
    goto done;

  CHECK_STATUS(jwt_verify(verifier, S(argv[5]), &claims), JWT_STATUS_OK);
  CHECK_STATUS(jwt_claims_get_string(claims, S("iss"), &text, &text_len), JWT_STATUS_OK);
  CHECK(text_len == strlen(argv[1]) && memcmp(text, argv[1], text_len) == 0);
  jwt_claims_free(claims);
  claims = NULL;
  CHECK_STATUS(jwt_verify(verifier, S(argv[10]), &claims), JWT_STATUS_OK);
  CHECK_STATUS(jwt_claims_get_string(claims, S("iss"), &text, &text_len), JWT_STATUS_OK);
  CHECK(text_len == strlen(argv[8]) && memcmp(text, argv[8], text_len) == 0);
  jwt_claims_free(claims);
  claims = NULL;
  CHECK_STATUS(jwt_verify_status(verifier, S(argv[11])), JWT_STATUS_KEY_NOT_FOUND);
  CHECK_STATUS(jwt_verify_status(verifier, S(argv[12])), JWT_STATUS_ISSUER_INVALID);

  /* Two issuers listing the same iss: the verifier is refused. */
  jwt_verifier_free(verifier);
  verifier = NULL;
  b = jwt_config_new();
  CHECK_STATUS(jwt_config_add_issuer(b, S(argv[1])), JWT_STATUS_OK);
  CHECK_STATUS(jwt_config_add_audience(b, S(argv[2])), JWT_STATUS_OK);
  CHECK_STATUS(jwt_config_set_jwks_file(b, S(argv[9])), JWT_STATUS_OK);
  CHECK_STATUS(jwt_config_add_issuer_config(a, b), JWT_STATUS_OK);
  CHECK_STATUS(jwt_verifier_new(a, &verifier), JWT_STATUS_CONFIG_INVALID);
  CHECK(verifier == NULL);

done:
  jwt_verifier_free(verifier);
  jwt_config_free(a);
  jwt_config_free(b);
}

int
main(int argc, char **argv)
{
  jwt_verifier *remote = NULL;
  jwt_verifier *local = NULL;
  struct log_sink sink = { 0, 0 };

  if (argc != 13) {
    fprintf(stderr,
            "usage: %s ISSUER AUDIENCE JWKS_URL JWKS_FILE VALID EXPIRED NO_SCOPE "
            "ISSUER_B JWKS_FILE_B TOKEN_B FORGED_FOR_A STRANGER\n", argv[0]);
    return 2;
  }
  test_status_functions();
  test_config_misuse();
  CHECK_STATUS(jwt_set_log_callback(on_log, &sink, JWT_LOG_LEVEL_DEBUG), JWT_STATUS_OK);

  remote = make_verifier(argv[1], argv[2], argv[3], NULL);
  CHECK(remote != NULL);
  if (remote == NULL)
    goto cleanup;
  /* Live handles are counted: this verifier, and no config (make_verifier freed it). */
  CHECK(jwt_live_handles(1) == 1 && jwt_live_handles(0) == 0);
  test_verify(remote, argv[5], argv[6], argv[7]);
  /* JWKS counters: the first fetch and the one jwt_verifier_refresh made. */
  CHECK(jwt_verifier_count(remote, JWT_COUNTER_FETCH_OK) == 2);
  CHECK(jwt_verifier_count(remote, JWT_COUNTER_FETCH_FAILED) == 0);
  CHECK(jwt_verifier_count(remote, JWT_COUNTER_CACHE_HIT) >= 3);
  CHECK(sink.messages >= 1 && sink.errors == 0);
  CHECK_STATUS(jwt_set_log_callback(NULL, NULL, JWT_LOG_LEVEL_ERROR), JWT_STATUS_OK);

  local = make_verifier(argv[1], argv[2], NULL, argv[4]);
  CHECK(local != NULL);
  if (local == NULL)
    goto cleanup;
  test_verify(local, argv[5], argv[6], argv[7]);
  test_two_issuers(argv);

cleanup:
  jwt_verifier_free(remote);
  jwt_verifier_free(local);
  /* Everything made is freed: no handle of any kind is left (and an unknown kind is 0). */
  CHECK(jwt_live_handles(0) == 0 && jwt_live_handles(1) == 0 && jwt_live_handles(2) == 0);
  CHECK(jwt_live_handles(3) == 0);
  if (failures > 0) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("C API checks passed\n");
  return 0;
}
