//! Allowed lateness and the late-data side output, on a small input whose every result is
//! worked out by hand with Flink's rules (the watermark trails the highest event time by the
//! out-of-orderness; a window fires when the watermark reaches `end - 1`; it keeps taking
//! records until `end - 1 + allowed_lateness`, firing again for each).

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use std::path::Path;

use strom_engine::spec::JobSpec;

fn run(dir: &Path, events: &str, window: &str, parallelism: usize) -> (Vec<String>, Vec<String>) {
    std::fs::write(dir.join("events.csv"), events).unwrap();
    let spec = format!(
        r#"
sources:
  - name: events
    file: {{path: "{dir}/events.csv", format: csv}}
    schema: [{{name: id, type: BIGINT}}, {{name: k, type: STRING}}, {{name: ts, type: BIGINT}}]
    watermark: {{field: ts, max_out_of_orderness: 0s}}
transforms:
  - name: counts
    input: events
    key_by: [k]
    window: {window}
    select: [k, window_start, window_end, "COUNT(*) AS cnt", "MAX(id) AS last_id"]
sinks:
  - {{name: out, input: counts, file: {{path: "{dir}/out", format: csv}}}}
  - {{name: late, input: too_late, file: {{path: "{dir}/late", format: csv}}}}
"#,
        dir = dir.display()
    );
    let spec = JobSpec::parse(&spec).unwrap_or_else(|e| panic!("{e}"));
    strom_engine::job::run(&spec, parallelism).unwrap();
    let read = |name: &str| -> Vec<String> {
        let (_, mut lines) = strom_engine::io::sink::read_csv_dir(&dir.join(name)).unwrap();
        let _ = std::fs::remove_dir_all(dir.join(name));
        lines.sort();
        lines
    };
    (read("out"), read("late"))
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("strom-lateness-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const EVENTS: &str = "\
1,a,1000
2,a,12000
3,a,2000
4,b,9000
5,a,16000
6,a,3000
7,b,15500
";

#[test]
fn a_late_record_within_the_allowed_lateness_fires_the_window_again() {
    let dir = temp("allowed");
    for p in [1, 2] {
        let (out, late) = run(
            &dir,
            EVENTS,
            "{tumble: 10s, allowed_lateness: 5s, late_output: too_late}",
            p,
        );
        // id 2 (ts 12000) lifts the watermark to 12000: [0, 10s) fires with id 1. Ids 3 and 4
        // are late but within 5 s (9999 + 5000 > 12000): the window fires again for each.
        // Id 5 lifts the watermark to 16000, past 14999: id 6 is too late and goes to the
        // side output. Id 7 (ts 15500, window [10s, 20s)) is on time.
        assert_eq!(
            out,
            [
                "a,0,10000,1,1",
                "a,0,10000,2,3",
                "a,10000,20000,2,5",
                "b,0,10000,1,4",
                "b,10000,20000,1,7",
            ],
            "p={p}"
        );
        assert_eq!(late, ["6,a,3000"], "p={p}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_allowed_lateness_every_late_record_goes_to_the_side_output() {
    let dir = temp("none");
    for p in [1, 2] {
        let (out, late) = run(&dir, EVENTS, "{tumble: 10s, late_output: too_late}", p);
        assert_eq!(
            out,
            ["a,0,10000,1,1", "a,10000,20000,2,5", "b,10000,20000,1,7"],
            "p={p}"
        );
        assert_eq!(late, ["3,a,2000", "4,b,9000", "6,a,3000"], "p={p}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hopping_windows_take_late_records_into_every_window_still_open() {
    let dir = temp("hop");
    for p in [1, 2] {
        // Windows of 10 s every 5 s. Id 3 (ts 2000) belongs to [-5s, 5s) and [0, 10s); at
        // watermark 12000 with 1 s lateness [-5s, 5s) is gone (4999 + 1000 <= 12000) and so is
        // [0, 10s) (9999 + 1000 <= 12000): late. Id 4 (ts 9000, windows [0,10s) and [5s,15s))
        // still counts in [5s, 15s).
        let (out, late) = run(
            &dir,
            "1,a,1000\n2,a,12000\n3,a,2000\n4,a,9000\n",
            "{hop: {size: 10s, slide: 5s}, allowed_lateness: 1s, late_output: too_late}",
            p,
        );
        assert_eq!(
            out,
            [
                "a,-5000,5000,1,1",
                "a,0,10000,1,1",
                "a,10000,20000,1,2",
                "a,5000,15000,2,4",
            ],
            "p={p}"
        );
        assert_eq!(late, ["3,a,2000"], "p={p}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn allowed_lateness_on_sessions_is_refused_by_path() {
    let err = JobSpec::parse(
        r#"
sources:
  - {name: s, datagen: {count: 1, columns: [{name: ts, expr: id}]}, watermark: {field: ts, max_out_of_orderness: 0s}}
transforms:
  - {name: w, input: s, key_by: [ts], window: {session: 1s, allowed_lateness: 1s}, select: ["COUNT(*) AS c"]}
sinks:
  - {name: out, input: w, blackhole: {}}
"#,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("transforms[0].window.allowed_lateness"),
        "{err}"
    );
}

#[test]
fn an_event_time_no_window_can_place_fails_the_job_with_the_reason() {
    let dir = temp("far");
    std::fs::write(
        dir.join("events.csv"),
        format!("1,a,1000\n2,a,{}\n", i64::MAX - 1),
    )
    .unwrap();
    for window in [
        "{tumble: 10s}",
        "{hop: {size: 10s, slide: 5s}}",
        "{session: 10s}",
    ] {
        let spec = format!(
            r#"
sources:
  - name: events
    file: {{path: "{dir}/events.csv", format: csv}}
    schema: [{{name: id, type: BIGINT}}, {{name: k, type: STRING}}, {{name: ts, type: BIGINT}}]
    watermark: {{field: ts, max_out_of_orderness: 0s}}
transforms:
  - name: counts
    input: events
    key_by: [k]
    window: {window}
    select: [k, "COUNT(*) AS cnt"]
sinks:
  - {{name: out, input: counts, file: {{path: "{dir}/out-{n}", format: csv}}}}
"#,
            dir = dir.display(),
            n = window.len()
        );
        let spec = JobSpec::parse(&spec).unwrap_or_else(|e| panic!("{e}"));
        let e = strom_engine::job::run(&spec, 1).unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "event time {} ms is outside the years 0001-9999",
                i64::MAX - 1
            )),
            "{window}: {e}"
        );
    }
}
