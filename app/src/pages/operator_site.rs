//! An operator's site: its details (create and edit), its power over the next 90 days
//! (interconnect, firm AI load committed by reservations, what is left for mining), the
//! bridge from mining to AI while its hall is built and sold forward, the
//! booked revenue ahead, its pools, and the forms that list new GPU or power-block pools.

use crate::app_error::AppError;
use crate::components::{clean_error, LocalTime, NotOperator, SignedIn};
use crate::grid::GridEvent;
use crate::listing_form::SiteForm;
use crate::money::format_cents;
use crate::operations::OperatorPool;
use crate::pages::grid_events::GridEventsPanel;
use crate::utilization::{format_watts, SitePower};
use chrono::Duration;
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_location, use_query_map};
use serde::{Deserialize, Serialize};

/// Days the power chart covers.
pub const POWER_DAYS: i64 = 90;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SiteOverview {
    pub id: i64,
    pub site: SiteForm,
    pub power: SitePower,
    pub pools: Vec<OperatorPool>,
    /// The site's latest grid events.
    pub grid_events: Vec<GridEvent>,
    /// The idempotency key of the grid event form.
    pub grid_event_key: String,
    /// Mining until the hall's delivery and AI sold forward after it, while the site is
    /// being built or has forward contracts.
    pub bridge: Option<crate::bridge::Bridge>,
}

/// Grid events the site page lists.
#[cfg(feature = "ssr")]
const GRID_EVENTS_SHOWN: i64 = 50;

#[server(endpoint = "load_site_overview")]
pub async fn load_site_overview(id: i64) -> Result<SiteOverview, AppError> {
    use crate::services::{bridge, catalog, grid_events, operations, utilization, web};
    let me = web::principal()?
        .operator(crate::account::Scope::Read)
        .map_err(web::fail)?;
    let db = web::db()?;
    let site = catalog::site_input(&db, me, id).await.map_err(web::fail)?;
    let from = crate::window::ceil_hour(chrono::Utc::now()) - Duration::hours(1);
    let power = utilization::site_power(&db, me, id, from, from + Duration::days(POWER_DAYS))
        .await
        .map_err(web::fail)?;
    let pools = operations::pools(&db, me, operations::PoolScope::Site(id))
        .await
        .map_err(web::fail)?;
    let grid_events = grid_events::list(&db, me, id, None, GRID_EVENTS_SHOWN)
        .await
        .map_err(web::fail)?;
    let bridge = bridge::site(&db, me, id, chrono::Utc::now())
        .await
        .map_err(web::fail)?;
    Ok(SiteOverview {
        id,
        site: SiteForm::from(&site),
        power,
        pools,
        grid_events,
        grid_event_key: crate::components::form_key().await?,
        bridge,
    })
}

/// Creates a site (`site_id` blank) or updates one, then shows it.
#[server(endpoint = "save_site")]
pub async fn save_site(site_id: String, site: SiteForm) -> Result<i64, AppError> {
    use crate::services::{catalog, error::ServiceError, web};
    let me = web::principal()?
        .operator(crate::account::Scope::Operate)
        .map_err(web::fail)?;
    let input = site
        .parse()
        .map_err(|(field, m)| web::fail(ServiceError::invalid(field, m)))?;
    let db = web::db()?;
    let id = match site_id.trim() {
        "" => catalog::create_site(&db, me, &input)
            .await
            .map_err(web::fail)?,
        raw => {
            let id = raw
                .parse::<i64>()
                .map_err(|_| web::fail(ServiceError::NotFound("site")))?;
            catalog::update_site(&db, me, id, &input)
                .await
                .map_err(web::fail)?;
            id
        }
    };
    // A new query each time, so the page reloads its figures after every save.
    leptos_axum::redirect(&format!(
        "/operator/sites/{id}?saved={}",
        chrono::Utc::now().timestamp()
    ));
    Ok(id)
}

