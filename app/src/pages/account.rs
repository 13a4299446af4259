//! The account page: who you are, your organization's API keys, your password.

use crate::account::{ApiKeyView, CreatedApiKey, CurrentUser};
use crate::app_error::AppError;
use crate::components::{clean_error, FormResult, LocalTime, SecretBox, SignedIn};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

#[server(endpoint = "change_password")]
pub async fn change_password(
    current_password: String,
    new_password: String,
    confirm_password: String,
) -> Result<(), AppError> {
    use crate::services::{accounts, error::ServiceError, sessions, web};
    let user_id = web::principal()?.person().map_err(web::fail)?;
    if new_password != confirm_password {
        return Err(web::fail(ServiceError::invalid(
            "confirm_password",
            "the two new passwords differ; type the same one twice",
        )));
    }
    let db = web::db()?;
    accounts::change_password(
        &db,
        user_id,
        &current_password,
        &new_password,
        &web::public_url()?,
    )
    .await
    .map_err(web::fail)?;
    // Anyone else signed in as this person (a stolen session, say) is signed out.
    let presented = web::request_auth().presented_session;
    sessions::end_others(&db, user_id, presented.as_deref())
        .await
        .map_err(web::fail)?;
    Ok(())
}

#[server(endpoint = "members")]
pub async fn members() -> Result<Vec<crate::account::Member>, AppError> {
    use crate::services::{accounts, web};
    let p = web::principal()?;
    p.person().map_err(web::fail)?;
    accounts::members(&web::db()?, p.organization_id)
        .await
        .map_err(web::fail)
}

/// A person just added, with the temporary password to hand over (shown once).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AddedMember {
    pub email: String,
    pub temporary_password: String,
}

#[server(endpoint = "add_member")]
pub async fn add_member(email: String, display_name: String) -> Result<AddedMember, AppError> {
    use crate::services::{accounts, web};
    let p = web::principal()?;
    web::answer_read_by_the_page("A new person's temporary password")?;
    let me = p.person().map_err(web::fail)?;
    let (_, password) =
        accounts::add_member(&web::db()?, me, p.organization_id, &email, &display_name)
            .await
            .map_err(web::fail)?;
    Ok(AddedMember {
        email: crate::account::normalize_email(&email),
        temporary_password: password,
    })
}

#[server(endpoint = "api_keys")]
pub async fn api_keys() -> Result<Vec<ApiKeyView>, AppError> {
    use crate::services::{api_keys, web};
    let p = web::principal()?;
    p.person().map_err(web::fail)?;
    api_keys::list(&web::db()?, p.organization_id)
        .await
        .map_err(web::fail)
}

/// Checkboxes post "on" when ticked and nothing otherwise.
#[server(endpoint = "create_api_key")]
pub async fn create_api_key(
    name: String,
    read: Option<String>,
    reserve: Option<String>,
    operate: Option<String>,
    expires_in_days: Option<String>,
) -> Result<CreatedApiKey, AppError> {
    use crate::account::Scope;
    use crate::services::{api_keys, error::ServiceError, web};
    let p = web::principal()?;
    web::answer_read_by_the_page("A new key's secret")?;
    let user_id = p.person().map_err(web::fail)?;
    let scopes = [
        (read, Scope::Read),
        (reserve, Scope::Reserve),
        (operate, Scope::Operate),
    ]
    .into_iter()
    .filter_map(|(on, s)| on.is_some().then_some(s))
    .collect();
    let expires_in_days = match expires_in_days.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(d) => Some(d.parse::<i64>().map_err(|_| {
            web::fail(ServiceError::invalid(
                "expires_in_days",
                "expiry is a whole number of days, or leave it empty for none",
            ))
        })?),
    };
    let key = api_keys::NewKey {
        name,
        scopes,
        expires_in_days,
    };
    api_keys::create(
        &web::db()?,
        p.organization_id,
        Some(user_id),
        &key,
        &web::public_url()?,
        chrono::Utc::now(),
    )
    .await
    .map_err(web::fail)
}

#[server(endpoint = "revoke_api_key")]
pub async fn revoke_api_key(id: i64) -> Result<(), AppError> {
    use crate::services::{api_keys, web};
    let p = web::principal()?;
    p.person().map_err(web::fail)?;
    api_keys::revoke(&web::db()?, p.organization_id, id, chrono::Utc::now())
        .await
        .map_err(web::fail)
}

#[component]
pub fn AccountPage() -> impl IntoView {
    view! {
        <Title text="Your account"/>
        <SignedIn next="/account" page=|user| view! { <Account user/> }.into_any()/>
    }
}

