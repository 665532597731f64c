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
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value::Value as Pb};
use seam_model::Attributes;

use crate::view::{KeyValue, Value};

/// Flattens a list of OTLP key-values, borrowing strings where possible.
pub fn flatten<'a>(kvs: &[KeyValue<'a>]) -> Attributes<'a> {
    kvs.iter()
        .map(|kv| (Cow::Borrowed(kv.key), render(&kv.value)))
        .collect()
}

/// One value as text; an absent value is the empty string.
pub fn render<'a>(value: &Value<'a>) -> Cow<'a, str> {
    match value {
        Value::Empty => Cow::Borrowed(""),
        Value::String(s) => Cow::Borrowed(s),
        Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Value::Int(i) => Cow::Owned(i.to_string()),
        Value::Double(d) => Cow::Owned(d.to_string()),
        Value::Bytes(b) => Cow::Owned(base64::engine::general_purpose::STANDARD.encode(b)),
        Value::Nested(v) => Cow::Owned(any_to_json(v).to_string()),
    }
}

fn to_json(value: &Pb) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Pb::StringValue(s) => J::String(s.clone()),
        Pb::BoolValue(b) => J::Bool(*b),
        Pb::IntValue(i) => J::from(*i),
        Pb::DoubleValue(d) => {
            serde_json::Number::from_f64(*d).map_or_else(|| J::String(d.to_string()), J::Number)
        }
        Pb::BytesValue(b) => J::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Pb::ArrayValue(a) => J::Array(a.values.iter().map(any_to_json).collect()),
        Pb::KvlistValue(kv) => J::Object(
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
pub fn get<'a>(kvs: &[KeyValue<'a>], key: &str) -> Option<Cow<'a, str>> {
    let kv = kvs.iter().find(|kv| kv.key == key)?;
    let v = render(&kv.value);
    (!v.is_empty()).then_some(v)
}

/// A boolean attribute; accepts `true`, and the strings `"true"`/`"false"`
/// some instrumentations send instead.
pub fn get_bool(kvs: &[KeyValue<'_>], key: &str) -> Option<bool> {
    let kv = kvs.iter().find(|kv| kv.key == key)?;
    match kv.value {
        Value::Bool(b) => Some(b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        Value::Int(i) => Some(i != 0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{self as pb, ArrayValue, KeyValueList};

    use super::*;
    use crate::view::key_values;

    fn kv(key: &str, value: Pb) -> pb::KeyValue {
        pb::KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn rendered(value: Option<&AnyValue>) -> String {
        render(&value.map_or(Value::Empty, Value::from)).into_owned()
    }

    #[test]
    fn scalars_render_as_typed() {
        let kvs = vec![
            kv("s", Pb::StringValue("GET".into())),
            kv("b", Pb::BoolValue(true)),
            kv("i", Pb::IntValue(-42)),
            kv("d", Pb::DoubleValue(1.5)),
            kv("bytes", Pb::BytesValue(vec![0xde, 0xad])),
        ];
        let flat = flatten(&key_values(&kvs));
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
        let arr = Pb::ArrayValue(ArrayValue {
            values: vec![
                AnyValue {
                    value: Some(Pb::StringValue("a".into())),
                },
                AnyValue {
                    value: Some(Pb::IntValue(2)),
                },
            ],
        });
        let map = Pb::KvlistValue(KeyValueList {
            values: vec![kv("k", Pb::BoolValue(false))],
        });
        assert_eq!(rendered(Some(&AnyValue { value: Some(arr) })), r#"["a",2]"#);
        assert_eq!(
            rendered(Some(&AnyValue { value: Some(map) })),
            r#"{"k":false}"#
        );
        assert_eq!(rendered(None), "");
    }

    #[test]
    fn bools_accept_strings() {
        let kvs = vec![
            kv("a", Pb::StringValue("TRUE".into())),
            kv("b", Pb::BoolValue(false)),
        ];
        let kvs = key_values(&kvs);
        assert_eq!(get_bool(&kvs, "a"), Some(true));
        assert_eq!(get_bool(&kvs, "b"), Some(false));
        assert_eq!(get_bool(&kvs, "c"), None);
    }
}
