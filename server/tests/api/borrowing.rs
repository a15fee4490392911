//! Mobile (borrowed) licences: borrowing a held seat online with the pool's rules, the borrow
//! token checked like an activation code, extension, early return, the end of the period, the
//! owner's switch and the refused disconnect; then real workstations borrowing online, working
//! with the server stopped, and exchanging codes with the portal.

use crate::both_backends;
use crate::helpers::*;
use crate::workstation::{shipped_root, text, Workstation};
use licensing::{Backend, CurrentUser};
use protocol::borrow::{BorrowClaims, MobileSettings, ReturnCode, BORROW_TYPE, DAY_SECS};
use protocol::floating::Pool;
use reqwest::StatusCode;
use serde_json::{json, Value};

const FP: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

async fn lending_pool(app: &TestApp, quantity: i64, max_days: Option<i64>) -> (CurrentUser, Pool) {
    let (admin, pool) = acme_pool(app, 60).await;
    app.services
        .add_pool_key(&admin, pool.id, key_input("F", "ConcurrentUser", quantity))
        .await
        .expect("key");
    let lend = MobileSettings {
        allowed: true,
        max_borrow_days: max_days,
    };
    let pool = app
        .services
        .set_mobile(&admin, pool.id, &lend)
        .await
        .expect("lend");
    (admin, pool)
}

