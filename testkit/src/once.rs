//! Comparing the ids a reader found with the ids written, in words a failing test can
//! print: thousands of ids in an `assert_eq!` bury the few that matter.

use std::collections::BTreeMap;

/// `Ok` when `got` holds each id of `want` exactly once and nothing else; otherwise what is
/// missing, repeated and unexpected, counted and with the first few of each.
pub fn each_once(got: &[i64], want: impl IntoIterator<Item = i64>) -> Result<(), String> {
    let mut counts: BTreeMap<i64, i64> = BTreeMap::new();
    for id in got {
        *counts.entry(*id).or_default() += 1;
    }
    let mut missing = Vec::new();
    for id in want {
        match counts.get_mut(&id) {
            Some(n) => *n -= 1,
            None => missing.push(id),
        }
    }
    let repeated: Vec<i64> = counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(id, _)| *id)
        .collect();
    let lost_copies: Vec<i64> = counts
        .iter()
        .filter(|(_, n)| **n < 0)
        .map(|(id, _)| *id)
        .collect();
    missing.extend(lost_copies);
    missing.sort_unstable();
    if missing.is_empty() && repeated.is_empty() {
        return Ok(());
    }
    let few = |ids: &[i64]| {
        let shown: Vec<String> = ids.iter().take(12).map(i64::to_string).collect();
        format!(
            "{} ({}{})",
            ids.len(),
            shown.join(", "),
            if ids.len() > 12 { ", …" } else { "" }
        )
    };
    Err(format!(
        "{} ids read: {} missing, {} more than once or unexpected",
        got.len(),
        few(&missing),
        few(&repeated)
    ))
}

#[cfg(test)]
mod tests {
    use super::each_once;

    #[test]
    fn names_what_is_missing_and_what_is_repeated() {
        assert_eq!(each_once(&[2, 0, 1], 0..3), Ok(()));
        assert_eq!(
            each_once(&[0, 1, 1, 5], 0..3).unwrap_err(),
            "4 ids read: 1 (2) missing, 2 (1, 5) more than once or unexpected"
        );
    }
}
