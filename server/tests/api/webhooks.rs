//! Webhooks: a real receiver (an HTTP server in the test) gets each event signed, and checks the
//! signature with an HMAC of its own; a delivery it fails is retried after its backoff with the
//! same event id; events it did not ask for never come; only administrators' write tokens
//! register one, and bad URLs and events are refused.

use crate::both_backends;
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

async fn deliver(app: &TestApp) -> usize {
    server::webhooks::deliver_due(&app.services, &server::webhooks::client())
        .await
        .expect("deliveries")
}

/// Sends what is due until the receiver has had `n` requests (the server's own job may send
/// some first: a delivery is claimed by one sender at a time).
async fn delivered(app: &TestApp, hook: &Receiver, n: usize) {
    for _ in 0..100 {
        deliver(app).await;
        if hook.got.lock().expect("lock").len() >= n {
            assert_eq!(hook.got.lock().expect("lock").len(), n, "no more than {n}");
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the receiver did not get {n} requests");
}

both_backends! {
    async fn events_are_delivered_signed_and_retried_after_a_failure(app) {
        let f = fixture(&app, LicensingSettings { max_activations: 5, ..Default::default() }, 1).await;
        let admin = app.browser();
        admin.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.ok();
        let write = token(&app, &admin, "hooks", "write").await;
        let read = token(&app, &admin, "hooks-read", "read").await;
        let hook = receiver().await;

        // Bad registrations are refused and make nothing.
        for (body, field) in [
            (json!({"url": "ftp://x.test/", "events": ["activation.created"]}), "url"),
            (json!({"url": "https://user:pw@x.test/", "events": ["activation.created"]}), "url"),
            (json!({"url": hook.url, "events": []}), "events"),
            (json!({"url": hook.url, "events": ["licence.stolen"]}), "events"),
        ] {
            let (st, problem) = write.post("/api/v1/webhooks", body).await;
            assert_eq!((st, problem["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(field)), "{problem}");
        }
        let (st, _) = read.post("/api/v1/webhooks", json!({"url": hook.url, "events": ["seat.refused"]})).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "a read-only token registers nothing");
        let carla = app.browser();
        carla.sign_in("carla@acme.test", "client password 123").await.ok();
        let client_token = token(&app, &carla, "carla", "write").await;
        let (st, _) = client_token.post("/api/v1/webhooks", json!({"url": hook.url, "events": ["seat.refused"]})).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "a client user's token registers nothing");
        let (_, list) = write.get("/api/v1/webhooks").await;
        assert_eq!(list, json!([]));

        let (st, made) = write.post("/api/v1/webhooks", json!({"url": hook.url, "events": ["activation.created", "activation.removed"]})).await;
        assert_eq!(st, StatusCode::CREATED, "{made}");
        let secret = made["secret"].as_str().expect("secret").to_owned();
        assert!(secret.starts_with("whsec_"));
        let id = made["webhook"]["id"].as_i64().expect("id");
        let (_, list) = write.get("/api/v1/webhooks").await;
        assert!(!list.to_string().contains(&secret), "the secret is shown once: {list}");

        // An activation: one event. The receiver fails the first attempt.
        hook.fail.store(1, Ordering::SeqCst);
        let (st, code, _) = api_post(&app, "/api/v1/activations", json!({"licence_key": f.keys[0], "fingerprint": fingerprint("CALC", "ws-1"), "hostname": "ws-1"})).await;
        assert_eq!(st, StatusCode::CREATED, "{code}");
        delivered(&app, &hook, 1).await;
        assert_eq!(deliver(&app).await, 0, "not again before its retry time");
        let (_, deliveries) = read.get(&format!("/api/v1/webhooks/{id}/deliveries")).await;
        assert_eq!(deliveries[0]["attempts"], 1, "{deliveries}");
        assert_eq!(deliveries[0]["last_status"], 500);
        assert_eq!(deliveries[0]["last_answer"], "try later");
        assert!(deliveries[0]["delivered_at"].is_null());

        // 30 s later it is retried and taken.
        app.clock.advance(31);
        delivered(&app, &hook, 2).await;
        let (_, deliveries) = read.get(&format!("/api/v1/webhooks/{id}/deliveries")).await;
        assert_eq!((deliveries[0]["attempts"].as_i64(), deliveries[0]["last_status"].as_i64()), (Some(2), Some(200)), "{deliveries}");
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
        assert!(!signed_by(&secret, &got[1].0, &got[1].1.replace("ws-1", "ws-2")));

        // Events it did not ask for (a licence created, a seat refused) never come to it; a
        // removal does.
        app.services.create_order(&f.admin, licensing::catalog::OrderInput { client_id: f.client.client.as_ref().expect("client").id, product_id: 1, quantity: 1, reference: "PO-2".into(), features: None, counters: None, notes: String::new() }).await.expect("order");
        let portal = licensing::activation::Remover::Portal { actor: &f.admin, force: true, free_now: true };
        app.services.remove_activation(&f.keys[0], None, portal).await.expect("removed");
        delivered(&app, &hook, 3).await;
        let got = hook.got.lock().expect("lock").clone();
        assert_eq!(got.len(), 3);
        assert_eq!(header(&got[2].0, "licentia-event"), "activation.removed");

        // A receiver that is gone: attempts recorded as not reached, then given up after the
        // last one.
        let (_, gone) = write.post("/api/v1/webhooks", json!({"url": "http://127.0.0.1:9/hook", "events": ["activation.created"]})).await;
        let gone_id = gone["webhook"]["id"].as_i64().expect("id");
        let (st, _, _) = api_post(&app, "/api/v1/activations", json!({"licence_key": f.keys[0], "fingerprint": fingerprint("CALC", "ws-3"), "hostname": "ws-3"})).await;
        assert_eq!(st, StatusCode::CREATED);
        for _ in 0..8 {
            deliver(&app).await;
            app.clock.advance(13 * 3600);
        }
        let (_, deliveries) = read.get(&format!("/api/v1/webhooks/{gone_id}/deliveries")).await;
        assert_eq!(deliveries[0]["attempts"], 8, "{deliveries}");
        assert!(deliveries[0]["failed_at"].is_i64());
        assert!(deliveries[0]["last_answer"].as_str().unwrap_or("").starts_with("not reached"), "{deliveries}");
        let (_, list) = write.get("/api/v1/webhooks").await;
        assert_eq!(list[1]["failed"], 1, "{list}");

        // Removed: nothing more is sent to it.
        let (st, _) = write.call(Method::DELETE, &format!("/api/v1/webhooks/{id}"), None).await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        let (st, _) = read.get(&format!("/api/v1/webhooks/{id}/deliveries")).await;
        assert_eq!(st, StatusCode::NOT_FOUND);
    }
}