/// Lists a pool of GPU nodes on the site and opens it for sale over the given window.
#[server(endpoint = "add_gpu_pool")]
pub async fn add_gpu_pool(
    site_id: i64,
    name: String,
    gpu: GpuForm,
    terms: TermsForm,
) -> Result<i64, AppError> {
    use crate::request::parse_count;
    use crate::services::catalog::PoolSpec;
    let count = |s: &str, field: &str, what: &str, r| {
        parse_count(s, what, r).map_err(|m| (field.to_string(), m))
    };
    let spec = (|| {
        Ok::<_, (String, String)>(PoolSpec::Gpu {
            gpu_model: gpu.gpu_model.trim().to_string(),
            gpus_per_node: count(&gpu.gpus_per_node, "gpus_per_node", "GPUs per node", 1..=72)?,
            gpu_memory_gb: count(
                &gpu.gpu_memory_gb,
                "gpu_memory_gb",
                "GPU memory (GB)",
                1..=10_000,
            )?,
            interconnect: gpu.interconnect.trim().to_lowercase(),
            node_power_w: count(
                &gpu.node_power_w,
                "node_power_w",
                "IT power per node (W)",
                1..=200_000,
            )?,
        })
    })();
    list_pool(site_id, name, spec, terms).await
}

/// Lists a pool of power blocks on the site and opens it for sale over the given window.
#[server(endpoint = "add_power_pool")]
pub async fn add_power_pool(
    site_id: i64,
    name: String,
    block_kw: String,
    redundancy: String,
    block_cooling: String,
    terms: TermsForm,
) -> Result<i64, AppError> {
    use crate::request::parse_count;
    use crate::services::catalog::PoolSpec;
    let spec = parse_count(&block_kw, "the block size (kW)", 1..=100_000)
        .map(|block_kw| PoolSpec::Power {
            block_kw,
            redundancy: redundancy.trim().to_string(),
            cooling: block_cooling.trim().to_string(),
        })
        .map_err(|m| ("block_kw".to_string(), m));
    list_pool(site_id, name, spec, terms).await
}

/// A GPU node's hardware, as typed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuForm {
    pub gpu_model: String,
    pub gpus_per_node: String,
    pub gpu_memory_gb: String,
    pub interconnect: String,
    pub node_power_w: String,
}

/// The terms both pool forms share, as typed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TermsForm {
    pub units: String,
    pub price_usd: String,
    pub min_term_hours: String,
    pub max_term_hours: String,
    pub min_lead_hours: String,
    pub discounts: String,
    pub cancellation: String,
    #[serde(default)]
    pub interruptible_price_usd: String,
    #[serde(default)]
    pub interruptible_notice_hours: String,
    /// The service level (both blank: the default).
    #[serde(default)]
    pub sla_promise_percent: String,
    #[serde(default)]
    pub sla_credits: String,
    /// Forward sale terms (all blank: sold once the site is live).
    #[serde(default)]
    pub forward_delivery: String,
    #[serde(default)]
    pub forward_late_credit: String,
    #[serde(default)]
    pub forward_walk_away: String,
    pub open_from: String,
    pub open_until: String,
}

#[cfg(feature = "ssr")]
async fn list_pool(
    site_id: i64,
    name: String,
    spec: Result<crate::services::catalog::PoolSpec, (String, String)>,
    t: TermsForm,
) -> Result<i64, AppError> {
    use crate::listing_form::PoolTermsForm;
    use crate::request::{parse_count, parse_start};
    use crate::services::{catalog, error::ServiceError, web};
    let me = web::principal()?
        .operator(crate::account::Scope::Operate)
        .map_err(web::fail)?;
    let bad = |field: &str, m: String| web::fail(ServiceError::invalid(field, m));
    let spec = spec.map_err(|(f, m)| bad(&f, m))?;
    let unit_count =
        parse_count(&t.units, "the number of units", 1..=100_000).map_err(|m| bad("units", m))?;
    // Name, price and terms are read as the pool page's edit form reads them.
    let terms = PoolTermsForm {
        name,
        price_usd: t.price_usd,
        min_term_hours: t.min_term_hours,
        max_term_hours: t.max_term_hours,
        min_lead_hours: t.min_lead_hours,
        discounts: t.discounts,
        cancellation: t.cancellation,
        interruptible_price_usd: t.interruptible_price_usd,
        interruptible_notice_hours: t.interruptible_notice_hours,
        sla_promise_percent: t.sla_promise_percent,
        sla_credits: t.sla_credits,
        forward_delivery: t.forward_delivery,
        forward_late_credit: t.forward_late_credit,
        forward_walk_away: t.forward_walk_away,
    };
    let hardware = catalog::PoolInput {
        name: String::new(),
        spec,
        unit_count,
        price_cents: 0,
        min_term_hours: 0,
        max_term_hours: 0,
        min_lead_hours: 0,
        discounts: Vec::new(),
        cancellation: Vec::new(),
        interruptible: None,
        sla: None,
        forward: None,
    };
    let input = terms.apply(hardware).map_err(|(field, m)| bad(field, m))?;
    let from = parse_start(&t.open_from).map_err(|_| {
        bad(
            "open_from",
            "say when the pool goes on sale, e.g. 2026-12-01 00:00 (UTC)".into(),
        )
    })?;
    let until = parse_start(&t.open_until).map_err(|_| {
        bad(
            "open_until",
            "say until when the pool is on sale, e.g. 2027-12-01 00:00 (UTC)".into(),
        )
    })?;
    let window = crate::window::HourWindow::new(from, until).map_err(|e| web::fail(e.into()))?;
    let pool_id = catalog::create_pool(&web::db()?, me, site_id, &input, Some(&window))
        .await
        .map_err(web::fail)?;
    leptos_axum::redirect(&format!("/operator/pools/{pool_id}?listed=1"));
    Ok(pool_id)
}

