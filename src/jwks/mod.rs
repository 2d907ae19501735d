//! JSON Web Key Sets: parsing into verification keys, fetching, and the process-global cache.

pub mod cache;
pub mod discovery;
pub mod fetch;
pub mod keyset;

pub use cache::{CacheOptions, JwksSource, SourceStats};
pub use fetch::FetchOptions;
pub use keyset::{Key, KeySet, Selection, SkippedKey};
