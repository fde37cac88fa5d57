//! Deduplication with a state TTL (in event time): a key is forgotten once the watermark
//! passes its first row's time plus the TTL, and a later row of it is a first row again.

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use strom_engine::spec::JobSpec;

fn first_ids(ttl: &str) -> Vec<i64> {
    let dir = std::env::temp_dir().join(format!(
        "strom-dedup-ttl-{}-{}",
        std::process::id(),
        ttl.len()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("events.csv"),
        "1,a,1000\n2,a,2000\n3,b,3000\n4,a,20000\n5,a,21000\n6,c,40000\n",
    )
    .unwrap();
    let spec = format!(
        r#"
sources:
  - name: events
    file: {{path: "{dir}/events.csv", format: csv}}
    schema: [{{name: id, type: BIGINT}}, {{name: k, type: STRING}}, {{name: ts, type: BIGINT}}]
    watermark: {{field: ts, max_out_of_orderness: 0s}}
transforms:
  - {{name: firsts, input: events, deduplicate: {{key: [k]{ttl}}}}}
sinks:
  - {{name: out, input: firsts, file: {{path: "{dir}/out", format: csv}}}}
"#,
        dir = dir.display()
    );
    strom_engine::job::run(&JobSpec::parse(&spec).unwrap(), 1).unwrap();
    let (_, rows) = strom_engine::io::sink::read_csv_dir(&dir.join("out")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let mut ids: Vec<i64> = rows
        .iter()
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

#[test]
fn without_a_ttl_a_key_is_remembered_forever() {
    assert_eq!(first_ids(""), [1, 3, 6]);
}

#[test]
fn with_a_ttl_a_key_is_new_again_once_the_watermark_passes_its_expiry() {
    // Key a is emitted at 1000 and expires at 11 000. Row 4 (ts 20 000) arrives while the
    // watermark is 3000, so a is still known; row 5 sees watermark 20 000, a is forgotten and
    // row 5 is a first row again.
    assert_eq!(first_ids(", ttl: 10s"), [1, 3, 5, 6]);
}
