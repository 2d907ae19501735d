/* Verifications per second from C, for `make bench-report` (bench/report.py writes the inputs).
 *
 *   verify_bench JWKS_FILE TOKENS_FILE RSA_PUBLIC_PEM SECONDS
 *
 * TOKENS_FILE lines: "<label> <token>". Labels RS256, PS256, ES256, EdDSA: one token each,
 * verified with the token cache off (the whole pipeline every time). "hot": tokens for the
 * token-cache runs (the first one for one thread; threads take disjoint sets of 64, as
 * different clients do). "libjwt": an RS256 token with typ JWT (libjwt 1.10 refuses at+jwt),
 * verified by jwtguard (cache off) and by libjwt's jwt_decode with the PEM key plus the
 * checks a libjwt user writes by hand (alg, iss, aud, exp).
 *
 * Prints one line per measurement: "<name> <per second>". */
#define _GNU_SOURCE /* pthread_setaffinity_np */
#include <jwt.h>
#include <jwtguard.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ISSUER "https://tenant.example/" /* tests/support/minter.py */
#define AUDIENCE "https://api.example"
#define MAX_TOKENS 512
#define PER_THREAD 64

static double seconds = 1.0;
static char *jwks;
static char *labels[MAX_TOKENS], *tokens[MAX_TOKENS];
static int ntokens;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  char *data;
  long size;
  if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
    perror(path);
    exit(2);
  }
  data = malloc((size_t)size + 1);
  if (data == NULL || fread(data, 1, (size_t)size, f) != (size_t)size) {
    perror(path);
    exit(2);
  }
  data[size] = '\0';
  fclose(f);
  return data;
}

static void die(const char *what, jwt_status status) {
  fprintf(stderr, "verify_bench: %s: %s\n", what, jwt_status_description(status));
  exit(1);
}

static jwt_verifier *verifier(size_t token_cache) {
  jwt_config *config = jwt_config_new();
  jwt_verifier *v = NULL;
  jwt_status s;
  if (config == NULL)
    die("config", JWT_STATUS_INTERNAL);
  if ((s = jwt_config_add_issuer(config, ISSUER, strlen(ISSUER))) != JWT_STATUS_OK ||
      (s = jwt_config_add_audience(config, AUDIENCE, strlen(AUDIENCE))) != JWT_STATUS_OK ||
      (s = jwt_config_add_algorithm(config, "RS256", 5)) != JWT_STATUS_OK ||
      (s = jwt_config_add_algorithm(config, "PS256", 5)) != JWT_STATUS_OK ||
      (s = jwt_config_add_algorithm(config, "ES256", 5)) != JWT_STATUS_OK ||
      (s = jwt_config_add_algorithm(config, "EdDSA", 5)) != JWT_STATUS_OK ||
      (s = jwt_config_set_jwks_json(config, jwks, strlen(jwks))) != JWT_STATUS_OK ||
      (s = jwt_config_set_token_cache(config, token_cache)) != JWT_STATUS_OK)
    die("config", s);
  s = jwt_verifier_new(config, &v);
  jwt_config_free(config);
  if (s != JWT_STATUS_OK)
    die("verifier", s);
  return v;
}

static const char *token_for(const char *label, int nth) {
  for (int i = 0; i < ntokens; i++)
    if (strcmp(labels[i], label) == 0 && nth-- == 0)
      return tokens[i];
  return NULL;
}

/* Verifications of `set` (n tokens, cycled) per second, claims fetched and freed as a server
 * does. */
static double rate(const jwt_verifier *v, const char *const *set, int n) {
  long count = 0;
  double start = now(), elapsed;
  size_t lens[PER_THREAD];
  if (n < 1 || n > PER_THREAD) {
    fprintf(stderr, "verify_bench: %d tokens in a set\n", n);
    exit(2);
  }
  for (int i = 0; i < n; i++)
    lens[i] = strlen(set[i]);
  do {
    for (int i = 0; i < 1000; i++) {
      jwt_claims *claims = NULL;
      jwt_status s = jwt_verify(v, set[i % n], lens[i % n], &claims);
      if (s != JWT_STATUS_OK)
        die("verify", s);
      jwt_claims_free(claims);
    }
    count += 1000;
    elapsed = now() - start;
  } while (elapsed < seconds);
  return (double)count / elapsed;
}

/* The n-th cpu this process may run on (a cpuset may allow fewer than all), cycling. */
static int allowed_cpu(int n) {
  cpu_set_t set;
  int count = 0;
  if (sched_getaffinity(0, sizeof set, &set) != 0)
    return n;
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
    count += CPU_ISSET(cpu, &set) ? 1 : 0;
  n %= count > 0 ? count : 1;
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
    if (CPU_ISSET(cpu, &set) && n-- == 0)
      return cpu;
  return 0;
}

struct worker {
  const jwt_verifier *v;
  const char *set[PER_THREAD];
  pthread_barrier_t *start;
  int cpu;
  double rate;
};

