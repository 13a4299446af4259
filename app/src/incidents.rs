//! Incidents, healing, SLA terms and reliability as every front door shows them (shared
//! with the browser). The rules are in PostgreSQL (migration `incidents`); the use cases in
//! `services::incidents`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How far back an incident may start: a node found down after a weekend is still recorded.
pub const MAX_HOURS_BACK: i64 = 72;
/// How long a customer has to answer an offer at another site, at most.
pub const OFFER_HOURS: i64 = 24;

/// Units of a pool that went down, and what Rigshift did about the reservations on them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Incident {
    pub id: i64,
    pub pool_id: i64,
    pub pool_name: String,
    pub site_id: i64,
    pub site_name: String,
    /// What the operator said went wrong.
    pub cause: String,
    /// The unit numbers (1 to the pool's unit count) that are down.
    pub units: Vec<i64>,
    pub started_at: DateTime<Utc>,
    /// The end the operator gave, if any.
    pub ends_at: Option<DateTime<Utc>>,
    /// `open` or `resolved`.
    pub state: String,
    pub resolved_at: Option<DateTime<Utc>>,
    /// The units are out of sale until this hour (so far, while open without an end).
    pub out_of_sale_until: DateTime<Utc>,
    /// Unit-hours of reservations moved to a spare unit.
    pub moved_unit_hours: i64,
    /// Unit-hours of reservations that could not be moved (past, or no spare).
    pub lost_unit_hours: i64,
    /// Credits posted for them, SLA credits included, in the pool's currency.
    pub credited_cents: i64,
    pub currency: String,
    /// Offers of capacity at another site made to customers without a spare.
    pub offers: i64,
    pub created_at: DateTime<Utc>,
}

impl Incident {
    pub fn is_open(&self) -> bool {
        self.state == "open"
    }
}

/// What an incident did to one piece of a reservation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct IncidentHit {
    pub incident_id: i64,
    pub reservation_id: i64,
    /// The unit number that went down.
    pub unit: i64,
    /// `moved` (to `to_unit`), `lost` (cut and credited) or `released` (a hold let go).
    pub outcome: String,
    pub to_unit: Option<i64>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub cause: String,
}

/// An incident with every reservation piece it hit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct IncidentDetail {
    pub incident: Incident,
    pub hits: Vec<IncidentHit>,
}

/// Equivalent capacity at another of the operator's sites, offered at the price paid when
/// the pool had no spare. The credit for the lost hours stands whatever the answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct IncidentOffer {
    pub id: i64,
    pub incident_id: i64,
    /// The reservation that lost the hours.
    pub reservation_id: i64,
    pub pool_id: i64,
    pub pool_name: String,
    pub site_name: String,
    pub units: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub currency: String,
    /// The price for all of it; accepting later books the hours still ahead, pro rata.
    pub total_cents: i64,
    pub expires_at: DateTime<Utc>,
    /// `open`, `accepted`, `declined` or `expired`.
    pub state: String,
    pub accepted_reservation_id: Option<i64>,
}

/// A pool's service level: the share of each month's unit-hours it promises to deliver, and
/// the credit tiers when it does not (the deepest tier reached pays).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SlaTerms {
    /// The monthly availability promise, in basis points (9950 = 99.5%).
    pub promise_bp: i64,
    pub tiers: Vec<SlaTier>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SlaTier {
    /// Applies when the month's delivered share is under this, in basis points.
    pub below_bp: i64,
    /// The credit, in basis points of the month's charge.
    pub credit_bp: i64,
}

/// Basis points as a percentage for people: 9950 → "99.5%", 10000 → "100%".
pub fn percent(bp: i64) -> String {
    let whole = bp / 100;
    let frac = bp % 100;
    if frac == 0 {
        format!("{whole}%")
    } else if frac % 10 == 0 {
        format!("{whole}.{}%", frac / 10)
    } else {
        format!("{whole}.{frac:02}%")
    }
}

impl SlaTerms {
    /// The terms from a pool's columns (`sla_promise_bp`, `sla_below_bp`, `sla_credit_bp`).
    pub fn from_columns(promise_bp: i32, below_bp: &[i32], credit_bp: &[i32]) -> Self {
        Self {
            promise_bp: i64::from(promise_bp),
            tiers: below_bp
                .iter()
                .zip(credit_bp)
                .map(|(b, c)| SlaTier {
                    below_bp: i64::from(*b),
                    credit_bp: i64::from(*c),
                })
                .collect(),
        }
    }

    /// The columns of these terms, as the database takes them.
    pub fn to_columns(&self) -> (i32, Vec<i32>, Vec<i32>) {
        (
            self.promise_bp as i32,
            self.tiers.iter().map(|t| t.below_bp as i32).collect(),
            self.tiers.iter().map(|t| t.credit_bp as i32).collect(),
        )
    }
}

/// Basis points as a bare number of percent: 9950 → "99.5".
pub fn plain_percent(bp: i64) -> String {
    percent(bp).trim_end_matches('%').to_string()
}

