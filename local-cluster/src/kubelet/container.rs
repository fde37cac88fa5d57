//! One container's life: its process with restarts and probes, its state as the pod status
//! reports it, and its end. The pod around it is `pod.rs`.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{Kubelet, env, probe};
use crate::apiserver::meta;

/// What one container is doing, as the pod status reports it.
#[derive(Debug, Clone)]
pub struct ContainerState {
    /// Container name.
    pub name: String,
    /// Image.
    pub image: String,
    /// `running`, `waiting` or `terminated`, with details, as in the API.
    pub state: Value,
    /// The previous instance's end, after a restart.
    pub last_state: Value,
    /// Readiness (from the readiness probe, or running when there is none).
    pub ready: bool,
    /// Restarts so far.
    pub restart_count: i64,
    /// The running process's id.
    pub pid: Option<i32>,
    /// Whether it will not run again.
    pub done: bool,
    /// Exit code of the last run.
    pub exit_code: Option<i32>,
    /// Where its current log is.
    pub log: PathBuf,
}

/// Sends `signal` to the process group of `pid`. Returns whether it was delivered.
pub fn kill_group(pid: i32, signal: Signal) -> bool {
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), signal).is_ok()
}

pub(super) struct ContainerRunner {
    pub(super) kubelet: Arc<Kubelet>,
    pub(super) pod: Value,
    pub(super) spec: Value,
    pub(super) index: usize,
    pub(super) ip: Ipv4Addr,
    pub(super) dir: PathBuf,
    pub(super) volumes: Vec<(String, PathBuf)>,
    pub(super) states: Arc<Mutex<Vec<ContainerState>>>,
    pub(super) changed: Arc<tokio::sync::Notify>,
    pub(super) stop: CancellationToken,
    pub(super) kill: CancellationToken,
}

pub(super) enum Ended {
    Exited(i32),
    Stopped,
}

impl ContainerRunner {
    pub(super) fn update(&self, f: impl FnOnce(&mut ContainerState)) {
        f(&mut self.states.lock().expect("containers")[self.index]);
        self.changed.notify_one();
    }

    pub(super) fn event(&self, type_: &str, reason: &str, message: &str) {
        crate::apiserver::events::record(
            &self.kubelet.server,
            &self.pod,
            type_,
            reason,
            message,
            "kubelet",
        );
    }

