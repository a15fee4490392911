//! The second factor: an authenticator app set up with its code and the password, asked at
//! sign-in after a right password; codes and recovery codes work once; wrong codes are
//! throttled; administrators must set one up where the server says so; common passwords are
//! refused.

use crate::both_backends;
use crate::helpers::*;
use licensing::accounts::totp;
use reqwest::StatusCode;
use serde_json::Value;

const CARLA: &str = "carla@acme.test";
const CARLA_PASSWORD: &str = "client password 123";

/// Sets up an authenticator app for `browser`'s user; the secret and the recovery codes.
pub(crate) async fn set_up(
    app: &TestApp,
    browser: &Browser,
    password: &str,
) -> (Vec<u8>, Vec<String>) {
    let setup = browser.rpc("begin_second_factor", &[]).await.ok();
    let text = setup["secret"].as_str().expect("secret");
    assert!(setup["uri"]
        .as_str()
        .expect("uri")
        .starts_with("otpauth://totp/Licentia:"));
    let secret = totp::secret_from_text(text).expect("base32");
    let code = totp::code_at(&secret, app.clock.now());
    let codes = browser
        .rpc(
            "confirm_second_factor",
            &[("password", password), ("code", &code)],
        )
        .await
        .ok();
    let codes = codes
        .as_array()
        .expect("recovery codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect();
    (secret, codes)
}

/// The password step of a browser that has a second factor to give: no session yet.
pub(crate) async fn password_step(app: &TestApp, email: &str, password: &str) -> Browser {
    let b = app.browser();
    b.sign_in(email, password).await.ok();
    assert_eq!(b.whoami().await, Value::Null, "no session before the code");
    b
}

both_backends! {
    async fn a_second_factor_is_asked_after_the_password_and_each_code_works_once(app) {
        let admin = app.admin().await;
        let (_, carla) = app.client_user(&admin, "Acme", CARLA).await;
        // A wrong code, or the wrong password, turns nothing on.
        let setup = carla.rpc("begin_second_factor", &[]).await.ok();
        let secret = totp::secret_from_text(setup["secret"].as_str().expect("secret")).expect("base32");
        let wrong = carla.rpc("confirm_second_factor", &[("password", CARLA_PASSWORD), ("code", "000000")]).await;
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
        let code = totp::code_at(&secret, app.clock.now());
        let bad_password = carla.rpc("confirm_second_factor", &[("password", "not my password at all"), ("code", &code)]).await;
        assert_eq!(bad_password.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", bad_password.body);
        assert_eq!(carla.rpc("second_factor_status", &[]).await.ok()["on"], false);
        // Set up for real (a new key: the one above is replaced).
        let (secret, codes) = set_up(&app, &carla, CARLA_PASSWORD).await;
        assert_eq!(codes.len(), 10);
        assert_eq!(carla.rpc("second_factor_status", &[]).await.ok()["recovery_codes_left"], 10);
        assert_eq!(carla.whoami().await["second_factor"], true);

        // The password alone no longer signs in; the code used to set up is spent.
        let b = password_step(&app, CARLA, CARLA_PASSWORD).await;
        let used = totp::code_at(&secret, app.clock.now());
        let replay = b.rpc("sign_in_code", &[("code", &used)]).await;
        assert_eq!(replay.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", replay.body);
        app.clock.advance(30);
        let now_code = totp::code_at(&secret, app.clock.now());
        b.rpc("sign_in_code", &[("code", &now_code)]).await.ok();
        assert_eq!(b.whoami().await["email"], CARLA);
        // Neither the ticket nor the code signs in a second time.
        let again = password_step(&app, CARLA, CARLA_PASSWORD).await;
        assert_eq!(again.rpc("sign_in_code", &[("code", &now_code)]).await.status, StatusCode::UNPROCESSABLE_ENTITY);

        // A recovery code works once, however it is typed.
        let r = password_step(&app, CARLA, CARLA_PASSWORD).await;
        r.rpc("sign_in_code", &[("code", &codes[0].to_lowercase())]).await.ok();
        assert_eq!(r.whoami().await["email"], CARLA);
        let r2 = password_step(&app, CARLA, CARLA_PASSWORD).await;
        assert_eq!(r2.rpc("sign_in_code", &[("code", &codes[0])]).await.status, StatusCode::UNPROCESSABLE_ENTITY);
        r2.rpc("sign_in_code", &[("code", &codes[1])]).await.ok();
        assert_eq!(r2.rpc("second_factor_status", &[]).await.ok()["recovery_codes_left"], 8);

        // Without a ticket there is nothing to complete; the services' one-step sign-in refuses.
        assert_eq!(app.browser().rpc("sign_in_code", &[("code", &now_code)]).await.status, StatusCode::GONE);
        assert!(app.services.sign_in(CARLA, CARLA_PASSWORD, "t", None).await.is_err());

        // The audit log says how each sign-in was made.
        let admin_user = admin_user_of(&app).await;
        let page = app.services.audit_log(&admin_user, &protocol::audit::AuditQuery {
            action: Some("sign-in".into()), actor: Some("carla".into()), ..Default::default()
        }).await.expect("audit");
        assert!(page.entries.iter().any(|e| e.detail == "With a recovery code; 8 left."), "{:?}", page.entries);
        assert!(page.entries.iter().any(|e| e.detail.starts_with("With an authentication code")));

        // Turning it off takes the password and a code; then the password alone signs in.
        app.clock.advance(30);
        let off = r2.rpc("remove_second_factor", &[("password", CARLA_PASSWORD), ("code", "123456")]).await;
        assert_eq!(off.status, StatusCode::UNPROCESSABLE_ENTITY);
        let code = totp::code_at(&secret, app.clock.now());
        r2.rpc("remove_second_factor", &[("password", CARLA_PASSWORD), ("code", &code)]).await.ok();
        app.browser().sign_in(CARLA, CARLA_PASSWORD).await.ok();
        assert!(app.services.sign_in(CARLA, CARLA_PASSWORD, "t", None).await.is_ok());
    }

    async fn guessing_codes_is_throttled_and_a_ticket_takes_five(app) {
        let admin = app.admin().await;
        let (_, carla) = app.client_user(&admin, "Acme", CARLA).await;
        let (secret, _) = set_up(&app, &carla, CARLA_PASSWORD).await;
        let b = password_step(&app, CARLA, CARLA_PASSWORD).await;
        let mut statuses = Vec::new();
        for guess in ["111111", "222222", "333333", "444444", "555555"] {
            statuses.push(b.rpc("sign_in_code", &[("code", guess)]).await.status);
        }
        assert_eq!(&statuses[..4], [StatusCode::UNPROCESSABLE_ENTITY; 4]);
        // The fifth failure locks the pair (five failures from one address to one account).
        assert_eq!(statuses[4], StatusCode::TOO_MANY_REQUESTS);
        // The ticket took five wrong codes: even the right one needs the password again, and
        // the password is locked out from here for now.
        app.clock.advance(30);
        let right = totp::code_at(&secret, app.clock.now());
        assert_eq!(b.rpc("sign_in_code", &[("code", &right)]).await.status, StatusCode::GONE);
        assert_eq!(b.whoami().await, Value::Null);
        assert_eq!(app.browser().sign_in(CARLA, CARLA_PASSWORD).await.status, StatusCode::TOO_MANY_REQUESTS);
        // Once the lock is over, the password and a code sign in.
        app.clock.advance(3600);
        let right = totp::code_at(&secret, app.clock.now());
        let fresh = password_step(&app, CARLA, CARLA_PASSWORD).await;
        fresh.rpc("sign_in_code", &[("code", &right)]).await.ok();
        assert_eq!(fresh.whoami().await["email"], CARLA);
    }

    async fn another_app_takes_the_current_code_and_turning_on_ends_other_sessions(app) {
        let admin = app.admin().await;
        let (_, carla) = app.client_user(&admin, "Acme", CARLA).await;
        // A session opened with the password alone, elsewhere (a thief's, say).
        let elsewhere = app.browser();
        elsewhere.sign_in(CARLA, CARLA_PASSWORD).await.ok();
        let (secret, _) = set_up(&app, &carla, CARLA_PASSWORD).await;
        assert_eq!(elsewhere.whoami().await, Value::Null, "signed out when the factor came on");
        assert_eq!(carla.whoami().await["email"], CARLA, "the session that turned it on stays");
        // With the factor on, a stolen session and password cannot bind another phone.
        let replace = carla.rpc("begin_second_factor", &[]).await;
        assert_eq!(replace.status, StatusCode::CONFLICT, "{:?}", replace.body);
        // Guessing codes to turn it off is throttled like guessing passwords.
        let mut statuses = Vec::new();
        for (i, guess) in ["111111", "222222", "333333", "444444", "555555", "666666"].into_iter().enumerate() {
            if i == 4 {
                // A right password elsewhere clears no failure counted (here it is checked,
                // then the setup is found not begun).
                let right = carla.rpc("confirm_second_factor", &[("password", CARLA_PASSWORD), ("code", "123456")]).await;
                assert_eq!(right.status, StatusCode::CONFLICT, "{:?}", right.body);
            }
            statuses.push(carla.rpc("remove_second_factor", &[("password", CARLA_PASSWORD), ("code", guess)]).await.status);
        }
        assert_eq!(&statuses[..4], [StatusCode::UNPROCESSABLE_ENTITY; 4], "{statuses:?}");
        assert_eq!(&statuses[4..], [StatusCode::TOO_MANY_REQUESTS; 2], "{statuses:?}");
        app.clock.advance(3600);
        let code = totp::code_at(&secret, app.clock.now());
        carla.rpc("remove_second_factor", &[("password", CARLA_PASSWORD), ("code", &code)]).await.ok();
        assert_eq!(carla.rpc("second_factor_status", &[]).await.ok()["on"], false);
    }

    async fn a_ticket_is_checked_by_one_request_at_a_time_and_dies_with_the_password(app) {
        let admin = app.admin().await;
        let (_, carla) = app.client_user(&admin, "Acme", CARLA).await;
        let (secret, codes) = set_up(&app, &carla, CARLA_PASSWORD).await;
        app.clock.advance(30);
        let code = totp::code_at(&secret, app.clock.now());
        // The same ticket sent twice at once, with a code and with a recovery code: one signs
        // in, the other finds the ticket taken — and spends nothing.
        let b = password_step(&app, CARLA, CARLA_PASSWORD).await;
        let by_code = [("code", code.as_str())];
        let by_recovery = [("code", codes[0].as_str())];
        let (with_code, with_recovery) = tokio::join!(
            b.rpc("sign_in_code", &by_code),
            b.rpc("sign_in_code", &by_recovery),
        );
        let ok = [with_code.status, with_recovery.status].iter().filter(|s| s.is_success()).count();
        assert_eq!(ok, 1, "{:?} {:?}", with_code.body, with_recovery.body);
        let left = carla.rpc("second_factor_status", &[]).await.ok()["recovery_codes_left"].as_i64();
        let spent = i64::from(with_recovery.status.is_success());
        assert_eq!(left, Some(10 - spent));

        // With the factor on, a lasting API token takes a code beside the password.
        let no_code = carla.rpc("create_api_token", &[("name", "t"), ("access", "read"), ("password", CARLA_PASSWORD)]).await;
        assert_eq!(no_code.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", no_code.body);
        assert!(no_code.message().contains("code"), "{}", no_code.message());
        app.clock.advance(30);
        let code = totp::code_at(&secret, app.clock.now());
        carla.rpc("create_api_token", &[("name", "t"), ("access", "read"), ("password", CARLA_PASSWORD), ("code", &code)]).await.ok();

        // A ticket won with the password dies when the password is reset.
        let waiting = password_step(&app, CARLA, CARLA_PASSWORD).await;
        let carla_id = carla.whoami().await["id"].as_i64().expect("id").to_string();
        admin.rpc("reset_user_password", &[("user_id", &carla_id), ("password", "a brand new passphrase")]).await.ok();
        app.clock.advance(30);
        let code = totp::code_at(&secret, app.clock.now());
        assert_eq!(waiting.rpc("sign_in_code", &[("code", &code)]).await.status, StatusCode::GONE);
    }

    async fn common_passwords_are_refused_wherever_a_password_is_chosen(app) {
        let admin = app.admin().await;
        let created = admin
            .rpc("create_client", &[("client[name]", "Acme"), ("client[contact_email]", ""), ("client[notes]", "")])
            .await
            .ok();
        let id = created["id"].as_i64().expect("id").to_string();
        for common in ["password1234", "qwertyuiop123", "123456789012"] {
            let refused = admin
                .rpc("create_client_user", &[("client_id", &id), ("name", "Carla"), ("email", CARLA), ("password", common)])
                .await;
            assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{common}");
            assert!(refused.message().contains("too common"), "{}", refused.message());
        }
        let changed = admin
            .rpc("change_password", &[("current_password", ADMIN_PASSWORD), ("new_password", "iloveyou1234"), ("new_password_confirm", "iloveyou1234")])
            .await;
        assert_eq!(changed.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(changed.message().contains("too common"), "{}", changed.message());
        // Nothing was made or changed.
        assert_eq!(admin.rpc("get_client_detail", &[("id", &id)]).await.ok()["users"], serde_json::json!([]));
        app.browser().sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.ok();
    }
}

/// The administrator as the services see them.
async fn admin_user_of(app: &TestApp) -> protocol::account::CurrentUser {
    app.services
        .sign_in(ADMIN_EMAIL, ADMIN_PASSWORD, "t", None)
        .await
        .expect("admin")
        .user
}

#[tokio::test]
async fn administrators_must_set_one_up_where_the_server_requires_it() {
    within_limit(async {
        let app = TestApp::spawn(
            licensing::Backend::Sqlite,
            &[("LICENTIA_REQUIRE_ADMIN_SECOND_FACTOR", "true")],
        )
        .await;
        let admin = app.admin().await;
        assert_eq!(admin.whoami().await["must_set_up_second_factor"], true);
        // Nothing but setting it up: portal functions are refused, and so would be any token.
        let refused = admin.rpc("list_clients", &[]).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
        assert!(
            refused.message().contains("second factor"),
            "{}",
            refused.message()
        );
        let token = admin
            .rpc(
                "create_api_token",
                &[
                    ("name", "x"),
                    ("access", "write"),
                    ("password", ADMIN_PASSWORD),
                ],
            )
            .await;
        assert_eq!(token.status, StatusCode::FORBIDDEN);
        let user = app
            .services
            .session_user(&admin.session_token().expect("session"))
            .await
            .expect("lookup")
            .expect("signed in");
        assert!(
            app.services
                .list_clients(&user, &Default::default(), &licensing::page::Page::ALL)
                .await
                .is_err(),
            "the services refuse too"
        );

        let (secret, _) = set_up(&app, &admin, ADMIN_PASSWORD).await;
        assert_eq!(admin.whoami().await["must_set_up_second_factor"], false);
        admin.rpc("list_clients", &[]).await.ok();
        // Turned off (with a code), the requirement holds again at once.
        app.clock.advance(30);
        let code = totp::code_at(&secret, app.clock.now());
        admin
            .rpc(
                "remove_second_factor",
                &[("password", ADMIN_PASSWORD), ("code", &code)],
            )
            .await
            .ok();
        assert_eq!(admin.whoami().await["must_set_up_second_factor"], true);
        assert_eq!(
            admin.rpc("list_clients", &[]).await.status,
            StatusCode::FORBIDDEN
        );
        set_up(&app, &admin, ADMIN_PASSWORD).await;
        admin.rpc("list_clients", &[]).await.ok();
        // The admin CLI's reset takes it away (a lost phone): the requirement applies again.
        app.services
            .reset_second_factor_by_email(ADMIN_EMAIL)
            .await
            .expect("reset");
        assert_eq!(admin.whoami().await["must_set_up_second_factor"], true);
        assert_eq!(
            admin.rpc("list_clients", &[]).await.status,
            StatusCode::FORBIDDEN
        );
        // Nothing left to reset is said so.
        assert!(app
            .services
            .reset_second_factor_by_email(ADMIN_EMAIL)
            .await
            .is_err());
    })
    .await;
}
