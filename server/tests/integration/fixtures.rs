//! Set-up shared by several test files: a market built through the services (an operator,
//! a site with a GPU pool on sale, two customers), a customer account with a password, API
//! keys and bookable requests on the demo market, and what the books say about a reservation.

use crate::helpers::TestApp;
use app::booking::BookingRequest;
use app::pricing::{Quantity, TermDiscount};
use app::services::accounts;
use app::services::catalog::{self, PoolInput, PoolSpec, SiteInput};
use chrono::{DateTime, Duration, DurationRound, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;

// ---- a market through the services ----------------------------------------------------

pub const FEE_BP: i64 = 300;

pub struct Market {
    pub operator: i64,
    pub customer: i64,
    pub other_customer: i64,
    pub site: i64,
    pub pool: i64,
    pub now: DateTime<Utc>,
}

pub fn hour(now: DateTime<Utc>, hours: i64) -> DateTime<Utc> {
    now.duration_trunc(Duration::hours(1)).unwrap() + Duration::hours(hours)
}

pub async fn org(db: &PgPool, name: &str, kind: &str) -> i64 {
    sqlx::query_scalar("insert into organization (name, kind) values ($1, $2) returning id")
        .bind(name)
        .bind(kind)
        .fetch_one(db)
        .await
        .unwrap()
}

pub fn site_input(name: &str, interconnect_kw: i64) -> SiteInput {
    SiteInput {
        name: name.into(),
        country: "US".into(),
        region: "Texas".into(),
        grid_region: "ERCOT".into(),
        energy_source: "wind".into(),
        interconnect_kw,
        pue: 1.25,
        cooling: "air".into(),
        status: "live".into(),
        hashrate_th: 1_000_000,
        fleet_efficiency_j_th: Some(22.0),
        hashprice_usd_cents_per_ph_day: Some(4_800),
    }
}

pub fn gpu_pool(name: &str, nodes: i64) -> PoolInput {
    PoolInput {
        name: name.into(),
        spec: PoolSpec::Gpu {
            gpu_model: "H100 SXM".into(),
            gpus_per_node: 8,
            gpu_memory_gb: 80,
            interconnect: "infiniband".into(),
            node_power_w: 10_000,
        },
        unit_count: nodes,
        price_cents: 200,
        min_term_hours: 1,
        max_term_hours: 24 * 90,
        min_lead_hours: 0,
        discounts: vec![TermDiscount {
            min_hours: 168,
            discount_bp: 500,
        }],
        cancellation: vec![],
        interruptible: None,
        sla: None,
        forward: None,
    }
}

/// An operator with one live site and one GPU pool of `nodes` nodes open for 60 days,
/// and two customers.
pub async fn market(db: &PgPool, nodes: i64) -> Market {
    market_named(db, nodes, "").await
}

/// [`market`] with `suffix` on the organizations' (unique) names, for several in one database.
pub async fn market_named(db: &PgPool, nodes: i64, suffix: &str) -> Market {
    market_on(
        db,
        suffix,
        &site_input("Site", 50_000),
        &gpu_pool("H100s", nodes),
        (-24, 24 * 60),
    )
    .await
}

/// An operator with `site` and `pool` on it, on sale over `window` (hours from this hour),
/// and two customers; `suffix` as in [`market_named`].
pub async fn market_on(
    db: &PgPool,
    suffix: &str,
    site: &SiteInput,
    pool: &PoolInput,
    window: (i64, i64),
) -> Market {
    let now = Utc::now();
    let operator = org(db, &format!("Op{suffix}"), "operator").await;
    let customer = org(db, &format!("Cust{suffix}"), "customer").await;
    let other_customer = org(db, &format!("Other{suffix}"), "customer").await;
    let site = catalog::create_site(db, operator, site).await.unwrap();
    let pool = catalog::create_pool(db, operator, site, pool, None)
        .await
        .unwrap();
    catalog::open_window(db, operator, pool, hour(now, window.0), hour(now, window.1))
        .await
        .unwrap();
    Market {
        operator,
        customer,
        other_customer,
        site,
        pool,
        now,
    }
}

pub fn req(m: &Market, gpus: i64, from_h: i64, hours: i64) -> BookingRequest {
    BookingRequest {
        pool_id: m.pool,
        quantity: Quantity::Gpus(gpus),
        start: hour(m.now, from_h),
        end: hour(m.now, from_h + hours),
        tier: app::booking::Tier::Firm,
        agreed_total_cents: None,
    }
}

// ---- accounts -------------------------------------------------------------------------

pub const PASSWORD: &str = "granite orchard 4 lanterns";

/// A customer organization with one person; returns the user id.
pub async fn customer(db: &PgPool, org: &str, email: &str) -> i64 {
    let org = accounts::create_organization(db, org, "customer")
        .await
        .unwrap();
    accounts::create_user(db, org, email, "Test Person", PASSWORD, false)
        .await
        .unwrap()
}

pub async fn who_am_i(app: &TestApp, cookie: &str) -> serde_json::Value {
    let res = app.call("who_am_i", Some(cookie), &[]).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

pub async fn session_count(db: &PgPool) -> i64 {
    sqlx::query_scalar("select count(*) from session")
        .fetch_one(db)
        .await
        .unwrap()
}

// ---- the JSON API over the demo market ------------------------------------------------

const PW: &str = server::seed::DEMO_PASSWORD;

/// A key for a demo organization, made through the browser's door.
pub async fn key(app: &TestApp, email: &str, scopes: &[&str]) -> String {
    let cookie = app.log_in(email, PW).await;
    let mut form = vec![("name", "api-test")];
    for s in scopes {
        form.push((s, "on"));
    }
    let res = app.call("create_api_key", Some(&cookie), &form).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    v["secret"].as_str().unwrap().to_string()
}

pub async fn json_of(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// A request that fits: the earliest 4-hour slot for one node of the first GPU pool.
pub async fn bookable(app: &TestApp, key: &str) -> Value {
    let (_, pools) = json_of(
        app.api(Method::GET, "/pools?limit=200", key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let pool = pools["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "gpu" && p["site_live"] == true)
        .unwrap()["pool_id"]
        .as_i64()
        .unwrap();
    let (status, slot) = json_of(
        app.api(
            Method::GET,
            &format!("/pools/{pool}/slots?units=1&hours=24&within_days=365"),
            key,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{slot}");
    json!({"pool_id": pool, "quantity": {"units": 1}, "start": slot["start"], "end": slot["end"]})
}

pub async fn count(db: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from {table}")))
        .fetch_one(db)
        .await
        .unwrap()
}

/// A `read` and `reserve` key for organization `org`, made through the service.
pub async fn customer_key(db: &PgPool, org: i64) -> String {
    key_with(
        db,
        org,
        vec![app::account::Scope::Read, app::account::Scope::Reserve],
    )
    .await
}

/// A `read` and `operate` key for operator organization `org`, made through the service.
pub async fn operator_key(db: &PgPool, org: i64) -> String {
    key_with(
        db,
        org,
        vec![app::account::Scope::Read, app::account::Scope::Operate],
    )
    .await
}

async fn key_with(db: &PgPool, org: i64, scopes: Vec<app::account::Scope>) -> String {
    let k = app::services::api_keys::NewKey {
        name: "test".into(),
        scopes,
        expires_in_days: None,
    };
    let url = app::services::mail::PublicUrl("http://localhost".into());
    app::services::api_keys::create(db, org, None, &k, &url, Utc::now())
        .await
        .unwrap()
        .secret
}

/// POSTs `body` as JSON to the API path with `key`; the status and the JSON answer.
pub async fn post_json(app: &TestApp, key: &str, path: &str, body: Value) -> (u16, Value) {
    json_of(
        app.api(Method::POST, path, key)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

pub async fn key_for_northwind(app: &TestApp) -> String {
    key(app, "infra@northwind.example", &["read", "reserve"]).await
}

// ---- the books ------------------------------------------------------------------------

/// What the books say about one reservation (the `ledger_reservation_totals` view).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Books {
    pub charged: i64,
    pub refunded: i64,
    pub operator: i64,
    pub fee: i64,
    pub unearned: i64,
}

pub async fn books(db: &PgPool, reservation: i64) -> Books {
    let row: Option<(i64, i64, i64, i64, i64)> = sqlx::query_as(
        "select charged_cents, refunded_cents, operator_cents, fee_cents_recognised, unearned_cents
           from ledger_reservation_totals where reservation_id = $1",
    )
    .bind(reservation)
    .fetch_optional(db)
    .await
    .unwrap();
    row.map(|(charged, refunded, operator, fee, unearned)| Books {
        charged,
        refunded,
        operator,
        fee,
        unearned,
    })
    .unwrap_or_default()
}

pub async fn ledger_sum(db: &PgPool) -> i64 {
    sqlx::query_scalar("select coalesce(sum(amount_cents), 0)::bigint from ledger_entry")
        .fetch_one(db)
        .await
        .unwrap()
}

/// Asserts that `reconcile` finds the books right as of `at`: every reservation's postings
/// as its row says, the ledger summing to zero, every transaction balanced.
pub async fn assert_books_reconcile(db: &PgPool, at: DateTime<Utc>) {
    let books = app::services::ledger::reconcile(db, at).await.unwrap();
    assert!(books.is_clean(), "the books disagree: {books:?}");
}

/// Locks unit `id`'s row in `conn`'s transaction, as a writer choosing it would.
pub async fn lock_unit(conn: &mut sqlx::PgConnection, id: i64) {
    sqlx::query("select 1 from capacity_unit where id = $1 for no key update")
        .bind(id)
        .execute(conn)
        .await
        .unwrap();
}

/// The units of a pool by number, as their database ids.
pub async fn unit_ids(db: &PgPool, pool: i64) -> Vec<i64> {
    sqlx::query_scalar("select id from capacity_unit where pool_id = $1 order by ordinal")
        .bind(pool)
        .fetch_all(db)
        .await
        .unwrap()
}

/// Returns once a backend other than the caller's waits for a lock in this database;
/// fails the test with `never` if none does within 5 s.
pub async fn until_someone_waits_for_a_lock(db: &PgPool, never: &str) {
    let started = std::time::Instant::now();
    loop {
        let waits: bool = sqlx::query_scalar(
            "select exists (select 1 from pg_stat_activity
                             where datname = current_database() and pid <> pg_backend_pid()
                               and wait_event_type = 'Lock')",
        )
        .fetch_one(db)
        .await
        .unwrap();
        if waits {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{never}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}
