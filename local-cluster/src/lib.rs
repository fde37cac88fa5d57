//! Strom's local stand-in for Kubernetes, behind `strom-local`: an in-memory API server
//! ([`apiserver`]) with CRD admission ([`admission`]: structural schema, unknown fields,
//! CEL rules), the controllers a cluster runs ([`controllers`]), a kubelet that runs pods
//! as processes ([`kubelet`]), all started and stopped together by [`cluster`]; and the
//! generator of the documentation site's reference pages ([`docgen`]). Its tests are the
//! end-to-end tests of the chart, Terraform, the docs and kubectl against the cluster.

pub mod admission;
pub mod apiserver;
pub mod cluster;
pub mod controllers;
pub mod docgen;
pub mod kubelet;
