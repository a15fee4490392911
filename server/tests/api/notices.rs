//! A licence's end told: a `licence.expired` webhook event once its last day has passed, and an
//! e-mail (through a real SMTP server) reminding the client's contact before it — each once per
//! end date, again after an extension moves the end, never twice from two replicas at once.

use crate::both_backends;
use crate::helpers::*;
use crate::mail::{mail_app, PUBLIC};
use licensing::catalog::OrderInput;
use licensing::Backend;
use protocol::activation::fingerprint;
use protocol::catalog::LicensingSettings;
use protocol::webhooks::WebhookInput;
use reqwest::StatusCode;
use serde_json::{json, Value};

const DAY: i64 = 86_400;

async fn activate(app: &TestApp, key: &str, machine: &str) {
    let (st, body, _) = api_post(
        app,
        "/api/v1/activations",
        json!({"licence_key": key, "fingerprint": fingerprint("CALC", machine), "hostname": machine}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
}

/// A limited product: each licence ends `days` after its first activation.
fn limited(days: i64) -> LicensingSettings {
    LicensingSettings {
        limited: true,
        validity_days: Some(days),
        end_user_removal: false,
        max_activations: 5,
        ..Default::default()
    }
}

both_backends! {
    async fn an_ended_licence_is_told_once_per_end_date_by_a_webhook_event(app) {
        let f = fixture(&app, limited(10), 2).await;
        let hook = app.services.create_webhook(&f.admin, &WebhookInput { url: "http://127.0.0.1:9/hook".into(), events: vec!["licence.expired".into()] }).await.expect("webhook");
        activate(&app, &f.keys[0], "ws-1").await;
        let events = || async {
            let (list, _) = app.services.webhook_deliveries(&f.admin, hook.webhook.id, None, Some(100)).await.expect("deliveries");
            list.into_iter().map(|d| serde_json::from_str::<Value>(&d.payload).expect("json")).collect::<Vec<_>>()
        };
        assert_eq!(app.services.notice_expired_licences().await.expect("notice"), 0, "nothing has ended");

        // Its last day passes: told once; the licence never activated has no end to tell.
        app.clock.advance(11 * DAY);
        // Two replicas at the same moment: one of them tells it.
        let (a, b) = tokio::join!(app.services.notice_expired_licences(), app.services.notice_expired_licences());
        assert_eq!(a.expect("a") + b.expect("b"), 1);
        assert_eq!(app.services.notice_expired_licences().await.expect("again"), 0, "once");
        let told = events().await;
        assert_eq!(told.len(), 1, "{told:?}");
        assert_eq!(told[0]["type"], "licence.expired");
        assert_eq!(told[0]["data"]["licence_id"], f.licence_ids[0]);
        let first_end = told[0]["data"]["expires_on"].as_str().expect("end").to_owned();
        assert!(told[0]["data"]["client_id"].is_i64() && told[0]["data"]["order_id"].is_i64(), "{told:?}");

        // Extended, it runs again; past its new end it is told again, with that end.
        app.services.extend_licence(&f.admin, f.licence_ids[0], 30).await.expect("extended");
        assert_eq!(app.services.notice_expired_licences().await.expect("notice"), 0);
        app.clock.advance(31 * DAY);
        assert_eq!(app.services.notice_expired_licences().await.expect("notice"), 1);
        let told = events().await;
        assert_eq!(told.len(), 2);
        let ends: Vec<&str> = told.iter().filter_map(|e| e["data"]["expires_on"].as_str()).collect();
        assert!(ends.contains(&first_end.as_str()) && ends.iter().any(|e| *e > first_end.as_str()), "{ends:?}");
    }
}

async fn reminders(app: TestApp, sink: SmtpSink) {
    let f = fixture(&app, limited(10), 3).await;
    let admin = app.admin().await;
    // Acme's contact is who is reminded; Globex has none, so is not.
    let acme = app
        .services
        .list_clients(&f.admin, &Default::default(), &licensing::page::Page::ALL)
        .await
        .expect("clients")
        .items
        .into_iter()
        .find(|c| c.name == "Acme")
        .expect("Acme");
    let body = protocol::account::ClientBody {
        name: "Acme".into(),
        contact_email: "buyer@acme.test".into(),
        notes: String::new(),
    };
    app.services
        .update_client(
            &f.admin,
            acme.id,
            licensing::accounts::ClientInput::parse(&body).expect("input"),
        )
        .await
        .expect("contact");
    let (globex, _) = app.client_user(&admin, "Globex", "gil@globex.test").await;
    let calc = app
        .services
        .list_products(&f.admin, &licensing::page::Page::ALL)
        .await
        .expect("products")
        .items[0]
        .id;
    let theirs = app
        .services
        .create_order(
            &f.admin,
            OrderInput {
                client_id: globex,
                product_id: calc,
                quantity: 1,
                reference: String::new(),
                features: None,
                counters: None,
                notes: String::new(),
            },
        )
        .await
        .expect("order");
    let their_key = app
        .services
        .order_licences(&f.admin, theirs.id, &licensing::page::Page::ALL)
        .await
        .expect("licences")
        .items[0]
        .key
        .clone();
    activate(&app, &f.keys[0], "ws-1").await;
    activate(&app, &f.keys[1], "ws-2").await;
    activate(&app, &their_key, "globex-1").await;
    // Licence 3 is never activated: it has no end yet.

    // The window's edges: eight days before the last day, nothing with a 7-day period; seven
    // days before, both of Acme's licences in one letter, however many replicas send at once.
    let first = app
        .services
        .licence_page(&f.admin, f.licence_ids[0])
        .await
        .expect("licence");
    let end = protocol::time::parse_date(first.licence.expires_on.as_deref().expect("an end"))
        .expect("a date");
    app.clock
        .advance((end - 8) * DAY + 12 * 3600 - app.clock.now());
    assert_eq!(
        app.services
            .send_expiry_reminders(7)
            .await
            .expect("reminders"),
        0
    );
    app.clock.advance(DAY);
    let (a, b) = tokio::join!(
        app.services.send_expiry_reminders(7),
        app.services.send_expiry_reminders(7)
    );
    assert_eq!(a.expect("a") + b.expect("b"), 2);
    let mails = sink.wait_for(1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mails = if sink.messages().len() > mails.len() {
        sink.messages()
    } else {
        mails
    };
    assert_eq!(mails.len(), 1, "one letter, to Acme only: {mails:?}");
    let letter = &mails[0];
    assert!(letter.to.contains("buyer@acme.test"), "{letter:?}");
    assert_eq!(letter.subject, "2 licences of Acme end soon");
    assert!(
        letter.body.contains("on ws-1") && letter.body.contains("on ws-2"),
        "{}",
        letter.body
    );
    assert!(
        !letter.body.contains(&f.keys[0]) && !letter.body.contains(&f.keys[1]),
        "no whole key by mail: {}",
        letter.body
    );
    assert!(
        letter
            .body
            .contains(&format!("last day {}", protocol::time::format_date(end))),
        "{}",
        letter.body
    );
    assert!(
        letter.body.contains(&format!("{PUBLIC}/client")),
        "{}",
        letter.body
    );
    // Once per end date, the next day too.
    app.clock.advance(DAY);
    assert_eq!(
        app.services
            .send_expiry_reminders(7)
            .await
            .expect("reminders"),
        0
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(sink.messages().len(), 1, "no second letter");

    // One licence extended: its new end is reminded of when it comes near, alone.
    app.services
        .extend_licence(&f.admin, f.licence_ids[0], 30)
        .await
        .expect("extended");
    assert_eq!(
        app.services
            .send_expiry_reminders(7)
            .await
            .expect("reminders"),
        0
    );
    app.clock.advance(30 * DAY);
    assert_eq!(
        app.services
            .send_expiry_reminders(7)
            .await
            .expect("reminders"),
        1
    );
    let mails = sink.wait_for(2).await;
    assert_eq!(mails[1].subject, "A licence of Acme ends soon");
    assert!(
        mails[1].body.contains("on ws-1") && !mails[1].body.contains("on ws-2"),
        "{}",
        mails[1].body
    );

    // With the mail server gone, a reminder is not lost: it is tried again an hour later, five
    // times in all, then given up (and not tried every round meanwhile).
    app.services
        .extend_licence(&f.admin, f.licence_ids[1], 60)
        .await
        .expect("extended");
    app.clock.advance(55 * DAY);
    drop(sink);
    let state = || async {
        // (reminded of its current end, attempts, claim)
        sqlx::query_as::<_, (i64, i64, Option<String>)>("SELECT CASE WHEN reminded_for = expires_on THEN 1 ELSE 0 END, reminder_attempts, reminder_claim FROM licences WHERE id = $1")
            .bind(f.licence_ids[1])
            .fetch_one(app.services.db().pool())
            .await
            .expect("row")
    };
    for attempt in 1..=4 {
        assert_eq!(
            app.services
                .send_expiry_reminders(7)
                .await
                .expect("a failed send is no error"),
            0
        );
        assert_eq!(state().await, (0, attempt, None), "still to be reminded");
        assert_eq!(
            app.services.send_expiry_reminders(7).await.expect("again"),
            0
        );
        assert_eq!(state().await.1, attempt, "not tried again within the hour");
        app.clock.advance(3601);
    }
    assert_eq!(
        app.services
            .send_expiry_reminders(7)
            .await
            .expect("the fifth"),
        0
    );
    assert_eq!(state().await, (1, 0, None), "given up after five");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contact_is_reminded_once_per_end_date_sqlite() {
    let sink = SmtpSink::start();
    if let Some(app) = mail_app(Backend::Sqlite, &sink).await {
        within_limit(reminders(app, sink)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contact_is_reminded_once_per_end_date_postgres() {
    let sink = SmtpSink::start();
    if let Some(app) = mail_app(Backend::Postgres, &sink).await {
        within_limit(reminders(app, sink)).await;
    }
}
