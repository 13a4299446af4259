//! The audit trail in the browser: an organization's recent activity on its account page,
//! and everyone's on the administrator's page. Pages of 50, older ones behind a link.

use crate::app_error::AppError;
use crate::audit::AuditEvent;
use crate::components::{clean_error, LocalTime};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

const PAGE: i64 = 50;

/// The signed-in person's organization's trail, newest first.
#[server(endpoint = "audit_events")]
pub async fn audit_events(before_id: Option<i64>) -> Result<Vec<AuditEvent>, AppError> {
    use crate::services::{audit, web};
    let p = web::principal()?;
    p.person().map_err(web::fail)?;
    audit::list(&web::db()?, Some(p.organization_id), before_id, PAGE)
        .await
        .map_err(web::fail)
}

/// Every organization's trail, for the platform administrator.
#[server(endpoint = "admin_audit_events")]
pub async fn admin_audit_events(before_id: Option<i64>) -> Result<Vec<AuditEvent>, AppError> {
    use crate::services::{audit, web};
    web::principal()?.admin().map_err(web::fail)?;
    audit::list(&web::db()?, None, before_id, PAGE)
        .await
        .map_err(web::fail)
}

/// The activity panel; `everyone` for the administrator's view of all organizations.
#[component]
pub fn Activity(everyone: bool) -> impl IntoView {
    let query = use_query_map();
    let before = move || {
        query
            .read()
            .get("activity_before")
            .and_then(|b| b.parse::<i64>().ok())
    };
    let events = crate::resource::load(before, move |b| async move {
        if everyone {
            admin_audit_events(b).await
        } else {
            audit_events(b).await
        }
    });
    view! {
        <section class="panel" aria-labelledby="activity-title" data-testid="activity">
            <h2 id="activity-title">{if everyone { "Activity across the platform" } else { "Activity" }}</h2>
            <p class="muted small">"Who did what, when: people by name, integrations by API key. The record can't be changed."</p>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match events.await {
                        Ok(list) if list.is_empty() => view! { <p class="empty-state">"Nothing recorded yet."</p> }.into_any(),
                        Ok(list) => {
                            let older = (list.len() as i64 == PAGE).then(|| list.last().map(|e| e.id)).flatten();
                            view! {
                                <div class="table-scroll"><table class="data-table" data-testid="activity-table">
                                    <thead><tr><th scope="col">"When"</th><th scope="col">"Who"</th><th scope="col">"What"</th>
                                        {everyone.then(|| view! { <th scope="col">"Organization"</th> })}
                                        <th scope="col">"Details"</th></tr></thead>
                                    <tbody>{list.into_iter().map(|e| view! {
                                        <tr>
                                            <td data-label="When"><LocalTime at=e.at/></td>
                                            <td data-label="Who">{e.actor}</td>
                                            <td data-label="What"><code>{e.action}</code>" "
                                                {e.object_id.map(|id| format!("{} #{id}", e.object_type))}</td>
                                            {everyone.then(|| view! { <td data-label="Organization">{e.organization_id.map(|o| format!("#{o}"))}</td> })}
                                            <td data-label="Details" class="small"><code>{detail_text(&e.detail)}</code></td>
                                        </tr>
                                    }).collect_view()}</tbody>
                                </table></div>
                                {older.map(|id| view! { <p><a href=format!("?activity_before={id}")>"Older activity →"</a></p> })}
                            }.into_any()
                        }
                        Err(e) => view! { <p class="form-error" role="alert">{clean_error(&e.to_string())}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// `key: value` pairs of an event's detail, for reading rather than parsing.
fn detail_text(detail: &serde_json::Value) -> String {
    match detail.as_object() {
        Some(fields) => fields
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}: {s}"),
                other => format!("{k}: {other}"),
            })
            .collect::<Vec<_>>()
            .join(" · "),
        None => detail.to_string(),
    }
}
