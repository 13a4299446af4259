//! Market search, the home of the app: the request in a GET form (so the URL holds the
//! search and it works without JavaScript), and the pools that fit with their quotes.

use crate::app_error::AppError;
use crate::components::{clean_error, LocalTime};
use crate::market::{PoolKind, SearchHit};
use crate::money::format_cents;
use crate::request::{self, SearchForm};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

pub const PAGE_SIZE: i64 = 20;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchResults {
    pub hits: Vec<SearchHit>,
    pub has_more: bool,
    pub page: i64,
    /// Customers' resale listings that match the filters and the quantity (first page of a
    /// firm search only).
    pub resale: Vec<crate::resale::ResaleOffer>,
}

#[server(endpoint = "search_market")]
pub async fn search_market(form: SearchForm) -> Result<SearchResults, AppError> {
    use crate::market::SearchSort;
    use crate::services::{error::ServiceError, search, web};
    let invalid = |field: &str, m: String| web::fail(ServiceError::invalid(field, m));
    let hours = request::parse_count(&form.hours, "the duration in hours", 1..=8760)
        .map_err(|m| invalid("hours", m))?;
    let start = match form.start.trim() {
        "" => None,
        s => Some(request::parse_start(s).map_err(|m| invalid("start", m))?),
    };
    let within_days = match form.within_days.trim() {
        "" => None,
        d => Some(
            request::parse_count(d, "within days", 1..=365)
                .map_err(|m| invalid("within_days", m))?,
        ),
    };
    let max_price_cents = match form.max_price.trim() {
        "" => None,
        p => Some(request::parse_dollars(p).map_err(|m| invalid("max_price", m))?),
    };
    let quantity = request::parse_quantity(&form.gpus, &form.kw).map_err(|m| invalid("gpus", m))?;
    let kind = PoolKind::parse(&form.kind);
    let sort = match form.sort.as_str() {
        "earliest_start" => SearchSort::EarliestStart,
        "total_cost" => SearchSort::TotalCost,
        "reliability" => SearchSort::Reliability,
        _ => SearchSort::Price,
    };
    let min_reliability_bp = match form.min_reliability.trim().trim_end_matches('%').trim() {
        "" => None,
        r => match r.parse::<f64>() {
            Ok(p) if p.is_finite() && (0.0..=100.0).contains(&p) => {
                Some((p * 100.0).round() as i64)
            }
            _ => {
                return Err(invalid(
                    "min_reliability",
                    "give the lowest reliability as a percentage between 0 and 100, e.g. 99.5"
                        .into(),
                ))
            }
        },
    };
    let tier = match form.tier.as_str() {
        "" | "firm" => crate::booking::Tier::Firm,
        "interruptible" => crate::booking::Tier::Interruptible,
        _ => return Err(invalid("tier", "choose firm or interruptible".into())),
    };
    let delivery = crate::market::Delivery::parse(&form.delivery).ok_or_else(|| {
        invalid(
            "delivery",
            "choose ready capacity, forward capacity or both".into(),
        )
    })?;
    let page = form.page();
    let text = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let query = search::MarketQuery {
        kind,
        gpu_model: text(&form.gpu_model),
        quantity,
        hours,
        start,
        within_days,
        region: text(&form.region),
        energy_source: text(&form.energy_source),
        interconnect: text(&form.interconnect),
        max_price_cents,
        min_reliability_bp,
        tier,
        delivery,
        sort,
        limit: PAGE_SIZE,
        offset: (page - 1) * PAGE_SIZE,
    };
    let (db, now) = (web::browse_db()?, chrono::Utc::now());
    let found = search::search(&db, &query, web::platform_fee_bp(), now)
        .await
        .map_err(web::fail)?;
    // A resale is firm capacity sold as listed; it appears beside a firm search's first page.
    let resale = if page == 1 && tier == crate::booking::Tier::Firm {
        let matching = crate::services::resale::OfferFilter {
            pool_id: None,
            kind: query.kind,
            gpu_model: query.gpu_model.clone(),
            region: query.region.clone(),
            energy_source: query.energy_source.clone(),
            quantity,
            limit: 10,
        };
        crate::services::resale::offers(&db, &matching, now)
            .await
            .map_err(web::fail)?
    } else {
        Vec::new()
    };
    Ok(SearchResults {
        hits: found.hits,
        has_more: found.has_more,
        page,
        resale,
    })
}

