//! The management API: bearer tokens made in the portal (shown once, hashed, read-only or
//! read-write, revocable, client-scoped), the catalogue and web licences through it, and the
//! OpenAPI document, which must match the committed copy and every route it names.

use crate::both_backends;
use crate::helpers::*;
use protocol::activation::fingerprint;
use reqwest::StatusCode;
use serde_json::{json, Value};

pub(crate) struct Api {
    base: String,
    token: String,
}

impl Api {
    /// The same token, against `app` (a restarted server listens on another port).
    pub(crate) fn on(&self, app: &TestApp) -> Api {
        Api {
            base: app.base_url.clone(),
            token: self.token.clone(),
        }
    }

    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let text = res.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
    pub(crate) async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }
    pub(crate) async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
    /// The head of the answer to a GET of `target` sent byte for byte (as a client that does
    /// not percent-encode would send it).
    pub(crate) async fn raw_head(&self, target: &[u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let host = self.base.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
        let mut request = b"GET ".to_vec();
        request.extend_from_slice(target);
        let rest = format!(
            " HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            self.token
        );
        request.extend_from_slice(rest.as_bytes());
        stream.write_all(&request).await.expect("send");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.expect("read");
        let answer = String::from_utf8_lossy(&answer).into_owned();
        answer
            .split("\r\n\r\n")
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    /// A page of a list: its status, body and the next page's path and query (its `Link`).
    pub(crate) async fn page(&self, path: &str) -> (StatusCode, Value, Option<String>) {
        let res = reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request");
        let status = res.status();
        let next = res
            .headers()
            .get(reqwest::header::LINK)
            .map(|l| l.to_str().expect("a readable Link").to_owned())
            .map(|l| {
                let target = l.strip_suffix(">; rel=\"next\"").expect("rel=next");
                target.strip_prefix('<').expect("<…>").to_owned()
            });
        let body = res.json().await.expect("JSON");
        (status, body, next)
    }
}

/// Creates a token that works for a year, as the administrator `browser` is signed in as.
pub(crate) async fn year_token(app: &TestApp, browser: &Browser, name: &str) -> Api {
    let created = browser
        .rpc(
            "create_api_token",
            &[
                ("name", name),
                ("access", "read"),
                ("days", "365"),
                ("password", ADMIN_PASSWORD),
            ],
        )
        .await
        .ok();
    Api {
        base: app.base_url.clone(),
        token: created["secret"].as_str().expect("secret").to_owned(),
    }
}

/// Creates a token in the portal as `browser`'s user.
pub(crate) async fn token(app: &TestApp, browser: &Browser, name: &str, access: &str) -> Api {
    // Making a token asks for its owner's password again.
    let password = match browser.whoami().await["role"].as_str() {
        Some("admin") => ADMIN_PASSWORD,
        _ => "client password 123",
    };
    let created = browser
        .rpc(
            "create_api_token",
            &[("name", name), ("access", access), ("password", password)],
        )
        .await
        .ok();
    let secret = created["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("lic_"), "{secret}");
    assert_eq!(
        created["token"]["prefix"]
            .as_str()
            .map(|p| secret.starts_with(p)),
        Some(true)
    );
    Api {
        base: app.base_url.clone(),
        token: secret,
    }
}

pub(crate) fn product_body(code: &str) -> Value {
    json!({
        "code": code, "name": format!("{code} product"), "editor": "Vendor",
        "release_number": 1, "release_date": null,
        "features": [{"code": "print", "name": "Printing"}],
        "default_features": ["print"], "default_counters": {"seats": 2},
        "settings": {
            "limited": false, "validity_days": null, "fixed_start": null, "fixed_end": null,
            "expire_day_of_month": null, "end_user_removal": true, "max_activations": 3,
            "validate_every_days": 7, "licences_per_serial": 2, "heartbeat_secs": 120,
            "borrowing_allowed": false, "max_borrow_days": 30
        }
    })
}

both_backends! {
    async fn pools_bundles_and_their_removal_through_the_api(app) {
        let admin = app.admin().await;
        let api = token(&app, &admin, "floating", "write").await;
        let (_, c) = api.post("/api/v1/clients", json!({"name": "Acme"})).await;
        // A client may have several pools, told apart by name.
        let (st, office) = api.post("/api/v1/pools", json!({"client_id": c["id"], "name": "Design office"})).await;
        assert_eq!(st, StatusCode::CREATED, "{office}");
        let (st, lab) = api.post("/api/v1/pools", json!({"client_id": c["id"], "name": "Lab"})).await;
        assert_eq!(st, StatusCode::CREATED, "{lab}");
        assert_ne!(office["access_key"], lab["access_key"]);
        let (_, pools) = api.get("/api/v1/pools").await;
        assert_eq!(pools.as_array().map(Vec::len), Some(2), "{pools}");
        let id = office["id"].as_i64().expect("id");
        let key = |feature: &str, quantity: i64| json!({"editor": "Vendor", "feature": feature, "model": "ConcurrentUser", "quantity": quantity});

        // A key of no seats, and a bundle taking a feature the pool has no key of: refused.
        let (st, bad) = api.post(&format!("/api/v1/pools/{id}/keys"), key("F", 0)).await;
        assert_eq!((st, bad["detail"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("The quantity must be from 1 to 1000000.")), "{bad}");
        let (st, _) = api.post(&format!("/api/v1/pools/{id}/keys"), key("F", 2)).await;
        assert_eq!(st, StatusCode::CREATED);
        let bundle = json!({"feature": "F", "also_feature": "G"});
        let (st, bad) = api.post(&format!("/api/v1/pools/{id}/bundles"), bundle.clone()).await;
        assert_eq!((st, bad["detail"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("No key of this pool is for G: add a key of G first.")), "{bad}");
        let (_, none) = api.get(&format!("/api/v1/pools/{id}/bundles")).await;
        assert_eq!(none, json!([]));
        let (st, g) = api.post(&format!("/api/v1/pools/{id}/keys"), key("G", 2)).await;
        assert_eq!(st, StatusCode::CREATED);
        let (st, _) = api.post(&format!("/api/v1/pools/{id}/bundles"), bundle.clone()).await;
        assert_eq!(st, StatusCode::CREATED);
        let (_, listed) = api.get(&format!("/api/v1/pools/{id}/bundles")).await;
        assert_eq!(listed, json!([bundle]));
        // The bundle's last key of G cannot go while the bundle needs it.
        let (st, bad) = api.call(reqwest::Method::DELETE, &format!("/api/v1/pool-keys/{}", g["id"]), None).await;
        assert_eq!(st, StatusCode::CONFLICT, "{bad}");
        assert!(bad["detail"].as_str().unwrap_or("").contains("remove the bundle first"), "{bad}");

        // A pool with seats out cannot be deleted; the answer says why.
        let checkout = json!({"pool_key": office["access_key"], "feature": "F", "user": "ann", "host": "ws-1", "process": "cad"});
        let (st, seat, _) = api_post(&app, "/api/v1/seats", checkout.clone()).await;
        assert_eq!((st, &seat["bundled"]), (StatusCode::CREATED, &json!(["G"])), "{seat}");
        let (st, bad) = api.call(reqwest::Method::DELETE, &format!("/api/v1/pools/{id}"), None).await;
        assert_eq!(st, StatusCode::CONFLICT, "{bad}");
        assert_eq!(bad["detail"], "2 seats of this pool are in use: disconnect them in Usage (or let them end) before deleting the pool.");
        let (st, _, _) = api_post(&app, &format!("/api/v1/seats/{}/release", seat["seat_id"]), json!({"lease_token": seat["lease_token"]})).await;
        assert_eq!(st, StatusCode::NO_CONTENT);

        // Bundles can be removed; then checkouts of F take F alone.
        let path = format!("/api/v1/pools/{id}/bundles/F/G");
        assert_eq!(api.call(reqwest::Method::DELETE, &path, None).await.0, StatusCode::NO_CONTENT);
        assert_eq!(api.call(reqwest::Method::DELETE, &path, None).await.0, StatusCode::NOT_FOUND);
        assert_eq!(api.call(reqwest::Method::DELETE, &format!("/api/v1/pools/{id}/bundles/F%00/G"), None).await.0, StatusCode::BAD_REQUEST);
        let (st, alone, _) = api_post(&app, "/api/v1/seats", checkout.clone()).await;
        assert_eq!((st, &alone["bundled"]), (StatusCode::CREATED, &json!([])), "{alone}");
        api_post(&app, &format!("/api/v1/seats/{}/release", alone["seat_id"]), json!({"lease_token": alone["lease_token"]})).await;

        // Then the pool goes, with its keys; its pool key no longer checks out; the other stays.
        assert_eq!(api.call(reqwest::Method::DELETE, &format!("/api/v1/pools/{id}"), None).await.0, StatusCode::NO_CONTENT);
        assert_eq!(api.get(&format!("/api/v1/pools/{id}")).await.0, StatusCode::NOT_FOUND);
        let (st, gone, _) = api_post(&app, "/api/v1/seats", checkout).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{gone}");
        let (_, pools) = api.get("/api/v1/pools").await;
        assert_eq!(pools.as_array().map(Vec::len), Some(1), "{pools}");
        assert_eq!(pools[0]["name"], "Lab");

        // A read-only token cannot delete; nor can the client's own user, even read-write.
        let lab_id = lab["id"].as_i64().expect("id");
        api.post(&format!("/api/v1/pools/{lab_id}/keys"), key("F", 1)).await;
        api.post(&format!("/api/v1/pools/{lab_id}/keys"), key("G", 1)).await;
        assert_eq!(api.post(&format!("/api/v1/pools/{lab_id}/bundles"), bundle.clone()).await.0, StatusCode::CREATED);
        let reader = token(&app, &admin, "dashboard", "read").await;
        let client_id = c["id"].as_i64().expect("client id").to_string();
        admin.rpc("create_client_user", &[("client_id", &client_id), ("name", "Carla"), ("email", "carla@acme.test"), ("password", "client password 123")]).await.ok();
        let carla = app.browser();
        carla.sign_in("carla@acme.test", "client password 123").await.ok();
        let own = token(&app, &carla, "acme", "write").await;
        for caller in [&reader, &own] {
            assert_eq!(caller.call(reqwest::Method::DELETE, &format!("/api/v1/pools/{lab_id}"), None).await.0, StatusCode::FORBIDDEN);
            assert_eq!(caller.call(reqwest::Method::DELETE, &format!("/api/v1/pools/{lab_id}/bundles/F/G"), None).await.0, StatusCode::FORBIDDEN);
            assert_eq!(caller.post(&format!("/api/v1/pools/{lab_id}/bundles"), json!({"feature": "G", "also_feature": "F"})).await.0, StatusCode::FORBIDDEN);
        }
        let (_, kept) = api.get(&format!("/api/v1/pools/{lab_id}/bundles")).await;
        assert_eq!(kept, json!([bundle]), "nothing changed");
        assert_eq!(api.get(&format!("/api/v1/pools/{lab_id}")).await.0, StatusCode::OK);
    }

    async fn a_read_write_token_drives_the_catalogue_end_to_end(app) {
        let admin = app.admin().await;
        let api = token(&app, &admin, "billing", "write").await;
        let (st, me) = api.get("/api/v1/me").await;
        assert_eq!((st, me["role"].as_str()), (StatusCode::OK, Some("admin")), "{me}");

        let (st, p) = api.post("/api/v1/products", product_body("CAD")).await;
        assert_eq!(st, StatusCode::CREATED, "{p}");
        let (st, c) = api.post("/api/v1/clients", json!({"name": "Acme"})).await;
        assert_eq!(st, StatusCode::CREATED, "{c}");
        let (st, o) = api.post("/api/v1/orders", json!({"client_id": c["id"], "product_id": p["id"], "quantity": 2})).await;
        assert_eq!(st, StatusCode::CREATED, "{o}");
        let (st, lics) = api.get(&format!("/api/v1/orders/{}/licences", o["id"])).await;
        assert_eq!(st, StatusCode::OK, "{lics}");
        let key = lics[0]["key"].as_str().expect("key");
        let res = reqwest::Client::new().post(format!("{}/api/v1/activations", app.base_url))
            .json(&json!({"licence_key": key, "fingerprint": fingerprint("CAD", "ws-1"), "hostname": "ws-1"}))
            .send().await.expect("activate");
        assert_eq!(res.status(), StatusCode::CREATED);
        let (st, acts) = api.get("/api/v1/activations").await;
        assert_eq!(st, StatusCode::OK, "{acts}");
        assert_eq!(acts.as_array().map(Vec::len), Some(1));
        assert_eq!(acts[0]["activation"]["hostname"], "ws-1");

        // Terms through PATCH; serials through the API too.
        let lid = lics[0]["id"].as_i64().expect("id");
        let (st, l) = api.call(reqwest::Method::PATCH, &format!("/api/v1/licences/{lid}"), Some(json!({"features": [], "counters": {"seats": 7}}))).await;
        assert_eq!((st, &l["counters"]["seats"]), (StatusCode::OK, &json!(7)), "{l}");
        let (st, b) = api.post("/api/v1/serial-batches", json!({"product_id": p["id"], "count": 2})).await;
        assert_eq!((st, &b["licences_per_serial"]), (StatusCode::CREATED, &json!(2)), "{b}");
        let (st, csv) = api.get(&format!("/api/v1/serial-batches/{}/serials.csv", b["id"])).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(csv.as_str().map(|t| t.lines().count()), Some(3), "{csv}");
        let (st, serials) = api.get(&format!("/api/v1/serials?batch_id={}", b["id"])).await;
        assert_eq!((st, serials.as_array().map(Vec::len)), (StatusCode::OK, Some(2)));
        let (st, new) = api.post(&format!("/api/v1/serials/{}/reissue", serials[0]["id"]), json!({"note": "leaked"})).await;
        assert_eq!(st, StatusCode::CREATED, "{new}");
        assert_eq!(new["replaces"], serials[0]["serial"]);

        // Bad input: a problem naming the field, nothing created.
        let (st, bad) = api.post("/api/v1/orders", json!({"client_id": c["id"], "product_id": p["id"], "quantity": 0})).await;
        assert_eq!((st, bad["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("quantity")), "{bad}");
        let (st, bad) = api.call(reqwest::Method::PATCH, &format!("/api/v1/licences/{lid}"), Some(json!({"features": [], "counters": {}, "no_end": true, "expires_on": "2099-01-01"}))).await;
        assert_eq!((st, bad["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("no_end")), "{bad}");
        let mut limited = product_body("TRIAL");
        limited["settings"]["limited"] = json!(true);
        limited["settings"]["validity_days"] = json!(30);
        let (st, bad) = api.post("/api/v1/products", limited.clone()).await;
        assert_eq!((st, bad["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("end_user_removal")), "{bad}");
        limited["settings"]["end_user_removal"] = json!(false);
        assert_eq!(api.post("/api/v1/products", limited).await.0, StatusCode::CREATED);
        let (st, bad) = api.post("/api/v1/clients", json!({"name": "x\u{0}y"})).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        let (st, bad) = api.get("/api/v1/products/not-a-number").await;
        assert_eq!((st, bad["type"].as_str()), (StatusCode::BAD_REQUEST, Some("/problems/bad-request")), "{bad}");
        let (_, orders) = api.get("/api/v1/orders").await;
        assert_eq!(orders.as_array().map(Vec::len), Some(1));

        // The token's last use shows in the portal.
        let listed = admin.rpc("list_api_tokens", &[]).await.ok();
        assert!(listed[0]["last_used_at"].is_i64(), "{listed}");
        assert_eq!(listed[0]["name"], "billing");
        assert!(listed.to_string().find(&api.token).is_none(), "the secret is never listed");
    }

    async fn read_only_revoked_and_missing_tokens_are_refused(app) {
        let admin = app.admin().await;
        let reader = token(&app, &admin, "dashboard", "read").await;
        let (st, _) = reader.get("/api/v1/products").await;
        assert_eq!(st, StatusCode::OK);
        let (st, body) = reader.post("/api/v1/clients", json!({"name": "Nope"})).await;
        assert_eq!((st, body["type"].as_str()), (StatusCode::FORBIDDEN, Some("/problems/read-only-token")), "{body}");

        let writer = token(&app, &admin, "ci", "write").await;
        let listed = admin.rpc("list_api_tokens", &[]).await.ok();
        let id = listed.as_array().and_then(|l| l.iter().find(|t| t["name"] == "ci")).map(|t| t["id"].to_string()).expect("ci");
        admin.rpc("revoke_api_token", &[("id", &id)]).await.ok();
        let (st, body) = writer.get("/api/v1/products").await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{body}");

        let res = reqwest::get(format!("{}/api/v1/products", app.base_url)).await.expect("request");
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert!(res.headers().get("www-authenticate").is_some());
        for forged in ["lic_", "lic_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "Basic abc"] {
            let api = Api { base: app.base_url.clone(), token: forged.into() };
            assert_eq!(api.get("/api/v1/me").await.0, StatusCode::UNAUTHORIZED, "{forged}");
        }
        let clients: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clients").fetch_one(app.services.db().pool()).await.expect("count");
        assert_eq!(clients, 0);
    }

    async fn a_client_users_token_reaches_only_its_own_client(app) {
        let admin = app.admin().await;
        let (acme, carla) = app.client_user(&admin, "Acme", "carla@acme.test").await;
        let (globex, _) = app.client_user(&admin, "Globex", "gus@globex.test").await;
        let api = token(&app, &carla, "acme-scripts", "write").await;
        let (st, own) = api.get(&format!("/api/v1/clients/{acme}")).await;
        assert_eq!(st, StatusCode::OK, "{own}");
        let (st, other) = api.get(&format!("/api/v1/clients/{globex}")).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{other}");
        let (st, _) = api.get("/api/v1/clients").await;
        assert_eq!(st, StatusCode::FORBIDDEN, "the list of all clients is the vendor's");
        let (st, _) = api.get(&format!("/api/v1/orders?client_id={globex}")).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        let (st, _) = api.get("/api/v1/serials").await;
        assert_eq!(st, StatusCode::FORBIDDEN, "web licences are the vendor's");
        let (st, _) = api.post("/api/v1/clients", json!({"name": "Mine"})).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "a client cannot create clients, even with a read-write token");
        // An administrator sees the client's token, with its client.
        let listed = admin.rpc("list_api_tokens", &[]).await.ok();
        assert_eq!(listed[0]["client_name"], "Acme");
        // The client user sees only its own tokens.
        token(&app, &admin, "vendor", "read").await;
        let mine = carla.rpc("list_api_tokens", &[]).await.ok();
        assert_eq!(mine.as_array().map(Vec::len), Some(1));
    }
}

/// The served document is the committed `docs/openapi.json` (regenerate it with
/// `server openapi > docs/openapi.json`), and every operation it lists is routed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_the_handlers() {
    within_limit(async {
        let app = TestApp::spawn(licensing::Backend::Sqlite, &[]).await;
        let served: Value = reqwest::get(format!("{}/api/v1/openapi.json", app.base_url))
            .await
            .expect("request")
            .json()
            .await
            .expect("json");
        let committed: Value = serde_json::from_str(include_str!("../../../docs/openapi.json")).expect("docs/openapi.json is JSON");
        assert!(
            served == committed,
            "docs/openapi.json is out of date: run `cargo run -p server -- openapi > docs/openapi.json`"
        );
        assert_eq!(served["openapi"].as_str().map(|v| v.starts_with("3.")), Some(true));
        let admin = app.admin().await;
        let api = token(&app, &admin, "probe", "read").await;
        let paths = served["paths"].as_object().expect("paths");
        assert!(paths.len() >= 15, "{}", paths.len());
        for (path, ops) in paths {
            for method in ops.as_object().expect("operations").keys() {
                let url = path.replace("{id}", "999999");
                let m: reqwest::Method = method.to_uppercase().parse().expect("method");
                let (st, body) = api.call(m, &url, Some(json!({}))).await;
                assert_ne!(st, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                assert!(
                    body.get("detail").and_then(Value::as_str) != Some("There is no such API endpoint."),
                    "{method} {path} is documented but not routed"
                );
            }
        }
    })
    .await;
}
