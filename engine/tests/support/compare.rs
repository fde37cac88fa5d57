//! Comparing a job's CSV rows with Flink's `expected.csv`: the header exactly, the rows as
//! sorted lines (order across subtasks is not Flink's either), doubles numerically.

use strom_engine::io::sink::same_csv_line as same_line;

/// Panics with what differs unless `got` (rows, no header) are `want_text`'s rows.
pub fn assert_same_rows(what: &str, mut got: Vec<&str>, want_text: &str) {
    let mut want: Vec<&str> = want_text.lines().skip(1).collect();
    got.sort_unstable();
    want.sort_unstable();
    let same = got.len() == want.len() && got.iter().zip(&want).all(|(g, w)| same_line(g, w));
    if !same {
        let got_set: std::collections::HashSet<&str> = got.iter().copied().collect();
        let want_set: std::collections::HashSet<&str> = want.iter().copied().collect();
        let missing: Vec<&&str> = want
            .iter()
            .filter(|w| !got_set.contains(**w))
            .take(5)
            .collect();
        let extra: Vec<&&str> = got
            .iter()
            .filter(|g| !want_set.contains(**g))
            .take(5)
            .collect();
        panic!(
            "{what}: {} rows, Flink {}; missing e.g. {missing:?}; extra e.g. {extra:?}",
            got.len(),
            want.len()
        );
    }
}
