//! Regression tests for the outside review (issue 8) that live in the core: each test names
//! the item it covers. Real loopback servers and real dev issuers, no mocks.

mod common;

use common::*;
use jwtguard::{CacheOptions, Clock, Config, Keys, Policy, Status, Verifier};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn status(v: &Verifier, token: &str) -> Status {
    v.verify(token).map_or_else(|e| e.status(), |_| Status::Ok)
}

/// A temporary file path, removed (with its lock file) on drop.
struct TempPath(PathBuf);

/// Write `path` with a modification time of `unix_secs` (a file written when a manual clock
/// read that).
fn write_at(path: &std::path::Path, bytes: &[u8], unix_secs: i64) {
    std::fs::write(path, bytes).unwrap();
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + Duration::from_secs(unix_secs as u64))
        .unwrap();
}

impl TempPath {
    fn new(name: &str) -> TempPath {
        TempPath(
            std::env::temp_dir().join(format!("jwtguard-review-{}-{name}", std::process::id())),
        )
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let mut lock = self.0.clone().into_os_string();
        lock.push(".lock");
        let _ = std::fs::remove_file(lock);
    }
}

fn discovering(issuer: &str, tune: impl FnOnce(&mut CacheOptions)) -> Verifier {
    let mut config = Config::new(Policy::new(issuer, AUDIENCE), Keys::Discover);
    config.cache.backoff_initial = Duration::from_millis(200);
    tune(&mut config.cache);
    Verifier::new(config).unwrap()
}

/// Verify until `want` or `limit`, checking `never` is never accepted meanwhile.
fn until(v: &Verifier, token: &str, never: &str, limit: Duration) -> Status {
    let deadline = Instant::now() + limit;
    loop {
        assert_ne!(status(v, never), Status::Ok, "a forged token was accepted");
        let got = status(v, token);
        if got == Status::Ok || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn item2_a_snapshot_never_binds_an_issuer_to_another_issuers_keys() {
    let (a, b) = (Signer::rs256(), Signer::rs256_b());
    let keys_a = JwksServer::start(Reply::json(&jwks(&[a.jwk(true)])));
    let keys_b = JwksServer::start(Reply::json(&jwks(&[b.jwk(true)])));
    let issuer_a = DiscoveryServer::start(&keys_a.url, Duration::ZERO);
    // B's discovery answers 1.5 s late: the first requests come before it.
    let issuer_b = DiscoveryServer::start(&keys_b.url, Duration::from_millis(1500));
    let snapshot = TempPath::new("two-issuers.json");
    let shared = |c: &mut CacheOptions| {
        c.non_blocking = true;
        c.snapshot = Some(snapshot.0.clone());
    };

    // First run: A is discovered and its keys land in the shared snapshot.
    let va = discovering(&issuer_a.issuer, shared);
    let token_a = a.token(&live_claims(&issuer_a.issuer));
    let forged_for_a = b.token(&live_claims(&issuer_a.issuer));
    assert_eq!(
        until(&va, &token_a, &forged_for_a, Duration::from_secs(5)),
        Status::Ok
    );
    // B, on the same snapshot, while its discovery has not finished: A's keys never verify a
    // token that claims to be B's.
    let vb = discovering(&issuer_b.issuer, shared);
    let token_b = b.token(&live_claims(&issuer_b.issuer));
    let forged_for_b = a.token(&live_claims(&issuer_b.issuer));
    assert_eq!(status(&vb, &forged_for_b), Status::KeysUnavailable);
    assert_eq!(
        until(&vb, &token_b, &forged_for_b, Duration::from_secs(8)),
        Status::Ok,
        "B's genuine token once B is discovered"
    );
    assert_eq!(vb.jwks_source().unwrap().url(), keys_b.url);

    // The file binds each URL to its own issuer only.
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&snapshot.0).unwrap()).unwrap();
    let entries = file["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{file}");
    for (url, issuer) in [
        (&keys_a.url, &issuer_a.issuer),
        (&keys_b.url, &issuer_b.issuer),
    ] {
        let entry = entries.iter().find(|e| e["url"] == **url).unwrap();
        assert_eq!(entry["issuers"], json!([issuer]), "{file}");
    }

    // "After a restart", B's issuer down: B's own snapshot entry stands in (blocking mode
    // too); the forged token still fails; an issuer the file does not name gets nothing.
    issuer_b.server.set(Reply {
        status: 503,
        ..Reply::json("{}")
    });
    let restarted = discovering(&issuer_b.issuer, |c| {
        c.snapshot = Some(snapshot.0.clone());
    });
    assert_eq!(status(&restarted, &token_b), Status::Ok);
    assert_ne!(status(&restarted, &forged_for_b), Status::Ok);
    let unknown = discovering("http://127.0.0.1:9/", |c| {
        c.snapshot = Some(snapshot.0.clone());
        c.fetch.connect_timeout = Duration::from_millis(200);
    });
    assert_eq!(status(&unknown, &token_b), Status::KeysUnavailable);
    assert_eq!(status(&unknown, &forged_for_b), Status::KeysUnavailable);
}

