//! Floating seats through the Web API: checkout, heartbeat, release, refusals that name the
//! feature and its seats, lease expiry, disconnects, named users, tokens, credits, bundles, key
//! expiry moving a seat, explanations; and the concurrency test (racing clients against a small
//! pool, two server processes on one database, the invariant checked after every step).

use crate::both_backends;
use crate::helpers::*;
use licensing::CurrentUser;
use protocol::floating::FeatureUsage;
use protocol::time::{day_of, format_date};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A client "Acme" with a pool; returns the admin, the pool id and its pool key.
async fn pool(app: &TestApp) -> (CurrentUser, i64, String) {
    let (admin, pool) = acme_pool(app, 60).await;
    (admin, pool.id, pool.access_key)
}

pub(crate) async fn checkout(
    app: &TestApp,
    pool_key: &str,
    feature: &str,
    user: &str,
    host: &str,
) -> (StatusCode, Value) {
    let (s, b, _) = api_post(
        app,
        "/api/v1/seats",
        json!({"pool_key": pool_key, "feature": feature, "user": user, "host": host, "process": "cad.exe", "release_number": 2026,
               "installation": format!("installation of {user} on {host}")}),
    )
    .await;
    (s, b)
}

pub(crate) async fn beat(app: &TestApp, grant: &Value) -> (StatusCode, Value) {
    let (s, b, _) = api_post(
        app,
        &format!("/api/v1/seats/{}/heartbeat", grant["seat_id"]),
        json!({"lease_token": grant["lease_token"]}),
    )
    .await;
    (s, b)
}

pub(crate) async fn release(app: &TestApp, grant: &Value) -> StatusCode {
    api_post(
        app,
        &format!("/api/v1/seats/{}/release", grant["seat_id"]),
        json!({"lease_token": grant["lease_token"]}),
    )
    .await
    .0
}

/// A feature's line in Usage Per Feature.
async fn usage_row(app: &TestApp, admin: &CurrentUser, feature: &str) -> FeatureUsage {
    app.services
        .usage_per_feature(admin)
        .await
        .expect("usage")
        .into_iter()
        .find(|u| u.feature == feature)
        .expect("a usage row")
}

/// *Refused today* of a feature in Usage Per Feature.
pub(crate) async fn refused_today(app: &TestApp, admin: &CurrentUser, feature: &str) -> i64 {
    usage_row(app, admin, feature).await.refused_today
}

/// In use and count of a feature in Usage Per Feature.
pub(crate) async fn usage_of(app: &TestApp, admin: &CurrentUser, feature: &str) -> (i64, i64) {
    let u = usage_row(app, admin, feature).await;
    (u.in_use, u.count)
}

