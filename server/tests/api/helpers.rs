//! `TestApp`: a running server with its own database and a clock the test moves; `Browser`: a
//! cookie-keeping HTTP client that calls the portal's server functions like the hydrated page does.

use licensing::catalog::OrderInput;
use licensing::{Backend, Clock, CurrentUser, Licentia};
use protocol::catalog::{Feature, LicensingSettings, ProductInput};
use reqwest::StatusCode;
use serde_json::Value;
use server::config::Config;
use server::Server;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

pub const ADMIN_EMAIL: &str = "admin@vendor.test";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// Runs the test body once on SQLite and once on PostgreSQL (`<name>::sqlite`, `<name>::postgres`).
/// Without `LICENTIA_TEST_POSTGRES_URL` the PostgreSQL run is skipped, unless
/// `LICENTIA_REQUIRE_POSTGRES=1` (the README's test command) makes that a failure.
#[macro_export]
macro_rules! both_backends {
    ($(async fn $name:ident($app:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                async fn body($app: $crate::helpers::TestApp) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    $crate::helpers::within_limit(body($crate::helpers::TestApp::spawn(licensing::Backend::Sqlite, &[]).await)).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if $crate::helpers::postgres_available() {
                        $crate::helpers::within_limit(body($crate::helpers::TestApp::spawn(licensing::Backend::Postgres, &[]).await)).await
                    }
                }
            }
        )*
    };
}

/// Fails a test that takes longer than two minutes instead of letting it hang the whole run.
pub async fn within_limit(test: impl std::future::Future<Output = ()>) {
    if tokio::time::timeout(std::time::Duration::from_secs(120), test)
        .await
        .is_err()
    {
        panic!("the test did not finish within 120 s");
    }
}

pub fn postgres_available() -> bool {
    if std::env::var("LICENTIA_TEST_POSTGRES_URL").is_ok() {
        return true;
    }
    assert!(
        std::env::var("LICENTIA_REQUIRE_POSTGRES").as_deref() != Ok("1"),
        "LICENTIA_REQUIRE_POSTGRES=1 but LICENTIA_TEST_POSTGRES_URL is not set"
    );
    eprintln!("skipped: LICENTIA_TEST_POSTGRES_URL is not set");
    false
}

static NEXT_DB: AtomicU64 = AtomicU64::new(0);

fn unique_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "t{}_{}_{}",
        std::process::id(),
        nanos,
        NEXT_DB.fetch_add(1, Ordering::SeqCst)
    )
}

/// A database URL of a database nobody else uses.
pub async fn fresh_database(backend: Backend) -> (String, Option<tempfile::TempDir>) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}/licentia.db", dir.path().display());
            (url, Some(dir))
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let admin_url = std::env::var("LICENTIA_TEST_POSTGRES_URL").expect("postgres url");
            let name = unique_name();
            let mut conn = sqlx::PgConnection::connect(&admin_url)
                .await
                .expect("connect to the test PostgreSQL server");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("create a test database");
            let base = admin_url
                .rsplit_once('/')
                .map(|(b, _)| b)
                .expect("url has a path");
            (format!("{base}/{name}"), None)
        }
    }
}

