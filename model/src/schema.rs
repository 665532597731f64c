//! The Arrow schemas of the stored tables: `spans`, column by column as
//! the query contract names them (docs/contract.md §6), followed by a few extra
//! columns Seam keeps; `boundaries` and `orphans`, which correlation fills.
//!
//! Low-cardinality strings (kind, service, platform, …) are dictionary
//! encoded: SQL sees ordinary strings, memory holds each distinct value once
//! per batch.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef, TimeUnit};

/// Column names of `spans`, shared by every crate that reads or writes them.
pub mod col {
    pub const TRACE_ID: &str = "trace_id";
    pub const SPAN_ID: &str = "span_id";
    pub const PARENT_SPAN_ID: &str = "parent_span_id";
    pub const FLOW_ID: &str = "flow_id";
    pub const NAME: &str = "name";
    pub const KIND: &str = "kind";
    pub const SERVICE_NAME: &str = "service_name";
    pub const PLATFORM: &str = "platform";
    pub const INSTANCE: &str = "instance";
    pub const START_TIME: &str = "start_time";
    pub const END_TIME: &str = "end_time";
    pub const DURATION_NS: &str = "duration_ns";
    pub const STATUS_CODE: &str = "status_code";
    pub const STATUS_MESSAGE: &str = "status_message";
    pub const COLD_START: &str = "cold_start";
    pub const COLD_START_TYPE: &str = "cold_start_type";
    pub const INIT_DURATION_NS: &str = "init_duration_ns";
    pub const MESSAGING_SYSTEM: &str = "messaging_system";
    pub const MESSAGING_OPERATION: &str = "messaging_operation";
    pub const MESSAGING_DESTINATION: &str = "messaging_destination";
    pub const MESSAGING_MESSAGE_ID: &str = "messaging_message_id";
    pub const FAAS_TRIGGER: &str = "faas_trigger";
    pub const ATTRIBUTES: &str = "attributes";
    pub const RESOURCE_ATTRIBUTES: &str = "resource_attributes";
    pub const LINKS: &str = "links";
    pub const EVENTS: &str = "events";
    pub const FAAS_INVOCATION_ID: &str = "faas_invocation_id";
    pub const TRACE_STATE: &str = "trace_state";
    pub const SCOPE_NAME: &str = "scope_name";
    pub const SCOPE_VERSION: &str = "scope_version";
    pub const COLD_START_SOURCE: &str = "cold_start_source";
}

/// The timestamp type of every time column: nanoseconds, UTC.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// A dictionary-encoded string, for columns with few distinct values.
pub fn dict_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// `Map<Dictionary<Int32, Utf8>, Utf8>` with the field names Arrow's
/// `MapBuilder` produces: a batch holds each distinct key once, and
/// `attributes['k']` compares `'k'` with those keys, not with every
/// entry's.
pub fn attributes_type() -> DataType {
    let entries = Fields::from(vec![
        Field::new("keys", dict_type(), false),
        Field::new("values", DataType::Utf8, true),
    ]);
    DataType::Map(
        Arc::new(Field::new("entries", DataType::Struct(entries), false)),
        false,
    )
}

/// The fields of one element of `links`.
pub fn link_fields() -> Fields {
    Fields::from(vec![
        Field::new("trace_id", DataType::Utf8, false),
        Field::new("span_id", DataType::Utf8, false),
        Field::new("trace_state", DataType::Utf8, false),
        Field::new("attributes", attributes_type(), false),
    ])
}

/// The fields of one element of `events`.
pub fn event_fields() -> Fields {
    Fields::from(vec![
        Field::new("time", timestamp_type(), false),
        Field::new("name", DataType::Utf8, false),
        Field::new("attributes", attributes_type(), false),
    ])
}

fn list_of(fields: Fields) -> DataType {
    DataType::List(Arc::new(Field::new(
        "item",
        DataType::Struct(fields),
        false,
    )))
}

