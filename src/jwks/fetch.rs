//! Fetching a JWKS over HTTP(S), hardened: timeouts, a body cap, no redirects, and `https`
//! required except for loopback hosts or an explicit opt-in.

use crate::error::{Error, Result, Status};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use ureq::Agent;
use ureq::http::Uri;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig, TlsProvider};

/// Limits and permissions for one fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchOptions {
    /// Time allowed to connect.
    pub connect_timeout: Duration,
    /// Time allowed for the whole request, body included.
    pub total_timeout: Duration,
    /// Largest body accepted, in bytes.
    pub max_body_bytes: u64,
    /// Allow plain `http` to hosts other than loopback.
    pub allow_insecure_http: bool,
    /// Extra trusted CA certificates (PEM), added to the system's store.
    pub ca_file: Option<PathBuf>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            connect_timeout: Duration::from_secs(2),
            total_timeout: Duration::from_secs(5),
            max_body_bytes: 1024 * 1024,
            allow_insecure_http: false,
            ca_file: None,
        }
    }
}

/// A successful HTTP response body with the caching headers that matter.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// The body, at most `max_body_bytes`.
    pub body: Vec<u8>,
    /// `Cache-Control: max-age`, in seconds, when present.
    pub max_age: Option<u64>,
    /// The `ETag`, for revalidation.
    pub etag: Option<String>,
}

/// What a conditional GET found.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// A new body (status 200).
    Body(Fetched),
    /// The cached body is still current (status 304); `max_age` as sent with it.
    NotModified {
        /// `Cache-Control: max-age` of the 304, when present.
        max_age: Option<u64>,
    },
}

/// Whether `host` (as it appears in a URL) is a loopback host.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Check a JWKS URL: absolute `http` or `https` with a host; `http` only to loopback unless
/// allowed. Returns whether the host is loopback.
pub fn check_url(url: &str, allow_insecure_http: bool) -> Result<bool> {
    let bad = |why: &str| {
        Err(Error::with_detail(
            Status::ConfigInvalid,
            format!("{url:?}: {why}"),
        ))
    };
    let Ok(uri) = url.parse::<Uri>() else {
        return bad("not a URL");
    };
    let Some(host) = uri.host() else {
        return bad("no host");
    };
    let loopback = is_loopback_host(host);
    match uri.scheme_str() {
        Some("https") => Ok(loopback),
        Some("http") if loopback || allow_insecure_http => Ok(loopback),
        Some("http") => bad("https is required except for loopback hosts"),
        _ => bad("only http and https URLs are supported"),
    }
}

/// The certificates of a PEM file; an error when it cannot be read or holds none.
pub fn load_ca_file(path: &Path) -> Result<Vec<Certificate<'static>>> {
    let bad = |why: String| {
        Error::with_detail(
            Status::ConfigInvalid,
            format!("CA file {}: {why}", path.display()),
        )
    };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(bad("no certificate in it".into()));
    }
    Ok(certs)
}

fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    static PROVIDER: LazyLock<Arc<rustls::crypto::CryptoProvider>> =
        LazyLock::new(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    PROVIDER.clone()
}

/// TLS settings: the platform's verifier, or the system's roots plus a CA file.
fn tls_config(ca_file: Option<&Path>) -> Result<TlsConfig> {
    let roots = match ca_file {
        None => RootCerts::PlatformVerifier,
        Some(path) => {
            let mut certs = load_ca_file(path)?;
            let system = rustls_native_certs::load_native_certs();
            certs.extend(
                system
                    .certs
                    .iter()
                    .map(|c| Certificate::from_der(c.as_ref()).to_owned()),
            );
            RootCerts::from(certs)
        }
    };
    Ok(TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(roots)
        .unversioned_rustls_crypto_provider(crypto_provider())
        .build())
}

fn agent(options: &FetchOptions, use_env_proxy: bool) -> Result<Agent> {
    let mut builder = Agent::config_builder()
        .timeout_connect(Some(options.connect_timeout))
        .timeout_global(Some(options.total_timeout))
        .max_redirects(0)
        .http_status_as_error(false)
        .user_agent(concat!("jwtguard/", env!("CARGO_PKG_VERSION")))
        .accept("application/json, application/jwk-set+json")
        .tls_config(tls_config(options.ca_file.as_deref())?);
    if !use_env_proxy {
        builder = builder.proxy(None);
    }
    Ok(builder.build().new_agent())
}

/// Most redirects followed for one fetch.
pub const MAX_REDIRECTS: usize = 3;

