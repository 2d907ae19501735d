//! What a verifier accepts: algorithms, issuers, audiences, leeway, required claims, `typ`.

use crate::error::{Error, Result, Status};
use aws_lc_rs::signature::{self, VerificationAlgorithm};
use std::fmt;
use std::str::FromStr;

/// A JWS signature algorithm jwtguard can verify. Symmetric (`HS*`) and `none` are not here on
/// purpose: a verifier of access tokens from an issuer's JWKS never accepts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// EdDSA with Ed25519, by the polymorphic name of RFC 8037.
    EdDSA,
    /// EdDSA with Ed25519, by its fully specified name (RFC 9864), which current JOSE
    /// libraries sign with. The same signature as `EdDSA` on an Ed25519 key: an allow-list
    /// naming `EdDSA` admits it too, and a key published for either name verifies both.
    Ed25519,
}

/// The kind of public key an algorithm needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyFamily {
    /// `kty: RSA`.
    Rsa,
    /// `kty: EC`, `crv: P-256`.
    EcP256,
    /// `kty: EC`, `crv: P-384`.
    EcP384,
    /// `kty: OKP`, `crv: Ed25519`.
    Ed25519,
}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Algorithm; 10] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
        Algorithm::Ed25519,
    ];

    /// The JOSE name (`RS256`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::Ed25519 => "Ed25519",
        }
    }

    /// The key family this algorithm verifies with.
    pub fn family(self) -> KeyFamily {
        match self {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => KeyFamily::Rsa,
            Algorithm::ES256 => KeyFamily::EcP256,
            Algorithm::ES384 => KeyFamily::EcP384,
            Algorithm::EdDSA | Algorithm::Ed25519 => KeyFamily::Ed25519,
        }
    }

    /// The aws-lc-rs verification algorithm. RSA keys are accepted from 2048 to 8192 bits;
    /// ECDSA signatures are the fixed-width `r || s` form of RFC 7518 (never DER).
    pub(crate) fn verification(self) -> &'static dyn VerificationAlgorithm {
        match self {
            Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
            Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
            Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
            Algorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
            Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
            Algorithm::EdDSA | Algorithm::Ed25519 => &signature::ED25519,
        }
    }
}

/// Whether an allow-list admits `alg`: listed, or `Ed25519` where `EdDSA` (on an Ed25519 key,
/// the only EdDSA jwtguard knows) is listed.
pub fn permits(allowed: &[Algorithm], alg: Algorithm) -> bool {
    allowed.contains(&alg) || (alg == Algorithm::Ed25519 && allowed.contains(&Algorithm::EdDSA))
}

/// The names an allow-list admits, space-separated (what a DPoP challenge's `algs` says): its
/// own, and `Ed25519` beside `EdDSA`.
pub fn permitted_names(allowed: &[Algorithm]) -> String {
    let names: Vec<&str> = Algorithm::ALL
        .iter()
        .filter(|a| permits(allowed, **a))
        .map(|a| a.name())
        .collect();
    names.join(" ")
}

impl FromStr for Algorithm {
    type Err = Error;

    /// Exact, case-sensitive JOSE names only (`none`, `HS256`, `rs256` are refused).
    fn from_str(s: &str) -> Result<Self> {
        Algorithm::ALL
            .iter()
            .copied()
            .find(|a| a.name() == s)
            .ok_or_else(|| Error::with_detail(Status::AlgorithmNotAllowed, format!("alg {s:?}")))
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Default size cap for a token, before any decoding.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Default clock skew allowed for `exp`, `nbf` and `iat`, in seconds.
pub const DEFAULT_LEEWAY_SECS: u64 = 60;
/// Largest leeway accepted (one hour): more is a misconfiguration (or a negative number that
/// wrapped), never a clock skew.
pub const MAX_LEEWAY_SECS: u64 = 3600;
/// Largest token size cap accepted.
pub const MAX_TOKEN_BYTES_LIMIT: usize = 1024 * 1024;

/// What a verifier accepts. Build with [`Policy::new`] and the `with_*` methods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub(crate) issuers: Vec<String>,
    pub(crate) audiences: Vec<String>,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) leeway_secs: u64,
    pub(crate) required_claims: Vec<String>,
    pub(crate) strict: bool,
    pub(crate) max_token_bytes: usize,
}

