//! One of the operator's pools: who holds which unit when (reservations, blackouts), the
//! booked share of each week, its sale windows, and maintenance: add a blackout on free
//! units (refused with the reservations in the way when they are booked) or remove one.

use crate::app_error::AppError;
use crate::components::{
    clean_error, input_minute, short_day, utc_minute, FormResult, LocalTime, NotOperator, SignedIn,
};
use crate::listing_form::PoolTermsForm;
use crate::money::format_cents;
use crate::operations::{OperatorBlackout, OperatorPool};
use crate::pages::incidents::{IncidentsPanel, ResolveIncident};
use crate::pages::operator::{BlackoutTable, RemoveBlackout};
use crate::utilization::{Holder, PoolUtilization};
use chrono::{DateTime, Duration, Utc};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

/// Weeks the chart covers: one behind, the rest ahead.
pub const CHART_WEEKS: i64 = 9;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolAdmin {
    pub pool: OperatorPool,
    pub terms: PoolTermsForm,
    pub use_: PoolUtilization,
    pub blackouts: Vec<OperatorBlackout>,
    pub windows: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    /// The latest incidents, newest first.
    pub incidents: Vec<crate::incidents::Incident>,
    /// The incident form's idempotency key.
    pub incident_key: String,
}

#[server(endpoint = "load_pool_admin")]
pub async fn load_pool_admin(id: i64) -> Result<PoolAdmin, AppError> {
    use crate::services::operations::{self, PoolScope};
    use crate::services::{pools, utilization, web};
    let me = web::principal()?
        .operator(crate::account::Scope::Read)
        .map_err(web::fail)?;
    let db = web::db()?;
    let today = crate::window::ceil_hour(chrono::Utc::now())
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or_default();
    let use_ = utilization::pool(&db, me, id, today - Duration::weeks(1), CHART_WEEKS)
        .await
        .map_err(web::fail)?;
    let pool = operations::pool(&db, me, id).await.map_err(web::fail)?;
    let blackouts = operations::blackouts(&db, me, PoolScope::Pool(id), None, 500)
        .await
        .map_err(web::fail)?;
    let mut conn = db.acquire().await.map_err(|e| web::fail(e.into()))?;
    let now = chrono::Utc::now();
    let windows = pools::open_intervals(&mut conn, id, now, now + Duration::days(365 * 10))
        .await
        .map_err(web::fail)?;
    let incidents = crate::services::incidents::list(&db, me, id, None, 50)
        .await
        .map_err(web::fail)?;
    let terms = PoolTermsForm::of(
        &crate::services::catalog::pool_input(&db, me, id)
            .await
            .map_err(web::fail)?,
    );
    Ok(PoolAdmin {
        pool,
        terms,
        use_,
        blackouts,
        windows,
        incidents,
        incident_key: crate::components::form_key().await?,
    })
}

/// Takes units out of sale for maintenance. `units` blank means every unit of the pool.
#[server(endpoint = "add_blackout")]
pub async fn add_blackout(
    pool_id: i64,
    units: String,
    start: String,
    end: String,
    reason: String,
) -> Result<i64, AppError> {
    use crate::request::{parse_count, parse_start};
    use crate::services::{blackouts, blackouts::BlackoutUnits, error::ServiceError, web};
    let me = web::principal()?
        .operator(crate::account::Scope::Operate)
        .map_err(web::fail)?;
    let bad = |field: &str, m: String| web::fail(ServiceError::invalid(field, m));
    let units = match units.trim() {
        "" | "all" => BlackoutUnits::All,
        n => BlackoutUnits::Count(
            parse_count(n, "the number of units", 1..=100_000).map_err(|m| bad("units", m))?,
        ),
    };
    let start = parse_start(&start).map_err(|m| bad("start", m))?;
    let end = parse_start(&end).map_err(|_| {
        bad(
            "end",
            "give the end as a date and time, e.g. 2026-12-02 09:00 (UTC)".into(),
        )
    })?;
    let id = blackouts::add(&web::db()?, me, pool_id, start, end, units, &reason)
        .await
        .map_err(web::fail)?;
    leptos_axum::redirect(&format!("/operator/pools/{pool_id}?blackout={id}"));
    Ok(id)
}

