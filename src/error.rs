//! One error enum with stable numbers, used by the Rust API, the C ABI, the CLI and every binding.
//!
//! Numbers are grouped in blocks: 1xx request and token shape, 2xx keys and signature, 3xx
//! claims, 4xx scope, 5xx key availability, 6xx DPoP (RFC 9449), 9xx misuse of the API. A number, once published, is
//! never reused for another meaning; retired numbers stay here as comments.

use std::ffi::CStr;
use std::fmt;

/// The outcome of a jwtguard call. `Ok` is 0; every other value is an error.
///
/// Each value maps to an HTTP status, an RFC 6750 `error` attribute, the quickstart's JSON `code`,
/// a stable snake_case reason name and a human description.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Success.
    Ok = 0,

    // 1xx: the request and the token's shape.
    /// No token was presented (no or empty `Authorization` header).
    TokenMissing = 100,
    /// The `Authorization` header is not `Bearer <one token>` (or `DPoP <one token>`): a
    /// supported scheme written wrongly, or bytes no header may hold.
    AuthorizationHeaderMalformed = 101,
    /// The `Authorization` header names a scheme this verifier does not take (`Basic`,
    /// `Digest`, ...): RFC 6750 section 3.1 answers it 401 with a challenge and no error code.
    AuthorizationSchemeUnsupported = 102,
    /// The token is larger than the configured size cap.
    TokenTooLarge = 110,
    /// The token is not three canonical base64url segments.
    TokenMalformed = 111,
    /// The header is not a JSON object of the expected form (or has duplicate members).
    HeaderInvalid = 112,
    /// The payload is not a JSON object (or has duplicate members).
    PayloadInvalid = 113,
    /// The header's `alg` is missing, unknown, or not in the verifier's allow-list.
    AlgorithmNotAllowed = 120,
    /// The header has a `crit` member (no critical extension is understood).
    CriticalHeaderUnsupported = 121,
    /// The header's `typ` is not one this verifier accepts.
    TypeNotAllowed = 122,

    // 2xx: keys and signature.
    /// No key in the issuer's JWKS matches the token's `kid` (after one refetch when allowed).
    KeyNotFound = 200,
    /// More than one different key matches the token (duplicate `kid`, or no `kid` and several keys).
    KeyAmbiguous = 201,
    /// The key named by `kid` cannot be used with the token's `alg`.
    KeyAlgorithmMismatch = 202,
    /// The signature does not verify.
    SignatureInvalid = 210,

    // 3xx: claims.
    /// `exp` is in the past (beyond the leeway).
    TokenExpired = 300,
    /// `nbf` is in the future (beyond the leeway).
    TokenNotYetValid = 301,
    /// `iat` is in the future (beyond the leeway).
    TokenIssuedInFuture = 302,
    /// A time claim is missing (`exp`) or not a valid NumericDate.
    TimeClaimInvalid = 303,
    /// `iss` is missing, not a string, or not a configured issuer.
    IssuerInvalid = 310,
    /// `aud` is missing, of the wrong type, or does not contain a configured audience.
    AudienceInvalid = 311,
    /// A required claim is missing or of the wrong type.
    RequiredClaimMissing = 312,

    // 4xx: authorization.
    /// The token is valid but lacks a required scope.
    InsufficientScope = 400,

    // 5xx: keys cannot be had.
    /// The issuer's keys could not be fetched and none are cached.
    KeysUnavailable = 500,

    // 6xx: sender-constrained tokens (DPoP, RFC 9449).
    /// `Authorization: DPoP` without a `DPoP` proof header.
    DpopProofMissing = 600,
    /// More than one `DPoP` header (or a value holding several proofs).
    DpopProofMultiple = 601,
    /// The proof is not a compact JWS with JSON object header and payload (or is too large).
    DpopProofMalformed = 602,
    /// The proof's `typ` is not `dpop+jwt`.
    DpopProofTypeInvalid = 603,
    /// The proof's `alg` is not an asymmetric algorithm in the DPoP allow-list.
    DpopProofAlgorithmNotAllowed = 604,
    /// The proof's `jwk` is missing, not a supported public key, or does not fit `alg`.
    DpopProofKeyInvalid = 605,
    /// The proof's `jwk` holds private key material.
    DpopProofKeyPrivate = 606,
    /// The proof's signature does not verify with its `jwk`.
    DpopProofSignatureInvalid = 607,
    /// The proof lacks `jti`, `htm`, `htu` or `iat`, or one has the wrong type.
    DpopProofClaimsInvalid = 608,
    /// The proof's `htm` is not the request's method.
    DpopProofMethodMismatch = 609,
    /// The proof's `htu` is not the request's URL (query and fragment ignored).
    DpopProofUrlMismatch = 610,
    /// The proof's `iat` is older than the proof window (beyond the leeway).
    DpopProofExpired = 611,
    /// The proof's `iat` is in the future (beyond the leeway).
    DpopProofIssuedInFuture = 612,
    /// A proof with this `jti` was already used within the proof window.
    DpopProofReplayed = 613,
    /// The proof's `ath` is missing or is not the hash of the access token presented.
    DpopProofTokenHashMismatch = 614,
    /// The proof's key is not the key the token is bound to (`cnf.jkt`).
    DpopProofKeyMismatch = 615,
    /// A token bound to a key (`cnf`) was presented as a bearer token.
    DpopBoundTokenAsBearer = 620,
    /// `Authorization: DPoP` with a token that is not bound to a key (no `cnf.jkt`).
    DpopTokenNotBound = 621,
    /// The verifier requires DPoP-bound tokens and this one is a bearer token.
    DpopRequired = 622,
    /// `Authorization: DPoP` reached a verifier whose DPoP policy is off: a scheme it does not
    /// take, answered like any other (401, no error code; RFC 6750 section 3.1).
    DpopSchemeDisabled = 623,
    /// The DPoP replay cache is full of live proofs: refused rather than forgetting one.
    DpopReplayCacheFull = 630,

    // 9xx: misuse of the API.
    /// A required pointer argument was NULL.
    NullArgument = 900,
    /// An argument is not valid (bad UTF-8, unknown algorithm name, bad length).
    InvalidArgument = 901,
    /// The verifier configuration is incomplete or inconsistent.
    ConfigInvalid = 902,
    /// The JWKS given at configuration time is not usable.
    JwksInvalid = 903,
    /// The named claim is not present.
    ClaimNotFound = 904,
    /// The named claim is not of the requested type.
    ClaimWrongType = 905,
    /// An internal error (a caught panic); the process keeps running.
    Internal = 999,
}

