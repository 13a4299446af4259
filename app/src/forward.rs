//! Forward capacity (the bridge): a pool on a site still being built is sold ahead of its
//! delivery on terms that say when it comes, what each day late pays, and when a customer
//! still waiting may walk away with a full refund. Shared with the browser; PostgreSQL keeps
//! the rules (migration `forward_pools`): a building site's pool without these terms cannot
//! be booked by any door, and a forward booking cannot start before the delivery.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The furthest a committed delivery may lie ahead of the day it is promised.
pub const MAX_DELIVERY_DAYS_AHEAD: i64 = 3 * 365;
/// The longest wait between the committed delivery and the walk-away date.
pub const MAX_WALK_AWAY_DAYS: i64 = 365;

/// Why a pool on a site still being built, without forward terms, cannot be booked.
pub const NOT_SOLD_BEFORE_DELIVERY: &str = "this pool's site is still being built and the pool sells no forward capacity; it can be booked once the site is live";

/// A forward pool's terms, locked into each reservation when it is booked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ForwardTerms {
    /// The committed delivery: the first hour a forward reservation may start (a whole hour).
    pub delivery_at: DateTime<Utc>,
    /// What each full day past the committed delivery credits the customer.
    pub late_credit: LateCredit,
    /// From this time a customer whose capacity has not been delivered may cancel with a
    /// full refund (after the delivery).
    pub walk_away_at: DateTime<Utc>,
}

/// The credit for each full day a delivery is late.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LateCredit {
    /// A share of the contract's total per day, in basis points (100 = 1%).
    Share { bp_per_day: i64 },
    /// A fixed amount per unit (node or block) per day, in the pool's currency's cents.
    PerUnitDay { cents: i64 },
}

impl LateCredit {
    /// The credit for one day late on a contract of `units` units totalling `total_cents`.
    /// A share rounds down to the cent, so a day never pays more than it says.
    pub fn per_day_cents(&self, total_cents: i64, units: i64) -> i64 {
        match *self {
            Self::Share { bp_per_day } => total_cents.saturating_mul(bp_per_day) / 10_000,
            Self::PerUnitDay { cents } => cents.saturating_mul(units),
        }
    }

    /// In plain words: "1% of the contract" or "$25.00 per unit".
    pub fn describe(&self, currency: &str) -> String {
        match *self {
            Self::Share { bp_per_day } => {
                format!("{} of the contract", crate::incidents::percent(bp_per_day))
            }
            Self::PerUnitDay { cents } => {
                format!("{} per unit", crate::money::format_cents(cents, currency))
            }
        }
    }

    /// The columns the database keeps: (`late_credit_bp`, `late_credit_cents_per_unit_day`).
    pub fn to_columns(&self) -> (Option<i32>, Option<i64>) {
        match *self {
            Self::Share { bp_per_day } => (Some(bp_per_day as i32), None),
            Self::PerUnitDay { cents } => (None, Some(cents)),
        }
    }

    /// From the columns; `None` unless exactly one is set.
    pub fn from_columns(bp: Option<i32>, cents: Option<i64>) -> Option<Self> {
        match (bp, cents) {
            (Some(bp), None) => Some(Self::Share {
                bp_per_day: i64::from(bp),
            }),
            (None, Some(cents)) => Some(Self::PerUnitDay { cents }),
            _ => None,
        }
    }
}

impl ForwardTerms {
    /// The terms from a pool's or a reservation's columns; `None` for capacity sold as ready.
    pub fn from_columns(
        delivery_at: Option<DateTime<Utc>>,
        late_credit_bp: Option<i32>,
        late_credit_cents: Option<i64>,
        walk_away_at: Option<DateTime<Utc>>,
    ) -> Option<Self> {
        Some(Self {
            delivery_at: delivery_at?,
            late_credit: LateCredit::from_columns(late_credit_bp, late_credit_cents)?,
            walk_away_at: walk_away_at?,
        })
    }

    /// A delivery promised (or moved) at `now`: in the future, at most
    /// [`MAX_DELIVERY_DAYS_AHEAD`] days ahead. Terms already promised keep their date when it
    /// passes (the site is late), so only a new or changed date is checked.
    pub fn check_new_delivery(&self, now: DateTime<Utc>) -> Result<(), (&'static str, String)> {
        if self.delivery_at <= now {
            return Err((
                "delivery_at",
                "the committed delivery is in the future; a site that is ready is marked live"
                    .into(),
            ));
        }
        if self.delivery_at > now + chrono::Duration::days(MAX_DELIVERY_DAYS_AHEAD) {
            return Err((
                "delivery_at",
                format!("the delivery is at most {MAX_DELIVERY_DAYS_AHEAD} days ahead"),
            ));
        }
        Ok(())
    }