pub struct TestApp {
    pub base_url: String,
    pub database_url: String,
    pub services: Licentia,
    pub clock: Clock,
    _dir: Option<tempfile::TempDir>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    /// The settings it was started with (the master key among them), for a restart.
    env: BTreeMap<String, String>,
    stopped: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl TestApp {
    /// Starts the server with the default settings plus `settings` (environment variable names).
    pub async fn spawn(backend: Backend, settings: &[(&str, &str)]) -> Self {
        let (database_url, dir) = fresh_database(backend).await;
        Self::spawn_at(&database_url, dir, settings).await
    }

    /// Starts the server on the database at `database_url` (`dir` kept as long as it runs).
    pub async fn spawn_at(
        database_url: &str,
        dir: Option<tempfile::TempDir>,
        settings: &[(&str, &str)],
    ) -> Self {
        let mut env: BTreeMap<String, String> = settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.insert("LICENTIA_LISTEN".into(), "127.0.0.1:0".into());
        env.insert("DATABASE_URL".into(), database_url.to_owned());
        env.entry("LICENTIA_MASTER_KEY".into())
            .or_insert_with(|| licensing::keys::MasterKey::random().to_base64());
        // Starts at the real time (workstation processes use the real clock), then moves only when told.
        let clock = Clock::manual(Clock::system().now());
        Self::start(env, dir, clock).await
    }

    /// Stops the server (its requests in flight finish), lets `down_secs` pass on its clock,
    /// and starts it again on the same database with the same settings.
    pub async fn restart(mut self, down_secs: i64) -> Self {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(stopped) = self.stopped.take() {
            stopped.await.expect("server task").expect("server stopped");
        }
        self.clock.advance(down_secs);
        let env = std::mem::take(&mut self.env);
        let dir = self._dir.take();
        let clock = self.clock.clone();
        Self::start(env, dir, clock).await
    }

    /// Stops the server (its requests in flight and its jobs end) and hands back its database
    /// directory, if it had one, so the database outlives it.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(stopped) = self.stopped.take() {
            stopped.await.expect("server task").expect("server stopped");
        }
        self._dir.take()
    }

    /// Another server on the same database with the same settings (a replica), its clock set
    /// to this one's time.
    pub async fn replica(&self) -> Self {
        let clock = Clock::manual(self.clock.now());
        Self::start(self.env.clone(), None, clock).await
    }

    async fn start(
        env: BTreeMap<String, String>,
        dir: Option<tempfile::TempDir>,
        clock: Clock,
    ) -> Self {
        let database_url = env["DATABASE_URL"].clone();
        let config = Config::from_sources(env.clone(), None).expect("valid test configuration");
        let services = server::open_services(&config, clock.clone())
            .await
            .expect("database ready");
        let server = Server::bind(&config, services.clone()).await.expect("bind");
        let base_url = format!("http://{}", server.addr);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let stopped = tokio::spawn(server.run(async move {
            let _ = rx.await;
        }));
        Self {
            base_url,
            database_url,
            services,
            clock,
            _dir: dir,
            shutdown: Some(tx),
            env,
            stopped: Some(stopped),
        }
    }

    pub fn browser(&self) -> Browser {
        self.browser_with(reqwest::header::HeaderMap::new())
    }

    /// A browser whose requests come, as far as a server trusting `X-Forwarded-For` can tell,
    /// from `address`.
    pub fn browser_at(&self, address: &str) -> Browser {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            address.parse().expect("an address is a header value"),
        );
        self.browser_with(headers)
    }

    fn browser_with(&self, headers: reqwest::header::HeaderMap) -> Browser {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        Browser {
            client: reqwest::Client::builder()
                .default_headers(headers)
                .cookie_provider(jar.clone())
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("http client"),
            base_url: self.base_url.clone(),
            jar,
        }
    }

    /// Creates the first administrator through the setup link (once: later calls sign it in)
    /// and returns a browser signed in as it.
    pub async fn admin(&self) -> Browser {
        let browser = self.browser();
        let Some(token) = self
            .services
            .issue_setup_token()
            .await
            .expect("setup token")
        else {
            browser.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.ok();
            return browser;
        };
        browser
            .rpc(
                "complete_setup",
                &[
                    ("token", &token),
                    ("name", "Ada Admin"),
                    ("email", ADMIN_EMAIL),
                    ("password", ADMIN_PASSWORD),
                    ("password_confirm", ADMIN_PASSWORD),
                ],
            )
            .await
            .ok();
        browser
    }

    /// The first administrator, as a signed-in browser and as a caller of the services.
    pub async fn admin_both(&self) -> (Browser, CurrentUser) {
        let browser = self.admin().await;
        let admin = self
            .services
            .sign_in(ADMIN_EMAIL, ADMIN_PASSWORD, "t", None)
            .await
            .expect("admin")
            .user;
        (browser, admin)
    }

    /// As `admin`, creates a client with one user and returns the client id and a browser signed in
    /// as that user.
    pub async fn client_user(&self, admin: &Browser, client: &str, email: &str) -> (i64, Browser) {
        let created = admin
            .rpc(
                "create_client",
                &[
                    ("client[name]", client),
                    ("client[contact_email]", ""),
                    ("client[notes]", ""),
                ],
            )
            .await
            .ok();
        let client_id = created["id"].as_i64().expect("client id");
        admin
            .rpc(
                "create_client_user",
                &[
                    ("client_id", &client_id.to_string()),
                    ("name", "Carla Client"),
                    ("email", email),
                    ("password", "client password 123"),
                ],
            )
            .await
            .ok();
        let browser = self.browser();
        browser.sign_in(email, "client password 123").await.ok();
        (client_id, browser)
    }
}

/// POSTs JSON to the Web API (no credentials): the status, the body (JSON if it is JSON) and the
/// headers.
pub async fn api_post(
    app: &TestApp,
    path: &str,
    body: Value,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let res = reqwest::Client::new()
        .post(format!("{}{path}", app.base_url))
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
        headers,
    )
}

/// An application validating its activation code of product CALC on `machine`.
pub async fn validate_code(app: &TestApp, code: &str, machine: &str) -> (StatusCode, Value) {
    let (s, b, _) = api_post(
        app,
        "/api/v1/activations/validate",
        serde_json::json!({"activation_code": code, "fingerprint": protocol::activation::fingerprint("CALC", machine)}),
    )
    .await;
    (s, b)
}

