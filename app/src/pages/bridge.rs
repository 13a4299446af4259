//! The bridge panel of a site converting from mining to AI, on the operator's site page and
//! the economics page: what mining earns until the hall is delivered, the AI revenue sold
//! forward after it, how much of the hall is pre-sold, and a chart of mining until the
//! delivery and the contracted firm AI load after it against the interconnect, with a text
//! table of the same periods.

use crate::bridge::{Bridge, PRESOLD_DAYS};
use crate::components::{short_day, utc_minute, LocalTime};
use crate::incidents::percent;
use crate::money::format_cents;
use crate::utilization::{format_watts, PowerStep};
use chrono::{DateTime, Duration, Utc};
use leptos::prelude::*;

/// The bridge of one site; `heading` names the site (the economics page lists several).
#[component]
pub fn BridgePanel(bridge: Bridge, #[prop(optional)] heading: bool) -> impl IntoView {
    let b = bridge;
    let title_id = format!("bridge-title-{}", b.site_id);
    let labelled_by = title_id.clone();
    let title = if heading {
        format!("The bridge at {}", b.site_name)
    } else {
        "The bridge: mining until delivery, AI after".to_string()
    };
    let Some(delivery) = b.delivery_at else {
        return view! {
            <section class="panel" aria-labelledby=labelled_by.clone() data-testid="bridge">
                <h2 id=title_id>{title}</h2>
                <p class="empty-state" data-testid="bridge-empty">"Nothing on this site is sold forward yet. "
                    "Give a pool a committed delivery, a late-delivery credit and a walk-away date in its terms, and customers can reserve the hall before it is finished while mining keeps earning."</p>
            </section>
        }
        .into_any();
    };
    let mining = match (b.mining_until_delivery_cents, b.mining_draw_w()) {
        (Some(cents), Some(draw)) => view! {
            <dd data-testid="bridge-mining-revenue">{format_cents(cents, &b.currency)}</dd>
            <dd class="note">{format!("{} of mining until the delivery", format_watts(draw))}</dd>
        }
        .into_any(),
        _ if !b.building => {
            view! { <dd data-testid="bridge-mining-revenue">"delivered"</dd> }.into_any()
        }
        _ => view! { <dd data-testid="bridge-mining-revenue">"—"</dd>
        <dd class="note">"give the site its hashrate, fleet efficiency and hashprice"</dd> }
        .into_any(),
    };
    let presold = percent(b.presold_bp());
    view! {
        <section class="panel" aria-labelledby=labelled_by.clone() data-testid="bridge">
            <h2 id=title_id>{title}</h2>
            <dl class="summary-grid">
                <div><dt>{if b.building { "Delivery committed" } else { "Delivered" }}</dt>
                    <dd data-testid="bridge-delivery"><LocalTime at=delivery/></dd></div>
                <div><dt>"Mining until then"</dt>{mining}</div>
                <div><dt>"Forward AI contracted"</dt>
                    <dd data-testid="bridge-forward-revenue">{format_cents(b.forward_revenue_cents, &b.currency)}</dd>
                    <dd class="note">{format!("{} contract(s), before the platform's fee", b.forward_contracts)}</dd></div>
                <div><dt>"Pre-sold"</dt>
                    <dd data-testid="bridge-presold">{presold}</dd>
                    <dd class="note">{format!("of the hall's first {PRESOLD_DAYS} days")}</dd></div>
                {(b.late_credits_cents > 0).then(|| view! {
                    <div><dt>"Late-delivery credits paid"</dt>
                        <dd data-testid="bridge-late-credits">{format_cents(b.late_credits_cents, &b.currency)}</dd></div>
                })}
            </dl>
            <BridgeChart bridge=b.clone() delivery=delivery/>
        </section>
    }
    .into_any()
}

