//! A customer's standing orders: leave a search open until capacity appears (the form is
//! prefilled from a search that found nothing), see what became of each, cancel one.

use crate::app_error::AppError;
use crate::components::{clean_error, form_key, FormResult, LocalTime, SignedIn};
use crate::money::format_cents;
use crate::orders::{OrderState, StandingOrder};
use crate::request::SearchForm;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// How many orders the page shows, newest first.
pub const SHOWN: i64 = 100;

#[server(endpoint = "my_orders")]
pub async fn my_orders() -> Result<Vec<StandingOrder>, AppError> {
    use crate::services::{orders, web};
    let me = web::principal()?
        .customer(crate::account::Scope::Read)
        .map_err(web::fail)?;
    orders::list(&web::db()?, me, None, SHOWN)
        .await
        .map_err(web::fail)
}

/// The order form's fields as typed (times in UTC, the total in dollars).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct OrderFields {
    #[serde(default)]
    pub gpu_model: String,
    #[serde(default)]
    pub gpus: String,
    #[serde(default)]
    pub kw: String,
    #[serde(default)]
    pub hours: String,
    #[serde(default)]
    pub earliest_start: String,
    #[serde(default)]
    pub latest_start: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub energy_source: String,
    #[serde(default)]
    pub tier: String,
    #[serde(default)]
    pub max_total: String,
}

/// Leaves an order from the form's fields.
#[server(endpoint = "leave_order")]
pub async fn leave_order(order: OrderFields) -> Result<StandingOrder, AppError> {
    use crate::booking::Tier;
    use crate::orders::NewOrder;
    use crate::request;
    use crate::services::{error::ServiceError, orders, web};
    let OrderFields {
        gpu_model,
        gpus,
        kw,
        hours,
        earliest_start,
        latest_start,
        region,
        energy_source,
        tier,
        max_total,
    } = order;
    let me = web::principal()?
        .customer(crate::account::Scope::Reserve)
        .map_err(web::fail)?;
    let invalid = |field: &str, m: String| web::fail(ServiceError::invalid(field, m));
    let quantity = request::parse_quantity(&gpus, &kw)
        .map_err(|m| invalid("gpus", m))?
        .ok_or_else(|| invalid("gpus", "say how many GPUs or kW".into()))?;
    let hours = request::parse_count(&hours, "the duration in hours", 1..=8760)
        .map_err(|m| invalid("hours", m))?;
    let earliest =
        request::parse_start(&earliest_start).map_err(|m| invalid("earliest_start", m))?;
    let latest = request::parse_start(&latest_start).map_err(|m| invalid("latest_start", m))?;
    let max_total_cents = match max_total.trim() {
        "" => None,
        t => Some(request::parse_dollars(t).map_err(|m| invalid("max_total", m))?),
    };
    let tier = match tier.as_str() {
        "" => Tier::Firm,
        t => Tier::parse(t)
            .ok_or_else(|| invalid("tier", "choose firm or interruptible capacity".into()))?,
    };
    let text = |s: String| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let order = NewOrder {
        kind: None,
        gpu_model: text(gpu_model),
        quantity,
        hours,
        earliest_start: earliest,
        latest_start: latest,
        region: text(region),
        energy_source: text(energy_source),
        tier,
        max_total_cents,
        expires_at: None,
    };
    orders::create(&web::db()?, me, &order, chrono::Utc::now())
        .await
        .map_err(web::fail)
}

#[server(endpoint = "cancel_order")]
pub async fn cancel_order(id: i64) -> Result<StandingOrder, AppError> {
    use crate::services::{orders, web};
    let me = web::principal()?
        .customer(crate::account::Scope::Reserve)
        .map_err(web::fail)?;
    orders::cancel(&web::db()?, me, id, chrono::Utc::now())
        .await
        .map_err(web::fail)
}

#[component]
pub fn OrdersPage() -> impl IntoView {
    view! {
        <Title text="Standing orders"/>
        <SignedIn next="/orders" page=|u| {
            if u.kind.buys() {
                view! { <h1>"Standing orders"</h1> <Orders/> }.into_any()
            } else {
                crate::components::set_page_status(403);
                view! {
                    <section class="empty-state" data-testid="not-customer">
                        <h1>"For customers"</h1>
                        <p>"Standing orders book capacity for customers; your organization lists it."</p>
                    </section>
                }
                .into_any()
            }
        }/>
    }
}

#[component]
fn Orders() -> impl IntoView {
    let leave = ServerAction::<LeaveOrder>::new();
    let cancel = ServerAction::<CancelOrder>::new();
    let list = crate::resource::load(|| (), |_| my_orders());
    let keys = crate::resource::load(|| (), |_| async { (form_key().await, form_key().await) });
    let query = use_query_map();
    let ask = SearchForm::from_query(&query.read_untracked());
    view! {
        <p class="lede">"Leave a search open: every few seconds Rigshift looks for capacity that matches it, and books the first match (cheapest total first) through the same path as any reservation, once. Orders are filled in the order they were left. You hear of it by webhook ("<code>"order.filled"</code>", "<code>"order.expired"</code>") and here."</p>
        <FormResult action=cancel ok="Order cancelled."/>
        <Transition fallback=|| view! { <p class="loading">"Loading orders…"</p> }>
            {move || {
                let ask = ask.clone();
                Suspend::new(async move {
                    let (leave_key, cancel_key) = match keys.await {
                        (Ok(l), Ok(c)) => (l, c),
                        _ => Default::default(),
                    };
                    let orders = list.await;
                    view! {
                        <section class="panel" aria-labelledby="leave-title">
                            <h2 id="leave-title">"Leave an order"</h2>
                            <OrderForm action=leave ask=ask key=leave_key/>
                        </section>
                        {match orders {
                            Ok(o) if o.is_empty() => view! {
                                <section class="empty-state" data-testid="no-orders">
                                    <h2>"No standing orders yet"</h2>
                                    <p>"When a search finds nothing, leave it here: the order waits for a cancellation, an expired hold, a resale or new capacity."</p>
                                </section>
                            }.into_any(),
                            Ok(o) => view! { <OrderTable orders=o cancel=cancel key=cancel_key/> }.into_any(),
                            Err(e) => view! { <p class="form-error" role="alert">{clean_error(&e.to_string())}</p> }.into_any(),
                        }}
                    }
                    .into_any()
                })
            }}
        </Transition>
    }
}

