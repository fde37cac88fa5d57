//! Every case in `../shared/golden/` — inputs, Flink 2.3's exact output — expressed as a Strom
//! job spec (`tests/golden/*.yaml`), run at parallelism 1, 2 and 4, must give Flink's rows
//! (compared as sorted lines; doubles numerically).

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use std::path::{Path, PathBuf};

use strom_engine::spec::JobSpec;

#[path = "support/compare.rs"]
mod compare;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/golden")
}

fn run_case(case: &str, parallelism: usize) {
    run_case_with(case, parallelism, &|text| text);
}

/// Runs `case` at `parallelism` after `edit` has rewritten its spec text.
fn run_case_with(case: &str, parallelism: usize, edit: &dyn Fn(String) -> String) {
    let dir = golden_dir().join(case);
    assert!(
        dir.is_dir(),
        "{} is missing (the golden cases live in ../shared/golden)",
        dir.display()
    );
    // Tests run in parallel, some on the same case: each run gets its own output file.
    static RUN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let out = std::env::temp_dir().join(format!(
        "strom-golden-{case}-p{parallelism}-{}-{}",
        std::process::id(),
        RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let spec_text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{case}.yaml")),
    )
    .unwrap();
    let spec_text = edit(spec_text)
        .replace("${DIR}", dir.to_str().unwrap())
        .replace("${OUT}", out.to_str().unwrap());
    let spec = JobSpec::parse(&spec_text).unwrap_or_else(|e| panic!("{case}: {e}"));
    strom_engine::job::run(&spec, parallelism)
        .unwrap_or_else(|e| panic!("{case} at p={parallelism}: {e}"));
    let (header, rows) = strom_engine::io::sink::read_csv_dir(&out).unwrap();
    let _ = std::fs::remove_dir_all(&out);
    let got_text = header
        .into_iter()
        .chain(rows)
        .collect::<Vec<_>>()
        .join("\n");
    let want_text = std::fs::read_to_string(dir.join("expected.csv")).unwrap();
    let mut got: Vec<&str> = got_text.lines().collect();
    let want_header = want_text.lines().next();
    assert_eq!(
        got.first().copied(),
        want_header,
        "{case} at p={parallelism}: header"
    );
    let got = got.split_off(1);
    compare::assert_same_rows(&format!("{case} at p={parallelism}"), got, &want_text);
}

macro_rules! golden {
    ($($name:ident => $case:literal),* $(,)?) => {$(
        #[test]
        fn $name() {
            for p in [1, 2, 4] {
                run_case($case, p);
            }
        }
    )*};
}

golden! {
    filter_and_projection_match_flink => "01_filter_project",
    tumbling_windows_with_late_data_match_flink => "02_tumble_agg",
    hopping_windows_with_late_data_match_flink => "03_hop_agg",
    session_windows_with_late_data_match_flink => "04_session_agg",
    deduplication_keeps_flinks_first_rows => "05_dedup_first",
    interval_join_matches_flink => "06_interval_join",
    window_top_n_matches_flink => "07_window_topn",
    nexmark_q5_matches_flink => "08_nexmark_q5",
    nexmark_q7_matches_flink => "09_nexmark_q7",
}

/// Runs `case` with the window's late records sent to a side output, and returns the `id`s
/// that came out of it, sorted.
fn late_ids(case: &str, parallelism: usize) -> Vec<i64> {
    let dir = golden_dir().join(case);
    let tmp = std::env::temp_dir().join(format!(
        "strom-golden-late-{case}-p{parallelism}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&tmp).unwrap();
    let (out, late) = (tmp.join("out.csv"), tmp.join("late.csv"));
    let spec_text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{case}.yaml")),
    )
    .unwrap()
    .replace("${DIR}", dir.to_str().unwrap())
    .replace("${OUT}", out.to_str().unwrap());
    let mut spec = JobSpec::parse(&spec_text).unwrap();
    let window = spec
        .transforms
        .iter_mut()
        .find_map(|t| t.window.as_mut())
        .unwrap();
    window.late_output = Some("too_late".into());
    let late_sink = format!(
        "name: late\ninput: too_late\nfile: {{path: {:?}, format: csv}}",
        late.to_str().unwrap()
    );
    spec.sinks
        .push(serde_yaml_ng::from_str(&late_sink).unwrap());
    let spec = JobSpec::parse(&serde_json::to_string(&spec).unwrap()).unwrap();
    strom_engine::job::run(&spec, parallelism).unwrap();
    let (header, rows) = strom_engine::io::sink::read_csv_dir(&late).unwrap();
    let _ = std::fs::remove_dir_all(&tmp);
    assert_eq!(
        header.as_deref().map(|h| h.split(',').next()),
        Some(Some("id"))
    );
    let mut ids: Vec<i64> = rows
        .iter()
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

macro_rules! golden_late {
    ($($name:ident => $case:literal),* $(,)?) => {$(
        #[test]
        fn $name() {
            let want: Vec<i64> = std::fs::read_to_string(golden_dir().join($case).join("dropped_ids.csv"))
                .unwrap()
                .lines()
                .skip(1)
                .map(|l| l.parse().unwrap())
                .collect();
            assert!(!want.is_empty());
            for p in [1, 2, 4] {
                assert_eq!(late_ids($case, p), want, "{} at p={p}", $case);
            }
        }
    )*};
}

// The late-data side output holds exactly the records Flink dropped as late.
golden_late! {
    tumbling_late_output_holds_the_records_flink_dropped => "02_tumble_agg",
    hopping_late_output_holds_the_records_flink_dropped => "03_hop_agg",
    session_late_output_holds_the_records_flink_dropped => "04_session_agg",
    top_n_late_output_holds_the_records_flink_dropped => "07_window_topn",
}

/// Converts a case's `bids.csv` to Parquet with the engine's own file sink, then rewrites it
/// in row groups of 1000 rows so that several subtasks share the reading.
fn bids_parquet(case: &str) -> PathBuf {
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::properties::WriterProperties;

    let dir = golden_dir().join(case);
    let tmp = std::env::temp_dir().join(format!("strom-parquet-{case}-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let (whole, split) = (tmp.join("whole"), tmp.join("bids.parquet"));
    let spec = format!(
        "sources:\n  - name: bid\n    file: {{path: {:?}, format: csv}}\n    schema: [{{name: auction, type: BIGINT}}, {{name: bidder, type: BIGINT}}, {{name: price, type: BIGINT}}, {{name: channel, type: STRING}}, {{name: date_time_ms, type: BIGINT}}]\nsinks:\n  - {{name: out, input: bid, file: {{path: {:?}, format: parquet}}}}\n",
        dir.join("bids.csv").to_str().unwrap(),
        whole.to_str().unwrap()
    );
    let summary = strom_engine::job::run(&JobSpec::parse(&spec).unwrap(), 1).unwrap();
    assert_eq!(summary.records_out, 12_000);
    let part = std::fs::read_dir(&whole)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("part-")
        })
        .unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&part).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(1000))
        .build();
    let mut writer: Option<ArrowWriter<std::fs::File>> = None;
    let mut rows = 0;
    for batch in reader {
        let batch = batch.unwrap();
        rows += batch.num_rows();
        writer
            .get_or_insert_with(|| {
                ArrowWriter::try_new(
                    std::fs::File::create(&split).unwrap(),
                    batch.schema(),
                    Some(props.clone()),
                )
                .unwrap()
            })
            .write(&batch)
            .unwrap();
    }
    assert_eq!(rows, 12_000, "the engine's Parquet file holds every row");
    writer.unwrap().close().unwrap();
    split
}

/// Cases without late records read Parquet in parallel (row groups split between source
/// subtasks) and still give Flink's exact output.
#[test]
fn nexmark_from_parallel_parquet_matches_flink() {
    for case in ["08_nexmark_q5", "09_nexmark_q7"] {
        let parquet = bids_parquet(case);
        for p in [1, 2, 4] {
            run_case_with(case, p, &|text| {
                assert!(text.contains("${DIR}/bids.csv"));
                text.replace(
                    "{path: \"${DIR}/bids.csv\", format: csv}",
                    &format!("{{path: {:?}, format: parquet}}", parquet.to_str().unwrap()),
                )
            });
        }
        let _ = std::fs::remove_dir_all(parquet.parent().unwrap());
    }
}