/// Sets up the first administrator and returns it as the services see it.
pub async fn admin_user(app: &TestApp) -> CurrentUser {
    app.admin().await;
    app.services
        .sign_in(ADMIN_EMAIL, ADMIN_PASSWORD, "t", None)
        .await
        .expect("admin")
        .user
}

/// A licence key of a floating pool: editor "Vendor", STD.
pub fn key_input(feature: &str, model: &str, quantity: i64) -> protocol::floating::PoolKeyInput {
    protocol::floating::PoolKeyInput {
        editor: "Vendor".into(),
        feature: feature.into(),
        model: model.into(),
        quantity,
        commercial_type: "STD".into(),
        ..Default::default()
    }
}

/// The first administrator, a client "Acme" and its floating pool with `lease_secs`.
pub async fn acme_pool(app: &TestApp, lease_secs: i64) -> (CurrentUser, protocol::floating::Pool) {
    let admin = admin_user(app).await;
    let pool = crate::seeded::acme_pool_of(&app.services, &admin, lease_secs).await;
    (admin, pool)
}

pub fn product(code: &str, settings: LicensingSettings) -> ProductInput {
    ProductInput {
        code: code.into(),
        name: format!("{code} product"),
        editor: "Vendor".into(),
        release_number: 2026,
        release_date: Some("2026-01-15".into()),
        features: vec![
            Feature {
                code: "print".into(),
                name: "Printing".into(),
            },
            Feature {
                code: "export".into(),
                name: "Export".into(),
            },
        ],
        default_features: vec!["print".into()],
        default_counters: BTreeMap::from([("users".into(), 5)]),
        settings,
    }
}

pub struct Fixture {
    pub admin: CurrentUser,
    pub client: CurrentUser,
    pub keys: Vec<String>,
    pub licence_ids: Vec<i64>,
}

/// A product, a client with a user, and an order of `quantity` licences.
pub async fn fixture(app: &TestApp, settings: LicensingSettings, quantity: i64) -> Fixture {
    let admin = admin_user(app).await;
    let admin_browser = app.browser();
    admin_browser
        .sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
        .await
        .ok();
    let (client_id, _) = app
        .client_user(&admin_browser, "Acme", "carla@acme.test")
        .await;
    let client = app
        .services
        .sign_in("carla@acme.test", "client password 123", "t", None)
        .await
        .expect("client")
        .user;
    let p = app
        .services
        .save_product(&admin, None, product("CALC", settings))
        .await
        .expect("product");
    let order = app
        .services
        .create_order(
            &admin,
            OrderInput {
                client_id,
                product_id: p.id,
                quantity,
                reference: "PO-1".into(),
                features: None,
                counters: None,
                notes: String::new(),
            },
        )
        .await
        .expect("order");
    let licences = app
        .services
        .order_licences(&admin, order.id, &licensing::page::Page::ALL)
        .await
        .expect("licences")
        .items;
    Fixture {
        admin,
        client,
        keys: licences.iter().map(|l| l.key.clone()).collect(),
        licence_ids: licences.iter().map(|l| l.id).collect(),
    }
}

/// A floating pool of the fixture's client, with `lease_secs`.
pub async fn own_pool(app: &TestApp, f: &Fixture, lease_secs: i64) -> protocol::floating::Pool {
    let client = f.client.client.as_ref().expect("a client user").id;
    app.services
        .create_pool(
            &f.admin,
            protocol::floating::PoolOwner::Client(client),
            "",
            Some(lease_secs),
        )
        .await
        .expect("pool")
}

#[derive(Clone)]
pub struct Browser {
    pub client: reqwest::Client,
    pub base_url: String,
    jar: std::sync::Arc<reqwest::cookie::Jar>,
}

/// A server function's answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The value, asserting success.
    pub fn ok(self) -> Value {
        assert!(
            self.status.is_success(),
            "expected success, got {} {}",
            self.status,
            self.body
        );
        self.body
    }

    /// The error's variant name (`"NotAllowed"`, `"Invalid"`, …), asserting failure.
    pub fn error(&self) -> String {
        assert!(
            !self.status.is_success(),
            "expected an error, got {} {}",
            self.status,
            self.body
        );
        match &self.body {
            Value::String(s) => s.clone(),
            Value::Object(m) => m.keys().next().cloned().unwrap_or_default(),
            other => panic!("unexpected error body {other}"),
        }
    }

    /// The human message of an `Invalid` or `Conflict` error.
    pub fn message(&self) -> String {
        match &self.body {
            Value::Object(m) => match m.values().next() {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Object(inner)) => {
                    inner["message"].as_str().unwrap_or_default().to_owned()
                }
                _ => String::new(),
            },
            _ => String::new(),
        }
    }
}

