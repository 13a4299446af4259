//! The operator's view of its own business: sites, upcoming blackouts, bookings.
//! Only for operator organizations; every read is scoped to the caller's organization.

use crate::components::{clean_error, FormResult, LocalTime, SignedIn};
use crate::money::format_cents;
use crate::operations::{Booking, OperatorBlackout, OperatorSite};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

#[server(endpoint = "operator_sites")]
pub async fn operator_sites() -> Result<Vec<OperatorSite>, ServerFnError> {
    use crate::services::{operations, web};
    let me = web::principal()?
        .operator(crate::account::Scope::Read)
        .map_err(web::fail)?;
    operations::sites(&web::db()?, me, None, 500)
        .await
        .map_err(web::fail)
}

#[server(endpoint = "operator_blackouts")]
pub async fn operator_blackouts() -> Result<Vec<OperatorBlackout>, ServerFnError> {
    use crate::services::{operations, web};
    let me = web::principal()?
        .operator(crate::account::Scope::Read)
        .map_err(web::fail)?;
    operations::blackouts(&web::db()?, me, None, 500)
        .await
        .map_err(web::fail)
}

#[server(endpoint = "operator_bookings")]
pub async fn operator_bookings(before_id: Option<i64>) -> Result<Vec<Booking>, ServerFnError> {
    use crate::services::{operations, web};
    let me = web::principal()?
        .operator(crate::account::Scope::Read)
        .map_err(web::fail)?;
    operations::bookings(&web::db()?, me, before_id, 50)
        .await
        .map_err(web::fail)
}

#[server(endpoint = "remove_blackout")]
pub async fn remove_blackout(id: i64) -> Result<(), ServerFnError> {
    use crate::services::{blackouts, web};
    let me = web::principal()?
        .operator(crate::account::Scope::Operate)
        .map_err(web::fail)?;
    blackouts::remove(&web::db()?, me, id)
        .await
        .map_err(web::fail)
}

#[component]
pub fn OperatorPage() -> impl IntoView {
    view! {
        <Title text="Operations"/>
        <SignedIn next="/operator" page=|u| {
            if u.kind.operates() {
                view! {
                    <h1>{u.organization_name} " · operations"</h1>
                    <Sites/>
                    <Blackouts/>
                    <Bookings/>
                }
                .into_any()
            } else {
                crate::components::set_page_status(403);
                view! {
                    <section class="empty-state" data-testid="not-operator">
                        <h1>"For site operators"</h1>
                        <p>"Operations pages are for organizations that list sites and capacity. Your organization reserves capacity; see "
                           <a href="/reservations">"your reservations"</a> "."</p>
                    </section>
                }
                .into_any()
            }
        }/>
    }
}

fn error_view(e: ServerFnError) -> AnyView {
    view! { <p class="form-error" role="alert">{clean_error(&e.to_string())}</p> }.into_any()
}

