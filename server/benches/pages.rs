//! The server-rendered market page under load, next to a static asset served by the same
//! server in the same run, and the size of the browser bundle.
//!
//! Starts a private PostgreSQL in `.data/bench-pages` with the demo market, serves the
//! release site (`target/site`, built by `cargo leptos build --release`) in this process, and
//! drives each path with 64 concurrent connections for `BENCH_SECONDS` (default 10) seconds.
//! Prints requests per second and latency percentiles per path, the page ÷ asset ratio
//! (target ≥ 0.25) and the wasm bundle raw and gzip-compressed as served (targets: every page
//! < 350 KB gzip, the market and pool pages < 300 KB).

use chrono::Utc;
use server::embedded_pg::EmbeddedPg;
use server::http::{router, AppState};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CONNECTIONS: usize = 64;

struct Load {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
}

async fn load(client: &reqwest::Client, url: &str, seconds: u64) -> Load {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Mutex::new(0usize));
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (client, url, latencies, errors) = (
            client.clone(),
            url.to_string(),
            latencies.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                match client.get(&url).send().await {
                    Ok(res) if res.status().is_success() => {
                        let _ = res.bytes().await;
                        mine.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                    _ => *errors.lock().unwrap() += 1,
                }
            }
            latencies.lock().unwrap().extend(mine);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut l = latencies.lock().unwrap().clone();
    l.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    let errors = *errors.lock().unwrap();
    Load {
        rps: l.len() as f64 / seconds as f64,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        errors,
    }
}

fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let site = root.join("target/site");
    let wasm = site.join("pkg/rigshift.wasm");
    if !wasm.exists() {
        eprintln!(
            "no release bundle at {}; run `cargo leptos build --release` first",
            wasm.display()
        );
        std::process::exit(2);
    }
    // The same layout cargo-leptos gives the server it starts.
    std::env::set_var("LEPTOS_SITE_ROOT", &site);
    std::env::set_var("LEPTOS_OUTPUT_NAME", "rigshift");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut pg = EmbeddedPg::start(&root.join(".data/bench-pages"))
        .expect("start the benchmark's private PostgreSQL");
    let admin = pg.url("postgres");
    let url = pg.url("rigshift_pages");
    println!(
        "Rigshift pages benchmark, {} ({CONNECTIONS} connections, {seconds} s per path)",
        Utc::now().format("%Y-%m-%d %H:%M UTC")
    );
    rt.block_on(async {
        server::db::ensure_database(&admin, "rigshift_pages")
            .await
            .unwrap();
        let db = server::db::connect(&url, 32).await.unwrap();
        server::db::migrate(&db).await.unwrap();
        let _ = server::seed::seed_if_empty(&db).await.unwrap();

        let config = server::config::Config::from_lookup(|_| None).unwrap();
        let options = server::startup::leptos_options(&config).unwrap();
        let lease = app::services::lease::Lease::take(&db).await.unwrap();
        tokio::spawn(lease.keep(db.clone()));
        let app = router(AppState {
            leptos_options: options,
            db: db.clone(),
            security: Default::default(),
            platform_fee: Default::default(),
            ops: Default::default(),
            public_url: app::services::mail::PublicUrl("http://127.0.0.1".into()),
            mail_outbox: false,
            lease,
            replica: None,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap()
        });
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(CONNECTIONS)
            .build()
            .unwrap();
        let base = format!("http://{addr}");
        // Warm up both paths (first render, file cache).
        for path in ["/", "/favicon.svg"] {
            client
                .get(format!("{base}{path}"))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
        }
        let asset = load(&client, &format!("{base}/favicon.svg"), seconds).await;
        let page = load(&client, &format!("{base}/"), seconds).await;
        for (name, l) in [
            ("static asset /favicon.svg", &asset),
            ("market page /", &page),
        ] {
            println!(
                "{name:<28} {:>8.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   errors {}",
                l.rps, l.p50_ms, l.p99_ms, l.errors
            );
        }
        let ratio = page.rps / asset.rps;
        println!(
            "page ÷ asset throughput     {ratio:>8.2}   (target at least 0.25: {})",
            if ratio >= 0.25 { "met" } else { "NOT met" }
        );
        // As served: the compression layer gzips every file for clients that accept gzip.
        // Pages are server-rendered with islands: every page loads this one module, which
        // holds every island.
        let res = client
            .get(format!("{base}/pkg/rigshift.wasm"))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "rigshift.wasm: {}", res.status());
        let kb = |b: u64| b as f64 / 1024.0;
        let main_raw = std::fs::metadata(&wasm).unwrap().len();
        let main_gz = res.bytes().await.unwrap().len() as u64;
        println!(
            "wasm main module            {:>8.0} KB raw, {:.0} KB gzip",
            kb(main_raw),
            kb(main_gz)
        );
        println!(
            "  first load of {:<14} {:>8.0} KB raw, {:.0} KB gzip (0 chunks: the islands' module)",
            "every_page",
            kb(main_raw),
            kb(main_gz)
        );
        println!(
            "largest first load          {:>8.0} KB gzip (target under 350 KB gzip: {})",
            kb(main_gz),
            if kb(main_gz) < 350.0 {
                "met"
            } else {
                "NOT met"
            }
        );
        db.close().await;
    });
    pg.stop().unwrap();
}
