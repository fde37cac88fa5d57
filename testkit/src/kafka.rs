//! A real Kafka-protocol broker for the tests: `strom-kafka-broker` (tansu's broker from
//! crates.io plus the `EndTxn` request tansu 0.6 leaves unrouted; `testkit/kafka-broker`,
//! built by `scripts/install-tools.sh` into `target/tools/strom-kafka-broker`), in-memory
//! storage, on a free port; and plain librdkafka clients to put records in and read them
//! back.
//!
//! Where it falls short of Apache Kafka (docs/engine.md, "Kafka"): a fetch never lists
//! aborted transactions, so a `read_committed` reader skips only the control markers and
//! delivers an aborted transaction's records once the transaction has ended; and open
//! transactions are not timed out.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

use crate::emulators::{Process, executable, wait_for_port};

/// The broker binary, installed by `scripts/install-tools.sh`.
fn broker_binary() -> anyhow::Result<std::path::PathBuf> {
    executable(
        "strom-kafka-broker/bin/strom-kafka-broker",
        "cargo install --path testkit/kafka-broker",
    )
}

/// A tansu broker on 127.0.0.1.
pub struct Broker {
    process: Option<Process>,
    port: u16,
}

impl Broker {
    /// Starts one.
    pub fn start() -> anyhow::Result<Broker> {
        Broker::start_on(crate::free_port()?)
    }

    /// Starts one on `port`.
    pub fn start_on(port: u16) -> anyhow::Result<Broker> {
        let mut broker = Broker {
            process: None,
            port,
        };
        broker.resume()?;
        Ok(broker)
    }

    /// Starts the broker again on the same port after [`Broker::stop`] (its memory storage
    /// starts empty).
    pub fn resume(&mut self) -> anyhow::Result<()> {
        let mut command = Command::new(broker_binary()?);
        command.args(["--port", &self.port.to_string()]);
        let mut process = Process::spawn(command).context("starting strom-kafka-broker")?;
        wait_for_port(self.port, &mut process.child, "strom-kafka-broker")?;
        self.process = Some(process);
        Ok(())
    }

    /// Stops it (SIGKILL).
    pub fn stop(&mut self) {
        self.process = None;
    }

    /// Pauses it (SIGSTOP): connections stay open and nothing answers.
    pub fn pause(&self) {
        if let Some(p) = &self.process {
            p.signal(nix::sys::signal::Signal::SIGSTOP);
        }
    }

    /// Lets a paused broker go on (SIGCONT).
    pub fn unpause(&self) {
        if let Some(p) = &self.process {
            p.signal(nix::sys::signal::Signal::SIGCONT);
        }
    }

    /// `host:port` for clients.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> anyhow::Result<()> {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .create()
            .context("creating an admin client")?;
        let created = futures::executor::block_on(admin.create_topics(
            [&NewTopic::new(
                topic,
                partitions,
                TopicReplication::Fixed(1),
            )],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        ))
        .context("creating a topic")?;
        for r in created {
            if let Err((name, code)) = r {
                bail!("creating topic {name}: {code}");
            }
        }
        Ok(())
    }

    /// Writes `values` to `topic` (keyless: spread over its partitions; `partition`:
    /// all into that one), waiting until every one is acknowledged.
    pub fn produce(
        &self,
        topic: &str,
        partition: Option<i32>,
        values: impl IntoIterator<Item = impl AsRef<[u8]>>,
    ) -> anyhow::Result<u64> {
        let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("acks", "all")
            .set("linger.ms", "5")
            .create()
            .context("creating a producer")?;
        let mut n = 0;
        for v in values {
            let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).payload(v.as_ref());
            if let Some(p) = partition {
                record = record.partition(p);
            }
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        record = back;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
            n += 1;
        }
        producer
            .flush(Duration::from_secs(60))
            .context("flushing the producer")?;
        Ok(n)
    }

    /// Every record of `topic` a `read_committed` reader sees, by partition in offset
    /// order, reading up to the end each partition had when called.
    pub fn read_committed(&self, topic: &str) -> anyhow::Result<BTreeMap<i32, Vec<Vec<u8>>>> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("group.id", "strom-test-reader")
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()
            .context("creating a consumer")?;
        let meta = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(30))
            .context("reading the topic's metadata")?;
        let Some(t) = meta.topics().iter().find(|t| t.name() == topic) else {
            bail!("topic {topic} does not exist");
        };
        let mut ends = BTreeMap::new();
        let mut tpl = TopicPartitionList::new();
        for p in t.partitions() {
            let (_, high) = consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(30))?;
            ends.insert(p.id(), high);
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)?;
        }
        consumer.assign(&tpl)?;
        let mut out: BTreeMap<i32, Vec<Vec<u8>>> = BTreeMap::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let done = consumer.position()?.elements().iter().all(|e| {
                let end = ends.get(&e.partition()).copied().unwrap_or(0);
                end == 0 || matches!(e.offset(), Offset::Offset(o) if o >= end)
            });
            if done {
                break;
            }
            if Instant::now() > deadline {
                bail!("reading {topic} did not reach the ends {ends:?} within 120 s");
            }
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => out
                    .entry(m.partition())
                    .or_default()
                    .push(m.payload().unwrap_or_default().to_vec()),
                Some(Err(e)) => bail!("reading {topic}: {e}"),
                None => {}
            }
        }
        Ok(out)
    }
}
