//! jwtguard as an Envoy dynamic-module HTTP filter (`libjwtguard_envoy.so`, filter name
//! `jwtguard`). The verification, the error codes and the process-global JWKS cache are the
//! jwtguard core's; this crate parses the filter's configuration, turns verdicts into Envoy's
//! terms, and (in `ffi`, the only place with `unsafe`) speaks Envoy's dynamic-module ABI.

pub mod config;
pub mod decide;
mod ffi;
