//! The control plane's Prometheus metrics (`GET /metrics`): requests that did not
//! authenticate are counted here, not written to any tenant's audit log, where a caller
//! without a token could otherwise write rows.

use std::sync::Arc;

use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};

/// The metrics and their registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Mutating requests refused before a token was verified, by HTTP status.
    pub unauthenticated: IntCounterVec,
    /// Requests refused by a rate limit, by limit (`token`, `address`).
    pub rate_limited: IntCounterVec,
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new();
        let unauthenticated = IntCounterVec::new(
            Opts::new(
                "strom_control_plane_unauthenticated_requests_total",
                "Mutating requests refused before a token was verified (not in any audit log)",
            ),
            &["status"],
        )
        .expect("a valid metric");
        let rate_limited = IntCounterVec::new(
            Opts::new(
                "strom_control_plane_rate_limited_requests_total",
                "Requests refused by a rate limit: a token's, or a client address's failed authentications",
            ),
            &["limit"],
        )
        .expect("a valid metric");
        registry
            .register(Box::new(unauthenticated.clone()))
            .expect("registered once");
        registry
            .register(Box::new(rate_limited.clone()))
            .expect("registered once");
        Metrics {
            registry,
            unauthenticated,
            rate_limited,
        }
    }
}

impl Metrics {
    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("metrics encode");
        String::from_utf8(out).expect("metrics are UTF-8")
    }
}

/// Shared by every request.
pub type SharedMetrics = Arc<Metrics>;
