//! OTLP attribute values flattened to strings.
//!
//! The store keeps attributes as `Map<Utf8, Utf8>` so that
//! `attributes['http.status_code']` has one SQL type whichever type the sender
//! chose (SDKs disagree: one sends the status code as an int, another as a
//! string). Scalars render the way a person would type them; arrays and maps
//! render as JSON so they stay parseable with SQL's JSON functions; bytes as
//! base64, as in OTLP JSON.

use std::borrow::Cow;

use base64::Engine as _;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use seam_model::Attributes;

/// Flattens a list of OTLP key-values, borrowing strings where possible.
pub fn flatten(kvs: &[KeyValue]) -> Attributes<'_> {
    kvs.iter()
        .map(|kv| (Cow::Borrowed(kv.key.as_str()), render(kv.value.as_ref())))
        .collect()
}

/// One value as text; an absent value is the empty string.
pub fn render(value: Option<&AnyValue>) -> Cow<'_, str> {
    match value.and_then(|v| v.value.as_ref()) {
        None => Cow::Borrowed(""),
        Some(Value::StringValue(s)) => Cow::Borrowed(s.as_str()),
        Some(Value::BoolValue(b)) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Some(Value::IntValue(i)) => Cow::Owned(i.to_string()),
        Some(Value::DoubleValue(d)) => Cow::Owned(d.to_string()),
        Some(Value::BytesValue(b)) => {
            Cow::Owned(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Some(other @ (Value::ArrayValue(_) | Value::KvlistValue(_))) => {
            Cow::Owned(to_json(other).to_string())
        }
        // Newer protocol revisions add value kinds (string-table references);
        // keep the attribute visible rather than dropping it.
        #[allow(unreachable_patterns)]
        Some(_) => Cow::Borrowed(""),
    }
}

fn to_json(value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Value::StringValue(s) => J::String(s.clone()),
        Value::BoolValue(b) => J::Bool(*b),
        Value::IntValue(i) => J::from(*i),
        Value::DoubleValue(d) => {
            serde_json::Number::from_f64(*d).map_or_else(|| J::String(d.to_string()), J::Number)
        }
        Value::BytesValue(b) => J::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Value::ArrayValue(a) => J::Array(a.values.iter().map(any_to_json).collect()),
        Value::KvlistValue(kv) => J::Object(
            kv.values
                .iter()
                .map(|kv| {
                    (
                        kv.key.clone(),
                        kv.value.as_ref().map_or(J::Null, any_to_json),
                    )
                })
                .collect(),
        ),
        #[allow(unreachable_patterns)]
        _ => J::Null,
    }
}

fn any_to_json(v: &AnyValue) -> serde_json::Value {
    v.value.as_ref().map_or(serde_json::Value::Null, to_json)
}

/// The string value of `key`, if present and non-empty.
pub fn get<'a>(kvs: &'a [KeyValue], key: &str) -> Option<Cow<'a, str>> {
    let kv = kvs.iter().find(|kv| kv.key == key)?;
    let v = render(kv.value.as_ref());
    (!v.is_empty()).then_some(v)
}

/// A boolean attribute; accepts `true`, and the strings `"true"`/`"false"`
/// some instrumentations send instead.
pub fn get_bool(kvs: &[KeyValue], key: &str) -> Option<bool> {
    let kv = kvs.iter().find(|kv| kv.key == key)?;
    match kv.value.as_ref()?.value.as_ref()? {
        Value::BoolValue(b) => Some(*b),
        Value::StringValue(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::StringValue(s) if s.eq_ignore_ascii_case("false") => Some(false),
        Value::IntValue(i) => Some(*i != 0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

    use super::*;

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    #[test]
    fn scalars_render_as_typed() {
        let kvs = vec![
            kv("s", Value::StringValue("GET".into())),
            kv("b", Value::BoolValue(true)),
            kv("i", Value::IntValue(-42)),
            kv("d", Value::DoubleValue(1.5)),
            kv("bytes", Value::BytesValue(vec![0xde, 0xad])),
        ];
        let flat = flatten(&kvs);
        let got: Vec<(&str, &str)> = flat.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
        assert_eq!(
            got,
            vec![
                ("s", "GET"),
                ("b", "true"),
                ("i", "-42"),
                ("d", "1.5"),
                ("bytes", "3q0=")
            ]
        );
    }

    #[test]
    fn arrays_and_maps_render_as_json() {
        let arr = Value::ArrayValue(ArrayValue {
            values: vec![
                AnyValue {
                    value: Some(Value::StringValue("a".into())),
                },
                AnyValue {
                    value: Some(Value::IntValue(2)),
                },
            ],
        });
        let map = Value::KvlistValue(KeyValueList {
            values: vec![kv("k", Value::BoolValue(false))],
        });
        assert_eq!(render(Some(&AnyValue { value: Some(arr) })), r#"["a",2]"#);
        assert_eq!(
            render(Some(&AnyValue { value: Some(map) })),
            r#"{"k":false}"#
        );
        assert_eq!(render(None), "");
    }

    #[test]
    fn bools_accept_strings() {
        let kvs = vec![
            kv("a", Value::StringValue("TRUE".into())),
            kv("b", Value::BoolValue(false)),
        ];
        assert_eq!(get_bool(&kvs, "a"), Some(true));
        assert_eq!(get_bool(&kvs, "b"), Some(false));
        assert_eq!(get_bool(&kvs, "c"), None);
    }
}
