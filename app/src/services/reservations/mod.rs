//! One home for a reservation: booking it ([`book`]), reading it in one shape ([`read`]),
//! the customer's changes ([`change`]) and the re-allocation primitives later use cases
//! compose ([`reallocation`]: moving unit-hours, ending them early, crediting).

mod book;
mod change;
mod read;
pub mod reallocation;
mod together;

pub use book::{hold, quote, reserve, reserve_once};
pub use change::{cancel, cancel_preview, confirm, extend};
pub use read::{credits, detail, get, holdings, list};

/// One of the customer's reservations, read in the caller's transaction.
pub async fn get_in(
    conn: &mut sqlx::PgConnection,
    customer_id: i64,
    id: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<crate::booking::Reservation, ServiceError> {
    read::one(conn, customer_id, id, now).await
}

/// Locks one of the customer's reservations for a change made elsewhere (a resale listing):
/// the same lock cancellation and extension take.
pub async fn lock_for_change(
    conn: &mut sqlx::PgConnection,
    customer_id: i64,
    id: i64,
) -> Result<(), ServiceError> {
    read::lock(conn, customer_id, id).await
}

use crate::services::error::{self, ServiceError};
use sqlx::PgPool;

/// Releases every hold past its time; what each server process runs every few seconds.
/// Returns how many it released.
pub async fn release_expired_holds(db: &PgPool) -> Result<i64, ServiceError> {
    let mut conn = db.acquire().await?;
    Ok(crate::services::settlement::release_expired_holds(&mut conn, None).await?)
}

/// A retry follows another transaction's commit on the same units, or a lock wait that ran
/// out its bound (`settlement::EXACT_LOCK_WAIT`, which also gives up a lock cycle from the
/// booking's side); the cap bounds the worst case (about three seconds of waiting for one
/// held lock) before answering "conflict".
const MAX_ATTEMPTS: u32 = 16;

/// Runs `attempt` until it does not lose a race (a raw retryable error, see [`raw`]), at
/// most [`MAX_ATTEMPTS`] times; a race lost every time is answered as a conflict.
pub(crate) async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, ServiceError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ServiceError>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Err(ServiceError::Unavailable(e)) if error::is_retryable(&e) => {
                if tries < MAX_ATTEMPTS {
                    continue;
                }
                // Out of retries: a race lost every time is the caller's conflict.
                return Err(ServiceError::from(e));
            }
            other => return other,
        }
    }
}

/// Keeps retryable database errors raw (for the retry loop); `From` would turn them into
/// conflicts straight away.
pub(crate) fn raw(e: sqlx::Error) -> ServiceError {
    if error::is_retryable(&e) {
        ServiceError::Unavailable(e)
    } else {
        ServiceError::from(e)
    }
}
