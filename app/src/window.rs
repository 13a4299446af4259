//! Time windows as the marketplace sells them: `[start, end)` in UTC on an hourly grain,
//! and the terms a pool puts on them. Pure rules, shared by the browser and the server.

use chrono::{DateTime, Duration, DurationRound, Timelike, Utc};
use serde::{Deserialize, Serialize};

/// A non-empty `[start, end)` range whose ends are whole UTC hours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourWindow {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

/// Why a window was refused; each message says how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum WindowError {
    #[error("the start ({0}) must be on a whole hour in UTC, e.g. 14:00")]
    StartNotOnHour(DateTime<Utc>),
    #[error("the end ({0}) must be on a whole hour in UTC, e.g. 18:00")]
    EndNotOnHour(DateTime<Utc>),
    #[error("the end must be after the start")]
    EndNotAfterStart,
}

impl HourWindow {
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, WindowError> {
        if !is_whole_hour(start) {
            return Err(WindowError::StartNotOnHour(start));
        }
        if !is_whole_hour(end) {
            return Err(WindowError::EndNotOnHour(end));
        }
        if end <= start {
            return Err(WindowError::EndNotAfterStart);
        }
        Ok(Self { start, end })
    }

    /// `hours` hours from `start` (which must be on the hour).
    pub fn starting_at(start: DateTime<Utc>, hours: i64) -> Result<Self, WindowError> {
        Self::new(start, start + Duration::hours(hours))
    }

    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }

    pub fn hours(&self) -> i64 {
        (self.end - self.start).num_hours()
    }
}

/// Whether `t` is a whole UTC hour; safe for any time a client may send (the truncation
/// helpers below are for times near now).
pub fn is_whole_hour(t: DateTime<Utc>) -> bool {
    t.minute() == 0 && t.second() == 0 && t.nanosecond() == 0
}

/// The whole UTC hour `t` falls in.
pub fn floor_hour(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::hours(1))
        .expect("hour truncation of a valid time")
}

/// The next whole UTC hour at or after `t`.
pub fn ceil_hour(t: DateTime<Utc>) -> DateTime<Utc> {
    let floor = floor_hour(t);
    if floor == t {
        t
    } else {
        floor + Duration::hours(1)
    }
}

/// The terms a pool sells under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    pub min_term_hours: i64,
    pub max_term_hours: i64,
    pub min_lead_hours: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum TermsError {
    #[error("the term is {hours} hours; this pool sells at least {min} hours")]
    TooShort { hours: i64, min: i64 },
    #[error("the term is {hours} hours; this pool sells at most {max} hours")]
    TooLong { hours: i64, max: i64 },
    #[error("the start must be at least {lead} hours from now (earliest: {earliest})")]
    TooSoon { lead: i64, earliest: DateTime<Utc> },
}

impl Terms {
    /// The earliest start these terms allow at `now`.
    pub fn earliest_start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        ceil_hour(now + Duration::hours(self.min_lead_hours))
    }

    /// Checks a window for sale at `now`.
    pub fn check(&self, w: &HourWindow, now: DateTime<Utc>) -> Result<(), TermsError> {
        let hours = w.hours();
        if hours < self.min_term_hours {
            return Err(TermsError::TooShort {
                hours,
                min: self.min_term_hours,
            });
        }
        if hours > self.max_term_hours {
            return Err(TermsError::TooLong {
                hours,
                max: self.max_term_hours,
            });
        }
        let earliest = self.earliest_start(now);
        if w.start() < earliest {
            return Err(TermsError::TooSoon {
                lead: self.min_lead_hours,
                earliest,
            });
        }
        Ok(())
    }
}

/// What a reservation's state is at a time: the stored state plus the clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ReservationState {
    Held,
    Confirmed,
    Active,
    Completed,
    Cancelled,
}

impl ReservationState {
    /// The state as the database shows it (`reservation_state_at`, the one definition of
    /// how the clock turns a confirmed reservation active and then completed).
    pub fn from_shown(shown: &str) -> Option<Self> {
        Some(match shown {
            "held" => Self::Held,
            "confirmed" => Self::Confirmed,
            "active" => Self::Active,
            "completed" => Self::Completed,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Confirmed => "confirmed",
            Self::Active => "active",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 3, 1, h, m, 0).unwrap()
    }

    #[test]
    fn windows_are_whole_hours_and_non_empty() {
        assert_eq!(HourWindow::new(t(10, 0), t(14, 0)).unwrap().hours(), 4);
        assert_eq!(
            HourWindow::new(t(10, 30), t(14, 0)),
            Err(WindowError::StartNotOnHour(t(10, 30)))
        );
        assert_eq!(
            HourWindow::new(t(10, 0), t(14, 1)),
            Err(WindowError::EndNotOnHour(t(14, 1)))
        );
        assert_eq!(
            HourWindow::new(t(10, 0), t(10, 0)),
            Err(WindowError::EndNotAfterStart)
        );
        assert_eq!(
            HourWindow::new(t(11, 0), t(10, 0)),
            Err(WindowError::EndNotAfterStart)
        );
    }

    #[test]
    fn ceil_hour_rounds_up_only_when_needed() {
        assert_eq!(ceil_hour(t(10, 0)), t(10, 0));
        assert_eq!(ceil_hour(t(10, 1)), t(11, 0));
    }

    #[test]
    fn terms_check_term_length_and_lead_time() {
        let terms = Terms {
            min_term_hours: 24,
            max_term_hours: 48,
            min_lead_hours: 12,
        };
        let now = t(0, 15);
        // Earliest start: 00:15 + 12 h = 12:15 → 13:00.
        assert_eq!(terms.earliest_start(now), t(13, 0));
        let ok = HourWindow::starting_at(t(13, 0), 24).unwrap();
        assert_eq!(terms.check(&ok, now), Ok(()));
        let soon = HourWindow::starting_at(t(12, 0), 24).unwrap();
        assert_eq!(
            terms.check(&soon, now),
            Err(TermsError::TooSoon {
                lead: 12,
                earliest: t(13, 0)
            })
        );
        let short = HourWindow::starting_at(t(13, 0), 23).unwrap();
        assert_eq!(
            terms.check(&short, now),
            Err(TermsError::TooShort { hours: 23, min: 24 })
        );
        let long = HourWindow::starting_at(t(13, 0), 49).unwrap();
        assert_eq!(
            terms.check(&long, now),
            Err(TermsError::TooLong { hours: 49, max: 48 })
        );
    }

    #[test]
    fn every_shown_state_reads_back() {
        for state in [
            ReservationState::Held,
            ReservationState::Confirmed,
            ReservationState::Active,
            ReservationState::Completed,
            ReservationState::Cancelled,
        ] {
            assert_eq!(ReservationState::from_shown(state.as_str()), Some(state));
        }
        assert_eq!(ReservationState::from_shown("paused"), None);
    }
}
