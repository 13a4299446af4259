//! The platform's books, for the platform administrator: fee revenue by month, the balance
//! of every platform account, what is owed to each operator (with payouts), and the
//! reconciliation of the ledger with the reservations.

use crate::app_error::AppError;
use crate::components::{clean_error, FormResult, SignedIn};
use crate::ledger::{Month, PlatformBooks};
use crate::money::format_cents;
use crate::pages::not_found::NotFound;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

#[server(endpoint = "books")]
pub async fn books() -> Result<PlatformBooks, AppError> {
    use crate::services::{ledger, web};
    web::principal()?.admin().map_err(web::fail)?;
    ledger::platform_books(&web::db()?, chrono::Utc::now())
        .await
        .map_err(web::fail)
}

#[server(endpoint = "pay_out")]
pub async fn pay_out(operator_id: i64, amount: String, reference: String) -> Result<i64, AppError> {
    use crate::services::{error::ServiceError, payments, web};
    web::principal()?.admin().map_err(web::fail)?;
    let cents = crate::request::parse_dollars(&amount)
        .map_err(|e| web::fail(ServiceError::invalid("amount", e)))?;
    payments::pay_out(&web::db()?, operator_id, cents, Some(&reference))
        .await
        .map_err(web::fail)
}

#[component]
pub fn BooksPage() -> impl IntoView {
    view! {
        <Title text="Books"/>
        <SignedIn next="/admin/books" page=|user| {
            if user.platform_admin {
                view! { <BooksView/> }.into_any()
            } else {
                view! { <NotFound/> }.into_any()
            }
        }/>
    }
}

#[component]
fn BooksView() -> impl IntoView {
    let pay = ServerAction::<PayOut>::new();
    let books = crate::resource::load(|| (), |_| books());
    view! {
        <h1>"Books"</h1>
        <p><a href="/admin">"← Organizations"</a></p>
        <FormResult action=pay ok="Payout recorded."/>
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading the books…"</p> }>
            {move || Suspend::new(async move {
                match books.await {
                    Ok(b) => view! { <BooksBody b pay/> }.into_any(),
                    Err(e) => view! { <p class="form-error" role="alert">{clean_error(&e.to_string())}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn BooksBody(b: PlatformBooks, pay: ServerAction<PayOut>) -> impl IntoView {
    let cur = b.currency.clone();
    let money = move |c: i64| format_cents(c, &cur);
    let r = b.reconciliation.clone();
    let clean = r.is_clean();
    let cur_months = b.currency.clone();
    let cur_ops = b.currency.clone();
    view! {
        <section aria-labelledby="reconciliation-title">
            <h2 id="reconciliation-title">"Reconciliation"</h2>
            <p class=if clean { "form-ok" } else { "form-error" } data-testid="reconciliation" role="status">
                {format!(
                    "{} reservations recomputed from their rows: {} differences; all entries sum to {}; {} unbalanced transactions.",
                    r.reservations_checked, r.differences.len(), money(r.ledger_sum_cents), r.unbalanced_transactions
                )}
                {(r.awaiting_recognition > 0).then(|| format!(" {} ended reservations await the completion job (it runs every minute).", r.awaiting_recognition))}
            </p>
            {(!r.differences.is_empty()).then(|| view! {
                <table class="data-table" data-testid="differences">
                    <thead><tr><th scope="col">"Reservation"</th><th scope="col">"Amount"</th><th scope="col" class="num">"Expected"</th><th scope="col" class="num">"In the ledger"</th></tr></thead>
                    <tbody>
                        {r.differences.iter().map(|d| view! {
                            <tr><td>{d.reservation_id}</td><td>{d.what.clone()}</td><td class="num">{d.expected_cents}</td><td class="num">{d.actual_cents}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
            })}
        </section>
        <dl class="summary-grid" data-testid="books-summary">
            <div><dt>"Fee revenue"</dt><dd data-testid="fee-revenue">{money(b.fee_revenue_cents)}</dd></div>
            <div><dt>"Unearned (booked, not yet delivered)"</dt><dd>{money(b.unearned_cents)}</dd></div>
            <div><dt>"Owed by customers"</dt><dd>{money(b.receivable_cents)}</dd></div>
            <div><dt>"Owed to operators"</dt><dd>{money(b.payable_cents)}</dd></div>
            <div><dt>"Paid out"</dt><dd>{money(b.paid_out_cents)}</dd></div>
        </dl>
        <h2>"Fee revenue by month"</h2>
        {if b.fee_revenue_by_month.is_empty() {
            view! { <p class="empty-state">"No fees earned yet: fees are earned when reservations end or are cancelled."</p> }.into_any()
        } else {
            view! {
                <table class="data-table" data-testid="fee-months">
                    <thead><tr><th scope="col">"Month"</th><th scope="col" class="num">"Fees"</th></tr></thead>
                    <tbody>
                        {b.fee_revenue_by_month.into_iter().map(|(m, c)| view! {
                            <tr><td>{Month::parse(&m).map(Month::label).unwrap_or(m)}</td><td class="num">{format_cents(c, &cur_months)}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any()
        }}
        <h2>"Owed to operators"</h2>
        {if b.operators.is_empty() {
            view! { <p class="empty-state">"No operator has earned anything yet."</p> }.into_any()
        } else {
            view! {
                <div class="table-scroll">
                    <table class="data-table" data-testid="operator-balances">
                        <thead><tr><th scope="col">"Operator"</th><th scope="col" class="num">"Owed"</th><th scope="col">"Record a payout"</th></tr></thead>
                        <tbody>
                            {b.operators.into_iter().map(|o| {
                                let amount_id = format!("payout-amount-{}", o.organization_id);
                                let ref_id = format!("payout-ref-{}", o.organization_id);
                                let owed = o.payable_cents;
                                view! {
                                    <tr>
                                        <td data-label="Operator">{o.name.clone()}</td>
                                        <td data-label="Owed" class="num">{format_cents(owed, &cur_ops)}</td>
                                        <td data-label="Record a payout">
                                            {if owed > 0 {
                                                view! {
                                                    <ActionForm action=pay attr:class="inline-form">
                                                        <input type="hidden" name="operator_id" value=o.organization_id/>
                                                        <label for=amount_id.clone()>"Amount (USD)"</label>
                                                        <input id=amount_id name="amount" inputmode="decimal" required
                                                            value=format!("{}.{:02}", owed / 100, owed % 100)/>
                                                        <label for=ref_id.clone()>"Transfer reference"</label>
                                                        <input id=ref_id name="reference" maxlength="200" placeholder="bank transfer id (optional)"/>
                                                        <button type="submit" class="button" data-testid=format!("pay-{}", o.organization_id)>"Record payout"</button>
                                                    </ActionForm>
                                                }.into_any()
                                            } else {
                                                view! { <span class="muted">"Nothing owed"</span> }.into_any()
                                            }}
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            }.into_any()
        }}
    }
}
