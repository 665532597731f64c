//! Spans as the trace API shows them (docs/contract.md §6), read from `spans` rows.
//!
//! Times in nanoseconds since the epoch (`start_unix_nano`, `end_unix_nano`,
//! an event's `time_unix_nano`) are decimal strings, as in OTLP/JSON:
//! current times are about 1.7·10¹⁸ ns, beyond the 2⁵³ up to which a
//! JavaScript number is exact, so a number would lose the last digits in a
//! browser. Durations stay numbers; they are far below 2⁵³.
//!
//! Attribute maps keep the order the spans arrived with.

use arrow::array::{Array, AsArray, MapArray, RecordBatch, StructArray};
use arrow::datatypes::{Int32Type, TimestampNanosecondType};
use seam_model::schema::col;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::columns::{booleans, int64s, opt_str, raw, strings};
use crate::error::QueryError;

/// One span in API JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpanJson {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub name: String,
    /// `server`, `client`, `producer`, `consumer`, `internal` or `unspecified`.
    pub kind: String,
    pub service_name: String,
    pub platform: String,
    pub instance: Option<String>,
    pub start_unix_nano: String,
    pub end_unix_nano: String,
    pub duration_ns: i64,
    pub status: StatusJson,
    pub attributes: AttributesJson,
    pub resource: AttributesJson,
    pub events: Vec<EventJson>,
    pub links: Vec<LinkJson>,
    pub cold_start: Option<bool>,
    /// `on_demand`, `proactive`, `provisioned`, `snapstart` or
    /// `pod_first_request`, on a cold start.
    pub cold_start_type: Option<String>,
    /// The platform's initialization before the handler ran, on a cold
    /// start that reports it: the explorer draws it as its own segment.
    pub init_duration_ns: Option<i64>,
    pub flow_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusJson {
    /// `UNSET`, `OK` or `ERROR`.
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventJson {
    pub time_unix_nano: String,
    pub name: String,
    pub attributes: AttributesJson,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkJson {
    pub trace_id: String,
    pub span_id: String,
    pub attributes: AttributesJson,
}

/// String attributes, serialized as a JSON object in arrival order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AttributesJson(pub Vec<(String, Option<String>)>);

impl Serialize for AttributesJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Reads every row of `batches` (with the `spans` columns) as a span.
pub fn spans_from_batches(batches: &[RecordBatch]) -> Result<Vec<SpanJson>, QueryError> {
    let mut spans = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
    for batch in batches {
        read_batch(batch, &mut spans)?;
    }
    Ok(spans)
}

fn read_batch(batch: &RecordBatch, out: &mut Vec<SpanJson>) -> Result<(), QueryError> {
    let trace_id = strings(batch, col::TRACE_ID)?;
    let span_id = strings(batch, col::SPAN_ID)?;
    let parent = strings(batch, col::PARENT_SPAN_ID)?;
    let name = strings(batch, col::NAME)?;
    let kind = strings(batch, col::KIND)?;
    let service = strings(batch, col::SERVICE_NAME)?;
    let platform = strings(batch, col::PLATFORM)?;
    let instance = strings(batch, col::INSTANCE)?;
    let start = int64s(batch, col::START_TIME)?;
    let end = int64s(batch, col::END_TIME)?;
    let duration = int64s(batch, col::DURATION_NS)?;
    let status_code = strings(batch, col::STATUS_CODE)?;
    let status_message = strings(batch, col::STATUS_MESSAGE)?;
    let cold_start = booleans(batch, col::COLD_START)?;
    let cold_start_type = strings(batch, col::COLD_START_TYPE)?;
    let init_duration = int64s(batch, col::INIT_DURATION_NS)?;
    let flow_id = strings(batch, col::FLOW_ID)?;
    let attributes = map_column(batch, col::ATTRIBUTES)?;
    let resource = map_column(batch, col::RESOURCE_ATTRIBUTES)?;
    let events = raw(batch, col::EVENTS)?.as_list::<i32>();
    let links = raw(batch, col::LINKS)?.as_list::<i32>();

    for row in 0..batch.num_rows() {
        out.push(SpanJson {
            trace_id: trace_id.value(row).to_owned(),
            span_id: span_id.value(row).to_owned(),
            parent_span_id: opt_str(&parent, row),
            name: name.value(row).to_owned(),
            kind: kind.value(row).to_ascii_lowercase(),
            service_name: service.value(row).to_owned(),
            platform: platform.value(row).to_owned(),
            instance: opt_str(&instance, row),
            start_unix_nano: start.value(row).to_string(),
            end_unix_nano: end.value(row).to_string(),
            duration_ns: duration.value(row),
            status: StatusJson {
                code: status_code.value(row).to_owned(),
                message: status_message.value(row).to_owned(),
            },
            attributes: map_at(attributes, row),
            resource: map_at(resource, row),
            events: if events.is_valid(row) {
                read_events(events.value(row).as_struct())?
            } else {
                Vec::new()
            },
            links: if links.is_valid(row) {
                read_links(links.value(row).as_struct())?
            } else {
                Vec::new()
            },
            cold_start: cold_start.is_valid(row).then(|| cold_start.value(row)),
            cold_start_type: opt_str(&cold_start_type, row),
            init_duration_ns: init_duration
                .is_valid(row)
                .then(|| init_duration.value(row)),
            flow_id: opt_str(&flow_id, row),
        });
    }
    Ok(())
}

fn map_column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a MapArray, QueryError> {
    raw(batch, name)?
        .as_map_opt()
        .ok_or_else(|| QueryError::Internal(format!("column '{name}' is not a map")))
}

fn map_at(map: &MapArray, row: usize) -> AttributesJson {
    if map.is_null(row) {
        return AttributesJson::default();
    }
    let entries = map.value(row);
    // Keys are kept once per batch: a dictionary.
    let (Some(keys), Some(values)) = (
        entries.column(0).as_dictionary_opt::<Int32Type>(),
        entries.column(1).as_string_opt::<i32>(),
    ) else {
        return AttributesJson::default();
    };
    let Some(names) = keys.values().as_string_opt::<i32>() else {
        return AttributesJson::default();
    };
    AttributesJson(
        (keys.keys().iter().zip(values.iter()))
            .map(|(k, v)| {
                let name = names.value(k.unwrap_or_default() as usize);
                (name.to_owned(), v.map(str::to_owned))
            })
            .collect(),
    )
}

fn struct_field<'a>(s: &'a StructArray, name: &str) -> Result<&'a dyn Array, QueryError> {
    s.column_by_name(name)
        .map(|a| a.as_ref())
        .ok_or_else(|| QueryError::Internal(format!("nested field '{name}' missing")))
}

