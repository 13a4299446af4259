//! A customer's monthly statement: what it owed when the month began, every charge and
//! refund of the month by reservation, and what it owes at the end; also as CSV.

use crate::app_error::AppError;
use crate::components::{clean_error, LocalTime, SignedIn};
use crate::ledger::{Month, Statement};
use crate::money::format_cents;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[server(endpoint = "my_statement")]
pub async fn my_statement(month: Option<String>) -> Result<Statement, AppError> {
    use crate::services::{error::ServiceError, ledger, web};
    let me = web::principal()?
        .customer(crate::account::Scope::Read)
        .map_err(web::fail)?;
    let month = match month.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
        None => Month::of(chrono::Utc::now()),
        Some(m) => Month::parse(m).map_err(|e| web::fail(ServiceError::invalid("month", e)))?,
    };
    ledger::statement(&web::db()?, me, month)
        .await
        .map_err(web::fail)
}

#[component]
pub fn StatementPage() -> impl IntoView {
    view! {
        <Title text="Statement"/>
        <SignedIn next="/statement" page=|u| {
            if u.kind.buys() {
                view! { <StatementView/> }.into_any()
            } else {
                crate::components::set_page_status(403);
                view! {
                    <section class="empty-state" data-testid="not-customer">
                        <h1>"For customers"</h1>
                        <p>"Your organization lists capacity; what it earns is on "
                           <a href="/earnings">"your earnings page"</a> "."</p>
                    </section>
                }.into_any()
            }
        }/>
    }
}

#[component]
fn StatementView() -> impl IntoView {
    let query = use_query_map();
    let month = move || query.read().get("month");
    let statement = crate::resource::load(month, my_statement);
    view! {
        <h1>"Statement"</h1>
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading the statement…"</p> }>
            {move || Suspend::new(async move {
                match statement.await {
                    Ok(s) => view! { <StatementBody s/> }.into_any(),
                    Err(e) => view! {
                        <p class="form-error" role="alert">{clean_error(&e.to_string())}</p>
                        <p><a href="/statement">"Show this month's statement"</a></p>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn StatementBody(s: Statement) -> impl IntoView {
    let month = Month::parse(&s.month).unwrap_or(Month {
        year: 2026,
        month: 1,
    });
    let cur = s.currency.clone();
    let money = move |c: i64| format_cents(c, &cur);
    let empty = s.lines.is_empty();
    view! {
        <nav class="month-nav" aria-label="Months">
            <a href=format!("/statement?month={}", month.previous()) data-testid="previous-month">"← " {month.previous().label()}</a>
            <form method="get" action="/statement" class="inline-form">
                <label for="month">"Month"</label>
                <input id="month" name="month" type="month" value=s.month.clone() required/>
                <button type="submit" class="button secondary">"Show"</button>
            </form>
            <a href=format!("/statement?month={}", month.next()) data-testid="next-month">{month.next().label()} " →"</a>
        </nav>
        <h2>{month.label()}</h2>
        <dl class="summary-grid" data-testid="statement-summary">
            <div><dt>"Owed at the start"</dt><dd>{money(s.opening_cents)}</dd></div>
            <div><dt>"Charges"</dt><dd data-testid="statement-charges">{money(s.charges_cents)}</dd></div>
            <div><dt>"Refunds"</dt><dd data-testid="statement-refunds">{money(s.refunds_cents)}</dd></div>
            <div><dt>"Credits"</dt><dd data-testid="statement-credits">{money(s.credits_cents)}</dd></div>
            <div><dt>"Resale proceeds"</dt><dd data-testid="statement-resale">{money(s.resale_cents)}</dd></div>
            <div><dt>"Owed at the end"</dt><dd data-testid="statement-closing">{money(s.closing_cents)}</dd></div>
        </dl>
        <p>
            <a class="button secondary" href=format!("/statement.csv?month={}", s.month) download data-testid="statement-csv">
                "Download CSV"
            </a>
        </p>
        {if empty {
            view! { <p class="empty-state" data-testid="statement-empty">"No charges, refunds or credits in " {month.label()} "."</p> }.into_any()
        } else {
            let cur = s.currency.clone();
            view! {
                <div class="table-scroll">
                    <table class="data-table" data-testid="statement-lines">
                        <caption class="visually-hidden">"Charges, refunds and credits of " {month.label()}</caption>
                        <thead><tr><th scope="col">"Date"</th><th scope="col">"Reservation"</th><th scope="col">"What"</th><th scope="col" class="num">"Amount"</th></tr></thead>
                        <tbody>
                            {s.lines.into_iter().map(|l| {
                                let what = match l.kind.as_str() {
                                    "charge" => "Booked",
                                    "extension" if l.amount_cents >= 0 => "Extended",
                                    "extension" => "Repriced",
                                    "refund" => "Refund",
                                    "credit" => "Credit for hours not delivered",
                                    "resale" if l.amount_cents >= 0 => "Bought on resale",
                                    "resale" => "Resale proceeds (after the platform's fee)",
                                    _ => "Adjustment",
                                };
                                view! {
                                    <tr>
                                        <td data-label="Date"><LocalTime at=l.effective_at/></td>
                                        <td data-label="Reservation">{match l.reservation_id {
                                            Some(id) => view! { <a href=format!("/reservations/{id}")>"#" {id} " " {l.pool_name.unwrap_or_default()}</a> }.into_any(),
                                            None => "—".into_any(),
                                        }}</td>
                                        <td data-label="What">{what}</td>
                                        <td data-label="Amount" class="num">{format_cents(l.amount_cents, &cur)}</td>
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