both_backends! {
    async fn a_full_pool_refuses_naming_the_feature_and_seats_come_back(app) {
        let (admin, pool_id, key) = pool(&app).await;
        app.services.add_pool_key(&admin, pool_id, key_input("F", "ConcurrentUser", 2)).await.expect("key");
        let (st, a) = checkout(&app, &key, "F", "ann", "ws-1").await;
        assert_eq!(st, StatusCode::CREATED, "{a}");
        assert_eq!(a["model"], "ConcurrentUser");
        let (st, b) = checkout(&app, &key, "F", "bob", "ws-2").await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        let (st, c) = checkout(&app, &key, "F", "cat", "ws-3").await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{c}");
        assert_eq!(c["detail"].as_str().unwrap_or(""), "All 2 seats of feature F are in use. Try again when someone closes the application, or ask your administrator for more.");
        assert_eq!(usage_of(&app, &admin, "F").await, (2, 2));
        assert_eq!(refused_today(&app, &admin, "F").await, 1, "cat's refusal is counted");

        let detail = app.services.detailed_usage(&admin, pool_id, "Vendor", "F").await.expect("detail");
        assert_eq!(detail.len(), 2);
        assert_eq!((detail[0].user.as_str(), detail[0].host.as_str(), detail[0].process.as_str()), ("ann", "ws-1", "cad.exe"));
        assert_eq!(detail[0].licence_type, "ConcurrentUser");

        // Anyone with the pool key naming ann's user and host takes nothing: without the
        // installation's secret (or with another's), her live seat is not handed over.
        for installation in [None, Some("a guess at the installation secret")] {
            let mut body = json!({"pool_key": key, "feature": "F", "user": "ann", "host": "ws-1", "process": "evil.exe"});
            if let Some(i) = installation {
                body["installation"] = json!(i);
            }
            let (st, refused, _) = api_post(&app, "/api/v1/seats", body).await;
            assert_eq!(st, StatusCode::CONFLICT, "{refused}");
            assert!(refused["detail"].as_str().unwrap_or("").contains("Only the installation that took it can resume it"), "{refused}");
        }
        assert_eq!(beat(&app, &a).await.0, StatusCode::OK, "ann keeps her seat and her lease token");

        // The same installation again (a restart without release) gets its own seat back.
        let (st, again) = checkout(&app, &key, "F", "ann", "ws-1").await;
        assert_eq!(st, StatusCode::CREATED, "{again}");
        assert_eq!(again["seat_id"], a["seat_id"]);
        assert_eq!(beat(&app, &a).await.0, StatusCode::NOT_FOUND, "the old lease token is replaced");
        let a = again;

        // Disconnected: the application learns at its next heartbeat; the refused one gets in.
        app.services.disconnect_seat(&admin, b["seat_id"].as_i64().expect("id"), false).await.expect("disconnect");
        let (st, lost) = beat(&app, &b).await;
        assert_eq!(st, StatusCode::GONE, "{lost}");
        assert!(lost["detail"].as_str().unwrap_or("").contains("an administrator disconnected it"), "{lost}");
        let (st, c) = checkout(&app, &key, "F", "cat", "ws-3").await;
        assert_eq!(st, StatusCode::CREATED, "{c}");

        // Heartbeats keep a seat past its lease; a dead application's seat comes back after it.
        app.clock.advance(50);
        assert_eq!(beat(&app, &a).await.0, StatusCode::OK);
        app.clock.advance(50);
        assert_eq!(app.services.reclaim_expired_seats().await.expect("reclaim"), 1, "cat's lease ran out, ann's did not");
        assert_eq!(usage_of(&app, &admin, "F").await, (1, 2));
        let (st, gone) = beat(&app, &c).await;
        assert_eq!(st, StatusCode::GONE);
        assert!(gone["detail"].as_str().unwrap_or("").contains("lease ran out"), "{gone}");
        assert_eq!(release(&app, &a).await, StatusCode::NO_CONTENT);
        assert_eq!(release(&app, &a).await, StatusCode::NO_CONTENT, "twice is fine");
        assert_eq!(usage_of(&app, &admin, "F").await, (0, 2));

        // The refusal was counted, and the peak recorded.
        let history = app.services.usage_history(&admin, pool_id).await.expect("history");
        assert_eq!(history.iter().map(|h| h.3).sum::<i64>(), 1);
        assert_eq!(history.iter().map(|h| h.4).max(), Some(2));
    }

    async fn named_users_tokens_credits_and_bundles(app) {
        let (admin, pool_id, key) = pool(&app).await;
        let s = &app.services;
        s.add_pool_key(&admin, pool_id, key_input("NU", "NamedUser", 1)).await.expect("key");
        s.add_pool_key(&admin, pool_id, key_input("TOK", "Token", 10)).await.expect("key");
        s.add_pool_key(&admin, pool_id, key_input("CR", "Credit", 2)).await.expect("key");
        s.add_pool_key(&admin, pool_id, key_input("MAIN", "ConcurrentUser", 5)).await.expect("key");
        s.add_pool_key(&admin, pool_id, key_input("ADDON", "ConcurrentUser", 1)).await.expect("key");
        let bundle = protocol::floating::Bundle { feature: "MAIN".into(), also_feature: "ADDON".into() };
        s.add_bundle(&admin, pool_id, &bundle).await.expect("bundle");

        // A named user on two machines holds one seat; another user is refused.
        let (st, n1) = checkout(&app, &key, "NU", "dana", "pc-1").await;
        assert_eq!(st, StatusCode::CREATED, "{n1}");
        let (st, n2) = checkout(&app, &key, "NU", "dana", "laptop").await;
        assert_eq!(st, StatusCode::CREATED, "{n2}");
        assert_eq!(usage_of(&app, &admin, "NU").await, (1, 1));
        assert_eq!(checkout(&app, &key, "NU", "eric", "pc-2").await.0, StatusCode::FORBIDDEN);
        // Her first machine closes: the seat stays hers while the laptop runs.
        assert_eq!(release(&app, &n1).await, StatusCode::NO_CONTENT);
        assert_eq!(usage_of(&app, &admin, "NU").await, (1, 1));
        assert_eq!(release(&app, &n2).await, StatusCode::NO_CONTENT);
        assert_eq!(usage_of(&app, &admin, "NU").await, (0, 1));

        // Tokens: a checkout takes as many as it asks for.
        let (st, t) = api_post(&app, "/api/v1/seats", json!({"pool_key": key, "feature": "TOK", "user": "u", "host": "h", "process": "p", "tokens": 7})).await.into_parts();
        assert_eq!(st, StatusCode::CREATED, "{t}");
        assert_eq!(usage_of(&app, &admin, "TOK").await, (7, 10));
        let (st, _) = api_post(&app, "/api/v1/seats", json!({"pool_key": key, "feature": "TOK", "user": "v", "host": "h", "process": "p", "tokens": 4})).await.into_parts();
        assert_eq!(st, StatusCode::FORBIDDEN);
        assert_eq!(release(&app, &t).await, StatusCode::NO_CONTENT);
        assert_eq!(usage_of(&app, &admin, "TOK").await, (0, 10));

        // Credits are consumed, not returned.
        let (_, c1) = checkout(&app, &key, "CR", "u", "h1").await;
        assert_eq!(release(&app, &c1).await, StatusCode::NO_CONTENT);
        let (_, c2) = checkout(&app, &key, "CR", "u", "h2").await;
        assert_eq!(release(&app, &c2).await, StatusCode::NO_CONTENT);
        assert_eq!(usage_of(&app, &admin, "CR").await, (2, 2));
        assert_eq!(checkout(&app, &key, "CR", "u", "h3").await.0, StatusCode::FORBIDDEN);

        // A bundle: MAIN takes ADDON along, and gives it back with it.
        let (st, m) = checkout(&app, &key, "MAIN", "u", "m1").await;
        assert_eq!(st, StatusCode::CREATED, "{m}");
        assert_eq!(m["bundled"], json!(["ADDON"]));
        assert_eq!(usage_of(&app, &admin, "ADDON").await, (1, 1));
        let (st, body) = checkout(&app, &key, "MAIN", "w", "m2").await;
        assert_eq!(st, StatusCode::FORBIDDEN, "ADDON is full: {body}");
        assert!(body["detail"].as_str().unwrap_or("").contains("comes with feature ADDON"), "{body}");
        assert_eq!(usage_of(&app, &admin, "MAIN").await, (1, 5), "nothing taken by the refused one");
        assert_eq!(release(&app, &m).await, StatusCode::NO_CONTENT);
        assert_eq!(usage_of(&app, &admin, "ADDON").await, (0, 1));
    }

    async fn an_expiring_key_moves_the_seat_or_loses_it_and_explain_says_why(app) {
        let (admin, pool_id, key) = pool(&app).await;
        let today = day_of(app.clock.now());
        let mut soon = key_input("F", "ConcurrentUser", 1);
        soon.end_date = Some(format_date(today));
        soon.file_index = 0;
        let soon = app.services.add_pool_key(&admin, pool_id, soon).await.expect("key");
        let mut later = key_input("F", "ConcurrentUser", 1);
        later.end_date = Some(format_date(today + 2));
        later.max_release_number = 2026;
        let later = app.services.add_pool_key(&admin, pool_id, later).await.expect("key");

        // Explain: the key limited to release 2026 ranks first (release number ascending).
        let verdicts = app.services.explain_checkout(&admin, pool_id, &protocol::seats::ExplainRequest { terms: protocol::seats::SeatTerms { feature: "F".into(), release_number: 2026, ..Default::default() }, ..Default::default() }).await.expect("explain");
        assert_eq!(verdicts.iter().map(|v| (v.key.id, v.rank)).collect::<Vec<_>>(), [(soon.id, Some(2)), (later.id, Some(1))]);
        let verdicts = app.services.explain_checkout(&admin, pool_id, &protocol::seats::ExplainRequest { terms: protocol::seats::SeatTerms { feature: "F".into(), release_number: 2027, ..Default::default() }, ..Default::default() }).await.expect("explain");
        assert_eq!(verdicts[1].filtered_by.as_deref(), Some("max release number below the client's release"));

        let (st, a) = checkout(&app, &key, "F", "ann", "ws-1").await;
        assert_eq!((st, a["key_id"].as_i64()), (StatusCode::CREATED, Some(later.id)), "{a}");
        let (st, b) = checkout(&app, &key, "F", "bob", "ws-2").await;
        assert_eq!((st, b["key_id"].as_i64()), (StatusCode::CREATED, Some(soon.id)), "{b}");
        // A day later bob's key has expired and no other is free: bob loses the seat, saying why.
        app.clock.advance(86_400);
        let (st, a_beat) = beat(&app, &a).await;
        assert_eq!((st, a_beat["moved"].as_bool()), (StatusCode::OK, Some(false)), "{a_beat}");
        let (st, lost) = beat(&app, &b).await;
        assert_eq!(st, StatusCode::GONE, "{lost}");
        assert!(lost["detail"].as_str().unwrap_or("").contains("end date passed"), "{lost}");
        assert_eq!(usage_of(&app, &admin, "F").await, (1, 1));

        // With a new key enrolled, a seat on an expired key moves to it silently.
        let mut fresh = key_input("F", "ConcurrentUser", 3);
        fresh.end_date = Some(format_date(today + 30));
        let fresh = app.services.add_pool_key(&admin, pool_id, fresh).await.expect("key");
        app.clock.advance(2 * 86_400);
        let (st, moved) = beat(&app, &a).await;
        assert_eq!(st, StatusCode::OK, "{moved}");
        assert_eq!((moved["moved"].as_bool(), moved["key_id"].as_i64()), (Some(true), Some(fresh.id)));
        let keys = app.services.pool_keys(&admin, pool_id).await.expect("keys");
        assert_eq!(keys.iter().map(|k| k.in_use).collect::<Vec<_>>(), [0, 0, 1]);

        // The history keeps bob's lost seat, ann's stretch on the expired key (moved), and,
        // once she releases, her stretch on the new one from the move on.
        let moved_at = app.clock.now();
        app.clock.advance(600);
        assert_eq!(release(&app, &a).await, StatusCode::NO_CONTENT);
        let history = app.services.session_history(&admin, pool_id, &Default::default()).await.expect("history");
        let rows: Vec<(String, i64, String, i64)> = history.sessions.iter().map(|s| (s.user.clone(), s.key_id, s.ended_how.clone(), s.seconds())).collect();
        assert_eq!(rows[0], ("ann".into(), fresh.id, "released".into(), 600));
        assert_eq!(rows[1], ("ann".into(), later.id, format!("moved to key {}", fresh.id), 3 * 86_400));
        assert_eq!(history.sessions[1].ended_at, moved_at);
        assert_eq!((rows[2].0.as_str(), rows[2].1), ("bob", soon.id));
        assert!(rows[2].2.starts_with("lost: ") && rows[2].2.contains("end date passed"), "{rows:?}");
        assert_eq!(history.per_user[0].sessions, 1, "a moved seat is one session: {:?}", history.per_user);
        assert_eq!(history.per_user[0].seconds, 3 * 86_400 + 600);
    }

    async fn pools_are_the_clients_own_and_bad_checkouts_change_nothing(app) {
        let (admin, pool_id, key) = pool(&app).await;
        app.services.add_pool_key(&admin, pool_id, key_input("F", "ConcurrentUser", 1)).await.expect("key");
        // A client user sees its own pool, not another's.
        let browser = app.browser();
        browser.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.ok();
        let (_, _) = app.client_user(&browser, "Globex", "gus@globex.test").await;
        let gus = app.services.sign_in("gus@globex.test", "client password 123", "t", None).await.expect("gus").user;
        assert!(matches!(app.services.pool(&gus, pool_id).await, Err(licensing::Error::NotAllowed)));
        assert!(app.services.list_pools(&gus, &licensing::page::Page::ALL).await.expect("pools").items.is_empty());
        assert!(matches!(app.services.add_pool_key(&gus, pool_id, key_input("G", "Token", 1)).await, Err(licensing::Error::NotAllowed)));

        for (body, field) in [
            (json!({"pool_key": "POOL-NOPE", "feature": "F", "user": "u", "host": "h", "process": "p"}), "pool_key"),
            (json!({"pool_key": key, "feature": "", "user": "u", "host": "h", "process": "p"}), "feature"),
            (json!({"pool_key": key, "feature": "F", "user": "u", "host": "h", "process": "p", "tokens": 0}), "tokens"),
            (json!({"pool_key": key, "feature": "F", "user": "u", "host": "h", "process": "p", "release_date": "soon"}), "release_date"),
            (json!({"feature": "F", "user": "u", "host": "h", "process": "p"}), "pool_key"),
        ] {
            let (st, b, _) = api_post(&app, "/api/v1/seats", body).await;
            assert_eq!((st, b["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(field)), "{b}");
        }
        let seats: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM seats").fetch_one(app.services.db().pool()).await.expect("count");
        assert_eq!(seats, 0);
        let mut bad = key_input("F", "Floating", 1);
        assert!(app.services.add_pool_key(&admin, pool_id, bad.clone()).await.is_err());
        bad.model = "Token".into();
        bad.quantity = -1;
        assert!(app.services.add_pool_key(&admin, pool_id, bad).await.is_err());
    }
}

trait IntoParts {
    fn into_parts(self) -> (StatusCode, Value);
}

impl IntoParts for (StatusCode, Value, reqwest::header::HeaderMap) {
    fn into_parts(self) -> (StatusCode, Value) {
        (self.0, self.1)
    }
}

both_backends! {
    async fn a_serials_pool_follows_its_reissue_and_a_newer_group_takes_over(app) {
        use licensing::web::BatchInput;
        let admin = admin_user(&app).await;
        let p = app.services.save_product(&admin, None, product("CALC", protocol::catalog::LicensingSettings::default())).await.expect("product");
        let batch = app.services.generate_serials(&admin, BatchInput { product_id: p.id, count: 1, features: None, licences_per_serial: None, note: String::new() }).await.expect("batch");
        let serial = app.services.list_serials(&admin, licensing::web::SerialQuery { batch_id: Some(batch.id), ..Default::default() }, &licensing::page::Page::ALL).await.expect("serials").items.remove(0);
        let pool = app.services.create_pool(&admin, protocol::floating::PoolOwner::Serial(serial.id), "", Some(60)).await.expect("pool");
        let old = app.services.add_pool_key(&admin, pool.id, key_input("F", "ConcurrentUser", 2)).await.expect("key");
        let by_serial = |s: &str| json!({"serial": s, "product": "CALC", "feature": "F", "user": "u", "host": "h", "process": "p"});
        let (st, a, _) = api_post(&app, "/api/v1/seats", by_serial(&serial.serial)).await;
        assert_eq!(st, StatusCode::CREATED, "{a}");

        // A newer enrolment (higher group index) supersedes the old key: the seat moves silently.
        let mut newer = key_input("F", "ConcurrentUser", 2);
        newer.group_index = 1;
        let newer = app.services.add_pool_key(&admin, pool.id, newer).await.expect("key");
        let (st, b) = beat(&app, &a).await;
        assert_eq!(st, StatusCode::OK, "{b}");
        assert_eq!((b["moved"].as_bool(), b["key_id"].as_i64()), (Some(true), Some(newer.id)));
        let keys = app.services.pool_keys(&admin, pool.id).await.expect("keys");
        assert_eq!(keys.iter().map(|k| (k.id, k.in_use)).collect::<Vec<_>>(), [(old.id, 0), (newer.id, 1)]);

        // Revoke and reissue: the running session keeps its seat, new checkouts need the new serial.
        let new = app.services.revoke_and_reissue(&admin, serial.id, "leaked").await.expect("reissue");
        assert_eq!(beat(&app, &a).await.0, StatusCode::OK);
        let (st, body, _) = api_post(&app, "/api/v1/seats", by_serial(&serial.serial)).await;
        assert_eq!((st, body["type"].as_str()), (StatusCode::GONE, Some("/problems/serial-revoked")), "{body}");
        let mut other = by_serial(&new.serial);
        other["user"] = "v".into();
        let (st, body, _) = api_post(&app, "/api/v1/seats", other).await;
        assert_eq!(st, StatusCode::CREATED, "{body}");
        assert_eq!(usage_of(&app, &admin, "F").await, (2, 2), "the superseded key's seats do not count");
    }

    // A random walk of checkouts, heartbeats, releases, disconnects and clock moves against a
    // model: after every step the pool's in use equals the seats the model says are live, and
    // never exceeds the count.
    async fn seat_arithmetic_follows_a_model_under_a_random_walk(app) {
        let (admin, pool_id, key) = pool(&app).await;
        app.services.add_pool_key(&admin, pool_id, key_input("F", "ConcurrentUser", 3)).await.expect("key");
        let mut rng: u64 = 0x5eed_1234;
        let mut next = |n: u64| { rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); (rng >> 33) % n };
        // The model: live seats with their last heartbeat time.
        let mut live: Vec<(Value, i64)> = Vec::new();
        for step in 0..150 {
            let now = app.clock.now();
            match next(6) {
                0 | 1 => {
                    let user = format!("user{}", next(6));
                    let (st, g) = checkout(&app, &key, "F", &user, "host").await;
                    let mine = live.iter().position(|(s, _)| s["user"] == json!(user));
                    match st {
                        StatusCode::CREATED => {
                            if let Some(i) = mine {
                                assert_eq!(live[i].0["seat_id"], g["seat_id"], "step {step}: the same session gets its seat back");
                                live.remove(i);
                            } else {
                                assert!(live.len() < 3, "step {step}: granted a 4th seat");
                            }
                            let mut g = g;
                            g["user"] = json!(user);
                            live.push((g, now));
                        }
                        StatusCode::FORBIDDEN => assert!(live.len() == 3 && mine.is_none(), "step {step}: refused with {} live", live.len()),
                        other => panic!("step {step}: {other} {g}"),
                    }
                }
                2 if !live.is_empty() => {
                    let i = next(live.len() as u64) as usize;
                    assert_eq!(beat(&app, &live[i].0).await.0, StatusCode::OK, "step {step}");
                    live[i].1 = now;
                }
                3 if !live.is_empty() => {
                    let i = next(live.len() as u64) as usize;
                    let (s, _) = live.remove(i);
                    assert_eq!(release(&app, &s).await, StatusCode::NO_CONTENT);
                }
                4 if !live.is_empty() => {
                    let i = next(live.len() as u64) as usize;
                    let (s, _) = live.remove(i);
                    app.services.disconnect_seat(&admin, s["seat_id"].as_i64().expect("id"), false).await.expect("disconnect");
                    assert_eq!(beat(&app, &s).await.0, StatusCode::GONE);
                }
                _ => {
                    app.clock.advance(20 + next(30) as i64);
                    app.services.reclaim_expired_seats().await.expect("reclaim");
                    let now = app.clock.now();
                    live.retain(|(_, beat_at)| now - beat_at <= 60);
                }
            }
            let (in_use, count) = usage_of(&app, &admin, "F").await;
            assert!(in_use <= count);
            assert_eq!(in_use, live.len() as i64, "step {step}");
        }
    }
}

both_backends! {
    async fn a_checkout_asking_for_a_model_and_terms_keeps_them_when_moved(app) {
        let (admin, pool_id, key) = pool(&app).await;
        let today = day_of(app.clock.now());
        let mut soon = key_input("F", "ConcurrentUser", 1);
        soon.end_date = Some(format_date(today));
        soon.customer_id = "C1".into();
        app.services.add_pool_key(&admin, pool_id, soon).await.expect("key");
        let mut credit = key_input("F", "Credit", 5);
        credit.customer_id = "C1".into();
        let credit = app.services.add_pool_key(&admin, pool_id, credit).await.expect("key");
        let mut other_customer = key_input("F", "ConcurrentUser", 5);
        other_customer.customer_id = "C2".into();
        app.services.add_pool_key(&admin, pool_id, other_customer).await.expect("key");
        let body = json!({"pool_key": key, "feature": "F", "user": "u", "host": "h", "process": "p", "model": "ConcurrentUser", "customer_id": "C1"});
        let (st, g, _) = api_post(&app, "/api/v1/seats", body).await;
        assert_eq!(st, StatusCode::CREATED, "{g}");
        assert_eq!(g["model"], "ConcurrentUser");
        // Its key ends; neither the credit key (another model) nor C2's key may take the seat.
        app.clock.advance(86_400);
        let (st, lost) = beat(&app, &g).await;
        assert_eq!(st, StatusCode::GONE, "{lost}");
        let keys = app.services.pool_keys(&admin, pool_id).await.expect("keys");
        assert!(keys.iter().all(|k| k.in_use == 0), "{keys:?}");
        assert_eq!(credit.in_use, 0);
        let (st, bad, _) = api_post(&app, "/api/v1/seats", json!({"pool_key": key, "feature": "F", "user": "u", "host": "h", "process": "p", "model": "Floating"})).await;
        assert_eq!((st, bad["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("model")));
    }

    async fn refusals_are_counted_for_the_day_they_happen(app) {
        let (admin, pool_id, key) = pool(&app).await;
        app.services.add_pool_key(&admin, pool_id, key_input("F", "ConcurrentUser", 1)).await.expect("key");
        let (st, _) = checkout(&app, &key, "F", "ann", "ws-1").await;
        assert_eq!(st, StatusCode::CREATED);
        for user in ["bob", "cat"] {
            assert_eq!(checkout(&app, &key, "F", user, user).await.0, StatusCode::FORBIDDEN);
        }
        assert_eq!(refused_today(&app, &admin, "F").await, 2);
        // The next day (UTC) starts from none.
        let now = app.clock.now();
        app.clock.advance(86_400 - now.rem_euclid(86_400));
        assert_eq!(refused_today(&app, &admin, "F").await, 0);
        // (A key that does not fit is a refusal too; ann's seat may be reclaimed by now.)
        let edu = json!({"pool_key": key, "feature": "F", "user": "dan", "host": "dan", "process": "p", "commercial_type": "EDU"});
        let (st, refused, _) = api_post(&app, "/api/v1/seats", edu).await;
        assert_eq!((st, refused["type"].as_str()), (StatusCode::FORBIDDEN, Some("/problems/no-matching-key")), "{refused}");
        assert_eq!(refused_today(&app, &admin, "F").await, 1);
    }
}
