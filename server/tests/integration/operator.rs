//! The operator's admin on a real database: a site and a GPU pool listed through the
//! browser's server functions, a customer's reservation on it, and what the operator then
//! sees: the units it holds, the week's booked share, the site's committed power, the
//! filtered bookings with their totals and CSV, and a blackout refused over booked units.

use crate::helpers::TestApp;
use app::booking::BookingRequest;
use app::operations::BookingFilter;
use app::pricing::Quantity;
use app::services::{operations, reservations, utilization};
use app::utilization::Holder;
use chrono::{Duration, DurationRound, Utc};
use sqlx::PgPool;

const PW: &str = server::seed::DEMO_PASSWORD;

fn site_form<'a>(name: &'a str, interconnect_mw: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![
        ("site_id", ""),
        ("site[name]", name),
        ("site[country]", "us"),
        ("site[region]", "Texas"),
        ("site[grid_region]", "ERCOT"),
        ("site[energy_source]", "wind + grid"),
        ("site[interconnect_mw]", interconnect_mw),
        ("site[pue]", "1.25"),
        ("site[cooling]", "immersion"),
        ("site[status]", "live"),
        ("site[hashrate_th]", "250000"),
        ("site[efficiency_j_th]", "22"),
        ("site[hashprice_usd]", "48.00"),
    ]
}

fn gpu_pool_form<'a>(
    site_id: &'a str,
    units: &'a str,
    from: &'a str,
    until: &'a str,
) -> Vec<(&'static str, &'a str)> {
    vec![
        ("site_id", site_id),
        ("name", "H100 hall A"),
        ("gpu[gpu_model]", "H100 SXM"),
        ("gpu[gpus_per_node]", "8"),
        ("gpu[gpu_memory_gb]", "80"),
        ("gpu[interconnect]", "infiniband"),
        ("gpu[node_power_w]", "10200"),
        ("terms[units]", units),
        ("terms[price_usd]", "2.10"),
        ("terms[min_term_hours]", "1"),
        ("terms[max_term_hours]", "8760"),
        ("terms[min_lead_hours]", "0"),
        ("terms[discounts]", "168:5"),
        ("terms[cancellation]", ""),
        ("terms[open_from]", from),
        ("terms[open_until]", until),
    ]
}

