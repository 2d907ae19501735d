//! `jwtguard serve`: a forward-auth service. Proxies (nginx `auth_request`, Envoy `ext_authz`,
//! Traefik `forwardAuth`, Caddy `forward_auth`) ask it whether a request may pass; it answers
//! 200 with the claim headers, or the same refusal every other jwtguard host sends.
//!
//! hyper (HTTP/1.1, keep-alive) on tokio's multi-threaded runtime: the field's standard
//! production stack in Rust, and small enough here (no framework, no router) that a check
//! costs little more than the token cache lookup. Verification never blocks a runtime thread:
//! keys are fetched in the background (non-blocking mode) and a check that needs them waits on
//! a timer, as the nginx module does.

pub mod check;
pub mod config;
mod metrics;
mod text_bytes;

use check::{BadRequest, Verdict};
use config::ServeConfig;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use jwtguard::Status;
use jwtguard::verify::Scheme;
use metrics::{Decision, Metrics};
use std::convert::Infallible;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Semaphore;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// The configuration file (TOML).
    #[arg(long)]
    config: PathBuf,
    /// Listen on this address instead of the file's `listen`.
    #[arg(long)]
    listen: Option<String>,
}

/// Longest a check waits for keys being fetched before it is answered anyway.
const KEY_WAIT: Duration = Duration::from_secs(5);
/// Step between looks at a running fetch.
const KEY_WAIT_STEP: Duration = Duration::from_millis(20);
/// A request's head (line and headers) must arrive within this; also how long an idle
/// keep-alive connection stays open.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request head accepted (431 beyond).
const MAX_HEAD_BYTES: usize = 32 * 1024;
/// Connections served at once (further ones are closed at once).
const MAX_CONNECTIONS: usize = 10_000;
/// How long in-flight checks get to finish after SIGTERM.
const DRAIN: Duration = Duration::from_secs(10);

struct State {
    config: ServeConfig,
    metrics: Metrics,
}

type Body = Full<Bytes>;

pub fn run(args: ServeArgs) -> ExitCode {
    let config = match config::load(&args.config, args.listen.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("jwtguard serve: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.workers)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("jwtguard serve: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let state = Arc::new(State {
        config,
        metrics: Metrics::new(),
    });
    runtime.block_on(serve(state))
}

async fn serve(state: Arc<State>) -> ExitCode {
    let bind = |addr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))
    };
    let (listener, admin) = match (
        bind(state.config.listen).await,
        bind(state.config.admin_listen).await,
    ) {
        (Ok(l), Ok(a)) => (l, a),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("jwtguard serve: {e}");
            return ExitCode::from(1);
        }
    };
    let (Ok(addr), Ok(admin_addr)) = (listener.local_addr(), admin.local_addr()) else {
        eprintln!("jwtguard serve: no local address");
        return ExitCode::from(1);
    };
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        eprintln!("jwtguard serve: cannot handle signals");
        return ExitCode::from(1);
    };
    state.config.verifier.prefetch_keys();
    // The first line of stdout says where it listens (port 0 in the file picks one).
    println!("jwtguard serve: listening on http://{addr} (admin http://{admin_addr})");
    let _ = std::io::stdout().flush();
    eprintln!(
        "jwtguard serve: {} issuer(s): {}; {} route(s); {} worker thread(s)",
        state.config.issuers.len(),
        state.config.issuers.join(", "),
        state.config.routes.len(),
        state.config.workers
    );

    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(2 * MAX_HEAD_BYTES)
        .max_header_size(MAX_HEAD_BYTES);
    loop {
        let (stream, is_admin) = tokio::select! {
            accepted = listener.accept() => (accepted, false),
            accepted = admin.accept() => (accepted, true),
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        let stream = match stream {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors and the like: wait a little instead of spinning.
                eprintln!("jwtguard serve: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        // Control bytes in a check request reach the check (and get its 400) instead of
        // hyper's bare 400: see text_bytes.
        let io = TokioIo::new(text_bytes::TextBytes::new(stream));
        let state = state.clone();
        if is_admin {
            let conn = http.serve_connection(
                io,
                service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(admin_answer(&state, &req)) }
                }),
            );
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                let _ = conn.await;
                drop(permit);
            });
        } else {
            let conn = http.serve_connection(
                io,
                service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(check_answer(&state, req).await) }
                }),
            );
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                let _ = conn.await;
                drop(permit);
            });
        }
    }
    drop(listener);
    drop(admin);
    eprintln!("jwtguard serve: stopping; waiting for in-flight checks");
    tokio::select! {
        _ = graceful.shutdown() => ExitCode::SUCCESS,
        _ = tokio::time::sleep(DRAIN) => {
            eprintln!("jwtguard serve: in-flight checks did not finish within {DRAIN:?}");
            ExitCode::from(1)
        }
    }
}

