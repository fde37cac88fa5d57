//! `kubectl logs`: a container's current log file, from the start or its last lines, and
//! followed while the container runs.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Weak;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};

use super::Kubelet;
use crate::apiserver::PodLogs;

/// The kubelet as the API server's source of logs.
pub struct Logs {
    pub(super) kubelet: Weak<Kubelet>,
}

fn last_lines(text: &[u8], n: usize) -> &[u8] {
    let mut count = 0;
    let end = if text.ends_with(b"\n") {
        text.len() - 1
    } else {
        text.len()
    };
    for i in (0..end).rev() {
        if text[i] == b'\n' {
            count += 1;
            if count == n {
                return &text[i + 1..];
            }
        }
    }
    text
}

impl PodLogs for Logs {
    fn log(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        follow: bool,
        tail_lines: Option<usize>,
    ) -> Option<BoxStream<'static, Bytes>> {
        let kubelet = self.kubelet.upgrade()?;
        let state = kubelet.container_state(namespace, pod, container)?;
        let path = state.log.clone();
        let mut file = std::fs::File::open(&path).ok()?;
        let mut first = Vec::new();
        file.read_to_end(&mut first).ok()?;
        let offset = first.len() as u64;
        let first = Bytes::from(match tail_lines {
            Some(n) => last_lines(&first, n).to_vec(),
            None => first,
        });
        if !follow {
            return Some(stream::once(async move { first }).boxed());
        }
        let (ns, pod, container) = (namespace.to_owned(), pod.to_owned(), container.to_owned());
        let weak = self.kubelet.clone();
        let rest = stream::unfold((file, offset), move |(mut file, offset)| {
            let (weak, ns, pod, container) =
                (weak.clone(), ns.clone(), pod.clone(), container.clone());
            async move {
                loop {
                    let mut chunk = Vec::new();
                    let _ = file.seek(SeekFrom::Start(offset));
                    let _ = file.read_to_end(&mut chunk);
                    if !chunk.is_empty() {
                        let next = offset + chunk.len() as u64;
                        return Some((Bytes::from(chunk), (file, next)));
                    }
                    let running = weak
                        .upgrade()
                        .and_then(|k| k.container_state(&ns, &pod, &container))
                        .is_some_and(|c| c.pid.is_some());
                    if !running {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        Some(stream::once(async move { first }).chain(rest).boxed())
    }
}
