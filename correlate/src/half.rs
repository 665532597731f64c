//! What correlation keeps of a span: a compact, owned record ("half") with
//! just the fields that find and describe a boundary, a flow or a cold
//! start. Extracted once per span on the ingest path; the span row itself
//! goes to the store untouched.

use std::sync::Arc;

use seam_model::{ColdStartSource, ColdStartType, Platform, SpanId, SpanKind, SpanRow, TraceId};
use serde::{Deserialize, Serialize};

use crate::config::CorrelationConfig;
use crate::role::{Role, role_of};

/// A span's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SpanKey {
    pub trace: TraceId,
    pub span: SpanId,
}

impl SpanKey {
    pub fn new(trace: TraceId, span: SpanId) -> Self {
        Self { trace, span }
    }
}

/// One side of a potential boundary, or a span that only carries
/// correlation values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Half {
    pub key: SpanKey,
    pub parent: Option<SpanId>,
    pub role: Option<Role>,
    /// Span links, for consumers (a batch consumer has one per message).
    pub links: Vec<SpanKey>,
    /// `(index into the configured keys, value)`, in key order.
    pub values: Vec<(u16, String)>,
    /// Shared with every other waiting half of the same service, system
    /// or destination (interned by the state that keeps the half).
    pub service: Arc<str>,
    pub platform: Platform,
    pub system: Option<Arc<str>>,
    pub destination: Option<Arc<str>>,
    pub start: i64,
    pub end: i64,
}

impl Half {
    /// Whether the span is a messaging span, the only kind that can be an
    /// orphan or unconsumed: a function's trigger span without messaging
    /// attributes has children that carry them.
    pub fn is_messaging(&self) -> bool {
        self.system.is_some() || self.destination.is_some()
    }
}

/// A function or pod invocation, for cold-start detection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invocation {
    pub key: SpanKey,
    pub parent: Option<SpanId>,
    /// Platform, service and instance: where the invocation ran.
    pub instance: InstanceId,
    pub start: i64,
    pub end: i64,
    /// What the span's own `faas.coldstart` said.
    pub said_cold: Option<bool>,
    /// Provisioned or snapstart, when the span or resource said so.
    pub declared_type: Option<ColdStartType>,
    /// The `cold_start_type` stored with the span.
    pub stored_type: Option<ColdStartType>,
}

/// An initialisation span of a function instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Init {
    pub key: SpanKey,
    pub instance: InstanceId,
    pub start: i64,
    pub end: i64,
}

/// What stands for the instance of a span that names none, before its
/// trace id.
pub const TRACE_STAND_IN: &str = "trace:";

/// Identity of a function instance or pod. Without an instance attribute
/// the trace stands in, so an init span still meets the invocation of its
/// own trace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InstanceId {
    pub platform: Platform,
    pub service: String,
    pub instance: String,
}

/// Everything correlation takes from one span.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    pub half: Option<Half>,
    pub invocation: Option<Invocation>,
    pub init: Option<Init>,
}

impl Observed {
    /// Nothing for correlation: most spans of a plain service.
    pub fn is_empty(&self) -> bool {
        self.half.is_none() && self.invocation.is_none() && self.init.is_none()
    }
}

/// Values that are present but say nothing: joining on them would merge
/// unrelated traces.
fn meaningless(value: &str) -> bool {
    let v = value.trim();
    v.is_empty()
        || ["null", "undefined", "none", "nil", "0", "-"]
            .iter()
            .any(|p| v.eq_ignore_ascii_case(p))
}

/// Older spellings of a configured key.
fn aliases(key: &str) -> &'static [&'static str] {
    match key {
        "messaging.message.id" => &["messaging.message_id"],
        "messaging.message.conversation_id" => &["messaging.conversation_id"],
        _ => &[],
    }
}

/// Reads correlation values out of rows, per the configured keys.
#[derive(Debug, Clone)]
pub struct Extractor {
    keys: Vec<String>,
    /// The index of `messaging.message.id` among `keys`, if configured.
    message_id_key: Option<u16>,
    init_names: Vec<String>,
}

impl Extractor {
    pub fn new(config: &CorrelationConfig) -> Self {
        Self {
            keys: config.keys.clone(),
            message_id_key: config
                .keys
                .iter()
                .position(|k| k == "messaging.message.id")
                .and_then(|i| u16::try_from(i).ok()),
            init_names: config.cold_start.init_span_names.clone(),
        }
    }

