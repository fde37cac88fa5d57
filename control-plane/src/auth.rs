//! API tokens: `strom_<id>_<secret>`, shown once, stored as a SHA-256 digest of the secret
//! (Argon2id for tokens minted before); scoped to a tenant (or the platform) with a role;
//! expiring; revocable; within the rate limits of `rate_limit`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::{Db, now_ms};
use crate::error::ApiError;
use crate::{AppState, store};

/// What a token may do, each role including the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read everything of its tenant.
    Viewer,
    /// Also create, change, start, stop, scale and delete applications and snapshots.
    Editor,
    /// Also manage the tenant's tokens.
    Admin,
}

impl Role {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    /// As stored.
    pub(crate) fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "editor" => Some(Role::Editor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Where the audit log learns who the caller was: set by the [`Principal`] extractor once
/// the token is verified, read by the audit middleware after the handler ran. Nothing
/// unverified (a path, a header) names the tenant or token of an audit row.
#[derive(Clone, Default)]
pub struct VerifiedSlot(pub Arc<Mutex<Option<Principal>>>);

/// The caller, once its token is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's id.
    pub token_id: String,
    /// Its tenant; `None` for a platform token (which manages tenants).
    pub tenant: Option<String>,
    /// Its role.
    pub role: Role,
}

impl Principal {
    /// Whether the caller may act on `tenant` with at least `need`. A token of another
    /// tenant learns nothing: the tenant does not exist for it (404).
    pub fn check(&self, tenant: &str, need: Role) -> Result<(), ApiError> {
        match &self.tenant {
            None if self.role == Role::Admin => Ok(()),
            Some(t) if t == tenant => {
                if self.role >= need {
                    Ok(())
                } else {
                    Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "forbidden",
                        format!(
                            "this token's role is {}; this needs {}",
                            self.role.as_str(),
                            need.as_str()
                        ),
                    ))
                }
            }
            _ => Err(ApiError::not_found(format!("no tenant {tenant:?}"))),
        }
    }

    /// Only platform tokens (tenant management).
    pub fn platform(&self) -> Result<(), ApiError> {
        if self.tenant.is_none() && self.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "only a platform admin token manages tenants",
            ))
        }
    }
}

/// Secrets already verified against their hash in this process, so that a request costs
/// one indexed lookup rather than an Argon2 computation. Expiry and revocation are still
/// read from the database on every request.
#[derive(Debug, Default, Clone)]
pub struct VerifiedCache(Arc<Mutex<HashMap<String, String>>>);

impl VerifiedCache {
    fn hit(&self, id: &str, secret: &str) -> bool {
        self.0
            .lock()
            .expect("cache")
            .get(id)
            .is_some_and(|s| s == secret)
    }

    fn insert(&self, id: &str, secret: &str) {
        let mut map = self.0.lock().expect("cache");
        if map.len() > 10_000 {
            map.clear();
        }
        map.insert(id.to_owned(), secret.to_owned());
    }

    /// Forgets a token (on revocation).
    pub fn forget(&self, id: &str) {
        self.0.lock().expect("cache").remove(id);
    }
}

/// A new token: (id, the full token to show once, the hash to store). The secret is 256
/// random bits, so a fast hash is enough (nobody guesses it; a slow one per request would
/// be a lever for whoever floods the API): SHA-256, stored as `sha256:<hex>`.
pub fn mint() -> (String, String, String) {
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system gives random bytes");
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let hash = format!("sha256:{}", sha256_hex(&secret));
    (id.clone(), format!("strom_{id}_{secret}"), hash)
}

fn sha256_hex(secret: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `secret` is the one `hash` was made from: SHA-256 compared in constant time,
/// or (tokens minted before) Argon2, remembered per process once verified.
fn secret_matches(state: &AppState, id: &str, secret: &str, hash: &str) -> Result<bool, ApiError> {
    if let Some(digest) = hash.strip_prefix("sha256:") {
        use subtle::ConstantTimeEq;
        return Ok(bool::from(
            sha256_hex(secret).as_bytes().ct_eq(digest.as_bytes()),
        ));
    }
    if state.verified.hit(id, secret) {
        return Ok(true);
    }
    let parsed = PasswordHash::new(hash).map_err(ApiError::internal)?;
    let ok = argon2::Argon2::default()
        .verify_password(secret.as_bytes(), &parsed)
        .is_ok();
    if ok {
        state.verified.insert(id, secret);
    }
    Ok(ok)
}

/// Stores a new token and returns (id, token).
pub async fn create(
    db: &Db,
    tenant: Option<&str>,
    role: Role,
    description: &str,
    expires_at: Option<i64>,
) -> Result<(String, String), ApiError> {
    let (id, token, hash) = mint();
    let stored = store::tokens::NewToken {
        id: &id,
        tenant,
        role,
        hash: &hash,
        description,
        created_at: now_ms(),
        expires_at,
    };
    store::tokens::insert(&db.pool, &stored).await?;
    Ok((id, token))
}

fn unauthenticated(why: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", why)
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    /// Verifies the bearer token, within the rate limits: an address that failed too often
    /// is refused before its token is looked at; a verified token over its own limit is
    /// refused too.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // Served without connection info (only in-process callers), every caller shares
        // the unspecified address: the limit still holds, for all of them together.
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        let limited = |limit: &str, wait, why| {
            state.metrics.rate_limited.with_label_values(&[limit]).inc();
            ApiError::rate_limited(wait, why)
        };
        if let Some(wait) = state.limits.address_refused(address) {
            return Err(limited(
                "address",
                wait,
                "too many failed authentications from this address",
            ));
        }
        let principal = match verify(parts, state).await {
            Ok(p) => p,
            Err(e) if e.status == StatusCode::UNAUTHORIZED => {
                return Err(match state.limits.failed(address) {
                    Some(wait) => limited(
                        "address",
                        wait,
                        "too many failed authentications from this address",
                    ),
                    None => e,
                });
            }
            Err(e) => return Err(e),
        };
        if let Some(wait) = state.limits.token(&principal.token_id) {
            return Err(limited(
                "token",
                wait,
                "this token made more requests than its rate limit allows",
            ));
        }
        if let Some(slot) = parts.extensions.get::<VerifiedSlot>() {
            *slot.0.lock().expect("the verified slot") = Some(principal.clone());
        }
        Ok(principal)
    }
}

/// The caller the request's bearer token names, if the token is valid.
async fn verify(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .ok_or_else(|| unauthenticated("send an API token: Authorization: Bearer strom_…"))?;
    let token = header
        .strip_prefix("Bearer ")
        .ok_or_else(|| unauthenticated("the Authorization header must be `Bearer <token>`"))?;
    let mut parts_of = token.splitn(3, '_');
    let (Some("strom"), Some(id), Some(secret)) =
        (parts_of.next(), parts_of.next(), parts_of.next())
    else {
        return Err(unauthenticated("not a Strom API token"));
    };
    let stored = store::tokens::credential(&state.db.pool, id)
        .await?
        .ok_or_else(|| unauthenticated("unknown or revoked token"))?;
    let store::tokens::Credential {
        tenant,
        role,
        hash,
        expires_at,
        revoked_at,
    } = stored;
    // The secret first: whoever does not hold it learns nothing about the token (not
    // even that it expired).
    if !secret_matches(state, id, secret, &hash)? || revoked_at.is_some() {
        return Err(unauthenticated("unknown or revoked token"));
    }
    if expires_at.is_some_and(|e| e <= now_ms()) {
        return Err(unauthenticated("this token has expired"));
    }
    Ok(Principal {
        token_id: id.to_owned(),
        tenant,
        role,
    })
}
