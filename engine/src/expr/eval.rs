//! Evaluation of compiled expressions on Arrow batches.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, Scalar, StringArray, StringBuilder,
};
use arrow::compute::cast;
use arrow::compute::kernels::{boolean, cmp, comparison, numeric, zip};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::{BinOp, Expr, Func, Lit, Ty};

/// A column result: a full array, or one value standing for every row.
#[derive(Debug, Clone)]
pub enum Value {
    /// One value per row.
    Array(ArrayRef),
    /// The same value for every row (an array of length 1).
    Scalar(ArrayRef),
}

impl Value {
    fn datum(&self) -> Box<dyn arrow::array::Datum + '_> {
        match self {
            Value::Array(a) => Box::new(a.clone()),
            Value::Scalar(a) => Box::new(Scalar::new(a.clone())),
        }
    }

    /// As a full array of `len` rows.
    pub fn into_array(self, len: usize) -> Result<ArrayRef, ArrowError> {
        match self {
            Value::Array(a) => Ok(a),
            Value::Scalar(a) => {
                let indices = arrow::array::UInt32Array::from(vec![0u32; len]);
                arrow::compute::take(a.as_ref(), &indices, None)
            }
        }
    }

    fn len_or(&self, n: usize) -> usize {
        match self {
            Value::Array(a) => a.len(),
            Value::Scalar(_) => n,
        }
    }
}

fn lit_array(l: &Lit) -> ArrayRef {
    match l {
        Lit::Int(v) => Arc::new(Int64Array::from(vec![*v])),
        Lit::Float(v) => Arc::new(Float64Array::from(vec![*v])),
        Lit::Str(v) => Arc::new(StringArray::from(vec![v.as_str()])),
        Lit::Bool(v) => Arc::new(BooleanArray::from(vec![*v])),
    }
}

fn bools(v: &Value, len: usize) -> Result<BooleanArray, ArrowError> {
    let a = v.clone().into_array(len)?;
    Ok(a.as_any()
        .downcast_ref::<BooleanArray>()
        .ok_or_else(|| ArrowError::CastError("expected booleans".into()))?
        .clone())
}

fn strings(v: &Value, len: usize) -> Result<StringArray, ArrowError> {
    let a = v.clone().into_array(len)?;
    Ok(a.as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| ArrowError::CastError("expected strings".into()))?
        .clone())
}

fn ints(v: &Value, len: usize) -> Result<Int64Array, ArrowError> {
    let a = v.clone().into_array(len)?;
    let a = cast(&a, &arrow::datatypes::DataType::Int64)?;
    Ok(a.as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| ArrowError::CastError("expected integers".into()))?
        .clone())
}

/// Integer `/` or `%` of a column by a constant other than 0 and -1 (which cannot fail), by
/// multiplication with a precomputed reciprocal instead of a hardware division per row.
/// Truncates toward zero, and the remainder takes the dividend's sign, as Java's.
fn by_constant(op: BinOp, a: &Value, b: &Value) -> Option<ArrayRef> {
    let (Value::Array(x), Value::Scalar(d)) = (a, b) else {
        return None;
    };
    let x = x.as_any().downcast_ref::<Int64Array>()?;
    let d = d.as_any().downcast_ref::<Int64Array>()?.value(0);
    if d == 0 || d == -1 {
        return None;
    }
    let reduced = strength_reduce::StrengthReducedU64::new(d.unsigned_abs());
    let quotient = move |v: i64| -> i64 {
        let q = (v.unsigned_abs() / reduced) as i64;
        if (v < 0) != (d < 0) {
            q.wrapping_neg()
        } else {
            q
        }
    };
    let out: Int64Array = if op == BinOp::Div {
        x.unary(quotient)
    } else {
        x.unary(|v| v.wrapping_sub(quotient(v).wrapping_mul(d)))
    };
    Some(Arc::new(out))
}

