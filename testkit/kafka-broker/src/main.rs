//! `strom-kafka-broker --port N`: a Kafka-protocol broker on 127.0.0.1:N with in-memory
//! storage, for Strom's tests and the local cluster's Kafka example.
//!
//! Options: `--port N` (on 127.0.0.1), or `--listen ADDR:PORT` (e.g. a pod's IP); the
//! address clients are told to connect to is the listening one unless `--advertise
//! HOST:PORT` says otherwise; `--topic NAME:PARTITIONS` (repeatable) creates a topic at
//! start, before the port opens, so clients never see it missing; `--user NAME:PASSWORD`
//! (repeatable) makes clients authenticate with SASL PLAIN or SCRAM-SHA-256/512
//! (`users.rs`).
//!
//! It is tansu's broker assembled from its crates, with these repairs:
//! - tansu 0.6 keeps transactions in its storage (`Storage::txn_end` writes the commit or
//!   abort markers and moves the last stable offset) but routes no `EndTxn` request, so no
//!   client can commit or abort a transaction: this serves `EndTxn` from that storage call;
//! - its `ListOffsets` answers LATEST with the last batch's base offset plus one rather
//!   than the end of the log: this answers LATEST with the partition's high watermark (or
//!   last stable offset, for `read_committed`), as Kafka does;
//! - its `Fetch` never lists the aborted transactions in what it returns, so a
//!   `read_committed` client (which drops aborted records by that list) reads them as if
//!   committed: this fills the list from the log's own abort markers, as Kafka's index of
//!   aborted transactions does;
//! - its `Fetch` returns the batches whose first offset is at or after the offset asked
//!   for, so a reader resuming in the middle of a batch skips the rest of it: this puts
//!   the batch holding that offset first, as Kafka does.

mod users;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use rama::layer::{MapErrLayer, MapStateLayer};
use rama::{Context, Layer as _, Service};
use tansu_broker::coordinator::group::administrator::Controller;
use tansu_broker::service::{auth, coordinator, storage};
use tansu_sans_io::create_topics_request::CreatableTopic;
use tansu_sans_io::record::{deflated, inflated};
use tansu_sans_io::{
    ApiKey as _, BatchAttribute, ControlBatch, EndTxnRequest, EndTxnResponse, FetchRequest,
    FetchResponse, IsolationLevel, ListOffsetsRequest, ListOffsetsResponse,
    fetch_response::AbortedTransaction,
};
use tansu_service::{
    BytesFrameLayer, FrameRequestLayer, FrameRouteService, TcpBytesLayer, TcpContext,
    TcpContextLayer,
};
use tansu_storage::{BrokerRegistrationRequest, Storage, StorageContainer, TopicId, Topition};
use url::Url;

/// `EndTxn`: commits or aborts a transaction through the storage.
#[derive(Clone, Copy, Debug, Default)]
struct EndTxnService;

impl<G: Storage> Service<G, EndTxnRequest> for EndTxnService {
    type Response = EndTxnResponse;
    type Error = tansu_storage::Error;

    async fn serve(
        &self,
        ctx: Context<G>,
        req: EndTxnRequest,
    ) -> Result<Self::Response, Self::Error> {
        // A refusal (a fenced producer, an unknown transaction) is an answer with its
        // error code, as Kafka gives it, not a dropped connection.
        let code = match ctx
            .state()
            .txn_end(
                req.transactional_id.as_str(),
                req.producer_id,
                req.producer_epoch,
                req.committed,
            )
            .await
        {
            Ok(code) => code,
            Err(tansu_storage::Error::Api(code)) => code,
            Err(other) => return Err(other),
        };
        Ok(EndTxnResponse::default()
            .throttle_time_ms(0)
            .error_code(code.into()))
    }
}

/// `ListOffsets`: tansu's answer, with LATEST (-1) replaced by the end of the log.
#[derive(Clone, Copy, Debug, Default)]
struct ListOffsetsService;

impl<G: Storage> Service<G, ListOffsetsRequest> for ListOffsetsService {
    type Response = ListOffsetsResponse;
    type Error = tansu_storage::Error;

