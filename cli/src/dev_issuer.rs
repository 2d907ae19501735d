//! `jwtguard dev-issuer`: a small real OpenID issuer on loopback, for trying jwtguard without a
//! tenant and for every test in every language. Discovery, JWKS (with `Cache-Control` and
//! `ETag`), a client-credentials token endpoint and, with `--admin` only, key rotation, fault
//! injection on the JWKS endpoint and counters.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::Args;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm as JwtAlgorithm, EncodingKey};
use jwtguard::token::b64_encode;
use serde_json::{Map, Value, json};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tiny_http::{Header, Method, Request, Response, Server};

#[derive(Args)]
pub struct DevIssuerArgs {
    /// Address to listen on (loopback unless you mean otherwise).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Signing algorithm (`Ed25519` is EdDSA on Ed25519 by its fully specified name, RFC 9864).
    #[arg(long, default_value = "RS256", value_parser = ["RS256", "PS256", "ES256", "EdDSA", "Ed25519"])]
    algorithm: String,
    /// Audience used when a token request names none.
    #[arg(long, default_value = "https://api.example")]
    audience: String,
    /// `Cache-Control: max-age` of the JWKS, in seconds.
    #[arg(long, default_value_t = 300)]
    jwks_max_age: u64,
    /// Write the chosen port to this file once listening.
    #[arg(long)]
    port_file: Option<PathBuf>,
    /// Enable /admin/rotate, /admin/fault and /admin/stats (never on without this flag).
    #[arg(long)]
    admin: bool,
}

struct SigningKey {
    kid: String,
    key: EncodingKey,
    jwk: Value,
}

/// What the JWKS endpoint does instead of answering normally.
#[derive(Clone, Debug, PartialEq)]
enum Fault {
    Off,
    Delay(Duration),
    Status(u16),
    Garbage,
    Oversize,
    Drop,
}

/// The published keys, oldest first. The newest signs, unless it was published ahead
/// (`/admin/rotate` with `"ahead": true`): then the one before it signs until the next
/// rotation, the way real issuers publish a key before they use it.
struct KeyRing {
    keys: Vec<SigningKey>,
    ahead: bool,
}

impl KeyRing {
    fn signer(&self) -> Option<&SigningKey> {
        let back = usize::from(self.ahead && self.keys.len() > 1);
        self.keys.iter().rev().nth(back)
    }
}

struct Issuer {
    url: String,
    alg: JwtAlgorithm,
    /// The name tokens and keys carry (`alg`'s own, or `Ed25519`).
    alg_name: String,
    audience: String,
    jwks_max_age: u64,
    admin: bool,
    /// Published keys and which one signs.
    keys: Mutex<KeyRing>,
    fault: Mutex<Fault>,
    /// A fault of the discovery document, set apart (`"endpoint": "discovery"`).
    discovery_fault: Mutex<Fault>,
    jwks_requests: AtomicU64,
    discovery_requests: AtomicU64,
    token_requests: AtomicU64,
    generation: AtomicU64,
    /// The `jti` of DPoP proofs the token endpoint accepted (RFC 9449 section 11.1).
    proofs: jwtguard::dpop::ReplayCache,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn random_id(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buf)
        .expect("system random source");
    b64_encode(&buf)
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

fn generate_key(alg: JwtAlgorithm, alg_name: &str, kid: String) -> Result<SigningKey, String> {
    let fail = |e: &dyn std::fmt::Display| format!("key generation failed: {e}");
    let key = match alg {
        JwtAlgorithm::RS256 | JwtAlgorithm::PS256 => {
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|e| fail(&e))?;
            let der = pair.as_der().map_err(|e| fail(&e))?;
            EncodingKey::from_rsa_pem(pem("PRIVATE KEY", der.as_ref()).as_bytes())
                .map_err(|e| fail(&e))?
        }
        JwtAlgorithm::ES256 => {
            let doc = EcdsaKeyPair::generate_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &SystemRandom::new(),
            )
            .map_err(|e| fail(&e))?;
            EncodingKey::from_ec_der(doc.as_ref())
        }
        _ => {
            let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|e| fail(&e))?;
            EncodingKey::from_ed_der(doc.as_ref())
        }
    };
    let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&key, alg).map_err(|e| fail(&e))?)
        .map_err(|e| fail(&e))?;
    if let Some(o) = jwk.as_object_mut() {
        o.insert("kid".into(), json!(kid));
        o.insert("use".into(), json!("sig"));
        o.insert("alg".into(), json!(alg_name));
    }
    Ok(SigningKey { kid, key, jwk })
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("valid header")
}

