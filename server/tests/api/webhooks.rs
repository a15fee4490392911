//! Webhooks: a real receiver (an HTTP server in the test) gets each event signed, and checks the
//! signature with an HMAC of its own; a delivery it fails is retried after its backoff with the
//! same event id; events it did not ask for never come; only administrators' write tokens
//! register one, and bad URLs and events are refused.

use crate::helpers::*;
use crate::manage::token;
use hmac::{Hmac, Mac};
use protocol::activation::fingerprint;
use protocol::catalog::LicensingSettings;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What the receiver got: its headers (lower-case names) and body, one per request.
type Received = Arc<Mutex<Vec<(Vec<(String, String)>, String)>>>;

struct Receiver {
    url: String,
    got: Received,
    /// Requests still to answer 500.
    fail: Arc<AtomicUsize>,
}

async fn receiver() -> Receiver {
    let got: Received = Arc::default();
    let fail = Arc::new(AtomicUsize::new(0));
    let (g, f) = (got.clone(), fail.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let (g, f) = (g.clone(), f.clone());
            async move {
                let named = headers
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                    .collect();
                g.lock().expect("lock").push((named, body));
                if f.load(Ordering::SeqCst) > 0 {
                    f.fetch_sub(1, Ordering::SeqCst);
                    (StatusCode::INTERNAL_SERVER_ERROR, "try later")
                } else {
                    (StatusCode::OK, "thanks")
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver { url, got, fail }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// The receiver's own check of `Licentia-Signature: t=…,v1=…` (HMAC-SHA256 of "t.body").
fn signed_by(secret: &str, headers: &[(String, String)], body: &str) -> bool {
    let sig = header(headers, "licentia-signature");
    let Some((t, v1)) = sig.split_once(',') else {
        return false;
    };
    let (Some(t), Some(v1)) = (t.strip_prefix("t="), v1.strip_prefix("v1=")) else {
        return false;
    };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{t}.{body}").as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    expected == v1
}

/// The test's own sender (the server's is off in these tests, so every attempt is the test's):
/// receivers here listen on 127.0.0.1.
async fn deliver(app: &TestApp) -> usize {
    server::webhooks::Sender::new(true, &[])
        .expect("client")
        .deliver_due(&app.services)
        .await
        .expect("deliveries")
}

async fn delivered(app: &TestApp, hook: &Receiver, n: usize) {
    deliver(app).await;
    assert_eq!(hook.got.lock().expect("lock").len(), n);
}

/// The server with its own webhook sender off.
async fn app_without_sender(backend: licensing::Backend) -> Option<TestApp> {
    if backend == licensing::Backend::Postgres && !postgres_available() {
        return None;
    }
    Some(TestApp::spawn(backend, &[("LICENTIA_WEBHOOK_SENDER", "false")]).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_delivered_signed_and_retried_after_a_failure_sqlite() {
    if let Some(app) = app_without_sender(licensing::Backend::Sqlite).await {
        within_limit(delivered_signed_and_retried(app)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_delivered_signed_and_retried_after_a_failure_postgres() {
    if let Some(app) = app_without_sender(licensing::Backend::Postgres).await {
        within_limit(delivered_signed_and_retried(app)).await;
    }
}

async fn delivered_signed_and_retried(app: TestApp) {
    {
        let f = fixture(
            &app,
            LicensingSettings {
                max_activations: 5,
                ..Default::default()
            },
            1,
        )
        .await;
        let admin = app.browser();
        admin.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.ok();
        let write = token(&app, &admin, "hooks", "write").await;
        let read = token(&app, &admin, "hooks-read", "read").await;
        let hook = receiver().await;

        // Bad registrations are refused and make nothing.
        for (body, field) in [
            (
                json!({"url": "ftp://x.test/", "events": ["activation.created"]}),
                "url",
            ),
            (
                json!({"url": "https://user:pw@x.test/", "events": ["activation.created"]}),
                "url",
            ),
            (json!({"url": hook.url, "events": []}), "events"),
            (
                json!({"url": hook.url, "events": ["licence.stolen"]}),
                "events",
            ),
        ] {
            let (st, problem) = write.post("/api/v1/webhooks", body).await;
            assert_eq!(
                (st, problem["field"].as_str()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
                "{problem}"
            );
        }
        let (st, _) = read
            .post(
                "/api/v1/webhooks",
                json!({"url": hook.url, "events": ["seat.refused"]}),
            )
            .await;
        assert_eq!(
            st,
            StatusCode::FORBIDDEN,
            "a read-only token registers nothing"
        );
        let carla = app.browser();
        carla
            .sign_in("carla@acme.test", "client password 123")
            .await
            .ok();
        let client_token = token(&app, &carla, "carla", "write").await;
        let (st, _) = client_token
            .post(
                "/api/v1/webhooks",
                json!({"url": hook.url, "events": ["seat.refused"]}),
            )
            .await;
        assert_eq!(
            st,
            StatusCode::FORBIDDEN,
            "a client user's token registers nothing"
        );
        let (_, list) = write.get("/api/v1/webhooks").await;
        assert_eq!(list, json!([]));

        let (st, made) = write
            .post(
                "/api/v1/webhooks",
                json!({"url": hook.url, "events": ["activation.created", "activation.removed"]}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{made}");
        let secret = made["secret"].as_str().expect("secret").to_owned();
        assert!(secret.starts_with("whsec_"));
        let id = made["webhook"]["id"].as_i64().expect("id");
        let (_, list) = write.get("/api/v1/webhooks").await;
        assert!(
            !list.to_string().contains(&secret),
            "the secret is shown once: {list}"
        );

        // An activation: one event. The receiver fails the first attempt.
        hook.fail.store(1, Ordering::SeqCst);
        let (st, code, _) = api_post(&app, "/api/v1/activations", json!({"licence_key": f.keys[0], "fingerprint": fingerprint("CALC", "ws-1"), "hostname": "ws-1"})).await;
        assert_eq!(st, StatusCode::CREATED, "{code}");
        delivered(&app, &hook, 1).await;
        assert_eq!(deliver(&app).await, 0, "not again at once");
        app.clock.advance(29);
        assert_eq!(deliver(&app).await, 0, "nor before its 30 s");
        let (_, deliveries) = read.get(&format!("/api/v1/webhooks/{id}/deliveries")).await;
        assert_eq!(deliveries[0]["attempts"], 1, "{deliveries}");
        assert_eq!(deliveries[0]["last_status"], 500);
        assert_eq!(deliveries[0]["last_answer"], "try later");
        assert!(deliveries[0]["delivered_at"].is_null());

        // 30 s after the attempt it is retried and taken.
        app.clock.advance(1);
        delivered(&app, &hook, 2).await;
        let (_, deliveries) = read.get(&format!("/api/v1/webhooks/{id}/deliveries")).await;
        assert_eq!(
            (
                deliveries[0]["attempts"].as_i64(),
                deliveries[0]["last_status"].as_i64()
            ),
            (Some(2), Some(200)),
            "{deliveries}"
        );
        assert!(deliveries[0]["delivered_at"].is_i64());
        assert!(deliveries[0]["next_attempt_at"].is_null());

        let got = hook.got.lock().expect("lock").clone();
        assert_eq!(got.len(), 2);
        for (headers, body) in &got {
            assert!(signed_by(&secret, headers, body), "signature of {body}");
            assert!(!signed_by("whsec_wrong", headers, body));
            assert_eq!(header(headers, "licentia-event"), "activation.created");
            assert_eq!(header(headers, "content-type"), "application/json");
        }
        let first: Value = serde_json::from_str(&got[0].1).expect("json");
        let second: Value = serde_json::from_str(&got[1].1).expect("json");
        assert_eq!(first["id"], second["id"], "a retry is the same event");
        assert_eq!(first["type"], "activation.created");
        assert_eq!(first["data"]["licence_id"], f.licence_ids[0]);
        assert_eq!(first["data"]["hostname"], "ws-1");
        // A body changed on the way fails the receiver's check.
        assert!(!signed_by(
            &secret,
            &got[1].0,
            &got[1].1.replace("ws-1", "ws-2")
        ));

        // Events it did not ask for (a licence created, a seat refused) never come to it; a
        // removal does.
        app.services
            .create_order(
                &f.admin,
                licensing::catalog::OrderInput {
                    client_id: f.client.client.as_ref().expect("client").id,
                    product_id: 1,
                    quantity: 1,
                    reference: "PO-2".into(),
                    features: None,
                    counters: None,
                    notes: String::new(),
                },
            )
            .await
            .expect("order");
        let portal = licensing::activation::Remover::Portal {
            actor: &f.admin,
            force: true,
            free_now: true,
        };
        app.services
            .remove_activation(&f.keys[0], None, portal)
            .await
            .expect("removed");
        delivered(&app, &hook, 3).await;
        let got = hook.got.lock().expect("lock").clone();
        assert_eq!(got.len(), 3);
        assert_eq!(header(&got[2].0, "licentia-event"), "activation.removed");

        // Removed: nothing more is sent to it.
        let (st, _) = write
            .call(Method::DELETE, &format!("/api/v1/webhooks/{id}"), None)
            .await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (st, _) = read.get(&format!("/api/v1/webhooks/{id}/deliveries")).await;
        assert_eq!(st, StatusCode::NOT_FOUND);

        // A receiver that is gone: attempts recorded as not reached, then given up after the
        // last one.
        let (_, gone) = write
            .post(
                "/api/v1/webhooks",
                json!({"url": "http://127.0.0.1:9/hook", "events": ["activation.created"]}),
            )
            .await;
        let gone_id = gone["webhook"]["id"].as_i64().expect("id");
        let (st, _, _) = api_post(&app, "/api/v1/activations", json!({"licence_key": f.keys[0], "fingerprint": fingerprint("CALC", "ws-3"), "hostname": "ws-3"})).await;
        assert_eq!(st, StatusCode::CREATED);
        for attempt in 1..=8 {
            assert_eq!(deliver(&app).await, 1, "attempt {attempt}");
            app.clock.advance(13 * 3600);
        }
        assert_eq!(deliver(&app).await, 0, "given up");
        let (_, deliveries) = read
            .get(&format!("/api/v1/webhooks/{gone_id}/deliveries"))
            .await;
        assert_eq!(deliveries[0]["attempts"], 8, "{deliveries}");
        assert!(deliveries[0]["failed_at"].is_i64());
        assert!(
            deliveries[0]["last_answer"]
                .as_str()
                .unwrap_or("")
                .starts_with("not reached"),
            "{deliveries}"
        );
        let (_, list) = write.get("/api/v1/webhooks").await;
        assert_eq!(list[0]["failed"], 1, "{list}");
        assert_eq!(
            hook.got.lock().expect("lock").len(),
            3,
            "the removed webhook got nothing more"
        );

        // Not to the server's own network, unless allowed: an address, and a name for one.
        let (_, inside) = write.post("/api/v1/webhooks", json!({"url": hook.url.replace("127.0.0.1", "localhost"), "events": ["activation.created"]})).await;
        let (_, literal) = write
            .post(
                "/api/v1/webhooks",
                json!({"url": "http://2130706433:9/hook", "events": ["activation.created"]}),
            )
            .await;
        let portal = licensing::activation::Remover::Portal {
            actor: &f.admin,
            force: true,
            free_now: true,
        };
        app.services
            .remove_activation(&f.keys[0], None, portal)
            .await
            .expect("removed from ws-3");
        let (st, _, _) = api_post(&app, "/api/v1/activations", json!({"licence_key": f.keys[0], "fingerprint": fingerprint("CALC", "ws-4"), "hostname": "ws-4"})).await;
        assert_eq!(st, StatusCode::CREATED);
        let strict = server::webhooks::Sender::new(false, &[]).expect("client");
        assert!(strict.deliver_due(&app.services).await.expect("sent") >= 2);
        for (made, why) in [
            (&inside, "has no public address"),
            (&literal, "the address is not public"),
        ] {
            let (_, d) = read
                .get(&format!(
                    "/api/v1/webhooks/{}/deliveries",
                    made["webhook"]["id"]
                ))
                .await;
            assert!(
                d[0]["last_answer"].as_str().unwrap_or("").contains(why),
                "{d}"
            );
        }
        assert_eq!(
            hook.got.lock().expect("lock").len(),
            3,
            "nothing reached the receiver"
        );
    }
}

/// A receiver over https, its certificate issued by a CA of the test's own (openssl, as an
/// operator would make one), in Python's standard library: it prints each request's signature
/// and body as a JSON line.
struct TlsReceiver {
    url: String,
    ca: reqwest::Certificate,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

async fn tls_receiver() -> TlsReceiver {
    let dir = tempfile::tempdir().expect("dir");
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    std::fs::write(
        p("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    for args in [
        vec![
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &p("ca.key"),
            "-out",
            &p("ca.pem"),
            "-days",
            "2",
            "-subj",
            "/CN=Licentia test CA",
        ],
        vec![
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &p("leaf.key"),
            "-out",
            &p("leaf.csr"),
            "-subj",
            "/CN=127.0.0.1",
        ],
        vec![
            "x509",
            "-req",
            "-in",
            &p("leaf.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-out",
            &p("leaf.pem"),
            "-days",
            "1",
            "-extfile",
            &p("leaf.ext"),
        ],
    ] {
        let out = std::process::Command::new("openssl")
            .args(&args)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let script = r#"
import http.server, json, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        print(json.dumps({"sig": self.headers.get("Licentia-Signature"), "body": body}), flush=True)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;
    let mut child = tokio::process::Command::new("python3")
        .args(["-c", script, &p("leaf.pem"), &p("leaf.key")])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3");
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let port = lines.next_line().await.expect("read").expect("the port");
    let ca = reqwest::Certificate::from_pem(&std::fs::read(p("ca.pem")).expect("ca")).expect("pem");
    TlsReceiver {
        url: format!("https://127.0.0.1:{port}/hook"),
        ca,
        lines,
        _child: child,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_go_over_https_to_a_receiver_whose_certificate_is_trusted() {
    let Some(app) = app_without_sender(licensing::Backend::Sqlite).await else {
        return;
    };
    within_limit(async move {
        let f = fixture(&app, LicensingSettings::default(), 1).await;
        let admin = app.browser();
        admin.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.ok();
        let write = token(&app, &admin, "hooks", "write").await;
        let mut tls = tls_receiver().await;
        let (_, made) = write.post("/api/v1/webhooks", json!({"url": tls.url, "events": ["activation.created"]})).await;
        let secret = made["secret"].as_str().expect("secret").to_owned();
        let (st, _, _) = api_post(&app, "/api/v1/activations", json!({"licence_key": f.keys[0], "fingerprint": fingerprint("CALC", "ws-1"), "hostname": "ws-1"})).await;
        assert_eq!(st, StatusCode::CREATED);
        // A certificate nobody vouches for: not reached.
        assert_eq!(server::webhooks::Sender::new(true, &[]).expect("client").deliver_due(&app.services).await.expect("sent"), 1);
        let (_, d) = write.get(&format!("/api/v1/webhooks/{}/deliveries", made["webhook"]["id"])).await;
        assert!(d[0]["last_answer"].as_str().unwrap_or("").starts_with("not reached"), "{d}");
        // With the operator's CA (LICENTIA_WEBHOOK_CA_FILE): delivered, and signed.
        app.clock.advance(30);
        assert_eq!(server::webhooks::Sender::new(true, &[tls.ca.clone()]).expect("client").deliver_due(&app.services).await.expect("sent"), 1);
        let line = tls.lines.next_line().await.expect("read").expect("a request");
        let got: Value = serde_json::from_str(&line).expect("json");
        let headers = vec![("licentia-signature".to_owned(), got["sig"].as_str().expect("sig").to_owned())];
        assert!(signed_by(&secret, &headers, got["body"].as_str().expect("body")));
        let (_, d) = write.get(&format!("/api/v1/webhooks/{}/deliveries", made["webhook"]["id"])).await;
        assert_eq!((d[0]["last_status"].as_i64(), d[0]["attempts"].as_i64()), (Some(200), Some(2)), "{d}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_seat_is_told_once_per_feature_and_hour_however_many_follow() {
    let Some(app) = app_without_sender(licensing::Backend::Sqlite).await else {
        return;
    };
    within_limit(async move {
        let (browser, admin) = app.admin_both().await;
        let write = token(&app, &browser, "hooks", "write").await;
        let hook = receiver().await;
        let (st, _) = write
            .post(
                "/api/v1/webhooks",
                json!({"url": hook.url, "events": ["seat.refused", "licence.created"]}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
        let pool = crate::seeded::acme_pool_of(&app.services, &admin, 3600).await;
        app.services
            .add_pool_key(&admin, pool.id, key_input("F", "ConcurrentUser", 1))
            .await
            .expect("key");
        assert_eq!(
            crate::floating::checkout(&app, &pool.access_key, "F", "ann", "ws-1")
                .await
                .0,
            StatusCode::CREATED
        );
        for i in 0..20 {
            let (st, _) = crate::floating::checkout(
                &app,
                &pool.access_key,
                "F",
                &format!("u{i}"),
                &format!("ws-x{i}"),
            )
            .await;
            assert_eq!(st, StatusCode::FORBIDDEN);
        }
        assert_eq!(deliver(&app).await, 1, "twenty refusals, one event");
        app.clock.advance(3600);
        crate::floating::checkout(&app, &pool.access_key, "F", "bob", "ws-2").await;
        assert_eq!(deliver(&app).await, 1, "the next hour's first");
        let got = hook.got.lock().expect("lock").clone();
        let body: Value = serde_json::from_str(&got[0].1).expect("json");
        assert_eq!(
            (
                body["type"].as_str(),
                body["data"]["feature"].as_str(),
                body["data"]["pool_id"].as_i64()
            ),
            (Some("seat.refused"), Some("F"), Some(pool.id))
        );
    })
    .await;
}

/// A sender whose claim ran out (its attempt took too long) records nothing: the sender that
/// claimed the delivery after it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_latest_claim_records_an_attempt() {
    let Some(app) = app_without_sender(licensing::Backend::Sqlite).await else {
        return;
    };
    within_limit(async move {
        let f = fixture(&app, LicensingSettings::default(), 1).await;
        let admin = app.browser();
        admin.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.ok();
        let write = token(&app, &admin, "hooks", "write").await;
        let (_, made) = write.post("/api/v1/webhooks", json!({"url": "http://127.0.0.1:9/hook", "events": ["activation.created"]})).await;
        let (st, _, _) = api_post(&app, "/api/v1/activations", json!({"licence_key": f.keys[0], "fingerprint": fingerprint("CALC", "ws-1"), "hostname": "ws-1"})).await;
        assert_eq!(st, StatusCode::CREATED);
        let due = app.services.due_deliveries(10).await.expect("due");
        assert_eq!(due.len(), 1);
        let slow = app.services.claim_delivery(due[0].0).await.expect("claim").expect("claimed");
        assert!(app.services.claim_delivery(due[0].0).await.expect("claim").is_none(), "claimed once");
        app.clock.advance(121);
        let late = app.services.claim_delivery(due[0].0).await.expect("claim").expect("claimed again after two minutes");
        app.services.delivery_attempted(slow.id, &slow.claim, Some(200), "too late").await.expect("ignored");
        app.services.delivery_attempted(late.id, &late.claim, Some(503), "busy").await.expect("recorded");
        let (_, d) = write.get(&format!("/api/v1/webhooks/{}/deliveries", made["webhook"]["id"])).await;
        assert_eq!((d[0]["attempts"].as_i64(), d[0]["last_status"].as_i64()), (Some(1), Some(503)), "{d}");
        assert!(d[0]["delivered_at"].is_null(), "the stale 200 did not mark it delivered: {d}");
        assert!(format!("{slow:?}").contains("(not shown)") && !format!("{slow:?}").contains(&slow.secret));
    })
    .await;
}

/// Revoking a serial (and issuing its replacement) is told to the receivers that asked for
/// `serial.revoked`, signed, naming both serials by id; the others hear nothing of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_serial_is_told_to_its_receivers() {
    let Some(app) = app_without_sender(licensing::Backend::Sqlite).await else {
        return;
    };
    within_limit(async move {
        let browser = app.admin().await;
        let write = token(&app, &browser, "hooks", "write").await;
        let (told, untold) = (receiver().await, receiver().await);
        let (st, made) = write
            .post(
                "/api/v1/webhooks",
                json!({"url": told.url, "events": ["serial.revoked"]}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{made}");
        let secret = made["secret"].as_str().expect("secret").to_owned();
        let (st, _) = write
            .post(
                "/api/v1/webhooks",
                json!({"url": untold.url, "events": ["activation.created"]}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
        let (admin, list) = crate::web::serials(&app, 1, None, 1).await;
        let new = app
            .services
            .revoke_and_reissue(&admin, list[0].id, "leaked")
            .await
            .expect("reissue");
        delivered(&app, &told, 1).await;
        assert!(untold.got.lock().expect("lock").is_empty());
        let (headers, body) = told.got.lock().expect("lock")[0].clone();
        assert!(signed_by(&secret, &headers, &body), "{headers:?}");
        let event: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(event["type"], "serial.revoked");
        assert_eq!(
            (
                event["data"]["serial_id"].as_i64(),
                event["data"]["replaced_by"].as_i64()
            ),
            (Some(list[0].id), Some(new.id))
        );
        assert_eq!(event["data"]["note"], "leaked");
    })
    .await;
}
