//! Small pieces many pages use: times in the reader's zone, form messages, sign-in prompts.

use crate::app_error::AppError;
use chrono::{DateTime, Datelike, Timelike, Utc};
use leptos::prelude::*;

/// A moment shown in the reader's local time. The server renders UTC (it can't know the
/// reader's zone); in the browser this island rewrites it in local time.
#[island]
pub fn LocalTime(at: DateTime<Utc>) -> impl IntoView {
    let text = RwSignal::new(format!("{} UTC", utc_minute(at)));
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        {
            let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(
                at.timestamp_millis() as f64
            ));
            let local: String = date
                .to_locale_string("default", &wasm_bindgen::JsValue::UNDEFINED)
                .into();
            text.set(local);
        }
    });
    view! { <time datetime=at.to_rfc3339()>{move || text.get()}</time> }
}

/// The time left until `until`, ticking each second in the browser ("12:04 left", then
/// `ended`). Empty without JavaScript: show the end time beside it.
#[island]
pub fn Countdown(until: DateTime<Utc>, #[prop(into)] ended: String) -> impl IntoView {
    let left = RwSignal::new(String::new());
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        {
            let ended = ended.clone();
            let tick = move || {
                let ms = until.timestamp_millis() - js_sys::Date::now() as i64;
                left.set(countdown_text(ms, &ended));
            };
            tick();
            let handle = set_interval_with_handle(tick, std::time::Duration::from_secs(1)).ok();
            on_cleanup(move || {
                if let Some(h) = handle {
                    h.clear();
                }
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (&ended, until);
    });
    view! { <span class="countdown" role="timer" data-testid="countdown">{move || left.get()}</span> }
}

/// `mm:ss left` for `ms` milliseconds, or `ended` once none are left.
pub fn countdown_text(ms: i64, ended: &str) -> String {
    if ms <= 0 {
        return ended.to_string();
    }
    let secs = (ms + 999) / 1000;
    format!("({}:{:02} left)", secs / 60, secs % 60)
}

// Dates are written by hand rather than with chrono's `format`: its strftime parser would
// add tens of kilobytes to the browser bundle for four fixed layouts.

/// `2026-11-22 09:00` (UTC).
pub fn utc_minute(t: DateTime<Utc>) -> String {
    format!("{} {:02}:{:02}", utc_day(t), t.hour(), t.minute())
}

/// `2026-11-22T09:00` (UTC), the value layout of `<input type="datetime-local">`.
pub fn input_minute(t: DateTime<Utc>) -> String {
    format!("{}T{:02}:{:02}", utc_day(t), t.hour(), t.minute())
}

/// `2026-11-22` (UTC).
pub fn utc_day(t: DateTime<Utc>) -> String {
    format!("{:04}-{:02}-{:02}", t.year(), t.month(), t.day())
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `Nov 22` (UTC).
pub fn short_day(t: DateTime<Utc>) -> String {
    format!("{} {:02}", MONTHS[t.month0() as usize], t.day())
}

/// `Nov 2026` (UTC).
pub fn short_month(t: DateTime<Utc>) -> String {
    format!("{} {}", MONTHS[t.month0() as usize], t.year())
}

/// The current time, on the server or in the browser (where the standard library has no
/// clock, so it asks JavaScript's `Date`).
pub fn now() -> DateTime<Utc> {
    #[cfg(feature = "hydrate")]
    {
        DateTime::from_timestamp_millis(js_sys::Date::now() as i64).unwrap_or_default()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        Utc::now()
    }
}

/// Text for the document's `<title>`. `leptos_meta` writes the title into the server-rendered
/// `<head>` as it is, unescaped, so a pool named `</title><meta http-equiv="refresh" …>`
/// would redirect every visitor; the server escapes it. In the browser the title is set as
/// text (`textContent`), where escaping would show the entities, so it is left alone.
pub fn head_text(text: &str) -> String {
    if cfg!(feature = "ssr") {
        escape_html(text)
    } else {
        text.to_string()
    }
}

/// `text` with the five characters that can open markup or close an attribute escaped.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A fresh key for one form that changes money (reserve, extend, cancel). The form posts it
/// back as `request_key`; the server's idempotency layer then does the form's action once
/// per key and replays its answer to a double click, a reload or a resubmitted page. A page
/// renders a fresh one with each form; after a refusal the page asks for another
/// (`plain_forms`), since the refusal is kept under the key it was sent with.
#[server(endpoint = "form_key")]
pub async fn form_key() -> Result<String, AppError> {
    Ok(format!("form-{}", crate::services::token::random_hex(16)))
}

/// The error of a form posted without JavaScript, which the server sends back to the form's
/// page as `?form_error=` (see the server's `plain_forms_back_to_the_page`).
#[component]
pub fn FormErrorFromRedirect() -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    move || {
        query.read().get("form_error").map(|e| {
            view! { <p class="form-error" role="alert" data-testid="form-error">{e}</p> }
        })
    }
}

/// Server function errors arrive wrapped by their transport; people only need the message.
pub fn clean_error(s: &str) -> String {
    s.trim_start_matches("error running server function: ")
        .to_string()
}

/// The confirmation `ok` of `action`, on the page its plain form came back to with
/// `?form_done=<the server function's path>` (see the server's `plain_forms_back_to_the_page`
/// and `plain_forms`, which send every form outside an island). A refusal shows beside the
/// form with JavaScript (`plain_forms`) and at the top of the page without it
/// (`FormErrorFromRedirect`). Not for islands: they have no router, and read their action.
#[component]
pub fn FormResult<S>(action: ServerAction<S>, #[prop(into)] ok: String) -> impl IntoView
where
    S: leptos::server_fn::ServerFn + Clone + Send + Sync + 'static,
    S::Output: Send + Sync + 'static,
    S::Error: Send + Sync + 'static,
{
    let _ = action; // names the server function whose confirmation this is
    let query = leptos_router::hooks::use_query_map();
    let done_here = query.read_untracked().get("form_done").as_deref() == Some(S::url());
    done_here.then(|| view! { <p class="form-ok" role="status">{ok}</p> })
}

/// A secret an island's form just made, shown once, with the way to the list it joined (the
/// list is the server's HTML: the page is read again).
#[component]
pub fn SecretBox(
    /// What to do with it, in bold above it.
    #[prop(into)]
    lead: String,
    secret: String,
    testid: &'static str,
    secret_testid: &'static str,
    /// The page to read again, and the link's test id.
    back: (&'static str, &'static str),
    /// What else to say, below the secret.
    #[prop(optional, into)]
    note: Option<String>,
) -> impl IntoView {
    view! {
        <div class="secret-box" role="status" data-testid=testid>
            <p><strong>{lead}</strong></p>
            <code data-testid=secret_testid>{secret}</code>
            {note.map(|n| view! { <p class="small">{n}</p> })}
            <p class="small"><a href=back.0 data-testid=back.1>"Done: show the list"</a></p>
        </div>
    }
}

/// The route's numeric `:id`, or 0 when it is not a number (no object has id 0, so the
/// page answers "not found").
pub fn use_id_param() -> impl Fn() -> i64 + Copy + Send + Sync + 'static {
    let params = leptos_router::hooks::use_params_map();
    move || {
        params
            .read()
            .get("id")
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0)
    }
}

