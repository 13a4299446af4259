//! The mining trade-off, per site: what a MWh earns as AI capacity (at the list prices and
//! in the actual bookings) against what it earns in the site's mining fleet, the GPU-hour
//! price that breaks even, and a what-if price. The what-if is a GET form, so it works
//! without JavaScript and the figures can be shared by URL. Below: the bridge of each site
//! whose hall is being built and sold forward, and demand response.

use crate::app_error::AppError;
use crate::components::{clean_error, NotOperator, SignedIn};
use crate::economics::{format_rate, PoolEconomics};
use crate::grid::DemandResponseMonth;
use crate::money::format_cents;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[server(endpoint = "site_economics")]
pub async fn site_economics() -> Result<Vec<PoolEconomics>, AppError> {
    use crate::services::{economics, web};
    let me = web::principal()?
        .operator(crate::account::Scope::Read)
        .map_err(web::fail)?;
    economics::pools(&web::db()?, me).await.map_err(web::fail)
}

#[server(endpoint = "demand_response")]
pub async fn demand_response() -> Result<Vec<DemandResponseMonth>, AppError> {
    use crate::services::{grid_events, web};
    let me = web::principal()?
        .operator(crate::account::Scope::Read)
        .map_err(web::fail)?;
    grid_events::demand_response(&web::db()?, me)
        .await
        .map_err(web::fail)
}

#[server(endpoint = "site_bridges")]
pub async fn site_bridges() -> Result<Vec<crate::bridge::Bridge>, AppError> {
    use crate::services::{bridge, web};
    let me = web::principal()?
        .operator(crate::account::Scope::Read)
        .map_err(web::fail)?;
    bridge::operator(&web::db()?, me, chrono::Utc::now())
        .await
        .map_err(web::fail)
}

#[component]
pub fn EconomicsPage() -> impl IntoView {
    view! {
        <Title text="AI or mining"/>
        <SignedIn next="/operator/economics" page=|u| {
            if u.kind.operates() {
                view! { <Economics/> }.into_any()
            } else {
                view! { <NotOperator>"This page compares a site's AI capacity with its mining fleet."</NotOperator> }.into_any()
            }
        }/>
    }
}

#[component]
fn Economics() -> impl IntoView {
    let query = use_query_map();
    let what_if_text = move || query.read().get("whatif").unwrap_or_default();
    // Dollars per GPU-hour, as typed; a bad value is reported, not guessed.
    let what_if = move || {
        let t = what_if_text();
        if t.trim().is_empty() {
            Ok(None)
        } else {
            crate::request::parse_dollars(&t).map(|c| Some(c as f64))
        }
    };
    let pools = crate::resource::load(|| (), |_| site_economics());
    view! {
        <h1>"AI or mining"</h1>
        <p><a href="/operator">"← Operations"</a></p>
        <p class="muted">
            "What one megawatt-hour earns sold as AI capacity, against burning it in your mining fleet at the current hashprice. "
            "AI figures use the facility energy (IT power × PUE); mining uses the fleet's efficiency in J/TH."
        </p>
        <form method="get" action="/operator/economics" class="inline-form" data-testid="what-if-form">
            <label for="whatif">"What-if GPU price (USD per GPU-hour)"</label>
            <input id="whatif" name="whatif" inputmode="decimal" placeholder="e.g. 1.50" value=what_if_text()/>
            <button type="submit" class="button secondary">"Compare"</button>
        </form>
        {move || what_if().err().map(|e| view! { <p class="form-error" role="alert">{e}</p> })}
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading your sites…"</p> }>
            {move || Suspend::new(async move {
                match pools.await {
                    Ok(list) if list.is_empty() => view! {
                        <p class="empty-state">"You have no pools yet: list capacity on a site to compare it with mining."</p>
                    }.into_any(),
                    Ok(list) => {
                        let what_if = what_if().ok().flatten();
                        let mut sites: Vec<Vec<PoolEconomics>> = Vec::new();
                        for p in list {
                            match sites.last_mut() {
                                Some(s) if s[0].site_id == p.site_id => s.push(p),
                                _ => sites.push(vec![p]),
                            }
                        }
                        sites.into_iter().map(|pools| view! { <SiteEconomics pools what_if/> }).collect_view().into_any()
                    }
                    Err(e) => view! { <p class="form-error" role="alert">{clean_error(&e.to_string())}</p> }.into_any(),
                }
            })}
        </Transition>
        <Bridges/>
        <DemandResponse/>
    }
}

