//! What a Kafka source does with a record it cannot decode (`bad_records`): stop the job
//! naming the record (`fail`), leave it out and count it (`skip`), or write it to the
//! dead-letter topic and count it (`dead-letter`). Never a silent drop.

use arrow::error::ArrowError;

use super::dead_letter::{BadRecord, DeadLetters};
use crate::spec::{BadRecords, KafkaSource};

/// A source subtask's policy, with its counts.
pub struct BadRecordPolicy {
    policy: BadRecords,
    /// Records left out under `skip`.
    skipped: u64,
    /// Under `dead-letter`: where bad records go.
    dead_letters: Option<DeadLetters>,
}

impl BadRecordPolicy {
    /// The policy of source `name` (opening its dead-letter writer, if it has one).
    pub fn open(spec: &KafkaSource, name: &str) -> Result<Self, ArrowError> {
        let policy = spec.bad_records.unwrap_or(BadRecords::Fail);
        let dead_letters = match (policy, &spec.dead_letter_topic) {
            (BadRecords::DeadLetter, Some(topic)) => Some(DeadLetters::open(spec, name, topic)?),
            (BadRecords::DeadLetter, None) => {
                return Err(ArrowError::InvalidArgumentError(format!(
                    "source {name}: bad_records: dead-letter needs dead_letter_topic"
                )));
            }
            _ => None,
        };
        Ok(BadRecordPolicy {
            policy,
            skipped: 0,
            dead_letters,
        })
    }

    /// Whether bad records' keys are needed (they go to the dead-letter topic with them).
    pub fn wants_keys(&self) -> bool {
        self.dead_letters.is_some()
    }

    /// Applies the policy to `bad`: an error under `fail` (or if the dead letter cannot be
    /// handed to the client).
    pub fn refuse(&mut self, bad: &BadRecord<'_>) -> Result<(), ArrowError> {
        match (self.policy, &mut self.dead_letters) {
            (BadRecords::Fail, _) => Err(ArrowError::ParseError(format!(
                "the record at topic {} partition {} offset {} cannot be read: {} (set \
                 bad_records: skip or dead-letter to leave such records out)",
                bad.topic, bad.partition, bad.offset, bad.reason
            ))),
            (BadRecords::DeadLetter, Some(letters)) => letters.send(bad),
            _ => {
                self.skipped += 1;
                Ok(())
            }
        }
    }

    /// Records left out under `skip`.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Records written to the dead-letter topic.
    pub fn dead_lettered(&self) -> u64 {
        self.dead_letters.as_ref().map_or(0, |d| d.written)
    }

    /// Makes sure every dead letter so far is on the brokers: called before a checkpoint
    /// takes the offsets past them.
    pub fn flush(&self) -> Result<(), ArrowError> {
        self.dead_letters
            .as_ref()
            .map_or(Ok(()), DeadLetters::flush)
    }
}
