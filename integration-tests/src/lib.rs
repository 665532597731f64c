//! Helpers for the black-box tests: start the real `seam` binary on free
//! ports, wait until it is ready, and talk to it over the network like any
//! user would.
//!
//! The binary is taken from `SEAM_BIN` (the test command sets it after
//! `cargo build --bin seam`), else from the target directory beside the test
//! executable.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// The `seam` executable under test.
pub fn seam_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("SEAM_BIN") {
        return PathBuf::from(path);
    }
    // target/debug/deps/<test-exe> → target/debug/seam
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target directory");
    let bin = dir.join(format!("seam{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} does not exist: build it with `cargo build --bin seam` (scripts/test does) or set SEAM_BIN",
        bin.display()
    );
    bin
}

/// The Python interpreter of the venv that has the OpenTelemetry SDK.
pub fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("SEAM_TEST_PYTHON") {
        return PathBuf::from(path);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        venv.exists(),
        "no Python venv with the OpenTelemetry SDK at {}: run scripts/test, which creates it",
        venv.display()
    );
    venv
}

/// A running `seam serve`, killed when dropped.
pub struct Seam {
    child: Child,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub api: SocketAddr,
    pub data_dir: PathBuf,
    logs: Arc<Mutex<Vec<String>>>,
    _tmp: Option<tempfile::TempDir>,
}

