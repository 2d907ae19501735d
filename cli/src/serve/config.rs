//! `jwtguard serve --config FILE`: the TOML file, checked whole before anything listens.
//! Every mistake is reported with the file and the line it is on.

use jwtguard::verify::IssuerConfig;
use jwtguard::{Algorithm, CacheOptions, Config, Keys, Policy, Verifier};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    listen: Option<Spanned<String>>,
    admin_listen: Option<Spanned<String>>,
    workers: Option<Spanned<usize>>,
    realm: Option<Spanned<String>>,
    token_cache: Option<Spanned<u64>>,
    /// DPoP (RFC 9449): off, allowed (the default) or required.
    dpop: Option<Spanned<String>>,
    /// Seconds a DPoP proof is good for after its `iat` (default 60; the leeway on top).
    dpop_window: Option<Spanned<u64>>,
    /// DPoP proofs remembered against replay (default 250000).
    dpop_replay_cache: Option<Spanned<u64>>,
    /// The public origins (`https://api.example`) a DPoP proof may name: once set, a proof for
    /// any other origin is refused, whatever Host or X-Forwarded-Host built the request URL.
    dpop_origins: Option<Spanned<Vec<String>>>,
    snapshot: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    #[serde(default)]
    allow_insecure_http: bool,
    #[serde(default)]
    issuer: Vec<Spanned<IssuerToml>>,
    #[serde(default)]
    route: Vec<Spanned<RouteToml>>,
    #[serde(default)]
    forward_claims: BTreeMap<Spanned<String>, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerToml {
    issuer: String,
    audience: OneOrMany,
    jwks_uri: Option<String>,
    algorithms: Option<Vec<String>>,
    leeway: Option<u64>,
    #[serde(default)]
    required_claims: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteToml {
    prefix: String,
    #[serde(default)]
    public: bool,
    #[serde(default)]
    require_scope: Vec<String>,
}

/// What a route asks of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// Let it through without looking at any token.
    Public,
    /// A valid token granting every one of these scopes (none: any valid token).
    Token(Vec<String>),
}

/// A `[[route]]`: the rule for paths starting with `prefix`.
#[derive(Debug, Clone)]
pub struct Route {
    pub prefix: String,
    pub rule: Rule,
}

/// The headers every allowed answer carries, from these claims.
pub const STANDARD_CLAIMS: [(&str, &str); 3] = [
    ("sub", "x-jwt-sub"),
    ("iss", "x-jwt-iss"),
    ("scope", "x-jwt-scope"),
];

/// A checked configuration.
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub workers: usize,
    pub realm: String,
    /// Longest prefix first.
    pub routes: Vec<Route>,
    /// (claim, lower-case header name): the standard three, then `[forward_claims]`.
    pub claim_headers: Vec<(String, String)>,
    pub verifier: Verifier,
    /// Every issuer's `iss`, in file order (for logs).
    pub issuers: Vec<String>,
}

/// Where a span starts, as a 1-based line number.
fn line_of(text: &str, span: Range<usize>) -> usize {
    text[..span.start.min(text.len())].matches('\n').count() + 1
}

fn parse_addr(what: &str, value: &str) -> Result<SocketAddr, String> {
    value
        .parse()
        .map_err(|_| format!("{what} {value:?} is not an address like 127.0.0.1:9191"))
}

/// A header name others may not set: framing, hop-by-hop, or one of ours.
fn reserved_header(name: &str) -> bool {
    matches!(
        name,
        "content-length"
            | "content-type"
            | "transfer-encoding"
            | "connection"
            | "keep-alive"
            | "upgrade"
            | "te"
            | "trailer"
            | "host"
            | "date"
            | "server"
            | "www-authenticate"
            | "retry-after"
            | "authorization"
            | "cookie"
            | "set-cookie"
            | "proxy-authenticate"
            | "proxy-authorization"
    ) || STANDARD_CLAIMS.iter().any(|(_, h)| *h == name)
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Read and check `path`. `listen` (from `--listen`) overrides the file's `listen`.
pub fn load(path: &Path, listen: Option<&str>) -> Result<ServeConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    parse(&text, path, listen)
}

