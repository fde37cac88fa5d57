//! `strom-engine savepoint`: asks a running job for a savepoint through its control
//! endpoint and waits for it; prints where it went.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use strom_protocol::{EngineClient, SavepointState};

/// `strom-engine savepoint`: requests one and waits for it.
pub fn run(endpoint: &str, target: &str, stop: bool, token_file: Option<&Path>) -> ExitCode {
    let mut engine = EngineClient::new(endpoint, Duration::from_secs(10));
    if let Some(path) = token_file {
        match std::fs::read_to_string(path) {
            Ok(token) => engine = engine.with_token(token.trim()),
            Err(e) => {
                eprintln!("error: --token-file {}: {e}", path.display());
                return ExitCode::from(2);
            }
        }
    }
    // A relative local path means the same directory to the job as to us.
    let target = match std::path::absolute(target) {
        Ok(p) if !target.contains("://") => p.display().to_string(),
        _ => target.to_owned(),
    };
    let request = strom_protocol::SavepointRequest { target, stop };
    let started = match engine.request_savepoint(&request) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: the savepoint request was not taken: {e}");
            return ExitCode::from(1);
        }
    };
    eprintln!("savepoint {} requested", started.id);
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let status = match engine.savepoint(&started.id) {
            Ok(s) => s,
            Err(e) if stop && e.is_unreachable() => {
                // The job stopped (and took its endpoint with it) after writing it.
                eprintln!("the job stopped ({e}); see its log for the savepoint's location");
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                eprintln!("error: cannot poll the savepoint: {e}");
                return ExitCode::from(1);
            }
        };
        match (status.status, status.location) {
            (SavepointState::Completed, Some(location)) => {
                println!("{location}");
                return ExitCode::SUCCESS;
            }
            (SavepointState::Completed, None) => {
                eprintln!("error: the engine reports the savepoint complete but not where it is");
                return ExitCode::from(1);
            }
            (SavepointState::Failed, _) => {
                eprintln!(
                    "error: the savepoint failed: {}",
                    status
                        .error
                        .as_deref()
                        .unwrap_or("the engine gave no reason")
                );
                return ExitCode::from(1);
            }
            (SavepointState::InProgress, _) => {}
        }
    }
}
