/*
 * The Auth0 quickstart's ping API as a small C server on libmicrohttpd, protected by jwtguard:
 * the example a C or C++ server author copies.
 *
 *   GET /api/public          no token needed
 *   GET /api/private         a valid access token
 *   GET /api/private-scoped  a valid access token with the scope read:messages
 *
 * Configuration from the environment: JWTGUARD_ISSUER, JWTGUARD_AUDIENCE, optionally
 * JWTGUARD_JWKS_URI (otherwise discovered from the issuer), JWTGUARD_DPOP (off, allowed or
 * required), JWTGUARD_DPOP_ORIGINS (the public origins a DPoP proof may name, separated by
 * spaces or commas: "https://api.example http://127.0.0.1:3030"; once set, a proof for any
 * other origin is refused, whatever Host the client sent; unset, a proof's URL has the port
 * the server listens on, which Host must name) and PORT (default 3030). Refusals
 * answer the quickstart's JSON {"code", "description"} with an RFC 6750 WWW-Authenticate
 * header: every answer (status, body bytes, WWW-Authenticate, Retry-After) is the Flask
 * example's, malformed requests included. SIGINT or SIGTERM stops it cleanly.
 *
 * Build: cc ping_server.c -I include -L target/release -ljwtguard -lmicrohttpd -pthread
 */
#define _POSIX_C_SOURCE 200809L

#include "jwtguard.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S(str) (str), strlen(str)

/* Bodies end with a newline, as Flask's jsonify writes them. */
static const char PUBLIC_MESSAGE[] =
  "{\"message\":\"Hello from a public endpoint! You don't need to be authenticated to see this.\"}\n";
static const char PRIVATE_MESSAGE[] =
  "{\"message\":\"Hello from a private endpoint! You need to be authenticated to see this.\"}\n";
static const char SCOPED_MESSAGE[] =
  "{\"message\":\"Hello from a private endpoint! You need to be authenticated and have a scope "
  "of read:messages to see this.\"}\n";
static const char NOT_FOUND[] =
  "{\"code\":\"not_found\",\"description\":\"No such resource\"}\n";
/* The port this server listens on, and whether JWTGUARD_DPOP_ORIGINS pins the public origins:
 * without pins, a DPoP proof's URL has the port the connection arrived on (dpop_url). */
static unsigned int listen_port;
static int origins_pinned;

static const char NOT_ALLOWED[] =
  "{\"code\":\"method_not_allowed\",\"description\":\"The method is not allowed for this resource\"}\n";

/*
 * The URL a DPoP proof's htu must name, written to `out` (its length; 0: no URL, which no
 * proof matches). This server speaks plain HTTP. A Host that is not host[:port]
 * ("api.example/other?") gives no URL (the library's check, as every host's). The port:
 * without pinned origins, the one the connection arrived on, which Host must name (no port or
 * an empty one: 80) — a server routes by the address it listens on, never by the port a
 * client writes, and a proof used at another server of that name on another port must not be
 * good here a second time. With pinned origins, Host as sent (a public port mapped to this
 * one): the library checks the origin against the pins.
 */
static int
dpop_url(const char *host, const char *path, char *out, size_t size)
{
  const char *colon, *end;
  size_t host_len;
  unsigned long named = 80;
  int len;

  if (host == NULL || !jwt_is_authority(S(host)))
    return 0;
  if (origins_pinned) {
    len = snprintf(out, size, "http://%s%s", host, path);
  } else {
    /* the port: after an IPv6 literal's bracket, else after the last ':' */
    end = host[0] == '[' ? strchr(host, ']') : host;
    if (end == NULL)
      return 0;
    colon = strchr(end, ':');
    host_len = colon != NULL ? (size_t)(colon - host) : strlen(host);
    if (colon != NULL && colon[1] != '\0') {
      if (strlen(colon + 1) > 5 || strspn(colon + 1, "0123456789") != strlen(colon + 1))
        return 0;
      named = strtoul(colon + 1, NULL, 10);
    }
    if (named != listen_port)
      return 0;
    len = snprintf(out, size, "http://%.*s:%u%s", (int)host_len, host, listen_port, path);
  }
  return len < 0 || (size_t)len >= size ? 0 : len;
}

/* Send a JSON body with a status and, optionally, a WWW-Authenticate header. */
static enum MHD_Result
send_json(struct MHD_Connection *connection, unsigned int status, const char *body,
          const char *challenge)
{
  struct MHD_Response *response;
  enum MHD_Result result;

  response = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
  if (response == NULL)
    return MHD_NO;
  MHD_add_response_header(response, "Content-Type", "application/json");
  if (challenge != NULL)
    MHD_add_response_header(response, "WWW-Authenticate", challenge);
  if (status == 503)
    MHD_add_response_header(response, "Retry-After", "5");
  result = MHD_queue_response(connection, status, response);
  MHD_destroy_response(response);
  return result;
}

