//! What every handler shares: the application state and the limits both doors apply. Its
//! own module so that the doors (`api`, `auth`, `exports`, `ops`) and the router in `http`
//! depend on it, not on each other.

use app::services::web::CookiePolicy;
use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;
use sqlx::PgPool;

/// Largest request body accepted (larger ones get 413); the API's bodies are small.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Everything a handler may need; cheap to clone.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub db: PgPool,
    pub security: Security,
    /// The platform fee rate new reservations are priced at.
    pub platform_fee: app::pricing::PlatformFee,
    /// Readiness and metrics of this process.
    pub ops: std::sync::Arc<crate::ops::Operations>,
    /// Where links in mail point.
    pub public_url: app::services::mail::PublicUrl,
    /// Whether mail stays in the local outbox (no SMTP server configured), which the
    /// developer page then shows to visitors from this machine.
    pub mail_outbox: bool,
    /// This process's lease, named by the keyed requests it runs.
    pub lease: app::services::lease::Lease,
    /// The replica anonymous market browsing reads from while it is fresh, if configured.
    pub replica: Option<app::services::replica::ReadReplica>,
}

/// How the doors are kept: session cookies, whom to believe about client addresses, how
/// much each API key may ask, and where webhooks may point.
#[derive(Clone, Copy, Debug)]
pub struct Security {
    pub cookies: CookiePolicy,
    pub trust_proxy: bool,
    /// Requests per API key per minute.
    pub api_rate_per_minute: u32,
    /// Webhooks may use plain http:// and private or loopback addresses (development, tests).
    pub allow_private_webhooks: bool,
}

impl Default for Security {
    fn default() -> Self {
        Self {
            cookies: CookiePolicy::default(),
            trust_proxy: false,
            api_rate_per_minute: 600,
            allow_private_webhooks: false,
        }
    }
}

impl Security {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            cookies: CookiePolicy {
                secure: config.secure_cookies,
                ..Default::default()
            },
            trust_proxy: config.trust_proxy,
            api_rate_per_minute: config.api_rate_per_minute,
            allow_private_webhooks: config.allow_private_webhooks,
        }
    }
}
