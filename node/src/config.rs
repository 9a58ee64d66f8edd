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
use wani_supervision::Role;

/// The whole file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub node: NodeConfig,
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub blobs: BlobConfig,
    pub site: SiteConfig,
    pub media: MediaConfig,
    pub entities: EntitiesConfig,
    pub supervision: SupervisionConfig,
    pub abuse: AbuseConfig,
    pub captcha: CaptchaConfig,
    pub cluster: ClusterSection,
    pub bootstrap: Bootstrap,
}

/// `[cluster]`: how this node joins others. Off by default (a single box).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSection {
    pub enabled: bool,
    /// Where peers connect to this node (not the HTTP address).
    pub listen: String,
    /// The host peers reach this node at; the listen host when empty.
    pub advertise_host: String,
    /// `host:port` of other nodes' cluster listeners.
    pub seeds: Vec<String>,
    /// Shared secret of the cluster; or `cookie_file` naming a file holding it.
    pub cookie: String,
    pub cookie_file: Option<PathBuf>,
    pub heartbeat_ms: u64,
    /// Missed heartbeats before a peer is suspected, and before it is down.
    pub suspect_after: u32,
    pub down_after: u32,
    /// Shards entities are spread over; the same on every node, never changed
    /// on a running cluster.
    pub shards: u32,
    /// How long a call to an entity on another node may take before it is
    /// routed again (the owner may have died).
    pub call_timeout_secs: u64,
    /// How long a shard lease lasts without renewal: the longest a new owner
    /// waits for a dead owner's lease before taking the shard over.
    pub lease_ttl_ms: u64,
    /// Mutual TLS between nodes, all three or none: this node's certificate
    /// chain and key, and the CA every peer's certificate must chain to
    /// (PEM files; the certificate must name the host peers dial it at).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_ca: Option<PathBuf>,
}

impl Default for ClusterSection {
    fn default() -> Self {
        let d = wani_supervision::DetectorConfig::default();
        ClusterSection {
            enabled: false,
            listen: "127.0.0.1:7000".into(),
            advertise_host: String::new(),
            seeds: Vec::new(),
            cookie: String::new(),
            cookie_file: None,
            heartbeat_ms: d.heartbeat_interval_ms,
            suspect_after: d.suspect_after,
            down_after: d.down_after,
            shards: wani_supervision::DEFAULT_SHARDS,
            call_timeout_secs: 3,
            lease_ttl_ms: 2_000,
            tls_cert: None,
            tls_key: None,
            tls_ca: None,
        }
    }
}

impl ClusterSection {
    /// The runtime settings, with the cookie read (from the file if named).
    pub fn runtime(
        &self,
        node: &NodeConfig,
    ) -> anyhow::Result<wani_supervision::cluster::ClusterConfig> {
        let listen: std::net::SocketAddr = self.listen.parse().map_err(|e| {
            anyhow::anyhow!(
                "cluster.listen: {:?} is not an address like 127.0.0.1:7000 ({e})",
                self.listen
            )
        })?;
        let cookie = match &self.cookie_file {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("cluster.cookie_file: reading {}", path.display()))?
                .trim()
                .to_string(),
            None => self.cookie.clone(),
        };
        if cookie.len() < 8 {
            bail!("cluster.cookie: the cluster cookie must be at least 8 characters (or set cluster.cookie_file)");
        }
        let roles = node.role_set();
        let tls = match (&self.tls_cert, &self.tls_key, &self.tls_ca) {
            (None, None, None) => None,
            (Some(cert), Some(key), Some(ca)) => Some(wani_supervision::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                ca: ca.clone(),
            }),
            _ => bail!(
                "cluster.tls_cert, cluster.tls_key, cluster.tls_ca: set all three for TLS between nodes, or none"
            ),
        };
        Ok(wani_supervision::cluster::ClusterConfig {
            name: node.name.clone(),
            listen,
            advertise_host: if self.advertise_host.is_empty() {
                listen.ip().to_string()
            } else {
                self.advertise_host.clone()
            },
            seeds: self.seeds.clone(),
            cookie,
            roles,
            detector: wani_supervision::DetectorConfig {
                heartbeat_interval_ms: self.heartbeat_ms,
                suspect_after: self.suspect_after,
                down_after: self.down_after,
            },
            tls,
        })
    }
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

