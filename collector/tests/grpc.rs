//! The gRPC receiver against a real tonic client over TCP.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use seam_collector::{Pipeline, ReceiverConfig, serve_grpc};
use seam_model::tables::{self, SPANS};
use seam_store::{Store, Table};
use tonic::codec::CompressionEncoding;

fn request(n: usize, attr_bytes: usize) -> ExportTraceServiceRequest {
    let spans = (0..n)
        .map(|i| Span {
            trace_id: vec![0x11; 16],
            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
            name: "x".repeat(attr_bytes.max(1)),
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_000_000_000_100,
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A server on a store in a temporary directory; the directory, the stop
/// signal and the table are the caller's to keep.
struct Started {
    table: Arc<Table>,
    addr: String,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn start(config: ReceiverConfig) -> Started {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_default(dir.path(), tables::all())
        .unwrap()
        .store;
    let table = store.table(SPANS);
    let pipeline = Arc::new(Pipeline::new(Arc::new(store.writer(SPANS)), &table, config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(serve_grpc(listener, pipeline, None, async {
        let _ = rx.await;
    }));
    Started {
        table,
        addr,
        _stop: tx,
        _dir: dir,
    }
}

#[tokio::test]
async fn exports_plain_and_gzip_and_reports_partial_success() {
    let started = start(ReceiverConfig::default()).await;
    let (table, addr) = (started.table.clone(), started.addr.clone());
    let mut client = TraceServiceClient::connect(addr.clone()).await.unwrap();
    let resp = client.export(request(5, 10)).await.unwrap().into_inner();
    assert_eq!(resp.partial_success, None);
    assert_eq!(table.snapshot().num_rows(), 5, "stored before the response");

    let mut gz = TraceServiceClient::connect(addr)
        .await
        .unwrap()
        .send_compressed(CompressionEncoding::Gzip);
    let mut req = request(3, 10);
    req.resource_spans[0].scope_spans[0].spans[2].span_id = vec![0; 8];
    let resp = gz.export(req).await.unwrap().into_inner();
    let partial = resp.partial_success.expect("one span was invalid");
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial.error_message.contains("span_id"),
        "{}",
        partial.error_message
    );
    assert_eq!(table.snapshot().num_rows(), 7);
}

#[tokio::test]
async fn oversized_messages_are_refused_and_the_server_keeps_serving() {
    let config = ReceiverConfig {
        grpc_max_message_size: bytesize::ByteSize::kib(16),
        ..Default::default()
    };
    let started = start(config).await;
    let (table, addr) = (started.table.clone(), started.addr.clone());
    let mut client = TraceServiceClient::connect(addr).await.unwrap();
    let err = client.export(request(10, 4096)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::OutOfRange, "{err:?}");
    assert!(
        err.message().contains("the limit is: 16384 bytes"),
        "{err:?}"
    );
    assert_eq!(table.snapshot().num_rows(), 0);
    client.export(request(2, 10)).await.unwrap();
    assert_eq!(table.snapshot().num_rows(), 2);
}