fn operator_only(u: crate::account::CurrentUser, page: AnyView) -> AnyView {
    if u.kind.operates() {
        page
    } else {
        view! { <NotOperator>"Sites and pools are listed by organizations that operate capacity."</NotOperator> }
            .into_any()
    }
}

#[component]
pub fn NewSitePage() -> impl IntoView {
    view! {
        <Title text="New site"/>
        <SignedIn next="/operator/sites/new" page=|u| operator_only(u, view! {
            <p class="crumbs"><a href="/operator">"Operations"</a> " › new site"</p>
            <h1>"List a site"</h1>
            <p class="lede">"A converted mining site: where it is, its grid connection, and its mining fleet. "
                "You list GPU nodes and power blocks on it next."</p>
            <SiteFormView id=None site=SiteForm::new_site()/>
        }.into_any())/>
    }
}

#[component]
pub fn SitePage() -> impl IntoView {
    let id = crate::components::use_id_param();
    view! {
        <Title text="Site"/>
        <SignedIn next="/operator" page=move |u| {
            // Refetched when the save's redirect changes the query (`?saved=…`).
            let location = use_location();
            let data = crate::resource::load(
                move || (id(), location.search.get()),
                |(id, _)| load_site_overview(id),
            );
            operator_only(u, view! {
                <Transition fallback=|| view! { <p class="loading" role="status">"Loading the site…"</p> }>
                    {move || Suspend::new(async move {
                        match data.await {
                            Ok(s) => view! { <Site overview=s/> }.into_any(),
                            Err(e) if e.is_not_found() => view! { <crate::pages::not_found::NotFound/> }.into_any(),
                            Err(e) => view! { <p class="form-error" role="alert">{clean_error(&e.to_string())}</p> }.into_any(),
                        }
                    })}
                </Transition>
            }.into_any())
        }/>
    }
}

#[component]
fn Site(overview: SiteOverview) -> impl IntoView {
    let (saved, recorded) = use_query_map().with_untracked(|q| {
        (
            q.get("saved").is_some(),
            q.get("grid_event").and_then(|v| v.parse::<i64>().ok()),
        )
    });
    let SiteOverview {
        id,
        site,
        power,
        pools,
        grid_events,
        grid_event_key,
        bridge,
    } = overview;
    let name = site.name.clone();
    view! {
        <Title text=name.clone()/>
        <p class="crumbs"><a href="/operator">"Operations"</a> " › " {name.clone()}</p>
        <h1>{name.clone()}</h1>
        {saved.then(|| view! { <p class="form-ok" role="status" data-testid="site-saved">"Site saved."</p> })}
        {bridge.map(|b| view! { <crate::pages::bridge::BridgePanel bridge=b/> })}
        <PowerPanel power=power events=grid_events.clone()/>
        <GridEventsPanel site_id=id events=grid_events recorded=recorded form_key=grid_event_key/>
        <section class="panel" aria-labelledby="pools-title">
            <h2 id="pools-title">"Capacity on this site"</h2>
            <PoolTable pools=pools/>
        </section>
        <section class="panel" aria-labelledby="gpu-pool-title">
            <h2 id="gpu-pool-title">"List GPU nodes"</h2>
            <GpuPoolForm site_id=id/>
        </section>
        <section class="panel" aria-labelledby="power-pool-title">
            <h2 id="power-pool-title">"List power blocks"</h2>
            <PowerPoolForm site_id=id/>
        </section>
        <section class="panel" aria-labelledby="edit-site-title">
            <h2 id="edit-site-title">"Site details"</h2>
            <SiteFormView id=Some(id) site=site/>
        </section>
    }
}

