//! What a generated source produces for a run of sequence numbers `id`: columns computed by
//! SQL expressions over `id`, random values drawn from a distribution, or the rows of a
//! Nexmark table.
//!
//! Every value is a pure function of the seed, the column and `id` (each row draws from its
//! own generator seeded by those three), so a job generates the same records at any
//! parallelism, in any batch sizes, on every run.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{Field, Schema};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution as _, Normal, Zipf};

use crate::batch::SchemaRef;
use crate::expr::{Expr, Ty, eval};

/// A distribution of random values.
#[derive(Debug, Clone)]
pub enum Distribution {
    /// DOUBLE, uniform in `[min, max)`.
    Uniform(f64, f64),
    /// BIGINT, uniform in `[min, max]`.
    UniformInt(i64, i64),
    /// DOUBLE, normal.
    Normal(Normal<f64>),
    /// BIGINT in `1..=n`, Zipf-distributed (1 the most frequent).
    Zipf(Zipf<f64>),
    /// STRING, one of these, equally likely.
    OneOf(Arc<[String]>),
    /// STRING of lowercase letters, length uniform in `[min, max]`.
    Text(usize, usize),
}

impl Distribution {
    /// The type of the values.
    pub fn ty(&self) -> Ty {
        match self {
            Distribution::Uniform(..) | Distribution::Normal(_) => Ty::Float,
            Distribution::UniformInt(..) | Distribution::Zipf(_) => Ty::Int,
            Distribution::OneOf(_) | Distribution::Text(..) => Ty::Str,
        }
    }
}

/// How one generated column is computed.
#[derive(Debug, Clone)]
pub enum Column {
    /// A SQL expression over `id`.
    Expr(Expr),
    /// Random values; `salt` tells columns with the same distribution apart.
    Random(Distribution, u64),
}

/// A Nexmark table (the spec's type: its columns are declared there).
pub use crate::spec::NexmarkTable as Table;

/// What a generated source produces.
#[derive(Debug, Clone)]
pub enum Generator {
    /// Columns, each an expression or a distribution.
    Columns(Vec<Column>),
    /// A Nexmark table.
    Nexmark {
        /// Which table.
        table: Table,
        /// Events (of all three kinds) per second of event time.
        events_per_second: u64,
    },
}

#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// The generator of one value: a function of seed, salt and id only.
fn rng(seed: u64, salt: u64, id: i64) -> SmallRng {
    SmallRng::seed_from_u64(mix(seed
        .wrapping_add(salt.wrapping_mul(GOLDEN))
        .wrapping_add(mix(id as u64))))
}

fn text(rng: &mut SmallRng, min: usize, max: usize) -> String {
    let len = rng.random_range(min..=max);
    (0..len)
        .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
        .collect()
}

impl Generator {
    /// The columns it produces, given the names of the declared columns (for
    /// [`Generator::Columns`]).
    pub fn schema(&self, names: &[String]) -> SchemaRef {
        let fields: Vec<Field> = match self {
            Generator::Columns(cols) => names
                .iter()
                .zip(cols)
                .map(|(n, c)| {
                    let ty = match c {
                        Column::Expr(e) => e.ty(),
                        Column::Random(d, _) => d.ty(),
                    };
                    Field::new(n, crate::expr::arrow_type(ty), false)
                })
                .collect(),
            Generator::Nexmark { table, .. } => table
                .columns()
                .iter()
                .map(|(n, t)| Field::new(*n, crate::expr::arrow_type(*t), false))
                .collect(),
        };
        Arc::new(Schema::new(fields))
    }

    /// The rows for sequence numbers `ids`.
    pub fn batch(
        &self,
        seed: u64,
        ids: &Int64Array,
        schema: &SchemaRef,
    ) -> Result<RecordBatch, ArrowError> {
        let n = ids.len();
        let columns: Vec<ArrayRef> = match self {
            Generator::Columns(cols) => {
                let base = RecordBatch::try_new(
                    Arc::new(Schema::new(vec![Field::new(
                        "id",
                        crate::expr::arrow_type(Ty::Int),
                        false,
                    )])),
                    vec![Arc::new(ids.clone())],
                )?;
                let mut out = Vec::with_capacity(cols.len());
                for c in cols {
                    out.push(match c {
                        Column::Expr(e) => eval(e, &base)?.into_array(n)?,
                        Column::Random(d, salt) => random_column(d, seed, *salt, ids),
                    });
                }
                out
            }
            Generator::Nexmark {
                table,
                events_per_second,
            } => nexmark(*table, *events_per_second, seed, ids),
        };
        RecordBatch::try_new(schema.clone(), columns)
    }
}

