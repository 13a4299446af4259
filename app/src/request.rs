//! A capacity request as people type it into forms (and as it travels in URLs): what,
//! how much, how long, from when. Shared by the search form, the pool page and the reserve
//! form, so the same text parses the same way in the browser and on the server.

use crate::pricing::Quantity;
use chrono::{DateTime, NaiveDateTime, Utc};
use leptos_router::params::ParamsMap;
use serde::{Deserialize, Serialize};

/// Text fields of a search; every field optional, as in the URL.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchForm {
    /// `gpu` or `power` (empty: both).
    pub kind: String,
    pub gpu_model: String,
    pub gpus: String,
    pub kw: String,
    /// Duration in hours.
    pub hours: String,
    /// Exact start, `YYYY-MM-DDTHH:MM` in UTC (empty: earliest within `within_days`).
    pub start: String,
    pub within_days: String,
    pub region: String,
    pub energy_source: String,
    pub interconnect: String,
    /// Highest unit price in dollars, e.g. `2.50`.
    pub max_price: String,
    /// Lowest reliability score, in percent, e.g. `99.5` (empty: any, new pools too).
    #[serde(default)]
    pub min_reliability: String,
    /// `price`, `earliest_start`, `total_cost` or `reliability`.
    pub sort: String,
    /// `interruptible` for that tier only (empty: firm prices, every pool).
    #[serde(default)]
    pub tier: String,
    /// `ready` or `forward` (empty: both).
    #[serde(default)]
    pub delivery: String,
    /// 1-based page number.
    pub page: String,
}

pub const FIELDS: [&str; 16] = [
    "kind",
    "gpu_model",
    "gpus",
    "kw",
    "hours",
    "start",
    "within_days",
    "region",
    "energy_source",
    "interconnect",
    "max_price",
    "min_reliability",
    "sort",
    "tier",
    "delivery",
    "page",
];

impl SearchForm {
    pub fn from_query(q: &ParamsMap) -> Self {
        let get = |k: &str| {
            q.get(k)
                .unwrap_or_default()
                .trim()
                .chars()
                .take(100)
                .collect::<String>()
        };
        Self {
            kind: get("kind"),
            gpu_model: get("gpu_model"),
            gpus: get("gpus"),
            kw: get("kw"),
            hours: get("hours"),
            start: get("start"),
            within_days: get("within_days"),
            region: get("region"),
            energy_source: get("energy_source"),
            interconnect: get("interconnect"),
            max_price: get("max_price"),
            min_reliability: get("min_reliability"),
            sort: get("sort"),
            tier: get("tier"),
            delivery: get("delivery"),
            page: get("page"),
        }
    }

    /// Whether the visitor asked anything (otherwise the page shows all capacity).
    pub fn is_search(&self) -> bool {
        !self.hours.is_empty()
            || !self.gpus.is_empty()
            || !self.kw.is_empty()
            || !self.gpu_model.is_empty()
    }

    pub fn values(&self) -> [(&'static str, &str); 16] {
        [
            ("kind", &self.kind),
            ("gpu_model", &self.gpu_model),
            ("gpus", &self.gpus),
            ("kw", &self.kw),
            ("hours", &self.hours),
            ("start", &self.start),
            ("within_days", &self.within_days),
            ("region", &self.region),
            ("energy_source", &self.energy_source),
            ("interconnect", &self.interconnect),
            ("max_price", &self.max_price),
            ("min_reliability", &self.min_reliability),
            ("sort", &self.sort),
            ("tier", &self.tier),
            ("delivery", &self.delivery),
            ("page", &self.page),
        ]
    }

    /// The query string of this search at `page` (empty fields left out).
    pub fn query_string(&self, page: i64) -> String {
        let mut parts: Vec<String> = self
            .values()
            .iter()
            .filter(|(k, v)| *k != "page" && !v.is_empty())
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        if page > 1 {
            parts.push(format!("page={page}"));
        }
        parts.join("&")
    }

    pub fn page(&self) -> i64 {
        self.page
            .parse::<i64>()
            .ok()
            .filter(|p| (1..=1000).contains(p))
            .unwrap_or(1)
    }
}

/// Percent-encodes a query value.
pub fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `YYYY-MM-DDTHH:MM` (what `<input type="datetime-local">` sends) or RFC 3339, as UTC.
pub fn parse_start(s: &str) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    parse_minute(s)
        .map(|n| n.and_utc())
        .ok_or_else(|| "give the start as a date and time, e.g. 2026-12-01 09:00 (UTC)".to_string())
}

/// `YYYY-MM-DDTHH:MM` (or with a space for the `T`). Parsed by hand: chrono's
/// `parse_from_str` would bring its whole strftime machinery into the browser bundle.
fn parse_minute(s: &str) -> Option<NaiveDateTime> {
    let (date, time) = s.split_once(['T', ' '])?;
    let mut d = date.splitn(3, '-');
    let mut t = time.splitn(2, ':');
    let number = |part: Option<&str>, digits: usize| {
        part.filter(|p| p.len() == digits && p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse::<u32>().ok())
    };
    let (year, month, day) = (
        number(d.next(), 4)?,
        number(d.next(), 2)?,
        number(d.next(), 2)?,
    );
    let (hour, minute) = (number(t.next(), 2)?, number(t.next(), 2)?);
    chrono::NaiveDate::from_ymd_opt(year as i32, month, day)?.and_hms_opt(hour, minute, 0)
}