async fn seat(app: &TestApp, pool: &Pool, user: &str) -> Value {
    let (s, grant, _) = api_post(
        app,
        "/api/v1/seats",
        json!({"pool_key": pool.access_key, "feature": "F", "user": user, "host": user, "process": "cad"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{grant}");
    grant
}

async fn seat_call(app: &TestApp, grant: &Value, what: &str, days: i64) -> (StatusCode, Value) {
    let (s, b, _) = api_post(
        app,
        &format!("/api/v1/seats/{}/{what}", grant["seat_id"]),
        json!({"lease_token": grant["lease_token"], "fingerprint": FP, "days": days}),
    )
    .await;
    (s, b)
}

async fn in_use(app: &TestApp, admin: &CurrentUser) -> (i64, i64) {
    let u = app.services.usage_per_feature(admin).await.expect("usage");
    (u[0].in_use, u[0].offline)
}

both_backends! {
    async fn a_seat_is_borrowed_extended_and_returned_by_the_pools_rules(app) {
        let (admin, pool) = lending_pool(&app, 2, None).await;
        // A client's pool lends nothing until an administrator says for how long.
        assert_eq!(pool.borrow_days, None);
        let grant = seat(&app, &pool, "ann").await;
        let (s, body) = seat_call(&app, &grant, "borrow", 3).await;
        assert_eq!((s, body["type"].as_str()), (StatusCode::FORBIDDEN, Some("/problems/borrowing-off")), "{body}");
        let lend = MobileSettings { allowed: true, max_borrow_days: Some(10) };
        assert_eq!(app.services.set_mobile(&admin, pool.id, &lend).await.expect("lend").borrow_days, Some(10));

        // Longer than the pool allows, or a fingerprint of the wrong shape: refused.
        let (s, body) = seat_call(&app, &grant, "borrow", 11).await;
        assert_eq!((s, body["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("days")), "{body}");
        assert!(body["detail"].as_str().unwrap_or("").contains("at most 10 days"), "{body}");
        let (s, _, _) = api_post(&app, &format!("/api/v1/seats/{}/borrow", grant["seat_id"]),
            json!({"lease_token": grant["lease_token"], "fingerprint": "not a machine", "days": 2})).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        let (s, _, _) = api_post(&app, &format!("/api/v1/seats/{}/borrow", grant["seat_id"]),
            json!({"lease_token": "seat_wrong", "fingerprint": FP, "days": 2})).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "another's seat without its lease token");

        let now = app.clock.now();
        let (s, borrowed) = seat_call(&app, &grant, "borrow", 3).await;
        assert_eq!(s, StatusCode::OK, "{borrowed}");
        let jwks = app.services.jwks().await.expect("jwks");
        let claims: BorrowClaims = protocol::activation::verify_jws(BORROW_TYPE, borrowed["borrow_token"].as_str().unwrap_or(""), &jwks).expect("a signed token");
        assert_eq!((claims.fp.as_str(), claims.feature.as_str(), claims.exp), (FP, "F", now + 3 * DAY_SECS));
        // Not an activation code, whatever its signature.
        assert!(protocol::activation::verify_signature(borrowed["borrow_token"].as_str().unwrap_or(""), &jwks).is_err());
        let (s, again) = seat_call(&app, &grant, "borrow", 3).await;
        assert_eq!(s, StatusCode::CONFLICT, "{again}");

        // A heartbeat keeps the period; the monitor counts it out offline; no disconnect.
        let (s, beat, _) = api_post(&app, &format!("/api/v1/seats/{}/heartbeat", grant["seat_id"]), json!({"lease_token": grant["lease_token"]})).await;
        assert_eq!((s, beat["lease_expires_at"].as_i64()), (StatusCode::OK, Some(now + 3 * DAY_SECS)));
        assert_eq!(in_use(&app, &admin).await, (1, 1));
        let seats = app.services.detailed_usage(&admin, pool.id, "Vendor", "F").await.expect("detail");
        assert_eq!(seats[0].borrowed_until, Some(now + 3 * DAY_SECS));
        let refused = app.services.disconnect_seat(&admin, seats[0].id).await.expect_err("refused");
        assert!(refused.to_string().contains("mobile licence"), "{refused}");
        assert_eq!(in_use(&app, &admin).await, (1, 1));
        // Nor does the same session get the borrowed seat handed over at a new checkout.
        let (s, body, _) = api_post(&app, "/api/v1/seats", json!({"pool_key": pool.access_key, "feature": "F", "user": "ann", "host": "ann", "process": "cad"})).await;
        assert_eq!(s, StatusCode::CONFLICT, "{body}");

        // Extended: never more than 10 days ahead of now.
        let (s, body) = seat_call(&app, &grant, "extend", 8).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body["detail"].as_str().unwrap_or("").contains("by 7 days at most"), "{body}");
        let (s, longer) = seat_call(&app, &grant, "extend", 7).await;
        assert_eq!((s, longer["claims"]["exp"].as_i64()), (StatusCode::OK, Some(now + 10 * DAY_SECS)), "{longer}");

        // The owner switches mobile licences off: no new borrow, no extension; the one out
        // runs to its end, and the lease reclaimer returns it then.
        let off = MobileSettings { allowed: false, max_borrow_days: Some(10) };
        app.services.set_mobile(&admin, pool.id, &off).await.expect("off");
        let other = seat(&app, &pool, "bob").await;
        let (s, body) = seat_call(&app, &other, "borrow", 1).await;
        assert_eq!((s, body["type"].as_str()), (StatusCode::FORBIDDEN, Some("/problems/borrowing-off")), "{body}");
        assert!(body["detail"].as_str().unwrap_or("").contains("switched mobile licences off"), "{body}");
        let (s, _) = seat_call(&app, &grant, "extend", 1).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        app.clock.advance(9 * DAY_SECS);
        app.services.reclaim_expired_seats().await.expect("reclaim");
        assert_eq!(in_use(&app, &admin).await, (1, 1), "the borrow runs to its end (bob's lease lapsed)");
        app.clock.advance(DAY_SECS + 1);
        app.services.reclaim_expired_seats().await.expect("reclaim");
        let (s, body, _) = api_post(&app, &format!("/api/v1/seats/{}/heartbeat", grant["seat_id"]), json!({"lease_token": grant["lease_token"]})).await;
        assert_eq!(s, StatusCode::GONE);
        assert!(body["detail"].as_str().unwrap_or("").contains("mobile licence period ended"), "{body}");

        // On again: an early return is the seat's release.
        app.services.set_mobile(&admin, pool.id, &lend).await.expect("on");
        let third = seat(&app, &pool, "cay").await;
        let (s, _) = seat_call(&app, &third, "borrow", 2).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _, _) = api_post(&app, &format!("/api/v1/seats/{}/release", third["seat_id"]), json!({"lease_token": third["lease_token"]})).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert_eq!(in_use(&app, &admin).await.1, 0);
    }

    async fn only_the_pools_owner_switches_mobile_licences_and_only_administrators_set_their_length(app) {
        let (admin, pool) = lending_pool(&app, 1, Some(5)).await;
        let (client_id, _) = app.services.list_clients(&admin).await.expect("clients").first().map(|c| (c.id, ())).expect("acme");
        let carla = client_user_of(&app, &admin, client_id, "carla@acme.test").await;
        let other = app.services.create_client(&admin, licensing::accounts::ClientInput::parse(&protocol::account::ClientBody { name: "Other".into(), ..Default::default() }).expect("input")).await.expect("client");
        let mallory = client_user_of(&app, &admin, other.id, "m@other.test").await;
        let off = MobileSettings { allowed: false, max_borrow_days: Some(5) };
        assert!(app.services.set_mobile(&mallory, pool.id, &off).await.is_err(), "another client's user");
        let longer = MobileSettings { allowed: true, max_borrow_days: Some(50) };
        assert!(app.services.set_mobile(&carla, pool.id, &longer).await.is_err(), "the length is the vendor's");
        let pool = app.services.set_mobile(&carla, pool.id, &off).await.expect("the owner's switch");
        assert_eq!((pool.mobile_allowed, pool.borrow_days, pool.max_borrow_days), (false, None, Some(5)));
    }
}

async fn client_user_of(
    app: &TestApp,
    admin: &CurrentUser,
    client_id: i64,
    email: &str,
) -> CurrentUser {
    let password = "client password 123";
    app.services
        .create_client_user(admin, client_id, "Carla", email, password)
        .await
        .expect("user");
    app.services
        .sign_in(email, password, "t", None)
        .await
        .expect("sign in")
        .user
}

/// A workstation borrows online, works with its server stopped, and returns early; a copy of
/// its state from before the return is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workstation_borrows_works_cut_off_and_returns() {
    within_limit(async {
        let app = TestApp::spawn(Backend::Sqlite, &[]).await;
        let (admin, pool) = lending_pool(&app, 1, Some(14)).await;
        let (_shipped, root) = shipped_root(&app).await;
        let ws = Workstation::new(&app.base_url, "laptop").shipped_with(&root);
        let borrow = [
            "borrow",
            "--feature",
            "F",
            "--days",
            "3",
            "--pool-key",
            &pool.access_key,
            "--user",
            "ann",
        ];
        let out = ws.run(&borrow);
        assert!(out.status.success(), "{}", text(&out));
        assert!(text(&out).contains("valid until"), "{}", text(&out));
        assert_eq!(in_use(&app, &admin).await, (1, 1));
        // The server gone: the mobile licence still holds.
        let out = ws.run_cut_off(&["status", "--feature", "F"]);
        assert!(out.status.success(), "{}", text(&out));
        let out = ws.run_cut_off(&["status"]);
        assert!(
            text(&out).contains("Mobile licence of F: valid until"),
            "{}",
            text(&out)
        );
        let kept = std::fs::read(ws.store_file()).expect("state");
        // Another machine cannot take the pool's only seat meanwhile.
        let other = Workstation::new(&app.base_url, "desk").shipped_with(&root);
        let out = other.run(&borrow);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));

        let out = ws.run(&["return", "--feature", "F"]);
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(in_use(&app, &admin).await, (0, 0));
        let out = ws.run_cut_off(&["status", "--feature", "F"]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        // The state from before the return, put back: refused.
        std::fs::write(ws.store_file(), kept).expect("restore");
        let out = ws.run_cut_off(&["status", "--feature", "F"]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(
            text(&out).contains("older than the one this machine last saved"),
            "{}",
            text(&out)
        );
    })
    .await;
}

/// The code exchange: a workstation that cannot reach the server asks by code, the pool's
/// owner answers in the portal, the workstation imports (once, and only itself), an extension
/// comes the same way, and a return code gives the seat back at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mobile_licence_by_code_exchange() {
    within_limit(async {
        let app = TestApp::spawn(Backend::Sqlite, &[]).await;
        let (admin, pool) = lending_pool(&app, 1, Some(14)).await;
        let (_shipped, root) = shipped_root(&app).await;
        let ws = Workstation::new(&app.base_url, "site-laptop").shipped_with(&root);
        let thief = Workstation::new(&app.base_url, "other-laptop").shipped_with(&root);
        let ask = [
            "borrow-request",
            "--feature",
            "F",
            "--days",
            "5",
            "--pool-key",
            &pool.access_key,
            "--user",
            "ann",
        ];
        let out = ws.run_cut_off(&ask);
        assert!(out.status.success(), "{}", text(&out));
        let request = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        // Asked again (the dialogue closed meanwhile): the same request.
        let again = ws.run_cut_off(&ask);
        assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), request);

        let answer = app
            .services
            .answer_borrow_request(&admin, pool.id, &request, 4)
            .await
            .expect("assigned");
        let response = answer.borrow_token.clone();
        // Answered again (the page was closed): the same token, not a second seat.
        let twice = app
            .services
            .answer_borrow_request(&admin, pool.id, &request, 4)
            .await
            .expect("again");
        assert_eq!(twice.borrow_token, response);
        assert_eq!(in_use(&app, &admin).await, (1, 1));

        let out = thief.run(&["borrow-import", &response]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "another machine: {}",
            text(&out)
        );
        let out = ws.run(&["borrow-import", &response]);
        assert!(out.status.success(), "{}", text(&out));
        let out = ws.run_cut_off(&["borrow-import", &response]);
        assert_ne!(out.status.code(), Some(0), "imported twice: {}", text(&out));
        let out = ws.run_cut_off(&["status", "--feature", "F"]);
        assert!(out.status.success(), "{}", text(&out));

        // Extended from the portal, imported the same way.
        app.clock.advance(60);
        let seat_id = answer.claims.seat;
        let longer = app
            .services
            .extend_mobile(&admin, seat_id, 3)
            .await
            .expect("extended");
        assert_eq!(longer.claims.exp, answer.claims.exp + 3 * DAY_SECS);
        let out = ws.run_cut_off(&["borrow-import", &longer.borrow_token]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains(&protocol::time::format_utc(longer.claims.exp)),
            "{}",
            text(&out)
        );

        // A return code from the machine gives the seat back at once; the old response then
        // brings nothing back.
        let out = ws.run_cut_off(&["return-code", "--feature", "F"]);
        assert!(out.status.success(), "{}", text(&out));
        let code = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert!(ReturnCode::decode(&code).is_ok(), "{code}");
        let forged = ReturnCode {
            token: protocol::borrow::token_digest(&response),
            ..ReturnCode::decode(&code).expect("code")
        };
        assert!(
            app.services
                .accept_return_code(&admin, pool.id, &forged.encode())
                .await
                .is_err(),
            "an older token's return"
        );
        app.services
            .accept_return_code(&admin, pool.id, &code)
            .await
            .expect("returned");
        assert_eq!(in_use(&app, &admin).await, (0, 0));
        assert!(
            app.services
                .accept_return_code(&admin, pool.id, &code)
                .await
                .is_err(),
            "returned once"
        );
        let out = ws.run_cut_off(&["borrow-import", &longer.borrow_token]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let out = ws.run_cut_off(&["status", "--feature", "F"]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    })
    .await;
}
