//! The Kafka source and sink specs: what is read, and what is refused and where.

use crate::JobSpec;

#[test]
fn a_topic_pattern_matches_whole_names_and_a_bad_one_is_named() {
    let spec = JobSpec::parse(
            r#"
sources:
  - name: s
    kafka: {bootstrap_servers: "h:1", topic_pattern: "orders-[0-9]+", format: json, dead_letter_topic: orders-dlq, bad_records: dead-letter}
    schema: [{name: v, type: BIGINT}]
sinks: [{name: o, input: s, blackhole: {}}]
"#,
        )
        .expect("a valid spec");
    let crate::SourceKind::Kafka(k) = spec.sources[0].kind().unwrap() else {
        panic!("a Kafka source")
    };
    let filter = k.topic_filter();
    assert!(filter.matches("orders-12"));
    assert!(
        !filter.matches("orders-12-old"),
        "the whole name must match"
    );
    assert!(!filter.matches("my-orders-12"));
    assert_eq!(
        k.discovery_interval(),
        Some(std::time::Duration::from_secs(300))
    );
    for (kafka, path) in [
        (
            r#"{bootstrap_servers: "h:1", format: json}"#,
            "sources[0].kafka.topics",
        ),
        (
            r#"{bootstrap_servers: "h:1", topic_pattern: "orders-(", format: json}"#,
            "sources[0].kafka.topic_pattern",
        ),
        (
            r#"{bootstrap_servers: "h:1", topic_pattern: "orders-.*", format: json, bad_records: dead-letter, dead_letter_topic: orders-dlq}"#,
            "sources[0].kafka.dead_letter_topic",
        ),
    ] {
        let problems = JobSpec::parse(&format!(
                "sources:\n  - name: s\n    kafka: {kafka}\n    schema: [{{name: v, type: BIGINT}}]\nsinks: [{{name: o, input: s, blackhole: {{}}}}]\n"
            ))
            .unwrap_err();
        let paths: Vec<&str> = problems.0.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, [path], "{problems}");
    }
}

#[test]
fn metadata_columns_are_read_and_checked_against_their_types() {
    let spec = JobSpec::parse(
        r#"
sources:
  - name: s
    kafka: {bootstrap_servers: "localhost:9092", topics: [t], format: raw}
    schema:
      - {name: v, type: STRING}
      - {name: k, type: STRING, metadata: key}
      - {name: ts, type: BIGINT, metadata: timestamp}
      - {name: trace, type: STRING, metadata: "header:trace-id"}
    watermark: {field: ts, max_out_of_orderness: 1s}
sinks: [{name: o, input: s, blackhole: {}}]
"#,
    )
    .expect("raw reads one value column besides the metadata ones");
    assert_eq!(
        spec.sources[0].schema[3].metadata,
        Some(crate::KafkaMetadata::Header("trace-id".into()))
    );
    let problems = JobSpec::parse(
        r#"
sources:
  - name: s
    kafka: {bootstrap_servers: "localhost:9092", topics: [t], format: json}
    schema:
      - {name: v, type: BIGINT}
      - {name: p, type: STRING, metadata: partition}
  - name: f
    file: {path: /x.csv, format: csv}
    schema: [{name: o, type: BIGINT, metadata: offset}]
sinks: [{name: o, input: s, blackhole: {}}]
"#,
    )
    .unwrap_err();
    let paths: Vec<&str> = problems.0.iter().map(|v| v.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "sources[0].schema[1].metadata",
            "sources[1].schema[0].metadata"
        ],
        "{problems}"
    );
    assert!(
        problems
            .to_string()
            .contains("partition does not fit a STRING column"),
        "{problems}"
    );
    let unknown = JobSpec::parse(
        r#"
sources:
  - name: s
    kafka: {bootstrap_servers: "localhost:9092", topics: [t], format: json}
    schema: [{name: v, type: BIGINT, metadata: leader-epoch}]
sinks: [{name: o, input: s, blackhole: {}}]
"#,
    )
    .unwrap_err();
    assert!(
        unknown
            .to_string()
            .contains("sources[0].schema[0].metadata"),
        "{unknown}"
    );
    assert!(
        unknown.to_string().contains("is not record metadata"),
        "{unknown}"
    );
}

#[test]
fn a_kafka_source_and_sink_are_read_and_bad_fields_are_named() {
    let spec = JobSpec::parse(
        r#"
sources:
  - name: s
    kafka: {bootstrap_servers: "localhost:9092", topics: [orders], format: json, bounded: true}
    schema: [{name: id, type: BIGINT}]
sinks:
  - name: o
    input: s
    kafka: {bootstrap_servers: "localhost:9092", topic: out, format: csv, delivery: exactly-once}
"#,
    )
    .expect("a valid spec");
    assert!(matches!(
        spec.sinks[0].kind(),
        crate::SinkKind::Kafka(k) if k.delivery() == crate::Delivery::ExactlyOnce
    ));
    let problems = JobSpec::parse(
        r#"
sources:
  - name: s
    kafka:
      bootstrap_servers: "localhost"
      topics: ["a b"]
      format: raw
      start: timestamp
      properties: {group.id: x, "bad key": y}
    schema: [{name: id, type: BIGINT}]
sinks:
  - name: o
    input: s
    kafka: {bootstrap_servers: "h:1", topic: "", format: csv, delivery: twice}
"#,
    )
    .unwrap_err();
    let paths: Vec<&str> = problems.0.iter().map(|v| v.path.as_str()).collect();
    assert!(paths.contains(&"sinks[0].kafka.delivery"), "{problems}");
    let problems = JobSpec::parse(
        r#"
sources:
  - name: s
    kafka:
      bootstrap_servers: "localhost"
      topics: ["a b"]
      format: raw
      start: timestamp
      max_records_per_second: 0
      dead_letter_topic: dlq
      properties: {group.id: x, "bad key": y}
    schema: [{name: id, type: BIGINT}]
sinks:
  - name: o
    input: s
    kafka: {bootstrap_servers: "h:1", topic: "", format: csv}
"#,
    )
    .unwrap_err();
    let paths: Vec<&str> = problems.0.iter().map(|v| v.path.as_str()).collect();
    for want in [
        "sources[0].kafka.bootstrap_servers",
        "sources[0].kafka.topics[0]",
        "sources[0].kafka.start_timestamp",
        "sources[0].kafka.format",
        "sources[0].kafka.max_records_per_second",
        "sources[0].kafka.dead_letter_topic",
        "sources[0].kafka.properties.group.id",
        "sources[0].kafka.properties.bad key",
        "sinks[0].kafka.topic",
    ] {
        assert!(paths.contains(&want), "{want} missing from {problems}");
    }
}
