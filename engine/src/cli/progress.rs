//! A running job as `strom-engine run` shows it: a line of counters refreshed every second
//! on a terminal; nothing in a pod's log.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::control::JobView;
use crate::runtime::{Running, summary};

/// Waits for `running` to finish, showing its progress on a terminal.
pub fn follow(running: &Running) {
    let live = std::io::stderr().is_terminal();
    let mut last = (0u64, 0u64);
    while !running.is_finished() {
        std::thread::sleep(Duration::from_millis(if live { 1000 } else { 100 }));
        if live && !running.is_finished() {
            let s = summary(&running.metrics, running.started.elapsed());
            let watermark = running
                .metrics
                .iter()
                .filter(|m| !m.vertex.starts_with("source:"))
                .map(|m| m.watermark.load(Ordering::Relaxed))
                .min()
                .unwrap_or(i64::MIN);
            let wm = if watermark == i64::MIN {
                "-".to_owned()
            } else if watermark == i64::MAX {
                "end".to_owned()
            } else {
                watermark.to_string()
            };
            let checkpoint = match running.checkpoints.completed.load(Ordering::Relaxed) {
                0 => String::new(),
                n => format!("  checkpoint {n}"),
            };
            eprint!(
                "\r{:>6.1}s  in {:>12} ({:>10}/s)  out {:>12} ({:>10}/s)  late {:>8}  watermark {wm}{checkpoint}   ",
                s.elapsed.as_secs_f64(),
                s.records_in,
                s.records_in - last.0,
                s.records_out,
                s.records_out - last.1,
                s.late_records
            );
            last = (s.records_in, s.records_out);
        }
    }
    if live {
        eprintln!();
    }
}

/// Where the newest savepoint went, for the last line of a stopped job.
pub fn last_savepoint(view: &JobView) -> String {
    view.checkpoints()
        .history
        .iter()
        .rev()
        .find(|h| h.kind == strom_protocol::SnapshotKind::Savepoint)
        .map(|h| format!("; savepoint {}", h.location))
        .unwrap_or_default()
}