impl NodeConfig {
    /// The roles, typed (validation has refused unknown names).
    pub fn role_set(&self) -> std::collections::BTreeSet<Role> {
        self.roles
            .iter()
            .filter_map(|r| Role::from_name(r))
            .collect()
    }

    /// Whether this node carries `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.iter().any(|r| r == role.name())
    }
}

/// `[http]`: what one client connection may hold of the HTTP listener.
///
/// The cap counts the peer socket address (IPv6: its /64), not
/// `X-Forwarded-For`: behind a reverse proxy every client arrives from the
/// proxy, so its addresses (`cap_exempt`, or `[site] trusted_proxies`) are
/// not capped, and the proxy is where per-client limits belong.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Seconds a client has to send a whole request head: from connecting,
    /// or from the first byte of its next request on a kept-alive
    /// connection. A client trickling a byte at a time is cut off too.
    pub head_timeout_secs: u64,
    /// Seconds a kept-alive connection may wait, idle, for its next request.
    pub idle_timeout_secs: u64,
    /// Open connections one peer address may hold (live streams included);
    /// more are answered 429 and closed at once. 0: no cap.
    pub max_connections_per_addr: u32,
    /// Peer addresses or ranges the cap does not apply to (besides
    /// `[site] trusted_proxies`): a reverse proxy on the same host.
    pub cap_exempt: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            head_timeout_secs: 10,
            // Longer than a reverse proxy's idle upstream connections
            // (nginx: 60 s), so the proxy closes them first and never reuses
            // one we are closing.
            idle_timeout_secs: 75,
            max_connections_per_addr: 256,
            cap_exempt: vec!["127.0.0.1".into(), "::1".into()],
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
    /// Group-commit writers, each with a connection of its own: 1 on
    /// SQLite whatever is set; on PostgreSQL 0 means 4.
    pub writers: usize,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://./data/wani.db".into(),
            max_connections: 8,
            writers: 0,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlobConfig {
    /// `fs` (files under `dir`), `db` (the database's `blob` table) or `s3`
    /// (an S3-compatible bucket).
    pub backend: String,
    pub dir: PathBuf,
    /// `s3`: the bucket, and where it is. An empty region or credentials
    /// come from the environment (`AWS_REGION`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`); an empty endpoint is AWS itself.
    pub bucket: String,
    pub region: String,
    pub endpoint: String,
    /// Bucket in the URL path rather than the host name (MinIO, Garage,
    /// SeaweedFS and most self-hosted stores want this).
    pub path_style: bool,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Put in front of every object name, to share a bucket (`wani/`).
    pub prefix: String,
    /// Files above this many MiB go up in parts of this size (at least 5).
    pub multipart_mib: usize,
    /// How long one S3 request is retried, with backoff, before it fails.
    pub retry_secs: u64,
    /// `s3`: MiB of small files (thumbnails; files up to 1 MiB) each node
    /// keeps in memory, so serving a page of thumbnails is not a bucket
    /// request per image. 0 turns it off.
    pub cache_mib: usize,
    /// Where clients fetch media from instead of this node (a CDN in front
    /// of the bucket): pages and both JSON APIs link `<public_url>/<object>`.
    /// Empty: `/upload/…` on the node, which streams from the store.
    pub public_url: String,
}

impl Default for BlobConfig {
    fn default() -> Self {
        BlobConfig {
            backend: "fs".into(),
            dir: PathBuf::from("./data/blobs"),
            bucket: String::new(),
            region: String::new(),
            endpoint: String::new(),
            path_style: false,
            access_key_id: String::new(),
            secret_access_key: String::new(),
            prefix: String::new(),
            multipart_mib: 8,
            retry_secs: 30,
            cache_mib: 64,
            public_url: String::new(),
        }
    }
}

