//! A customer's reservations: the contracts its organization holds, newest first.

use crate::app_error::AppError;
use crate::booking::{Reservation, ReservationDetail};
use crate::components::{clean_error, form_key, Countdown, FormResult, LocalTime, SignedIn};
use crate::money::format_cents;
use crate::window::ReservationState;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

pub const PAGE_SIZE: i64 = 50;

#[server(endpoint = "my_reservations")]
pub async fn my_reservations(before_id: Option<i64>) -> Result<Vec<Reservation>, AppError> {
    use crate::services::{reservations, web};
    let me = web::principal()?
        .customer(crate::account::Scope::Read)
        .map_err(web::fail)?;
    reservations::list(&web::db()?, me, before_id, PAGE_SIZE, chrono::Utc::now())
        .await
        .map_err(web::fail)
}

/// What a reservation's page shows: the reservation, its units and credits, and its resale
/// listings.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReservationView {
    pub detail: ReservationDetail,
    pub listings: Vec<crate::resale::Listing>,
    /// What incidents changed on it, and the offers they made.
    pub incident_hits: Vec<crate::incidents::IncidentHit>,
    pub offers: Vec<crate::incidents::IncidentOffer>,
    /// When it was read: what "from now" means on the page, the same on the server and in
    /// the browser.
    pub now: chrono::DateTime<chrono::Utc>,
}

#[server(endpoint = "get_reservation")]
pub async fn get_reservation(id: i64) -> Result<ReservationView, AppError> {
    use crate::services::{resale, reservations, web};
    let me = web::principal()?
        .customer(crate::account::Scope::Read)
        .map_err(web::fail)?;
    let (db, now) = (web::db()?, chrono::Utc::now());
    let detail = reservations::detail(&db, me, id, now)
        .await
        .map_err(web::fail)?;
    let listings = resale::mine(&db, me, Some(id), None, 100, now)
        .await
        .map_err(web::fail)?;
    // Scoped by `detail` above: the reservation is the caller's.
    let incident_hits = crate::services::incidents::hits_of_reservation(&db, id)
        .await
        .map_err(web::fail)?;
    let offers = crate::services::incidents::offers(&db, me, Some(id), None, 20)
        .await
        .map_err(web::fail)?;
    Ok(ReservationView {
        detail,
        listings,
        incident_hits,
        offers,
        now,
    })
}

#[server(endpoint = "cancel_reservation")]
pub async fn cancel_reservation(id: i64) -> Result<Reservation, AppError> {
    use crate::services::{reservations, web};
    let me = web::principal()?
        .customer(crate::account::Scope::Reserve)
        .map_err(web::fail)?;
    reservations::cancel(&web::db()?, me, id, chrono::Utc::now())
        .await
        .map_err(web::fail)
}

/// Confirms a hold at exactly its held total.
#[server(endpoint = "confirm_hold")]
pub async fn confirm_hold(id: i64) -> Result<Reservation, AppError> {
    use crate::services::{reservations, web};
    let me = web::principal()?
        .customer(crate::account::Scope::Reserve)
        .map_err(web::fail)?;
    reservations::confirm(&web::db()?, me, id, chrono::Utc::now())
        .await
        .map_err(web::fail)
}

#[component]
pub fn ReservationsPage() -> impl IntoView {
    view! {
        <Title text="Your reservations"/>
        <SignedIn next="/reservations" page=|u| {
            if u.kind.buys() {
                view! { <h1>"Your reservations"</h1> <List/> }.into_any()
            } else {
                crate::components::set_page_status(403);
                view! {
                    <section class="empty-state" data-testid="not-customer">
                        <h1>"For customers"</h1>
                        <p>"Your organization lists capacity; the bookings customers made on it are on "
                           <a href="/operator">"your operations page"</a> "."</p>
                    </section>
                }
                .into_any()
            }
        }/>
    }
}