fn reply(status: u16, headers: &[(&str, &[u8])], body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let map = response.headers_mut();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            map.append(name, value);
        }
    }
    response
}

/// The one value of a header, `Err` when it appears more than once.
fn single<'a>(req: &'a Request<Incoming>, name: &str) -> Result<Option<&'a [u8]>, BadRequest> {
    let mut values = req.headers().get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(BadRequest::Ambiguous);
    }
    Ok(first.map(HeaderValue::as_bytes).filter(|v| !v.is_empty()))
}

/// The original request's path, normalised.
fn original_path(req: &Request<Incoming>) -> Result<Vec<u8>, BadRequest> {
    for name in check::URI_HEADERS {
        if let Some(value) = single(req, name)? {
            return check::normalize(value);
        }
    }
    let own = req
        .uri()
        .path_and_query()
        .map_or(req.uri().path(), |p| p.as_str());
    check::normalize(own.as_bytes())
}

/// The URL the client addressed, for a DPoP proof's `htu`: `X-Forwarded-Proto` (else
/// `http`), `X-Forwarded-Host` (else the check request's `Host`) and the original URI as the
/// proxy passed it (its query is ignored by the check). A scheme other than http(s) or a
/// host that is not one (`api.example/other?`) gives an empty URL, which no proof matches.
fn original_url(req: &Request<Incoming>) -> Result<String, BadRequest> {
    let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    let scheme = single(req, "x-forwarded-proto")?.map_or("http".into(), text);
    let host = match single(req, "x-forwarded-host")? {
        Some(host) => text(host),
        None => single(req, "host")?.map_or_else(String::new, text),
    };
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
        || !jwtguard::dpop::is_authority(&host)
    {
        return Ok(String::new());
    }
    let mut uri = None;
    for name in check::URI_HEADERS {
        if let Some(value) = single(req, name)? {
            uri = Some(text(value));
            break;
        }
    }
    let uri = uri.unwrap_or_else(|| {
        req.uri()
            .path_and_query()
            .map_or(req.uri().path(), |p| p.as_str())
            .to_string()
    });
    Ok(format!("{scheme}://{host}{uri}"))
}

/// A header's lines joined with ", " (as HTTP combines repeated fields): `None` when absent,
/// `Err` when a line is not text.
fn joined_lines(req: &Request<Incoming>, name: &str) -> Result<Option<String>, ()> {
    let lines: Vec<&HeaderValue> = req.headers().get_all(name).iter().collect();
    match lines.as_slice() {
        [] => Ok(None),
        [one] => one.to_str().map(|s| Some(s.to_string())).map_err(|_| ()),
        many => many
            .iter()
            .map(|v| v.to_str())
            .collect::<Result<Vec<_>, _>>()
            .map(|v| Some(v.join(", ")))
            .map_err(|_| ()),
    }
}

/// The original request's method.
fn original_method(req: &Request<Incoming>) -> Result<String, BadRequest> {
    for name in check::METHOD_HEADERS {
        if let Some(value) = single(req, name)? {
            return check::method(value);
        }
    }
    Ok(req.method().as_str().to_string())
}

