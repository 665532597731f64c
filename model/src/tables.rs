//! The tables Seam keeps, named once: what the store lays out and seals,
//! what ingest and correlation write, and what SQL reads. The store, the
//! collector and the query side all take them from here.

use arrow::datatypes::SchemaRef;

use crate::schema::{
    boundaries_schema, boundary_col, col, edge_rollups_schema, function_rollups_schema,
    operation_rollups_schema, orphan_col, orphans_schema, rollup_col, spans_hot_schema,
    spans_schema, trace_col, traces_schema,
};

pub const SPANS: &str = "spans";
pub const BOUNDARIES: &str = "boundaries";
pub const ORPHANS: &str = "orphans";
pub const TRACES: &str = "traces";
pub const EDGE_ROLLUPS: &str = "edge_rollups";
pub const FUNCTION_ROLLUPS: &str = "function_rollups";
pub const OPERATION_ROLLUPS: &str = "operation_rollups";

/// Who appends a table's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Each export's write, logged first (the spans).
    Ingest,
    /// What follows the committed writes and derives rows from them
    /// (correlation's boundaries and orphans); rebuilt from the log on
    /// replay, never logged itself.
    Derived,
}

/// One table: its name, schema, and how its rows are kept.
#[derive(Debug, Clone)]
pub struct TableDef {
    pub name: &'static str,
    /// What SQL reads and sealed files hold.
    pub schema: SchemaRef,
    /// What rows in memory hold, when it differs from `schema`: the same
    /// columns, some kept more compactly and cast to `schema`'s types
    /// when read or sealed.
    pub hot_schema: Option<SchemaRef>,
    pub source: Source,
    /// Nanosecond timestamp column that time pruning and retention use.
    pub time_column: &'static str,
    /// Columns sealed rows are sorted by, so the rows a lookup wants sit
    /// together in one row group.
    pub sort_by: &'static [&'static str],
    /// Columns looked up by equality (trace ids): bloom filters per row
    /// group in sealed files, sets of values per segment in memory.
    pub keys: &'static [&'static str],
    /// Columns whose values are nearly all distinct (span ids, times):
    /// written without a dictionary, which would only be built to be
    /// abandoned, and decoded whole by every lookup until it was.
    pub distinct: &'static [&'static str],
}

impl TableDef {
    /// What rows in memory hold.
    pub fn hot(&self) -> SchemaRef {
        self.hot_schema
            .clone()
            .unwrap_or_else(|| self.schema.clone())
    }
}

/// `spans`: sorted by trace, so a trace is one run of rows in one row
/// group.
pub fn spans() -> TableDef {
    TableDef {
        name: SPANS,
        schema: spans_schema(),
        // A resource's attributes once per run of its spans.
        hot_schema: Some(spans_hot_schema()),
        source: Source::Ingest,
        time_column: col::START_TIME,
        sort_by: &[col::TRACE_ID, col::START_TIME],
        keys: &[col::TRACE_ID],
        distinct: &[
            col::SPAN_ID,
            col::PARENT_SPAN_ID,
            col::START_TIME,
            col::END_TIME,
        ],
    }
}

/// `boundaries`: sorted by consumer trace, with both trace ids as keys
/// for flow lookups.
pub fn boundaries() -> TableDef {
    TableDef {
        name: BOUNDARIES,
        schema: boundaries_schema(),
        hot_schema: None,
        source: Source::Derived,
        time_column: boundary_col::CONSUMER_TIME,
        sort_by: &[boundary_col::CONSUMER_TRACE_ID, boundary_col::CONSUMER_TIME],
        keys: &[
            boundary_col::PRODUCER_TRACE_ID,
            boundary_col::CONSUMER_TRACE_ID,
        ],
        distinct: &[],
    }
}

/// `orphans`: by trace.
pub fn orphans() -> TableDef {
    TableDef {
        name: ORPHANS,
        schema: orphans_schema(),
        hot_schema: None,
        source: Source::Derived,
        time_column: orphan_col::TIME,
        sort_by: &[orphan_col::TRACE_ID],
        keys: &[orphan_col::TRACE_ID],
        distinct: &[],
    }
}

/// `traces`: one summary per trace, written by correlation once the trace
/// has gone quiet. Sorted by start, so "newest first" reads the last row
/// groups of each file and the statistics of the others rule them out; the
/// trace id is a key for the few lookups by id.
pub fn traces() -> TableDef {
    TableDef {
        name: TRACES,
        schema: traces_schema(),
        hot_schema: None,
        source: Source::Derived,
        time_column: trace_col::START_TIME,
        sort_by: &[trace_col::START_TIME],
        keys: &[trace_col::TRACE_ID],
        distinct: &[trace_col::TRACE_ID, trace_col::ROOT_SPAN_ID],
    }
}

/// `edge_rollups`: a row per edge and minute, written by correlation once
/// the minute has gone quiet (a boundary arriving later adds a row).
pub fn edge_rollups() -> TableDef {
    TableDef {
        name: EDGE_ROLLUPS,
        schema: edge_rollups_schema(),
        hot_schema: None,
        source: Source::Derived,
        time_column: rollup_col::MINUTE,
        sort_by: &[rollup_col::MINUTE],
        keys: &[],
        distinct: &[],
    }
}

/// `function_rollups`: a row per function and minute, as `edge_rollups`.
pub fn function_rollups() -> TableDef {
    TableDef {
        name: FUNCTION_ROLLUPS,
        schema: function_rollups_schema(),
        hot_schema: None,
        source: Source::Derived,
        time_column: rollup_col::MINUTE,
        sort_by: &[rollup_col::MINUTE],
        keys: &[],
        distinct: &[],
    }
}

/// `operation_rollups`: a row per service operation and minute, as
/// `edge_rollups`: what the explorer's service and operation lists add up.
pub fn operation_rollups() -> TableDef {
    TableDef {
        name: OPERATION_ROLLUPS,
        schema: operation_rollups_schema(),
        hot_schema: None,
        source: Source::Derived,
        time_column: rollup_col::MINUTE,
        sort_by: &[rollup_col::MINUTE],
        keys: &[],
        distinct: &[],
    }
}

/// Every stored table. (`flows` is a view over these, defined by the
/// query side.)
pub fn all() -> Vec<TableDef> {
    vec![
        spans(),
        boundaries(),
        orphans(),
        traces(),
        edge_rollups(),
        function_rollups(),
        operation_rollups(),
    ]
}