#[component]
fn PoolTable(pools: Vec<OperatorPool>) -> impl IntoView {
    if pools.is_empty() {
        return view! { <p class="empty-state">"Nothing is listed on this site yet: list GPU nodes or power blocks below."</p> }.into_any();
    }
    view! {
        <div class="table-scroll"><table class="data-table" data-testid="site-pools">
            <thead><tr><th scope="col">"Pool"</th><th scope="col">"Hardware"</th><th scope="col" class="num">"Units"</th>
                <th scope="col" class="num">"Price"</th><th scope="col">"On sale until"</th></tr></thead>
            <tbody>{pools.into_iter().map(|p| {
                let unit = p.price_unit();
                view! {
                    <tr>
                        <td><a href=format!("/operator/pools/{}", p.id)>{p.name.clone()}</a></td>
                        <td data-label="Hardware">{p.spec.clone()}</td>
                        <td class="num" data-label="Units">{p.unit_count}</td>
                        <td class="num" data-label="Price">{format_cents(p.price_cents, &p.currency)} " " {unit}</td>
                        <td data-label="On sale until">{match p.open_until {
                            Some(t) => view! { <LocalTime at=t/> }.into_any(),
                            None => view! { <span class="note">"not on sale"</span> }.into_any(),
                        }}</td>
                    </tr>
                }
            }).collect_view()}</tbody>
        </table></div>
    }
    .into_any()
}

/// The site's power: figures, then the chart of interconnect, committed AI load and the
/// mining share, with a text table of the same steps.
#[component]
fn PowerPanel(power: SitePower, events: Vec<GridEvent>) -> impl IntoView {
    let interconnect = power.interconnect_w();
    view! {
        <section class="panel" aria-labelledby="power-title" data-testid="site-power">
            <h2 id="power-title">"Power, next " {POWER_DAYS} " days"</h2>
            <dl class="summary-grid">
                <div><dt>"Interconnect"</dt><dd data-testid="power-interconnect">{format_watts(interconnect)}</dd></div>
                <div><dt>"Listed firm AI capacity"</dt><dd data-testid="power-listed">{format_watts(power.listed_w)}</dd></div>
                <div><dt>"Peak AI load booked"</dt><dd data-testid="power-peak">{format_watts(power.peak_w())}</dd></div>
                <div><dt>"Mining keeps at least"</dt><dd data-testid="power-mining">{format_watts(power.mining_floor_w())}</dd></div>
                <div><dt>"Booked revenue ahead"</dt><dd data-testid="booked-ahead">{format_cents(power.booked_ahead_cents, &power.currency)}</dd></div>
            </dl>
            <PowerChart power=power.clone() events=events/>
            <p class="small muted">"Firm AI load is what reservations commit: GPU nodes' IT power × the site's PUE, and power blocks as sold. "
                "Mining runs on the rest of the interconnect and can switch off in seconds. "
                <a href="/operator/economics">"Compare what a MWh earns as AI and as mining →"</a></p>
        </section>
    }
}

