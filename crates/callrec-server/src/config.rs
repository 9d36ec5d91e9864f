//! The server's configuration: one serde struct with defaults, read from an
//! optional TOML file and then overridden by `CALLREC_SECTION__KEY`
//! environment variables.
//!
//! Every key is documented in `docs/configuration.md`. Secrets are
//! [`Secret`] values: they are never printed, logged or serialized in clear
//! ([`Config::print`] shows them as `********`).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use callrec_siprec::Side;
use callrec_siprec::roles::{AddressPattern, RoleRule};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// The prefix of environment overrides.
pub const ENV_PREFIX: &str = "CALLREC_";
/// Environment variables with the prefix that are not configuration keys
/// (read by the command line itself).
const ENV_NOT_KEYS: &[&str] = &["CALLREC_CONFIG", "CALLREC_LOG"];

/// Why the configuration could not be loaded.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The TOML (file plus overrides) does not fit the configuration.
    #[error("invalid configuration: {0}; see docs/configuration.md for every key")]
    Invalid(String),
    /// A value is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Value(String),
}

/// A secret string: deserialized from plain text, never shown.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The clear value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"********\"")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("********")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// An IP network in CIDR notation (`10.0.0.0/8`, `::1/128`); a bare address
/// is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    /// Whether `ip` is inside the network (IPv4-mapped IPv6 addresses are
    /// compared as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpNetwork {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IP network such as 10.0.0.0/8"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?} has a prefix length outside 0..={max}"))?,
            None => max,
        };
        Ok(IpNetwork { addr, prefix })
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for IpNetwork {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNetwork {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The whole configuration of `callrec serve`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where callrec keeps its state: the spool (`spool/`), the catalog.
    pub data_dir: PathBuf,
    /// SIP signalling.
    pub sip: SipConfig,
    /// RTP media.
    pub rtp: RtpConfig,
    /// The recording files.
    pub recording: RecordingConfig,
    /// The HTTP server.
    pub http: HttpConfig,
    /// Logs.
    pub log: LogConfig,
    /// The catalog database.
    pub catalog: CatalogConfig,
    /// Where recordings are delivered (callrec-storage's settings, tagged by
    /// `backend`); `None` is a local directory `<data_dir>/storage`.
    pub storage: Option<callrec_storage::StorageConfig>,
    /// The upload worker.
    pub delivery: DeliveryConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./callrec-data"),
            sip: SipConfig::default(),
            rtp: RtpConfig::default(),
            recording: RecordingConfig::default(),
            http: HttpConfig::default(),
            log: LogConfig::default(),
            catalog: CatalogConfig::default(),
            storage: None,
            delivery: DeliveryConfig::default(),
        }
    }
}

/// `[catalog]`: where calls, recordings, settings and the audit trail live.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogConfig {
    /// `sqlite://PATH` or `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`;
    /// `None` is `sqlite://<data_dir>/catalog.db`. A password in it is
    /// printed as `***`.
    #[serde(serialize_with = "print_catalog_url")]
    pub url: Option<String>,
}

fn print_catalog_url<S: Serializer>(url: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match url {
        Some(u) => s.serialize_str(&callrec_catalog::redact_url(u)),
        None => s.serialize_none(),
    }
}

/// `[delivery]`: the upload worker that takes spooled recordings to storage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Uploads at the same time.
    pub concurrency: usize,
    /// Delete recordings from storage this many days after delivery (the
    /// catalog keeps them as `deleted`); `None` keeps them forever.
    pub retention_days: Option<u32>,
    /// How often the catalog is scanned for recordings due for (another)
    /// upload attempt.
    pub scan_interval_secs: u64,
    /// The first retry delay after a failed upload; it doubles per attempt
    /// up to `backoff_max_secs`.
    pub backoff_base_secs: u64,
    /// The longest retry delay.
    pub backoff_max_secs: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            concurrency: 4,
            retention_days: None,
            scan_interval_secs: 5,
            backoff_base_secs: 2,
            backoff_max_secs: 900,
        }
    }
}

