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

/// Operation names of messaging SDKs that settle or manage messages
/// already sent: acknowledgements, lock and deadline changes, deletes,
/// offset commits. Matched against `messaging.operation.name`, a legacy
/// `messaging.operation`, and the last word of the span name (`<sub> ack`,
/// `ServiceBusReceiver.Complete`), in lowercase without `_` or `-`.
const HOUSEKEEPING: &[&str] = &[
    "settle",
    "ack",
    "nack",
    "modack",
    "modifyackdeadline",
    "complete",
    "abandon",
    "deadletter",
    "defer",
    "renewmessagelock",
    "renewlock",
    "commit",
    "commitsync",
    "commitasync",
    "deletemessage",
    "deletemessagebatch",
    "changemessagevisibility",
    "changemessagevisibilitybatch",
];

/// Whether `name` is one of [`HOUSEKEEPING`], whatever its spelling.
fn is_housekeeping(name: &str) -> bool {
    let squashed: String = name
        .chars()
        .filter(|c| !matches!(c, '_' | '-'))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    HOUSEKEEPING.contains(&squashed.as_str())
}

/// The words of a span name that may name its operation: the first and
/// last of a name with spaces (`<subscription> ack`, `ack <subscription>`),
/// else the method of `Client.Method` (`ServiceBusReceiver.Complete`,
/// `SQS.DeleteMessage`).
fn operation_words(name: &str) -> [&str; 2] {
    match name.split_once(' ') {
        Some((first, _)) => [first, name.rsplit(' ').next().unwrap_or(name)],
        None => {
            let method = name.rsplit(['.', '/']).next().unwrap_or(name);
            [method, method]
        }
    }
}

/// The last segment of a `Client.Method` span name.
fn method(name: &str) -> &str {
    name.rsplit(['.', '/', ' ']).next().unwrap_or(name)
}

fn attribute<'r>(row: &'r SpanRow<'_>, key: &str) -> Option<&'r str> {
    row.attributes
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_ref())
}

/// Whether the span settles or manages messages rather than sending or
/// receiving one (docs/stitching.md, "Roles").
fn housekeeping(row: &SpanRow<'_>) -> bool {
    // A JetStream acknowledgement is a publish to the `$JS.ACK` reply
    // subject.
    if row
        .messaging_destination
        .as_deref()
        .is_some_and(|d| d.starts_with("$JS.ACK."))
    {
        return true;
    }
    match row.messaging_operation.as_deref() {
        Some("settle") => return true,
        // An operation that moves a message says so: a destination named
        // `orders.deadletter` in `send orders.deadletter` is no settlement.
        Some("publish" | "send" | "create" | "receive" | "process") => return false,
        _ => {}
    }
    let messaging = row.messaging_system.is_some() || row.messaging_operation.is_some();
    messaging
        && (attribute(row, "messaging.operation.name").is_some_and(is_housekeeping)
            || row
                .messaging_operation
                .as_deref()
                .is_some_and(is_housekeeping)
            || operation_words(&row.name).into_iter().any(is_housekeeping)
            || attribute(row, "rpc.method").is_some_and(is_housekeeping))
}

/// The Azure Event Grid SDK's send (`EventGridPublisherClient.SendEvents`,
/// kind INTERNAL): it sets no messaging attribute, yet its context is what
/// every event of the batch carries and what the consumers link to.
fn azure_event_send(row: &SpanRow<'_>) -> bool {
    row.kind == SpanKind::Internal
        && method(&row.name).starts_with("Send")
        && attribute(row, "az.namespace") == Some("Microsoft.EventGrid")
}

/// The role of an AWS SDK call by its API name (`rpc.method`), for SDK
/// instrumentations that name the call and nothing else: only calls that
/// move a message have one (`GetQueueUrl` is no producer).
fn aws_call(row: &SpanRow<'_>) -> Option<Role> {
    match attribute(row, "rpc.method")? {
        "SendMessage" | "SendMessageBatch" | "Publish" | "PublishBatch" | "PutEvents"
        | "PutRecord" | "PutRecords" => Some(Role::Producer),
        "ReceiveMessage" => Some(Role::Consumer),
        _ => None,
    }
}