#[component]
fn List() -> impl IntoView {
    let cancel = ServerAction::<CancelReservation>::new();
    let list = crate::resource::load(|| (), |_| my_reservations(None));
    // One fresh key per rendering of the list; each row's form adds its reservation's id.
    let page_key = crate::resource::load(|| (), |_| form_key());
    view! {
        <FormResult action=cancel ok="Reservation cancelled; the refund follows the pool's cancellation policy."/>
        <Transition fallback=|| view! { <p class="loading">"Loading reservations…"</p> }>
            {move || Suspend::new(async move {
                let page_key = page_key.await.unwrap_or_default();
                match list.await {
                    Ok(l) if l.is_empty() => view! {
                        <section class="empty-state">
                            <h2>"No reservations yet"</h2>
                            <p><a href="/">"Browse the market"</a> " to find capacity."</p>
                        </section>
                    }.into_any(),
                    Ok(l) => view! {
                        <div class="table-scroll"><table class="data-table" data-testid="reservation-table">
                            <thead><tr><th scope="col">"Reservation"</th><th scope="col">"Pool"</th><th scope="col" class="num">"Units"</th>
                                <th scope="col">"From"</th><th scope="col">"Until"</th><th scope="col">"State"</th>
                                <th scope="col" class="num">"Total"</th><th scope="col"></th></tr></thead>
                            <tbody>{l.into_iter().map(|r| {
                                let cancellable = matches!(r.state, ReservationState::Confirmed | ReservationState::Held);
                                let row_key = (!page_key.is_empty()).then(|| format!("{page_key}-{}", r.id));
                                view! {
                                    <tr>
                                        <td><a href=format!("/reservations/{}", r.id)>"#" {r.id}</a></td><td data-label="Pool"><a href=format!("/pools/{}", r.pool_id)>{r.pool_name.clone()}</a></td><td class="num" data-label="Units">{r.units}</td>
                                        <td data-label="From"><LocalTime at=r.start/></td><td data-label="Until"><LocalTime at=r.end/></td>
                                        <td><span class=format!("tag tag-{}", r.state.as_str())>{r.state.as_str()}</span></td>
                                        <td class="num" data-label="Total">{format_cents(r.total_cents, &r.currency)}
                                            {r.refund_cents.map(|c| view! { <div class="muted small">"refunded " {format_cents(c, &r.currency)}</div> })}
                                        </td>
                                        <td>{cancellable.then(|| view! {
                                            <ActionForm action=cancel attr:class="inline-form">
                                                <input type="hidden" name="id" value=r.id/>
                                                <input type="hidden" name="request_key" value=row_key.clone()/>
                                                <button type="submit" class="button secondary small">"Cancel"</button>
                                            </ActionForm>
                                        })}</td>
                                    </tr>
                                }
                            }).collect_view()}</tbody>
                        </table></div>
                    }.into_any(),
                    Err(e) => view! { <p class="form-error" role="alert">{clean_error(&e.to_string())}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// What cancelling now would refund; `None` when the reservation can't be cancelled (it has
/// started, or is cancelled), which is no error of the page that asks.
#[server(endpoint = "cancel_preview")]
pub async fn cancel_preview(id: i64) -> Result<Option<crate::booking::CancelPreview>, AppError> {
    use crate::services::{error::ServiceError, reservations, web};
    let me = web::principal()?
        .customer(crate::account::Scope::Read)
        .map_err(web::fail)?;
    match reservations::cancel_preview(&web::db()?, me, id, chrono::Utc::now()).await {
        Ok(p) => Ok(Some(p)),
        Err(ServiceError::Conflict { .. }) => Ok(None),
        Err(e) => Err(web::fail(e)),
    }
}

#[server(endpoint = "extend_reservation")]
pub async fn extend_reservation(id: i64, hours: i64) -> Result<Reservation, AppError> {
    use crate::booking::ExtendTo;
    use crate::services::{reservations, web};
    let me = web::principal()?
        .customer(crate::account::Scope::Reserve)
        .map_err(web::fail)?;
    let now = chrono::Utc::now();
    reservations::extend(
        &web::db()?,
        me,
        id,
        ExtendTo::ByHours(hours),
        web::platform_fee_bp(),
        now,
    )
    .await
    .map_err(web::fail)
}

/// What cancelling now refunds, and (`policy`) the share and notice it was reckoned with.
#[component]
fn RefundPreview(p: crate::booking::CancelPreview, policy: bool) -> impl IntoView {
    view! {
        <p data-testid="refund-preview">"Cancelling now refunds "
            <strong>{format_cents(p.refund_cents, "USD")}</strong>
            " of " {format_cents(p.total_cents - p.credited_cents, "USD")}
            {policy.then(|| format!(" ({}% with {} hours' notice)", p.refund_bp / 100, p.notice_hours))}
            {(p.credited_cents > 0).then(|| view! { "; " {format_cents(p.credited_cents, "USD")} " was credited already" })}
            "."</p>
    }
}

/// One reservation: its window in local time, units, price, and cancel (refund shown
/// before confirming) or extend.
#[component]
pub fn ReservationPage() -> impl IntoView {
    let id = crate::components::use_id_param();
    view! {
        <Title text="Reservation"/>
        <SignedIn next="/reservations" page=move |_| view! { <Detail id=id()/> }.into_any()/>
    }
}

#[component]
fn Detail(id: i64) -> impl IntoView {
    let cancel = ServerAction::<CancelReservation>::new();
    let extend = ServerAction::<ExtendReservation>::new();
    let confirm = ServerAction::<ConfirmHold>::new();
    let list = ServerAction::<crate::pages::resale::ListForResale>::new();
    let withdraw = ServerAction::<crate::pages::resale::WithdrawListing>::new();
    let accept = ServerAction::<crate::pages::incidents::AcceptIncidentOffer>::new();
    let decline = ServerAction::<crate::pages::incidents::DeclineIncidentOffer>::new();
    let r = crate::resource::load(|| (), move |_| get_reservation(id));
    let preview = crate::resource::load(|| (), move |_| cancel_preview(id));
    let keys = crate::resource::load(
        || (),
        |_| async {
            (
                form_key().await,
                form_key().await,
                form_key().await,
                form_key().await,
            )
        },
    );
    view! {
        <p class="crumbs"><a href="/reservations">"Your reservations"</a> " › #" {id}</p>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let (cancel_key, extend_key, confirm_key, resale_key) = match keys.await {
                    (Ok(c), Ok(e), Ok(k), Ok(r)) => (c, e, k, r),
                    _ => Default::default(),
                };
                let offer_key = format!("{confirm_key}-offer");
                match r.await {
                    Ok(ReservationView { detail: ReservationDetail { reservation: r, holdings, credits }, listings, incident_hits, offers, now }) => {
                        // Hours taken by preemption or an incident: nothing left, or no longer
                        // all the units at the end (so it cannot be extended on them).
                        let nothing_left = holdings.is_empty() && r.state != ReservationState::Cancelled;
                        let reaches_end = holdings.iter().filter(|h| h.end == r.end).count() as i64 == r.units;
                        let resale = r.resale_listing_id;
                        let open = r.state == ReservationState::Confirmed && !nothing_left && resale.is_none();
                        // A started forward contract past its walk-away date may still be
                        // cancelled, for everything, if its site was not delivered.
                        let walk_away = matches!(r.state, ReservationState::Active | ReservationState::Completed)
                            && r.forward.is_some_and(|f| now >= f.walk_away_at) && resale.is_none();
                        let walk_key = cancel_key.clone();
                        let held = (r.state == ReservationState::Held).then_some(r.held_until).flatten();
                        let extendable = matches!(r.state, ReservationState::Confirmed | ReservationState::Active) && reaches_end && resale.is_none();
                        // Firm, confirmed or running, not itself a resale, with an hour to come.
                        let sellable = matches!(r.state, ReservationState::Confirmed | ReservationState::Active)
                            && r.tier == crate::booking::Tier::Firm && resale.is_none() && !nothing_left
                            && r.end > now + chrono::Duration::hours(1);
                        view! {
                            <h1>"Reservation #" {r.id}</h1>
                            <dl class="facts" data-testid="reservation-facts">
                                <div><dt>"State"</dt><dd><span class=format!("tag tag-{}", r.state.as_str())>{r.state.as_str()}</span></dd></div>
                                <div><dt>"Pool"</dt><dd><a href=format!("/pools/{}", r.pool_id)>{r.pool_name.clone()}</a></dd></div>
                                <div><dt>"Tier"</dt><dd data-testid="reservation-tier">{r.tier.as_str()}
                                    {(r.tier == crate::booking::Tier::Interruptible).then(|| view! { <span class="muted small">" (a firm booking may take its units after the pool's notice; lost hours are credited)"</span> })}</dd></div>
                                <div><dt>"Units"</dt><dd>{r.units}</dd></div>
                                <div><dt>"From"</dt><dd><LocalTime at=r.start/></dd></div>
                                <div><dt>"Until"</dt><dd><LocalTime at=r.end/></dd></div>
                                <div><dt>"Total"</dt><dd data-testid="reservation-total">{format_cents(r.total_cents, &r.currency)}</dd></div>
                                {r.refund_cents.map(|c| view! { <div><dt>"Refunded"</dt><dd>{format_cents(c, &r.currency)}</dd></div> })}
                                {(r.credited_cents > 0).then(|| view! { <div><dt>"Credited"</dt><dd data-testid="reservation-credited">{format_cents(r.credited_cents, &r.currency)}</dd></div> })}
                                {r.forward.map(|f| view! {
                                    <div><dt>"Forward contract"</dt><dd data-testid="reservation-forward">
                                        "Delivery committed for " <LocalTime at=f.delivery_at/> "; "
                                        {f.late_credit.describe(&r.currency)} " credited for each full day late; if still not delivered on "
                                        <LocalTime at=f.walk_away_at/> ", cancel for a full refund"</dd></div>
                                })}
                            </dl>
                            {nothing_left.then(|| view! {
                                <p class="notice" data-testid="reservation-taken">"Every hour of this reservation was taken (see the credits below); nothing is left to deliver."</p>
                            })}
                            {(!nothing_left && !reaches_end && r.state != ReservationState::Cancelled).then(|| view! {
                                <p class="notice">"Part of this reservation was taken before its end (see the units and credits below), so it can't be extended on the same units."</p>
                            })}
                            {held.map(|until| {
                                let release_key = cancel_key.clone();
                                let total = format_cents(r.total_cents, &r.currency);
                                view! {
                                    <section class="panel hold" aria-labelledby="hold-title" data-testid="hold-panel">
                                        <h2 id="hold-title">"Held for you"</h2>
                                        <p>"These units are off sale for you at " <strong>{total.clone()}</strong>
                                           " until " <LocalTime at=until/> " " <Countdown until=until ended="(ended)"/>
                                           ". Confirm to book them at exactly this total. Otherwise the hold ends by itself and the units go back on sale; nothing is charged."</p>
                                        <div class="review-actions">
                                            <ActionForm action=confirm attr:class="inline-form">
                                                <input type="hidden" name="id" value=r.id/>
                                                <input type="hidden" name="request_key" value=confirm_key/>
                                                <button type="submit" class="button" data-testid="confirm-hold">{format!("Confirm for {total}")}</button>
                                            </ActionForm>
                                            <ActionForm action=cancel attr:class="inline-form">
                                                <input type="hidden" name="id" value=r.id/>
                                                <input type="hidden" name="request_key" value=release_key/>
                                                <button type="submit" class="button secondary" data-testid="release-hold">"Release the hold"</button>
                                            </ActionForm>
                                        </div>
                                    </section>
                                }
                            })}
                            {resale.map(|l| view! {
                                <p class="notice" data-testid="resale-terms">"Bought on resale (listing #" {l} "). " {crate::resale::RESALE_TERMS}</p>
                            })}
                            <crate::pages::incidents::ReservationIncidents hits=incident_hits offers accept decline accept_key=offer_key/>
                            <Holdings holdings=holdings/>
                            <Credits credits=credits currency=r.currency.clone()/>
                            {open.then(|| view! {
                                <section class="panel" aria-labelledby="cancel-title">
                                    <h2 id="cancel-title">"Cancel"</h2>
                                    <Transition fallback=|| ()>
                                        {move || Suspend::new(async move {
                                            preview.await.ok().flatten().map(|p| view! { <RefundPreview p=p policy=true/> })
                                        })}
                                    </Transition>
                                    <ActionForm action=cancel attr:class="inline-form">
                                        <input type="hidden" name="id" value=r.id/>
                                        <input type="hidden" name="request_key" value=cancel_key.clone()/>
                                        <button type="submit" class="button danger" data-testid="confirm-cancel">"Cancel this reservation"</button>
                                    </ActionForm>
                                </section>
                            })}
                            // Shown only when the server says the contract may be cancelled
                            // (its site is still not delivered).
                            {walk_away.then(|| {
                                let walk_key = walk_key.clone();
                                view! {
                                <Transition fallback=|| ()>
                                    {move || {
                                        let walk_key = walk_key.clone();
                                        Suspend::new(async move {
                                            preview.await.ok().flatten().map(|p| view! {
                                                <section class="panel" aria-labelledby="walk-away-title" data-testid="walk-away">
                                                    <h2 id="walk-away-title">"Walk away"</h2>
                                                    <p>"The capacity was not delivered by the walk-away date: you may cancel this contract for a full refund of what was not credited."</p>
                                                    <RefundPreview p=p policy=false/>
                                                    <ActionForm action=cancel attr:class="inline-form">
                                                        <input type="hidden" name="id" value=r.id/>
                                                        <input type="hidden" name="request_key" value=walk_key/>
                                                        <button type="submit" class="button danger" data-testid="walk-away-cancel">"Walk away with a full refund"</button>
                                                    </ActionForm>
                                                </section>
                                            })
                                        })
                                    }}
                                </Transition>
                            }})}
                            <crate::pages::resale::SellBack reservation=r.clone() listings sellable now list withdraw keys=(resale_key.clone(), resale_key)/>
                            {extendable.then(|| view! {
                                <section class="panel" aria-labelledby="extend-title">
                                    <h2 id="extend-title">"Extend"</h2>
                                    <ActionForm action=extend attr:class="inline-form">
                                        <input type="hidden" name="id" value=r.id/>
                                        <input type="hidden" name="request_key" value=extend_key/>
                                        <label>"Add hours " <input type="number" name="hours" min="1" max="8760" value="24" required/></label>
                                        <button type="submit" class="button secondary">"Extend on the same units"</button>
                                    </ActionForm>
                                </section>
                            })}
                        }.into_any()
                    }
                    Err(e) => view! { <p class="form-error" role="alert">{clean_error(&e.to_string())}</p> }.into_any(),
                }
            })}
        </Transition>
        <FormResult action=cancel ok="Cancelled. The refund follows the pool's policy."/>
        <FormResult action=extend ok="Extended."/>
        <FormResult action=confirm ok="Confirmed: reserved at the held total."/>
    }
}

/// The units serving the reservation, piece by piece: one line per unit when it was booked
/// whole, more when part of it moved to another unit or ended early.
#[component]
fn Holdings(holdings: Vec<crate::booking::ReservationHolding>) -> impl IntoView {
    (!holdings.is_empty()).then(|| {
        view! {
            <section class="panel" aria-labelledby="units-title">
                <h2 id="units-title">"Units serving it"</h2>
                <div class="table-scroll"><table class="data-table" data-testid="reservation-units">
                    <thead><tr><th scope="col">"Unit"</th><th scope="col">"From"</th><th scope="col">"Until"</th></tr></thead>
                    <tbody>{holdings.into_iter().map(|h| view! {
                        <tr><td>"Unit " {h.unit}</td><td data-label="From"><LocalTime at=h.start/></td><td data-label="Until"><LocalTime at=h.end/></td></tr>
                    }).collect_view()}</tbody>
                </table></div>
            </section>
        }
    })
}

/// Credits given for hours not delivered, oldest first.
#[component]
fn Credits(credits: Vec<crate::booking::ReservationCredit>, currency: String) -> impl IntoView {
    (!credits.is_empty()).then(|| {
        view! {
            <section class="panel" aria-labelledby="credits-title">
                <h2 id="credits-title">"Credits"</h2>
                <p class="muted">"Hours not delivered are credited at the price you paid; credits show on your monthly statement."</p>
                <div class="table-scroll"><table class="data-table" data-testid="reservation-credits">
                    <thead><tr><th scope="col">"When"</th><th scope="col">"Why"</th><th scope="col" class="num">"Unit-hours"</th><th scope="col" class="num">"Amount"</th></tr></thead>
                    <tbody>{credits.into_iter().map(|c| view! {
                        <tr>
                            <td><LocalTime at=c.effective_at/></td>
                            <td data-label="Why">{c.reason_text()}{(!c.memo.is_empty()).then(|| view! { <div class="muted small">{c.memo.clone()}</div> })}</td>
                            <td class="num" data-label="Unit-hours">{c.unit_hours}</td>
                            <td class="num" data-label="Amount">{format_cents(c.amount_cents, &currency)}</td>
                        </tr>
                    }).collect_view()}</tbody>
                </table></div>
            </section>
        }
    })
}
