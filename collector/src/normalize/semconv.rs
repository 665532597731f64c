//! Attribute names Seam reads, in both semantic-convention generations.
//!
//! Each list is in order of preference: the current stable name first, then
//! the names older instrumentations still send. Keeping them here, not
//! scattered through the rules, makes "which names do you accept?" one read.

pub const SERVICE_NAME: &str = "service.name";
pub const FAAS_NAME: &str = "faas.name";
pub const CLOUD_PLATFORM: &str = "cloud.platform";

/// Instance identity, most specific first.
pub const INSTANCE: &[&str] = &[
    "k8s.pod.name",
    "faas.instance",
    "service.instance.id",
    "host.name",
];

pub const MESSAGING_SYSTEM: &[&str] = &["messaging.system"];
/// `messaging.operation.type` since semconv 1.27; `messaging.operation` before.
pub const MESSAGING_OPERATION: &[&str] = &["messaging.operation.type", "messaging.operation"];
/// `messaging.destination.name` since 1.17; `messaging.destination` before;
/// `messaging.source.name` on consumer spans in 1.17–1.20.
pub const MESSAGING_DESTINATION: &[&str] = &[
    "messaging.destination.name",
    "messaging.destination",
    "messaging.source.name",
];
/// `messaging.message.id` since 1.17; `messaging.message_id` before.
pub const MESSAGING_MESSAGE_ID: &[&str] = &["messaging.message.id", "messaging.message_id"];

pub const FAAS_TRIGGER: &[&str] = &["faas.trigger"];
/// `faas.invocation_id` since 1.18; `faas.execution` before.
pub const FAAS_INVOCATION_ID: &[&str] = &["faas.invocation_id", "faas.execution"];
pub const FAAS_COLDSTART: &str = "faas.coldstart";
/// How a function instance was started. No semantic convention exists
/// yet; these carry the values of AWS's `AWS_LAMBDA_INITIALIZATION_TYPE`
/// (`on-demand`, `provisioned-concurrency`, `snap-start`).
pub const INITIALIZATION_TYPE: &[&str] =
    &["aws.lambda.initialization_type", "faas.initialization_type"];

/// Whether `key` may be one of the attributes named above: every one of
/// them starts with one of these prefixes, so a span none of whose keys
/// does (most HTTP, RPC and database spans) needs none of the lookups.
pub fn may_be_conventional(key: &str) -> bool {
    match key.as_bytes().first() {
        Some(b'm') => key.starts_with("messaging."),
        Some(b'f') => key.starts_with("faas."),
        Some(b'a') => key.starts_with("aws.lambda."),
        _ => false,
    }
}

/// A cold start type from an initialization-type value; `None` for
/// on-demand and unknown values, which leave the type to the other rules.
pub fn initialization_type(raw: &str) -> Option<seam_model::ColdStartType> {
    let lowered = raw.trim().to_ascii_lowercase().replace(['_', ' '], "-");
    match lowered.as_str() {
        "provisioned-concurrency" | "provisioned" => Some(seam_model::ColdStartType::Provisioned),
        "snap-start" | "snapstart" => Some(seam_model::ColdStartType::Snapstart),
        _ => None,
    }
}

/// `cloud.platform` values that mean Kubernetes.
pub const KUBERNETES_PLATFORMS: &[&str] = &[
    "aws_eks",
    "gcp_kubernetes_engine",
    "azure_aks",
    "alibaba_cloud_ack",
    "tencent_cloud_tke",
];
/// `cloud.platform` values that mean a function or scale-to-zero container.
pub const FAAS_PLATFORMS: &[&str] = &[
    "aws_lambda",
    "gcp_cloud_functions",
    "gcp_cloud_run",
    "azure_functions",
    "azure_container_apps",
    "alibaba_cloud_fc",
    "tencent_cloud_scf",
];
/// `cloud.platform` values that mean a plain container service.
pub const CONTAINER_PLATFORMS: &[&str] = &[
    "aws_ecs",
    "aws_app_runner",
    "azure_container_instances",
    "gcp_app_engine",
];
/// `cloud.platform` values that mean a virtual machine.
pub const HOST_PLATFORMS: &[&str] = &[
    "aws_ec2",
    "gcp_compute_engine",
    "azure_vm",
    "alibaba_cloud_ecs",
    "tencent_cloud_cvm",
];

/// Spellings of one messaging system, mapped to the current semconv value,
/// so `aws.sqs`, `AWS_SQS` and `sqs` group together in SQL and stitching.
pub fn canonical_messaging_system(raw: &str) -> String {
    let lowered: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c == '.' || c == '-' || c == ' ' {
                '_'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    let canonical = match lowered.as_str() {
        "sqs" | "amazon_sqs" | "amazonsqs" | "awssqs" => "aws_sqs",
        "sns" | "amazon_sns" | "amazonsns" | "awssns" => "aws_sns",
        "kinesis" | "amazon_kinesis" => "aws_kinesis",
        "eventbridge" | "amazon_eventbridge" | "aws_events" => "aws_eventbridge",
        "pubsub" | "google_pubsub" | "gcp_pub_sub" => "gcp_pubsub",
        "azure_servicebus" | "azure_service_bus" => "servicebus",
        "azure_eventhubs" | "azure_event_hubs" => "eventhubs",
        "apache_kafka" => "kafka",
        other => other,
    };
    canonical.to_owned()
}

/// Operation names of both generations, mapped to the current ones
/// (`deliver` became `process`; `publish` is kept, it is a producer word in
/// both).
/// Whether a destination is a Lambda event source's name (`aws:sqs`),
/// which the Java Lambda library writes where the queue belongs: no
/// destination at all, so a boundary takes the producer's queue.
pub fn is_event_source(destination: &str) -> bool {
    destination
        .strip_prefix("aws:")
        .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_lowercase()))
}

pub fn canonical_messaging_operation(raw: &str) -> String {
    let lowered = raw.trim().to_ascii_lowercase();
    match lowered.as_str() {
        "deliver" => "process".to_owned(),
        _ => lowered,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_span_attribute_looked_up_passes_the_prefilter() {
        let keys = [
            MESSAGING_SYSTEM,
            MESSAGING_OPERATION,
            MESSAGING_DESTINATION,
            MESSAGING_MESSAGE_ID,
            FAAS_TRIGGER,
            FAAS_INVOCATION_ID,
            INITIALIZATION_TYPE,
            &[FAAS_COLDSTART],
        ];
        for key in keys.concat() {
            assert!(super::may_be_conventional(key), "{key}");
        }
        for key in [
            "http.route",
            "",
            "m",
            "messaging",
            "faas",
            "aws.region",
            "db.system",
        ] {
            assert!(!super::may_be_conventional(key), "{key}");
        }
    }

    use super::*;

    #[test]
    fn spellings_of_one_system_agree() {
        for s in ["aws.sqs", "aws_sqs", "AWS_SQS", "sqs", "Amazon SQS"] {
            assert_eq!(canonical_messaging_system(s), "aws_sqs", "{s}");
        }
        assert_eq!(canonical_messaging_system("kafka"), "kafka");
        assert_eq!(canonical_messaging_system("gcp_pubsub"), "gcp_pubsub");
        assert_eq!(canonical_messaging_operation("Deliver"), "process");
        assert!(is_event_source("aws:sqs") && is_event_source("aws:kinesis"));
        assert!(
            !is_event_source("orders")
                && !is_event_source("aws:")
                && !is_event_source("aws:Orders-1")
        );
        assert_eq!(canonical_messaging_operation("publish"), "publish");
    }
}
