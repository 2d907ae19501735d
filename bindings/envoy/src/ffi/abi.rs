//! The part of Envoy's dynamic-module ABI (v0.2.0, Envoy 1.40) this module uses, declared
//! from Envoy's `source/extensions/dynamic_modules/abi/abi.h`. Only what is used is declared;
//! every name resolves against the running Envoy when it loads the module (RTLD_NOW), so the
//! tests that load it into the real 1.40 binary check each declaration.
#![allow(non_camel_case_types)]

use std::ffi::c_void;

/// The ABI version this module is built against (`ENVOY_DYNAMIC_MODULES_ABI_VERSION`).
pub const ABI_VERSION: &[u8] = b"v0.2.0\0";

/// `envoy_dynamic_module_type_envoy_buffer`: bytes Envoy owns (valid during the hook).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct envoy_buffer {
    pub ptr: *const u8,
    pub length: usize,
}

/// `envoy_dynamic_module_type_module_buffer`: bytes the module owns (read during the call).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct module_buffer {
    pub ptr: *const u8,
    pub length: usize,
}

impl module_buffer {
    pub fn of(bytes: &[u8]) -> module_buffer {
        module_buffer {
            ptr: bytes.as_ptr(),
            length: bytes.len(),
        }
    }

    /// A null buffer (`set_header` with a null value removes the header).
    pub fn null() -> module_buffer {
        module_buffer {
            ptr: std::ptr::null(),
            length: 0,
        }
    }
}

/// `envoy_dynamic_module_type_module_http_header`.
#[repr(C)]
pub struct module_http_header {
    pub key_ptr: *const u8,
    pub key_length: usize,
    pub value_ptr: *const u8,
    pub value_length: usize,
}

/// `envoy_dynamic_module_type_http_filter_config_envoy_ptr`.
pub type config_envoy_ptr = *mut c_void;
/// `envoy_dynamic_module_type_http_filter_envoy_ptr`.
pub type filter_envoy_ptr = *mut c_void;
/// `envoy_dynamic_module_type_http_filter_scheduler_module_ptr`.
pub type scheduler_ptr = *mut c_void;

/// `envoy_dynamic_module_type_http_header_type_RequestHeader`.
pub const REQUEST_HEADER: u32 = 0;

/// `envoy_dynamic_module_type_log_level`: Debug 1, Info 2, Warn 3, Error 4.
pub const LOG_DEBUG: u32 = 1;
pub const LOG_INFO: u32 = 2;
pub const LOG_WARN: u32 = 3;
pub const LOG_ERROR: u32 = 4;

/// `..._on_http_filter_request_headers_status` (and the trailers status): Continue 0,
/// StopIteration 1.
pub const HEADERS_CONTINUE: u32 = 0;
pub const HEADERS_STOP_ITERATION: u32 = 1;
/// `..._on_http_filter_request_body_status`: Continue 0, StopIterationAndBuffer 1.
pub const BODY_CONTINUE: u32 = 0;
pub const BODY_STOP_AND_BUFFER: u32 = 1;

/// `envoy_dynamic_module_type_attribute_id_ConnectionTlsVersion` (the attribute
/// `connection.tls_version`): the downstream connection's TLS version, absent (the callback
/// returns false) on a cleartext connection.
pub const ATTRIBUTE_CONNECTION_TLS_VERSION: u32 = 31;

/// `envoy_dynamic_module_type_attribute_id_DestinationPort` (the attribute
/// `destination.port`): the local port the downstream connection arrived on. Four before
/// ConnectionTlsVersion in the enum (DestinationPort, ConnectionId, ConnectionMtls,
/// ConnectionRequestedServerName, ConnectionTlsVersion); the Envoy tests check it against the
/// listener's port.
pub const ATTRIBUTE_DESTINATION_PORT: u32 = 27;

/// `envoy_dynamic_module_type_metrics_result_Success`.
pub const METRICS_SUCCESS: u32 = 0;

unsafe extern "C" {
    pub fn envoy_dynamic_module_callback_log(level: u32, message: module_buffer);
    pub fn envoy_dynamic_module_callback_log_enabled(level: u32) -> bool;

    pub fn envoy_dynamic_module_callback_http_get_header(
        filter: filter_envoy_ptr,
        header_type: u32,
        key: module_buffer,
        result: *mut envoy_buffer,
        index: usize,
        optional_size: *mut usize,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_set_header(
        filter: filter_envoy_ptr,
        header_type: u32,
        key: module_buffer,
        value: module_buffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_send_response(
        filter: filter_envoy_ptr,
        status_code: u32,
        headers: *mut module_http_header,
        headers_size: usize,
        body: module_buffer,
        details: module_buffer,
    );
    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_string(
        filter: filter_envoy_ptr,
        attribute_id: u32,
        result: *mut envoy_buffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_int(
        filter: filter_envoy_ptr,
        attribute_id: u32,
        result: *mut u64,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_filter_continue_decoding(filter: filter_envoy_ptr);
    pub fn envoy_dynamic_module_callback_http_clear_route_cache(filter: filter_envoy_ptr);
    pub fn envoy_dynamic_module_callback_get_most_specific_route_config(
        filter: filter_envoy_ptr,
    ) -> *const c_void;

    pub fn envoy_dynamic_module_callback_http_filter_scheduler_new(
        filter: filter_envoy_ptr,
    ) -> scheduler_ptr;
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_commit(
        scheduler: scheduler_ptr,
        event_id: u64,
    );
    pub fn envoy_dynamic_module_callback_http_filter_scheduler_delete(scheduler: scheduler_ptr);

    pub fn envoy_dynamic_module_callback_http_filter_config_define_counter(
        config: config_envoy_ptr,
        name: module_buffer,
        label_names: *mut module_buffer,
        label_names_length: usize,
        counter_id: *mut usize,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_increment_counter(
        filter: filter_envoy_ptr,
        id: usize,
        label_values: *mut module_buffer,
        label_values_length: usize,
        value: u64,
    ) -> u32;
}