/// Changes the pool's name, price and terms; its hardware and size stay as listed.
#[server(endpoint = "update_pool_terms")]
pub async fn update_pool_terms(pool_id: i64, terms: PoolTermsForm) -> Result<(), AppError> {
    use crate::services::{catalog, error::ServiceError, web};
    let me = web::principal()?
        .operator(crate::account::Scope::Operate)
        .map_err(web::fail)?;
    let db = web::db()?;
    let listed = catalog::pool_input(&db, me, pool_id)
        .await
        .map_err(web::fail)?;
    let input = terms
        .apply(listed)
        .map_err(|(field, m)| web::fail(ServiceError::invalid(field, m)))?;
    let delayed = catalog::update_pool(&db, me, pool_id, &input)
        .await
        .map_err(web::fail)?;
    leptos_axum::redirect(&format!(
        "/operator/pools/{pool_id}?updated={}&delayed={delayed}",
        chrono::Utc::now().timestamp()
    ));
    Ok(())
}

/// Puts the pool on sale for another window.
#[server(endpoint = "open_pool_window")]
pub async fn open_pool_window(pool_id: i64, start: String, end: String) -> Result<i64, AppError> {
    use crate::request::parse_start;
    use crate::services::{catalog, error::ServiceError, web};
    let me = web::principal()?
        .operator(crate::account::Scope::Operate)
        .map_err(web::fail)?;
    let start = parse_start(&start).map_err(|m| web::fail(ServiceError::invalid("start", m)))?;
    let end = parse_start(&end).map_err(|_| {
        web::fail(ServiceError::invalid(
            "end",
            "give the end as a date and time, e.g. 2027-12-01 00:00 (UTC)",
        ))
    })?;
    let id = catalog::open_window(&web::db()?, me, pool_id, start, end)
        .await
        .map_err(web::fail)?;
    leptos_axum::redirect(&format!("/operator/pools/{pool_id}?opened=1"));
    Ok(id)
}

#[component]
pub fn OperatorPoolPage() -> impl IntoView {
    let id = crate::components::use_id_param();
    view! {
        <Title text="Pool"/>
        <SignedIn next="/operator" page=move |u| {
            if !u.kind.operates() {
                return view! { <NotOperator>"This page shows how an operator's pool is used."</NotOperator> }.into_any();
            }
            // A form's answer comes back as this page rendered afresh (`?blackout=N`), with
            // what was just done.
            let remove = ServerAction::<RemoveBlackout>::new();
            let resolve = ServerAction::<ResolveIncident>::new();
            let data = crate::resource::load(id, load_pool_admin);
            view! {
                <Transition fallback=|| view! { <p class="loading" role="status">"Loading the pool…"</p> }>
                    {move || Suspend::new(async move {
                        match data.await {
                            Ok(p) => view! { <Pool admin=p remove resolve/> }.into_any(),
                            Err(e) if e.is_not_found() => view! { <crate::pages::not_found::NotFound/> }.into_any(),
                            Err(e) => view! { <p class="form-error" role="alert">{clean_error(&e.to_string())}</p> }.into_any(),
                        }
                    })}
                </Transition>
            }.into_any()
        }/>
    }
}

