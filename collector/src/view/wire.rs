//! Reading an export in place from its protobuf bytes.
//!
//! The reader covers what OTLP encoders write. Protobuf also allows what no
//! encoder writes (a singular message sent twice, which must be merged;
//! groups; a known field with an unexpected wire type) and what is simply
//! malformed; for all of that it gives up with [`Unread`] and the caller
//! decodes with prost ([`super::Export::decode_then`]), so what is accepted,
//! and what it means, is always prost's answer. A differential test and a
//! fuzz target hold the two to the same result.

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1 as pb_common;
use prost::Message;
use prost::encoding::{WireType, decode_key, decode_varint};

use super::{Event, Export, KeyValue, Link, ResourceSpans, Scope, ScopeSpans, Span, Status, Value};

/// The bytes hold something this reader leaves to prost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unread;

type Read<T> = Result<T, Unread>;

/// Reads one `ExportTraceServiceRequest`.
pub fn read(bytes: &[u8]) -> Read<Export<'_>> {
    let mut export = Export::default();
    let mut fields = Fields(bytes);
    while let Some((tag, field)) = fields.next()? {
        match (tag, field) {
            (1, Field::Bytes(b)) => export.resource_spans.push(resource_spans(b)?),
            (1, _) => return Err(Unread),
            _ => {}
        }
    }
    Ok(export)
}

/// One field's payload, by wire type (no field this reader keeps is a
/// fixed32, so that payload is skipped).
#[derive(Clone, Copy)]
enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32,
    Bytes(&'a [u8]),
}

/// The fields of one message, in order; fields this reader does not know
/// are returned like any other and ignored by the caller, as protobuf
/// asks.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn next(&mut self) -> Read<Option<(u32, Field<'a>)>> {
        let (tag, wire_type) = match self.0 {
            [] => return Ok(None),
            // Tags under 16 have one-byte keys: every field OTLP defines.
            [key @ 0x08..0x80, rest @ ..] => {
                self.0 = rest;
                let wire_type = WireType::try_from(u64::from(key & 7)).map_err(|_| Unread)?;
                (u32::from(key >> 3), wire_type)
            }
            _ => decode_key(&mut self.0).map_err(|_| Unread)?,
        };
        let field = match wire_type {
            WireType::Varint => Field::Varint(self.varint()?),
            WireType::SixtyFourBit => {
                let (b, rest) = self.0.split_first_chunk::<8>().ok_or(Unread)?;
                self.0 = rest;
                Field::Fixed64(u64::from_le_bytes(*b))
            }
            WireType::ThirtyTwoBit => {
                let (_, rest) = self.0.split_first_chunk::<4>().ok_or(Unread)?;
                self.0 = rest;
                Field::Fixed32
            }
            WireType::LengthDelimited => {
                let len = usize::try_from(self.varint()?).map_err(|_| Unread)?;
                if len > self.0.len() {
                    return Err(Unread);
                }
                let (b, rest) = self.0.split_at(len);
                self.0 = rest;
                Field::Bytes(b)
            }
            WireType::StartGroup | WireType::EndGroup => return Err(Unread),
        };
        Ok(Some((tag, field)))
    }

    fn varint(&mut self) -> Read<u64> {
        match self.0 {
            [byte @ 0..0x80, rest @ ..] => {
                self.0 = rest;
                Ok(u64::from(*byte))
            }
            _ => decode_varint(&mut self.0).map_err(|_| Unread),
        }
    }
}

fn text(b: &[u8]) -> Read<&str> {
    std::str::from_utf8(b).map_err(|_| Unread)
}

/// A known numeric field of the wire type its schema gives; its value is
/// not needed.
fn numeric(field: Field<'_>, fixed32: bool) -> Read<()> {
    match (field, fixed32) {
        (Field::Varint(_), false) | (Field::Fixed32, true) => Ok(()),
        _ => Err(Unread),
    }
}

/// Reads the fields of one message into `out`, in order; `field` takes
/// each (returning `Err` for one it cannot take), unknown ones included.
fn message<'a, T>(
    bytes: &'a [u8],
    mut out: T,
    mut field: impl FnMut(&mut T, u32, Field<'a>) -> Read<()>,
) -> Read<T> {
    let mut fields = Fields(bytes);
    while let Some((tag, f)) = fields.next()? {
        field(&mut out, tag, f)?;
    }
    Ok(out)
}

