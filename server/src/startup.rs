//! Start-up and shutdown: database (private or given), migrations, demo data, serving.

use crate::config::{Config, SeedMode};
use crate::embedded_pg::{EmbeddedPg, EmbeddedPgError};
use crate::mailer::Mailer;
use crate::ops::Operations;
use crate::{db, delivery, http, seed};
use app::services::lease::Lease;
use app::services::mail::PublicUrl;
use app::services::replica::ReadReplica;
use leptos::prelude::LeptosOptions;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    EmbeddedPg(#[from] EmbeddedPgError),
    #[error("could not reach PostgreSQL at the configured DATABASE_URL: {0}")]
    Connect(sqlx::Error),
    #[error(transparent)]
    Primary(crate::db::ConnectError),
    #[error("could not apply database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("could not load the demo market: {0}")]
    Seed(#[from] seed::SeedError),
    #[error("could not read the Leptos configuration: {0}")]
    Leptos(String),
    #[error("could not listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("the server stopped with an error: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Mail(#[from] crate::mailer::MailerError),
}

/// An open, migrated database, plus the private cluster behind it when we started one.
/// Dropping it stops that cluster.
pub struct Database {
    pub pool: PgPool,
    embedded: Option<EmbeddedPg>,
}

impl Database {
    /// For one-shot commands next to a running server: a private cluster that was already
    /// running is left running when this handle closes.
    pub fn leave_running_cluster(&mut self) {
        if let Some(pg) = self.embedded.as_mut().filter(|pg| pg.adopted()) {
            pg.detach();
            self.embedded = None;
        }
    }

    /// Closes the pool, then stops the private cluster (if any) and waits for it.
    pub async fn close(mut self) {
        self.pool.close().await;
        if let Some(mut pg) = self.embedded.take() {
            match tokio::task::spawn_blocking(move || pg.stop()).await {
                Ok(Ok(())) => tracing::info!("private PostgreSQL stopped"),
                Ok(Err(e)) => tracing::error!(error = %e, "could not stop the private PostgreSQL"),
                Err(e) => tracing::error!(error = %e, "stopping the private PostgreSQL panicked"),
            }
        }
    }
}

/// Opens the configured database (starting the private cluster when `DATABASE_URL` is
/// unset) and applies migrations.
pub async fn open_database(config: &Config) -> Result<Database, StartupError> {
    let (url, embedded) = match &config.database_url {
        Some(url) => (url.clone(), None),
        None => {
            let dir = config.data_dir.clone();
            let pg = tokio::task::spawn_blocking(move || EmbeddedPg::start(&dir))
                .await
                .expect("starting the private PostgreSQL panicked")?;
            db::ensure_database(&pg.url("postgres"), &config.db_name)
                .await
                .map_err(StartupError::Connect)?;
            tracing::info!(data_dir = %config.data_dir.display(), "private PostgreSQL running");
            (pg.url(&config.db_name), Some(pg))
        }
    };
    let pool = db::connect(&url, config.db_max_connections)
        .await
        .map_err(|e| match e {
            db::ConnectError::Sql(e) => StartupError::Connect(e),
            refused => StartupError::Primary(refused),
        })?;
    db::migrate(&pool).await?;
    Ok(Database { pool, embedded })
}

/// The Leptos options for this process: cargo-leptos' environment, with the output name
/// fixed so a server built without cargo-leptos still links the right bundle.
pub fn leptos_options(config: &Config) -> Result<LeptosOptions, StartupError> {
    let conf = leptos::prelude::get_configuration(None)
        .map_err(|e| StartupError::Leptos(e.to_string()))?;
    let mut options = conf.leptos_options;
    if options.output_name.is_empty() {
        options.output_name = Arc::from("rigshift");
    }
    options.site_addr = config.listen;
    Ok(options)
}

/// Runs the marketplace until SIGINT or SIGTERM, then shuts down in order: stop accepting,
/// finish in-flight requests, close the pool, stop the private PostgreSQL.
pub async fn serve(config: Config) -> Result<(), StartupError> {
    let database = open_database(&config).await?;
    let result = serve_with(&config, &database.pool).await;
    database.close().await;
    result
}

async fn serve_with(config: &Config, pool: &PgPool) -> Result<(), StartupError> {
    if config.seed == SeedMode::IfEmpty {
        match seed::seed_if_empty(pool).await? {
            seed::SeedOutcome::Seeded(c) => tracing::info!(
                sites = c.sites,
                pools = c.pools,
                reservations = c.reservations,
                "loaded the demo market (accounts in the README; password {})",
                seed::DEMO_PASSWORD
            ),
            seed::SeedOutcome::AlreadyPopulated => {}
        }
    }
    let options = leptos_options(config)?;
    let security = crate::state::Security::from_config(config);
    let ops = Operations::new(config.metrics_token.clone());
    tokio::spawn(purge_expired(
        pool.clone(),
        security.cookies.session,
        ops.clone(),
    ));
    let public_url = PublicUrl(config.public_url.clone());
    tokio::spawn(
        delivery::Worker::new(pool.clone(), security.allow_private_webhooks)
            .with_public_url(public_url.clone())
            .run(ops.clone()),
    );
    tokio::spawn(recognize_completed(pool.clone(), ops.clone()));
    tokio::spawn(release_expired_holds(pool.clone(), ops.clone()));
    tokio::spawn(fill_standing_orders(
        pool.clone(),
        config.platform_fee_bp,
        ops.clone(),
    ));
    tokio::spawn(incident_rounds(pool.clone(), ops.clone()));
    tokio::spawn(refresh_reliability(pool.clone(), ops.clone()));
    tokio::spawn(refresh_occupancy(pool.clone(), ops.clone()));
    tokio::spawn(forward_credits(pool.clone(), ops.clone()));
    let mailer = Mailer::new(pool.clone(), config.smtp_url.as_deref(), &config.mail_from)?;
    tokio::spawn(mailer.run(ops.clone()));
    let lease = Lease::take(pool).await.map_err(StartupError::Connect)?;
    let renewing = tokio::spawn(lease.keep(db::own_connection(pool)));
    let replica = match &config.read_database_url {
        Some(url) => {
            let reads = db::connect_replica(url, config.db_max_connections)
                .map_err(StartupError::Connect)?;
            let replica = ReadReplica::new(reads, config.read_max_lag_secs);
            tokio::spawn(replica.clone().watch());
            tracing::info!(
                max_lag_secs = config.read_max_lag_secs,
                "anonymous market reads use the replica while it is fresh"
            );
            Some(replica)
        }
        None => None,
    };
    let router = http::router(crate::state::AppState {
        leptos_options: options,
        db: pool.clone(),
        security,
        platform_fee: app::pricing::PlatformFee(config.platform_fee_bp),
        ops: ops.clone(),
        public_url,
        // The outbox holds reset links: shown only without SMTP and only on a server that
        // listens on this machine alone.
        mail_outbox: config.smtp_url.is_none() && config.listen.ip().is_loopback(),
        lease,
        replica,
    });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartupError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(StartupError::Serve)?;
    tracing::info!("Rigshift is serving on http://{addr}");
    println!("Rigshift is serving on http://{addr}  (Ctrl-C to stop)");
    // The peer address feeds login throttling per client.
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(drain(ops, Duration::from_secs(config.shutdown_grace_secs)))
    .await
    .map_err(StartupError::Serve)?;
    tracing::info!("stopped accepting requests; shutting down");
    // In-flight requests have finished: a keyed one that could not record its answer is at
    // once known to be cut off, rather than when the lease would lapse.
    renewing.abort();
    if let Err(e) = lease.end(pool).await {
        tracing::warn!(error = %e, "could not drop this process's lease; it lapses by itself");
    }
    Ok(())
}

/// Resolves when the server should stop accepting connections: on SIGINT or SIGTERM,
/// `/readyz` turns 503 at once, and the server goes on serving for `grace`, so a load
/// balancer sees it unready and sends new requests elsewhere before connections close.
async fn drain(ops: Arc<Operations>, grace: Duration) {
    shutdown_signal().await;
    ops.start_draining();
    tracing::info!(
        grace_secs = grace.as_secs(),
        "shutting down: unready, draining"
    );
    tokio::time::sleep(grace).await;
}

/// Every ten minutes, deletes sessions past their expiry, login-failure counts long over,
/// idempotency keys past their retention and leases of processes stopped a day ago. Expired rows are already ignored when read; this
/// only keeps the tables small. Any process may run it: the deletes are idempotent.
async fn purge_expired(
    db: PgPool,
    policy: app::services::sessions::SessionPolicy,
    ops: Arc<Operations>,
) {
    use app::services::{error::ServiceError, idempotency, lease, sessions, throttle};
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        tick.tick().await;
        let now = chrono::Utc::now();
        match (
            sessions::purge(&db, policy, now).await,
            throttle::purge(&db, now).await,
            idempotency::purge(&db).await.map_err(ServiceError::from),
        ) {
            (Ok(s), Ok(t), Ok(k)) => {
                if let Err(e) = lease::purge(&db).await {
                    tracing::warn!(error = %e, "purging old process leases failed");
                }
                ops.job_round("purge_expired");
                if s + t + k > 0 {
                    tracing::info!(
                        sessions = s,
                        throttle_rows = t,
                        idempotency_keys = k,
                        "purged expired rows"
                    )
                }
            }
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                tracing::warn!(error = %e, "purging expired rows failed")
            }
        }
    }
}