/// What a status means for an HTTP response.
/// A status's texts, NUL-terminated so the C ABI hands out these very bytes (static: nothing
/// is allocated, so nothing outlives a library that is unloaded).
struct Meaning {
    reason: &'static CStr,
    http: u16,
    rfc6750: &'static CStr,
    code: &'static CStr,
    description: &'static CStr,
}

/// The text of a C string literal written in this file (all ASCII).
fn text(c: &'static CStr) -> &'static str {
    c.to_str().unwrap_or_default()
}

impl Status {
    /// Every status, in numeric order.
    pub const ALL: &'static [Status] = &[
        Status::Ok,
        Status::TokenMissing,
        Status::AuthorizationHeaderMalformed,
        Status::AuthorizationSchemeUnsupported,
        Status::TokenTooLarge,
        Status::TokenMalformed,
        Status::HeaderInvalid,
        Status::PayloadInvalid,
        Status::AlgorithmNotAllowed,
        Status::CriticalHeaderUnsupported,
        Status::TypeNotAllowed,
        Status::KeyNotFound,
        Status::KeyAmbiguous,
        Status::KeyAlgorithmMismatch,
        Status::SignatureInvalid,
        Status::TokenExpired,
        Status::TokenNotYetValid,
        Status::TokenIssuedInFuture,
        Status::TimeClaimInvalid,
        Status::IssuerInvalid,
        Status::AudienceInvalid,
        Status::RequiredClaimMissing,
        Status::InsufficientScope,
        Status::KeysUnavailable,
        Status::DpopProofMissing,
        Status::DpopProofMultiple,
        Status::DpopProofMalformed,
        Status::DpopProofTypeInvalid,
        Status::DpopProofAlgorithmNotAllowed,
        Status::DpopProofKeyInvalid,
        Status::DpopProofKeyPrivate,
        Status::DpopProofSignatureInvalid,
        Status::DpopProofClaimsInvalid,
        Status::DpopProofMethodMismatch,
        Status::DpopProofUrlMismatch,
        Status::DpopProofExpired,
        Status::DpopProofIssuedInFuture,
        Status::DpopProofReplayed,
        Status::DpopProofTokenHashMismatch,
        Status::DpopProofKeyMismatch,
        Status::DpopBoundTokenAsBearer,
        Status::DpopTokenNotBound,
        Status::DpopRequired,
        Status::DpopSchemeDisabled,
        Status::DpopReplayCacheFull,
        Status::NullArgument,
        Status::InvalidArgument,
        Status::ConfigInvalid,
        Status::JwksInvalid,
        Status::ClaimNotFound,
        Status::ClaimWrongType,
        Status::Internal,
    ];

    /// The status with this number, if any.
    pub fn from_u32(n: u32) -> Option<Status> {
        Status::ALL.iter().copied().find(|s| *s as u32 == n)
    }

    fn meaning(self) -> Meaning {
        use Status::*;
        let m = |reason, http, rfc6750, code, description| Meaning {
            reason,
            http,
            rfc6750,
            code,
            description,
        };
        match self {
            Ok => m(c"ok", 200, c"", c"ok", c"Success"),
            TokenMissing => m(
                c"token_missing",
                401,
                c"",
                c"authorization_header_missing",
                c"Authorization header is expected",
            ),
            AuthorizationHeaderMalformed => m(
                c"authorization_header_malformed",
                400,
                c"invalid_request",
                c"invalid_header",
                c"Authorization header must be 'Bearer <token>'",
            ),
            AuthorizationSchemeUnsupported => m(
                c"authorization_scheme_unsupported",
                401,
                c"",
                c"invalid_header",
                c"Authorization scheme is not supported",
            ),
            TokenTooLarge => m(
                c"token_too_large",
                401,
                c"invalid_token",
                c"invalid_header",
                c"Token is larger than the size limit",
            ),
            TokenMalformed => m(
                c"token_malformed",
                401,
                c"invalid_token",
                c"invalid_header",
                c"Token is not a compact JWS of three base64url segments",
            ),
            HeaderInvalid => m(
                c"header_invalid",
                401,
                c"invalid_token",
                c"invalid_header",
                c"Token header is not a valid JSON object",
            ),
            PayloadInvalid => m(
                c"payload_invalid",
                401,
                c"invalid_token",
                c"invalid_header",
                c"Token payload is not a valid JSON object",
            ),
            AlgorithmNotAllowed => m(
                c"algorithm_not_allowed",
                401,
                c"invalid_token",
                c"invalid_header",
                c"Token algorithm is not allowed",
            ),
            CriticalHeaderUnsupported => m(
                c"critical_header_unsupported",
                401,
                c"invalid_token",
                c"invalid_header",
                c"Token header has critical extensions that are not understood",
            ),
            TypeNotAllowed => m(
                c"type_not_allowed",
                401,
                c"invalid_token",
                c"invalid_header",
                c"Token type (typ) is not allowed",
            ),
            KeyNotFound => m(
                c"key_not_found",
                401,
                c"invalid_token",
                c"invalid_header",
                c"Unable to find appropriate key",
            ),
            KeyAmbiguous => m(
                c"key_ambiguous",
                401,
                c"invalid_token",
                c"invalid_header",
                c"More than one key matches the token",
            ),
            KeyAlgorithmMismatch => m(
                c"key_algorithm_mismatch",
                401,
                c"invalid_token",
                c"invalid_header",
                c"Token algorithm does not fit the key",
            ),
            SignatureInvalid => m(
                c"signature_invalid",
                401,
                c"invalid_token",
                c"invalid_token",
                c"Token signature is invalid",
            ),
            TokenExpired => m(
                c"token_expired",
                401,
                c"invalid_token",
                c"token_expired",
                c"Token is expired",
            ),
            TokenNotYetValid => m(
                c"token_not_yet_valid",
                401,
                c"invalid_token",
                c"invalid_claims",
                c"Token is not valid yet (nbf)",
            ),
            TokenIssuedInFuture => m(
                c"token_issued_in_future",
                401,
                c"invalid_token",
                c"invalid_claims",
                c"Token was issued in the future (iat)",
            ),
            TimeClaimInvalid => m(
                c"time_claim_invalid",
                401,
                c"invalid_token",
                c"invalid_claims",
                c"Token time claims are missing or invalid (exp, nbf, iat)",
            ),
            IssuerInvalid => m(
                c"issuer_invalid",
                401,
                c"invalid_token",
                c"invalid_claims",
                c"Incorrect claims: the issuer is not accepted",
            ),
            AudienceInvalid => m(
                c"audience_invalid",
                401,
                c"invalid_token",
                c"invalid_claims",
                c"Incorrect claims: the audience is not accepted",
            ),
            RequiredClaimMissing => m(
                c"required_claim_missing",
                401,
                c"invalid_token",
                c"invalid_claims",
                c"Incorrect claims: a required claim is missing or invalid",
            ),
            InsufficientScope => m(
                c"insufficient_scope",
                403,
                c"insufficient_scope",
                c"Unauthorized",
                c"You don't have access to this resource",
            ),
            KeysUnavailable => m(
                c"keys_unavailable",
                503,
                c"temporarily_unavailable",
                c"jwks_unavailable",
                c"The issuer's signing keys are unavailable",
            ),
            DpopProofMissing => m(
                c"dpop_proof_missing",
                401,
                c"invalid_dpop_proof",
                c"invalid_dpop_proof",
                c"DPoP proof is expected",
            ),
            DpopProofMultiple => m(
                c"dpop_proof_multiple",
                401,
                c"invalid_dpop_proof",
                c"invalid_dpop_proof",
                c"Only one DPoP proof is allowed",
            ),
            DpopProofMalformed => m(
                c"dpop_proof_malformed",
                401,
                c"invalid_dpop_proof",
                c"invalid_dpop_proof",
                c"DPoP proof is not a valid JWT",
            ),
            DpopProofTypeInvalid => m(
                c"dpop_proof_type_invalid",
                401,
                c"invalid_dpop_proof",
                c"invalid_dpop_proof",
                c"DPoP proof type (typ) must be dpop+jwt",
            ),
            DpopProofAlgorithmNotAllowed => m(
                c"dpop_proof_algorithm_not_allowed",
                401,
                c"invalid_dpop_proof",
                c"invalid_dpop_proof",
                c"DPoP proof algorithm is not allowed",
            ),
            DpopProofKeyInvalid => m(
                c"dpop_proof_key_invalid",
                401,
                c"invalid_dpop_proof",
                c"invalid_dpop_proof",
                c"DPoP proof key (jwk) is not a usable public key",
            ),
            DpopProofKeyPrivate => m(
                c"dpop_proof_key_private",
                401,
                c"invalid_dpop_proof",
                c"invalid_dpop_proof",
                c"DPoP proof key (jwk) holds private key material",
            ),
            DpopProofSignatureInvalid => m(
                c"dpop_proof_signature_invalid",
                401,
                c"invalid_dpop_proof",
                c"invalid_dpop_proof",
                c"DPoP proof signature is invalid",
            ),
            DpopProofClaimsInvalid => m(
                c"dpop_proof_claims_invalid",
                401,
                c"invalid_dpop_proof",
                c"invalid_dpop_proof",
                c"DPoP proof claims are missing or invalid (jti, htm, htu, iat)",
            ),
            DpopProofMethodMismatch => m(
                c"dpop_proof_method_mismatch",
                401,
                c"invalid_dpop_proof",
                c"invalid_dpop_proof",
                c"DPoP proof is for another HTTP method (htm)",
            ),
            DpopProofUrlMismatch => m(
                c"dpop_proof_url_mismatch",
                401,
                c"invalid_dpop_proof",
                c"invalid_dpop_proof",
                c"DPoP proof is for another URL (htu)",
            ),
            DpopProofExpired => m(
                c"dpop_proof_expired",
                401,
                c"invalid_dpop_proof",
                c"invalid_dpop_proof",
                c"DPoP proof is too old (iat)",
            ),
            DpopProofIssuedInFuture => m(
                c"dpop_proof_issued_in_future",
                401,
                c"invalid_dpop_proof",
                c"invalid_dpop_proof",
                c"DPoP proof was issued in the future (iat)",
            ),
            DpopProofReplayed => m(
                c"dpop_proof_replayed",
                401,
                c"invalid_dpop_proof",
                c"invalid_dpop_proof",
                c"DPoP proof was already used (jti)",
            ),
            DpopProofTokenHashMismatch => m(
                c"dpop_proof_token_hash_mismatch",
                401,
                c"invalid_dpop_proof",
                c"invalid_dpop_proof",
                c"DPoP proof is for another access token (ath)",
            ),
            DpopProofKeyMismatch => m(
                c"dpop_proof_key_mismatch",
                401,
                c"invalid_dpop_proof",
                c"invalid_dpop_proof",
                c"DPoP proof key is not the key the token is bound to",
            ),
            DpopBoundTokenAsBearer => m(
                c"dpop_bound_token_as_bearer",
                401,
                c"invalid_token",
                c"invalid_token",
                c"Token is bound to a key and needs a DPoP proof",
            ),
            DpopTokenNotBound => m(
                c"dpop_token_not_bound",
                401,
                c"invalid_token",
                c"invalid_token",
                c"Token is not bound to a DPoP key",
            ),
            DpopRequired => m(
                c"dpop_required",
                401,
                c"invalid_token",
                c"invalid_token",
                c"A DPoP-bound token is required",
            ),
            DpopSchemeDisabled => m(
                c"dpop_scheme_disabled",
                401,
                c"",
                c"invalid_header",
                c"DPoP is not accepted here",
            ),
            DpopReplayCacheFull => m(
                c"dpop_replay_cache_full",
                503,
                c"temporarily_unavailable",
                c"dpop_unavailable",
                c"Too many DPoP proofs to check right now",
            ),
            NullArgument => m(
                c"null_argument",
                500,
                c"",
                c"internal_error",
                c"A required argument was NULL",
            ),
            InvalidArgument => m(
                c"invalid_argument",
                500,
                c"",
                c"internal_error",
                c"An argument is not valid",
            ),
            ConfigInvalid => m(
                c"config_invalid",
                500,
                c"",
                c"internal_error",
                c"The verifier configuration is invalid",
            ),
            JwksInvalid => m(
                c"jwks_invalid",
                500,
                c"",
                c"internal_error",
                c"The configured JWKS is not usable",
            ),
            ClaimNotFound => m(
                c"claim_not_found",
                500,
                c"",
                c"internal_error",
                c"The claim is not present",
            ),
            ClaimWrongType => m(
                c"claim_wrong_type",
                500,
                c"",
                c"internal_error",
                c"The claim is not of the requested type",
            ),
            Internal => m(c"internal", 500, c"", c"internal_error", c"Internal error"),
        }
    }

    /// Stable snake_case name of this value (e.g. `token_expired`), shared by every binding.
    pub fn reason(self) -> &'static str {
        text(self.meaning().reason)
    }

    /// HTTP status a server should answer with.
    pub fn http_status(self) -> u16 {
        self.meaning().http
    }

    /// RFC 6750 `error` attribute for `WWW-Authenticate`; empty when none applies
    /// (no token presented, success, API misuse).
    pub fn rfc6750_error(self) -> &'static str {
        text(self.meaning().rfc6750)
    }

    /// The quickstart's JSON `code` (`authorization_header_missing`, `invalid_header`,
    /// `token_expired`, `invalid_claims`, `invalid_token`, `Unauthorized`, ...).
    pub fn code(self) -> &'static str {
        text(self.meaning().code)
    }

    /// A human description.
    pub fn description(self) -> &'static str {
        text(self.meaning().description)
    }

    /// The texts as static C strings, for the C ABI: reason, RFC 6750 error, code, description.
    pub(crate) fn c_texts(self) -> [&'static CStr; 4] {
        let m = self.meaning();
        [m.reason, m.rfc6750, m.code, m.description]
    }

    /// True for `Ok`.
    pub fn is_ok(self) -> bool {
        self == Status::Ok
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.description(), self.reason())
    }
}