#[component]
fn Pool(
    admin: PoolAdmin,
    remove: ServerAction<RemoveBlackout>,
    resolve: ServerAction<ResolveIncident>,
) -> impl IntoView {
    let recorded =
        use_query_map().with_untracked(|q| q.get("incident").and_then(|v| v.parse().ok()));
    let notice = use_query_map().with_untracked(|q| {
        if q.get("listed").is_some() {
            Some("Pool listed and on sale.".to_string())
        } else if q.get("blackout").is_some() {
            Some("Blackout added: its units are out of sale for that window.".to_string())
        } else if q.get("updated").is_some() {
            match q.get("delayed").and_then(|d| d.parse::<i64>().ok()).filter(|d| *d > 0) {
                Some(n) => Some(format!(
                    "Price and terms saved. The later delivery shifted {n} reservation(s) by the delay, whole; their customers were told, and their contracts keep the delivery they were sold on."
                )),
                None => Some("Price and terms saved; reservations already made keep their locked price.".to_string()),
            }
        } else if q.get("opened").is_some() {
            Some("Sale window opened.".to_string())
        } else {
            None
        }
    });
    let PoolAdmin {
        pool,
        terms,
        use_,
        blackouts,
        windows,
        incidents,
        incident_key,
    } = admin;
    let pool_id = pool.id;
    view! {
        <Title text=pool.name.clone()/>
        <p class="crumbs"><a href="/operator">"Operations"</a> " › "
            <a href=format!("/operator/sites/{}", pool.site_id)>{pool.site_name.clone()}</a> " › " {pool.name.clone()}</p>
        <h1>{pool.name.clone()}</h1>
        {notice.map(|n| view! { <p class="form-ok" role="status" data-testid="pool-notice">{n}</p> })}
        <dl class="summary-grid" data-testid="pool-summary">
            <div><dt>"Hardware"</dt><dd class="small">{pool.spec.clone()}</dd></div>
            <div><dt>"Units"</dt><dd>{pool.unit_count}</dd></div>
            <div><dt>"Price"</dt><dd>{format_cents(pool.price_cents, &pool.currency)} " " {pool.price_unit()}</dd></div>
            <div><dt>"Terms"</dt><dd class="small">{format!("{}–{} h, {} h ahead", pool.min_term_hours, pool.max_term_hours, pool.min_lead_hours)}</dd></div>
        </dl>
        <p><a href=format!("/pools/{pool_id}")>"See the pool as customers do →"</a></p>
        <section class="panel" aria-labelledby="use-title">
            <h2 id="use-title">"Who holds which unit"</h2>
            <UnitChart use_=use_.clone()/>
            <WeekTable use_=use_/>
        </section>
        <IncidentsPanel pool_id unit_count=pool.unit_count incidents recorded resolve form_key=incident_key/>
        <section class="panel" aria-labelledby="maintenance-title">
            <h2 id="maintenance-title">"Maintenance"</h2>
            <BlackoutList blackouts remove/>
            <BlackoutForm pool_id unit_count=pool.unit_count/>
        </section>
        <section class="panel" aria-labelledby="terms-title">
            <h2 id="terms-title">"Price and terms"</h2>
            <TermsEditForm pool_id terms gpu={pool.kind == "gpu"}/>
        </section>
        <section class="panel" aria-labelledby="windows-title">
            <h2 id="windows-title">"On sale"</h2>
            {if windows.is_empty() {
                view! { <p class="empty-state">"This pool is not on sale at any time ahead: open a window below."</p> }.into_any()
            } else {
                view! { <ul data-testid="sale-windows">{windows.into_iter().map(|(a, b)| view! {
                    <li><LocalTime at=a/> " → " <LocalTime at=b/></li>
                }).collect_view()}</ul> }.into_any()
            }}
            <WindowForm pool_id/>
        </section>
    }
}