#[test]
fn item2_the_snapshot_stand_in_is_not_kept_once_discovery_succeeds() {
    let (a, b) = (Signer::rs256(), Signer::rs256_b());
    let keys_old = JwksServer::start(Reply::json(&jwks(&[a.jwk(true)])));
    let keys_new = JwksServer::start(Reply::json(&jwks(&[b.jwk(true)])));
    let issuer = DiscoveryServer::start(&keys_old.url, Duration::ZERO);
    let snapshot = TempPath::new("moved.json");
    let with_snapshot = |c: &mut CacheOptions| c.snapshot = Some(snapshot.0.clone());
    let first = discovering(&issuer.issuer, with_snapshot);
    assert_eq!(
        status(&first, &a.token(&live_claims(&issuer.issuer))),
        Status::Ok
    );

    // The issuer moves its keys; a new verifier starts while discovery is slow.
    let doc = json!({"issuer": issuer.issuer, "jwks_uri": keys_new.url}).to_string();
    issuer.server.set(Reply {
        delay: Duration::from_millis(800),
        ..Reply::json(&doc)
    });
    let v = discovering(&issuer.issuer, |c| {
        with_snapshot(c);
        c.non_blocking = true;
    });
    let old_token = a.token(&live_claims(&issuer.issuer));
    assert_eq!(status(&v, &old_token), Status::Ok, "the snapshot stands in");
    let new_token = b.token(&live_claims(&issuer.issuer));
    let deadline = Instant::now() + Duration::from_secs(5);
    while status(&v, &new_token) != Status::Ok {
        assert!(Instant::now() < deadline, "discovery replaced the stand-in");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(v.jwks_source().unwrap().url(), keys_new.url);
}

#[test]
fn item7_negative_or_absurd_durations_are_refused() {
    let build = |tune: &dyn Fn(&mut Config)| {
        let mut config = Config::new(
            Policy::new(ISSUER, AUDIENCE),
            Keys::Url("https://tenant.example/jwks".into()),
        );
        tune(&mut config);
        Verifier::new(config).map(|_| ()).map_err(|e| e.status())
    };
    assert_eq!(build(&|_| {}), Ok(()));
    let huge = Duration::from_secs(u64::MAX);
    let refused: [&dyn Fn(&mut Config); 6] = [
        &|c| c.policy = Policy::new(ISSUER, AUDIENCE).with_leeway(u64::MAX),
        &|c| c.cache.refetch_cooldown = huge,
        &|c| c.cache.max_stale = huge,
        &|c| c.cache.ttl = huge,
        &|c| c.cache.backoff_max = huge,
        &|c| c.cache.fetch.total_timeout = huge,
    ];
    for tune in refused {
        assert_eq!(build(tune), Err(Status::ConfigInvalid));
    }
    // An expired token stays expired with the largest leeway accepted.
    let signer = Signer::rs256();
    let mut config = Config::new(
        Policy::new(ISSUER, AUDIENCE).with_leeway(3600),
        Keys::Json(jwks(&[signer.jwk(true)])),
    );
    config.clock = Clock::manual(NOW);
    let v = Verifier::new(config).unwrap();
    let old = signer.token(&claims_with(
        json!({"iat": NOW - 400_000_000, "exp": NOW - 315_360_000}),
    ));
    assert_eq!(status(&v, &old), Status::TokenExpired);
}

#[test]
fn item9_blocking_threads_arriving_during_discovery_wait_for_it() {
    let issuer = DevIssuer::start(&[]);
    let token = issuer.token("read:messages", 600);
    issuer.fault(json!({"mode": "delay", "ms": 700, "endpoint": "discovery"}));
    let v = Arc::new(discovering(&issuer.url, |_| {}));
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let (v, token) = (v.clone(), token.clone());
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50 * i));
                status(&v, &token)
            })
        })
        .collect();
    let results: Vec<Status> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(results, vec![Status::Ok; 4]);
}