/// The search form, filled from the URL.
#[component]
pub fn SearchPanel(form: SearchForm) -> impl IntoView {
    let sel = |current: &str, value: &str| current == value;
    view! {
        <form method="get" action="/" class="search-form" role="search" aria-label="Find capacity" data-testid="search-form">
            <div class="search-grid">
                <label>"Capacity"
                    <select name="kind">
                        <option value="" selected=form.kind.is_empty()>"GPUs or power"</option>
                        <option value="gpu" selected=sel(&form.kind, "gpu")>"GPU nodes"</option>
                        <option value="power" selected=sel(&form.kind, "power")>"Power blocks"</option>
                    </select>
                </label>
                <label>"GPU model"
                    <select name="gpu_model">
                        <option value="" selected=form.gpu_model.is_empty()>"Any"</option>
                        {["H100 SXM", "H200", "B200", "MI300X", "RTX 4090"].into_iter().map(|m| view! {
                            <option value=m selected=sel(&form.gpu_model, m)>{m}</option>
                        }).collect_view()}
                    </select>
                </label>
                <label>"GPUs"
                    <input type="number" name="gpus" min="1" max="1000000" inputmode="numeric" value=form.gpus.clone() placeholder="e.g. 64"/>
                </label>
                <label>"or kW"
                    <input type="number" name="kw" min="1" max="10000000" inputmode="numeric" value=form.kw.clone() placeholder="power blocks"/>
                </label>
                <label>"Duration (hours)"
                    <input type="number" name="hours" min="1" max="8760" inputmode="numeric" required value=if form.hours.is_empty() { "168".to_string() } else { form.hours.clone() }/>
                </label>
                <label>"Start (UTC, optional)"
                    <input type="datetime-local" name="start" step="3600" value=form.start.clone()/>
                </label>
                <label>"or earliest within (days)"
                    <input type="number" name="within_days" min="1" max="365" value=form.within_days.clone() placeholder="30"/>
                </label>
                <label>"Region or grid"
                    <input type="text" name="region" maxlength="100" value=form.region.clone() placeholder="e.g. ERCOT, SE, Québec"/>
                </label>
                <label>"Energy source"
                    <input type="text" name="energy_source" maxlength="100" value=form.energy_source.clone() placeholder="e.g. hydro"/>
                </label>
                <label>"Interconnect"
                    <select name="interconnect">
                        <option value="" selected=form.interconnect.is_empty()>"Any"</option>
                        <option value="infiniband" selected=sel(&form.interconnect, "infiniband")>"InfiniBand"</option>
                        <option value="roce" selected=sel(&form.interconnect, "roce")>"RoCE"</option>
                        <option value="ethernet" selected=sel(&form.interconnect, "ethernet")>"Ethernet"</option>
                    </select>
                </label>
                <label>"Tier"
                    <select name="tier">
                        <option value="" selected=form.tier.is_empty() || sel(&form.tier, "firm")>"Firm"</option>
                        <option value="interruptible" selected=sel(&form.tier, "interruptible")>"Interruptible (cheaper, may be preempted)"</option>
                    </select>
                </label>
                <label>"Delivery"
                    <select name="delivery">
                        <option value="" selected=form.delivery.is_empty() || sel(&form.delivery, "any")>"Ready or forward"</option>
                        <option value="ready" selected=sel(&form.delivery, "ready")>"Ready now (live sites)"</option>
                        <option value="forward" selected=sel(&form.delivery, "forward")>"Forward (halls being built)"</option>
                    </select>
                </label>
                <label>"Max price ($ per unit)"
                    <input type="text" name="max_price" inputmode="decimal" maxlength="12" value=form.max_price.clone() placeholder="per GPU-hour or kW-month"/>
                </label>
                <label>"Reliability (90 days)"
                    <select name="min_reliability">
                        <option value="" selected=form.min_reliability.is_empty()>"Any, new pools too"</option>
                        {["99", "99.5", "99.9"].into_iter().map(|r| view! {
                            <option value=r selected=sel(&form.min_reliability, r)>{format!("{r} % delivered or better")}</option>
                        }).collect_view()}
                    </select>
                </label>
                <label>"Sort by"
                    <select name="sort">
                        <option value="price" selected=form.sort.is_empty() || sel(&form.sort, "price")>"Unit price"</option>
                        <option value="total_cost" selected=sel(&form.sort, "total_cost")>"Total cost"</option>
                        <option value="earliest_start" selected=sel(&form.sort, "earliest_start")>"Earliest start"</option>
                        <option value="reliability" selected=sel(&form.sort, "reliability")>"Most reliable"</option>
                    </select>
                </label>
            </div>
            <div class="inline-form">
                <button type="submit" class="button">"Search"</button>
                <a href="/" class="muted">"Clear"</a>
            </div>
        </form>
    }
}