#[component]
fn Account(user: CurrentUser) -> impl IntoView {
    view! {
        <h1>"Your account"</h1>
        <dl class="facts" data-testid="account-facts">
            <div><dt>"Name"</dt><dd>{user.display_name.clone()}</dd></div>
            <div><dt>"Email"</dt><dd>{user.email.clone()}</dd></div>
            <div><dt>"Organization"</dt><dd>{user.organization_name.clone()}</dd></div>
            <div><dt>"Role"</dt><dd>{user.kind.label()}{user.platform_admin.then_some(" · platform administrator")}</dd></div>
        </dl>
        <crate::pages::security::EmailPanel user=user.clone()/>
        <crate::pages::security::SecondFactorPanel user=user.clone()/>
        <Members me=user.email.clone()/>
        <ApiKeys user=user.clone()/>
        <p><a href="/webhooks">"Webhooks"</a> " · " <a href="/developers">"API reference"</a></p>
        <PasswordForm/>
        <crate::pages::activity::Activity everyone=false/>
    }
}

#[component]
fn Members(me: String) -> impl IntoView {
    let list = crate::resource::load(|| (), |_| members());
    view! {
        <section aria-labelledby="members-title" class="panel">
            <h2 id="members-title">"People in your organization"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || { let me = me.clone(); Suspend::new(async move {
                    match list.await {
                        Ok(people) => {
                            let owner = people.iter().any(|m| m.email == me && m.role == "owner");
                            view! {
                                <ul class="members" data-testid="members">
                                    {people.into_iter().map(|m| view! {
                                        <li><strong>{m.display_name}</strong> " · " {m.email} " · " {m.role}
                                            " · since " <LocalTime at=m.created_at/></li>
                                    }).collect_view()}
                                </ul>
                                {if owner {
                                    view! { <AddMemberForm/> }.into_any()
                                } else {
                                    view! { <p class="muted small">"An owner of your organization adds people."</p> }.into_any()
                                }}
                            }.into_any()
                        }
                        Err(e) => view! { <p class="form-error" role="alert">{clean_error(&e.to_string())}</p> }.into_any(),
                    }
                })}}
            </Transition>
        </section>
    }
}

/// Adds a person and shows their temporary password once: an island, because the password
/// exists only in the server function's answer (a plain form's reload would lose it).
#[island]
fn AddMemberForm() -> impl IntoView {
    let add = ServerAction::<AddMember>::new();
    view! {
        <ActionForm action=add attr:class="stack-form" attr:data-testid="add-member-form">
            <h3>"Add a person"</h3>
            <label>"Their name"
                <input type="text" name="display_name" required maxlength="100" autocomplete="off"/>
            </label>
            <label>"Their email"
                <input type="email" name="email" required maxlength="254" autocomplete="off"/>
            </label>
            <button type="submit" class="button secondary" disabled=move || add.pending().get()>"Add person"</button>
        </ActionForm>
        {move || match add.value().get() {
            Some(Ok(added)) => view! {
                <SecretBox lead=format!("Added {}. Their temporary password is shown only now:", added.email)
                    secret=added.temporary_password testid="new-member" secret_testid="new-member-password"
                    back=("/account", "members-reload")
                    note="Hand it over privately; they sign in with it and choose their own on this page."/>
            }.into_any(),
            Some(Err(e)) => view! { <p class="form-error" role="alert">{clean_error(&e.to_string())}</p> }.into_any(),
            None => ().into_any(),
        }}
    }
}

