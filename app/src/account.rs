//! Accounts as every front door shows them (shared with the browser): organizations,
//! the signed-in person, API keys, and the password rules the browser can check early.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What an organization does on the marketplace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum OrgKind {
    Customer,
    Operator,
    Both,
}

impl OrgKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Operator => "operator",
            Self::Both => "both",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "customer" => Some(Self::Customer),
            "operator" => Some(Self::Operator),
            "both" => Some(Self::Both),
            _ => None,
        }
    }

    /// Lists sites and capacity.
    pub fn operates(self) -> bool {
        matches!(self, Self::Operator | Self::Both)
    }

    /// Reserves capacity.
    pub fn buys(self) -> bool {
        matches!(self, Self::Customer | Self::Both)
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Customer => "Customer",
            Self::Operator => "Site operator",
            Self::Both => "Operator and customer",
        }
    }
}

/// What an API key may do. A browser session may do everything its organization may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read the organization's data and the market.
    Read,
    /// Quote, reserve, cancel and extend reservations.
    Reserve,
    /// Manage sites, pools, availability and blackouts.
    Operate,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Reserve, Scope::Operate];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Reserve => "reserve",
            Self::Operate => "operate",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The person behind a browser session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentUser {
    pub user_id: i64,
    pub email: String,
    pub display_name: String,
    pub organization_id: i64,
    pub organization_name: String,
    pub kind: OrgKind,
    pub platform_admin: bool,
    /// The person opened the link mailed to their address.
    pub email_verified: bool,
    /// The person signs in with a one-time code too.
    pub second_factor: bool,
}

/// An API key as lists show it: never the secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyView {
    pub id: i64,
    pub name: String,
    /// The public part, `rsk_<prefix>`, that identifies the key in lists and logs.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKeyView {
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

/// A key just made: the only time its secret is shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedApiKey {
    pub key: ApiKeyView,
    pub secret: String,
}

/// A person in the caller's organization.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub display_name: String,
    pub email: String,
    /// `owner` or `member`.
    pub role: String,
    pub created_at: DateTime<Utc>,
}

/// An organization as the platform administrator sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgSummary {
    pub id: i64,
    pub name: String,
    pub kind: OrgKind,
    pub users: i64,
    pub sites: i64,
    pub reservations: i64,
    pub created_at: DateTime<Utc>,
    pub suspended_at: Option<DateTime<Utc>>,
}

pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Passwords people pick most often (of the allowed length), lowercase, one a line. The
/// server also scores every new password with zxcvbn (see `services::password::weakness`).
const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

/// Why `password` is refused, or `None` when it is acceptable. `email` is the account's,
/// so a password that is just the email can be refused too.
pub fn password_problem(password: &str, email: &str) -> Option<String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Some(format!(
            "use at least {MIN_PASSWORD_CHARS} characters (this one has {chars}); a few unrelated words make a strong one"
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Some(format!("use at most {MAX_PASSWORD_CHARS} characters"));
    }
    let lower = password.to_lowercase();
    if COMMON_PASSWORDS.lines().any(|p| p.trim() == lower) {
        return Some("this password is one of the most common ones; choose another".into());
    }
    let mut distinct: Vec<char> = lower.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 4 {
        return Some("use more than three different characters".into());
    }
    let local = email.split('@').next().unwrap_or("").to_lowercase();
    if !email.is_empty()
        && (lower == email.to_lowercase() || (local.len() >= 4 && lower.contains(&local)))
    {
        return Some("don't build the password from your email address".into());
    }
    None
}

/// Emails are compared trimmed and lowercase.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A plausible email address: one `@`, something on each side, a dot in the domain.
pub fn email_problem(email: &str) -> Option<&'static str> {
    let email = email.trim();
    if email.is_empty() {
        return Some("enter your email address");
    }
    if email.len() > 254 {
        return Some("an email address has at most 254 characters");
    }
    if email.chars().any(char::is_control) {
        return Some("an email address can't contain control characters");
    }
    match email.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !email.chars().any(char::is_whitespace) =>
        {
            None
        }
        _ => Some("enter an email address like name@example.com"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_common_passwords_are_refused() {
        assert!(password_problem("short", "a@b.co").unwrap().contains("12"));
        assert!(password_problem("password1234", "a@b.co")
            .unwrap()
            .contains("common"));
        assert!(password_problem("PASSWORD1234", "a@b.co")
            .unwrap()
            .contains("common"));
        assert!(password_problem("aaaaaaaaaaaaaaa", "a@b.co").is_some());
        assert!(password_problem("maria.lopez-2026!", "maria.lopez@x.io").is_some());
        assert_eq!(password_problem("copper kettle tundra 7", "a@b.co"), None);
    }

    #[test]
    fn emails_are_checked_and_normalized() {
        assert_eq!(email_problem("ops@site.example"), None);
        assert!(email_problem("no-at-sign").is_some());
        assert!(email_problem("a@b").is_some());
        assert!(email_problem("a b@c.io").is_some());
        assert_eq!(normalize_email("  Ops@Site.Example "), "ops@site.example");
    }

    #[test]
    fn scopes_round_trip() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
        }
        assert_eq!(Scope::parse("admin"), None);
    }
}

/// A message of the local outbox, which the developer page shows when no SMTP server is
/// configured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxMessage {
    pub id: i64,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}
