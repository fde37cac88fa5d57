//! Object-store emulators on 127.0.0.1 for the storage tests and benchmark, all installed
//! from the package registries by `scripts/install-tools.sh`:
//!
//! - S3: `moto` in server mode (PyPI), in `target/tools/moto-venv`;
//! - Azure Blob: `azurite` (npm), in `target/tools/azurite`, with `--disableTelemetry`;
//! - GCS: [`fake_gcs::FakeGcs`], a fake of the XML API kept in this crate (no emulator in the
//!   registries speaks it).
//!
//! Each hands out [`strom_storage::Location`]s configured for it, so tests and the benchmark
//! run Strom's real storage code against real HTTP servers.

pub mod fake_gcs;

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use strom_storage::{Location, StorageOptions};

pub use crate::tools_dir;

fn free_port() -> anyhow::Result<u16> {
    Ok(crate::free_port()?)
}

pub(crate) fn wait_for_port(port: u16, child: &mut Child, what: &str) -> anyhow::Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited ({status}) before it listened on {port}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{what} did not listen on {port} within 60 s")
}

pub(crate) fn executable(relative: &str, install_hint: &str) -> anyhow::Result<PathBuf> {
    let path = tools_dir().join(relative);
    if !path.exists() {
        bail!(
            "{} is not installed; run scripts/install-tools.sh ({install_hint})",
            path.display()
        );
    }
    Ok(path)
}

/// A child process killed (with its process group) when dropped.
pub(crate) struct Process {
    pub(crate) child: Child,
}

impl Process {
    pub(crate) fn spawn(mut command: Command) -> anyhow::Result<Process> {
        use std::os::unix::process::CommandExt;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        Ok(Process {
            child: command.spawn()?,
        })
    }

    pub(crate) fn signal(&self, signal: nix::sys::signal::Signal) {
        let pgid = nix::unistd::Pid::from_raw(-(self.child.id() as i32));
        let _ = nix::sys::signal::kill(pgid, signal);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.signal(nix::sys::signal::Signal::SIGCONT);
        self.signal(nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// `moto_server` on a free port: an S3 API (path-style, plain HTTP, no signature checks).
pub struct Moto {
    process: Process,
    port: u16,
}

impl Moto {
    /// Starts it.
    pub fn start() -> anyhow::Result<Moto> {
        let exe = executable("moto-venv/bin/moto_server", "pip install moto[server]")?;
        let port = free_port()?;
        let mut command = Command::new(exe);
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        let mut process = Process::spawn(command).context("starting moto_server")?;
        wait_for_port(port, &mut process.child, "moto_server")?;
        Ok(Moto { process, port })
    }

    /// Its endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Makes a bucket (moto accepts unsigned requests).
    pub fn create_bucket(&self, name: &str) -> anyhow::Result<()> {
        let url = format!("{}/{name}", self.endpoint());
        ureq::put(&url)
            .send_empty()
            .with_context(|| format!("creating bucket {name} in moto"))?;
        Ok(())
    }

    fn s3_options(&self) -> StorageOptions {
        StorageOptions::new()
            .with("endpoint", &self.endpoint())
            .with("allow_http", "true")
            .with("path_style", "true")
            .with("region", "us-east-1")
            .with("aws_access_key_id", "strom-test")
            .with("aws_secret_access_key", "strom-test-secret")
            .with("aws_copy_if_not_exists", "multipart")
    }
}

/// The well-known key of Azurite's `devstoreaccount1`.
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// Azurite's account.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";

/// `azurite-blob` on a free port, with data in a temporary directory.
pub struct Azurite {
    process: Process,
    port: u16,
    _dir: tempdir::TempDir,
}

mod tempdir {
    /// A directory removed on drop.
    pub struct TempDir(pub std::path::PathBuf);
    impl TempDir {
        pub fn new(tag: &str) -> std::io::Result<TempDir> {
            let dir = std::env::temp_dir().join(format!(
                "strom-{tag}-{}-{}",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ));
            std::fs::create_dir_all(&dir)?;
            Ok(TempDir(dir))
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Azurite {
    /// Starts it.
    pub fn start() -> anyhow::Result<Azurite> {
        let exe = executable(
            "azurite/node_modules/.bin/azurite-blob",
            "npm install azurite",
        )?;
        let dir = tempdir::TempDir::new("azurite")?;
        let port = free_port()?;
        let mut command = Command::new(exe);
        command.args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--location",
            &dir.0.display().to_string(),
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--silent",
        ]);
        let mut process = Process::spawn(command).context("starting azurite-blob")?;
        wait_for_port(port, &mut process.child, "azurite-blob")?;
        Ok(Azurite {
            process,
            port,
            _dir: dir,
        })
    }

    /// The account endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{AZURITE_ACCOUNT}", self.port)
    }

    /// Makes a container, with a Shared Key–signed request (object_store cannot).
    pub fn create_container(&self, name: &str) -> anyhow::Result<()> {
        // A freshly started azurite sometimes resets the first connections (seen when two
        // start at once on two cores): a few tries before giving up.
        let mut tries = 0;
        loop {
            match self.try_create_container(name) {
                Err(e) if tries < 5 && e.to_string().contains("io:") => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(300));
                }
                other => return other,
            }
        }
    }

    fn try_create_container(&self, name: &str) -> anyhow::Result<()> {
        use base64::Engine;
        let date = jiff::fmt::rfc2822::DateTimePrinter::new()
            .timestamp_to_rfc9110_string(&jiff::Timestamp::now())?;
        let version = "2021-08-06";
        let to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{name}\nrestype:container"
        );
        let key = base64::engine::general_purpose::STANDARD.decode(AZURITE_KEY)?;
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
        let signature = base64::engine::general_purpose::STANDARD
            .encode(ring::hmac::sign(&key, to_sign.as_bytes()).as_ref());
        let url = format!("{}/{name}?restype=container", self.endpoint());
        let response = ureq::put(&url)
            .header("x-ms-date", &date)
            .header("x-ms-version", version)
            .header("Content-Length", "0")
            .header(
                "Authorization",
                &format!("SharedKey {AZURITE_ACCOUNT}:{signature}"),
            )
            .config()
            .http_status_as_error(false)
            .build()
            .send_empty()?;
        let status = response.status().as_u16();
        if status != 201 && status != 409 {
            let body = response.into_body().read_to_string().unwrap_or_default();
            bail!("creating container {name} in azurite: HTTP {status}: {body}");
        }
        Ok(())
    }

