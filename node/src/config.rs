//! The node's configuration: `cluster.toml`, read once at start.
//!
//! Every key has a default, so an empty file is a valid single-box config.
//! Unknown keys are refused (a typo must not be silently ignored), and every
//! error names the key and what is wrong with it.

use anyhow::{bail, Context};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use wani_store::BoardSettings;

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub node: NodeConfig,
    pub database: DatabaseConfig,
    pub blobs: BlobConfig,
    pub site: SiteConfig,
    pub media: MediaConfig,
    pub entities: EntitiesConfig,
    pub bootstrap: Bootstrap,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    pub name: String,
    pub listen: String,
    pub roles: Vec<String>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            name: "wani".into(),
            listen: "127.0.0.1:8080".into(),
            roles: ROLES.iter().map(|r| r.to_string()).collect(),
        }
    }
}

/// The roles a node can carry.
pub const ROLES: &[&str] = &["web", "entities", "render", "thumbnail", "live"];

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub url: String,
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://./data/wani.db".into(),
            max_connections: 8,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlobConfig {
    /// `fs` or `db`.
    pub backend: String,
    pub dir: PathBuf,
}

impl Default for BlobConfig {
    fn default() -> Self {
        BlobConfig {
            backend: "fs".into(),
            dir: PathBuf::from("./data/blobs"),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SiteConfig {
    pub name: String,
    pub greeting: String,
    /// Site-wide rules, in wani markup.
    pub rules: String,
}

impl Default for SiteConfig {
    fn default() -> Self {
        SiteConfig {
            name: "wani".into(),
            greeting: "Welcome to wani.".into(),
            rules: "Be nice.".into(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    pub thumb_max_side: u32,
    pub max_pixels: u64,
    pub thumb_workers: usize,
    pub thumb_queue: usize,
    /// Largest request body accepted, whatever the board allows.
    pub max_upload_bytes: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            thumb_max_side: 500,
            max_pixels: 40_000_000,
            thumb_workers: 0,
            thumb_queue: 64,
            max_upload_bytes: 32 * 1024 * 1024,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EntitiesConfig {
    pub idle_timeout_secs: u64,
}

impl Default for EntitiesConfig {
    fn default() -> Self {
        EntitiesConfig {
            idle_timeout_secs: 600,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Bootstrap {
    pub boards: Vec<BoardSettings>,
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the config file {}", path.display()))?;
        Config::parse(&text).with_context(|| format!("in the config file {}", path.display()))
    }

    /// Parses and checks config text.
    pub fn parse(text: &str) -> anyhow::Result<Config> {
        let config: Config = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> anyhow::Result<()> {
        self.listen_addr()?;
        for r in &self.node.roles {
            if !ROLES.contains(&r.as_str()) {
                bail!(
                    "node.roles: unknown role {r:?} (known: {})",
                    ROLES.join(", ")
                );
            }
        }
        if !(self.database.url.starts_with("sqlite:") || self.database.url.starts_with("postgres"))
        {
            bail!(
                "database.url: {:?} is neither sqlite://PATH nor postgres://…",
                self.database.url
            );
        }
        if !matches!(self.blobs.backend.as_str(), "fs" | "db") {
            bail!(
                "blobs.backend: {:?} must be \"fs\" or \"db\"",
                self.blobs.backend
            );
        }
        if !(16..=4096).contains(&self.media.thumb_max_side) {
            bail!(
                "media.thumb_max_side: {} must be between 16 and 4096",
                self.media.thumb_max_side
            );
        }
        if self.media.max_pixels == 0 {
            bail!("media.max_pixels: must be above 0");
        }
        if self.entities.idle_timeout_secs == 0 {
            bail!("entities.idle_timeout_secs: must be at least 1");
        }
        for (i, b) in self.bootstrap.boards.iter().enumerate() {
            if b.name.is_empty() {
                bail!("bootstrap.boards[{i}].name: a board needs a name");
            }
        }
        Ok(())
    }

    /// The address to listen on.
    pub fn listen_addr(&self) -> anyhow::Result<SocketAddr> {
        self.node.listen.parse().map_err(|e| {
            anyhow::anyhow!(
                "node.listen: {:?} is not an address like 127.0.0.1:8080 ({e})",
                self.node.listen
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_configs_parse() {
        Config::parse(include_str!("../../examples/single-box/cluster.toml")).unwrap();
        let c = Config::parse(include_str!("../../cluster.toml")).unwrap();
        assert_eq!(c.listen_addr().unwrap().to_string(), "127.0.0.1:8080");
        assert!(c.bootstrap.boards.iter().any(|b| b.name == "b"));
    }

    #[test]
    fn an_empty_file_is_a_single_box() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.node.roles.len(), ROLES.len());
        assert!(c.database.url.starts_with("sqlite:"));
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::parse("[node]\nlisten = \"nowhere\"").unwrap_err();
        assert!(format!("{e:#}").contains("node.listen"), "{e:#}");
        let e = Config::parse("[node]\nroles = [\"chef\"]").unwrap_err();
        assert!(format!("{e:#}").contains("node.roles"), "{e:#}");
        let e = Config::parse("[node]\nlisen = \"x\"").unwrap_err();
        assert!(format!("{e:#}").contains("lisen"), "{e:#}");
        let e = Config::parse("[blobs]\nbackend = \"s3\"").unwrap_err();
        assert!(format!("{e:#}").contains("blobs.backend"), "{e:#}");
    }
}
