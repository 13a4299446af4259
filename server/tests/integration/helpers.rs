use server::http::{router, AppState};
use sqlx::PgPool;
use std::net::SocketAddr;

/// A server running in this test process on a free port, over `db`.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
}

impl TestApp {
    pub async fn spawn(db: PgPool) -> Self {
        Self::spawn_with(db, Default::default()).await
    }

    pub async fn spawn_with(db: PgPool, security: server::http::Security) -> Self {
        let config = server::config::Config::from_lookup(|_| None).expect("default config");
        let options = server::startup::leptos_options(&config).expect("leptos options");
        let app = router(AppState {
            leptos_options: options,
            db,
            security,
            platform_fee: Default::default(),
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
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { addr, client }
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
        let mut req = self
            .client
            .post(self.url(&format!("/api/{function}")))
            .header("origin", self.origin())
            .header("accept", "application/json")
            .form(form);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
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

/// A free TCP port on loopback (for servers started as separate processes).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
