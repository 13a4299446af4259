//! Configuration from environment variables (documented in the README).

use std::net::SocketAddr;
use std::path::PathBuf;

/// Whether to load the demo market into an empty database at start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedMode {
    /// Seed when the database holds no organizations yet (the default).
    IfEmpty,
    /// Never seed automatically (`server seed` still works).
    Never,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Clone, Debug)]
pub struct Config {
    /// `DATABASE_URL`: an existing database. Unset: start the private cluster.
    pub database_url: Option<String>,
    /// `RIGSHIFT_DATA_DIR`: where the private cluster keeps its files (default `.data`).
    pub data_dir: PathBuf,
    /// `RIGSHIFT_DB_NAME`: the database created in the private cluster (default `rigshift`).
    pub db_name: String,
    /// `RIGSHIFT_LISTEN`, else `LEPTOS_SITE_ADDR`, else `127.0.0.1:3000`.
    pub listen: SocketAddr,
    /// `RIGSHIFT_SEED`: `auto` (default) or `never`.
    pub seed: SeedMode,
    /// `RIGSHIFT_DB_MAX_CONNECTIONS` (default 20).
    pub db_max_connections: u32,
    /// `RIGSHIFT_LOG_FORMAT`: `pretty` (default) or `json`. Levels come from `RUST_LOG`.
    pub log_format: LogFormat,
    /// `RIGSHIFT_SECURE_COOKIES`: `true` when served over HTTPS (the session cookie gets
    /// `Secure` and the `__Host-` name); `false` (default) for plain-HTTP development.
    pub secure_cookies: bool,
    /// `RIGSHIFT_TRUST_PROXY`: `true` behind a reverse proxy that sets `X-Forwarded-For`
    /// (the client address for login throttling is then its last entry). Default `false`.
    pub trust_proxy: bool,
    /// `RIGSHIFT_API_RATE_PER_MINUTE`: requests per API key per minute (default 600).
    pub api_rate_per_minute: u32,
    /// `RIGSHIFT_WEBHOOK_ALLOW_PRIVATE`: `true` lets webhooks use http:// and private or
    /// loopback addresses (development and tests). Default `false`.
    pub allow_private_webhooks: bool,
    /// `RIGSHIFT_PLATFORM_FEE_BP`: the platform's fee on new reservations, in basis points
    /// of the discounted price (default 300, i.e. 3 %; 0 to 5000). Written on each posting.
    pub platform_fee_bp: i64,
    /// `RIGSHIFT_METRICS_TOKEN`: when set, `/metrics` wants `Authorization: Bearer <token>`.
    /// Unset (default): `/metrics` is open; keep it off the public internet at the proxy.
    pub metrics_token: Option<String>,
    /// `RIGSHIFT_SHUTDOWN_GRACE_SECS`: on SIGTERM, how long `/readyz` answers 503 while the
    /// server still serves, so load balancers move traffic away first (default 3, 0 to 300).
    pub shutdown_grace_secs: u64,
    /// `RIGSHIFT_PUBLIC_URL`: the address people reach the marketplace at, for links in
    /// mail (default `http://` and the listen address).
    pub public_url: String,
    /// `RIGSHIFT_SMTP_URL`: the SMTP server mail goes through, e.g.
    /// `smtps://user:password@mail.example.com` or `smtp://127.0.0.1:2525` (plain, for a
    /// local relay). Unset (default): mail stays in the local outbox that `/developers/mail`
    /// shows to visitors from this machine.
    pub smtp_url: Option<String>,
    /// `RIGSHIFT_MAIL_FROM`: the sender of mail (default `Rigshift <rigshift@localhost>`).
    pub mail_from: String,
    /// `RIGSHIFT_READ_DATABASE_URL`: a replica (e.g. HAProxy's replica port) that anonymous
    /// market browsing and search read from while it is fresh. Unset (default): every read
    /// uses `DATABASE_URL`.
    pub read_database_url: Option<String>,
    /// `RIGSHIFT_READ_MAX_LAG_SECS`: how far behind the primary the replica may be for those
    /// reads (default 5, 1 to 300); further behind, they use the primary.
    pub read_max_lag_secs: u32,
}

