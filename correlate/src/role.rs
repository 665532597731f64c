//! Which side of a boundary a span can be on (docs/contract.md §5.1), from its kind,
//! its messaging operation and its trigger. A pure function of one span.

use seam_model::{Platform, SpanKind, SpanRow};
use serde::{Deserialize, Serialize};

/// The side of a hop a span stands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Sends a message (publish, send, create).
    Producer,
    /// Receives or processes a message.
    Consumer,
    /// Makes a synchronous call that may cross platforms.
    Caller,
    /// Serves a synchronous call that may come from another platform.
    Callee,
}

impl Role {
    /// Async roles meet through queues and may be orphans; sync ones only
    /// meet their direct parent or child.
    pub fn is_async(self) -> bool {
        matches!(self, Self::Producer | Self::Consumer)
    }

    /// Whether this role is the upstream side of a boundary.
    pub fn is_upstream(self) -> bool {
        matches!(self, Self::Producer | Self::Caller)
    }

    /// The role a partner must have.
    pub fn partner(self) -> Self {
        match self {
            Self::Producer => Self::Consumer,
            Self::Consumer => Self::Producer,
            Self::Caller => Self::Callee,
            Self::Callee => Self::Caller,
        }
    }
}

/// Whether a span on this platform can be one end of a cross-platform
/// call: the two sides must be known and differ, so hosts and unknown
/// resources never count.
fn crosses_platforms(platform: Platform) -> bool {
    matches!(platform, Platform::Kubernetes | Platform::Faas)
}

/// The role of `row`, or `None` when it can be neither side of a hop.
///
/// The messaging operation decides first, because pull-based receive spans
/// are CLIENT spans and some producers are INTERNAL; then the kind; then a
/// function's trigger.
pub fn role_of(row: &SpanRow<'_>) -> Option<Role> {
    match row.messaging_operation.as_deref() {
        Some("publish" | "send" | "create") => return Some(Role::Producer),
        Some("receive" | "process") => return Some(Role::Consumer),
        // Acknowledging or deleting a message is neither side of a hop;
        // taking these CLIENT spans for producers would report every
        // acknowledgement as a lost message.
        Some("settle") => return None,
        _ => {}
    }
    let messaging = row.messaging_system.is_some();
    match row.kind {
        SpanKind::Producer => Some(Role::Producer),
        SpanKind::Consumer => Some(Role::Consumer),
        SpanKind::Client if messaging => Some(Role::Producer),
        SpanKind::Server
            if row.platform == Platform::Faas
                && matches!(row.faas_trigger.as_deref(), Some("pubsub" | "datasource")) =>
        {
            Some(Role::Consumer)
        }
        SpanKind::Client if crosses_platforms(row.platform) => Some(Role::Caller),
        // A callee can only meet its caller through its parent.
        SpanKind::Server if crosses_platforms(row.platform) && row.parent_span_id.is_some() => {
            Some(Role::Callee)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use seam_model::{Attributes, SpanId, TraceId};

    use super::*;

    static NONE: Attributes<'static> = Vec::new();

    fn row(
        kind: SpanKind,
        platform: Platform,
        operation: Option<&'static str>,
        system: Option<&'static str>,
    ) -> SpanRow<'static> {
        SpanRow {
            kind,
            platform,
            messaging_operation: operation.map(Cow::Borrowed),
            messaging_system: system.map(Cow::Borrowed),
            ..SpanRow::new(TraceId([1; 16]), SpanId([2; 8]), 0, 1, &NONE)
        }
    }

    #[test]
    fn the_operation_decides_before_the_kind() {
        use Platform::{Faas, Kubernetes};
        // A pull-based receive is a CLIENT span on the consumer side.
        let receive = row(
            SpanKind::Client,
            Kubernetes,
            Some("receive"),
            Some("aws_sqs"),
        );
        assert_eq!(role_of(&receive), Some(Role::Consumer));
        let publish = row(SpanKind::Internal, Kubernetes, Some("publish"), None);
        assert_eq!(role_of(&publish), Some(Role::Producer));
        let create = row(SpanKind::Producer, Kubernetes, Some("create"), None);
        assert_eq!(role_of(&create), Some(Role::Producer));
        let sdk_send = row(SpanKind::Client, Kubernetes, None, Some("kafka"));
        assert_eq!(role_of(&sdk_send), Some(Role::Producer));
        assert_eq!(
            role_of(&row(SpanKind::Consumer, Faas, None, None)),
            Some(Role::Consumer)
        );
        let settle = row(
            SpanKind::Client,
            Kubernetes,
            Some("settle"),
            Some("servicebus"),
        );
        assert_eq!(role_of(&settle), None, "an acknowledgement is no producer");
    }

    #[test]
    fn triggers_and_platforms_decide_the_rest() {
        let mut push = row(SpanKind::Server, Platform::Faas, None, None);
        push.faas_trigger = Some(Cow::Borrowed("pubsub"));
        assert_eq!(role_of(&push), Some(Role::Consumer));
        push.faas_trigger = Some(Cow::Borrowed("http"));
        assert_eq!(role_of(&push), None, "a root SERVER span meets no caller");
        push.parent_span_id = Some(SpanId([3; 8]));
        assert_eq!(role_of(&push), Some(Role::Callee));
        let client = row(SpanKind::Client, Platform::Kubernetes, None, None);
        assert_eq!(role_of(&client), Some(Role::Caller));
        let host = row(SpanKind::Client, Platform::Host, None, None);
        assert_eq!(
            role_of(&host),
            None,
            "only Kubernetes and functions cross platforms"
        );
        assert_eq!(
            role_of(&row(SpanKind::Internal, Platform::Faas, None, None)),
            None
        );
    }
}
