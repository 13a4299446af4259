//! Forward capacity after the sale: the credits a late delivery owes. The rule is
//! PostgreSQL's (`forward_late_credits`, migration `forward_pools`): one credit per
//! reservation per full day past its committed delivery, until the site is delivered or the
//! contract ends, posted in the ledger like every credit.

use super::error::ServiceError;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// Posts every late-delivery credit owed as of `now`; returns how many it posted. Every
/// server process runs it: reservations are taken `skip locked` and each day is unique, so a
/// day is credited once whichever process gets there.
pub async fn post_late_credits(db: &PgPool, now: DateTime<Utc>) -> Result<i64, ServiceError> {
    let posted = sqlx::query_scalar!(r#"select forward_late_credits($1) as "n!""#, now)
        .fetch_one(db)
        .await?;
    Ok(posted)
}