    async fn serve(
        &self,
        ctx: Context<G>,
        req: ListOffsetsRequest,
    ) -> Result<Self::Response, Self::Error> {
        let committed = req.isolation_level == Some(1);
        let latest: Vec<(String, i32)> = req
            .topics
            .iter()
            .flatten()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .flatten()
                    .filter(|p| p.timestamp == -1)
                    .map(|p| (t.name.clone(), p.partition_index))
            })
            .collect();
        let mut response = tansu_storage::ListOffsetsService
            .serve(ctx.clone(), req)
            .await?;
        for topic in response.topics.iter_mut().flatten() {
            for p in topic.partitions.iter_mut().flatten() {
                if !latest.contains(&(topic.name.clone(), p.partition_index)) {
                    continue;
                }
                let stage = ctx
                    .state()
                    .offset_stage(&Topition::new(topic.name.clone(), p.partition_index))
                    .await?;
                p.offset = Some(if committed {
                    stage.last_stable()
                } else {
                    stage.high_watermark()
                });
            }
        }
        Ok(response)
    }
}

/// `Fetch`: tansu's answer, with the aborted transactions of what it returns listed for
/// `read_committed` readers.
#[derive(Clone, Copy, Debug, Default)]
struct FetchService;

impl<G: Storage> Service<G, FetchRequest> for FetchService {
    type Response = FetchResponse;
    type Error = tansu_storage::Error;

    async fn serve(
        &self,
        ctx: Context<G>,
        req: FetchRequest,
    ) -> Result<Self::Response, Self::Error> {
        let committed = req.isolation_level == Some(1);
        let requested = req.topics.clone().unwrap_or_default();
        let mut response = tansu_storage::FetchService.serve(ctx.clone(), req).await?;
        // One answer per requested topic, in order.
        for (asked, topic) in requested
            .iter()
            .zip(response.responses.iter_mut().flatten())
        {
            let meta = ctx.state().metadata(Some(&[TopicId::from(asked)])).await?;
            let Some(name) = meta.topics().iter().find_map(|t| t.name.clone()) else {
                continue;
            };
            for p in topic.partitions.iter_mut().flatten() {
                let tp = Topition::new(name.clone(), p.partition_index);
                let wanted = asked
                    .partitions
                    .iter()
                    .flatten()
                    .find(|a| a.partition == p.partition_index)
                    .map(|a| a.fetch_offset);
                let end = if committed {
                    p.last_stable_offset.unwrap_or(p.high_watermark)
                } else {
                    p.high_watermark
                };
                if let Some(offset) = wanted {
                    with_containing_batch(ctx.state(), &tp, offset, end, &mut p.records).await?;
                }
                if !committed {
                    continue;
                }
                let Some(frame) = &p.records else { continue };
                let aborted = aborted(ctx.state(), &tp, &frame.batches, p.high_watermark).await?;
                p.aborted_transactions = Some(aborted);
            }
        }
        Ok(response)
    }
}

/// Puts the batch that holds `offset` first in `records` when tansu left it out: its fetch
/// returns the batches whose *first* offset is at or after the one asked for, so a reader
/// resuming in the middle of a batch (a restored position) would skip the rest of that
/// batch. Kafka returns the batch holding the offset, and the client drops the records
/// before it. Found by looking back from `offset` in growing steps.
async fn with_containing_batch<G: Storage>(
    storage: &G,
    tp: &Topition,
    offset: i64,
    end: i64,
    records: &mut Option<deflated::Frame>,
) -> Result<(), tansu_storage::Error> {
    let first = records
        .as_ref()
        .and_then(|f| f.batches.first())
        .map(|b| b.base_offset);
    if offset >= end || first.is_some_and(|base| base <= offset) {
        return Ok(());
    }
    let mut back: i64 = 1;
    loop {
        let from = (offset - back).max(0);
        let found = storage
            .fetch(tp, from, 1, 1 << 20, IsolationLevel::ReadUncommitted)
            .await?;
        if found.first().is_some_and(|b| b.base_offset <= offset) {
            let holding = found.into_iter().find(|b| {
                let last = b.base_offset + i64::from(b.last_offset_delta);
                b.base_offset <= offset && offset <= last && last < end
            });
            if let Some(batch) = holding {
                match records {
                    Some(frame) => frame.batches.insert(0, batch),
                    None => {
                        *records = Some(deflated::Frame {
                            batches: vec![batch],
                        })
                    }
                }
            }
            return Ok(());
        }
        if from == 0 {
            return Ok(());
        }
        back *= 2;
    }
}

