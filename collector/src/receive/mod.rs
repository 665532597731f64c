//! The two OTLP transports. Both hand decoded requests to the same
//! [`Pipeline`](crate::Pipeline) and differ only in framing and error codes.

pub mod grpc;
pub mod http;
