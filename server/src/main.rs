//! `server`: run the marketplace, or one of the operations commands (`server --help`).

use clap::Parser;
use server::cli::{AdminCommand, Cli, Command};
use server::embedded_pg::EmbeddedPg;
use server::{admin_cli, seed, startup, telemetry};
use std::process::ExitCode;

fn main() -> ExitCode {
    memory::return_large_blocks();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the async runtime starts")
        .block_on(run())
}

async fn run() -> ExitCode {
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

/// How the process gives memory back to the system.
mod memory {
    /// Serves every allocation of 1 MiB or more from its own mapping, returned to the
    /// system when freed.
    ///
    /// glibc raises its mmap threshold each time such a block is freed (up to 32 MiB), after
    /// which blocks of that size come from the heap arena of the thread that asked, and an
    /// arena keeps what it once used. A password hash (argon2 at 19 MiB) runs on a blocking
    /// thread, each of those threads has an arena of its own, so every thread that ever
    /// hashed kept about 19 MiB: 182 MiB resident at start-up with the demo market, against
    /// 33 MiB with this setting, and most of the peak under the load harness. A fixed
    /// threshold stops the raising.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    pub fn return_large_blocks() {
        // SAFETY: mallopt only sets a glibc tuning parameter; it is called before any
        // other thread exists and takes no pointers.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        }
    }

    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    pub fn return_large_blocks() {}
}
