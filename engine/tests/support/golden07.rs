//! Golden case 07 (a 10 s tumbling count per key, then the top 3 per window) as a job whose
//! source is read slowly, so that a stop, an outage or a kill comes mid-way; and the check
//! that a job's committed output is exactly Flink's.

use std::path::{Path, PathBuf};

/// The golden case's directory.
pub fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/golden/07_window_topn")
}

/// The job, reading `rows_per_second` in batches of `batch_rows`, writing CSV parts to `out`.
pub fn job(out: &Path, rows_per_second: u32, batch_rows: u32) -> String {
    format!(
        r#"
sources:
  - name: raw
    file: {{path: "{}/events.csv", format: csv, batch_rows: {batch_rows}}}
    schema: [{{name: id, type: BIGINT}}, {{name: k, type: INT}}, {{name: v, type: BIGINT}}, {{name: ts_ms, type: BIGINT}}]
    watermark: {{field: ts_ms, max_out_of_orderness: 2s}}
transforms:
  - {{name: events, input: raw, throttle: {rows_per_second}}}
  - name: counts
    input: events
    key_by: [k]
    window: {{tumble: 10s}}
    select: [window_start, window_end, k, "COUNT(*) AS cnt", "SUM(v) AS sum_v"]
  - name: result
    input: counts
    top_n: {{limit: 3, order_by: "cnt DESC, k ASC", number_as: rownum}}
sinks:
  - {{name: out, input: result, file: {{path: "{}", format: csv}}}}
"#,
        golden().display(),
        out.display()
    )
}

/// Asserts that the committed output in `out` is exactly Flink's (no row lost, none
/// repeated), and that `partial` rows — what was committed before the interruption — were
/// fewer, so the interruption really came mid-way.
pub fn assert_flink_output(out: &Path, partial: usize) {
    let (header, mut got) = strom_engine::io::sink::read_csv_dir(out).unwrap();
    let want_text = std::fs::read_to_string(golden().join("expected.csv")).unwrap();
    let mut want: Vec<&str> = want_text.lines().collect();
    assert_eq!(header.as_deref(), Some(want.remove(0)));
    got.sort();
    want.sort();
    assert!(partial < want.len(), "the interruption came after the end");
    let missing: Vec<_> = want
        .iter()
        .filter(|w| !got.iter().any(|g| g == *w))
        .collect();
    let extra: Vec<_> = got.iter().filter(|g| !want.contains(&g.as_str())).collect();
    assert!(missing.is_empty(), "rows lost: {missing:?}");
    assert!(extra.is_empty(), "rows not in Flink's output: {extra:?}");
    assert_eq!(got, want, "rows repeated");
}
