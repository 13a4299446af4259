//! What operators type into the site and pool forms, read into the catalog's inputs. The
//! forms take people's units (MW, dollars, percent) and the services take the stored ones
//! (kW, cents, basis points); every message names the field and shows an example.

use crate::pricing::{CancellationTier, TermDiscount};
use crate::request::{parse_count, parse_dollars};

/// A decimal number such as `1.25` or `12,5` in `range`, or a message naming `what`.
pub fn parse_decimal(
    s: &str,
    what: &str,
    example: &str,
    range: std::ops::RangeInclusive<f64>,
) -> Result<f64, String> {
    let t = s.trim().replace(',', ".");
    t.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && range.contains(v))
        .ok_or_else(|| {
            format!(
                "{what} is a number from {} to {}, e.g. {example}",
                range.start(),
                range.end()
            )
        })
}

/// An optional decimal: blank is `None`.
pub fn parse_optional_decimal(
    s: &str,
    what: &str,
    example: &str,
    range: std::ops::RangeInclusive<f64>,
) -> Result<Option<f64>, String> {
    if s.trim().is_empty() {
        Ok(None)
    } else {
        parse_decimal(s, what, example, range).map(Some)
    }
}

/// Megawatts (`12.5`) to whole kilowatts.
pub fn parse_megawatts(s: &str) -> Result<i64, String> {
    parse_decimal(s, "the interconnect in MW", "25 or 12.5", 0.001..=5000.0)
        .map(|mw| (mw * 1000.0).round() as i64)
}

/// An optional price in dollars (blank is `None`, `0` is allowed: a hashprice can crash).
pub fn parse_optional_dollars(s: &str, what: &str) -> Result<Option<i64>, String> {
    let t = s.trim().trim_start_matches('$');
    if t.is_empty() {
        return Ok(None);
    }
    if t.chars().all(|c| c == '0' || c == '.') {
        return Ok(Some(0));
    }
    parse_dollars(t)
        .map(Some)
        .map_err(|_| format!("{what} is in dollars, e.g. 48.50"))
}

