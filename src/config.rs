//! The effective configuration: embedded defaults, overridden by the YAML
//! file, then by `SEAM_*` variables and flags (see [`crate::cli`]).

use std::path::{Path, PathBuf};

use anyhow::Context;
use seam_collector::{LimitsConfig, ReceiverConfig};
use seam_correlate::CorrelationConfig;
use seam_query::QueryConfig;
use seam_store::{RetentionConfig, StorageConfig, WalConfig};
use serde::{Deserialize, Serialize};

use crate::cli::ServeArgs;
use crate::tls::TlsConfig;

/// Everything `seam serve` can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// OTLP/gRPC listen address; port 0 picks a free port.
    pub grpc_listen: String,
    /// OTLP/HTTP listen address (`POST /v1/traces`).
    pub http_listen: String,
    /// API, web UI and `/metrics` listen address.
    pub api_listen: String,
    /// Directory for Seam's data.
    pub data_dir: PathBuf,
    /// OTLP receivers: message and body size limits, span validation.
    pub receiver: ReceiverConfig,
    /// SQL and trace API: time, memory and result limits.
    pub query: QueryConfig,
    /// TLS for the listeners.
    pub tls: TlsConfig,
    /// Memory above which exports are refused, and what one request may carry.
    pub limits: LimitsConfig,
    /// The write-ahead log: when an acknowledged export reaches the disk.
    pub wal: WalConfig,
    /// When hot rows are sealed into Parquet files, and how those are laid out and merged.
    pub storage: StorageConfig,
    /// How long sealed data is kept, and how much of it.
    pub retention: RetentionConfig,
    /// Stitching across queues and platforms, flows, cold starts.
    pub correlation: CorrelationConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            grpc_listen: "127.0.0.1:4317".into(),
            http_listen: "127.0.0.1:4318".into(),
            api_listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./seam-data"),
            receiver: ReceiverConfig::default(),
            query: QueryConfig::default(),
            tls: TlsConfig::default(),
            limits: LimitsConfig::default(),
            wal: WalConfig::default(),
            storage: StorageConfig::default(),
            retention: RetentionConfig::default(),
            correlation: CorrelationConfig::default(),
        }
    }
}

impl Config {
    /// Reads the config file if one is named and applies flags and variables on top.
    pub fn load(args: &ServeArgs) -> anyhow::Result<Self> {
        let mut config = match &args.config {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        config.apply(args);
        Ok(config)
    }

    /// Flags and `SEAM_*` variables (clap has merged those two) override the file.
    fn apply(&mut self, args: &ServeArgs) {
        let config = self;
        if let Some(v) = &args.grpc_listen {
            config.grpc_listen = v.clone();
        }
        if let Some(v) = &args.http_listen {
            config.http_listen = v.clone();
        }
        if let Some(v) = &args.api_listen {
            config.api_listen = v.clone();
        }
        if let Some(v) = &args.data_dir {
            config.data_dir = v.clone();
        }
        if let Some(v) = &args.ingest_token {
            config.receiver.bearer_tokens.push(v.clone());
        }
        if let Some(v) = &args.api_token {
            config.query.bearer_tokens.push(v.clone());
        }
    }

    fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        Self::from_yaml(&text).with_context(|| format!("in config file {}", path.display()))
    }

    fn from_yaml(text: &str) -> anyhow::Result<Self> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        Ok(serde_yaml_ng::from_str(text)?)
    }

    /// The configuration as YAML, with secrets replaced: printed config
    /// ends up in terminals, tickets and CI logs.
    pub fn to_yaml(&self) -> anyhow::Result<String> {
        let mut shown = self.clone();
        for tokens in [
            &mut shown.receiver.bearer_tokens,
            &mut shown.query.bearer_tokens,
        ] {
            tokens.iter_mut().for_each(|t| *t = "<redacted>".to_owned());
        }
        Ok(serde_yaml_ng::to_string(&shown)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_contract() {
        let c = Config::default();
        assert_eq!(c.grpc_listen, "127.0.0.1:4317");
        assert_eq!(c.http_listen, "127.0.0.1:4318");
        assert_eq!(c.api_listen, "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("./seam-data"));
    }

    #[test]
    fn file_values_apply_and_flags_win() {
        let mut c =
            Config::from_yaml("grpc_listen: 0.0.0.0:14317\ndata_dir: /var/lib/seam\n").unwrap();
        assert_eq!(c.grpc_listen, "0.0.0.0:14317");
        assert_eq!(
            c.http_listen, "127.0.0.1:4318",
            "unset keys keep their defaults"
        );
        let args = ServeArgs {
            grpc_listen: Some("127.0.0.1:0".into()),
            ..Default::default()
        };
        c.apply(&args);
        assert_eq!(c.grpc_listen, "127.0.0.1:0");
        assert_eq!(
            c.data_dir,
            PathBuf::from("/var/lib/seam"),
            "what no flag names stays as the file said"
        );
    }

    /// Sealed files' codec by name; a name it does not know is refused
    /// with the choices.
    #[test]
    fn compression_is_named() {
        use seam_store::Codec;
        assert_eq!(Config::default().storage.compression, Codec::Zstd(1));
        for (text, codec) in [
            ("zstd(1)", Codec::Zstd(1)),
            ("zstd", Codec::Zstd(1)),
            ("zstd(3)", Codec::Zstd(3)),
            ("lz4_raw", Codec::Lz4Raw),
            ("snappy", Codec::Snappy),
            ("uncompressed", Codec::Uncompressed),
        ] {
            let c = Config::from_yaml(&format!("storage:\n  compression: {text}\n")).unwrap();
            assert_eq!(c.storage.compression, codec, "{text}");
            let again = Config::from_yaml(&c.to_yaml().unwrap()).unwrap();
            assert_eq!(
                again.storage.compression, codec,
                "{text} printed and read back"
            );
        }
        for bad in ["gzip", "zstd(0)", "zstd(23)", "zstd(x)"] {
            let err = Config::from_yaml(&format!("storage:\n  compression: {bad}\n")).unwrap_err();
            let err = format!("{err:#}");
            assert!(err.contains("lz4_raw") && err.contains(bad), "{err}");
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Config::from_yaml("grpc_listn: 1.2.3.4:1\n").unwrap_err();
        assert!(format!("{err:#}").contains("grpc_listn"), "{err:#}");
    }

    #[test]
    fn tokens_come_from_flags_and_are_never_printed() {
        let mut c = Config::from_yaml("receiver:\n  bearer_tokens: [from-file]\n").unwrap();
        let args = ServeArgs {
            ingest_token: Some("from-env".into()),
            api_token: Some("api-secret".into()),
            ..Default::default()
        };
        c.apply(&args);
        assert_eq!(c.receiver.bearer_tokens, vec!["from-file", "from-env"]);
        assert_eq!(c.query.bearer_tokens, vec!["api-secret"]);
        let printed = c.to_yaml().unwrap();
        for secret in ["from-file", "from-env", "api-secret"] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(printed.contains("<redacted>"));
    }

    #[test]
    fn printed_config_reads_back() {
        let c = Config::default();
        let back = Config::from_yaml(&c.to_yaml().unwrap()).unwrap();
        assert_eq!(back.to_yaml().unwrap(), c.to_yaml().unwrap());
    }
}
