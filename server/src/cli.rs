//! The command line: every command and setting, with `--help`. Settings are read from a
//! flag or from the environment variable of the same meaning (the flag wins), and then
//! checked by [`Config::from_lookup`], the one place that says what a valid setting is.

use crate::config::{Config, ConfigError};
use app::account::OrgKind;
use clap::{Args, Parser, Subcommand};
use std::collections::HashMap;

#[derive(Debug, Parser)]
#[command(
    name = "server",
    about = "Rigshift: a marketplace for AI capacity on converted Bitcoin-mining sites",
    long_about = "Rigshift: a marketplace for AI capacity on converted Bitcoin-mining sites.\n\n\
        Without a command it serves the marketplace. Every setting can be given as a flag or \
        as the environment variable shown with it; administration commands use the same \
        database as `serve` (DATABASE_URL, or the private PostgreSQL).",
    version
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the marketplace (the default): start the private PostgreSQL unless DATABASE_URL
    /// is set, migrate, load the demo market into an empty database, and serve.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Load the demo market into an empty database and exit (refuses a non-empty one).
    Seed,
    /// Start the private PostgreSQL in the data directory, print its admin URL and leave it
    /// running (the test command uses it).
    PgStart,
    /// Stop the private PostgreSQL in the data directory.
    PgStop,
    #[command(flatten)]
    Admin(AdminCommand),
}

/// Commands that work on the database and leave a private cluster running if it was.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Recompute every reservation's postings from the reservations, compare them with the
    /// ledger, and exit 1 on any difference.
    Reconcile,
    /// Create an organization; prints its id.
    CreateOrg(CreateOrg),
    /// Create a person in an organization; the password is read from the first line of
    /// standard input.
    CreateUser(CreateUser),
    /// Create an API key for an organization; prints the key, once.
    CreateKey(CreateKey),
}

/// An organization's kind, read with the app's own parser.
fn org_kind(s: &str) -> Result<OrgKind, String> {
    OrgKind::parse(s).ok_or_else(|| "choose customer, operator or both".to_string())
}

#[derive(Debug, Args)]
pub struct CreateOrg {
    /// The organization's name.
    #[arg(long)]
    pub name: String,
    /// What it does on the marketplace: customer, operator or both.
    #[arg(long, value_parser = org_kind)]
    pub kind: OrgKind,
}

#[derive(Debug, Args)]
pub struct CreateUser {
    /// The organization's id (`create-org` prints it).
    #[arg(long)]
    pub org: i64,
    /// Their email address, which they sign in with.
    #[arg(long)]
    pub email: String,
    /// The name shown for them.
    #[arg(long)]
    pub name: String,
    /// Make them the platform administrator (there can be one).
    #[arg(long)]
    pub platform_admin: bool,
}

#[derive(Debug, Args)]
pub struct CreateKey {
    /// The organization's id (`create-org` prints it).
    #[arg(long)]
    pub org: i64,
    /// A name for the key, to tell it apart on the account page.
    #[arg(long)]
    pub name: String,
    /// Comma-separated scopes: read, reserve, operate.
    #[arg(long)]
    pub scopes: String,
    /// Days until the key expires (default: never).
    #[arg(long)]
    pub expires_days: Option<i64>,
}

/// The settings, each a flag and an environment variable. Values stay text here: the
/// configuration checks them, with the variable's name in its error.
#[derive(Debug, Args)]
pub struct Settings {
    /// PostgreSQL to use. Unset: the server starts its own private cluster.
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Where the private cluster keeps its data [default: .data]
    #[arg(long, global = true, env = "RIGSHIFT_DATA_DIR")]
    pub data_dir: Option<String>,
    /// Database created in the private cluster [default: rigshift]
    #[arg(long, global = true, env = "RIGSHIFT_DB_NAME")]
    pub db_name: Option<String>,
    /// Address and port to serve on (LEPTOS_SITE_ADDR is honoured too) [default: 127.0.0.1:3000]
    #[arg(long, global = true, env = "RIGSHIFT_LISTEN")]
    pub listen: Option<String>,
    /// `auto`: load the demo market into an empty database; `never`: don't [default: auto]
    #[arg(long, global = true, env = "RIGSHIFT_SEED")]
    pub seed: Option<String>,
    /// Size of the database connection pool [default: 20]
    #[arg(long, global = true, env = "RIGSHIFT_DB_MAX_CONNECTIONS")]
    pub db_max_connections: Option<String>,
    /// `pretty` or `json` (one object per line); levels come from RUST_LOG [default: pretty]
    #[arg(long, global = true, env = "RIGSHIFT_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// `true` when served over HTTPS: Secure, __Host- session cookie [default: false]
    #[arg(long, global = true, env = "RIGSHIFT_SECURE_COOKIES")]
    pub secure_cookies: Option<String>,
    /// `true` behind a reverse proxy: the client address is the last X-Forwarded-For entry [default: false]
    #[arg(long, global = true, env = "RIGSHIFT_TRUST_PROXY")]
    pub trust_proxy: Option<String>,
    /// Requests each API key may make per minute [default: 600]
    #[arg(long, global = true, env = "RIGSHIFT_API_RATE_PER_MINUTE")]
    pub api_rate_per_minute: Option<String>,
    /// `true` lets webhooks use http:// and private addresses (development, tests) [default: false]
    #[arg(long, global = true, env = "RIGSHIFT_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: Option<String>,
    /// The platform's fee on new reservations, in basis points (0-5000) [default: 300]
    #[arg(long, global = true, env = "RIGSHIFT_PLATFORM_FEE_BP")]
    pub platform_fee_bp: Option<String>,
    /// When set, /metrics wants `Authorization: Bearer <token>`
    #[arg(
        long,
        global = true,
        env = "RIGSHIFT_METRICS_TOKEN",
        hide_env_values = true
    )]
    pub metrics_token: Option<String>,
    /// Seconds /readyz answers 503 before a stopping server closes (0-300) [default: 3]
    #[arg(long, global = true, env = "RIGSHIFT_SHUTDOWN_GRACE_SECS")]
    pub shutdown_grace_secs: Option<String>,
    /// The address people reach the marketplace at, for links in mail [default: http://<listen>]
    #[arg(long, global = true, env = "RIGSHIFT_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// SMTP server for mail, smtp:// or smtps:// (unset: mail stays in the local outbox)
    #[arg(long, global = true, env = "RIGSHIFT_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The sender of mail [default: Rigshift <rigshift@localhost>]
    #[arg(long, global = true, env = "RIGSHIFT_MAIL_FROM")]
    pub mail_from: Option<String>,
    /// A replica anonymous market browsing and search read from while fresh (unset: the primary)
    #[arg(
        long,
        global = true,
        env = "RIGSHIFT_READ_DATABASE_URL",
        hide_env_values = true
    )]
    pub read_database_url: Option<String>,
    /// How many seconds behind the primary the replica may be for those reads (1-300) [default: 5]
    #[arg(long, global = true, env = "RIGSHIFT_READ_MAX_LAG_SECS")]
    pub read_max_lag_secs: Option<String>,
}