#[test]
fn item10_prefetch_returns_at_once_in_blocking_mode() {
    let issuer = DevIssuer::start(&[]);
    let token = issuer.token("read:messages", 600);
    issuer.fault(json!({"mode": "delay", "ms": 1500, "endpoint": "discovery"}));
    let v = discovering(&issuer.url, |_| {});
    let started = Instant::now();
    v.prefetch_keys();
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "prefetch took {:?}",
        started.elapsed()
    );
    assert!(v.fetch_in_progress());
    // The blocking verification waits for the discovery the prefetch started.
    assert_eq!(status(&v, &token), Status::Ok);
}

#[test]
fn item15_a_jwks_without_usable_keys_keeps_the_last_good_keys() {
    let a = Signer::rs256();
    let server = JwksServer::start(Reply::json(&jwks(&[a.jwk(true)])));
    let mut config = Config::new(Policy::new(ISSUER, AUDIENCE), Keys::Url(server.url.clone()));
    let clock = Clock::manual(NOW);
    config.clock = clock.clone();
    let v = Verifier::new(config).unwrap();
    let token = a.token(&good_claims());
    assert_eq!(status(&v, &token), Status::Ok);
    for body in [
        r#"{"keys":[]}"#.to_string(),
        jwks(&[json!({"kty": "oct", "k": "c2VjcmV0", "kid": "x"})]),
    ] {
        server.set(Reply::json(&body));
        v.refresh_keys().unwrap_err();
        assert_eq!(status(&v, &token), Status::Ok, "{body}");
    }
    assert_eq!(v.jwks_source().unwrap().stats().fetches_failed, 2);
}

#[test]
fn item17_verifiers_with_other_trust_options_never_share_keys() {
    let a = Signer::rs256();
    let server = JwksServer::start(Reply::json(&jwks(&[a.jwk(true)])));
    let make = |max_body: u64| {
        let mut config = Config::new(Policy::new(ISSUER, AUDIENCE), Keys::Url(server.url.clone()));
        config.clock = Clock::manual(NOW);
        config.cache.fetch.max_body_bytes = max_body;
        Verifier::new(config).unwrap()
    };
    let roomy = make(1024 * 1024);
    let tight = make(16);
    let token = a.token(&good_claims());
    assert_eq!(status(&roomy, &token), Status::Ok);
    // The same URL with a 16-byte cap: its own fetch, refused by its own cap.
    assert_eq!(status(&tight, &token), Status::KeysUnavailable);
    assert!(!Arc::ptr_eq(
        roomy.jwks_source().unwrap(),
        tight.jwks_source().unwrap()
    ));
}

#[test]
fn item18_19_a_snapshot_is_read_once_and_a_future_fetch_time_counts_as_now() {
    let a = Signer::rs256();
    let snapshot = TempPath::new("future.json");
    let url = "http://127.0.0.1:9/future-jwks.json";
    let doc = json!({"entries": [{
        "url": url, "issuers": [], "fetched_at": 1e12,
        "jwks": serde_json::from_str::<serde_json::Value>(&jwks(&[a.jwk(true)])).unwrap(),
    }]});
    write_at(&snapshot.0, doc.to_string().as_bytes(), NOW);
    let clock = Clock::manual(NOW);
    let mut config = Config::new(Policy::new(ISSUER, AUDIENCE), Keys::Url(url.into()));
    config.clock = clock.clone();
    config.cache.snapshot = Some(snapshot.0.clone());
    config.cache.non_blocking = true;
    config.cache.max_stale = Duration::from_secs(3600);
    let v = Verifier::new(config).unwrap();
    let token = a.token(&good_claims());
    assert_eq!(status(&v, &token), Status::Ok);
    // Two hours later, past the stale limit: the keys are no longer used. A "fetched" time
    // in the future would have kept them for ever.
    clock.advance(7200.0);
    assert_eq!(status(&v, &token), Status::KeysUnavailable);

    // Read once: a cold verifier whose snapshot is removed after its first look stays cold
    // without reading the file again (the file now holds garbage it would log about).
    let other = TempPath::new("once.json");
    let url2 = "http://127.0.0.1:9/once-jwks.json";
    write_at(&other.0, b"{\"entries\": []}", NOW);
    let mut config = Config::new(Policy::new(ISSUER, AUDIENCE), Keys::Url(url2.into()));
    config.clock = Clock::manual(NOW);
    config.cache.snapshot = Some(other.0.clone());
    config.cache.non_blocking = true;
    let v = Verifier::new(config).unwrap();
    assert_eq!(status(&v, &token), Status::KeysUnavailable);
    // Keys for url2 appear in the file now; a file read on every cold call would find them.
    let doc = json!({"entries": [{
        "url": url2, "issuers": [], "fetched_at": NOW as f64,
        "jwks": serde_json::from_str::<serde_json::Value>(&jwks(&[a.jwk(true)])).unwrap(),
    }]});
    write_at(&other.0, doc.to_string().as_bytes(), NOW);
    for _ in 0..10 {
        assert_eq!(status(&v, &token), Status::KeysUnavailable);
    }
}

