//! Invitations and password resets by e-mail, through a real SMTP server (aiosmtpd): the link
//! read from the message sets the password once; a reset asked for by a stranger tells nothing
//! and points only at the public URL; without a mail server the links are handed to the
//! administrator.

use crate::helpers::*;
use crate::manage::token;
use licensing::Backend;
use reqwest::StatusCode;

/// The public URL the servers here are given: links must start with it (http, so the test
/// browsers keep their session cookies).
pub(crate) const PUBLIC: &str = "http://licences.vendor.test";
const CARLA: &str = "carla@acme.test";

pub(crate) async fn mail_app(backend: Backend, sink: &SmtpSink) -> Option<TestApp> {
    if backend == Backend::Postgres && !postgres_available() {
        return None;
    }
    let url = sink.url();
    let settings = [
        ("LICENTIA_SMTP_URL", url.as_str()),
        ("LICENTIA_MAIL_FROM", "Licentia <licences@vendor.test>"),
        ("LICENTIA_PUBLIC_URL", PUBLIC),
    ];
    Some(TestApp::spawn(backend, &settings).await)
}

fn token_of(link: &str) -> String {
    let token = link
        .strip_prefix(&format!("{PUBLIC}/password-link/"))
        .unwrap_or_else(|| panic!("a link to the public URL: {link}"));
    token.to_owned()
}

async fn new_client(admin: &Browser, name: &str) -> String {
    let created = admin
        .rpc(
            "create_client",
            &[
                ("client[name]", name),
                ("client[contact_email]", ""),
                ("client[notes]", ""),
            ],
        )
        .await
        .ok();
    created["id"].as_i64().expect("client id").to_string()
}

