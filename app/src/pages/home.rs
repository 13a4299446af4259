//! The market overview: the first page a newcomer sees.

use crate::app_error::AppError;
use crate::components::clean_error;
use crate::market::{LiveTotals, Overview, PoolKind, PoolListing};
use crate::money::{format_cents, group_thousands};
use leptos::prelude::*;
use leptos_meta::Title;

/// The market overview: headline counts and every listed pool.
#[server(endpoint = "market_overview")]
pub async fn market_overview() -> Result<Overview, AppError> {
    let db = crate::services::web::browse_db()?;
    crate::services::market::overview(&db)
        .await
        .map_err(crate::services::unavailable)
}

/// Counts the GPUs, sites and power listed right now (the "refresh" control).
#[server(endpoint = "live_count")]
pub async fn live_count() -> Result<LiveTotals, AppError> {
    let db = crate::services::web::browse_db()?;
    crate::services::market::live_count(&db)
        .await
        .map_err(crate::services::unavailable)
}

#[component]
pub fn HomePage() -> impl IntoView {
    let overview = crate::resource::load(|| (), |_| market_overview());
    let query = leptos_router::hooks::use_query_map();
    let form = move || crate::request::SearchForm::from_query(&query.read());

    view! {
        <Title text="Market"/>
        <section class="hero" aria-labelledby="hero-title">
            <h1 id="hero-title">"Firm AI capacity on converted mining sites"</h1>
            <p class="lede">
                "Reserve GPU nodes or power blocks at sites with cheap power and real interconnects. "
                "Every reservation is settled against the site's availability, so nothing is ever sold twice."
            </p>
        </section>
        {move || view! { <crate::pages::search::SearchPanel form=form()/> }}
        {move || form().is_search().then(|| view! { <crate::pages::search::SearchResultsView/> })}
        <Transition fallback=|| view! { <p class="loading" role="status">"Loading the market…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorPanel errors/> }>
                {move || Suspend::new(async move {
                    overview.await.map(|o| view! {
                        <LiveFigures initial=o.live/>
                        <PoolTable pools=o.pools/>
                    })
                })}
            </ErrorBoundary>
        </Transition>
    }
}

/// The headline figures and the control that re-reads them from the database.
/// Without JavaScript the form posts to the server function and the page reloads
/// with fresh figures; with it, only the figures change.
#[island]
fn LiveFigures(initial: LiveTotals) -> impl IntoView {
    let refresh = ServerAction::<LiveCount>::new();
    let totals = move || match refresh.value().get() {
        Some(Ok(fresh)) => fresh,
        _ => initial,
    };
    let failed = move || matches!(refresh.value().get(), Some(Err(_)));

    view! {
        <section class="figures" aria-label="Live market figures">
            <dl class="figure-grid">
                <div class="figure">
                    <dt>"GPUs listed"</dt>
                    <dd data-testid="live-gpus">{move || group_thousands(totals().gpus.max(0) as u64)}</dd>
                </div>
                <div class="figure">
                    <dt>"Live sites"</dt>
                    <dd data-testid="live-sites">{move || group_thousands(totals().sites.max(0) as u64)}</dd>
                </div>
                <div class="figure">
                    <dt>"Power blocks listed"</dt>
                    <dd data-testid="live-power">{move || format!("{} MW", group_thousands((totals().power_kw.max(0) / 1000) as u64))}</dd>
                </div>
            </dl>
            <ActionForm action=refresh attr:class="inline-form">
                <button type="submit" class="button secondary" data-testid="refresh-live"
                    disabled=move || refresh.pending().get()>
                    {move || if refresh.pending().get() { "Counting…" } else { "Refresh live count" }}
                </button>
                <span class="form-status" role="status" aria-live="polite">
                    {move || if failed() {
                        "Could not reach the market database; the figures above may be stale."
                    } else if refresh.version().get() > 0 {
                        "Counted just now."
                    } else {
                        ""
                    }}
                </span>
            </ActionForm>
        </section>
    }
}

#[component]
fn PoolTable(pools: Vec<PoolListing>) -> impl IntoView {
    if pools.is_empty() {
        return view! {
            <section class="empty-state">
                <h2>"No capacity is listed yet"</h2>
                <p>"Site operators have not listed any GPU pools or power blocks. Check back soon."</p>
            </section>
        }
        .into_any();
    }
    let count = pools.len();
    view! {
        <section aria-labelledby="pools-title">
            <h2 id="pools-title">"Listed capacity " <span class="muted">"(" {count} " pools)"</span></h2>
            <div class="table-scroll">
                <table class="data-table" data-testid="pool-table">
                    <thead>
                        <tr>
                            <th scope="col">"Capacity"</th>
                            <th scope="col">"Site"</th>
                            <th scope="col">"Grid · energy"</th>
                            <th scope="col" class="num">"Units"</th>
                            <th scope="col" class="num">"Price"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {pools.into_iter().map(|p| view! { <PoolRow pool=p/> }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
    .into_any()
}

#[component]
fn PoolRow(pool: PoolListing) -> impl IntoView {
    let size = match pool.kind {
        PoolKind::Gpu => format!(
            "{} {} · {} GPUs",
            pool.unit_count,
            pool.kind.unit_noun(),
            group_thousands(pool.gpus.unwrap_or(0).max(0) as u64)
        ),
        PoolKind::Power => format!(
            "{} {} · {} kW",
            pool.unit_count,
            pool.kind.unit_noun(),
            group_thousands(pool.power_kw.unwrap_or(0).max(0) as u64)
        ),
    };
    let kind_label = match pool.kind {
        PoolKind::Gpu => "GPU",
        PoolKind::Power => "Power",
    };
    view! {
        <tr>
            <td>
                <span class=format!("tag tag-{}", kind_label.to_lowercase())>{kind_label}</span>
                " "
                <strong>{pool.spec}</strong>
                <div class="muted small">{pool.pool_name}</div>
            </td>
            <td>
                {pool.site_name}
                {(!pool.site_live).then(|| view! { " " <span class="tag tag-building">"building"</span> })}
                <div class="muted small">{pool.region} ", " {pool.country}</div>
            </td>
            <td>{pool.grid_region} <div class="muted small">{pool.energy_source}</div></td>
            <td class="num">{size}</td>
            <td class="num">
                <strong>{format_cents(pool.price_cents, &pool.currency)}</strong>
                <div class="muted small">"per " {pool.kind.price_unit()}</div>
            </td>
        </tr>
    }
}

/// A readable panel for errors raised while loading a page's data.
#[component]
pub fn ErrorPanel(errors: ArcRwSignal<Errors>) -> impl IntoView {
    view! {
        <section class="error-panel" role="alert">
            <h2>"Something went wrong"</h2>
            <ul>
                {move || errors.get().into_iter().map(|(_, e)| view! { <li>{clean_error(&e.to_string())}</li> }).collect_view()}
            </ul>
            <p><a href="">"Try again"</a></p>
        </section>
    }
}