impl BlobConfig {
    /// The S3 settings of `[blobs]`.
    pub fn s3(&self) -> wani_store::s3::S3Options {
        wani_store::s3::S3Options {
            bucket: self.bucket.clone(),
            region: self.region.clone(),
            endpoint: self.endpoint.clone(),
            path_style: self.path_style,
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            prefix: self.prefix.clone(),
            multipart_bytes: self.multipart_mib.max(5) * 1024 * 1024,
            retry_secs: self.retry_secs,
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
    /// Proxies (addresses or CIDR ranges) whose `X-Forwarded-For` names the
    /// client; from anyone else the header is ignored.
    pub trusted_proxies: Vec<String>,
    /// Mark the session cookie `Secure` (set when served over HTTPS).
    pub secure_cookies: bool,
}

impl Default for SiteConfig {
    fn default() -> Self {
        SiteConfig {
            name: "wani".into(),
            greeting: "Welcome to wani.".into(),
            rules: "Be nice.".into(),
            trusted_proxies: Vec::new(),
            secure_cookies: false,
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
    /// Thumbnails of images with transparency: `jpeg` (flattened onto the
    /// background, as Maniwani does), `png` or `webp` (alpha kept).
    pub thumb_alpha: String,
    /// Seconds an ffprobe or ffmpeg child may run before it is killed.
    pub video_timeout_secs: u64,
    /// Address space an ffprobe or ffmpeg child may map, in MiB.
    pub video_memory_mib: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            thumb_max_side: 500,
            max_pixels: 40_000_000,
            thumb_workers: 0,
            thumb_queue: 64,
            max_upload_bytes: 32 * 1024 * 1024,
            thumb_alpha: "jpeg".into(),
            video_timeout_secs: 30,
            video_memory_mib: 1024,
        }
    }
}

/// `[supervision]`: how often an actor may crash before the node calls it
/// a crash loop and goes unready (see `wani_supervision::tree`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisionConfig {
    /// Crashes of one actor allowed within `window_secs`; one more is a loop.
    pub max_restarts: usize,
    pub window_secs: u64,
}

impl Default for SupervisionConfig {
    fn default() -> Self {
        let b = wani_supervision::tree::Budget::default();
        SupervisionConfig {
            max_restarts: b.max_restarts,
            window_secs: b.window_ms / 1000,
        }
    }
}

impl SupervisionConfig {
    /// The tree's budget.
    pub fn budget(&self) -> wani_supervision::tree::Budget {
        wani_supervision::tree::Budget {
            max_restarts: self.max_restarts,
            window_ms: self.window_secs * 1000,
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

/// `[abuse]`: site-wide anti-abuse settings (per-board ones are board settings).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AbuseConfig {
    /// Seconds before the same text may be posted again, by anyone (0: off).
    pub same_content_secs: i64,
    /// Seconds a captcha may be answered after it was drawn.
    pub captcha_ttl_secs: i64,
    /// Seconds a client that solved a captcha may post without another.
    pub captcha_cooldown_secs: i64,
    /// Days a login lasts.
    pub session_days: i64,
    /// In a cluster, seconds between two reloads of the ban list from the
    /// database: the safety net for a ban broadcast that was lost (a ban
    /// reaches every node at once as a cluster message).
    pub ban_reload_secs: u64,
    /// Reports one address may file per hour (0: no limit).
    pub reports_per_hour: usize,
    /// Slips one address may register per hour (0: no limit).
    pub registrations_per_hour: usize,
    /// Wrong passwords an account, or an address, may send before each
    /// further one makes it wait (1 s, doubling).
    pub login_free_failures: u32,
    /// The longest wait after wrong passwords, in seconds.
    pub login_backoff_max_secs: i64,
}

impl Default for AbuseConfig {
    fn default() -> Self {
        AbuseConfig {
            same_content_secs: 60,
            captcha_ttl_secs: 600,
            captcha_cooldown_secs: 600,
            session_days: 30,
            ban_reload_secs: 1,
            reports_per_hour: 30,
            registrations_per_hour: 3,
            login_free_failures: 5,
            login_backoff_max_secs: 300,
        }
    }
}

/// `[captcha]`: how the built-in captcha is handed out, and the optional
/// proof of work. Whether a board asks a captcha at all is a board setting
/// (`captcha_threads`, `captcha_replies`); how long one lives and how long
/// its pass lasts are `abuse.captcha_ttl_secs` and `abuse.captcha_cooldown_secs`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptchaConfig {
    /// Captchas (ids and pictures) one address (one /64 in IPv6) may fetch
    /// at once; past it, `per_minute`; beyond that, 429 with Retry-After.
    pub burst: u32,
    pub per_minute: u32,
    /// Posts the solver of a captcha may make on the same board, from the
    /// same address, within `abuse.captcha_cooldown_secs`, without another
    /// (0: every post needs its own captcha).
    pub pass_posts: u32,
    /// Boards whose posts (threads and replies) need a proof of work, by
    /// name, with its cost: leading zero bits of SHA-256 (each bit doubles
    /// the work; a browser does 16 in about a third of a second, 20 in about
    /// five). Boards not named ask none.
    pub pow_bits: std::collections::BTreeMap<String, u8>,
}

impl Default for CaptchaConfig {
    fn default() -> Self {
        CaptchaConfig {
            burst: 20,
            per_minute: 6,
            pass_posts: 3,
            pow_bits: Default::default(),
        }
    }
}

impl CaptchaConfig {
    /// The bookkeeping's limits, with the lifetimes of `[abuse]`.
    pub fn limits(&self, abuse: &AbuseConfig) -> crate::abuse::captcha::Limits {
        crate::abuse::captcha::Limits {
            ttl_ms: abuse.captcha_ttl_secs.saturating_mul(1000),
            cooldown_ms: abuse.captcha_cooldown_secs.saturating_mul(1000),
            pass_posts: self.pass_posts,
            burst: self.burst,
            per_minute: self.per_minute,
        }
    }

