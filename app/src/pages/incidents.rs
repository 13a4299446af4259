//! Incidents in the browser: the operator's panel on a pool's page (record units that are
//! down, see what was moved and credited, resolve), and on a customer's reservation what an
//! incident changed (which unit, from when) with the offer of capacity at another site to
//! accept or decline.

use crate::app_error::AppError;
use crate::components::{input_minute, FormResult, LocalTime};
use crate::incidents::{Incident, IncidentHit, IncidentOffer};
use crate::money::format_cents;
use leptos::form::ActionForm;
use leptos::prelude::*;

/// Records an incident on units of the operator's pool and heals at once, then shows the
/// pool with the incident on top.
#[server(endpoint = "record_incident")]
pub async fn record_incident(
    pool_id: i64,
    units: String,
    cause: String,
    started_at: String,
    ends_at: String,
) -> Result<i64, AppError> {
    use crate::request::parse_start;
    use crate::services::{error::ServiceError, incidents, web};
    let me = web::principal()?
        .operator(crate::account::Scope::Operate)
        .map_err(web::fail)?;
    let bad = |field: &str, m: String| web::fail(ServiceError::invalid(field, m));
    let units = parse_units(&units).map_err(|m| bad("units", m))?;
    let now = chrono::Utc::now();
    let started_at = match started_at.trim() {
        "" => now,
        s => parse_start(s).map_err(|_| {
            bad(
                "started_at",
                "give when the units went down as a date and time, e.g. 2026-12-02 09:40 (UTC)"
                    .into(),
            )
        })?,
    };
    let ends_at = match ends_at.trim() {
        "" => None,
        s => Some(parse_start(s).map_err(|_| {
            bad(
                "ends_at",
                "give the end as a date and time on the hour, e.g. 2026-12-02 18:00 (UTC), or leave it blank".into(),
            )
        })?),
    };
    let incident = incidents::open(
        &web::db()?,
        me,
        pool_id,
        &incidents::NewIncident {
            units,
            cause,
            started_at,
            ends_at,
        },
        now,
    )
    .await
    .map_err(web::fail)?;
    leptos_axum::redirect(&format!(
        "/operator/pools/{pool_id}?incident={}#incidents",
        incident.id
    ));
    Ok(incident.id)
}

/// "1, 3, 5-7" → [1, 3, 5, 6, 7].
pub fn parse_units(s: &str) -> Result<Vec<i64>, String> {
    let hint = "list the unit numbers that are down, e.g. 3 or 1, 4, 6-8";
    let mut units = Vec::new();
    for part in s.split([',', ' ']).map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b) = match (a.trim().parse::<i64>(), b.trim().parse::<i64>()) {
            (Ok(a), Ok(b)) if a >= 1 && b >= a && b - a < 1000 => (a, b),
            _ => return Err(format!("\"{part}\" is not a unit number or range; {hint}")),
        };
        units.extend(a..=b);
        if units.len() > 1000 {
            return Err("record at most 1,000 units in one incident".into());
        }
    }
    if units.is_empty() {
        return Err(hint.into());
    }
    Ok(units)
}

#[server(endpoint = "resolve_incident")]
pub async fn resolve_incident(id: i64) -> Result<Incident, AppError> {
    use crate::services::{incidents, web};
    let me = web::principal()?
        .operator(crate::account::Scope::Operate)
        .map_err(web::fail)?;
    incidents::resolve(&web::db()?, me, id, chrono::Utc::now())
        .await
        .map_err(web::fail)
}

#[server(endpoint = "accept_incident_offer")]
pub async fn accept_incident_offer(id: i64) -> Result<i64, AppError> {
    use crate::services::{incidents, web};
    let me = web::principal()?
        .customer(crate::account::Scope::Reserve)
        .map_err(web::fail)?;
    let r = incidents::accept(&web::db()?, me, id, chrono::Utc::now())
        .await
        .map_err(web::fail)?;
    leptos_axum::redirect(&format!("/reservations/{}?moved_from_offer={id}", r.id));
    Ok(r.id)
}

#[server(endpoint = "decline_incident_offer")]
pub async fn decline_incident_offer(id: i64) -> Result<IncidentOffer, AppError> {
    use crate::services::{incidents, web};
    let me = web::principal()?
        .customer(crate::account::Scope::Reserve)
        .map_err(web::fail)?;
    incidents::decline(&web::db()?, me, id)
        .await
        .map_err(web::fail)
}