/// A token valid at `wall` by the wall clock.
fn token_at(signer: &Signer, wall: i64) -> String {
    signer.token(&claims_with(json!({"iat": wall - 5, "exp": wall + 3600})))
}

#[test]
fn item18_a_wall_clock_step_neither_freezes_nor_rushes_refreshes() {
    let a = Signer::rs256();
    let server = JwksServer::start(Reply::json(&jwks(&[a.jwk(true)])));
    let clock = Clock::manual(NOW);
    let mut config = Config::new(Policy::new(ISSUER, AUDIENCE), Keys::Url(server.url.clone()));
    config.clock = clock.clone();
    let v = Verifier::new(config).unwrap();
    assert_eq!(status(&v, &token_at(&a, NOW)), Status::Ok);
    assert_eq!(server.count(), 1);

    // The wall clock is set back a day, then 10 minutes pass: the keys are due for their
    // refresh (600 s TTL) all the same.
    clock.step_wall(-86400.0);
    clock.advance(601.0);
    let wall = NOW - 86400 + 601;
    assert_eq!(status(&v, &token_at(&a, wall)), Status::Ok);
    assert!(v.jwks_source().unwrap().wait_idle(Duration::from_secs(5)));
    assert_eq!(server.count(), 2, "refreshed on schedule");

    // Stepped forward two days while the issuer fails: by the monotonic clock the keys are
    // minutes old, not past the 24 h stale limit.
    server.set(Reply {
        status: 500,
        ..Reply::json("{}")
    });
    clock.step_wall(2.0 * 86400.0);
    let wall = wall + 2 * 86400;
    assert_eq!(status(&v, &token_at(&a, wall)), Status::Ok);

    // A cold cache whose fetch failed retries after about a second, whatever the wall
    // clock did meanwhile.
    let cold = JwksServer::start(Reply {
        status: 500,
        ..Reply::json("{}")
    });
    let mut config = Config::new(Policy::new(ISSUER, AUDIENCE), Keys::Url(cold.url.clone()));
    config.clock = clock.clone();
    let v = Verifier::new(config).unwrap();
    assert_eq!(status(&v, &token_at(&a, wall)), Status::KeysUnavailable);
    assert_eq!(cold.count(), 1);
    cold.set(Reply::json(&jwks(&[a.jwk(true)])));
    clock.step_wall(-86400.0);
    clock.advance(1.3);
    let wall = wall - 86400 + 1;
    assert_eq!(status(&v, &token_at(&a, wall)), Status::Ok);
    assert_eq!(cold.count(), 2);
}

#[test]
fn item18_a_snapshot_written_in_the_future_counts_from_the_files_own_time() {
    // The entry claims to be fetched now, but the file was last written two days ago: the
    // keys are two days old, past a one-day stale limit.
    let a = Signer::rs256();
    let snapshot = TempPath::new("mtime.json");
    let url = "http://127.0.0.1:9/mtime-jwks.json";
    let doc = json!({"entries": [{
        "url": url, "issuers": [], "fetched_at": NOW as f64,
        "jwks": serde_json::from_str::<serde_json::Value>(&jwks(&[a.jwk(true)])).unwrap(),
    }]});
    write_at(&snapshot.0, doc.to_string().as_bytes(), NOW - 2 * 86400);
    let make = |max_stale_days: u64| {
        let mut config = Config::new(Policy::new(ISSUER, AUDIENCE), Keys::Url(url.into()));
        config.clock = Clock::manual(NOW);
        config.cache.snapshot = Some(snapshot.0.clone());
        config.cache.non_blocking = true;
        config.cache.max_stale = Duration::from_secs(max_stale_days * 86400);
        Verifier::new(config).unwrap()
    };
    assert_eq!(status(&make(3), &token_at(&a, NOW)), Status::Ok);
    assert_eq!(
        status(&make(1), &token_at(&a, NOW)),
        Status::KeysUnavailable
    );
}

