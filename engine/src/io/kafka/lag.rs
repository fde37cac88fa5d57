//! How far behind its partitions a Kafka reader is: the end of each partition (the high
//! watermark, or the last stable offset for `read_committed`) as librdkafka's statistics
//! report it once a second from its fetches — no extra request to the brokers — against
//! the reader's next offset.

use std::collections::HashMap;
use std::sync::Mutex;

use rdkafka::ClientContext;
use rdkafka::consumer::ConsumerContext;

/// How often a reader's client reports the ends of its partitions.
pub const STATISTICS_MS: &str = "1000";

/// A consumer's context that keeps the partition ends from its statistics.
#[derive(Default)]
pub struct Ends {
    /// Read up to the last stable offset (`isolation.level=read_committed`).
    committed: bool,
    ends: Mutex<HashMap<(String, i32), i64>>,
}

impl Ends {
    /// For a consumer that reads committed records only, or every record.
    pub fn new(read_committed: bool) -> Ends {
        Ends {
            committed: read_committed,
            ends: Mutex::default(),
        }
    }

    /// The end of `topic`'s `partition`, once reported.
    pub fn end(&self, topic: &str, partition: i32) -> Option<i64> {
        self.ends
            .lock()
            .expect("ends")
            .get(&(topic.to_owned(), partition))
            .copied()
    }
}

impl ClientContext for Ends {
    fn stats_raw(&self, statistics: &[u8]) {
        let found = ends_in_statistics(statistics, self.committed);
        if !found.is_empty() {
            self.ends.lock().expect("ends").extend(found);
        }
    }
}

impl ConsumerContext for Ends {}

/// The partition ends in librdkafka's statistics: `topics.<t>.partitions.<p>.hi_offset`
/// (`ls_offset` when reading committed); unknown ones (negative) and librdkafka's internal
/// partition (-1) left out.
pub fn ends_in_statistics(json: &[u8], committed: bool) -> Vec<((String, i32), i64)> {
    #[derive(serde::Deserialize)]
    struct Stats {
        #[serde(default)]
        topics: HashMap<String, Topic>,
    }
    #[derive(serde::Deserialize)]
    struct Topic {
        #[serde(default)]
        partitions: HashMap<String, Partition>,
    }
    #[derive(serde::Deserialize)]
    struct Partition {
        partition: i32,
        hi_offset: i64,
        ls_offset: i64,
    }
    let Ok(stats) = serde_json::from_slice::<Stats>(json) else {
        return Vec::new();
    };
    stats
        .topics
        .into_iter()
        .flat_map(|(topic, t)| {
            t.partitions.into_values().filter_map(move |p| {
                let end = if committed { p.ls_offset } else { p.hi_offset };
                (p.partition >= 0 && end >= 0).then(|| ((topic.clone(), p.partition), end))
            })
        })
        .collect()
}

#[allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_ends_are_read_from_librdkafkas_statistics() {
        let json = br#"{"name": "c", "topics": {"orders": {"topic": "orders", "partitions": {
            "0": {"partition": 0, "hi_offset": 120, "ls_offset": 100, "app_offset": 90},
            "1": {"partition": 1, "hi_offset": -1001, "ls_offset": -1001},
            "-1": {"partition": -1, "hi_offset": -1001, "ls_offset": -1001}}}}}"#;
        let mut all = ends_in_statistics(json, false);
        all.sort();
        assert_eq!(all, vec![(("orders".to_owned(), 0), 120)]);
        assert_eq!(
            ends_in_statistics(json, true),
            vec![(("orders".to_owned(), 0), 100)]
        );
        assert!(ends_in_statistics(b"{\"name\": \"c\"}", false).is_empty());
    }
}