/// Units as rows, time across: reservations solid and labelled with their number,
/// blackouts hatched, a line at now. The table below says the same in words.
#[component]
fn UnitChart(use_: PoolUtilization) -> impl IntoView {
    const W: f64 = 720.0;
    const PAD_L: f64 = 64.0;
    const ROW: f64 = 18.0;
    const TOP: f64 = 20.0;
    let rows = use_.shown_units.max(1);
    let h = TOP + ROW * rows as f64 + 8.0;
    let span = (use_.to - use_.from).num_seconds().max(1) as f64;
    let from = use_.from;
    let x = move |t: DateTime<Utc>| {
        PAD_L + ((t - from).num_seconds().clamp(0, span as i64) as f64 / span) * (W - PAD_L - 4.0)
    };
    let now = crate::components::now();
    let label =
        format!(
        "Units 1 to {} of {} over {} weeks from {}: {} reservation spans and {} blackout spans.",
        use_.shown_units,
        use_.pool_name,
        CHART_WEEKS,
        crate::components::utc_day(use_.from),
        use_.spans.iter().filter(|s| matches!(s.holder, Holder::Reservation { .. })).count(),
        use_.spans.iter().filter(|s| matches!(s.holder, Holder::Blackout { .. })).count(),
    );
    let weeks: Vec<(f64, String)> = (0..=CHART_WEEKS)
        .step_by(2)
        .map(|w| {
            let t = use_.from + Duration::weeks(w);
            (x(t), short_day(t))
        })
        .collect();
    let spans = use_.spans.clone();
    let aria_label = label.clone();
    view! {
        <figure class="chart">
            {(use_.unit_count > use_.shown_units).then(|| view! {
                <p class="small muted">{format!("The chart shows units 1 to {} of {}; the weekly shares count all of them.", use_.shown_units, use_.unit_count)}</p>
            })}
            <svg viewBox=format!("0 0 {W} {h}") role="img" aria-label=aria_label data-testid="unit-chart">
                <title>{label}</title>
                <defs>
                    <pattern id="blackout-hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
                        <line x1="0" y1="0" x2="0" y2="6" class="hatch-line"/>
                    </pattern>
                </defs>
                {weeks.into_iter().map(|(wx, text)| view! {
                    <line x1=wx y1=TOP - 4.0 x2=wx y2=h - 6.0 class="grid"/>
                    <text x=wx y="12" text-anchor="middle" class="tick">{text}</text>
                }).collect_view()}
                {(1..=rows).map(|u| view! {
                    <text x=PAD_L - 6.0 y=TOP + ROW * (u - 1) as f64 + 13.0 text-anchor="end" class="tick">{format!("unit {u}")}</text>
                }).collect_view()}
                {spans.into_iter().map(|s| {
                    let (x0, x1) = (x(s.start), x(s.end));
                    let y = TOP + ROW * (s.ordinal - 1) as f64 + 2.0;
                    let w = (x1 - x0).max(1.5);
                    match s.holder {
                        Holder::Reservation { id, customer } => view! {
                            <g class="span-reservation">
                                <rect x=x0 y=y width=w height=ROW - 4.0 rx="2"><title>{format!("#{id} {customer}")}</title></rect>
                                {(w > 34.0).then(|| view! { <text x=x0 + 3.0 y=y + 11.0 class="span-label">{format!("#{id}")}</text> })}
                            </g>
                        }.into_any(),
                        Holder::Blackout { id, reason } => view! {
                            <g class="span-blackout">
                                <rect x=x0 y=y width=w height=ROW - 4.0 fill="url(#blackout-hatch)"><title>{format!("blackout {id}: {reason}")}</title></rect>
                            </g>
                        }.into_any(),
                    }
                }).collect_view()}
                {(now > use_.from && now < use_.to).then(|| view! {
                    <line x1=x(now) y1=TOP - 6.0 x2=x(now) y2=h - 4.0 class="now-line"/>
                    <text x=x(now) + 3.0 y=TOP - 8.0 class="tick band-label">"now"</text>
                })}
            </svg>
            <figcaption class="small muted">"Solid: reserved (labelled with the reservation's number). Hatched: maintenance. Empty: free."</figcaption>
            <div class="visually-hidden"><table>
                <caption>"Units held, by unit"</caption>
                <thead><tr><th scope="col">"Unit"</th><th scope="col">"Held by"</th><th scope="col">"From (UTC)"</th><th scope="col">"Until (UTC)"</th></tr></thead>
                <tbody>{use_.spans.iter().map(|s| view! {
                    <tr><td>{s.ordinal}</td>
                        <td>{match &s.holder {
                            Holder::Reservation { id, customer } => format!("reservation #{id} ({customer})"),
                            Holder::Blackout { reason, .. } => format!("maintenance ({reason})"),
                        }}</td>
                        <td>{utc_minute(s.start)}</td><td>{utc_minute(s.end)}</td></tr>
                }).collect_view()}</tbody>
            </table></div>
        </figure>
    }
}

