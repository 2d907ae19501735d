/*
 * ngx_http_jwtguard_module: JWT access-token verification for nginx, by the jwtguard library
 * (linked statically). An access-phase handler verifies the bearer token against the issuer's
 * JWKS (fetched in the background: the event loop never waits on the network), checks
 * required scopes, answers 401/403/503 with RFC 6750 WWW-Authenticate headers, and exposes
 * $jwt_claim_<name>, $jwt_claims, $jwt_status, and for custom error pages $jwt_error_code,
 * $jwt_error_description and $jwt_error_challenge.
 *
 * Main requests are checked in the access phase. Subrequests (auth_request, SSI), which nginx
 * runs without an access phase, are checked in the rewrite phase instead, before `return`.
 * A verdict is reused after an internal redirect only for the same policy (verifier, scopes
 * and token source) and, for a DPoP request, the same proof URL; any other location verifies
 * again.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "jwtguard.h"


typedef struct {
    ngx_array_t               *verifiers;      /* jwt_verifier *, for prefetch */
    ngx_str_t                  snapshot;       /* empty: off */
    ngx_uint_t                 snapshot_set;   /* chosen: configured, or the default */
    ngx_str_t                  state_dir;      /* the default's directory, made at start */
    ngx_str_t                  ca_file;
    time_t                     cache_ttl;
    time_t                     refetch_cooldown;
    time_t                     max_stale;
    ngx_int_t                  scheme_index;   /* $scheme, for the default proof URL */
    void                      *names_of;       /* the server whose names follow */
    ngx_array_t               *names;          /* its plain names (NULL: any Host) */
} ngx_http_jwtguard_main_conf_t;


typedef struct {
    ngx_flag_t                 enable;
    ngx_array_t               *issuers;        /* ngx_str_t */
    ngx_array_t               *audiences;      /* ngx_str_t */
    ngx_str_t                  jwks_uri;
    ngx_array_t               *algorithms;     /* ngx_str_t */
    time_t                     leeway;
    ngx_flag_t                 strict;
    ngx_array_t               *scopes;         /* ngx_str_t */
    ngx_http_complex_value_t  *token;
    ngx_str_t                  realm;
    ngx_uint_t                 dpop;           /* jwt_dpop_mode */
    ngx_http_complex_value_t  *dpop_url;       /* the URL a DPoP proof must be for;
                                                  NULL: the routed URL (default) */
    ngx_array_t               *dpop_origins;   /* ngx_str_t: the public origins */
    ngx_int_t                  token_cache;    /* entries per verifier; 0: off */
    time_t                     dpop_window;    /* seconds a proof is good after its iat */
    ngx_int_t                  dpop_replay_cache; /* proofs remembered, per worker */
    ngx_array_t               *server_names;   /* ngx_str_t: the server's plain names;
                                                  NULL: it takes any Host */
    ngx_array_t               *more_issuers;   /* ngx_array_t * of ngx_str_t: one line each */
    jwt_verifier              *verifier;
} ngx_http_jwtguard_loc_conf_t;


typedef struct {
    ngx_http_request_t        *request;        /* whose verdict: main or subrequest */
    jwt_status                 status;
    jwt_claims                *claims;
    ngx_uint_t                 verified;       /* a verdict exists */
    ngx_msec_t                 waited;
    ngx_table_elt_t           *challenge;      /* the refusal's WWW-Authenticate */
    /* the policy that gave the verdict */
    jwt_verifier              *verifier;
    ngx_array_t               *scopes;
    ngx_http_complex_value_t  *token;
    ngx_uint_t                 proof;          /* a DPoP proof was part of it */
    ngx_str_t                  url;            /* the URL that proof was checked against */
} ngx_http_jwtguard_ctx_t;


/*
 * While the library fetches keys (a cold start, a rotated key), a request refused for want of
 * keys waits on a timer and is verified again, instead of failing: the event loop never
 * blocks, and nothing waits longer than the library's fetch timeout.
 */
#define NGX_HTTP_JWTGUARD_WAIT_STEP  20
#define NGX_HTTP_JWTGUARD_WAIT_MAX   6000


static ngx_int_t ngx_http_jwtguard_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_jwtguard_subrequest_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_jwtguard_check(ngx_http_request_t *r);
static ngx_int_t ngx_http_jwtguard_proof_url(ngx_http_request_t *r,
    ngx_http_jwtguard_loc_conf_t *lcf, ngx_uint_t proof, ngx_str_t *url);
static ngx_int_t ngx_http_jwtguard_routed_url(ngx_http_request_t *r,
    ngx_http_jwtguard_loc_conf_t *lcf, ngx_uint_t check, ngx_str_t *url);
static void ngx_http_jwtguard_wake(ngx_http_request_t *r);
static void ngx_http_jwtguard_log_refusal(ngx_http_request_t *r, jwt_status status);
static ngx_int_t ngx_http_jwtguard_challenge(ngx_http_request_t *r,
    ngx_http_jwtguard_loc_conf_t *lcf, jwt_status status);
static ngx_int_t ngx_http_jwtguard_challenge_text(ngx_http_request_t *r,
    ngx_http_jwtguard_loc_conf_t *lcf, jwt_status status, ngx_str_t *text);