/// Every site converting from mining to AI: its bridge (nothing when none is).
#[component]
fn Bridges() -> impl IntoView {
    let bridges = crate::resource::load(|| (), |_| site_bridges());
    view! {
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match bridges.await {
                    Ok(list) => list.into_iter().map(|b| view! {
                        <crate::pages::bridge::BridgePanel bridge=b heading=true/>
                    }).collect_view().into_any(),
                    Err(e) => view! { <p class="form-error" role="alert">{clean_error(&e.to_string())}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// Grid events per site and month: what the programs pay for the load shed, beside the
/// credits given to the interruptible customers the events cut.
#[component]
fn DemandResponse() -> impl IntoView {
    let months = crate::resource::load(|| (), |_| demand_response());
    view! {
        <section class="panel" aria-labelledby="dr-title" data-testid="demand-response">
            <h2 id="dr-title">"Demand response"</h2>
            <p class="small muted">"Each grid event pays what its program pays per MWh for the load asked to be shed; "
                "the credits are what customers of interruptible capacity got back for the hours it cut. "
                "Programs pay you directly: the payment is shown here, not booked in the Rigshift ledger; the credits are."</p>
            <Transition fallback=|| view! { <p class="loading" role="status">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match months.await {
                        Ok(rows) if rows.is_empty() => view! {
                            <p class="empty-state" data-testid="no-demand-response">"No grid event yet. Record one on a site's page when the grid calls."</p>
                        }.into_any(),
                        Ok(rows) => view! {
                            <div class="table-scroll"><table class="data-table" data-testid="demand-response-table">
                                <thead><tr><th scope="col">"Month"</th><th scope="col">"Site"</th><th scope="col" class="num">"Events"</th>
                                    <th scope="col" class="num">"Energy shed"</th><th scope="col" class="num">"Program payments"</th>
                                    <th scope="col" class="num">"Credits to customers"</th><th scope="col" class="num">"Net"</th></tr></thead>
                                <tbody>{rows.into_iter().map(|r| view! {
                                    <tr>
                                        <td>{crate::components::short_month(r.month)}</td>
                                        <td data-label="Site"><a href=format!("/operator/sites/{}#grid-events", r.site_id)>{r.site_name}</a></td>
                                        <td class="num" data-label="Events">{r.events}</td>
                                        <td class="num" data-label="Energy shed">{format!("{:.1} MWh", r.kwh_shed as f64 / 1000.0)}</td>
                                        <td class="num" data-label="Program payments">{format_cents(r.revenue_cents, "USD")}</td>
                                        <td class="num" data-label="Credits to customers">{format_cents(r.credits_cents, "USD")}</td>
                                        <td class="num" data-label="Net">{format_cents(r.revenue_cents - r.credits_cents, "USD")}</td>
                                    </tr>
                                }).collect_view()}</tbody>
                            </table></div>
                        }.into_any(),
                        Err(e) => view! { <p class="form-error" role="alert">{clean_error(&e.to_string())}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// One bar of the chart: a label and cents per MWh.
struct Bar {
    label: String,
    cents: f64,
    mining: bool,
}

#[component]
fn SiteEconomics(pools: Vec<PoolEconomics>, what_if: Option<f64>) -> impl IntoView {
    let site = pools[0].site_name.clone();
    let mining = pools[0].mining_cents_per_mwh();
    let mut bars = Vec::new();
    if let Some(m) = mining {
        bars.push(Bar {
            label: "Mining (hashprice)".into(),
            cents: m,
            mining: true,
        });
    }
    for p in &pools {
        bars.push(Bar {
            label: format!("{} at list price", p.pool_name),
            cents: p.list_cents_per_mwh(),
            mining: false,
        });
        if let Some(w) = what_if.and_then(|c| p.what_if_cents_per_mwh(c)) {
            bars.push(Bar {
                label: format!("{} at what-if price", p.pool_name),
                cents: w,
                mining: false,
            });
        }
    }
    let heading_id = format!("site-{}-economics", pools[0].site_id);
    let labelled_by = heading_id.clone();
    view! {
        <section class="panel" aria-labelledby=labelled_by data-testid="site-economics">
            <h2 id=heading_id>{site.clone()}</h2>
            <p data-testid="mining-rate">{match mining {
                Some(m) => format!("Mining earns {} per MWh (hashprice {} per PH/s per day at {:.1} J/TH).",
                    format_rate(m),
                    format_cents(pools[0].hashprice_cents_per_ph_day.unwrap_or(0), "USD"),
                    pools[0].fleet_efficiency_j_th.unwrap_or(0.0)),
                None => "Set this site's hashprice and fleet efficiency to compare with mining.".into(),
            }}</p>
            <RateChart bars site=site.clone()/>
            <div class="table-scroll">
                <table class="data-table" data-testid="economics-table">
                    <caption class="visually-hidden">{format!("Earnings per MWh of {site}'s pools")}</caption>
                    <thead><tr>
                        <th scope="col">"Pool"</th>
                        <th scope="col" class="num">"List price"</th>
                        <th scope="col" class="num">"Per MWh at list"</th>
                        <th scope="col" class="num">"Per MWh booked"</th>
                        <th scope="col" class="num">"Break-even price"</th>
                        {what_if.map(|c| view! { <th scope="col" class="num">{format!("Per MWh at {}", format_cents(c as i64, "USD"))}</th> })}
                        <th scope="col">"Verdict"</th>
                    </tr></thead>
                    <tbody>
                        {pools.into_iter().map(|p| {
                            let unit = if p.kind == "gpu" { "/GPU-h" } else { "/kW-mo" };
                            let list = p.list_cents_per_mwh();
                            let verdict = match mining {
                                Some(m) if m > 0.0 => format!("AI earns {:.1}× mining", list / m),
                                Some(_) => "mining earns nothing at this hashprice".into(),
                                None => "no mining figures".into(),
                            };
                            view! {
                                <tr>
                                    <td data-label="Pool">{p.pool_name.clone()}</td>
                                    <td data-label="List price" class="num">{format!("{}{unit}", format_cents(p.price_cents, "USD"))}</td>
                                    <td data-label="Per MWh at list" class="num">{format_rate(list)}</td>
                                    <td data-label="Per MWh booked" class="num">{p.booked_cents_per_mwh().map(format_rate).unwrap_or_else(|| "no bookings".into())}</td>
                                    <td data-label="Break-even price" class="num">{p.break_even_cents_per_gpu_hour().map(|c| format!("{}/GPU-h", format_rate(c))).unwrap_or_else(|| "—".into())}</td>
                                    {what_if.map(|c| view! {
                                        <td data-label="At what-if" class="num">{p.what_if_cents_per_mwh(c).map(format_rate).unwrap_or_else(|| "—".into())}</td>
                                    })}
                                    <td data-label="Verdict">{verdict}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
}

/// Horizontal bars of earnings per MWh, each labelled with its value, so the chart reads
/// without colour; the mining bar is hatched. The table below carries the same figures.
#[component]
fn RateChart(bars: Vec<Bar>, site: String) -> impl IntoView {
    // Wide enough for "Hall A — H100 cluster at what-if price" at the label size.
    const W: f64 = 760.0;
    const LABEL: f64 = 330.0;
    const ROW: f64 = 28.0;
    let max = bars.iter().map(|b| b.cents).fold(1.0_f64, f64::max);
    let h = ROW * bars.len() as f64 + 8.0;
    let summary = bars
        .iter()
        .map(|b| format!("{} {}", b.label, format_rate(b.cents)))
        .collect::<Vec<_>>()
        .join("; ");
    view! {
        <figure class="chart">
            <svg viewBox=format!("0 0 {W} {h}") role="img" aria-label=format!("Earnings per MWh at {site}: {summary}") data-testid="rate-chart">
                <defs>
                    <pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
                        <line x1="0" y1="0" x2="0" y2="6" class="hatch-line"/>
                    </pattern>
                </defs>
                {bars.into_iter().enumerate().map(|(i, b)| {
                    let y = 4.0 + i as f64 * ROW;
                    let width = ((W - LABEL - 90.0) * b.cents / max).max(1.0);
                    view! {
                        <g>
                            <text x=LABEL - 8.0 y=y + 17.0 text-anchor="end" class="chart-label">{b.label.clone()}</text>
                            <rect x=LABEL y=y + 4.0 width=width height=ROW - 10.0
                                class=if b.mining { "bar bar-mining" } else { "bar" }
                                fill=if b.mining { "url(#hatch)" } else { "currentColor" }/>
                            <text x=LABEL + width + 6.0 y=y + 17.0 class="chart-label">{format_rate(b.cents)}</text>
                        </g>
                    }
                }).collect_view()}
            </svg>
            <figcaption class="muted small">"Per MWh of facility energy; the hatched bar is mining."</figcaption>
        </figure>
    }
}