async fn invitation_accepted_once(app: TestApp, sink: SmtpSink) {
    let admin = app.admin().await;
    let client_id = new_client(&admin, "Acme Tools").await;
    let added = admin
        .rpc(
            "create_client_user",
            &[
                ("client_id", &client_id),
                ("name", "Carla Client"),
                ("email", CARLA),
                ("password", ""),
            ],
        )
        .await
        .ok();
    assert_eq!(added["invited"], true, "{added}");
    assert_eq!(added["invitation"]["by"], "mailed", "{added}");
    assert_eq!(added["invitation"]["to"], CARLA);
    assert!(
        added["invitation"].get("link").is_none(),
        "a mailed link is not shown"
    );

    let mails = sink.wait_for(1).await;
    let mail = &mails[0];
    assert!(mail.to.contains(CARLA), "{mail:?}");
    assert_eq!(mail.subject, "You are invited to Licentia");
    assert!(
        mail.body.contains("Acme Tools") && mail.body.contains("Ada Admin"),
        "{mail:?}"
    );
    let token = token_of(&mail.link(PUBLIC));

    // No password works for an account that has none yet.
    let stranger = app.browser();
    let tried = stranger.sign_in(CARLA, "client password 123").await;
    assert_eq!(tried.status, StatusCode::UNAUTHORIZED, "{}", tried.body);

    let page = app.browser().get(&format!("/password-link/{token}")).await;
    assert_eq!(page.status(), StatusCode::OK);
    let carla = app.browser();
    let info = carla
        .rpc("check_password_link", &[("token", &token)])
        .await
        .ok();
    assert_eq!(info["purpose"], "invitation");
    assert_eq!(info["email"], CARLA);

    // A weak password or two that differ: refused, and the link still works.
    let weak = set_by_link(&carla, &token, "password1234", "password1234").await;
    assert!(
        weak.body.to_string().contains("too common"),
        "{}",
        weak.body
    );
    let differ = set_by_link(
        &carla,
        &token,
        "carla's own long pass 9",
        "carla's own long pass 8",
    )
    .await;
    assert!(
        differ.body.to_string().contains("do not match"),
        "{}",
        differ.body
    );

    let used = set_by_link(
        &carla,
        &token,
        "carla's own long pass 9",
        "carla's own long pass 9",
    )
    .await;
    assert_eq!(
        used.headers.get("location").and_then(|v| v.to_str().ok()),
        Some("/client/licences")
    );
    used.ok();
    let me = carla.whoami().await;
    assert_eq!(me["email"], CARLA);
    assert_eq!(me["client"]["name"], "Acme Tools");

    // Once only.
    let again = app.browser();
    let reused = set_by_link(
        &again,
        &token,
        "someone else's pass 77",
        "someone else's pass 77",
    )
    .await;
    assert_eq!(reused.status, StatusCode::GONE, "{}", reused.body);
    let gone = again
        .rpc("check_password_link", &[("token", &token)])
        .await
        .ok();
    assert!(gone.is_null(), "{gone}");
    app.browser()
        .sign_in(CARLA, "carla's own long pass 9")
        .await
        .ok();

    // The audit log tells both steps.
    let audit = admin
        .rpc("audit_log", &[("action", "user.invite")])
        .await
        .ok();
    assert_eq!(
        audit["entries"].as_array().map(Vec::len),
        Some(1),
        "{audit}"
    );
    let accepted = admin
        .rpc("audit_log", &[("action", "user.invite-accept")])
        .await
        .ok();
    assert_eq!(accepted["entries"][0]["actor"], CARLA, "{accepted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invited_user_chooses_a_password_through_the_mailed_link_once_sqlite() {
    let sink = SmtpSink::start();
    if let Some(app) = mail_app(Backend::Sqlite, &sink).await {
        within_limit(invitation_accepted_once(app, sink)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invited_user_chooses_a_password_through_the_mailed_link_once_postgres() {
    let sink = SmtpSink::start();
    if let Some(app) = mail_app(Backend::Postgres, &sink).await {
        within_limit(invitation_accepted_once(app, sink)).await;
    }
}

/// The messages to `address` received so far.
fn mails_to(sink: &SmtpSink, address: &str) -> Vec<Mail> {
    sink.messages()
        .into_iter()
        .filter(|m| m.to.contains(address))
        .collect()
}

async fn reset_by_mail(app: TestApp, sink: SmtpSink) {
    let admin = app.admin().await;
    let (_, carla) = app.client_user(&admin, "Acme Tools", CARLA).await;
    let carla_api = token(&app, &carla, "ci", "read").await;
    // Carla has a second factor: a reset by e-mail must not take it away.
    crate::second_factor::set_up(&app, &carla, "client password 123").await;

    // Asked for by a stranger for an unknown address, then for Carla's naming another host:
    // the same answer, and the link in the mail points at the public URL only. (Resets are
    // handled one after the other, so once Carla's has arrived the unknown one was handled.)
    let stranger = app.browser();
    let unknown = stranger
        .rpc("request_password_reset", &[("email", "nobody@acme.test")])
        .await;
    let asked = stranger
        .rpc_with(
            "request_password_reset",
            &[("email", CARLA)],
            &[
                ("host", "evil.example"),
                ("x-forwarded-host", "evil.example"),
            ],
        )
        .await;
    assert_eq!(asked.status, unknown.status);
    assert_eq!(asked.body, unknown.body);
    asked.ok();
    let mails = sink.wait_for(1).await;
    assert_eq!(mails.len(), 1, "nothing is sent for an unknown address");
    assert!(mails[0].to.contains(CARLA));
    assert_eq!(mails[0].subject, "Reset your Licentia password");
    assert!(!mails[0].body.contains("evil.example"), "{:?}", mails[0]);
    let token = token_of(&mails[0].link(PUBLIC));

    // Asked again at once: nothing more is sent to Carla (no mail bombing), the answer is the
    // same; the administrator's own reset asked for after it shows it was handled.
    stranger
        .rpc("request_password_reset", &[("email", CARLA)])
        .await
        .ok();
    stranger
        .rpc("request_password_reset", &[("email", ADMIN_EMAIL)])
        .await
        .ok();
    sink.wait_for(2).await;
    assert_eq!(mails_to(&sink, CARLA).len(), 1);

    let info = stranger
        .rpc("check_password_link", &[("token", &token)])
        .await
        .ok();
    assert_eq!(info["purpose"], "reset");
    let used = set_by_link(
        &stranger,
        &token,
        "a brand new pass phrase",
        "a brand new pass phrase",
    )
    .await
    .ok();
    assert_eq!(used, "reset");
    // A reset signs nobody in: the new password and the second factor do.
    assert!(stranger.whoami().await.is_null());
    // What the old password opened is closed: the session and the API token.
    assert!(carla.whoami().await.is_null(), "the old session ended");
    assert_eq!(
        carla_api.get("/api/v1/clients").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.browser()
            .sign_in(CARLA, "client password 123")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    crate::second_factor::password_step(&app, CARLA, "a brand new pass phrase").await;

    // A link dies when the password changes another way before it is used. (An hour later:
    // the stranger's address has asked for its share of resets.)
    app.clock.advance(3601);
    stranger
        .rpc("request_password_reset", &[("email", CARLA)])
        .await
        .ok();
    sink.wait_for(3).await;
    let second = token_of(&mails_to(&sink, CARLA)[1].link(PUBLIC));
    let carla_id = carla_id(&admin).await;
    let admin = app.admin().await;
    admin
        .rpc(
            "reset_user_password",
            &[("user_id", &carla_id), ("password", "set by the admin 42")],
        )
        .await
        .ok();
    let late = set_by_link(
        &stranger,
        &second,
        "too late for this one",
        "too late for this one",
    )
    .await;
    assert_eq!(late.status, StatusCode::GONE, "{}", late.body);

    // And when it expires.
    app.clock.advance(3601);
    stranger
        .rpc("request_password_reset", &[("email", CARLA)])
        .await
        .ok();
    sink.wait_for(4).await;
    let third = token_of(&mails_to(&sink, CARLA)[2].link(PUBLIC));
    app.clock
        .advance(licensing::accounts::links::RESET_MINUTES * 60 + 1);
    let expired = stranger
        .rpc("check_password_link", &[("token", &third)])
        .await
        .ok();
    assert!(expired.is_null(), "{expired}");
}

async fn carla_id(admin: &Browser) -> String {
    let clients = admin.rpc("list_clients", &[]).await.ok();
    let id = clients[0]["id"].as_i64().expect("client").to_string();
    let detail = admin.rpc("get_client_detail", &[("id", &id)]).await.ok();
    detail["users"][0]["id"].as_i64().expect("user").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_password_is_reset_through_a_mailed_link_sqlite() {
    let sink = SmtpSink::start();
    if let Some(app) = mail_app(Backend::Sqlite, &sink).await {
        within_limit(reset_by_mail(app, sink)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_password_is_reset_through_a_mailed_link_postgres() {
    let sink = SmtpSink::start();
    if let Some(app) = mail_app(Backend::Postgres, &sink).await {
        within_limit(reset_by_mail(app, sink)).await;
    }
}

/// One address asking for resets gets a few handled an hour, whether the addresses it names
/// have accounts or not (so the limit tells nothing either); another address is not held back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_asking_for_many_resets_gets_only_a_few_sent() {
    let sink = SmtpSink::start();
    let url = sink.url();
    let settings = [
        ("LICENTIA_SMTP_URL", url.as_str()),
        ("LICENTIA_MAIL_FROM", "Licentia <licences@vendor.test>"),
        ("LICENTIA_PUBLIC_URL", PUBLIC),
        ("LICENTIA_TRUST_FORWARDED_FOR", "true"),
    ];
    let app = TestApp::spawn(Backend::Sqlite, &settings).await;
    within_limit(async move {
        let admin = app.admin().await;
        let (_, _carla) = app.client_user(&admin, "Acme Tools", CARLA).await;
        let from = |address: &'static str| [("x-forwarded-for", address)];
        let stranger = app.browser();
        let limit = licensing::accounts::links::RESETS_PER_ADDRESS_HOUR;
        // The first asks name no account, then the real one: past the limit, not sent.
        for n in 0..limit {
            let email = format!("nobody{n}@acme.test");
            stranger
                .rpc_with(
                    "request_password_reset",
                    &[("email", &email)],
                    &from("203.0.113.7"),
                )
                .await
                .ok();
        }
        stranger
            .rpc_with(
                "request_password_reset",
                &[("email", CARLA)],
                &from("203.0.113.7"),
            )
            .await
            .ok();
        // Another address is handled (after the ones before it).
        stranger
            .rpc_with(
                "request_password_reset",
                &[("email", ADMIN_EMAIL)],
                &from("198.51.100.9"),
            )
            .await
            .ok();
        let mails = sink.wait_for(1).await;
        assert!(mails[0].to.contains(ADMIN_EMAIL), "{mails:?}");
        assert!(mails_to(&sink, CARLA).is_empty());
        // An hour on, the first address may ask again.
        app.clock.advance(3601);
        stranger
            .rpc_with(
                "request_password_reset",
                &[("email", CARLA)],
                &from("203.0.113.7"),
            )
            .await
            .ok();
        sink.wait_for(2).await;
        assert_eq!(mails_to(&sink, CARLA).len(), 1);
    })
    .await;
}

/// Without a mail server: the administrator is handed the link to pass on, nobody can ask for
/// a reset, and the administrator's link for a user who has arrived is a reset link that works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_mail_server_the_administrator_passes_the_link_on() {
    within_limit(async {
        let app = TestApp::spawn(Backend::Sqlite, &[]).await;
        let admin = app.admin().await;
        let invited = admin
            .rpc(
                "invite_admin",
                &[("name", "Otto Other"), ("email", "otto@vendor.test")],
            )
            .await
            .ok();
        assert_eq!(invited["delivery"]["by"], "pass_on", "{invited}");
        assert!(
            invited["delivery"]["why"]
                .as_str()
                .is_some_and(|w| w.contains("LICENTIA_SMTP_URL")),
            "{invited}"
        );
        let link = invited["delivery"]["link"].as_str().expect("link");
        // (This server has no public URL: the link starts with the address it listens on.)
        let (_, token) = link.split_once("/password-link/").expect("a password link");
        let otto = app.browser();
        set_by_link(
            &otto,
            token,
            "otto's long admin phrase",
            "otto's long admin phrase",
        )
        .await
        .ok();
        assert_eq!(otto.whoami().await["role"], "admin");
        // An invitation that outlived its acceptance (sent again at the moment it was accepted)
        // does not open the account that came of it.
        let stale = "s".repeat(43);
        let digest: String = {
            use sha2::Digest;
            sha2::Sha256::digest(stale.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        let otto_id: i64 = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
            .bind("otto@vendor.test")
            .fetch_one(app.services.db().pool())
            .await
            .expect("otto");
        sqlx::query(
            "INSERT INTO account_links (token_hash, user_id, purpose, created_at, expires_at) \
             VALUES ($1, $2, 'invitation', $3, $4)",
        )
        .bind(&digest)
        .bind(otto_id)
        .bind(app.clock.now())
        .bind(app.clock.now() + 3600)
        .execute(app.services.db().pool())
        .await
        .expect("a stale invitation");
        let thief = app.browser();
        let refused = set_by_link(
            &thief,
            &stale,
            "taking otto's account",
            "taking otto's account",
        )
        .await;
        assert_eq!(refused.status, StatusCode::GONE, "{}", refused.body);
        assert!(
            refused.body.to_string().contains("already accepted"),
            "{}",
            refused.body
        );
        assert!(thief.whoami().await.is_null());
        app.browser()
            .sign_in("otto@vendor.test", "otto's long admin phrase")
            .await
            .ok();

        let asked = app
            .browser()
            .rpc("request_password_reset", &[("email", "otto@vendor.test")])
            .await;
        assert!(
            asked.body.to_string().contains("does not send e-mail"),
            "{}",
            asked.body
        );

        // An administrator's password is not reset by another's link.
        let admins = admin.rpc("list_admins", &[]).await.ok();
        let otto_id = admins
            .as_array()
            .and_then(|a| a.iter().find(|u| u["email"] == "otto@vendor.test"))
            .and_then(|u| u["id"].as_i64())
            .expect("otto")
            .to_string();
        let refused = admin
            .rpc("send_password_link", &[("user_id", &otto_id)])
            .await;
        assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);

        // A client may not send links, nor invite.
        let (_, carla) = app.client_user(&admin, "Acme Tools", CARLA).await;
        let carla_id = carla_id(&admin).await;
        for (name, form) in [
            ("send_password_link", vec![("user_id", carla_id.as_str())]),
            (
                "invite_admin",
                vec![("name", "Mallory"), ("email", "mallory@acme.test")],
            ),
        ] {
            let reply = carla.rpc(name, &form).await;
            assert_eq!(
                reply.status,
                StatusCode::FORBIDDEN,
                "{name}: {}",
                reply.body
            );
        }
        let link = admin
            .rpc("send_password_link", &[("user_id", &carla_id)])
            .await
            .ok();
        assert_eq!(link["purpose"], "reset");
        assert_eq!(link["delivery"]["by"], "pass_on");
    })
    .await;
}

/// Sets a password through a link, as its page sends it.
async fn set_by_link(browser: &Browser, token: &str, password: &str, confirm: &str) -> Reply {
    browser
        .rpc(
            "use_password_link",
            &[
                ("token", token),
                ("password", password),
                ("password_confirm", confirm),
            ],
        )
        .await
}