/// The aborted transactions whose records are among `batches`: a transactional producer's
/// records run from its first batch to its control marker, which may lie further on in the
/// log (up to `end`), so the log is read on until every open transaction's marker is found.
async fn aborted<G: Storage>(
    storage: &G,
    tp: &Topition,
    batches: &[deflated::Batch],
    end: i64,
) -> Result<Vec<AbortedTransaction>, tansu_storage::Error> {
    let mut open: std::collections::BTreeMap<i64, i64> = std::collections::BTreeMap::new();
    let mut found = Vec::new();
    let mut visit = |batch: &deflated::Batch,
                     open: &mut std::collections::BTreeMap<i64, i64>,
                     scanning: bool|
     -> Result<(), tansu_storage::Error> {
        let attributes = BatchAttribute::try_from(batch.attributes)?;
        if !attributes.transaction {
            return Ok(());
        }
        if !attributes.control {
            if !scanning {
                open.entry(batch.producer_id).or_insert(batch.base_offset);
            }
            return Ok(());
        }
        let Some(first) = open.remove(&batch.producer_id) else {
            return Ok(());
        };
        let inflated = inflated::Batch::try_from(batch)?;
        let abort = inflated
            .records
            .first()
            .and_then(|r| r.key.clone())
            .map(ControlBatch::try_from)
            .transpose()?
            .is_some_and(|c| c.is_abort());
        if abort {
            found.push(
                AbortedTransaction::default()
                    .producer_id(batch.producer_id)
                    .first_offset(first),
            );
        }
        Ok(())
    };
    let mut next = 0;
    for batch in batches {
        visit(batch, &mut open, false)?;
        next = batch.base_offset + i64::from(batch.last_offset_delta) + 1;
    }
    while !open.is_empty() && next < end {
        let more = storage
            .fetch(tp, next, 1, 1 << 20, IsolationLevel::ReadUncommitted)
            .await?;
        let Some(last) = more.last() else { break };
        let after = last.base_offset + i64::from(last.last_offset_delta) + 1;
        if after <= next {
            break;
        }
        for batch in &more {
            visit(batch, &mut open, true)?;
        }
        next = after;
    }
    Ok(found)
}

/// What the command line asks for.
struct Options {
    listen: SocketAddr,
    advertise: String,
    topics: Vec<(String, i32)>,
    users: BTreeMap<String, String>,
}

const USAGE: &str = "usage: strom-kafka-broker (--port N | --listen ADDR:PORT) [--advertise HOST:PORT] [--topic NAME:PARTITIONS]... [--user NAME:PASSWORD]...";