#[test]
fn item23_one_junk_kid_cannot_hold_back_a_rotated_key() {
    let issuer = DevIssuer::start(&[]);
    let v = Verifier::new(Config::new(
        Policy::new(issuer.url.clone(), AUDIENCE),
        Keys::Url(issuer.jwks_uri()),
    ))
    .unwrap();
    let valid = issuer.token("read:messages", 600);
    assert_eq!(status(&v, &valid), Status::Ok);
    // One junk token spends a refetch, then the issuer rotates.
    assert_eq!(status(&v, &with_kid(&valid, "junk")), Status::KeyNotFound);
    issuer.rotate(false);
    let rotated = issuer.token("read:messages", 600);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        status(&v, &rotated),
        Status::Ok,
        "a new kid refetches a second after the junk one, not 30 s"
    );
    // The junk kid itself waits out the cooldown.
    let before = issuer.jwks_requests();
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(status(&v, &with_kid(&valid, "junk")), Status::KeyNotFound);
    assert_eq!(issuer.jwks_requests(), before);
}

#[test]
fn item23_a_flood_of_2000_kids_costs_about_one_request_a_second() {
    let issuer = DevIssuer::start(&[]);
    let v = Arc::new(
        Verifier::new(Config::new(
            Policy::new(issuer.url.clone(), AUDIENCE),
            Keys::Url(issuer.jwks_uri()),
        ))
        .unwrap(),
    );
    let valid = issuer.token("read:messages", 600);
    assert_eq!(status(&v, &valid), Status::Ok);
    let started = Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (v, valid) = (v.clone(), valid.clone());
            std::thread::spawn(move || {
                for i in 0..500 {
                    let forged = with_kid(&valid, &format!("flood-{t}-{i}"));
                    assert_eq!(status(&v, &forged), Status::KeyNotFound);
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    let requests = issuer.jwks_requests() - 1;
    println!("2,000 unknown kids in {seconds:.2} s: {requests} JWKS requests");
    assert!(
        (requests as f64) <= seconds.ceil() + 1.0,
        "{requests} requests in {seconds:.2} s"
    );
    assert_eq!(status(&v, &valid), Status::Ok);
}

#[test]
fn item28_rotations_at_the_cooldown_period_refuse_nothing() {
    let issuer = DevIssuer::start(&[]);
    let clock = Clock::manual(now());
    let mut config = Config::new(
        Policy::new(issuer.url.clone(), AUDIENCE),
        Keys::Url(issuer.jwks_uri()),
    );
    config.clock = clock.clone();
    let v = Verifier::new(config).unwrap();
    assert_eq!(status(&v, &issuer.token("read:messages", 600)), Status::Ok);
    // A rotation every 30 s (the cooldown), each new kid's first token 1 ms to 29 s after the
    // previous refetch: every one verifies on its first try.
    for step in [29.9, 30.0, 30.1, 29.999, 15.0, 30.0] {
        clock.advance(step);
        issuer.rotate(false);
        let token = issuer.token("read:messages", 600);
        assert_eq!(status(&v, &token), Status::Ok, "after {step} s");
    }
}

#[test]
fn item26_a_failing_issuer_is_reported_once_a_minute_with_a_count() {
    let errors = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = errors.clone();
    jwtguard::log::set_sink(Some((
        jwtguard::log::Level::Error,
        Arc::new(move |_, message: &str| {
            if message.contains("JWKS fetch failed") {
                seen.lock().unwrap().push(message.to_string());
            }
        }),
    )));
    let server = JwksServer::start(Reply {
        status: 500,
        ..Reply::json("{}")
    });
    let clock = Clock::manual(NOW);
    let mut config = Config::new(Policy::new(ISSUER, AUDIENCE), Keys::Url(server.url.clone()));
    config.clock = clock.clone();
    let v = Verifier::new(config).unwrap();
    let token = Signer::rs256().token(&good_claims());
    // A cold cache retries about once a second: ten failed fetches in ten seconds...
    for _ in 0..10 {
        assert_eq!(status(&v, &token), Status::KeysUnavailable);
        clock.advance(1.1);
    }
    assert_eq!(server.count(), 10);
    // ... reported once.
    assert_eq!(
        errors.lock().unwrap().len(),
        1,
        "{:?}",
        errors.lock().unwrap()
    );
    // A minute later, the next failure is reported with the count of the quiet ones.
    clock.advance(60.0);
    assert_eq!(status(&v, &token), Status::KeysUnavailable);
    let errors = errors.lock().unwrap();
    assert_eq!(errors.len(), 2);
    assert!(
        errors[1].contains("(9 more failed fetches since the last report)"),
        "{}",
        errors[1]
    );
    jwtguard::log::set_sink(None);
}