static SPANS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use col::*;
    Arc::new(Schema::new(vec![
        Field::new(TRACE_ID, DataType::Utf8, false),
        Field::new(SPAN_ID, DataType::Utf8, false),
        Field::new(PARENT_SPAN_ID, DataType::Utf8, true),
        Field::new(FLOW_ID, DataType::Utf8, true),
        Field::new(NAME, dict_type(), false),
        Field::new(KIND, dict_type(), false),
        Field::new(SERVICE_NAME, dict_type(), false),
        Field::new(PLATFORM, dict_type(), false),
        Field::new(INSTANCE, dict_type(), true),
        Field::new(START_TIME, timestamp_type(), false),
        Field::new(END_TIME, timestamp_type(), false),
        Field::new(DURATION_NS, DataType::Int64, false),
        Field::new(STATUS_CODE, dict_type(), false),
        Field::new(STATUS_MESSAGE, DataType::Utf8, false),
        Field::new(COLD_START, DataType::Boolean, true),
        Field::new(COLD_START_TYPE, dict_type(), true),
        Field::new(INIT_DURATION_NS, DataType::Int64, true),
        Field::new(MESSAGING_SYSTEM, dict_type(), true),
        Field::new(MESSAGING_OPERATION, dict_type(), true),
        Field::new(MESSAGING_DESTINATION, dict_type(), true),
        Field::new(MESSAGING_MESSAGE_ID, DataType::Utf8, true),
        Field::new(FAAS_TRIGGER, dict_type(), true),
        Field::new(ATTRIBUTES, attributes_type(), false),
        Field::new(RESOURCE_ATTRIBUTES, attributes_type(), false),
        Field::new(LINKS, list_of(link_fields()), false),
        Field::new(EVENTS, list_of(event_fields()), false),
        Field::new(FAAS_INVOCATION_ID, DataType::Utf8, true),
        Field::new(TRACE_STATE, DataType::Utf8, false),
        Field::new(SCOPE_NAME, dict_type(), false),
        Field::new(SCOPE_VERSION, dict_type(), false),
        Field::new(COLD_START_SOURCE, dict_type(), true),
    ]))
});

/// The schema of the `spans` table.
pub fn spans_schema() -> SchemaRef {
    SPANS_SCHEMA.clone()
}

/// A dictionary of attribute maps: a resource's attributes stored once
/// for every run of its spans.
pub fn resource_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(attributes_type()))
}

static SPANS_HOT_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let fields = (SPANS_SCHEMA.fields().iter())
        .map(|f| match f.name().as_str() {
            col::RESOURCE_ATTRIBUTES => {
                Arc::new(f.as_ref().clone().with_data_type(resource_type()))
            }
            col::TRACE_ID => with_type(f, DataType::FixedSizeBinary(16)),
            col::SPAN_ID | col::PARENT_SPAN_ID => with_type(f, DataType::FixedSizeBinary(8)),
            col::INIT_DURATION_NS => with_type(f, runs_of(DataType::Int64)),
            name if RUNS.contains(&name) => with_type(f, runs_of(dict_type())),
            _ => f.clone(),
        })
        .collect::<Vec<_>>();
    Arc::new(Schema::new(fields))
});

/// The columns rows in memory hold as runs: the same value for a whole
/// resource or scope, or null or empty for most spans. Text runs hold
/// keys of a dictionary of the batch's values.
const RUNS: [&str; 16] = [
    col::FLOW_ID,
    col::SERVICE_NAME,
    col::PLATFORM,
    col::INSTANCE,
    col::STATUS_CODE,
    col::STATUS_MESSAGE,
    col::COLD_START_TYPE,
    col::INIT_DURATION_NS,
    col::MESSAGING_SYSTEM,
    col::MESSAGING_OPERATION,
    col::MESSAGING_DESTINATION,
    col::FAAS_TRIGGER,
    col::TRACE_STATE,
    col::SCOPE_NAME,
    col::SCOPE_VERSION,
    col::COLD_START_SOURCE,
];