impl Settings {
    /// The configuration these settings give, with whatever they leave unset read from the
    /// environment (`LEPTOS_SITE_ADDR`, which cargo-leptos sets).
    pub fn config(&self) -> Result<Config, ConfigError> {
        let given: HashMap<&str, &Option<String>> = HashMap::from([
            ("DATABASE_URL", &self.database_url),
            ("RIGSHIFT_DATA_DIR", &self.data_dir),
            ("RIGSHIFT_DB_NAME", &self.db_name),
            ("RIGSHIFT_LISTEN", &self.listen),
            ("RIGSHIFT_SEED", &self.seed),
            ("RIGSHIFT_DB_MAX_CONNECTIONS", &self.db_max_connections),
            ("RIGSHIFT_LOG_FORMAT", &self.log_format),
            ("RIGSHIFT_SECURE_COOKIES", &self.secure_cookies),
            ("RIGSHIFT_TRUST_PROXY", &self.trust_proxy),
            ("RIGSHIFT_API_RATE_PER_MINUTE", &self.api_rate_per_minute),
            (
                "RIGSHIFT_WEBHOOK_ALLOW_PRIVATE",
                &self.webhook_allow_private,
            ),
            ("RIGSHIFT_PLATFORM_FEE_BP", &self.platform_fee_bp),
            ("RIGSHIFT_METRICS_TOKEN", &self.metrics_token),
            ("RIGSHIFT_SHUTDOWN_GRACE_SECS", &self.shutdown_grace_secs),
            ("RIGSHIFT_PUBLIC_URL", &self.public_url),
            ("RIGSHIFT_SMTP_URL", &self.smtp_url),
            ("RIGSHIFT_MAIL_FROM", &self.mail_from),
            ("RIGSHIFT_READ_DATABASE_URL", &self.read_database_url),
            ("RIGSHIFT_READ_MAX_LAG_SECS", &self.read_max_lag_secs),
        ]);
        Config::from_lookup(|var| match given.get(var) {
            Some(value) => (*value).clone(),
            None => std::env::var(var).ok(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_set_what_the_environment_would() {
        let cli = Cli::try_parse_from([
            "server",
            "serve",
            "--listen",
            "127.0.0.1:4100",
            "--seed",
            "never",
            "--shutdown-grace-secs",
            "0",
        ])
        .unwrap();
        assert!(matches!(cli.command, Some(Command::Serve)));
        let config = cli.settings.config().unwrap();
        assert_eq!(config.listen, "127.0.0.1:4100".parse().unwrap());
        assert_eq!(config.shutdown_grace_secs, 0);
        let bad = Cli::try_parse_from(["server", "--db-max-connections", "0"]).unwrap();
        let err = bad.settings.config().unwrap_err().to_string();
        assert!(err.contains("RIGSHIFT_DB_MAX_CONNECTIONS"), "{err}");
    }

    #[test]
    fn admin_commands_keep_their_flags() {
        let cli = Cli::try_parse_from([
            "server",
            "create-key",
            "--org",
            "3",
            "--name",
            "ci",
            "--scopes",
            "read,reserve",
            "--expires-days",
            "30",
        ])
        .unwrap();
        let Some(Command::Admin(AdminCommand::CreateKey(k))) = cli.command else {
            panic!("create-key")
        };
        assert_eq!((k.org, k.expires_days), (3, Some(30)));
        let cli = Cli::try_parse_from([
            "server",
            "create-user",
            "--org",
            "1",
            "--email",
            "a@b.co",
            "--name",
            "A",
            "--platform-admin",
        ])
        .unwrap();
        assert!(
            matches!(cli.command, Some(Command::Admin(AdminCommand::CreateUser(u))) if u.platform_admin)
        );
        assert!(
            Cli::try_parse_from(["server", "create-org", "--name", "X", "--kind", "miner"])
                .is_err()
        );
    }
}
