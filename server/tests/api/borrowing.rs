//! Mobile (borrowed) licences: borrowing a held seat online with the pool's rules, the borrow
//! token checked like an activation code, extension, early return, the end of the period, the
//! owner's switch and the refused disconnect; then real workstations borrowing online, working
//! with the server stopped, and exchanging codes with the portal.

use crate::both_backends;
use crate::helpers::*;
use crate::workstation::{shipped_root, text, Workstation};
use licensing::CurrentUser;
use protocol::borrow::{
    secret_hash, BorrowClaims, MobileSettings, ReturnCode, BORROW_TYPE, DAY_SECS,
};
use protocol::floating::Pool;
use reqwest::StatusCode;
use serde_json::{json, Value};

const FP: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// The machine's return secret in these tests.
const SECRET: &str = "the machine's own secret";

pub(crate) async fn lending_pool(
    app: &TestApp,
    quantity: i64,
    max_days: Option<i64>,
) -> (CurrentUser, Pool) {
    let (admin, pool) = acme_pool(app, 60).await;
    app.services
        .add_pool_key(&admin, pool.id, key_input("F", "ConcurrentUser", quantity))
        .await
        .expect("key");
    let lend = MobileSettings {
        allowed: true,
        max_borrow_days: max_days,
    };
    let lending = app
        .services
        .set_mobile(&admin, pool.id, &lend)
        .await
        .expect("lend");
    // (The pool key is shown whole only when the pool is made.)
    assert!(lending.access_key.ends_with('…'), "{}", lending.access_key);
    (
        admin,
        Pool {
            access_key: pool.access_key,
            ..lending
        },
    )
}