    /// The message id a half carries, if `messaging.message.id` is a
    /// configured key.
    pub fn message_id<'h>(&self, half: &'h Half) -> Option<&'h str> {
        let index = self.message_id_key?;
        half.values
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, v)| v.as_str())
    }

    pub fn key_name(&self, index: u16) -> &str {
        self.keys.get(usize::from(index)).map_or("", String::as_str)
    }

    fn values(&self, row: &SpanRow<'_>) -> Vec<(u16, String)> {
        let lookup = |name: &str| {
            row.attributes
                .iter()
                .chain(row.resource_attributes.iter())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_ref())
        };
        let mut out = Vec::new();
        for (i, key) in self.keys.iter().enumerate() {
            let value = lookup(key).or_else(|| aliases(key).iter().find_map(|a| lookup(a)));
            if let Some(v) = value.filter(|v| !meaningless(v)) {
                out.push((u16::try_from(i).unwrap_or(u16::MAX), v.to_owned()));
            }
        }
        out.shrink_to_fit();
        out
    }

    /// Whether `row` is a function instance's initialisation: a configured
    /// name, or `init <function>` as the OpenTelemetry Lambda extension
    /// names the span it makes of the platform's init phase.
    fn is_init(&self, row: &SpanRow<'_>) -> bool {
        let name = row.name.as_ref();
        self.init_names.iter().any(|n| n == name)
            || name.strip_prefix("init ").is_some_and(|function| {
                function == row.service_name
                    || row
                        .resource_attributes
                        .iter()
                        .any(|(k, v)| k == "faas.name" && v == function)
            })
    }

    /// What correlation needs of `row`; `Observed::default()` for most
    /// spans of a plain service.
    pub fn observe(&self, row: &SpanRow<'_>) -> Observed {
        let key = SpanKey::new(row.trace_id, row.span_id);
        let role = role_of(row);
        let values = self.values(row);
        // A receive without links or correlation values is a poll: the
        // messages' context is on the process spans beneath it, or there
        // were no messages. It may still meet a producer that is its
        // parent, but its window running out says nothing is lost, so it
        // keeps no messaging attributes to become an orphan with.
        let poll = role == Some(Role::Consumer)
            && row.messaging_operation.as_deref() == Some("receive")
            && row.links.is_empty()
            && values.is_empty();
        let half = (role.is_some() || !values.is_empty()).then(|| Half {
            key,
            parent: row.parent_span_id,
            role,
            links: if role == Some(Role::Consumer) {
                row.links
                    .iter()
                    .map(|l| SpanKey::new(l.trace_id, l.span_id))
                    .collect()
            } else {
                Vec::new()
            },
            values,
            service: Arc::from(row.service_name.as_ref()),
            platform: row.platform,
            system: (!poll)
                .then(|| row.messaging_system.as_deref().map(Arc::from))
                .flatten(),
            destination: (!poll)
                .then(|| row.messaging_destination.as_deref().map(Arc::from))
                .flatten(),
            start: row.start_time_unix_nano,
            end: row.end_time_unix_nano,
        });
        let instance = || InstanceId {
            platform: row.platform,
            service: row.service_name.to_string(),
            instance: row.instance.as_deref().map_or_else(
                || format!("{TRACE_STAND_IN}{}", row.trace_id),
                str::to_owned,
            ),
        };
        let init = (row.platform == Platform::Faas && self.is_init(row)).then(|| Init {
            key,
            instance: instance(),
            start: row.start_time_unix_nano,
            end: row.end_time_unix_nano,
        });
        let invocation = (init.is_none() && is_invocation(row)).then(|| Invocation {
            key,
            parent: row.parent_span_id,
            instance: instance(),
            start: row.start_time_unix_nano,
            end: row.end_time_unix_nano,
            said_cold: row.cold_start,
            // The instance's initialization type decides on its own, with
            // or without a `faas.coldstart` on the span.
            declared_type: row
                .initialization_type
                .or(row.cold_start_type)
                .filter(|t| matches!(t, ColdStartType::Provisioned | ColdStartType::Snapstart)),
            stored_type: row.cold_start_type,
        });
        Observed {
            half,
            invocation,
            init,
        }
    }
}

/// The entry span of a function invocation or of a request to a pod
/// (docs/stitching.md, "Cold starts"), unless it runs inside another
/// invocation of its instance. The same rule in SQL is
/// [`INVOCATION_SQL`].
pub fn is_invocation(row: &SpanRow<'_>) -> bool {
    if row.cold_start_source == Some(ColdStartSource::InInvocation) {
        return false;
    }
    match row.platform {
        Platform::Faas => {
            row.faas_trigger.is_some()
                || row.faas_invocation_id.is_some()
                || row.kind == SpanKind::Server
                || (row.kind == SpanKind::Consumer && row.parent_span_id.is_none())
        }
        Platform::Kubernetes => {
            row.instance.is_some() && matches!(row.kind, SpanKind::Server | SpanKind::Consumer)
        }
        _ => false,
    }
}

/// [`is_invocation`] for functions as a SQL predicate over `spans`, for the
/// cold-start report.
pub const INVOCATION_SQL: &str = "(platform = 'faas' AND (faas_trigger IS NOT NULL \
     OR faas_invocation_id IS NOT NULL OR kind = 'server' \
     OR (kind = 'consumer' AND parent_span_id IS NULL)) \
     AND (cold_start_source IS NULL \
     OR CAST(cold_start_source AS VARCHAR) <> 'in_invocation'))";