#[derive(Debug, thiserror::Error)]
#[error("{var}={value:?} is not valid: {expected}")]
pub struct ConfigError {
    var: &'static str,
    value: String,
    expected: &'static str,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads configuration through `get`, so tests need not touch the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let non_empty = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let listen_raw = non_empty("RIGSHIFT_LISTEN")
            .or_else(|| non_empty("LEPTOS_SITE_ADDR"))
            .unwrap_or_else(|| "127.0.0.1:3000".into());
        let listen = listen_raw.parse().map_err(|_| ConfigError {
            var: "RIGSHIFT_LISTEN",
            value: listen_raw.clone(),
            expected: "an address and port such as 127.0.0.1:3000",
        })?;
        let seed = match non_empty("RIGSHIFT_SEED").as_deref() {
            None | Some("auto") => SeedMode::IfEmpty,
            Some("never") => SeedMode::Never,
            Some(other) => {
                return Err(ConfigError {
                    var: "RIGSHIFT_SEED",
                    value: other.into(),
                    expected: "`auto` or `never`",
                })
            }
        };
        let log_format = match non_empty("RIGSHIFT_LOG_FORMAT").as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError {
                    var: "RIGSHIFT_LOG_FORMAT",
                    value: other.into(),
                    expected: "`pretty` or `json`",
                })
            }
        };
        let db_max_connections = match non_empty("RIGSHIFT_DB_MAX_CONNECTIONS") {
            None => 20,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or(ConfigError {
                    var: "RIGSHIFT_DB_MAX_CONNECTIONS",
                    value: v,
                    expected: "a whole number from 1 to 1000",
                })?,
        };
        let flag = |var: &'static str| match non_empty(var).as_deref() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(ConfigError {
                var,
                value: other.into(),
                expected: "`true` or `false`",
            }),
        };
        let secure_cookies = flag("RIGSHIFT_SECURE_COOKIES")?;
        let trust_proxy = flag("RIGSHIFT_TRUST_PROXY")?;
        let allow_private_webhooks = flag("RIGSHIFT_WEBHOOK_ALLOW_PRIVATE")?;
        let api_rate_per_minute = match non_empty("RIGSHIFT_API_RATE_PER_MINUTE") {
            None => 600,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=1_000_000).contains(n))
                .ok_or(ConfigError {
                    var: "RIGSHIFT_API_RATE_PER_MINUTE",
                    value: v,
                    expected: "a whole number from 1 to 1000000",
                })?,
        };
        let platform_fee_bp = match non_empty("RIGSHIFT_PLATFORM_FEE_BP") {
            None => app::pricing::DEFAULT_PLATFORM_FEE_BP,
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (0..=5000).contains(n))
                .ok_or(ConfigError {
                    var: "RIGSHIFT_PLATFORM_FEE_BP",
                    value: v,
                    expected: "basis points from 0 to 5000 (300 is 3 %)",
                })?,
        };
        let shutdown_grace_secs = match non_empty("RIGSHIFT_SHUTDOWN_GRACE_SECS") {
            None => 3,
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= 300)
                .ok_or(ConfigError {
                    var: "RIGSHIFT_SHUTDOWN_GRACE_SECS",
                    value: v,
                    expected: "whole seconds from 0 to 300",
                })?,
        };
        let public_url = non_empty("RIGSHIFT_PUBLIC_URL")
            .map(|u| u.trim_end_matches('/').to_string())
            .unwrap_or_else(|| format!("http://{listen}"));
        if !(public_url.starts_with("https://") || public_url.starts_with("http://"))
            || public_url
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ConfigError {
                var: "RIGSHIFT_PUBLIC_URL",
                value: public_url,
                expected: "an http:// or https:// address such as https://rigshift.example",
            });
        }
        let smtp_url = non_empty("RIGSHIFT_SMTP_URL");
        if let Some(u) = &smtp_url {
            if !(u.starts_with("smtp://") || u.starts_with("smtps://")) {
                return Err(ConfigError {
                    var: "RIGSHIFT_SMTP_URL",
                    value: "(hidden)".into(),
                    expected:
                        "an smtp:// or smtps:// URL such as smtps://user:password@mail.example.com",
                });
            }
        }
        let mail_from = non_empty("RIGSHIFT_MAIL_FROM")
            .unwrap_or_else(|| "Rigshift <rigshift@localhost>".into());
        let read_max_lag_secs = match non_empty("RIGSHIFT_READ_MAX_LAG_SECS") {
            None => 5,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=300).contains(n))
                .ok_or(ConfigError {
                    var: "RIGSHIFT_READ_MAX_LAG_SECS",
                    value: v,
                    expected: "whole seconds from 1 to 300",
                })?,
        };
        let db_name = non_empty("RIGSHIFT_DB_NAME").unwrap_or_else(|| "rigshift".into());
        if !db_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(ConfigError {
                var: "RIGSHIFT_DB_NAME",
                value: db_name,
                expected: "letters, digits and underscores only",
            });
        }
        Ok(Self {
            database_url: non_empty("DATABASE_URL"),
            data_dir: non_empty("RIGSHIFT_DATA_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(".data")),
            db_name,
            listen,
            seed,
            db_max_connections,
            log_format,
            secure_cookies,
            trust_proxy,
            api_rate_per_minute,
            allow_private_webhooks,
            platform_fee_bp,
            metrics_token: non_empty("RIGSHIFT_METRICS_TOKEN"),
            shutdown_grace_secs,
            public_url,
            smtp_url,
            mail_from,
            read_database_url: non_empty("RIGSHIFT_READ_DATABASE_URL"),
            read_max_lag_secs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_start_the_private_database_on_port_3000() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.database_url, None);
        assert_eq!(c.listen, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from(".data"));
        assert_eq!(c.seed, SeedMode::IfEmpty);
        assert_eq!(c.db_max_connections, 20);
    }

    #[test]
    fn rigshift_listen_wins_over_leptos_site_addr() {
        let c = cfg(&[
            ("LEPTOS_SITE_ADDR", "127.0.0.1:4000"),
            ("RIGSHIFT_LISTEN", "0.0.0.0:8080"),
        ])
        .unwrap();
        assert_eq!(c.listen, "0.0.0.0:8080".parse().unwrap());
        let c = cfg(&[("LEPTOS_SITE_ADDR", "127.0.0.1:4000")]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:4000".parse().unwrap());
    }

    #[test]
    fn bad_values_name_the_variable_and_what_is_expected() {
        let e = cfg(&[("RIGSHIFT_LISTEN", "localhost")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("RIGSHIFT_LISTEN") && e.contains("127.0.0.1:3000"),
            "{e}"
        );
        let e = cfg(&[("RIGSHIFT_SEED", "yes")]).unwrap_err().to_string();
        assert!(e.contains("`auto` or `never`"), "{e}");
        let e = cfg(&[("RIGSHIFT_DB_MAX_CONNECTIONS", "0")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("1 to 1000"), "{e}");
        let e = cfg(&[("RIGSHIFT_DB_NAME", "x; drop")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("RIGSHIFT_DB_NAME"), "{e}");
        let e = cfg(&[("RIGSHIFT_SECURE_COOKIES", "yes")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`true` or `false`"), "{e}");
    }

    #[test]
    fn secure_cookies_and_proxy_trust_are_off_unless_asked_for() {
        let c = cfg(&[]).unwrap();
        assert!(!c.secure_cookies && !c.trust_proxy);
        let c = cfg(&[
            ("RIGSHIFT_SECURE_COOKIES", "true"),
            ("RIGSHIFT_TRUST_PROXY", "true"),
        ])
        .unwrap();
        assert!(c.secure_cookies && c.trust_proxy);
    }

    #[test]
    fn empty_database_url_means_unset() {
        assert_eq!(cfg(&[("DATABASE_URL", "  ")]).unwrap().database_url, None);
    }
}
