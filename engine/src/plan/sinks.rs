//! Sink vertices.

use super::builder::Builder;
use super::{Partition, SinkKind, Vertex, VertexKind};
use crate::spec;

impl Builder {
    pub(super) fn sink(&mut self, i: usize, s: &spec::SinkSpec) {
        let Some((from, schema)) = self.outputs.get(&s.input).cloned() else {
            return;
        };
        let kind = match s.kind() {
            spec::SinkKind::File(f) => SinkKind::File(f.path.clone(), f.format),
            spec::SinkKind::Stdout => SinkKind::Stdout,
            spec::SinkKind::Blackhole => SinkKind::Blackhole,
        };
        let _ = i;
        // Blackholes count in parallel; files and stdout are written by one subtask.
        let (parallelism, partition) = match kind {
            SinkKind::Blackhole if self.vertices[from].parallelism > 1 => {
                (self.vertices[from].parallelism, Partition::Forward)
            }
            _ => (1, Partition::Single),
        };
        self.vertices.push(Vertex {
            name: format!("sink:{}", s.name),
            parallelism,
            kind: VertexKind::Sink(kind),
            inputs: vec![self.edge(&s.input, partition)],
            chain: vec![],
            uids: vec![],
            uid: format!("sink:{}", s.name),
            schema: schema.clone(),
            watermark: None,
            idle_timeout: None,
            source_schema: schema,
            scalable: false,
        });
    }
}