/* Append `text` to `out` with JSON (and quoted-string) escaping of '"' and '\'. */
static size_t
append_escaped(char *out, size_t at, size_t cap, const char *text)
{
  for (; *text != '\0' && at + 2 < cap; text++) {
    if (*text == '"' || *text == '\\')
      out[at++] = '\\';
    out[at++] = *text;
  }
  out[at] = '\0';
  return at;
}

/* Joins a request's values of one header with ", " (as HTTP combines repeated fields). */
struct joined {
  const char *name;
  char *text;
  size_t len;
  unsigned int lines;
  int failed;
};

static enum MHD_Result
join_header(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                   const char *value, size_t value_size)
{
  struct joined *j = cls;
  size_t add;
  char *grown;

  (void)kind;
  /* lengths as received: a NUL inside a value is the verifier's to refuse, not a cut */
  if (key == NULL || value == NULL || key_size != strlen(j->name) ||
      strncasecmp(key, j->name, key_size) != 0)
    return MHD_YES;
  j->lines++;
  add = value_size + (j->text != NULL ? 2 : 0);
  grown = realloc(j->text, j->len + add + 1);
  if (grown == NULL) {
    j->failed = 1;
    return MHD_NO;
  }
  if (j->text != NULL) {
    memcpy(grown + j->len, ", ", 2);
    j->len += 2;
  }
  memcpy(grown + j->len, value, value_size);
  j->len += value_size;
  grown[j->len] = '\0';
  j->text = grown;
  return MHD_YES;
}

/*
 * Answer a refusal: the quickstart's JSON body, the status, and the challenge the library
 * builds for this verifier (RFC 6750's Bearer and RFC 9449's DPoP beside it), whose error goes
 * on the scheme the request's Authorization named.
 */
static enum MHD_Result
refuse(struct MHD_Connection *connection, const jwt_verifier *verifier, jwt_status status,
       const struct joined *authorization, const char *scope)
{
  char body[512];
  char challenge[1024];
  size_t n, needed = 0;
  const char *description = jwt_status_description(status);

  n = (size_t)snprintf(body, sizeof body, "{\"code\":\"%s\",\"description\":\"", jwt_status_code(status));
  n = append_escaped(body, n, sizeof body, description);
  snprintf(body + n, sizeof body - n, "\"}\n");

  if (jwt_verifier_challenge(verifier, status, authorization->text, authorization->len, S("api"),
                             scope, scope != NULL ? strlen(scope) : 0, challenge,
                             sizeof challenge, &needed) != JWT_STATUS_OK)
    challenge[0] = '\0';

  return send_json(connection, jwt_status_http_status(status), body,
                   challenge[0] != '\0' ? challenge : NULL);
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *connection, const char *url, const char *method,
       const char *version, const char *upload_data, size_t *upload_data_size, void **request_state)
{
  const jwt_verifier *verifier = cls;
  struct joined authorization = {"Authorization", NULL, 0, 0, 0};
  struct joined dpop = {"DPoP", NULL, 0, 0, 0};
  char address[1024];
  const char *host;
  int address_len;
  jwt_claims *claims = NULL;
  jwt_status status;
  enum MHD_Result result;
  int scoped;

  (void)version;
  (void)upload_data;
  (void)upload_data_size;
  (void)request_state;

  if (strcmp(method, "GET") != 0)
    return send_json(connection, 405, NOT_ALLOWED, NULL);
  if (strcmp(url, "/api/public") == 0)
    return send_json(connection, 200, PUBLIC_MESSAGE, NULL);

  scoped = strcmp(url, "/api/private-scoped") == 0;
  if (!scoped && strcmp(url, "/api/private") != 0)
    return send_json(connection, 404, NOT_FOUND, NULL);

  /* Every Authorization and DPoP line, joined: two of either are refused as every host does. */
  MHD_get_connection_values_n(connection, MHD_HEADER_KIND, join_header, &authorization);
  MHD_get_connection_values_n(connection, MHD_HEADER_KIND, join_header, &dpop);
  if (authorization.failed || dpop.failed) {
    free(authorization.text);
    free(dpop.text);
    return MHD_NO;
  }
  /* The URL the client addressed, for a DPoP proof's htu (dpop_url). */
  host = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Host");
  address_len = dpop_url(host, url, address, sizeof address);
  /* Two Authorization lines are a malformed request, even when one is empty (joined, an empty
   * line leaves no trace a verifier could see). */
  if (authorization.lines > 1)
    status = JWT_STATUS_AUTHORIZATION_HEADER_MALFORMED;
  else
    status = jwt_verify_request(verifier, authorization.text, authorization.len, dpop.text,
                                dpop.len, S(method), address, (size_t)address_len, &claims);
  free(dpop.text);
  if (status == JWT_STATUS_OK && scoped && !jwt_has_scope(claims, S("read:messages")))
    status = JWT_STATUS_INSUFFICIENT_SCOPE;

  if (status != JWT_STATUS_OK)
    result = refuse(connection, verifier, status, &authorization,
                    status == JWT_STATUS_INSUFFICIENT_SCOPE ? "read:messages" : NULL);
  else
    result = send_json(connection, 200, scoped ? SCOPED_MESSAGE : PRIVATE_MESSAGE, NULL);

  free(authorization.text);
  jwt_claims_free(claims);
  return result;
}