#[component]
fn PowerChart(power: SitePower, events: Vec<GridEvent>) -> impl IntoView {
    const W: f64 = 640.0;
    const H: f64 = 220.0;
    const PAD_L: f64 = 56.0;
    const PAD_B: f64 = 24.0;
    let top = power.interconnect_w().max(power.listed_w).max(1) as f64;
    let span = (power.to - power.from).num_seconds().max(1) as f64;
    let from = power.from;
    let x = move |t: chrono::DateTime<chrono::Utc>| {
        PAD_L + ((t - from).num_seconds().clamp(0, span as i64) as f64 / span) * (W - PAD_L - 4.0)
    };
    let y = move |w: i64| 6.0 + (1.0 - w as f64 / top) * (H - PAD_B - 10.0);
    // The committed load as a filled step area.
    let mut area = format!("M{:.1},{:.1}", x(power.from), y(0));
    for (i, s) in power.steps.iter().enumerate() {
        let end = power.steps.get(i + 1).map(|n| n.at).unwrap_or(power.to);
        area.push_str(&format!(
            " L{:.1},{:.1} L{:.1},{:.1}",
            x(s.at),
            y(s.committed_w),
            x(end),
            y(s.committed_w)
        ));
    }
    area.push_str(&format!(" L{:.1},{:.1} Z", x(power.to), y(0)));
    let interconnect = power.interconnect_w();
    let label = format!(
        "Power at {} over {POWER_DAYS} days: interconnect {}, listed firm AI capacity {}, booked AI load peaking at {}, leaving at least {} for mining.",
        power.site_name,
        format_watts(interconnect),
        format_watts(power.listed_w),
        format_watts(power.peak_w()),
        format_watts(power.mining_floor_w())
    );
    let months: Vec<(f64, String)> = (0..=POWER_DAYS / 30)
        .map(|m| {
            let t = power.from + Duration::days(m * 30);
            (x(t), crate::components::short_day(t))
        })
        .collect();
    let steps = power.steps.clone();
    // Grid events in the range as bands over the hours they shed (at least a few pixels
    // wide: an event of hours on a 90-day axis would be invisible).
    let bands: Vec<_> = events
        .into_iter()
        .filter(|e| e.end > power.from && e.start < power.to)
        .map(|e| {
            let (x0, x1) = (x(e.start), x(e.end));
            let text = format!(
                "{}: {} from {} to {} asked to shed {}; mining shed {}, interruptible AI load {}, firm none",
                e.program,
                crate::components::short_day(e.start),
                crate::components::utc_minute(e.start),
                crate::components::utc_minute(e.end),
                format_watts(e.shed_kw * 1000),
                format_watts(e.mining_shed_kw * 1000),
                format_watts(e.interruptible_shed_kw * 1000),
            );
            (x0, (x1 - x0).max(3.0), e.program, text)
        })
        .collect();
    let label = if bands.is_empty() {
        label
    } else {
        format!("{label} {} grid event(s) shown.", bands.len())
    };
    let band_rows = bands.clone();
    let aria_label = label.clone();
    view! {
        <figure class="chart">
            <svg viewBox=format!("0 0 {W} {H}") role="img" aria-label=aria_label data-testid="power-chart">
                <title>{label}</title>
                <defs>
                    <pattern id="ai-hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
                        <line x1="0" y1="0" x2="0" y2="6" class="hatch-line"/>
                    </pattern>
                </defs>
                <line x1=PAD_L y1=y(0) x2=W y2=y(0) class="axis"/>
                <path d=area class="ai-area" fill="url(#ai-hatch)"/>
                {bands.into_iter().map(|(bx, bw, program, text)| view! {
                    <g class="grid-event-band" data-testid="chart-grid-event">
                        <rect x=bx y=6.0 width=bw height=y(0) - 6.0><title>{text}</title></rect>
                        <text x=bx + bw + 2.0 y=18.0 class="chart-label">{program}</text>
                    </g>
                }).collect_view()}
                <line x1=PAD_L y1=y(interconnect) x2=W y2=y(interconnect) class="limit"/>
                <text x=W - 4.0 y=y(interconnect) + 14.0 text-anchor="end" class="chart-label">"interconnect"</text>
                <line x1=PAD_L y1=y(power.listed_w) x2=W y2=y(power.listed_w) class="grid"/>
                <text x=W - 4.0 y=y(power.listed_w) - 4.0 text-anchor="end" class="tick">{format!("listed AI capacity {}", format_watts(power.listed_w))}</text>
                <text x=PAD_L + 4.0 y=(y(interconnect) + y(power.peak_w())) / 2.0 + 4.0 class="chart-label">"left for mining"</text>
                <text x=PAD_L - 4.0 y=y(0) + 4.0 text-anchor="end" class="tick">"0"</text>
                <text x=PAD_L - 4.0 y=y(interconnect) + 4.0 text-anchor="end" class="tick">{format_watts(interconnect)}</text>
                {months.into_iter().map(|(mx, text)| view! {
                    <text x=mx y=H - 6.0 text-anchor="middle" class="tick">{text}</text>
                }).collect_view()}
            </svg>
            <figcaption class="small muted">"Hatched: firm AI load booked. Above it, up to the interconnect line: mining. "
                "Shaded bars: grid events, when mining and then interruptible AI load are switched off."</figcaption>
            <div class="visually-hidden"><table>
                <caption>"Firm AI load booked and left for mining, by period"</caption>
                <thead><tr><th scope="col">"From (UTC)"</th><th scope="col">"AI load"</th><th scope="col">"Left for mining"</th></tr></thead>
                <tbody>{steps.into_iter().map(|s| view! {
                    <tr><td>{crate::components::utc_minute(s.at)}</td><td>{format_watts(s.committed_w)}</td>
                        <td>{format_watts((interconnect - s.committed_w).max(0))}</td></tr>
                }).collect_view()}</tbody>
            </table>
            {(!band_rows.is_empty()).then(|| view! {
                <ul>{band_rows.into_iter().map(|(_, _, _, text)| view! { <li>{text}</li> }).collect_view()}</ul>
            })}
            </div>
        </figure>
    }
}

