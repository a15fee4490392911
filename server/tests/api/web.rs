//! The web licensing model through the Web API: serials generated in batches, activation by
//! product + serial, the limit of licences per serial, counter edits picked up at validation,
//! revoke-and-reissue, CSV export, search, and the anti-churn limit.

use crate::both_backends;
use crate::helpers::api_post as post;
use crate::helpers::*;
use licensing::web::{BatchInput, SerialQuery};
use licensing::CurrentUser;
use protocol::activation::{fingerprint, verify_signature, JwkSet};
use protocol::catalog::{LicensingSettings, Serial};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;

async fn activate(app: &TestApp, serial: &str, machine: &str) -> (StatusCode, Value) {
    let (s, b, _) = post(
        app,
        "/api/v1/activations",
        json!({"product": "CALC", "serial": serial, "fingerprint": fingerprint("CALC", machine), "hostname": machine}),
    )
    .await;
    (s, b)
}

/// The application on `machine` gives its licence of the serial up, with its latest code (which
/// activating again on the same machine fetches, using nothing).
async fn remove(
    app: &TestApp,
    serial: &str,
    machine: &str,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let (_, latest) = activate(app, serial, machine).await;
    post(
        app,
        "/api/v1/activations/remove",
        json!({"product": "CALC", "serial": serial, "fingerprint": fingerprint("CALC", machine), "activation_code": latest["activation_code"]}),
    )
    .await
}

/// An administrator, a product CALC (catalogue print, export; defaults print; counter users=5)
/// and a batch of `count` serials with `features`, `per_serial` licences each.
pub(crate) async fn serials(
    app: &TestApp,
    count: i64,
    features: Option<Vec<String>>,
    per_serial: i64,
) -> (CurrentUser, Vec<Serial>) {
    let admin = admin_user(app).await;
    let p = app
        .services
        .save_product(&admin, None, product("CALC", LicensingSettings::default()))
        .await
        .expect("product");
    let batch = app
        .services
        .generate_serials(
            &admin,
            BatchInput {
                product_id: p.id,
                count,
                features,
                licences_per_serial: Some(per_serial),
                note: "test batch".into(),
            },
        )
        .await
        .expect("batch");
    assert_eq!(batch.serials, count);
    let list = app
        .services
        .list_serials(
            &admin,
            SerialQuery {
                batch_id: Some(batch.id),
                ..SerialQuery::default()
            },
            &licensing::page::Page::ALL,
        )
        .await
        .expect("serials")
        .items;
    (admin, list)
}

