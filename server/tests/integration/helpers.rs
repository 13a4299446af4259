use server::http::{router, AppState};
use sqlx::PgPool;
use std::net::SocketAddr;

/// A server running in this test process on a free port, over `db`.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    /// The server's readiness and metrics, to drive as a shutdown would.
    pub ops: std::sync::Arc<server::ops::Operations>,
}

impl TestApp {
    pub async fn spawn(db: PgPool) -> Self {
        Self::spawn_with(db, Default::default()).await
    }

    pub async fn spawn_with(db: PgPool, security: server::http::Security) -> Self {
        Self::spawn_full(db, security, None).await
    }

    /// A server whose anonymous market reads go to `replica` while it is fresh.
    pub async fn spawn_with_replica(
        db: PgPool,
        replica: app::services::replica::ReadReplica,
    ) -> Self {
        tokio::spawn(replica.clone().watch());
        Self::spawn_full(db, Default::default(), Some(replica)).await
    }

    async fn spawn_full(
        db: PgPool,
        security: server::http::Security,
        replica: Option<app::services::replica::ReadReplica>,
    ) -> Self {
        let config = server::config::Config::from_lookup(|_| None).expect("default config");
        let options = server::startup::leptos_options(&config).expect("leptos options");
        let ops = server::ops::Operations::new(None);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let lease = app::services::lease::Lease::take(&db).await.unwrap();
        tokio::spawn(lease.keep(db.clone()));
        let app = router(AppState {
            leptos_options: options,
            db,
            security,
            platform_fee: Default::default(),
            ops: ops.clone(),
            public_url: app::services::mail::PublicUrl(format!("http://{addr}")),
            mail_outbox: true,
            lease,
            replica,
        });
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap()
        });
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { addr, client, ops }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The `Origin` a browser sends from this server's own pages.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Calls a server function as a browser page on this site would, with `cookie` if given.
    pub async fn call(
        &self,
        function: &str,
        cookie: Option<&str>,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        self.post_form(function, "application/json", cookie, None, form)
            .await
    }

    /// Posts `form` to a server function as a browser does without JavaScript: a plain form
    /// on the page `from` (its `Referer`, if given), asking for HTML.
    pub async fn plain_form(
        &self,
        function: &str,
        cookie: Option<&str>,
        from: Option<&str>,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        self.post_form(
            function,
            "text/html,application/xhtml+xml",
            cookie,
            from,
            form,
        )
        .await
    }

    async fn post_form(
        &self,
        function: &str,
        accept: &str,
        cookie: Option<&str>,
        from: Option<&str>,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(self.url(&format!("/api/{function}")))
            .header("origin", self.origin())
            .header("accept", accept)
            .form(form);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        if let Some(page) = from {
            req = req.header("referer", self.url(page));
        }
        req.send().await.unwrap()
    }

    /// Signs in through the browser's door; returns the `Cookie` header value to send.
    pub async fn log_in(&self, email: &str, password: &str) -> String {
        let res = self
            .call("log_in", None, &[("email", email), ("password", password)])
            .await;
        assert_eq!(res.status(), 200, "sign-in as {email} failed");
        session_cookie(&res).expect("sign-in sets the session cookie")
    }

    /// A JSON API call with an API key.
    pub fn api(&self, method: reqwest::Method, path: &str, key: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(&format!("/api/v1{path}")))
            .bearer_auth(key)
    }
}

impl TestApp {
    /// A page as a browser gets it (with `cookie` if given): its status and HTML.
    pub async fn page(&self, path: &str, cookie: Option<&str>) -> (u16, String) {
        let mut req = self.client.get(self.url(path));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let res = req.send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    /// Signs in a person who has two-factor authentication: the password, then the code
    /// their authenticator would show now for `secret`. Returns the session cookie.
    pub async fn log_in_with_code(&self, email: &str, password: &str, secret: &[u8]) -> String {
        let res = self
            .call("log_in", None, &[("email", email), ("password", password)])
            .await;
        assert_eq!(res.status(), 200, "password step for {email}");
        assert!(session_cookie(&res).is_none(), "no session before the code");
        let to = res.headers()["location"].to_str().unwrap().to_string();
        let challenge = to
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("challenge="))
            .unwrap_or_else(|| panic!("a challenge in {to}"))
            .to_string();
        let code = app::services::second_factor::code_at(secret, chrono::Utc::now());
        let res = self
            .call(
                "log_in_code",
                None,
                &[("challenge", &challenge), ("code", &code)],
            )
            .await;
        assert_eq!(res.status(), 200, "code step for {email}");
        session_cookie(&res).expect("the code step sets the session cookie")
    }
}