fn random_column(d: &Distribution, seed: u64, salt: u64, ids: &Int64Array) -> ArrayRef {
    let ids = ids.values().iter();
    match d {
        Distribution::Uniform(lo, hi) => Arc::new(Float64Array::from_iter_values(
            ids.map(|id| rng(seed, salt, *id).random_range(*lo..*hi)),
        )),
        Distribution::UniformInt(lo, hi) => Arc::new(Int64Array::from_iter_values(
            ids.map(|id| rng(seed, salt, *id).random_range(*lo..=*hi)),
        )),
        Distribution::Normal(dist) => Arc::new(Float64Array::from_iter_values(
            ids.map(|id| dist.sample(&mut rng(seed, salt, *id))),
        )),
        Distribution::Zipf(dist) => Arc::new(Int64Array::from_iter_values(
            ids.map(|id| dist.sample(&mut rng(seed, salt, *id)) as i64),
        )),
        Distribution::OneOf(values) => {
            Arc::new(StringArray::from_iter_values(ids.map(|id| {
                &values[rng(seed, salt, *id).random_range(0..values.len())]
            })))
        }
        Distribution::Text(min, max) => Arc::new(StringArray::from_iter_values(
            ids.map(|id| text(&mut rng(seed, salt, *id), *min, *max)),
        )),
    }
}

// The Nexmark benchmark's event model (as in its reference generator): of every 50 events,
// 1 is a new person, 3 are new auctions and 46 are bids. Ids start at 1000; half the bids go
// to a "hot" auction, three quarters come from "hot" bidders, a quarter of auctions from hot
// sellers; prices are log-uniform from 1 to 10⁶ dollars (in cents).

const PROPORTION: i64 = 50;
const PERSONS: i64 = 1;
const AUCTIONS: i64 = 3;
const FIRST_ID: i64 = 1000;
const HOT_AUCTION_RATIO: i64 = 2;
const HOT_BIDDER_RATIO: i64 = 4;
const HOT_SELLER_RATIO: i64 = 4;
/// Event time of event 0: 2023-11-14T22:13:20Z.
pub const NEXMARK_BASE_MS: i64 = 1_700_000_000_000;

const FIRST_NAMES: &[&str] = &[
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];
const LAST_NAMES: &[&str] = &[
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
];
const CITIES: &[&str] = &[
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];
const STATES: &[&str] = &["AZ", "CA", "ID", "OR", "WA", "WY"];
const CHANNELS: &[&str] = &["Google", "Facebook", "Baidu", "Apple"];

/// The global event number of the `i`-th row of `table`.
fn event_number(table: Table, i: i64) -> i64 {
    match table {
        Table::Person => i * PROPORTION,
        Table::Auction => (i / AUCTIONS) * PROPORTION + PERSONS + i % AUCTIONS,
        Table::Bid => {
            let per = PROPORTION - PERSONS - AUCTIONS;
            (i / per) * PROPORTION + PERSONS + AUCTIONS + i % per
        }
    }
}

/// The highest person id (0-based) that exists by event `e`.
fn last_person(e: i64) -> i64 {
    let (epoch, offset) = (e / PROPORTION, e % PROPORTION);
    epoch * PERSONS + offset.min(PERSONS - 1)
}

/// The highest auction id (0-based) that exists by event `e`.
fn last_auction(e: i64) -> i64 {
    let (epoch, offset) = (e / PROPORTION, e % PROPORTION);
    let offset = if offset < PERSONS {
        -1
    } else {
        (offset - PERSONS).min(AUCTIONS - 1)
    };
    (epoch * AUCTIONS + offset).max(0)
}