/// What a signed-in customer sees, with status 403, on a page for site operators.
#[component]
pub fn NotOperator(children: Children) -> impl IntoView {
    set_page_status(403);
    view! {
        <section class="empty-state" data-testid="not-operator">
            <h1>"For site operators"</h1>
            <p>{children()}</p>
        </section>
    }
}

/// Sets the HTTP status of the page being rendered on the server (no-op in the browser).
pub fn set_page_status(_status: u16) {
    #[cfg(feature = "ssr")]
    if let (Some(res), Ok(code)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        http::StatusCode::from_u16(_status),
    ) {
        res.set_status(code);
    }
}

/// A page for signed-in visitors: renders `page` with the visitor once known, or asks them
/// to sign in (and come back to `next`).
#[component]
pub fn SignedIn<F>(#[prop(into)] next: String, page: F) -> impl IntoView
where
    F: Fn(crate::account::CurrentUser) -> AnyView + Clone + Send + Sync + 'static,
{
    let auth = crate::session::use_auth();
    view! {
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || {
                let (page, next) = (page.clone(), next.clone());
                Suspend::new(async move {
                    match auth.user.await {
                        Ok(Some(user)) => page(user),
                        _ => view! { <SignInPrompt next/> }.into_any(),
                    }
                })
            }}
        </Transition>
    }
}

/// Shown instead of a page that needs a signed-in visitor (status 401).
#[component]
pub fn SignInPrompt(#[prop(into)] next: String) -> impl IntoView {
    set_page_status(401);
    let href = format!("/login?next={}", next);
    view! {
        <section class="empty-state" data-testid="sign-in-prompt">
            <h2>"Please sign in"</h2>
            <p>"This page shows your organization's private data."</p>
            <p>
                <a class="button" href=href>"Sign in"</a>
                " "
                <a href="/signup">"or create an account"</a>
            </p>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn dates_are_written_like_chrono_would() {
        let t = Utc.with_ymd_and_hms(2026, 3, 7, 9, 5, 0).unwrap();
        assert_eq!(utc_minute(t), t.format("%Y-%m-%d %H:%M").to_string());
        assert_eq!(input_minute(t), t.format("%Y-%m-%dT%H:%M").to_string());
        assert_eq!(utc_day(t), t.format("%Y-%m-%d").to_string());
        assert_eq!(short_day(t), t.format("%b %d").to_string());
    }

    #[test]
    fn a_countdown_rounds_up_to_the_second_and_then_ends() {
        assert_eq!(
            countdown_text(14 * 60_000 + 59_001, "ended"),
            "(15:00 left)"
        );
        assert_eq!(countdown_text(61_000, "ended"), "(1:01 left)");
        assert_eq!(countdown_text(1, "ended"), "(0:01 left)");
        assert_eq!(countdown_text(0, "ended"), "ended");
        assert_eq!(countdown_text(-5, "ended"), "ended");
    }
}
