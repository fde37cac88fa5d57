//! The one client of the control endpoint: blocking (ureq), with a timeout, errors that
//! say which call failed and how.

use std::time::Duration;

use crate::{CheckpointsStatus, JobStatus, SavepointRequest, SavepointStatus, routes};

/// Why a call to the engine failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The engine could not be reached (not listening, timed out).
    #[error("{url}: the engine did not answer: {reason}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// What the transport said.
        reason: String,
    },
    /// The engine answered with an error status.
    #[error("{url}: the engine answered {status}: {body}")]
    Refused {
        /// The URL called.
        url: String,
        /// The HTTP status.
        status: u16,
        /// What it said.
        body: String,
    },
    /// The answer was not what the protocol says.
    #[error("{url}: the engine's answer does not read: {reason}")]
    Unreadable {
        /// The URL called.
        url: String,
        /// Why.
        reason: String,
    },
}

impl ClientError {
    /// Whether the engine was not reached at all (as opposed to answering badly).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ClientError::Unreachable { .. })
    }
}

/// A client of one engine's control endpoint, e.g. `http://10.0.0.7:8081`.
#[derive(Debug, Clone)]
pub struct EngineClient {
    base: String,
    agent: ureq::Agent,
    token: Option<String>,
}

impl EngineClient {
    /// A client of the endpoint at `base` whose calls give up after `timeout`.
    pub fn new(base: impl Into<String>, timeout: Duration) -> EngineClient {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        EngineClient {
            base: base.into().trim_end_matches('/').to_owned(),
            agent,
            token: None,
        }
    }

    /// The same client, sending `token` as its bearer token on the calls that change the
    /// job (the engine refuses them without the job's token).
    pub fn with_token(mut self, token: impl Into<String>) -> EngineClient {
        self.token = Some(token.into());
        self
    }

    /// The endpoint's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET /v1/job`.
    pub fn job(&self) -> Result<JobStatus, ClientError> {
        self.get(routes::JOB)
    }

    /// `GET /v1/checkpoints`.
    pub fn checkpoints(&self) -> Result<CheckpointsStatus, ClientError> {
        self.get(routes::CHECKPOINTS)
    }

    /// `POST /v1/savepoints`: asks for a savepoint; the answer carries the id to poll.
    pub fn request_savepoint(
        &self,
        request: &SavepointRequest,
    ) -> Result<SavepointStatus, ClientError> {
        let url = format!("{}{}", self.base, routes::SAVEPOINTS);
        let mut post = self.agent.post(&url);
        if let Some(token) = &self.token {
            post = post.header("authorization", &format!("Bearer {token}"));
        }
        let response = post.send_json(request).map_err(|e| unreachable(&url, e))?;
        read(&url, response)
    }

    /// `GET /v1/savepoints/{id}`.
    pub fn savepoint(&self, id: &str) -> Result<SavepointStatus, ClientError> {
        self.get(&routes::savepoint(id))
    }

    fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let response = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| unreachable(&url, e))?;
        read(&url, response)
    }
}

fn unreachable(url: &str, e: ureq::Error) -> ClientError {
    ClientError::Unreachable {
        url: url.to_owned(),
        reason: e.to_string(),
    }
}

fn read<T: serde::de::DeserializeOwned>(
    url: &str,
    mut response: ureq::http::Response<ureq::Body>,
) -> Result<T, ClientError> {
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|e| ClientError::Unreadable {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
    if !(200..300).contains(&status) {
        return Err(ClientError::Refused {
            url: url.to_owned(),
            status,
            body: body.chars().take(500).collect(),
        });
    }
    serde_json::from_str(&body).map_err(|e| ClientError::Unreadable {
        url: url.to_owned(),
        reason: e.to_string(),
    })
}