/// `[sip]`: the SIP listeners and who may open recording sessions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    /// UDP listen address; an empty string disables UDP.
    #[serde(
        deserialize_with = "optional_addr",
        serialize_with = "print_optional_addr"
    )]
    pub udp_listen: Option<SocketAddr>,
    /// TCP listen address; an empty string disables TCP.
    #[serde(
        deserialize_with = "optional_addr",
        serialize_with = "print_optional_addr"
    )]
    pub tcp_listen: Option<SocketAddr>,
    /// TLS listen address (SIPS); none (the default) or "" turns TLS off.
    /// Needs `tls_certificate` and `tls_private_key`.
    #[serde(
        deserialize_with = "optional_addr",
        serialize_with = "print_optional_addr"
    )]
    pub tls_listen: Option<SocketAddr>,
    /// The server certificate chain for TLS, a PEM file (leaf first).
    pub tls_certificate: Option<PathBuf>,
    /// The private key of that certificate, a PEM file (PKCS#8, PKCS#1 or
    /// SEC1).
    pub tls_private_key: Option<PathBuf>,
    /// The address put in Contact and SDP when the listen address is a
    /// wildcard (e.g. the host's address as seen by the SBC).
    pub public_address: Option<IpAddr>,
    /// Networks that may open recording sessions; others get 403.
    pub allowed_networks: Vec<IpNetwork>,
    /// How long to wait before the 200 OK (0: answer at once). The recording
    /// client may CANCEL meanwhile.
    pub answer_delay_ms: u64,
    /// The User-Agent header.
    pub user_agent: String,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            udp_listen: Some(SocketAddr::from(([0, 0, 0, 0], 5060))),
            tcp_listen: Some(SocketAddr::from(([0, 0, 0, 0], 5060))),
            tls_listen: None,
            tls_certificate: None,
            tls_private_key: None,
            public_address: None,
            allowed_networks: vec![
                "0.0.0.0/0".parse().expect("valid"),
                "::/0".parse().expect("valid"),
            ],
            answer_delay_ms: 0,
            user_agent: format!("callrec/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// `[rtp]`: the media sockets.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RtpConfig {
    /// The address RTP sockets bind to.
    pub bind_address: IpAddr,
    /// Lowest RTP port (rounded up to even).
    pub port_min: u16,
    /// Highest RTP port.
    pub port_max: u16,
    /// How long a freed port rests before it is handed out again, in seconds.
    pub port_rest_secs: u64,
    /// How long the timeline waits for late or reordered packets, in ms.
    pub jitter_delay_ms: u64,
    /// How many packets each RTP socket holds while its call is busy: its
    /// receive buffer is sized for them (about 1 KiB each, capped by the
    /// kernel's `net.core.rmem_max`).
    pub queue_packets: usize,
    /// A session that receives no RTP at all for this long (and is not
    /// paused) is ended by callrec with a BYE; 0 disables the check.
    pub inactivity_timeout_secs: u64,
}

impl Default for RtpConfig {
    fn default() -> Self {
        RtpConfig {
            bind_address: IpAddr::from([0, 0, 0, 0]),
            port_min: 40000,
            port_max: 49999,
            port_rest_secs: 10,
            jitter_delay_ms: 200,
            queue_packets: 512,
            inactivity_timeout_secs: 120,
        }
    }
}

/// The file format of recordings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FormatSetting {
    /// MP3 (the default).
    #[default]
    Mp3,
    /// WAV.
    Wav,
}

impl From<FormatSetting> for callrec_media::encode::Format {
    fn from(f: FormatSetting) -> Self {
        match f {
            FormatSetting::Mp3 => callrec_media::encode::Format::Mp3,
            FormatSetting::Wav => callrec_media::encode::Format::Wav,
        }
    }
}

/// What happens to paused spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PauseModeSetting {
    /// Left out of the file.
    #[default]
    Skip,
    /// Kept as silence.
    Silence,
}

/// One configured role rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
pub enum RoleRuleConfig {
    /// The first labelled stream goes to `first`, the next to the other side.
    LabelOrder {
        /// `end_user` or `agent`.
        #[serde(default = "end_user")]
        first: SideSetting,
    },
    /// Participants whose address matches the glob are agents.
    AgentAddressPattern {
        /// A glob such as `*@agents.example.com`.
        pattern: String,
    },
}

fn end_user() -> SideSetting {
    SideSetting::EndUser
}

