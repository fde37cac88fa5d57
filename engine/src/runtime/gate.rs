//! What an operator task's inputs say about time and checkpoints, as one struct: the
//! watermark merged over its input channels (idle channels excluded, as Flink's watermark
//! valve does) and the alignment of checkpoint barriers (as Flink's barrier handler: a
//! channel that has sent the barrier is held back until every channel has sent it or
//! ended). No I/O: the task feeds it messages and acts on what it answers.

use std::time::{Duration, Instant};

use crate::batch::MIN_WATERMARK;

/// The state of an operator task's input channels.
#[derive(Debug)]
pub struct Gate {
    /// Per input, per upstream channel: the highest watermark it sent.
    watermarks: Vec<Vec<i64>>,
    /// Per input, per channel: whether it declared itself idle.
    idle: Vec<Vec<bool>>,
    /// Per input, per channel: whether it sent the barrier being aligned.
    barrier_seen: Vec<Vec<bool>>,
    /// Per input, per channel: whether it ended.
    ended: Vec<Vec<bool>>,
    /// The checkpoint being aligned, and since when.
    aligning: Option<(u64, Instant)>,
    /// The last checkpoint this task completed.
    last_checkpoint: u64,
    /// The merged watermark passed on so far.
    current: i64,
    /// Whether every channel is idle (and so this task is).
    all_idle: bool,
    ended_count: usize,
    total: usize,
}

/// What a watermark or idleness message changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TimeChange {
    /// The task's own idleness changed to this.
    pub idle: Option<bool>,
    /// The merged watermark advanced to this.
    pub watermark: Option<i64>,
}

/// A checkpoint whose barriers have all arrived.
#[derive(Debug, PartialEq, Eq)]
pub struct Aligned {
    /// Its id.
    pub id: u64,
    /// How long the alignment took (from the first barrier).
    pub took: Duration,
}

impl Gate {
    /// A gate over inputs fed by `upstream[i]` channels each.
    pub fn new(upstream: &[usize]) -> Gate {
        let grid = |v| upstream.iter().map(|n| vec![v; *n]).collect::<Vec<_>>();
        Gate {
            watermarks: upstream.iter().map(|n| vec![MIN_WATERMARK; *n]).collect(),
            idle: grid(false),
            barrier_seen: grid(false),
            ended: grid(false),
            aligning: None,
            last_checkpoint: 0,
            current: MIN_WATERMARK,
            all_idle: false,
            ended_count: 0,
            total: upstream.iter().sum(),
        }
    }

    /// Whether a message from `channel` of `input` must wait: that channel already sent
    /// the barrier of the checkpoint being aligned.
    pub fn holds(&self, input: usize, channel: usize) -> bool {
        self.aligning.is_some() && self.barrier_seen[input][channel]
    }

    /// A watermark from a channel.
    pub fn watermark(&mut self, input: usize, channel: usize, w: i64) -> TimeChange {
        let seen = &mut self.watermarks[input][channel];
        *seen = (*seen).max(w);
        self.merge()
    }

    /// A channel became idle (or active again).
    pub fn idleness(&mut self, input: usize, channel: usize, idle: bool) -> TimeChange {
        self.idle[input][channel] = idle;
        self.merge()
    }

    /// The minimum over active channels; nothing moves while every channel is idle.
    fn merge(&mut self) -> TimeChange {
        let combined = self
            .watermarks
            .iter()
            .flatten()
            .zip(self.idle.iter().flatten())
            .filter(|(_, idle)| !**idle)
            .map(|(w, _)| *w)
            .min();
        let mut change = TimeChange::default();
        let every_channel_idle = combined.is_none();
        if every_channel_idle != self.all_idle {
            self.all_idle = every_channel_idle;
            change.idle = Some(every_channel_idle);
        }
        let combined = combined.unwrap_or(self.current);
        if combined > self.current {
            self.current = combined;
            change.watermark = Some(combined);
        }
        change
    }

    /// A barrier from a channel: a newer checkpoint than the one being aligned starts a new
    /// alignment (the older one is abandoned); one already completed is ignored.
    pub fn barrier(&mut self, input: usize, channel: usize, id: u64) {
        if id > self.last_checkpoint && self.aligning.is_none_or(|(a, _)| a < id) {
            self.aligning = Some((id, Instant::now()));
            self.barrier_seen
                .iter_mut()
                .flatten()
                .for_each(|s| *s = false);
        }
        if self.aligning.is_some_and(|(a, _)| a == id) {
            self.barrier_seen[input][channel] = true;
        }
    }