#[component]
fn Sites() -> impl IntoView {
    let sites = Resource::new(|| (), |_| operator_sites());
    view! {
        <section aria-labelledby="sites-title">
            <h2 id="sites-title">"Sites"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading sites…"</p> }>
                {move || Suspend::new(async move {
                    match sites.await {
                        Ok(list) if list.is_empty() => view! { <p class="empty-state">"You have no sites yet."</p> }.into_any(),
                        Ok(list) => view! {
                            <div class="table-scroll"><table class="data-table" data-testid="site-table">
                                <thead><tr><th scope="col">"Site"</th><th scope="col">"Grid · energy"</th>
                                    <th scope="col" class="num">"Interconnect"</th><th scope="col" class="num">"Pools"</th><th scope="col">"Status"</th></tr></thead>
                                <tbody>{list.into_iter().map(|s| view! {
                                    <tr>
                                        <td>{s.name}<div class="muted small">{s.region} ", " {s.country}</div></td>
                                        <td>{s.grid_region}<div class="muted small">{s.energy_source}</div></td>
                                        <td class="num" data-label="Interconnect">{format!("{:.1} MW", s.interconnect_kw as f64 / 1000.0)}</td>
                                        <td class="num" data-label="Pools">{s.pools}</td>
                                        <td><span class=format!("tag tag-{}", s.status)>{s.status.clone()}</span></td>
                                    </tr>
                                }).collect_view()}</tbody>
                            </table></div>
                        }.into_any(),
                        Err(e) => error_view(e),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn Blackouts() -> impl IntoView {
    let remove = ServerAction::<RemoveBlackout>::new();
    let list = Resource::new(move || remove.version().get(), |_| operator_blackouts());
    view! {
        <section aria-labelledby="blackouts-title">
            <h2 id="blackouts-title">"Upcoming maintenance"</h2>
            <FormResult value=move || remove.value().get() ok="Blackout removed; its units are on sale again."/>
            <Transition fallback=|| view! { <p class="loading">"Loading blackouts…"</p> }>
                {move || Suspend::new(async move {
                    match list.await {
                        Ok(l) if l.is_empty() => view! { <p class="empty-state">"No maintenance is scheduled."</p> }.into_any(),
                        Ok(l) => view! {
                            <div class="table-scroll"><table class="data-table" data-testid="blackout-table">
                                <thead><tr><th scope="col">"Pool"</th><th scope="col" class="num">"Units"</th>
                                    <th scope="col">"From"</th><th scope="col">"Until"</th><th scope="col">"Reason"</th><th scope="col"></th></tr></thead>
                                <tbody>{l.into_iter().map(|b| view! {
                                    <tr>
                                        <td>{b.pool_name}</td><td class="num" data-label="Units">{b.units}</td>
                                        <td data-label="From"><LocalTime at=b.start/></td><td data-label="Until"><LocalTime at=b.end/></td><td data-label="Reason">{b.reason}</td>
                                        <td><ActionForm action=remove attr:class="inline-form">
                                            <input type="hidden" name="id" value=b.id/>
                                            <button type="submit" class="button secondary small">"Remove"</button>
                                        </ActionForm></td>
                                    </tr>
                                }).collect_view()}</tbody>
                            </table></div>
                        }.into_any(),
                        Err(e) => error_view(e),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn Bookings() -> impl IntoView {
    let list = Resource::new(|| (), |_| operator_bookings(None));
    view! {
        <section aria-labelledby="bookings-title">
            <h2 id="bookings-title">"Latest bookings"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading bookings…"</p> }>
                {move || Suspend::new(async move {
                    match list.await {
                        Ok(l) if l.is_empty() => view! { <p class="empty-state">"No customer has booked your capacity yet."</p> }.into_any(),
                        Ok(l) => view! {
                            <div class="table-scroll"><table class="data-table" data-testid="booking-table">
                                <thead><tr><th scope="col">"Booking"</th><th scope="col">"Pool"</th>
                                    <th scope="col" class="num">"Units"</th><th scope="col">"From"</th><th scope="col">"Until"</th>
                                    <th scope="col">"State"</th><th scope="col" class="num">"Total"</th></tr></thead>
                                <tbody>{l.into_iter().map(|b| view! {
                                    <tr>
                                        <td>"#" {b.id} " · " {b.customer_name}</td><td data-label="Pool">{b.pool_name}</td><td class="num" data-label="Units">{b.units}</td>
                                        <td data-label="From"><LocalTime at=b.start/></td><td data-label="Until"><LocalTime at=b.end/></td>
                                        <td><span class=format!("tag tag-{}", b.state)>{b.state.clone()}</span></td>
                                        <td class="num" data-label="Total">{format_cents(b.total_cents, &b.currency)}</td>
                                    </tr>
                                }).collect_view()}</tbody>
                            </table></div>
                        }.into_any(),
                        Err(e) => error_view(e),
                    }
                })}
            </Transition>
        </section>
    }
}