/// Evaluates `expr` over `batch`.
pub fn eval(expr: &Expr, batch: &RecordBatch) -> Result<Value, ArrowError> {
    let n = batch.num_rows();
    Ok(match expr {
        Expr::Column(i, Ty::Int) => {
            let col = batch.column(*i);
            if col.data_type() == &arrow::datatypes::DataType::Int64 {
                Value::Array(col.clone())
            } else {
                Value::Array(cast(col, &arrow::datatypes::DataType::Int64)?)
            }
        }
        Expr::Column(i, _) => Value::Array(batch.column(*i).clone()),
        Expr::Literal(l) => Value::Scalar(lit_array(l)),
        Expr::Binary(op, l, r, _) => {
            let (a, b) = (eval(l, batch)?, eval(r, batch)?);
            let scalar = matches!((&a, &b), (Value::Scalar(_), Value::Scalar(_)));
            let (da, db) = (a.datum(), b.datum());
            let out: ArrayRef = match op {
                // BIGINT arithmetic wraps on overflow, as Java's long (and Flink's) does.
                BinOp::Add => numeric::add_wrapping(da.as_ref(), db.as_ref())?,
                BinOp::Sub => numeric::sub_wrapping(da.as_ref(), db.as_ref())?,
                BinOp::Mul => numeric::mul_wrapping(da.as_ref(), db.as_ref())?,
                BinOp::Div | BinOp::Rem => match by_constant(*op, &a, &b) {
                    Some(out) => out,
                    None if *op == BinOp::Div => numeric::div(da.as_ref(), db.as_ref())?,
                    None => numeric::rem(da.as_ref(), db.as_ref())?,
                },
                BinOp::Eq => Arc::new(cmp::eq(da.as_ref(), db.as_ref())?),
                BinOp::NotEq => Arc::new(cmp::neq(da.as_ref(), db.as_ref())?),
                BinOp::Lt => Arc::new(cmp::lt(da.as_ref(), db.as_ref())?),
                BinOp::LtEq => Arc::new(cmp::lt_eq(da.as_ref(), db.as_ref())?),
                BinOp::Gt => Arc::new(cmp::gt(da.as_ref(), db.as_ref())?),
                BinOp::GtEq => Arc::new(cmp::gt_eq(da.as_ref(), db.as_ref())?),
                BinOp::And => Arc::new(boolean::and_kleene(&bools(&a, n)?, &bools(&b, n)?)?),
                BinOp::Or => Arc::new(boolean::or_kleene(&bools(&a, n)?, &bools(&b, n)?)?),
            };
            if scalar {
                Value::Scalar(out)
            } else {
                Value::Array(out)
            }
        }
        Expr::Not(x) => {
            let v = eval(x, batch)?;
            Value::Array(Arc::new(boolean::not(&bools(&v, n)?)?))
        }
        Expr::Neg(x, _) => {
            let v = eval(x, batch)?;
            Value::Array(numeric::neg(v.into_array(n)?.as_ref())?)
        }
        Expr::Case(branches, otherwise, ty) => {
            let mut acc: Value = match otherwise {
                Some(e) => eval(e, batch)?,
                None => Value::Array(arrow::array::new_null_array(&super::arrow_type(*ty), n)),
            };
            for (cond, then) in branches.iter().rev() {
                let mask = bools(&eval(cond, batch)?, n)?;
                let t = eval(then, batch)?;
                let out = {
                    let (dt, de) = (t.datum(), acc.datum());
                    zip::zip(&mask, dt.as_ref(), de.as_ref())?
                };
                acc = Value::Array(out);
            }
            Value::Array(acc.into_array(n)?)
        }
        Expr::Like(x, pattern, negated) => {
            let v = eval(x, batch)?;
            let p = Value::Scalar(Arc::new(StringArray::from(vec![pattern.as_str()])));
            let (dv, dp) = (v.datum(), p.datum());
            let out = if *negated {
                comparison::nlike(dv.as_ref(), dp.as_ref())?
            } else {
                comparison::like(dv.as_ref(), dp.as_ref())?
            };
            Value::Array(Arc::new(out))
        }
        Expr::Cast(x, ty) => {
            let v = eval(x, batch)?;
            match v {
                Value::Scalar(a) => Value::Scalar(cast(&a, &super::arrow_type(*ty))?),
                Value::Array(a) => Value::Array(cast(&a, &super::arrow_type(*ty))?),
            }
        }
        Expr::Call(func, args, _) => {
            let vals: Vec<Value> = args
                .iter()
                .map(|a| eval(a, batch))
                .collect::<Result<_, _>>()?;
            let len = vals.iter().map(|v| v.len_or(n)).max().unwrap_or(n);
            Value::Array(call(*func, &vals, len)?)
        }
    })
}

