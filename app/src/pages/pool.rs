//! A pool's page: what it is, where, on what terms, its free units over the next 90 days,
//! and the reserve form (a live quote while typing, a review step with the server's exact
//! quote and the cancellation terms, then the reservation).

use crate::app_error::AppError;
use crate::booking::{BookingRequest, Quote, Reservation, Tier, DEFAULT_HOLD_MINUTES};
use crate::components::{clean_error, LocalTime};
use crate::market::{PoolDetail, PoolKind};
use crate::money::format_cents;
use crate::pricing::Quantity;
use crate::request;
use chrono::{DateTime, Duration, Utc};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::market::POOL_CHART_DAYS as CHART_DAYS;

/// What the pool's page shows: the pool, and customers' resale listings on it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PoolView {
    pub detail: PoolDetail,
    pub resale: Vec<crate::resale::ResaleOffer>,
}

#[server(endpoint = "load_pool")]
pub async fn load_pool(id: i64) -> Result<PoolView, AppError> {
    use crate::services::resale::{self, OfferFilter};
    use crate::services::{market, web};
    let (db, now) = (web::browse_db()?, chrono::Utc::now());
    let detail = market::pool_detail(&db, id, web::platform_fee_bp(), now)
        .await
        .map_err(web::fail)?;
    let only_this_pool = OfferFilter {
        pool_id: Some(id),
        limit: 50,
        ..OfferFilter::default()
    };
    let resale = resale::offers(&db, &only_this_pool, now)
        .await
        .map_err(web::fail)?;
    Ok(PoolView { detail, resale })
}

/// The request in the page's URL, as typed.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct Ask {
    units: String,
    gpus: String,
    kw: String,
    start: String,
    hours: String,
    tier: Tier,
    review: bool,
}

impl Ask {
    fn from_query(q: &leptos_router::params::ParamsMap) -> Self {
        let get = |k: &str| {
            q.get(k)
                .unwrap_or_default()
                .trim()
                .chars()
                .take(40)
                .collect::<String>()
        };
        Self {
            units: get("units"),
            gpus: get("gpus"),
            kw: get("kw"),
            start: get("start"),
            hours: get("hours"),
            tier: Tier::parse(&get("tier")).unwrap_or_default(),
            review: q.get("review").is_some(),
        }
    }

    fn quantity(&self) -> Result<Quantity, String> {
        if !self.units.is_empty() && self.gpus.is_empty() && self.kw.is_empty() {
            return request::parse_count(&self.units, "units", 1..=100_000).map(Quantity::Units);
        }
        request::parse_quantity(&self.gpus, &self.kw)?
            .ok_or_else(|| "say how many units, GPUs or kW".into())
    }

    fn request(&self, pool_id: i64) -> Result<BookingRequest, String> {
        let start = request::parse_start(&self.start)?;
        let hours = request::parse_count(&self.hours, "the duration in hours", 1..=8760)?;
        Ok(BookingRequest {
            pool_id,
            quantity: self.quantity()?,
            start,
            end: start + Duration::hours(hours),
            tier: self.tier,
            agreed_total_cents: None,
        })
    }
}

#[server(endpoint = "quote_request")]
pub async fn quote_request(req: BookingRequest) -> Result<Quote, AppError> {
    use crate::services::{reservations, web};
    reservations::quote(
        &web::db()?,
        &req,
        web::platform_fee_bp(),
        chrono::Utc::now(),
    )
    .await
    .map_err(web::fail)
}

/// The review form's fields (named `review[...]`), as the page rendered them: the request,
/// the total the review showed (so a price that moved since is refused with the new total
/// instead of booked), and whether to hold instead of reserve.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ReviewFields {
    pub pool_id: i64,
    pub quantity: String,
    pub start: String,
    pub hours: i64,
    #[serde(default)]
    pub tier: Option<String>,
    #[serde(default)]
    pub agreed_total_cents: Option<i64>,
    #[serde(default)]
    pub hold: Option<String>,
}

