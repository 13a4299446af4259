//! A customer's reservations: the contracts its organization holds, newest first.

use crate::booking::Reservation;
use crate::components::{clean_error, FormResult, LocalTime, SignedIn};
use crate::money::format_cents;
use crate::window::ReservationState;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

pub const PAGE_SIZE: i64 = 50;

#[server(endpoint = "my_reservations")]
pub async fn my_reservations(before_id: Option<i64>) -> Result<Vec<Reservation>, ServerFnError> {
    use crate::services::{reservations, web};
    let me = web::principal()?
        .customer(crate::account::Scope::Read)
        .map_err(web::fail)?;
    reservations::list(&web::db()?, me, before_id, PAGE_SIZE, chrono::Utc::now())
        .await
        .map_err(web::fail)
}

#[server(endpoint = "get_reservation")]
pub async fn get_reservation(id: i64) -> Result<Reservation, ServerFnError> {
    use crate::services::{reservations, web};
    let me = web::principal()?
        .customer(crate::account::Scope::Read)
        .map_err(web::fail)?;
    reservations::get(&web::db()?, me, id, chrono::Utc::now())
        .await
        .map_err(web::fail)
}

#[server(endpoint = "cancel_reservation")]
pub async fn cancel_reservation(id: i64) -> Result<Reservation, ServerFnError> {
    use crate::services::{reservations, web};
    let me = web::principal()?
        .customer(crate::account::Scope::Reserve)
        .map_err(web::fail)?;
    reservations::cancel(&web::db()?, me, id, chrono::Utc::now())
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
    let list = Resource::new(move || cancel.version().get(), |_| my_reservations(None));
    view! {
        <FormResult value=move || cancel.value().get() ok="Reservation cancelled; the refund follows the pool's cancellation policy."/>
        <Transition fallback=|| view! { <p class="loading">"Loading reservations…"</p> }>
            {move || Suspend::new(async move {
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
                                view! {
                                    <tr>
                                        <td>"#" {r.id}</td><td data-label="Pool">{r.pool_id}</td><td class="num" data-label="Units">{r.units}</td>
                                        <td data-label="From"><LocalTime at=r.start/></td><td data-label="Until"><LocalTime at=r.end/></td>
                                        <td><span class=format!("tag tag-{}", r.state.as_str())>{r.state.as_str()}</span></td>
                                        <td class="num" data-label="Total">{format_cents(r.total_cents, &r.currency)}
                                            {r.refund_cents.map(|c| view! { <div class="muted small">"refunded " {format_cents(c, &r.currency)}</div> })}
                                        </td>
                                        <td>{cancellable.then(|| view! {
                                            <ActionForm action=cancel attr:class="inline-form">
                                                <input type="hidden" name="id" value=r.id/>
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