#[component]
fn WeekTable(use_: PoolUtilization) -> impl IntoView {
    view! {
        <div class="table-scroll"><table class="data-table compact" data-testid="week-shares">
            <caption class="visually-hidden">"Booked share of each week"</caption>
            <thead><tr><th scope="col">"Week from"</th><th scope="col" class="num">"Booked"</th>
                <th scope="col" class="num">"Unit-hours booked"</th><th scope="col" class="num">"Maintenance unit-hours"</th></tr></thead>
            <tbody>{use_.weeks.into_iter().map(|w| {
                let bp = w.booked_bp();
                view! {
                    <tr>
                        <td>{short_day(w.start)}</td>
                        <td class="num" data-label="Booked">
                            <svg class="share-bar" viewBox="0 0 100 8" aria-hidden="true"><rect width="100" height="8" class="share-track"/><rect width=(bp / 100).clamp(0, 100) height="8" class="share-fill"/></svg>
                            {format!("{}.{}%", bp / 100, (bp % 100) / 10)}
                        </td>
                        <td class="num" data-label="Unit-hours booked">{format!("{} of {}", w.booked_unit_hours, w.capacity_unit_hours)}</td>
                        <td class="num" data-label="Maintenance unit-hours">{w.blackout_unit_hours}</td>
                    </tr>
                }
            }).collect_view()}</tbody>
        </table></div>
    }
}

#[component]
fn BlackoutList(
    blackouts: Vec<OperatorBlackout>,
    remove: ServerAction<RemoveBlackout>,
) -> impl IntoView {
    view! {
        <FormResult action=remove ok="Blackout removed; its units are on sale again."/>
        {if blackouts.is_empty() {
            view! { <p class="muted">"No maintenance is scheduled on this pool."</p> }.into_any()
        } else {
            view! { <BlackoutTable blackouts remove show_pool=false testid="pool-blackouts"/> }.into_any()
        }}
    }
}

#[component]
fn BlackoutForm(pool_id: i64, unit_count: i64) -> impl IntoView {
    let add = ServerAction::<AddBlackout>::new();
    let start = crate::window::ceil_hour(crate::components::now()) + Duration::days(1);
    view! {
        <h3>"Add maintenance"</h3>
        <ActionForm action=add attr:class="stack-form wide" attr:data-testid="blackout-form">
            <input type="hidden" name="pool_id" value=pool_id/>
            <div class="search-grid">
                <label>"Units"
                    <input type="text" name="units" inputmode="numeric" placeholder=format!("blank: all {unit_count}")/>
                    <span class="small muted">"free units are chosen for you"</span>
                </label>
                <label>"From (UTC)" <input type="datetime-local" name="start" step="3600" required value=input_minute(start)/></label>
                <label>"Until (UTC)" <input type="datetime-local" name="end" step="3600" required value=input_minute(start + Duration::hours(8))/></label>
                <label>"Reason" <input type="text" name="reason" placeholder="maintenance" maxlength="500"/></label>
            </div>
            <p><button type="submit" class="button">"Add the blackout"</button></p>
        </ActionForm>
    }
}