/// The request the review's fields describe.
#[cfg(feature = "ssr")]
fn form_request(
    f: &ReviewFields,
    request_key: &Option<String>,
) -> Result<BookingRequest, AppError> {
    use crate::services::{error::ServiceError, web};
    let quantity = request::quantity_from_field(&f.quantity).ok_or_else(|| {
        web::fail(ServiceError::invalid(
            "quantity",
            "the quantity is malformed; start again from the pool page",
        ))
    })?;
    let start =
        request::parse_start(&f.start).map_err(|m| web::fail(ServiceError::invalid("start", m)))?;
    let tier = match f.tier.as_deref() {
        None | Some("") => Tier::Firm,
        Some(t) => Tier::parse(t).ok_or_else(|| {
            web::fail(ServiceError::invalid(
                "tier",
                "choose firm or interruptible capacity",
            ))
        })?,
    };
    if request_key
        .as_deref()
        .is_some_and(|k| k.len() > 200 || !k.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(web::fail(ServiceError::invalid(
            "request_key",
            "the form's key is malformed; reload the pool page",
        )));
    }
    Ok(BookingRequest {
        pool_id: f.pool_id,
        quantity,
        start,
        end: start + Duration::hours(f.hours),
        tier,
        agreed_total_cents: f.agreed_total_cents,
    })
}

/// The answer to a booking or a hold from the review: its reservation's page, or the
/// refusal with the next window that fits when the capacity went meanwhile.
#[cfg(feature = "ssr")]
fn booked_or_refused(
    made: Result<Reservation, crate::services::error::ServiceError>,
) -> Result<Reservation, AppError> {
    use crate::services::{error::ServiceError, web};
    match made {
        Ok(r) => {
            leptos_axum::redirect(&format!("/reservations/{}", r.id));
            Ok(r)
        }
        Err(ServiceError::Conflict { message, next_start: Some(next), .. }) => Err(web::fail(ServiceError::conflict(format!(
            "{message}. The next window that fits starts {} UTC; go back to the pool page to book it",
            crate::components::utc_minute(next)
        )))),
        Err(e) => Err(web::fail(e)),
    }
}

/// Reserves at the reviewed total, or with `hold` holds it at that total for the default
/// time, then goes to the new reservation (a hold's page has its countdown, confirm and
/// release). With `request_key` (the form's), at most once per key: the idempotency layer
/// replays a repeated form's answer, and the key stored with the reservation covers a first
/// answer that was lost.
#[server(endpoint = "reserve")]
pub async fn reserve(
    review: ReviewFields,
    request_key: Option<String>,
) -> Result<Reservation, AppError> {
    use crate::booking::HoldRequest;
    use crate::services::{reservations, web};
    let me = web::principal()?
        .customer(crate::account::Scope::Reserve)
        .map_err(web::fail)?;
    let key = request_key.filter(|k| !k.is_empty());
    let req = form_request(&review, &key)?;
    let (db, fee, now) = (web::db()?, web::platform_fee_bp(), chrono::Utc::now());
    let made = match (review.hold.is_some_and(|h| !h.is_empty()), &key) {
        (true, key) => {
            let held = HoldRequest {
                request: req,
                minutes: None,
            };
            reservations::hold(&db, me, &held, key.as_deref(), fee, now).await
        }
        (false, Some(k)) => reservations::reserve_once(&db, me, &req, k, fee, now).await,
        (false, None) => reservations::reserve(&db, me, &req, fee, now).await,
    };
    booked_or_refused(made)
}

