//! Decoding of OTLP/HTTP bodies: media type, content encoding, size limits,
//! protobuf and OTLP JSON.
//!
//! gRPC framing is tonic's, and protobuf requests of both receivers are
//! read by the pipeline ([`crate::view`]); everything here is what HTTP
//! adds, and OTLP JSON.
//! Limits apply to the decompressed size too, read incrementally, so a
//! small compressed body cannot expand into gigabytes before it is refused.

use std::io::Read;

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

/// How the body is encoded, from `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }
}

/// How the body is compressed, from `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unsupported Content-Type {0:?}: send application/x-protobuf or application/json")]
    UnsupportedMediaType(String),
    #[error("unsupported Content-Encoding {0:?}: send gzip, zstd or an uncompressed body")]
    UnsupportedEncoding(String),
    #[error("request body exceeds the {limit} byte limit (receiver.http_max_body_size)")]
    TooLarge { limit: usize },
    #[error("could not decompress the {what} body: {source}")]
    Decompress {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("malformed OTLP protobuf: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("malformed OTLP JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Reads `Content-Type`, ignoring parameters such as `charset`.
pub fn encoding(content_type: Option<&str>) -> Result<Encoding, DecodeError> {
    let raw = content_type.unwrap_or("");
    let essence = raw
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
        "application/json" => Ok(Encoding::Json),
        _ => Err(DecodeError::UnsupportedMediaType(raw.to_owned())),
    }
}

/// Reads `Content-Encoding`.
pub fn compression(content_encoding: Option<&str>) -> Result<Compression, DecodeError> {
    let raw = content_encoding.unwrap_or("").trim();
    match raw.to_ascii_lowercase().as_str() {
        "" | "identity" | "none" => Ok(Compression::None),
        "gzip" | "x-gzip" => Ok(Compression::Gzip),
        "zstd" => Ok(Compression::Zstd),
        _ => Err(DecodeError::UnsupportedEncoding(raw.to_owned())),
    }
}

/// Decompresses `body`, refusing output larger than `limit` bytes.
pub fn decompress(
    body: Bytes,
    compression: Compression,
    limit: usize,
) -> Result<Bytes, DecodeError> {
    let (what, reader): (&'static str, Box<dyn Read + '_>) = match compression {
        Compression::None => {
            return if body.len() > limit {
                Err(DecodeError::TooLarge { limit })
            } else {
                Ok(body)
            };
        }
        Compression::Gzip => (
            "gzip",
            Box::new(flate2::read::MultiGzDecoder::new(&body[..])),
        ),
        Compression::Zstd => (
            "zstd",
            Box::new(
                zstd::stream::read::Decoder::new(&body[..]).map_err(|source| {
                    DecodeError::Decompress {
                        what: "zstd",
                        source,
                    }
                })?,
            ),
        ),
    };
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|source| DecodeError::Decompress { what, source })?;
    if out.len() > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    Ok(out.into())
}

/// OTLP JSON. The fast path is a straight serde decode of the spec's form
/// (camelCase names, integer enums, hex ids, 64-bit ints as strings). What
/// the Collector also accepts (enum names such as `SPAN_KIND_SERVER`, the
/// proto's snake_case field names) fails that decode and is rewritten into
/// the spec's form, then decoded again; if that fails too, the first error
/// is reported because it describes the body as sent.
pub fn decode_json(body: &[u8]) -> Result<ExportTraceServiceRequest, DecodeError> {
    // Unknown fields are ignored, so snake_case names would decode "fine"
    // into an empty request: look for them before trusting the fast path.
    let snake_case = memchr::memmem::find(body, b"\"resource_spans\"").is_some()
        || memchr::memmem::find(body, b"\"scope_spans\"").is_some();
    let first = match serde_json::from_slice::<ExportTraceServiceRequest>(body) {
        Ok(request) if !snake_case => return Ok(request),
        Ok(_) => None,
        Err(e) => Some(e),
    };
    let fail = |first: Option<serde_json::Error>, later: serde_json::Error| {
        DecodeError::Json(first.unwrap_or(later))
    };
    let mut value = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => v,
        Err(e) => return Err(fail(first, e)),
    };
    lenient::rewrite(&mut value);
    serde_json::from_value(value).map_err(|e| fail(first, e))
}

mod lenient {
    use serde_json::Value;

    /// Rewrites snake_case keys and enum names in place.
    pub fn rewrite(value: &mut Value) {
        walk(value, None);
    }

    fn walk(value: &mut Value, key: Option<&str>) {
        match value {
            Value::Object(map) => {
                let old = std::mem::take(map);
                for (k, mut v) in old {
                    let camel = to_camel(&k);
                    walk(&mut v, Some(&camel));
                    map.insert(camel, v);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, key)),
            Value::String(s) => {
                let number = match key {
                    Some("kind") => span_kind(s),
                    Some("code") => status_code(s),
                    _ => None,
                };
                if let Some(n) = number {
                    *value = Value::from(n);
                }
            }
            _ => {}
        }
    }

    fn to_camel(key: &str) -> String {
        if !key.contains('_') {
            return key.to_owned();
        }
        let mut out = String::with_capacity(key.len());
        let mut upper = false;
        for c in key.chars() {
            if c == '_' {
                upper = true;
            } else if upper {
                out.push(c.to_ascii_uppercase());
                upper = false;
            } else {
                out.push(c);
            }
        }
        out
    }