fn resource_spans(bytes: &[u8]) -> Read<ResourceSpans<'_>> {
    message(bytes, ResourceSpans::default(), |out, tag, field| {
        match (tag, field) {
            (1, Field::Bytes(b)) if out.resource.is_none() => out.resource = Some(resource(b)?),
            (2, Field::Bytes(b)) => out.scope_spans.push(scope_spans(b)?),
            (3, Field::Bytes(b)) => {
                text(b)?; // schema_url
            }
            (1..=3, _) => return Err(Unread),
            _ => {}
        }
        Ok(())
    })
}

fn resource(bytes: &[u8]) -> Read<Vec<KeyValue<'_>>> {
    message(bytes, Vec::new(), |attributes, tag, field| {
        match (tag, field) {
            (1, Field::Bytes(b)) => attributes.push(key_value(b)?),
            (2, f) => numeric(f, false)?, // dropped_attributes_count
            // Entity references (3) are new and rare: prost reads them.
            (1 | 3, _) => return Err(Unread),
            _ => {}
        }
        Ok(())
    })
}

fn scope_spans(bytes: &[u8]) -> Read<ScopeSpans<'_>> {
    message(
        bytes,
        ScopeSpans {
            scope: None,
            spans: Vec::with_capacity(count(bytes, 2)),
        },
        |out, tag, field| {
            match (tag, field) {
                (1, Field::Bytes(b)) if out.scope.is_none() => out.scope = Some(scope(b)?),
                (2, Field::Bytes(b)) => {
                    let hint = out.spans.last().map_or(0, |s| s.attributes.len());
                    out.spans.push(span(b, hint)?);
                }
                (3, Field::Bytes(b)) => {
                    text(b)?; // schema_url
                }
                (1..=3, _) => return Err(Unread),
                _ => {}
            }
            Ok(())
        },
    )
}

/// How many fields `tag` has at the top level of `bytes`, to size a list
/// once; 0 if the bytes do not parse (the read that follows says why).
fn count(bytes: &[u8], tag: u32) -> usize {
    let mut fields = Fields(bytes);
    let mut n = 0;
    while let Ok(Some((t, _))) = fields.next() {
        n += usize::from(t == tag);
    }
    n
}

fn scope(bytes: &[u8]) -> Read<Scope<'_>> {
    message(bytes, Scope::default(), |out, tag, field| {
        match (tag, field) {
            (1, Field::Bytes(b)) => out.name = text(b)?,
            (2, Field::Bytes(b)) => out.version = text(b)?,
            (3, Field::Bytes(b)) => {
                key_value(b)?; // attributes, not stored
            }
            (4, f) => numeric(f, false)?,
            (1..=3, _) => return Err(Unread),
            _ => {}
        }
        Ok(())
    })
}

/// `attributes` is the previous span's attribute count: spans of one
/// scope tend to carry the same, so the list is sized once.
fn span(bytes: &[u8], attributes: usize) -> Read<Span<'_>> {
    message(
        bytes,
        Span {
            attributes: Vec::with_capacity(attributes),
            ..Span::default()
        },
        |out, tag, field| {
            match (tag, field) {
                (1, Field::Bytes(b)) => out.trace_id = b,
                (2, Field::Bytes(b)) => out.span_id = b,
                (3, Field::Bytes(b)) => out.trace_state = text(b)?,
                (4, Field::Bytes(b)) => out.parent_span_id = b,
                (5, Field::Bytes(b)) => out.name = text(b)?,
                // An enum is an int32: the low 32 bits of the varint.
                (6, Field::Varint(v)) => out.kind = v as i32,
                (7, Field::Fixed64(v)) => out.start_time_unix_nano = v,
                (8, Field::Fixed64(v)) => out.end_time_unix_nano = v,
                (9, Field::Bytes(b)) => out.attributes.push(key_value(b)?),
                (10 | 12 | 14, f) => numeric(f, false)?, // dropped counts
                (11, Field::Bytes(b)) => out.events.push(event(b)?),
                (13, Field::Bytes(b)) => out.links.push(link(b)?),
                (15, Field::Bytes(b)) if out.status.is_none() => out.status = Some(status(b)?),
                (16, f) => numeric(f, true)?, // flags
                (1..=15, _) => return Err(Unread),
                _ => {}
            }
            Ok(())
        },
    )
}

fn status(bytes: &[u8]) -> Read<Status<'_>> {
    message(bytes, Status::default(), |out, tag, field| {
        match (tag, field) {
            (2, Field::Bytes(b)) => out.message = text(b)?,
            (3, Field::Varint(v)) => out.code = v as i32,
            (2 | 3, _) => return Err(Unread),
            _ => {}
        }
        Ok(())
    })
}