impl SlaTerms {
    /// What the database's `sla_terms_valid` keeps, said for the person who typed it: a
    /// promise of 50% to 100%, one to five tiers from the promise down, each deeper one
    /// paying more.
    pub fn check(&self) -> Result<(), String> {
        if !(5_000..=10_000).contains(&self.promise_bp) {
            return Err("the availability promise is between 50% and 100%".into());
        }
        if self.tiers.is_empty() || self.tiers.len() > 5 {
            return Err("give one to five credit tiers".into());
        }
        if self.tiers[0].below_bp > self.promise_bp {
            return Err("the first credit tier starts at the promise or below it".into());
        }
        for (k, t) in self.tiers.iter().enumerate() {
            if !(1..=10_000).contains(&t.below_bp) || !(1..=10_000).contains(&t.credit_bp) {
                return Err("each tier is a share under 100% and a credit of 0.01% to 100%".into());
            }
            if k > 0
                && (t.below_bp >= self.tiers[k - 1].below_bp
                    || t.credit_bp <= self.tiers[k - 1].credit_bp)
            {
                return Err("list the tiers from the promise down, each deeper one paying more, e.g. 99.5:10, 99:25, 95:50".into());
            }
        }
        Ok(())
    }

    /// The tiers as the pool form writes them: `99.5:10, 99:25, 95:50`.
    pub fn tiers_text(&self) -> String {
        self.tiers
            .iter()
            .map(|t| {
                format!(
                    "{}:{}",
                    plain_percent(t.below_bp),
                    plain_percent(t.credit_bp)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The terms in one sentence, e.g. "99.5% of each month's unit-hours delivered; under
    /// it, 10% of the month's charge back; under 99%, 25%; under 95%, 50%. ..."
    pub fn describe(&self) -> String {
        let tiers = self
            .tiers
            .iter()
            .enumerate()
            .map(|(k, t)| {
                if k == 0 && t.below_bp == self.promise_bp {
                    format!(
                        "under it, {} of the month's charge back",
                        percent(t.credit_bp)
                    )
                } else {
                    format!("under {}, {}", percent(t.below_bp), percent(t.credit_bp))
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        format!(
            "{} of each month's unit-hours delivered; {tiers}. Hours lost to an incident and not moved to a spare are credited automatically at the price paid, with the tier's credit on top when the month falls under the promise.",
            percent(self.promise_bp)
        )
    }
}

/// A pool's record: the share of the unit-hours it sold over the last 90 days that it
/// delivered (hours moved to a spare count as delivered).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Reliability {
    pub sold_unit_hours: i64,
    pub lost_unit_hours: i64,
}

impl Reliability {
    /// The delivered share in basis points, rounded down; `None` with nothing sold yet.
    pub fn share_bp(&self) -> Option<i64> {
        (self.sold_unit_hours > 0).then(|| {
            (self.sold_unit_hours - self.lost_unit_hours).max(0) * 10_000 / self.sold_unit_hours
        })
    }

    pub fn label(&self) -> String {
        match self.share_bp() {
            Some(bp) => percent(bp),
            None => "no history yet".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_read_as_people_write_them() {
        assert_eq!(percent(9950), "99.5%");
        assert_eq!(percent(10_000), "100%");
        assert_eq!(percent(9999), "99.99%");
        assert_eq!(percent(1000), "10%");
    }

    #[test]
    fn a_pool_without_sales_has_no_score_rather_than_a_perfect_one() {
        let new = Reliability {
            sold_unit_hours: 0,
            lost_unit_hours: 0,
        };
        assert_eq!(new.share_bp(), None);
        assert_eq!(new.label(), "no history yet");
        let r = Reliability {
            sold_unit_hours: 1000,
            lost_unit_hours: 3,
        };
        assert_eq!(r.share_bp(), Some(9970));
        assert_eq!(r.label(), "99.7%");
    }

    #[test]
    fn terms_are_checked_as_the_database_checks_them_and_written_back_as_typed() {
        let tier = |below_bp, credit_bp| SlaTier {
            below_bp,
            credit_bp,
        };
        let ok = SlaTerms {
            promise_bp: 9950,
            tiers: vec![tier(9950, 1000), tier(9900, 2500), tier(9500, 5000)],
        };
        assert_eq!(ok.check(), Ok(()));
        assert_eq!(ok.tiers_text(), "99.5:10, 99:25, 95:50");
        let (p, b, c) = ok.to_columns();
        assert_eq!(SlaTerms::from_columns(p, &b, &c), ok);
        let deeper_pays_less = SlaTerms {
            promise_bp: 9950,
            tiers: vec![tier(9950, 1000), tier(9500, 500)],
        };
        assert!(deeper_pays_less.check().is_err());
        let above_promise = SlaTerms {
            promise_bp: 9900,
            tiers: vec![tier(9950, 1000)],
        };
        assert!(above_promise.check().is_err());
        let none = SlaTerms {
            promise_bp: 9900,
            tiers: vec![],
        };
        assert!(none.check().is_err());
    }

    #[test]
    fn the_default_terms_read_in_one_sentence() {
        let t = SlaTerms {
            promise_bp: 9950,
            tiers: vec![
                SlaTier {
                    below_bp: 9950,
                    credit_bp: 1000,
                },
                SlaTier {
                    below_bp: 9900,
                    credit_bp: 2500,
                },
            ],
        };
        assert!(t.describe().starts_with(
            "99.5% of each month's unit-hours delivered; under it, 10% of the month's charge back; under 99%, 25%."
        ));
    }
}
