//! `strom-engine run`'s snapshot flags as run options: checkpointing, and what to restore —
//! the `--restore` snapshot, or, for a restarted container of a deployment, that
//! deployment's own latest checkpoint.

use crate::Error;
use std::collections::BTreeMap;
use std::time::Duration;

use strom_storage::StorageOptions;

use crate::runtime::RunOptions;
use crate::snapshot::coordinator::CheckpointConfig;
use crate::snapshot::storage::Storage;

/// The snapshot flags of `run`.
#[derive(Debug, Clone, Default)]
pub struct Snapshots {
    /// `--checkpoint-dir`.
    pub checkpoint_dir: Option<String>,
    /// `--checkpoint-interval`.
    pub checkpoint_interval: String,
    /// `--retain-checkpoints`.
    pub retain_checkpoints: usize,
    /// `--restore`.
    pub restore: Option<String>,
    /// `--allow-non-restored-state`.
    pub allow_non_restored_state: bool,
    /// `--storage-option K=V`, as given.
    pub storage_options: Vec<String>,
    /// `--deployment`.
    pub deployment: Option<String>,
}

/// The control endpoint's flags: `--control-token-file`, `--savepoint-dir`.
#[derive(Debug, Default)]
pub struct Control {
    /// `--control-token-file`.
    pub token_file: Option<std::path::PathBuf>,
    /// `--savepoint-dir`.
    pub savepoint_dir: Option<String>,
}

/// The control endpoint's guard as the flags say; the token file must hold a token.
pub fn guard(c: &Control) -> Result<crate::control::Guard, Error> {
    let token = match &c.token_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::Flag(format!("--control-token-file {}: {e}", path.display()))
            })?;
            if text.trim().is_empty() {
                return Err(Error::Flag(format!(
                    "--control-token-file {}: the file is empty",
                    path.display()
                )));
            }
            Some(text)
        }
        None => None,
    };
    Ok(crate::control::Guard::new(token, c.savepoint_dir.clone()))
}

/// The run options and the parsed storage options (the control endpoint opens savepoint
/// targets with them).
#[derive(Default)]
pub struct Setup {
    /// How the job runs.
    pub options: RunOptions,
    /// `--storage-option`s.
    pub storage_options: StorageOptions,
}

/// `--storage-option K=V` pairs.
pub fn storage_options(pairs: &[String]) -> Result<StorageOptions, Error> {
    pairs
        .iter()
        .try_fold(StorageOptions::new(), |o, p| o.parse_pair(p))
        .map_err(|e| Error::Flag(format!("--storage-option: {e}")))
}

/// `--vertex-parallelism ID=N` pairs.
pub fn vertex_parallelism(pairs: &[String]) -> Result<BTreeMap<String, u32>, Error> {
    let mut overrides = BTreeMap::new();
    for pair in pairs {
        match pair.rsplit_once('=').map(|(id, n)| (id, n.parse::<u32>())) {
            Some((id, Ok(n))) if !id.is_empty() => {
                overrides.insert(id.to_owned(), n);
            }
            _ => {
                return Err(Error::Flag(format!(
                    "--vertex-parallelism {pair}: expected ID=N with N a number"
                )));
            }
        }
    }
    Ok(overrides)
}

/// Checkpointing and restore as the flags say.
pub fn setup(s: &Snapshots) -> Result<Setup, Error> {
    let invalid = Error::Flag;
    let storage_options = storage_options(&s.storage_options)?;
    let mut options = RunOptions {
        allow_non_restored_state: s.allow_non_restored_state,
        ..Default::default()
    };
    if let Some(dir) = &s.checkpoint_dir {
        let interval = crate::spec::Duration(s.checkpoint_interval.clone())
            .millis()
            .map_err(|e| invalid(format!("--checkpoint-interval: {e}")))?;
        if interval <= 0 {
            return Err(invalid(
                "--checkpoint-interval: must be greater than zero".into(),
            ));
        }
        options.checkpoints = Some(CheckpointConfig {
            storage: Storage::open_with(dir, &storage_options)
                .map_err(|e| invalid(format!("--checkpoint-dir: {e}")))?,
            interval: Duration::from_millis(interval as u64),
            retain: s.retain_checkpoints.max(1),
        });
    }
    options.deployment = s.deployment.clone();
    let mut restore = s.restore.clone();
    if let (Some(deployment), Some(c)) = (&s.deployment, &options.checkpoints)
        && let Some(own) = c
            .storage
            .latest_of_deployment(deployment)
            .map_err(|e| invalid(format!("--checkpoint-dir: {e}")))?
    {
        let latest = Storage::open_with(&own, &storage_options)
            .and_then(|st| st.latest())
            .map_err(|e| invalid(format!("--checkpoint-dir: {e}")))?;
        if latest.metadata.stopped {
            return Err(Error::Stopped {
                deployment: deployment.clone(),
                at: own,
            });
        }
        eprintln!("deployment {deployment} restarted: resuming from its latest checkpoint {own}");
        restore = Some(own);
        options.restored_latest = true;
    }
    if let Some(url) = &restore {
        let latest = Storage::open_with(url, &storage_options)
            .and_then(|st| st.latest())
            .map_err(|e| invalid(format!("--restore: {e}")))?;
        for skipped in &latest.skipped {
            eprintln!("warning: not restoring from {skipped}");
        }
        eprintln!(
            "restoring from {} ({:?} {})",
            latest.url, latest.metadata.kind, latest.metadata.id
        );
        // A directory given: its newest complete checkpoint was chosen, not named.
        options.restored_latest |= latest.url.trim_end_matches('/') != url.trim_end_matches('/');
        options.restore = Some((latest.metadata, latest.state));
        options.restored_from = Some(latest.url);
    }
    Ok(Setup {
        options,
        storage_options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vertex_parallelism_pairs_name_the_bad_one() {
        let ok = vertex_parallelism(&["source:s=2".into(), "w=3".into()]).unwrap();
        assert_eq!(ok["source:s"], 2);
        assert_eq!(ok["w"], 3);
        for bad in ["w", "=3", "w=x", "w=-1"] {
            let e = vertex_parallelism(&[bad.into()]).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn a_bad_flag_is_named() {
        let s = Snapshots {
            checkpoint_dir: Some("file:///tmp/strom-setup-test".into()),
            checkpoint_interval: "0s".into(),
            ..Default::default()
        };
        let e = setup(&s).err().expect("refused");
        assert!(e.to_string().contains("--checkpoint-interval"), "{e}");
        let s = Snapshots {
            storage_options: vec!["nonsense".into()],
            ..Default::default()
        };
        let e = setup(&s).err().expect("refused");
        assert!(e.to_string().contains("--storage-option"), "{e}");
    }
}
