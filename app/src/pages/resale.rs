//! Resale in the browser: the listings on a pool's page with their buy forms, and on a
//! reservation's page the form that lists its last hours for resale, with its listings.

use crate::app_error::AppError;
use crate::booking::Reservation;
use crate::components::{FormResult, LocalTime};
use crate::money::format_cents;
use crate::resale::{Listing, ListingState, ResaleOffer, RESALE_TERMS};
use leptos::form::ActionForm;
use leptos::prelude::*;

/// Buys units of a listing, then goes to the new reservation.
#[server(endpoint = "buy_resale")]
pub async fn buy_resale(listing_id: i64, units: i64) -> Result<Reservation, AppError> {
    use crate::services::{resale, web};
    let me = web::principal()?
        .customer(crate::account::Scope::Reserve)
        .map_err(web::fail)?;
    let r = resale::buy(
        &web::db()?,
        me,
        listing_id,
        Some(units),
        web::platform_fee_bp(),
        chrono::Utc::now(),
    )
    .await
    .map_err(web::fail)?;
    leptos_axum::redirect(&format!("/reservations/{}", r.id));
    Ok(r)
}

/// Lists the last `last_hours` hours of `units` units of a reservation at `price` dollars
/// per unit-hour.
#[server(endpoint = "list_for_resale")]
pub async fn list_for_resale(
    reservation_id: i64,
    units: String,
    last_hours: String,
    price: String,
) -> Result<Listing, AppError> {
    use crate::request;
    use crate::resale::NewListing;
    use crate::services::{error::ServiceError, resale, reservations, web};
    let me = web::principal()?
        .customer(crate::account::Scope::Reserve)
        .map_err(web::fail)?;
    let invalid = |field: &str, m: String| web::fail(ServiceError::invalid(field, m));
    let units =
        request::parse_count(&units, "units", 1..=100_000).map_err(|m| invalid("units", m))?;
    let last_hours = request::parse_count(&last_hours, "the hours to list", 1..=8760)
        .map_err(|m| invalid("last_hours", m))?;
    let price = request::parse_dollars(&price).map_err(|m| invalid("price", m))?;
    let (db, now) = (web::db()?, chrono::Utc::now());
    let r = reservations::get(&db, me, reservation_id, now)
        .await
        .map_err(web::fail)?;
    let listing = NewListing {
        reservation_id,
        units,
        start: r.end - chrono::Duration::hours(last_hours),
        unit_hour_price_cents: price,
    };
    resale::list(&db, me, &listing, now)
        .await
        .map_err(web::fail)
}

#[server(endpoint = "withdraw_listing")]
pub async fn withdraw_listing(id: i64) -> Result<Listing, AppError> {
    use crate::services::{resale, web};
    let me = web::principal()?
        .customer(crate::account::Scope::Reserve)
        .map_err(web::fail)?;
    resale::withdraw(&web::db()?, me, id, chrono::Utc::now())
        .await
        .map_err(web::fail)
}

/// A pool's open resale listings, each with its buy form (or the way to sign in).
#[component]
pub fn PoolResale(offers: Vec<ResaleOffer>, signed_in: bool, sign_in: String) -> impl IntoView {
    let buy = ServerAction::<BuyResale>::new();
    (!offers.is_empty()).then(|| {
        view! {
            <section class="panel" id="resale" aria-labelledby="resale-title" data-testid="pool-resale">
                <h2 id="resale-title">"Resale listings"</h2>
                <p class="muted">"Customers selling back the last hours of their reservations: whole units for the listed hours, bought as listed. " {RESALE_TERMS}</p>
                <div class="table-scroll"><table class="data-table">
                    <thead><tr><th scope="col">"Hours"</th><th scope="col" class="num">"Left"</th><th scope="col" class="num">"Price"</th><th scope="col"></th></tr></thead>
                    <tbody>{offers.into_iter().map(|o| {
                        let per = match o.kind { crate::market::PoolKind::Gpu => "GPU-hour", crate::market::PoolKind::Power => "kW-hour" };
                        let unit = if o.kind == crate::market::PoolKind::Gpu { "node-hour" } else { "block-hour" };
                        view! {
                            <tr data-testid=format!("resale-{}", o.listing_id)>
                                <td data-label="Hours"><span class="tag tag-resale">"resale"</span> " " <LocalTime at=o.start/> " – " <LocalTime at=o.end/> " (" {o.hours} " h)"</td>
                                <td class="num" data-label="Left">{o.units_left} " " {o.unit_word()}</td>
                                <td class="num" data-label="Price">{format_cents(o.unit_hour_price_cents, &o.currency)} " per " {unit}
                                    <div class="muted small">{format_cents(o.per_size_hour_cents(), &o.currency)} " per " {per}</div></td>
                                <td>{if signed_in {
                                    let each = o.hours * o.unit_hour_price_cents;
                                    let currency = o.currency.clone();
                                    view! {
                                        <ActionForm action=buy attr:class="inline-form">
                                            <input type="hidden" name="listing_id" value=o.listing_id/>
                                            <label>"Units " <select name="units" data-testid="resale-units">
                                                {(1..=o.units_left).rev().map(|n| view! { <option value=n>{n} " · " {format_cents(n * each, &currency)}</option> }).collect_view()}
                                            </select></label>
                                            <button type="submit" class="button" data-testid="buy-resale">"Buy"</button>
                                        </ActionForm>
                                    }.into_any()
                                } else {
                                    view! { <a class="button secondary" href=sign_in.clone()>"Sign in to buy"</a> }.into_any()
                                }}</td>
                            </tr>
                        }
                    }).collect_view()}</tbody>
                </table></div>
            </section>
        }
    })
}