fn options() -> Result<Options, Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut listen, mut advertise, mut topics) = (None, None, Vec::new());
    let mut users = BTreeMap::new();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(USAGE)?;
        match flag.as_str() {
            "--port" => listen = Some(SocketAddr::from(([127, 0, 0, 1], value.parse()?))),
            "--listen" => {
                listen = Some(
                    value
                        .parse()
                        .map_err(|e| format!("--listen {value:?}: {e} (ADDR:PORT)"))?,
                );
            }
            "--advertise" => advertise = Some(value),
            "--topic" => {
                let (name, partitions) = value
                    .rsplit_once(':')
                    .ok_or_else(|| format!("--topic {value:?}: write NAME:PARTITIONS"))?;
                let partitions: i32 = partitions
                    .parse()
                    .map_err(|e| format!("--topic {value:?}: partitions: {e}"))?;
                if name.is_empty() || partitions < 1 {
                    return Err(
                        format!("--topic {value:?}: a name and at least one partition").into(),
                    );
                }
                topics.push((name.to_owned(), partitions));
            }
            "--user" => {
                let (name, password) = value
                    .split_once(':')
                    .ok_or_else(|| format!("--user {value:?}: write NAME:PASSWORD"))?;
                users.insert(name.to_owned(), password.to_owned());
            }
            _ => return Err(format!("unknown option {flag:?}; {USAGE}").into()),
        }
    }
    let listen = listen.ok_or(USAGE)?;
    Ok(Options {
        advertise: advertise.unwrap_or_else(|| listen.to_string()),
        listen,
        topics,
        users,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = options()?;
    let cluster_id = "strom-test";
    let advertised = Url::parse(&format!("tcp://{}", options.advertise))?;
    let storage = StorageContainer::builder()
        .cluster_id(cluster_id)
        .node_id(111)
        .advertised_listener(advertised)
        .storage(Url::parse("memory://tansu/")?)
        .cancellation(tokio_util::sync::CancellationToken::new())
        .silent(true)
        .build()
        .await?;
    storage
        .register_broker(BrokerRegistrationRequest {
            broker_id: 111,
            cluster_id: cluster_id.into(),
            incarnation_id: uuid::Uuid::new_v4(),
            rack: None,
        })
        .await?;
    for (name, partitions) in &options.topics {
        storage
            .create_topic(
                CreatableTopic::default()
                    .name(name.clone())
                    .num_partitions(*partitions)
                    .replication_factor(1)
                    .assignments(Some([].into()))
                    .configs(Some([].into())),
                false,
            )
            .await?;
    }
    let groups = Controller::with_storage(storage.clone())?;
    let sasl = if options.users.is_empty() {
        None
    } else {
        Some(
            rsasl::config::SASLConfig::builder()
                .with_defaults()
                .with_callback(users::Users(options.users.clone()))?,
        )
    };
    let listener = tokio::net::TcpListener::bind(options.listen).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let st = storage.clone();
        let st2 = st.clone();
        let st3 = st.clone();
        // tansu's storage routes, but for ListOffsets and Fetch (replaced below).
        let routes = [
            storage::add_offsets_to_txn,
            storage::add_partitions_to_txn,
            storage::alter_user_scram_credentials,
            storage::consumer_group_describe,
            storage::create_acls,
            storage::create_topics,
            storage::delete_groups,
            storage::delete_records,
            storage::delete_topics,
            storage::describe_acls,
            storage::describe_cluster,
            storage::describe_configs,
            storage::describe_groups,
            storage::describe_topic_partitions,
            storage::describe_user_scram_credentials,
            storage::find_coordinator,
            storage::get_telemetry_subscriptions,
            storage::incremental_alter_configs,
            storage::init_producer_id,
            storage::list_groups,
            storage::list_partition_reassignments,
            storage::metadata,
            storage::produce,
            storage::txn_offset_commit_request,
        ]
        .iter()
        .try_fold(
            FrameRouteService::<(), tansu_broker::Error>::builder(),
            |builder, service| service(builder, st.clone()),
        )?
        .with_route(
            ListOffsetsRequest::KEY,
            (
                MapErrLayer::new(tansu_broker::Error::from),
                MapStateLayer::new(move |_| st2),
                FrameRequestLayer::<ListOffsetsRequest>::new(),
            )
                .into_layer(ListOffsetsService)
                .boxed(),
        )?
        .with_route(
            FetchRequest::KEY,
            (
                MapErrLayer::new(tansu_broker::Error::from),
                MapStateLayer::new(move |_| st3),
                FrameRequestLayer::<FetchRequest>::new(),
            )
                .into_layer(FetchService)
                .boxed(),
        )?
        .with_route(
            EndTxnRequest::KEY,
            (
                MapErrLayer::new(tansu_broker::Error::from),
                MapStateLayer::new(move |_| st),
                FrameRequestLayer::<EndTxnRequest>::new(),
            )
                .into_layer(EndTxnService)
                .boxed(),
        )?;
        let routes = coordinator::services(routes, groups.clone())?;
        let route = auth::services(routes)?.build()?;
        let service = (
            TcpContextLayer::new(TcpContext::default().cluster_id(Some(cluster_id.into()))),
            TcpBytesLayer::default(),
            BytesFrameLayer::default().with_sasl_config(sasl.clone()),
        )
            .into_layer(route);
        tokio::spawn(async move {
            let _ = service.serve(Context::default(), stream).await;
        });
    }
}
