//! A real Kafka-protocol broker for the tests: `strom-kafka-broker` (tansu's broker from
//! crates.io with the repairs `testkit/kafka-broker` describes, built by
//! `scripts/install-tools.sh` into `target/tools/strom-kafka-broker`), in-memory storage,
//! on a free port. Topics are created, filled and read with the engine's
//! `io::kafka::topics`.
//!
//! Where it falls short of Apache Kafka (docs/engine.md, "Kafka"): concurrent transactions
//! on one partition commit only together, and open transactions are not timed out.

use std::process::Command;

use anyhow::Context;

use crate::emulators::{Process, executable, wait_for_port};

/// The broker binary, installed by `scripts/install-tools.sh` (the local cluster's tests
/// serve it as the `strom/kafka-broker` image).
pub fn broker_binary() -> anyhow::Result<std::path::PathBuf> {
    executable(
        "strom-kafka-broker/bin/strom-kafka-broker",
        "cargo install --path testkit/kafka-broker",
    )
}

/// A tansu broker on 127.0.0.1.
pub struct Broker {
    process: Option<Process>,
    port: u16,
    /// More command-line options (`--topic`, `--user`).
    options: Vec<String>,
}

impl Broker {
    /// Starts one.
    pub fn start() -> anyhow::Result<Broker> {
        Broker::start_on(crate::free_port()?)
    }

    /// Starts one with more of the broker's options: `--topic NAME:PARTITIONS` (made before
    /// the port opens), `--user NAME:PASSWORD` (clients must then authenticate with SASL
    /// SCRAM-SHA-256 or -512).
    pub fn start_with(options: &[&str]) -> anyhow::Result<Broker> {
        Broker::launch(crate::free_port()?, options)
    }

    /// Starts one on `port`.
    pub fn start_on(port: u16) -> anyhow::Result<Broker> {
        Broker::launch(port, &[])
    }

    fn launch(port: u16, options: &[&str]) -> anyhow::Result<Broker> {
        let mut broker = Broker {
            process: None,
            port,
            options: options.iter().map(|o| (*o).to_owned()).collect(),
        };
        broker.resume()?;
        Ok(broker)
    }

    /// Starts the broker again on the same port after [`Broker::stop`] (its memory storage
    /// starts empty).
    pub fn resume(&mut self) -> anyhow::Result<()> {
        let mut command = Command::new(broker_binary()?);
        command.args(["--port", &self.port.to_string()]);
        command.args(&self.options);
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
}
