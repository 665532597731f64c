//! `google.rpc.Status`, the error body OTLP/HTTP servers return.
//!
//! `details` carries a `google.rpc.RetryInfo` when Seam pushes back, which
//! is how OTLP tells a client that `RESOURCE_EXHAUSTED` is worth retrying
//! and when. Declaring the few messages here avoids pulling a second
//! protobuf crate for them.

/// The protobuf form of `google.rpc.Status` (tags as in `google/rpc/status.proto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoAny {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoDuration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `google.rpc.RetryInfo`: when the client may try again.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

/// A status whose details say: retry after `seconds`.
pub fn retry_after(code: i32, message: String, seconds: i64) -> RpcStatus {
    use prost::Message as _;
    let info = RetryInfo {
        retry_delay: Some(ProtoDuration { seconds, nanos: 0 }),
    };
    RpcStatus {
        code,
        message,
        details: vec![ProtoAny {
            type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
            value: info.encode_to_vec(),
        }],
    }
}

/// gRPC status codes used in HTTP error bodies.
pub mod code {
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const INTERNAL: i32 = 13;
    pub const UNAVAILABLE: i32 = 14;
    pub const UNIMPLEMENTED: i32 = 12;
    pub const UNAUTHENTICATED: i32 = 16;
}
