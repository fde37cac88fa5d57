//! Where a source subtask is, as saved in snapshots, and how a restore hands the saved
//! positions to the new subtasks.
//!
//! A source's snapshot holds the complete set of its splits: generator streams (runs of
//! id blocks) and file positions. A restore assigns that set to the new subtasks — splitting
//! generator streams when there are fewer than subtasks — and never lets a subtask start a
//! fresh split of its own while the snapshot holds any: a fresh split would overlap the
//! carried ones and repeat their records.

use arrow::error::ArrowError;

use crate::snapshot::{decode, encode};

/// A source subtask's position, as saved in snapshots (format 1; the field order is the
/// encoding).
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SourcePosition {
    /// Rows read from a file.
    pub rows_read: u64,
    /// Generator streams: (first id of the current block, next id), every stream's blocks
    /// `stride` ids apart.
    pub streams: Vec<(u64, u64)>,
    /// Ids between the starts of one stream's consecutive blocks.
    pub stride: u64,
    /// Highest event time seen (the watermark's basis).
    pub max_seen: Option<i64>,
    /// Rows produced (paces the rate schedule).
    pub produced: u64,
}

/// The watermark basis of a subtask that continues several saved positions: the lowest of
/// theirs, and none if any had none. Each stream's next rows lie above its own old
/// subtask's basis, so none of them turns late; the highest would make the rows of a
/// stream that was behind late, and drop them.
pub fn merged_basis(bases: impl IntoIterator<Item = Option<i64>>) -> Option<i64> {
    let mut merged: Option<Option<i64>> = None;
    for b in bases {
        merged = Some(match merged {
            None => b,
            Some(Some(m)) => b.map(|b| m.min(b)),
            Some(None) => None,
        });
    }
    merged.flatten()
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Splits a stream whose blocks are `stride` apart into `k` streams whose blocks are
/// `stride * k` apart: the first keeps the stream's current block (and how far it got), the
/// others start at the following blocks. Together they generate exactly the ids the stream
/// would have.
fn split_stream((block, next): (u64, u64), stride: u64, k: u64) -> Vec<(u64, u64)> {
    (0..k)
        .map(|j| {
            if j == 0 {
                (block, next)
            } else {
                let start = block + j * stride;
                (start, start)
            }
        })
        .collect()
}

/// Hands the positions that a snapshot holds for one generated source (`saved`, each old
/// subtask's, in order) to `parallelism` new subtasks: every saved stream goes to exactly one
/// new subtask, split first where there are fewer streams than subtasks, so that every new
/// subtask carries at least one stream and none starts a stream of its own.
pub fn assign_datagen(
    saved: &[SourcePosition],
    parallelism: usize,
) -> Result<Vec<SourcePosition>, ArrowError> {
    let p = parallelism.max(1);
    // One stride for all: streams saved with different strides (a snapshot of a job that
    // was itself restored from an older engine's) are split to their least common multiple.
    let strides: Vec<u64> = saved
        .iter()
        .filter(|s| !s.streams.is_empty())
        .map(|s| s.stride)
        .collect();
    if strides.contains(&0) {
        return Err(ArrowError::ParseError(
            "a saved generator position has streams but no stride".into(),
        ));
    }
    let mut stride = strides.iter().fold(1, |l, &s| l / gcd(l, s) * s);
    // (stream, index of the old subtask it came from)
    let mut streams: Vec<((u64, u64), usize)> = Vec::new();
    for (old, s) in saved.iter().enumerate() {
        for &stream in &s.streams {
            for part in split_stream(stream, s.stride, stride / s.stride.max(1)) {
                streams.push((part, old));
            }
        }
    }
    if streams.is_empty() {
        return Err(ArrowError::ParseError(
            "the snapshot holds no generator stream for this source".into(),
        ));
    }
    if streams.len() < p {
        let k = p.div_ceil(streams.len()) as u64;
        streams = streams
            .into_iter()
            .flat_map(|(s, old)| {
                split_stream(s, stride, k)
                    .into_iter()
                    .map(move |x| (x, old))
            })
            .collect();
        stride *= k;
    }
    let produced: u64 = saved.iter().map(|s| s.produced).sum();
    let mut out: Vec<SourcePosition> = (0..p)
        .map(|i| SourcePosition {
            stride,
            // Each new subtask paces its share of the rate from its share of what was made.
            produced: produced / p as u64 + u64::from((i as u64) < produced % p as u64),
            ..SourcePosition::default()
        })
        .collect();
    let mut bases: Vec<Vec<Option<i64>>> = vec![Vec::new(); p];
    for (i, (stream, old)) in streams.into_iter().enumerate() {
        out[i % p].streams.push(stream);
        bases[i % p].push(saved[old].max_seen);
    }
    for (to, bases) in out.iter_mut().zip(bases) {
        to.max_seen = merged_basis(bases);
    }
    Ok(out)
}

/// Hands the encoded positions of one source (each old subtask's, in order) to
/// `parallelism` new subtasks; see [`assign_datagen`] for generated sources. A file is read
/// by the subtasks its reader assigns it to, so file positions go to the same subtask
/// number (old subtask j's to new subtask j % p).
pub fn assign(
    kind: &str,
    saved: &[(usize, Vec<u8>)],
    parallelism: usize,
) -> Result<Vec<Vec<Vec<u8>>>, ArrowError> {
    let p = parallelism.max(1);
    let mut out = vec![Vec::new(); p];
    if kind == "source-datagen" {
        let mut ordered: Vec<&(usize, Vec<u8>)> = saved.iter().collect();
        ordered.sort_by_key(|(old, _)| *old);
        let positions = ordered
            .iter()
            .map(|(_, bytes)| decode::<SourcePosition>(bytes))
            .collect::<Result<Vec<_>, _>>()?;
        for (slot, position) in out.iter_mut().zip(assign_datagen(&positions, p)?) {
            slot.push(encode(&position));
        }
    } else if kind == super::kafka_source_task::KIND {
        // Every new subtask sees every saved partition and resumes the ones it now owns
        // (io::kafka::partition_owner).
        for slot in &mut out {
            slot.extend(saved.iter().map(|(_, bytes)| bytes.clone()));
        }
    } else {
        for (old, bytes) in saved {
            out[old % p].push(bytes.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    const B: u64 = 8192;

    /// Every id the positions still generate, below `end`.
    fn ids(positions: &[SourcePosition], end: u64) -> Vec<u64> {
        let mut all = Vec::new();
        for p in positions {
            for &(block, next) in &p.streams {
                all.extend(next..(block + B).min(end));
                let mut b = block + p.stride;
                while b < end {
                    all.extend(b..(b + B).min(end));
                    b += p.stride;
                }
            }
        }
        all.sort_unstable();
        all
    }

    fn fresh(p: u64) -> Vec<SourcePosition> {
        (0..p)
            .map(|s| SourcePosition {
                streams: vec![(s * B, s * B + 100)],
                stride: p * B,
                max_seen: Some(s as i64),
                produced: 100,
                ..SourcePosition::default()
            })
            .collect()
    }

    #[test]
    fn a_rescale_hands_every_id_left_to_exactly_one_subtask_whatever_the_path() {
        let end = 40 * B;
        let left = |p: &[SourcePosition]| ids(p, end);
        let start = fresh(1);
        let want = left(&start);
        // Up, up again, down, down to one, and sideways.
        let mut now = start;
        for p in [2, 3, 2, 1, 4, 4, 1] {
            now = assign_datagen(&now, p).unwrap();
            assert_eq!(now.len(), p);
            assert!(now.iter().all(|s| !s.streams.is_empty()), "{now:?}");
            assert_eq!(left(&now), want, "at parallelism {p}");
        }
    }

    #[test]
    fn streams_saved_with_different_strides_are_split_to_one_stride() {
        // As an older engine left them: a carried stream (stride B) beside fresh ones.
        let saved = vec![
            SourcePosition {
                streams: vec![(0, 10)],
                stride: 2 * B,
                ..SourcePosition::default()
            },
            SourcePosition {
                streams: vec![(B, B + 5)],
                stride: 3 * B,
                ..SourcePosition::default()
            },
        ];
        let now = assign_datagen(&saved, 2).unwrap();
        assert!(now.iter().all(|s| s.stride == 6 * B));
        let end = 30 * B;
        assert_eq!(ids(&now, end), ids(&saved, end));
    }

    #[test]
    fn the_watermark_basis_and_the_pace_travel_with_the_streams() {
        // Merged: the lowest basis, so the stream that was behind does not turn late.
        let now = assign_datagen(&fresh(2), 1).unwrap();
        assert_eq!(now[0].max_seen, Some(0));
        assert_eq!(now[0].produced, 200);
        let now = assign_datagen(&fresh(1), 3).unwrap();
        assert_eq!(
            now.iter().map(|s| s.produced).collect::<Vec<_>>(),
            [34, 33, 33]
        );
    }

    #[test]
    fn a_merged_basis_is_the_lowest_and_unknown_if_any_is() {
        assert_eq!(merged_basis([Some(100), Some(50), Some(70)]), Some(50));
        assert_eq!(merged_basis([Some(100), None]), None);
        assert_eq!(merged_basis([None, Some(3)]), None);
        assert_eq!(merged_basis([Some(7)]), Some(7));
        assert_eq!(merged_basis([]), None);
    }

    #[test]
    fn a_snapshot_without_streams_is_refused() {
        assert!(assign_datagen(&[SourcePosition::default()], 2).is_err());
    }
}
