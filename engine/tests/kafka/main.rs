//! Kafka in and out, against a real Kafka-protocol broker (`strom-kafka-broker`, tansu
//! with Strom's repairs, started per test on a free port):
//! - [`golden`]: the golden cases through topics, exactly once, at parallelism 1, 2 and 4;
//! - [`sources`]: bad records, brokers and topics that are away, lag and group offsets;
//! - [`transactions`]: fencing what earlier runs left open, pooled producers, and what a
//!   restore commits.

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

#[path = "../support/compare.rs"]
mod compare;
#[path = "../support/http.rs"]
mod http;

mod golden;
mod sources;
mod support;
mod transactions;
