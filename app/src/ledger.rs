//! What the ledger tells each side: a customer's monthly statement, an operator's earnings,
//! the platform's fee revenue and its reconciliation. The books themselves (accounts,
//! transactions, entries that sum to zero) live in PostgreSQL; see the ledger migration.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// A calendar month in UTC, written `2026-11`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

impl Month {
    pub fn of(t: DateTime<Utc>) -> Self {
        Self {
            year: t.year(),
            month: t.month(),
        }
    }

    /// `2026-11`, or a message saying how to write a month.
    pub fn parse(s: &str) -> Result<Self, String> {
        let problem = || {
            format!(
                "give the month as YYYY-MM, e.g. 2026-11 (got \"{}\")",
                s.trim()
            )
        };
        let (y, m) = s.trim().split_once('-').ok_or_else(problem)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(problem());
        }
        let year: i32 = y.parse().map_err(|_| problem())?;
        let month: u32 = m.parse().map_err(|_| problem())?;
        if !(2000..=2999).contains(&year) || !(1..=12).contains(&month) {
            return Err(problem());
        }
        Ok(Self { year, month })
    }

    /// The first instant of the month.
    pub fn start(self) -> DateTime<Utc> {
        let day = NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or_default();
        Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default())
    }

    pub fn next(self) -> Self {
        if self.month == 12 {
            Self {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Self {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    pub fn previous(self) -> Self {
        if self.month == 1 {
            Self {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Self {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    /// `November 2026`.
    pub fn label(self) -> String {
        const NAMES: [&str; 12] = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ];
        format!(
            "{} {}",
            NAMES[(self.month.clamp(1, 12) - 1) as usize],
            self.year
        )
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// One posting on a customer's account: positive adds to what the customer owes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct StatementLine {
    pub transaction_id: i64,
    /// `charge`, `extension`, `refund`, `credit` or `resale` (positive: bought on resale;
    /// negative: the proceeds of a sale, after the platform's fee).
    pub kind: String,
    pub effective_at: DateTime<Utc>,
    pub reservation_id: Option<i64>,
    pub pool_name: Option<String>,
    pub memo: String,
    pub amount_cents: i64,
}

/// A customer's month: what it owed at the start, what was charged, refunded and credited
/// (hours not delivered), what its resales brought in, what it owes at the end. Amounts in integer cents of `currency`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Statement {
    /// `2026-11`.
    pub month: String,
    pub currency: String,
    pub opening_cents: i64,
    pub charges_cents: i64,
    pub refunds_cents: i64,
    pub credits_cents: i64,
    /// Proceeds of its resales (sale prices less the platform's fee).
    pub resale_cents: i64,
    pub closing_cents: i64,
    pub lines: Vec<StatementLine>,
}

/// One site's month for its operator: money earned (after the platform's fee), the fee the
/// platform kept, and what is booked on it but not yet earned (pending, by the reservations'
/// ends in that month).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EarningsRow {
    pub site_id: i64,
    pub site_name: String,
    /// `2026-11`.
    pub month: String,
    pub earned_cents: i64,
    pub fees_cents: i64,
    pub pending_cents: i64,
}

/// A payout recorded to an operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Payout {
    pub transaction_id: i64,
    pub paid_at: DateTime<Utc>,
    pub amount_cents: i64,
    pub reference: String,
}

/// An operator's money: what the platform owes it now, what is still to be earned, the
/// history per site and month, and the payouts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Earnings {
    pub currency: String,
    pub payable_cents: i64,
    pub pending_cents: i64,
    pub earned_cents: i64,
    pub fees_cents: i64,
    pub paid_out_cents: i64,
    pub rows: Vec<EarningsRow>,
    pub payouts: Vec<Payout>,
}

/// A reservation whose postings differ from what its row and its pool's policy say.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub reservation_id: i64,
    /// Which amount differs: `charged`, `refunded`, `operator`, `fee` or `unearned` (in
    /// cents), or `interrupted unit-hours credited` (unit-hours taken by preemptions and
    /// grid events, against the unit-hours their credits pay for).
    pub what: String,
    pub expected_cents: i64,
    pub actual_cents: i64,
}

/// What the platform administrator sees: fee revenue by month, each platform account's
/// balance, what it owes operators, and the reconciliation of the books with the
/// reservations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformBooks {
    pub currency: String,
    pub fee_revenue_by_month: Vec<(String, i64)>,
    pub unearned_cents: i64,
    pub fee_revenue_cents: i64,
    pub receivable_cents: i64,
    pub payable_cents: i64,
    pub paid_out_cents: i64,
    pub operators: Vec<OperatorBalance>,
    pub reconciliation: Reconciliation,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorBalance {
    pub organization_id: i64,
    pub name: String,
    pub payable_cents: i64,
}

/// The result of recomputing every reservation's postings from its row.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciliation {
    pub reservations_checked: i64,
    /// Ended confirmed reservations the completion job has not reached yet (not an error:
    /// it runs every minute and catches up after downtime).
    pub awaiting_recognition: i64,
    pub differences: Vec<Difference>,
    /// The sum of every entry in the books; zero when they balance.
    pub ledger_sum_cents: i64,
    /// Transactions whose entries do not sum to zero (the database refuses them at commit).
    pub unbalanced_transactions: i64,
}

impl Reconciliation {
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty()
            && self.ledger_sum_cents == 0
            && self.unbalanced_transactions == 0
    }
}

