//! The operator's view of its own business: sites, upcoming blackouts, and every booking
//! (filtered by site, pool, state and dates, with totals, pages and a CSV export).
//! Only for operator organizations; every read is scoped to the caller's organization.

use crate::app_error::AppError;
use crate::components::{clean_error, FormResult, LocalTime, NotOperator, SignedIn};
use crate::money::format_cents;
use crate::operations::{
    Booking, BookingTotals, OperatorBlackout, OperatorPool, OperatorSite, BOOKING_STATES,
};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

#[server(endpoint = "operator_sites")]
pub async fn operator_sites() -> Result<Vec<OperatorSite>, AppError> {
    use crate::services::{operations, web};
    let me = web::principal()?
        .operator(crate::account::Scope::Read)
        .map_err(web::fail)?;
    operations::sites(&web::db()?, me, None, 500)
        .await
        .map_err(web::fail)
}

#[server(endpoint = "operator_blackouts")]
pub async fn operator_blackouts() -> Result<Vec<OperatorBlackout>, AppError> {
    use crate::services::{operations, web};
    let me = web::principal()?
        .operator(crate::account::Scope::Read)
        .map_err(web::fail)?;
    operations::blackouts(&web::db()?, me, operations::PoolScope::All, None, 500)
        .await
        .map_err(web::fail)
}

/// A page of the operator's bookings under a filter, with what they all add up to and the
/// pools to filter by.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BookingsPage {
    pub items: Vec<Booking>,
    pub totals: BookingTotals,
    /// The `before` of the next (older) page, when there is one.
    pub next_before: Option<i64>,
    pub pools: Vec<OperatorPool>,
}

pub const BOOKINGS_PER_PAGE: i64 = 50;

#[server(endpoint = "operator_bookings")]
pub async fn operator_bookings(
    site: String,
    pool: String,
    state: String,
    from: String,
    to: String,
    before: Option<i64>,
) -> Result<BookingsPage, AppError> {
    use crate::operations::BookingFilter;
    use crate::services::{error::ServiceError, operations, web};
    let me = web::principal()?
        .operator(crate::account::Scope::Read)
        .map_err(web::fail)?;
    let filter = BookingFilter::parse(&site, &pool, &state, &from, &to)
        .map_err(|m| web::fail(ServiceError::invalid("filter", m)))?;
    let db = web::db()?;
    let mut items = operations::bookings(&db, me, &filter, before, BOOKINGS_PER_PAGE + 1)
        .await
        .map_err(web::fail)?;
    let next_before = if items.len() as i64 > BOOKINGS_PER_PAGE {
        items.truncate(BOOKINGS_PER_PAGE as usize);
        items.last().map(|b| b.id)
    } else {
        None
    };
    Ok(BookingsPage {
        items,
        totals: operations::booking_totals(&db, me, &filter)
            .await
            .map_err(web::fail)?,
        next_before,
        pools: operations::pools(&db, me, operations::PoolScope::All)
            .await
            .map_err(web::fail)?,
    })
}

#[server(endpoint = "remove_blackout")]
pub async fn remove_blackout(id: i64) -> Result<(), AppError> {
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
                    <p><a href="/operator/economics" data-testid="economics-link">"AI or mining: what a MWh earns on each site →"</a></p>
                    <Sites/>
                    <Blackouts/>
                    <Bookings/>
                }
                .into_any()
            } else {
                view! {
                    <NotOperator>
                        "Operations pages are for organizations that list sites and capacity. Your organization reserves capacity; see "
                        <a href="/reservations">"your reservations"</a> "."
                    </NotOperator>
                }
                .into_any()
            }
        }/>
    }
}

fn error_view(e: AppError) -> AnyView {
    view! { <p class="form-error" role="alert">{clean_error(&e.to_string())}</p> }.into_any()
}

