//! `--user NAME:PASSWORD`: clients must authenticate with SASL SCRAM-SHA-256 or
//! SCRAM-SHA-512 (what MSK and Confluent Platform use), as against a Kafka cluster with
//! SASL listeners: the client's proof is checked against keys derived from the password
//! (RFC 5802). tansu's own SASL callback reads SCRAM credentials from its storage, which
//! the in-memory storage does not keep: this callback replaces it. (tansu builds its SASL
//! library without PLAIN, and its PLAIN check would accept any password.)

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use rsasl::callback::{Context, Request, SessionCallback, SessionData};
use rsasl::mechanisms::scram::properties::ScramStoredPassword;
use rsasl::prelude::SessionError;
use rsasl::property::AuthId;
use rsasl::validate::{Validate, ValidationError};
use sha2::{Digest, Sha256, Sha512};
use tansu_auth::{Justification, Success};

/// Salt and iteration count of every derived SCRAM key (test credentials only).
const SALT: &[u8] = b"strom-kafka-broker";
const ITERATIONS: u32 = 4096;

/// User name → password.
pub struct Users(pub BTreeMap<String, String>);

/// (stored key, server key) of `password` for a SCRAM mechanism with digest `D`.
macro_rules! scram_keys {
    ($digest:ty, $password:expr) => {{
        let mut salted = vec![0u8; <$digest>::output_size()];
        pbkdf2::pbkdf2::<Hmac<$digest>>($password.as_bytes(), SALT, ITERATIONS, &mut salted)
            .expect("HMAC takes keys of any length");
        let hmac = |text: &[u8]| {
            let mut mac = <Hmac<$digest> as Mac>::new_from_slice(&salted).expect("any key length");
            mac.update(text);
            mac.finalize().into_bytes().to_vec()
        };
        let stored = <$digest>::digest(hmac(b"Client Key")).to_vec();
        (stored, hmac(b"Server Key"))
    }};
}

impl SessionCallback for Users {
    fn callback(
        &self,
        session_data: &SessionData,
        context: &Context<'_>,
        request: &mut Request<'_>,
    ) -> Result<(), SessionError> {
        let mechanism = session_data.mechanism().mechanism;
        if !mechanism.starts_with("SCRAM-") {
            return Ok(());
        }
        let user = context
            .get_ref::<AuthId>()
            .ok_or(SessionError::ValidationError(
                ValidationError::MissingRequiredProperty,
            ))?;
        // An unknown user gets no keys: the mechanism then fails the exchange.
        let Some(password) = self.0.get(user) else {
            return Ok(());
        };
        let (stored, server) = match mechanism.as_str() {
            "SCRAM-SHA-256" => scram_keys!(Sha256, password),
            "SCRAM-SHA-512" => scram_keys!(Sha512, password),
            _ => return Ok(()),
        };
        request.satisfy::<ScramStoredPassword<'_>>(&ScramStoredPassword::new(
            ITERATIONS, SALT, &stored, &server,
        ))?;
        Ok(())
    }

    fn validate(
        &self,
        _session_data: &SessionData,
        _context: &Context<'_>,
        validate: &mut Validate<'_>,
    ) -> Result<(), ValidationError> {
        // The SCRAM exchange itself proved the password.
        validate.with::<Justification, _>(|| Ok(Ok(Success::default())))?;
        Ok(())
    }
}
