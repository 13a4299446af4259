//! Losing a server or finding the wrong database: a keyed reservation whose server process
//! died inside the database is answered for certain by another process within seconds (its
//! lease lapsed), whether the first attempt committed or not; other keyed requests cut off
//! that way are reported at once instead of after minutes; and the server refuses to start
//! on a read-only replica.

use crate::fixtures::{customer_key, json_of, key, market, req};
use crate::helpers::{database_url, free_port, Gate, TestApp};
use app::services::lease::LEASE_SECONDS;
use reqwest::Method;
use sqlx::PgPool;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process over the test's database.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    async fn start(db: &PgPool) -> Self {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_server"))
            .arg("serve")
            .env("DATABASE_URL", database_url(db))
            .env("RIGSHIFT_LISTEN", format!("127.0.0.1:{port}"))
            .env("RIGSHIFT_SEED", "never")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start the server binary");
        let mut server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("the server exited early with {status}");
            }
            if let Ok(res) = reqwest::get(server.url("/readyz")).await {
                if res.status() == 200 {
                    return server;
                }
            }
            assert!(Instant::now() < deadline, "the server never became ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Posts the booking `body` with `key` to `server` until the answer is no longer "still
/// running" (409 with Retry-After), as a client following Retry-After does.
async fn retry_until_definite(
    server: &Server,
    api_key: &str,
    idempotency_key: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, answer) = json_of(
            client
                .post(server.url("/api/v1/reservations"))
                .bearer_auth(api_key)
                .header("idempotency-key", idempotency_key)
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        if answer["code"] != "idempotency-key-in-use" {
            return (status, answer);
        }
        assert!(Instant::now() < deadline, "still in use after a minute");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn reservations_with_key(db: &PgPool, key: &str) -> Vec<i64> {
    sqlx::query_scalar("select id from reservation where request_key = $1")
        .bind(key)
        .fetch_all(db)
        .await
        .unwrap()
}

/// Ends a backend and waits until it is gone.
async fn terminate(db: &PgPool, backend: i32) {
    sqlx::query("select pg_terminate_backend($1, 5000)")
        .bind(backend)
        .execute(db)
        .await
        .unwrap();
}

async fn key_state(db: &PgPool, key: &str) -> String {
    sqlx::query_scalar("select state from idempotency_key where key = $1")
        .bind(key)
        .fetch_one(db)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_keyed_reservation_cut_off_by_its_servers_death_is_answered_for_certain_by_another(
    db: PgPool,
) {
    let m = market(&db, 4).await;
    let api_key = customer_key(&db, m.customer).await;
    let b = Server::start(&db).await;
    let book_on = |server: &Server, key: &str, body: &serde_json::Value| {
        reqwest::Client::new()
            .post(server.url("/api/v1/reservations"))
            .bearer_auth(&api_key)
            .header("idempotency-key", key)
            .json(body)
            .send()
    };

    // Its reservation committed, then its process died before the answer was kept.
    let mut a = Server::start(&db).await;
    let a_lease: i64 = sqlx::query_scalar("select id from server_lease where pid = $1")
        .bind(a.child.id() as i32)
        .fetch_one(&db)
        .await
        .unwrap();
    let gate = Gate::close(
        &db,
        "hold_the_answer",
        "update",
        "idempotency_key",
        &format!("old.lease_id = {a_lease} and new.state = 'done'"),
    )
    .await;
    let body = serde_json::to_value(req(&m, 8, 2, 4)).unwrap();
    let first = tokio::spawn(book_on(&a, "committed", &body));
    let backend = Gate::waiting(&db).await;
    let committed = reservations_with_key(&db, "committed").await;
    assert_eq!(committed.len(), 1, "the reservation is in the database");
    a.kill();
    let killed = Instant::now();
    assert!(first.await.unwrap().is_err(), "its client loses the answer");
    // Its connection dies with it (PostgreSQL would notice when it next read from it).
    terminate(&db, backend).await;
    assert_eq!(key_state(&db, "committed").await, "running");

    let (status, answer) = retry_until_definite(&b, &api_key, "committed", &body).await;
    let took = killed.elapsed();
    eprintln!("committed before the kill: definite answer {took:?} after it");
    assert_eq!(status, 201, "{answer}");
    assert_eq!(
        answer["id"], committed[0],
        "the reservation the first attempt made"
    );
    assert!(
        took < Duration::from_secs(LEASE_SECONDS as u64 + 5),
        "definite after {took:?}"
    );
    assert_eq!(reservations_with_key(&db, "committed").await, committed);
    let (again, replay) = retry_until_definite(&b, &api_key, "committed", &body).await;
    assert_eq!(
        (again, &replay["id"]),
        (201, &answer["id"]),
        "kept for replay"
    );
    gate.open().await;

    // Its booking statement was inside the database when its process (and with it the
    // connection) died: nothing committed, and the retry books once.
    let mut a = Server::start(&db).await;
    let gate = Gate::close(
        &db,
        "hold_the_booking",
        "insert",
        "reservation",
        "new.request_key = 'lost'",
    )
    .await;
    let body = serde_json::to_value(req(&m, 8, 12, 4)).unwrap();
    let first = tokio::spawn(book_on(&a, "lost", &body));
    let backend = Gate::waiting(&db).await;
    a.kill();
    let killed = Instant::now();
    assert!(first.await.unwrap().is_err(), "its client loses the answer");
    terminate(&db, backend).await;
    gate.open().await;
    assert!(reservations_with_key(&db, "lost").await.is_empty());

    let (status, answer) = retry_until_definite(&b, &api_key, "lost", &body).await;
    let took = killed.elapsed();
    eprintln!("never committed: definite answer {took:?} after the kill");
    assert_eq!(status, 201, "{answer}");
    assert!(
        took < Duration::from_secs(LEASE_SECONDS as u64 + 5),
        "definite after {took:?}"
    );
    let made = reservations_with_key(&db, "lost").await;
    assert_eq!(made.len(), 1, "booked once");
    assert_eq!(answer["id"], made[0]);
    crate::fixtures::assert_books_reconcile(&db, chrono::Utc::now()).await;
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn a_keyed_request_whose_process_stopped_is_reported_cut_off_within_seconds(db: PgPool) {
    server::seed::seed(&db).await.unwrap();
    let app = TestApp::spawn(db.clone()).await;
    let operator = key(&app, "ops@lonestarhash.example", &["read", "operate"]).await;
    let site = serde_json::to_value(crate::isolation::site_input()).unwrap();
    let post = || {
        app.api(Method::POST, "/sites", &operator)
            .header("idempotency-key", "site-cut")
            .json(&site)
            .send()
    };
    assert_eq!(post().await.unwrap().status(), 201);
    let retried = || async {
        let (status, problem) = json_of(post().await.unwrap()).await;
        (
            status,
            problem["code"].as_str().unwrap_or_default().to_string(),
        )
    };
    // As if a process were still running it: its lease is fresh, so the retry waits.
    let other: i64 = sqlx::query_scalar(
        "insert into server_lease (host, pid) values ('elsewhere', 4242) returning id",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    sqlx::query(
        "update idempotency_key set state = 'running', status = null, body = null, lease_id = $1
         where key = 'site-cut'",
    )
    .bind(other)
    .execute(&db)
    .await
    .unwrap();
    assert_eq!(retried().await, (409, "idempotency-key-in-use".into()));
    // Its process stopped renewing: a site may not be made twice, so the retry is told the
    // first was cut off, at once rather than after minutes.
    sqlx::query(
        "update server_lease set renewed_at = now() - make_interval(secs => $1) where id = $2",
    )
    .bind(f64::from(LEASE_SECONDS + 1))
    .bind(other)
    .execute(&db)
    .await
    .unwrap();
    assert_eq!(retried().await, (409, "idempotency-outcome-unknown".into()));
    // A lease that is gone altogether reads the same.
    sqlx::query("delete from server_lease where id = $1")
        .bind(other)
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(retried().await, (409, "idempotency-outcome-unknown".into()));
    let sites: i64 = sqlx::query_scalar("select count(*) from site where name = $1")
        .bind(site["name"].as_str().unwrap())
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(sites, 1, "never made twice");
}

#[tokio::test]
async fn the_server_refuses_a_read_only_replica_as_its_primary() {
    use server::embedded_pg::EmbeddedPg;
    let root = std::env::temp_dir().join(format!("rigshift-replica-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let root = root.canonicalize().unwrap();
    // A cluster restarted in standby mode is a replica: in recovery, read-only.
    let mut pg = EmbeddedPg::start(&root).unwrap();
    pg.stop().unwrap();
    std::fs::write(root.join("pg").join("standby.signal"), "").unwrap();
    let mut pg = EmbeddedPg::start(&root).unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_server"))
        .arg("serve")
        .env("DATABASE_URL", pg.url("postgres"))
        .env("RIGSHIFT_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("RIGSHIFT_SEED", "never")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    pg.stop().unwrap();
    let _ = std::fs::remove_dir_all(&root);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it must not start: {stderr}");
    assert!(
        stderr.contains("read-only replica") && stderr.contains("primary"),
        "a clear message: {stderr}"
    );
}

#[sqlx::test(migrator = "server::db::MIGRATOR")]
async fn anonymous_market_reads_use_a_fresh_replica_and_everyone_else_the_primary(db: PgPool) {
    use app::services::replica::ReadReplica;
    use sqlx::postgres::PgPoolOptions;
    server::seed::seed(&db).await.unwrap();
    // The replica here is a database of its own, migrated and empty, so which one answered
    // shows in the counts; its staleness is read from its lease renewals, which the test sets.
    // Named after the test's database (identifiers stop at 63 characters, hence the tail).
    let test_db = db.connect_options().get_database().unwrap().to_lowercase();
    let name = format!("reads_{}", &test_db[test_db.len().saturating_sub(24)..]);
    let admin = |sql: String| {
        let db = db.clone();
        async move {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&db)
                .await
                .unwrap()
        }
    };
    admin(format!("drop database if exists {name} with (force)")).await;
    admin(format!("create database {name}")).await;
    // The same server and credentials as the test's pool, another database: built from the
    // pool's options, since a URL may name its host in the query (a socket directory).
    let reads = PgPoolOptions::new()
        .max_connections(4)
        .connect_with((*db.connect_options()).clone().database(&name))
        .await
        .unwrap();
    server::db::MIGRATOR.run(&reads).await.unwrap();
    sqlx::query("insert into server_lease (host, pid, renewed_at) values ('primary', 1, now())")
        .execute(&reads)
        .await
        .unwrap();
    let app = TestApp::spawn_with_replica(db.clone(), ReadReplica::new(reads.clone(), 5)).await;
    let sites = |cookie: Option<String>| {
        let app = &app;
        async move {
            let res = app.call("live_count", cookie.as_deref(), &[]).await;
            assert_eq!(res.status(), 200);
            res.json::<serde_json::Value>().await.unwrap()["sites"]
                .as_i64()
                .unwrap()
        }
    };
    let until = |want: i64, cookie: Option<String>| async move {
        for _ in 0..60 {
            if sites(cookie.clone()).await == want {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    // Fresh: a visitor reads the replica (no sites there), a signed-in person the primary.
    assert!(until(0, None).await, "a visitor reads the fresh replica");
    let cookie = app
        .log_in("ml@helixlabs.example", server::seed::DEMO_PASSWORD)
        .await;
    assert_eq!(
        sites(Some(cookie.clone())).await,
        10,
        "signed in: the primary"
    );
    // Ten seconds behind (past the bound of five): the visitor reads the primary.
    sqlx::query("update server_lease set renewed_at = now() - interval '10 seconds'")
        .execute(&reads)
        .await
        .unwrap();
    assert!(until(10, None).await, "a stale replica is not read");
    // Caught up again: back to the replica.
    sqlx::query("update server_lease set renewed_at = now()")
        .execute(&reads)
        .await
        .unwrap();
    assert!(until(0, None).await, "a replica caught up is read again");
    reads.close().await;
    admin(format!("drop database {name} with (force)")).await;
}