/// Runs of `values`: Arrow's run-end encoding with 32-bit run ends.
fn runs_of(values: DataType) -> DataType {
    DataType::RunEndEncoded(
        Arc::new(Field::new("run_ends", DataType::Int32, false)),
        Arc::new(Field::new("values", values, true)),
    )
}

fn with_type(field: &FieldRef, data_type: DataType) -> FieldRef {
    Arc::new(field.as_ref().clone().with_data_type(data_type))
}

/// `spans` as rows in memory hold it: `resource_attributes` a dictionary
/// of the resources of a batch, so a span costs 4 bytes of its resource
/// rather than a copy of every attribute; trace, span and parent ids as
/// their bytes (16 + 8 + 8) rather than their hex (32 + 16 + 16 and
/// offsets); the columns of [`RUNS`] as runs (a run per resource, scope
/// or stretch of nulls, not 4 bytes a span). SQL cannot index a
/// dictionary of maps, users write ids in hex and few of SQL's functions
/// take runs, so reads and seals convert them to [`spans_schema`]'s
/// types ([`crate::cast::to_sql`]).
pub fn spans_hot_schema() -> SchemaRef {
    SPANS_HOT_SCHEMA.clone()
}

/// Column names of `boundaries`.
pub mod boundary_col {
    pub const FLOW_ID: &str = "flow_id";
    pub const KIND: &str = "kind";
    pub const STITCHED_BY: &str = "stitched_by";
    pub const CORRELATION_KEY: &str = "correlation_key";
    pub const CORRELATION_VALUE: &str = "correlation_value";
    pub const PRODUCER_TRACE_ID: &str = "producer_trace_id";
    pub const PRODUCER_SPAN_ID: &str = "producer_span_id";
    pub const PRODUCER_SERVICE: &str = "producer_service";
    pub const PRODUCER_PLATFORM: &str = "producer_platform";
    pub const CONSUMER_TRACE_ID: &str = "consumer_trace_id";
    pub const CONSUMER_SPAN_ID: &str = "consumer_span_id";
    pub const CONSUMER_SERVICE: &str = "consumer_service";
    pub const CONSUMER_PLATFORM: &str = "consumer_platform";
    pub const SYSTEM: &str = "system";
    pub const DESTINATION: &str = "destination";
    pub const PRODUCER_TIME: &str = "producer_time";
    pub const CONSUMER_TIME: &str = "consumer_time";
    pub const LATENCY_NS: &str = "latency_ns";
    pub const FLAGGED: &str = "flagged";
    pub const CLOCK_SKEW: &str = "clock_skew";
    pub const CONSUMER_COLD_START: &str = "consumer_cold_start";
    pub const DELIVERIES: &str = "deliveries";
    pub const REDELIVERY: &str = "redelivery";
}

/// Column names of `orphans`.
pub mod orphan_col {
    pub const KIND: &str = "kind";
    pub const TRACE_ID: &str = "trace_id";
    pub const SPAN_ID: &str = "span_id";
    pub const SERVICE_NAME: &str = "service_name";
    pub const SYSTEM: &str = "system";
    pub const DESTINATION: &str = "destination";
    pub const CORRELATION_KEY: &str = "correlation_key";
    pub const CORRELATION_VALUE: &str = "correlation_value";
    pub const TIME: &str = "time";
}

static BOUNDARIES_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use boundary_col::*;
    let s = |name| Field::new(name, DataType::Utf8, false);
    let s_null = |name| Field::new(name, DataType::Utf8, true);
    Arc::new(Schema::new(vec![
        s_null(FLOW_ID),
        s(KIND),
        s(STITCHED_BY),
        s_null(CORRELATION_KEY),
        s_null(CORRELATION_VALUE),
        s(PRODUCER_TRACE_ID),
        s(PRODUCER_SPAN_ID),
        s(PRODUCER_SERVICE),
        s(PRODUCER_PLATFORM),
        s(CONSUMER_TRACE_ID),
        s(CONSUMER_SPAN_ID),
        s(CONSUMER_SERVICE),
        s(CONSUMER_PLATFORM),
        s_null(SYSTEM),
        s_null(DESTINATION),
        Field::new(PRODUCER_TIME, timestamp_type(), false),
        Field::new(CONSUMER_TIME, timestamp_type(), false),
        Field::new(LATENCY_NS, DataType::Int64, false),
        Field::new(FLAGGED, DataType::Boolean, false),
        Field::new(CLOCK_SKEW, DataType::Boolean, false),
        Field::new(CONSUMER_COLD_START, DataType::Boolean, false),
        Field::new(DELIVERIES, DataType::Int64, false),
        Field::new(REDELIVERY, DataType::Boolean, false),
    ]))
});