/// A labelled text input of the listing forms.
#[component]
fn Field(
    #[prop(into)] label: String,
    #[prop(into)] name: String,
    #[prop(into, optional)] value: String,
    #[prop(into, optional)] hint: Option<String>,
    #[prop(optional)] required: bool,
) -> impl IntoView {
    view! {
        <label>{label}
            <input type="text" name=name value=value required=required/>
            {hint.map(|h| view! { <span class="small muted">{h}</span> })}
        </label>
    }
}

#[component]
fn SiteFormView(id: Option<i64>, site: SiteForm) -> impl IntoView {
    let save = ServerAction::<SaveSite>::new();
    let live = site.status == "live";
    view! {
        <ActionForm action=save attr:class="stack-form wide" attr:data-testid="site-form">
            <input type="hidden" name="site_id" value=id.map(|i| i.to_string()).unwrap_or_default()/>
            <div class="search-grid">
                <Field label="Name" name="site[name]" value=site.name required=true/>
                <Field label="Country (2 letters)" name="site[country]" value=site.country hint="e.g. US, SE, PY" required=true/>
                <Field label="Region" name="site[region]" value=site.region hint="e.g. Texas" required=true/>
                <Field label="Grid region" name="site[grid_region]" value=site.grid_region hint="e.g. ERCOT" required=true/>
                <Field label="Energy source" name="site[energy_source]" value=site.energy_source hint="e.g. wind + grid" required=true/>
                <Field label="Interconnect (MW)" name="site[interconnect_mw]" value=site.interconnect_mw required=true/>
                <Field label="PUE" name="site[pue]" value=site.pue hint="1.0 to 3.0" required=true/>
                <Field label="Cooling" name="site[cooling]" value=site.cooling hint="e.g. immersion, air, liquid" required=true/>
                <label>"Status"
                    <select name="site[status]">
                        <option value="building" selected=!live>"building"</option>
                        <option value="live" selected=live>"live"</option>
                    </select>
                </label>
                <Field label="Mining fleet hashrate (TH/s)" name="site[hashrate_th]" value=site.hashrate_th hint="0 when the fleet is gone"/>
                <Field label="Fleet efficiency (J/TH)" name="site[efficiency_j_th]" value=site.efficiency_j_th hint="e.g. 21.5"/>
                <Field label="Hashprice (USD per PH/s per day)" name="site[hashprice_usd]" value=site.hashprice_usd hint="e.g. 48.50"/>
            </div>
            <p><button type="submit" class="button">
                {if id.is_some() { "Save the site" } else { "List the site" }}
            </button></p>
        </ActionForm>
    }
}