/// Where a redirect from `from` to `location` leads, if it stays on the same host and does not
/// leave https.
fn redirect_target(from: &Uri, location: &str) -> Option<String> {
    let target = if location.starts_with("http://") || location.starts_with("https://") {
        location.to_string()
    } else if location.starts_with('/') && !location.starts_with("//") {
        format!("{}://{}{location}", from.scheme_str()?, from.authority()?)
    } else {
        return None;
    };
    let uri: Uri = target.parse().ok()?;
    let same_host = uri.host()?.eq_ignore_ascii_case(from.host()?);
    let downgrade = from.scheme_str() == Some("https") && uri.scheme_str() != Some("https");
    (same_host && !downgrade).then_some(target)
}

fn header_value(response: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// GET `url` (conditionally, when `etag` is given). Redirects are followed only to the same
/// host, at most three times. Anything but 200 or 304 is an error, as is a body over the cap.
pub fn fetch(url: &str, options: &FetchOptions, etag: Option<&str>) -> Result<Outcome> {
    let unavailable =
        |why: String| Error::with_detail(Status::KeysUnavailable, format!("{url}: {why}"));
    let mut current = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let loopback = check_url(&current, options.allow_insecure_http)?;
        let mut request = agent(options, !loopback)
            .map_err(|e| unavailable(e.to_string()))?
            .get(&current);
        if let Some(tag) = etag {
            request = request.header("If-None-Match", tag);
        }
        let mut response = request.call().map_err(|e| unavailable(e.to_string()))?;
        let status = response.status().as_u16();
        let max_age = header_value(&response, "cache-control").and_then(|v| parse_max_age(&v));
        match status {
            200 => {
                let body = response
                    .body_mut()
                    .with_config()
                    .limit(options.max_body_bytes)
                    .read_to_vec()
                    .map_err(|e| unavailable(format!("body: {e}")))?;
                let etag = header_value(&response, "etag");
                return Ok(Outcome::Body(Fetched {
                    body,
                    max_age,
                    etag,
                }));
            }
            304 if etag.is_some() => return Ok(Outcome::NotModified { max_age }),
            301 | 302 | 303 | 307 | 308 => {
                let from: Uri = current.parse().map_err(|_| unavailable("bad URL".into()))?;
                let location = header_value(&response, "location").unwrap_or_default();
                current = redirect_target(&from, &location).ok_or_else(|| {
                    unavailable(format!(
                        "redirect to {location:?} leaves the host; not followed"
                    ))
                })?;
            }
            _ => return Err(unavailable(format!("HTTP status {status}"))),
        }
    }
    Err(unavailable(format!("more than {MAX_REDIRECTS} redirects")))
}

/// `max-age` from a `Cache-Control` value; `None` when absent or when `no-store`/`no-cache`
/// say the answer must not be reused as is.
pub fn parse_max_age(value: &str) -> Option<u64> {
    let mut max_age = None;
    for directive in value.split(',') {
        let directive = directive.trim();
        let (name, arg) = match directive.split_once('=') {
            Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
            None => (directive, None),
        };
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(0);
        }
        if name.eq_ignore_ascii_case("max-age") {
            max_age = arg.and_then(|a| a.parse::<u64>().ok());
        }
    }
    max_age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in ["localhost", "127.0.0.1", "127.5.6.7", "[::1]", "LOCALHOST"] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in ["example.com", "10.0.0.1", "localhost.evil.com", "[::2]"] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn url_rules() {
        assert_eq!(
            check_url("https://tenant.example/.well-known/jwks.json", false),
            Ok(false)
        );
        assert_eq!(check_url("http://127.0.0.1:8080/jwks", false), Ok(true));
        assert!(check_url("http://tenant.example/jwks", false).is_err());
        assert!(check_url("http://tenant.example/jwks", true).is_ok());
        for bad in [
            "",
            "jwks.json",
            "ftp://127.0.0.1/x",
            "file:///etc/passwd",
            "https://",
        ] {
            assert!(check_url(bad, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn redirects_stay_on_the_host() {
        let from: Uri = "https://tenant.example/jwks".parse().unwrap();
        assert_eq!(
            redirect_target(&from, "/keys").as_deref(),
            Some("https://tenant.example/keys")
        );
        assert_eq!(
            redirect_target(&from, "https://TENANT.example/v2/keys").as_deref(),
            Some("https://TENANT.example/v2/keys")
        );
        for bad in [
            "https://evil.example/keys",
            "http://tenant.example/keys",
            "//evil.example/k",
            "keys",
            "",
        ] {
            assert_eq!(redirect_target(&from, bad), None, "{bad}");
        }
    }

    #[test]
    fn cache_control() {
        assert_eq!(parse_max_age("public, max-age=300"), Some(300));
        assert_eq!(parse_max_age("max-age=\"60\""), Some(60));
        assert_eq!(parse_max_age("no-store"), Some(0));
        assert_eq!(parse_max_age("public"), None);
        assert_eq!(parse_max_age("max-age=abc"), None);
    }
}
