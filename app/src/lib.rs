//! The Rigshift web app: pages, components and server functions, compiled twice:
//! with `ssr` into the server and with `hydrate` into the browser bundle.
//! Server-only code (database access, hashing) lives behind `ssr` in [`services`].

#![recursion_limit = "256"]

pub mod account;
pub mod app_error;
pub mod audit;
pub mod availability;
pub mod booking;
pub mod bridge;
pub mod components;
pub mod economics;
pub mod forward;
pub mod grid;
pub mod incidents;
pub mod ledger;
pub mod listing_form;
pub mod market;
pub mod money;
pub mod operations;
pub mod orders;
pub mod pages;
pub mod plain_forms;
pub mod power;
pub mod pricing;
pub mod request;
pub mod resale;
pub mod resource;
#[cfg(feature = "ssr")]
pub mod services;
pub mod session;
pub mod utilization;
pub mod webhook;
pub mod window;

use leptos::prelude::*;
// The document, the router and the pages are rendered by the server only: the browser
// bundle holds the islands (see `hydrate`).
#[cfg(not(feature = "hydrate"))]
use leptos_meta::{provide_meta_context, Link, Meta, MetaTags, Stylesheet, Title};
#[cfg(not(feature = "hydrate"))]
use leptos_router::{
    components::{Route, Router, Routes, A},
    path, SsrMode,
};

/// The HTML document around the app, rendered by the server.
#[cfg(not(feature = "hydrate"))]
pub fn shell(options: LeptosOptions) -> impl IntoView {
    // The page's content security policy is set by the server from the nonce on these
    // scripts (server/src/http.rs, `page_policy`).
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options islands=true/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[cfg(not(feature = "hydrate"))]
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let auth = session::Auth::provide();

    view! {
        <Stylesheet id="leptos" href="/pkg/rigshift.css"/>
        <Link rel="icon" type_="image/svg+xml" href="/favicon.svg"/>
        <Meta name="description" content="Reserve firm GPU capacity and power blocks on converted Bitcoin-mining sites."/>
        // Every page's title passes through this formatter, and titles carry names users
        // typed (pools, sites): see `components::head_text` for why it escapes them.
        <Title formatter=|text: String| format!("{} · Rigshift", components::head_text(&text))/>
        <Router>
            <header class="topbar">
                <A href="/" attr:class="brand">
                    <span class="brand-mark" aria-hidden="true">"◆"</span>
                    " Rigshift"
                </A>
                <nav aria-label="Main">
                    <A href="/">"Market"</A>
                    <A href="/developers">"API"</A>
                    <Transition fallback=|| ()>
                        {move || Suspend::new(async move {
                            match auth.user.await {
                                Ok(Some(user)) => view! { <UserNav user auth/> }.into_any(),
                                _ => view! {
                                    <A href="/login">"Sign in"</A>
                                    <A href="/signup">"Create account"</A>
                                }.into_any(),
                            }
                        })}
                    </Transition>
                </nav>
            </header>
            <main id="main">
                <components::FormErrorFromRedirect/>
                // Pages render completely on the server before the first byte (async mode),
                // so people without JavaScript get the data, not a loading placeholder.
                <Routes fallback=pages::not_found::NotFound>
                    <Route path=path!("/") view=pages::home::HomePage ssr=SsrMode::Async/>
                    <Route path=path!("/login") view=pages::login::LoginPage ssr=SsrMode::Async/>
                    <Route path=path!("/signup") view=pages::login::SignupPage ssr=SsrMode::Async/>
                    <Route path=path!("/account") view=pages::account::AccountPage ssr=SsrMode::Async/>
                    <Route path=path!("/reservations") view=pages::reservations::ReservationsPage ssr=SsrMode::Async/>
                    <Route path=path!("/orders") view=pages::orders::OrdersPage ssr=SsrMode::Async/>
                    <Route path=path!("/operator") view=pages::operator::OperatorPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin") view=pages::admin::AdminPage ssr=SsrMode::Async/>
                    <Route path=path!("/admin/books") view=pages::books::BooksPage ssr=SsrMode::Async/>
                    <Route path=path!("/statement") view=pages::statement::StatementPage ssr=SsrMode::Async/>
                    <Route path=path!("/earnings") view=pages::earnings::EarningsPage ssr=SsrMode::Async/>
                    <Route path=path!("/operator/economics") view=pages::economics::EconomicsPage ssr=SsrMode::Async/>
                    <Route path=path!("/operator/sites/new") view=pages::operator_site::NewSitePage ssr=SsrMode::Async/>
                    <Route path=path!("/operator/sites/:id") view=pages::operator_site::SitePage ssr=SsrMode::Async/>
                    <Route path=path!("/operator/pools/:id") view=pages::operator_pool::OperatorPoolPage ssr=SsrMode::Async/>
                    <Route path=path!("/operator/grid-events/:id") view=pages::grid_events::GridEventPage ssr=SsrMode::Async/>
                    <Route path=path!("/reservations/:id") view=pages::reservations::ReservationPage ssr=SsrMode::Async/>
                    <Route path=path!("/pools/:id") view=pages::pool::PoolPage ssr=SsrMode::Async/>
                    <Route path=path!("/webhooks") view=pages::webhooks::WebhooksPage ssr=SsrMode::Async/>
                    <Route path=path!("/developers") view=pages::developers::DevelopersPage ssr=SsrMode::Async/>
                    <Route path=path!("/developers/mail") view=pages::outbox::OutboxPage ssr=SsrMode::Async/>
                    <Route path=path!("/forgot") view=pages::recovery::ForgotPage ssr=SsrMode::Async/>
                    <Route path=path!("/reset") view=pages::recovery::ResetPage ssr=SsrMode::Async/>
                    <Route path=path!("/verify") view=pages::recovery::VerifyPage ssr=SsrMode::Async/>
                </Routes>
            </main>
            <plain_forms::PlainFormsInPlace/>
            <footer class="footer">
                <p>"Rigshift — firm AI capacity on converted mining sites. Prices in USD; times in your local time zone."</p>
            </footer>
        </Router>
    }
}

/// The signed-in visitor's links and the sign-out button (a POST, never a link).
#[component]
#[cfg(not(feature = "hydrate"))]
fn UserNav(user: account::CurrentUser, auth: session::Auth) -> impl IntoView {
    view! {
        {user.kind.buys().then(|| view! { <A href="/reservations">"Reservations"</A> <A href="/orders">"Orders"</A> <A href="/statement">"Statement"</A> })}
        {user.kind.operates().then(|| view! { <A href="/operator">"Operations"</A> <A href="/earnings">"Earnings"</A> })}
        {user.platform_admin.then(|| view! { <A href="/admin">"Admin"</A> <A href="/admin/books">"Books"</A> })}
        <A href="/account"><span data-testid="nav-user">{user.display_name}</span></A>
        <leptos::form::ActionForm action=auth.log_out attr:class="nav-form">
            <button type="submit" class="link-button" data-testid="log-out">"Sign out"</button>
        </leptos::form::ActionForm>
    }
}

/// Entry point of the browser bundle: takes over the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    // Panic messages in the console help while developing; release bundles leave the
    // formatting machinery out (they abort on panic anyway).
    #[cfg(debug_assertions)]
    console_error_panic_hook::set_once();
    // Only the islands (`#[island]` components) run in the browser; the rest of every page
    // is the server's HTML, whose forms post and reload as they do without JavaScript.
    leptos::mount::hydrate_islands();
    // Browser tests, and curious users with devtools, can tell a live page from a
    // server-rendered one.
    if let Some(body) = document().body() {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}