/// Claims RFC 9068 requires of an access token; required in strict mode.
pub const RFC9068_REQUIRED_CLAIMS: [&str; 7] =
    ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"];

impl Policy {
    /// A policy for one issuer and one audience, RS256 only, 60 s leeway.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Policy {
            issuers: vec![issuer.into()],
            audiences: vec![audience.into()],
            algorithms: vec![Algorithm::RS256],
            leeway_secs: DEFAULT_LEEWAY_SECS,
            required_claims: Vec::new(),
            strict: false,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
        }
    }

    /// A policy with no issuer and no audience yet; [`Policy::validate`] fails until both are set.
    pub fn empty() -> Self {
        Policy {
            issuers: Vec::new(),
            audiences: Vec::new(),
            ..Policy::new("", "")
        }
    }

    /// Accept one more issuer.
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Accept one more audience.
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Replace the algorithm allow-list.
    pub fn with_algorithms(mut self, algorithms: &[Algorithm]) -> Self {
        self.algorithms = algorithms.to_vec();
        self
    }

    /// Set the leeway in seconds.
    pub fn with_leeway(mut self, secs: u64) -> Self {
        self.leeway_secs = secs;
        self
    }

    /// Require a claim to be present (strings for `sub`, `client_id`, `jti`).
    pub fn with_required_claim(mut self, name: impl Into<String>) -> Self {
        self.required_claims.push(name.into());
        self
    }

    /// Strict RFC 9068 mode: `typ` must be `at+jwt` and the RFC's claims are required.
    pub fn with_strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Set the size cap on tokens, in bytes.
    pub fn with_max_token_bytes(mut self, bytes: usize) -> Self {
        self.max_token_bytes = bytes;
        self
    }

    /// The accepted issuers.
    pub fn issuers(&self) -> &[String] {
        &self.issuers
    }

    /// The accepted audiences.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// The algorithm allow-list.
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }

    /// Whether `alg` is allowed.
    pub fn allows(&self, alg: Algorithm) -> bool {
        permits(&self.algorithms, alg)
    }

    /// Check the policy can verify anything at all.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::with_detail(Status::ConfigInvalid, what.to_string()));
        if self.issuers.is_empty() || self.issuers.iter().any(|i| i.is_empty()) {
            return bad("at least one non-empty issuer is required");
        }
        if self.audiences.is_empty() || self.audiences.iter().any(|a| a.is_empty()) {
            return bad("at least one non-empty audience is required");
        }
        if self.algorithms.is_empty() {
            return bad("the algorithm allow-list is empty");
        }
        if self.max_token_bytes == 0 || self.max_token_bytes > MAX_TOKEN_BYTES_LIMIT {
            return bad("the token size cap must be 1 byte to 1 MiB");
        }
        if self.leeway_secs > MAX_LEEWAY_SECS {
            return bad("the leeway must be 0 to 3600 seconds");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_are_exact() {
        for a in Algorithm::ALL {
            assert_eq!(a.name().parse::<Algorithm>().unwrap(), a);
        }
        for bad in ["none", "None", "HS256", "rs256", "ES512", "", "RS256 "] {
            assert_eq!(
                bad.parse::<Algorithm>().unwrap_err().status(),
                Status::AlgorithmNotAllowed
            );
        }
    }

    #[test]
    fn allows_reads_the_allow_list_with_ed25519_beside_eddsa() {
        let p =
            Policy::new("https://i/", "api").with_algorithms(&[Algorithm::ES256, Algorithm::EdDSA]);
        assert!(p.allows(Algorithm::ES256) && p.allows(Algorithm::EdDSA));
        assert!(p.allows(Algorithm::Ed25519));
        assert!(!p.allows(Algorithm::RS256));
        let only = Policy::new("https://i/", "api").with_algorithms(&[Algorithm::Ed25519]);
        assert!(only.allows(Algorithm::Ed25519) && !only.allows(Algorithm::EdDSA));
    }

    #[test]
    fn validate_requires_issuer_audience_and_algorithms() {
        assert!(Policy::new("https://i/", "api").validate().is_ok());
        assert!(Policy::empty().validate().is_err());
        assert!(Policy::new("", "api").validate().is_err());
        assert!(
            Policy::new("https://i/", "api")
                .with_algorithms(&[])
                .validate()
                .is_err()
        );
    }
}