static ngx_int_t ngx_http_jwtguard_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_jwtguard_error_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_jwtguard_claims_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_jwtguard_claim_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_jwtguard_named_claim_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_jwtguard_claim_text(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, u_char *claim, size_t len);
static char *ngx_http_jwtguard_set_claim_variable(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void *ngx_http_jwtguard_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_jwtguard_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_jwtguard_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_jwtguard_add_variables(ngx_conf_t *cf);
static ngx_array_t *ngx_http_jwtguard_server_names(ngx_conf_t *cf);
static ngx_int_t ngx_http_jwtguard_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_jwtguard_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_jwtguard_init_process(ngx_cycle_t *cycle);
static char *ngx_http_jwtguard_set_snapshot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_jwtguard_set_token_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_jwtguard_set_list(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_jwtguard_set_scopes(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_jwtguard_issuers_block(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_jwtguard_issuer_line(ngx_conf_t *cf, ngx_command_t *dummy,
    void *conf);


/* jwtguard_dpop off | allowed | required: jwt_dpop_mode's numbers */
static ngx_conf_enum_t  ngx_http_jwtguard_dpop_modes[] = {
    { ngx_string("off"), JWT_DPOP_MODE_OFF },
    { ngx_string("allowed"), JWT_DPOP_MODE_ALLOWED },
    { ngx_string("required"), JWT_DPOP_MODE_REQUIRED },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_jwtguard_commands[] = {

    { ngx_string("jwtguard"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_jwtguard_loc_conf_t, enable),
      NULL },

    { ngx_string("jwtguard_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_jwtguard_set_list,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_jwtguard_loc_conf_t, issuers),
      NULL },

    /*
     * Further issuers, each with its own keys and policy, one per line:
     *     jwtguard_issuers {
     *         https://b.example/ audience=https://api jwks_uri=https://b.example/jwks.json;
     *         https://c.example/ audience=https://api algorithms=ES256,RS256 leeway=30;
     *     }
     * A token's `iss` picks the issuer (jwtguard_issuer's, or a line's).
     */
    { ngx_string("jwtguard_issuers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_BLOCK|NGX_CONF_NOARGS,
      ngx_http_jwtguard_issuers_block,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("jwtguard_audience"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_jwtguard_set_list,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_jwtguard_loc_conf_t, audiences),
      NULL },

    { ngx_string("jwtguard_jwks_uri"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_jwtguard_loc_conf_t, jwks_uri),
      NULL },

    { ngx_string("jwtguard_algorithms"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_jwtguard_set_list,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_jwtguard_loc_conf_t, algorithms),
      NULL },

    { ngx_string("jwtguard_leeway"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_jwtguard_loc_conf_t, leeway),
      NULL },

    { ngx_string("jwtguard_strict"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_jwtguard_loc_conf_t, strict),
      NULL },

    { ngx_string("jwtguard_require_scope"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_jwtguard_set_scopes,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_jwtguard_loc_conf_t, scopes),
      NULL },

    { ngx_string("jwtguard_token"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_jwtguard_loc_conf_t, token),
      NULL },

    /*
     * DPoP (RFC 9449): "allowed" (the default) accepts bearer tokens without cnf and a token
     * bound to a key only as "Authorization: DPoP" with a valid proof; "required" only bound
     * tokens; "off" refuses the DPoP scheme and every bound token.
     */
    { ngx_string("jwtguard_dpop"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_jwtguard_loc_conf_t, dpop),
      &ngx_http_jwtguard_dpop_modes },

    /*
     * The URL a DPoP proof's htu must name. By default, the URL the request was routed by:
     * the connection's scheme, the host nginx chose the server by ($host: the request line's
     * host in an absolute-form request, else Host's), the port the connection arrived on
     * ($server_port), which that same authority must name (no port: the scheme's default;
     * with jwtguard_dpop_origin, the authority's port as sent, for port mapping), and the
     * path as the client sent it ($request_uri; the query is ignored). On a server whose
     * server_name values are all plain names, that host must be one of them (a request
     * reaching it as the default server for another Host names no URL a proof can be for);
     * a server with no name, `_`, wildcards or regular expressions takes any Host: pin its
     * origins with jwtguard_dpop_origin. Behind another proxy, build the URL from
     * X-Forwarded-Proto and -Host checked by a map first (README, DPoP): nginx does not check
     * those headers as it checks Host.
     */
    { ngx_string("jwtguard_dpop_url"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_jwtguard_loc_conf_t, dpop_url),
      NULL },

    /*
     * jwtguard_dpop_origin https://api.example [http://127.0.0.1:8080 ...]: the public
     * origins (scheme, host, port; no path) the API answers for, repeatable. Once any is set,
     * a proof is accepted only for a request URL on one of them, whatever Host or forwarded
     * header built that URL.
     */
    { ngx_string("jwtguard_dpop_origin"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_jwtguard_set_list,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_jwtguard_loc_conf_t, dpop_origins),
      NULL },

    /* Seconds a DPoP proof is good for after its iat (default 60 s; the leeway on top). */
    { ngx_string("jwtguard_dpop_window"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_jwtguard_loc_conf_t, dpop_window),
      NULL },

    /* DPoP proofs each worker remembers against replay (default 250000; README, DPoP). */
    { ngx_string("jwtguard_dpop_replay_cache"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_jwtguard_loc_conf_t, dpop_replay_cache),
      NULL },

    { ngx_string("jwtguard_realm"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_jwtguard_loc_conf_t, realm),
      NULL },

    { ngx_string("jwtguard_snapshot"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_jwtguard_set_snapshot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("jwtguard_claim_variable"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_jwtguard_set_claim_variable,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /*
     * Verified tokens each worker remembers, per verifier (default 10000; off). Wherever a
     * verifier is configured: in a location or server, it gives that one its own verifier.
     */
    { ngx_string("jwtguard_token_cache"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_jwtguard_set_token_cache,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("jwtguard_ca_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_jwtguard_main_conf_t, ca_file),
      NULL },

    { ngx_string("jwtguard_cache_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_jwtguard_main_conf_t, cache_ttl),
      NULL },

    { ngx_string("jwtguard_refetch_cooldown"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_jwtguard_main_conf_t, refetch_cooldown),
      NULL },

    { ngx_string("jwtguard_max_stale"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_jwtguard_main_conf_t, max_stale),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_jwtguard_module_ctx = {
    ngx_http_jwtguard_add_variables,       /* preconfiguration */
    ngx_http_jwtguard_init,                /* postconfiguration */

    ngx_http_jwtguard_create_main_conf,    /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_jwtguard_create_loc_conf,     /* create location configuration */
    ngx_http_jwtguard_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_http_jwtguard_module = {
    NGX_MODULE_V1,
    &ngx_http_jwtguard_module_ctx,         /* module context */
    ngx_http_jwtguard_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_jwtguard_init_module,         /* init module */
    ngx_http_jwtguard_init_process,        /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_jwtguard_vars[] = {

    { ngx_string("jwt_status"), NULL, ngx_http_jwtguard_status_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("jwt_error_code"), NULL, ngx_http_jwtguard_error_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("jwt_error_description"), NULL, ngx_http_jwtguard_error_variable, 1,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("jwt_error_challenge"), NULL, ngx_http_jwtguard_error_variable, 2,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("jwt_claims"), NULL, ngx_http_jwtguard_claims_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("jwt_claim_"), NULL, ngx_http_jwtguard_claim_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_PREFIX, 0 },

      ngx_http_null_variable
};


static void
ngx_http_jwtguard_free_claims(void *data)
{
    jwt_claims_free(data);
}


static void
ngx_http_jwtguard_cleanup(void *data)
{
    ngx_http_jwtguard_ctx_t  *ctx = data;

    jwt_claims_free(ctx->claims);
}


/* A marker in the client request's pool: nothing to free. */
static void
ngx_http_jwtguard_proof_mark(void *data)
{
}


/*
 * Whether this verifier accepted this client request's DPoP proof already (in a location
 * before an internal redirect, or in the main request before a subrequest): its jti is in
 * this verifier's replay cache, so a later check of the same request's headers by the same
 * verifier must not count it again (it would read as a replay). Another verifier (a location
 * with its own settings) checks it in full, into its own cache. Subrequests share the client
 * request's pool, and each client request (an HTTP/2 stream too) has its own.
 */
static ngx_uint_t
ngx_http_jwtguard_proof_passed(ngx_http_request_t *r, jwt_verifier *verifier)
{
    ngx_pool_cleanup_t  *cln;

    for (cln = r->main->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_jwtguard_proof_mark && cln->data == verifier) {
            return 1;
        }
    }

    return 0;
}


/* Whether an Authorization value names the DPoP scheme (nginx trims leading blanks). */
static ngx_uint_t
ngx_http_jwtguard_is_dpop(ngx_table_elt_t *authorization)
{
    return authorization != NULL
           && authorization->value.len > sizeof("DPoP") - 1
           && ngx_strncasecmp(authorization->value.data, (u_char *) "DPoP",
                              sizeof("DPoP") - 1) == 0
           && (authorization->value.data[4] == ' ' || authorization->value.data[4] == '\t');
}


/*
 * The request's own context (a subrequest has its own), also after an internal redirect
 * (error_page, named locations, X-Accel-Redirect), which clears module contexts: it is found
 * again through the pool's cleanup, by its request.
 */
static ngx_http_jwtguard_ctx_t *
ngx_http_jwtguard_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t       *cln;
    ngx_http_jwtguard_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_jwtguard_module);

    if (ctx == NULL && (r->internal || r->filter_finalize)) {
        for (cln = r->pool->cleanup; cln; cln = cln->next) {
            if (cln->handler == ngx_http_jwtguard_cleanup
                && ((ngx_http_jwtguard_ctx_t *) cln->data)->request == r)
            {
                ctx = cln->data;
                ngx_http_set_ctx(r, ctx, ngx_http_jwtguard_module);
                break;
            }
        }
    }

    return ctx;
}


/* The access phase: main requests. */
static ngx_int_t
ngx_http_jwtguard_handler(ngx_http_request_t *r)
{
    if (r != r->main) {
        return NGX_DECLINED;
    }

    return ngx_http_jwtguard_check(r);
}


/*
 * The rewrite phase: subrequests, which skip the access phase. Runs before the rewrite
 * module's `return`, and never waits for keys (a subrequest shares its connection's events).
 */
static ngx_int_t
ngx_http_jwtguard_subrequest_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (r == r->main) {
        return NGX_DECLINED;
    }

    rc = ngx_http_jwtguard_check(r);

    return rc == NGX_OK ? NGX_DECLINED : rc;
}


/*
 * The request's DPoP header: { NULL, 0 } when absent, the one value, or several lines joined
 * with ", " (as HTTP combines repeated fields), which the library refuses as several proofs.
 */
static ngx_int_t
ngx_http_jwtguard_dpop_header(ngx_http_request_t *r, ngx_str_t *value)
{
    u_char           *p;
    size_t            len;
    ngx_uint_t        i, n;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *one;

    value->len = 0;
    value->data = NULL;
    n = 0;
    len = 0;
    one = NULL;

    part = &r->main->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {
        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("DPoP") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "DPoP", sizeof("DPoP") - 1) == 0)
        {
            n++;
            len += h[i].value.len + 2;
            one = &h[i];
        }
    }

    if (n == 0) {
        return NGX_OK;
    }

    if (n == 1) {
        value->data = one->value.data ? one->value.data : (u_char *) "";
        value->len = one->value.len;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    value->data = p;

    part = &r->main->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {
        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("DPoP") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "DPoP", sizeof("DPoP") - 1) == 0)
        {
            if (p != value->data) {
                *p++ = ',';
                *p++ = ' ';
            }

            p = ngx_cpymem(p, h[i].value.data, h[i].value.len);
        }
    }

    value->len = p - value->data;

    return NGX_OK;
}


/*
 * The URL a DPoP proof must name for this request: jwtguard_dpop_url's, or the URL the
 * request was routed by. Never { 0, NULL }: an empty URL (a variable with no value) is a URL
 * no proof names, not a missing one.
 */
static ngx_int_t
ngx_http_jwtguard_proof_url(ngx_http_request_t *r, ngx_http_jwtguard_loc_conf_t *lcf,
    ngx_uint_t proof, ngx_str_t *url)
{
    if (lcf->dpop_url != NULL) {
        if (ngx_http_complex_value(r, lcf->dpop_url, url) != NGX_OK) {
            return NGX_ERROR;
        }

    } else if (ngx_http_jwtguard_routed_url(r, lcf, lcf->dpop_origins == NULL ? proof + 1 : 0,
                                            url)
               != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (url->len == 0) {
        url->data = (u_char *) "";
    }

    return NGX_OK;
}


/*
 * Whether this server answers for `host` by name: 1 when `host` is one of its plain
 * server_name values (gathered at configuration: nginx frees its own list after it) or when
 * it has no such list to judge by (it takes any Host), 0 otherwise.
 */
static ngx_uint_t
ngx_http_jwtguard_server_named(ngx_http_jwtguard_loc_conf_t *lcf, ngx_str_t *host)
{
    ngx_str_t   *name;
    ngx_uint_t   i;

    if (lcf->server_names == NULL) {
        return 1;
    }

    name = lcf->server_names->elts;

    for (i = 0; i < lcf->server_names->nelts; i++) {
        if (name[i].len == host->len
            && ngx_strncasecmp(name[i].data, host->data, host->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * The URL the request was routed by: the connection's scheme, the host nginx chose the
 * virtual server by (r->headers_in.server: an absolute-form request line's host, else Host's;
 * validated and lowercased by nginx), a port, and the path as the client sent it. Never the
 * Host header when the request line names another authority: nginx routes by the request
 * line, and a proof checked against Host could be used once at each server.
 *
 * The port: nginx routes by the listening address and the name, never by the port a client
 * writes. Without pinned origins (`check` set), it is the port the connection arrived on, and
 * the client's authority (the request line's in absolute form, else Host) must name that same
 * port, no port (or an empty one) naming the scheme's default: a client that reaches port
 * 8080 sends ":8080", and one that names another port (80 included, by naming none) asks for
 * a URL this server does not answer for, which a proof used at the server on that port would
 * be good for a second time here. With pinned origins (`check` 0), the port the client's
 * authority names (a public port mapped to another one here): the core checks the whole
 * origin against the pins.
 *
 * Empty (no proof names it) when there is no host, when the authority is not host[:port],
 * or when `check` is set (2: a DPoP request, logged) and the server's plain server_name
 * values do not include the host or the port is not the connection's.
 */
static ngx_int_t
ngx_http_jwtguard_routed_url(ngx_http_request_t *r, ngx_http_jwtguard_loc_conf_t *lcf,
    ngx_uint_t check, ngx_str_t *url)
{
    u_char                         *p, *end, *port;
    ngx_int_t                       named;
    ngx_str_t                       host, source, tail;
    ngx_uint_t                      local, fallback;
    ngx_http_request_t             *m;
    ngx_http_variable_value_t      *scheme;
    ngx_http_jwtguard_main_conf_t  *jmcf;
    u_char                          text[sizeof(":65535") - 1];

    ngx_str_null(url);

    m = r->main;
    host = m->headers_in.server;

    if (host.len == 0) {
        return NGX_OK;
    }

    jmcf = ngx_http_get_module_main_conf(r, ngx_http_jwtguard_module);

    scheme = ngx_http_get_indexed_variable(m, jmcf->scheme_index);
    if (scheme == NULL || scheme->not_found) {
        return NGX_OK;
    }

    /*
     * The authority the host came from, as nginx parsed it: an absolute-form request line's
     * (host_start to the end of the port, else of the host: nginx 1.22 ends host_end before
     * the port and port_end after it, later versions end host_end after the port and leave
     * port_end unset), else Host's.
     */
    ngx_str_null(&source);

    if (m->host_start != NULL && m->host_end != NULL) {
        end = m->port_end != NULL ? m->port_end : m->host_end;
        source.data = m->host_start;
        source.len = end - m->host_start;

    } else if (m->headers_in.host != NULL) {
        source = m->headers_in.host->value;
    }

    /* its port, ':' included, if any: after an IPv6 literal's bracket, else after the first ':' */
    port = NULL;
    end = source.data + source.len;

    if (source.len > 0) {
        if (source.data[0] == '[') {
            p = ngx_strlchr(source.data, end, ']');
            if (p != NULL && p + 1 < end && p[1] == ':') {
                port = p + 1;
            }

        } else {
            port = ngx_strlchr(source.data, end, ':');
        }
    }

    tail.data = port;
    tail.len = port ? (size_t) (end - port) : 0;

    if (check) {
        if (!ngx_http_jwtguard_server_named(lcf, &host)) {
            if (check > 1) {
                ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                              "jwtguard: a DPoP proof cannot be for \"%V\": not a server_name "
                              "of this server (jwtguard_dpop_origin pins the origins of a "
                              "server that answers other names)", &host);
            }

            return NGX_OK;
        }

        /* the port the client named: none or an empty one is the scheme's default */
        fallback = (scheme->len == sizeof("https") - 1) ? 443 : 80;

        if (tail.len > 1) {
            named = tail.len - 1 <= sizeof("65535") - 1 ? ngx_atoi(tail.data + 1, tail.len - 1)
                                                        : NGX_ERROR;
            if (named == NGX_ERROR || named > 65535) {
                return NGX_OK;
            }

        } else {
            named = fallback;
        }

        if (ngx_connection_local_sockaddr(r->connection, NULL, 0) != NGX_OK) {
            return NGX_ERROR;
        }

        local = ngx_inet_get_port(r->connection->local_sockaddr);

        if (local == 0 || (ngx_uint_t) named != local) {
            if (check > 1 && local == 0) {
                ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                              "jwtguard: a DPoP proof cannot be for \"%V\": this request "
                              "arrived on a socket without a port (jwtguard_dpop_origin pins "
                              "the public origins)", &host);

            } else if (check > 1) {
                ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                              "jwtguard: a DPoP proof cannot be for \"%V\" on port %i: this "
                              "request arrived on port %ui (a client names the port it "
                              "reaches; behind port mapping, jwtguard_dpop_origin pins the "
                              "public origins)", &host, named, local);
            }

            return NGX_OK;
        }

        /* the URL names that port: the default one by omission, as the core's normal form */
        tail.data = text;
        tail.len = 0;

        if (local != fallback) {
            tail.len = ngx_snprintf(text, sizeof(text), ":%ui", local) - text;
        }
    }

    url->len = scheme->len + sizeof("://") - 1 + host.len + tail.len + m->unparsed_uri.len;
    url->data = ngx_pnalloc(r->pool, url->len);
    if (url->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(url->data, scheme->data, scheme->len);
    p = ngx_cpymem(p, "://", sizeof("://") - 1);
    host.data = p;
    p = ngx_cpymem(p, m->headers_in.server.data, m->headers_in.server.len);
    if (tail.len) {
        p = ngx_cpymem(p, tail.data, tail.len);
    }
    host.len = p - host.data;
    p = ngx_cpymem(p, m->unparsed_uri.data, m->unparsed_uri.len);

    if (!jwt_is_authority((const char *) host.data, host.len)) {
        ngx_str_null(url);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_jwtguard_check(ngx_http_request_t *r)
{
    jwt_status                     status;
    jwt_claims                    *claims;
    uint64_t                       epoch;
    ngx_str_t                      token, dpop, url, *scope;
    ngx_uint_t                     i, proof, again;
    ngx_table_elt_t               *authorization;
    ngx_pool_cleanup_t            *cln;
    ngx_http_jwtguard_ctx_t       *ctx;
    ngx_http_jwtguard_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_jwtguard_module);

    if (!lcf->enable || lcf->verifier == NULL) {
        return NGX_DECLINED;
    }

    ngx_str_null(&url);
    ctx = ngx_http_jwtguard_get_ctx(r);

    if (ctx != NULL && ctx->verified) {

        /*
         * The same policy again (an internal redirect within it): the same verdict, unless
         * it was given to a DPoP proof and this location's proof URL is another one (a
         * jwtguard_dpop_url of its own, or one built from $uri): that URL is checked again.
         */
        if (ctx->verifier == lcf->verifier && ctx->scopes == lcf->scopes
            && ctx->token == lcf->token)
        {
            /*
             * The error page of this very refusal (error_page 401 /errors/401.json in a
             * location under the same policy): serve it with the challenge already set,
             * instead of challenging it again. A location with another policy is verified
             * again below, and a second refusal ends in nginx's plain error page.
             */
            if (ctx->status != JWT_STATUS_OK && r->error_page) {
                return NGX_DECLINED;
            }

            if (ctx->proof) {
                if (ngx_http_jwtguard_proof_url(r, lcf, 0, &url) != NGX_OK) {
                    return NGX_HTTP_INTERNAL_SERVER_ERROR;
                }
            }

            if (!ctx->proof
                || (url.len == ctx->url.len
                    && ngx_memcmp(url.data, ctx->url.data, url.len) == 0))
            {
                if (ctx->status == JWT_STATUS_OK) {
                    return NGX_OK;
                }

                return ngx_http_jwtguard_challenge(r, lcf, ctx->status);
            }
        }

        /*
         * Another location's policy: verify again, against it. The old claims stay alive
         * until the request ends: variables evaluated earlier (the access log reads them
         * later) may point into them.
         */
        if (ctx->claims != NULL) {
            cln = ngx_pool_cleanup_add(r->pool, 0);
            if (cln == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            cln->handler = ngx_http_jwtguard_free_claims;
            cln->data = ctx->claims;
            ctx->claims = NULL;
        }

        ctx->verified = 0;
        ctx->waited = 0;
        ctx->challenge = NULL;
    }

    if (ctx == NULL) {
        cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_jwtguard_ctx_t));
        if (cln == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx = cln->data;
        ngx_memzero(ctx, sizeof(ngx_http_jwtguard_ctx_t));
        ctx->request = r;
        cln->handler = ngx_http_jwtguard_cleanup;
        ngx_http_set_ctx(r, ctx, ngx_http_jwtguard_module);
    }

    claims = NULL;
    proof = 0;
    /* Fetches ended so far: one that ends while this verification runs brought keys it did
     * not see, so its refusal for want of keys is retried like one during a fetch. */
    epoch = jwt_verifier_fetch_epoch(lcf->verifier);

    if (lcf->token) {
        if (ngx_http_complex_value(r, lcf->token, &token) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (token.len == 0) {
            status = jwt_verify_authorization(lcf->verifier, NULL, 0, &claims);

        } else {
            status = jwt_verify(lcf->verifier, (const char *) token.data,
                                token.len, &claims);
        }

    } else {
        /*
         * The client's request (a subrequest's own method is GET): its Authorization, its
         * DPoP lines, its method, and the URL it addressed.
         */
        authorization = r->headers_in.authorization;

        if (ngx_http_jwtguard_dpop_header(r, &dpop) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        proof = dpop.len > 0 && ngx_http_jwtguard_is_dpop(authorization);
        again = proof && ngx_http_jwtguard_proof_passed(r, lcf->verifier);

        if (ngx_http_jwtguard_proof_url(r, lcf, proof, &url) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        status = (again ? jwt_verify_request_again : jwt_verify_request)(lcf->verifier,
                                    authorization ? (const char *) authorization->value.data
                                                  : NULL,
                                    authorization ? authorization->value.len : 0,
                                    (const char *) dpop.data, dpop.len,
                                    (const char *) r->main->method_name.data,
                                    r->main->method_name.len,
                                    (const char *) url.data, url.len, &claims);

        if (status == JWT_STATUS_OK && proof && !again) {
            cln = ngx_pool_cleanup_add(r->main->pool, 0);
            if (cln == NULL) {
                jwt_claims_free(claims);
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            cln->handler = ngx_http_jwtguard_proof_mark;
            cln->data = lcf->verifier;
        }
    }

    if ((status == JWT_STATUS_KEY_NOT_FOUND || status == JWT_STATUS_KEYS_UNAVAILABLE)
        && r == r->main
        && ctx->waited < NGX_HTTP_JWTGUARD_WAIT_MAX
        && (jwt_verifier_fetching(lcf->verifier)
            || jwt_verifier_fetch_epoch(lcf->verifier) != epoch))
    {
        ctx->waited += NGX_HTTP_JWTGUARD_WAIT_STEP;
        r->connection->write->delayed = 1;
        ngx_add_timer(r->connection->write, NGX_HTTP_JWTGUARD_WAIT_STEP);
        r->read_event_handler = ngx_http_test_reading;
        r->write_event_handler = ngx_http_jwtguard_wake;
        return NGX_AGAIN;
    }

    ctx->claims = claims;
    ctx->verified = 1;
    ctx->verifier = lcf->verifier;
    ctx->scopes = lcf->scopes;
    ctx->token = lcf->token;
    ctx->proof = proof;
    ctx->url = url;

    if (status == JWT_STATUS_OK && lcf->scopes) {
        scope = lcf->scopes->elts;

        for (i = 0; i < lcf->scopes->nelts; i++) {
            if (!jwt_has_scope(claims, (const char *) scope[i].data, scope[i].len)) {
                status = JWT_STATUS_INSUFFICIENT_SCOPE;
                break;
            }
        }
    }

    ctx->status = status;

    if (status == JWT_STATUS_OK) {
        return NGX_OK;
    }

    ngx_http_jwtguard_log_refusal(r, status);

    return ngx_http_jwtguard_challenge(r, lcf, status);
}


/*
 * Refusals are the client's business: one line each at info, as nginx's own client errors.
 * Keys that cannot be had are the operator's: a warning at most once a second per worker,
 * with the count of requests refused for it since the last one (an outage must not become a
 * disk flood).
 */
static void
ngx_http_jwtguard_log_refusal(ngx_http_request_t *r, jwt_status status)
{
    static ngx_uint_t  unavailable;
    static time_t      reported;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0, "jwtguard: request refused: %s",
                  jwt_status_reason(status));

    if (status != JWT_STATUS_KEYS_UNAVAILABLE) {
        return;
    }

    unavailable++;

    if (ngx_time() != reported) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "jwtguard: %ui request(s) refused since the last report: keys "
                      "unavailable", unavailable);
        unavailable = 0;
        reported = ngx_time();
    }
}


static void
ngx_http_jwtguard_wake(ngx_http_request_t *r)
{
    ngx_event_t  *wev;

    wev = r->connection->write;

    if (wev->delayed) {
        if (ngx_handle_write_event(wev, 0) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        }

        return;
    }

    if (ngx_handle_read_event(r->connection->read, 0) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_http_core_run_phases;

    ngx_http_core_run_phases(r);
}


static u_char *
ngx_http_jwtguard_quoted(u_char *p, const char *text)
{
    for ( /* void */ ; *text; text++) {
        if (*text == '"' || *text == '\\') {
            *p++ = '\\';
        }
        *p++ = (u_char) *text;
    }

    return p;
}


static ngx_int_t
ngx_http_jwtguard_challenge(ngx_http_request_t *r,
    ngx_http_jwtguard_loc_conf_t *lcf, jwt_status status)
{
    ngx_str_t                 text;
    ngx_uint_t                http;
    ngx_table_elt_t          *h;
    ngx_http_jwtguard_ctx_t  *ctx;

    http = jwt_status_http_status(status);

    if (http == NGX_HTTP_SERVICE_UNAVAILABLE) {
        /* keys are being fetched: worth retrying soon (as the other hosts answer) */
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Retry-After");
        ngx_str_set(&h->value, "5");

        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    if (http != NGX_HTTP_UNAUTHORIZED && http != NGX_HTTP_FORBIDDEN
        && http != NGX_HTTP_BAD_REQUEST)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_jwtguard_challenge_text(r, lcf, status, &text) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "WWW-Authenticate");
    h->value = text;
    r->headers_out.www_authenticate = h;

    ctx = ngx_http_jwtguard_get_ctx(r);
    if (ctx != NULL) {
        ctx->challenge = h;
    }

    return http;
}


/*
 * The challenge for a refusal, from the library (what every host sends): RFC 6750's Bearer
 * challenge with realm, error, description and the required scopes and, unless DPoP is off,
 * RFC 9449's DPoP challenge with the allowed algorithms.
 */
static ngx_int_t
ngx_http_jwtguard_challenge_text(ngx_http_request_t *r, ngx_http_jwtguard_loc_conf_t *lcf,
    jwt_status status, ngx_str_t *text)
{
    size_t            len, needed;
    u_char           *p, *scopes;
    ngx_str_t        *scope;
    ngx_uint_t        i;
    jwt_status        rc;
    ngx_table_elt_t  *authorization;

    len = 0;
    scopes = NULL;

    if (lcf->scopes) {
        scope = lcf->scopes->elts;
        for (i = 0; i < lcf->scopes->nelts; i++) {
            len += scope[i].len + 1;
        }

        scopes = ngx_pnalloc(r->pool, len);
        if (scopes == NULL) {
            return NGX_ERROR;
        }

        p = scopes;
        for (i = 0; i < lcf->scopes->nelts; i++) {
            if (i > 0) {
                *p++ = ' ';
            }
            p = ngx_cpymem(p, scope[i].data, scope[i].len);
        }

        len = p - scopes;
    }

    /* a token from elsewhere (jwtguard_token) names no scheme */
    authorization = lcf->token ? NULL : r->main->headers_in.authorization;
    needed = 0;

    rc = jwt_verifier_challenge(lcf->verifier, status,
                                authorization ? (const char *) authorization->value.data
                                              : NULL,
                                authorization ? authorization->value.len : 0,
                                (const char *) lcf->realm.data, lcf->realm.len,
                                (const char *) scopes, len, NULL, 0, &needed);

    if (rc != JWT_STATUS_OK && rc != JWT_STATUS_INVALID_ARGUMENT) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(r->pool, needed + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    rc = jwt_verifier_challenge(lcf->verifier, status,
                                authorization ? (const char *) authorization->value.data
                                              : NULL,
                                authorization ? authorization->value.len : 0,
                                (const char *) lcf->realm.data, lcf->realm.len,
                                (const char *) scopes, len, (char *) p, needed + 1, &needed);

    if (rc != JWT_STATUS_OK) {
        return NGX_ERROR;
    }

    text->data = p;
    text->len = needed;

    return NGX_OK;
}


/*
 * $jwt_error_code, $jwt_error_description (JSON-safe) and $jwt_error_challenge, for custom
 * error pages that answer what the other hosts answer. They speak for this request's refusal;
 * for a request nginx refused itself before any check because it carries two Authorization
 * lines, for the malformed-header refusal every other host gives it (the challenge is set
 * only then: a refusal of the module carries its challenge already). Empty otherwise: an
 * error that is not jwtguard's (a `deny`, a missing file) is not described as one.
 */
static ngx_int_t
ngx_http_jwtguard_error_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    u_char                        *p;
    ngx_str_t                      text;
    ngx_uint_t                     i, lines;
    jwt_status                     status;
    const char                    *s;
    ngx_list_part_t               *part;
    ngx_table_elt_t               *h;
    ngx_http_jwtguard_ctx_t       *ctx;
    ngx_http_jwtguard_loc_conf_t  *lcf;

    v->not_found = 1;

    ctx = ngx_http_jwtguard_get_ctx(r);

    if (ctx != NULL && ctx->verified) {
        if (ctx->status == JWT_STATUS_OK || data == 2) {
            return NGX_OK;
        }

        /*
         * Overruled: under `satisfy any`, another access module allowed the request and
         * nginx hid the refusal's challenge. A later error is not this refusal.
         */
        if (ctx->challenge != NULL && ctx->challenge->hash == 0) {
            return NGX_OK;
        }

        status = ctx->status;

    } else {
        lines = 0;
        part = &r->headers_in.headers.part;
        h = part->elts;

        for (i = 0; /* void */ ; i++) {
            if (i >= part->nelts) {
                if (part->next == NULL) {
                    break;
                }

                part = part->next;
                h = part->elts;
                i = 0;
            }

            if (h[i].key.len == sizeof("Authorization") - 1
                && ngx_strncasecmp(h[i].key.data, (u_char *) "Authorization",
                                   sizeof("Authorization") - 1) == 0)
            {
                lines++;
            }
        }

        if (lines < 2) {
            return NGX_OK;
        }

        status = JWT_STATUS_AUTHORIZATION_HEADER_MALFORMED;
    }

    if (data == 2) {
        lcf = ngx_http_get_module_loc_conf(r, ngx_http_jwtguard_module);
        if (ngx_http_jwtguard_challenge_text(r, lcf, status, &text) != NGX_OK) {
            return NGX_ERROR;
        }

        v->data = text.data;
        v->len = text.len;

    } else if (data == 1) {
        s = jwt_status_description(status);
        p = ngx_pnalloc(r->pool, 2 * ngx_strlen(s));
        if (p == NULL) {
            return NGX_ERROR;
        }

        v->data = p;
        v->len = ngx_http_jwtguard_quoted(p, s) - p;

    } else {
        s = jwt_status_code(status);
        v->data = (u_char *) s;
        v->len = ngx_strlen(s);
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_jwtguard_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    const char               *reason;
    ngx_http_jwtguard_ctx_t  *ctx;

    ctx = ngx_http_jwtguard_get_ctx(r);
    if (ctx == NULL || !ctx->verified) {
        /* never verified (or still waiting for keys when the client left) */
        v->not_found = 1;
        return NGX_OK;
    }

    reason = jwt_status_reason(ctx->status);
    v->data = (u_char *) reason;
    v->len = ngx_strlen(reason);
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_jwtguard_claims_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    size_t                    i, len;
    const char               *json;
    ngx_http_jwtguard_ctx_t  *ctx;

    ctx = ngx_http_jwtguard_get_ctx(r);
    if (ctx == NULL || ctx->claims == NULL
        || jwt_claims_json(ctx->claims, &json, &len) != JWT_STATUS_OK)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    /*
     * Borrowed from the claims handle, which lives as long as the request pool. JSON strings
     * cannot hold raw control characters, but the whitespace between members can (CR, LF,
     * TAB): such a payload is copied with spaces instead, so the value is header-safe.
     */
    v->data = (u_char *) json;
    v->len = len;

    for (i = 0; i < len; i++) {
        if ((u_char) json[i] < 0x20 || json[i] == 0x7f) {
            break;
        }
    }

    if (i < len) {
        v->data = ngx_pnalloc(r->pool, len);
        if (v->data == NULL) {
            return NGX_ERROR;
        }

        for (i = 0; i < len; i++) {
            v->data[i] = ((u_char) json[i] < 0x20 || json[i] == 0x7f) ? ' ' : json[i];
        }
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_jwtguard_claim_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    size_t      prefix;
    ngx_str_t  *name;

    name = (ngx_str_t *) data;
    prefix = sizeof("jwt_claim_") - 1;

    if (name->len <= prefix) {
        v->not_found = 1;
        return NGX_OK;
    }

    return ngx_http_jwtguard_claim_text(r, v, name->data + prefix, name->len - prefix);
}


/* A variable of jwtguard_claim_variable: the claim named exactly so (camelCase included). */
static ngx_int_t
ngx_http_jwtguard_named_claim_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t  *claim = (ngx_str_t *) data;

    return ngx_http_jwtguard_claim_text(r, v, claim->data, claim->len);
}


static ngx_int_t
ngx_http_jwtguard_claim_text(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    u_char *claim, size_t len)
{
    size_t                    needed;
    u_char                   *buffer;
    ngx_http_jwtguard_ctx_t  *ctx;

    ctx = ngx_http_jwtguard_get_ctx(r);

    if (ctx == NULL || ctx->claims == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    /* escaped: a claim's CR, LF or NUL never reaches a header (jwtguard.h) */
    needed = 0;
    if (jwt_claims_get_header_text(ctx->claims, (const char *) claim, len, NULL, 0, &needed)
        == JWT_STATUS_CLAIM_NOT_FOUND)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    buffer = ngx_pnalloc(r->pool, needed + 1);
    if (buffer == NULL) {
        return NGX_ERROR;
    }

    if (jwt_claims_get_header_text(ctx->claims, (const char *) claim, len,
                                   (char *) buffer, needed + 1, &needed)
        != JWT_STATUS_OK)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = buffer;
    v->len = needed;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


static void *
ngx_http_jwtguard_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_jwtguard_main_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_jwtguard_main_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->verifiers = ngx_array_create(cf->pool, 4, sizeof(jwt_verifier *));
    if (conf->verifiers == NULL) {
        return NULL;
    }

    conf->cache_ttl = NGX_CONF_UNSET;
    conf->refetch_cooldown = NGX_CONF_UNSET;
    conf->max_stale = NGX_CONF_UNSET;
    conf->scheme_index = NGX_ERROR;

    return conf;
}


static void *
ngx_http_jwtguard_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_jwtguard_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_jwtguard_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->issuers = NULL;
     *     conf->audiences = NULL;
     *     conf->jwks_uri = { 0, NULL };
     *     conf->algorithms = NULL;
     *     conf->scopes = NULL;
     *     conf->token = NULL;
     *     conf->realm = { 0, NULL };
     *     conf->dpop_url = NULL;
     *     conf->dpop_origins = NULL;
     *     conf->verifier = NULL;
     */

    conf->enable = NGX_CONF_UNSET;
    conf->leeway = NGX_CONF_UNSET;
    conf->strict = NGX_CONF_UNSET;
    conf->dpop = NGX_CONF_UNSET_UINT;
    conf->dpop_window = NGX_CONF_UNSET;
    conf->dpop_replay_cache = NGX_CONF_UNSET;
    conf->token_cache = NGX_CONF_UNSET;

    return conf;
}


static void
ngx_http_jwtguard_free_verifier(void *data)
{
    jwt_verifier_free(data);
}


static ngx_int_t
ngx_http_jwtguard_add_list(ngx_conf_t *cf, jwt_config *config, ngx_array_t *list,
    jwt_status (*add)(jwt_config *, const char *, size_t), const char *what)
{
    ngx_str_t   *value;
    ngx_uint_t   i;
    jwt_status   status;

    if (list == NULL) {
        return NGX_OK;
    }

    value = list->elts;

    for (i = 0; i < list->nelts; i++) {
        status = add(config, (const char *) value[i].data, value[i].len);
        if (status != JWT_STATUS_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "jwtguard: invalid %s \"%V\": %s",
                               what, &value[i], jwt_status_description(status));
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* A duration the library refused (out of its bounds): a configuration error. */
static ngx_int_t
ngx_http_jwtguard_setting(ngx_conf_t *cf, const char *directive, time_t value,
    jwt_status status)
{
    if (status == JWT_STATUS_OK) {
        return NGX_OK;
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "jwtguard: \"%s %T\" is out of range (%s)",
                       directive, value, jwt_status_description(status));

    return NGX_ERROR;
}


/*
 * The snapshot file keeps the last good keys across reloads and restarts: new workers verify
 * with them at once, even while the issuer is down. Unless configured (a path, or `off`),
 * it lives in a "jwtguard" directory beside nginx's client body temp directory (on Debian,
 * /var/lib/nginx/jwtguard), which the master creates for the worker user at start.
 */
static char *
ngx_http_jwtguard_set_snapshot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_jwtguard_main_conf_t *jmcf = conf;

    ngx_str_t  *value;

    if (jmcf->snapshot_set) {
        return "is duplicate";
    }

    value = cf->args->elts;
    jmcf->snapshot_set = 1;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        ngx_str_null(&jmcf->snapshot);
        return NGX_CONF_OK;
    }

    if (value[1].len == 0) {
        return "needs a path or \"off\"";
    }

    jmcf->snapshot = value[1];

    if (ngx_conf_full_name(cf->cycle, &jmcf->snapshot, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* jwtguard_token_cache N | off: verified tokens each worker remembers (default 10000). */
static char *
ngx_http_jwtguard_set_token_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_jwtguard_loc_conf_t *lcf = conf;

    ngx_str_t  *value;

    if (lcf->token_cache != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        lcf->token_cache = 0;
        return NGX_CONF_OK;
    }

    lcf->token_cache = ngx_atoi(value[1].data, value[1].len);
    if (lcf->token_cache == NGX_ERROR) {
        lcf->token_cache = NGX_CONF_UNSET;
        return "needs a number of entries or \"off\"";
    }

    return NGX_CONF_OK;
}


/*
 * jwtguard_claim_variable $name claimName: nginx lowercases variable names, so
 * $jwt_claim_<name> cannot reach a claim such as clientId; this names one that can (with the
 * same header-safe text).
 */
static char *
ngx_http_jwtguard_set_claim_variable(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t            *value, *claim;
    ngx_http_variable_t  *var;

    value = cf->args->elts;

    if (value[1].len < 2 || value[1].data[0] != '$') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "jwtguard: invalid variable name \"%V\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    if (value[2].len == 0) {
        return "needs a claim name";
    }

    value[1].data++;
    value[1].len--;

    claim = ngx_palloc(cf->pool, sizeof(ngx_str_t));
    if (claim == NULL) {
        return NGX_CONF_ERROR;
    }

    *claim = value[2];

    var = ngx_http_add_variable(cf, &value[1], NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_CONF_ERROR;
    }

    var->get_handler = ngx_http_jwtguard_named_claim_variable;
    var->data = (uintptr_t) claim;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_jwtguard_choose_snapshot(ngx_conf_t *cf, ngx_http_jwtguard_main_conf_t *jmcf)
{
    u_char                    *p, *last;
    ngx_str_t                  base;
    ngx_http_core_loc_conf_t  *clcf;

    static ngx_str_t  dir_name = ngx_string("jwtguard");
    static ngx_str_t  file_name = ngx_string("jwks-snapshot.json");

    if (jmcf->snapshot_set) {
        return NGX_OK;
    }

    jmcf->snapshot_set = 1;

    /* merged already: the core module's configuration is merged before this module's */
    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->client_body_temp_path == NULL) {
        ngx_str_null(&jmcf->snapshot);
        return NGX_OK;
    }

    base = clcf->client_body_temp_path->name;
    last = NULL;
    for (p = base.data; p < base.data + base.len; p++) {
        if (*p == '/') {
            last = p;
        }
    }

    base.len = last ? (size_t) (last - base.data) : 0;

    jmcf->state_dir.len = base.len + (base.len ? 1 : 0) + dir_name.len;
    jmcf->state_dir.data = ngx_pnalloc(cf->pool, jmcf->state_dir.len + 1);
    if (jmcf->state_dir.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(jmcf->state_dir.data, base.data, base.len);
    if (base.len) {
        *p++ = '/';
    }
    p = ngx_cpymem(p, dir_name.data, dir_name.len);
    *p = '\0';

    if (ngx_conf_full_name(cf->cycle, &jmcf->state_dir, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    jmcf->snapshot.len = jmcf->state_dir.len + 1 + file_name.len;
    jmcf->snapshot.data = ngx_pnalloc(cf->pool, jmcf->snapshot.len + 1);
    if (jmcf->snapshot.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(jmcf->snapshot.data, jmcf->state_dir.data, jmcf->state_dir.len);
    *p++ = '/';
    p = ngx_cpymem(p, file_name.data, file_name.len);
    *p = '\0';

    return NGX_OK;
}


/* What every issuer of a verifier shares: the snapshot, CA file and key cache settings. */
static ngx_int_t
ngx_http_jwtguard_shared(ngx_conf_t *cf, ngx_http_jwtguard_main_conf_t *jmcf,
    jwt_config *config)
{
    /* the event loop must never wait on the network */
    jwt_config_set_non_blocking(config, true);

    if (ngx_http_jwtguard_choose_snapshot(cf, jmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (jmcf->snapshot.len) {
        jwt_config_set_snapshot(config, (const char *) jmcf->snapshot.data,
                                jmcf->snapshot.len);
    }

    if (jmcf->ca_file.len) {
        if (ngx_conf_full_name(cf->cycle, &jmcf->ca_file, 0) != NGX_OK) {
            return NGX_ERROR;
        }

        jwt_config_set_ca_file(config, (const char *) jmcf->ca_file.data,
                               jmcf->ca_file.len);
    }

    if ((jmcf->cache_ttl != NGX_CONF_UNSET
         && ngx_http_jwtguard_setting(cf, "jwtguard_cache_ttl", jmcf->cache_ttl,
                                      jwt_config_set_cache_ttl(config,
                                                               (uint64_t) jmcf->cache_ttl))
            != NGX_OK)
        || (jmcf->refetch_cooldown != NGX_CONF_UNSET
            && ngx_http_jwtguard_setting(cf, "jwtguard_refetch_cooldown",
                                         jmcf->refetch_cooldown,
                                         jwt_config_set_refetch_cooldown(config,
                                             (uint64_t) jmcf->refetch_cooldown))
               != NGX_OK)
        || (jmcf->max_stale != NGX_CONF_UNSET
            && ngx_http_jwtguard_setting(cf, "jwtguard_max_stale", jmcf->max_stale,
                                         jwt_config_set_max_stale(config,
                                             (uint64_t) jmcf->max_stale))
               != NGX_OK))
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* One line of a jwtguard_issuers block: ISSUER key=value... (checked when it was read). */
static ngx_int_t
ngx_http_jwtguard_apply_line(ngx_conf_t *cf, jwt_config *config, ngx_array_t *line)
{
    u_char      *p, *last, *comma;
    ngx_int_t    n;
    ngx_str_t   *word, key, val;
    ngx_uint_t   i;
    jwt_status   status;

    word = line->elts;

    status = jwt_config_add_issuer(config, (const char *) word[0].data, word[0].len);

    for (i = 1; status == JWT_STATUS_OK && i < line->nelts; i++) {
        p = (u_char *) ngx_strlchr(word[i].data, word[i].data + word[i].len, '=');
        key.data = word[i].data;
        key.len = p - word[i].data;
        val.data = p + 1;
        val.len = word[i].data + word[i].len - val.data;

        if (ngx_strncmp(key.data, "audience", key.len) == 0 && key.len == 8) {
            status = jwt_config_add_audience(config, (const char *) val.data, val.len);

        } else if (ngx_strncmp(key.data, "jwks_uri", key.len) == 0 && key.len == 8) {
            status = jwt_config_set_jwks_uri(config, (const char *) val.data, val.len);

        } else if (ngx_strncmp(key.data, "algorithms", key.len) == 0 && key.len == 10) {
            last = val.data + val.len;
            for (p = val.data; status == JWT_STATUS_OK && p < last; p = comma + 1) {
                comma = (u_char *) ngx_strlchr(p, last, ',');
                if (comma == NULL) {
                    comma = last;
                }
                status = jwt_config_add_algorithm(config, (const char *) p, comma - p);
            }

        } else if (ngx_strncmp(key.data, "leeway", key.len) == 0 && key.len == 6) {
            n = ngx_atoi(val.data, val.len);
            status = n == NGX_ERROR ? JWT_STATUS_INVALID_ARGUMENT
                                    : jwt_config_set_leeway(config, (uint64_t) n);

        } else {
            /* strict=on|off */
            status = jwt_config_set_strict(config, val.len == 2);
        }

        if (status != JWT_STATUS_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "jwtguard_issuers: \"%V\" for %V: %s", &word[i], &word[0],
                               jwt_status_description(status));
            return NGX_ERROR;
        }
    }

    if (status != JWT_STATUS_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "jwtguard_issuers: invalid issuer \"%V\": %s",
                           &word[0], jwt_status_description(status));
        return NGX_ERROR;
    }

    return NGX_OK;
}


static jwt_verifier *
ngx_http_jwtguard_make_verifier(ngx_conf_t *cf, ngx_http_jwtguard_loc_conf_t *conf)
{
    jwt_status                      status;
    jwt_config                     *config, *more;
    jwt_verifier                   *verifier, **slot;
    ngx_uint_t                      i, first;
    ngx_array_t                   **line;
    ngx_pool_cleanup_t             *cln;
    ngx_http_jwtguard_main_conf_t  *jmcf;

    jmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_jwtguard_module);

    config = jwt_config_new();
    if (config == NULL) {
        return NULL;
    }

    verifier = NULL;
    line = conf->more_issuers ? conf->more_issuers->elts : NULL;

    if (ngx_http_jwtguard_shared(cf, jmcf, config) != NGX_OK) {
        goto cleanup;
    }

    if (conf->issuers == NULL) {
        /* No jwtguard_issuer here: the block's first line is the first issuer. */
        if (conf->audiences || conf->algorithms || conf->jwks_uri.len) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "jwtguard_audience, jwtguard_algorithms and jwtguard_jwks_uri "
                               "apply to jwtguard_issuer's issuer: without one, give them on "
                               "the jwtguard_issuers lines (audience=, algorithms=, jwks_uri=)");
            goto cleanup;
        }

        first = 1;
        if (ngx_http_jwtguard_apply_line(cf, config, line[0]) != NGX_OK) {
            goto cleanup;
        }

    } else {
        first = 0;

        if (ngx_http_jwtguard_add_list(cf, config, conf->issuers,
                                       jwt_config_add_issuer, "issuer") != NGX_OK
            || ngx_http_jwtguard_add_list(cf, config, conf->audiences,
                                          jwt_config_add_audience, "audience") != NGX_OK
            || ngx_http_jwtguard_add_list(cf, config, conf->algorithms,
                                          jwt_config_add_algorithm, "algorithm") != NGX_OK)
        {
            goto cleanup;
        }

        jwt_config_set_strict(config, conf->strict ? true : false);

        if (ngx_http_jwtguard_setting(cf, "jwtguard_leeway", conf->leeway,
                                      jwt_config_set_leeway(config, (uint64_t) conf->leeway))
            != NGX_OK)
        {
            goto cleanup;
        }

        if (conf->jwks_uri.len) {
            jwt_config_set_jwks_uri(config, (const char *) conf->jwks_uri.data,
                                    conf->jwks_uri.len);
        }
    }

    for (i = first; conf->more_issuers && i < conf->more_issuers->nelts; i++) {
        more = jwt_config_new();
        if (more == NULL) {
            goto cleanup;
        }

        if (ngx_http_jwtguard_shared(cf, jmcf, more) != NGX_OK
            || ngx_http_jwtguard_apply_line(cf, more, line[i]) != NGX_OK)
        {
            jwt_config_free(more);
            goto cleanup;
        }

        status = jwt_config_add_issuer_config(config, more);
        jwt_config_free(more);

        if (status != JWT_STATUS_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "jwtguard_issuers: %s",
                               jwt_status_description(status));
            goto cleanup;
        }
    }

    jwt_config_set_dpop(config, (uint32_t) conf->dpop);

    if (ngx_http_jwtguard_add_list(cf, config, conf->dpop_origins,
                                   jwt_config_add_dpop_origin,
                                   "jwtguard_dpop_origin (an origin is scheme://host[:port], "
                                   "no path)") != NGX_OK
        || (conf->token_cache != NGX_CONF_UNSET
            && ngx_http_jwtguard_setting(cf, "jwtguard_token_cache",
                                         (time_t) conf->token_cache,
                                         jwt_config_set_token_cache(config,
                                             (uint64_t) conf->token_cache))
               != NGX_OK))
    {
        goto cleanup;
    }

    if (ngx_http_jwtguard_setting(cf, "jwtguard_dpop_window", conf->dpop_window,
                                  jwt_config_set_dpop_window(config,
                                                             (uint64_t) conf->dpop_window))
            != NGX_OK
        || ngx_http_jwtguard_setting(cf, "jwtguard_dpop_replay_cache",
                                     (time_t) conf->dpop_replay_cache,
                                     jwt_config_set_dpop_replay_cache(config,
                                         (uint64_t) conf->dpop_replay_cache))
           != NGX_OK)
    {
        goto cleanup;
    }

    status = jwt_verifier_new(config, &verifier);
    if (status != JWT_STATUS_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "jwtguard: %s",
                           jwt_status_description(status));
        goto cleanup;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        jwt_verifier_free(verifier);
        verifier = NULL;
        goto cleanup;
    }

    cln->handler = ngx_http_jwtguard_free_verifier;
    cln->data = verifier;

    slot = ngx_array_push(jmcf->verifiers);
    if (slot == NULL) {
        verifier = NULL;
        goto cleanup;
    }

    *slot = verifier;

cleanup:

    jwt_config_free(config);

    return verifier;
}


/*
 * The plain server_name values of the server being merged, for the default proof URL: NULL
 * when the server takes any Host by name (no name but "" or "_", a wildcard or a regular
 * expression), NGX_CONF_ERROR on a failed allocation. Gathered once per server.
 */
static ngx_array_t *
ngx_http_jwtguard_server_names(ngx_conf_t *cf)
{
    ngx_str_t                      *name;
    ngx_uint_t                      i;
    ngx_array_t                    *names;
    ngx_http_server_name_t         *sn;
    ngx_http_core_srv_conf_t       *cscf;
    ngx_http_jwtguard_main_conf_t  *jmcf;

    jmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_jwtguard_module);
    cscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_core_module);

    if (jmcf->names_of == cscf) {
        return jmcf->names;
    }

    names = NULL;
    sn = cscf->server_names.elts;

    for (i = 0; i < cscf->server_names.nelts; i++) {
        if (sn[i].name.len == 0 || (sn[i].name.len == 1 && sn[i].name.data[0] == '_')) {
            continue;
        }

        if (
#if (NGX_PCRE)
            sn[i].regex != NULL ||
#endif
            sn[i].name.data[0] == '~' || sn[i].name.data[0] == '.'
            || ngx_strlchr(sn[i].name.data, sn[i].name.data + sn[i].name.len, '*') != NULL)
        {
            names = NULL;
            break;
        }

        if (names == NULL) {
            names = ngx_array_create(cf->pool, cscf->server_names.nelts, sizeof(ngx_str_t));
            if (names == NULL) {
                return NGX_CONF_ERROR;
            }
        }

        name = ngx_array_push(names);
        if (name == NULL) {
            return NGX_CONF_ERROR;
        }

        name->len = sn[i].name.len;
        name->data = ngx_pstrdup(cf->pool, &sn[i].name);
        if (name->data == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    jmcf->names_of = cscf;
    jmcf->names = names;

    return names;
}


static char *
ngx_http_jwtguard_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_jwtguard_loc_conf_t *prev = parent;
    ngx_http_jwtguard_loc_conf_t *conf = child;

    ngx_uint_t  own;

    if (conf->issuers == NULL && prev->issuers == NULL
        && (conf->more_issuers != NULL || prev->more_issuers != NULL)
        && (conf->leeway != NGX_CONF_UNSET || conf->strict != NGX_CONF_UNSET))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "jwtguard_leeway and jwtguard_strict apply to jwtguard_issuer's "
                           "issuer: without one, give them on the jwtguard_issuers lines "
                           "(leeway=, strict=)");
        return NGX_CONF_ERROR;
    }

    own = conf->issuers != NULL || conf->audiences != NULL || conf->more_issuers != NULL
          || conf->jwks_uri.data != NULL || conf->algorithms != NULL
          || conf->leeway != NGX_CONF_UNSET || conf->strict != NGX_CONF_UNSET
          || conf->dpop != NGX_CONF_UNSET_UINT || conf->dpop_window != NGX_CONF_UNSET
          || conf->dpop_replay_cache != NGX_CONF_UNSET || conf->dpop_origins != NULL
          || conf->token_cache != NGX_CONF_UNSET;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    if (conf->issuers == NULL) {
        conf->issuers = prev->issuers;
    }

    if (conf->audiences == NULL) {
        conf->audiences = prev->audiences;
    }

    if (conf->more_issuers == NULL) {
        conf->more_issuers = prev->more_issuers;
    }

    if (conf->algorithms == NULL) {
        conf->algorithms = prev->algorithms;
    }

    if (conf->scopes == NULL) {
        conf->scopes = prev->scopes;
    }

    ngx_conf_merge_str_value(conf->jwks_uri, prev->jwks_uri, "");
    ngx_conf_merge_sec_value(conf->leeway, prev->leeway, 60);
    ngx_conf_merge_value(conf->strict, prev->strict, 0);
    ngx_conf_merge_str_value(conf->realm, prev->realm, "api");
    ngx_conf_merge_uint_value(conf->dpop, prev->dpop, JWT_DPOP_MODE_ALLOWED);
    ngx_conf_merge_sec_value(conf->dpop_window, prev->dpop_window, 60);
    ngx_conf_merge_value(conf->dpop_replay_cache, prev->dpop_replay_cache, 250000);

    ngx_conf_merge_value(conf->token_cache, prev->token_cache, NGX_CONF_UNSET);

    if (conf->dpop_url == NULL) {
        conf->dpop_url = prev->dpop_url;
    }

    if (conf->dpop_origins == NULL) {
        conf->dpop_origins = prev->dpop_origins;
    }

    conf->server_names = ngx_http_jwtguard_server_names(cf);
    if (conf->server_names == NGX_CONF_ERROR) {
        return NGX_CONF_ERROR;
    }

    if (conf->token == NULL) {
        conf->token = prev->token;
    }

    if (!own && prev->verifier) {
        conf->verifier = prev->verifier;

    } else if ((conf->issuers && conf->audiences) || (conf->more_issuers && !conf->issuers)) {
        conf->verifier = ngx_http_jwtguard_make_verifier(cf, conf);
        if (conf->verifier == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (conf->enable && conf->verifier == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"jwtguard on\" needs \"jwtguard_issuer\" and "
                           "\"jwtguard_audience\", or a \"jwtguard_issuers\" block");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_jwtguard_set_list(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_str_t     *value, *item;
    ngx_uint_t     i;
    ngx_array_t  **list;

    list = (ngx_array_t **) (p + cmd->offset);

    if (*list == NULL) {
        *list = ngx_array_create(cf->pool, 4, sizeof(ngx_str_t));
        if (*list == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        item = ngx_array_push(*list);
        if (item == NULL) {
            return NGX_CONF_ERROR;
        }

        *item = value[i];
    }

    return NGX_CONF_OK;
}


/*
 * Scopes are RFC 6749 scope tokens: printable ASCII without space, '"' or '\\'. Anything
 * else could never match a token's scope, so it is refused here instead of silently
 * refusing every request.
 */
static char *
ngx_http_jwtguard_issuers_block(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_jwtguard_loc_conf_t *lcf = conf;

    char        *rv;
    ngx_conf_t   save;

    if (lcf->more_issuers != NULL) {
        return "is duplicate";
    }

    lcf->more_issuers = ngx_array_create(cf->pool, 2, sizeof(ngx_array_t *));
    if (lcf->more_issuers == NULL) {
        return NGX_CONF_ERROR;
    }

    save = *cf;
    cf->handler = ngx_http_jwtguard_issuer_line;
    cf->handler_conf = conf;

    rv = ngx_conf_parse(cf, NULL);

    *cf = save;

    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (lcf->more_issuers->nelts == 0) {
        return "holds no issuer";
    }

    return NGX_CONF_OK;
}


/* ISSUER audience=A [audience=B ...] [jwks_uri=URL] [algorithms=A,B] [leeway=N] [strict=on|off] */
static char *
ngx_http_jwtguard_issuer_line(ngx_conf_t *cf, ngx_command_t *dummy, void *conf)
{
    ngx_http_jwtguard_loc_conf_t *lcf = conf;

    u_char        *eq;
    ngx_str_t     *value, *word;
    ngx_uint_t     i, audiences;
    ngx_array_t   *line, **slot;

    static const char  *keys[] = { "audience=", "jwks_uri=", "algorithms=", "leeway=",
                                   "strict=on", "strict=off", NULL };

    value = cf->args->elts;
    audiences = 0;

    for (i = 1; i < cf->args->nelts; i++) {
        const char  **key;

        eq = (u_char *) ngx_strlchr(value[i].data, value[i].data + value[i].len, '=');

        for (key = keys; *key; key++) {
            size_t  n = ngx_strlen(*key);

            if ((*key)[n - 1] == '=' ? (eq && (size_t) (eq - value[i].data) + 1 == n
                                        && ngx_strncmp(value[i].data, *key, n) == 0
                                        && value[i].len > n)
                                     : (value[i].len == n
                                        && ngx_strncmp(value[i].data, *key, n) == 0))
            {
                break;
            }
        }

        if (*key == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "jwtguard_issuers: unknown or empty parameter \"%V\" for %V "
                               "(audience=, jwks_uri=, algorithms=, leeway=, strict=on|off)",
                               &value[i], &value[0]);
            return NGX_CONF_ERROR;
        }

        if (key == keys) {
            audiences++;
        }
    }

    if (audiences == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "jwtguard_issuers: %V needs audience=...", &value[0]);
        return NGX_CONF_ERROR;
    }

    line = ngx_array_create(cf->pool, cf->args->nelts, sizeof(ngx_str_t));
    if (line == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < cf->args->nelts; i++) {
        word = ngx_array_push(line);
        if (word == NULL) {
            return NGX_CONF_ERROR;
        }
        *word = value[i];
    }

    slot = ngx_array_push(lcf->more_issuers);
    if (slot == NULL) {
        return NGX_CONF_ERROR;
    }
    *slot = line;

    return NGX_CONF_OK;
}


static char *
ngx_http_jwtguard_set_scopes(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t   *value;
    ngx_uint_t   i, j;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        if (value[i].len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "jwtguard: empty scope");
            return NGX_CONF_ERROR;
        }

        for (j = 0; j < value[i].len; j++) {
            if (value[i].data[j] <= 0x20 || value[i].data[j] >= 0x7f
                || value[i].data[j] == '"' || value[i].data[j] == '\\')
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "jwtguard: invalid scope \"%V\": a scope is one token of "
                                   "printable ASCII without spaces, quotes or backslashes; "
                                   "give several scopes as several arguments", &value[i]);
                return NGX_CONF_ERROR;
            }
        }
    }

    return ngx_http_jwtguard_set_list(cf, cmd, conf);
}


static ngx_int_t
ngx_http_jwtguard_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_jwtguard_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_jwtguard_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt            *h;
    ngx_http_core_main_conf_t      *cmcf;
    ngx_http_jwtguard_main_conf_t  *jmcf;

    static ngx_str_t  scheme = ngx_string("scheme");

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    jmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_jwtguard_module);

    jmcf->scheme_index = ngx_http_get_variable_index(cf, &scheme);
    if (jmcf->scheme_index == NGX_ERROR) {
        return NGX_ERROR;
    }

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_jwtguard_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_REWRITE_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_jwtguard_subrequest_handler;

    return NGX_OK;
}


static void
ngx_http_jwtguard_log(void *data, uint32_t level, const char *message,
    size_t message_len)
{
    ngx_uint_t  nginx_level;

    switch (level) {
    case JWT_LOG_LEVEL_ERROR:
        nginx_level = NGX_LOG_ERR;
        break;
    case JWT_LOG_LEVEL_WARN:
        nginx_level = NGX_LOG_WARN;
        break;
    case JWT_LOG_LEVEL_INFO:
        nginx_level = NGX_LOG_NOTICE;
        break;
    default:
        nginx_level = NGX_LOG_DEBUG;
        break;
    }

    ngx_log_error(nginx_level, (ngx_log_t *) data, 0, "%*s", message_len, message);
}


/*
 * In the master, after the configuration is read (at start and at each reload): make the
 * default snapshot directory, owned by the worker user (as nginx does for its temp paths),
 * and say when the workers cannot write a snapshot where it is configured.
 */
static ngx_int_t
ngx_http_jwtguard_init_module(ngx_cycle_t *cycle)
{
    int                             fd;
    u_char                         *dir, *p;
    ngx_str_t                       name;
    ngx_uint_t                      root, writable;
    ngx_file_info_t                 fi;
    ngx_core_conf_t                *ccf;
    ngx_http_jwtguard_main_conf_t  *jmcf;

    jmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_jwtguard_module);
    if (jmcf == NULL || jmcf->snapshot.len == 0 || jmcf->verifiers->nelts == 0) {
        return NGX_OK;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);
    root = geteuid() == 0 && ccf->user != (ngx_uid_t) NGX_CONF_UNSET_UINT;

    if (jmcf->state_dir.len) {
        if (ngx_create_dir(jmcf->state_dir.data, 0700) == NGX_FILE_ERROR
            && ngx_errno != NGX_EEXIST)
        {
            ngx_log_error(NGX_LOG_WARN, cycle->log, ngx_errno,
                          "jwtguard: cannot create the snapshot directory \"%V\": keys will "
                          "not survive a reload (set jwtguard_snapshot to a writable path)",
                          &jmcf->state_dir);
            return NGX_OK;
        }

        /* a directory itself, never what a symlink in its place points to */
        fd = open((const char *) jmcf->state_dir.data, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        if (fd == -1) {
            ngx_log_error(NGX_LOG_WARN, cycle->log, ngx_errno,
                          "jwtguard: the snapshot directory \"%V\" is not a directory: keys "
                          "will not survive a reload", &jmcf->state_dir);
            return NGX_OK;
        }

        if (root && fstat(fd, &fi) == 0 && fi.st_uid != ccf->user
            && fchown(fd, ccf->user, -1) == -1)
        {
            ngx_log_error(NGX_LOG_WARN, cycle->log, ngx_errno,
                          "jwtguard: chown(\"%V\") failed", &jmcf->state_dir);
        }

        close(fd);
    }

    /* the snapshot's directory must be writable by the workers */
    dir = ngx_pnalloc(cycle->pool, jmcf->snapshot.len + 1);
    if (dir == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(dir, jmcf->snapshot.data, jmcf->snapshot.len);
    *p = '\0';
    while (p > dir && *p != '/') {
        p--;
    }
    *(p == dir ? p + 1 : p) = '\0';

    name.data = dir;
    name.len = ngx_strlen(dir);

    if (ngx_file_info(dir, &fi) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, ngx_errno,
                      "jwtguard: the snapshot directory \"%V\" is missing: keys will not "
                      "survive a reload", &name);
        return NGX_OK;
    }

    if (root) {
        writable = ccf->user == 0
                   || (fi.st_uid == ccf->user && (fi.st_mode & S_IWUSR))
                   || (fi.st_gid == ccf->group && (fi.st_mode & S_IWGRP))
                   || (fi.st_mode & S_IWOTH);

    } else {
        /* not root: the workers run as this very user */
        writable = access((const char *) dir, W_OK | X_OK) == 0;
    }

    if (!writable) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "jwtguard: the worker user cannot write the snapshot directory \"%V\": "
                      "keys will not survive a reload (set jwtguard_snapshot to a writable "
                      "path, or off)", &name);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_jwtguard_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                      i;
    jwt_verifier                  **verifier;
    ngx_http_jwtguard_main_conf_t  *jmcf;

    if (ngx_process != NGX_PROCESS_WORKER && ngx_process != NGX_PROCESS_SINGLE) {
        return NGX_OK;
    }

    jmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_jwtguard_module);
    if (jmcf == NULL) {
        return NGX_OK;
    }

    jwt_set_log_callback(ngx_http_jwtguard_log, cycle->log, JWT_LOG_LEVEL_INFO);

    /* keys are fetched in the background of each worker, so the first requests find them */
    verifier = jmcf->verifiers->elts;
    for (i = 0; i < jmcf->verifiers->nelts; i++) {
        jwt_verifier_prefetch(verifier[i]);
    }

    return NGX_OK;
}