/// A side as written in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SideSetting {
    /// The end user.
    EndUser,
    /// The agent.
    Agent,
}

impl RoleRuleConfig {
    /// The rule for the role resolver.
    pub fn to_rule(&self) -> RoleRule {
        match self {
            RoleRuleConfig::LabelOrder { first } => RoleRule::LabelOrder {
                first: match first {
                    SideSetting::EndUser => Side::EndUser,
                    SideSetting::Agent => Side::Agent,
                },
            },
            RoleRuleConfig::AgentAddressPattern { pattern } => {
                RoleRule::AgentAddressPattern(AddressPattern::new(pattern.clone()))
            }
        }
    }
}

/// `[recording]`: the files.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordingConfig {
    /// `mp3` or `wav` for every call on this node. Unset (the default),
    /// the recording settings decide (`format`, MP3 by default).
    pub format: Option<FormatSetting>,
    /// `skip` or `silence` for every call on this node. Unset (the
    /// default), the recording settings decide (`pause_mode`, silence by
    /// default).
    pub pause_mode: Option<PauseModeSetting>,
    /// How often the file is made readable up to now (WAV header, MP3
    /// frames), in seconds.
    pub checkpoint_secs: u64,
    /// MP3 only: also keep the audio as WAV in the spool while the call
    /// runs, so that an MP3 cut off by a crash is re-encoded whole up to the
    /// last checkpoint (32 kB/s of disk writes per call; removed when the
    /// recording is finished).
    pub pcm_backup: bool,
    /// Rules deciding roles when the metadata does not, tried in order;
    /// label order (end user first) is always the last resort.
    pub role_rules: Vec<RoleRuleConfig>,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            format: None,
            pause_mode: None,
            checkpoint_secs: 5,
            pcm_backup: true,
            role_rules: Vec::new(),
        }
    }
}

/// `[http]`: health, metrics and the API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// A bearer token required by `/api/` routes when set.
    pub api_token: Option<Secret>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            api_token: None,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter; the SIP stack is kept at `warn` because it logs
    /// whole messages (phone numbers) at info.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            filter: "info,rsipstack=warn".into(),
        }
    }
}

impl Config {
    /// The file (if any), then the environment of this process.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(file, std::env::vars())
    }

    /// The file (if any), then the given `CALLREC_...` variables.
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let text = match file {
            Some(path) => std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?,
            None => String::new(),
        };
        Self::from_toml_and_env(&text, env)
    }

    /// TOML text, then the given `CALLREC_...` variables.
    pub fn from_toml_and_env(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(one_line(&e)))?;
        let mut vars: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX) && !ENV_NOT_KEYS.contains(&k.as_str()))
            .collect();
        vars.sort();
        for (key, value) in vars {
            apply_env(&mut table, &key[ENV_PREFIX.len()..], &value);
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(one_line(&e)))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let r = &self.rtp;
        if r.port_min == 0 || r.port_min >= r.port_max || r.port_max - r.port_min < 3 {
            return Err(ConfigError::Value(format!(
                "rtp.port_min ({}) must be above 0 and at least 4 below rtp.port_max ({})",
                r.port_min, r.port_max
            )));
        }
        if let Some(storage) = &self.storage {
            storage
                .validate()
                .map_err(|e| ConfigError::Value(format!("[storage]: {e}")))?;
        }
        let sip = &self.sip;
        if sip.tls_listen.is_some()
            && (sip.tls_certificate.is_none() || sip.tls_private_key.is_none())
        {
            return Err(ConfigError::Value(
                "sip.tls_listen needs sip.tls_certificate and sip.tls_private_key (PEM files)"
                    .into(),
            ));
        }
        if self.delivery.concurrency == 0 {
            return Err(ConfigError::Value(
                "delivery.concurrency must be at least 1".into(),
            ));
        }
        if r.queue_packets == 0 {
            return Err(ConfigError::Value(
                "rtp.queue_packets must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The effective configuration as TOML, secrets shown as `********`.
    pub fn print(&self) -> String {
        let mut effective = self.clone();
        effective.catalog.url = Some(self.catalog_url());
        effective.storage = Some(self.storage_config());
        toml::to_string_pretty(&effective).unwrap_or_else(|e| format!("# cannot print: {e}\n"))
    }

    /// The spool directory (`data_dir/spool`).
    pub fn spool_dir(&self) -> PathBuf {
        self.data_dir.join("spool")
    }

    /// The catalog URL in force: `catalog.url`, else the SQLite file
    /// `<data_dir>/catalog.db`.
    pub fn catalog_url(&self) -> String {
        match &self.catalog.url {
            Some(u) => u.clone(),
            None => format!("sqlite://{}", self.data_dir.join("catalog.db").display()),
        }
    }

    /// The storage in force: `[storage]`, else the local directory
    /// `<data_dir>/storage`.
    pub fn storage_config(&self) -> callrec_storage::StorageConfig {
        self.storage
            .clone()
            .unwrap_or_else(|| callrec_storage::StorageConfig::Local {
                root: self.data_dir.join("storage"),
            })
    }
}

/// A TOML error on one line (its display spans several).
fn one_line(e: &toml::de::Error) -> String {
    e.to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sets `SECTION__KEY` (or `KEY`) in the table. The value is read as a TOML
/// value when it parses as one (numbers, booleans, arrays, inline tables),
/// else as a string.
fn apply_env(table: &mut toml::Table, path: &str, value: &str) {
    let parts: Vec<String> = path.split("__").map(|p| p.to_ascii_lowercase()).collect();
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    let mut cur = table;
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            cur.insert(part.clone(), parsed);
            return;
        }
        let entry = cur
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        cur = entry.as_table_mut().expect("just made a table");
    }
}

/// `""` is `None`, anything else a socket address.
fn optional_addr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().is_empty() {
        return Ok(None);
    }
    s.trim().parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!("{s:?} is not an address such as 0.0.0.0:5060"))
    })
}