static void *work(void *arg) {
  struct worker *w = arg;
  cpu_set_t cpu;
  /* One thread per core, each on its own (less scheduler noise between runs). */
  CPU_ZERO(&cpu);
  CPU_SET(w->cpu, &cpu);
  if (pthread_setaffinity_np(pthread_self(), sizeof cpu, &cpu) != 0)
    fprintf(stderr, "verify_bench: thread not pinned to cpu %d (running unpinned)\n", w->cpu);
  pthread_barrier_wait(w->start);
  w->rate = rate(w->v, w->set, PER_THREAD);
  return NULL;
}

/* Token-cache hits per second, summed over `threads` threads on disjoint token sets. */
static double threaded(const jwt_verifier *v, int threads) {
  struct worker w[2];
  pthread_t t[2];
  pthread_barrier_t start;
  double total = 0;
  pthread_barrier_init(&start, NULL, (unsigned)threads);
  for (int i = 0; i < threads; i++) {
    w[i].v = v;
    w[i].start = &start;
    w[i].cpu = allowed_cpu(i);
    for (int j = 0; j < PER_THREAD; j++) {
      w[i].set[j] = token_for("hot", i * PER_THREAD + j);
      if (w[i].set[j] == NULL) {
        fprintf(stderr, "verify_bench: need %d hot tokens\n", 2 * PER_THREAD);
        exit(2);
      }
    }
    rate(v, w[i].set, PER_THREAD); /* fill the cache */
  }
  for (int i = 0; i < threads; i++)
    if (pthread_create(&t[i], NULL, work, &w[i]) != 0) {
      fprintf(stderr, "verify_bench: cannot start a thread\n");
      exit(1);
    }
  for (int i = 0; i < threads; i++) {
    pthread_join(t[i], NULL);
    total += w[i].rate;
  }
  pthread_barrier_destroy(&start);
  return total;
}

static double libjwt_rate(const char *token, const char *pem) {
  long count = 0;
  double start = now(), elapsed;
  int pem_len = (int)strlen(pem);
  do {
    for (int i = 0; i < 200; i++) {
      jwt_t *jwt = NULL;
      const char *iss, *aud;
      if (jwt_decode(&jwt, token, (const unsigned char *)pem, pem_len) != 0 || jwt_get_alg(jwt) != JWT_ALG_RS256 ||
          (iss = jwt_get_grant(jwt, "iss")) == NULL || strcmp(iss, ISSUER) != 0 ||
          (aud = jwt_get_grant(jwt, "aud")) == NULL || strcmp(aud, AUDIENCE) != 0 ||
          jwt_get_grant_int(jwt, "exp") <= (long)time(NULL)) {
        fprintf(stderr, "verify_bench: libjwt refused the token\n");
        exit(1);
      }
      jwt_free(jwt);
    }
    count += 200;
    elapsed = now() - start;
  } while (elapsed < seconds);
  return (double)count / elapsed;
}

int main(int argc, char **argv) {
  static const char *algs[] = {"RS256", "PS256", "ES256", "EdDSA"};
  char *lines, *line, *save = NULL, *pem;
  jwt_verifier *cold, *hot;
  if (argc != 5) {
    fprintf(stderr, "usage: verify_bench JWKS_FILE TOKENS_FILE RSA_PUBLIC_PEM SECONDS\n");
    return 2;
  }
  jwks = slurp(argv[1]);
  lines = slurp(argv[2]);
  pem = slurp(argv[3]);
  seconds = atof(argv[4]);
  for (line = strtok_r(lines, "\n", &save); line != NULL && ntokens < MAX_TOKENS; line = strtok_r(NULL, "\n", &save)) {
    char *space = strchr(line, ' ');
    if (space == NULL)
      continue;
    *space = '\0';
    labels[ntokens] = line;
    tokens[ntokens++] = space + 1;
  }
  cold = verifier(0);
  hot = verifier(10000);
  {
    /* Warm up (CPU clock, caches, the library's first calls): not reported. */
    const char *token = token_for("RS256", 0);
    double planned = seconds;
    seconds = planned / 2;
    if (token != NULL)
      rate(cold, &token, 1);
    seconds = planned;
  }
  for (size_t i = 0; i < sizeof algs / sizeof *algs; i++) {
    const char *token = token_for(algs[i], 0);
    if (token == NULL) {
      fprintf(stderr, "verify_bench: no %s token\n", algs[i]);
      return 2;
    }
    printf("%s %.0f\n", algs[i], rate(cold, &token, 1));
    fflush(stdout);
  }
  if (token_for("hot", 0) == NULL || token_for("libjwt", 0) == NULL) {
    fprintf(stderr, "verify_bench: no hot or libjwt token\n");
    return 2;
  }
  {
    const char *token = token_for("hot", 0);
    rate(hot, &token, 1);
    printf("hit %.0f\n", rate(hot, &token, 1));
  }
  printf("hit_1_thread %.0f\n", threaded(hot, 1));
  printf("hit_2_threads %.0f\n", threaded(hot, 2));
  {
    const char *token = token_for("libjwt", 0);
    printf("jwtguard_typ_jwt %.0f\n", rate(cold, &token, 1));
    printf("libjwt %.0f\n", libjwt_rate(token, pem));
  }
  jwt_verifier_free(cold);
  jwt_verifier_free(hot);
  free(jwks);
  free(lines);
  free(pem);
  return 0;
}
