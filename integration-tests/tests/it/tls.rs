//! TLS on the listeners, checked with the OpenTelemetry Python SDK's own
//! TLS (the certificate trusted through `OTEL_EXPORTER_OTLP_CERTIFICATE`)
//! and with Python's standard HTTPS client for the API.

use std::process::Command;

use seam_integration_tests::{Seam, export_with_python_tls, python, rows, tls_fixture};

#[test]
fn ingest_listeners_serve_tls_and_refuse_plain_text() {
    let (cert, key) = tls_fixture();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("seam.yaml");
    // The API stays plain so this test can query it; the next test covers it.
    std::fs::write(
        &config,
        format!("tls:\n  cert: {cert}\n  key: {key}\n  listeners: [grpc, http]\n"),
    )
    .unwrap();
    let seam = Seam::start_with(&["--config", config.to_str().unwrap()], &[]);

    let over_grpc = export_with_python_tls(
        &seam,
        "grpc",
        &format!("https://localhost:{}", seam.grpc.port()),
        &cert,
    );
    let over_http = export_with_python_tls(
        &seam,
        "http",
        &format!("https://localhost:{}", seam.http.port()),
        &cert,
    );
    for exported in [&over_grpc, &over_http] {
        let stored = rows(&seam.sql(&format!(
            "SELECT count(*) AS n FROM spans WHERE trace_id = '{}'",
            exported.trace_id
        )));
        assert_eq!(stored[0]["n"], 3);
    }

    // Plain text on a TLS listener gets no OTLP answer.
    let plain = seam_integration_tests::reqwest::blocking_client()
        .post(seam.otlp_http_url())
        .header("content-type", "application/json")
        .body(b"{}".to_vec())
        .send();
    assert!(
        plain.map_or(true, |r| r.status() != 200),
        "a plain-text export was answered 200 by a TLS listener"
    );
}

#[test]
fn the_api_serves_tls() {
    let (cert, key) = tls_fixture();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("seam.yaml");
    std::fs::write(
        &config,
        format!("tls:\n  cert: {cert}\n  key: {key}\n  listeners: [api]\n"),
    )
    .unwrap();
    let seam = Seam::start_tls_api(&["--config", config.to_str().unwrap()]);
    let script = format!(
        "import ssl, time, urllib.request\n\
         ctx = ssl.create_default_context(cafile={cert:?})\n\
         for _ in range(100):\n\
         \x20   try:\n\
         \x20       r = urllib.request.urlopen('https://localhost:{port}/readyz', context=ctx)\n\
         \x20       print(r.status, r.read().decode())\n\
         \x20       break\n\
         \x20   except Exception as e:\n\
         \x20       err = e\n\
         \x20       time.sleep(0.1)\n\
         else:\n\
         \x20   raise err\n",
        port = seam.api.port()
    );
    let out = Command::new(python())
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "200 ready");
}
