//! The audit log: changes through the portal, the API and the admin CLI are recorded with who,
//! when, from where and (licence terms) before → after; sign-in failures and lockouts and
//! secrets revealed too; client users read only their own client's entries; nobody can change
//! or delete an entry, not even with SQL; the CSV export keeps formulas as text.

use crate::both_backends;
use crate::helpers::*;
use crate::manage::{token, Api};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The entries the API answers for `query` (the newest first).
async fn entries(api: &Api, query: &str) -> Vec<Value> {
    let (status, page) = api.get(&format!("/api/v1/audit?{query}")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["entries"].as_array().expect("entries").clone()
}

/// A product, the client Acme with Carla, an order of one licence (the shared fixture); browsers
/// signed in as the administrator and as Carla, Acme's id and the licence's.
async fn acme(app: &TestApp) -> (Browser, Browser, i64, i64) {
    let f = fixture(app, protocol::catalog::LicensingSettings::default(), 1).await;
    let admin = app.browser();
    admin.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.ok();
    let carla = app.browser();
    carla
        .sign_in("carla@acme.test", "client password 123")
        .await
        .ok();
    let client_id = f.client.client.as_ref().expect("a client user").id;
    (admin, carla, client_id, f.licence_ids[0])
}

both_backends! {
    async fn changes_are_recorded_with_who_where_and_what_they_were_before(app) {
        let (admin, carla, client_id, licence) = acme(&app).await;
        let api = token(&app, &admin, "billing", "write").await;

        // Through the API: the terms before and after, the token, the address.
        let (status, body) = api
            .call(
                reqwest::Method::PATCH,
                &format!("/api/v1/licences/{licence}"),
                Some(json!({"features": ["print", "export"], "counters": {"users": 9}})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let edits = entries(&api, "action=licence.edit").await;
        assert_eq!(edits.len(), 1, "{edits:?}");
        let e = &edits[0];
        assert_eq!(e["actor"], "admin@vendor.test (API token \u{201c}billing\u{201d})");
        assert_eq!(e["channel"], "api");
        assert_eq!(e["address"], "127.0.0.1");
        assert_eq!(e["client_id"], client_id);
        assert!(e["subject"].as_str().expect("subject").starts_with(&format!("licence {licence} (")));
        let changes: Vec<String> = e["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .map(|c| format!("{}: {} -> {}", c["field"].as_str().unwrap_or(""), c["before"].as_str().unwrap_or(""), c["after"].as_str().unwrap_or("")))
            .collect();
        assert_eq!(changes, ["counters: users=5 -> users=9", "features: print -> print, export"]);

        // Through the portal: the portal, the signed-in user.
        let made = entries(&api, "action=client.create").await;
        assert_eq!(made.len(), 1);
        assert_eq!(made[0]["actor"], ADMIN_EMAIL);
        assert_eq!(made[0]["channel"], "portal");
        assert_eq!(made[0]["subject"], "client Acme");
        let tokens = entries(&api, "action=token.create").await;
        assert_eq!(tokens[0]["subject"], "API token billing");
        assert!(tokens[0]["detail"].as_str().expect("detail").starts_with("Read-write, until "));
        // Sign-ins, and the first administrator's setup.
        assert!(!entries(&api, "action=sign-in&actor=carla").await.is_empty());
        assert_eq!(entries(&api, "action=admin.setup").await.len(), 1);

        // The client user reads their own client's entries, never another's or the catalogue's.
        let own = carla.rpc("audit_log", &[]).await.ok();
        let own = own["entries"].as_array().expect("entries").clone();
        assert!(own.iter().any(|e| e["action"] == "licence.edit"), "{own:?}");
        assert!(own.iter().all(|e| e["client_id"] == client_id), "{own:?}");
        assert!(!own.iter().any(|e| e["action"] == "product.create"));
        let asked_for_all = carla.rpc("audit_log", &[("action", "product.create")]).await.ok();
        assert_eq!(asked_for_all["entries"], json!([]));
        // Her token asking for another client's entries gets her own.
        let hers = token(&app, &carla, "carla", "read").await;
        let other = entries(&hers, &format!("client_id={}", client_id + 1000)).await;
        assert!(!other.is_empty() && other.iter().all(|e| e["client_id"] == client_id), "{other:?}");

        // The vendor's notes about a client and an order are not theirs to read: the entry
        // says they changed, not what they say.
        admin
            .rpc("update_client", &[("id", &client_id.to_string()), ("client[name]", "Acme"), ("client[contact_email]", ""), ("client[notes]", "Slow payer, push hard")])
            .await
            .ok();
        let own = carla.rpc("audit_log", &[("action", "client.update")]).await.ok();
        let text = own.to_string();
        assert!(text.contains("\"notes\""), "{text}");
        assert!(!text.contains("Slow payer"), "{text}");
    }

    async fn reading_whole_secrets_is_recorded_and_only_a_write_token_may(app) {
        let (admin, _, _, licence) = acme(&app).await;
        let reader = token(&app, &admin, "dashboard", "read").await;
        let writer = token(&app, &admin, "ops", "write").await;
        let (status, seen) = reader.get(&format!("/api/v1/licences/{licence}")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(seen["key"].as_str().expect("key").ends_with('…'), "masked: {seen}");
        assert!(entries(&reader, "action=secret.reveal").await.is_empty());
        let (status, seen) = writer.get(&format!("/api/v1/licences/{licence}")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(!seen["key"].as_str().expect("key").ends_with('…'));
        let reveals = entries(&reader, "action=secret.reveal").await;
        assert_eq!(reveals.len(), 1, "{reveals:?}");
        assert_eq!(reveals[0]["subject"], format!("GET /api/v1/licences/{licence}"));
        assert_eq!(reveals[0]["actor"], "admin@vendor.test (API token \u{201c}ops\u{201d})");
    }

    async fn failed_sign_ins_and_lockouts_are_recorded_and_the_csv_keeps_formulas_as_text(app) {
        let admin = app.admin().await;
        // (Made first: five failures from this address lock the administrator's password here.)
        let api = token(&app, &admin, "audit", "read").await;
        let stranger = app.browser();
        for _ in 0..5 {
            stranger.sign_in(ADMIN_EMAIL, "not the password at all").await;
        }
        stranger.sign_in("=HYPERLINK(\"http://evil.test\")@evil.test", "whatever password").await;
        assert_eq!(entries(&api, "action=sign-in.failed&actor=admin%40vendor").await.len(), 4);
        let locked = entries(&api, "action=sign-in.locked").await;
        assert_eq!(locked.len(), 1);
        assert!(locked[0]["detail"].as_str().expect("detail").contains("locked for"), "{}", locked[0]);
        let unknown = entries(&api, "action=sign-in.failed&actor=hyperlink").await;
        assert_eq!(unknown[0]["detail"], "No such account.");

        // The administrator's CSV download (the portal's, with the session cookie).
        let res = admin.get("/audit.csv?action=sign-in.failed").await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
        let csv = res.text().await.expect("csv");
        assert!(csv.starts_with("id,time_utc,actor,channel,address,action,subject,client_id,detail,changes\r\n"), "{csv}");
        assert_eq!(csv.lines().count(), 6, "{csv}");
        assert!(csv.contains("\"'=hyperlink(\"\"http://evil.test\"\")@evil.test\""), "{csv}");
        // Without a session there is nothing to download.
        assert_eq!(app.browser().get("/audit.csv").await.status(), StatusCode::UNAUTHORIZED);
    }

    async fn nobody_can_change_or_delete_an_entry_even_with_sql(app) {
        app.admin().await;
        let pool = app.services.db().pool();
        let count = || async {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM audit_log")
                .fetch_one(pool)
                .await
                .expect("count")
        };
        let before = count().await;
        assert!(before >= 1);
        let first: i64 = sqlx::query_scalar("SELECT MIN(id) FROM audit_log")
            .fetch_one(pool)
            .await
            .expect("an entry");
        let replace = match app.services.db().backend() {
            licensing::Backend::Sqlite => format!(
                "INSERT OR REPLACE INTO audit_log (id, at, actor, channel, action, subject) \
                 VALUES ({first}, 0, 'nobody', 'portal', 'sign-in', 'x')"
            ),
            licensing::Backend::Postgres => "TRUNCATE audit_log".to_owned(),
        };
        for sql in [
            "UPDATE audit_log SET actor = 'nobody'",
            "DELETE FROM audit_log",
            replace.as_str(),
        ] {
            let refused = sqlx::query(sql).execute(pool).await.expect_err(sql);
            assert!(refused.to_string().contains("append-only"), "{sql}: {refused}");
        }
        assert_eq!(count().await, before);
        let actors: Vec<String> = sqlx::query_scalar("SELECT actor FROM audit_log")
            .fetch_all(pool)
            .await
            .expect("actors");
        assert!(!actors.iter().any(|a| a == "nobody"));
    }

    async fn the_log_is_read_a_page_at_a_time_with_filters_checked(app) {
        let admin = app.admin().await;
        for name in ["One", "Two", "Three", "Four", "Five"] {
            admin
                .rpc("create_client", &[("client[name]", name), ("client[contact_email]", ""), ("client[notes]", "")])
                .await
                .ok();
        }
        let api = token(&app, &admin, "pages", "read").await;
        let (_, first) = api.get("/api/v1/audit?action=client.create&limit=2").await;
        let names = |page: &Value| -> Vec<String> {
            page["entries"].as_array().expect("entries").iter().map(|e| e["subject"].as_str().unwrap_or("").to_owned()).collect()
        };
        assert_eq!(names(&first), ["client Five", "client Four"]);
        let next = first["next_before"].as_i64().expect("more pages");
        let (_, second) = api.get(&format!("/api/v1/audit?action=client.create&limit=2&before={next}")).await;
        assert_eq!(names(&second), ["client Three", "client Two"]);
        let next = second["next_before"].as_i64().expect("more pages");
        let (_, last) = api.get(&format!("/api/v1/audit?action=client.create&limit=2&before={next}")).await;
        assert_eq!(names(&last), ["client One"]);
        assert_eq!(last["next_before"], Value::Null);
        // A prefix of actions; a day range; bad filters are told.
        assert_eq!(entries(&api, "action=client.&limit=500").await.len(), 5);
        let today = protocol::time::format_date(protocol::time::day_of(app.clock.now()));
        assert_eq!(entries(&api, &format!("action=client.create&from={today}&to={today}")).await.len(), 5);
        assert!(entries(&api, "action=client.create&to=2000-01-01").await.is_empty());
        let (status, problem) = api.get("/api/v1/audit?action=licence.burn").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        let (status, problem) = api.get("/api/v1/audit?from=yesterday").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        // LIKE's own characters are taken literally.
        assert!(entries(&api, "subject=%25").await.is_empty());
    }
}
