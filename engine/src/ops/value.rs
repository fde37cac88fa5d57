//! Single values, for state kept per key (keys, accumulators, buffered rows), and turning
//! rows of them back into Arrow columns.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBuilder, Float64Array, Float64Builder, Int64Array,
    Int64Builder, StringArray, StringBuilder,
};

use crate::expr::Ty;

/// One value.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Val {
    /// Integer.
    I(i64),
    /// Float.
    F(f64),
    /// String.
    S(Arc<str>),
    /// Boolean.
    B(bool),
}

impl PartialEq for Val {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Val::I(a), Val::I(b)) => a == b,
            (Val::F(a), Val::F(b)) => a.to_bits() == b.to_bits(),
            (Val::S(a), Val::S(b)) => a == b,
            (Val::B(a), Val::B(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Val {}

impl Hash for Val {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            Val::I(v) => v.hash(state),
            Val::F(v) => v.to_bits().hash(state),
            Val::S(v) => v.hash(state),
            Val::B(v) => v.hash(state),
        }
    }
}

impl PartialOrd for Val {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Val {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self, other) {
            (Val::I(a), Val::I(b)) => a.cmp(b),
            (Val::F(a), Val::F(b)) => a.total_cmp(b),
            (Val::S(a), Val::S(b)) => a.cmp(b),
            (Val::B(a), Val::B(b)) => a.cmp(b),
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }
}

impl Val {
    fn rank(&self) -> u8 {
        match self {
            Val::B(_) => 0,
            Val::I(_) => 1,
            Val::F(_) => 2,
            Val::S(_) => 3,
        }
    }

    /// The value of `array` at `row`.
    pub fn at(array: &dyn Array, row: usize) -> Val {
        if let Some(a) = array.as_any().downcast_ref::<Int64Array>() {
            Val::I(a.value(row))
        } else if let Some(a) = array.as_any().downcast_ref::<Float64Array>() {
            Val::F(a.value(row))
        } else if let Some(a) = array.as_any().downcast_ref::<StringArray>() {
            Val::S(Arc::from(a.value(row)))
        } else if let Some(a) = array.as_any().downcast_ref::<BooleanArray>() {
            Val::B(a.value(row))
        } else {
            Val::I(0)
        }
    }

    /// As an integer (floats truncate).
    pub fn as_i64(&self) -> i64 {
        match self {
            Val::I(v) => *v,
            Val::F(v) => *v as i64,
            Val::B(v) => i64::from(*v),
            Val::S(_) => 0,
        }
    }

    /// As a float.
    pub fn as_f64(&self) -> f64 {
        match self {
            Val::I(v) => *v as f64,
            Val::F(v) => *v,
            Val::B(v) => f64::from(u8::from(*v)),
            Val::S(_) => 0.0,
        }
    }
}

/// A key of keyed state: one value (the common case, kept without a heap allocation) or
/// several.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Key {
    /// A single key column.
    One(Val),
    /// Several key columns.
    Many(Box<[Val]>),
}

impl Key {
    /// The 64-bit hash that routes rows of this key to their subtask (the same as
    /// [`crate::hash::hash_rows`] over the key columns).
    pub fn hash64(&self) -> u64 {
        match self {
            Key::One(v) => hash_vals(std::slice::from_ref(v)),
            Key::Many(vs) => hash_vals(vs),
        }
    }

    /// The `i`-th key column's value.
    pub fn get(&self, i: usize) -> &Val {
        match self {
            Key::One(v) => v,
            Key::Many(vs) => &vs[i],
        }
    }
}

/// Key columns of a batch, downcast once for fast per-row access.
pub enum KeyColumns {
    /// One BIGINT key column.
    Int(Int64Array),
    /// Anything else.
    Any(Vec<ArrayRef>),
}

impl KeyColumns {
    /// Wraps evaluated key columns.
    pub fn new(columns: Vec<ArrayRef>) -> Self {
        if let [one] = columns.as_slice()
            && let Some(a) = one.as_any().downcast_ref::<Int64Array>()
        {
            return KeyColumns::Int(a.clone());
        }
        KeyColumns::Any(columns)
    }

    /// The key of row `row`.
    #[inline]
    pub fn key(&self, row: usize) -> Key {
        match self {
            KeyColumns::Int(a) => Key::One(Val::I(a.value(row))),
            KeyColumns::Any(cols) if cols.len() == 1 => Key::One(Val::at(cols[0].as_ref(), row)),
            KeyColumns::Any(cols) => {
                Key::Many(cols.iter().map(|c| Val::at(c.as_ref(), row)).collect())
            }
        }
    }
}

/// The routing hash of a row's key values (see [`crate::hash::hash_rows`]).
pub fn hash_vals(vals: &[Val]) -> u64 {
    let mut h = crate::hash::HASH_SEED;
    for v in vals {
        h = crate::hash::mix(
            h ^ match v {
                Val::I(i) => *i as u64,
                Val::F(f) => f.to_bits(),
                Val::S(s) => crate::hash::fnv(s.as_bytes()),
                Val::B(b) => u64::from(*b),
            },
        );
    }
    h
}

/// A column of `ty` from values.
pub fn column(ty: Ty, values: impl IntoIterator<Item = Val>) -> ArrayRef {
    match ty {
        Ty::Int => {
            let mut b = Int64Builder::new();
            for v in values {
                b.append_value(v.as_i64());
            }
            Arc::new(b.finish())
        }
        Ty::Float => {
            let mut b = Float64Builder::new();
            for v in values {
                b.append_value(v.as_f64());
            }
            Arc::new(b.finish())
        }
        Ty::Str => {
            let mut b = StringBuilder::new();
            for v in values {
                match v {
                    Val::S(s) => b.append_value(&*s),
                    other => b.append_value(format!("{other:?}")),
                }
            }
            Arc::new(b.finish())
        }
        Ty::Bool => {
            let mut b = BooleanBuilder::new();
            for v in values {
                b.append_value(matches!(v, Val::B(true)));
            }
            Arc::new(b.finish())
        }
    }
}

/// A fast, non-cryptographic hasher for state maps keyed by values (the FxHash scheme used
/// by rustc): state is private to a task, so flooding resistance is not needed, and SipHash
/// would be most of a keyed operator's time.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    #[inline]
    fn write_i64(&mut self, v: i64) {
        self.write_u64(v as u64);
    }

    #[inline]
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// `HashMap` with [`FxHasher`].
pub type FxMap<K, V> = std::collections::HashMap<K, V, std::hash::BuildHasherDefault<FxHasher>>;
