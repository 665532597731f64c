//! What a scan's filters say about one column, read from the simple
//! shapes DataFusion hands a table provider (`column op literal`, `IN`
//! lists, `OR`s of equalities): bounds on a time column, the values a key
//! column may take. Anything else says nothing, and DataFusion still
//! applies every filter to the rows a scan returns.

use std::collections::HashSet;

use datafusion::common::{Column, ScalarValue};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};

/// `filter` as `column op literal`, the operator turned when the literal
/// comes first.
pub fn comparison(filter: &Expr) -> Option<(&Column, Operator, &ScalarValue)> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = filter else {
        return None;
    };
    match (left.as_ref(), right.as_ref()) {
        (Expr::Column(c), Expr::Literal(v, _)) => Some((c, *op, v)),
        (Expr::Literal(v, _), Expr::Column(c)) => op.swap().map(|op| (c, op, v)),
        _ => None,
    }
}

/// A timestamp literal in nanoseconds.
pub fn timestamp_ns(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(*v),
        ScalarValue::TimestampMicrosecond(Some(v), _) => v.checked_mul(1_000),
        ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000_000),
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000_000),
        _ => None,
    }
}

/// Inclusive bounds on a time column, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBounds {
    pub start: Option<i64>,
    pub end: Option<i64>,
}

impl TimeBounds {
    pub const ALL: Self = Self {
        start: None,
        end: None,
    };

    /// Narrows to what `filter` says of `column`; whether it said anything.
    pub fn add(&mut self, filter: &Expr, column: &str) -> bool {
        let Some((c, op, value)) = comparison(filter) else {
            return false;
        };
        let Some(ns) = timestamp_ns(value).filter(|_| c.name == column) else {
            return false;
        };
        let (start, end) = (self.start.unwrap_or(i64::MIN), self.end.unwrap_or(i64::MAX));
        match op {
            Operator::Gt => self.start = Some(start.max(ns.saturating_add(1))),
            Operator::GtEq => self.start = Some(start.max(ns)),
            Operator::Lt => self.end = Some(end.min(ns.saturating_sub(1))),
            Operator::LtEq => self.end = Some(end.min(ns)),
            Operator::Eq => {
                self.start = Some(start.max(ns));
                self.end = Some(end.min(ns));
            }
            _ => return false,
        }
        true
    }

    /// The bounds every one of `filters` puts on `column`.
    pub fn of(filters: &[Expr], column: &str) -> Self {
        let mut bounds = Self::ALL;
        for f in filters {
            bounds.add(f, column);
        }
        bounds
    }

    pub fn contains(&self, ns: i64) -> bool {
        self.start.is_none_or(|s| ns >= s) && self.end.is_none_or(|e| ns <= e)
    }
}

/// The string values `filter` allows `column` (`=`, `IN`, an `OR` of
/// `=`), `None` when it does not constrain it that way.
fn key_values(filter: &Expr, column: &str) -> Option<HashSet<String>> {
    let text = |v: &ScalarValue| match v {
        ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => Some(s.clone()),
        _ => None,
    };
    match filter {
        Expr::InList(list) if !list.negated => {
            let Expr::Column(c) = list.expr.as_ref() else {
                return None;
            };
            if c.name != column {
                return None;
            }
            (list.list.iter())
                .map(|e| match e {
                    Expr::Literal(v, _) => text(v),
                    _ => None,
                })
                .collect()
        }
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Or,
            right,
        }) => {
            let mut values = key_values(left, column)?;
            values.extend(key_values(right, column)?);
            Some(values)
        }
        _ => {
            let (c, op, value) = comparison(filter)?;
            (c.name == column && op == Operator::Eq)
                .then(|| text(value))
                .flatten()
                .map(|v| HashSet::from([v]))
        }
    }
}

/// The values `filters` (all of which hold) allow `column`, `None` when
/// they do not narrow it to a list.
pub fn keys(filters: &[Expr], column: &str) -> Option<HashSet<String>> {
    filters
        .iter()
        .filter_map(|f| key_values(f, column))
        .reduce(|a, b| a.intersection(&b).cloned().collect())
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::{col, lit};

    use super::*;

    fn ts(ns: i64) -> Expr {
        lit(ScalarValue::TimestampNanosecond(
            Some(ns),
            Some("UTC".into()),
        ))
    }

    #[test]
    fn reads_time_bounds_either_way_round() {
        let filters = [
            col("t").gt(ts(10)),
            ts(20).gt_eq(col("t")),
            col("other").lt(ts(15)),
            col("t").lt(lit(5)),
        ];
        assert_eq!(
            TimeBounds::of(&filters, "t"),
            TimeBounds {
                start: Some(11),
                end: Some(20)
            }
        );
        assert_eq!(TimeBounds::of(&filters[2..], "t"), TimeBounds::ALL);
    }

    #[test]
    fn reads_keys_from_equalities_lists_and_ors() {
        let one = col("k").eq(lit("a"));
        let list = col("k").in_list(vec![lit("a"), lit("b")], false);
        let or = col("k").eq(lit("b")).or(col("k").eq(lit("c")));
        let set = |v: &[&str]| Some(v.iter().map(|s| (*s).to_owned()).collect::<HashSet<_>>());
        assert_eq!(keys(std::slice::from_ref(&one), "k"), set(&["a"]));
        assert_eq!(keys(std::slice::from_ref(&list), "k"), set(&["a", "b"]));
        assert_eq!(keys(&[list.clone(), or.clone()], "k"), set(&["b"]));
        assert_eq!(keys(&[or, col("x").eq(lit("z"))], "k"), set(&["b", "c"]));
        assert_eq!(keys(&[col("k").in_list(vec![lit("a")], true)], "k"), None);
        assert_eq!(keys(&[col("k").gt(lit("a"))], "k"), None);
    }
}
