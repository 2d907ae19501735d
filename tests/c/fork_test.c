/*
 * fork() after the cache is warm (as nginx forks its workers): the child verifies and
 * refreshes on its own, the parent is unaffected. Run by tests/c_api.rs against a real
 * `jwtguard dev-issuer`:
 *
 *   fork_test ISSUER AUDIENCE TOKEN
 *   fork_test --during-discovery ISSUER AUDIENCE TOKEN
 *
 * The verifier is given the issuer only, so discovery is exercised too. The second form forks
 * while a (slow) discovery runs in the parent's background thread, in non-blocking mode: the
 * child must discover on its own instead of waiting forever for the parent's thread.
 */
#include "jwtguard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define S(str) (str), strlen(str)

static int
check(int ok, const char *what)
{
  if (!ok)
    fprintf(stderr, "[%d] check failed: %s\n", (int)getpid(), what);
  return ok ? 0 : 1;
}

static int
verify_ok(const jwt_verifier *verifier, const char *token)
{
  jwt_claims *claims = NULL;
  jwt_status status = jwt_verify(verifier, S(token), &claims);
  int ok = status == JWT_STATUS_OK && jwt_has_scope(claims, S("read:messages"));
  if (!ok)
    fprintf(stderr, "[%d] verify: %s\n", (int)getpid(), jwt_status_reason(status));
  jwt_claims_free(claims);
  return ok;
}

/* Verify until it succeeds (non-blocking mode answers keys_unavailable meanwhile). */
static int
verify_eventually(const jwt_verifier *verifier, const char *token, int tries)
{
  int i;
  for (i = 0; i < tries; i++) {
    jwt_claims *claims = NULL;
    jwt_status status = jwt_verify(verifier, S(token), &claims);
    jwt_claims_free(claims);
    if (status == JWT_STATUS_OK)
      return 1;
    usleep(50 * 1000);
  }
  return 0;
}

static int
fork_during_discovery(const char *issuer, const char *audience, const char *token)
{
  jwt_config *config = jwt_config_new();
  jwt_verifier *verifier = NULL;
  jwt_claims *claims = NULL;
  int failed = 0;
  int child_status = 0;
  pid_t child;

  if (config == NULL)
    return 1;
  failed += check(jwt_config_add_issuer(config, S(issuer)) == JWT_STATUS_OK, "issuer");
  failed += check(jwt_config_add_audience(config, S(audience)) == JWT_STATUS_OK, "audience");
  failed += check(jwt_config_set_non_blocking(config, true) == JWT_STATUS_OK, "non-blocking");
  failed += check(jwt_verifier_new(config, &verifier) == JWT_STATUS_OK, "verifier");
  jwt_config_free(config);
  if (verifier == NULL)
    return 1;
  /* Starts discovery on a background thread; the issuer answers it late. */
  failed += check(jwt_verify(verifier, S(token), &claims) == JWT_STATUS_KEYS_UNAVAILABLE,
                  "cold start answers at once");
  failed += check(jwt_verifier_fetching(verifier), "discovery runs");
  fflush(NULL);
  child = fork();
  if (child < 0) {
    perror("fork");
    failed++;
  } else if (child == 0) {
    int child_failed = check(verify_eventually(verifier, token, 200),
                             "child discovers on its own (review item 8)");
    jwt_verifier_free(verifier);
    exit(child_failed == 0 ? 0 : 1);
  } else {
    if (waitpid(child, &child_status, 0) != child) {
      perror("waitpid");
      failed++;
    }
    failed += check(WIFEXITED(child_status) && WEXITSTATUS(child_status) == 0, "child succeeded");
    failed += check(verify_eventually(verifier, token, 200), "parent verifies");
  }
  jwt_verifier_free(verifier);
  if (failed == 0)
    printf("fork checks passed\n");
  return failed == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
  jwt_config *config = NULL;
  jwt_verifier *verifier = NULL;
  int failed = 0;
  int child_status = 0;
  pid_t child;

  if (argc == 5 && strcmp(argv[1], "--during-discovery") == 0)
    return fork_during_discovery(argv[2], argv[3], argv[4]);
  if (argc != 4) {
    fprintf(stderr, "usage: %s [--during-discovery] ISSUER AUDIENCE TOKEN\n", argv[0]);
    return 2;
  }
  config = jwt_config_new();
  if (config == NULL)
    return 1;
  failed += check(jwt_config_add_issuer(config, S(argv[1])) == JWT_STATUS_OK, "issuer");
  failed += check(jwt_config_add_audience(config, S(argv[2])) == JWT_STATUS_OK, "audience");
  failed += check(jwt_verifier_new(config, &verifier) == JWT_STATUS_OK, "verifier");
  jwt_config_free(config);
  if (verifier == NULL)
    return 1;

  /* Warm: discovery and one JWKS fetch in the parent. */
  failed += check(verify_ok(verifier, argv[3]), "parent verifies before fork");
  failed += check(jwt_verifier_count(verifier, JWT_COUNTER_FETCH_OK) == 1, "one fetch");

  fflush(NULL);
  child = fork();
  if (child < 0) {
    perror("fork");
    failed++;
  } else if (child == 0) {
    int child_failed = 0;
    child_failed += check(verify_ok(verifier, argv[3]), "child verifies from the inherited cache");
    child_failed += check(jwt_verifier_refresh(verifier) == JWT_STATUS_OK, "child refreshes on its own");
    /* The issuer answers the child's conditional GET with 304 Not Modified. */
    child_failed += check(jwt_verifier_count(verifier, JWT_COUNTER_FETCH_OK) +
                              jwt_verifier_count(verifier, JWT_COUNTER_FETCH_NOT_MODIFIED) == 2,
                          "child fetched");
    child_failed += check(verify_ok(verifier, argv[3]), "child verifies after its refresh");
    jwt_verifier_free(verifier);
    exit(child_failed == 0 ? 0 : 1);
  } else {
    if (waitpid(child, &child_status, 0) != child) {
      perror("waitpid");
      failed++;
    }
    failed += check(WIFEXITED(child_status) && WEXITSTATUS(child_status) == 0, "child succeeded");
    failed += check(verify_ok(verifier, argv[3]), "parent verifies after the child");
    failed += check(jwt_verifier_count(verifier, JWT_COUNTER_FETCH_OK) == 1,
                    "the child's fetch is its own");
  }
  jwt_verifier_free(verifier);
  if (failed == 0)
    printf("fork checks passed\n");
  return failed == 0 ? 0 : 1;
}