/// The pool's incidents and the form that records one.
#[component]
pub fn IncidentsPanel(
    pool_id: i64,
    unit_count: i64,
    incidents: Vec<Incident>,
    /// The incident just recorded (from the redirect's query).
    recorded: Option<i64>,
    resolve: ServerAction<ResolveIncident>,
    /// The form's idempotency key, made with the page's data.
    form_key: String,
) -> impl IntoView {
    let record = ServerAction::<RecordIncident>::new();
    let now = crate::components::now();
    view! {
        <section class="panel" id="incidents" aria-labelledby="incidents-title" data-testid="incidents">
            <h2 id="incidents-title">"Incidents"</h2>
            <p class="small muted">"When a unit fails, record it here. Rigshift moves every booking on it to a spare unit of this pool "
                "(taking interruptible capacity if it must, never firm), credits hours it cannot move at the price paid (plus the pool's SLA credit when a month falls under its promise), "
                "and offers customers without a spare the same capacity at another of your sites. The units stay out of sale until the incident ends."</p>
            {recorded.map(|id| view! {
                <p class="form-ok" role="status" data-testid="incident-recorded">"Incident #" {id} " recorded; what it moved and credited is below."</p>
            })}
            <FormResult action=resolve ok="Incident resolved: its units are on sale again from the next hour."/>
            <IncidentTable incidents resolve/>
            <h3>"Record an incident"</h3>
            <ActionForm action=record attr:class="stack-form wide" attr:data-testid="incident-form">
                <input type="hidden" name="pool_id" value=pool_id/>
                <input type="hidden" name="request_key" value=form_key/>
                <div class="search-grid">
                    <label>"Units down"
                        <input type="text" name="units" required maxlength="200" placeholder="e.g. 3 or 1, 4, 6-8"/>
                        <span class="small muted">{format!("numbers 1 to {unit_count}")}</span>
                    </label>
                    <label>"Cause" <input type="text" name="cause" required maxlength="500" placeholder="e.g. failed power supply"/></label>
                    <label>"Down since (UTC)" <input type="datetime-local" name="started_at" value=input_minute(now)/>
                        <span class="small muted">"now, or within the last 72 hours"</span></label>
                    <label>"Back by (UTC, optional)" <input type="datetime-local" name="ends_at" step="3600"/>
                        <span class="small muted">"blank: until you resolve it"</span></label>
                </div>
                <p><button type="submit" class="button danger">"Record the incident and heal"</button></p>
            </ActionForm>
        </section>
    }
}

#[component]
fn IncidentTable(
    incidents: Vec<Incident>,
    resolve: ServerAction<ResolveIncident>,
) -> impl IntoView {
    if incidents.is_empty() {
        return view! { <p class="empty-state" data-testid="no-incidents">"No incident has been recorded on this pool."</p> }.into_any();
    }
    view! {
        <div class="table-scroll"><table class="data-table" data-testid="incident-table">
            <thead><tr><th scope="col">"Incident"</th><th scope="col">"Units"</th><th scope="col">"Cause"</th><th scope="col">"Down since"</th>
                <th scope="col">"State"</th><th scope="col" class="num">"Moved"</th><th scope="col" class="num">"Lost"</th>
                <th scope="col" class="num">"Credited"</th><th scope="col"></th></tr></thead>
            <tbody>{incidents.into_iter().map(|i| {
                let units = i.units.iter().map(|u| u.to_string()).collect::<Vec<_>>().join(", ");
                let open = i.is_open();
                view! {
                    <tr>
                        <td>"#" {i.id}</td>
                        <td data-label="Units">{units}</td>
                        <td data-label="Cause" class="wide">{i.cause.clone()}</td>
                        <td data-label="Down since"><LocalTime at=i.started_at/></td>
                        <td data-label="State"><span class=format!("tag tag-incident-{}", i.state)>{i.state.clone()}</span>
                            {i.resolved_at.map(|t| view! { <div class="small muted">"at " <LocalTime at=t/></div> })}
                            {(open && i.ends_at.is_some()).then(|| view! { <div class="small muted">"until " <LocalTime at=i.out_of_sale_until/></div> })}</td>
                        <td class="num" data-label="Moved">{i.moved_unit_hours} " unit-h"</td>
                        <td class="num" data-label="Lost">{i.lost_unit_hours} " unit-h"</td>
                        <td class="num" data-label="Credited">{format_cents(i.credited_cents, &i.currency)}
                            {(i.offers > 0).then(|| view! { <div class="small muted">{i.offers} " offered elsewhere"</div> })}</td>
                        <td>{open.then(|| view! {
                            <ActionForm action=resolve attr:class="inline-form">
                                <input type="hidden" name="id" value=i.id/>
                                <button type="submit" class="button secondary small" data-testid="resolve-incident">"Resolve"</button>
                            </ActionForm>
                        })}</td>
                    </tr>
                }
            }).collect_view()}</tbody>
        </table></div>
    }.into_any()
}

