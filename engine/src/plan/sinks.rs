//! Sink vertices.

use super::builder::Builder;
use super::{Partition, SinkKind, Vertex, VertexKind, problem};
use crate::spec;

impl Builder {
    pub(super) fn sink(&mut self, i: usize, s: &spec::SinkSpec) {
        let Some((from, schema)) = self.outputs.get(&s.input).cloned() else {
            return;
        };
        let path = format!("sinks[{i}].kafka");
        let kind = match s.kind() {
            spec::SinkKind::File(f) => SinkKind::File(f.path.clone(), f.format),
            spec::SinkKind::Kafka(k) => {
                let key = match &k.key {
                    Some(name) => match schema.index_of(name) {
                        Ok(i) => Some(i),
                        Err(_) => {
                            self.problems.push(problem(
                                format!("{path}.key"),
                                format!("{name:?} is not a column of {:?}", s.input),
                            ));
                            None
                        }
                    },
                    None => None,
                };
                if k.format == spec::KafkaFormat::Raw && schema.fields().len() != 1 {
                    self.problems.push(problem(
                        format!("{path}.format"),
                        format!(
                            "raw writes one column's text, but {:?} has {} columns",
                            s.input,
                            schema.fields().len()
                        ),
                    ));
                }
                SinkKind::Kafka {
                    spec: std::sync::Arc::new(k.clone()),
                    name: s.name.clone(),
                    key,
                }
            }
            spec::SinkKind::Stdout => SinkKind::Stdout,
            spec::SinkKind::Blackhole => SinkKind::Blackhole,
        };
        // Blackholes and Kafka sinks run at their input's parallelism; files and stdout are
        // written by one subtask.
        let (parallelism, partition) = match kind {
            SinkKind::Blackhole | SinkKind::Kafka { .. } if self.vertices[from].parallelism > 1 => {
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
