//! The requests a load run sends: flat batches of spans of a chosen shape,
//! or the demo's hybrid journeys (queues, functions, cold starts) so the
//! stitching path carries load too. Ids are unique across a run and across
//! runs (a random salt), so every span is a new row.

use std::collections::VecDeque;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span};

/// What each flat request looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanShape {
    /// Spans per request.
    pub batch: usize,
    /// Attributes per span.
    pub attributes: usize,
    /// Length of each attribute value, in bytes.
    pub attribute_size: usize,
}

impl Default for SpanShape {
    fn default() -> Self {
        Self {
            batch: 512,
            attributes: 10,
            attribute_size: 16,
        }
    }
}

/// Spans per trace in flat requests.
const TRACE_SPANS: u64 = 8;
const SERVICES: u64 = 20;

/// Keys a real HTTP server span carries, used before numbered ones.
const KEYS: [&str; 8] = [
    "http.request.method",
    "http.route",
    "url.full",
    "server.address",
    "user_agent.original",
    "client.address",
    "network.protocol.version",
    "http.response.status_code",
];

enum Kind {
    Flat(SpanShape),
    Hybrid(Box<seam_demo::Generator>),
}

/// Makes requests; one per worker, each with its own salt.
pub struct Generator {
    kind: Kind,
    salt: u64,
    next: u64,
    keys: Vec<String>,
    queued: VecDeque<(ExportTraceServiceRequest, usize)>,
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// A string of exactly `len` bytes that starts with `head`.
fn sized(head: &str, len: usize) -> String {
    let mut s = String::with_capacity(len);
    s.push_str(&head[..head.len().min(len)]);
    while s.len() < len {
        s.push('x');
    }
    s
}

/// SplitMix64: spreads counters over the id space.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Generator {
    /// Flat requests of `shape`; `salt` makes the ids of this generator
    /// its own.
    pub fn flat(shape: SpanShape, salt: u64) -> Self {
        let keys = (0..shape.attributes)
            .map(|i| match KEYS.get(i) {
                Some(k) => (*k).to_owned(),
                None => format!("app.field_{i}"),
            })
            .collect();
        Self {
            kind: Kind::Flat(shape),
            salt,
            next: 0,
            keys,
            queued: VecDeque::new(),
        }
    }

    /// The demo's hybrid journeys, one flow after another.
    pub fn hybrid(salt: u64) -> Self {
        Self {
            kind: Kind::Hybrid(Box::new(seam_demo::Generator::new(salt))),
            salt,
            next: 0,
            keys: Vec::new(),
            queued: VecDeque::new(),
        }
    }

    /// The next request and how many spans it carries; times are around
    /// `now_unix_nano`.
    pub fn next_request(&mut self, now_unix_nano: u64) -> (ExportTraceServiceRequest, usize) {
        match &mut self.kind {
            Kind::Flat(shape) => {
                let shape = *shape;
                let request = self.flat_request(shape, now_unix_nano);
                (request, shape.batch)
            }
            Kind::Hybrid(demo) => {
                while self.queued.is_empty() {
                    let (_, requests) = demo.next_flow(now_unix_nano);
                    self.queued.extend(requests.into_iter().map(|r| {
                        let spans = count(&r);
                        (r, spans)
                    }));
                }
                self.queued.pop_front().expect("a flow has requests")
            }
        }
    }