/// A recent person (for sellers and bidders): the hot ones, or one of the last 1000.
fn pick_person(r: &mut SmallRng, e: i64, hot_ratio: i64) -> i64 {
    let last = last_person(e);
    let base0 = if r.random_range(0..hot_ratio) > 0 {
        (last / hot_ratio) * hot_ratio
    } else {
        last - r.random_range(0..1000).min(last)
    };
    FIRST_ID + base0
}

fn nexmark(table: Table, events_per_second: u64, seed: u64, ids: &Int64Array) -> Vec<ArrayRef> {
    let eps = events_per_second.max(1) as i64;
    let time = |e: i64| NEXMARK_BASE_MS + e * 1000 / eps;
    let salt = match table {
        Table::Person => 1,
        Table::Auction => 2,
        Table::Bid => 3,
    };
    let rows = ids.values();
    let ints = |f: &dyn Fn(i64, &mut SmallRng) -> i64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|i| {
            let e = event_number(table, *i);
            f(e, &mut rng(seed, salt, e))
        })))
    };
    let strs = |f: &dyn Fn(i64, &mut SmallRng) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(|i| {
            let e = event_number(table, *i);
            f(e, &mut rng(seed, salt, e))
        })))
    };
    // Each field draws from the row's generator after skipping the draws of the fields
    // before it, so fields are independent yet the same for the same event.
    let skip = |r: &mut SmallRng, n: usize| {
        for _ in 0..n {
            r.random::<u64>();
        }
    };
    match table {
        Table::Person => vec![
            ints(&|e, _| FIRST_ID + last_person(e)),
            strs(&|_, r| {
                format!(
                    "{} {}",
                    FIRST_NAMES[r.random_range(0..FIRST_NAMES.len())],
                    LAST_NAMES[r.random_range(0..LAST_NAMES.len())]
                )
            }),
            strs(&|_, r| {
                skip(r, 2);
                format!("{}@{}.com", text(r, 3, 7), text(r, 3, 7))
            }),
            strs(&|_, r| {
                skip(r, 3);
                format!(
                    "{:04} {:04} {:04} {:04}",
                    r.random_range(0..10_000),
                    r.random_range(0..10_000),
                    r.random_range(0..10_000),
                    r.random_range(0..10_000)
                )
            }),
            strs(&|_, r| {
                skip(r, 4);
                CITIES[r.random_range(0..CITIES.len())].to_owned()
            }),
            strs(&|_, r| {
                skip(r, 5);
                STATES[r.random_range(0..STATES.len())].to_owned()
            }),
            ints(&|e, _| time(e)),
            strs(&|_, r| {
                skip(r, 6);
                text(r, 0, 20)
            }),
        ],
        Table::Auction => vec![
            ints(&|e, _| FIRST_ID + last_auction(e)),
            strs(&|_, r| text(r, 5, 20)),
            strs(&|_, r| {
                skip(r, 1);
                text(r, 20, 100)
            }),
            ints(&|_, r| {
                skip(r, 2);
                price(r)
            }),
            ints(&|_, r| {
                skip(r, 2);
                let initial = price(r);
                initial + price(r)
            }),
            ints(&|e, _| time(e)),
            ints(&|e, r| {
                skip(r, 4);
                time(e) + r.random_range(1_000..600_000)
            }),
            ints(&|e, r| {
                skip(r, 5);
                pick_person(r, e, HOT_SELLER_RATIO)
            }),
            ints(&|_, r| {
                skip(r, 6);
                10 + r.random_range(0..5)
            }),
            strs(&|_, r| {
                skip(r, 7);
                text(r, 0, 20)
            }),
        ],
        Table::Bid => vec![
            ints(&|e, r| {
                let last = last_auction(e);
                let base0 = if r.random_range(0..HOT_AUCTION_RATIO) > 0 {
                    (last / HOT_AUCTION_RATIO) * HOT_AUCTION_RATIO
                } else {
                    last - r.random_range(0..100).min(last)
                };
                FIRST_ID + base0
            }),
            ints(&|e, r| {
                skip(r, 2);
                pick_person(r, e, HOT_BIDDER_RATIO)
            }),
            ints(&|_, r| {
                skip(r, 4);
                price(r)
            }),
            strs(&|_, r| {
                skip(r, 5);
                CHANNELS[r.random_range(0..CHANNELS.len())].to_owned()
            }),
            strs(&|_, r| {
                skip(r, 6);
                format!(
                    "https://www.nexmark.com/{}/item.htm?query=1",
                    text(r, 5, 10)
                )
            }),
            ints(&|e, _| time(e)),
            strs(&|_, r| {
                skip(r, 7);
                text(r, 0, 20)
            }),
        ],
    }
}

