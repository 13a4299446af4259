//! The account page's security panels: confirming the email address, and two-factor
//! authentication (set up with an authenticator app, recovery codes, turn off).

use crate::account::CurrentUser;
use crate::app_error::AppError;
use crate::components::{clean_error, FormResult};
use leptos::form::ActionForm;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// What the authenticator app needs, shown while two-factor authentication is set up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecondFactorSetup {
    pub secret: String,
    pub uri: String,
    pub recovery_codes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwoFactorState {
    pub enabled: bool,
    /// A setup begun and not yet confirmed (kept, so the page shows it again after a reload).
    pub pending: Option<SecondFactorSetup>,
    pub recovery_codes_left: i64,
}

#[server(endpoint = "resend_verification")]
pub async fn resend_verification() -> Result<(), AppError> {
    use crate::services::{recovery, web};
    let user_id = web::principal()?.person().map_err(web::fail)?;
    let db = web::db()?;
    let mut tx = db.begin().await.map_err(|e| web::fail(e.into()))?;
    recovery::send_verification(&mut tx, user_id, &web::public_url()?, chrono::Utc::now())
        .await
        .map_err(web::fail)?;
    tx.commit().await.map_err(|e| web::fail(e.into()))
}

#[server(endpoint = "second_factor_status")]
pub async fn second_factor_status() -> Result<TwoFactorState, AppError> {
    use crate::services::{second_factor, web};
    let user_id = web::principal()?.person().map_err(web::fail)?;
    let s = second_factor::status(&web::db()?, user_id)
        .await
        .map_err(web::fail)?;
    Ok(TwoFactorState {
        enabled: s.enabled,
        pending: s.pending.map(|e| SecondFactorSetup {
            secret: e.secret,
            uri: e.uri,
            recovery_codes: e.recovery_codes,
        }),
        recovery_codes_left: s.recovery_codes_left,
    })
}

/// Starts the setup; the page then shows the new secret (from the status).
#[server(endpoint = "begin_second_factor")]
pub async fn begin_second_factor() -> Result<(), AppError> {
    use crate::services::{second_factor, web};
    let user_id = web::principal()?.person().map_err(web::fail)?;
    second_factor::begin(&web::db()?, user_id)
        .await
        .map(drop)
        .map_err(web::fail)
}

/// Turns two-factor authentication on; the recovery codes, shown once.
#[server(endpoint = "confirm_second_factor")]
pub async fn confirm_second_factor(code: String) -> Result<Vec<String>, AppError> {
    use crate::services::{second_factor, web};
    let user_id = web::principal()?.person().map_err(web::fail)?;
    second_factor::confirm(
        &web::db()?,
        user_id,
        &code,
        &web::public_url()?,
        chrono::Utc::now(),
    )
    .await
    .map_err(web::fail)
}

#[server(endpoint = "disable_second_factor")]
pub async fn disable_second_factor(current_password: String, code: String) -> Result<(), AppError> {
    use crate::services::{second_factor, web};
    let user_id = web::principal()?.person().map_err(web::fail)?;
    second_factor::disable(
        &web::db()?,
        user_id,
        &current_password,
        &code,
        &web::public_url()?,
        chrono::Utc::now(),
    )
    .await
    .map_err(web::fail)
}

/// A reminder to confirm the address, with a button to mail the link again.
#[component]
pub fn EmailPanel(user: CurrentUser) -> impl IntoView {
    let resend = ServerAction::<ResendVerification>::new();
    (!user.email_verified).then(|| {
        view! {
            <section class="panel notice" aria-labelledby="verify-title" data-testid="verify-panel">
                <h2 id="verify-title">"Confirm your email address"</h2>
                <p>"We mailed a link to " <strong>{user.email.clone()}</strong>
                   ". Open it to confirm the address is yours; password resets and security notices go there."</p>
                <ActionForm action=resend attr:class="inline-form">
                    <button type="submit" class="button secondary small">"Mail the link again"</button>
                </ActionForm>
                <FormResult action=resend ok="Sent. The link works for three days."/>
            </section>
        }
    })
}

#[component]
pub fn SecondFactorPanel(user: CurrentUser) -> impl IntoView {
    let begin = ServerAction::<BeginSecondFactor>::new();
    let confirm = ServerAction::<ConfirmSecondFactor>::new();
    let disable = ServerAction::<DisableSecondFactor>::new();
    let status = crate::resource::load(|| (), |_| second_factor_status());
    let must = user.platform_admin;
    view! {
        <section class="panel" aria-labelledby="2fa-title" data-testid="second-factor">
            <h2 id="2fa-title">"Two-factor authentication"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match status.await {
                        Ok(s) if s.enabled => view! {
                            <p data-testid="second-factor-on">"On: signing in asks for a code from your authenticator app. "
                               {s.recovery_codes_left} " of 10 recovery codes left."</p>
                            {(!must).then(|| view! {
                                <details>
                                    <summary>"Turn it off"</summary>
                                    <ActionForm action=disable attr:class="stack-form">
                                        <label>"Current password"<input type="password" name="current_password" autocomplete="current-password" required/></label>
                                        <label>"A code from your app"<input type="text" name="code" autocomplete="one-time-code" inputmode="numeric" required maxlength="20"/></label>
                                        <button type="submit" class="button danger small">"Turn off two-factor authentication"</button>
                                    </ActionForm>
                                </details>
                            })}
                        }.into_any(),
                        Ok(s) => view! {
                            {must.then(|| view! {
                                <p class="form-error" role="alert" data-testid="admin-needs-2fa">
                                    "As the platform administrator you must use two-factor authentication: the administration pages open once it is on."
                                </p>
                            })}
                            {match s.pending {
                                Some(setup) => view! {
                                    <div class="secret-box" data-testid="2fa-setup">
                                        <p>"Add Rigshift to your authenticator app: open "
                                           <a href=setup.uri.clone()>"this link"</a>
                                           " on your phone, or type this key:"</p>
                                        <p><code data-testid="2fa-secret">{setup.secret.clone()}</code></p>
                                        <p><strong>"Keep these recovery codes somewhere safe now:"</strong>
                                           " each signs you in once if you lose your phone; they are not shown again once two-factor authentication is on."</p>
                                        <ul class="codes" data-testid="pending-recovery-codes">
                                            {setup.recovery_codes.iter().map(|c| view! { <li><code>{c.clone()}</code></li> }).collect_view()}
                                        </ul>
                                        <ActionForm action=confirm attr:class="stack-form">
                                            <label>"The six-digit code it shows"
                                                <input type="text" name="code" autocomplete="one-time-code" inputmode="numeric" required maxlength="20"/>
                                            </label>
                                            <button type="submit" class="button" data-testid="confirm-2fa">"Turn on"</button>
                                        </ActionForm>
                                    </div>
                                }.into_any(),
                                None => view! {
                                    <p>"Off. With it on, signing in also asks for a six-digit code from an authenticator app on your phone, so a stolen password is not enough."</p>
                                    <ActionForm action=begin attr:class="inline-form">
                                        <button type="submit" class="button" data-testid="begin-2fa">"Set up two-factor authentication"</button>
                                    </ActionForm>
                                }.into_any(),
                            }}
                        }.into_any(),
                        Err(e) => view! { <p class="form-error" role="alert">{clean_error(&e.to_string())}</p> }.into_any(),
                    }
                })}
            </Transition>
            <FormResult action=confirm ok="Two-factor authentication is on. Keep the recovery codes shown while you set it up: they are not shown again."/>
            <FormResult action=disable ok="Two-factor authentication is off."/>
        </section>
    }
}
