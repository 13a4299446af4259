//! The local outbox, for developers: with no SMTP server configured, mail (reset links,
//! verification links, notices) stays in the database, and this page shows it. It exists
//! only on a server that listens on this machine alone, since the mail holds reset links.

use crate::account::OutboxMessage;
use crate::app_error::AppError;
use crate::components::{clean_error, LocalTime};
use leptos::prelude::*;
use leptos_meta::Title;

/// Whether the server shows its outbox (provided by the server).
#[derive(Clone, Copy, Debug, Default)]
pub struct OutboxPolicy {
    pub shown: bool,
}

#[server(endpoint = "outbox")]
pub async fn outbox() -> Result<Vec<OutboxMessage>, AppError> {
    use crate::services::{error::ServiceError, mail, web};
    if !use_context::<OutboxPolicy>().is_some_and(|p| p.shown) {
        return Err(web::fail(ServiceError::NotFound("page")));
    }
    mail::outbox(&web::db()?, 50).await.map_err(web::fail)
}

#[component]
pub fn OutboxPage() -> impl IntoView {
    let mail = crate::resource::load(|| (), |_| outbox());
    view! {
        <Title text="Mail outbox"/>
        <h1>"Mail outbox"</h1>
        <p class="muted">"This server has no SMTP server configured (" <code>"RIGSHIFT_SMTP_URL"</code>
            "), so the mail it would send is kept here, newest first."</p>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match mail.await {
                    Ok(m) if m.is_empty() => view! { <p class="empty-state">"No mail yet."</p> }.into_any(),
                    Ok(m) => view! {
                        <ol class="outbox" data-testid="outbox">
                            {m.into_iter().map(|m| view! {
                                <li class="panel">
                                    <p><strong>{m.subject}</strong></p>
                                    <p class="muted small">"To " {m.to} " · " <LocalTime at=m.created_at/></p>
                                    <pre class="mail-body">{m.body}</pre>
                                </li>
                            }).collect_view()}
                        </ol>
                    }.into_any(),
                    Err(e) if e.is_not_found() => view! { <crate::pages::not_found::NotFound/> }.into_any(),
                    Err(e) => view! { <p class="form-error" role="alert">{clean_error(&e.to_string())}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}