/// Results for the search in the URL.
#[component]
pub fn SearchResultsView() -> impl IntoView {
    let query = use_query_map();
    let form = move || SearchForm::from_query(&query.read());
    let results = crate::resource::load(form, search_market);
    view! {
        <Transition fallback=|| view! { <p class="loading" role="status">"Searching the market…"</p> }>
            {move || Suspend::new(async move {
                let f = form();
                match results.await {
                    Ok(r) if r.hits.is_empty() => view! {
                        <ResaleHits offers=r.resale/>
                        <section class="empty-state" data-testid="no-results">
                            <h2>"Nothing fits this request"</h2>
                            <p>"Try fewer GPUs, a later or more flexible start (earliest within more days), another region, or a higher price."</p>
                            <p>"Or leave it as a standing order: we book it for you the moment matching capacity appears, and tell you."</p>
                            <p><a class="button secondary" href=format!("/orders?{}", f.query_string(1)) data-testid="leave-order">"Leave a standing order"</a></p>
                        </section>
                    }.into_any(),
                    Ok(r) => view! { <HitList results=r form=f/> }.into_any(),
                    Err(e) => view! { <p class="form-error" role="alert" data-testid="search-error">{clean_error(&e.to_string())}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn HitList(results: SearchResults, form: SearchForm) -> impl IntoView {
    let page = results.page;
    let prev = (page > 1).then(|| format!("/?{}", form.query_string(page - 1)));
    let next = results
        .has_more
        .then(|| format!("/?{}", form.query_string(page + 1)));
    view! {
        <ResaleHits offers=results.resale/>
        <section aria-labelledby="results-title">
            <h2 id="results-title">"Capacity that fits " <span class="muted">"(page " {page} ")"</span></h2>
            <ol class="hits" data-testid="search-results">
                {results.hits.into_iter().map(|h| view! { <Hit hit=h/> }).collect_view()}
            </ol>
            <nav class="pager" aria-label="Result pages">
                {prev.map(|href| view! { <a href=href rel="prev">"← Previous"</a> })}
                {next.map(|href| view! { <a href=href rel="next">"Next →"</a> })}
            </nav>
        </section>
    }
}

/// Customers' resale listings that match the search: fixed hours, bought as listed on the
/// pool's page.
#[component]
fn ResaleHits(offers: Vec<crate::resale::ResaleOffer>) -> impl IntoView {
    (!offers.is_empty()).then(|| view! {
        <section aria-labelledby="resale-title" data-testid="search-resale">
            <h2 id="resale-title">"Resale listings " <span class="muted small">"(fixed hours, bought as listed; a resale is final)"</span></h2>
            <ol class="hits">
                {offers.into_iter().map(|o| {
                    let per = if o.kind == PoolKind::Gpu { "GPU-hour" } else { "kW-hour" };
                    view! {
                        <li class="hit">
                            <div class="hit-main">
                                <a href=format!("/pools/{}#resale", o.pool_id) class="hit-title"><span class="tag tag-resale">"resale"</span> " " <strong>{o.pool_name.clone()}</strong></a>
                                <div class="muted small">{o.gpu_model.clone().unwrap_or_else(|| "Power blocks".into())} " · " {o.site_name.clone()} ", " {o.region.clone()}</div>
                            </div>
                            <dl class="hit-figures">
                                <div><dt>"Hours"</dt><dd><LocalTime at=o.start/> <div class="muted small">{o.hours} " h"</div></dd></div>
                                <div><dt>"Left"</dt><dd>{o.units_left} " " {o.unit_word()}</dd></div>
                                <div><dt>"Price"</dt><dd>{format_cents(o.per_size_hour_cents(), &o.currency)} <span class="muted small">"/ " {per}</span></dd></div>
                                <div><dt>"All of it"</dt><dd><strong>{format_cents(o.total_cents, &o.currency)}</strong></dd></div>
                            </dl>
                            <a href=format!("/pools/{}#resale", o.pool_id) class="button secondary small">"View and buy"</a>
                        </li>
                    }
                }).collect_view()}
            </ol>
        </section>
    })
}

#[component]
fn Hit(hit: SearchHit) -> impl IntoView {
    let hours = (hit.end - hit.start).num_hours();
    let per = match hit.kind {
        PoolKind::Gpu => "GPU-hour",
        PoolKind::Power => "kW-month",
    };
    let units = match hit.kind {
        PoolKind::Gpu => format!(
            "{} {}",
            hit.units,
            if hit.units == 1 { "node" } else { "nodes" }
        ),
        PoolKind::Power => format!(
            "{} {}",
            hit.units,
            if hit.units == 1 { "block" } else { "blocks" }
        ),
    };
    let href = format!(
        "/pools/{}?units={}&start={}&hours={}&tier={}",
        hit.pool_id,
        hit.units,
        request::encode(&crate::components::input_minute(hit.start)),
        hours,
        hit.tier.as_str()
    );
    view! {
        <li class="hit">
            <div class="hit-main">
                <a href=href.clone() class="hit-title"><strong>{hit.pool_name.clone()}</strong></a>
                <div class="muted small">
                    {hit.gpu_model.clone().unwrap_or_else(|| "Power blocks".into())}
                    {hit.interconnect.clone().map(|i| format!(" · {i}"))}
                    " · " {hit.site_name.clone()} ", " {hit.region.clone()} " (" {hit.grid_region.clone()} ") · " {hit.energy_source.clone()}
                </div>
                {hit.note.clone().map(|n| view! { <div class="small note">{n}</div> })}
                {hit.forward.map(|f| view! {
                    <div class="small note" data-testid="hit-forward">
                        <span class="tag tag-building">"forward"</span>
                        " Hall being built, delivered " <LocalTime at=f.delivery_at/>
                        "; " {f.late_credit.describe(&hit.currency)} " credited per day late"
                    </div>
                })}
            </div>
            <dl class="hit-figures">
                <div><dt>"Starts"</dt><dd><LocalTime at=hit.start/></dd></div>
                <div><dt>"Units"</dt><dd>{units}</dd></div>
                <div><dt>"Unit price"</dt><dd>{format_cents(hit.unit_price_cents, &hit.currency)} <span class="muted small">"/ " {per}</span>
                    {(hit.tier == crate::booking::Tier::Interruptible).then(|| view! { <div class="small muted">"interruptible"</div> })}</dd></div>
                <div><dt>"Total"</dt><dd><strong>{format_cents(hit.price.total_cents, &hit.currency)}</strong></dd></div>
                <div><dt>"Reliability"</dt><dd data-testid="hit-reliability" title="Share of the unit-hours it sold over the last 90 days that it delivered">{hit.reliability.label()}</dd></div>
            </dl>
            <a href=href class="button secondary small">"View and reserve"</a>
        </li>
    }
}