/// Turns on two-factor authentication for `email` directly in the database; its secret.
pub async fn enable_second_factor(db: &PgPool, email: &str) -> Vec<u8> {
    let secret = b"rigshift-test-secret".to_vec();
    sqlx::query("update app_user set totp_secret = $2, totp_enabled_at = now() where email = $1")
        .bind(email)
        .bind(&secret)
        .execute(db)
        .await
        .unwrap();
    secret
}

/// A real SMTP listener on loopback (Debian's aiosmtpd), keeping what it receives in a
/// maildir; stopped when dropped.
pub struct SmtpListener {
    pub port: u16,
    dir: std::path::PathBuf,
    child: std::process::Child,
}

impl SmtpListener {
    pub async fn start() -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("rigshift-mail-{port}-{}", std::process::id()));
        let child = std::process::Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3-aiosmtpd runs (.ci/setup installs it)");
        // Dropping it, even on the panic below, stops the listener.
        let listener = Self { port, dir, child };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return listener;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the SMTP listener did not start");
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, headers and body, quoted-printable undone.
    pub fn messages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("new")) else {
            return Vec::new();
        };
        let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        files.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
        files
            .iter()
            .map(|p| {
                std::fs::read_to_string(p)
                    .unwrap()
                    .replace("=\r\n", "")
                    .replace("=\n", "")
                    .replace("=3D", "=")
            })
            .collect()
    }
}

impl Drop for SmtpListener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The first link in `text` to `path` (such as `/reset?token=`), whole.
pub fn link_in(text: &str, path: &str) -> Option<String> {
    let at = text.find(path)?;
    let start = text[..at].rfind("http").unwrap_or(at);
    let end = text[at..]
        .find(|c: char| c.is_whitespace())
        .map_or(text.len(), |e| at + e);
    Some(text[start..end].to_string())
}

/// `name=value` of the session cookie a response sets.
pub fn session_cookie(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.contains("rigshift_session="))
        .and_then(|c| c.split(';').next())
        .map(str::to_string)
}

/// The URL of this test's own database (`#[sqlx::test]` makes one per test on the cluster
/// of `DATABASE_URL`), for server processes started by the test.
pub fn database_url(db: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").unwrap();
    let name = db.connect_options().get_database().unwrap().to_string();
    match base.split_once('?') {
        Some((head, query)) => format!("{}/{name}?{query}", head.rsplit_once('/').unwrap().0),
        None => format!("{}/{name}", base.rsplit_once('/').unwrap().0),
    }
}

/// A free TCP port on loopback (for servers started as separate processes).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Holds statements that fire the trigger `name` on `table` at `event` (for rows matching `when`)
/// inside the database until [`Gate::open`]: the test's connection holds an advisory lock the
/// trigger waits for. Test databases are one per test, so the trigger touches nothing else. A
/// statement at the gate stays there however long its transaction may wait for a lock (a
/// booking's exact path bounds its waits), so the trigger lifts that bound first.
pub struct Gate {
    holder: sqlx::pool::PoolConnection<sqlx::Postgres>,
}

const GATE_LOCK: i64 = 7001;

impl Gate {
    pub async fn close(db: &PgPool, name: &str, event: &str, table: &str, when: &str) -> Self {
        let mut holder = db.acquire().await.unwrap();
        sqlx::query("select pg_advisory_lock($1)")
            .bind(GATE_LOCK)
            .execute(&mut *holder)
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "create or replace function test_gate() returns trigger language plpgsql as $$
             begin perform set_config('lock_timeout', '0', true);
                   perform pg_advisory_xact_lock_shared({GATE_LOCK}); return new; end $$;
             create trigger {name} before {event} on {table}
             for each row when ({when}) execute function test_gate();"
        )))
        .execute(db)
        .await
        .unwrap();
        Self { holder }
    }

    /// The backend of a statement waiting at the gate.
    pub async fn waiting(db: &PgPool) -> i32 {
        for _ in 0..200 {
            let pid: Option<i32> = sqlx::query_scalar(
                "select pid from pg_stat_activity
                 where datname = current_database() and wait_event = 'advisory'",
            )
            .fetch_optional(db)
            .await
            .unwrap();
            if let Some(pid) = pid {
                return pid;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("nothing reached the gate");
    }

    pub async fn open(mut self) {
        sqlx::query("select pg_advisory_unlock($1)")
            .bind(GATE_LOCK)
            .execute(&mut *self.holder)
            .await
            .unwrap();
    }
}
