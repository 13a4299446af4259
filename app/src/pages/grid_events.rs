//! Grid curtailment events in the operator's admin: the form that records one on a site and
//! the list of a site's events (on the site's page), and one event's page with the
//! interruptible units it took.

use crate::app_error::AppError;
use crate::components::{clean_error, input_minute, LocalTime, SignedIn};
use crate::grid::{GridEvent, GridEventDetail};
use crate::money::format_cents;
use crate::utilization::format_watts;
use chrono::Duration;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

/// Records a curtailment event on the site and carries out its shed plan, then shows the
/// site with the event on its power chart.
#[server(endpoint = "record_grid_event")]
pub async fn record_grid_event(
    site_id: i64,
    program: String,
    start: String,
    hours: String,
    shed_kw: String,
    payment_usd_per_mwh: String,
) -> Result<i64, AppError> {
    use crate::request::{parse_count, parse_dollars, parse_start};
    use crate::services::{error::ServiceError, grid_events, web};
    let me = web::principal()?
        .operator(crate::account::Scope::Operate)
        .map_err(web::fail)?;
    let bad = |field: &str, m: String| web::fail(ServiceError::invalid(field, m));
    let start = parse_start(&start).map_err(|m| bad("start", m))?;
    let hours = parse_count(
        &hours,
        "the event's hours",
        1..=grid_events::MAX_EVENT_HOURS,
    )
    .map_err(|m| bad("hours", m))?;
    let shed_kw =
        parse_count(&shed_kw, "the kW to shed", 1..=10_000_000).map_err(|m| bad("shed_kw", m))?;
    let payment = match payment_usd_per_mwh.trim() {
        "" => None,
        p => Some(parse_dollars(p).map_err(|m| bad("payment_cents_per_mwh", m))?),
    };
    let window =
        crate::window::HourWindow::starting_at(start, hours).map_err(|e| web::fail(e.into()))?;
    let event = grid_events::record(
        &web::db()?,
        me,
        site_id,
        &grid_events::NewGridEvent {
            program,
            window,
            shed_kw,
            payment_cents_per_mwh: payment,
        },
        chrono::Utc::now(),
    )
    .await
    .map_err(web::fail)?;
    leptos_axum::redirect(&format!(
        "/operator/sites/{site_id}?grid_event={}#grid-events",
        event.id
    ));
    Ok(event.id)
}

#[server(endpoint = "load_grid_event")]
pub async fn load_grid_event(id: i64) -> Result<GridEventDetail, AppError> {
    use crate::services::{grid_events, web};
    let me = web::principal()?
        .operator(crate::account::Scope::Read)
        .map_err(web::fail)?;
    grid_events::get(&web::db()?, me, id)
        .await
        .map_err(web::fail)
}

/// The site's events and the form that records a new one.
#[component]
pub fn GridEventsPanel(
    site_id: i64,
    events: Vec<GridEvent>,
    /// The event just recorded (from the redirect's query), confirmed above the list.
    recorded: Option<i64>,
    /// The form's idempotency key, made with the page's data (a resource and a suspense of
    /// the panel's own would not hydrate inside the page's).
    form_key: String,
) -> impl IntoView {
    let record = ServerAction::<RecordGridEvent>::new();
    let start = crate::window::ceil_hour(crate::components::now()) + Duration::hours(1);
    view! {
        <section class="panel" id="grid-events" aria-labelledby="grid-events-title" data-testid="grid-events">
            <h2 id="grid-events-title">"Grid events"</h2>
            <p class="small muted">"When the grid calls for less load (ERCOT ERS, 4CP, a utility's demand response), record it here. "
                "Rigshift sheds mining first, then interruptible AI load (lowest price paid first, then the latest booked), "
                "and never firm AI load. Interrupted customers are credited for every hour lost, at the price they paid."</p>
            {recorded.map(|id| view! {
                <p class="form-ok" role="status" data-testid="grid-event-recorded">"Grid event #" {id} " recorded; its shed plan is below and on the power chart."</p>
            })}
            <EventTable events=events/>
            <h3>"Record an event"</h3>
            <ActionForm action=record attr:class="stack-form wide" attr:data-testid="grid-event-form">
                <input type="hidden" name="site_id" value=site_id/>
                <input type="hidden" name="request_key" value=form_key/>
                <div class="search-grid">
                    <label>"Program" <input type="text" name="program" required maxlength="80" placeholder="ERCOT ERS"/></label>
                    <label>"Starts (UTC)" <input type="datetime-local" name="start" step="3600" required value=input_minute(start)/></label>
                    <label>"Hours" <input type="number" name="hours" min="1" max="72" value="4" required/></label>
                    <label>"Load to shed (kW)" <input type="text" name="shed_kw" inputmode="numeric" required/></label>
                    <label>"Payment (USD per MWh)" <input type="text" name="payment_usd_per_mwh" inputmode="decimal"/>
                        <span class="small muted">"blank if the program pays nothing per MWh"</span></label>
                </div>
                <p><button type="submit" class="button">"Record the event and shed"</button></p>
            </ActionForm>
        </section>
    }
}