    fn az_options(&self) -> StorageOptions {
        StorageOptions::new()
            .with("endpoint", &self.endpoint())
            .with("allow_http", "true")
            .with("azure_storage_account_name", AZURITE_ACCOUNT)
            .with("azure_storage_account_key", AZURITE_KEY)
    }
}

impl fake_gcs::FakeGcs {
    fn gs_options(&self) -> StorageOptions {
        StorageOptions::new()
            .with("endpoint", &self.endpoint())
            .with("allow_http", "true")
    }
}

/// What every store here offers the tests and the benchmark.
pub trait Emulator {
    /// The URL scheme of its locations.
    const SCHEME: &'static str;

    /// Options to reach it, credentials included.
    fn options(&self) -> StorageOptions;

    /// A location `<scheme>://bucket/prefix` in it, with `extra` options on top.
    fn location(
        &self,
        bucket: &str,
        prefix: &str,
        extra: &StorageOptions,
    ) -> anyhow::Result<Location> {
        let mut options = self.options();
        for (k, v) in extra.iter() {
            options = options.with(k, v);
        }
        Ok(Location::open(
            &format!("{}://{bucket}/{prefix}", Self::SCHEME),
            &options,
        )?)
    }
}

impl Emulator for Moto {
    const SCHEME: &'static str = "s3";
    fn options(&self) -> StorageOptions {
        self.s3_options()
    }
}

impl Emulator for Azurite {
    const SCHEME: &'static str = "az";
    fn options(&self) -> StorageOptions {
        self.az_options()
    }
}

impl Emulator for fake_gcs::FakeGcs {
    const SCHEME: &'static str = "gs";
    fn options(&self) -> StorageOptions {
        self.gs_options()
    }
}

/// A process that can be frozen (SIGSTOP: connections hang, as with a stalled store) and
/// thawed.
pub trait Freezable {
    /// Freezes it.
    fn pause(&self);
    /// Thaws it.
    fn resume(&self);
}

impl Freezable for Process {
    fn pause(&self) {
        self.signal(nix::sys::signal::Signal::SIGSTOP);
    }
    fn resume(&self) {
        self.signal(nix::sys::signal::Signal::SIGCONT);
    }
}

impl Freezable for Moto {
    fn pause(&self) {
        self.process.pause();
    }
    fn resume(&self) {
        self.process.resume();
    }
}

impl Freezable for Azurite {
    fn pause(&self) {
        self.process.pause();
    }
    fn resume(&self) {
        self.process.resume();
    }
}

/// Bytes that do not compress and are cheap to make (state for tests and benchmarks).
pub fn noise(len: usize, seed: u64) -> bytes::Bytes {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out.into()
}