/* Add each origin of a list separated by spaces or commas; JWT_STATUS_OK or the first error. */
static jwt_status
add_dpop_origins(jwt_config *config, const char *list)
{
  const char *at = list;
  size_t len;
  jwt_status status;

  for (;;) {
    at += strspn(at, " ,");
    if (*at == '\0')
      return JWT_STATUS_OK;
    len = strcspn(at, " ,");
    status = jwt_config_add_dpop_origin(config, at, len);
    if (status != JWT_STATUS_OK) {
      fprintf(stderr, "ping_server: JWTGUARD_DPOP_ORIGINS: %.*s: %s\n", (int)len, at,
              jwt_status_description(status));
      return status;
    }
    at += len;
  }
}

static jwt_verifier *
make_verifier(void)
{
  const char *issuer = getenv("JWTGUARD_ISSUER");
  const char *audience = getenv("JWTGUARD_AUDIENCE");
  const char *jwks_uri = getenv("JWTGUARD_JWKS_URI");
  const char *dpop = getenv("JWTGUARD_DPOP");
  const char *origins = getenv("JWTGUARD_DPOP_ORIGINS");
  jwt_config *config = NULL;
  jwt_verifier *verifier = NULL;
  jwt_status status;

  if (issuer == NULL || audience == NULL) {
    fprintf(stderr, "ping_server: set JWTGUARD_ISSUER and JWTGUARD_AUDIENCE\n");
    return NULL;
  }
  config = jwt_config_new();
  if (config == NULL)
    return NULL;
  if (jwt_config_add_issuer(config, S(issuer)) != JWT_STATUS_OK ||
      jwt_config_add_audience(config, S(audience)) != JWT_STATUS_OK ||
      (jwks_uri != NULL && jwks_uri[0] != '\0' &&
       jwt_config_set_jwks_uri(config, S(jwks_uri)) != JWT_STATUS_OK) ||
      (dpop != NULL && dpop[0] != '\0' &&
       jwt_config_set_dpop(config, strcmp(dpop, "off") == 0        ? JWT_DPOP_MODE_OFF
                                   : strcmp(dpop, "required") == 0 ? JWT_DPOP_MODE_REQUIRED
                                   : strcmp(dpop, "allowed") == 0  ? JWT_DPOP_MODE_ALLOWED
                                                                   : 99) != JWT_STATUS_OK) ||
      (origins != NULL && add_dpop_origins(config, origins) != JWT_STATUS_OK)) {
    fprintf(stderr, "ping_server: invalid configuration\n");
    goto cleanup;
  }
  origins_pinned = origins != NULL && origins[strspn(origins, " ,")] != '\0';
  status = jwt_verifier_new(config, &verifier);
  if (status != JWT_STATUS_OK)
    fprintf(stderr, "ping_server: %s\n", jwt_status_description(status));

cleanup:
  jwt_config_free(config);
  return verifier;
}

int
main(void)
{
  const char *port_text = getenv("PORT");
  unsigned int port = port_text ? (unsigned int)strtoul(port_text, NULL, 10) : 3030;
  jwt_verifier *verifier = NULL;
  struct MHD_Daemon *daemon = NULL;
  sigset_t signals;
  struct sockaddr_in address;
  int signal_number = 0;
  int exit_code = 1;

  /* Block the stop signals in every thread; main waits for them below. */
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, NULL);

  listen_port = port;
  verifier = make_verifier();
  if (verifier == NULL)
    goto cleanup;

  /* loopback only: put a proxy in front to serve others */
  memset(&address, 0, sizeof address);
  address.sin_family = AF_INET;
  address.sin_port = htons((uint16_t)port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  /*
   * A thread per connection: jwt_verify blocks while keys are being fetched (a new kid, a
   * cold start; up to the fetch timeout when the issuer is slow), and a blocked thread must
   * hold back only its own client. In a thread pool each thread serves many connections, so
   * one token with an unknown kid during a slow issuer would stall its neighbours.
   */
  daemon = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                                MHD_USE_ERROR_LOG,
                            (uint16_t)port, NULL, NULL, handle, verifier,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&address,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned int)256,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60,
                            MHD_OPTION_END);
  if (daemon == NULL) {
    fprintf(stderr, "ping_server: cannot listen on port %u\n", port);
    goto cleanup;
  }
  printf("ping_server: listening on http://127.0.0.1:%u/ (jwtguard %s)\n", port, jwt_version());
  fflush(stdout);

  sigwait(&signals, &signal_number);
  exit_code = 0;

cleanup:
  if (daemon != NULL)
    MHD_stop_daemon(daemon);
  jwt_verifier_free(verifier);
  return exit_code;
}