both_backends! {
    async fn a_serial_grants_its_licences_to_that_many_machines(app) {
        let (admin, list) = serials(&app, 3, Some(vec!["export".into()]), 2).await;
        assert_eq!(list.len(), 3);
        let s = &list[0];
        assert_eq!((s.licences, s.active), (2, 0));
        assert_eq!(s.serial.len(), 39, "32 characters in 8 groups: {}", s.serial);

        let (st, a) = activate(&app, &s.serial, "ws-a").await;
        assert_eq!(st, StatusCode::CREATED, "{a}");
        let jwks: JwkSet = reqwest::get(format!("{}/.well-known/jwks.json", app.base_url)).await.expect("jwks").json().await.expect("json");
        let claims = verify_signature(a["activation_code"].as_str().expect("code"), &jwks).expect("signed");
        assert_eq!(claims.sub, s.serial, "the code names the serial");
        assert_eq!(claims.feat, ["export"], "the serial's features, not the product's defaults");
        assert_eq!(claims.cnt, BTreeMap::from([("users".to_owned(), 5)]), "the product's counters");

        // Typed in lower case without dashes, it is the same serial; the same machine again uses nothing.
        let typed = s.serial.replace('-', "").to_lowercase();
        let (st, again) = activate(&app, &typed, "ws-a").await;
        assert_eq!(st, StatusCode::CREATED, "{again}");
        assert_eq!(again["claims"]["lic"], a["claims"]["lic"]);

        let (st, b) = activate(&app, &s.serial, "ws-b").await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        assert_ne!(b["claims"]["lic"], a["claims"]["lic"], "another licence of the serial");

        let (st, c) = activate(&app, &s.serial, "ws-c").await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{c}");
        let detail = c["detail"].as_str().expect("detail");
        assert!(detail.contains("allows 2 licences"), "{detail}");
        assert!(detail.contains("ws-a") && detail.contains("ws-b"), "{detail}");

        // Freeing one lets the third machine in.
        let (st, body, _) = remove(&app, &s.serial, "ws-a").await;
        assert_eq!(st, StatusCode::NO_CONTENT, "{body}");
        let (st, c) = activate(&app, &s.serial, "ws-c").await;
        assert_eq!(st, StatusCode::CREATED, "{c}");

        let detail = app.services.serial_detail(&admin, s.id).await.expect("detail");
        assert_eq!(detail.serial.active, 2);
        assert_eq!(detail.history.len(), 3, "ws-a (removed), ws-b, ws-c");
        assert!(detail.history.iter().any(|h| h.hostname == "ws-a" && h.removed_by.as_deref() == Some("user")));
    }

    async fn bad_serials_are_refused_before_any_look_up_and_change_nothing(app) {
        let (_admin, list) = serials(&app, 1, None, 1).await;
        let good = &list[0].serial;
        // One character changed: the MAC fails.
        let mut chars: Vec<char> = good.chars().collect();
        chars[0] = if chars[0] == '1' { '2' } else { '1' };
        let typo: String = chars.into_iter().collect();
        for (serial, field) in [(typo.as_str(), "serial"), ("ABCD", "serial"), ("", "serial")] {
            let (st, body) = activate(&app, serial, "ws-a").await;
            assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{serial}: {body}");
            assert_eq!(body["field"], field, "{body}");
        }
        // A valid serial for another product.
        let (st, body, _) = post(&app, "/api/v1/activations", json!({"product": "OTHER", "serial": good, "fingerprint": fingerprint("OTHER", "ws-a"), "hostname": "ws-a"})).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body["detail"].as_str().unwrap_or("").contains("for product CALC"), "{body}");
        // Serial without product; key and serial together.
        let (st, body, _) = post(&app, "/api/v1/activations", json!({"serial": good, "fingerprint": fingerprint("CALC", "ws-a"), "hostname": "ws-a"})).await;
        assert_eq!((st, body["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("product")), "{body}");
        let active: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM activations").fetch_one(app.services.db().pool()).await.expect("count");
        assert_eq!(active, 0);
    }

    async fn counter_edits_reach_the_application_at_its_next_validation(app) {
        let (admin, list) = serials(&app, 1, None, 1).await;
        let (_, a) = activate(&app, &list[0].serial, "ws-a").await;
        let code = a["activation_code"].as_str().expect("code");
        assert_eq!(a["claims"]["feat"], json!(["print"]), "the product's default features");
        let detail = app.services.serial_detail(&admin, list[0].id).await.expect("detail");
        let licence = &detail.licences[0];
        app.services
            .edit_licence(&admin, licence.id, vec!["print".into(), "export".into()], BTreeMap::from([("users".into(), 25)]), protocol::catalog::ExpiryEdit::Keep)
            .await
            .expect("edit");
        let (st, v) = validate_code(&app, code, "ws-a").await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["claims"]["cnt"]["users"], 25);
        assert_eq!(v["claims"]["feat"], json!(["print", "export"]));
        assert_eq!(v["claims"]["sub"], list[0].serial);
    }

    async fn revoke_and_reissue_moves_the_licences_to_a_new_serial(app) {
        let (admin, list) = serials(&app, 2, None, 2).await;
        let old = &list[0];
        let (_, a) = activate(&app, &old.serial, "ws-a").await;
        let code = a["activation_code"].as_str().expect("code").to_owned();
        let lic = a["claims"]["lic"].clone();
        let detail = app.services.serial_detail(&admin, old.id).await.expect("detail");
        app.services
            .edit_licence(&admin, detail.licences[0].id, vec!["print".into()], BTreeMap::from([("users".into(), 9)]), protocol::catalog::ExpiryEdit::Keep)
            .await
            .expect("edit");

        let new = app.services.revoke_and_reissue(&admin, old.id, "leaked on a forum").await.expect("reissue");
        assert_ne!(new.serial, old.serial);
        assert_eq!(new.replaces.as_deref(), Some(old.serial.as_str()));
        assert_eq!((new.licences, new.active), (2, 1), "the licences and the live activation moved");
        let revoked = app.services.find_serial(&admin, &old.serial).await.expect("old");
        assert!(revoked.revoked_at.is_some());
        assert_eq!(revoked.replaced_by.as_deref(), Some(new.serial.as_str()));
        assert_eq!(revoked.revoke_note, "leaked on a forum");
        // Twice is a conflict, not a second replacement.
        assert!(app.services.revoke_and_reissue(&admin, old.id, "").await.is_err());

        // New activations with the old serial are refused, saying why.
        let (st, body) = activate(&app, &old.serial, "ws-b").await;
        assert_eq!(st, StatusCode::GONE, "{body}");
        assert_eq!(body["type"], "/problems/serial-revoked");
        assert!(body["detail"].as_str().unwrap_or("").contains("revoked"), "{body}");
        // The machine activated with it learns at its next validation.
        let (st, body) = validate_code(&app, &code, "ws-a").await;
        assert_eq!(st, StatusCode::GONE, "{body}");
        assert_eq!(body["type"], "/problems/serial-revoked");
        // Activating again with the new serial gives it back its own licence, counters kept.
        let (st, again) = activate(&app, &new.serial, "ws-a").await;
        assert_eq!(st, StatusCode::CREATED, "{again}");
        assert_eq!(again["claims"]["lic"], lic);
        assert_eq!(again["claims"]["sub"], new.serial);
        assert_eq!(again["claims"]["cnt"]["users"], 9);
        let (st, v) = validate_code(&app, again["activation_code"].as_str().expect("code"), "ws-a").await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let detail = app.services.serial_detail(&admin, new.id).await.expect("detail");
        assert_eq!(detail.history.len(), 2, "the history came along");
        assert_eq!(detail.history[0].serial.as_deref(), Some(new.serial.as_str()));
        assert_eq!(detail.history[1].serial.as_deref(), Some(old.serial.as_str()));
        assert_eq!(detail.history[1].removed_by.as_deref(), Some("revoked"));
        assert_eq!(detail.serial.active, 1);
    }

    async fn a_machine_that_took_a_leaked_serial_loses_its_licence_at_validation(app) {
        let (admin, list) = serials(&app, 1, None, 1).await;
        let old = &list[0];
        let (_, thief) = activate(&app, &old.serial, "thief-pc").await;
        let new = app.services.revoke_and_reissue(&admin, old.id, "").await.expect("reissue");
        // Until the thief validates, the licence is held.
        let (st, body) = activate(&app, &new.serial, "owner-pc").await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
        let (st, _) = validate_code(&app, thief["activation_code"].as_str().expect("code"), "thief-pc").await;
        assert_eq!(st, StatusCode::GONE);
        let (st, body) = activate(&app, &new.serial, "owner-pc").await;
        assert_eq!(st, StatusCode::CREATED, "{body}");
        // A code shown by another machine does not validate there.
        let (st, _) = validate_code(&app, body["activation_code"].as_str().expect("code"), "thief-pc").await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    }

    async fn oversized_batches_and_nul_characters_are_refused(app) {
        let browser = app.admin().await;
        let admin = app.services.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD, "t", None).await.expect("admin").user;
        let p = app.services.save_product(&admin, None, product("CALC", LicensingSettings::default())).await.expect("product");
        let too_many = app.services.generate_serials(&admin, BatchInput { product_id: p.id, count: 1000, features: None, licences_per_serial: Some(100), note: String::new() }).await;
        assert!(matches!(too_many, Err(licensing::Error::Invalid(ref e)) if e.field == "count"), "{too_many:?}");
        let reply = browser.rpc("generate_serials", &[("product_id", &p.id.to_string()), ("count", "1"), ("note", "a\u{0}b")]).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", reply.body);
        let reply = browser.rpc("serials_page", &[("search", "x\u{0}")]).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", reply.body);
        let batches: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM serial_batches").fetch_one(app.services.db().pool()).await.expect("count");
        assert_eq!(batches, 0);
    }

    async fn the_portal_pages_serials_newest_first_with_their_count(app) {
        let (_, list) = serials(&app, 5, None, 1).await;
        let browser = app.admin().await;
        let mut shown = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut form = vec![("limit", "2".to_owned())];
            if let Some(a) = &after {
                form.push(("after", a.clone()));
            }
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let page = browser.rpc("serials_page", &form).await.ok();
            assert_eq!(page["total"], 5, "{page}");
            let rows = page["rows"].as_array().cloned().unwrap_or_default();
            assert!(rows.len() <= 2);
            shown.extend(rows.iter().map(|s| s["serial"].as_str().unwrap_or_default().to_owned()));
            match page["next"].as_str() {
                Some(n) => after = Some(n.to_owned()),
                None => break,
            }
            assert!(shown.len() <= 5, "the pages go round in circles");
        }
        let newest_first: Vec<String> = list.iter().map(|s| s.serial.clone()).collect();
        assert_eq!(shown, newest_first);
        // A search is counted too.
        let found = browser.rpc("serials_page", &[("search", &list[3].serial)]).await.ok();
        assert_eq!((found["total"].as_i64(), found["rows"][0]["serial"].as_str()), (Some(1), Some(list[3].serial.as_str())));
    }

    async fn serials_activate_offline_through_an_administrator(app) {
        let (admin, list) = serials(&app, 1, None, 1).await;
        let serial = &list[0].serial;
        let request = |nonce: &str| protocol::activation::Request {
            prd: "CALC".into(),
            key: serial.replace('-', " "),
            fp: fingerprint("CALC", "air-gapped"),
            host: "air-gapped".into(),
            nonce: nonce.into(),
            t: app.clock.now(),
        }
        .encode();
        let issued = app.services.answer_request(&admin, &request("n-1")).await.expect("answered");
        assert_eq!(issued.claims.sub, *serial);
        assert_eq!(issued.claims.req.as_deref(), Some("n-1"));
        // Overridden terms belong on the serial's page for a web licence.
        let terms = licensing::activation::Terms::default();
        assert!(app.services.answer_request_with(&admin, &request("n-2"), Some(terms)).await.is_err());
        // A client user has no web licences to answer for.
        let browser = app.browser();
        browser.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.ok();
        app.client_user(&browser, "Acme", "carla@acme.test").await;
        let carla = app.services.sign_in("carla@acme.test", "client password 123", "t", None).await.expect("carla").user;
        assert!(matches!(app.services.answer_request(&carla, &request("n-3")).await, Err(licensing::Error::NotAllowed)));
        // Once removed, the same request code cannot be answered again.
        let detail = app.services.serial_detail(&admin, list[0].id).await.expect("detail");
        let key = detail.licences[0].key.clone();
        app.services
            .remove_activation(&key, None, licensing::activation::Remover::Portal { actor: &admin, force: true, free_now: true })
            .await
            .expect("removed");
        assert!(app.services.answer_request(&admin, &request("n-1")).await.is_err());
    }

    async fn batches_export_as_csv_and_serials_are_searchable(app) {
        let (admin, list) = serials(&app, 3, Some(vec!["print".into(), "export".into()]), 1).await;
        let batch_id = list[0].batch_id;
        let csv = app.services.serials_csv(&admin, licensing::web::SerialQuery::of_batch(batch_id)).await.expect("csv");
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "serial,product,features,licences,status,replaced_by,on_machines,machines,created_at_utc");
        assert_eq!(lines.len(), 4);
        for s in &list {
            assert!(csv.contains(&format!("{},CALC,print export,1,valid,", s.serial)), "{csv}");
        }
        activate(&app, &list[1].serial, "Drafting-PC-7").await;
        let by_host = app.services.list_serials(&admin, SerialQuery { search: Some("drafting-pc".into()), ..SerialQuery::default() }, &licensing::page::Page::ALL).await.expect("search").items;
        assert_eq!(by_host.iter().map(|s| s.id).collect::<Vec<_>>(), [list[1].id]);
        assert_eq!(by_host[0].hostnames, ["Drafting-PC-7"]);
        let part: String = list[2].serial.replace('-', "")[4..14].to_lowercase();
        let by_serial = app.services.list_serials(&admin, SerialQuery { search: Some(part), ..SerialQuery::default() }, &licensing::page::Page::ALL).await.expect("search").items;
        assert_eq!(by_serial.iter().map(|s| s.id).collect::<Vec<_>>(), [list[2].id]);
        // `%` and `_` are taken literally. (U is not a letter of serials: "uu" cannot match one by chance.)
        let none = app.services.list_serials(&admin, SerialQuery { search: Some("uu%_".into()), ..SerialQuery::default() }, &licensing::page::Page::ALL).await.expect("search").items;
        assert!(none.is_empty());
    }
}