/// The load at `t` of a step series.
fn at(steps: &[PowerStep], t: DateTime<Utc>) -> i64 {
    steps
        .iter()
        .take_while(|s| s.at <= t)
        .last()
        .map_or(0, |s| s.committed_w)
}

/// An SVG path of a step series as a filled area (`close`) or a line.
fn step_path(
    steps: &[PowerStep],
    to: DateTime<Utc>,
    x: impl Fn(DateTime<Utc>) -> f64,
    y: impl Fn(i64) -> f64,
    close: bool,
) -> String {
    let Some(first) = steps.first() else {
        return String::new();
    };
    let mut d = if close {
        format!("M{:.1},{:.1}", x(first.at), y(0))
    } else {
        format!("M{:.1},{:.1}", x(first.at), y(first.committed_w))
    };
    for (i, s) in steps.iter().enumerate() {
        let end = steps.get(i + 1).map_or(to, |n| n.at);
        d.push_str(&format!(
            " L{:.1},{:.1} L{:.1},{:.1}",
            x(s.at),
            y(s.committed_w),
            x(end),
            y(s.committed_w)
        ));
    }
    if close {
        d.push_str(&format!(" L{:.1},{:.1} Z", x(to), y(0)));
    }
    d
}

#[component]
fn BridgeChart(bridge: Bridge, delivery: DateTime<Utc>) -> impl IntoView {
    const W: f64 = 640.0;
    const H: f64 = 220.0;
    const PAD_L: f64 = 68.0;
    const PAD_B: f64 = 24.0;
    let b = bridge;
    let interconnect = b.interconnect_kw * 1000;
    let listed_peak = b.listed.iter().map(|s| s.committed_w).max().unwrap_or(0);
    // Scaled to the hall: a hall is often a sliver of an interconnect that a mining fleet
    // fills, and drawn to the interconnect its AI load would not show. What is above the
    // scale (the interconnect, the fleet) is drawn at the top and labelled "off scale".
    let hall = listed_peak.max(b.peak_contracted_w()).max(1);
    let top_w = if interconnect <= hall * 2 {
        interconnect.max(hall)
    } else {
        hall + hall / 5
    };
    let top = top_w as f64;
    let (from, to) = (b.from, b.to);
    let span = (to - from).num_seconds().max(1);
    let x = move |t: DateTime<Utc>| {
        PAD_L + ((t - from).num_seconds().clamp(0, span) as f64 / span as f64) * (W - PAD_L - 4.0)
    };
    let y = move |w: i64| 6.0 + (1.0 - w.min(top_w) as f64 / top) * (H - PAD_B - 10.0);
    let off_scale = |w: i64| if w > top_w { " (off scale)" } else { "" };
    let mining_w = if b.building { b.mining_draw_w() } else { None };
    let ai_area = step_path(&b.contracted, to, x, y, true);
    let listed_line = step_path(&b.listed, to, x, y, false);
    let delivery_x = x(delivery);
    let label = format!(
        "{}: {} until the delivery on {}, then {} of firm AI load contracted at its peak, against an interconnect of {}; {} of the hall's first {PRESOLD_DAYS} days pre-sold.",
        b.site_name,
        mining_w.map_or("no mining figures".to_string(), |w| format!("{} of mining", format_watts(w))),
        utc_minute(delivery),
        format_watts(b.peak_contracted_w()),
        format_watts(interconnect),
        percent(b.presold_bp()),
    );
    let ticks: Vec<(f64, String)> = {
        let days = (to - from).num_days().max(1);
        let step = (days / 5).max(1);
        (0..=days / step)
            .map(|i| {
                let t = from + Duration::days(i * step);
                (x(t), short_day(t))
            })
            .collect()
    };
    // The periods, in words: mining until the delivery, then each change of contracted or
    // listed load after it.
    let mut changes: Vec<DateTime<Utc>> = b
        .contracted
        .iter()
        .chain(b.listed.iter())
        .map(|s| s.at)
        .filter(|t| *t >= delivery)
        .chain(std::iter::once(delivery))
        .collect();
    changes.sort();
    changes.dedup();
    let rows: Vec<(String, String, String)> = changes
        .into_iter()
        .map(|t| {
            (
                utc_minute(t),
                format_watts(at(&b.contracted, t)),
                format_watts(at(&b.listed, t)),
            )
        })
        .collect();
    let aria = label.clone();
    view! {
        <figure class="chart">
            <svg viewBox=format!("0 0 {W} {H}") role="img" aria-label=aria data-testid="bridge-chart">
                <title>{label}</title>
                <defs>
                    <pattern id=format!("bridge-hatch-{}", b.site_id) width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
                        <line x1="0" y1="0" x2="0" y2="6" class="hatch-line"/>
                    </pattern>
                </defs>
                <line x1=PAD_L y1=y(0) x2=W y2=y(0) class="axis"/>
                {mining_w.map(|w| view! {
                    <rect class="mining-area" data-testid="bridge-mining" x=x(from) y=y(w)
                        width=(delivery_x - x(from)).max(0.0) height=(y(0) - y(w)).max(0.0)>
                        <title>{format!("Mining: {} until {}", format_watts(w), utc_minute(delivery))}</title>
                    </rect>
                    <text x=x(from) + 4.0 y=y(w) + 14.0 class="chart-label">{format!("mining {}{}", format_watts(w), off_scale(w))}</text>
                })}
                <path d=ai_area class="ai-area" data-testid="bridge-ai" fill=format!("url(#bridge-hatch-{})", b.site_id)/>
                <path d=listed_line class="listed-line" data-testid="bridge-listed"/>
                <line x1=delivery_x y1=6.0 x2=delivery_x y2=y(0) class="now-line" data-testid="bridge-delivery-line"/>
                <text x=delivery_x + 4.0 y=18.0 class="chart-label">"delivery"</text>
                <line x1=PAD_L y1=y(interconnect) x2=W y2=y(interconnect) class="limit"/>
                <text x=W - 4.0 y=y(interconnect) + 14.0 text-anchor="end" class="chart-label">{format!("interconnect {}{}", format_watts(interconnect), off_scale(interconnect))}</text>
                <text x=PAD_L - 4.0 y=y(0) + 4.0 text-anchor="end" class="tick">"0"</text>
                <text x=PAD_L - 4.0 y=y(top_w) + 4.0 text-anchor="end" class="tick">{format_watts(top_w)}</text>
                {ticks.into_iter().map(|(tx, text)| view! {
                    <text x=tx y=H - 6.0 text-anchor="middle" class="tick">{text}</text>
                }).collect_view()}
            </svg>
            <figcaption class="small muted">"Solid: the mining fleet until the delivery. Hatched: firm AI load sold on the site. "
                "Dashed: firm AI capacity listed, each pool from its delivery (the interconnect check counts it the same way). "
                "The scale is the hall's; what is above it is drawn at the top, marked off scale."</figcaption>
            <div class="visually-hidden"><table data-testid="bridge-periods">
                <caption>"Mining until the delivery, then contracted and listed firm AI load"</caption>
                <thead><tr><th scope="col">"From (UTC)"</th><th scope="col">"Mining"</th><th scope="col">"AI load contracted"</th><th scope="col">"AI capacity listed"</th></tr></thead>
                <tbody>
                    <tr><td>{utc_minute(from)}</td><td>{mining_w.map_or("—".to_string(), format_watts)}</td>
                        <td>{format_watts(at(&b.contracted, from))}</td><td>{format_watts(at(&b.listed, from))}</td></tr>
                    {rows.into_iter().map(|(t, ai, listed)| view! {
                        <tr><td>{t}</td><td>"—"</td><td>{ai}</td><td>{listed}</td></tr>
                    }).collect_view()}
                </tbody>
            </table></div>
        </figure>
    }
}