    /// A channel ended.
    pub fn end(&mut self, input: usize, channel: usize) {
        if !self.ended[input][channel] {
            self.ended[input][channel] = true;
            self.ended_count += 1;
        }
    }

    /// The checkpoint being aligned, once every channel has sent its barrier or ended; it
    /// is then the last completed one.
    pub fn aligned(&mut self) -> Option<Aligned> {
        let (id, since) = self.aligning?;
        let done = self
            .barrier_seen
            .iter()
            .flatten()
            .zip(self.ended.iter().flatten())
            .all(|(seen, ended)| *seen || *ended);
        if !done {
            return None;
        }
        self.aligning = None;
        self.last_checkpoint = id;
        Some(Aligned {
            id,
            took: since.elapsed(),
        })
    }

    /// Whether every channel ended and no alignment is under way.
    pub fn finished(&self) -> bool {
        self.ended_count == self.total && self.aligning.is_none()
    }

    /// The merged watermark passed on so far.
    pub fn current(&self) -> i64 {
        self.current
    }

    /// The last checkpoint completed here.
    pub fn last_checkpoint(&self) -> u64 {
        self.last_checkpoint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_is_the_minimum_over_channels_and_only_advances() {
        let mut g = Gate::new(&[2, 1]);
        assert_eq!(
            g.watermark(0, 0, 10).watermark,
            None,
            "two channels still at the minimum"
        );
        assert_eq!(g.watermark(0, 1, 5).watermark, None);
        assert_eq!(g.watermark(1, 0, 7).watermark, Some(5));
        assert_eq!(g.watermark(0, 1, 20).watermark, Some(7));
        // A channel going back in time changes nothing.
        assert_eq!(g.watermark(1, 0, 3), TimeChange::default());
        assert_eq!(g.current(), 7);
    }

    #[test]
    fn idle_channels_do_not_hold_the_watermark_back_and_all_idle_is_reported_once() {
        let mut g = Gate::new(&[2]);
        g.watermark(0, 0, 100);
        let c = g.idleness(0, 1, true);
        assert_eq!(
            c,
            TimeChange {
                idle: None,
                watermark: Some(100)
            }
        );
        let c = g.idleness(0, 0, true);
        assert_eq!(
            c,
            TimeChange {
                idle: Some(true),
                watermark: None
            }
        );
        assert_eq!(g.idleness(0, 0, true), TimeChange::default(), "once");
        let c = g.idleness(0, 1, false);
        assert_eq!(c.idle, Some(false));
        assert_eq!(
            c.watermark, None,
            "the woken channel is behind: time does not go back"
        );
        assert_eq!(g.current(), 100);
    }

    #[test]
    fn a_barrier_holds_its_channel_until_every_channel_sent_it_or_ended() {
        let mut g = Gate::new(&[2, 1]);
        g.barrier(0, 0, 1);
        assert!(g.holds(0, 0) && !g.holds(0, 1) && !g.holds(1, 0));
        assert_eq!(g.aligned(), None);
        g.barrier(0, 1, 1);
        assert_eq!(g.aligned(), None);
        g.end(1, 0);
        let done = g.aligned().expect("aligned");
        assert_eq!(done.id, 1);
        assert_eq!(g.last_checkpoint(), 1);
        assert!(!g.holds(0, 0), "released");
        // A late duplicate of a completed barrier starts nothing.
        g.barrier(0, 0, 1);
        assert!(!g.holds(0, 0));
    }

    #[test]
    fn a_newer_barrier_abandons_the_older_alignment() {
        let mut g = Gate::new(&[2]);
        g.barrier(0, 0, 3);
        g.barrier(0, 1, 4);
        assert!(!g.holds(0, 0), "checkpoint 3 was abandoned");
        assert!(g.holds(0, 1));
        g.barrier(0, 0, 4);
        assert_eq!(g.aligned().map(|a| a.id), Some(4));
    }

    #[test]
    fn the_gate_is_finished_when_every_channel_ended_outside_an_alignment() {
        let mut g = Gate::new(&[1, 1]);
        g.barrier(0, 0, 1);
        g.end(1, 0);
        g.end(1, 0);
        assert!(!g.finished(), "aligning; an end counts once");
        assert!(g.aligned().is_some());
        assert!(!g.finished());
        g.end(0, 0);
        assert!(g.finished());
    }
}