/// Check a configuration's text (`path` names it in messages).
pub fn parse(text: &str, path: &Path, listen: Option<&str>) -> Result<ServeConfig, String> {
    let file: FileToml = toml::from_str(text).map_err(|e| match e.span() {
        Some(span) => format!(
            "{}:{}: {}",
            path.display(),
            line_of(text, span),
            e.message()
        ),
        None => format!("{}: {}", path.display(), e.message()),
    })?;
    let at = |span: Range<usize>, message: String| {
        format!("{}:{}: {message}", path.display(), line_of(text, span))
    };

    let listen = match (listen, &file.listen) {
        (Some(value), _) => parse_addr("--listen", value)?,
        (None, Some(value)) => {
            parse_addr("listen", value.get_ref()).map_err(|m| at(value.span(), m))?
        }
        (None, None) => parse_addr("listen", "127.0.0.1:9191")?,
    };
    let admin_listen = match &file.admin_listen {
        Some(value) => {
            parse_addr("admin_listen", value.get_ref()).map_err(|m| at(value.span(), m))?
        }
        None => parse_addr("admin_listen", "127.0.0.1:9192")?,
    };
    if admin_listen == listen && listen.port() != 0 {
        return Err(format!(
            "{}: listen and admin_listen are the same address ({listen}): the admin endpoints live on their own listener",
            path.display()
        ));
    }
    let workers = match &file.workers {
        Some(w) if *w.get_ref() == 0 || *w.get_ref() > 1024 => {
            return Err(at(w.span(), "workers must be 1 to 1024".into()));
        }
        Some(w) => *w.get_ref(),
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let realm = match &file.realm {
        Some(r)
            if r.get_ref().is_empty()
                || !r
                    .get_ref()
                    .bytes()
                    .all(|b| b == b' ' || b.is_ascii_graphic()) =>
        {
            return Err(at(
                r.span(),
                "realm must be non-empty printable ASCII".into(),
            ));
        }
        Some(r) => r.get_ref().clone(),
        None => "api".to_string(),
    };

    // Issuers.
    if file.issuer.is_empty() {
        return Err(format!(
            "{}: at least one [[issuer]] table is required",
            path.display()
        ));
    }
    let mut cache = CacheOptions {
        // Requests never wait on a thread for keys: a fetch runs in the background and the
        // check waits for it asynchronously (see the check loop).
        non_blocking: true,
        snapshot: file.snapshot.clone(),
        ..CacheOptions::default()
    };
    cache.fetch.ca_file = file.ca_file.clone();
    cache.fetch.allow_insecure_http = file.allow_insecure_http;
    let mut issuers: Vec<IssuerConfig> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for table in &file.issuer {
        let span = table.span();
        let t = table.get_ref();
        let audiences = match &t.audience {
            OneOrMany::One(a) => vec![a.clone()],
            OneOrMany::Many(list) => list.clone(),
        };
        if audiences.is_empty() {
            return Err(at(span, "audience must name at least one audience".into()));
        }
        let mut policy = Policy::new(&t.issuer, &audiences[0]);
        for more in &audiences[1..] {
            policy = policy.with_audience(more);
        }
        if let Some(algorithms) = &t.algorithms {
            let parsed: Vec<Algorithm> = algorithms
                .iter()
                .map(|name| {
                    name.parse().map_err(|_| {
                        at(
                            span.clone(),
                            format!(
                                "algorithm {name:?} is not supported ({})",
                                jwtguard::policy::permitted_names(&Algorithm::ALL)
                            ),
                        )
                    })
                })
                .collect::<Result<_, _>>()?;
            policy = policy.with_algorithms(&parsed);
        }
        if let Some(leeway) = t.leeway {
            policy = policy.with_leeway(leeway);
        }
        for claim in &t.required_claims {
            policy = policy.with_required_claim(claim);
        }
        let keys = match &t.jwks_uri {
            Some(uri) => Keys::Url(uri.clone()),
            None => Keys::Discover,
        };
        if names.contains(&t.issuer) {
            return Err(at(
                span,
                format!("the issuer {:?} is configured twice", t.issuer),
            ));
        }
        // Checked alone first, so that a mistake is reported at its table.
        let mut alone = Config::new(policy.clone(), keys.clone());
        alone.cache = cache.clone();
        alone.token_cache = 0;
        if let Err(e) = Verifier::new(alone) {
            return Err(at(span, format!("[[issuer]] {:?}: {e}", t.issuer)));
        }
        names.push(t.issuer.clone());
        issuers.push(IssuerConfig {
            policy,
            keys,
            cache: cache.clone(),
        });
    }
    let mut rest = issuers.into_iter();
    let first = rest.next().expect("at least one issuer");
    let mut config = Config::new(first.policy, first.keys);
    config.cache = first.cache;
    for more in rest {
        config = config.with_issuer(more);
    }
    if let Some(n) = &file.token_cache {
        if *n.get_ref() > jwtguard::verify::MAX_TOKEN_CACHE as u64 {
            return Err(at(
                n.span(),
                format!(
                    "token_cache must be at most {}",
                    jwtguard::verify::MAX_TOKEN_CACHE
                ),
            ));
        }
        config.token_cache = *n.get_ref() as usize;
    }
    if let Some(mode) = &file.dpop {
        config.dpop.mode = mode.get_ref().parse().map_err(|_| {
            at(
                mode.span(),
                "dpop must be \"off\", \"allowed\" or \"required\"".into(),
            )
        })?;
    }
    if let Some(n) = &file.dpop_window {
        config.dpop.window_secs = *n.get_ref();
        config
            .dpop
            .validate()
            .map_err(|e| at(n.span(), e.to_string()))?;
    }
    if let Some(n) = &file.dpop_replay_cache {
        config.dpop.replay_cache = usize::try_from(*n.get_ref()).unwrap_or(usize::MAX);
        config
            .dpop
            .validate()
            .map_err(|e| at(n.span(), e.to_string()))?;
    }
    if let Some(origins) = &file.dpop_origins {
        if let Some(bad) = origins
            .get_ref()
            .iter()
            .find(|o| jwtguard::dpop::origin_of(o).is_none())
        {
            return Err(at(
                origins.span(),
                format!("dpop_origins: {bad:?} is not an origin (http(s)://host[:port], no path)"),
            ));
        }
        config.dpop.origins = origins.get_ref().clone();
    }
    let verifier = Verifier::new(config).map_err(|e| format!("{}: {e}", path.display()))?;

    // Routes.
    let mut routes: Vec<Route> = Vec::new();
    for table in &file.route {
        let span = table.span();
        let t = table.get_ref();
        if !t.prefix.starts_with('/') {
            return Err(at(span, format!("prefix {:?} must start with /", t.prefix)));
        }
        if t.prefix.contains(['?', '#', '%']) || t.prefix.split('/').any(|s| s == "." || s == "..")
        {
            return Err(at(
                span,
                format!(
                    "prefix {:?} must be a plain decoded path (no ?, #, %, . or .. segments): paths are normalised before they are matched",
                    t.prefix
                ),
            ));
        }
        if routes.iter().any(|r| r.prefix == t.prefix) {
            return Err(at(
                span,
                format!("prefix {:?} is configured twice", t.prefix),
            ));
        }
        if t.public && !t.require_scope.is_empty() {
            return Err(at(
                span,
                "a route is either public or requires scopes, not both".into(),
            ));
        }
        if let Some(bad) = t.require_scope.iter().find(|s| {
            s.is_empty()
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        }) {
            return Err(at(
                span,
                format!(
                    "require_scope entry {bad:?} is not one scope (printable ASCII, no space, quote or backslash)"
                ),
            ));
        }
        routes.push(Route {
            prefix: t.prefix.clone(),
            rule: if t.public {
                Rule::Public
            } else {
                Rule::Token(t.require_scope.clone())
            },
        });
    }
    routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));

    // Claim headers.
    let mut claim_headers: Vec<(String, String)> = STANDARD_CLAIMS
        .iter()
        .map(|(c, h)| (c.to_string(), h.to_string()))
        .collect();
    for (claim, header) in &file.forward_claims {
        let name = header.get_ref().to_ascii_lowercase();
        if name.is_empty() || !name.bytes().all(is_token_char) {
            return Err(at(
                header.span(),
                format!("{:?} is not a header name", header.get_ref()),
            ));
        }
        if reserved_header(&name) {
            return Err(at(
                header.span(),
                format!("{:?} may not be set by forward_claims", header.get_ref()),
            ));
        }
        if claim.get_ref().is_empty() {
            return Err(at(claim.span(), "an empty claim name".into()));
        }
        if claim_headers.iter().any(|(_, h)| *h == name) {
            return Err(at(
                header.span(),
                format!("header {:?} is forwarded twice", header.get_ref()),
            ));
        }
        claim_headers.push((claim.get_ref().clone(), name));
    }

    Ok(ServeConfig {
        listen,
        admin_listen,
        workers,
        realm,
        routes,
        claim_headers,
        verifier,
        issuers: names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
listen = "127.0.0.1:9191"
admin_listen = "127.0.0.1:9192"

[[issuer]]
issuer = "https://a.example/"
audience = "https://api"
jwks_uri = "https://a.example/.well-known/jwks.json"

[[issuer]]
issuer = "https://b.example/"
audience = ["https://api", "https://api2"]
algorithms = ["ES256"]
leeway = 0

[[route]]
prefix = "/api/public"
public = true

[[route]]
prefix = "/api/private-scoped"
require_scope = ["read:messages"]

[forward_claims]
email = "X-Jwt-Email"
"#;

    fn error(text: &str) -> String {
        match parse(text, Path::new("f.toml"), None) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e,
        }
    }

    #[test]
    fn a_good_file() {
        let c = parse(GOOD, Path::new("f.toml"), None).unwrap();
        assert_eq!(c.issuers, ["https://a.example/", "https://b.example/"]);
        assert_eq!(c.routes[0].prefix, "/api/private-scoped");
        assert_eq!(c.routes[1].rule, Rule::Public);
        assert_eq!(c.claim_headers.len(), 4);
        assert_eq!(c.claim_headers[3], ("email".into(), "x-jwt-email".into()));
        assert_eq!(c.realm, "api");
        let over = parse(GOOD, Path::new("f.toml"), Some("127.0.0.1:7000")).unwrap();
        assert_eq!(over.listen.port(), 7000);
        assert!(c.verifier.dpop().origins.is_empty());
        let pinned = GOOD.replacen(
            "[[issuer]]",
            "dpop_origins = [\"https://api.example\", \"http://127.0.0.1:8080\"]\n[[issuer]]",
            1,
        );
        let pinned = parse(&pinned, Path::new("f.toml"), None).unwrap();
        assert_eq!(
            pinned.verifier.dpop().origins,
            ["https://api.example", "http://127.0.0.1:8080"]
        );
    }

    #[test]
    fn mistakes_name_their_line() {
        let with = |from: &str, to: &str| GOOD.replacen(from, to, 1);
        for (text, line, message) in [
            (
                with("leeway = 0", "leeway = 0\nlee_way = 1"),
                15,
                "unknown field",
            ),
            (with("[\"ES256\"]", "[\"HS256\"]"), 10, "HS256"),
            (
                with("prefix = \"/api/public\"", "prefix = \"api\""),
                16,
                "must start with /",
            ),
            (
                with("prefix = \"/api/public\"", "prefix = \"/api/../x\""),
                16,
                "normalised",
            ),
            (
                with("public = true", "public = true\nrequire_scope = [\"a\"]"),
                16,
                "not both",
            ),
            (
                with("[\"read:messages\"]", "[\"read messages\"]"),
                20,
                "not one scope",
            ),
            (
                with("\"X-Jwt-Email\"", "\"X-Jwt-Sub\""),
                25,
                "may not be set",
            ),
            (
                with("\"X-Jwt-Email\"", "\"Bad Header\""),
                25,
                "not a header name",
            ),
            (
                with("https://b.example/", "https://a.example/"),
                10,
                "configured twice",
            ),
            (
                with("listen = \"127.0.0.1:9191\"", "listen = \"nowhere\""),
                2,
                "not an address",
            ),
            (with("leeway = 0", "leeway = 7200"), 10, "leeway"),
            (
                with("jwks_uri = \"https://a", "jwks_uri = \"http://a"),
                5,
                "https is required",
            ),
            (with("leeway = 0", "leeway = \"0\""), 14, "invalid type"),
            (
                with(
                    "admin_listen = \"127.0.0.1:9192\"",
                    "admin_listen = \"127.0.0.1:9192\"\ndpop_origins = [\"https://api.example/v1\"]",
                ),
                4,
                "dpop_origins: \"https://api.example/v1\" is not an origin",
            ),
            (
                with(
                    "admin_listen = \"127.0.0.1:9192\"",
                    "admin_listen = \"127.0.0.1:9192\"\ndpop_origins = \"https://api.example\"",
                ),
                4,
                "invalid type",
            ),
        ] {
            let e = error(&text);
            assert!(
                e.starts_with(&format!("f.toml:{line}: ")) && e.contains(message),
                "want line {line} and {message:?}, got {e}"
            );
        }
        assert!(error("listen = \"127.0.0.1:1\"").contains("[[issuer]]"));
        assert!(error("[[issuer\n").starts_with("f.toml:1: "));
    }
}