fn print_optional_addr<S: Serializer>(a: &Option<SocketAddr>, s: S) -> Result<S::Ok, S::Error> {
    match a {
        Some(a) => s.collect_str(a),
        None => s.serialize_str(""),
    }
}

impl SipConfig {
    /// The address to advertise in Contact and SDP for a listener bound to
    /// `local`.
    pub fn advertised_ip(&self, local: IpAddr) -> IpAddr {
        if let Some(ip) = self.public_address {
            return ip;
        }
        if local.is_unspecified() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            local
        }
    }

    /// Whether `ip` may open recording sessions.
    pub fn is_allowed(&self, ip: IpAddr) -> bool {
        self.allowed_networks.iter().any(|n| n.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let c = Config::from_toml_and_env("", []).unwrap();
        assert_eq!(c.sip.udp_listen, Some("0.0.0.0:5060".parse().unwrap()));
        assert_eq!(c.sip.tcp_listen, Some("0.0.0.0:5060".parse().unwrap()));
        assert_eq!((c.rtp.port_min, c.rtp.port_max), (40000, 49999));
        assert_eq!(c.http.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("./callrec-data"));
        assert_eq!(c.recording.format, None, "the recording settings decide");
        assert_eq!(
            c.recording.pause_mode, None,
            "the recording settings decide"
        );
        assert!(c.sip.is_allowed("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn file_then_environment() {
        let toml = r#"
            data_dir = "/var/lib/callrec"
            [rtp]
            port_min = 20000
            port_max = 20100
            [recording]
            format = "wav"
            role_rules = [{ rule = "agent_address_pattern", pattern = "*@agents.example.com" }]
        "#;
        let c = Config::from_toml_and_env(
            toml,
            env(&[
                ("CALLREC_RTP__PORT_MAX", "20200"),
                ("CALLREC_SIP__ALLOWED_NETWORKS", r#"["10.0.0.0/8"]"#),
                ("CALLREC_HTTP__API_TOKEN", "s3cret-token"),
                ("CALLREC_DATA_DIR", "/tmp/x"),
                ("CALLREC_CONFIG", "ignored.toml"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!((c.rtp.port_min, c.rtp.port_max), (20000, 20200));
        assert_eq!(c.recording.format, Some(FormatSetting::Wav));
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert!(c.sip.is_allowed("10.1.2.3".parse().unwrap()));
        assert!(!c.sip.is_allowed("127.0.0.1".parse().unwrap()));
        assert_eq!(c.http.api_token.as_ref().unwrap().expose(), "s3cret-token");
        assert_eq!(
            c.recording.role_rules[0].to_rule(),
            RoleRule::AgentAddressPattern(AddressPattern::new("*@agents.example.com"))
        );
        let printed = c.print();
        assert!(!printed.contains("s3cret-token"), "{printed}");
        assert!(printed.contains("********"), "{printed}");
        assert!(!format!("{c:?}").contains("s3cret-token"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let e = Config::from_toml_and_env("", env(&[("CALLREC_SIP__PORT", "5")])).unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        let e =
            Config::from_toml_and_env("[rtp]\nport_min = 5000\nport_max = 5001", []).unwrap_err();
        assert!(e.to_string().contains("rtp.port_min"), "{e}");
        let e = Config::from_toml_and_env("[sip]\nallowed_networks = [\"10.0.0.0/40\"]", [])
            .unwrap_err();
        assert!(e.to_string().contains("prefix length"), "{e}");
    }

    #[test]
    fn tls_is_off_by_default_and_needs_its_certificate_and_key() {
        let c = Config::from_toml_and_env("", []).unwrap();
        assert_eq!(c.sip.tls_listen, None);
        assert!(c.print().contains("tls_listen = \"\""), "{}", c.print());
        let e = Config::from_toml_and_env("", env(&[("CALLREC_SIP__TLS_LISTEN", "0.0.0.0:5061")]))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("sip.tls_certificate and sip.tls_private_key"),
            "{e}"
        );
        let c = Config::from_toml_and_env(
            "[sip]\ntls_listen = \"0.0.0.0:5061\"\ntls_certificate = \"/etc/callrec/srs.crt\"\n\
             tls_private_key = \"/etc/callrec/srs.key\"",
            [],
        )
        .unwrap();
        assert_eq!(c.sip.tls_listen, Some("0.0.0.0:5061".parse().unwrap()));
        let printed = c.print();
        assert!(
            printed.contains("tls_private_key = \"/etc/callrec/srs.key\""),
            "{printed}"
        );
    }

    #[test]
    fn networks() {
        let check = |net: &str, ip: &str, expected: bool| {
            let n: IpNetwork = net.parse().unwrap();
            assert_eq!(n.contains(ip.parse().unwrap()), expected, "{net} {ip}");
        };
        check("10.0.0.0/8", "10.255.0.1", true);
        check("10.0.0.0/8", "11.0.0.1", false);
        check("0.0.0.0/0", "203.0.113.9", true);
        check("127.0.0.1", "127.0.0.1", true);
        check("127.0.0.1", "127.0.0.2", false);
        check("192.0.2.0/24", "::ffff:192.0.2.7", true);
        check("2001:db8::/32", "2001:db8::1", true);
        check("2001:db8::/32", "10.0.0.1", false);
    }

    #[test]
    fn catalog_storage_and_delivery_default_under_the_data_dir_and_secrets_stay_hidden() {
        let c = Config::from_toml_and_env("data_dir = \"/var/lib/callrec\"", env(&[])).unwrap();
        assert_eq!(c.catalog_url(), "sqlite:///var/lib/callrec/catalog.db");
        assert_eq!(
            c.storage_config(),
            callrec_storage::StorageConfig::Local {
                root: PathBuf::from("/var/lib/callrec/storage")
            }
        );
        assert_eq!(c.delivery.concurrency, 4);
        let c = Config::from_toml_and_env(
            "[catalog]\nurl = \"postgres://rec:pg-s3cret@db/callrec\"\n[storage]\nbackend = \"s3\"\nbucket = \"rec\"\naccess_key = \"AK\"\n[delivery]\nretention_days = 30",
            env(&[("CALLREC_STORAGE__SECRET_KEY", "s3-s3cret")]),
        )
        .unwrap();
        assert_eq!(c.delivery.retention_days, Some(30));
        assert_eq!(c.storage_config().backend(), "s3");
        let printed = c.print();
        assert!(!printed.contains("pg-s3cret"), "{printed}");
        assert!(!printed.contains("s3-s3cret"), "{printed}");
        assert!(printed.contains("bucket = \"rec\""), "{printed}");
        let bad = Config::from_toml_and_env("[storage]\nbackend = \"s3\"", env(&[]));
        assert!(bad.is_err());
    }
}