/// Every minute (and at start, which catches up whatever ended while no server ran), posts
/// the completion of reservations that ended: the operator's share and the platform's fee
/// are earned. Every process runs it; the database makes two runs at once post once.
async fn recognize_completed(db: PgPool, ops: Arc<Operations>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        let done = app::services::ledger::recognize_completed(&db, chrono::Utc::now()).await;
        if done.is_ok() {
            ops.job_round("ledger_recognition");
        }
        match done {
            Ok(0) => {}
            Ok(n) => tracing::info!(reservations = n, "recognised completed reservations"),
            Err(e) => tracing::warn!(error = %e, "recognising completed reservations failed"),
        }
    }
}

/// Every few seconds, releases holds past their time so their units go back on sale. Every
/// process runs it; the database releases each hold once (and never one being confirmed).
async fn release_expired_holds(db: PgPool, ops: Arc<Operations>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tick.tick().await;
        match app::services::reservations::release_expired_holds(&db).await {
            Ok(n) => {
                ops.job_round("hold_release");
                if n > 0 {
                    tracing::info!(holds = n, "released expired holds");
                }
            }
            Err(e) => tracing::warn!(error = %e, "releasing expired holds failed"),
        }
    }
}

/// Every few seconds, tries the open standing orders against the market as it is now. Every
/// process runs it; one round runs at a time (the database's advisory lock), and each order
/// is booked at most once.
async fn fill_standing_orders(db: PgPool, fee_bp: i64, ops: Arc<Operations>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tick.tick().await;
        match app::services::orders::fill_round(&db, fee_bp, chrono::Utc::now()).await {
            Ok(round) => {
                ops.job_round("standing_orders");
                if round.filled + round.expired > 0 {
                    tracing::info!(
                        filled = round.filled,
                        expired = round.expired,
                        "standing orders"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "filling standing orders failed"),
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Every few seconds: incidents past their given end are resolved, open-ended ones follow
/// their pool's sale windows, and unanswered offers expire. Every process runs it; each
/// incident is handled under its row lock, once.
async fn incident_rounds(db: PgPool, ops: Arc<Operations>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tick.tick().await;
        match app::services::incidents::tick(&db, chrono::Utc::now()).await {
            Ok(t) => {
                ops.job_round("incidents");
                if t.ended + t.extended + t.offers_expired > 0 {
                    tracing::info!(
                        ended = t.ended,
                        extended = t.extended,
                        offers_expired = t.offers_expired,
                        "incident round"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "the incident round failed"),
        }
    }
}

/// Every minute, the late-delivery credits forward reservations are owed (each day once,
/// whichever process posts it).
async fn forward_credits(db: PgPool, ops: Arc<Operations>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        match app::services::forward::post_late_credits(&db, chrono::Utc::now()).await {
            Ok(n) => {
                ops.job_round("forward_credits");
                if n > 0 {
                    tracing::info!(posted = n, "late-delivery credits");
                }
            }
            Err(e) => tracing::warn!(error = %e, "posting late-delivery credits failed"),
        }
    }
}

/// Every second, the sold-out summary search reads folds in the allocations changed since
/// the last round (a large backlog over several rounds; search is exact before the summary
/// catches up, only slower). Every process runs it; the database runs one round at a time.
async fn refresh_occupancy(db: PgPool, ops: Arc<Operations>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tick.tick().await;
        match app::services::search::refresh_occupancy(&db).await {
            Ok(_) => ops.job_round("occupancy"),
            Err(e) => tracing::warn!(error = %e, "refreshing the sold-out summary failed"),
        }
    }
}

/// Every minute, each pool's reliability score over the last 90 days, which search reads.
async fn refresh_reliability(db: PgPool, ops: Arc<Operations>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        match app::services::incidents::refresh_reliability(&db).await {
            Ok(_) => ops.job_round("reliability"),
            Err(e) => tracing::warn!(error = %e, "refreshing reliability scores failed"),
        }
    }
}