fn read_events(events: &StructArray) -> Result<Vec<EventJson>, QueryError> {
    let time = struct_field(events, "time")?.as_primitive::<TimestampNanosecondType>();
    let name = struct_field(events, "name")?.as_string::<i32>();
    let attributes = struct_field(events, "attributes")?.as_map();
    Ok((0..events.len())
        .map(|i| EventJson {
            time_unix_nano: time.value(i).to_string(),
            name: name.value(i).to_owned(),
            attributes: map_at(attributes, i),
        })
        .collect())
}

fn read_links(links: &StructArray) -> Result<Vec<LinkJson>, QueryError> {
    let trace_id = struct_field(links, "trace_id")?.as_string::<i32>();
    let span_id = struct_field(links, "span_id")?.as_string::<i32>();
    let attributes = struct_field(links, "attributes")?.as_map();
    Ok((0..links.len())
        .map(|i| LinkJson {
            trace_id: trace_id.value(i).to_owned(),
            span_id: span_id.value(i).to_owned(),
            attributes: map_at(attributes, i),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    #[test]
    fn reads_every_field_of_a_stored_span() {
        let spans = spans_from_batches(&[testdata::sql_batch()]).unwrap();
        assert_eq!(spans.len(), testdata::SPAN_COUNT);
        let root = spans
            .iter()
            .find(|s| s.span_id == testdata::CHECKOUT_ROOT_SPAN)
            .unwrap();
        assert_eq!(root.trace_id, testdata::CHECKOUT_TRACE);
        assert_eq!(root.parent_span_id, None);
        assert_eq!(root.kind, "server");
        assert_eq!(root.service_name, "checkout");
        assert_eq!(root.platform, "kubernetes");
        assert_eq!(root.instance.as_deref(), Some("checkout-7d9f"));
        assert_eq!(root.start_unix_nano, testdata::T0.to_string());
        assert_eq!(root.status.code, "ERROR");
        assert_eq!(
            root.attributes.0[0],
            ("http.route".to_owned(), Some("/checkout".to_owned()))
        );
        assert!(root.resource.0.iter().any(|(k, _)| k == "service.name"));
        assert_eq!(root.events.len(), 1);
        assert_eq!(root.events[0].name, "exception");
        assert_eq!(
            root.events[0].time_unix_nano,
            (testdata::T0 + 1_000).to_string()
        );
        assert_eq!(root.cold_start, None);
        assert_eq!(root.flow_id, None);

        let consumer = spans.iter().find(|s| s.kind == "consumer").unwrap();
        assert_eq!(consumer.links.len(), 1);
        assert_eq!(consumer.links[0].trace_id, testdata::CHECKOUT_TRACE);
        assert_eq!(consumer.cold_start, Some(true));
    }

    #[test]
    fn serializes_times_as_strings_and_maps_as_objects() {
        let spans = spans_from_batches(&[testdata::sql_batch()]).unwrap();
        let json = serde_json::to_value(&spans[0]).unwrap();
        assert!(json["start_unix_nano"].is_string());
        assert!(json["duration_ns"].is_i64());
        assert_eq!(json["attributes"]["http.route"], "/checkout");
        assert!(json["status"]["code"].is_string());
    }
}