/// A whole number in `range`, or a message naming `what`.
pub fn parse_count(
    s: &str,
    what: &str,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64, String> {
    let digits: String = s
        .trim()
        .chars()
        .filter(|c| *c != ',' && *c != '_')
        .collect();
    digits
        .parse::<i64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            format!(
                "{what} is a whole number from {} to {}",
                crate::money::group_thousands(*range.start() as u64),
                crate::money::group_thousands(*range.end() as u64)
            )
        })
}

/// Dollars (`2.5`, `$2.50`) to cents.
pub fn parse_dollars(s: &str) -> Result<i64, String> {
    let t = s.trim().trim_start_matches('$');
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let bad = || "give the price in dollars, e.g. 2.50".to_string();
    if whole.is_empty() && frac.is_empty()
        || frac.len() > 2
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let frac: i64 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
    whole
        .checked_mul(100)
        .and_then(|c| c.checked_add(frac))
        .filter(|c| *c > 0 && *c <= 100_000_000)
        .ok_or_else(bad)
}

/// A quantity as one form value: `gpus:16`, `kw:500` or `units:2`.
pub fn quantity_to_field(q: Quantity) -> String {
    match q {
        Quantity::Gpus(n) => format!("gpus:{n}"),
        Quantity::Kw(n) => format!("kw:{n}"),
        Quantity::Units(n) => format!("units:{n}"),
    }
}

pub fn quantity_from_field(s: &str) -> Option<Quantity> {
    let (kind, n) = s.split_once(':')?;
    let n = n.parse::<i64>().ok()?;
    match kind {
        "gpus" => Some(Quantity::Gpus(n)),
        "kw" => Some(Quantity::Kw(n)),
        "units" => Some(Quantity::Units(n)),
        _ => None,
    }
}

/// GPUs or kW from the two fields (one of them), for the quantity of a request.
pub fn parse_quantity(gpus: &str, kw: &str) -> Result<Option<Quantity>, String> {
    match (gpus.trim().is_empty(), kw.trim().is_empty()) {
        (true, true) => Ok(None),
        (false, true) => Ok(Some(Quantity::Gpus(parse_count(
            gpus,
            "GPUs",
            1..=1_000_000,
        )?))),
        (true, false) => Ok(Some(Quantity::Kw(parse_count(kw, "kW", 1..=10_000_000)?))),
        (false, false) => Err("ask for GPUs or kW, not both".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_parse_or_say_what_is_wrong() {
        assert_eq!(
            parse_start("2026-12-01T09:00").unwrap().to_rfc3339(),
            "2026-12-01T09:00:00+00:00"
        );
        assert!(parse_start("tomorrow").is_err());
        assert_eq!(
            parse_start("2026-12-01 09:30").unwrap().to_rfc3339(),
            "2026-12-01T09:30:00+00:00"
        );
        for bad in [
            "2026-13-01T09:00",
            "2026-02-30T09:00",
            "2026-12-01T24:00",
            "2026-12-1T09:00",
            "+026-12-01T09:00",
            "2026-12-01T09:00:00",
        ] {
            assert!(parse_start(bad).is_err(), "{bad} should be refused");
        }
        assert_eq!(parse_dollars("2.5").unwrap(), 250);
        assert_eq!(parse_dollars("$1.99").unwrap(), 199);
        assert!(
            parse_dollars("1.999").is_err()
                && parse_dollars("-3").is_err()
                && parse_dollars("").is_err()
        );
        assert_eq!(parse_count("1,024", "GPUs", 1..=2000).unwrap(), 1024);
        assert!(parse_count("0", "GPUs", 1..=10)
            .unwrap_err()
            .contains("from 1 to 10"));
        assert_eq!(parse_quantity("16", "").unwrap(), Some(Quantity::Gpus(16)));
        assert!(parse_quantity("16", "5").is_err());
        for q in [Quantity::Gpus(16), Quantity::Kw(500), Quantity::Units(2)] {
            assert_eq!(quantity_from_field(&quantity_to_field(q)), Some(q));
        }
        assert_eq!(quantity_from_field("gpus:x"), None);
    }

    #[test]
    fn a_search_round_trips_through_its_query_string() {
        let f = SearchForm {
            gpu_model: "H100 SXM".into(),
            gpus: "16".into(),
            hours: "168".into(),
            ..Default::default()
        };
        assert_eq!(
            f.query_string(2),
            "gpu_model=H100+SXM&gpus=16&hours=168&page=2"
        );
        assert!(f.is_search());
        assert!(!SearchForm::default().is_search());
    }
}