/// Nexmark's price in cents: `round(10^(6u) · 100)`, log-uniform from 1 to 10⁶ dollars.
fn price(r: &mut SmallRng) -> i64 {
    (10f64.powf(r.random::<f64>() * 6.0) * 100.0).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(range: std::ops::Range<i64>) -> Int64Array {
        Int64Array::from_iter_values(range)
    }

    #[test]
    fn nexmark_keeps_its_proportions_and_refers_only_to_existing_ids() {
        let g = |table| Generator::Nexmark {
            table,
            events_per_second: 1000,
        };
        let person = g(Table::Person);
        let bids = g(Table::Bid);
        let schema = bids.schema(&[]);
        let b = bids.batch(7, &ids(0..4600), &schema).unwrap();
        let col = |name: &str| -> Int64Array {
            b.column_by_name(name)
                .unwrap()
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .clone()
        };
        let (auction, bidder, time) = (col("auction"), col("bidder"), col("date_time"));
        // 4600 bids span 100 epochs of 50 events: 100 persons, 300 auctions.
        assert!(auction.values().iter().all(|a| (1000..1300).contains(a)));
        assert!(bidder.values().iter().all(|p| (1000..1100).contains(p)));
        // In event-time order at 1000 events per second: 5000 events take 5 s.
        assert!(time.values().windows(2).all(|w| w[0] <= w[1]));
        assert!(time.value(4599) - NEXMARK_BASE_MS < 5000);
        // Half the bids go to hot auctions (even base-0 ids, every second one).
        let hot = auction
            .values()
            .iter()
            .filter(|a| (**a - 1000) % 2 == 0)
            .count();
        assert!(hot > 2300, "{hot}");
        // Person i is born at event 50·i: its time is the 50·i-th event's.
        let p = person.batch(7, &ids(0..3), &person.schema(&[])).unwrap();
        let ptime = p.column(6).as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(ptime.value(2), NEXMARK_BASE_MS + 100);
    }

    #[test]
    fn random_columns_depend_only_on_seed_and_id() {
        let g = Generator::Columns(vec![
            Column::Random(Distribution::UniformInt(1, 6), 0),
            Column::Random(Distribution::Normal(Normal::new(10.0, 2.0).unwrap()), 1),
            Column::Random(Distribution::Zipf(Zipf::new(100.0, 1.2).unwrap()), 2),
            Column::Random(Distribution::OneOf(vec!["a".into(), "b".into()].into()), 3),
        ]);
        let names: Vec<String> = ["die", "x", "z", "s"].map(String::from).to_vec();
        let schema = g.schema(&names);
        let all = g.batch(1, &ids(0..10_000), &schema).unwrap();
        let part = g.batch(1, &ids(5_000..5_010), &schema).unwrap();
        assert_eq!(all.slice(5_000, 10), part);
        let other_seed = g.batch(2, &ids(5_000..5_010), &schema).unwrap();
        assert_ne!(part, other_seed);
        let die = all.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        assert!(die.values().iter().all(|v| (1..=6).contains(v)));
        let x = all
            .column(1)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        let mean = x.values().iter().sum::<f64>() / 10_000.0;
        assert!((mean - 10.0).abs() < 0.1, "{mean}");
        let z = all.column(2).as_any().downcast_ref::<Int64Array>().unwrap();
        let ones = z.values().iter().filter(|v| **v == 1).count();
        let tens = z.values().iter().filter(|v| **v == 10).count();
        assert!(ones > 5 * tens, "zipf: {ones} ones, {tens} tens");
    }
}
