//! The pages' plain forms, sent from the page when JavaScript runs.
//!
//! Pages are server-rendered and only islands run in the browser, so every other form is a
//! plain HTML form that posts to its server function. Without JavaScript the server sends it
//! back to its page with `?form_error=` or `?form_done=` (`plain_forms_back_to_the_page` in
//! the server), and a refused form comes back empty. With JavaScript this island sends such a
//! form itself, asking for JSON:
//! - refused: the form stays as typed, with the reason beside its button;
//! - done: the browser goes where the server function sent it, or back to this page with
//!   `?form_done=`, as without JavaScript (so both show the same confirmation).
//!
//! One listener for the whole document: the forms are the server's HTML, not components.
//! Forms inside another island, and forms that are not POSTs to this site's server functions
//! (searches, the JSON API), are left to the browser.

use leptos::prelude::*;

/// Mounted once per page, in the app's footer; it renders nothing.
#[island]
pub fn PlainFormsInPlace() -> impl IntoView {
    #[cfg(feature = "hydrate")]
    {
        // Lives as long as the page.
        let _ = window_event_listener(leptos::ev::submit, browser::on_submit);
    }
}

/// What a refused form's answer says, for people: server functions answer with the app's
/// typed error (`message`), the layers before them with a problem document (`detail`).
/// Read here for the page and by the server for a plain form's redirect.
pub fn refusal_reason(body: &[u8], status: u16) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v["message"]
                .as_str()
                .or_else(|| v["detail"].as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| format!("the form could not be sent (HTTP {status})"))
}

#[cfg(feature = "hydrate")]
mod browser {
    use leptos::prelude::{document, window};
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;
    use web_sys::{Element, FormData, HtmlFormElement, RequestInit, Response, SubmitEvent, Url};

    /// Set on a form while it is being sent, so a second click does not send it twice.
    const SENDING: &str = "data-sending";
    const ERROR_ID: &str = "form-error-in-place";

    pub fn on_submit(ev: SubmitEvent) {
        if ev.default_prevented() {
            return; // an island's own form
        }
        let Some(form) = ev
            .target()
            .and_then(|t| t.dyn_into::<HtmlFormElement>().ok())
        else {
            return;
        };
        let Some(function) = server_function_path(&form) else {
            return;
        };
        if form.closest("leptos-island").ok().flatten().is_some() {
            return;
        }
        ev.prevent_default();
        if form.has_attribute(SENDING) {
            return;
        }
        let Some(body) = FormData::new_with_form(&form)
            .and_then(|data| web_sys::UrlSearchParams::new_with_str_sequence_sequence(&data))
            .ok()
        else {
            return;
        };
        sending(&form, true);
        leptos::task::spawn_local(async move {
            let outcome = send(&function, &body).await;
            match outcome {
                Ok(Next::GoTo(to)) => {
                    // The form stays disabled while the next page loads.
                    let _ = window().location().assign(&to);
                }
                Ok(Next::Refused(reason)) => {
                    // The refusal is kept under the form's key: a changed request needs a
                    // new one (the same key with another request would be refused).
                    renew_key(&form).await;
                    sending(&form, false);
                    show_reason(&form, &reason);
                }
                Err(_) => {
                    sending(&form, false);
                    show_reason(
                        &form,
                        "The form could not be sent: check your connection and try again.",
                    );
                }
            }
        });
    }

    /// The path of the server function `form` posts to, when it is one of this site's.
    fn server_function_path(form: &HtmlFormElement) -> Option<String> {
        if !form.method().eq_ignore_ascii_case("post") {
            return None;
        }
        let action = Url::new(&form.action()).ok()?;
        let here = window().location().origin().ok()?;
        let path = action.pathname();
        (action.origin() == here && path.starts_with("/api/") && !path.starts_with("/api/v1/"))
            .then_some(path)
    }

    enum Next {
        GoTo(String),
        Refused(String),
    }

    async fn send(function: &str, body: &web_sys::UrlSearchParams) -> Result<Next, JsValue> {
        let headers = web_sys::Headers::new()?;
        headers.set("Accept", "application/json")?;
        let init = RequestInit::new();
        init.set_method("POST");
        init.set_headers(&headers);
        init.set_body(body);
        let request = web_sys::Request::new_with_str_and_init(function, &init)?;
        let response: Response = JsFuture::from(window().fetch_with_request(&request))
            .await?
            .dyn_into()?;
        if response.ok() {
            // A server function that sends the visitor on names the place (`Location`);
            // the others bring them back here with the confirmation.
            if let Some(to) = response.headers().get("location")? {
                return Ok(Next::GoTo(to));
            }
            let here = Url::new(&window().location().href()?)?;
            let query = here.search_params();
            query.delete("form_error");
            query.delete("form_done");
            query.append("form_done", function);
            return Ok(Next::GoTo(here.href()));
        }
        let text = JsFuture::from(response.text()?)
            .await?
            .as_string()
            .unwrap_or_default();
        Ok(Next::Refused(super::refusal_reason(
            text.as_bytes(),
            response.status(),
        )))
    }

    /// A fresh `request_key` for a form that carries one (see `components::form_key`).
    async fn renew_key(form: &HtmlFormElement) {
        let Ok(Some(field)) = form.query_selector("input[name=request_key]") else {
            return;
        };
        let fresh = async {
            let headers = web_sys::Headers::new()?;
            headers.set("Accept", "application/json")?;
            let init = RequestInit::new();
            init.set_method("POST");
            init.set_headers(&headers);
            let request = web_sys::Request::new_with_str_and_init(
                <crate::components::FormKey as leptos::server_fn::ServerFn>::PATH,
                &init,
            )?;
            let response: Response = JsFuture::from(window().fetch_with_request(&request))
                .await?
                .dyn_into()?;
            JsFuture::from(response.text()?).await
        };
        let key = fresh
            .await
            .ok()
            .and_then(|text| text.as_string())
            .and_then(|text| serde_json::from_str::<String>(&text).ok());
        if let Some(key) = key {
            let _ = field.set_attribute("value", &key);
        }
    }

    fn sending(form: &HtmlFormElement, on: bool) {
        if on {
            let _ = form.set_attribute(SENDING, "");
        } else {
            let _ = form.remove_attribute(SENDING);
        }
        if let Ok(buttons) = form.query_selector_all("button") {
            for i in 0..buttons.length() {
                if let Some(b) = buttons.item(i) {
                    let b: Element = b.unchecked_into();
                    let _ = if on {
                        b.set_attribute("disabled", "")
                    } else {
                        b.remove_attribute("disabled")
                    };
                }
            }
        }
    }

    /// The reason, as text, just above the form's first button (or at its end).
    fn show_reason(form: &HtmlFormElement, reason: &str) {
        if let Ok(Some(old)) = form.query_selector(&format!("[data-testid={ERROR_ID}]")) {
            old.remove();
        }
        let Ok(p) = document().create_element("p") else {
            return;
        };
        p.set_class_name("form-error");
        let _ = p.set_attribute("role", "alert");
        let _ = p.set_attribute("data-testid", ERROR_ID);
        p.set_text_content(Some(&crate::components::clean_error(reason)));
        match form.query_selector("button") {
            Ok(Some(button)) => {
                let _ = button.before_with_node_1(&p);
            }
            _ => {
                let _ = form.append_child(&p);
            }
        }
    }
}