#[component]
fn EventTable(events: Vec<GridEvent>) -> impl IntoView {
    if events.is_empty() {
        return view! { <p class="empty-state" data-testid="no-grid-events">"No grid event has been recorded on this site."</p> }.into_any();
    }
    view! {
        <div class="table-scroll"><table class="data-table" data-testid="grid-event-table">
            <caption class="small muted">"Firm AI load is never shed."</caption>
            <thead><tr><th scope="col">"Event"</th><th scope="col">"From"</th><th scope="col" class="num">"Hours"</th>
                <th scope="col" class="num">"Asked"</th><th scope="col" class="num">"Mining shed"</th>
                <th scope="col" class="num">"Interruptible shed"</th>
                <th scope="col" class="num">"Credits"</th><th scope="col" class="num">"Program pays"</th></tr></thead>
            <tbody>{events.into_iter().map(|e| {
                let pays = match e.payment_cents_per_mwh {
                    Some(_) => format_cents(e.revenue_cents(), "USD"),
                    None => "—".to_string(),
                };
                view! {
                <tr>
                    <td><a href=format!("/operator/grid-events/{}", e.id)>{e.program.clone()}</a></td>
                    <td data-label="From"><LocalTime at=e.start/></td>
                    <td class="num" data-label="Hours">{e.hours()}</td>
                    <td class="num" data-label="Asked">{format_watts(e.shed_kw * 1000)}</td>
                    <td class="num" data-label="Mining shed">{format_watts(e.mining_shed_kw * 1000)}</td>
                    <td class="num" data-label="Interruptible shed"><span>{format_watts(e.interruptible_shed_kw * 1000)}</span>
                        <span class="small muted">{format!(" ({} reservations, {} unit-hours)", e.reservations_interrupted, e.unit_hours_lost)}</span></td>
                    <td class="num" data-label="Credits">{format_cents(e.credited_cents, "USD")}</td>
                    <td class="num" data-label="Program pays">{pays}</td>
                </tr>
            }}).collect_view()}</tbody>
        </table></div>
    }
    .into_any()
}

/// One event: what was asked, the plan it carried out, and the interruptible units it took.
#[component]
pub fn GridEventPage() -> impl IntoView {
    let id = crate::components::use_id_param();
    view! {
        <Title text="Grid event"/>
        <SignedIn next="/operator" page=move |_| {
            let data = crate::resource::load(id, load_grid_event);
            view! {
                <Transition fallback=|| view! { <p class="loading" role="status">"Loading the event…"</p> }>
                    {move || Suspend::new(async move {
                        match data.await {
                            Ok(d) => view! { <Detail detail=d/> }.into_any(),
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
fn Detail(detail: GridEventDetail) -> impl IntoView {
    let GridEventDetail { event: e, shed } = detail;
    view! {
        <Title text=format!("{} grid event", e.program)/>
        <p class="crumbs"><a href="/operator">"Operations"</a> " › "
            <a href=format!("/operator/sites/{}#grid-events", e.site_id)>"Its site"</a> " › grid event #" {e.id}</p>
        <h1>{e.program.clone()} " grid event"</h1>
        <dl class="facts" data-testid="grid-event-facts">
            <div><dt>"From"</dt><dd><LocalTime at=e.start/></dd></div>
            <div><dt>"Until"</dt><dd><LocalTime at=e.end/></dd></div>
            <div><dt>"Asked to shed"</dt><dd>{format_watts(e.shed_kw * 1000)}</dd></div>
            <div><dt>"Mining switched off"</dt><dd data-testid="event-mining">{format_watts(e.mining_shed_kw * 1000)}</dd></div>
            <div><dt>"Interruptible AI load shed"</dt><dd data-testid="event-interruptible">{format_watts(e.interruptible_shed_kw * 1000)}</dd></div>
            <div><dt>"Firm AI load shed"</dt><dd>"none: firm capacity is never curtailed"</dd></div>
            <div><dt>"Credited to customers"</dt><dd data-testid="event-credits">{format_cents(e.credited_cents, "USD")}</dd></div>
            <div><dt>"The program pays"</dt><dd>{match e.payment_cents_per_mwh {
                Some(rate) => format!("{} ({} per MWh)", format_cents(e.revenue_cents(), "USD"), format_cents(rate, "USD")),
                None => "nothing per MWh".to_string(),
            }}</dd></div>
        </dl>
        <section class="panel" aria-labelledby="shed-title">
            <h2 id="shed-title">"Interruptible units taken"</h2>
            {if shed.is_empty() {
                view! { <p class="empty-state" data-testid="nothing-interrupted">"Mining covered the whole request: no reservation was interrupted."</p> }.into_any()
            } else {
                view! {
                    <div class="table-scroll"><table class="data-table" data-testid="shed-units">
                        <thead><tr><th scope="col">"Reservation"</th><th scope="col">"Customer"</th><th scope="col">"Pool"</th>
                            <th scope="col" class="num">"Unit"</th><th scope="col">"From"</th><th scope="col">"Until"</th><th scope="col" class="num">"Load"</th></tr></thead>
                        <tbody>{shed.into_iter().map(|s| view! {
                            <tr>
                                <td data-label="Reservation">"#" {s.reservation_id}</td>
                                <td data-label="Customer">{s.customer}</td>
                                <td data-label="Pool"><a href=format!("/operator/pools/{}", s.pool_id)>{s.pool_name}</a></td>
                                <td class="num" data-label="Unit">{s.unit}</td>
                                <td data-label="From"><LocalTime at=s.start/></td>
                                <td data-label="Until"><LocalTime at=s.end/></td>
                                <td class="num" data-label="Load">{format_watts(s.watts)}</td>
                            </tr>
                        }).collect_view()}</tbody>
                    </table></div>
                }.into_any()
            }}
        </section>
    }
}
