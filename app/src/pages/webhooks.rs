//! Webhooks in the browser: register endpoints for events, see every delivery with its
//! attempts, delete endpoints. The same services back `/api/v1/webhooks`.

use crate::app_error::AppError;
use crate::components::{clean_error, FormResult, LocalTime, SignedIn};
use crate::webhook::{CreatedWebhook, Delivery, Webhook, EVENTS};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

#[server(endpoint = "webhooks")]
pub async fn webhooks() -> Result<Vec<Webhook>, AppError> {
    use crate::services::{web, webhooks};
    let p = web::principal()?;
    webhooks::list(&web::db()?, p.organization_id, None, 100)
        .await
        .map_err(web::fail)
}

/// Each event is a checkbox named `events[<event with _ for .>]`, posted as "on" when
/// ticked; events the form does not know are refused by the service.
#[server(endpoint = "create_webhook")]
pub async fn create_webhook(
    url: String,
    events: Option<std::collections::HashMap<String, String>>,
) -> Result<CreatedWebhook, AppError> {
    use crate::services::{web, webhooks};
    let p = web::principal()?;
    web::answer_read_by_the_page("A new endpoint's signing secret")?;
    p.person().map_err(web::fail)?;
    let ticked = events.unwrap_or_default();
    let events: Vec<String> = EVENTS
        .iter()
        .filter(|e| ticked.contains_key(&field_name(e)))
        .map(|e| e.to_string())
        .collect();
    let allow_plain = use_context::<WebhookPolicy>().is_some_and(|w| w.allow_private);
    webhooks::create(&web::db()?, p.organization_id, &url, &events, allow_plain)
        .await
        .map_err(web::fail)
}

/// An event's checkbox key: `reservation.created` → `reservation_created`.
fn field_name(event: &str) -> String {
    event.replace('.', "_")
}

#[server(endpoint = "delete_webhook")]
pub async fn delete_webhook(id: i64) -> Result<(), AppError> {
    use crate::services::{web, webhooks};
    let p = web::principal()?;
    p.person().map_err(web::fail)?;
    webhooks::delete(&web::db()?, p.organization_id, id)
        .await
        .map_err(web::fail)
}

#[server(endpoint = "enable_webhook")]
pub async fn enable_webhook(id: i64) -> Result<(), AppError> {
    use crate::services::{web, webhooks};
    let p = web::principal()?;
    p.person().map_err(web::fail)?;
    webhooks::enable(&web::db()?, p.organization_id, id)
        .await
        .map_err(web::fail)
}

#[server(endpoint = "webhook_deliveries")]
pub async fn webhook_deliveries() -> Result<Vec<Delivery>, AppError> {
    use crate::services::{web, webhooks};
    let p = web::principal()?;
    webhooks::deliveries(&web::db()?, p.organization_id, None, None, 50)
        .await
        .map_err(web::fail)
}

/// Whether webhooks may point at plain http:// and private addresses (a server setting,
/// provided to server functions by the server).
#[derive(Clone, Copy, Debug, Default)]
pub struct WebhookPolicy {
    pub allow_private: bool,
}

#[component]
pub fn WebhooksPage() -> impl IntoView {
    view! {
        <Title text="Webhooks"/>
        <SignedIn next="/webhooks" page=|_| view! { <Webhooks/> }.into_any()/>
    }
}

/// Adds an endpoint and shows its signing secret once: an island, because the secret
/// exists only in the server function's answer (a plain form's reload would lose it).
#[island]
fn NewWebhookForm() -> impl IntoView {
    let create = ServerAction::<CreateWebhook>::new();
    view! {
        <ActionForm action=create attr:class="stack-form" attr:data-testid="webhook-form">
            <label>"URL"
                <input type="url" name="url" required maxlength="2000" placeholder="https://example.com/rigshift-events"/>
            </label>
            <fieldset>
                <legend>"Events"</legend>
                {EVENTS.iter().map(|e| {
                    let name = format!("events[{}]", field_name(e));
                    view! { <label class="choice"><input type="checkbox" name=name/>" " <code>{*e}</code></label> }
                }).collect_view()}
            </fieldset>
            <button type="submit" class="button" disabled=move || create.pending().get()>"Add endpoint"</button>
        </ActionForm>
        {move || match create.value().get() {
            Some(Ok(made)) => view! {
                <crate::components::SecretBox lead="Copy the signing secret now: it will not be shown again." secret=made.secret
                    testid="new-webhook" secret_testid="new-webhook-secret" back=("/webhooks", "webhooks-reload")/>
            }.into_any(),
            Some(Err(e)) => view! { <p class="form-error" role="alert">{clean_error(&e.to_string())}</p> }.into_any(),
            None => ().into_any(),
        }}
    }
}

