//! Shared test fixtures: signing keys, token minting (also of malformed tokens), and a real
//! JWKS server on loopback.
#![allow(dead_code)]

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm as JwtAlg, EncodingKey};
use jwtguard::token::b64_encode;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const ISSUER: &str = "https://tenant.example/";
pub const AUDIENCE: &str = "https://api.example";
/// A fixed "now" for claim checks with a manual clock.
pub const NOW: i64 = 1_800_000_000;

/// The `jwtguard` command (the CLI crate of this workspace, built beside the test binaries by
/// `cargo test` / `cargo nextest run`), or `JWTGUARD_BIN`.
pub fn jwtguard_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("JWTGUARD_BIN") {
        return path.into();
    }
    // target/<profile>/deps/<test binary> -> target/<profile>/jwtguard
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("jwtguard");
    assert!(
        bin.exists(),
        "{} is missing: build the workspace (cargo build)",
        bin.display()
    );
    bin
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A private key that signs tokens, with the `kid` it is published under.
#[derive(Clone)]
pub struct Signer {
    pub alg: JwtAlg,
    pub key: EncodingKey,
    pub kid: String,
}

impl Signer {
    pub fn new(file: &str, alg: JwtAlg, kid: &str) -> Signer {
        let pem = std::fs::read(fixture(file)).unwrap();
        let key = match alg {
            JwtAlg::ES256 | JwtAlg::ES384 => EncodingKey::from_ec_pem(&pem),
            JwtAlg::EdDSA => EncodingKey::from_ed_pem(&pem),
            _ => EncodingKey::from_rsa_pem(&pem),
        }
        .unwrap();
        Signer {
            alg,
            key,
            kid: kid.to_string(),
        }
    }

    pub fn rs256() -> Signer {
        Signer::new("rsa2048-a.pem", JwtAlg::RS256, "rsa-a")
    }

    pub fn rs256_b() -> Signer {
        Signer::new("rsa2048-b.pem", JwtAlg::RS256, "rsa-b")
    }

    pub fn ps256() -> Signer {
        Signer::new("rsa2048-a.pem", JwtAlg::PS256, "rsa-a")
    }

    pub fn es256() -> Signer {
        Signer::new("ec-p256.pem", JwtAlg::ES256, "ec-256")
    }

    pub fn es384() -> Signer {
        Signer::new("ec-p384.pem", JwtAlg::ES384, "ec-384")
    }

    pub fn eddsa() -> Signer {
        Signer::new("ed25519.pem", JwtAlg::EdDSA, "ed")
    }

    pub fn alg_name(&self) -> String {
        serde_json::to_value(self.alg)
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The public JWK, with `kid` and without `alg` (so the key serves every algorithm of its
    /// family) unless `with_alg`.
    pub fn jwk(&self, with_alg: bool) -> Value {
        let mut v =
            serde_json::to_value(Jwk::from_encoding_key(&self.key, self.alg).unwrap()).unwrap();
        let o = v.as_object_mut().unwrap();
        o.insert("kid".into(), json!(self.kid));
        o.insert("use".into(), json!("sig"));
        if !with_alg {
            o.remove("alg");
        }
        v
    }

    /// Sign `header.payload` given as JSON text, exactly as written.
    pub fn sign_raw(&self, header: &str, payload: &str) -> String {
        self.sign_segments(
            &b64_encode(header.as_bytes()),
            &b64_encode(payload.as_bytes()),
        )
    }

    /// Sign already-encoded segments.
    pub fn sign_segments(&self, header_b64: &str, payload_b64: &str) -> String {
        let input = format!("{header_b64}.{payload_b64}");
        let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &self.key, self.alg).unwrap();
        format!("{input}.{sig}")
    }

    /// A token with a standard header (`alg`, `kid`, `typ: at+jwt`) and these claims.
    pub fn token(&self, claims: &Value) -> String {
        let header = json!({"alg": self.alg_name(), "kid": self.kid, "typ": "at+jwt"});
        self.sign_raw(&header.to_string(), &claims.to_string())
    }
}

/// Claims a default verifier accepts at `NOW`.
pub fn good_claims() -> Value {
    json!({
        "iss": ISSUER,
        "sub": "client-1@clients",
        "aud": AUDIENCE,
        "iat": NOW - 10,
        "exp": NOW + 3600,
        "scope": "read:messages",
        "client_id": "client-1",
        "jti": "j-1",
    })
}

/// Current Unix time: tokens from the dev issuer carry real times, so a manual clock starts now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Claims for `issuer`, valid now by the system clock.
pub fn live_claims(issuer: &str) -> Value {
    let t = now();
    claims_with(json!({"iss": issuer, "iat": t - 5, "exp": t + 3600}))
}

/// Claims with some members replaced (`null` removes a member).
pub fn claims_with(changes: Value) -> Value {
    let mut c = good_claims();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

/// `token` with its header's `kid` replaced (the signature no longer matters: no key has it).
pub fn with_kid(token: &str, kid: &str) -> String {
    let (header, rest) = token.split_once('.').unwrap();
    let mut header: Value =
        serde_json::from_slice(&jwtguard::token::b64_decode(header).unwrap()).unwrap();
    header["kid"] = json!(kid);
    format!("{}.{rest}", b64_encode(header.to_string().as_bytes()))
}

pub fn jwks(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}

/// What the loopback server answers.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
    pub delay: Duration,
}

impl Reply {
    pub fn json(body: &str) -> Reply {
        Reply {
            status: 200,
            body: body.as_bytes().to_vec(),
            headers: vec![("Content-Type".into(), "application/json".into())],
            delay: Duration::ZERO,
        }
    }
}

/// A real HTTP/1.1 server on 127.0.0.1 that answers every GET with the current reply and counts
/// requests.
pub struct JwksServer {
    pub url: String,
    pub requests: Arc<AtomicUsize>,
    reply: Arc<Mutex<Reply>>,
}

impl JwksServer {
    pub fn start(reply: Reply) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let reply = Arc::new(Mutex::new(reply));
        let (count, current) = (requests.clone(), reply.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let count = count.clone();
                let current = current.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" || line == "\n" {
                            break;
                        }
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                    let r = current.lock().unwrap().clone();
                    std::thread::sleep(r.delay);
                    let mut head = format!(
                        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                        r.status,
                        r.body.len()
                    );
                    for (k, v) in &r.headers {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    head.push_str("\r\n");
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(&r.body);
                });
            }
        });
        JwksServer {
            url: format!("http://127.0.0.1:{port}/.well-known/jwks.json"),
            requests,
            reply,
        }
    }

    pub fn set(&self, reply: Reply) {
        *self.reply.lock().unwrap() = reply;
    }

    pub fn count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// A real `jwtguard dev-issuer --admin` process on loopback, stopped on drop.
