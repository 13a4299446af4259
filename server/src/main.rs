//! `server`: run the marketplace, or one of the operations commands (`server --help`).

use clap::Parser;
use server::cli::{AdminCommand, Cli, Command};
use server::embedded_pg::EmbeddedPg;
use server::{admin_cli, seed, startup, telemetry};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match cli.settings.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rigshift: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config.log_format);

    let command = cli.command.unwrap_or(Command::Serve);
    let result: Result<(), String> = match command {
        Command::Serve => startup::serve(config).await.map_err(|e| e.to_string()),
        Command::Migrate => match startup::open_database(&config).await {
            Ok(db) => {
                println!("migrations applied");
                db.close().await;
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        },
        Command::Seed => match startup::open_database(&config).await {
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
        Command::PgStart => {
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
        Command::PgStop => {
            let dir = config.data_dir.clone();
            tokio::task::spawn_blocking(move || EmbeddedPg::stop_existing(&dir))
                .await
                .expect("pg-stop panicked")
                .map_err(|e| e.to_string())
        }
        Command::Admin(admin) => match startup::open_database(&config).await {
            Ok(mut db) => {
                // An administration command leaves a private cluster it found running.
                db.leave_running_cluster();
                let r = match &admin {
                    AdminCommand::Reconcile => admin_cli::reconcile(&db.pool).await,
                    AdminCommand::CreateOrg(a) => admin_cli::create_org(&db.pool, a).await,
                    AdminCommand::CreateUser(a) => admin_cli::create_user(&db.pool, a).await,
                    AdminCommand::CreateKey(a) => {
                        let url = app::services::mail::PublicUrl(config.public_url.clone());
                        admin_cli::create_key(&db.pool, a, &url).await
                    }
                };
                db.close().await;
                r
            }
            Err(e) => Err(e.to_string()),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rigshift: {e}");
            ExitCode::FAILURE
        }
    }
}