fn map_strings(s: &StringArray, f: impl Fn(&str) -> String) -> ArrayRef {
    let mut b = StringBuilder::with_capacity(s.len(), s.value_data().len());
    for i in 0..s.len() {
        if s.is_null(i) {
            b.append_null()
        } else {
            b.append_value(f(s.value(i)))
        }
    }
    Arc::new(b.finish())
}

fn call(func: Func, args: &[Value], n: usize) -> Result<ArrayRef, ArrowError> {
    Ok(match func {
        Func::Upper => map_strings(&strings(&args[0], n)?, |s| s.to_uppercase()),
        Func::Lower => map_strings(&strings(&args[0], n)?, |s| s.to_lowercase()),
        Func::CharLength => {
            let s = strings(&args[0], n)?;
            Arc::new(
                (0..s.len())
                    .map(|i| (!s.is_null(i)).then(|| s.value(i).chars().count() as i64))
                    .collect::<Int64Array>(),
            )
        }
        Func::Abs => {
            let a = args[0].clone().into_array(n)?;
            match a.as_any().downcast_ref::<Int64Array>() {
                Some(i) => Arc::new(
                    i.iter()
                        .map(|v| v.map(i64::wrapping_abs))
                        .collect::<Int64Array>(),
                ),
                None => {
                    let f = a
                        .as_any()
                        .downcast_ref::<Float64Array>()
                        .ok_or_else(|| ArrowError::CastError("ABS needs a number".into()))?;
                    Arc::new(f.iter().map(|v| v.map(f64::abs)).collect::<Float64Array>())
                }
            }
        }
        Func::Concat => {
            let parts: Vec<StringArray> = args
                .iter()
                .map(|a| strings(a, n))
                .collect::<Result<_, _>>()?;
            let mut b = StringBuilder::with_capacity(n, n * 16);
            let mut row = String::new();
            for i in 0..n {
                row.clear();
                let mut null = false;
                for p in &parts {
                    let j = if p.len() == 1 { 0 } else { i };
                    if p.is_null(j) {
                        null = true;
                        break;
                    }
                    row.push_str(p.value(j));
                }
                if null {
                    b.append_null()
                } else {
                    b.append_value(&row)
                }
            }
            Arc::new(b.finish())
        }
        Func::Substring => {
            let s = strings(&args[0], n)?;
            let start = ints(&args[1], n)?;
            let len = args.get(2).map(|a| ints(a, n)).transpose()?;
            let mut b = StringBuilder::with_capacity(n, n * 8);
            for i in 0..n {
                let si = if s.len() == 1 { 0 } else { i };
                let pick = |a: &Int64Array| a.value(if a.len() == 1 { 0 } else { i });
                if s.is_null(si) {
                    b.append_null();
                    continue;
                }
                // SQL: 1-based; a start below 1 still counts the missing positions.
                let from = pick(&start);
                let text = s.value(si);
                let (skip, take) = match &len {
                    Some(l) => {
                        let l = pick(l).max(0);
                        let end = from + l;
                        let begin = from.max(1);
                        ((begin - 1) as usize, (end - begin).max(0) as usize)
                    }
                    None => ((from.max(1) - 1) as usize, usize::MAX),
                };
                let out: String = text.chars().skip(skip).take(take).collect();
                b.append_value(out);
            }
            Arc::new(b.finish())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::{parse_sql, scope};
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("b", DataType::Int64, false),
            Field::new("name", DataType::Utf8, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![7, -7, 7, 0])),
                Arc::new(Int64Array::from(vec![2, 2, -2, -3])),
                Arc::new(StringArray::from(vec!["abc", "x", "xyz1", ""])),
            ],
        )
        .unwrap()
    }

    fn run(sql: &str) -> ArrayRef {
        let b = batch();
        let e = scope(&b.schema())
            .unwrap()
            .compile(&parse_sql(sql).unwrap())
            .unwrap();
        eval(&e, &b).unwrap().into_array(b.num_rows()).unwrap()
    }

    fn i64s(a: ArrayRef) -> Vec<i64> {
        a.as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .values()
            .to_vec()
    }

    fn strs(a: ArrayRef) -> Vec<String> {
        let s = a.as_any().downcast_ref::<StringArray>().unwrap();
        (0..s.len()).map(|i| s.value(i).to_owned()).collect()
    }

    #[test]
    fn integer_division_and_mod_follow_java() {
        assert_eq!(i64s(run("a / b")), [3, -3, -3, 0]);
        assert_eq!(i64s(run("MOD(a, b)")), [1, -1, 1, 0]);
        assert_eq!(i64s(run("a * b - 7")), [7, -21, -21, -7]);
        // By a constant (the reciprocal path), against Rust's own truncating / and %.
        for d in [1i64, 2, 3, 7, 100, 1000, 65536, -1000, -3, i64::MAX] {
            let a = [7i64, -7, 7, 0];
            assert_eq!(i64s(run(&format!("a / ({d})"))), a.map(|v| v / d), "/ {d}");
            assert_eq!(
                i64s(run(&format!("MOD(a, {d})"))),
                a.map(|v| v % d),
                "MOD {d}"
            );
        }
    }

    #[test]
    fn by_constant_division_covers_the_extremes() {
        let x: Value = Value::Array(Arc::new(Int64Array::from(vec![
            i64::MIN,
            i64::MIN + 1,
            i64::MAX,
            -1,
            1,
            -999,
            999,
        ])));
        for d in [1i64, -2, 3, 10, 1000, -7, i64::MAX, i64::MIN] {
            let div = Value::Scalar(Arc::new(Int64Array::from(vec![d])));
            let want = |f: fn(i64, i64) -> i64| -> Vec<i64> {
                [i64::MIN, i64::MIN + 1, i64::MAX, -1, 1, -999, 999]
                    .map(|v| f(v, d))
                    .to_vec()
            };
            let got = |op| {
                let a = by_constant(op, &x, &div).unwrap();
                a.as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            };
            assert_eq!(got(BinOp::Div), want(i64::wrapping_div), "/ {d}");
            assert_eq!(got(BinOp::Rem), want(i64::wrapping_rem), "% {d}");
        }
    }

    #[test]
    fn bigint_arithmetic_wraps_like_java() {
        assert_eq!(
            i64s(run("9223372036854775807 + a")),
            [
                i64::MAX.wrapping_add(7),
                i64::MAX - 7,
                i64::MAX.wrapping_add(7),
                i64::MAX
            ]
        );
    }

    #[test]
    fn double_division_keeps_negative_zero() {
        let a = run("CAST(a AS DOUBLE) / b");
        let f = a.as_any().downcast_ref::<Float64Array>().unwrap();
        assert_eq!(f.value(0), 3.5);
        assert!(f.value(3) == 0.0 && f.value(3).is_sign_negative());
    }

    #[test]
    fn strings_case_and_like() {
        assert_eq!(strs(run("UPPER(name)")), ["ABC", "X", "XYZ1", ""]);
        assert_eq!(strs(run("SUBSTRING(name, 2, 3)")), ["bc", "", "yz1", ""]);
        assert_eq!(
            strs(run("CONCAT(name, '#', CAST(a AS STRING))")),
            ["abc#7", "x#-7", "xyz1#7", "#0"]
        );
        assert_eq!(i64s(run("CHAR_LENGTH(name)")), [3, 1, 4, 0]);
        let like = run("name LIKE 'x%'");
        let l = like.as_any().downcast_ref::<BooleanArray>().unwrap();
        assert_eq!(
            (0..4).map(|i| l.value(i)).collect::<Vec<_>>(),
            [false, true, true, false]
        );
        assert_eq!(
            strs(run(
                "CASE WHEN a < 0 THEN 'neg' WHEN a = 0 THEN 'zero' ELSE 'pos' END"
            )),
            ["pos", "neg", "pos", "zero"]
        );
    }
}
