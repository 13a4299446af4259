//! What an operator sees of its own business (shared with the browser): its sites, its
//! blackouts and the bookings customers made on its capacity.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct OperatorSite {
    pub id: i64,
    pub name: String,
    pub country: String,
    pub region: String,
    pub grid_region: String,
    pub energy_source: String,
    pub interconnect_kw: i64,
    pub pue: f64,
    pub status: String,
    pub pools: i64,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct OperatorBlackout {
    pub id: i64,
    pub site_id: i64,
    pub pool_id: i64,
    pub pool_name: String,
    pub units: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub reason: String,
}

/// A reservation on the operator's capacity: who, what, when, and the price locked in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Booking {
    pub id: i64,
    pub site_id: i64,
    pub pool_id: i64,
    pub pool_name: String,
    pub customer_name: String,
    pub units: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub state: String,
    pub currency: String,
    pub total_cents: i64,
    pub created_at: DateTime<Utc>,
}

/// One of the operator's pools, as its admin pages list it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorPool {
    pub id: i64,
    pub site_id: i64,
    pub site_name: String,
    pub name: String,
    /// `gpu` or `power`.
    pub kind: String,
    /// e.g. "8 × H100 SXM · 80 GB · infiniband · 10,200 W/node" or "500 kW · 2N · liquid".
    pub spec: String,
    pub unit_count: i64,
    pub price_cents: i64,
    pub currency: String,
    pub min_term_hours: i64,
    pub max_term_hours: i64,
    pub min_lead_hours: i64,
    /// The end of the last availability window, if the pool has one.
    pub open_until: Option<DateTime<Utc>>,
}

impl OperatorPool {
    pub fn price_unit(&self) -> &'static str {
        if self.kind == "gpu" {
            "per GPU-hour"
        } else {
            "per kW-month"
        }
    }
}

/// The states a booking is shown in: `held` and `confirmed` as stored, and a confirmed
/// booking is `active` while it runs and `completed` after.
pub const BOOKING_STATES: [&str; 5] = ["held", "confirmed", "active", "completed", "cancelled"];

/// Which of the operator's bookings to list (every field optional).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingFilter {
    pub site_id: Option<i64>,
    pub pool_id: Option<i64>,
    pub state: Option<String>,
    /// Bookings that end after this moment.
    pub from: Option<DateTime<Utc>>,
    /// Bookings that start before this moment.
    pub to: Option<DateTime<Utc>>,
}

impl BookingFilter {
    /// From the bookings form as typed: ids, a state, and days as `YYYY-MM-DD` (UTC; `to`
    /// includes its whole day). Blank fields filter nothing.
    pub fn parse(
        site: &str,
        pool: &str,
        state: &str,
        from: &str,
        to: &str,
    ) -> Result<Self, String> {
        let id = |s: &str, what: &str| -> Result<Option<i64>, String> {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            s.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .map(Some)
                .ok_or_else(|| format!("{what} is not one of your {what}s; pick it from the list"))
        };
        let day = |s: &str, what: &str| -> Result<Option<DateTime<Utc>>, String> {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            crate::request::parse_start(&format!("{s}T00:00"))
                .map(Some)
                .map_err(|_| format!("give the {what} date as YYYY-MM-DD, e.g. 2026-12-01"))
        };
        let state = state.trim();
        if !state.is_empty() && !BOOKING_STATES.contains(&state) {
            return Err(format!("the state is one of {}", BOOKING_STATES.join(", ")));
        }
        let filter = Self {
            site_id: id(site, "site")?,
            pool_id: id(pool, "pool")?,
            state: (!state.is_empty()).then(|| state.to_string()),
            from: day(from, "from")?,
            to: day(to, "to")?.map(|t| t + chrono::Duration::days(1)),
        };
        if let (Some(f), Some(t)) = (filter.from, filter.to) {
            if t <= f {
                return Err("the to date comes before the from date".into());
            }
        }
        Ok(filter)
    }
}

/// What the filtered bookings add up to (cancelled ones excluded from the money).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingTotals {
    pub bookings: i64,
    pub unit_hours: i64,
    pub total_cents: i64,
    pub currency: String,
}

/// Bookings as CSV, a header line then one line per booking (times in UTC, RFC 3339).
pub fn bookings_csv(bookings: &[Booking]) -> String {
    let mut out = String::from(
        "id,site_id,pool_id,pool,customer,units,start,end,state,currency,total_cents\n",
    );
    for b in bookings {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{}\n",
            b.id,
            b.site_id,
            b.pool_id,
            crate::ledger::csv_field(&b.pool_name),
            crate::ledger::csv_field(&b.customer_name),
            b.units,
            b.start.to_rfc3339(),
            b.end.to_rfc3339(),
            b.state,
            b.currency,
            b.total_cents
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_filter_reads_the_form_and_names_what_is_wrong() {
        let f = BookingFilter::parse("3", "", "active", "2026-12-01", "2026-12-31").unwrap();
        assert_eq!(f.site_id, Some(3));
        assert_eq!(f.pool_id, None);
        assert_eq!(f.state.as_deref(), Some("active"));
        assert_eq!(
            f.from,
            Some(Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap())
        );
        // `to` includes its whole day.
        assert_eq!(
            f.to,
            Some(Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap())
        );
        assert_eq!(
            BookingFilter::parse("", "", "", "", "").unwrap(),
            BookingFilter::default()
        );
        assert!(BookingFilter::parse("x", "", "", "", "")
            .unwrap_err()
            .contains("site"));
        assert!(BookingFilter::parse("", "", "lost", "", "")
            .unwrap_err()
            .contains("held, confirmed"));
        assert!(BookingFilter::parse("", "", "", "12/01/2026", "")
            .unwrap_err()
            .contains("YYYY-MM-DD"));
        assert!(BookingFilter::parse("", "", "", "2026-12-05", "2026-12-01")
            .unwrap_err()
            .contains("before"));
    }

    #[test]
    fn csv_quotes_names_with_commas() {
        let t = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
        let b = Booking {
            id: 7,
            site_id: 1,
            pool_id: 2,
            pool_name: "H100, hall A".into(),
            customer_name: "Helix Labs".into(),
            units: 2,
            start: t,
            end: t + chrono::Duration::hours(24),
            state: "confirmed".into(),
            currency: "USD".into(),
            total_cents: 12_345,
            created_at: t,
        };
        let csv = bookings_csv(&[b]);
        assert_eq!(
            csv.lines().nth(1).unwrap(),
            "7,1,2,\"H100, hall A\",Helix Labs,2,2026-12-01T09:00:00+00:00,2026-12-02T09:00:00+00:00,confirmed,USD,12345"
        );
    }
}