/// What incidents changed on a reservation, and the offers they made.
#[component]
pub fn ReservationIncidents(
    hits: Vec<IncidentHit>,
    offers: Vec<IncidentOffer>,
    accept: ServerAction<AcceptIncidentOffer>,
    decline: ServerAction<DeclineIncidentOffer>,
    accept_key: String,
) -> impl IntoView {
    let moved = hits.iter().any(|h| h.outcome == "moved");
    let lost = hits.iter().any(|h| h.outcome == "lost");
    let intro = match (moved, lost) {
        (true, false) => "A unit serving this reservation went down. We moved the hours it affected to a spare unit of the same pool, so none were lost; the original unit serves the hours after the incident.",
        (true, true) => "A unit serving this reservation went down. We moved what we could to a spare unit of the same pool; the hours we could not move (already past, or with no spare) are credited automatically at the price you paid, plus the pool's service-level credit when the month falls under its promise (see the credits below).",
        (false, true) => "A unit serving this reservation went down and the pool had no spare for those hours (or they were already past). They are credited automatically at the price you paid, plus the pool's service-level credit when the month falls under its promise (see the credits below).",
        (false, false) => "A unit this hold was taking went down and no spare was free, so the hold was released; nothing was charged.",
    };
    (!hits.is_empty() || !offers.is_empty()).then(|| view! {
        <section class="panel" aria-labelledby="incident-title" data-testid="reservation-incidents">
            <h2 id="incident-title">"Hardware incidents"</h2>
            <p class="muted">{intro}</p>
            <div class="table-scroll"><table class="data-table" data-testid="incident-moves">
                <thead><tr><th scope="col">"What happened"</th><th scope="col">"From"</th><th scope="col">"Until"</th><th scope="col">"Cause"</th></tr></thead>
                <tbody>{hits.into_iter().map(|h| view! {
                    <tr>
                        <td>{match (h.outcome.as_str(), h.to_unit) {
                            ("moved", Some(to)) => format!("Moved from unit {} to unit {to}", h.unit),
                            ("released", _) => format!("Hold released: unit {} went down", h.unit),
                            _ => format!("Lost on unit {} (credited)", h.unit),
                        }}</td>
                        <td data-label="From"><LocalTime at=h.start/></td>
                        <td data-label="Until"><LocalTime at=h.end/></td>
                        <td data-label="Cause" class="small wide">"incident #" {h.incident_id} ": " {h.cause.clone()}</td>
                    </tr>
                }).collect_view()}</tbody>
            </table></div>
            {offers.into_iter().map(|o| {
                let total = format_cents(o.total_cents, &o.currency);
                let open = o.state == "open";
                let accept_key = format!("{accept_key}-{}", o.id);
                view! {
                    <div class="offer" data-testid="incident-offer">
                        <h3>"Offer: the same capacity at " {o.site_name.clone()}</h3>
                        <p>{o.units} " × " {o.pool_name.clone()} " from " <LocalTime at=o.start/> " until " <LocalTime at=o.end/>
                           " for " <strong>{total.clone()}</strong> ", the price you paid for those hours. "
                           "Accepting books the hours still ahead; the credit you received stands either way."</p>
                        {match (open, o.accepted_reservation_id) {
                            (true, _) => view! {
                                <p class="small">"Answer by " <LocalTime at=o.expires_at/> "."</p>
                                <div class="review-actions">
                                    <ActionForm action=accept attr:class="inline-form">
                                        <input type="hidden" name="id" value=o.id/>
                                        <input type="hidden" name="request_key" value=accept_key/>
                                        <button type="submit" class="button" data-testid="accept-offer">{format!("Accept for {total}")}</button>
                                    </ActionForm>
                                    <ActionForm action=decline attr:class="inline-form">
                                        <input type="hidden" name="id" value=o.id/>
                                        <button type="submit" class="button secondary" data-testid="decline-offer">"Decline"</button>
                                    </ActionForm>
                                </div>
                            }.into_any(),
                            (false, Some(r)) => view! { <p data-testid="offer-state">"Accepted: " <a href=format!("/reservations/{r}")>"reservation #" {r}</a></p> }.into_any(),
                            (false, None) => view! { <p data-testid="offer-state">"This offer was " {o.state.clone()} "."</p> }.into_any(),
                        }}
                    </div>
                }
            }).collect_view()}
            <FormResult action=decline ok="Declined; the credit for the lost hours stands."/>
            <FormResult action=accept ok="Accepted: the capacity is booked at the other site."/>
        </section>
    })
}

#[cfg(test)]
mod tests {
    use super::parse_units;

    #[test]
    fn unit_lists_take_numbers_and_ranges() {
        assert_eq!(parse_units("3").unwrap(), vec![3]);
        assert_eq!(parse_units("1, 4, 6-8").unwrap(), vec![1, 4, 6, 7, 8]);
        assert!(parse_units("").is_err());
        assert!(parse_units("two").is_err());
        assert!(parse_units("5-2").is_err());
        assert!(parse_units("0").is_err());
    }
}