async fn message(res: reqwest::Response) -> String {
    res.text().await.unwrap()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn an_operator_lists_capacity_and_sees_how_it_is_booked(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let app = TestApp::spawn(db.clone()).await;
    let ops = app.log_in("ops@lonestarhash.example", PW).await;
    let operator: i64 =
        sqlx::query_scalar("select id from organization where name = 'Lone Star Hash'")
            .fetch_one(&db)
            .await
            .unwrap();
    let customer: i64 = sqlx::query_scalar("select id from organization where name = 'Helix Labs'")
        .fetch_one(&db)
        .await
        .unwrap();
    let sites_before: i64 = sqlx::query_scalar("select count(*) from site")
        .fetch_one(&db)
        .await
        .unwrap();

    // A bad interconnect is a 422 that names the field, and creates nothing.
    let res = app
        .call("save_site", Some(&ops), &site_form("Pecos", "lots"))
        .await;
    assert_eq!(res.status(), 422);
    assert!(message(res).await.contains("interconnect in MW"));
    let sites_now: i64 = sqlx::query_scalar("select count(*) from site")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(sites_now, sites_before);

    // A 1 MW site: the country is upper-cased, MW become kW, dollars cents.
    let res = app
        .call("save_site", Some(&ops), &site_form("Pecos", "1"))
        .await;
    assert_eq!(res.status(), 200, "{}", message(res).await);
    let (site_id, country, kw, hashprice): (i64, String, i32, Option<i64>) = sqlx::query_as(
        "select id, country, interconnect_kw, hashprice_usd_cents_per_ph_day from site where name = 'Pecos'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(
        (country.as_str(), kw, hashprice),
        ("US", 1_000, Some(4_800))
    );

    // 79 nodes × 10.2 kW × 1.25 = 1,007 kW: more than the interconnect, refused.
    let hour = Utc::now().duration_trunc(Duration::hours(1)).unwrap();
    let from = (hour + Duration::hours(1))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let until = (hour + Duration::days(60))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let site_text = site_id.to_string();
    let res = app
        .call(
            "add_gpu_pool",
            Some(&ops),
            &gpu_pool_form(&site_text, "79", &from, &until),
        )
        .await;
    assert_eq!(res.status(), 422);
    assert!(message(res).await.contains("interconnect"));
    let res = app
        .call(
            "add_gpu_pool",
            Some(&ops),
            &gpu_pool_form(&site_text, "4", &from, &until),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", message(res).await);
    let pool_id: i64 = sqlx::query_scalar("select id from capacity_pool where site_id = $1")
        .bind(site_id)
        .fetch_one(&db)
        .await
        .unwrap();
    let windows: i64 =
        sqlx::query_scalar("select count(*) from availability_window where pool_id = $1")
            .bind(pool_id)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(windows, 1, "the pool goes on sale for the window given");

    // A customer books 3 of the 4 nodes for 24 hours, two days ahead.
    let start = hour + Duration::days(2);
    let r = reservations::reserve(
        &db,
        customer,
        &BookingRequest {
            pool_id,
            quantity: Quantity::Units(3),
            start,
            end: start + Duration::hours(24),
            tier: app::booking::Tier::Firm,
            agreed_total_cents: None,
        },
        300,
        Utc::now(),
    )
    .await
    .unwrap();

    // Units: three spans held by the reservation, on units 1–3.
    let week0 = start.duration_trunc(Duration::days(1)).unwrap();
    let u = utilization::pool(&db, operator, pool_id, week0, 2)
        .await
        .unwrap();
    let mut held: Vec<i64> = u
        .spans
        .iter()
        .filter(|s| matches!(&s.holder, Holder::Reservation { id, customer } if *id == r.id && customer == "Helix Labs"))
        .map(|s| s.ordinal)
        .collect();
    held.sort();
    assert_eq!(held, [1, 2, 3]);
    // 72 of 4 × 168 = 672 unit-hours: 10.71 %.
    assert_eq!(u.weeks[0].booked_unit_hours, 72);
    assert_eq!(u.weeks[0].booked_bp(), 1_071);
    assert_eq!(u.weeks[1].booked_unit_hours, 0);

    // Power: 3 × 10,200 W × 1.25 = 38,250 W committed during the booking, none outside it.
    let p = utilization::site_power(&db, operator, site_id, hour, hour + Duration::days(30))
        .await
        .unwrap();
    let at = |t| {
        p.steps
            .iter()
            .take_while(|s| s.at <= t)
            .last()
            .map(|s| s.committed_w)
            .unwrap()
    };
    assert_eq!(at(start + Duration::hours(5)), 38_250);
    assert_eq!(at(start - Duration::hours(1)), 0);
    assert_eq!(at(start + Duration::hours(25)), 0);
    assert_eq!(p.listed_w, 51_000, "4 nodes × 12.75 kW");
    assert_eq!(p.mining_floor_w(), 1_000_000 - 38_250);
    assert_eq!(p.booked_ahead_cents, r.base_cents - r.discount_cents);

    // Another operator sees neither.
    let other: i64 =
        sqlx::query_scalar("select id from organization where name = 'Appalachian Compute'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert!(utilization::pool(&db, other, pool_id, week0, 1)
        .await
        .is_err());
    assert!(
        utilization::site_power(&db, other, site_id, hour, hour + Duration::days(1))
            .await
            .is_err()
    );

    // Bookings: filtered by pool and state, with totals.
    let by_pool = BookingFilter {
        pool_id: Some(pool_id),
        ..Default::default()
    };
    let list = operations::bookings(&db, operator, &by_pool, None, 50)
        .await
        .unwrap();
    assert_eq!(list.iter().map(|b| b.id).collect::<Vec<_>>(), [r.id]);
    assert_eq!(list[0].state, "confirmed");
    let totals = operations::booking_totals(&db, operator, &by_pool)
        .await
        .unwrap();
    assert_eq!(
        (totals.bookings, totals.unit_hours, totals.total_cents),
        (1, 72, r.total_cents)
    );
    let active = BookingFilter {
        state: Some("active".into()),
        ..by_pool.clone()
    };
    assert!(operations::bookings(&db, operator, &active, None, 50)
        .await
        .unwrap()
        .is_empty());
    let later = BookingFilter {
        from: Some(start + Duration::days(2)),
        ..by_pool.clone()
    };
    assert!(operations::bookings(&db, operator, &later, None, 50)
        .await
        .unwrap()
        .is_empty());
    let csv = app
        .client
        .get(app.url(&format!("/operator/bookings.csv?pool={pool_id}")))
        .header("cookie", &ops)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let body = csv.text().await.unwrap();
    assert!(
        body.contains(&format!(
            "{},{site_id},{pool_id},H100 hall A,Helix Labs,3,",
            r.id
        )),
        "{body}"
    );
    let bad = app
        .client
        .get(app.url("/operator/bookings.csv?from=soon"))
        .header("cookie", &ops)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);

    // A blackout over every node in that window is refused, naming the reservation.
    let s = start.format("%Y-%m-%dT%H:%M").to_string();
    let e = (start + Duration::hours(8))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let pool_text = pool_id.to_string();
    let blackout = |units: &'static str| {
        vec![
            ("pool_id", pool_text.clone()),
            ("units", units.to_string()),
            ("start", s.clone()),
            ("end", e.clone()),
            ("reason", "firmware".to_string()),
        ]
    };
    let form = blackout("");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = app.call("add_blackout", Some(&ops), &form).await;
    assert_eq!(res.status(), 409);
    assert!(message(res).await.contains(&format!("#{}", r.id)));
    // The one free node can go into maintenance.
    let form = blackout("1");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = app.call("add_blackout", Some(&ops), &form).await;
    assert_eq!(res.status(), 200, "{}", message(res).await);
    let blackouts: i64 = sqlx::query_scalar("select count(*) from blackout where pool_id = $1")
        .bind(pool_id)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(blackouts, 1);

    // Price and terms: a bad discount is named and changes nothing; a good edit keeps the
    // hardware and size, and the reservation its locked price.
    let terms = |price: &'static str, discounts: &'static str| {
        vec![
            ("pool_id", pool_text.clone()),
            ("terms[name]", "H100 hall A".to_string()),
            ("terms[price_usd]", price.to_string()),
            ("terms[min_term_hours]", "4".to_string()),
            ("terms[max_term_hours]", "720".to_string()),
            ("terms[min_lead_hours]", "12".to_string()),
            ("terms[discounts]", discounts.to_string()),
            ("terms[cancellation]", "72:100".to_string()),
        ]
    };
    let form = terms("2.50", "a week off");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = app.call("update_pool_terms", Some(&ops), &form).await;
    assert_eq!(res.status(), 422);
    assert!(message(res).await.contains("168:5, 720:10"));
    let form = terms("2.50", "168:7.5");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = app.call("update_pool_terms", Some(&ops), &form).await;
    assert_eq!(res.status(), 200, "{}", message(res).await);
    let (price, min_term, lead, units): (i64, i32, i32, i32) = sqlx::query_as(
        "select price_cents, min_term_hours, min_lead_hours, unit_count from capacity_pool where id = $1",
    )
    .bind(pool_id)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!((price, min_term, lead, units), (250, 4, 12, 4));
    let tiers: Vec<(i32, i32)> = sqlx::query_as(
        "select min_hours, discount_bp from pool_term_discount where pool_id = $1 order by min_hours",
    )
    .bind(pool_id)
    .fetch_all(&db)
    .await
    .unwrap();
    assert_eq!(tiers, [(168, 750)]);
    let locked: i64 = sqlx::query_scalar("select unit_price_cents from reservation where id = $1")
        .bind(r.id)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(locked, 210);
}
