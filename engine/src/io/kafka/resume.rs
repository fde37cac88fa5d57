//! Committing a Kafka transaction that another process opened: the one request librdkafka
//! cannot make.
//!
//! A checkpoint names each exactly-once sink transaction with its producer id and epoch.
//! If the process that wrote the checkpoint died after `_metadata` and before committing,
//! the restore must commit the transaction — its records are part of the restored state.
//! librdkafka cannot take over another producer's transaction (Flink sets the producer id
//! and epoch into the Java client by reflection); the brokers' own protocol can: an `EndTxn`
//! request with the transactional id, producer id and epoch, sent to the transaction's
//! coordinator. This speaks that much of the protocol (`kafka-protocol` for the messages):
//! `ApiVersions`, `FindCoordinator`, `EndTxn`, over a plain TCP connection.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, EndTxnRequest, EndTxnResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, ProducerId, RequestHeader, ResponseHeader,
    TransactionalId,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Message, StrBytes};
use rdkafka::config::ClientConfig;

use super::BROKER_TIMEOUT;

/// How a resumed commit ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The transaction is committed (now, or it already was with this epoch).
    Committed,
    /// The brokers refused: the epoch is no longer current (`ProducerFenced`,
    /// `InvalidProducerEpoch`, the id or producer forgotten), or the transaction was aborted
    /// (`InvalidTxnState`). The brokers' answer, by name.
    NotOpen(String),
}

/// The highest `EndTxn` version used: version 5 switches the coordinator to the second
/// transaction protocol (KIP-890), which librdkafka's producers do not speak.
const END_TXN_MAX_VERSION: i16 = 4;

/// A request this client sends, and its answer. (`kafka_protocol`'s own `Request` trait
/// needs its broker half too, which decodes requests; a client only encodes them.)
trait Request: Encodable + HeaderVersion + Message {
    const KEY: i16;
    type Response: Decodable + HeaderVersion;
}

impl Request for ApiVersionsRequest {
    const KEY: i16 = ApiKey::ApiVersions as i16;
    type Response = ApiVersionsResponse;
}

impl Request for FindCoordinatorRequest {
    const KEY: i16 = ApiKey::FindCoordinator as i16;
    type Response = FindCoordinatorResponse;
}

impl Request for EndTxnRequest {
    const KEY: i16 = ApiKey::EndTxn as i16;
    type Response = EndTxnResponse;
}

/// A failure worth another try (the coordinator moving or loading), or not.
enum Failure {
    Retry(String),
    Fatal(String),
}

/// Whether this client can reach the brokers of `config`: plaintext only, for now.
pub fn speaks(config: &ClientConfig) -> bool {
    config
        .get("security.protocol")
        .is_none_or(|p| p.eq_ignore_ascii_case("plaintext"))
}

