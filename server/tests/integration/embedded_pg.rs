//! The private PostgreSQL: started by the server when DATABASE_URL is unset, seeded on
//! first run, stopped on SIGTERM with nothing left running, and its data kept.

use crate::helpers::free_port;
use sqlx::Connection;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn start_server(data_dir: &Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_server"))
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env("RIGSHIFT_DATA_DIR", data_dir)
        .env("RIGSHIFT_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start the server binary")
}

async fn wait_healthy(port: u16, server: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = server.try_wait().unwrap() {
            panic!("the server exited early with {status}");
        }
        if let Ok(res) = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await {
            if res.status() == 200 {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the server did not become healthy in time"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn sigterm_and_wait(server: &mut Child) -> std::process::ExitStatus {
    let ok = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = server.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether any postgres process has `data_dir` on its command line.
fn postgres_running_for(data_dir: &Path) -> bool {
    let needle = data_dir.join("pg").display().to_string();
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .map(|raw| {
                let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
                cmd.contains("postgres") && cmd.contains(&needle)
            })
            .unwrap_or(false)
    })
}

async fn count_orgs(data_dir: &Path) -> i64 {
    let url = format!(
        "postgres://rigshift@localhost/rigshift?host={}",
        data_dir.join("sock").display()
    );
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let n = sqlx::query_scalar("select count(*) from organization")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    n
}

#[tokio::test]
async fn private_database_starts_seeds_stops_on_sigterm_and_keeps_its_data() {
    let data_dir = std::env::temp_dir().join(format!("rigshift-it-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    std::fs::create_dir_all(&data_dir).unwrap();
    let data_dir = data_dir.canonicalize().unwrap();

    // First run: initialises the cluster, migrates, seeds the demo market.
    let port = free_port();
    let mut server = start_server(&data_dir, port);
    wait_healthy(port, &mut server).await;
    assert!(postgres_running_for(&data_dir));
    let seeded = count_orgs(&data_dir).await;
    assert_eq!(seeded, 9);
    let mut conn = sqlx::PgConnection::connect(&format!(
        "postgres://rigshift@localhost/rigshift?host={}",
        data_dir.join("sock").display()
    ))
    .await
    .unwrap();
    sqlx::query("insert into organization (name, kind) values ('Survives Restarts', 'customer')")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    let status = sigterm_and_wait(&mut server);
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    assert!(
        !postgres_running_for(&data_dir),
        "SIGTERM must leave no PostgreSQL behind"
    );
    assert!(!data_dir.join("pg/postmaster.pid").exists());

    // Second run: same data, no second seeding.
    let port = free_port();
    let mut server = start_server(&data_dir, port);
    wait_healthy(port, &mut server).await;
    assert_eq!(count_orgs(&data_dir).await, seeded + 1);
    assert!(sigterm_and_wait(&mut server).success());
    assert!(!postgres_running_for(&data_dir));

    std::fs::remove_dir_all(&data_dir).unwrap();
}
