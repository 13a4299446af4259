//! Sign in and sign up.

use crate::session::{safe_next, use_auth, LogIn, LogInCode, SignUp};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn LoginPage() -> impl IntoView {
    let auth = use_auth();
    let query = use_query_map();
    let next = move || safe_next(query.read().get("next").as_deref(), "/");
    let challenge = move || query.read().get("challenge").filter(|c| !c.is_empty());
    let action: ServerAction<LogIn> = auth.log_in;
    let code_action: ServerAction<LogInCode> = auth.log_in_code;
    let notice = move || match query.read().get("done").as_deref() {
        Some("reset") => Some("Your password was changed. Sign in with the new one."),
        Some("verified") => Some("Thank you: your email address is verified. Sign in to go on."),
        _ => None,
    };

    view! {
        <Title text="Sign in"/>
        <section class="auth-card" aria-labelledby="login-title">
            <h1 id="login-title">"Sign in"</h1>
            {move || notice().map(|n| view! { <p class="notice" role="status" data-testid="login-notice">{n}</p> })}
            {move || match challenge() {
                Some(challenge) => view! {
                    <p>"Your password was right. Now type the six-digit code your authenticator app shows, or one of your recovery codes."</p>
                    <ActionForm action=code_action attr:class="stack-form" attr:data-testid="login-code-form">
                        <input type="hidden" name="challenge" value=challenge/>
                        <input type="hidden" name="next" value=next/>
                        <label>"Code"
                            <input type="text" name="code" autocomplete="one-time-code" inputmode="numeric" required maxlength="20" autofocus/>
                        </label>
                        <button type="submit" class="button">"Sign in"</button>
                    </ActionForm>
                    <p class="muted"><a href="/login">"Start over"</a></p>
                }.into_any(),
                None => view! {
                    <ActionForm action=action attr:class="stack-form" attr:data-testid="login-form">
                        <input type="hidden" name="next" value=next/>
                        <label>"Email"
                            <input type="email" name="email" autocomplete="username" required maxlength="254"/>
                        </label>
                        <label>"Password"
                            <input type="password" name="password" autocomplete="current-password" required/>
                        </label>
                        <button type="submit" class="button">"Sign in"</button>
                    </ActionForm>
                    <p class="muted"><a href="/forgot" data-testid="forgot-link">"Forgot your password?"</a></p>
                    <p class="muted">"New to Rigshift? " <a href="/signup">"Create an account"</a></p>
                }.into_any(),
            }}
        </section>
    }
}

#[component]
pub fn SignupPage() -> impl IntoView {
    let action: ServerAction<SignUp> = use_auth().sign_up;
    view! {
        <Title text="Create an account"/>
        <section class="auth-card" aria-labelledby="signup-title">
            <h1 id="signup-title">"Create an account"</h1>
            <p class="muted">"One account for you and your organization. You can add API keys for your systems afterwards."</p>
            <ActionForm action=action attr:class="stack-form" attr:data-testid="signup-form">
                <label>"Organization"
                    <input type="text" name="organization_name" autocomplete="organization" required maxlength="200"/>
                </label>
                <fieldset>
                    <legend>"Your organization…"</legend>
                    <label class="choice"><input type="radio" name="kind" value="customer" checked/>" reserves capacity (customer)"</label>
                    <label class="choice"><input type="radio" name="kind" value="operator"/>" lists sites and capacity (operator)"</label>
                    <label class="choice"><input type="radio" name="kind" value="both"/>" does both"</label>
                </fieldset>
                <label>"Your name"
                    <input type="text" name="display_name" autocomplete="name" required maxlength="200"/>
                </label>
                <label>"Email"
                    <input type="email" name="email" autocomplete="email" required maxlength="254"/>
                </label>
                <label>"Password"
                    <input type="password" name="password" autocomplete="new-password" required minlength="12" maxlength="256"
                        aria-describedby="password-hint"/>
                    <span id="password-hint" class="muted small">"At least 12 characters; a few unrelated words work well."</span>
                </label>
                <button type="submit" class="button">"Create account"</button>
            </ActionForm>
            <p class="muted">"Already have an account? " <a href="/login">"Sign in"</a></p>
        </section>
    }
}