fn json_response(status: u16, body: &Value) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_data(body.to_string().into_bytes())
        .with_status_code(status)
        .with_header(header("Content-Type", "application/json"))
        .with_header(header("Cache-Control", "no-store"))
}

fn error(status: u16, error: &str, description: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    json_response(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

fn request_header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// The parameters of an admin request: a JSON object naming only `known` keys, sent with
/// `Content-Type: application/json`, or no body at all (no parameters). Anything else is
/// refused with a message naming the cause: a body read as nothing would silently do
/// something else than asked (`{"retire": true}` sent as a form kept every key published).
fn admin_params(request: &mut Request, known: &[&str]) -> Result<Map<String, Value>, String> {
    let (json_body, body) = read_body(request)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    if !json_body {
        return Err(
            "send the parameters as a JSON object with Content-Type: application/json".into(),
        );
    }
    let params = json_object(&body)?;
    if let Some(unknown) = params.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!(
            "unknown parameter {unknown:?} (known: {})",
            known.join(", ")
        ));
    }
    Ok(params)
}

/// Whether a request's body is JSON (by its `Content-Type`), and the body (at most 64 KiB).
fn read_body(request: &mut Request) -> Result<(bool, Vec<u8>), String> {
    let json_body = request_header(request, "Content-Type")
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("application/json"));
    let mut body = Vec::new();
    request
        .as_reader()
        .take(64 * 1024)
        .read_to_end(&mut body)
        .map_err(|e| e.to_string())?;
    Ok((json_body, body))
}

fn json_object(body: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err("the body is not a JSON object".into()),
    }
}

/// The parameters of a token request: form-encoded or JSON.
fn token_params(request: &mut Request) -> Result<Map<String, Value>, String> {
    let (json_body, body) = read_body(request)?;
    if json_body {
        json_object(&body)
    } else {
        Ok(form_urlencoded::parse(&body)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect())
    }
}

impl Issuer {
    /// Check a token request's DPoP proof; the key's thumbprint, for `cnf.jkt`.
    fn check_proof(&self, proof: &str) -> jwtguard::Result<String> {
        let policy = jwtguard::DpopPolicy::default();
        let endpoint = format!("{}oauth/token", self.url);
        let request = jwtguard::dpop::ProofRequest {
            method: "POST",
            url: &endpoint,
            access_token: None,
        };
        let now = now() as f64;
        let leeway = jwtguard::policy::DEFAULT_LEEWAY_SECS;
        let proof = jwtguard::dpop::check_proof(proof, &policy, &request, now, leeway)?;
        let ends = proof.iat + (policy.window_secs + leeway) as f64;
        self.proofs
            .insert(&proof, &proof.thumbprint, ends.max(0.0) as u64, now)?;
        Ok(proof.thumbprint)
    }

    fn jwks_body(&self) -> String {
        let keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        json!({"keys": keys.keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}).to_string()
    }

    fn discovery(&self) -> Value {
        json!({
            "issuer": self.url,
            "jwks_uri": format!("{}.well-known/jwks.json", self.url),
            "token_endpoint": format!("{}oauth/token", self.url),
            "grant_types_supported": ["client_credentials"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [self.alg_name],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "none"],
            "dpop_signing_alg_values_supported": jwtguard::DpopPolicy::default()
                .algorithms
                .iter()
                .map(|a| a.name())
                .collect::<Vec<_>>(),
        })
    }

