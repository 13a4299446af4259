//! The Rigshift web app: pages, components and server functions, compiled twice:
//! with `ssr` into the server and with `hydrate` into the browser bundle.
//! Server-only code (database access, hashing) lives behind `ssr` in [`services`].

#![recursion_limit = "256"]

pub mod availability;
pub mod booking;
pub mod market;
pub mod money;
pub mod pages;
pub mod power;
pub mod pricing;
#[cfg(feature = "ssr")]
pub mod services;
pub mod window;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Link, Meta, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes, A},
    path, SsrMode,
};

/// The HTML document around the app, rendered by the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();

    // Marks the document once the wasm has taken over, so browser tests (and curious
    // users with devtools) can tell a hydrated page from a server-rendered one.
    Effect::new(|_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });

    view! {
        <Stylesheet id="leptos" href="/pkg/rigshift.css"/>
        <Link rel="icon" type_="image/svg+xml" href="/favicon.svg"/>
        <Meta name="description" content="Reserve firm GPU capacity and power blocks on converted Bitcoin-mining sites."/>
        <Title formatter=|text| format!("{text} · Rigshift")/>
        <Router>
            <header class="topbar">
                <A href="/" attr:class="brand">
                    <span class="brand-mark" aria-hidden="true">"◆"</span>
                    " Rigshift"
                </A>
                <nav aria-label="Main">
                    <A href="/">"Market"</A>
                </nav>
            </header>
            <main id="main">
                // Pages render completely on the server before the first byte (async mode),
                // so people without JavaScript get the data, not a loading placeholder.
                <Routes fallback=pages::not_found::NotFound>
                    <Route path=path!("/") view=pages::home::HomePage ssr=SsrMode::Async/>
                </Routes>
            </main>
            <footer class="footer">
                <p>"Rigshift — firm AI capacity on converted mining sites. Prices in USD; times in your local time zone."</p>
            </footer>
        </Router>
    }
}

/// Entry point of the browser bundle: takes over the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}