static ORPHANS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use orphan_col::*;
    Arc::new(Schema::new(vec![
        Field::new(KIND, DataType::Utf8, false),
        Field::new(TRACE_ID, DataType::Utf8, false),
        Field::new(SPAN_ID, DataType::Utf8, false),
        Field::new(SERVICE_NAME, DataType::Utf8, false),
        Field::new(SYSTEM, DataType::Utf8, true),
        Field::new(DESTINATION, DataType::Utf8, true),
        Field::new(CORRELATION_KEY, DataType::Utf8, true),
        Field::new(CORRELATION_VALUE, DataType::Utf8, true),
        Field::new(TIME, timestamp_type(), false),
    ]))
});

/// Column names of `traces`.
pub mod trace_col {
    pub const TRACE_ID: &str = "trace_id";
    pub const FLOW_ID: &str = "flow_id";
    pub const ROOT_SERVICE: &str = "root_service";
    pub const ROOT_NAME: &str = "root_name";
    pub const ROOT_SPAN_ID: &str = "root_span_id";
    pub const START_TIME: &str = "start_time";
    pub const END_TIME: &str = "end_time";
    pub const DURATION_NS: &str = "duration_ns";
    pub const SPAN_COUNT: &str = "span_count";
    pub const ERROR_COUNT: &str = "error_count";
    pub const SERVICES: &str = "services";
    pub const PLATFORMS: &str = "platforms";
    pub const COLD_START: &str = "cold_start";
    pub const FLAGGED: &str = "flagged";
}

/// A list of strings, as `array_agg` of a string column makes it.
pub fn string_list_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

static TRACES_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use trace_col::*;
    Arc::new(Schema::new(vec![
        Field::new(TRACE_ID, DataType::Utf8, false),
        Field::new(FLOW_ID, DataType::Utf8, true),
        Field::new(ROOT_SERVICE, dict_type(), false),
        Field::new(ROOT_NAME, DataType::Utf8, false),
        Field::new(ROOT_SPAN_ID, DataType::Utf8, false),
        Field::new(START_TIME, timestamp_type(), false),
        Field::new(END_TIME, timestamp_type(), false),
        Field::new(DURATION_NS, DataType::Int64, false),
        Field::new(SPAN_COUNT, DataType::Int64, false),
        Field::new(ERROR_COUNT, DataType::Int64, false),
        Field::new(SERVICES, string_list_type(), false),
        Field::new(PLATFORMS, string_list_type(), false),
        Field::new(COLD_START, DataType::Boolean, false),
        Field::new(FLAGGED, DataType::Boolean, false),
    ]))
});

/// The schema of `traces`: one summary row per trace.
pub fn traces_schema() -> SchemaRef {
    TRACES_SCHEMA.clone()
}

pub fn boundaries_schema() -> SchemaRef {
    BOUNDARIES_SCHEMA.clone()
}

pub fn orphans_schema() -> SchemaRef {
    ORPHANS_SCHEMA.clone()
}