pub struct DevIssuer {
    child: std::process::Child,
    pub url: String,
    agent: ureq::Agent,
}

impl DevIssuer {
    pub fn start(extra: &[&str]) -> DevIssuer {
        use std::process::{Command, Stdio};
        let mut child = Command::new(jwtguard_bin())
            .args(["dev-issuer", "--admin"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start jwtguard dev-issuer");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(
            first.starts_with("http://127.0.0.1:"),
            "dev-issuer said {first:?}"
        );
        let agent = ureq::Agent::config_builder()
            .proxy(None)
            .http_status_as_error(false)
            .build()
            .new_agent();
        DevIssuer {
            child,
            url: first.trim().to_string(),
            agent,
        }
    }

    pub fn jwks_uri(&self) -> String {
        format!("{}.well-known/jwks.json", self.url)
    }

    fn post(&self, path: &str, body: Value) -> Value {
        let mut response = self
            .agent
            .post(&format!("{}{path}", self.url))
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        serde_json::from_slice(&response.body_mut().read_to_vec().unwrap()).unwrap()
    }

    /// A token for `scope`, valid for `expires_in` seconds (negative: already expired).
    pub fn token(&self, scope: &str, expires_in: i64) -> String {
        let answer = self.post(
            "oauth/token",
            json!({"grant_type": "client_credentials", "audience": AUDIENCE, "scope": scope, "expires_in": expires_in}),
        );
        answer["access_token"].as_str().unwrap().to_string()
    }

    /// Publish a new signing key; `retire` removes the old ones. Returns the new kid.
    pub fn rotate(&self, retire: bool) -> String {
        self.post("admin/rotate", json!({"retire": retire}))["kid"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// `/admin/rotate` with any parameters (`retire`, `keep`, `ahead`); the issuer's answer.
    pub fn rotate_with(&self, params: Value) -> Value {
        self.post("admin/rotate", params)
    }

    /// The HTTP status of `/admin/rotate` with these parameters.
    pub fn rotate_status(&self, params: Value) -> u16 {
        match self
            .agent
            .post(&format!("{}admin/rotate", self.url))
            .header("Content-Type", "application/json")
            .send(params.to_string())
        {
            Ok(response) => response.status().as_u16(),
            Err(ureq::Error::StatusCode(code)) => code,
            Err(e) => panic!("{e}"),
        }
    }

    /// An admin request's status and answer: `body` sent with `content_type`, if any.
    pub fn admin(&self, path: &str, content_type: Option<&str>, body: &str) -> (u16, Value) {
        let mut request = self.agent.post(&format!("{}{path}", self.url));
        if let Some(t) = content_type {
            request = request.header("Content-Type", t);
        }
        let mut response = request.send(body.to_string()).expect(path);
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_vec().unwrap_or_default();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    pub fn fault(&self, fault: Value) {
        self.post("admin/fault", fault);
    }

    pub fn jwks_requests(&self) -> u64 {
        self.stats()["jwks_requests"].as_u64().unwrap()
    }

    /// `/admin/stats`: requests counted, the kids published.
    pub fn stats(&self) -> Value {
        let mut response = self
            .agent
            .get(&format!("{}admin/stats", self.url))
            .call()
            .unwrap();
        serde_json::from_slice(&response.body_mut().read_to_vec().unwrap()).unwrap()
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for DevIssuer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An issuer on loopback whose discovery document names `jwks_url`.
pub struct DiscoveryServer {
    pub server: JwksServer,
    pub issuer: String,
}

impl DiscoveryServer {
    pub fn start(jwks_url: &str, delay: std::time::Duration) -> DiscoveryServer {
        let server = JwksServer::start(Reply::json("{}"));
        let issuer = server.url.replace(".well-known/jwks.json", "");
        let doc = json!({"issuer": issuer, "jwks_uri": jwks_url}).to_string();
        server.set(Reply {
            delay,
            ..Reply::json(&doc)
        });
        DiscoveryServer { server, issuer }
    }
}