    /// Answer `request` as `fault` says, or hand it back to be answered normally (after any
    /// delay).
    fn apply_fault(fault: &Mutex<Fault>, request: Request) -> Option<Request> {
        let fault = fault.lock().unwrap_or_else(PoisonError::into_inner).clone();
        match fault {
            Fault::Off => Some(request),
            Fault::Delay(d) => {
                std::thread::sleep(d);
                Some(request)
            }
            Fault::Status(code) => {
                let _ = request.respond(error(code, "server_error", "injected fault"));
                None
            }
            Fault::Garbage => {
                let _ = request.respond(
                    Response::from_string("<html>upstream error</html>")
                        .with_header(header("Content-Type", "text/html")),
                );
                None
            }
            Fault::Oversize => {
                let body = format!("{{\"keys\":[],\"pad\":\"{}\"}}", "x".repeat(2 << 20));
                let _ = request.respond(
                    Response::from_string(body)
                        .with_header(header("Content-Type", "application/json")),
                );
                None
            }
            Fault::Drop => {
                // Close the connection without a response.
                drop(request.into_writer());
                None
            }
        }
    }

    fn jwks(&self, request: Request) {
        self.jwks_requests.fetch_add(1, Ordering::SeqCst);
        let Some(request) = Self::apply_fault(&self.fault, request) else {
            return;
        };
        let body = self.jwks_body();
        let etag = format!(
            "\"{}\"",
            b64_encode(
                &aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body.as_bytes()).as_ref()
                    [..12]
            )
        );
        let cache_control = format!("public, max-age={}", self.jwks_max_age);
        if request_header(&request, "If-None-Match")
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
        {
            let _ = request.respond(
                Response::empty(304)
                    .with_header(header("ETag", &etag))
                    .with_header(header("Cache-Control", &cache_control)),
            );
            return;
        }
        let _ = request.respond(
            Response::from_string(body)
                .with_header(header("Content-Type", "application/json"))
                .with_header(header("Cache-Control", &cache_control))
                .with_header(header("ETag", &etag)),
        );
    }

    fn token(&self, mut request: Request) {
        self.token_requests.fetch_add(1, Ordering::SeqCst);
        let params = match token_params(&mut request) {
            Ok(p) => p,
            Err(e) => {
                let _ = request.respond(error(400, "invalid_request", &e));
                return;
            }
        };
        let text = |name: &str| params.get(name).and_then(Value::as_str).map(str::to_owned);
        if let Some(grant) = text("grant_type")
            && grant != "client_credentials"
        {
            let _ = request.respond(error(
                400,
                "unsupported_grant_type",
                "only client_credentials",
            ));
            return;
        }
        let expires_in = match params.get("expires_in") {
            None => 3600,
            Some(Value::Number(n)) => n.as_i64().unwrap_or(3600),
            Some(Value::String(s)) => match s.parse::<i64>() {
                Ok(v) => v,
                Err(_) => {
                    let _ = request.respond(error(
                        400,
                        "invalid_request",
                        "expires_in is not an integer",
                    ));
                    return;
                }
            },
            Some(_) => {
                let _ = request.respond(error(
                    400,
                    "invalid_request",
                    "expires_in is not an integer",
                ));
                return;
            }
        };
        // A DPoP proof binds the token to the client's key, as a real issuer does (RFC 9449
        // section 5): the proof is checked like a resource server checks one, over POST and this
        // endpoint's URL, without `ath` (there is no token yet).
        let proofs: Vec<&str> = request
            .headers()
            .iter()
            .filter(|h| h.field.as_str().as_str().eq_ignore_ascii_case("DPoP"))
            .map(|h| h.value.as_str())
            .collect();
        let binding = if proofs.is_empty() {
            None
        } else {
            match self.check_proof(&proofs.join(", ")) {
                Ok(jkt) => Some(jkt),
                Err(e) => {
                    let _ = request.respond(error(
                        400,
                        "invalid_dpop_proof",
                        &format!("{} ({})", e.status().description(), e.status().reason()),
                    ));
                    return;
                }
            }
        };
        let client_id = text("client_id").unwrap_or_else(|| "dev-client".into());
        let audience = text("audience").unwrap_or_else(|| self.audience.clone());
        let scope = text("scope").unwrap_or_default();
        let iat = now();
        let mut claims = json!({
            "iss": self.url,
            "sub": format!("{client_id}@clients"),
            "aud": audience,
            "iat": iat,
            "exp": iat + expires_in,
            "scope": scope,
            "jti": random_id(16),
            "client_id": client_id,
            "gty": "client-credentials",
        });
        if let Some(jkt) = &binding {
            claims["cnf"] = json!({ "jkt": jkt });
        }
        let token_type = if binding.is_some() { "DPoP" } else { "Bearer" };
        let signed = {
            let keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(key) = keys.signer() else {
                let _ = request.respond(error(500, "server_error", "no signing key"));
                return;
            };
            let header = json!({"alg": self.alg_name, "kid": key.kid, "typ": "at+jwt"});
            let input = format!(
                "{}.{}",
                b64_encode(header.to_string().as_bytes()),
                b64_encode(claims.to_string().as_bytes())
            );
            jsonwebtoken::crypto::sign(input.as_bytes(), &key.key, self.alg)
                .map(|sig| format!("{input}.{sig}"))
        };
        let _ = match signed {
            Ok(token) => request.respond(json_response(
                200,
                &json!({"access_token": token, "token_type": token_type, "expires_in": expires_in, "scope": scope}),
            )),
            Err(e) => request.respond(error(500, "server_error", &e.to_string())),
        };
    }

    fn rotate(&self, mut request: Request) {
        let params = match admin_params(&mut request, &["retire", "ahead", "keep"]) {
            Ok(params) => params,
            Err(why) => {
                let _ = request.respond(error(400, "invalid_request", &why));
                return;
            }
        };
        let flag = |name: &str| params.get(name).and_then(Value::as_bool).unwrap_or(false);
        let (retire, ahead) = (flag("retire"), flag("ahead"));
        // `keep`: at most this many of the old keys stay published (the newest of them; with
        // `ahead`, the old signer is the second newest, so keep 2 to keep it).
        let keep = match params.get("keep") {
            None => None,
            Some(n) => match n.as_u64().and_then(|n| usize::try_from(n).ok()) {
                Some(n) => Some(n),
                None => {
                    let _ = request.respond(error(
                        400,
                        "invalid_request",
                        "keep must be a number of keys (0 or more)",
                    ));
                    return;
                }
            },
        };
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let kid = format!("key-{generation}-{}", random_id(6));
        match generate_key(self.alg, &self.alg_name, kid.clone()) {
            Ok(key) => {
                let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
                let keep = if retire {
                    0
                } else {
                    keep.unwrap_or(usize::MAX)
                };
                let old = keys.keys.len().saturating_sub(keep);
                keys.keys.drain(..old);
                keys.keys.push(key);
                keys.ahead = ahead;
                let published: Vec<&str> = keys.keys.iter().map(|k| k.kid.as_str()).collect();
                let signing = keys.signer().map(|k| k.kid.clone());
                let _ = request.respond(json_response(
                    200,
                    &json!({"kid": kid, "published": published, "signing": signing}),
                ));
            }
            Err(e) => {
                let _ = request.respond(error(500, "server_error", &e));
            }
        }
    }

    fn set_fault(&self, mut request: Request) {
        let params = match admin_params(&mut request, &["mode", "ms", "status", "endpoint"]) {
            Ok(params) => params,
            Err(why) => {
                let _ = request.respond(error(400, "invalid_request", &why));
                return;
            }
        };
        let number = |name: &str| match params.get(name) {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        let fault = match params.get("mode").and_then(Value::as_str) {
            Some("off") => Fault::Off,
            Some("delay") => Fault::Delay(Duration::from_millis(number("ms").unwrap_or(3000))),
            Some("status") => Fault::Status(
                number("status")
                    .and_then(|s| u16::try_from(s).ok())
                    .unwrap_or(500),
            ),
            Some("garbage") => Fault::Garbage,
            Some("oversize") => Fault::Oversize,
            Some("drop") => Fault::Drop,
            _ => {
                let _ = request.respond(error(
                    400,
                    "invalid_request",
                    "mode must be one of off, delay (ms), status (status), garbage, oversize, drop",
                ));
                return;
            }
        };
        let slot = match params.get("endpoint").and_then(Value::as_str) {
            None | Some("jwks") => &self.fault,
            Some("discovery") => &self.discovery_fault,
            Some(_) => {
                let _ = request.respond(error(
                    400,
                    "invalid_request",
                    "endpoint must be jwks (the default) or discovery",
                ));
                return;
            }
        };
        *slot.lock().unwrap_or_else(PoisonError::into_inner) = fault.clone();
        let _ = request.respond(json_response(200, &json!({"fault": format!("{fault:?}")})));
    }

    fn stats(&self) -> Value {
        let keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        json!({
            "jwks_requests": self.jwks_requests.load(Ordering::SeqCst),
            "discovery_requests": self.discovery_requests.load(Ordering::SeqCst),
            "token_requests": self.token_requests.load(Ordering::SeqCst),
            "kids": keys.keys.iter().map(|k| k.kid.clone()).collect::<Vec<_>>(),
        })
    }

    fn handle(&self, request: Request) {
        let path = request.url().split('?').next().unwrap_or("").to_string();
        let method = request.method().clone();
        let _ = match (&method, path.as_str()) {
            (Method::Get, "/.well-known/openid-configuration") => {
                self.discovery_requests.fetch_add(1, Ordering::SeqCst);
                match Self::apply_fault(&self.discovery_fault, request) {
                    Some(request) => request.respond(json_response(200, &self.discovery())),
                    None => Ok(()),
                }
            }
            (Method::Get, "/.well-known/jwks.json") => {
                self.jwks(request);
                Ok(())
            }
            (Method::Post, "/oauth/token") => {
                self.token(request);
                Ok(())
            }
            (Method::Post, "/admin/rotate") if self.admin => {
                self.rotate(request);
                Ok(())
            }
            (Method::Post, "/admin/fault") if self.admin => {
                self.set_fault(request);
                Ok(())
            }
            (Method::Get, "/admin/stats") if self.admin => {
                request.respond(json_response(200, &self.stats()))
            }
            _ => request.respond(error(404, "not_found", "no such endpoint")),
        };
    }
}

