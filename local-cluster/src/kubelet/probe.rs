//! Readiness and liveness probes: HTTP GET, TCP connect and exec, with the periods and
//! thresholds of the probe spec.

use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

fn port_of(spec: &Value, port: &Value) -> Option<u16> {
    match port {
        Value::Number(n) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        Value::String(name) => spec["ports"]
            .as_array()?
            .iter()
            .find(|p| p["name"] == name.as_str())
            .and_then(|p| p["containerPort"].as_u64())
            .and_then(|p| u16::try_from(p).ok())
            .or_else(|| name.parse().ok()),
        _ => None,
    }
}

async fn check(probe: &Value, spec: &Value, ip: Ipv4Addr, timeout: Duration) -> bool {
    let attempt = async {
        if let Some(http) = probe.get("httpGet") {
            let port = port_of(spec, &http["port"])?;
            let path = http["path"].as_str().unwrap_or("/");
            let mut stream = tokio::net::TcpStream::connect((ip, port)).await.ok()?;
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: {ip}:{port}\r\nUser-Agent: kube-probe/1.32\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(request.as_bytes()).await.ok()?;
            let mut head = vec![0u8; 64];
            let n = stream.read(&mut head).await.ok()?;
            let line = String::from_utf8_lossy(&head[..n]).to_string();
            let code: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some((200..400).contains(&code))
        } else if let Some(tcp) = probe.get("tcpSocket") {
            let port = port_of(spec, &tcp["port"])?;
            Some(tokio::net::TcpStream::connect((ip, port)).await.is_ok())
        } else if let Some(exec) = probe.get("exec") {
            let command: Vec<String> = exec["command"]
                .as_array()?
                .iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect();
            let (program, args) = command.split_first()?;
            let status = tokio::process::Command::new(program)
                .args(args)
                .kill_on_drop(true)
                .status()
                .await
                .ok()?;
            Some(status.success())
        } else {
            None
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// Probes until `stop`, reporting each change of the verdict (after the thresholds) to
/// `report`. The first verdict is reported as soon as it is known.
pub async fn run(
    probe: Value,
    spec: Value,
    ip: Ipv4Addr,
    stop: CancellationToken,
    mut report: impl FnMut(bool),
) {
    let secs = |k: &str, default: u64| probe[k].as_u64().unwrap_or(default);
    let initial = Duration::from_secs(secs("initialDelaySeconds", 0));
    let period = Duration::from_secs(secs("periodSeconds", 10).max(1));
    let timeout = Duration::from_secs(secs("timeoutSeconds", 1).max(1));
    let success_threshold = secs("successThreshold", 1);
    let failure_threshold = secs("failureThreshold", 3);
    tokio::select! { _ = tokio::time::sleep(initial) => {}, _ = stop.cancelled() => return }
    let (mut successes, mut failures, mut verdict) = (0u64, 0u64, None::<bool>);
    loop {
        if check(&probe, &spec, ip, timeout).await {
            successes += 1;
            failures = 0;
            if successes >= success_threshold && verdict != Some(true) {
                verdict = Some(true);
                report(true);
            }
        } else {
            failures += 1;
            successes = 0;
            if failures >= failure_threshold && verdict != Some(false) {
                verdict = Some(false);
                report(false);
            }
        }
        tokio::select! { _ = tokio::time::sleep(period) => {}, _ = stop.cancelled() => return }
    }
}