/// A serial's licence removed without its machine is not given to another machine before its
/// code lapses, and the refusal says until when.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serials_licence_removed_without_its_machine_waits() {
    within_limit(async {
        let app = TestApp::spawn(licensing::Backend::Sqlite, &[]).await;
        let (admin, list) = serials(&app, 1, None, 1).await;
        let s = &list[0];
        assert_eq!(
            activate(&app, &s.serial, "ws-a").await.0,
            StatusCode::CREATED
        );
        let detail = app
            .services
            .serial_detail(&admin, s.id)
            .await
            .expect("detail");
        let removal = app
            .services
            .remove_activation(
                &detail.licences[0].key,
                None,
                licensing::activation::Remover::Portal {
                    actor: &admin,
                    force: true,
                    free_now: false,
                },
            )
            .await
            .expect("removed");
        assert!(removal.frees_at.is_some());
        let (st, body) = activate(&app, &s.serial, "ws-b").await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
        assert!(
            body["detail"]
                .as_str()
                .expect("detail")
                .contains("ws-a, removed without it, frees on"),
            "{body}"
        );
        // The removed machine itself may take it back.
        assert_eq!(
            activate(&app, &s.serial, "ws-a").await.0,
            StatusCode::CREATED
        );
    })
    .await;
}

/// The churn limit is a setting; here 3 per licence per hour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activation_churn_is_limited_and_says_when_to_retry() {
    within_limit(async {
        let app = TestApp::spawn(
            licensing::Backend::Sqlite,
            &[
                ("LICENTIA_CHURN_MAX_EVENTS", "3"),
                ("LICENTIA_CHURN_WINDOW_HOURS", "1"),
            ],
        )
        .await;
        let (_admin, list) = serials(&app, 1, None, 1).await;
        let s = &list[0].serial;
        assert_eq!(activate(&app, s, "ws-a").await.0, StatusCode::CREATED); // 1
        assert_eq!(remove(&app, s, "ws-a").await.0, StatusCode::NO_CONTENT); // 2
        assert_eq!(activate(&app, s, "ws-b").await.0, StatusCode::CREATED); // 3
        let (st, body, headers) = remove(&app, s, "ws-b").await;
        assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(body["type"], "/problems/churn-limit");
        let retry: i64 = headers["retry-after"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("seconds");
        assert!((3590..=3600).contains(&retry), "{retry}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap_or("")
                .contains("Try again in 60 minutes"),
            "{body}"
        );
        // Re-activating on the machine that holds it is not churn.
        assert_eq!(activate(&app, s, "ws-b").await.0, StatusCode::CREATED);
        // After the window, it moves again.
        app.clock.advance(3601);
        assert_eq!(remove(&app, s, "ws-b").await.0, StatusCode::NO_CONTENT);
    })
    .await;
}