/// Commits transaction `id` of producer `producer_id` at `epoch` on the brokers of
/// `config`, retrying for up to [`BROKER_TIMEOUT`] while the coordinator moves or loads.
pub fn commit(
    config: &ClientConfig,
    id: &str,
    producer_id: i64,
    epoch: i16,
) -> Result<Ended, String> {
    if !speaks(config) {
        return Err(format!(
            "committing Kafka transaction {id} over security.protocol={} is not built \
             (only plaintext)",
            config.get("security.protocol").unwrap_or_default()
        ));
    }
    let bootstrap: Vec<String> = config
        .get("bootstrap.servers")
        .unwrap_or_default()
        .split(',')
        .map(|s| {
            let s = s.trim();
            s.split_once("://").map_or(s, |(_, a)| a).to_owned()
        })
        .filter(|s| !s.is_empty())
        .collect();
    let deadline = Instant::now() + BROKER_TIMEOUT;
    loop {
        match attempt(&bootstrap, id, producer_id, epoch) {
            Ok(ended) => return Ok(ended),
            Err(Failure::Retry(why)) if Instant::now() < deadline => {
                tracing::debug!(transaction = id, reason = %why, "retrying the commit");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(Failure::Retry(why) | Failure::Fatal(why)) => {
                return Err(format!("cannot commit Kafka transaction {id}: {why}"));
            }
        }
    }
}

fn attempt(bootstrap: &[String], id: &str, producer_id: i64, epoch: i16) -> Result<Ended, Failure> {
    let mut any = None;
    let mut why = String::from("no bootstrap server given");
    for address in bootstrap {
        match Connection::open(address) {
            Ok(c) => {
                any = Some(c);
                break;
            }
            Err(e) => why = e,
        }
    }
    let Some(mut bootstrap) = any else {
        return Err(Failure::Retry(why));
    };
    let key = StrBytes::from_string(id.to_owned());
    let version = bootstrap.version::<FindCoordinatorRequest>(i16::MAX)?;
    let mut find = FindCoordinatorRequest::default().with_key_type(1);
    find = if version >= 4 {
        find.with_coordinator_keys(vec![key.clone()])
    } else {
        find.with_key(key.clone())
    };
    let found = bootstrap.call(&find, version)?;
    let (code, host, port) = match found.coordinators.first() {
        Some(c) if version >= 4 => (c.error_code, c.host.to_string(), c.port),
        _ => (found.error_code, found.host.to_string(), found.port),
    };
    if let Some(e) = ResponseError::try_from_code(code) {
        return Err(Failure::Retry(format!(
            "no coordinator for the transaction: {e:?}"
        )));
    }
    let mut coordinator = Connection::open(&format!("{host}:{port}")).map_err(Failure::Retry)?;
    let version = coordinator.version::<EndTxnRequest>(END_TXN_MAX_VERSION)?;
    let end = EndTxnRequest::default()
        .with_transactional_id(TransactionalId(key))
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(epoch)
        .with_committed(true);
    let answer = coordinator.call(&end, version)?;
    match ResponseError::try_from_code(answer.error_code) {
        None => Ok(Ended::Committed),
        Some(
            ResponseError::InvalidTxnState
            | ResponseError::ProducerFenced
            | ResponseError::InvalidProducerEpoch
            | ResponseError::TransactionalIdNotFound
            | ResponseError::UnknownProducerId,
        ) => Ok(Ended::NotOpen(format!(
            "{:?}",
            ResponseError::try_from_code(answer.error_code).expect("matched above")
        ))),
        Some(
            e @ (ResponseError::ConcurrentTransactions
            | ResponseError::CoordinatorNotAvailable
            | ResponseError::CoordinatorLoadInProgress
            | ResponseError::NotCoordinator),
        ) => Err(Failure::Retry(format!("{e:?}"))),
        Some(e) => Err(Failure::Fatal(format!("the coordinator answered {e:?}"))),
    }
}

fn codec(e: impl std::fmt::Display) -> Failure {
    Failure::Fatal(format!("cannot encode or decode a message: {e}"))
}

/// One connection to a broker, with the API versions it supports.
struct Connection {
    stream: TcpStream,
    versions: HashMap<i16, (i16, i16)>,
    correlation: i32,
}

impl Connection {
    fn open(address: &str) -> Result<Connection, String> {
        let addr = address
            .to_socket_addrs()
            .map_err(|e| format!("{address}: {e}"))?
            .next()
            .ok_or_else(|| format!("{address} resolves to no address"))?;
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map_err(|e| format!("{address}: {e}"))?;
        for set in [TcpStream::set_read_timeout, TcpStream::set_write_timeout] {
            set(&stream, Some(Duration::from_secs(10))).map_err(|e| format!("{address}: {e}"))?;
        }
        let mut c = Connection {
            stream,
            versions: HashMap::new(),
            correlation: 0,
        };
        // Version 0 is answered by every broker, whatever it supports.
        let answer = c
            .call(&ApiVersionsRequest::default(), 0)
            .map_err(|(Failure::Retry(e) | Failure::Fatal(e))| e)?;
        if let Some(e) = ResponseError::try_from_code(answer.error_code) {
            return Err(format!("{address} refused ApiVersions: {e:?}"));
        }
        c.versions = answer
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(c)
    }

    /// The highest version of `R` both sides speak, at most `cap`.
    fn version<R: Request>(&self, cap: i16) -> Result<i16, Failure> {
        let (min, max) =
            self.versions.get(&R::KEY).copied().ok_or_else(|| {
                Failure::Fatal(format!("the broker does not serve API {}", R::KEY))
            })?;
        let v = max.min(R::VERSIONS.max).min(cap);
        if v < min.max(R::VERSIONS.min) {
            return Err(Failure::Fatal(format!(
                "no common version of API {} (broker {min}..{max})",
                R::KEY
            )));
        }
        Ok(v)
    }

    fn call<R: Request>(&mut self, request: &R, version: i16) -> Result<R::Response, Failure> {
        let io = |e: std::io::Error| Failure::Retry(e.to_string());
        self.correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("strom")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, R::header_version(version))
            .map_err(codec)?;
        request.encode(&mut body, version).map_err(codec)?;
        let mut frame = Vec::with_capacity(body.len() + 4);
        frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
        frame.extend_from_slice(&body);
        self.stream.write_all(&frame).map_err(io)?;
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).map_err(io)?;
        let size = u32::from_be_bytes(size) as usize;
        if size > 16 << 20 {
            return Err(Failure::Fatal(format!("an answer of {size} bytes")));
        }
        let mut answer = vec![0u8; size];
        self.stream.read_exact(&mut answer).map_err(io)?;
        let mut answer = Bytes::from(answer);
        let header = ResponseHeader::decode(&mut answer, R::Response::header_version(version))
            .map_err(codec)?;
        if header.correlation_id != self.correlation {
            return Err(Failure::Fatal(format!(
                "an answer to request {} where {} was expected",
                header.correlation_id, self.correlation
            )));
        }
        R::Response::decode(&mut answer, version).map_err(codec)
    }
}

/// Reads the producer id and epoch librdkafka reports in its statistics (`eos`).
pub fn identity_in_statistics(json: &[u8]) -> Option<(i64, i16)> {
    #[derive(serde::Deserialize)]
    struct Stats {
        eos: Option<Eos>,
    }
    #[derive(serde::Deserialize)]
    struct Eos {
        producer_id: i64,
        producer_epoch: i64,
    }
    let eos = serde_json::from_slice::<Stats>(json).ok()?.eos?;
    (eos.producer_id >= 0 && eos.producer_epoch >= 0)
        .then(|| Some((eos.producer_id, i16::try_from(eos.producer_epoch).ok()?)))
        .flatten()
}

#[allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_producer_identity_is_read_from_librdkafkas_statistics() {
        let json = br#"{"name": "p#producer-1", "eos": {"idemp_state": "Assigned", "txn_state": "Ready", "producer_id": 1001, "producer_epoch": 3, "epoch_cnt": 1}}"#;
        assert_eq!(identity_in_statistics(json), Some((1001, 3)));
        let unassigned =
            br#"{"eos": {"idemp_state": "Init", "producer_id": -1, "producer_epoch": -1}}"#;
        assert_eq!(identity_in_statistics(unassigned), None);
        assert_eq!(identity_in_statistics(br#"{"name": "c"}"#), None);
    }
}
