//! Cursor pagination for every list: `limit` (1–200, default 50) and an opaque `cursor`;
//! each page says where the next one starts (`next_cursor`, absent on the last page).
//! Cursors hold a position in a list ordered by id, so rows inserted meanwhile never shift
//! or repeat the pages that follow.

use app::services::error::ServiceError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// How many items to return (1 to 200; default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// Where to continue: the `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    pub fn limit(&self) -> Result<i64, ServiceError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(ServiceError::invalid(
                "limit",
                format!("limit is between 1 and {MAX_LIMIT}"),
            )),
        }
    }

    /// The id the page continues from (exclusive), if any.
    pub fn position(&self) -> Result<Option<i64>, ServiceError> {
        self.cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(decode)
            .transpose()
    }
}

/// The cursor for position `id` (an id, or a rank for ranked lists).
pub fn encode(id: i64) -> String {
    hex::encode(format!("c1:{id}"))
}

/// The position a cursor holds; a cursor we did not give out is a 422.
pub fn decode(cursor: &str) -> Result<i64, ServiceError> {
    hex::decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("c1:").and_then(|n| n.parse::<i64>().ok()))
        .filter(|id| *id >= 0)
        .ok_or_else(|| {
            ServiceError::invalid(
                "cursor",
                "this cursor is not one we gave out; pass the `next_cursor` of a previous page, or omit it to start over",
            )
        })
}

/// Trims a fetch of `limit + 1` items to the page and the cursor of the next one.
pub fn split<T>(mut items: Vec<T>, limit: i64, id: impl Fn(&T) -> i64) -> (Vec<T>, Option<String>) {
    let limit = usize::try_from(limit).unwrap_or(0);
    if items.len() > limit {
        items.truncate(limit);
        let next = items.last().map(|last| encode(id(last)));
        (items, next)
    } else {
        (items, None)
    }
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn of(items: Vec<T>, limit: i64, id: impl Fn(&T) -> i64) -> Self {
        let (data, next_cursor) = split(items, limit, id);
        Self { data, next_cursor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_refused() {
        assert_eq!(decode(&encode(42)).unwrap(), 42);
        assert!(decode("zz").is_err());
        assert!(decode(&hex::encode("c1:-5")).is_err());
        let (page, next) = split(vec![9, 8, 7], 2, |x| *x);
        assert_eq!(page, vec![9, 8]);
        assert_eq!(decode(&next.unwrap()).unwrap(), 8);
        assert_eq!(split(vec![1], 2, |x| *x).1, None);
    }
}
