//! The admin listener's `/metrics`, in the Prometheus text exposition format (version 0.0.4):
//! decisions by status and reason, a latency histogram, and the verifier's JWKS and token
//! cache counters. The set of series is fixed, so plain atomics serve: no registry.

use super::check::Reason;
use jwtguard::{Status, Verifier};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds (a hit answers in microseconds, a
/// verification in tens of them, a wait for keys in up to seconds).
const BUCKETS: [f64; 16] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 1.0, 5.0,
];

/// Decision slots: one per status, then public, then bad request.
const PUBLIC: usize = Status::ALL.len();
const BAD_REQUEST: usize = Status::ALL.len() + 1;

pub struct Metrics {
    decisions: Vec<AtomicU64>,
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

/// What one check came to.
pub enum Decision {
    Allowed(Reason),
    Refused(Status),
    BadRequest,
}

fn label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn new() -> Metrics {
        let zeros = |n: usize| (0..n).map(|_| AtomicU64::new(0)).collect();
        Metrics {
            decisions: zeros(Status::ALL.len() + 2),
            buckets: zeros(BUCKETS.len()),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    pub fn record(&self, decision: Decision, took: Duration) {
        let slot = match decision {
            Decision::Allowed(Reason::Token) => 0,
            Decision::Allowed(Reason::Public) => PUBLIC,
            Decision::Refused(status) => Status::ALL
                .iter()
                .position(|s| *s == status)
                .unwrap_or(BAD_REQUEST),
            Decision::BadRequest => BAD_REQUEST,
        };
        self.decisions[slot].fetch_add(1, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    /// The exposition text.
    pub fn render(&self, verifier: &Verifier) -> String {
        let mut out = String::with_capacity(4096);
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        out.push_str(
            "# HELP jwtguard_decisions_total Checks answered, by HTTP status and reason.\n",
        );
        out.push_str("# TYPE jwtguard_decisions_total counter\n");
        for (i, status) in Status::ALL.iter().enumerate() {
            let http = jwtguard::answer::refusal("", &[], *status).status;
            let http = if status.is_ok() { 200 } else { http };
            let _ = writeln!(
                out,
                "jwtguard_decisions_total{{status=\"{http}\",reason=\"{}\"}} {}",
                status.reason(),
                get(&self.decisions[i])
            );
        }
        let _ = writeln!(
            out,
            "jwtguard_decisions_total{{status=\"200\",reason=\"public\"}} {}",
            get(&self.decisions[PUBLIC])
        );
        let _ = writeln!(
            out,
            "jwtguard_decisions_total{{status=\"400\",reason=\"bad_request\"}} {}",
            get(&self.decisions[BAD_REQUEST])
        );

        out.push_str(
            "# HELP jwtguard_check_duration_seconds Time from a check's arrival to its answer.\n",
        );
        out.push_str("# TYPE jwtguard_check_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += get(n);
            let _ = writeln!(
                out,
                "jwtguard_check_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = get(&self.count);
        let _ = writeln!(
            out,
            "jwtguard_check_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "jwtguard_check_duration_seconds_sum {}",
            get(&self.sum_nanos) as f64 / 1e9
        );
        let _ = writeln!(out, "jwtguard_check_duration_seconds_count {count}");

        out.push_str("# HELP jwtguard_jwks_fetches_total JWKS fetches by URL and result.\n");
        out.push_str("# TYPE jwtguard_jwks_fetches_total counter\n");
        let mut sources: Vec<_> = Vec::new();
        for source in verifier.jwks_sources() {
            if !sources.iter().any(|s| std::sync::Arc::ptr_eq(s, source)) {
                sources.push(source.clone());
            }
        }
        for source in &sources {
            let s = source.stats();
            let url = label(source.url());
            for (result, n) in [
                ("ok", s.fetches_ok),
                ("failed", s.fetches_failed),
                ("not_modified", s.fetches_not_modified),
            ] {
                let _ = writeln!(
                    out,
                    "jwtguard_jwks_fetches_total{{jwks_uri=\"{url}\",result=\"{result}\"}} {n}"
                );
            }
        }
        let stats = verifier.jwks_stats();
        out.push_str("# HELP jwtguard_jwks_unknown_kid_refetches_total Refetches for a kid the keys lacked.\n");
        out.push_str("# TYPE jwtguard_jwks_unknown_kid_refetches_total counter\n");
        let _ = writeln!(
            out,
            "jwtguard_jwks_unknown_kid_refetches_total {}",
            stats.unknown_kid_refetches
        );
        out.push_str("# HELP jwtguard_jwks_stale_hits_total Key lookups answered with keys past their expiry.\n");
        out.push_str("# TYPE jwtguard_jwks_stale_hits_total counter\n");
        let _ = writeln!(out, "jwtguard_jwks_stale_hits_total {}", stats.stale_hits);

        let tokens = verifier.token_cache_stats();
        for (name, help, n) in [
            (
                "hits",
                "Checks answered from the verified-token cache.",
                tokens.hits,
            ),
            (
                "misses",
                "Token cache lookups that found nothing usable.",
                tokens.misses,
            ),
            (
                "evictions",
                "Tokens dropped from the full token cache.",
                tokens.evictions,
            ),
        ] {
            let _ = writeln!(out, "# HELP jwtguard_token_cache_{name}_total {help}");
            let _ = writeln!(out, "# TYPE jwtguard_token_cache_{name}_total counter");
            let _ = writeln!(out, "jwtguard_token_cache_{name}_total {n}");
        }
        out.push_str("# HELP jwtguard_keys_ready Whether every issuer has keys to verify with.\n");
        out.push_str("# TYPE jwtguard_keys_ready gauge\n");
        let _ = writeln!(
            out,
            "jwtguard_keys_ready {}",
            u8::from(verifier.keys_ready())
        );
        out
    }
}