/// The role of `row`, or `None` when it can be neither side of a hop.
///
/// Housekeeping decides first: an acknowledgement or a commit is neither
/// side of a hop, and taking these CLIENT spans for producers would report
/// every acknowledgement as a lost message. So does the wire call beneath
/// an instrumented send or receive. Then the messaging operation, because
/// pull-based receive spans are CLIENT spans and some producers are
/// INTERNAL; then the kind; then a function's trigger.
pub fn role_of(row: &SpanRow<'_>) -> Option<Role> {
    if housekeeping(row) || row.transport {
        return None;
    }
    // A send that links to other spans is the batch call around the
    // per-message `create` spans, which are the producers.
    let batch_send = !row.links.is_empty();
    match row.messaging_operation.as_deref() {
        Some("create") => return Some(Role::Producer),
        Some("publish" | "send") if batch_send => return None,
        Some("publish" | "send") => return Some(Role::Producer),
        Some("receive" | "process") => return Some(Role::Consumer),
        // Control-plane calls (a NATS subscription) and a request around
        // its own publish and reply are not messages.
        Some("subscribe" | "unsubscribe" | "request") => return None,
        _ => {}
    }
    if azure_event_send(row) {
        return Some(Role::Producer);
    }
    let messaging = row.messaging_system.is_some();
    match row.kind {
        // Without an operation, a batch says so by its message count.
        SpanKind::Producer
            if batch_send && attribute(row, "messaging.batch.message_count").is_some() =>
        {
            None
        }
        SpanKind::Producer => Some(Role::Producer),
        SpanKind::Consumer => Some(Role::Consumer),
        SpanKind::Client if messaging && batch_send => None,
        SpanKind::Client if messaging && attribute(row, "rpc.system") == Some("aws-api") => {
            aws_call(row)
        }
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

    fn with(mut row: SpanRow<'static>, key: &'static str, value: &'static str) -> SpanRow<'static> {
        row.attributes
            .push((Cow::Borrowed(key), Cow::Borrowed(value)));
        row
    }

    fn linked(mut row: SpanRow<'static>) -> SpanRow<'static> {
        row.links.push(seam_model::LinkRow {
            trace_id: TraceId([3; 16]),
            span_id: SpanId([4; 8]),
            trace_state: Cow::Borrowed(""),
            attributes: Vec::new(),
        });
        row
    }

    #[test]
    fn housekeeping_is_neither_side_in_any_spelling() {
        use Platform::Kubernetes;
        let client = |name: &'static str| SpanRow {
            name: Cow::Borrowed(name),
            ..row(SpanKind::Client, Kubernetes, None, Some("gcp_pubsub"))
        };
        for name in [
            "projects/p/subscriptions/s ack",
            "orders-sub modack",
            "ServiceBusReceiver.Complete",
            "ServiceBusReceiver.DeadLetter",
            "SQS.DeleteMessageBatch",
        ] {
            assert_eq!(role_of(&client(name)), None, "{name}");
        }
        let named = with(client("x"), "messaging.operation.name", "modifyAckDeadline");
        assert_eq!(role_of(&named), None);
        let commit = row(SpanKind::Client, Kubernetes, Some("commit"), Some("kafka"));
        assert_eq!(role_of(&commit), None);
        let deleted = with(client("x"), "rpc.method", "ChangeMessageVisibility");
        assert_eq!(role_of(&deleted), None);
        let mut ack = row(
            SpanKind::Producer,
            Kubernetes,
            Some("publish"),
            Some("nats"),
        );
        ack.messaging_destination = Some(Cow::Borrowed("$JS.ACK.ORDERS.c.1.2.3.4.0"));
        assert_eq!(role_of(&ack), None, "a JetStream ack is a publish");
        assert_eq!(
            role_of(&client("orders send")),
            Some(Role::Producer),
            "a plain send still is"
        );
        let to_dead_letters = SpanRow {
            name: Cow::Borrowed("send orders.deadletter"),
            ..row(SpanKind::Producer, Kubernetes, Some("send"), Some("kafka"))
        };
        assert_eq!(role_of(&to_dead_letters), Some(Role::Producer));
        assert_eq!(role_of(&client("ack my-subscription")), None);
    }

    #[test]
    fn a_batch_send_gives_way_to_its_create_spans() {
        use Platform::Kubernetes;
        let publish = row(
            SpanKind::Client,
            Kubernetes,
            Some("publish"),
            Some("servicebus"),
        );
        assert_eq!(role_of(&linked(publish.clone())), None);
        assert_eq!(role_of(&publish), Some(Role::Producer));
        let untyped = row(SpanKind::Producer, Kubernetes, None, Some("gcp_pubsub"));
        assert_eq!(
            role_of(&linked(untyped.clone())),
            Some(Role::Producer),
            "a link alone does not make a batch"
        );
        let batch = with(untyped, "messaging.batch.message_count", "2");
        assert_eq!(role_of(&linked(batch)), None);
        let create = row(SpanKind::Producer, Kubernetes, Some("create"), None);
        assert_eq!(role_of(&linked(create)), Some(Role::Producer));
        for op in ["request", "subscribe"] {
            let nats = row(SpanKind::Producer, Kubernetes, Some(op), Some("nats"));
            assert_eq!(role_of(&nats), None, "{op}");
        }
    }

    #[test]
    fn sdk_calls_and_wire_calls() {
        use Platform::Kubernetes;
        let call = |method| {
            with(
                with(
                    row(SpanKind::Client, Kubernetes, None, Some("aws_sqs")),
                    "rpc.system",
                    "aws-api",
                ),
                "rpc.method",
                method,
            )
        };
        assert_eq!(role_of(&call("ReceiveMessage")), Some(Role::Consumer));
        assert_eq!(role_of(&call("GetQueueUrl")), None, "moves no message");
        assert_eq!(role_of(&call("SendMessage")), Some(Role::Producer));
        let mut wire = call("SendMessage");
        wire.transport = true;
        assert_eq!(role_of(&wire), None, "beneath an instrumented send");
        let grid = SpanRow {
            name: Cow::Borrowed("EventGridPublisherClient.SendEvents"),
            ..with(
                row(SpanKind::Internal, Kubernetes, None, None),
                "az.namespace",
                "Microsoft.EventGrid",
            )
        };
        assert_eq!(role_of(&grid), Some(Role::Producer));
    }
}
