//! `--kafka`: a round's job reads its inputs from topics and writes its output to a topic
//! exactly once; the judge is a `read_committed` reader of that topic.
//!
//! Each round has topics of its own (`<round>-<input>`, one partition: Flink's single
//! reader order decides which rows are late; `<round>-out`, four partitions, written with
//! the fixed partitioner) and transactional ids of its own (`<round>-<subtask>-<slot>`).

use std::path::Path;
use std::time::Duration;

use strom_engine::io::kafka::topics;
use strom_engine::spec::JobSpec;

/// Where a round's output goes and how it is read back.
pub struct KafkaOutput {
    pub bootstrap: String,
    pub topic: String,
}

/// Moves the file sources and the file sink of `spec` onto topics named after `round`,
/// fills the input topics from the case's files, and creates the output topic.
pub fn onto_topics(
    spec: &mut JobSpec,
    bootstrap: &str,
    round: &str,
) -> Result<KafkaOutput, String> {
    let e = |e: strom_engine::Error| e.to_string();
    for s in &mut spec.sources {
        let Some(file) = s.file.take() else { continue };
        let path = Path::new(&file.path);
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| format!("{}: no file name", file.path))?;
        let topic = format!("{round}-{stem}");
        topics::create_topic(bootstrap, &topic, 1).map_err(e)?;
        let rows = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", file.path))?;
        topics::produce(bootstrap, &topic, Some(0), rows.lines()).map_err(e)?;
        s.kafka = Some(
            serde_json::from_value(serde_json::json!({
                "bootstrap_servers": bootstrap,
                "topics": [topic],
                "format": "csv",
                "bounded": true,
            }))
            .map_err(|e| e.to_string())?,
        );
    }
    let topic = format!("{round}-out");
    topics::create_topic(bootstrap, &topic, 4).map_err(e)?;
    for s in &mut spec.sinks {
        if s.file.take().is_none() {
            continue;
        }
        s.kafka = Some(
            serde_json::from_value(serde_json::json!({
                "bootstrap_servers": bootstrap,
                "topic": topic,
                "format": "csv",
                "delivery": "exactly-once",
                "partitioner": "fixed",
                "transactional_id_prefix": round,
            }))
            .map_err(|e| e.to_string())?,
        );
    }
    Ok(KafkaOutput {
        bootstrap: bootstrap.to_owned(),
        topic,
    })
}

impl KafkaOutput {
    /// The rows a `read_committed` reader gets. A transaction left open (neither committed
    /// nor fenced by the restored run) holds the reader back: that is a failure too.
    pub fn rows(&self) -> Result<Vec<String>, String> {
        let read = topics::read_committed(&self.bootstrap, &self.topic, Duration::from_secs(60))
            .map_err(|e| e.to_string())?;
        read.into_values()
            .flatten()
            .map(|v| String::from_utf8(v).map_err(|e| format!("{}: {e}", self.topic)))
            .collect()
    }
}
