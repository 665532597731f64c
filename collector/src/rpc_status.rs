//! `google.rpc.Status`, the error body OTLP/HTTP servers return.
//!
//! Only `code` and `message` are filled; `details` is left empty, which
//! every OTLP client accepts. Declaring the two fields here avoids pulling a
//! second protobuf crate for one message.

/// The protobuf form of `google.rpc.Status` (tags as in `google/rpc/status.proto`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
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