/// Tiers written `hours:percent`, separated by commas: `168:5, 720:10`. Blank is none.
fn parse_tiers(s: &str, what: &str, example: &str) -> Result<Vec<(i64, i64)>, String> {
    let bad = || format!("write {what} as hours:percent pairs separated by commas, e.g. {example}");
    s.split([',', ';'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|tier| {
            let (h, p) = tier.split_once(':').ok_or_else(bad)?;
            let hours = parse_count(h, "hours", 0..=24 * 365 * 5).map_err(|_| bad())?;
            let percent = parse_decimal(p.trim_end_matches('%'), "percent", "10", 0.0..=100.0)
                .map_err(|_| bad())?;
            Ok((hours, (percent * 100.0).round() as i64))
        })
        .collect()
}

/// Term discounts: `168:5` is 5 % off terms of a week or longer.
pub fn parse_discounts(s: &str) -> Result<Vec<TermDiscount>, String> {
    Ok(parse_tiers(s, "the term discounts", "168:5, 720:10")?
        .into_iter()
        .map(|(min_hours, discount_bp)| TermDiscount {
            min_hours,
            discount_bp,
        })
        .collect())
}

/// Cancellation tiers: `168:100` refunds everything with a week's notice.
pub fn parse_cancellation(s: &str) -> Result<Vec<CancellationTier>, String> {
    Ok(parse_tiers(s, "the cancellation policy", "168:100, 24:50")?
        .into_iter()
        .map(|(min_notice_hours, refund_bp)| CancellationTier {
            min_notice_hours,
            refund_bp,
        })
        .collect())
}

/// Tiers back as the forms write them.
pub fn discounts_text(d: &[TermDiscount]) -> String {
    d.iter()
        .map(|t| format!("{}:{}", t.min_hours, t.discount_bp as f64 / 100.0))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Cancellation tiers back as the forms write them.
pub fn cancellation_text(c: &[CancellationTier]) -> String {
    c.iter()
        .map(|t| format!("{}:{}", t.min_notice_hours, t.refund_bp as f64 / 100.0))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A late credit as the forms write it: `1.5%` or `25.00` (dollars per unit per day).
pub fn late_credit_text(c: &crate::forward::LateCredit) -> String {
    match *c {
        crate::forward::LateCredit::Share { bp_per_day } => crate::incidents::percent(bp_per_day),
        crate::forward::LateCredit::PerUnitDay { cents } => dollars_text(cents),
    }
}

/// Cents as the dollars a form shows: `210` → `2.10`.
pub fn dollars_text(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// A pool's name, price and terms as its edit form shows and sends them.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PoolTermsForm {
    pub name: String,
    pub price_usd: String,
    pub min_term_hours: String,
    pub max_term_hours: String,
    pub min_lead_hours: String,
    pub discounts: String,
    pub cancellation: String,
    /// Blank: the pool sells firm capacity only.
    #[serde(default)]
    pub interruptible_price_usd: String,
    #[serde(default)]
    pub interruptible_notice_hours: String,
    /// The monthly availability promise in percent (blank: 99.5).
    #[serde(default)]
    pub sla_promise_percent: String,
    /// Credit tiers, `under percent:credit percent` (blank: 99.5:10, 99:25, 95:50).
    #[serde(default)]
    pub sla_credits: String,
    /// Forward sale (a site being built): the committed delivery, `YYYY-MM-DD HH:MM` UTC
    /// (blank: not sold ahead of delivery).
    #[serde(default)]
    pub forward_delivery: String,
    /// The credit per day late: `1%` of the contract, or dollars per unit, e.g. `25.00`.
    #[serde(default)]
    pub forward_late_credit: String,
    /// When an undelivered customer may walk away with a full refund, `YYYY-MM-DD HH:MM` UTC.
    #[serde(default)]
    pub forward_walk_away: String,
}

#[cfg(feature = "ssr")]
impl PoolTermsForm {
    pub fn of(p: &crate::services::catalog::PoolInput) -> Self {
        Self {
            name: p.name.clone(),
            price_usd: dollars_text(p.price_cents),
            min_term_hours: p.min_term_hours.to_string(),
            max_term_hours: p.max_term_hours.to_string(),
            min_lead_hours: p.min_lead_hours.to_string(),
            discounts: discounts_text(&p.discounts),
            cancellation: cancellation_text(&p.cancellation),
            interruptible_price_usd: p
                .interruptible
                .map(|o| dollars_text(o.price_cents))
                .unwrap_or_default(),
            interruptible_notice_hours: p.interruptible.map_or(0, |o| o.notice_hours).to_string(),
            sla_promise_percent: p
                .sla
                .as_ref()
                .map(|s| crate::incidents::plain_percent(s.promise_bp))
                .unwrap_or_default(),
            sla_credits: p
                .sla
                .as_ref()
                .map(crate::incidents::SlaTerms::tiers_text)
                .unwrap_or_default(),
            forward_delivery: p
                .forward
                .map(|f| crate::components::input_minute(f.delivery_at))
                .unwrap_or_default(),
            forward_late_credit: p
                .forward
                .map(|f| late_credit_text(&f.late_credit))
                .unwrap_or_default(),
            forward_walk_away: p
                .forward
                .map(|f| crate::components::input_minute(f.walk_away_at))
                .unwrap_or_default(),
        }
    }

    /// `listed` with this form's name, price and terms (its hardware and size kept), or the
    /// field that is wrong and how to write it. New pools and edits read their terms here.
    pub fn apply(
        &self,
        listed: crate::services::catalog::PoolInput,
    ) -> Result<crate::services::catalog::PoolInput, (&'static str, String)> {
        Ok(crate::services::catalog::PoolInput {
            name: self.name.trim().to_string(),
            price_cents: parse_dollars(&self.price_usd).map_err(|m| ("price_usd", m))?,
            min_term_hours: parse_count(
                &self.min_term_hours,
                "the minimum term (hours)",
                1..=43_800,
            )
            .map_err(|m| ("min_term_hours", m))?,
            max_term_hours: parse_count(
                &self.max_term_hours,
                "the maximum term (hours)",
                1..=43_800,
            )
            .map_err(|m| ("max_term_hours", m))?,
            min_lead_hours: parse_count(&self.min_lead_hours, "the lead time (hours)", 0..=8_760)
                .map_err(|m| ("min_lead_hours", m))?,
            discounts: parse_discounts(&self.discounts).map_err(|m| ("discounts", m))?,
            cancellation: parse_cancellation(&self.cancellation)
                .map_err(|m| ("cancellation", m))?,
            interruptible: self.interruptible()?,
            sla: self.sla()?,
            forward: self.forward()?,
            ..listed
        })
    }

    /// The service level as typed; both fields blank keep the pool's (the default for a new
    /// pool).
    fn sla(&self) -> Result<Option<crate::incidents::SlaTerms>, (&'static str, String)> {
        let (promise, credits) = (self.sla_promise_percent.trim(), self.sla_credits.trim());
        if promise.is_empty() && credits.is_empty() {
            return Ok(None);
        }
        let bp = |s: &str| {
            parse_decimal(
                s.trim().trim_end_matches('%'),
                "percent",
                "99.5",
                0.0..=100.0,
            )
            .map(|p| (p * 100.0).round() as i64)
        };
        let promise_bp = bp(if promise.is_empty() { "99.5" } else { promise }).map_err(|_| {
            (
                "sla_promise_percent",
                "write the availability promise as a percentage, e.g. 99.5".to_string(),
            )
        })?;
        let bad = || {
            (
                "sla_credits",
                "write the credit tiers as under-percent:credit-percent pairs, e.g. 99.5:10, 99:25, 95:50".to_string(),
            )
        };
        let tiers = credits
            .split([',', ';'])
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| {
                let (below, credit) = t.split_once(':').ok_or_else(bad)?;
                Ok(crate::incidents::SlaTier {
                    below_bp: bp(below).map_err(|_| bad())?,
                    credit_bp: bp(credit).map_err(|_| bad())?,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let sla = crate::incidents::SlaTerms { promise_bp, tiers };
        sla.check().map_err(|m| ("sla_credits", m))?;
        Ok(Some(sla))
    }

    /// The forward terms as typed; a blank delivery means none (the other two must then be
    /// blank too, so that half-typed terms are not dropped silently).
    fn forward(&self) -> Result<Option<crate::forward::ForwardTerms>, (&'static str, String)> {
        let (delivery, credit, walk) = (
            self.forward_delivery.trim(),
            self.forward_late_credit.trim(),
            self.forward_walk_away.trim(),
        );
        if delivery.is_empty() {
            if credit.is_empty() && walk.is_empty() {
                return Ok(None);
            }
            return Err((
                "forward_delivery",
                "give the committed delivery too, or clear the late credit and walk-away date"
                    .into(),
            ));
        }
        let when = |s: &str, field: &'static str| {
            crate::request::parse_start(s).map_err(|_| {
                (
                    field,
                    "a date and time, e.g. 2027-06-01 00:00 (UTC)".to_string(),
                )
            })
        };
        let late_credit = if let Some(pct) = credit.strip_suffix('%') {
            let bp = parse_decimal(pct, "the daily share", "1", 0.01..=100.0)
                .map_err(|m| ("forward_late_credit", m))?;
            crate::forward::LateCredit::Share {
                bp_per_day: (bp * 100.0).round() as i64,
            }
        } else {
            let cents = parse_dollars(credit).map_err(|_| {
                (
                    "forward_late_credit",
                    "a share of the contract per day, e.g. 1%, or dollars per unit per day, e.g. 25.00"
                        .to_string(),
                )
            })?;
            crate::forward::LateCredit::PerUnitDay { cents }
        };
        let terms = crate::forward::ForwardTerms {
            delivery_at: when(delivery, "forward_delivery")?,
            late_credit,
            walk_away_at: when(walk, "forward_walk_away")?,
        };
        terms.check().map_err(|(field, m)| {
            (
                match field {
                    "delivery_at" => "forward_delivery",
                    "walk_away_at" => "forward_walk_away",
                    _ => "forward_late_credit",
                },
                m,
            )
        })?;
        Ok(Some(terms))
    }

    /// The interruptible tier as typed: a price (blank for none) and a notice in hours
    /// (blank for none).
    fn interruptible(
        &self,
    ) -> Result<Option<crate::market::InterruptibleOffer>, (&'static str, String)> {
        if self.interruptible_price_usd.trim().is_empty() {
            return Ok(None);
        }
        let price_cents = parse_dollars(&self.interruptible_price_usd).map_err(|_| {
            (
                "interruptible_price_usd",
                "the interruptible price is in dollars, e.g. 1.40".to_string(),
            )
        })?;
        let notice = self.interruptible_notice_hours.trim();
        let notice_hours = if notice.is_empty() {
            0
        } else {
            parse_count(notice, "the interruption notice (hours)", 0..=720)
                .map_err(|m| ("interruptible_notice_hours", m))?
        };
        Ok(Some(crate::market::InterruptibleOffer {
            price_cents,
            notice_hours,
        }))
    }
}

/// The site form as typed: every field text, in people's units.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SiteForm {
    pub name: String,
    pub country: String,
    pub region: String,
    pub grid_region: String,
    pub energy_source: String,
    pub interconnect_mw: String,
    pub pue: String,
    pub cooling: String,
    pub status: String,
    pub hashrate_th: String,
    pub efficiency_j_th: String,
    pub hashprice_usd: String,
}

impl SiteForm {
    /// A blank form with the defaults a new site usually has.
    pub fn new_site() -> Self {
        Self {
            pue: "1.25".into(),
            status: "building".into(),
            hashrate_th: "0".into(),
            ..Self::default()
        }
    }
}

#[cfg(feature = "ssr")]
impl SiteForm {
    /// The catalog's input, or the field that is wrong and how to write it.
    pub fn parse(&self) -> Result<crate::services::catalog::SiteInput, (&'static str, String)> {
        let hashrate = self.hashrate_th.trim();
        Ok(crate::services::catalog::SiteInput {
            name: self.name.trim().to_string(),
            country: self.country.trim().to_uppercase(),
            region: self.region.trim().to_string(),
            grid_region: self.grid_region.trim().to_string(),
            energy_source: self.energy_source.trim().to_string(),
            interconnect_kw: parse_megawatts(&self.interconnect_mw)
                .map_err(|m| ("interconnect_mw", m))?,
            pue: parse_decimal(&self.pue, "the PUE", "1.25", 1.0..=3.0).map_err(|m| ("pue", m))?,
            cooling: self.cooling.trim().to_string(),
            status: self.status.trim().to_string(),
            hashrate_th: if hashrate.is_empty() {
                0
            } else {
                parse_count(hashrate, "the hashrate (TH/s)", 0..=1_000_000_000)
                    .map_err(|m| ("hashrate_th", m))?
            },
            fleet_efficiency_j_th: parse_optional_decimal(
                &self.efficiency_j_th,
                "the fleet efficiency (J/TH)",
                "21.5",
                1.0..=500.0,
            )
            .map_err(|m| ("efficiency_j_th", m))?,
            hashprice_usd_cents_per_ph_day: parse_optional_dollars(
                &self.hashprice_usd,
                "the hashprice",
            )
            .map_err(|m| ("hashprice_usd", m))?,
        })
    }
}

#[cfg(feature = "ssr")]
impl From<&crate::services::catalog::SiteInput> for SiteForm {
    fn from(s: &crate::services::catalog::SiteInput) -> Self {
        let trim = |v: f64| {
            let t = format!("{v:.3}");
            t.trim_end_matches('0').trim_end_matches('.').to_string()
        };
        Self {
            name: s.name.clone(),
            country: s.country.clone(),
            region: s.region.clone(),
            grid_region: s.grid_region.clone(),
            energy_source: s.energy_source.clone(),
            interconnect_mw: trim(s.interconnect_kw as f64 / 1000.0),
            pue: trim(s.pue),
            cooling: s.cooling.clone(),
            status: s.status.clone(),
            hashrate_th: s.hashrate_th.to_string(),
            efficiency_j_th: s.fleet_efficiency_j_th.map(trim).unwrap_or_default(),
            hashprice_usd: s
                .hashprice_usd_cents_per_ph_day
                .map(|c| format!("{}.{:02}", c / 100, c % 100))
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_units_become_stored_units() {
        assert_eq!(parse_megawatts("12.5"), Ok(12_500));
        assert_eq!(parse_megawatts(" 25 "), Ok(25_000));
        assert!(parse_megawatts("-3")
            .unwrap_err()
            .contains("interconnect in MW"));
        assert!(parse_megawatts("lots").is_err());
        assert_eq!(parse_decimal("1,25", "PUE", "1.25", 1.0..=3.0), Ok(1.25));
        assert!(parse_decimal("NaN", "PUE", "1.25", 1.0..=3.0).is_err());
        assert_eq!(
            parse_optional_decimal("", "J/TH", "21.5", 1.0..=200.0),
            Ok(None)
        );
        assert_eq!(
            parse_optional_dollars("$48.50", "the hashprice"),
            Ok(Some(4_850))
        );
        assert_eq!(parse_optional_dollars("0", "the hashprice"), Ok(Some(0)));
        assert_eq!(parse_optional_dollars(" ", "the hashprice"), Ok(None));
        assert!(parse_optional_dollars("cheap", "the hashprice")
            .unwrap_err()
            .contains("hashprice"));
    }

    #[test]
    fn tiers_read_hours_and_percent() {
        let d = parse_discounts("168:5, 720:12.5%").unwrap();
        assert_eq!(
            d,
            [
                TermDiscount {
                    min_hours: 168,
                    discount_bp: 500
                },
                TermDiscount {
                    min_hours: 720,
                    discount_bp: 1_250
                }
            ]
        );
        assert_eq!(discounts_text(&d), "168:5, 720:12.5");
        assert_eq!(dollars_text(210), "2.10");
        assert_eq!(dollars_text(15_000), "150.00");
        assert_eq!(parse_discounts(" "), Ok(vec![]));
        let c = parse_cancellation("168:100;24:50").unwrap();
        assert_eq!(
            c[1],
            CancellationTier {
                min_notice_hours: 24,
                refund_bp: 5_000
            }
        );
        assert!(parse_cancellation("a week: all")
            .unwrap_err()
            .contains("168:100, 24:50"));
        assert!(parse_discounts("168:150").is_err());
    }
}