    pub(super) fn executable(&self) -> Result<(PathBuf, Vec<String>), String> {
        let image = self.spec["image"].as_str().unwrap_or_default();
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        };
        let command = strings(&self.spec["command"]);
        let args = strings(&self.spec["args"]);
        let entrypoint = self
            .kubelet
            .images
            .iter()
            .find(|(pattern, _)| image_matches(pattern, image))
            .map(|(_, exe)| exe.clone())
            .ok_or_else(|| format!("image {image:?} is not available on this machine (strom-local maps images to local executables; see `strom-local up --help`)"))?;
        match command.split_first() {
            Some((program, rest)) => {
                let path = which(program)
                    .ok_or_else(|| format!("exec: {program:?}: executable file not found"))?;
                Ok((path, rest.iter().cloned().chain(args).collect()))
            }
            None => Ok((entrypoint, args)),
        }
    }

    pub(super) async fn run(self) {
        let policy = self
            .pod
            .pointer("/spec/restartPolicy")
            .and_then(Value::as_str)
            .unwrap_or("Always")
            .to_owned();
        let (program, args) = match self.executable() {
            Ok(x) => x,
            Err(message) => {
                let reason = if message.contains("not available") {
                    "ErrImagePull"
                } else {
                    "RunContainerError"
                };
                self.update(|c| {
                    c.state = json!({"waiting": {"reason": reason, "message": message}})
                });
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = self.stop.cancelled() => return self.update(|c| c.done = true),
                    _ = self.kill.cancelled() => return self.update(|c| c.done = true),
                }
                self.event("Warning", "Failed", &message);
                if reason == "ErrImagePull" {
                    self.update(|c| c.state = json!({"waiting": {"reason": "ImagePullBackOff", "message": format!("Back-off pulling image: {message}")}}));
                }
                tokio::select! { _ = self.stop.cancelled() => {}, _ = self.kill.cancelled() => {} }
                return self.update(|c| c.done = true);
            }
        };
        let mut restarts = 0i64;
        loop {
            let ended = self.run_once(&program, &args).await;
            let code = match ended {
                Ended::Stopped => return self.update(|c| c.done = true),
                Ended::Exited(code) => code,
            };
            let restart = match policy.as_str() {
                "Never" => false,
                "OnFailure" => code != 0,
                _ => true,
            };
            if !restart {
                return self.update(|c| c.done = true);
            }
            restarts += 1;
            // Back-off: 1 s, doubling, at most 20 s (Kubernetes waits 10 s to 5 min).
            let backoff = Duration::from_secs(1u64 << (restarts - 1).min(4) as u32)
                .min(Duration::from_secs(20));
            let last = self.states.lock().expect("containers")[self.index]
                .state
                .clone();
            self.update(|c| {
                c.restart_count = restarts;
                c.last_state = last;
                if restarts > 1 {
                    c.state = json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off {}s restarting failed container={} pod={}", backoff.as_secs(), c.name, meta::name_of(&self.pod))}});
                }
            });
            if restarts > 1 {
                self.event("Warning", "BackOff", "Back-off restarting failed container");
            }
            tokio::select! {
                _ = tokio::time::sleep(if restarts > 1 { backoff } else { Duration::ZERO }) => {}
                _ = self.stop.cancelled() => return self.update(|c| c.done = true),
                _ = self.kill.cancelled() => return self.update(|c| c.done = true),
            }
        }
    }

    pub(super) async fn run_once(&self, program: &Path, args: &[String]) -> Ended {
        let cname = self.spec["name"].as_str().unwrap_or_default().to_owned();
        let logs = self.dir.join("logs");
        let _ = std::fs::create_dir_all(&logs);
        let log_path = logs.join(format!("{cname}.log"));
        if log_path.exists() {
            let _ = std::fs::rename(&log_path, logs.join(format!("{cname}.previous.log")));
        }
        let environment = match env::resolve(
            &self.kubelet.server,
            &self.pod,
            &self.spec,
            self.ip,
            &self.kubelet.kubeconfig,
        ) {
            Ok(e) => e,
            Err(message) => {
                self.update(|c| c.state = json!({"waiting": {"reason": "CreateContainerConfigError", "message": message}}));
                tokio::select! { _ = self.stop.cancelled() => {}, _ = self.kill.cancelled() => {} }
                return Ended::Stopped;
            }
        };
        let mut mounts = env::mounts(&self.spec, &self.volumes);
        // A process here shares the machine's /tmp (and paths under it, such as a test's
        // file:// storage, mean the same to every pod), so a volume mounted at /tmp is not
        // rewritten into paths: the container finds it as its temporary directory (TMPDIR),
        // which is what programs use /tmp through.
        let mut environment = environment;
        if let Some(i) = mounts.iter().position(|(m, _)| m == "/tmp") {
            let (_, dir) = mounts.remove(i);
            environment.push(("TMPDIR".into(), dir.display().to_string()));
        }
        let rewrite = |s: &str| env::rewrite_paths(s, &mounts);
        let log = match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
        {
            Ok(f) => f,
            Err(e) => {
                self.update(|c| c.state = json!({"waiting": {"reason": "RunContainerError", "message": format!("cannot open log: {e}")}}));
                return Ended::Exited(128);
            }
        };
        let workdir = self.dir.join("root");
        let _ = std::fs::create_dir_all(&workdir);
        let mut command = tokio::process::Command::new(program);
        command
            .args(args.iter().map(|a| rewrite(&expand(a, &environment))))
            .env_clear()
            .envs(environment.iter().map(|(k, v)| (k.clone(), rewrite(v))))
            .current_dir(
                self.spec["workingDir"]
                    .as_str()
                    .map(|w| PathBuf::from(rewrite(w)))
                    .filter(|w| w.is_dir())
                    .unwrap_or(workdir),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log file clones")))
            .stderr(Stdio::from(log))
            .process_group(0)
            .kill_on_drop(true);
        let mut child = match command.spawn() {
            Ok(c) => c,
            Err(e) => {
                let message = format!("failed to start {}: {e}", program.display());
                self.update(|c| {
                    c.state = json!({"terminated": {"exitCode": 128, "reason": "StartError", "message": message, "startedAt": meta::now(), "finishedAt": meta::now()}});
                    c.exit_code = Some(128);
                });
                return Ended::Exited(128);
            }
        };
        let pid = child.id().map(|p| p as i32);
        let started = meta::now();
        self.event("Normal", "Started", &format!("Started container {cname}"));
        let has_readiness = self.spec.get("readinessProbe").is_some();
        self.update(|c| {
            c.state = json!({"running": {"startedAt": started}});
            c.pid = pid;
            c.ready = !has_readiness;
            c.log = log_path.clone();
        });
        let probes = CancellationToken::new();
        let (liveness_failed_tx, mut liveness_failed) = tokio::sync::mpsc::channel::<()>(1);
        if let Some(p) = self.spec.get("readinessProbe").cloned() {
            let (states, changed, index, spec, ip, token) = (
                self.states.clone(),
                self.changed.clone(),
                self.index,
                self.spec.clone(),
                self.ip,
                probes.clone(),
            );
            tokio::spawn(async move {
                probe::run(p, spec, ip, token, move |ok| {
                    let mut s = states.lock().expect("containers");
                    if s[index].ready != ok {
                        s[index].ready = ok;
                        changed.notify_one();
                    }
                })
                .await
            });
        }
        if let Some(p) = self.spec.get("livenessProbe").cloned() {
            let (spec, ip, token) = (self.spec.clone(), self.ip, probes.clone());
            tokio::spawn(async move {
                probe::run(p, spec, ip, token, move |ok| {
                    if !ok {
                        let _ = liveness_failed_tx.try_send(());
                    }
                })
                .await
            });
        }
        let grace = |pod: &Value| {
            pod.pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(30)
        };
        let outcome = tokio::select! {
            status = child.wait() => {
                Some(exit_code(status.ok(), 255))
            }
            _ = liveness_failed.recv() => {
                if let Some(pid) = pid { kill_group(pid, Signal::SIGKILL); }
                let _ = child.wait().await;
                Some(137)
            }
            _ = self.stop.cancelled() => None,
            _ = self.kill.cancelled() => {
                if let Some(pid) = pid { kill_group(pid, Signal::SIGKILL); }
                let _ = child.wait().await;
                probes.cancel();
                return Ended::Stopped;
            }
        };
        probes.cancel();
        let code = match outcome {
            Some(code) => code,
            None => {
                // Graceful stop: SIGTERM, then SIGKILL after the grace period.
                let rt = self
                    .kubelet
                    .server
                    .registry
                    .find("", "v1", "pods")
                    .expect("built in");
                let period = self
                    .kubelet
                    .server
                    .get(
                        &rt,
                        meta::meta_str(&self.pod, "namespace"),
                        meta::name_of(&self.pod),
                    )
                    .map(|p| grace(&p))
                    .unwrap_or(30);
                self.event("Normal", "Killing", &format!("Stopping container {cname}"));
                if let Some(pid) = pid {
                    kill_group(pid, Signal::SIGTERM);
                }
                let status = tokio::select! {
                    s = child.wait() => s.ok(),
                    _ = tokio::time::sleep(Duration::from_secs(period.max(0) as u64)) => {
                        if let Some(pid) = pid { kill_group(pid, Signal::SIGKILL); }
                        child.wait().await.ok()
                    }
                    _ = self.kill.cancelled() => {
                        if let Some(pid) = pid { kill_group(pid, Signal::SIGKILL); }
                        child.wait().await.ok()
                    }
                };
                let code = exit_code(status, 137);
                self.record_exit(code, &started);
                return Ended::Stopped;
            }
        };
        self.record_exit(code, &started);
        Ended::Exited(code)
    }

    pub(super) fn record_exit(&self, code: i32, started: &str) {
        let reason = if code == 0 { "Completed" } else { "Error" };
        let finished = meta::now();
        self.update(|c| {
            c.state = json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": finished, "containerID": c.pid.map(|p| format!("strom-local://{p}"))}});
            c.exit_code = Some(code);
            c.ready = false;
            c.pid = None;
        });
    }
}