/// Terms fields both pool forms share, named `terms[...]` for the server function.
#[component]
fn TermsFields(gpu: bool) -> impl IntoView {
    let now = crate::window::ceil_hour(crate::components::now());
    let open_from = crate::components::input_minute(now + Duration::hours(1));
    let open_until = crate::components::input_minute(now + Duration::days(365));
    view! {
        <div class="search-grid">
            <Field label="Units for sale" name="terms[units]" hint=if gpu { "nodes" } else { "blocks" } required=true/>
            <Field label=if gpu { "Price (USD per GPU-hour)" } else { "Price (USD per kW-month)" } name="terms[price_usd]"
                hint=if gpu { "e.g. 2.10" } else { "e.g. 150" } required=true/>
            <Field label="Minimum term (hours)" name="terms[min_term_hours]" value="24" required=true/>
            <Field label="Maximum term (hours)" name="terms[max_term_hours]" value="8760" required=true/>
            <Field label="Minimum lead time (hours)" name="terms[min_lead_hours]" value="24" required=true/>
            <Field label="Term discounts (hours:percent)" name="terms[discounts]" value="168:5, 720:10" hint="blank for none"/>
            <Field label="Cancellation (notice hours:refund percent)" name="terms[cancellation]" value="168:100, 24:50" hint="blank for the default policy"/>
            <Field label=if gpu { "Interruptible tier: USD per GPU-hour" } else { "Interruptible tier: USD per kW-month" } name="terms[interruptible_price_usd]"
                hint="lower than the firm price; blank to sell firm capacity only"/>
            <Field label="Interruption notice (hours)" name="terms[interruptible_notice_hours]" value="2" hint="0 to 720"/>
            <Field label="SLA: monthly availability promise (%)" name="terms[sla_promise_percent]" value="99.5"/>
            <Field label="SLA credits (under %:credit % of the month's charge)" name="terms[sla_credits]" value="99.5:10, 99:25, 95:50"
                hint="the deepest tier reached pays; hours lost to an incident are credited on top"/>
            <label>"Forward: committed delivery (UTC)" <input type="datetime-local" name="terms[forward_delivery]" step="3600"/>
                <span class="small muted">"for a hall being built: sold ahead, from this hour; blank to sell once the site is live"</span></label>
            <Field label="Forward: credit per day late" name="terms[forward_late_credit]" hint="a share of the contract, e.g. 1%, or USD per unit, e.g. 25.00"/>
            <label>"Forward: walk-away date (UTC)" <input type="datetime-local" name="terms[forward_walk_away]" step="3600"/>
                <span class="small muted">"after it, a customer still waiting may cancel for a full refund"</span></label>
            <label>"On sale from (UTC)" <input type="datetime-local" name="terms[open_from]" step="3600" required value=open_from/></label>
            <label>"On sale until (UTC)" <input type="datetime-local" name="terms[open_until]" step="3600" required value=open_until/></label>
        </div>
    }
}

#[component]
fn GpuPoolForm(site_id: i64) -> impl IntoView {
    let add = ServerAction::<AddGpuPool>::new();
    view! {
        <ActionForm action=add attr:class="stack-form wide" attr:data-testid="gpu-pool-form">
            <input type="hidden" name="site_id" value=site_id/>
            <div class="search-grid">
                <Field label="Pool name" name="name" hint="e.g. H100 hall A" required=true/>
                <Field label="GPU model" name="gpu[gpu_model]" hint="e.g. H100 SXM" required=true/>
                <Field label="GPUs per node" name="gpu[gpus_per_node]" value="8" required=true/>
                <Field label="GPU memory (GB)" name="gpu[gpu_memory_gb]" value="80" required=true/>
                <label>"Interconnect"
                    <select name="gpu[interconnect]">
                        <option value="infiniband">"InfiniBand"</option>
                        <option value="roce">"RoCE"</option>
                        <option value="ethernet">"Ethernet"</option>
                    </select>
                </label>
                <Field label="IT power per node (W)" name="gpu[node_power_w]" hint="e.g. 10200" required=true/>
            </div>
            <TermsFields gpu=true/>
            <p><button type="submit" class="button">"List the GPU nodes"</button></p>
        </ActionForm>
    }
}

#[component]
fn PowerPoolForm(site_id: i64) -> impl IntoView {
    let add = ServerAction::<AddPowerPool>::new();
    view! {
        <ActionForm action=add attr:class="stack-form wide" attr:data-testid="power-pool-form">
            <input type="hidden" name="site_id" value=site_id/>
            <div class="search-grid">
                <Field label="Pool name" name="name" hint="e.g. Hall B power blocks" required=true/>
                <Field label="Block size (kW)" name="block_kw" hint="e.g. 500" required=true/>
                <label>"Redundancy"
                    <select name="redundancy">
                        <option value="N">"N"</option>
                        <option value="N+1" selected=true>"N+1"</option>
                        <option value="2N">"2N"</option>
                    </select>
                </label>
                <Field label="Cooling" name="block_cooling" hint="e.g. direct liquid" required=true/>
            </div>
            <TermsFields gpu=false/>
            <p><button type="submit" class="button">"List the power blocks"</button></p>
        </ActionForm>
    }
}