#[component]
fn Webhooks() -> impl IntoView {
    let delete = ServerAction::<DeleteWebhook>::new();
    let enable = ServerAction::<EnableWebhook>::new();
    let list = crate::resource::load(|| (), |_| webhooks());
    let deliveries = crate::resource::load(|| (), |_| webhook_deliveries());
    view! {
        <h1>"Webhooks"</h1>
        <p class="muted">
            "Rigshift POSTs each event as JSON to your endpoints on public addresses, signed as the "
            <a href="https://www.standardwebhooks.com/">"Standard Webhooks"</a>
            " specification says ("<code>"webhook-id"</code>", "<code>"webhook-timestamp"</code>", "
            <code>"webhook-signature: v1,<base64 HMAC-SHA256>"</code>"), so its libraries verify them with the endpoint's secret. "
            "Failed deliveries are retried for about three days (30 s, 2 min, 10 min, … then daily); an endpoint "
            "whose deliveries all fail that long is disabled until you enable it here."
        </p>
        <section class="panel" aria-labelledby="new-hook">
            <h2 id="new-hook">"Add an endpoint"</h2>
            <NewWebhookForm/>
        </section>
        <section aria-labelledby="hooks-title">
            <h2 id="hooks-title">"Endpoints"</h2>
            <FormResult action=delete ok="Endpoint deleted; its pending deliveries were dropped."/>
            <FormResult action=enable ok="Endpoint enabled; its waiting deliveries are on their way."/>
            <Transition fallback=|| view! { <p class="loading">"Loading endpoints…"</p> }>
                {move || Suspend::new(async move {
                    match list.await {
                        Ok(l) if l.is_empty() => view! { <p class="empty-state" data-testid="no-webhooks">"No endpoints yet."</p> }.into_any(),
                        Ok(l) => view! {
                            <div class="table-scroll"><table class="data-table" data-testid="webhook-table">
                                <thead><tr><th scope="col">"URL"</th><th scope="col">"Events"</th><th scope="col">"Added"</th><th scope="col"></th></tr></thead>
                                <tbody>{l.into_iter().map(|w| view! {
                                    <tr>
                                        <td><code>{w.url}</code>
                                            {w.disabled_at.map(|at| view! {
                                                <div class="form-error" data-testid="webhook-disabled">
                                                    <strong>"Disabled "</strong><LocalTime at/>": "
                                                    {w.disabled_reason.clone().unwrap_or_default()}
                                                    <ActionForm action=enable attr:class="inline-form">
                                                        <input type="hidden" name="id" value=w.id/>
                                                        <button type="submit" class="button small">"Enable again"</button>
                                                    </ActionForm>
                                                </div>
                                            })}
                                        </td>
                                        <td data-label="Events">{w.events.join(", ")}</td>
                                        <td data-label="Added"><LocalTime at=w.created_at/></td>
                                        <td><ActionForm action=delete attr:class="inline-form">
                                            <input type="hidden" name="id" value=w.id/>
                                            <button type="submit" class="button secondary small">"Delete"</button>
                                        </ActionForm></td>
                                    </tr>
                                }).collect_view()}</tbody>
                            </table></div>
                        }.into_any(),
                        Err(e) => view! { <p class="form-error" role="alert">{clean_error(&e.to_string())}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
        <section aria-labelledby="deliveries-title">
            <h2 id="deliveries-title">"Recent deliveries"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading deliveries…"</p> }>
                {move || Suspend::new(async move {
                    match deliveries.await {
                        Ok(l) if l.is_empty() => view! { <p class="empty-state">"Nothing delivered yet. Events appear here as they happen."</p> }.into_any(),
                        Ok(l) => view! { <DeliveryTable deliveries=l/> }.into_any(),
                        Err(e) => view! { <p class="form-error" role="alert">{clean_error(&e.to_string())}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn DeliveryTable(deliveries: Vec<Delivery>) -> impl IntoView {
    view! {
        <div class="table-scroll"><table class="data-table" data-testid="delivery-table">
            <thead><tr><th scope="col">"Event"</th><th scope="col">"Status"</th><th scope="col" class="num">"Attempts"</th>
                <th scope="col">"Attempt log"</th><th scope="col">"Next attempt"</th></tr></thead>
            <tbody>{deliveries.into_iter().map(|d| view! {
                <tr>
                    <td><code>{d.event.clone()}</code><div class="muted small">"event " {d.event_id} " · endpoint " {d.webhook_id}</div></td>
                    <td data-label="Status"><span class=format!("tag tag-{}", d.status)>{d.status.clone()}</span></td>
                    <td class="num" data-label="Attempts">{d.attempts}</td>
                    <td data-label="Attempt log"><ul class="attempts">
                        {d.attempt_log.into_iter().map(|a| view! {
                            <li><LocalTime at=a.at/> " — "
                                {a.status.map(|s| format!("HTTP {s}")).unwrap_or_else(|| "no answer".into())}
                                {a.error.map(|e| format!(" ({e})"))}
                                " · " {a.duration_ms} " ms"</li>
                        }).collect_view()}
                    </ul></td>
                    <td data-label="Next attempt">{match d.next_attempt_at { Some(t) => view! { <LocalTime at=t/> }.into_any(), None => "—".into_any() }}</td>
                </tr>
            }).collect_view()}</tbody>
        </table></div>
    }
}
