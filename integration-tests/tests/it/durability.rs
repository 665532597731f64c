//! Nothing acknowledged is lost: the server is killed with SIGKILL in the
//! middle of a stream of exports from the OpenTelemetry Python SDK, while
//! it seals every second, started again on the same data directory, and
//! every span the SDK saw acknowledged is there exactly once (some from
//! sealed Parquet files, the rest from the write-ahead log), with the
//! boundaries stitched before the kill and the correlation state that was
//! waiting.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use seam_integration_tests::{Seam, python, rows, run_journeys};

#[test]
fn acknowledged_spans_survive_kill_9_exactly_once() {
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("data");
    let data_dir = data_dir.to_str().unwrap();
    let state = data.path().join("journey.json");
    let state = state.to_str().unwrap();
    // Seals during the stream: the kill finds rows in Parquet files, in
    // the log after the last seal, and state captured at the seal.
    let config = data.path().join("seam.yaml");
    std::fs::write(&config, "storage:\n  seal_interval: 1s\n").unwrap();
    let config = config.to_str().unwrap();
    let env = [("SEAM_DATA_DIR", data_dir)];

    let mut seam = Seam::start_with(&["--config", config], &env);
    // A hop stitched before the kill.
    let stitched = run_journeys(&seam, "grpc", &["parent"], &[]);
    run_journeys(
        &seam,
        "grpc",
        &["link"],
        &["--phase", "producer", "--state", state],
    );

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/export_stream.py");
    let mut stream = Command::new(python())
        .arg(script)
        .args(["--protocol", "grpc", "--endpoint", &seam.grpc_url()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the exporter");
    let (tx, rx) = mpsc::channel();
    let stdout = stream.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut acked = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let sealed_spans = r#"seam_store_sealed_rows{table="spans"}"#;
    while (acked.len() < 300 || seam.metric(sealed_spans) < 100.0) && Instant::now() < deadline {
        acked.extend(rx.recv_timeout(Duration::from_millis(200)));
        acked.extend(rx.try_iter());
    }
    assert!(
        acked.len() >= 300,
        "only {} spans acknowledged in 60 s",
        acked.len()
    );
    assert!(
        seam.metric(sealed_spans) >= 100.0,
        "nothing sealed before the kill:\n{}",
        seam.logs()
    );
    seam.kill_9();
    let _ = stream.kill();
    let _ = stream.wait();
    reader.join().unwrap();
    acked.extend(rx.try_iter());

    let after = Seam::start_with(&["--config", config], &env);
    for part in ["sealed data found", "recovered from the write-ahead log"] {
        assert!(after.logs().contains(part), "{part}:\n{}", after.logs());
    }
    let stored = rows(&after.sql(
        "SELECT span_id, count(*) AS n FROM spans WHERE service_name = 'stream' GROUP BY span_id",
    ));
    let counts: HashMap<String, i64> = stored
        .iter()
        .map(|r| {
            (
                r["span_id"].as_str().unwrap().to_owned(),
                r["n"].as_i64().unwrap(),
            )
        })
        .collect();
    let acked: HashSet<String> = acked
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap().to_owned())
        .collect();
    let missing: Vec<&String> = acked
        .iter()
        .filter(|id| !counts.contains_key(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged spans lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(3)]
    );
    assert!(counts.values().all(|n| *n == 1), "a span stored twice");
    // At most the exports in flight at the kill were stored unacknowledged.
    assert!(
        counts.len() - acked.len() <= 2,
        "{} stored, {} acknowledged",
        counts.len(),
        acked.len()
    );

    // The hop stitched before the kill is there, once.
    let hop = rows(&after.sql(&format!(
        "SELECT consumer_span_id FROM boundaries WHERE producer_span_id = '{}'",
        stitched["parent"]["producer_span"].as_str().unwrap()
    )));
    assert_eq!(hop.len(), 1, "{hop:?}");
    assert_eq!(
        hop[0]["consumer_span_id"],
        stitched["parent"]["consumer_span"]
    );

    // The producer half waiting before the kill still meets its consumer.
    let ids = run_journeys(
        &after,
        "http",
        &["link"],
        &["--phase", "consumer", "--state", state],
    );
    let b = rows(&after.sql(
        "SELECT producer_span_id, producer_service, latency_ns FROM boundaries WHERE destination = 'orders'",
    ));
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!(b[0]["producer_span_id"], ids["link"]["producer_span"]);
    assert_eq!(b[0]["producer_service"], "checkout");
    // And the producer's own spans came back with it.
    let producer = rows(&after.sql(&format!(
        "SELECT count(*) AS n FROM spans WHERE trace_id = '{}'",
        ids["link"]["producer_trace"].as_str().unwrap()
    )));
    assert_eq!(producer[0]["n"], 1);
}

/// Power loss after a seal: the order of the seal's system calls, as
/// `strace` sees them, is what makes it safe. Every file a manifest names
/// is synced, renamed into place and its directory synced before the
/// manifest is renamed into place; the manifest's directory is synced
/// before any log segment or old state file it replaces is deleted.
#[test]
fn a_seal_makes_its_files_durable_before_the_manifest_and_deletes_only_after() {
    let probe = Command::new("strace")
        .args(["-o", "/dev/null", "true"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("skipping: strace is not installed or may not trace here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.txt");
    let config = dir.path().join("seam.yaml");
    std::fs::write(&config, "storage:\n  seal_interval: 1s\n").unwrap();
    let wrapper = [
        "strace",
        "-f",
        "-qq",
        "-y",
        "-e",
        "trace=fsync,fdatasync,rename,renameat,renameat2,unlink,unlinkat",
        "-o",
        trace.to_str().unwrap(),
    ];
    let seam = Seam::start_under(&wrapper, &["--config", config.to_str().unwrap()], &[]);
    let sealed = r#"seam_store_seals_total"#;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut round = 0u8;
    while seam.metric(sealed) < 3.0 && Instant::now() < deadline {
        // Spans of now: retention keeps them.
        run_journeys(&seam, "http", &["parent"], &[]);
        round += 1;
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        seam.metric(sealed) >= 3.0,
        "{round} rounds, too few seals:\n{}",
        seam.logs()
    );
    // Stop the server itself (SIGTERM to strace would only detach it).
    let children =
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", seam.pid())).unwrap();
    let server = children
        .split_whitespace()
        .next()
        .expect("the traced server");
    assert!(
        Command::new("kill")
            .args(["-TERM", server])
            .status()
            .unwrap()
            .success()
    );
    let status = seam.terminate();
    assert!(status.success(), "{status:?}");

    let text = std::fs::read_to_string(&trace).unwrap();
    let calls = Call::parse_all(&text);
    // What strace printed of a path, for a failure's message.
    let lines_of = |path: &str| {
        let name = path.rsplit_once('/').map_or(path, |(_, n)| n);
        (text.lines())
            .filter(|l| l.contains(name))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let manifests: Vec<usize> = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            c.renamed_to()
                .is_some_and(|p| p.ends_with("/MANIFEST.json"))
        })
        .map(|(i, _)| i)
        .collect();
    assert!(
        manifests.len() >= 3,
        "{} manifests written",
        manifests.len()
    );
    let synced =
        |path: &str, before: usize| calls[..before].iter().any(|c| c.synced() == Some(path));
    let synced_between = |path: &str, after: usize, before: usize| {
        calls[after..before]
            .iter()
            .any(|c| c.synced() == Some(path))
    };
    let mut checked_files = 0;
    for (i, call) in calls.iter().enumerate() {
        let Some(target) = call.renamed_to() else {
            continue;
        };
        let source = call.renamed_from().unwrap();
        let dir = target.rsplit_once('/').unwrap().0;
        // The content is on disk before it takes its name.
        assert!(
            synced(source, i),
            "{source} renamed before it was synced:\n{}",
            lines_of(source)
        );
        // The name is on disk before any manifest that follows is.
        let next_manifest = manifests.iter().copied().find(|&m| m >= i);
        if target.ends_with(".parquet") || target.ends_with(".state") {
            let m =
                next_manifest.expect("a file renamed into place is named by a manifest after it");
            assert!(
                synced_between(dir, i + 1, m),
                "{target}: its directory was not synced before the manifest"
            );
            checked_files += 1;
        }
    }
    assert!(checked_files >= 3, "{checked_files} sealed files checked");
    for (i, call) in calls.iter().enumerate() {
        let Some(deleted) = call.unlinked() else {
            continue;
        };
        if !(deleted.ends_with(".wal") || deleted.ends_with(".state")) {
            continue;
        }
        // The manifest that made it unneeded is durable first.
        let m = manifests
            .iter()
            .copied()
            .rfind(|&m| m < i)
            .unwrap_or_else(|| panic!("{deleted} deleted before any manifest"));
        let manifest_dir = calls[m].renamed_to().unwrap().rsplit_once('/').unwrap().0;
        assert!(
            synced_between(manifest_dir, m + 1, i),
            "{deleted} deleted before its manifest's directory was synced"
        );
    }
}

/// One traced system call: what was synced, renamed or deleted.
struct Call {
    name: String,
    /// Quoted arguments (paths given by name).
    names: Vec<String>,
    /// Paths of file descriptor arguments, as `-y` prints them.
    fds: Vec<String>,
}

impl Call {
    /// Every successful call of a trace, in the order the calls returned.
    /// A call another thread interrupted is printed as `123 fsync(7</a/b>
    /// <unfinished ...>` and later `123 <... fsync resumed>) = 0` (the pid
    /// padded with spaces or not); it is put where it returned.
    fn parse_all(trace: &str) -> Vec<Self> {
        let mut unfinished: HashMap<&str, String> = HashMap::new();
        let mut calls = Vec::new();
        for line in trace.lines() {
            let Some((pid, rest)) = line.split_once(' ') else {
                continue;
            };
            // strace pads the pid column: `5904  <... fsync resumed>`.
            let rest = rest.trim_start();
            if let Some(start) = rest.strip_suffix("<unfinished ...>") {
                unfinished.insert(pid, format!("{pid} {start}"));
                continue;
            }
            let whole = match rest.strip_prefix("<... ") {
                Some(resumed) => {
                    let Some(start) = unfinished.remove(pid) else {
                        continue;
                    };
                    let end = resumed.split_once("resumed>").map_or("", |(_, e)| e);
                    format!("{start}{end}")
                }
                None => line.to_owned(),
            };
            calls.extend(Self::parse(&whole));
        }
        calls
    }

    /// Parses `123 fsync(7</a/b>) = 0` and `123 rename("/a", "/b") = 0`;
    /// failed calls are left out.
    fn parse(line: &str) -> Option<Self> {
        let (_, call) = line.split_once(' ')?;
        let (name, mut rest) = call.split_once('(')?;
        if !rest.trim_end().ends_with("= 0") {
            return None;
        }
        let (mut names, mut fds) = (Vec::new(), Vec::new());
        while let Some(at) = rest.find(['"', '<']) {
            let quoted = rest.as_bytes()[at] == b'"';
            let after = &rest[at + 1..];
            let end = after.find(if quoted { '"' } else { '>' })?;
            let value = after[..end].to_owned();
            if quoted {
                names.push(value)
            } else {
                fds.push(value)
            }
            rest = &after[end + 1..];
        }
        Some(Self {
            name: name.trim().to_owned(),
            names,
            fds,
        })
    }

    fn synced(&self) -> Option<&str> {
        matches!(self.name.as_str(), "fsync" | "fdatasync")
            .then(|| self.fds.first().map(String::as_str))?
    }

    fn renamed_from(&self) -> Option<&str> {
        self.name
            .starts_with("rename")
            .then(|| self.names.first().map(String::as_str))?
    }

    fn renamed_to(&self) -> Option<&str> {
        self.name
            .starts_with("rename")
            .then(|| self.names.get(1).map(String::as_str))?
    }

    fn unlinked(&self) -> Option<&str> {
        self.name
            .starts_with("unlink")
            .then(|| self.names.first().map(String::as_str))?
    }
}
