//! The `jwtguard` command line: `jwtguard verify` checks one token the way every binding does.

mod dev_issuer;
mod serve;

use clap::{Args, Parser, Subcommand};
use jwtguard::{Algorithm, Config, Error, Keys, Policy, Status, Verifier};
use serde_json::json;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "jwtguard",
    version,
    about = "Verify JWT access tokens against an issuer's JWKS"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify one token. Exit 0 and print the claims as JSON, or exit 1 and print the error as
    /// JSON: {"error", "code", "status", "reason", "description"}.
    Verify(VerifyArgs),
    /// Run a local OpenID issuer on loopback (discovery, JWKS, client-credentials tokens).
    /// Prints its issuer URL on the first line of stdout.
    DevIssuer(dev_issuer::DevIssuerArgs),
    /// Run the forward-auth service: proxies (nginx auth_request, Envoy ext_authz, Traefik
    /// forwardAuth, Caddy forward_auth) ask it whether a request may pass. Prints where it
    /// listens on the first line of stdout.
    Serve(serve::ServeArgs),
}

#[derive(Args)]
struct VerifyArgs {
    /// Accepted issuer (`iss`), e.g. https://TENANT/. Repeatable.
    #[arg(long, required = true)]
    issuer: Vec<String>,
    /// Accepted audience (`aud`). Repeatable.
    #[arg(long, required = true)]
    audience: Vec<String>,
    /// JWKS URL (https, or http to a loopback host). Without it and without --jwks-file, the
    /// JWKS URL is discovered from the first issuer (OpenID Connect discovery).
    #[arg(long, conflicts_with = "jwks_file")]
    jwks_uri: Option<String>,
    /// JWKS file.
    #[arg(long)]
    jwks_file: Option<PathBuf>,
    /// Allowed algorithm (default RS256). Repeatable.
    #[arg(long = "algorithm", value_parser = parse_algorithm)]
    algorithms: Vec<Algorithm>,
    /// Seconds of clock skew allowed for exp, nbf and iat.
    #[arg(long, default_value_t = jwtguard::policy::DEFAULT_LEEWAY_SECS)]
    leeway: u64,
    /// Require this scope (in scope, scp or permissions). Repeatable.
    #[arg(long = "require-scope")]
    require_scope: Vec<String>,
    /// Require this claim to be present. Repeatable.
    #[arg(long = "require-claim")]
    require_claim: Vec<String>,
    /// Strict RFC 9068 mode (typ at+jwt and the RFC's required claims).
    #[arg(long)]
    strict: bool,
    /// Allow plain http JWKS URLs to hosts other than loopback.
    #[arg(long)]
    allow_insecure_http: bool,
    /// Keep the last good JWKS in this file and use it when the issuer cannot be reached.
    #[arg(long)]
    snapshot: Option<PathBuf>,
    /// Extra CA certificates (PEM) to trust for https, beside the system's store.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Print the library's log messages to stderr.
    #[arg(long, short)]
    verbose: bool,
    /// The token, or - to read it from standard input.
    token: String,
}

fn parse_algorithm(s: &str) -> Result<Algorithm, String> {
    s.parse().map_err(|_| {
        format!(
            "unsupported algorithm {s:?} ({})",
            jwtguard::policy::permitted_names(&Algorithm::ALL)
        )
    })
}

fn error_json(e: &Error) -> serde_json::Value {
    let s = e.status();
    json!({
        "error": s.rfc6750_error(),
        "code": s.code(),
        "status": s.http_status(),
        "reason": s.reason(),
        "description": s.description(),
    })
}

fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("jwtguard: {message}");
    ExitCode::from(2)
}

fn verify(args: VerifyArgs) -> ExitCode {
    let token = if args.token == "-" {
        let mut text = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut text) {
            return usage_error(format!("cannot read the token from stdin: {e}"));
        }
        text.trim().to_string()
    } else {
        args.token.clone()
    };
    let keys = match (&args.jwks_uri, &args.jwks_file) {
        (Some(uri), _) => Keys::Url(uri.clone()),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(text) => Keys::Json(text),
            Err(e) => return usage_error(format!("cannot read {}: {e}", path.display())),
        },
        (None, None) => Keys::Discover,
    };
    if args.verbose {
        jwtguard::log::set_sink(Some((
            jwtguard::log::Level::Debug,
            std::sync::Arc::new(|level, message: &str| eprintln!("[{level:?}] {message}")),
        )));
    }
    let mut policy = Policy::empty()
        .with_leeway(args.leeway)
        .with_strict(args.strict);
    for issuer in &args.issuer {
        policy = policy.with_issuer(issuer);
    }
    for audience in &args.audience {
        policy = policy.with_audience(audience);
    }
    if !args.algorithms.is_empty() {
        policy = policy.with_algorithms(&args.algorithms);
    }
    for claim in &args.require_claim {
        policy = policy.with_required_claim(claim);
    }
    let mut config = Config::new(policy, keys);
    config.cache.fetch.allow_insecure_http = args.allow_insecure_http;
    config.cache.snapshot = args.snapshot.clone();
    config.cache.fetch.ca_file = args.ca_file.clone();
    let verifier = match Verifier::new(config) {
        Ok(v) => v,
        Err(e) => return usage_error(e),
    };
    let outcome = verifier.verify(&token).and_then(|claims| {
        match args.require_scope.iter().find(|s| !claims.has_scope(s)) {
            Some(missing) => Err(Error::with_detail(
                Status::InsufficientScope,
                format!("missing scope {missing}"),
            )),
            None => Ok(claims),
        }
    });
    // Let a background refresh the verification started finish (it updates the snapshot).
    if let Some(source) = verifier.jwks_source() {
        source.wait_idle(std::time::Duration::from_secs(6));
    }
    match outcome {
        Ok(claims) => {
            println!("{}", serde_json::Value::Object(claims.as_map().clone()));
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("{}", error_json(&e));
            if let Some(detail) = e.detail() {
                eprintln!("jwtguard: {detail}");
            }
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Verify(args) => verify(args),
        Command::DevIssuer(args) => dev_issuer::run(args),
        Command::Serve(args) => serve::run(args),
    }
}