    /// The proof of work board `name` asks for (0: none).
    pub fn pow_for(&self, name: &str) -> u8 {
        self.pow_bits.get(name).copied().unwrap_or(0)
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Bootstrap {
    pub boards: Vec<BoardSettings>,
}

/// Environment variables that set config keys begin with this, and name the
/// key with `__` between its parts: `WANI_NODE__NAME=a` is `[node] name = "a"`,
/// `WANI_CAPTCHA__POW_BITS__B=12` is `[captcha.pow_bits] b = 12`.
pub const ENV_PREFIX: &str = "WANI_";
const ENV_SEPARATOR: &str = "__";

impl Config {
    /// Reads and checks a config file, then applies the `WANI_SECTION__KEY`
    /// variables of this process's environment over it.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the config file {}", path.display()))?;
        Config::parse_with_env(&text, std::env::vars())
            .with_context(|| format!("in the config file {}", path.display()))
    }

    /// The built-in defaults with this process's `WANI_SECTION__KEY`
    /// variables applied: the config of a node started without a file.
    pub fn from_env() -> anyhow::Result<Config> {
        Config::parse_with_env("", std::env::vars())
    }

    /// Parses and checks config text.
    pub fn parse(text: &str) -> anyhow::Result<Config> {
        Config::parse_with_env(text, std::iter::empty())
    }

    /// Parses config text, sets the keys named by `WANI_SECTION__KEY`
    /// variables among `vars` (others are ignored), and checks the result.
    /// A value is read as TOML (`8080`, `true`, `["web", "live"]`) where that
    /// fits the key, and as a plain string otherwise, so URLs and names need
    /// no quotes. An error names the variable and the key it sets.
    pub fn parse_with_env(
        text: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Config> {
        // The file alone first: its errors point at the line.
        let mut config: Config = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut table: toml::Table = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut overrides: Vec<(String, Vec<String>, String)> = vars
            .into_iter()
            .filter_map(|(var, value)| {
                let path = var.strip_prefix(ENV_PREFIX)?;
                if !path.contains(ENV_SEPARATOR) {
                    return None;
                }
                let path = path
                    .split(ENV_SEPARATOR)
                    .map(|p| p.to_ascii_lowercase())
                    .collect();
                Some((var, path, value))
            })
            .collect();
        // Applied in a fixed order, so two variables setting one key (which
        // only a mistake does) always end the same way.
        overrides.sort();
        for (var, path, value) in overrides {
            let key = path.join(".");
            let as_toml = toml::from_str::<toml::Table>(&format!("v = {value}"))
                .ok()
                .and_then(|mut t| t.remove("v"));
            let mut first_error = None;
            for candidate in as_toml
                .into_iter()
                .chain(std::iter::once(toml::Value::String(value.clone())))
            {
                let mut next = table.clone();
                set_key(&mut next, &path, candidate)
                    .with_context(|| format!("{var} sets {key}"))?;
                match Config::from_table(&next) {
                    Ok(c) => {
                        (table, config) = (next, c);
                        first_error = None;
                        break;
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = first_error {
                bail!("{var} sets {key}: {e:#}");
            }
        }
        config.check()?;
        Ok(config)
    }

    fn from_table(table: &toml::Table) -> anyhow::Result<Config> {
        use serde::de::IntoDeserializer;
        Config::deserialize(toml::Value::Table(table.clone()).into_deserializer())
            .map_err(|e| anyhow::anyhow!("{}", e.message()))
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
        if !matches!(self.blobs.backend.as_str(), "fs" | "db" | "s3") {
            anyhow::bail!(
                "blobs.backend: {:?} must be \"fs\", \"db\" or \"s3\"",
                self.blobs.backend
            );
        }
        if self.blobs.backend == "s3" && self.blobs.bucket.is_empty() {
            anyhow::bail!("blobs.bucket: backend \"s3\" needs the bucket's name");
        }
        let url = &self.blobs.public_url;
        if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
            anyhow::bail!(
                "blobs.public_url: {:?} must be an http:// or https:// URL",
                self.blobs.public_url
            );
        }
        if !(16..=4096).contains(&self.media.thumb_max_side) {
            bail!(
                "media.thumb_max_side: {} must be between 16 and 4096",
                self.media.thumb_max_side
            );
        }
        if wani_media::AlphaThumb::parse(&self.media.thumb_alpha).is_none() {
            bail!(
                "media.thumb_alpha: {:?} must be jpeg, png or webp",
                self.media.thumb_alpha
            );
        }
        if self.media.max_pixels == 0 {
            bail!("media.max_pixels: must be above 0");
        }
        if self.http.head_timeout_secs == 0 || self.http.idle_timeout_secs == 0 {
            bail!("http.head_timeout_secs and http.idle_timeout_secs: must be at least 1");
        }
        for p in &self.http.cap_exempt {
            crate::abuse::addr::Cidr::parse(p)
                .map_err(|e| anyhow::anyhow!("http.cap_exempt: {e}"))?;
        }
        for p in &self.site.trusted_proxies {
            crate::abuse::addr::Cidr::parse(p)
                .map_err(|e| anyhow::anyhow!("site.trusted_proxies: {e}"))?;
        }
        if self.abuse.same_content_secs < 0 || self.abuse.captcha_cooldown_secs < 0 {
            bail!("abuse.same_content_secs and abuse.captcha_cooldown_secs must not be negative");
        }
        if self.abuse.captcha_ttl_secs < 1 || self.abuse.session_days < 1 {
            bail!("abuse.captcha_ttl_secs and abuse.session_days must be at least 1");
        }
        if !self.cluster.enabled {
            for role in ["web", "entities", "render", "thumbnail"] {
                if !self.node.roles.iter().any(|r| r == role) {
                    bail!("node.roles: a node outside a cluster must carry every role, but {role:?} is missing");
                }
            }
        }
        if self.cluster.enabled {
            // The TLS files are read here too, so a bad one stops the node at
            // start with the key to fix, not at its first connection.
            if let Some(files) = self.cluster.runtime(&self.node)?.tls {
                wani_supervision::tls::ClusterTls::load(&files)?;
            }
            if self.database.url.starts_with("sqlite:") {
                bail!(
                    "cluster.enabled: the nodes of a cluster share their state through PostgreSQL, but database.url is SQLite; \
                     set database.url = \"postgres://…\" or turn the cluster off"
                );
            }
            if self.cluster.lease_ttl_ms < 300 {
                bail!(
                    "cluster.lease_ttl_ms: must be at least 300 (it is renewed every third of it)"
                );
            }
            if self.cluster.shards == 0 || self.cluster.call_timeout_secs == 0 {
                bail!("cluster.shards and cluster.call_timeout_secs: must be at least 1");
            }
            if self.cluster.heartbeat_ms == 0
                || self.cluster.suspect_after == 0
                || self.cluster.down_after <= self.cluster.suspect_after
            {
                bail!("cluster.heartbeat_ms, suspect_after, down_after: need heartbeat_ms > 0 and 0 < suspect_after < down_after");
            }
        }
        if self.captcha.burst == 0 {
            bail!("captcha.burst: must be at least 1 (or no captcha could ever be fetched)");
        }
        for (board, bits) in &self.captcha.pow_bits {
            if *bits > crate::abuse::captcha::MAX_POW_BITS {
                bail!(
                    "captcha.pow_bits.{board}: {bits} is more than {} bits of work; no browser would finish",
                    crate::abuse::captcha::MAX_POW_BITS
                );
            }
        }
        if self.entities.idle_timeout_secs == 0 {
            bail!("entities.idle_timeout_secs: must be at least 1");
        }
        if self.abuse.ban_reload_secs == 0 {
            bail!("abuse.ban_reload_secs: must be at least 1");
        }
        if self.supervision.window_secs == 0 {
            bail!("supervision.window_secs: must be at least 1");
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

    /// Where this config's node answers on this machine: node.listen, with
    /// a wildcard host asked on loopback.
    pub fn local_node(&self) -> anyhow::Result<String> {
        let mut a = self.listen_addr()?;
        if a.ip().is_unspecified() {
            a.set_ip(if a.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        Ok(a.to_string())
    }
}

/// Sets `path` (table names, then the key) in `table` to `value`, making
/// the tables on the way.
fn set_key(table: &mut toml::Table, path: &[String], value: toml::Value) -> anyhow::Result<()> {
    let (key, tables) = path.split_last().context("no key named")?;
    let mut at = table;
    for (i, name) in tables.iter().enumerate() {
        let entry = at
            .entry(name.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        at = entry.as_table_mut().with_context(|| {
            format!(
                "{} is a single value, not a section",
                tables[..=i].join(".")
            )
        })?;
    }
    at.insert(key.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_configs_parse() {
        Config::parse(include_str!("../../examples/single-box/cluster.toml")).unwrap();
        for node in [
            include_str!("../../examples/three-nodes/a.toml"),
            include_str!("../../examples/three-nodes/b.toml"),
        ] {
            // The cookie file is relative to where the node runs; only the shape is checked here.
            let c: Config = toml::from_str(node).unwrap();
            assert!(c.cluster.enabled && c.cluster.seeds.len() == 2);
        }
        let c = Config::parse(include_str!("../../cluster.toml")).unwrap();
        assert_eq!(c.listen_addr().unwrap().to_string(), "127.0.0.1:8080");
        assert!(c.bootstrap.boards.iter().any(|b| b.name == "b"));
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn environment_variables_set_keys_over_the_file() {
        let c = Config::parse_with_env(
            "[node]\nname = \"file\"\nlisten = \"127.0.0.1:1\"\n",
            env(&[
                ("WANI_NODE__NAME", "wani2"),
                ("WANI_NODE__LISTEN", "0.0.0.0:8080"),
                ("WANI_DATABASE__URL", "sqlite:///data/wani.db"),
                ("WANI_HTTP__HEAD_TIMEOUT_SECS", "7"),
                ("WANI_SITE__SECURE_COOKIES", "true"),
                ("WANI_SITE__TRUSTED_PROXIES", r#"["10.0.0.0/8", "::1"]"#),
                ("WANI_CAPTCHA__POW_BITS__B", "12"),
                // Not config: no `__`, or not ours.
                ("WANI_CONFIG", "/etc/wani/wani.toml"),
                ("WANI_TEST_POSTGRES_URL", "postgres://x@y/z"),
                ("HOME__X", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(c.node.name, "wani2");
        assert_eq!(c.listen_addr().unwrap().to_string(), "0.0.0.0:8080");
        assert_eq!(c.database.url, "sqlite:///data/wani.db");
        assert_eq!(c.http.head_timeout_secs, 7);
        assert!(c.site.secure_cookies);
        assert_eq!(c.site.trusted_proxies, ["10.0.0.0/8", "::1"]);
        assert_eq!(c.captcha.pow_for("b"), 12);
        // A string key takes a value that would read as another TOML type.
        let c = Config::parse_with_env("", env(&[("WANI_NODE__NAME", "1234")])).unwrap();
        assert_eq!(c.node.name, "1234");
    }

    #[test]
    fn a_bad_environment_variable_is_named_with_its_key() {
        for (var, value, says) in [
            ("WANI_NODE__NAMEX", "a", "unknown field"),
            ("WANI_HTTP__HEAD_TIMEOUT_SECS", "soon", "invalid"),
            ("WANI_NODE__NAME__FIRST", "a", "expected a string"),
            ("WANI_NODEX__NAME", "a", "unknown field"),
        ] {
            let e = Config::parse_with_env("", env(&[(var, value)])).unwrap_err();
            let text = format!("{e:#}");
            assert!(text.contains(var), "{var}: {text}");
            assert!(text.contains(says), "{var}: {text}");
        }
        // The checks after parsing name the key as for the file.
        let e =
            Config::parse_with_env("", env(&[("WANI_MEDIA__THUMB_MAX_SIDE", "2")])).unwrap_err();
        assert!(format!("{e:#}").contains("media.thumb_max_side"), "{e:#}");
    }

    #[test]
    fn trusted_proxies_parse() {
        let c = Config::parse(
            "[site]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\nsecure_cookies = true",
        )
        .unwrap();
        assert_eq!(c.site.trusted_proxies.len(), 2);
        assert!(c.site.secure_cookies);
        assert!(Config::parse("").unwrap().site.trusted_proxies.is_empty());
    }

    #[test]
    fn tls_files_are_all_or_none_and_checked_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let base = "[database]\nurl = \"postgres://x@h/db\"\n[cluster]\nenabled = true\ncookie = \"long enough\"\n";
        let e = Config::parse(&format!("{base}tls_cert = \"a.pem\"\n")).unwrap_err();
        assert!(format!("{e:#}").contains("cluster.tls_key"), "{e:#}");

        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let path = |n: &str| dir.path().join(n).display().to_string();
        std::fs::write(path("ca.pem"), ca.pem()).unwrap();
        std::fs::write(path("cert.pem"), cert.pem()).unwrap();
        std::fs::write(path("key.pem"), key.serialize_pem()).unwrap();
        let with = |cert: &str, key: &str, ca: &str| {
            Config::parse(&format!(
                "{base}tls_cert = {:?}\ntls_key = {:?}\ntls_ca = {:?}\n",
                path(cert),
                path(key),
                path(ca)
            ))
        };
        let c = with("cert.pem", "key.pem", "ca.pem").unwrap();
        assert!(c.cluster.runtime(&c.node).unwrap().tls.is_some());
        let e = with("missing.pem", "key.pem", "ca.pem").unwrap_err();
        assert!(
            format!("{e:#}").contains("cluster.tls_cert")
                && format!("{e:#}").contains("cannot read"),
            "{e:#}"
        );
        let e = with("cert.pem", "cert.pem", "ca.pem").unwrap_err();
        assert!(
            format!("{e:#}").contains("cluster.tls_key")
                && format!("{e:#}").contains("private key"),
            "{e:#}"
        );
        let e = with("cert.pem", "key.pem", "key.pem").unwrap_err();
        assert!(
            format!("{e:#}").contains("cluster.tls_ca")
                && format!("{e:#}").contains("no certificate"),
            "{e:#}"
        );
        // A key that is not the certificate's.
        std::fs::write(
            path("other.pem"),
            rcgen::KeyPair::generate().unwrap().serialize_pem(),
        )
        .unwrap();
        let e = with("cert.pem", "other.pem", "ca.pem").unwrap_err();
        assert!(format!("{e:#}").contains("cluster.tls_key"), "{e:#}");
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
        let e = Config::parse("[cluster]\nenabled = true\ncookie = \"long enough\"").unwrap_err();
        assert!(
            format!("{e:#}").contains("PostgreSQL"),
            "a cluster on SQLite is refused: {e:#}"
        );
        let e = Config::parse(
            "[database]\nurl = \"postgres://x@h/db\"\n[cluster]\nenabled = true\ncookie = \"x\"",
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("cluster.cookie"), "{e:#}");
        Config::parse("[database]\nurl = \"postgres://x@h/db\"\n[cluster]\nenabled = true\ncookie = \"long enough\"\nseeds = [\"127.0.0.1:7001\"]").unwrap();
        let e = Config::parse("[blobs]\nbackend = \"s4\"").unwrap_err();
        assert!(format!("{e:#}").contains("blobs.backend"), "{e:#}");
        let e = Config::parse("[blobs]\nbackend = \"s3\"").unwrap_err();
        assert!(format!("{e:#}").contains("blobs.bucket"), "{e:#}");
        let e = Config::parse("[blobs]\npublic_url = \"cdn.example\"").unwrap_err();
        assert!(format!("{e:#}").contains("blobs.public_url"), "{e:#}");
        let e = Config::parse("[site]\ntrusted_proxies = [\"10.0.0.0/40\"]").unwrap_err();
        assert!(format!("{e:#}").contains("site.trusted_proxies"), "{e:#}");
        let e = Config::parse("[http]\nhead_timeout_secs = 0").unwrap_err();
        assert!(format!("{e:#}").contains("http.head_timeout_secs"), "{e:#}");
        let e = Config::parse("[http]\ncap_exempt = [\"proxy\"]").unwrap_err();
        assert!(format!("{e:#}").contains("http.cap_exempt"), "{e:#}");
        let e = Config::parse("[abuse]\ncaptcha_ttl_secs = 0").unwrap_err();
        assert!(format!("{e:#}").contains("captcha_ttl_secs"), "{e:#}");
        let e = Config::parse("[captcha]\npow_bits = { b = 40 }").unwrap_err();
        assert!(format!("{e:#}").contains("captcha.pow_bits.b"), "{e:#}");
        let c = Config::parse("[captcha]\nburst = 5\npow_bits = { b = 18 }").unwrap();
        assert_eq!(
            (
                c.captcha.burst,
                c.captcha.pow_for("b"),
                c.captcha.pow_for("g")
            ),
            (5, 18, 0)
        );
    }
}
