//! Receiver settings, part of the `receiver:` section of Seam's config file.

use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

use crate::normalize::Rules;

/// Limits and validation rules the OTLP receivers apply to every request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReceiverConfig {
    /// Largest gRPC message accepted (after decompression), as the
    /// OpenTelemetry Collector's `max_recv_msg_size_mib`.
    pub grpc_max_message_size: ByteSize,
    /// Largest HTTP body accepted, checked both on the wire and after
    /// decompression, so a small gzip bomb cannot expand past it.
    pub http_max_body_size: ByteSize,
    /// How far a span's end may precede its start before it is rejected.
    #[serde(with = "humantime_serde")]
    pub end_before_start_tolerance: Duration,
    /// When set, every export must carry `authorization: Bearer <token>`
    /// with one of these (gRPC metadata or HTTP header).
    pub bearer_tokens: Vec<String>,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self {
            grpc_max_message_size: ByteSize::mib(4),
            http_max_body_size: ByteSize::mib(20),
            end_before_start_tolerance: Duration::from_secs(1),
            bearer_tokens: Vec::new(),
        }
    }
}

impl ReceiverConfig {
    pub(crate) fn rules(&self) -> Rules {
        Rules {
            end_before_start_tolerance_ns: i64::try_from(
                self.end_before_start_tolerance.as_nanos(),
            )
            .unwrap_or(i64::MAX),
        }
    }

    pub(crate) fn grpc_limit(&self) -> usize {
        usize::try_from(self.grpc_max_message_size.as_u64()).unwrap_or(usize::MAX)
    }

    pub(crate) fn http_limit(&self) -> usize {
        usize::try_from(self.http_max_body_size.as_u64()).unwrap_or(usize::MAX)
    }
}
