//! Whole topics, for Strom's tools and tests rather than for jobs: creating a topic,
//! writing values to it, and reading everything a `read_committed` consumer sees — what
//! the Kafka benchmark, the kill-and-restore driver (`strom-chaos --kafka`) and the Kafka
//! tests put in and check.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::Error;

fn kafka(what: &str) -> impl Fn(rdkafka::error::KafkaError) -> Error + '_ {
    move |e| Error::Kafka(format!("{what}: {e}"))
}

/// Creates `topic` with `partitions` partitions (replication 1).
pub fn create_topic(bootstrap: &str, topic: &str, partitions: i32) -> Result<(), Error> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(kafka("creating an admin client"))?;
    let created = futures::executor::block_on(admin.create_topics(
        [&NewTopic::new(
            topic,
            partitions,
            TopicReplication::Fixed(1),
        )],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
    ))
    .map_err(kafka("creating a topic"))?;
    for r in created {
        if let Err((name, code)) = r {
            return Err(Error::Kafka(format!("creating topic {name}: {code}")));
        }
    }
    Ok(())
}

/// Writes `values` to `topic` (keyless: spread over its partitions; with `partition`: all
/// into that one), waiting until every one is acknowledged; returns the bytes written.
pub fn produce(
    bootstrap: &str,
    topic: &str,
    partition: Option<i32>,
    values: impl IntoIterator<Item = impl AsRef<[u8]>>,
) -> Result<u64, Error> {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .map_err(kafka("creating a producer"))?;
    let mut bytes = 0;
    for v in values {
        let value = v.as_ref();
        bytes += value.len() as u64;
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).payload(value);
        if let Some(p) = partition {
            record = record.partition(p);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    // The local queue is full: wait for deliveries.
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
    producer
        .flush(Duration::from_secs(600))
        .map_err(kafka("flushing the producer"))?;
    Ok(bytes)
}

/// Every record of `topic` a `read_committed` reader sees, by partition in offset order,
/// reading up to the end each partition had when called (within `within`).
pub fn read_committed(
    bootstrap: &str,
    topic: &str,
    within: Duration,
) -> Result<BTreeMap<i32, Vec<Vec<u8>>>, Error> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "strom-topic-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .map_err(kafka("creating a consumer"))?;
    let meta = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .map_err(kafka("reading the topic's metadata"))?;
    let Some(t) = meta.topics().iter().find(|t| t.name() == topic) else {
        return Err(Error::Kafka(format!("topic {topic} does not exist")));
    };
    let mut ends = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in t.partitions() {
        let (_, high) = consumer
            .fetch_watermarks(topic, p.id(), Duration::from_secs(30))
            .map_err(kafka("reading the partition's end"))?;
        ends.insert(p.id(), high);
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
            .map_err(kafka("assigning partitions"))?;
    }
    consumer
        .assign(&tpl)
        .map_err(kafka("assigning partitions"))?;
    let mut out: BTreeMap<i32, Vec<Vec<u8>>> = BTreeMap::new();
    let deadline = Instant::now() + within;
    loop {
        let positions = consumer.position().map_err(kafka("reading positions"))?;
        let done = positions.elements().iter().all(|e| {
            let end = ends.get(&e.partition()).copied().unwrap_or(0);
            end == 0 || matches!(e.offset(), Offset::Offset(o) if o >= end)
        });
        if done {
            return Ok(out);
        }
        if Instant::now() > deadline {
            return Err(Error::Kafka(format!(
                "reading {topic} did not reach the ends {ends:?} within {} s (a transaction \
                 left open holds read_committed readers back)",
                within.as_secs()
            )));
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out
                .entry(m.partition())
                .or_default()
                .push(m.payload().unwrap_or_default().to_vec()),
            Some(Err(e)) => return Err(Error::Kafka(format!("reading {topic}: {e}"))),
            None => {}
        }
    }
}