/// A container's exit code as Kubernetes reports it: the process's own, or 128 + the
/// signal that ended it; `unknown` when the status could not be read.
pub(super) fn exit_code(status: Option<std::process::ExitStatus>, unknown: i32) -> i32 {
    status
        .and_then(|s| {
            s.code()
                .or_else(|| std::os::unix::process::ExitStatusExt::signal(&s).map(|sig| 128 + sig))
        })
        .unwrap_or(unknown)
}

/// `strom/engine:*` matches any tag of `strom/engine`; a pattern without `*` matches exactly
/// (and `name` alone matches `name` and `name:latest`).
pub fn image_matches(pattern: &str, image: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => {
            image.starts_with(prefix)
                || (prefix.ends_with(':') && image == prefix.trim_end_matches(':'))
        }
        None => image == pattern || image == format!("{pattern}:latest"),
    }
}

pub(super) fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return p.is_file().then_some(p);
    }
    std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(program))
                .find(|p| p.is_file())
        })
        .unwrap_or(None)
}

#[cfg(test)]
mod tests {
    use super::image_matches;

    #[test]
    pub(super) fn image_patterns_match_tags() {
        assert!(image_matches("strom/engine:*", "strom/engine:0.1.0"));
        assert!(image_matches("strom/engine:*", "strom/engine"));
        assert!(!image_matches("strom/engine:*", "strom/engineer:1"));
        assert!(image_matches("busybox", "busybox:latest"));
        assert!(!image_matches("busybox", "busybox:1.36"));
    }
}

/// Kubernetes' `$(VAR)` references in `command` and `args`: replaced by the container's
/// variable when it is defined, left as written otherwise; `$$` is a literal `$`.
pub(super) fn expand(text: &str, environment: &[(String, String)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
            && let Some((_, value)) = environment.iter().find(|(k, _)| *k == inner[..end])
        {
            out.push_str(value);
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod expand_tests {
    #[test]
    pub(super) fn variables_in_args_expand_like_kubernetes() {
        let env = vec![("POD_IP".to_owned(), "127.3.0.2".to_owned())];
        let e = |s: &str| super::expand(s, &env);
        assert_eq!(e("$(POD_IP):8081"), "127.3.0.2:8081");
        assert_eq!(e("$(NOPE) and $$(POD_IP)"), "$(NOPE) and $(POD_IP)");
        assert_eq!(e("cost: $5"), "cost: $5");
        assert_eq!(e("$(POD_IP"), "$(POD_IP");
    }
}
