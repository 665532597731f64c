//! `seam loadgen`: turns the flags into a load run and prints its report.

use anyhow::Context;
use seam_loadgen::{Encoding, LoadConfig, Protocol, SpanShape, Target, Topology};

use crate::cli::{LoadEncoding, LoadProtocol, LoadTopology, LoadgenArgs};

pub fn run(args: LoadgenArgs) -> anyhow::Result<()> {
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    if let Some(path) = &args.write_grpc_body {
        let shape = SpanShape {
            batch: args.batch,
            attributes: args.attributes,
            attribute_size: args.attribute_size,
        };
        let body = seam_loadgen::generate::grpc_body(shape, seed);
        std::fs::write(path, &body).with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "wrote {} bytes: one gRPC message of {} spans to {}",
            body.len(),
            shape.batch,
            path.display()
        );
        return Ok(());
    }
    let config = LoadConfig {
        target: Target {
            endpoint: args.endpoint,
            protocol: match args.protocol {
                LoadProtocol::Grpc => Protocol::Grpc,
                LoadProtocol::Http => Protocol::Http,
            },
            encoding: match args.encoding {
                LoadEncoding::Protobuf => Encoding::Protobuf,
                LoadEncoding::Json => Encoding::Json,
            },
            gzip: args.gzip,
            token: args.token,
            timeout: args.timeout,
        },
        rate: args.rate,
        duration: args.duration,
        concurrency: args.concurrency,
        shape: SpanShape {
            batch: args.batch,
            attributes: args.attributes,
            attribute_size: args.attribute_size,
        },
        topology: match args.topology {
            LoadTopology::Flat => Topology::Flat,
            LoadTopology::Hybrid => Topology::Hybrid,
        },
        progress: !args.quiet,
        seed,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("seam-loadgen")
        .build()
        .context("starting the async runtime")?;
    let report = runtime
        .block_on(seam_loadgen::run(config))
        .context("running the load")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}
