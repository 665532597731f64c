//! The command line: configuration precedence, `--print-config`, `seam
//! query`, the default command, and shutdown on SIGTERM.

use std::io::Write;
use std::process::Command;

use seam_integration_tests::{Seam, seam_bin};

use crate::common::{post_protobuf, request, trace_hex};

fn print_config(args: &[&str], envs: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(seam_bin());
    cmd.arg("serve").arg("--print-config").args(args);
    for var in [
        "SEAM_CONFIG",
        "SEAM_GRPC_LISTEN",
        "SEAM_HTTP_LISTEN",
        "SEAM_API_LISTEN",
        "SEAM_DATA_DIR",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(envs.iter().copied());
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn line<'a>(yaml: &'a str, key: &str) -> &'a str {
    yaml.lines()
        .find(|l| l.starts_with(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in\n{yaml}"))
}

#[test]
fn defaults_file_env_and_flags_in_that_order() {
    let defaults = print_config(&[], &[]);
    assert_eq!(
        line(&defaults, "grpc_listen"),
        "grpc_listen: 127.0.0.1:4317"
    );
    assert_eq!(
        line(&defaults, "http_listen"),
        "http_listen: 127.0.0.1:4318"
    );
    assert_eq!(line(&defaults, "api_listen"), "api_listen: 127.0.0.1:8080");
    assert_eq!(line(&defaults, "data_dir"), "data_dir: ./seam-data");
    assert!(
        defaults.contains("receiver:") && defaults.contains("query:"),
        "{defaults}"
    );

    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        file,
        "grpc_listen: 0.0.0.0:1111\nhttp_listen: 0.0.0.0:2222\napi_listen: 0.0.0.0:3333"
    )
    .unwrap();
    let path = file.path().to_str().unwrap();
    let merged = print_config(
        &["--config", path, "--api-listen", "127.0.0.1:5555"],
        &[
            ("SEAM_HTTP_LISTEN", "127.0.0.1:4444"),
            ("SEAM_API_LISTEN", "127.0.0.1:6666"),
        ],
    );
    assert_eq!(
        line(&merged, "grpc_listen"),
        "grpc_listen: 0.0.0.0:1111",
        "file beats default"
    );
    assert_eq!(
        line(&merged, "http_listen"),
        "http_listen: 127.0.0.1:4444",
        "env beats file"
    );
    assert_eq!(
        line(&merged, "api_listen"),
        "api_listen: 127.0.0.1:5555",
        "flag beats env"
    );

    let via_env = print_config(&[], &[("SEAM_CONFIG", path)]);
    assert_eq!(line(&via_env, "grpc_listen"), "grpc_listen: 0.0.0.0:1111");
}

#[test]
fn bad_config_is_refused_with_the_reason() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "grpc_listn: 0.0.0.0:1111").unwrap();
    let out = Command::new(seam_bin())
        .args(["serve", "--config"])
        .arg(file.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("grpc_listn"), "{stderr}");

    let out = Command::new(seam_bin())
        .args(["serve", "--config", "/nonexistent/seam.yaml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/seam.yaml"));
}

#[test]
fn seam_query_prints_a_table_and_reports_errors() {
    let seam = Seam::start();
    let (status, _) = post_protobuf(&seam, &request(9, 4, "inventory"));
    assert_eq!(status, 200);
    let api = format!("http://{}", seam.api);
    let out = Command::new(seam_bin())
        .args(["query", "--api", &api])
        .arg(format!(
            "SELECT service_name, count(*) AS n FROM spans WHERE trace_id = '{}' GROUP BY 1",
            trace_hex(9)
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("| service_name | n |"), "{stdout}");
    assert!(stdout.contains("| inventory    | 4 |"), "{stdout}");
    assert!(stdout.contains("(1 row)"), "{stdout}");

    let out = Command::new(seam_bin())
        .args([
            "query",
            "--api",
            &api,
            "SELECT span_id AS nothing FROM spans WHERE false",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("| nothing |") && stdout.contains("(0 rows)"),
        "{stdout}"
    );

    let out = Command::new(seam_bin())
        .args(["query", "--api", &api, "SELECT nope FROM spans"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("nope") && stderr.contains("400"),
        "{stderr}"
    );

    let out = Command::new(seam_bin())
        .args(["query", "--api", "http://127.0.0.1:1", "SELECT 1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach Seam"));
}

#[test]
fn no_subcommand_serves_and_sigterm_stops_cleanly() {
    let seam = Seam::start_raw(
        &[],
        &[
            ("SEAM_GRPC_LISTEN", "127.0.0.1:0"),
            ("SEAM_HTTP_LISTEN", "127.0.0.1:0"),
            ("SEAM_API_LISTEN", "127.0.0.1:0"),
        ],
    );
    let (status, _) = post_protobuf(&seam, &request(4, 2, "cart"));
    assert_eq!(status, 200);
    let (status, _) = seam.get("/readyz");
    assert_eq!(status, 200);
    assert!(seam.data_dir.is_dir(), "data directory created");
    let exit = seam.terminate();
    assert!(exit.success(), "{exit:?}");
}
