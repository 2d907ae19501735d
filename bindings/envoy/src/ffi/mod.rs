//! The hooks Envoy calls and the callbacks they make: the only `unsafe` code of the module.
//! Every hook body runs under `catch_unwind`: a panic becomes a refusal (or a rejected
//! config), never an unwind into Envoy.

mod abi;

use crate::config::{self, FilterConfig, RouteConfig, TokenSource};
use crate::decide::{self, Presented, Reply, Verdict};
use abi::*;
use std::borrow::Cow;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, Once, PoisonError};
use std::time::Duration;

/// How often a request waiting for keys is looked at again, and for how long at most.
const WAIT_STEP: Duration = Duration::from_millis(20);
const WAIT_MAX_STEPS: u32 = 300;

fn guard<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

fn log(level: u32, message: &str) {
    // SAFETY: Envoy reads the buffer during the call only.
    unsafe {
        if envoy_dynamic_module_callback_log_enabled(level) {
            envoy_dynamic_module_callback_log(level, module_buffer::of(message.as_bytes()));
        }
    }
}

// ---- program and configs ----

/// Called once when Envoy loads the module: routes the library's messages to Envoy's log.
#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const u8 {
    guard(std::ptr::null(), || {
        // At exit, before Envoy's loggers go away, the library stops logging through them
        // (set_sink waits for a message being written). Registered after Envoy's own static
        // objects were made, so it runs before they are destroyed.
        extern "C" fn detach_log() {
            jwtguard::log::set_sink(None);
        }
        // SAFETY: registers a plain function with the C library.
        unsafe { libc::atexit(detach_log) };
        jwtguard::log::set_sink(Some((
            jwtguard::log::Level::Debug,
            Arc::new(|level, message: &str| {
                let level = match level {
                    jwtguard::log::Level::Error => LOG_ERROR,
                    jwtguard::log::Level::Warn => LOG_WARN,
                    jwtguard::log::Level::Info => LOG_INFO,
                    jwtguard::log::Level::Debug => LOG_DEBUG,
                };
                log(level, message);
            }),
        )));
        ABI_VERSION.as_ptr()
    })
}

/// Counter ids, defined on the config (`dynamicmodulescustom.jwtguard_*` in `/stats`).
struct Counters {
    allowed: Option<usize>,
    denied: Option<usize>,
    keys_unavailable: Option<usize>,
}

struct ConfigState {
    config: FilterConfig,
    counters: Counters,
}

fn define_counter(envoy: config_envoy_ptr, name: &str, label: Option<&str>) -> Option<usize> {
    let mut id = 0usize;
    let mut labels: Vec<module_buffer> = label
        .iter()
        .map(|l| module_buffer::of(l.as_bytes()))
        .collect();
    // SAFETY: name and labels are read during the call; `id` is written.
    let result = unsafe {
        envoy_dynamic_module_callback_http_filter_config_define_counter(
            envoy,
            module_buffer::of(name.as_bytes()),
            if labels.is_empty() {
                std::ptr::null_mut()
            } else {
                labels.as_mut_ptr()
            },
            labels.len(),
            &mut id,
        )
    };
    (result == METRICS_SUCCESS).then_some(id)
}

/// A bytes buffer Envoy owns, as a slice (empty for a null pointer).
///
/// SAFETY: the caller guarantees `buffer` is valid for the current hook.
unsafe fn bytes<'a>(buffer: envoy_buffer) -> &'a [u8] {
    if buffer.ptr.is_null() {
        &[]
    } else {
        // SAFETY: Envoy gives pointer and length of a live buffer.
        unsafe { std::slice::from_raw_parts(buffer.ptr, buffer.length) }
    }
}