fn event(bytes: &[u8]) -> Read<Event<'_>> {
    message(bytes, Event::default(), |out, tag, field| {
        match (tag, field) {
            (1, Field::Fixed64(v)) => out.time_unix_nano = v,
            (2, Field::Bytes(b)) => out.name = text(b)?,
            (3, Field::Bytes(b)) => out.attributes.push(key_value(b)?),
            (4, f) => numeric(f, false)?,
            (1..=3, _) => return Err(Unread),
            _ => {}
        }
        Ok(())
    })
}

fn link(bytes: &[u8]) -> Read<Link<'_>> {
    message(bytes, Link::default(), |out, tag, field| {
        match (tag, field) {
            (1, Field::Bytes(b)) => out.trace_id = b,
            (2, Field::Bytes(b)) => out.span_id = b,
            (3, Field::Bytes(b)) => out.trace_state = text(b)?,
            (4, Field::Bytes(b)) => out.attributes.push(key_value(b)?),
            (5, f) => numeric(f, false)?,
            (6, f) => numeric(f, true)?, // flags
            (1..=4, _) => return Err(Unread),
            _ => {}
        }
        Ok(())
    })
}

fn key_value(bytes: &[u8]) -> Read<KeyValue<'_>> {
    // Most attributes are a short key and a short string, encoded as
    // `0a kl key 12 vl (0a sl string)`; anything else takes the loop below.
    if let [0x0a, kl @ 0..0x80, rest @ ..] = bytes
        && let Some((_, after_key)) = rest.split_at_checked(usize::from(*kl))
        && let [0x12, vl @ 0..0x80, value @ ..] = after_key
        && value.len() == usize::from(*vl)
        && let [0x0a, sl @ 0..0x80, string @ ..] = value
        && string.len() == usize::from(*sl)
    {
        // The four bytes between key and string are ASCII, so the key,
        // those bytes and the string are valid UTF-8 together exactly when
        // key and string are each: one check instead of two, and both
        // ends of the slice fall on character boundaries.
        let both = text(rest)?;
        let key_len = usize::from(*kl);
        return Ok(KeyValue {
            key: &both[..key_len],
            value: Value::String(&both[key_len + 4..]),
        });
    }
    let mut key = "";
    let mut value = None;
    let mut fields = Fields(bytes);
    while let Some((tag, field)) = fields.next()? {
        match (tag, field) {
            (1, Field::Bytes(b)) => key = text(b)?,
            (2, Field::Bytes(b)) if value.is_none() => value = Some(any_value(b)?),
            (3, f) => numeric(f, false)?, // key_strindex (profiles only)
            (1 | 2, _) => return Err(Unread),
            _ => {}
        }
    }
    Ok(KeyValue {
        key,
        value: value.unwrap_or(Value::Empty),
    })
}

/// How deep, in messages, a nested value read on its own may go: prost
/// allows 100 from the request's root, and an attribute value sits at
/// most seven below it. Deeper values are left to prost, which counts from
/// the root.
const NESTED_DEPTH: usize = 90;

/// One `AnyValue`. A scalar sent twice replaces the first, as protobuf
/// says for a `oneof`; arrays and maps, which protobuf would merge, are
/// decoded by prost from the value's own bytes.
fn any_value(bytes: &[u8]) -> Read<Value<'_>> {
    let mut value = Value::Empty;
    let mut fields = Fields(bytes);
    while let Some((tag, field)) = fields.next()? {
        value = match (tag, field) {
            (1, Field::Bytes(b)) => Value::String(text(b)?),
            (2, Field::Varint(v)) => Value::Bool(v != 0),
            (3, Field::Varint(v)) => Value::Int(v as i64),
            (4, Field::Fixed64(v)) => Value::Double(f64::from_bits(v)),
            (5 | 6, Field::Bytes(_)) => {
                let nested = pb_common::AnyValue::decode(bytes).map_err(|_| Unread)?;
                if depth(&nested) > NESTED_DEPTH {
                    return Err(Unread);
                }
                return Ok(Value::Nested(Cow::Owned(nested)));
            }
            (7, Field::Bytes(b)) => Value::Bytes(b),
            // A string-table reference (profiles only) reads as no value.
            (8, Field::Varint(_)) => Value::Empty,
            (1..=8, _) => return Err(Unread),
            _ => value,
        };
    }
    Ok(value)
}

/// Messages from `value` down to its deepest leaf.
fn depth(value: &pb_common::AnyValue) -> usize {
    use pb_common::any_value::Value as V;
    1 + match &value.value {
        Some(V::ArrayValue(a)) => 1 + a.values.iter().map(depth).max().unwrap_or(0),
        Some(V::KvlistValue(l)) => {
            2 + l
                .values
                .iter()
                .filter_map(|kv| kv.value.as_ref())
                .map(depth)
                .max()
                .unwrap_or(0)
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