pub fn run(args: DevIssuerArgs) -> ExitCode {
    let signing = match args.algorithm.as_str() {
        "Ed25519" => "EdDSA",
        other => other,
    };
    let alg: JwtAlgorithm = match signing.parse() {
        Ok(a) => a,
        Err(_) => {
            eprintln!(
                "jwtguard dev-issuer: unsupported algorithm {}",
                args.algorithm
            );
            return ExitCode::from(2);
        }
    };
    let server = match Server::http((args.host.as_str(), args.port)) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!(
                "jwtguard dev-issuer: cannot listen on {}:{}: {e}",
                args.host, args.port
            );
            return ExitCode::from(1);
        }
    };
    let Some(addr) = server.server_addr().to_ip() else {
        eprintln!("jwtguard dev-issuer: not listening on an IP address");
        return ExitCode::from(1);
    };
    let host = if addr.is_ipv6() {
        format!("[{}]", addr.ip())
    } else {
        addr.ip().to_string()
    };
    let url = format!("http://{host}:{}/", addr.port());
    let first_key = match generate_key(alg, &args.algorithm, format!("key-0-{}", random_id(6))) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("jwtguard dev-issuer: {e}");
            return ExitCode::from(1);
        }
    };
    let issuer = Arc::new(Issuer {
        url: url.clone(),
        alg,
        alg_name: args.algorithm.clone(),
        audience: args.audience,
        jwks_max_age: args.jwks_max_age,
        admin: args.admin,
        keys: Mutex::new(KeyRing {
            keys: vec![first_key],
            ahead: false,
        }),
        fault: Mutex::new(Fault::Off),
        discovery_fault: Mutex::new(Fault::Off),
        jwks_requests: AtomicU64::new(0),
        discovery_requests: AtomicU64::new(0),
        token_requests: AtomicU64::new(0),
        generation: AtomicU64::new(0),
        proofs: jwtguard::dpop::ReplayCache::new(100_000),
    });
    if let Some(path) = &args.port_file {
        let tmp = path.with_extension("tmp");
        if let Err(e) = std::fs::write(&tmp, format!("{}\n", addr.port()))
            .and_then(|()| std::fs::rename(&tmp, path))
        {
            eprintln!("jwtguard dev-issuer: cannot write {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{url}");
    let _ = out.flush();
    eprintln!(
        "jwtguard dev-issuer: issuer {url} ({}), admin endpoints {}",
        args.algorithm,
        if args.admin { "ON" } else { "off" }
    );
    for request in server.incoming_requests() {
        let issuer = issuer.clone();
        std::thread::spawn(move || issuer.handle(request));
    }
    ExitCode::SUCCESS
}