/// A config hook's common part: the buffers as bytes, the filter name checked, the config
/// parsed; refusals logged for Envoy's operator (`what` names the config in messages).
fn parse_named<T>(
    name: envoy_buffer,
    config: envoy_buffer,
    what: &str,
    parse: impl FnOnce(&[u8]) -> Result<T, String>,
) -> Option<T> {
    // SAFETY: both buffers are valid during the hook that calls this.
    let (name, config) = unsafe { (bytes(name), bytes(config)) };
    if name != b"jwtguard" {
        log(
            LOG_ERROR,
            &format!(
                "jwtguard: unknown filter_name {:?} for {what} (this module has one filter: jwtguard)",
                String::from_utf8_lossy(name)
            ),
        );
        return None;
    }
    parse(config)
        .map_err(|message| log(LOG_ERROR, &format!("jwtguard: invalid {what}: {message}")))
        .ok()
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    envoy: config_envoy_ptr,
    name: envoy_buffer,
    config: envoy_buffer,
) -> *const c_void {
    guard(std::ptr::null(), || {
        let Some(config) = parse_named(name, config, "filter_config", config::filter_config) else {
            return std::ptr::null();
        };
        let counters = Counters {
            allowed: define_counter(envoy, "jwtguard_allowed", None),
            denied: define_counter(envoy, "jwtguard_denied", Some("reason")),
            keys_unavailable: define_counter(envoy, "jwtguard_keys_unavailable", None),
        };
        // Keys are fetched in the background from now on, so the first requests find them.
        config.verifier.prefetch_keys();
        Box::into_raw(Box::new(ConfigState { config, counters })) as *const c_void
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(config: *const c_void) {
    guard((), || {
        if !config.is_null() {
            // SAFETY: made by Box::into_raw in config_new, destroyed once by Envoy.
            drop(unsafe { Box::from_raw(config as *mut ConfigState) });
        }
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_new(
    name: envoy_buffer,
    config: envoy_buffer,
) -> *const c_void {
    guard(std::ptr::null(), || {
        match parse_named(name, config, "per-route config", config::route_config) {
            Some(route) => Box::into_raw(Box::new(route)) as *const c_void,
            None => std::ptr::null(),
        }
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_per_route_config_destroy(
    config: *const c_void,
) {
    guard((), || {
        if !config.is_null() {
            // SAFETY: made by Box::into_raw in per_route_config_new, destroyed once by Envoy.
            drop(unsafe { Box::from_raw(config as *mut RouteConfig) });
        }
    })
}

// ---- waiting for keys ----

/// A waiting request's scheduler, shared with the ticker thread; `None` once the filter is gone.
struct Pending {
    scheduler: Mutex<Option<usize>>,
}

/// Requests waiting for keys: one thread wakes each of them every WAIT_STEP through its
/// scheduler (commit is safe from any thread), and the filter, on its worker, decides again.
static WAITING: Mutex<Vec<Arc<Pending>>> = Mutex::new(Vec::new());
static TICKER: Once = Once::new();

fn wait_again(pending: &Arc<Pending>) {
    TICKER.call_once(|| {
        let _ = std::thread::Builder::new()
            .name("jwtguard-envoy-wait".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(WAIT_STEP);
                    let due: Vec<Arc<Pending>> = std::mem::take(
                        &mut *WAITING.lock().unwrap_or_else(PoisonError::into_inner),
                    );
                    for p in due {
                        let scheduler = p.scheduler.lock().unwrap_or_else(PoisonError::into_inner);
                        if let Some(s) = *scheduler {
                            // SAFETY: the scheduler lives until the filter deletes it, under this lock.
                            unsafe {
                                envoy_dynamic_module_callback_http_filter_scheduler_commit(
                                    s as scheduler_ptr,
                                    0,
                                )
                            };
                        }
                    }
                }
            });
    });
    WAITING
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(pending.clone());
}

// ---- filters ----

#[derive(PartialEq, Eq)]
enum State {
    Undecided,
    Waiting,
    Allowed,
    Refused,
}

struct Filter {
    config: *const ConfigState,
    state: State,
    steps: u32,
    pending: Option<Arc<Pending>>,
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_new(
    config: *const c_void,
    _envoy: filter_envoy_ptr,
) -> *const c_void {
    guard(std::ptr::null(), || {
        Box::into_raw(Box::new(Filter {
            config: config as *const ConfigState,
            state: State::Undecided,
            steps: 0,
            pending: None,
        })) as *const c_void
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_destroy(filter: *const c_void) {
    guard((), || {
        if filter.is_null() {
            return;
        }
        // SAFETY: made by Box::into_raw in filter_new, destroyed once by Envoy.
        let filter = unsafe { Box::from_raw(filter as *mut Filter) };
        if let Some(pending) = &filter.pending {
            let mut scheduler = pending
                .scheduler
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(s) = scheduler.take() {
                // SAFETY: made by scheduler_new for this filter; never committed after this.
                unsafe {
                    envoy_dynamic_module_callback_http_filter_scheduler_delete(s as scheduler_ptr)
                };
            }
        }
    })
}

/// The `index`th value of a request header (lowercase name) and how many values it has
/// (an index past the end gives no bytes).
///
/// # Safety
/// The bytes are Envoy's, valid until the current hook returns and no header is changed:
/// the caller must not keep them longer.
unsafe fn header_at<'a>(envoy: filter_envoy_ptr, name: &str, index: usize) -> (&'a [u8], usize) {
    let mut value = envoy_buffer {
        ptr: std::ptr::null(),
        length: 0,
    };
    let mut count = 0usize;
    // SAFETY: Envoy writes the value and the count; both are valid during this hook.
    unsafe {
        envoy_dynamic_module_callback_http_get_header(
            envoy,
            REQUEST_HEADER,
            module_buffer::of(name.as_bytes()),
            &mut value,
            index,
            &mut count,
        );
        (bytes(value), count)
    }
}

/// Every value of a request header (lowercase name), as received.
fn header_values(envoy: filter_envoy_ptr, name: &str) -> Vec<Vec<u8>> {
    // SAFETY: each value is copied at once.
    let count = unsafe { header_at(envoy, name, 0) }.1;
    (0..count)
        .map(|index| unsafe { header_at(envoy, name, index) }.0.to_vec())
        .collect()
}

/// A request header's lines joined with ", " (as HTTP combines repeated fields), `None` when
/// there is none. One line of UTF-8 (the usual case) is borrowed from Envoy.
fn header_text<'a>(envoy: filter_envoy_ptr, name: &str) -> Option<Cow<'a, str>> {
    // SAFETY: the borrowed value is used only by the hook that asked (see above).
    let (first, count) = unsafe { header_at(envoy, name, 0) };
    match count {
        0 => None,
        1 => Some(match std::str::from_utf8(first) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => Cow::Owned(text(first)),
        }),
        _ => {
            let lines: Vec<String> = header_values(envoy, name).iter().map(|v| text(v)).collect();
            decide::joined(&lines.iter().map(String::as_str).collect::<Vec<_>>()).map(Cow::Owned)
        }
    }
}

/// Whether the downstream connection is TLS (it has a TLS version): what the scheme of the
/// URL a client addressed is, whatever `:scheme` the client put in its request.
fn connection_is_tls(envoy: filter_envoy_ptr) -> bool {
    let mut version = envoy_buffer {
        ptr: std::ptr::null(),
        length: 0,
    };
    // SAFETY: on the worker, inside a hook; Envoy writes the buffer (its own bytes), which is
    // only looked at for being there.
    let found = unsafe {
        envoy_dynamic_module_callback_http_filter_get_attribute_string(
            envoy,
            ATTRIBUTE_CONNECTION_TLS_VERSION,
            &mut version,
        )
    };
    found && !version.ptr.is_null() && version.length > 0
}

/// The local port the downstream connection arrived on (`destination.port`), if it has one
/// (not a pipe).
fn destination_port(envoy: filter_envoy_ptr) -> Option<u16> {
    let mut port: u64 = 0;
    // SAFETY: on the worker, inside a hook; Envoy writes one integer to `port`.
    let found = unsafe {
        envoy_dynamic_module_callback_http_filter_get_attribute_int(
            envoy,
            ATTRIBUTE_DESTINATION_PORT,
            &mut port,
        )
    };
    if found {
        u16::try_from(port).ok().filter(|p| *p != 0)
    } else {
        None
    }
}

/// Set a request header (every earlier value replaced), or remove it (`None`).
fn set_request_header(envoy: filter_envoy_ptr, name: &str, value: Option<&str>) {
    let value = value.map_or(module_buffer::null(), |v| module_buffer::of(v.as_bytes()));
    // SAFETY: key and value are read during the call; a null value removes the header.
    unsafe {
        envoy_dynamic_module_callback_http_set_header(
            envoy,
            REQUEST_HEADER,
            module_buffer::of(name.as_bytes()),
            value,
        );
    }
}

fn text(bytes: &[u8]) -> String {
    // A byte that is not UTF-8 becomes U+FFFD: not visible ASCII, so refused as malformed.
    String::from_utf8_lossy(bytes).into_owned()
}

fn send(envoy: filter_envoy_ptr, reply: &Reply) {
    let mut headers: Vec<module_http_header> = reply
        .headers
        .iter()
        .map(|(k, v)| module_http_header {
            key_ptr: k.as_ptr(),
            key_length: k.len(),
            value_ptr: v.as_ptr(),
            value_length: v.len(),
        })
        .collect();
    // SAFETY: headers, body and details are read during the call.
    unsafe {
        envoy_dynamic_module_callback_http_send_response(
            envoy,
            u32::from(reply.status),
            headers.as_mut_ptr(),
            headers.len(),
            module_buffer::of(reply.body.as_bytes()),
            module_buffer::of(b"jwtguard_refused"),
        );
    }
}

fn count(envoy: filter_envoy_ptr, id: Option<usize>, label: Option<&str>) {
    let Some(id) = id else { return };
    let mut labels: Vec<module_buffer> = label
        .iter()
        .map(|l| module_buffer::of(l.as_bytes()))
        .collect();
    // SAFETY: labels are read during the call.
    unsafe {
        envoy_dynamic_module_callback_http_filter_increment_counter(
            envoy,
            id,
            if labels.is_empty() {
                std::ptr::null_mut()
            } else {
                labels.as_mut_ptr()
            },
            labels.len(),
            1,
        );
    }
}

/// Decide for this request (first time or after a wait); returns whether the request goes on.
fn check(envoy: filter_envoy_ptr, filter: &mut Filter) -> bool {
    // SAFETY: the config outlives its filters (Envoy destroys configs after their streams).
    let state = unsafe { &*filter.config };
    let config = &state.config;
    // Incoming headers of the forwarded names go first, always (no spoofing), and before the
    // route is read: a route matching on them must see only what jwtguard sets.
    if filter.state == State::Undecided && !config.forward_claims.is_empty() {
        for (_, header) in &config.forward_claims {
            set_request_header(envoy, header, None);
        }
        // SAFETY: on the worker, inside a hook.
        unsafe { envoy_dynamic_module_callback_http_clear_route_cache(envoy) };
    }
    let route = route_config(envoy);
    let scopes = route_scopes(config, route);
    let values;
    let (proofs, method, url);
    let presented = match &config.token {
        TokenSource::Authorization => {
            values = header_text(envoy, "authorization");
            // DPoP (RFC 9449): the proof is checked against the request as Envoy routes it:
            // :method, and scheme://:authority:path (the query is ignored), the scheme being
            // the operator's dpop_scheme or the connection's, never the client's :scheme.
            proofs = header_text(envoy, "dpop");
            method = header_text(envoy, ":method");
            let scheme = config.dpop_scheme.unwrap_or_else(|| {
                if connection_is_tls(envoy) {
                    "https"
                } else {
                    "http"
                }
            });
            // The port is the one the connection arrived on, which :authority must name,
            // unless dpop_origins pins the public origins (decide::proof_authority).
            let authority = decide::proof_authority(
                scheme,
                header_text(envoy, ":authority").as_deref(),
                destination_port(envoy),
                !config.verifier.dpop().origins.is_empty(),
            );
            url = match authority {
                Some(authority) => decide::request_url(
                    scheme,
                    Some(&authority),
                    header_text(envoy, ":path").as_deref(),
                ),
                None => String::new(),
            };
            Presented::Authorization(jwtguard::Request {
                authorization: values.as_deref(),
                dpop: proofs.as_deref(),
                method: method.as_deref(),
                url: Some(&url),
            })
        }
        TokenSource::Header(name) => {
            values = header_text(envoy, name);
            Presented::Bare(values.as_deref().filter(|v| !v.is_empty()))
        }
        TokenSource::Cookie(name) => {
            let lines: Vec<String> = header_values(envoy, "cookie")
                .iter()
                .map(|v| text(v))
                .collect();
            let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
            values = decide::cookie(&lines, name).map(|c| Cow::Owned(c.to_string()));
            Presented::Bare(values.as_deref())
        }
    };
    match decide::decide(config, scopes, presented, filter.steps < WAIT_MAX_STEPS) {
        Verdict::Allow(claims, forwarded) => {
            for (header, value) in &forwarded {
                set_request_header(envoy, header, Some(value));
            }
            if !forwarded.is_empty() {
                // Routing that matches on a forwarded header sees the verified value; the
                // route so chosen may require other scopes, checked now.
                // SAFETY: on the worker, inside a hook.
                unsafe { envoy_dynamic_module_callback_http_clear_route_cache(envoy) };
                let chosen = route_config(envoy);
                if chosen != route {
                    let scopes = route_scopes(config, chosen);
                    if !scopes.iter().all(|s| claims.has_scope(s)) {
                        let status = jwtguard::Status::InsufficientScope;
                        count(envoy, state.counters.denied, Some(status.reason()));
                        filter.state = State::Refused;
                        let scheme = match &config.token {
                            TokenSource::Authorization => jwtguard::answer::scheme_of(
                                header_text(envoy, "authorization").as_deref(),
                            ),
                            _ => None,
                        };
                        send(envoy, &decide::refusal(config, scopes, status, scheme));
                        return false;
                    }
                }
            }
            count(envoy, state.counters.allowed, None);
            filter.state = State::Allowed;
            true
        }
        Verdict::Refuse(status, reply) => {
            if status == jwtguard::Status::KeysUnavailable {
                count(envoy, state.counters.keys_unavailable, None);
            }
            count(envoy, state.counters.denied, Some(status.reason()));
            filter.state = State::Refused;
            send(envoy, &reply);
            false
        }
        Verdict::Wait => {
            filter.steps += 1;
            if filter.pending.is_none() {
                // SAFETY: called on the worker, inside a hook, with a live filter.
                let scheduler =
                    unsafe { envoy_dynamic_module_callback_http_filter_scheduler_new(envoy) };
                if scheduler.is_null() {
                    // Nothing could wake this request: answer now rather than never.
                    filter.steps = WAIT_MAX_STEPS;
                    return check(envoy, filter);
                }
                filter.pending = Some(Arc::new(Pending {
                    scheduler: Mutex::new(Some(scheduler as usize)),
                }));
            }
            filter.state = State::Waiting;
            if let Some(pending) = &filter.pending {
                wait_again(pending);
            }
            false
        }
    }
}

/// This request's route config (ours, made by per_route_config_new), or null.
fn route_config(envoy: filter_envoy_ptr) -> *const RouteConfig {
    // SAFETY: on the worker, inside a hook; the pointer lives as long as the route.
    let route = unsafe { envoy_dynamic_module_callback_get_most_specific_route_config(envoy) };
    route as *const RouteConfig
}

/// The scopes a route requires: its own, or the listener's.
fn route_scopes(config: &FilterConfig, route: *const RouteConfig) -> &[String] {
    if route.is_null() {
        &config.require_scope
    } else {
        // SAFETY: made by per_route_config_new, alive while its route is.
        unsafe { &(*route).require_scope }
    }
}

/// SAFETY: Envoy passes back the pointer filter_new returned, on the filter's worker.
unsafe fn filter_mut<'a>(filter: *const c_void) -> &'a mut Filter {
    // SAFETY: see above; no other hook of this filter runs at the same time.
    unsafe { &mut *(filter as *mut Filter) }
}

#[unsafe(no_mangle)]
/// After a panic in a hook: refuse with a 500 (never let the request through, never leave it
/// hanging).
fn internal_error(envoy: filter_envoy_ptr, filter: *const c_void) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: see filter_mut.
        unsafe { filter_mut(filter) }.state = State::Refused;
        send(
            envoy,
            &Reply {
                status: 500,
                headers: vec![("content-type".into(), "application/json".into())],
                body: "{\"code\":\"internal_error\",\"description\":\"Internal error\"}\n".into(),
            },
        );
    }));
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    envoy: filter_envoy_ptr,
    filter: *const c_void,
    _end_of_stream: bool,
) -> u32 {
    let decided = guard(None, || {
        // SAFETY: see filter_mut.
        Some(check(envoy, unsafe { filter_mut(filter) }))
    });
    match decided {
        Some(true) => HEADERS_CONTINUE,
        Some(false) => HEADERS_STOP_ITERATION,
        None => {
            internal_error(envoy, filter);
            HEADERS_STOP_ITERATION
        }
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_scheduled(
    envoy: filter_envoy_ptr,
    filter: *const c_void,
    _event_id: u64,
) {
    let done = guard(false, || {
        // SAFETY: see filter_mut.
        let filter = unsafe { filter_mut(filter) };
        if filter.state == State::Waiting && check(envoy, filter) {
            // SAFETY: on the worker, inside a hook.
            unsafe { envoy_dynamic_module_callback_http_filter_continue_decoding(envoy) };
        }
        true
    });
    if !done {
        internal_error(envoy, filter);
    }
}

/// Until the request is allowed, its body and trailers wait too: continuing them would let
/// the request through undecided.
fn held(filter: *const c_void) -> bool {
    // SAFETY: see filter_mut.
    unsafe { filter_mut(filter) }.state != State::Allowed
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_body(
    _envoy: filter_envoy_ptr,
    filter: *const c_void,
    _end_of_stream: bool,
) -> u32 {
    guard(BODY_STOP_AND_BUFFER, || {
        if held(filter) {
            BODY_STOP_AND_BUFFER
        } else {
            BODY_CONTINUE
        }
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(
    _envoy: filter_envoy_ptr,
    filter: *const c_void,
) -> u32 {
    guard(HEADERS_STOP_ITERATION, || {
        if held(filter) {
            HEADERS_STOP_ITERATION
        } else {
            HEADERS_CONTINUE
        }
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
    _envoy: filter_envoy_ptr,
    _filter: *const c_void,
    _end_of_stream: bool,
) -> u32 {
    HEADERS_CONTINUE
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_body(
    _envoy: filter_envoy_ptr,
    _filter: *const c_void,
    _end_of_stream: bool,
) -> u32 {
    BODY_CONTINUE
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_trailers(
    _envoy: filter_envoy_ptr,
    _filter: *const c_void,
) -> u32 {
    HEADERS_CONTINUE
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(
    _envoy: filter_envoy_ptr,
    _filter: *const c_void,
) {
}

// Hooks Envoy 1.40 requires of every HTTP-filter module; this filter makes no callouts or
// streams of its own and ignores watermarks.

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_callout_done(
    _envoy: filter_envoy_ptr,
    _filter: *const c_void,
    _callout_id: u64,
    _result: u32,
    _headers: *const c_void,
    _headers_size: usize,
    _body_chunks: *const c_void,
    _body_chunks_size: usize,
) {
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_headers(
    _envoy: filter_envoy_ptr,
    _filter: *const c_void,
    _stream_id: u64,
    _headers: *const c_void,
    _headers_size: usize,
    _end_stream: bool,
) {
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_data(
    _envoy: filter_envoy_ptr,
    _filter: *const c_void,
    _stream_id: u64,
    _data: *const c_void,
    _data_count: usize,
    _end_stream: bool,
) {
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_trailers(
    _envoy: filter_envoy_ptr,
    _filter: *const c_void,
    _stream_id: u64,
    _trailers: *const c_void,
    _trailers_size: usize,
) {
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_complete(
    _envoy: filter_envoy_ptr,
    _filter: *const c_void,
    _stream_id: u64,
) {
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_http_stream_reset(
    _envoy: filter_envoy_ptr,
    _filter: *const c_void,
    _stream_id: u64,
    _reason: u32,
) {
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark(
    _envoy: filter_envoy_ptr,
    _filter: *const c_void,
) {
}

#[unsafe(no_mangle)]
pub extern "C" fn envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark(
    _envoy: filter_envoy_ptr,
    _filter: *const c_void,
) {
}
