//! Snapshot write and read throughput through Strom's storage layer, for each backend: a
//! 1 GiB state as the engine lays it out (one file per operator subtask, written and read
//! several at a time, multipart above 16 MiB, manifest committed last), against moto (S3),
//! azurite (Azure Blob), the GCS fake and a local directory on this machine.
//!
//! `cargo run --release -p strom-testkit --bin strom-storage-bench -- [--gib 1] [--files 16]
//! [--runs 3] [--backends s3,azure,gcs,file]`
//!
//! The emulators are local processes, so the figures measure Strom's client path plus the
//! emulator, not a cloud's network; they are for comparing backends and catching
//! regressions.

use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use strom_storage::layout::{CheckpointDir, data_dir};
use strom_storage::{Location, StorageOptions, block_on};
use strom_testkit::emulators::fake_gcs::FakeGcs;
use strom_testkit::emulators::{Azurite, Emulator, Moto, noise};

#[derive(Parser)]
struct Args {
    /// State size in GiB.
    #[arg(long, default_value_t = 1.0)]
    gib: f64,
    /// Number of state files (operator subtasks).
    #[arg(long, default_value_t = 16)]
    files: usize,
    /// Repetitions per backend (the best and the median are printed).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Backends to measure.
    #[arg(long, value_delimiter = ',', default_value = "s3,azure,gcs,file")]
    backends: Vec<String>,
}

/// Files written or read at once, as the engine does.
const CONCURRENCY: usize = 8;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let total = (args.gib * 1024.0 * 1024.0 * 1024.0) as usize;
    let per_file = total / args.files.max(1);
    let files: Vec<Bytes> = (0..args.files)
        .map(|i| noise(per_file, i as u64 + 1))
        .collect();
    let mb = (per_file * files.len()) as f64 / 1e6;
    println!(
        "snapshot of {:.0} MB in {} files of {:.1} MB; {} runs per backend",
        mb,
        files.len(),
        per_file as f64 / 1e6,
        args.runs
    );
    println!(
        "{:<28} {:>12} {:>12} {:>12} {:>12}",
        "backend", "write MB/s", "(median)", "read MB/s", "(median)"
    );
    for backend in &args.backends {
        let (location, _keep) = open(backend)?;
        let mut writes = Vec::new();
        let mut reads = Vec::new();
        for run in 1..=args.runs {
            let dir = CheckpointDir::new(location.clone());
            let claim = block_on(dir.claim(0, None, "bench"))?;
            let id = claim.first_checkpoint;
            let names: Vec<String> = (0..files.len())
                .map(|i| format!("chk-{id}/{}/op/{i}.state", data_dir(claim.attempt)))
                .collect();
            let started = Instant::now();
            block_on(
                futures::stream::iter(names.iter().zip(&files))
                    .map(|(n, b)| location.put(n, b.clone()))
                    .buffer_unordered(CONCURRENCY)
                    .try_collect::<Vec<()>>(),
            )?;
            let manifest =
                serde_json::json!({"id": id, "attempt": claim.attempt, "completedMs": 0});
            block_on(dir.commit(id, claim.attempt, manifest.to_string().into()))?;
            writes.push(mb / started.elapsed().as_secs_f64());

            let started = Instant::now();
            let back: Vec<Option<Bytes>> = block_on(
                futures::stream::iter(&names)
                    .map(|n| location.get(n))
                    .buffered(CONCURRENCY)
                    .try_collect(),
            )?;
            let elapsed = started.elapsed();
            for (b, want) in back.iter().zip(&files) {
                let b = b.as_ref().context("a state file vanished")?;
                anyhow::ensure!(
                    b.len() == want.len() && b == want,
                    "a state file came back different"
                );
            }
            reads.push(mb / elapsed.as_secs_f64());
            block_on(strom_storage::layout::discard(
                &location,
                &format!("chk-{id}"),
            ))?;
            eprintln!(
                "  {backend} run {run}: write {:.0} MB/s, read {:.0} MB/s",
                writes[run - 1],
                reads[run - 1]
            );
        }
        let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        println!(
            "{:<28} {:>12.0} {:>12.0} {:>12.0} {:>12.0}",
            describe(backend),
            best(&writes),
            median(&mut writes),
            best(&reads),
            median(&mut reads)
        );
    }
    Ok(())
}

fn describe(backend: &str) -> &'static str {
    match backend {
        "s3" => "s3:// (moto 5.1)",
        "azure" => "az:// (azurite 3.35)",
        "gcs" => "gs:// (Strom's GCS fake)",
        _ => "file:// (local disk)",
    }
}

/// A location in a fresh store of `backend`, and what keeps the store running.
fn open(backend: &str) -> anyhow::Result<(Location, Box<dyn std::any::Any>)> {
    Ok(match backend {
        "s3" => {
            let m = Moto::start()?;
            m.create_bucket("bench")?;
            (
                m.location("bench", "checkpoints", &StorageOptions::new())?,
                Box::new(m),
            )
        }
        "azure" => {
            let a = Azurite::start()?;
            a.create_container("bench")?;
            (
                a.location("bench", "checkpoints", &StorageOptions::new())?,
                Box::new(a),
            )
        }
        "gcs" => {
            let g = FakeGcs::start()?;
            g.create_bucket("bench");
            (
                g.location("bench", "checkpoints", &StorageOptions::new())?,
                Box::new(g),
            )
        }
        "file" => {
            let dir =
                std::env::temp_dir().join(format!("strom-storage-bench-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let guard = RemoveOnDrop(dir.clone());
            (
                Location::open(
                    dir.to_str().context("temp dir path")?,
                    &StorageOptions::new(),
                )?,
                Box::new(guard),
            )
        }
        other => anyhow::bail!("no backend {other} (s3, azure, gcs, file)"),
    })
}

struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