    /// What the database's `capacity_pool_forward_terms` keeps, said for the person who typed
    /// it as (field, message).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !crate::window::is_whole_hour(self.delivery_at) {
            return Err((
                "delivery_at",
                "the delivery is a whole hour (minutes and seconds zero, UTC)".into(),
            ));
        }
        // Checked: a date near the end of the calendar must be refused, not overflow.
        let latest = self
            .delivery_at
            .checked_add_signed(chrono::Duration::days(MAX_WALK_AWAY_DAYS));
        if self.walk_away_at <= self.delivery_at || latest.is_none_or(|l| self.walk_away_at > l) {
            return Err((
                "walk_away_at",
                format!(
                    "the walk-away date is after the delivery, at most {MAX_WALK_AWAY_DAYS} days after it"
                ),
            ));
        }
        match self.late_credit {
            LateCredit::Share { bp_per_day } if !(1..=10_000).contains(&bp_per_day) => Err((
                "late_credit",
                "a daily share of the contract from 0.01% to 100%".into(),
            )),
            LateCredit::PerUnitDay { cents } if !(1..=100_000_000).contains(&cents) => Err((
                "late_credit",
                "a positive amount per unit per day, at most $1,000,000".into(),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 3, d, h, 0, 0).unwrap()
    }

    fn terms() -> ForwardTerms {
        ForwardTerms {
            delivery_at: at(1, 0),
            late_credit: LateCredit::Share { bp_per_day: 100 },
            walk_away_at: at(31, 0),
        }
    }

    #[test]
    fn a_day_late_pays_its_share_or_its_amount_per_unit() {
        let share = LateCredit::Share { bp_per_day: 150 };
        assert_eq!(share.per_day_cents(1_000_001, 4), 15_000);
        let fixed = LateCredit::PerUnitDay { cents: 2_500 };
        assert_eq!(fixed.per_day_cents(1_000_001, 4), 10_000);
        assert_eq!(share.describe("USD"), "1.5% of the contract");
        assert_eq!(fixed.describe("USD"), "$25.00 per unit");
    }

    #[test]
    fn terms_are_checked_field_by_field() {
        let now = at(1, 0) - chrono::Duration::days(30);
        assert_eq!(terms().check(), Ok(()));
        assert_eq!(terms().check_new_delivery(now), Ok(()));
        let mut t = terms();
        t.delivery_at += chrono::Duration::minutes(30);
        assert_eq!(t.check().unwrap_err().0, "delivery_at");
        assert_eq!(
            terms().check_new_delivery(at(2, 0)).unwrap_err().0,
            "delivery_at"
        );
        assert_eq!(
            terms()
                .check_new_delivery(now - chrono::Duration::days(4 * 365))
                .unwrap_err()
                .0,
            "delivery_at"
        );
        let mut t = terms();
        t.walk_away_at = t.delivery_at;
        assert_eq!(t.check().unwrap_err().0, "walk_away_at");
        let mut t = terms();
        t.delivery_at = Utc.with_ymd_and_hms(262_142, 6, 1, 0, 0, 0).unwrap();
        t.walk_away_at = t.delivery_at + chrono::Duration::days(1);
        assert_eq!(t.check().unwrap_err().0, "walk_away_at");
        let mut t = terms();
        t.late_credit = LateCredit::Share { bp_per_day: 0 };
        assert_eq!(t.check().unwrap_err().0, "late_credit");
        let mut t = terms();
        t.late_credit = LateCredit::PerUnitDay { cents: -1 };
        assert_eq!(t.check().unwrap_err().0, "late_credit");
    }

    #[test]
    fn columns_round_trip_and_half_terms_are_none() {
        let t = terms();
        let (bp, cents) = t.late_credit.to_columns();
        assert_eq!(
            ForwardTerms::from_columns(Some(t.delivery_at), bp, cents, Some(t.walk_away_at)),
            Some(t)
        );
        assert_eq!(
            ForwardTerms::from_columns(Some(t.delivery_at), None, None, Some(t.walk_away_at)),
            None
        );
        assert_eq!(ForwardTerms::from_columns(None, bp, cents, None), None);
    }
}