#[component]
pub fn PoolPage() -> impl IntoView {
    let id = crate::components::use_id_param();
    let detail = crate::resource::load(id, load_pool);
    view! {
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading the pool…"</p> }>
            {move || Suspend::new(async move {
                match detail.await {
                    Ok(v) => view! { <Pool detail=v.detail resale=v.resale/> }.into_any(),
                    Err(e) if e.is_not_found() => view! { <crate::pages::not_found::NotFound/> }.into_any(),
                    Err(e) => view! { <p class="form-error" role="alert">{clean_error(&e.to_string())}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Pool(detail: PoolDetail, resale: Vec<crate::resale::ResaleOffer>) -> impl IntoView {
    let query = use_query_map();
    let ask = Ask::from_query(&query.read_untracked());
    let l = detail.listing.clone();
    let per = match l.kind {
        PoolKind::Gpu => "GPU-hour",
        PoolKind::Power => "kW-month",
    };
    let highlight = ask.request(l.pool_id).ok().map(|r| (r.start, r.end));
    view! {
        <Title text=l.pool_name.clone()/>
        <p class="crumbs"><a href="/">"Market"</a> " › " {l.site_name.clone()}</p>
        <h1>{l.pool_name.clone()}</h1>
        <p class="lede">{l.spec.clone()} " at " {l.site_name.clone()} ", " {l.region.clone()} " (" {l.country.clone()} ")"</p>
        <div class="pool-grid">
            <section class="panel" aria-labelledby="facts-title">
                <h2 id="facts-title">"The pool and its site"</h2>
                <dl class="facts" data-testid="pool-facts">
                    <div><dt>"Price"</dt><dd>{format_cents(l.price_cents, &l.currency)} " per " {per}</dd></div>
                    {l.interruptible.map(|o| view! {
                        <div><dt>"Interruptible"</dt><dd data-testid="interruptible-price">{format_cents(o.price_cents, &l.currency)} " per " {per}
                            ", " {o.notice_hours} " h notice"</dd></div>
                    })}
                    <div><dt>"Units"</dt><dd>{l.unit_count} {match l.kind { PoolKind::Gpu => " nodes", PoolKind::Power => " blocks" }}</dd></div>
                    <div><dt>"Grid · energy"</dt><dd>{l.grid_region.clone()} " · " {l.energy_source.clone()}</dd></div>
                    <div><dt>"PUE · cooling"</dt><dd>{format!("{:.2}", detail.pue)} " · " {detail.cooling.clone()}</dd></div>
                    <div><dt>"Site status"</dt><dd>{if l.site_live { "live" } else { "being built" }}</dd></div>
                    <div><dt>"Interconnect"</dt><dd>{format!("{:.1} MW", detail.interconnect_kw as f64 / 1000.0)}</dd></div>
                    <div><dt>"Reliability"</dt><dd data-testid="pool-reliability">{l.reliability.label()}
                        {l.reliability.share_bp().map(|_| view! { <div class="small muted">{format!(
                            "{} of {} unit-hours sold delivered (90 days)",
                            (l.reliability.sold_unit_hours - l.reliability.lost_unit_hours).max(0),
                            l.reliability.sold_unit_hours
                        )}</div> })}
                        {l.reliability.share_bp().is_none().then(|| view! { <div class="small muted">"nothing sold over the last 90 days to score"</div> })}</dd></div>
                </dl>
                {match l.forward {
                    Some(f) => view! {
                        <h3>"Forward capacity"</h3>
                        <ul class="terms" data-testid="pool-forward">
                            <li>"The hall is being built; its committed delivery is " <strong><LocalTime at=f.delivery_at/></strong>
                                ". Reservations start then or later and are charged when booked, as any reservation."</li>
                            <li>"Each full day the delivery is late credits " {f.late_credit.describe(&l.currency)} " to you, automatically."</li>
                            <li>"If it is still not delivered on " <LocalTime at=f.walk_away_at/> ", you may cancel with a full refund."</li>
                        </ul>
                    }.into_any(),
                    None if !l.site_live => view! {
                        <p class="note" data-testid="pool-forward">"The site is being built and this pool is not sold ahead of delivery; it can be booked once the site is live."</p>
                    }.into_any(),
                    None => ().into_any(),
                }}
                <h3>"Service level"</h3>
                <p data-testid="pool-sla">{l.sla.describe()}</p>
                <h3>"Terms"</h3>
                <ul class="terms">
                    <li>"Term: " {detail.terms.min_term_hours} " to " {detail.terms.max_term_hours} " hours, in whole hours (UTC)"</li>
                    <li>"Book at least " {detail.terms.min_lead_hours} " hours ahead"</li>
                    {detail.discounts.iter().map(|d| view! {
                        <li>{format!("{}% off for {} hours or more", d.discount_bp as f64 / 100.0, d.min_hours)}</li>
                    }).collect_view()}
                    {detail.cancellation_terms().iter().map(|t| view! {
                        <li>{format!("Cancel {} hours or more ahead: {}% refunded", t.min_notice_hours, t.refund_bp / 100)}</li>
                    }).collect_view()}
                    <li>"Otherwise no refund once the notice is shorter; a started reservation can't be cancelled"</li>
                </ul>
            </section>
            <section class="panel" aria-labelledby="chart-title">
                <h2 id="chart-title">"Free units, next " {CHART_DAYS} " days"</h2>
                <AvailabilityChart detail=detail.clone() highlight/>
            </section>
        </div>
        <ReserveForm detail=detail ask/>
        <ResaleSection offers=resale pool_id=l.pool_id/>
    }
}

/// Customers' resale listings on the pool, with buy forms for a signed-in customer.
#[component]
fn ResaleSection(offers: Vec<crate::resale::ResaleOffer>, pool_id: i64) -> impl IntoView {
    let auth = crate::session::use_auth();
    let sign_in = format!(
        "/login?next={}",
        request::encode(&format!("/pools/{pool_id}"))
    );
    (!offers.is_empty()).then(|| {
        view! {
            <Transition fallback=|| ()>
                {move || {
                    let (offers, sign_in) = (offers.clone(), sign_in.clone());
                    Suspend::new(async move {
                        let signed_in = matches!(auth.user.await, Ok(Some(_)));
                        view! { <crate::pages::resale::PoolResale offers signed_in sign_in/> }
                    })
                }}
            </Transition>
        }
    })
}

/// Free units over time as an SVG step chart, with the requested window marked by a hatched
/// band and labelled, so it reads without colour; a table gives the same numbers as text.
#[component]
fn AvailabilityChart(
    detail: PoolDetail,
    highlight: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> impl IntoView {
    const W: f64 = 640.0;
    const H: f64 = 200.0;
    const PAD_L: f64 = 36.0;
    const PAD_B: f64 = 24.0;
    let total = i64::from(detail.listing.unit_count).max(1) as f64;
    let span = (detail.to - detail.from).num_seconds().max(1) as f64;
    let x = move |t: DateTime<Utc>| {
        PAD_L
            + ((t - detail.from).num_seconds().clamp(0, span as i64) as f64 / span)
                * (W - PAD_L - 4.0)
    };
    let y = move |free: i64| 4.0 + (1.0 - free as f64 / total) * (H - PAD_B - 8.0);
    let mut path = String::new();
    let steps = detail.steps.clone();
    for (i, s) in steps.iter().enumerate() {
        let end = steps.get(i + 1).map(|n| n.at).unwrap_or(detail.to);
        let (x0, x1, yy) = (x(s.at), x(end), y(s.free));
        if i == 0 {
            path.push_str(&format!("M{x0:.1},{yy:.1}"));
        } else {
            path.push_str(&format!(" V{yy:.1}"));
        }
        path.push_str(&format!(" H{x1:.1}"));
    }
    let band = highlight.map(|(a, b)| (x(a), (x(b) - x(a)).max(2.0)));
    let label = format!(
        "Step chart of free units of {} from {} to {}, between 0 and {}.",
        detail.listing.pool_name,
        crate::components::utc_day(detail.from),
        crate::components::utc_day(detail.to),
        detail.listing.unit_count
    );
    let months: Vec<(f64, String)> = (0..=CHART_DAYS / 30)
        .map(|m| {
            let t = detail.from + Duration::days(m * 30);
            (x(t), crate::components::short_day(t))
        })
        .collect();
    let aria_label = label.clone();
    view! {
        <figure class="chart">
            <svg viewBox=format!("0 0 {W} {H}") role="img" aria-label=aria_label data-testid="availability-chart">
                <title>{label}</title>
                <defs>
                    <pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
                        <line x1="0" y1="0" x2="0" y2="6" stroke="currentColor" stroke-width="2" opacity="0.35"/>
                    </pattern>
                </defs>
                <line x1=PAD_L y1=y(0) x2=W y2=y(0) class="axis"/>
                <line x1=PAD_L y1=y(total as i64) x2=W y2=y(total as i64) class="grid"/>
                <text x=PAD_L - 4.0 y=y(0) + 4.0 text-anchor="end" class="tick">"0"</text>
                <text x=PAD_L - 4.0 y=y(total as i64) + 4.0 text-anchor="end" class="tick">{detail.listing.unit_count}</text>
                {months.into_iter().map(|(mx, text)| view! {
                    <text x=mx y=H - 6.0 text-anchor="middle" class="tick">{text}</text>
                }).collect_view()}
                {band.map(|(bx, bw)| view! {
                    <rect x=bx y="2" width=bw height=H - PAD_B - 2.0 fill="url(#hatch)" class="band"/>
                    <text x=bx + 2.0 y="14" class="tick band-label">"your window"</text>
                })}
                <path d=path class="line"/>
            </svg>
            <figcaption class="visually-hidden">
                <table>
                    <caption>"Free units by period"</caption>
                    <thead><tr><th scope="col">"From (UTC)"</th><th scope="col">"Free units"</th></tr></thead>
                    <tbody>{steps.into_iter().map(|s| view! {
                        <tr><td>{crate::components::utc_minute(s.at)}</td><td>{s.free}</td></tr>
                    }).collect_view()}</tbody>
                </table>
            </figcaption>
        </figure>
    }
}

#[component]
fn ReserveForm(detail: PoolDetail, ask: Ask) -> impl IntoView {
    let pool_id = detail.listing.pool_id;
    let review = ask.review.then(|| ask.request(pool_id));
    view! {
        <section class="panel" aria-labelledby="reserve-title" id="reserve">
            <h2 id="reserve-title">"Reserve"</h2>
            <form method="get" action=format!("/pools/{pool_id}") class="stack-form wide" data-testid="reserve-form">
                <input type="hidden" name="review" value="1"/>
                <ReserveFields detail=detail.clone() ask/>
                <button type="submit" class="button">"Review the exact quote"</button>
            </form>
            {review.map(|r| match r {
                Ok(req) => view! { <Review req detail=detail.clone()/> }.into_any(),
                Err(m) => view! { <p class="form-error" role="alert">{m}</p> }.into_any(),
            })}
        </section>
    }
}

/// The request's fields with a price preview that follows what is typed: the one part of
/// the pool page that runs in the browser (an island). Without JavaScript the review step
/// prices the request.
#[island]
fn ReserveFields(detail: PoolDetail, ask: Ask) -> impl IntoView {
    let is_gpu = detail.listing.kind == PoolKind::Gpu;
    let amount = RwSignal::new(if is_gpu {
        ask.gpus.clone()
    } else {
        ask.kw.clone()
    });
    let units = RwSignal::new(ask.units.clone());
    let tier = RwSignal::new(ask.tier);
    let hours = RwSignal::new(if ask.hours.is_empty() {
        detail.terms.min_term_hours.max(24).to_string()
    } else {
        ask.hours.clone()
    });
    let preview_detail = detail.clone();
    let preview = move || {
        let a = amount.get();
        let q = if !a.trim().is_empty() {
            let parsed = if is_gpu {
                request::parse_quantity(&a, "")
            } else {
                request::parse_quantity("", &a)
            };
            parsed.ok().flatten()
        } else {
            request::parse_count(&units.get(), "units", 1..=100_000)
                .ok()
                .map(Quantity::Units)
        };
        let h = request::parse_count(&hours.get(), "hours", 1..=8760);
        match (q, h) {
            (Some(q), Ok(h)) => preview_detail
                .preview(q, h, tier.get())
                .map(|(u, note, p)| (u, note, p, h)),
            (None, _) => Err("say how many".into()),
            (_, Err(m)) => Err(m),
        }
    };
    let currency = detail.listing.currency.clone();
    view! {
        <div class="search-grid">
            {if is_gpu {
                view! { <label>"GPUs" <input type="number" name="gpus" min="1" inputmode="numeric" prop:value=move || amount.get()
                    on:input=move |ev| amount.set(event_target_value(&ev)) value=ask.gpus.clone() placeholder="rounded up to whole nodes"/></label> }.into_any()
            } else {
                view! { <label>"kW" <input type="number" name="kw" min="1" inputmode="numeric" prop:value=move || amount.get()
                    on:input=move |ev| amount.set(event_target_value(&ev)) value=ask.kw.clone() placeholder="rounded up to whole blocks"/></label> }.into_any()
            }}
            <label>"or whole units"
                <input type="number" name="units" min="1" inputmode="numeric" value=ask.units.clone()
                    on:input=move |ev| units.set(event_target_value(&ev))/>
            </label>
            <label>"Start (UTC)"
                <input type="datetime-local" name="start" step="3600" required value=ask.start.clone()/>
            </label>
            <label>"Duration (hours)"
                <input type="number" name="hours" min="1" max="8760" required value=hours.get_untracked()
                    on:input=move |ev| hours.set(event_target_value(&ev))/>
            </label>
        </div>
        <TierChoice listing=detail.listing.clone() tier/>
        <p class="preview" role="status" aria-live="polite" data-testid="quote-preview">
            {move || match preview() {
                Ok((u, note, p, h)) => format!(
                    "{u} units for {h} hours: {} (base {}{}, platform fee {}){}",
                    format_cents(p.total_cents, &currency),
                    format_cents(p.base_cents, &currency),
                    if p.discount_cents > 0 { format!(", term discount −{}", format_cents(p.discount_cents, &currency)) } else { String::new() },
                    format_cents(p.fee_cents, &currency),
                    note.map(|n| format!(" — {n}")).unwrap_or_default()
                ),
                Err(m) => format!("Quote preview: {m}"),
            }}
        </p>
    }
}

/// The server's quote for the request, the cancellation terms, and the confirm button.
#[component]
fn Review(req: BookingRequest, detail: PoolDetail) -> impl IntoView {
    let quote = crate::resource::load(move || req, quote_request);
    let reserve = ServerAction::<Reserve>::new();
    let hold = ServerAction::<Reserve>::new();
    // A fresh key per form for each review: each answer comes back as a page rendered
    // afresh (a refused request may be changed and sent again; the same key with another
    // request would be refused).
    let form_keys = crate::resource::load(
        move || req,
        |_| async {
            (
                crate::components::form_key().await,
                crate::components::form_key().await,
            )
        },
    );
    let terms = detail.cancellation_terms();
    let auth = crate::session::use_auth();
    // A visitor who is not signed in is sent to sign in and back to this review.
    let location = leptos_router::hooks::use_location();
    let sign_in = move || {
        // The router's `search` comes without its `?`.
        let search = location.search.get_untracked();
        let here = match search.trim_start_matches('?') {
            "" => location.pathname.get_untracked(),
            q => format!("{}?{q}", location.pathname.get_untracked()),
        };
        format!("/login?next={}", request::encode(&here))
    };
    view! {
        <Transition fallback=|| view! { <p class="loading" role="status">"Pricing…"</p> }>
            {move || {
                let terms = terms.clone();
                Suspend::new(async move {
                    let (key, hold_key) = match form_keys.await {
                        (Ok(r), Ok(h)) => (r, h),
                        _ => Default::default(),
                    };
                    let signed_in = matches!(auth.user.await, Ok(Some(_)));
                    match quote.await {
                        Ok(q) => view! {
                            <div class="review" data-testid="review">
                                <h3>"Review"</h3>
                                <dl class="facts">
                                    <div><dt>"Tier"</dt><dd data-testid="review-tier">{q.tier.as_str()}</dd></div>
                                    <div><dt>"Units"</dt><dd>{q.units}{q.note.clone().map(|n| format!(" ({n})"))}</dd></div>
                                    <div><dt>"From"</dt><dd><LocalTime at=q.start/></dd></div>
                                    <div><dt>"Until"</dt><dd><LocalTime at=q.end/></dd></div>
                                    <div><dt>"Base"</dt><dd>{format_cents(q.price.base_cents, &q.currency)}</dd></div>
                                    <div><dt>"Term discount"</dt><dd>{format_cents(q.price.discount_cents, &q.currency)}</dd></div>
                                    <div><dt>"Platform fee"</dt><dd>{format_cents(q.price.fee_cents, &q.currency)}</dd></div>
                                    <div><dt>"Total"</dt><dd data-testid="review-total"><strong>{format_cents(q.price.total_cents, &q.currency)}</strong></dd></div>
                                    <div><dt>"Free now"</dt><dd>{q.free_units} " units"</dd></div>
                                </dl>
                                <p class="small">"Cancellation: "
                                    {terms.iter().map(|t| format!("{}% back with {} h notice", t.refund_bp / 100, t.min_notice_hours)).collect::<Vec<_>>().join("; ")}
                                    "; nothing once it has started."</p>
                                {q.preemption.map(|p| view! {
                                    <p class="notice" data-testid="review-preemption">
                                        {match q.free_units { 0 => "No units are free".to_string(), 1 => "Only 1 unit is free".to_string(), n => format!("Only {n} units are free") }}
                                        ": this firm booking takes " {p.units} {if p.units == 1 { " unit" } else { " units" }}
                                        " from interruptible reservations from " <LocalTime at=p.from/>
                                        ". Their customers are credited for the hours they lose."</p>
                                })}
                                {(q.tier == Tier::Interruptible).then(|| view! {
                                    <p class="notice" data-testid="review-interruptible">"Interruptible: a firm booking may take these units after the pool's notice period; every hour you lose is credited at the price you pay."</p>
                                })}
                                {if !signed_in {
                                    view! {
                                        <p><a class="button" href=sign_in() data-testid="sign-in-to-reserve">"Sign in to reserve"</a>
                                            " " <a href="/signup">"or create an account"</a></p>
                                    }.into_any()
                                } else if q.free_units >= q.units || q.preemption.is_some() {
                                    // A hold takes only free units (it never preempts).
                                    let holdable = q.free_units >= q.units;
                                    let fields = move |key: String| view! {
                                        <input type="hidden" name="review[pool_id]" value=q.pool_id/>
                                        <input type="hidden" name="review[quantity]" value=request::quantity_to_field(req.quantity)/>
                                        <input type="hidden" name="review[start]" value=q.start.to_rfc3339()/>
                                        <input type="hidden" name="review[hours]" value=q.hours/>
                                        <input type="hidden" name="request_key" value=key/>
                                        <input type="hidden" name="review[tier]" value=q.tier.as_str()/>
                                        <input type="hidden" name="review[agreed_total_cents]" value=q.price.total_cents/>
                                    };
                                    let total = format_cents(q.price.total_cents, &q.currency);
                                    view! {
                                        <div class="review-actions">
                                            <ActionForm action=reserve attr:class="inline-form">
                                                {fields(key)}
                                                <button type="submit" class="button" data-testid="confirm-reserve">
                                                    {format!("Reserve for {total}")}
                                                </button>
                                            </ActionForm>
                                            {holdable.then(|| view! {
                                                <ActionForm action=hold attr:class="inline-form">
                                                    {fields(hold_key)}
                                                    <input type="hidden" name="review[hold]" value="1"/>
                                                    <button type="submit" class="button secondary" data-testid="hold-capacity">
                                                        {format!("Hold this price for {DEFAULT_HOLD_MINUTES} minutes")}
                                                    </button>
                                                </ActionForm>
                                            })}
                                        </div>
                                        <p class="small muted">"The total is binding: if the price changes before you reserve, nothing is booked and you see the new total. A hold takes the units off sale for you until you confirm it or it ends."</p>
                                    }.into_any()
                                } else {
                                    view! { <p class="form-error" role="alert">
                                        "Not enough units are free for this window."
                                        {q.next_start.map(|n| view! { " The next window that fits starts " <LocalTime at=n/> "." })}
                                    </p> }.into_any()
                                }}
                            </div>
                        }.into_any(),
                        Err(e) => view! { <p class="form-error" role="alert" data-testid="review-error">{clean_error(&e.to_string())}</p> }.into_any(),
                    }
                })
            }}
        </Transition>
    }
}

/// Firm or interruptible, with the price of each and what interruption means, in plain
/// words. Only pools that sell an interruptible tier show the choice.
#[component]
fn TierChoice(listing: crate::market::PoolListing, tier: RwSignal<Tier>) -> impl IntoView {
    let offer = listing.interruptible?;
    let per = match listing.kind {
        PoolKind::Gpu => "GPU-hour",
        PoolKind::Power => "kW-month",
    };
    let firm_price = format_cents(listing.price_cents, &listing.currency);
    let flex_price = format_cents(offer.price_cents, &listing.currency);
    // Rounded to the nearest whole percent: 1.29 against 1.99 is 35% less, not 36.
    let firm = listing.price_cents.max(1);
    let saving = ((firm - offer.price_cents) * 100 + firm / 2) / firm;
    let notice = match offer.notice_hours {
        0 => "without notice".to_string(),
        1 => "with 1 hour's notice".to_string(),
        n => format!("with {n} hours' notice"),
    };
    Some(view! {
        <fieldset class="tier-choice" data-testid="tier-choice">
            <legend>"Tier"</legend>
            <label class="choice">
                <input type="radio" name="tier" value="firm" checked=tier.get_untracked() == Tier::Firm
                    on:change=move |_| tier.set(Tier::Firm)/>
                " Firm: " {firm_price} " per " {per} ". Yours for every hour you book."
            </label>
            <label class="choice">
                <input type="radio" name="tier" value="interruptible" checked=tier.get_untracked() == Tier::Interruptible
                    on:change=move |_| tier.set(Tier::Interruptible)/>
                " Interruptible: " {flex_price} " per " {per} " (" {saving} "% less). "
                "A firm booking may take your units " {notice} "; every hour you lose is credited at the price you paid."
            </label>
        </fieldset>
    })
}