/// An error from jwtguard: a [`Status`] plus, where useful, a detail for logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    status: Status,
    detail: Option<String>,
}

impl Error {
    /// An error with this status and no detail.
    pub fn new(status: Status) -> Self {
        Error {
            status,
            detail: None,
        }
    }

    /// An error with this status and a detail for logs (never shown as the description).
    pub fn with_detail(status: Status, detail: impl Into<String>) -> Self {
        Error {
            status,
            detail: Some(detail.into()),
        }
    }

    /// The stable status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The detail, if any.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }
}

impl From<Status> for Error {
    fn from(status: Status) -> Self {
        Error::new(status)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.detail {
            Some(d) => write!(f, "{}: {}", self.status, d),
            None => write!(f, "{}", self.status),
        }
    }
}

impl std::error::Error for Error {}

/// Result with a jwtguard [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_and_names_are_unique() {
        let mut reasons = std::collections::HashSet::new();
        for s in Status::ALL {
            assert_eq!(Status::from_u32(*s as u32), Some(*s));
            assert!(
                reasons.insert(s.reason()),
                "duplicate reason {}",
                s.reason()
            );
            assert!(!s.description().is_empty());
            // The texts Rust and C see are the same bytes (none lost to a failed conversion).
            let texts = [s.reason(), s.rfc6750_error(), s.code(), s.description()];
            for (c, text) in s.c_texts().iter().zip(texts) {
                assert_eq!(c.to_bytes(), text.as_bytes());
                assert!(text.is_ascii(), "{text:?}");
            }
            assert!(!s.reason().is_empty() && !s.code().is_empty());
        }
        assert_eq!(Status::from_u32(12345), None);
    }

    #[test]
    fn http_mapping_follows_rfc6750() {
        assert_eq!(Status::TokenMissing.http_status(), 401);
        assert_eq!(Status::TokenMissing.rfc6750_error(), "");
        assert_eq!(Status::SignatureInvalid.rfc6750_error(), "invalid_token");
        assert_eq!(Status::InsufficientScope.http_status(), 403);
        assert_eq!(
            Status::InsufficientScope.rfc6750_error(),
            "insufficient_scope"
        );
        assert_eq!(Status::KeysUnavailable.http_status(), 503);
        assert_eq!(Status::TokenExpired.code(), "token_expired");
        assert_eq!(Status::AudienceInvalid.code(), "invalid_claims");
        assert_eq!(
            Status::AuthorizationHeaderMalformed.code(),
            "invalid_header"
        );
        assert_eq!(Status::AuthorizationHeaderMalformed.http_status(), 400);
        // An unsupported scheme is 401 with no error code (RFC 6750 section 3.1), the seed's
        // invalid_header in the body; DPoP where it is off is one.
        for unsupported in [
            Status::AuthorizationSchemeUnsupported,
            Status::DpopSchemeDisabled,
        ] {
            assert_eq!(unsupported.http_status(), 401);
            assert_eq!(unsupported.rfc6750_error(), "");
            assert_eq!(unsupported.code(), "invalid_header");
        }
    }
}
