//! An operator's money: what the platform owes it now, what its bookings will earn, the
//! history per site and month with the platform's fee, and the payouts; also as CSV.

use crate::app_error::AppError;
use crate::components::{clean_error, LocalTime, SignedIn};
use crate::ledger::{Earnings, Month};
use crate::money::format_cents;
use leptos::prelude::*;
use leptos_meta::Title;

#[server(endpoint = "my_earnings")]
pub async fn my_earnings() -> Result<Earnings, AppError> {
    use crate::services::{ledger, web};
    let me = web::principal()?
        .operator(crate::account::Scope::Read)
        .map_err(web::fail)?;
    ledger::earnings(&web::db()?, me).await.map_err(web::fail)
}

#[component]
pub fn EarningsPage() -> impl IntoView {
    view! {
        <Title text="Earnings"/>
        <SignedIn next="/earnings" page=|u| {
            if u.kind.operates() {
                view! { <EarningsView/> }.into_any()
            } else {
                crate::components::set_page_status(403);
                view! {
                    <section class="empty-state" data-testid="not-operator">
                        <h1>"For operators"</h1>
                        <p>"Your organization buys capacity; its charges and refunds are on "
                           <a href="/statement">"your statement"</a> "."</p>
                    </section>
                }.into_any()
            }
        }/>
    }
}

#[component]
fn EarningsView() -> impl IntoView {
    let earnings = crate::resource::load(|| (), |_| my_earnings());
    view! {
        <h1>"Earnings"</h1>
        <p class="muted">"A reservation's price is earned when it ends (or, for its retained part, when it is cancelled); the platform keeps its fee and owes you the rest until a payout."</p>
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading earnings…"</p> }>
            {move || Suspend::new(async move {
                match earnings.await {
                    Ok(e) => view! { <EarningsBody e/> }.into_any(),
                    Err(err) => view! { <p class="form-error" role="alert">{clean_error(&err.to_string())}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn EarningsBody(e: Earnings) -> impl IntoView {
    let cur = e.currency.clone();
    let money = move |c: i64| format_cents(c, &cur);
    let month_label = |m: &str| {
        Month::parse(m)
            .map(Month::label)
            .unwrap_or_else(|_| m.to_string())
    };
    let cur_rows = e.currency.clone();
    let cur_payouts = e.currency.clone();
    view! {
        <dl class="summary-grid" data-testid="earnings-summary">
            <div><dt>"Owed to you now"</dt><dd data-testid="earnings-payable">{money(e.payable_cents)}</dd></div>
            <div><dt>"Booked, not yet earned"</dt><dd data-testid="earnings-pending">{money(e.pending_cents)}</dd></div>
            <div><dt>"Earned to date"</dt><dd data-testid="earnings-earned">{money(e.earned_cents)}</dd></div>
            <div><dt>"Platform fees"</dt><dd>{money(e.fees_cents)}</dd></div>
            <div><dt>"Paid out"</dt><dd data-testid="earnings-paid">{money(e.paid_out_cents)}</dd></div>
        </dl>
        <p><a class="button secondary" href="/earnings.csv" download data-testid="earnings-csv">"Download CSV"</a></p>
        <h2>"By site and month"</h2>
        {if e.rows.is_empty() {
            view! { <p class="empty-state" data-testid="earnings-empty">"Nothing booked on your sites yet."</p> }.into_any()
        } else {
            view! {
                <div class="table-scroll">
                    <table class="data-table" data-testid="earnings-rows">
                        <thead><tr>
                            <th scope="col">"Month"</th><th scope="col">"Site"</th>
                            <th scope="col" class="num">"Earned"</th><th scope="col" class="num">"Fees"</th>
                            <th scope="col" class="num">"Pending"</th>
                        </tr></thead>
                        <tbody>
                            {e.rows.into_iter().map(|r| view! {
                                <tr>
                                    <td data-label="Month">{month_label(&r.month)}</td>
                                    <td data-label="Site">{r.site_name}</td>
                                    <td data-label="Earned" class="num">{format_cents(r.earned_cents, &cur_rows)}</td>
                                    <td data-label="Fees" class="num">{format_cents(r.fees_cents, &cur_rows)}</td>
                                    <td data-label="Pending" class="num">{format_cents(r.pending_cents, &cur_rows)}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            }.into_any()
        }}
        <h2>"Payouts"</h2>
        {if e.payouts.is_empty() {
            view! { <p class="empty-state" data-testid="payouts-empty">"No payouts yet."</p> }.into_any()
        } else {
            view! {
                <div class="table-scroll">
                    <table class="data-table" data-testid="payouts">
                        <thead><tr><th scope="col">"Paid"</th><th scope="col">"Reference"</th><th scope="col" class="num">"Amount"</th></tr></thead>
                        <tbody>
                            {e.payouts.into_iter().map(|p| view! {
                                <tr>
                                    <td data-label="Paid"><LocalTime at=p.paid_at/></td>
                                    <td data-label="Reference"><code>{p.reference}</code></td>
                                    <td data-label="Amount" class="num">{format_cents(p.amount_cents, &cur_payouts)}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            }.into_any()
        }}
    }
}