impl Browser {
    /// The session token the browser holds, if any.
    pub fn session_token(&self) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let url: reqwest::Url = self.base_url.parse().ok()?;
        let header = self.jar.cookies(&url)?;
        header
            .to_str()
            .ok()?
            .split(';')
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == "licentia_session")
            .map(|(_, v)| v.to_owned())
    }

    pub async fn rpc(&self, name: &str, form: &[(&str, &str)]) -> Reply {
        self.rpc_with(name, form, &[]).await
    }

    /// `rpc` with extra request headers (what another site's page would send, say).
    pub async fn rpc_with(
        &self,
        name: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self
            .client
            .post(format!("{}/rpc/{name}", self.base_url))
            .form(form);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Reply {
        self.rpc("sign_in", &[("email", email), ("password", password)])
            .await
    }

    pub async fn whoami(&self) -> Value {
        self.rpc("get_current_user", &[]).await.ok()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base_url))
            .header("accept", "text/html")
            .send()
            .await
            .expect("request")
    }
}

/// A real SMTP server that keeps what it is sent: aiosmtpd's Mailbox handler writing a Maildir,
/// run by the Python of the test environment (`LICENTIA_TEST_PYTHON`, set by `scripts/test`;
/// else the venv it makes).
pub struct SmtpSink {
    child: std::process::Child,
    dir: tempfile::TempDir,
    pub port: u16,
}

/// One message the sink received: its recipients' header and its body, decoded.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

impl Mail {
    /// The first link in the body that starts with `prefix`.
    pub fn link(&self, prefix: &str) -> String {
        let at = self
            .body
            .find(prefix)
            .unwrap_or_else(|| panic!("no {prefix} link in {self:?}"));
        self.body[at..]
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned()
    }
}

impl SmtpSink {
    pub fn start() -> Self {
        let python = std::env::var("LICENTIA_TEST_PYTHON").unwrap_or_else(|_| {
            format!(
                "{}/.cache/licentia/venv/bin/python",
                std::env::var("HOME").unwrap_or_default()
            )
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = tempfile::tempdir().expect("maildir");
        let child = std::process::Command::new(&python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("mail"))
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {python} (aiosmtpd; scripts/test installs it): {e}")
            });
        let sink = Self { child, dir, port };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return sink;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("the SMTP sink did not start on port {port} (is aiosmtpd installed for {python}?)");
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Mail> {
        let new = self.dir.path().join("mail").join("new");
        let mut files: Vec<_> = std::fs::read_dir(&new)
            .map(|d| d.filter_map(|e| e.ok()).collect())
            .unwrap_or_default();
        files.sort_by_key(|e| e.metadata().and_then(|m| m.modified()).ok());
        files
            .iter()
            .map(|e| parse_mail(&std::fs::read_to_string(e.path()).expect("a message")))
            .collect()
    }

    /// Waits (up to 10 s) until `n` messages have arrived, and returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<Mail> {
        for _ in 0..400 {
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("{n} message(s) expected, got {:?}", self.messages());
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The headers and the decoded body of a single-part message (7bit, quoted-printable or base64).
fn parse_mail(raw: &str) -> Mail {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    // Folded header lines continue with whitespace.
    let head = head.replace("\n ", " ").replace("\n\t", " ");
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_default()
    };
    let body = match header("Content-Transfer-Encoding")
        .to_ascii_lowercase()
        .as_str()
    {
        "quoted-printable" => {
            let joined = body.replace("=\n", "");
            let bytes = joined.as_bytes();
            let mut out = Vec::with_capacity(bytes.len());
            let mut i = 0;
            while i < bytes.len() {
                match (bytes[i], bytes.get(i + 1..i + 3)) {
                    (b'=', Some(hex)) => {
                        let hex = std::str::from_utf8(hex).unwrap_or("");
                        match u8::from_str_radix(hex, 16) {
                            Ok(b) => {
                                out.push(b);
                                i += 3;
                            }
                            Err(_) => {
                                out.push(b'=');
                                i += 1;
                            }
                        }
                    }
                    (b, _) => {
                        out.push(b);
                        i += 1;
                    }
                }
            }
            String::from_utf8_lossy(&out).into_owned()
        }
        "base64" => {
            use base64::Engine;
            let compact: String = body.split_whitespace().collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .expect("base64 body");
            String::from_utf8_lossy(&bytes).into_owned()
        }
        _ => body.to_owned(),
    };
    Mail {
        to: header("To"),
        subject: header("Subject"),
        body,
    }
}
