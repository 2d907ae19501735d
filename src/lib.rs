//! jwtguard verifies OAuth 2.0 / OpenID Connect JWT access tokens once, in Rust, for every
//! server: Rust code uses this crate directly, C and C++ link the C ABI (`include/jwtguard.h`),
//! Python calls it through ctypes and nginx loads it as a module.
//!
//! ```no_run
//! use jwtguard::{Config, Keys, Policy, Verifier};
//! let policy = Policy::new("https://tenant.example/", "https://api.example");
//! let keys = Keys::Url("https://tenant.example/.well-known/jwks.json".into());
//! let verifier = Verifier::new(Config::new(policy, keys))?;
//! let claims = verifier.verify_authorization(Some("Bearer eyJ..."))?;
//! assert!(claims.has_scope("read:messages"));
//! # Ok::<(), jwtguard::Error>(())
//! ```
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod answer;
pub mod claims;
pub mod clock;
mod counters;
pub mod dpop;
pub mod error;
pub mod ffi;
pub mod jwks;
pub mod log;
pub mod policy;
pub mod token;
pub mod token_cache;
pub mod verify;

pub use claims::{Claims, has_scope};
pub use clock::Clock;
pub use dpop::{DpopMode, DpopPolicy};
pub use error::{Error, Result, Status};
pub use jwks::{CacheOptions, FetchOptions, KeySet};
pub use policy::{Algorithm, Policy};
pub use verify::{
    Config, Keys, Request, Scheme, Verifier, authorization_token, bearer_token, verify_jws,
};
