//! The store's tables as ingest fills them, and how each is laid out when
//! sealed.

use seam_correlate::{boundaries_schema, boundary_col, orphan_col, orphans_schema};
use seam_model::schema::{col, spans_schema};
use seam_store::{Layout, TableSpec};

fn layout(sort_by: &[&str], bloom: &[&str]) -> Layout {
    Layout {
        sort_by: sort_by.iter().map(|s| (*s).to_owned()).collect(),
        bloom: bloom.iter().map(|s| (*s).to_owned()).collect(),
        distinct: Vec::new(),
    }
}

/// `spans`, `boundaries` and `orphans`. Sealed spans are sorted by trace
/// so a trace is one run of rows in one row group; boundaries by consumer
/// trace, with bloom filters on both trace ids for flow lookups.
pub fn store_tables() -> Vec<TableSpec> {
    vec![
        TableSpec {
            name: "spans".into(),
            schema: spans_schema(),
            time_column: col::START_TIME.into(),
            layout: Layout {
                distinct: vec![col::SPAN_ID.into(), col::PARENT_SPAN_ID.into()],
                ..layout(&[col::TRACE_ID, col::START_TIME], &[col::TRACE_ID])
            },
        },
        TableSpec {
            name: "boundaries".into(),
            schema: boundaries_schema(),
            time_column: boundary_col::CONSUMER_TIME.into(),
            layout: layout(
                &[boundary_col::CONSUMER_TRACE_ID, boundary_col::CONSUMER_TIME],
                &[
                    boundary_col::PRODUCER_TRACE_ID,
                    boundary_col::CONSUMER_TRACE_ID,
                ],
            ),
        },
        TableSpec {
            name: "orphans".into(),
            schema: orphans_schema(),
            time_column: orphan_col::TIME.into(),
            layout: layout(&[orphan_col::TRACE_ID], &[orphan_col::TRACE_ID]),
        },
    ]
}