/// Column names of the per-minute rollups, `edge_rollups`,
/// `function_rollups` and `operation_rollups`: what the boundary map, the
/// cold-start report and the lists of services and operations merge
/// instead of reading every boundary, invocation and span.
pub mod rollup_col {
    pub const MINUTE: &str = "minute";
    pub const PRODUCER_SERVICE: &str = "producer_service";
    pub const SYSTEM: &str = "system";
    pub const DESTINATION: &str = "destination";
    pub const CONSUMER_SERVICE: &str = "consumer_service";
    pub const KIND: &str = "kind";
    pub const COUNT: &str = "count";
    pub const MAX_NS: &str = "max_ns";
    pub const FLAGGED: &str = "flagged";
    pub const REDELIVERIES: &str = "redeliveries";
    pub const CLOCK_SKEW: &str = "clock_skew";
    pub const LATENCY: &str = "latency_sketch";
    pub const FUNCTION: &str = "function";
    pub const PLATFORM: &str = "platform";
    pub const INVOCATIONS: &str = "invocations";
    pub const COLD_STARTS: &str = "cold_starts";
    pub const PROACTIVE: &str = "proactive";
    pub const PROVISIONED: &str = "provisioned";
    pub const SNAPSTART: &str = "snapstart";
    pub const INIT: &str = "init_sketch";
    pub const COLD: &str = "cold_sketch";
    pub const WARM: &str = "warm_sketch";
    pub const SERVICE_NAME: &str = "service_name";
    pub const NAME: &str = "name";
    pub const CLOUD_PLATFORM: &str = "cloud_platform";
    pub const SPANS: &str = "spans";
}

static EDGE_ROLLUPS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use rollup_col::*;
    let n = |name| Field::new(name, DataType::Int64, false);
    Arc::new(Schema::new(vec![
        Field::new(MINUTE, timestamp_type(), false),
        Field::new(PRODUCER_SERVICE, DataType::Utf8, false),
        Field::new(SYSTEM, DataType::Utf8, true),
        Field::new(DESTINATION, DataType::Utf8, true),
        Field::new(CONSUMER_SERVICE, DataType::Utf8, false),
        Field::new(KIND, DataType::Utf8, false),
        n(COUNT),
        Field::new(MAX_NS, DataType::Int64, true),
        n(FLAGGED),
        n(REDELIVERIES),
        n(CLOCK_SKEW),
        Field::new(LATENCY, DataType::Binary, false),
    ]))
});

static FUNCTION_ROLLUPS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use rollup_col::*;
    let n = |name| Field::new(name, DataType::Int64, false);
    let sketch = |name| Field::new(name, DataType::Binary, false);
    Arc::new(Schema::new(vec![
        Field::new(MINUTE, timestamp_type(), false),
        Field::new(FUNCTION, DataType::Utf8, false),
        Field::new(PLATFORM, DataType::Utf8, false),
        n(INVOCATIONS),
        n(COLD_STARTS),
        n(PROACTIVE),
        n(PROVISIONED),
        n(SNAPSTART),
        sketch(INIT),
        sketch(COLD),
        sketch(WARM),
    ]))
});

static OPERATION_ROLLUPS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use rollup_col::*;
    Arc::new(Schema::new(vec![
        Field::new(MINUTE, timestamp_type(), false),
        Field::new(SERVICE_NAME, DataType::Utf8, false),
        // Null for the operations past a service's cap in a minute.
        Field::new(NAME, DataType::Utf8, true),
        Field::new(KIND, DataType::Utf8, false),
        Field::new(PLATFORM, DataType::Utf8, false),
        Field::new(CLOUD_PLATFORM, DataType::Utf8, true),
        Field::new(SPANS, DataType::Int64, false),
    ]))
});

/// The schema of `edge_rollups`: per minute of consumer time and per edge,
/// the boundaries' count, flags and a latency sketch.
pub fn edge_rollups_schema() -> SchemaRef {
    EDGE_ROLLUPS_SCHEMA.clone()
}

/// The schema of `function_rollups`: per minute of start and per function,
/// invocations by cold-start type and sketches of init, cold and warm
/// durations.
pub fn function_rollups_schema() -> SchemaRef {
    FUNCTION_ROLLUPS_SCHEMA.clone()
}

/// The schema of `operation_rollups`: per minute of start and per service
/// operation (name, kind, platform, the resource's `cloud.platform`), the
/// spans counted.
pub fn operation_rollups_schema() -> SchemaRef {
    OPERATION_ROLLUPS_SCHEMA.clone()
}
