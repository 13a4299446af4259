//! One home for a reservation: booking it ([`book`]), reading it in one shape ([`read`]),
//! the customer's changes ([`change`]) and the re-allocation primitives later use cases
//! compose ([`reallocation`]: moving unit-hours, ending them early, crediting).

mod book;
mod change;
mod read;
pub mod reallocation;

pub use book::{quote, reserve, reserve_once};
pub use change::{cancel, cancel_preview, extend};
pub use read::{credits, detail, get, holdings, list};

use crate::services::error::{self, ServiceError};

/// Each retry follows another transaction's commit on the same units, so retries always
/// make progress; the cap only bounds the worst case before answering "conflict".
const MAX_ATTEMPTS: u32 = 16;

/// Keeps retryable database errors raw (for the retry loop); `From` would turn them into
/// conflicts straight away.
fn raw(e: sqlx::Error) -> ServiceError {
    if error::is_retryable(&e) {
        ServiceError::Unavailable(e)
    } else {
        ServiceError::from(e)
    }
}