#[component]
fn Sites() -> impl IntoView {
    let sites = crate::resource::load(|| (), |_| operator_sites());
    view! {
        <section aria-labelledby="sites-title">
            <h2 id="sites-title">"Sites"</h2>
            <p><a class="button" href="/operator/sites/new" data-testid="new-site">"List a site"</a></p>
            <Transition fallback=|| view! { <p class="loading">"Loading sites…"</p> }>
                {move || Suspend::new(async move {
                    match sites.await {
                        Ok(list) if list.is_empty() => view! { <p class="empty-state">"You have no sites yet: list your first one to start selling capacity."</p> }.into_any(),
                        Ok(list) => view! {
                            <div class="table-scroll"><table class="data-table" data-testid="site-table">
                                <thead><tr><th scope="col">"Site"</th><th scope="col">"Grid · energy"</th>
                                    <th scope="col" class="num">"Interconnect"</th><th scope="col" class="num">"Pools"</th><th scope="col">"Status"</th></tr></thead>
                                <tbody>{list.into_iter().map(|s| view! {
                                    <tr>
                                        <td><a href=format!("/operator/sites/{}", s.id)>{s.name}</a><div class="muted small">{s.region} ", " {s.country}</div></td>
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
    let list = crate::resource::load(|| (), |_| operator_blackouts());
    view! {
        <section aria-labelledby="blackouts-title">
            <h2 id="blackouts-title">"Upcoming maintenance"</h2>
            <FormResult action=remove ok="Blackout removed; its units are on sale again."/>
            <Transition fallback=|| view! { <p class="loading">"Loading blackouts…"</p> }>
                {move || Suspend::new(async move {
                    match list.await {
                        Ok(l) if l.is_empty() => view! { <p class="empty-state">"No maintenance is scheduled."</p> }.into_any(),
                        Ok(l) => view! {
                            <BlackoutTable blackouts=l remove show_pool=true testid="blackout-table"/>
                        }.into_any(),
                        Err(e) => error_view(e),
                    }
                })}
            </Transition>
        </section>
    }
}

/// Upcoming blackouts, each with its Remove button; with `show_pool`, the pool each is on
/// (the operations page lists every pool's, the pool page its own).
#[component]
pub fn BlackoutTable(
    blackouts: Vec<OperatorBlackout>,
    remove: ServerAction<RemoveBlackout>,
    show_pool: bool,
    testid: &'static str,
) -> impl IntoView {
    view! {
        <div class="table-scroll"><table class="data-table" data-testid=testid>
            <thead><tr>
                {show_pool.then(|| view! { <th scope="col">"Pool"</th> })}
                <th scope="col" class="num">"Units"</th><th scope="col">"From"</th><th scope="col">"Until"</th>
                <th scope="col">"Reason"</th><th scope="col"><span class="visually-hidden">"Remove"</span></th>
            </tr></thead>
            <tbody>{blackouts.into_iter().map(|b| view! {
                <tr>
                    {show_pool.then(|| view! {
                        <td><a href=format!("/operator/pools/{}", b.pool_id)>{b.pool_name.clone()}</a></td>
                    })}
                    <td class="num" data-label="Units">{b.units}</td>
                    <td data-label="From"><LocalTime at=b.start/></td>
                    <td data-label="Until"><LocalTime at=b.end/></td>
                    <td data-label="Reason">{b.reason}</td>
                    <td><ActionForm action=remove attr:class="inline-form">
                        <input type="hidden" name="id" value=b.id/>
                        <button type="submit" class="button secondary small">"Remove"</button>
                    </ActionForm></td>
                </tr>
            }).collect_view()}</tbody>
        </table></div>
    }
}

#[component]
fn Bookings() -> impl IntoView {
    let query = use_query_map();
    let get = move |k: &str| query.read().get(k).unwrap_or_default();
    let list = crate::resource::load(
        move || {
            (
                get("site"),
                get("pool"),
                get("state"),
                get("from"),
                get("to"),
                get("before").parse::<i64>().ok(),
            )
        },
        |(site, pool, state, from, to, before)| {
            operator_bookings(site, pool, state, from, to, before)
        },
    );
    // The filter as a query string, for the CSV link and the next page.
    let filter_query = move || {
        ["site", "pool", "state", "from", "to"]
            .iter()
            .map(|k| format!("{k}={}", crate::request::encode(&get(k))))
            .collect::<Vec<_>>()
            .join("&")
    };
    view! {
        <section aria-labelledby="bookings-title" id="bookings">
            <h2 id="bookings-title">"Bookings"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading bookings…"</p> }>
                {move || Suspend::new(async move {
                    match list.await {
                        Ok(page) => view! {
                            <BookingFilterForm pools=page.pools.clone()/>
                            <dl class="summary-grid" data-testid="booking-totals">
                                <div><dt>"Bookings"</dt><dd>{page.totals.bookings}</dd></div>
                                <div><dt>"Unit-hours"</dt><dd>{crate::money::group_thousands(page.totals.unit_hours.max(0) as u64)}</dd></div>
                                <div><dt>"Total (cancelled excluded)"</dt><dd>{format_cents(page.totals.total_cents, &page.totals.currency)}</dd></div>
                            </dl>
                            <p><a class="button secondary" href=format!("/operator/bookings.csv?{}", filter_query()) download data-testid="bookings-csv">"Download CSV"</a></p>
                            <BookingTable items=page.items/>
                            {page.next_before.map(|b| view! {
                                <nav class="pager" aria-label="Bookings pages">
                                    <a href=format!("/operator?{}&before={b}#bookings", filter_query()) data-testid="older-bookings">"Older bookings →"</a>
                                </nav>
                            })}
                        }.into_any(),
                        Err(e) => view! {
                            <BookingFilterForm pools=Vec::new()/>
                            {error_view(e)}
                        }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// The bookings filter: a GET form, so a filtered list has its own URL and works without
/// JavaScript.
#[component]
fn BookingFilterForm(pools: Vec<OperatorPool>) -> impl IntoView {
    let [site, pool, state, from, to] = use_query_map().with_untracked(|q| {
        ["site", "pool", "state", "from", "to"].map(|k| q.get(k).unwrap_or_default())
    });
    let mut sites: Vec<(i64, String)> = pools
        .iter()
        .map(|p| (p.site_id, p.site_name.clone()))
        .collect();
    sites.dedup();
    view! {
        <form method="get" action="/operator#bookings" class="search-form" data-testid="booking-filter">
            <div class="search-grid">
                <label>"Site"
                    <select name="site">
                        <option value="">"All sites"</option>
                        {sites.into_iter().map(|(id, name)| {
                            let selected = site == id.to_string();
                            view! { <option value=id.to_string() selected=selected>{name}</option> }
                        }).collect_view()}
                    </select>
                </label>
                <label>"Pool"
                    <select name="pool">
                        <option value="">"All pools"</option>
                        {pools.into_iter().map(|p| {
                            let selected = pool == p.id.to_string();
                            view! { <option value=p.id.to_string() selected=selected>{format!("{} · {}", p.site_name, p.name)}</option> }
                        }).collect_view()}
                    </select>
                </label>
                <label>"State"
                    <select name="state">
                        <option value="">"Any state"</option>
                        {BOOKING_STATES.iter().map(|s| view! { <option value=*s selected={state == *s}>{*s}</option> }).collect_view()}
                    </select>
                </label>
                <label>"From (UTC day)" <input type="date" name="from" value=from/></label>
                <label>"To (UTC day)" <input type="date" name="to" value=to/></label>
            </div>
            <button type="submit" class="button secondary">"Filter"</button>
            " " <a href="/operator#bookings">"Clear"</a>
        </form>
    }
}

#[component]
fn BookingTable(items: Vec<Booking>) -> impl IntoView {
    if items.is_empty() {
        return view! { <p class="empty-state" data-testid="no-bookings">"No booking matches: customers have not booked this capacity yet, or the filter is too narrow."</p> }.into_any();
    }
    view! {
        <div class="table-scroll"><table class="data-table" data-testid="booking-table">
            <thead><tr><th scope="col">"Booking"</th><th scope="col">"Pool"</th>
                <th scope="col" class="num">"Units"</th><th scope="col">"From"</th><th scope="col">"Until"</th>
                <th scope="col">"State"</th><th scope="col" class="num">"Total"</th></tr></thead>
            <tbody>{items.into_iter().map(|b| view! {
                <tr>
                    <td>"#" {b.id} " · " {b.customer_name}</td>
                    <td data-label="Pool"><a href=format!("/operator/pools/{}", b.pool_id)>{b.pool_name}</a></td>
                    <td class="num" data-label="Units">{b.units}</td>
                    <td data-label="From"><LocalTime at=b.start/></td><td data-label="Until"><LocalTime at=b.end/></td>
                    <td><span class=format!("tag tag-{}", b.state)>{b.state.clone()}</span></td>
                    <td class="num" data-label="Total">{format_cents(b.total_cents, &b.currency)}</td>
                </tr>
            }).collect_view()}</tbody>
        </table></div>
    }
    .into_any()
}