impl Seam {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's peak resident memory so far (`VmHWM`), in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the server's /proc status");
        let line = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .expect("VmHWM");
        let kib: u64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .expect("VmHWM in kB");
        kib * 1024
    }

    /// Starts Seam on free loopback ports with a fresh data directory.
    pub fn start() -> Self {
        Self::start_with(&[], &[])
    }

    /// Starts `seam serve` on free ports with extra arguments and
    /// environment variables.
    pub fn start_with(args: &[&str], envs: &[(&str, &str)]) -> Self {
        Self::start_raw(&serve_args(args), envs)
    }

    /// Starts `seam serve` with the API behind TLS: the harness's own
    /// plain-HTTP readiness check cannot reach it, so this returns once the
    /// listening line is printed and the caller checks readiness itself.
    pub fn start_tls_api(args: &[&str]) -> Self {
        Self::spawn(&serve_args(args), &[])
    }

    /// Starts the binary with exactly `args`, `SEAM_DATA_DIR` pointing at a
    /// fresh temporary directory (`envs` may override it).
    pub fn start_raw(args: &[&str], envs: &[(&str, &str)]) -> Self {
        let seam = Self::spawn(args, envs);
        seam.wait_ready();
        seam
    }

    /// Starts `seam serve` under another program (`wrapper`, then the
    /// binary and its arguments), such as `strace`.
    pub fn start_under(wrapper: &[&str], args: &[&str], envs: &[(&str, &str)]) -> Self {
        let seam = Self::spawn_with(wrapper, &serve_args(args), envs);
        seam.wait_ready();
        seam
    }

    /// Starts the binary and waits for its listening line.
    fn spawn(args: &[&str], envs: &[(&str, &str)]) -> Self {
        Self::spawn_with(&[], args, envs)
    }

    fn spawn_with(wrapper: &[&str], args: &[&str], envs: &[(&str, &str)]) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data_dir = tmp.path().join("data");
        let mut cmd = match wrapper {
            [] => Command::new(seam_bin()),
            [program, rest @ ..] => {
                let mut cmd = Command::new(program);
                cmd.args(rest).arg(seam_bin());
                cmd
            }
        };
        cmd.args(args)
            .env("SEAM_LOG", "info")
            .env_remove("SEAM_CONFIG")
            .env("SEAM_DATA_DIR", &data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn seam");
        let stderr = child.stderr.take().expect("stderr");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if line.contains("listening grpc=") {
                        let _ = tx.send(line.clone());
                    }
                    logs.lock().unwrap().push(line);
                }
            });
        }
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "seam did not print its listening line; logs:\n{}",
                    logs.lock().unwrap().join("\n")
                );
            }
        };
        Seam {
            child,
            grpc: parse_addr(&line, "grpc="),
            http: parse_addr(&line, "http="),
            api: parse_addr(&line, "api="),
            data_dir,
            logs,
            _tmp: Some(tmp),
        }
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = reqwest::blocking_client();
        while Instant::now() < deadline {
            if let Ok(r) = client.get(self.api_url("/readyz")).send()
                && r.status() == 200
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("seam never became ready; logs:\n{}", self.logs());
    }

    pub fn api_url(&self, path: &str) -> String {
        format!("http://{}{}", self.api, path)
    }

    pub fn otlp_http_url(&self) -> String {
        format!("http://{}/v1/traces", self.http)
    }

    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// Everything the server logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// Runs SQL through `POST /api/v1/sql`, panicking with the server's
    /// message on failure.
    pub fn sql(&self, sql: &str) -> serde_json::Value {
        let (status, body) = self.sql_response(sql);
        assert_eq!(status, 200, "SQL failed: {sql}\n{body}");
        body
    }

    /// Runs SQL and returns status and JSON body as they are.
    pub fn sql_response(&self, sql: &str) -> (u16, serde_json::Value) {
        let r = reqwest::blocking_client()
            .post(self.api_url("/api/v1/sql"))
            .json(&serde_json::json!({ "sql": sql }))
            .send()
            .expect("POST /api/v1/sql");
        let status = r.status().as_u16();
        (status, r.json().expect("JSON body"))
    }

    /// GET on the API; status and JSON body.
    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = reqwest::blocking_client()
            .get(self.api_url(path))
            .send()
            .expect("GET");
        let status = r.status().as_u16();
        let text = r.text().expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    /// The value of a `/metrics` series (`name` with its labels, as
    /// printed, e.g. `seam_store_sealed_rows{table="spans"}`); 0 when absent.
    /// Panics when the series is not there: a renamed metric must not
    /// read as zero.
    pub fn metric(&self, series: &str) -> f64 {
        let (status, body) = self.get("/metrics");
        assert_eq!(status, 200, "GET /metrics");
        let text = body.as_str().expect("metrics are text").to_owned();
        text.lines()
            .find_map(|line| {
                line.strip_prefix(series)
                    .and_then(|rest| rest.strip_prefix(' '))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or_else(|| panic!("no series {series} in /metrics:\n{text}"))
    }

    /// Kills the server with SIGKILL, as a crash or the OOM killer would:
    /// no shutdown code runs.
    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "seam did not stop after SIGTERM; logs:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Seam {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The rows of a `POST /api/v1/sql` JSON answer as column-name maps.
pub fn rows(answer: &serde_json::Value) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let columns: Vec<String> = answer["columns"]
        .as_array()
        .unwrap_or_else(|| panic!("no columns in {answer}"))
        .iter()
        .map(|c| c.as_str().expect("column name").to_owned())
        .collect();
    answer["rows"]
        .as_array()
        .unwrap_or_else(|| panic!("no rows in {answer}"))
        .iter()
        .map(|row| {
            let values = row.as_array().expect("row array");
            assert_eq!(values.len(), columns.len(), "row width");
            columns
                .iter()
                .cloned()
                .zip(values.iter().cloned())
                .collect()
        })
        .collect()
}

/// What `python/export_spans.py` reports after the SDK's exports were acknowledged.
#[derive(Debug, serde::Deserialize)]
pub struct PythonExport {
    pub trace_id: String,
    pub span_ids: Vec<String>,
    pub spans: usize,
}

/// The endpoint an SDK exporter for `protocol` (`grpc` or `http`) is given.
fn sdk_endpoint(seam: &Seam, protocol: &str) -> String {
    match protocol {
        "grpc" => seam.grpc_url(),
        _ => format!("http://{}", seam.http),
    }
}

/// Runs `python/<script>` with the SDK's venv and parses the JSON it
/// prints; a failed run shows the script's stderr and the server's logs.
fn run_python<T: serde::de::DeserializeOwned>(seam: &Seam, script: &str, args: &[String]) -> T {
    run_python_env(seam, script, args, &[])
}

fn run_python_env<T: serde::de::DeserializeOwned>(
    seam: &Seam,
    script: &str,
    args: &[String],
    envs: &[(&str, &str)],
) -> T {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(script);
    let mut cmd = Command::new(python());
    cmd.arg(path).args(args);
    if !envs.is_empty() {
        // `requests` lets these variables override the CA file an exporter
        // configures, so a machine that sets them would test its own CA
        // bundle instead of the one given.
        cmd.env_remove("REQUESTS_CA_BUNDLE")
            .env_remove("CURL_CA_BUNDLE");
    }
    let out = cmd.envs(envs.iter().copied()).output().expect("run python");
    assert!(
        out.status.success(),
        "{script} failed: {}\nseam logs:\n{}",
        String::from_utf8_lossy(&out.stderr),
        seam.logs()
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bad output of {script} {:?}: {e}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Exports a small trace with the OpenTelemetry Python SDK over `protocol`
/// (`grpc` or `http`).
pub fn export_with_python(seam: &Seam, protocol: &str, service: &str) -> PythonExport {
    let args = [
        "--protocol",
        protocol,
        "--endpoint",
        &sdk_endpoint(seam, protocol),
        "--service",
        service,
    ];
    run_python(seam, "export_spans.py", &args.map(str::to_owned))
}

/// Exports with `python/export_spans.py` over TLS to `endpoint`
/// (`https://…`), trusting the certificate at `ca` as the SDK's
/// `OTEL_EXPORTER_OTLP_CERTIFICATE`.
pub fn export_with_python_tls(
    seam: &Seam,
    protocol: &str,
    endpoint: &str,
    ca: &str,
) -> PythonExport {
    let args = [
        "--protocol",
        protocol,
        "--endpoint",
        endpoint,
        "--service",
        "tls",
    ];
    run_python_env(
        seam,
        "export_spans.py",
        &args.map(str::to_owned),
        &[("OTEL_EXPORTER_OTLP_CERTIFICATE", ca)],
    )
}

/// The test certificate and key (see `fixtures/README.md`).
pub fn tls_fixture() -> (String, String) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let path = |f: &str| dir.join(f).to_str().expect("UTF-8 path").to_owned();
    (path("tls-cert.pem"), path("tls-key.pem"))
}

/// Runs `python/journeys.py` (the OpenTelemetry Python SDK) for
/// `scenarios` over `protocol`, with extra arguments (`--phase`,
/// `--state`, `--consumer-first`); returns the ids it printed.
pub fn run_journeys(
    seam: &Seam,
    protocol: &str,
    scenarios: &[&str],
    extra: &[&str],
) -> serde_json::Value {
    let mut args = vec![
        "--protocol".to_owned(),
        protocol.to_owned(),
        "--endpoint".to_owned(),
        sdk_endpoint(seam, protocol),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    for s in scenarios {
        args.extend(["--scenario".to_owned(), (*s).to_owned()]);
    }
    run_python(seam, "journeys.py", &args)
}

/// Polls `sql` until it returns `rows` rows or `timeout` passes; returns
/// the last answer.
pub fn wait_for_rows(seam: &Seam, sql: &str, rows: usize, timeout: Duration) -> serde_json::Value {
    let deadline = Instant::now() + timeout;
    loop {
        let answer = seam.sql(sql);
        let n = answer["rows"].as_array().map_or(0, Vec::len);
        if n >= rows || Instant::now() > deadline {
            return answer;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `serve` on free loopback ports, then `args`.
fn serve_args<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut full = vec![
        "serve",
        "--grpc-listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
        "--api-listen",
        "127.0.0.1:0",
    ];
    full.extend_from_slice(args);
    full
}

fn parse_addr(line: &str, key: &str) -> SocketAddr {
    let start = line
        .find(key)
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        + key.len();
    let value: String = line[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    value
        .parse()
        .unwrap_or_else(|e| panic!("bad address {value:?} in {line}: {e}"))
}

/// Runs `seam loadgen --json --quiet` with `args`; returns its report.
pub fn loadgen(args: &[&str]) -> serde_json::Value {
    let out = Command::new(seam_bin())
        .arg("loadgen")
        .args(["--json", "--quiet"])
        .args(args)
        .env_remove("SEAM_INGEST_TOKEN")
        .output()
        .expect("run seam loadgen");
    assert!(
        out.status.success(),
        "loadgen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "loadgen output is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// A tiny blocking HTTP client built on reqwest's async client, so that
/// tests need no second HTTP stack.
pub mod reqwest {
    pub use ::reqwest::*;

    pub fn blocking_client() -> Blocking {
        Blocking
    }

    /// Runs each request on a private current-thread runtime.
    pub struct Blocking;

    impl Blocking {
        pub fn get(&self, url: String) -> Req {
            Req(::reqwest::Client::new().get(url))
        }
        pub fn post(&self, url: String) -> Req {
            Req(::reqwest::Client::new().post(url))
        }
        pub fn request(&self, method: Method, url: String) -> Req {
            Req(::reqwest::Client::new().request(method, url))
        }
    }

    pub struct Req(RequestBuilder);

    impl Req {
        pub fn json(self, v: &serde_json::Value) -> Self {
            Req(self.0.json(v))
        }
        pub fn header(self, k: &str, v: &str) -> Self {
            Req(self.0.header(k, v))
        }
        pub fn body(self, b: Vec<u8>) -> Self {
            Req(self.0.body(b))
        }
        pub fn send(self) -> Result<Resp> {
            block_on(async move {
                let r = self.0.send().await?;
                let status = r.status();
                let headers = r.headers().clone();
                let bytes = r.bytes().await?;
                Ok(Resp {
                    status,
                    headers,
                    bytes,
                })
            })
        }
    }

    pub struct Resp {
        status: StatusCode,
        pub headers: header::HeaderMap,
        bytes: bytes::Bytes,
    }

    impl Resp {
        pub fn status(&self) -> StatusCode {
            self.status
        }
        pub fn bytes(&self) -> &[u8] {
            &self.bytes
        }
        pub fn text(self) -> Result<String> {
            Ok(String::from_utf8_lossy(&self.bytes).into_owned())
        }
        pub fn json<T: serde::de::DeserializeOwned>(
            self,
        ) -> std::result::Result<T, serde_json::Error> {
            serde_json::from_slice(&self.bytes)
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    }
}