#[component]
fn WindowForm(pool_id: i64) -> impl IntoView {
    let open = ServerAction::<OpenPoolWindow>::new();
    view! {
        <ActionForm action=open attr:class="stack-form wide" attr:data-testid="window-form">
            <input type="hidden" name="pool_id" value=pool_id/>
            <div class="search-grid">
                <label>"From (UTC)" <input type="datetime-local" name="start" step="3600" required/></label>
                <label>"Until (UTC)" <input type="datetime-local" name="end" step="3600" required/></label>
            </div>
            <p><button type="submit" class="button secondary">"Open a sale window"</button></p>
        </ActionForm>
    }
}

#[component]
fn TermsEditForm(pool_id: i64, terms: PoolTermsForm, gpu: bool) -> impl IntoView {
    let save = ServerAction::<UpdatePoolTerms>::new();
    let field = |label: &'static str, name: &'static str, value: String| {
        view! { <label>{label} <input type="text" name=format!("terms[{name}]") value=value required=name != "discounts" && name != "cancellation"/></label> }
    };
    view! {
        <ActionForm action=save attr:class="stack-form wide" attr:data-testid="terms-form">
            <input type="hidden" name="pool_id" value=pool_id/>
            <div class="search-grid">
                {field("Pool name", "name", terms.name)}
                {field(if gpu { "Price (USD per GPU-hour)" } else { "Price (USD per kW-month)" }, "price_usd", terms.price_usd)}
                {field("Minimum term (hours)", "min_term_hours", terms.min_term_hours)}
                {field("Maximum term (hours)", "max_term_hours", terms.max_term_hours)}
                {field("Minimum lead time (hours)", "min_lead_hours", terms.min_lead_hours)}
                {field("Term discounts (hours:percent)", "discounts", terms.discounts)}
                {field("Cancellation (notice hours:refund percent)", "cancellation", terms.cancellation)}
                <label>{if gpu { "Interruptible tier: USD per GPU-hour" } else { "Interruptible tier: USD per kW-month" }}
                    <input type="text" name="terms[interruptible_price_usd]" value=terms.interruptible_price_usd/>
                    <span class="small muted">"lower than the firm price; blank to sell firm capacity only"</span></label>
                <label>"Interruption notice (hours)"
                    <input type="text" name="terms[interruptible_notice_hours]" value=terms.interruptible_notice_hours/></label>
                <label>"SLA: monthly availability promise (%)"
                    <input type="text" name="terms[sla_promise_percent]" value=terms.sla_promise_percent inputmode="decimal"/></label>
                <label>"SLA credits (under %:credit % of the month's charge)"
                    <input type="text" name="terms[sla_credits]" value=terms.sla_credits/>
                    <span class="small muted">"e.g. 99.5:10, 99:25, 95:50; the deepest tier reached pays"</span></label>
                <label>"Forward: committed delivery (UTC)"
                    <input type="datetime-local" name="terms[forward_delivery]" step="3600" value=terms.forward_delivery/>
                    <span class="small muted">"for a hall being built; blank to sell once the site is live. A later date shifts reservations it passes by the delay, whole (refused if they would overlap others)"</span></label>
                <label>"Forward: credit per day late"
                    <input type="text" name="terms[forward_late_credit]" value=terms.forward_late_credit/>
                    <span class="small muted">"a share of the contract, e.g. 1%, or USD per unit, e.g. 25.00"</span></label>
                <label>"Forward: walk-away date (UTC)"
                    <input type="datetime-local" name="terms[forward_walk_away]" step="3600" value=terms.forward_walk_away/></label>
            </div>
            <p class="small muted">"Interruptible capacity is cheaper: a firm booking may take its units after the notice, and the customer is credited for every hour lost."</p>
            <p class="small muted">"New prices and terms apply to new reservations; those already made keep what they were sold at."</p>
            <p><button type="submit" class="button">"Save price and terms"</button></p>
        </ActionForm>
    }
}