/// A CSV field, quoted when it needs to be; a leading `=`, `+`, `-` or `@` is prefixed
/// with `'` so spreadsheet programs never read a memo as a formula.
pub fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) && s.parse::<f64>().is_err() {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// Cents as a plain decimal for CSV (`-1234` → `-12.34`).
pub fn csv_amount(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:02}",
        cents.unsigned_abs() / 100,
        cents.unsigned_abs() % 100
    )
}

impl Statement {
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "date_utc,transaction,kind,reservation,pool,description,amount,currency\n",
        );
        for l in &self.lines {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{}\n",
                l.effective_at.to_rfc3339(),
                l.transaction_id,
                l.kind,
                l.reservation_id.map(|r| r.to_string()).unwrap_or_default(),
                csv_field(l.pool_name.as_deref().unwrap_or("")),
                csv_field(&l.memo),
                csv_amount(l.amount_cents),
                self.currency
            ));
        }
        out
    }
}

impl Earnings {
    pub fn to_csv(&self) -> String {
        let mut out = String::from("month,site_id,site,earned,fees,pending,currency\n");
        for r in &self.rows {
            out.push_str(&format!(
                "{},{},{},{},{},{},{}\n",
                r.month,
                r.site_id,
                csv_field(&r.site_name),
                csv_amount(r.earned_cents),
                csv_amount(r.fees_cents),
                csv_amount(r.pending_cents),
                self.currency
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_parse_step_and_print() {
        let m = Month::parse("2026-12").unwrap();
        assert_eq!(m.to_string(), "2026-12");
        assert_eq!(m.next().to_string(), "2027-01");
        assert_eq!(m.next().previous(), m);
        assert_eq!(
            Month::parse("2026-01").unwrap().previous().to_string(),
            "2025-12"
        );
        assert_eq!(m.label(), "December 2026");
        assert_eq!(m.start().to_rfc3339(), "2026-12-01T00:00:00+00:00");
        for bad in [
            "2026-13", "2026-00", "26-11", "2026/11", "november", "2026-1", "",
        ] {
            assert!(Month::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_field("-12.5"), "-12.5");
        assert_eq!(csv_amount(-1234), "-12.34");
        assert_eq!(csv_amount(5), "0.05");
        assert_eq!(csv_amount(123_456_789), "1234567.89");
    }
}