pub(crate) async fn seat(app: &TestApp, pool: &Pool, user: &str) -> Value {
    let (s, grant, _) = api_post(
        app,
        "/api/v1/seats",
        json!({"pool_key": pool.access_key, "feature": "F", "user": user, "host": user, "process": "cad"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{grant}");
    grant
}

pub(crate) async fn seat_call(
    app: &TestApp,
    grant: &Value,
    what: &str,
    days: i64,
) -> (StatusCode, Value) {
    let (s, b, _) = api_post(
        app,
        &format!("/api/v1/seats/{}/{what}", grant["seat_id"]),
        json!({"lease_token": grant["lease_token"], "fingerprint": FP, "days": days, "return_hash": secret_hash(SECRET)}),
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
        let refused = app.services.disconnect_seat(&admin, seats[0].id, false).await.expect_err("refused");
        assert!(refused.to_string().contains("mobile licence"), "{refused}");
        assert_eq!(in_use(&app, &admin).await, (1, 1));
        // The borrowed seat has left its session: a checkout naming the same user, host and
        // session gets a seat of its own, never the borrowed one.
        let (s, body, _) = api_post(&app, "/api/v1/seats", json!({"pool_key": pool.access_key, "feature": "F", "user": "ann", "host": "ann", "process": "cad"})).await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        assert_ne!(body["seat_id"], grant["seat_id"]);
        let (s, _, _) = api_post(&app, &format!("/api/v1/seats/{}/release", body["seat_id"]), json!({"lease_token": body["lease_token"]})).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        // Its lease token alone does not bring the borrowed seat back early.
        let (s, body, _) = api_post(&app, &format!("/api/v1/seats/{}/release", grant["seat_id"]), json!({"lease_token": grant["lease_token"]})).await;
        assert_eq!(s, StatusCode::CONFLICT, "{body}");
        assert_eq!(in_use(&app, &admin).await, (1, 1));

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

        // On again: an early return shows the machine's return secret, nothing else does.
        app.services.set_mobile(&admin, pool.id, &lend).await.expect("on");
        let third = seat(&app, &pool, "cay").await;
        let (s, _) = seat_call(&app, &third, "borrow", 2).await;
        assert_eq!(s, StatusCode::OK);
        let give_back = |secret: &str| json!({"lease_token": third["lease_token"], "return_secret": secret});
        let (s, _, _) = api_post(&app, &format!("/api/v1/seats/{}/return", third["seat_id"]), give_back("a guess")).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _, _) = api_post(&app, &format!("/api/v1/seats/{}/return", third["seat_id"]), give_back(SECRET)).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert_eq!(in_use(&app, &admin).await.1, 0);
        // A borrow names a return secret, or is refused.
        let fourth = seat(&app, &pool, "dan").await;
        let (s, body, _) = api_post(&app, &format!("/api/v1/seats/{}/borrow", fourth["seat_id"]), json!({"lease_token": fourth["lease_token"], "fingerprint": FP, "days": 2})).await;
        assert_eq!((s, body["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("return_hash")), "{body}");
    }

    async fn only_the_pools_owner_switches_mobile_licences_and_only_administrators_set_their_length(app) {
        let (admin, pool) = lending_pool(&app, 1, Some(5)).await;
        let (client_id, _) = app.services.list_clients(&admin, &Default::default(), &licensing::page::Page::ALL).await.expect("clients").items.first().map(|c| (c.id, ())).expect("acme");
        let carla = client_user_of(&app, &admin, client_id, "carla@acme.test").await;
        let other = app.services.create_client(&admin, licensing::accounts::ClientInput::parse(&protocol::account::ClientBody { name: "Other".into(), ..Default::default() }).expect("input")).await.expect("client");
        let mallory = client_user_of(&app, &admin, other.id, "m@other.test").await;
        let off = MobileSettings { allowed: false, max_borrow_days: Some(5) };
        assert!(app.services.set_mobile(&mallory, pool.id, &off).await.is_err(), "another client's user");
        let longer = MobileSettings { allowed: true, max_borrow_days: Some(50) };
        assert!(app.services.set_mobile(&carla, pool.id, &longer).await.is_err(), "the length is the vendor's");
        let switched = app.services.set_mobile(&carla, pool.id, &off).await.expect("the owner's switch");
        let pool = Pool { access_key: pool.access_key.clone(), ..switched };
        assert_eq!((pool.mobile_allowed, pool.borrow_days, pool.max_borrow_days), (false, None, Some(5)));

        // A machine lost for good: its user's organisation cannot free the seat, an
        // administrator can, knowing the seat is then lent twice until its end.
        let on = MobileSettings { allowed: true, max_borrow_days: Some(5) };
        app.services.set_mobile(&carla, pool.id, &on).await.expect("on");
        let grant = seat(&app, &pool, "lost").await;
        let (s, _) = seat_call(&app, &grant, "borrow", 5).await;
        assert_eq!(s, StatusCode::OK);
        let id = grant["seat_id"].as_i64().expect("id");
        // Another organisation's user reaches none of this pool's mobile licences.
        assert!(app.services.mobile_licences(&mallory, pool.id).await.is_err());
        assert!(app.services.extend_mobile(&mallory, id, 1).await.is_err());
        assert!(app.services.accept_return_code(&mallory, pool.id, "LBT1-x").await.is_err());
        assert!(app.services.answer_borrow_request(&mallory, pool.id, "LBQ1-x", 1).await.is_err());
        assert_eq!(app.services.mobile_licences(&carla, pool.id).await.expect("own").len(), 1);
        // Nor does another machine extend it with the seat's lease token.
        let (s, _, _) = api_post(&app, &format!("/api/v1/seats/{id}/extend"),
            json!({"lease_token": grant["lease_token"], "fingerprint": "f".repeat(64), "days": 1})).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert!(app.services.disconnect_seat(&carla, id, false).await.is_err());
        assert!(app.services.disconnect_seat(&carla, id, true).await.is_err(), "forcing is the vendor's");
        app.services.disconnect_seat(&admin, id, true).await.expect("forced");
        assert_eq!(in_use(&app, &admin).await, (0, 0));
    }

    async fn a_borrow_racing_heartbeats_keeps_its_period(app) {
        let (admin, pool) = lending_pool(&app, 1, Some(5)).await;
        for round in 0..12 {
            let grant = seat(&app, &pool, &format!("user{round}")).await;
            let path = format!("/api/v1/seats/{}/heartbeat", grant["seat_id"]);
            let lease = json!({"lease_token": grant["lease_token"]});
            // Heartbeats that read the seat before the borrow is written, and write after it.
            let url = format!("{}{path}", app.base_url);
            let beats: Vec<_> = (0..16)
                .map(|_| {
                    let (url, lease) = (url.clone(), lease.clone());
                    tokio::spawn(async move { reqwest::Client::new().post(url).json(&lease).send().await.map(|r| r.status()) })
                })
                .collect();
            let borrowed = seat_call(&app, &grant, "borrow", 3).await;
            for b in beats {
                let _ = b.await;
            }
            assert_eq!(borrowed.0, StatusCode::OK, "{}", borrowed.1);
            let seats = app.services.detailed_usage(&admin, pool.id, "Vendor", "F").await.expect("detail");
            assert_eq!(Some(seats[0].lease_expires_at), seats[0].borrowed_until, "round {round}: a heartbeat cut the borrow short");
            app.services.disconnect_seat(&admin, seats[0].id, true).await.expect("next round");
        }
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

both_backends! {
    // A workstation borrows online, works with its server stopped, and returns early; a copy of
    // its state from before the return is refused.
    async fn a_workstation_borrows_works_cut_off_and_returns(app) {
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

        // The application runs meanwhile (the library, in this process, on the same store).
        let store = licentia_client::Store::open_with_witness(ws.store.path(), "CALC", ws.witness.path()).expect("store");
        let roots: protocol::activation::JwkSet = serde_json::from_str(&std::fs::read_to_string(&root).expect("root")).expect("jwks");
        let mut running = licentia_client::Licensing::new(None, "CALC", Some(ws.machine), store).expect("library").with_root(roots);
        assert!(running.borrowed("F").is_ok());
        // (The state as the running application last saved it.)
        let as_running = std::fs::read(ws.store_file()).expect("state");

        let out = ws.run(&["return", "--feature", "F"]);
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(in_use(&app, &admin).await, (0, 0));
        // Someone puts the state file back as the running application had it: its next check
        // notices (the witness moved on) instead of passing and writing it back.
        std::fs::write(ws.store_file(), &as_running).expect("restore");
        assert!(running.borrowed("F").is_err(), "a returned token still passed in a running application");
        let out = ws.run_cut_off(&["status", "--feature", "F"]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        // The state from before the return, put back: refused, by the running application too.
        std::fs::write(ws.store_file(), kept).expect("restore");
        assert!(running.borrowed("F").is_err(), "a restored state passed in a running application");
        drop(running);
        let out = ws.run_cut_off(&["status", "--feature", "F"]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(
            text(&out).contains("older than the one this machine last saved"),
            "{}",
            text(&out)
        );
    }

    // The code exchange: a workstation that cannot reach the server asks by code, the pool's
    // owner answers in the portal, the workstation imports (once, and only itself), an extension
    // comes the same way, and a return code gives the seat back at once.
    // A request code left waiting longer than 30 days is refused (its machine makes a new one):
    // the answered ones are kept longer than that, so no code can be answered twice for two
    // seats, however old.
    async fn a_borrow_request_code_older_than_thirty_days_is_refused(app) {
        let (admin, pool) = lending_pool(&app, 1, Some(14)).await;
        let (_shipped, root) = shipped_root(&app).await;
        let ws = Workstation::new(&app.base_url, "site-laptop").shipped_with(&root);
        let out = ws.run_cut_off(&["borrow-request", "--feature", "F", "--days", "5", "--pool-key", &pool.access_key, "--user", "ann"]);
        assert!(out.status.success(), "{}", text(&out));
        let request = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        app.clock.advance(30 * 86_400 + 3600);
        let refused = app.services.answer_borrow_request(&admin, pool.id, &request, 4).await.expect_err("stale");
        assert!(refused.to_string().contains("more than 30 days ago: make a new one"), "{refused}");
        assert_eq!(in_use(&app, &admin).await.0, 0, "nothing taken");
    }

    async fn a_mobile_licence_by_code_exchange(app) {
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

        // Answered twice at the same moment (a double click): one seat; a third time later
        // (the page was closed): the same token again.
        let (first, second) = tokio::join!(
            app.services
                .answer_borrow_request(&admin, pool.id, &request, 4),
            app.services
                .answer_borrow_request(&admin, pool.id, &request, 4)
        );
        let answer = first.or(second).expect("assigned");
        let response = answer.borrow_token.clone();
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
        let before_extension = std::fs::read(ws.store_file()).expect("state");
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
        // Whoever saw the token (the portal's user) cannot make a return code without the
        // machine's secret.
        let forged = ReturnCode {
            secret: response.clone(),
            ..ReturnCode::decode(&code).expect("code")
        };
        assert!(
            app.services
                .accept_return_code(&admin, pool.id, &forged.encode())
                .await
                .is_err(),
            "a forged return"
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
        // The state from before the extension put back, its witness deleted: the saved
        // extension code does not lift that taint and bring the returned token back.
        std::fs::write(ws.store_file(), &before_extension).expect("restore");
        for entry in std::fs::read_dir(ws.witness.path()).expect("witness dir") {
            std::fs::remove_file(entry.expect("entry").path()).expect("delete the witness");
        }
        let out = ws.run_cut_off(&["borrow-import", &longer.borrow_token]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let out = ws.run_cut_off(&["status", "--feature", "F"]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    }
}
