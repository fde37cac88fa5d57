//! Strom's local stand-in for Kubernetes and its end-to-end scenarios.
//!
//! Built so far: [`admission`], the validation a Kubernetes API server applies to a custom
//! resource from its CRD (structural schema, unknown fields, CEL rules), and the
//! `strom-local check` command that runs it, together with the Rust validation of
//! `strom-crds`, over manifests. The in-memory API server, controllers and process kubelet
//! come next (see `docs/architecture.md`).

pub mod admission;
pub mod apiserver;
pub mod cluster;
pub mod controllers;
pub mod docgen;
pub mod emulators;
pub mod kubelet;
