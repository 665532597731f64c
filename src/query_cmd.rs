//! `seam query "SQL"`: asks a running Seam for an Arrow IPC stream and prints
//! it as a table (or passes the JSON answer through with `--format json`).

use anyhow::{Context, bail};
use arrow::array::RecordBatch;
use arrow::ipc::reader::StreamReader;
use arrow::util::pretty::pretty_format_batches;

use crate::cli::{Format, QueryArgs};

const ARROW_STREAM: &str = "application/vnd.apache.arrow.stream";

pub fn run(args: QueryArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let out = runtime.block_on(fetch(&args))?;
    print!("{out}");
    Ok(())
}

async fn fetch(args: &QueryArgs) -> anyhow::Result<String> {
    let url = format!("{}/api/v1/sql", args.api.trim_end_matches('/'));
    let accept = match args.format {
        Format::Table => ARROW_STREAM,
        Format::Json => "application/json",
    };
    let response = reqwest::Client::new()
        .post(&url)
        .header("accept", accept)
        .json(&serde_json::json!({ "sql": args.sql }))
        .send()
        .await
        .with_context(|| format!("cannot reach Seam at {url}"))?;
    let status = response.status();
    let body = response.bytes().await.context("reading the answer")?;
    if !status.is_success() {
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        bail!("{message} (HTTP {status})");
    }
    match args.format {
        Format::Json => Ok(format!("{}\n", String::from_utf8_lossy(&body))),
        Format::Table => {
            let reader = StreamReader::try_new(std::io::Cursor::new(body), None)
                .context("decoding the Arrow stream")?;
            let schema = reader.schema();
            let mut batches = reader
                .collect::<Result<Vec<_>, _>>()
                .context("decoding the Arrow stream")?;
            if batches.is_empty() {
                // An empty result still shows its column names.
                batches.push(RecordBatch::new_empty(schema));
            }
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            Ok(format!(
                "{}\n({rows} row{})\n",
                pretty_format_batches(&batches)?,
                if rows == 1 { "" } else { "s" }
            ))
        }
    }
}
