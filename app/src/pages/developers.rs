//! The API reference: the OpenAPI document the server generates from its handlers,
//! rendered for people, with the conventions every route shares.

use crate::app_error::AppError;
use crate::components::clean_error;
use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

/// The OpenAPI document as JSON, provided by the server to this app's server functions.
#[derive(Clone, Copy, Debug)]
pub struct ApiDocument(pub &'static str);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    pub method: String,
    pub path: String,
    pub tag: String,
    pub summary: String,
    pub scopes: Vec<String>,
    pub params: Vec<Param>,
    pub body: Option<String>,
    pub responses: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Param {
    pub name: String,
    pub location: String,
    pub required: bool,
    pub description: String,
}

#[server(endpoint = "api_reference")]
pub async fn api_reference() -> Result<(String, Vec<Operation>), AppError> {
    let doc = use_context::<ApiDocument>()
        .ok_or_else(|| AppError::unavailable("The API reference is not available right now."))?;
    let v: serde_json::Value = serde_json::from_str(doc.0).map_err(|e| {
        tracing::error!(error = %e, "the OpenAPI document does not parse");
        AppError::unavailable("The API reference is not available right now.")
    })?;
    Ok((
        v["info"]["description"].as_str().unwrap_or("").to_string(),
        operations(&v),
    ))
}

/// Flattens the document's paths into operations, in document order, grouped by tag.
#[cfg(feature = "ssr")]
fn operations(v: &serde_json::Value) -> Vec<Operation> {
    let name_of = |schema: &serde_json::Value| -> String {
        schema["$ref"]
            .as_str()
            .map(|r| r.rsplit('/').next().unwrap_or(r).to_string())
            .unwrap_or_else(|| schema["type"].as_str().unwrap_or("object").to_string())
    };
    let mut out = Vec::new();
    for (path, item) in v["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let params = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| Param {
                    name: p["name"].as_str().unwrap_or("").into(),
                    location: p["in"].as_str().unwrap_or("").into(),
                    required: p["required"].as_bool().unwrap_or(false),
                    description: p["description"].as_str().unwrap_or("").into(),
                })
                .collect();
            let body = op["requestBody"]["content"]["application/json"]["schema"]
                .as_object()
                .map(|_| name_of(&op["requestBody"]["content"]["application/json"]["schema"]));
            let responses = op["responses"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(code, r)| {
                    (
                        code.clone(),
                        r["description"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect();
            let scopes = op["security"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| s["api_key"].as_array().cloned().unwrap_or_default())
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect();
            out.push(Operation {
                method: method.to_uppercase(),
                path: path.clone(),
                tag: op["tags"][0].as_str().unwrap_or("other").into(),
                summary: op["summary"]
                    .as_str()
                    .or(op["description"].as_str())
                    .unwrap_or("")
                    .into(),
                scopes,
                params,
                body,
                responses,
            });
        }
    }
    let order = [
        "organization",
        "market",
        "reservations",
        "operations",
        "webhooks",
    ];
    out.sort_by_key(|o| {
        order
            .iter()
            .position(|t| *t == o.tag)
            .unwrap_or(order.len())
    });
    out
}

#[component]
pub fn DevelopersPage() -> impl IntoView {
    let reference = crate::resource::load(|| (), |_| api_reference());
    view! {
        <Title text="API reference"/>
        <h1>"API reference"</h1>
        <p class="lede">
            "Integrate your scheduler or inventory system with the JSON API under " <code>"/api/v1"</code>
            ". The machine-readable OpenAPI 3.1 document is at "
            <a href="/api/v1/openapi.json" rel="external">"/api/v1/openapi.json"</a> "."
        </p>
        <section class="panel" aria-labelledby="conventions">
            <h2 id="conventions">"Conventions"</h2>
            <ul class="conventions">
                <li><strong>"Keys: "</strong> "create one on " <a href="/account">"your account page"</a>
                    " and send it as " <code>"Authorization: Bearer rsk_…"</code> ". Scopes: "
                    <code>"read"</code> ", " <code>"reserve"</code> ", " <code>"operate"</code> ". Never put a key in a URL."</li>
                <li><strong>"Time and money: "</strong> "RFC 3339 timestamps in UTC; windows on whole hours; prices in integer cents with a currency."</li>
                <li><strong>"Errors: "</strong> <code>"application/problem+json"</code> " with a " <code>"code"</code> ", a " <code>"detail"</code>
                    " saying what to fix, and per-field " <code>"errors"</code> ". Someone else's object is 404."</li>
                <li><strong>"Lists: "</strong> <code>"?limit=1..200"</code> " and the opaque " <code>"cursor"</code> " from the previous page's " <code>"next_cursor"</code> "."</li>
                <li><strong>"Retries: "</strong> "send " <code>"Idempotency-Key"</code> " on creating POSTs: a retry with the same body replays the first answer (kept 24 h); another body is 422; while the first runs, 409 " <code>"idempotency-key-in-use"</code> "; if the first was cut off after it may have taken effect, 409 " <code>"idempotency-outcome-unknown"</code> " (look, then retry with a new key). A reservation or hold is made at most once per key, even when its first answer was lost: if the server running it died, a retry a few seconds later returns the reservation it made, or makes it."</li>
                <li><strong>"Rate limits: "</strong> "per key and minute; beyond, 429 with " <code>"Retry-After"</code> "."</li>
                <li><strong>"Webhooks: "</strong> "register endpoints on " <a href="/webhooks">"the webhooks page"</a>
                    " or with " <code>"POST /api/v1/webhooks"</code> "; verify " <code>"Rigshift-Signature"</code> "."</li>
            </ul>
        </section>
        <Transition fallback=|| view! { <p class="loading">"Loading the reference…"</p> }>
            {move || Suspend::new(async move {
                match reference.await {
                    Ok((_, ops)) => view! {
                        <section aria-labelledby="routes" data-testid="api-reference">
                            <h2 id="routes">"Routes " <span class="muted">"(" {ops.len()} ")"</span></h2>
                            {ops.into_iter().map(|op| view! { <OperationView op/> }).collect_view()}
                        </section>
                    }.into_any(),
                    Err(e) => view! { <p class="form-error" role="alert">{clean_error(&e.to_string())}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn OperationView(op: Operation) -> impl IntoView {
    let id = format!(
        "{}-{}",
        op.method.to_lowercase(),
        op.path.replace(['/', '{', '}'], "-")
    );
    view! {
        <article class="api-op" id=id>
            <h3>
                <span class=format!("method method-{}", op.method.to_lowercase())>{op.method.clone()}</span>
                " " <code>{op.path.clone()}</code>
                {(!op.scopes.is_empty()).then(|| view! { " " <span class="muted small">"scope: " {op.scopes.join(" or ")}</span> })}
            </h3>
            <p>{op.summary.clone()}</p>
            {(!op.params.is_empty()).then(|| view! {
                <table class="data-table compact">
                    <thead><tr><th scope="col">"Parameter"</th><th scope="col">"In"</th><th scope="col">"Description"</th></tr></thead>
                    <tbody>{op.params.iter().map(|p| view! {
                        <tr>
                            <td><code>{p.name.clone()}</code>{p.required.then_some(" (required)")}</td>
                            <td data-label="In">{p.location.clone()}</td>
                            <td data-label="Description">{p.description.clone()}</td>
                        </tr>
                    }).collect_view()}</tbody>
                </table>
            })}
            {op.body.clone().map(|b| view! { <p class="small">"Body: " <code>{b}</code> " (JSON; schema in the OpenAPI document)"</p> })}
            <ul class="responses small">
                {op.responses.iter().map(|(code, d)| view! { <li><code>{code.clone()}</code> " " {d.clone()}</li> }).collect_view()}
            </ul>
        </article>
    }
}