    fn span_kind(s: &str) -> Option<i64> {
        Some(match s {
            "SPAN_KIND_UNSPECIFIED" => 0,
            "SPAN_KIND_INTERNAL" => 1,
            "SPAN_KIND_SERVER" => 2,
            "SPAN_KIND_CLIENT" => 3,
            "SPAN_KIND_PRODUCER" => 4,
            "SPAN_KIND_CONSUMER" => 5,
            _ => return s.parse().ok(),
        })
    }

    fn status_code(s: &str) -> Option<i64> {
        Some(match s {
            "STATUS_CODE_UNSET" => 0,
            "STATUS_CODE_OK" => 1,
            "STATUS_CODE_ERROR" => 2,
            _ => return s.parse().ok(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const SPEC_JSON: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},
      "scopeSpans":[{"scope":{"name":"manual"},"spans":[{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174",
      "name":"GET /cart","kind":2,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":1544712661000000000,
      "attributes":[{"key":"http.status_code","value":{"intValue":"200"}},{"key":"blob","value":{"bytesValue":"3q0="}}],
      "unknownField":{"ignored":true},"status":{"code":2,"message":"bad"}}]}]}]}"#;

    #[test]
    fn spec_json_decodes_with_all_its_traps() {
        let req = decode_json(SPEC_JSON.as_bytes()).unwrap();
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(
            span.trace_id,
            const_hex::decode("5b8efff798038103d269b633813fc60c").unwrap()
        );
        assert_eq!(span.kind, 2);
        assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
        assert_eq!(span.end_time_unix_nano, 1_544_712_661_000_000_000);
        assert_eq!(span.status.as_ref().unwrap().code, 2);
    }

    #[test]
    fn enum_names_and_snake_case_are_accepted() {
        let body = SPEC_JSON
            .replace(r#""kind":2"#, r#""kind":"SPAN_KIND_CONSUMER""#)
            .replace(r#""code":2"#, r#""code":"STATUS_CODE_ERROR""#)
            .replace("resourceSpans", "resource_spans")
            .replace("startTimeUnixNano", "start_time_unix_nano");
        let req = decode_json(body.as_bytes()).unwrap();
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.kind, 5);
        assert_eq!(span.status.as_ref().unwrap().code, 2);
        assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
    }

    #[test]
    fn attribute_named_kind_is_left_alone() {
        let body = SPEC_JSON
            .replace(
                r#""key":"blob","value":{"bytesValue":"3q0="}"#,
                r#""key":"kind","value":{"stringValue":"SPAN_KIND_SERVER"}"#,
            )
            .replace(r#""kind":2"#, r#""kind":"SPAN_KIND_SERVER""#);
        let req = decode_json(body.as_bytes()).unwrap();
        let attr = &req.resource_spans[0].scope_spans[0].spans[0].attributes[1];
        assert_eq!(attr.key, "kind");
        assert_eq!(
            crate::normalize::attributes::render(&attr.value.as_ref().unwrap().into()),
            "SPAN_KIND_SERVER"
        );
    }

    #[test]
    fn malformed_json_reports_the_original_error() {
        let err = decode_json(br#"{"resourceSpans": [ {"#).unwrap_err();
        assert!(matches!(err, DecodeError::Json(_)), "{err}");
        let err =
            decode_json(br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}"#)
                .unwrap_err();
        assert!(err.to_string().contains("malformed OTLP JSON"), "{err}");
    }

    #[test]
    fn media_types_and_encodings() {
        assert_eq!(
            encoding(Some("application/json; charset=utf-8")).unwrap(),
            Encoding::Json
        );
        assert_eq!(
            encoding(Some("Application/X-Protobuf")).unwrap(),
            Encoding::Protobuf
        );
        assert!(matches!(
            encoding(Some("text/plain")),
            Err(DecodeError::UnsupportedMediaType(_))
        ));
        assert!(matches!(
            encoding(None),
            Err(DecodeError::UnsupportedMediaType(_))
        ));
        assert_eq!(compression(None).unwrap(), Compression::None);
        assert_eq!(compression(Some("GZIP")).unwrap(), Compression::Gzip);
        assert!(matches!(
            compression(Some("br")),
            Err(DecodeError::UnsupportedEncoding(_))
        ));
    }

    #[test]
    fn decompression_is_bounded() {
        let plain = vec![b'a'; 10_000];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&plain).unwrap();
        let gz = Bytes::from(gz.finish().unwrap());
        assert_eq!(
            decompress(gz.clone(), Compression::Gzip, 10_000)
                .unwrap()
                .len(),
            10_000
        );
        assert!(matches!(
            decompress(gz, Compression::Gzip, 9_999),
            Err(DecodeError::TooLarge { .. })
        ));
        let zs = Bytes::from(zstd::encode_all(&plain[..], 3).unwrap());
        assert_eq!(
            decompress(zs.clone(), Compression::Zstd, 10_000)
                .unwrap()
                .len(),
            10_000
        );
        assert!(matches!(
            decompress(zs, Compression::Zstd, 100),
            Err(DecodeError::TooLarge { .. })
        ));
        assert!(matches!(
            decompress(Bytes::from_static(b"not gzip"), Compression::Gzip, 100),
            Err(DecodeError::Decompress { .. })
        ));
        assert!(matches!(
            decompress(Bytes::from(plain), Compression::None, 100),
            Err(DecodeError::TooLarge { .. })
        ));
    }
}
