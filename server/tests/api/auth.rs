//! Signing in and out, sessions, throttling and the first-administrator setup link.

use crate::both_backends;
use crate::helpers::*;
use licensing::Backend;
use reqwest::StatusCode;

both_backends! {
    async fn health_check_reports_the_database(app) {
        let res = reqwest::get(format!("{}/healthz", app.base_url)).await.expect("request");
        assert_eq!(res.status(), StatusCode::OK);
        let body: serde_json::Value = res.json().await.expect("json");
        assert_eq!(body["status"], "ok");
        assert_eq!(body["database"], "ok");
    }

    async fn setup_link_creates_the_first_administrator_once(app) {
        let token = app.services.issue_setup_token().await.expect("token").expect("issued");
        let b = app.browser();
        assert_eq!(b.rpc("setup_link_usable", &[("token", &token)]).await.ok(), true);
        let form = [
            ("token", token.as_str()),
            ("name", "Ada Admin"),
            ("email", ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
            ("password_confirm", ADMIN_PASSWORD),
        ];
        let reply = b.rpc("complete_setup", &form).await;
        assert!(reply.headers.contains_key("serverfnredirect"), "{:?}", reply.headers);
        reply.ok();
        let me = b.whoami().await;
        assert_eq!(me["role"], "admin");
        assert_eq!(me["email"], ADMIN_EMAIL);

        // The link is spent, and no new one is issued while an administrator exists.
        assert_eq!(b.rpc("setup_link_usable", &[("token", &token)]).await.ok(), false);
        let again = app.browser().rpc("complete_setup", &form).await;
        assert_eq!(again.error(), "SetupLink");
        assert_eq!(app.services.issue_setup_token().await.expect("ok"), None);
        assert_eq!(app.services.admin_count().await.expect("count"), 1);
    }

    async fn setup_refuses_bad_input_and_creates_nothing(app) {
        let token = app.services.issue_setup_token().await.expect("token").expect("issued");
        let b = app.browser();
        let long = "x".repeat(200);
        let cases: Vec<([(&str, &str); 5], &str)> = vec![
            ([("token", &token), ("name", ""), ("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD), ("password_confirm", ADMIN_PASSWORD)], "Name is required."),
            ([("token", &token), ("name", &long), ("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD), ("password_confirm", ADMIN_PASSWORD)], "Name must be at most 100 characters."),
            ([("token", &token), ("name", "Ada"), ("email", "not-an-email"), ("password", ADMIN_PASSWORD), ("password_confirm", ADMIN_PASSWORD)], "Enter an e-mail address such as name@example.com."),
            ([("token", &token), ("name", "Ada"), ("email", ADMIN_EMAIL), ("password", "short"), ("password_confirm", "short")], "Password must be at least 12 characters."),
            ([("token", &token), ("name", "Ada"), ("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD), ("password_confirm", "something else entirely")], "The two passwords do not match."),
        ];
        for (form, message) in cases {
            let reply = b.rpc("complete_setup", &form).await;
            assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reply.body);
            assert_eq!(reply.error(), "Invalid");
            assert_eq!(reply.message(), message);
        }
        let garbage = b
            .rpc("complete_setup", &[("token", "' OR 1=1 --"), ("name", "Ada"), ("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD), ("password_confirm", ADMIN_PASSWORD)])
            .await;
        assert_eq!(garbage.error(), "SetupLink");
        assert_eq!(app.services.admin_count().await.expect("count"), 0);
        // The real link still works after all that.
        assert!(app.services.setup_token_usable(&token).await.expect("ok"));
    }

    async fn unknown_user_and_wrong_password_get_the_same_answer(app) {
        let _admin = app.admin().await;
        let wrong = app.browser().sign_in(ADMIN_EMAIL, "not the password").await;
        let unknown = app.browser().sign_in("nobody@vendor.test", "not the password").await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        assert_eq!(wrong.status, unknown.status);
        assert_eq!(wrong.body, unknown.body);
        assert_eq!(wrong.error(), "BadCredentials");
    }

    async fn sign_in_refuses_empty_and_oversized_fields(app) {
        let b = app.browser();
        let huge = "p".repeat(10_000);
        for (email, password, message) in [
            ("", "x", "E-mail address is required."),
            (ADMIN_EMAIL, "", "Password is required."),
            (ADMIN_EMAIL, huge.as_str(), "Password must be at most 128 characters."),
        ] {
            let reply = b.sign_in(email, password).await;
            assert_eq!(reply.error(), "Invalid");
            assert_eq!(reply.message(), message);
        }
    }

    async fn repeated_failures_lock_the_account_for_a_while(app) {
        let _admin = app.admin().await;
        let b = app.browser();
        for _ in 0..4 {
            assert_eq!(b.sign_in(ADMIN_EMAIL, "wrong password").await.error(), "BadCredentials");
        }
        let fifth = b.sign_in(ADMIN_EMAIL, "wrong password").await;
        assert_eq!(fifth.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(fifth.error(), "Throttled");
        // Even the right password waits out the lock…
        assert_eq!(b.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.error(), "Throttled");
        // …and an unknown account is throttled the same way, so locks do not reveal who exists.
        for _ in 0..5 {
            b.sign_in("ghost@vendor.test", "wrong password").await;
        }
        assert_eq!(b.sign_in("ghost@vendor.test", "wrong password").await.error(), "Throttled");
        app.clock.advance(15 * 60 + 1);
        b.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.ok();
    }

    async fn sessions_rotate_at_sign_in_and_end_at_sign_out(app) {
        let admin = app.admin().await;
        let first = admin.session_token().expect("cookie after setup");
        admin.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.ok();
        let second = admin.session_token().expect("cookie after sign-in");
        assert_ne!(first, second, "sign-in must issue a new session token");
        assert!(app.services.session_user(&first).await.expect("ok").is_none(), "old session ended");
        assert!(app.services.session_user(&second).await.expect("ok").is_some());

        let reply = admin.rpc("sign_out", &[]).await;
        let set_cookie = reply.headers.get("set-cookie").expect("cookie cleared").to_str().expect("ascii").to_owned();
        assert!(set_cookie.contains("Max-Age=0"), "{set_cookie}");
        reply.ok();
        assert!(app.services.session_user(&second).await.expect("ok").is_none());
        assert_eq!(admin.rpc("get_current_user", &[]).await.ok(), serde_json::Value::Null);
    }

    async fn a_password_change_whose_second_step_fails_changes_nothing(app) {
        let admin = app.admin().await;
        let elsewhere = app.browser();
        elsewhere.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.ok();
        let elsewhere_token = elsewhere.session_token().expect("cookie");
        // Ending the other sessions, the second step, fails on the database itself.
        let db = app.services.db().pool();
        let (create, drop) = match app.services.db().backend() {
            Backend::Sqlite => (vec!["CREATE TRIGGER sessions_stay BEFORE DELETE ON sessions BEGIN SELECT RAISE(ABORT, 'injected'); END"], "DROP TRIGGER sessions_stay"),
            Backend::Postgres => (vec![
                "CREATE FUNCTION sessions_stay() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected'; END $$",
                "CREATE TRIGGER sessions_stay BEFORE DELETE ON sessions FOR EACH ROW EXECUTE FUNCTION sessions_stay()",
            ], "DROP TRIGGER sessions_stay ON sessions"),
        };
        for sql in create {
            sqlx::query(sql).execute(db).await.expect("trigger");
        }
        let token = admin.session_token().expect("cookie");
        let me = app.services.session_user(&token).await.expect("ok").expect("signed in");
        let change = licensing::accounts::PasswordChange { current_password: ADMIN_PASSWORD, new_password: "an entirely new password", current_token: &token, revoke_tokens: true, code: "" };
        let changed = app.services.change_own_password(&me, change, "t").await;
        assert!(changed.is_err(), "{changed:?}");
        sqlx::query(drop).execute(db).await.expect("drop trigger");
        // The first step is gone with it: the old password still works, the new one does not,
        // and the other session is still open.
        assert_eq!(app.browser().sign_in(ADMIN_EMAIL, "an entirely new password").await.error(), "BadCredentials");
        app.browser().sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.ok();
        assert!(app.services.session_user(&elsewhere_token).await.expect("ok").is_some());
    }

    async fn session_cookie_is_http_only_and_strict(app) {
        let _admin = app.admin().await;
        let reply = app.browser().sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        let cookie = reply.headers.get("set-cookie").expect("set-cookie").to_str().expect("ascii").to_owned();
        assert!(cookie.starts_with("licentia_session="), "{cookie}");
        for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(cookie.contains(attr), "{cookie} lacks {attr}");
        }
        let token = cookie.split(';').next().and_then(|kv| kv.split_once('=')).map(|(_, v)| v).expect("value");
        assert!(token.len() >= 22, "at least 128 bits of randomness");
    }

    async fn idle_and_old_sessions_end(app) {
        let admin = app.admin().await;
        app.clock.advance(2 * 3600 + 1);
        assert_eq!(admin.rpc("get_current_user", &[]).await.ok(), serde_json::Value::Null, "idle timeout");

        admin.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.ok();
        for _ in 0..12 {
            app.clock.advance(3600);
            admin.whoami().await; // busy, never idle…
        }
        app.clock.advance(1);
        // …but no session outlives its absolute timeout.
        assert_eq!(admin.rpc("get_current_user", &[]).await.ok(), serde_json::Value::Null);
        assert_eq!(app.services.purge_expired_sessions().await.expect("purge"), 0, "expired sessions were already deleted on use");
    }

    async fn malformed_cookies_and_garbage_tokens_mean_not_signed_in(app) {
        let _admin = app.admin().await;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        for cookie in [
            "licentia_session=garbage",
            "licentia_session=",
            "licentia_session=' OR '1'='1",
            "licentia_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            ";;;==;licentia_session",
            "licentia_session=%00%ff",
        ] {
            let res = client
                .post(format!("{}/rpc/list_clients", app.base_url))
                .header("cookie", cookie)
                .send()
                .await
                .expect("request");
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{cookie}");
            assert_eq!(res.text().await.expect("body"), "\"NotSignedIn\"", "{cookie}");
            let page = client
                .get(format!("{}/admin", app.base_url))
                .header("cookie", cookie)
                .send()
                .await
                .expect("request");
            assert_eq!(page.status(), StatusCode::FOUND, "{cookie}");
            assert_eq!(page.headers()["location"], "/login", "{cookie}");
        }
    }
}

/// Throttling by network address, with a limit low enough to reach in a test.
#[tokio::test]
async fn repeated_failures_from_one_address_lock_it() {
    let app = TestApp::spawn(
        Backend::Sqlite,
        &[("LICENTIA_LOGIN_MAX_FAILURES_ADDRESS", "3")],
    )
    .await;
    let _admin = app.admin().await;
    let b = app.browser();
    assert_eq!(
        b.sign_in("a@vendor.test", "wrong").await.error(),
        "BadCredentials"
    );
    assert_eq!(
        b.sign_in("b@vendor.test", "wrong").await.error(),
        "BadCredentials"
    );
    assert_eq!(
        b.sign_in("c@vendor.test", "wrong").await.error(),
        "Throttled"
    );
    // Another account from the same address is refused while the address is locked.
    assert_eq!(
        b.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.error(),
        "Throttled"
    );
    app.clock.advance(15 * 60 + 1);
    b.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.ok();
}

async fn forwarded_app(settings: &[(&str, &str)]) -> TestApp {
    let mut all = vec![("LICENTIA_TRUST_FORWARDED_FOR", "true")];
    all.extend_from_slice(settings);
    TestApp::spawn(Backend::Sqlite, &all).await
}

fn retry_after(reply: &Reply) -> i64 {
    reply.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds")
}

/// Lockout as a weapon: someone failing at an administrator's account from their own address
/// locks only themselves out; the administrator signs in from theirs.
#[tokio::test]
async fn failures_from_one_address_do_not_lock_the_user_out_from_another() {
    let app = forwarded_app(&[]).await;
    let _admin = app.admin().await;
    let attacker = app.browser_at("203.0.113.9");
    for _ in 0..4 {
        assert_eq!(
            attacker.sign_in(ADMIN_EMAIL, "guess").await.error(),
            "BadCredentials"
        );
    }
    assert_eq!(
        attacker.sign_in(ADMIN_EMAIL, "guess").await.error(),
        "Throttled"
    );
    // The attacker's pair stays locked, the right password included, and hammering it adds
    // nothing up to the account-wide lock (100 failures by default)…
    for _ in 0..150 {
        assert_eq!(
            attacker.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.error(),
            "Throttled"
        );
    }
    // …while the administrator, elsewhere, is not.
    app.browser_at("198.51.100.7")
        .sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
        .await
        .ok();
}

/// An IPv6 caller owns a whole /64: hopping to another address in it does not reset the count.
#[tokio::test]
async fn ipv6_callers_are_throttled_by_their_64() {
    let app = forwarded_app(&[]).await;
    let _admin = app.admin().await;
    for i in 0..5 {
        app.browser_at(&format!("2001:db8:1:2::{i:x}"))
            .sign_in(ADMIN_EMAIL, "guess")
            .await;
    }
    let hop = app.browser_at("2001:db8:1:2:ffff:ffff:ffff:fffe");
    assert_eq!(
        hop.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.error(),
        "Throttled"
    );
    app.browser_at("2001:db8:1:3::1")
        .sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
        .await
        .ok();
}

/// Each lock in a row lasts twice as long as the one before, up to the cap.
#[tokio::test]
async fn locks_in_a_row_grow_longer() {
    let app = forwarded_app(&[("LICENTIA_LOGIN_MAX_LOCKOUT_MINUTES", "3")]).await;
    let _admin = app.admin().await;
    let b = app.browser_at("203.0.113.9");
    for expected in [60, 120, 180, 180] {
        let mut last = None;
        for _ in 0..5 {
            last = Some(b.sign_in(ADMIN_EMAIL, "guess").await);
        }
        let last = last.expect("five attempts");
        assert_eq!(last.error(), "Throttled");
        assert_eq!(retry_after(&last), expected);
        app.clock.advance(expected + 1);
    }
    // A success ends the run: the next lock is a short one again.
    b.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.ok();
    let mut last = None;
    for _ in 0..5 {
        last = Some(b.sign_in(ADMIN_EMAIL, "guess").await);
    }
    assert_eq!(retry_after(&last.expect("five attempts")), 60);
}

/// Many addresses together still lock an account, at a much higher limit.
#[tokio::test]
async fn failures_from_many_addresses_lock_the_account_at_a_higher_limit() {
    let app = forwarded_app(&[("LICENTIA_LOGIN_MAX_FAILURES_EVERYWHERE", "6")]).await;
    let _admin = app.admin().await;
    for i in 0..5 {
        let reply = app
            .browser_at(&format!("203.0.113.{i}"))
            .sign_in(ADMIN_EMAIL, "guess")
            .await;
        assert_eq!(reply.error(), "BadCredentials");
    }
    let sixth = app
        .browser_at("203.0.113.77")
        .sign_in(ADMIN_EMAIL, "guess")
        .await;
    assert_eq!(sixth.error(), "Throttled");
    let anywhere = app.browser_at("198.51.100.7");
    assert_eq!(
        anywhere.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.error(),
        "Throttled"
    );
}

/// A burst of parallel guesses is cut off at the limit: the attempts past it are refused before
/// any password is hashed.
#[tokio::test]
async fn a_burst_of_parallel_guesses_is_cut_off_at_the_limit() {
    let app = forwarded_app(&[]).await;
    let _admin = app.admin().await;
    let b = app.browser_at("203.0.113.9");
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..24 {
        let b = b.clone();
        burst.spawn(async move { b.sign_in(ADMIN_EMAIL, "guess").await });
    }
    let replies = burst.join_all().await;
    let checked = replies
        .iter()
        .filter(|r| r.error() == "BadCredentials")
        .count();
    let refused = replies.iter().filter(|r| r.error() == "Throttled").count();
    assert_eq!(checked + refused, 24);
    assert!(checked <= 4, "{checked} guesses were checked, limit 5");
}

/// An administrator resetting a locked-out client user's password lets them straight back in.
#[tokio::test]
async fn an_administrators_reset_clears_the_lock() {
    let app = forwarded_app(&[]).await;
    let admin = app.admin().await;
    let client = admin
        .rpc(
            "create_client",
            &[
                ("client[name]", "Acme"),
                ("client[contact_email]", ""),
                ("client[notes]", ""),
            ],
        )
        .await
        .ok();
    let client_id = client["id"].to_string();
    let user = admin
        .rpc(
            "create_client_user",
            &[
                ("client_id", &client_id),
                ("name", "Carla"),
                ("email", "carla@acme.test"),
                ("password", "client password 123"),
            ],
        )
        .await
        .ok();
    let carla = app.browser_at("198.51.100.7");
    for _ in 0..5 {
        carla.sign_in("carla@acme.test", "forgotten it").await;
    }
    assert_eq!(
        carla
            .sign_in("carla@acme.test", "new password 456")
            .await
            .error(),
        "Throttled"
    );
    admin
        .rpc(
            "reset_user_password",
            &[
                ("user_id", &user["id"].to_string()),
                ("password", "new password 456"),
            ],
        )
        .await
        .ok();
    carla
        .sign_in("carla@acme.test", "new password 456")
        .await
        .ok();
}