/// The order form, prefilled from the search in the page's URL.
#[component]
fn OrderForm(action: ServerAction<LeaveOrder>, ask: SearchForm, key: String) -> impl IntoView {
    let hours = if ask.hours.is_empty() {
        "24".to_string()
    } else {
        ask.hours.clone()
    };
    let interruptible = ask.tier == "interruptible";
    view! {
        <ActionForm action=action attr:class="stack-form wide" attr:data-testid="order-form">
            <input type="hidden" name="request_key" value=key/>
            <div class="search-grid">
                <label>"GPU model " <input type="text" name="order[gpu_model]" maxlength="80" placeholder="Any" value=ask.gpu_model.clone()/></label>
                <label>"GPUs " <input type="number" name="order[gpus]" min="1" inputmode="numeric" value=ask.gpus.clone()/></label>
                <label>"or kW " <input type="number" name="order[kw]" min="1" inputmode="numeric" value=ask.kw.clone()/></label>
                <label>"Hours " <input type="number" name="order[hours]" min="1" max="8760" required value=hours/></label>
                <label>"Earliest start (UTC) " <input type="datetime-local" name="order[earliest_start]" required value=ask.start.clone()/></label>
                <label>"Latest start (UTC) " <input type="datetime-local" name="order[latest_start]" required/></label>
                <label>"Region " <input type="text" name="order[region]" maxlength="80" placeholder="Any" value=ask.region.clone()/></label>
                <label>"Energy " <input type="text" name="order[energy_source]" maxlength="80" placeholder="Any" value=ask.energy_source.clone()/></label>
                <label>"Tier "
                    <select name="order[tier]">
                        <option value="firm" selected=!interruptible>"Firm"</option>
                        <option value="interruptible" selected=interruptible>"Interruptible"</option>
                    </select>
                </label>
                <label>"Most you'll pay in all ($) " <input type="text" name="order[max_total]" inputmode="decimal" placeholder="No limit"/></label>
            </div>
            <p class="small muted">"The order lasts until its latest start. Starts are whole hours."</p>
            <button type="submit" class="button" data-testid="leave-order-submit">"Leave the order"</button>
        </ActionForm>
        <FormResult action=action ok="Order left. It fills as soon as matching capacity appears."/>
    }
}

#[component]
fn OrderTable(
    orders: Vec<StandingOrder>,
    cancel: ServerAction<CancelOrder>,
    key: String,
) -> impl IntoView {
    let full = orders.len() as i64 >= SHOWN;
    view! {
        <div class="table-scroll"><table class="data-table" data-testid="orders">
            <caption>"Your standing orders, newest first"</caption>
            <thead><tr>
                <th scope="col">"Order"</th><th scope="col">"What"</th><th scope="col">"Starting between"</th>
                <th scope="col" class="num">"At most"</th><th scope="col">"Until"</th><th scope="col">"State"</th><th scope="col"></th>
            </tr></thead>
            <tbody>{orders.into_iter().map(|o| {
                let key = format!("{key}-{}", o.id);
                view! {
                    <tr data-testid=format!("order-{}", o.id)>
                        <td>"#" {o.id}</td>
                        <td data-label="What">{o.summary()}</td>
                        <td data-label="Starting between"><LocalTime at=o.earliest_start/> " – " <LocalTime at=o.latest_start/></td>
                        <td class="num" data-label="At most">{o.max_total_cents.map(|c| format_cents(c, "USD")).unwrap_or_else(|| "any price".into())}</td>
                        <td data-label="Until"><LocalTime at=o.expires_at/></td>
                        <td data-label="State"><span class=format!("tag tag-{}", o.state.as_str()) data-testid="order-state">{o.state.as_str()}</span>
                            {o.reservation_id.map(|r| view! { " " <a href=format!("/reservations/{r}") data-testid="order-reservation">"reservation #" {r}</a> })}</td>
                        <td>{(o.state == OrderState::Open).then(|| view! {
                            <ActionForm action=cancel attr:class="inline-form">
                                <input type="hidden" name="id" value=o.id/>
                                <input type="hidden" name="request_key" value=key/>
                                <button type="submit" class="button secondary small" data-testid="cancel-order">"Cancel"</button>
                            </ActionForm>
                        })}</td>
                    </tr>
                }
            }).collect_view()}</tbody>
        </table></div>
        {full.then(|| view! { <p class="small muted">"Showing the newest " {SHOWN} " orders; the API lists them all ("<code>"GET /api/v1/orders"</code>")."</p> })}
    }
}
