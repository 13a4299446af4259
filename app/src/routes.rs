//! The app's pages as lazily loaded routes. Each page's view code is split into its own
//! chunk of the browser bundle (`cargo leptos build --split`), so a visitor downloads the
//! shared runtime plus the page they open, not every page of the app; the market search,
//! the home page, is part of the main bundle. On the server the wrappers simply render the
//! page.

use leptos::prelude::*;
use leptos_router::{lazy_route, LazyRoute};

use crate::pages;

/// Declares a route type whose lazily loaded view is the page component `$page`.
macro_rules! lazy_page {
    ($route:ident => $page:path) => {
        pub struct $route;

        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            fn view(this: Self) -> AnyView {
                let _ = this;
                let page = $page().into_any();
                crate::components::mark_hydrated();
                page
            }
        }
    };
}

/// The market search, where nearly every visit starts, is in the main bundle rather than a
/// lazy chunk. Split out, it came as about 140 small files whose separate compression cost
/// a visitor some 50 KB more than the same code inside the main module (BENCHMARKS.md).
#[component]
pub fn HomeRoute() -> impl IntoView {
    let page = pages::home::HomePage().into_any();
    crate::components::mark_hydrated();
    page
}

lazy_page!(Login => pages::login::LoginPage);
lazy_page!(Signup => pages::login::SignupPage);
lazy_page!(Account => pages::account::AccountPage);
lazy_page!(Reservations => pages::reservations::ReservationsPage);
lazy_page!(Reservation => pages::reservations::ReservationPage);
lazy_page!(Orders => pages::orders::OrdersPage);
lazy_page!(Operator => pages::operator::OperatorPage);
lazy_page!(Admin => pages::admin::AdminPage);
lazy_page!(Books => pages::books::BooksPage);
lazy_page!(Statement => pages::statement::StatementPage);
lazy_page!(Earnings => pages::earnings::EarningsPage);
lazy_page!(Economics => pages::economics::EconomicsPage);
lazy_page!(NewSite => pages::operator_site::NewSitePage);
lazy_page!(OperatorSite => pages::operator_site::SitePage);
lazy_page!(OperatorPool => pages::operator_pool::OperatorPoolPage);
lazy_page!(GridEvent => pages::grid_events::GridEventPage);
lazy_page!(Pool => pages::pool::PoolPage);
lazy_page!(Webhooks => pages::webhooks::WebhooksPage);
lazy_page!(Developers => pages::developers::DevelopersPage);
lazy_page!(Forgot => pages::recovery::ForgotPage);
lazy_page!(Reset => pages::recovery::ResetPage);
lazy_page!(Verify => pages::recovery::VerifyPage);
lazy_page!(Outbox => pages::outbox::OutboxPage);
