//! Leader election through a `coordination.k8s.io/v1` Lease: of several operator replicas
//! only the holder of the lease reconciles; a standby takes the lease over when the holder
//! stops renewing it for `duration`.
//!
//! Every write is a compare-and-swap on the Lease's `resourceVersion`, so two replicas never
//! both believe they hold it after the same read.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;

/// One replica's claim on the lease.
pub struct Election {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
}

/// What an attempt to hold the lease found.
#[derive(Debug, PartialEq, Eq)]
pub enum Held {
    /// This replica holds it.
    Yes,
    /// Another does, and has renewed it in time.
    By(String),
}

impl Election {
    /// `identity` competes for Lease `name` through `api`; a holder that has not renewed for
    /// `duration` loses it.
    pub fn new(api: Api<Lease>, name: &str, identity: &str, duration: Duration) -> Election {
        Election {
            api,
            name: name.to_owned(),
            identity: identity.to_owned(),
            duration,
        }
    }

    /// Takes or renews the lease if this replica may.
    pub async fn try_hold(&self) -> Result<Held, kube::Error> {
        let now = MicroTime(jiff::Timestamp::now());
        let seconds = self.duration.as_secs().max(1) as i32;
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Held::Yes),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(Held::By("?".into())),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let renewed = spec.renew_time.as_ref().map_or(0, |t| t.0.as_millisecond());
        let allowed_ms = i64::from(spec.lease_duration_seconds.unwrap_or(seconds)) * 1000;
        let expired = now.0.as_millisecond() - renewed > allowed_ms;
        if holder != self.identity && !holder.is_empty() && !expired {
            return Ok(Held::By(holder));
        }
        if holder != self.identity {
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.renew_time = Some(now);
        spec.lease_duration_seconds = Some(seconds);
        // The read resourceVersion stays on the object: a concurrent writer makes this fail.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(Held::Yes),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(Held::By("?".into())),
            Err(e) => Err(e),
        }
    }

    /// Waits until this replica holds the lease.
    pub async fn acquire(&self) -> Result<(), kube::Error> {
        let mut said = false;
        loop {
            match self.try_hold().await? {
                Held::Yes => return Ok(()),
                Held::By(other) => {
                    if !said {
                        tracing::info!(holder = %other, lease = %self.name, "standing by: another replica leads");
                        said = true;
                    }
                }
            }
            tokio::time::sleep(self.duration / 4).await;
        }
    }

    /// Renews the lease every `duration / 3` until it cannot (lost to another replica, or
    /// the API unreachable for longer than the lease lasts); then returns, and the caller
    /// must stop acting as leader.
    pub async fn keep(&self) {
        let mut last_ok = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.duration / 3).await;
            match self.try_hold().await {
                Ok(Held::Yes) => last_ok = tokio::time::Instant::now(),
                Ok(Held::By(other)) => {
                    tracing::warn!(holder = %other, "lost the lease");
                    return;
                }
                Err(e) if last_ok.elapsed() < self.duration => {
                    tracing::warn!(error = %e, "cannot renew the lease yet");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not renew the lease in time");
                    return;
                }
            }
        }
    }
}

/// Holds the lease, then runs `work` while it is held; returns when the lease is lost (the
/// process should then exit and be restarted as a standby).
pub async fn lead<F: Future<Output = ()>>(election: &Election, work: F) -> Result<(), kube::Error> {
    election.acquire().await?;
    tracing::info!(identity = %election.identity, "leading");
    tokio::select! {
        () = work => {}
        () = election.keep() => {}
    }
    Ok(())
}
