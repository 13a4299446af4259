//! `server`: run the marketplace, or one of the operations commands.

use server::config::Config;
use server::embedded_pg::EmbeddedPg;
use server::{seed, startup, telemetry};
use std::process::ExitCode;

const USAGE: &str = "\
Rigshift marketplace server

USAGE:
    server [COMMAND]

COMMANDS:
    serve      Run the marketplace (default). Starts a private PostgreSQL unless
               DATABASE_URL is set, migrates, loads the demo market into an empty
               database, and serves on RIGSHIFT_LISTEN (default 127.0.0.1:3000).
    migrate    Apply database migrations and exit.
    seed       Load the demo market into an empty database and exit.
    pg-start   Start the private PostgreSQL in RIGSHIFT_DATA_DIR, print its admin URL
               and leave it running (used by the test command).
    pg-stop    Stop the private PostgreSQL in RIGSHIFT_DATA_DIR.
    reconcile  Recompute every reservation's postings from the reservations and compare
               them with the ledger; exit 1 on any difference.
{ADMIN}
    help       Print this help.

Administration commands use the same database as `serve` (DATABASE_URL, or the
private PostgreSQL, which must be running: start it with `pg-start`).

Configuration comes from environment variables; see the README.";

#[tokio::main]
async fn main() -> ExitCode {
    let command = std::env::args().nth(1).unwrap_or_else(|| "serve".into());
    if matches!(command.as_str(), "help" | "--help" | "-h") {
        println!("{}", USAGE.replace("{ADMIN}", server::admin_cli::USAGE));
        return ExitCode::SUCCESS;
    }
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rigshift: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config.log_format);

    let result: Result<(), String> = match command.as_str() {
        "serve" => startup::serve(config).await.map_err(|e| e.to_string()),
        "migrate" => match startup::open_database(&config).await {
            Ok(db) => {
                println!("migrations applied");
                db.close().await;
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        },
        "seed" => match startup::open_database(&config).await {
            Ok(db) => {
                let r = seed::seed(&db.pool).await;
                db.close().await;
                r.map(|c| {
                    println!(
                        "loaded the demo market: {} organizations, {} users, {} sites, {} pools, {} reservations, {} blackouts",
                        c.organizations, c.users, c.sites, c.pools, c.reservations, c.blackouts
                    );
                    for (org, kind, email) in seed::demo_accounts() {
                        println!("  {email:<32} {org} ({kind})");
                    }
                    println!("  password for every demo account: {}", seed::DEMO_PASSWORD);
                })
                .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        },
        "pg-start" => {
            let dir = config.data_dir.clone();
            tokio::task::spawn_blocking(move || EmbeddedPg::start(&dir))
                .await
                .expect("pg-start panicked")
                .map(|mut pg| {
                    println!("{}", pg.url("postgres"));
                    pg.detach();
                })
                .map_err(|e| e.to_string())
        }
        "pg-stop" => {
            let dir = config.data_dir.clone();
            tokio::task::spawn_blocking(move || EmbeddedPg::stop_existing(&dir))
                .await
                .expect("pg-stop panicked")
                .map_err(|e| e.to_string())
        }
        "reconcile" => match startup::open_database(&config).await {
            Ok(mut db) => {
                db.leave_running_cluster();
                let r = server::admin_cli::reconcile(&db.pool).await;
                db.close().await;
                r
            }
            Err(e) => Err(e.to_string()),
        },
        "create-org" | "create-user" | "create-key" => {
            match startup::open_database(&config).await {
                Ok(mut db) => {
                    db.leave_running_cluster();
                    let args: Vec<String> = std::env::args().skip(2).collect();
                    let r = server::admin_cli::run(&db.pool, &command, &args).await;
                    db.close().await;
                    r
                }
                Err(e) => Err(e.to_string()),
            }
        }
        other => Err(format!(
            "unknown command `{other}`\n\n{}",
            USAGE.replace("{ADMIN}", server::admin_cli::USAGE)
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rigshift: {e}");
            ExitCode::FAILURE
        }
    }
}
