//! Getting back into an account: ask for a reset link by mail, choose a new password with
//! it; and confirm an email address with the link mailed at sign-up.

use crate::app_error::AppError;
use crate::components::clean_error;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

/// Mails a reset link if the address has an account; the answer is the same either way.
#[server(endpoint = "request_password_reset")]
pub async fn request_password_reset(email: String) -> Result<(), AppError> {
    use crate::services::{recovery, throttle, web};
    let auth = web::request_auth();
    let db = web::db()?;
    let now = chrono::Utc::now();
    // Each request costs a mail: a client address gets the sign-up allowance.
    if let Some(ip) = auth.client {
        throttle::attempt(&db, &throttle::reset_key(ip), throttle::SIGNUP, now)
            .await
            .map_err(web::fail)?;
    }
    recovery::request_reset(&db, &email, &web::public_url()?, now)
        .await
        .map_err(web::fail)?;
    // Without JavaScript the browser follows this; with it, the page shows the same notice.
    leptos_axum::redirect("/forgot?sent=1");
    Ok(())
}

/// Whether a reset link still works.
#[server(endpoint = "reset_link_works")]
pub async fn reset_link_works(token: String) -> Result<bool, AppError> {
    use crate::services::{recovery, web};
    recovery::reset_link_works(&web::db()?, &token, chrono::Utc::now())
        .await
        .map_err(web::fail)
}

#[server(endpoint = "reset_password")]
pub async fn reset_password(
    token: String,
    new_password: String,
    confirm_password: String,
) -> Result<(), AppError> {
    use crate::services::{error::ServiceError, recovery, web};
    if new_password != confirm_password {
        return Err(web::fail(ServiceError::invalid(
            "confirm_password",
            "the two passwords differ; type the same one twice",
        )));
    }
    recovery::reset_password(
        &web::db()?,
        &token,
        &new_password,
        &web::public_url()?,
        chrono::Utc::now(),
    )
    .await
    .map_err(web::fail)?;
    leptos_axum::redirect("/login?done=reset");
    Ok(())
}

#[server(endpoint = "verify_email")]
pub async fn verify_email(token: String) -> Result<(), AppError> {
    use crate::services::{recovery, web};
    recovery::verify_email(&web::db()?, &token, chrono::Utc::now())
        .await
        .map_err(web::fail)?;
    let signed_in = web::request_auth().user.is_some();
    leptos_axum::redirect(if signed_in {
        "/account?verified=1"
    } else {
        "/login?done=verified"
    });
    Ok(())
}

#[component]
pub fn ForgotPage() -> impl IntoView {
    let action = ServerAction::<RequestPasswordReset>::new();
    let query = use_query_map();
    let sent =
        move || matches!(action.value().get(), Some(Ok(()))) || query.read().get("sent").is_some();
    view! {
        <Title text="Reset your password"/>
        <section class="auth-card" aria-labelledby="forgot-title">
            <h1 id="forgot-title">"Reset your password"</h1>
            {move || match sent() {
                true => view! {
                    <p class="notice" role="status" data-testid="reset-sent">
                        "If an account uses that address, a link to choose a new password is on its way. "
                        "It works once, for one hour. Check your spam folder if it does not arrive in a few minutes."
                    </p>
                }.into_any(),
                false => view! {
                    <p class="muted">"Type the email address you sign in with; we mail you a link to choose a new password."</p>
                    <ActionForm action=action attr:class="stack-form" attr:data-testid="forgot-form">
                        <label>"Email"
                            <input type="email" name="email" autocomplete="username" required maxlength="254"/>
                        </label>
                        <button type="submit" class="button">"Mail me a link"</button>
                    </ActionForm>
                }.into_any(),
            }}
            <p class="muted"><a href="/login">"Back to sign in"</a></p>
        </section>
    }
}

#[component]
pub fn ResetPage() -> impl IntoView {
    let query = use_query_map();
    let token = move || query.read().get("code").unwrap_or_default();
    let works = crate::resource::load(token, reset_link_works);
    let action = ServerAction::<ResetPassword>::new();
    view! {
        <Title text="Choose a new password"/>
        <section class="auth-card" aria-labelledby="reset-title">
            <h1 id="reset-title">"Choose a new password"</h1>
            <Transition fallback=|| view! { <p class="loading">"Checking the link…"</p> }>
                {move || Suspend::new(async move {
                    match works.await {
                        Ok(true) => view! {
                            <ActionForm action=action attr:class="stack-form" attr:data-testid="reset-form">
                                <input type="hidden" name="token" value=token/>
                                <label>"New password"
                                    <input type="password" name="new_password" autocomplete="new-password" required minlength="12" maxlength="256"/>
                                    <span class="muted small">"At least 12 characters; a few unrelated words work well."</span>
                                </label>
                                <label>"The same again"
                                    <input type="password" name="confirm_password" autocomplete="new-password" required minlength="12" maxlength="256"/>
                                </label>
                                <button type="submit" class="button">"Set the new password"</button>
                            </ActionForm>
                            <p class="muted small">"Every device signed in to your account is signed out when the password changes."</p>
                        }.into_any(),
                        Ok(false) => view! {
                            <p class="form-error" role="alert" data-testid="reset-dead">
                                "This link has expired or was already used. "
                                <a href="/forgot">"Ask for a new one"</a>"."
                            </p>
                        }.into_any(),
                        Err(e) => view! { <p class="form-error" role="alert">{clean_error(&e.to_string())}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
pub fn VerifyPage() -> impl IntoView {
    let query = use_query_map();
    let token = move || query.read().get("code").unwrap_or_default();
    let action = ServerAction::<VerifyEmail>::new();
    view! {
        <Title text="Confirm your email address"/>
        <section class="auth-card" aria-labelledby="verify-title">
            <h1 id="verify-title">"Confirm your email address"</h1>
            <p>"Confirm that this address is yours, so Rigshift can reach you about your account."</p>
            <ActionForm action=action attr:class="stack-form" attr:data-testid="verify-form">
                <input type="hidden" name="token" value=token/>
                <button type="submit" class="button">"Confirm my address"</button>
            </ActionForm>
        </section>
    }
}