#[component]
fn ApiKeys(user: CurrentUser) -> impl IntoView {
    let revoke = ServerAction::<RevokeApiKey>::new();
    let keys = crate::resource::load(|| (), |_| api_keys());
    let (buys, operates) = (user.kind.buys(), user.kind.operates());
    view! {
        <section aria-labelledby="keys-title" class="panel">
            <h2 id="keys-title">"API keys"</h2>
            <p class="muted">
                "Keys let your systems use the Rigshift API as " <strong>{user.organization_name.clone()}</strong>
                ". Send one as " <code>"Authorization: Bearer rsk_…"</code> ". Each key is shown once, when it is created."
            </p>
            <CreateKeyForm buys operates/>
            <FormResult action=revoke ok="Key revoked; it no longer works."/>
            <Transition fallback=|| view! { <p class="loading">"Loading keys…"</p> }>
                {move || Suspend::new(async move {
                    match keys.await {
                        Ok(list) if list.is_empty() => view! {
                            <p class="empty-state small" data-testid="no-keys">"No API keys yet. Create one above when a system needs access."</p>
                        }.into_any(),
                        Ok(list) => view! { <KeyTable keys=list revoke/> }.into_any(),
                        Err(e) => view! { <p class="form-error" role="alert">{clean_error(&e.to_string())}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// Creates a key and shows its secret once: an island, because the secret exists only in
/// the server function's answer (a plain form's reload would lose it).
#[island]
fn CreateKeyForm(buys: bool, operates: bool) -> impl IntoView {
    let create = ServerAction::<CreateApiKey>::new();
    view! {
        <ActionForm action=create attr:class="stack-form" attr:data-testid="create-key-form">
            <label>"Name"
                <input type="text" name="name" required maxlength="100" placeholder="e.g. slurm-scheduler"/>
            </label>
            <fieldset>
                <legend>"Scopes"</legend>
                <label class="choice"><input type="checkbox" name="read" checked/>" read: your data and the market"</label>
                {buys.then(|| view! {
                    <label class="choice"><input type="checkbox" name="reserve"/>" reserve: quote, reserve, cancel and extend"</label>
                })}
                {operates.then(|| view! {
                    <label class="choice"><input type="checkbox" name="operate"/>" operate: sites, pools, availability and blackouts"</label>
                })}
            </fieldset>
            <label>"Expires after (days, optional)"
                <input type="number" name="expires_in_days" min="1" max="3650" placeholder="never"/>
            </label>
            <button type="submit" class="button" disabled=move || create.pending().get()>"Create key"</button>
        </ActionForm>
        {move || match create.value().get() {
            Some(Ok(made)) => view! {
                <SecretBox lead="Copy your new key now: it will not be shown again." secret=made.secret
                    testid="new-key" secret_testid="new-key-secret" back=("/account", "keys-reload")/>
            }.into_any(),
            Some(Err(e)) => view! { <p class="form-error" role="alert">{clean_error(&e.to_string())}</p> }.into_any(),
            None => ().into_any(),
        }}
    }
}

#[component]
fn KeyTable(keys: Vec<ApiKeyView>, revoke: ServerAction<RevokeApiKey>) -> impl IntoView {
    let now = crate::components::now();
    view! {
        <div class="table-scroll">
            <table class="data-table" data-testid="key-table">
                <thead><tr>
                    <th scope="col">"Name"</th><th scope="col">"Key"</th><th scope="col">"Scopes"</th>
                    <th scope="col">"Created"</th><th scope="col">"Last used"</th><th scope="col">"Expires"</th>
                    <th scope="col">"Status"</th>
                </tr></thead>
                <tbody>
                    {keys.into_iter().map(|k| {
                        let active = k.is_active(now);
                        let status = if k.revoked_at.is_some() { "revoked" } else if active { "active" } else { "expired" };
                        let scopes = k.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
                        view! {
                            <tr data-key-prefix=k.prefix.clone()>
                                <td>{k.name.clone()}</td>
                                <td data-label="Key"><code>{k.prefix.clone()} "_…"</code></td>
                                <td data-label="Scopes">{scopes}</td>
                                <td data-label="Created"><LocalTime at=k.created_at/></td>
                                <td data-label="Last used">{match k.last_used_at { Some(t) => view! { <LocalTime at=t/> }.into_any(), None => "never".into_any() }}</td>
                                <td data-label="Expires">{match k.expires_at { Some(t) => view! { <LocalTime at=t/> }.into_any(), None => "never".into_any() }}</td>
                                <td>
                                    <span class=format!("tag tag-{status}")>{status}</span>
                                    {active.then(|| view! {
                                        <ActionForm action=revoke attr:class="inline-form">
                                            <input type="hidden" name="id" value=k.id/>
                                            <button type="submit" class="button secondary small" data-testid="revoke-key">"Revoke"</button>
                                        </ActionForm>
                                    })}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn PasswordForm() -> impl IntoView {
    let action = ServerAction::<ChangePassword>::new();
    view! {
        <section aria-labelledby="password-title" class="panel">
            <h2 id="password-title">"Change password"</h2>
            <ActionForm action=action attr:class="stack-form" attr:data-testid="password-form">
                <label>"Current password"
                    <input type="password" name="current_password" autocomplete="current-password" required/>
                </label>
                <label>"New password"
                    <input type="password" name="new_password" autocomplete="new-password" required minlength="12" maxlength="256"/>
                </label>
                <label>"New password again"
                    <input type="password" name="confirm_password" autocomplete="new-password" required minlength="12" maxlength="256"/>
                </label>
                <FormResult action=action ok="Password changed. Your other sessions were signed out."/>
                <button type="submit" class="button">"Change password"</button>
            </ActionForm>
        </section>
    }
}
