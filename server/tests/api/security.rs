//! Attacks from the security review, performed and shown refused: cross-site requests, and the
//! headers that keep pages out of caches, frames and injected scripts.

use crate::both_backends;
use crate::helpers::*;
use licensing::Backend;
use reqwest::StatusCode;

/// A browser on another site posting to the portal: the victim's cookie rides along, `Origin`
/// says where the page came from.
async fn cross_site_rpc(
    b: &Browser,
    name: &str,
    form: &[(&str, &str)],
    header: (&str, &str),
) -> Reply {
    b.rpc_with(name, form, &[header]).await
}

/// An administrator's write token, made in the portal.
async fn write_token(admin: &Browser) -> String {
    let created = admin
        .rpc(
            "create_api_token",
            &[
                ("name", "attack"),
                ("access", "write"),
                ("password", ADMIN_PASSWORD),
            ],
        )
        .await
        .ok();
    created["secret"].as_str().expect("secret").to_owned()
}

both_backends! {
    async fn nul_and_invalid_utf8_in_a_path_are_refused_not_a_server_error(app) {
        let admin = app.admin().await;
        let token = write_token(&admin).await;
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        for bad in ["%00", "a%00b", "%FF%FE", "%C3%28"] {
            for (method, path) in [
                ("GET", format!("/api/v1/serials/{bad}")),
                ("GET", format!("/api/v1/pools/1/usage/{bad}/x")),
                ("GET", format!("/api/v1/pools/1/usage/Vendor/{bad}")),
                ("DELETE", format!("/api/v1/pools/1/bundles/{bad}/x")),
                ("GET", format!("/api/v1/licences/{bad}")),
                ("GET", format!("/setup/{bad}")),
                ("GET", format!("/admin/clients/{bad}")),
                ("GET", format!("/admin/serial-batches/{bad}/serials.csv")),
            ] {
                let res = http
                    .request(method.parse().expect("method"), format!("{}{path}", app.base_url))
                    .bearer_auth(&token)
                    .header("cookie", format!("licentia_session={}", admin.session_token().expect("signed in")))
                    .send()
                    .await
                    .expect("request");
                let status = res.status();
                assert!(status.is_client_error() || status.is_redirection() || status == StatusCode::OK,
                    "{method} {path}: {status}");
                if path.starts_with("/api/") {
                    assert!(status.is_client_error(), "{method} {path}: {status}");
                    assert_eq!(res.headers()["content-type"], "application/problem+json", "{method} {path}");
                }
            }
        }
    }

    async fn a_form_posted_from_another_site_is_refused_and_changes_nothing(app) {
        let admin = app.admin().await;
        let form = [("client[name]", "Forged"), ("client[contact_email]", ""), ("client[notes]", "")];
        for header in [("origin", "https://evil.example"), ("origin", "null"), ("sec-fetch-site", "cross-site")] {
            let reply = cross_site_rpc(&admin, "create_client", &form, header).await;
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{header:?}");
            assert_eq!(reply.error(), "Refused", "{header:?}");
            assert!(reply.message().contains("another site"), "{}", reply.message());
        }
        assert_eq!(admin.rpc("list_clients", &[]).await.ok(), serde_json::json!([]));
        // The portal's own pages post with their own origin.
        let own = cross_site_rpc(&admin, "create_client", &form, ("origin", &app.base_url)).await;
        assert_eq!(own.ok()["name"], "Forged");
    }

    async fn login_csrf_from_another_site_signs_nobody_in(app) {
        let _admin = app.admin().await;
        let victim = app.browser();
        let form = [("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)];
        let reply = cross_site_rpc(&victim, "sign_in", &form, ("origin", "https://evil.example")).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert!(!reply.headers.contains_key("set-cookie"));
        assert_eq!(victim.whoami().await, serde_json::Value::Null);
    }

    async fn an_api_call_from_another_sites_page_is_refused(app) {
        let res = reqwest::Client::new()
            .post(format!("{}/api/v1/activations/validate", app.base_url))
            .header("origin", "https://evil.example")
            .json(&serde_json::json!({"activation_code": "x", "fingerprint": "y"}))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let body: serde_json::Value = res.json().await.expect("json");
        assert_eq!(body["type"], "/problems/forbidden");
    }

    async fn pages_carry_a_script_policy_with_their_nonce_and_are_not_stored(app) {
        let b = app.browser();
        let page = b.get("/login").await;
        let csp = page.headers()["content-security-policy"].to_str().expect("ascii").to_owned();
        assert_eq!(page.headers()["cache-control"], "no-store");
        assert!(!page.headers().contains_key("strict-transport-security"), "plain http");
        let html = page.text().await.expect("html");
        let nonce = csp
            .split("'nonce-")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .expect("a nonce in the policy");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        // Every inline script of the page carries the nonce; none runs without it.
        let scripts = html.matches("<script").count();
        assert!(scripts > 0);
        assert_eq!(html.matches(&format!("nonce=\"{nonce}\"")).count(), scripts, "{html}");

        let api = reqwest::get(format!("{}/api/v1/openapi.json", app.base_url)).await.expect("request");
        assert_eq!(api.headers()["cache-control"], "no-store");
        assert_eq!(api.headers()["content-security-policy"], "default-src 'none'; frame-ancestors 'none'");
    }
}

/// Served over https, browsers are told to keep to it.
#[tokio::test]
async fn https_deployments_send_strict_transport_security() {
    let app = TestApp::spawn(
        Backend::Sqlite,
        &[("LICENTIA_PUBLIC_URL", "https://lic.example.test")],
    )
    .await;
    let res = reqwest::get(format!("{}/healthz", app.base_url))
        .await
        .expect("request");
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    // With a public URL, it alone is the origin changes may come from.
    let b = app.browser();
    let from_host = cross_site_rpc(
        &b,
        "sign_in",
        &[("email", ADMIN_EMAIL), ("password", "x")],
        ("origin", &app.base_url),
    )
    .await;
    assert_eq!(from_host.status, StatusCode::FORBIDDEN);
    let from_public = cross_site_rpc(
        &b,
        "sign_in",
        &[("email", ADMIN_EMAIL), ("password", "x")],
        ("origin", "https://lic.example.test"),
    )
    .await;
    assert_eq!(from_public.error(), "BadCredentials");
}

async fn api_status(app: &TestApp, token: &str) -> StatusCode {
    reqwest::Client::new()
        .get(format!("{}/api/v1/me", app.base_url))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
        .status()
}

both_backends! {
    async fn a_token_is_made_only_with_the_owners_password_and_for_at_most_a_year(app) {
        let admin = app.admin().await;
        for (password, days, field) in [("", "90", "password"), ("wrong password", "90", "password"), (ADMIN_PASSWORD, "366", "days"), (ADMIN_PASSWORD, "0", "days"), (ADMIN_PASSWORD, "soon", "days")] {
            let reply = admin.rpc("create_api_token", &[("name", "x"), ("access", "write"), ("days", days), ("password", password)]).await;
            assert_eq!(reply.error(), "Invalid", "{password:?} {days}");
            assert_eq!(reply.body["Invalid"]["field"], field, "{password:?} {days}");
        }
        assert_eq!(admin.rpc("list_api_tokens", &[]).await.ok(), serde_json::json!([]), "nothing was made");
        // A day's token works for a day, then is refused.
        let created = admin.rpc("create_api_token", &[("name", "short"), ("access", "read"), ("days", "1"), ("password", ADMIN_PASSWORD)]).await.ok();
        let secret = created["secret"].as_str().expect("secret").to_owned();
        assert_eq!(created["token"]["expires_at"].as_i64(), created["token"]["created_at"].as_i64().map(|t| t + 86_400));
        assert_eq!(api_status(&app, &secret).await, StatusCode::OK);
        app.clock.advance(86_400);
        assert_eq!(api_status(&app, &secret).await, StatusCode::UNAUTHORIZED);
        admin.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.ok();
        assert_eq!(admin.rpc("list_api_tokens", &[]).await.ok()[0]["expired"], true);
    }

    async fn a_password_reset_revokes_the_users_tokens_and_a_change_does_if_asked(app) {
        let admin = app.admin().await;
        let (_client, carla) = app.client_user(&admin, "Acme", "carla@acme.test").await;
        let carla_id = carla.whoami().await["id"].to_string();
        let make = |b: Browser, password: &'static str| async move {
            let created = b.rpc("create_api_token", &[("name", "t"), ("access", "read"), ("password", password)]).await.ok();
            created["secret"].as_str().expect("secret").to_owned()
        };
        let token = make(carla.clone(), "client password 123").await;
        assert_eq!(api_status(&app, &token).await, StatusCode::OK);
        // Someone who knew Carla's password made a token; the administrator resets it…
        admin.rpc("reset_user_password", &[("user_id", &carla_id), ("password", "brand new password 1")]).await.ok();
        // …and the token made with the old one is refused with it.
        assert_eq!(api_status(&app, &token).await, StatusCode::UNAUTHORIZED);

        let carla = app.browser();
        carla.sign_in("carla@acme.test", "brand new password 1").await.ok();
        let kept = make(carla.clone(), "brand new password 1").await;
        let form = |revoke: bool| {
            let mut f = vec![("current_password", "brand new password 1"), ("new_password", "another new password 2"), ("new_password_confirm", "another new password 2")];
            if revoke { f.push(("revoke_tokens", "on")); }
            f
        };
        carla.rpc("change_password", &form(false)).await.ok();
        assert_eq!(api_status(&app, &kept).await, StatusCode::OK, "a change keeps tokens unless asked");
        let form2 = [("current_password", "another new password 2"), ("new_password", "a third new password 3"), ("new_password_confirm", "a third new password 3"), ("revoke_tokens", "on")];
        carla.rpc("change_password", &form2).await.ok();
        assert_eq!(api_status(&app, &kept).await, StatusCode::UNAUTHORIZED);
    }

    async fn a_user_sees_their_own_sessions_and_ends_one(app) {
        let admin = app.admin().await;
        let laptop = app.browser();
        laptop.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.ok();
        let list = admin.rpc("list_own_sessions", &[]).await.ok();
        let list = list.as_array().expect("list");
        assert_eq!(list.len(), 2);
        assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
        let other = list.iter().find(|s| s["current"] == false).expect("the laptop's");
        assert_eq!(other["address"], "127.0.0.1");
        // Another user cannot end it, nor guess at ids.
        let (_c, carla) = app.client_user(&admin, "Acme", "carla@acme.test").await;
        let id = other["id"].as_str().expect("id");
        for bad in [id, "zz", "' OR 1=1 --"] {
            assert_eq!(carla.rpc("end_own_session", &[("id", bad)]).await.error(), "NotFound", "{bad}");
        }
        assert_eq!(laptop.whoami().await["email"], ADMIN_EMAIL);
        admin.rpc("end_own_session", &[("id", id)]).await.ok();
        assert_eq!(laptop.whoami().await, serde_json::Value::Null);
        assert_eq!(admin.rpc("list_own_sessions", &[]).await.ok().as_array().map(Vec::len), Some(1));
    }
}

async fn token_of(admin: &Browser, access: &str) -> String {
    let created = admin
        .rpc(
            "create_api_token",
            &[
                ("name", access),
                ("access", access),
                ("password", ADMIN_PASSWORD),
            ],
        )
        .await
        .ok();
    created["secret"].as_str().expect("secret").to_owned()
}

async fn get_json(app: &TestApp, token: &str, path: &str) -> (StatusCode, serde_json::Value) {
    let res = reqwest::Client::new()
        .get(format!("{}{path}", app.base_url))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = res.status();
    let text = res.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

both_backends! {
    async fn a_read_only_token_sees_secrets_that_act_masked_and_cannot_drain_a_pool(app) {
        let admin = app.admin().await;
        let me = app.services.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD, "t", None).await.expect("admin").user;
        let pool = crate::seeded::acme_pool_of(&app.services, &me, 300).await;
        app.services.add_pool_key(&me, pool.id, key_input("CAD", "ConcurrentUser", 2)).await.expect("key");
        let product = app.services.save_product(&me, None, product("CALC", protocol::catalog::LicensingSettings::default())).await.expect("product");
        app.services
            .generate_serials(&me, licensing::web::BatchInput { product_id: product.id, count: 1, features: None, licences_per_serial: Some(1), note: String::new() })
            .await
            .expect("batch");
        let serial = app.services.list_serials(&me, licensing::web::SerialQuery::default(), &licensing::page::Page::ALL).await.expect("serials").items[0].serial.clone();
        let (st, act, _) = api_post(&app, "/api/v1/activations", serde_json::json!({"product": "CALC", "serial": serial, "fingerprint": protocol::activation::fingerprint("CALC", "ws-1"), "hostname": "ws-1"})).await;
        assert_eq!(st, StatusCode::CREATED, "{act}");

        let read = token_of(&admin, "read").await;
        let write = token_of(&admin, "write").await;
        // The read-write token sees each secret whole (but the pool key, which nobody sees
        // again after it was made: only its digest is kept)…
        let (_, pools) = get_json(&app, &write, "/api/v1/pools").await;
        assert_eq!(pools[0]["access_key"], format!("{}…", &pool.access_key[..9]));
        let (_, serials) = get_json(&app, &write, "/api/v1/serials").await;
        assert_eq!(serials[0]["serial"], serial.as_str());
        // …the read-only one sees their heads only, however it asks.
        let (_, pools) = get_json(&app, &read, "/api/v1/pools").await;
        let masked_key = pools[0]["access_key"].as_str().expect("key").to_owned();
        // (Nobody sees a pool key whole after it was made: only its head.)
        assert_eq!(masked_key, format!("{}…", &pool.access_key[..9]));
        let (_, one) = get_json(&app, &read, &format!("/api/v1/pools/{}", pool.id)).await;
        assert_eq!(one["access_key"], masked_key.as_str());
        let (_, serials) = get_json(&app, &read, "/api/v1/serials").await;
        assert!(serials[0]["serial"].as_str().expect("serial").ends_with('…'), "{serials}");
        let (_, detail) = get_json(&app, &read, &format!("/api/v1/serials/{}", serials[0]["id"])).await;
        let text = detail.to_string();
        assert!(!text.contains(&serial[5..]) && !text.contains(&protocol::activation::fingerprint("CALC", "ws-1")[4..]), "{text}");
        let (_, acts) = get_json(&app, &read, "/api/v1/activations").await;
        assert!(acts[0]["licence_key"].as_str().expect("key").ends_with('…'), "{acts}");
        assert!(acts[0]["activation"]["fingerprint"].as_str().expect("fp").ends_with('…'), "{acts}");
        // Searching would spell a serial out; the CSV would hand them all over.
        let (st, problem) = get_json(&app, &read, &format!("/api/v1/serials?search={}", &serial[..4])).await;
        assert_eq!((st, problem["type"].as_str()), (StatusCode::FORBIDDEN, Some("/problems/read-only-token")));
        let (st, _) = get_json(&app, &read, &format!("/api/v1/serial-batches/{}/serials.csv", serials[0]["batch_id"])).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
        // A serial's pool is named by its serial: masked too, in the pools and in the usage.
        let serial_id = serials[0]["id"].as_i64().expect("id");
        let by_serial = app.services.create_pool(&me, protocol::floating::PoolOwner::Serial(serial_id), "", None).await.expect("serial pool");
        app.services.add_pool_key(&me, by_serial.id, key_input("WEB", "ConcurrentUser", 1)).await.expect("key");
        let (_, pools) = get_json(&app, &read, "/api/v1/pools").await;
        let (_, usage) = get_json(&app, &read, "/api/v1/usage").await;
        for owner in pools.as_array().expect("pools").iter().chain(usage.as_array().expect("usage")).map(|p| p["owner"].as_str().unwrap_or_default()) {
            assert!(!owner.contains(&serial[5..]), "{owner}");
        }
        let (_, usage) = get_json(&app, &write, "/api/v1/usage").await;
        assert!(usage.as_array().expect("usage").iter().any(|u| u["owner"] == serial.as_str()), "{usage}");
        // What it saw checks nothing out.
        let (st, refused, _) = api_post(&app, "/api/v1/seats", serde_json::json!({"pool_key": masked_key, "feature": "CAD", "user": "x", "host": "h", "process": "p"})).await;
        assert!(st.is_client_error(), "{st} {refused}");
        assert_eq!(app.services.usage_per_feature(&me).await.expect("usage")[0].in_use, 0);
    }
}

async fn checkout_with(app: &TestApp, key: &str, user: &str) -> (StatusCode, serde_json::Value) {
    let (st, body, _) = api_post(app, "/api/v1/seats", serde_json::json!({"pool_key": key, "feature": "CAD", "user": user, "host": user, "process": "cad"})).await;
    (st, body)
}

async fn rotate(
    app: &TestApp,
    token: &str,
    pool_id: i64,
    grace_hours: i64,
) -> (StatusCode, serde_json::Value) {
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/pools/{pool_id}/key", app.base_url))
        .bearer_auth(token)
        .json(&serde_json::json!({"grace_hours": grace_hours}))
        .send()
        .await
        .expect("request");
    let status = res.status();
    (status, res.json().await.expect("json"))
}

both_backends! {
    async fn a_replaced_pool_key_works_through_its_grace_then_is_refused_saying_so(app) {
        let admin = app.admin().await;
        let me = app.services.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD, "t", None).await.expect("admin").user;
        let pool = crate::seeded::acme_pool_of(&app.services, &me, 300).await;
        app.services.add_pool_key(&me, pool.id, key_input("CAD", "ConcurrentUser", 20)).await.expect("key");
        let old = pool.access_key.clone();
        // Only a digest of the key is kept: the database holds no copy of it.
        let stored: Vec<String> = sqlx::query_scalar("SELECT access_key FROM pools").fetch_all(app.services.db().pool()).await.expect("rows");
        assert!(!stored.iter().any(|k| k.contains(&old[5..])), "{stored:?}");

        let read = token_of(&admin, "read").await;
        let write = token_of(&admin, "write").await;
        assert_eq!(rotate(&app, &read, pool.id, 2).await.0, StatusCode::FORBIDDEN);
        let (st, bad) = rotate(&app, &write, pool.id, 721).await;
        assert_eq!((st, bad["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("grace_hours")));
        let (st, rotated) = rotate(&app, &write, pool.id, 2).await;
        assert_eq!(st, StatusCode::OK, "{rotated}");
        let new = rotated["access_key"].as_str().expect("the new key, this once").to_owned();
        assert!(new.starts_with("POOL-") && new != old && !new.ends_with('…'), "{new}");
        assert_eq!(rotated["previous_key_until"].as_i64(), Some(app.clock.now() + 2 * 3600));
        let (_, seen) = get_json(&app, &write, &format!("/api/v1/pools/{}", pool.id)).await;
        assert_eq!(seen["access_key"], format!("{}…", &new[..9]), "never shown again");

        // Both keys check out during the grace…
        assert_eq!(checkout_with(&app, &old, "ann").await.0, StatusCode::CREATED);
        assert_eq!(checkout_with(&app, &new, "bob").await.0, StatusCode::CREATED);
        // …then the old one is refused with a problem that says what happened; a seat taken
        // with it just before keeps its lease (it is not ended with the grace).
        app.clock.advance(2 * 3600 - 60);
        let (st, kept) = checkout_with(&app, &old, "kim").await;
        assert_eq!(st, StatusCode::CREATED, "{kept}");
        app.clock.advance(60);
        let (st, _, _) = api_post(&app, &format!("/api/v1/seats/{}/heartbeat", kept["seat_id"]), serde_json::json!({"lease_token": kept["lease_token"]})).await;
        assert_eq!(st, StatusCode::OK);
        let (st, refused) = checkout_with(&app, &old, "cat").await;
        assert_eq!(st, StatusCode::GONE, "{refused}");
        assert_eq!(refused["type"], "/problems/pool-key-replaced");
        assert!(refused["detail"].as_str().unwrap_or("").contains("ask the pool's owner for the new key"), "{refused}");
        assert_eq!(checkout_with(&app, &new, "cat").await.0, StatusCode::CREATED);
        // Replaced again while the one before is in its grace: each keeps its own grace.
        let (_, second) = rotate(&app, &write, pool.id, 5).await;
        let newer = second["access_key"].as_str().expect("key").to_owned();
        let (_, third) = rotate(&app, &write, pool.id, 1).await;
        let newest = third["access_key"].as_str().expect("key").to_owned();
        assert_eq!(checkout_with(&app, &new, "dan").await.0, StatusCode::CREATED, "in its 5 hours");
        app.clock.advance(3600);
        assert_eq!(checkout_with(&app, &newer, "eve").await.0, StatusCode::GONE, "its hour is over");
        assert_eq!(checkout_with(&app, &new, "fay").await.0, StatusCode::CREATED);
        assert_eq!(checkout_with(&app, &newest, "gus").await.0, StatusCode::CREATED);
        app.clock.advance(4 * 3600);
        assert_eq!(checkout_with(&app, &new, "hal").await.0, StatusCode::GONE);
        assert_eq!(checkout_with(&app, &old, "ida").await.0, StatusCode::GONE, "every old key says replaced");
        // A key nobody ever had is still just unknown.
        assert_eq!(checkout_with(&app, "POOL-NOT-A-KEY", "dan").await.0, StatusCode::UNPROCESSABLE_ENTITY);
    }

    async fn only_the_pools_owner_replaces_its_key(app) {
        let admin = app.admin().await;
        let me = app.services.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD, "t", None).await.expect("admin").user;
        let (acme, carla) = app.client_user(&admin, "Acme", "carla@acme.test").await;
        let (_globex, mallory) = app.client_user(&admin, "Globex", "mallory@globex.test").await;
        let pool = app.services.create_pool(&me, protocol::floating::PoolOwner::Client(acme), "", None).await.expect("pool");
        let id = pool.id.to_string();
        let refused = mallory.rpc("rotate_pool_key", &[("pool_id", &id), ("grace_hours", "0")]).await;
        assert!(refused.status.is_client_error(), "{:?}", refused.body);
        let rotated = carla.rpc("rotate_pool_key", &[("pool_id", &id), ("grace_hours", "0")]).await.ok();
        assert!(rotated["access_key"].as_str().is_some_and(|k| k.starts_with("POOL-") && !k.ends_with('…')), "{rotated}");
        // With no grace the old key stops at once.
        assert_eq!(checkout_with(&app, &pool.access_key, "ann").await.0, StatusCode::GONE);
    }

    async fn pool_keys_stored_before_are_turned_into_digests_at_start(app) {
        let me = admin_user(&app).await;
        let pool = crate::seeded::acme_pool_of(&app.services, &me, 300).await;
        app.services.add_pool_key(&me, pool.id, key_input("CAD", "ConcurrentUser", 1)).await.expect("key");
        // A row as an earlier version wrote it: the key itself, no head.
        sqlx::query("UPDATE pools SET access_key = 'POOL-LEGACY-KEY-1234', key_head = '' WHERE id = $1")
            .bind(pool.id)
            .execute(app.services.db().pool())
            .await
            .expect("legacy row");
        assert_eq!(app.services.ensure_pool_keys_hashed().await.expect("convert"), 1);
        assert_eq!(app.services.ensure_pool_keys_hashed().await.expect("again"), 0);
        let stored: String = sqlx::query_scalar("SELECT access_key FROM pools WHERE id = $1").bind(pool.id).fetch_one(app.services.db().pool()).await.expect("row");
        assert!(!stored.contains("LEGACY"), "{stored}");
        assert_eq!(checkout_with(&app, "pool-legacy-key-1234 ", "ann").await.0, StatusCode::CREATED);
    }
}

both_backends! {
    async fn a_seat_whose_lease_ran_out_is_handed_to_whoever_names_its_session(app) {
        let me = admin_user(&app).await;
        let pool = crate::seeded::acme_pool_of(&app.services, &me, 60).await;
        app.services.add_pool_key(&me, pool.id, key_input("CAD", "ConcurrentUser", 1)).await.expect("key");
        let ann = |installation: Option<&str>| {
            let mut body = serde_json::json!({"pool_key": pool.access_key, "feature": "CAD", "user": "ann", "host": "ws-1", "process": "cad"});
            if let Some(i) = installation {
                body["installation"] = serde_json::json!(i);
            }
            body
        };
        let (st, first, _) = api_post(&app, "/api/v1/seats", ann(Some("ann's installation secret"))).await;
        assert_eq!(st, StatusCode::CREATED, "{first}");
        let (st, _, _) = api_post(&app, "/api/v1/seats", ann(None)).await;
        assert_eq!(st, StatusCode::CONFLICT, "while its lease runs, it is ann's");
        // Its holder died (no heartbeat for the lease) and the reclaimer has not come by yet:
        // naming its session takes it, rather than a 409 until the reclaim.
        app.clock.advance(61);
        let (st, again, _) = api_post(&app, "/api/v1/seats", ann(Some("the taker's installation"))).await;
        assert_eq!(st, StatusCode::CREATED, "{again}");
        assert_eq!(again["seat_id"], first["seat_id"]);
        // It is the taker's now: the installation that held it before no longer resumes it.
        let (st, _, _) = api_post(&app, "/api/v1/seats", ann(Some("ann's installation secret"))).await;
        assert_eq!(st, StatusCode::CONFLICT);
        let (st, _, _) = api_post(&app, "/api/v1/seats", ann(Some("the taker's installation"))).await;
        assert_eq!(st, StatusCode::CREATED);
    }
}

/// Checkouts past the limits are answered 429 with the wait: an address that keeps naming no
/// pool (guessing keys) is refused before anything is looked up, and a pool takes so many a
/// minute.
#[tokio::test]
async fn checkouts_past_the_rate_limits_wait_a_minute() {
    let app = TestApp::spawn(
        Backend::Sqlite,
        &[
            ("LICENTIA_TRUST_FORWARDED_FOR", "true"),
            ("LICENTIA_CHECKOUT_MAX_PER_MINUTE_ADDRESS", "4"),
            ("LICENTIA_CHECKOUT_MAX_PER_MINUTE_POOL", "6"),
        ],
    )
    .await;
    let me = admin_user(&app).await;
    let pool = crate::seeded::acme_pool_of(&app.services, &me, 300).await;
    app.services
        .add_pool_key(&me, pool.id, key_input("CAD", "ConcurrentUser", 100))
        .await
        .expect("key");
    let from = |address: &str, key: &str, user: &str| {
        reqwest::Client::new()
            .post(format!("{}/api/v1/seats", app.base_url))
            .header("x-forwarded-for", address)
            .json(&serde_json::json!({"pool_key": key, "feature": "CAD", "user": user, "host": user, "process": "cad"}))
            .send()
    };
    // An office behind one address checks out as often as it likes: checkouts that find their
    // pool never count against an address.
    for i in 0..5 {
        let res = from("192.0.2.1", &pool.access_key, &format!("office{i}"))
            .await
            .expect("request");
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    // Guessing keys from one address: after four misses in a minute the address is refused
    // before anything is looked up — a right key included, so the refusal tells nothing.
    for i in 0..4 {
        let res = from("203.0.113.9", &format!("POOL-GUESS-{i}"), "x")
            .await
            .expect("request");
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let guess = from("203.0.113.9", "POOL-GUESS-5", "x")
        .await
        .expect("request");
    assert_eq!(guess.status(), StatusCode::TOO_MANY_REQUESTS);
    let res = from("203.0.113.9", &pool.access_key, "x")
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: i64 = res.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("secs");
    assert!((1..=60).contains(&wait), "{wait}");
    let problem: serde_json::Value = res.json().await.expect("json");
    assert_eq!(problem["type"], "/problems/throttled");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("from this address"),
        "{problem}"
    );
    // Four misses are enough: the right key is then refused as if it were a fifth guess.
    for i in 0..4 {
        let res = from("203.0.113.10", &format!("POOL-GUESS-{i}"), "y")
            .await
            .expect("request");
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let res = from("203.0.113.10", &pool.access_key, "y")
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    // The pool itself: six checkouts a minute from anywhere (five were the office's), then 429
    // for everyone.
    let res = from("198.51.100.1", &pool.access_key, "u1")
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = from("198.51.100.77", &pool.access_key, "late")
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.text().await.expect("body").contains("into this pool"));
    assert_eq!(
        app.services.usage_per_feature(&me).await.expect("usage")[0].in_use,
        6
    );
    // A minute later both count again from nothing.
    app.clock.advance(60);
    let res = from("203.0.113.9", &pool.access_key, "x")
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::CREATED);
    // A replaced key in its grace counts in a bucket of its own: a leaked old key flooding the
    // pool does not crowd out the new one.
    let new = app
        .services
        .rotate_pool_key(&me, pool.id, 1)
        .await
        .expect("replaced")
        .access_key;
    for i in 0..6 {
        let res = from(
            &format!("198.51.100.{}", 100 + i),
            &pool.access_key,
            &format!("old{i}"),
        )
        .await
        .expect("request");
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let res = from("198.51.100.200", &pool.access_key, "old-late")
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let res = from("198.51.100.201", &new, "new").await.expect("request");
    assert_eq!(res.status(), StatusCode::CREATED);
}

both_backends! {
    async fn the_pools_owner_caps_what_one_checkout_may_take(app) {
        let admin = app.admin().await;
        let me = app.services.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD, "t", None).await.expect("admin").user;
        let (acme, carla) = app.client_user(&admin, "Acme", "carla@acme.test").await;
        let (_globex, mallory) = app.client_user(&admin, "Globex", "mallory@globex.test").await;
        let pool = app.services.create_pool(&me, protocol::floating::PoolOwner::Client(acme), "", None).await.expect("pool");
        app.services.add_pool_key(&me, pool.id, key_input("T", "Token", 100)).await.expect("key");
        let id = pool.id.to_string();
        let take = |tokens: i64, user: &'static str| {
            let key = pool.access_key.clone();
            let app = &app;
            async move {
                api_post(app, "/api/v1/seats", serde_json::json!({"pool_key": key, "feature": "T", "tokens": tokens, "user": user, "host": user, "process": "p"})).await
            }
        };
        // Uncapped, one checkout with the pool key could take the whole key.
        assert!(mallory.rpc("set_checkout_cap", &[("pool_id", &id), ("max_tokens", "5")]).await.status.is_client_error());
        assert_eq!(carla.rpc("set_checkout_cap", &[("pool_id", &id), ("max_tokens", "0")]).await.error(), "Invalid");
        let capped = carla.rpc("set_checkout_cap", &[("pool_id", &id), ("max_tokens", "5")]).await.ok();
        assert_eq!(capped["max_tokens_per_checkout"], 5);
        let (st, refused, _) = take(6, "greedy").await;
        assert_eq!((st, refused["type"].as_str()), (StatusCode::FORBIDDEN, Some("/problems/refused")), "{refused}");
        assert!(refused["detail"].as_str().unwrap_or("").contains("at most 5 tokens"), "{refused}");
        assert_eq!(app.services.usage_per_feature(&me).await.expect("usage")[0].in_use, 0, "nothing taken");
        assert_eq!(take(5, "fair").await.0, StatusCode::CREATED);
        // Lifted, as many as the key has.
        carla.rpc("set_checkout_cap", &[("pool_id", &id), ("max_tokens", "")]).await.ok();
        assert_eq!(take(50, "big").await.0, StatusCode::CREATED);
    }
}

/// A server given another master key than the one its database's signing keys were sealed
/// with (another user's default file, a lost file made anew) stops at start, saying so, and
/// seals nothing under it.
#[tokio::test]
async fn a_server_with_the_wrong_master_key_refuses_to_start() {
    let (url, _dir) = fresh_database(Backend::Sqlite).await;
    let open = |key: String| {
        let url = url.clone();
        async move {
            let config = server::config::Config::from_sources(
                [
                    ("DATABASE_URL".to_owned(), url),
                    ("LICENTIA_MASTER_KEY".to_owned(), key),
                ]
                .into(),
                None,
            )
            .expect("config");
            server::open_services(&config, licensing::Clock::system()).await
        }
    };
    let right = licensing::keys::MasterKey::random().to_base64();
    let services = open(right.clone()).await.expect("first start");
    let kids: Vec<String> = sqlx::query_scalar("SELECT kid FROM signing_keys")
        .fetch_all(services.db().pool())
        .await
        .expect("keys");
    services.db().close().await;
    let refused = open(licensing::keys::MasterKey::random().to_base64())
        .await
        .err()
        .expect("refused");
    assert!(
        refused
            .to_string()
            .contains("does not open the signing key"),
        "{refused}"
    );
    let services = open(right).await.expect("the right key still starts");
    let after: Vec<String> = sqlx::query_scalar("SELECT kid FROM signing_keys")
        .fetch_all(services.db().pool())
        .await
        .expect("keys");
    assert_eq!(after, kids, "nothing was sealed under the wrong key");
}
