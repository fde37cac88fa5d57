//! How rows find their subtask: a 64-bit hash of the key columns, and contiguous hash
//! ranges per subtask (the basis of keyed state and of rescaling it).

use arrow::array::{Array, ArrayRef, Float64Array, Int64Array, StringArray, UInt32Array};

use crate::batch::Batch;

/// The start value of every row hash.
pub const HASH_SEED: u64 = 0x243f_6a88_85a3_08d3;

/// FNV-1a over bytes (strings' contribution to a row hash).
#[inline]
pub fn fnv(bytes: &[u8]) -> u64 {
    let mut f = 0xcbf29ce484222325u64;
    for b in bytes {
        f = (f ^ *b as u64).wrapping_mul(0x100000001b3);
    }
    f
}

/// splitmix64's finaliser.
#[inline]
pub fn mix(mut x: u64) -> u64 {
    // splitmix64's finaliser: a fast, well-spread 64-bit hash of an integer.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d049bb133111eb);
    x ^ (x >> 31)
}

/// The 64-bit key hash of every row over `columns` (the basis of keyed state: subtask `i` of
/// `p` owns the hashes in `[i·2⁶⁴/p, (i+1)·2⁶⁴/p)`).
pub fn hash_rows(columns: &[ArrayRef], rows: usize) -> Vec<u64> {
    let mut hashes = vec![HASH_SEED; rows];
    for col in columns {
        if let Some(a) = col.as_any().downcast_ref::<Int64Array>() {
            for (h, v) in hashes.iter_mut().zip(a.values().iter()) {
                *h = mix(*h ^ (*v as u64));
            }
        } else if let Some(a) = col.as_any().downcast_ref::<StringArray>() {
            for (i, h) in hashes.iter_mut().enumerate() {
                *h = mix(*h ^ fnv(a.value(i).as_bytes()));
            }
        } else if let Some(a) = col.as_any().downcast_ref::<Float64Array>() {
            for (h, v) in hashes.iter_mut().zip(a.values().iter()) {
                *h = mix(*h ^ v.to_bits());
            }
        } else if let Some(a) = col.as_any().downcast_ref::<arrow::array::BooleanArray>() {
            for (i, h) in hashes.iter_mut().enumerate() {
                *h = mix(*h ^ u64::from(a.value(i)));
            }
        }
    }
    hashes
}

/// The subtask of `parallelism` that owns `hash` (contiguous hash ranges).
#[inline]
pub fn owner(hash: u64, parallelism: usize) -> usize {
    ((hash as u128 * parallelism as u128) >> 64) as usize
}

/// Splits a batch into one batch per subtask by the hash of `key` columns (empty ones
/// omitted).
pub fn partition(
    batch: &Batch,
    key: &[usize],
    parallelism: usize,
) -> arrow::error::Result<Vec<(usize, Batch)>> {
    if parallelism == 1 {
        return Ok(vec![(0, batch.clone())]);
    }
    let cols: Vec<ArrayRef> = key.iter().map(|i| batch.data.column(*i).clone()).collect();
    let hashes = hash_rows(&cols, batch.len());
    let mut buckets: Vec<Vec<u32>> = vec![Vec::new(); parallelism];
    for (row, h) in hashes.iter().enumerate() {
        buckets[owner(*h, parallelism)].push(row as u32);
    }
    let mut out = Vec::new();
    for (i, rows) in buckets.into_iter().enumerate() {
        if !rows.is_empty() {
            out.push((i, batch.take(&UInt32Array::from(rows))?));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn key_values_hash_like_the_rows_they_came_from() {
        use crate::ops::value::{Key, Val};
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![1, -7, i64::MAX]));
        let strs: ArrayRef = Arc::new(StringArray::from(vec!["a", "", "zürich"]));
        let rows = hash_rows(&[ints.clone(), strs.clone()], 3);
        for (i, h) in rows.iter().enumerate() {
            let key = Key::Many(vec![Val::at(ints.as_ref(), i), Val::at(strs.as_ref(), i)].into());
            assert_eq!(key.hash64(), *h);
        }
        let one = hash_rows(std::slice::from_ref(&ints), 3);
        assert_eq!(Key::One(Val::I(-7)).hash64(), one[1]);
    }

    #[test]
    fn hash_ranges_cover_every_subtask_evenly() {
        let col: ArrayRef = Arc::new(Int64Array::from((0..40_000).collect::<Vec<i64>>()));
        let hashes = hash_rows(&[col], 40_000);
        let mut counts = [0usize; 4];
        for h in hashes {
            counts[owner(h, 4)] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn a_key_lands_in_the_same_range_at_every_parallelism_that_splits_it() {
        // Ranges nest: the owner at p=2 is the owner at p=4 divided by 2.
        let col: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3, 99, -5]));
        for h in hash_rows(&[col], 5) {
            assert_eq!(owner(h, 4) / 2, owner(h, 2));
        }
    }
}
