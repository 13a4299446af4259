//! Platform administration: every organization, and suspending one. Only the platform
//! administrator gets this page; to anyone else it does not exist.

use crate::account::OrgSummary;
use crate::app_error::AppError;
use crate::components::{clean_error, FormResult, LocalTime, SignedIn};
use crate::pages::not_found::NotFound;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

#[server(endpoint = "admin_organizations")]
pub async fn admin_organizations() -> Result<Vec<OrgSummary>, AppError> {
    use crate::services::{admin, web};
    web::principal()?.admin().map_err(web::fail)?;
    admin::organizations(&web::db()?).await.map_err(web::fail)
}

#[server(endpoint = "set_suspended")]
pub async fn set_suspended(organization_id: i64, suspend: bool) -> Result<(), AppError> {
    use crate::services::{admin, web};
    let admin_id = web::principal()?.admin().map_err(web::fail)?;
    admin::set_suspended(
        &web::db()?,
        admin_id,
        organization_id,
        suspend,
        chrono::Utc::now(),
    )
    .await
    .map_err(web::fail)
}

#[component]
pub fn AdminPage() -> impl IntoView {
    view! {
        <Title text="Administration"/>
        <SignedIn next="/admin" page=|user| {
            if user.platform_admin {
                view! { <Organizations/> <crate::pages::activity::Activity everyone=true/> }.into_any()
            } else {
                view! { <NotFound/> }.into_any()
            }
        }/>
    }
}

#[component]
fn Organizations() -> impl IntoView {
    let suspend = ServerAction::<SetSuspended>::new();
    let orgs = crate::resource::load(|| (), |_| admin_organizations());
    view! {
        <h1>"Organizations"</h1>
        <p><a href="/admin/books" data-testid="books-link">"The platform's books: fee revenue, payouts, reconciliation →"</a></p>
        <p class="muted">"Suspending an organization signs its people out, stops its API keys and refuses new sign-ins until it is reinstated. Its reservations stay in force."</p>
        <FormResult action=suspend ok="Saved."/>
        <Transition fallback=|| view! { <p class="loading">"Loading organizations…"</p> }>
            {move || Suspend::new(async move {
                match orgs.await {
                    Ok(list) => view! {
                        <div class="table-scroll">
                            <table class="data-table" data-testid="org-table">
                                <thead><tr>
                                    <th scope="col">"Organization"</th><th scope="col">"Kind"</th>
                                    <th scope="col" class="num">"People"</th><th scope="col" class="num">"Sites"</th>
                                    <th scope="col" class="num">"Reservations"</th><th scope="col">"Since"</th><th scope="col">"Status"</th>
                                </tr></thead>
                                <tbody>
                                    {list.into_iter().map(|o| {
                                        let suspended = o.suspended_at.is_some();
                                        view! {
                                            <tr data-org=o.name.clone()>
                                                <td>{o.name.clone()}</td>
                                                <td data-label="Kind">{o.kind.label()}</td>
                                                <td class="num" data-label="People">{o.users}</td>
                                                <td class="num" data-label="Sites">{o.sites}</td>
                                                <td class="num" data-label="Reservations">{o.reservations}</td>
                                                <td data-label="Since"><LocalTime at=o.created_at/></td>
                                                <td>
                                                    <span class=if suspended { "tag tag-revoked" } else { "tag tag-active" }>
                                                        {if suspended { "suspended" } else { "active" }}
                                                    </span>
                                                    <ActionForm action=suspend attr:class="inline-form">
                                                        <input type="hidden" name="organization_id" value=o.id/>
                                                        <input type="hidden" name="suspend" value=(!suspended).to_string()/>
                                                        <button type="submit" class="button secondary small">
                                                            {if suspended { "Reinstate" } else { "Suspend" }}
                                                        </button>
                                                    </ActionForm>
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any(),
                    Err(e) => view! { <p class="form-error" role="alert">{clean_error(&e.to_string())}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}