async fn check_answer(state: &State, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let config = &state.config;
    let parts = original_method(&req)
        .and_then(|method| Ok((method, original_path(&req)?, original_url(&req)?)));
    let (method, path, url) = match parts {
        Ok(parts) => parts,
        Err(bad) => {
            state
                .metrics
                .record(Decision::BadRequest, started.elapsed());
            let body = format!(
                "{{\"code\":\"bad_request\",\"description\":\"{}\"}}\n",
                bad.describe()
            );
            return reply(400, &[("content-type", b"application/json")], body);
        }
    };
    let rule = &check::rule_for(&config.routes, &path);
    // Two Authorization lines are a malformed request, even when one is empty (joined, an
    // empty line would leave no trace the verifier could see).
    let joined = match req.headers().get_all("authorization").iter().count() {
        0 | 1 => joined_lines(&req, "authorization"),
        _ => Err(()),
    };
    let authorization = joined.as_ref().map(Option::as_deref).map_err(|_| ());
    let proofs = joined_lines(&req, "dpop");
    let refusal_page = req
        .headers()
        .get(check::REFUSAL_HEADER)
        .map(HeaderValue::as_bytes);
    let dpop = check::Dpop {
        proofs: proofs.as_ref().map(Option::as_deref).map_err(|_| ()),
        method: &method,
        url: &url,
        again: refusal_page.is_some(),
    };
    let scheme = jwtguard::answer::scheme_of(authorization.ok().flatten());
    let deadline = started + KEY_WAIT;
    loop {
        let may_wait = Instant::now() < deadline;
        let verdict = match (
            check::decide(config, rule, authorization, &dpop, may_wait),
            refusal_page,
        ) {
            // The proxy refused the request itself as malformed (two Authorization or Host
            // lines, none): a 400, whatever this check of what it passed on would say.
            (_, Some(b"400")) => check::refuse(
                config,
                check::scopes(rule),
                Status::AuthorizationHeaderMalformed,
                scheme,
            ),
            (Verdict::Allow(..), Some(_)) => check::refuse(
                config,
                check::scopes(rule),
                if scheme == Some(Scheme::Dpop) {
                    Status::DpopProofReplayed
                } else {
                    Status::KeysUnavailable
                },
                scheme,
            ),
            (verdict, _) => verdict,
        };
        match verdict {
            Verdict::Allow(headers, reason) => {
                state
                    .metrics
                    .record(Decision::Allowed(reason), started.elapsed());
                let pairs: Vec<(&str, &[u8])> = headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_slice()))
                    .collect();
                return reply(200, &pairs, Bytes::new());
            }
            Verdict::Refuse(status, refusal) => {
                state
                    .metrics
                    .record(Decision::Refused(status), started.elapsed());
                let pairs: Vec<(&str, &[u8])> = refusal
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_bytes()))
                    .collect();
                return reply(refusal.status, &pairs, refusal.body);
            }
            Verdict::Wait => tokio::time::sleep(KEY_WAIT_STEP).await,
        }
    }
}

fn admin_answer(state: &State, req: &Request<Incoming>) -> Response<Body> {
    let text = |status, body: String| {
        reply(
            status,
            &[("content-type", b"text/plain; charset=utf-8")],
            body,
        )
    };
    match req.uri().path() {
        "/healthz" => text(200, "ok\n".into()),
        "/readyz" => {
            let verifier = &state.config.verifier;
            if verifier.keys_ready() {
                text(200, "ready\n".into())
            } else {
                // Not ready: make sure a fetch is under way.
                verifier.prefetch_keys();
                text(503, "keys not loaded yet\n".into())
            }
        }
        "/metrics" => reply(
            200,
            &[("content-type", b"text/plain; version=0.0.4; charset=utf-8")],
            state.metrics.render(&state.config.verifier),
        ),
        _ => text(404, "not found: /healthz, /readyz, /metrics\n".into()),
    }
}