    fn flat_request(&mut self, shape: SpanShape, now: u64) -> ExportTraceServiceRequest {
        let request_no = self.next;
        let service = format!("load-{}", request_no % SERVICES);
        let mut spans = Vec::with_capacity(shape.batch);
        for i in 0..shape.batch as u64 {
            let n = self.next;
            self.next += 1;
            let trace_no = n / TRACE_SPANS;
            // The generator's own half and a counter: unique by construction.
            let mut trace_id = [0u8; 16];
            trace_id[..8].copy_from_slice(&mix(self.salt).to_be_bytes());
            trace_id[8..].copy_from_slice(&(trace_no + 1).to_be_bytes());
            // Unique within the trace, which is all a span id has to be.
            let span_id = |k: u64| (mix(self.salt.wrapping_add(k)) | 1).to_be_bytes().to_vec();
            let first = n - n % TRACE_SPANS;
            let start = now + i * 1_000;
            let attributes = self
                .keys
                .iter()
                .enumerate()
                .map(|(k, key)| {
                    if key == "http.response.status_code" {
                        kv(key, Value::IntValue(200))
                    } else {
                        kv(
                            key,
                            Value::StringValue(sized(&format!("{k}-{n}"), shape.attribute_size)),
                        )
                    }
                })
                .collect();
            spans.push(Span {
                trace_id: trace_id.to_vec(),
                span_id: span_id(n),
                parent_span_id: if n == first {
                    Vec::new()
                } else {
                    span_id(first)
                },
                name: format!("GET /api/items/{{id}}/{}", n % 7),
                kind: if n == first {
                    span::SpanKind::Server
                } else {
                    span::SpanKind::Internal
                } as i32,
                start_time_unix_nano: start,
                end_time_unix_nano: start + 1_500_000 + (n % 101) * 10_000,
                attributes,
                ..Default::default()
            });
        }
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", Value::StringValue(service.clone())),
                        kv(
                            "k8s.pod.name",
                            Value::StringValue(format!("{service}-6f7c9-{}", request_no % 3)),
                        ),
                        kv("k8s.namespace.name", Value::StringValue("load".into())),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }
}

/// One flat request of `shape` as a gRPC message body: the 5-byte frame
/// header (not compressed, length) and the protobuf.
pub fn grpc_body(shape: SpanShape, seed: u64) -> Vec<u8> {
    use prost::Message;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let request = Generator::flat(shape, seed).next_request(now).0;
    let encoded = request.encode_to_vec();
    let mut body = Vec::with_capacity(5 + encoded.len());
    body.push(0);
    body.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
    body.extend_from_slice(&encoded);
    body
}

/// Spans in `request`.
pub fn count(request: &ExportTraceServiceRequest) -> usize {
    request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn flat_requests_have_the_shape_and_unique_ids() {
        let shape = SpanShape {
            batch: 100,
            attributes: 12,
            attribute_size: 40,
        };
        let mut a = Generator::flat(shape, 1);
        let mut b = Generator::flat(shape, 2);
        let mut ids = HashSet::new();
        for g in [&mut a, &mut b] {
            for _ in 0..3 {
                let (request, n) = g.next_request(1_000);
                assert_eq!(n, 100);
                assert_eq!(count(&request), 100);
                for span in &request.resource_spans[0].scope_spans[0].spans {
                    assert_eq!(span.attributes.len(), 12);
                    let route = &span.attributes[1];
                    assert_eq!(route.key, "http.route");
                    let Some(Value::StringValue(v)) =
                        route.value.as_ref().and_then(|v| v.value.as_ref())
                    else {
                        panic!("string value");
                    };
                    assert_eq!(v.len(), 40);
                    assert!(ids.insert((span.trace_id.clone(), span.span_id.clone())));
                    assert!(span.trace_id.iter().any(|b| *b != 0));
                }
            }
        }
        assert_eq!(ids.len(), 600);
    }

    #[test]
    fn a_grpc_body_is_one_framed_request() {
        use prost::Message;
        let body = grpc_body(SpanShape::default(), 3);
        assert_eq!(body[0], 0, "not compressed");
        let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        assert_eq!(len, body.len() - 5);
        let request = ExportTraceServiceRequest::decode(&body[5..]).unwrap();
        assert_eq!(count(&request), 512);
    }

    #[test]
    fn hybrid_requests_come_from_the_demo_journeys() {
        let mut g = Generator::hybrid(7);
        let total: usize = (0..20).map(|_| g.next_request(1_000).1).sum();
        assert!(total > 20, "journeys carry several spans per request");
    }
}