/// On a firm reservation's page: list its last hours for resale, and its listings so far.
#[component]
pub fn SellBack(
    reservation: Reservation,
    listings: Vec<Listing>,
    sellable: bool,
    now: chrono::DateTime<chrono::Utc>,
    list: ServerAction<ListForResale>,
    withdraw: ServerAction<WithdrawListing>,
    keys: (String, String),
) -> impl IntoView {
    let (list_key, withdraw_key) = keys;
    let hours_left = (reservation.end - now.max(reservation.start)).num_hours();
    let suggested = hours_left.clamp(1, 48);
    (sellable || !listings.is_empty()).then(|| view! {
        <section class="panel" aria-labelledby="resale-title" data-testid="sell-back">
            <h2 id="resale-title">"Sell back"</h2>
            {sellable.then(|| view! {
                <p class="muted">"List the last hours of this reservation for other customers to buy. You are credited the price less the platform's fee when they buy; your contract with the operator stands. " {RESALE_TERMS}</p>
                <ActionForm action=list attr:class="inline-form" attr:data-testid="resale-form">
                    <input type="hidden" name="reservation_id" value=reservation.id/>
                    <input type="hidden" name="request_key" value=list_key/>
                    <label>"Units " <input type="number" name="units" min="1" max=reservation.units value=reservation.units required/></label>
                    <label>"Last hours " <input type="number" name="last_hours" min="1" max=hours_left value=suggested required data-testid="resale-hours"/></label>
                    <label>"Price per unit-hour ($) " <input type="text" name="price" inputmode="decimal" required data-testid="resale-price"/></label>
                    <button type="submit" class="button secondary" data-testid="list-resale">"List for resale"</button>
                </ActionForm>
            })}
            {(!listings.is_empty()).then(|| view! {
                <div class="table-scroll"><table class="data-table" data-testid="resale-listings">
                    <thead><tr><th scope="col">"Listing"</th><th scope="col">"Hours"</th><th scope="col" class="num">"Sold"</th><th scope="col" class="num">"Price"</th><th scope="col" class="num">"Proceeds"</th><th scope="col">"State"</th><th scope="col"></th></tr></thead>
                    <tbody>{listings.into_iter().map(|l| {
                        let key = format!("{withdraw_key}-{}", l.id);
                        view! {
                        <tr>
                            <td>"#" {l.id}</td>
                            <td data-label="Hours"><LocalTime at=l.start/> " – " <LocalTime at=l.end/></td>
                            <td class="num" data-label="Sold">{l.units_sold} " of " {l.units}</td>
                            <td class="num" data-label="Price">{format_cents(l.unit_hour_price_cents, &l.currency)} " per unit-hour"</td>
                            <td class="num" data-label="Proceeds" data-testid="resale-proceeds">{format_cents(l.proceeds_cents, &l.currency)}</td>
                            <td data-label="State"><span class=format!("tag tag-{}", l.state.as_str()) data-testid="listing-state">{l.state.as_str()}</span></td>
                            <td>{(l.state == ListingState::Open).then(|| view! {
                                <ActionForm action=withdraw attr:class="inline-form">
                                    <input type="hidden" name="id" value=l.id/>
                                    <input type="hidden" name="request_key" value=key/>
                                    <button type="submit" class="button secondary small" data-testid="withdraw-listing">"Withdraw"</button>
                                </ActionForm>
                            })}</td>
                        </tr>
                    }}).collect_view()}</tbody>
                </table></div>
            })}
            <FormResult action=list ok="Listed. It is on sale until its first hour begins."/>
            <FormResult action=withdraw ok="Listing withdrawn."/>
        </section>
    })
}
