//! Activation through the Web API: signed codes, the rules of the standard model, validation,
//! removal, the offline exchange and key rotation.

use crate::both_backends;
use crate::helpers::*;
use licensing::activation::Remover;
use protocol::activation::{fingerprint, verify_signature, JwkSet, Request};
use protocol::catalog::{LicenceFilter, LicensingSettings};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;

const DAY: i64 = 86_400;

async fn post(app: &TestApp, path: &str, body: Value) -> (StatusCode, Value, String) {
    let (status, body, headers) = api_post(app, path, body).await;
    let ctype = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, body, ctype)
}

async fn activate(app: &TestApp, key: &str, machine: &str) -> (StatusCode, Value) {
    let (s, b, _) = post(app, "/api/v1/activations", json!({"licence_key": key, "fingerprint": fingerprint("CALC", machine), "hostname": machine})).await;
    (s, b)
}

async fn jwks(app: &TestApp) -> JwkSet {
    reqwest::get(format!("{}/.well-known/jwks.json", app.base_url))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json")
}

both_backends! {
    async fn a_removal_without_the_machine_frees_the_licence_when_its_code_lapses(app) {
        let f = fixture(&app, LicensingSettings { validate_every_days: 7, max_activations: 10, ..Default::default() }, 1).await;
        let key = &f.keys[0];
        let (_, body) = activate(&app, key, "ws-1").await;
        let code = body["activation_code"].as_str().expect("code").to_owned();
        let next = body["claims"]["next"].as_i64().expect("next");
        let portal = |free_now| Remover::Portal { actor: &f.client, force: false, free_now };
        // A client user may not free it before the code lapses.
        let refused = app.services.remove_activation(key, None, portal(true)).await;
        assert!(matches!(refused, Err(licensing::Error::NotAllowed)), "{refused:?}");
        let removal = app.services.remove_activation(key, None, portal(false)).await.expect("removed");
        let frees_at = next + protocol::activation::VALIDATION_GRACE_SECS;
        assert_eq!(removal.frees_at, Some(frees_at));
        let lic = app.services.licence(&f.admin, f.licence_ids[0]).await.expect("licence");
        assert_eq!(lic.pending_free, Some(protocol::catalog::PendingFree { hostname: "ws-1".into(), frees_at }));
        // The removed machine learns at its next validation; another machine waits.
        assert_eq!(validate_code(&app, &code, "ws-1").await.0, StatusCode::GONE);
        let (st, problem) = activate(&app, key, "ws-2").await;
        assert_eq!(st, StatusCode::CONFLICT, "{problem}");
        // An offline request from another machine is told the same before anyone answers it.
        let request = Request { prd: "CALC".into(), key: key.clone(), fp: fingerprint("CALC", "ws-2"), host: "ws-2".into(), nonce: "n-2".into(), t: app.clock.now() };
        let summary = app.services.describe_request(&f.client, &request.encode()).await.expect("described");
        assert!(summary.state.contains("frees on") && summary.state.contains("answering will be refused"), "{}", summary.state);
        let detail = problem["detail"].as_str().expect("detail");
        assert!(detail.contains("removed from ws-1 without that machine") && detail.contains(&protocol::time::format_utc(frees_at)), "{detail}");
        // The machine itself may come back. A removal that does not give up its latest code (a
        // plain call naming key and machine, from anywhere) waits like one without the machine…
        let (st, body) = activate(&app, key, "ws-1").await;
        assert_eq!(st, StatusCode::CREATED);
        let latest = body["activation_code"].as_str().expect("code").to_owned();
        let (st, waits, _) = post(&app, "/api/v1/activations/remove", json!({"licence_key": key, "fingerprint": fingerprint("CALC", "ws-1"), "activation_code": code})).await;
        assert_eq!(st, StatusCode::OK, "an older code frees nothing at once: {waits}");
        assert!(waits["frees_at"].as_i64().is_some(), "{waits}");
        assert_eq!(activate(&app, key, "ws-2").await.0, StatusCode::CONFLICT);
        // …while the application giving up its latest code frees the licence at once.
        assert_eq!(activate(&app, key, "ws-1").await.0, StatusCode::CREATED);
        let (_, body) = activate(&app, key, "ws-1").await;
        let latest = body["activation_code"].as_str().map_or(latest, str::to_owned);
        let (st, _, _) = post(&app, "/api/v1/activations/remove", json!({"licence_key": key, "fingerprint": fingerprint("CALC", "ws-1"), "activation_code": latest})).await;
        assert_eq!(st, StatusCode::NO_CONTENT);
        assert_eq!(activate(&app, key, "ws-2").await.0, StatusCode::CREATED);

        // An administrator's removal waits too, unless freed now (client users may not).
        let admin = Remover::Portal { actor: &f.admin, force: false, free_now: false };
        assert!(app.services.remove_activation(key, None, admin).await.expect("removed").frees_at.is_some());
        assert_eq!(activate(&app, key, "ws-3").await.0, StatusCode::CONFLICT);
        let not_allowed = app.services.free_licence_now(&f.client, f.licence_ids[0]).await;
        assert!(matches!(not_allowed, Err(licensing::Error::NotAllowed)), "{not_allowed:?}");
        app.services.free_licence_now(&f.admin, f.licence_ids[0]).await.expect("freed");
        assert_eq!(activate(&app, key, "ws-3").await.0, StatusCode::CREATED);

        // And without anyone, the licence frees when the removed code lapses.
        app.services.remove_activation(key, None, portal(false)).await.expect("removed");
        assert_eq!(activate(&app, key, "ws-4").await.0, StatusCode::CONFLICT);
        app.clock.advance(7 * 86_400 + protocol::activation::VALIDATION_GRACE_SECS + 1);
        let (st, body) = activate(&app, key, "ws-4").await;
        assert_eq!(st, StatusCode::CREATED, "{body}");
        let lic = app.services.licence(&f.admin, f.licence_ids[0]).await.expect("licence");
        assert_eq!(lic.pending_free, None);
    }

    async fn a_retired_keys_codes_are_refused_at_validation_and_the_endorsement_drops_it(app) {
        let f = fixture(&app, LicensingSettings::default(), 1).await;
        let (st, body) = activate(&app, &f.keys[0], "ws-1").await;
        assert_eq!(st, StatusCode::CREATED);
        let old_code = body["activation_code"].as_str().expect("code").to_owned();
        let old_kid = protocol::activation::key_id(&old_code).expect("kid");
        // Retiring the active key makes a new one active first.
        let active = app.services.retire_signing_key(&old_kid).await.expect("retire");
        assert_ne!(active, old_kid);
        let again = app.services.retire_signing_key(&old_kid).await;
        assert!(matches!(again, Err(licensing::Error::Conflict(_))), "{again:?}");
        let unknown = app.services.retire_signing_key("no-such-key").await;
        assert!(matches!(unknown, Err(licensing::Error::NotFound(_))), "{unknown:?}");

        let (st, problem) = validate_code(&app, &old_code, "ws-1").await;
        assert_eq!(st, StatusCode::GONE, "{problem}");
        assert_eq!(problem["type"], "/problems/key-retired");
        assert!(problem["detail"].as_str().expect("detail").contains(&old_kid), "{problem}");
        // Activating again on the same machine gives a code of the current key and uses nothing.
        let (st, body) = activate(&app, &f.keys[0], "ws-1").await;
        assert_eq!(st, StatusCode::CREATED, "{body}");
        let fresh = body["activation_code"].as_str().expect("code");
        assert_eq!(protocol::activation::key_id(fresh).as_deref(), Some(active.as_str()));
        assert_eq!(app.services.licence(&f.admin, f.licence_ids[0]).await.expect("licence").activation_count, 1);

        // The published keys and the root's endorsement leave the retired key out.
        let get = |path: &str| reqwest::get(format!("{}{path}", app.base_url));
        let jwks: JwkSet = get("/.well-known/jwks.json").await.expect("jwks").json().await.expect("json");
        assert!(jwks.keys.iter().all(|k| k.kid != old_kid));
        let root: JwkSet = get("/.well-known/licentia-root.json").await.expect("root").json().await.expect("json");
        let res = get("/.well-known/licentia-keys.jws").await.expect("endorsement");
        assert_eq!(res.headers()["content-type"], "application/jose");
        let endorsed = protocol::trust::verify_endorsement(&res.text().await.expect("text"), &root).expect("endorsed by the root");
        assert_eq!(endorsed.keys, jwks);
        assert_eq!(root, app.services.root_jwks());
        // The root signs endorsements only: a code does not verify against it.
        assert!(matches!(verify_signature(fresh, &root), Err(protocol::activation::CodeError::UnknownKey(_))));
        assert_eq!(endorsed.retired, vec![old_kid.clone()], "the endorsement names the withdrawn key");
    }

    async fn keys_rotated_or_retired_by_another_replica_count_at_the_next_validation(app) {
        // Each replica keeps the keys it decoded; it must still follow the database.
        let f = fixture(&app, LicensingSettings::default(), 1).await;
        let (st, body) = activate(&app, &f.keys[0], "ws-1").await;
        assert_eq!(st, StatusCode::CREATED, "{body}");
        let old_code = body["activation_code"].as_str().expect("code").to_owned();
        let old_kid = protocol::activation::key_id(&old_code).expect("kid");
        assert_eq!(validate_code(&app, &old_code, "ws-1").await.0, StatusCode::OK);

        let other = app.replica().await;
        let new_kid = other.services.rotate_signing_key().await.expect("rotate");
        let (st, body) = validate_code(&app, &old_code, "ws-1").await;
        assert_eq!(st, StatusCode::OK, "{body}");
        let fresh = body["activation_code"].as_str().expect("code");
        assert_eq!(protocol::activation::key_id(fresh).as_deref(), Some(new_kid.as_str()), "signed with the key made on the other replica");

        other.services.retire_signing_key(&old_kid).await.expect("retire");
        let (st, problem) = validate_code(&app, &old_code, "ws-1").await;
        assert_eq!(st, StatusCode::GONE, "{problem}");
        assert_eq!(problem["type"], "/problems/key-retired");
        // The newer code verifies; the published keys leave the retired one out.
        assert_eq!(validate_code(&app, fresh, "ws-1").await.0, StatusCode::OK);
        let jwks = app.services.jwks().await.expect("jwks");
        assert_eq!(jwks.keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(), [new_kid.as_str()]);
    }

    async fn a_licence_keys_moves_are_limited_and_an_administrators_removals_do_not_count(app) {
        // The default budget: ten activations and user removals per licence in 24 hours.
        let f = fixture(&app, LicensingSettings { max_activations: 100, ..Default::default() }, 1).await;
        let key = &f.keys[0];
        let by_admin = Remover::Portal { actor: &f.admin, force: true, free_now: true };
        // Six machines, each removed by an administrator: six events, not twelve.
        for i in 0..6 {
            let (st, body) = activate(&app, key, &format!("ws-a{i}")).await;
            assert_eq!(st, StatusCode::CREATED, "{body}");
            app.services.remove_activation(key, None, by_admin).await.expect("removed");
        }
        // The user moves the licence twice: four more.
        for machine in ["ws-u", "ws-v"] {
            let (st, body) = activate(&app, key, machine).await;
            assert_eq!(st, StatusCode::CREATED, "{body}");
            let code = body["activation_code"].as_str().expect("code");
            let (st, body, _) = post(&app, "/api/v1/activations/remove", json!({"licence_key": key, "fingerprint": fingerprint("CALC", machine), "activation_code": code})).await;
            assert!(st.is_success(), "{body}");
        }
        let (st, problem) = activate(&app, key, "ws-w").await;
        assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{problem}");
        assert_eq!(problem["type"], "/problems/churn-limit");
        let licence = app.services.licence(&f.admin, f.licence_ids[0]).await.expect("licence");
        assert!(licence.activation.is_none(), "the refused activation bound nothing");
        // A day on, the window holds none of it.
        app.clock.advance(DAY + 1);
        assert_eq!(activate(&app, key, "ws-w").await.0, StatusCode::CREATED);
    }

    async fn a_serials_licence_is_not_activated_by_its_own_key(app) {
        let admin = admin_user(&app).await;
        let p = app.services.save_product(&admin, None, product("CALC", LicensingSettings::default())).await.expect("product");
        let batch = licensing::web::BatchInput { product_id: p.id, count: 1, features: None, licences_per_serial: Some(1), note: String::new() };
        app.services.generate_serials(&admin, batch).await.expect("serials");
        let key: String = sqlx::query_scalar("SELECT licence_key FROM licences WHERE serial_id IS NOT NULL")
            .fetch_one(app.services.db().pool())
            .await
            .expect("a web licence");
        let (st, problem) = activate(&app, &key, "ws-1").await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{problem}");
        assert!(problem["detail"].as_str().unwrap_or("").contains("activate with the serial number"), "{problem}");
        let bound: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM activations").fetch_one(app.services.db().pool()).await.expect("count");
        assert_eq!(bound, 0);
    }

    async fn an_activation_signs_with_the_key_another_replica_made_active(app) {
        let f = fixture(&app, LicensingSettings { max_activations: 10, ..Default::default() }, 1).await;
        assert_eq!(activate(&app, &f.keys[0], "ws-1").await.0, StatusCode::CREATED);
        let other = app.replica().await;
        let old_kid = app.services.jwks().await.expect("jwks").keys[0].kid.clone();
        let new_kid = other.services.rotate_signing_key().await.expect("rotate");
        other.services.retire_signing_key(&old_kid).await.expect("retire");
        let (st, body) = activate(&app, &f.keys[0], "ws-1").await;
        assert_eq!(st, StatusCode::CREATED, "{body}");
        let code = body["activation_code"].as_str().expect("code");
        assert_eq!(protocol::activation::key_id(code).as_deref(), Some(new_kid.as_str()));
        assert_eq!(validate_code(&app, code, "ws-1").await.0, StatusCode::OK);
    }

    async fn a_key_presented_for_another_product_changes_nothing(app) {
        let f = fixture(&app, LicensingSettings::default(), 1).await;
        let body = |product: &str| json!({"licence_key": f.keys[0], "product": product,
            "fingerprint": fingerprint(product, "ws-1"), "hostname": "ws-1"});
        let (status, problem, _) = post(&app, "/api/v1/activations", body("WRONG")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(problem["detail"], "This licence key is for product CALC, not WRONG: check the key, or use it with CALC.");
        let licence = app.services.licence(&f.admin, f.licence_ids[0]).await.expect("licence");
        assert!(licence.activation.is_none(), "no machine holds the licence");
        assert_eq!(licence.activation_count, 0, "no activation was used");
        let (status, problem, _) = post(&app, "/api/v1/activations/remove", json!({"licence_key": f.keys[0], "product": "WRONG", "fingerprint": fingerprint("WRONG", "ws-1")})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");

        // Product codes are exact: the application would refuse a code of "CALC" as "calc".
        let (status, problem, _) = post(&app, "/api/v1/activations", body("calc")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        // Its own product activates as before.
        let (status, answer, _) = post(&app, "/api/v1/activations", body("CALC")).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }

    async fn activation_codes_are_signed_and_carry_the_licence(app) {
        let f = fixture(&app, LicensingSettings::default(), 2).await;
        let (status, body) = activate(&app, &f.keys[0], "ws-1").await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let code = body["activation_code"].as_str().expect("code");
        let claims = verify_signature(code, &jwks(&app).await).expect("verifies against the served JWKS");
        assert_eq!(claims.prd, "CALC");
        assert_eq!(claims.sub, f.keys[0]);
        assert_eq!(claims.fp, fingerprint("CALC", "ws-1"));
        assert_eq!(claims.feat, ["print"]);
        assert_eq!(claims.cnt, BTreeMap::from([("users".to_owned(), 5)]));
        assert_eq!((claims.start, claims.end, claims.exp), (None, None, None), "not limited");
        assert_eq!(claims.next, app.clock.now() + 7 * DAY);
        assert_eq!(body["claims"]["lic"], claims.lic);

        // The same code verifies with Node's crypto, outside this codebase.
        let out = std::process::Command::new("node")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/verify-jws.mjs"))
            .args([&app.base_url, code])
            .output()
            .expect("node runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let from_node: Value = serde_json::from_slice(&out.stdout).expect("claims json");
        assert_eq!(from_node["sub"], f.keys[0].as_str());
        let mut tampered = code.to_owned();
        let i = tampered.len() - 10;
        tampered.replace_range(i..i + 1, if &code[i..i + 1] == "A" { "B" } else { "A" });
        let out = std::process::Command::new("node")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/verify-jws.mjs"))
            .args([&app.base_url, tampered.as_str()])
            .output()
            .expect("node runs");
        assert!(!out.status.success(), "a changed signature must not verify");
    }

    async fn one_machine_at_a_time_and_a_limit_on_activations(app) {
        let settings = LicensingSettings { max_activations: 2, ..Default::default() };
        let f = fixture(&app, settings, 1).await;
        let key = &f.keys[0];
        assert_eq!(activate(&app, key, "ws-1").await.0, StatusCode::CREATED);
        // The same machine again: a fresh code, no activation used.
        let (status, again) = activate(&app, key, "ws-1").await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, body) = activate(&app, key, "ws-2").await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(body["detail"].as_str().expect("detail").contains("already activated on another machine (ws-1)"), "{body}");

        // Transfer = removal (the application giving up its code), then activation elsewhere.
        let (s, _, _) = post(&app, "/api/v1/activations/remove", json!({"licence_key": key, "fingerprint": fingerprint("CALC", "ws-1"), "activation_code": again["activation_code"]})).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert_eq!(activate(&app, key, "ws-2").await.0, StatusCode::CREATED);
        // Removal through the API needs the machine the licence is bound to.
        let (s, b, _) = post(&app, "/api/v1/activations/remove", json!({"licence_key": key, "fingerprint": fingerprint("CALC", "ws-9")})).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
        assert_eq!(b["detail"], "This licence is activated on another machine.");
        app.services.remove_activation(key, None, Remover::Portal { actor: &f.admin, force: true, free_now: true }).await.expect("admin removes");
        let (status, body) = activate(&app, key, "ws-3").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body["detail"], "This licence has been activated the most times it allows (2). Ask your vendor to allow another activation.");
        // A machine that had it before may come back.
        assert_eq!(activate(&app, key, "ws-1").await.0, StatusCode::CREATED);
        let lic = app.services.licence(&f.admin, app.services.order_licences(&f.admin, 1, &licensing::page::Page::ALL).await.expect("l").items[0].id).await.expect("licence");
        assert_eq!(lic.activation_count, 2);
    }

    async fn an_end_date_can_be_taken_away_and_a_past_one_is_refused(app) {
        let settings = LicensingSettings { limited: true, validity_days: Some(30), end_user_removal: false, ..Default::default() };
        let f = fixture(&app, settings, 1).await;
        let (key, lic_id) = (&f.keys[0], f.licence_ids[0]);
        let today = app.clock.now() / DAY;
        let (_, body) = activate(&app, key, "ws-1").await;
        assert_eq!(body["claims"]["end"], protocol::time::format_date(today + 29));

        // A past date is refused, saying why; nothing changes.
        let yesterday = protocol::time::format_date(today - 1);
        let past = app.services.edit_licence(&f.admin, lic_id, vec!["print".into()], BTreeMap::new(), protocol::catalog::ExpiryEdit::On(yesterday.clone())).await;
        match past {
            Err(licensing::Error::Invalid(e)) => {
                assert_eq!(e.field, "expires_on");
                assert!(e.message.starts_with(&format!("{yesterday} has passed: the licence would stop at once.")), "{}", e.message);
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        let lic = app.services.licence(&f.admin, lic_id).await.expect("licence");
        assert_eq!(lic.expires_on, Some(protocol::time::format_date(today + 29)));

        // "No end date" in the portal: the limited licence becomes open-ended…
        let admin = app.browser();
        admin.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.ok();
        let edited = admin.rpc("edit_licence", &[("licence_id", &lic_id.to_string()), ("features[0]", "print"), ("expires_on", ""), ("no_end", "on")]).await.ok();
        assert_eq!((edited["expires_on"].clone(), edited["open_ended"].clone()), (Value::Null, json!(true)), "{edited}");
        let (status, v) = validate_code(&app, body["activation_code"].as_str().expect("code"), "ws-1").await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!((v["claims"]["end"].clone(), v["claims"]["exp"].clone()), (Value::Null, Value::Null), "{v}");
        // …and stays so on another machine: its activation fixes no new end.
        app.services.remove_activation(key, None, Remover::Portal { actor: &f.admin, force: true, free_now: true }).await.expect("remove");
        let (status, again) = activate(&app, key, "ws-2").await;
        assert_eq!(status, StatusCode::CREATED, "{again}");
        assert_eq!(again["claims"]["end"], Value::Null);

        // A date (today counts) ends it again.
        let today_text = protocol::time::format_date(today);
        let dated = app.services.edit_licence(&f.admin, lic_id, vec!["print".into()], BTreeMap::new(), protocol::catalog::ExpiryEdit::On(today_text.clone())).await.expect("today");
        assert_eq!((dated.expires_on, dated.open_ended), (Some(today_text), false));
    }

    async fn limited_licences_expire_and_keep_their_terms(app) {
        let settings = LicensingSettings { limited: true, validity_days: Some(30), end_user_removal: false, ..Default::default() };
        let f = fixture(&app, settings, 1).await;
        let key = &f.keys[0];
        let today = app.clock.now() / DAY;
        let (_, body) = activate(&app, key, "ws-1").await;
        let claims = &body["claims"];
        assert_eq!(claims["start"], protocol::time::format_date(today - 1));
        assert_eq!(claims["end"], protocol::time::format_date(today + 29), "30 days of use, today included");
        assert_eq!(claims["exp"], (today + 30) * DAY);

        // The end user cannot remove a limited licence…
        let (s, b, ctype) = post(&app, "/api/v1/activations/remove", json!({"licence_key": key, "fingerprint": fingerprint("CALC", "ws-1")})).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert_eq!(ctype, "application/problem+json");
        assert_eq!(b["detail"], "This is a limited licence: only your vendor's administrator can remove it.");
        let client_try = app.services.remove_activation(key, None, Remover::Portal { actor: &f.client, force: false, free_now: false }).await;
        assert!(matches!(client_try, Err(licensing::Error::Refused(..))));

        // …an administrator can, with force; reactivation days later keeps the original end and features.
        let unforced = app.services.remove_activation(key, None, Remover::Portal { actor: &f.admin, force: false, free_now: false }).await;
        assert!(matches!(unforced, Err(licensing::Error::Refused(..))), "{unforced:?}");
        app.clock.advance(5 * DAY);
        app.services.remove_activation(key, None, Remover::Portal { actor: &f.admin, force: true, free_now: true }).await.expect("admin removes");
        let (_, body) = activate(&app, key, "ws-2").await;
        assert_eq!(body["claims"]["end"], protocol::time::format_date(today + 29));

        // The administrator extends it; the next validation carries the new end.
        let lic_id = body["claims"]["lic"].as_i64().expect("lic");
        let new_end = protocol::time::format_date(today + 90);
        app.services.edit_licence(&f.admin, lic_id, vec!["print".into(), "export".into()], BTreeMap::from([("users".into(), 9)]), protocol::catalog::ExpiryEdit::On(new_end.clone())).await.expect("edit");
        let (status, v) = validate_code(&app, body["activation_code"].as_str().expect("code"), "ws-2").await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["claims"]["end"], new_end.as_str());
        assert_eq!(v["claims"]["feat"], json!(["print", "export"]));
        assert_eq!(v["claims"]["cnt"]["users"], 9);

        // Past the end, validation and activation say it expired.
        app.clock.advance(100 * DAY);
        let (status, v) = validate_code(&app, v["activation_code"].as_str().expect("code"), "ws-2").await;
        assert_eq!(status, StatusCode::GONE);
        assert_eq!(v["detail"], format!("This licence expired on {new_end}."));
        assert_eq!(activate(&app, key, "ws-2").await.0, StatusCode::GONE);
    }

    async fn validation_reports_a_removed_licence(app) {
        let f = fixture(&app, LicensingSettings::default(), 1).await;
        let (_, body) = activate(&app, &f.keys[0], "ws-1").await;
        let code = body["activation_code"].as_str().expect("code").to_owned();
        app.services.remove_activation(&f.keys[0], None, Remover::Portal { actor: &f.client, force: false, free_now: false }).await.expect("client removes its own");
        let (status, v) = validate_code(&app, &code, "ws-1").await;
        assert_eq!(status, StatusCode::GONE);
        assert!(v["detail"].as_str().expect("detail").starts_with("This licence was removed from this machine on"));
        // A code presented by another machine is refused.
        let (status, v) = validate_code(&app, &code, "ws-2").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    }

    async fn codes_signed_before_a_rotation_still_validate(app) {
        let f = fixture(&app, LicensingSettings::default(), 1).await;
        let (_, body) = activate(&app, &f.keys[0], "ws-1").await;
        let old_code = body["activation_code"].as_str().expect("code").to_owned();
        let old_kid = jwks(&app).await.keys[0].kid.clone();
        let new_kid = app.services.rotate_signing_key().await.expect("rotate");
        assert_ne!(old_kid, new_kid);
        let set = jwks(&app).await;
        assert_eq!(set.keys.len(), 2);
        assert_eq!(set.keys[0].kid, new_kid, "the active key is listed first");
        verify_signature(&old_code, &set).expect("old code still verifies");
        let (status, v) = validate_code(&app, &old_code, "ws-1").await;
        assert_eq!(status, StatusCode::OK);
        let header = v["activation_code"].as_str().expect("code").split('.').next().expect("header").to_owned();
        let header: Value = serde_json::from_slice(&base64_url(&header)).expect("header json");
        assert_eq!(header["kid"], new_kid.as_str());
        assert_eq!(header["alg"], "EdDSA");
    }

    async fn an_offline_request_says_what_it_is_for_before_it_is_answered(app) {
        let f = fixture(&app, LicensingSettings::default(), 1).await;
        let carla = app.browser();
        carla.sign_in("carla@acme.test", "client password 123").await.ok();
        let request = |machine: &str, nonce: &str| Request { prd: "CALC".into(), key: f.keys[0].clone(), fp: fingerprint("CALC", machine), host: machine.into(), nonce: nonce.into(), t: app.clock.now() }.encode();
        let first = request("offline-pc", "n-1");
        let summary = carla.rpc("describe_request", &[("request_code", &first)]).await.ok();
        assert_eq!(summary["product"], "CALC");
        assert_eq!(summary["licence"], f.keys[0].as_str());
        assert_eq!(summary["host"], "offline-pc");
        assert_eq!(summary["state"], "Not activated on any machine: answering activates it on this one.");
        // Describing changes nothing.
        assert!(app.services.licence(&f.admin, f.licence_ids[0]).await.expect("licence").activation.is_none());
        app.services.answer_request(&f.client, &first).await.expect("answered");
        let other = request("second-pc", "n-2");
        let summary = carla.rpc("describe_request", &[("request_code", &other)]).await.ok();
        assert_eq!(summary["state"], "Activated on another machine (offline-pc): answering will be refused until it is removed there.");

        // A damaged code, and another client's user, are refused.
        let damaged = carla.rpc("describe_request", &[("request_code", &first[..first.len() - 3])]).await;
        assert_eq!(damaged.error(), "Invalid");
        let admin_browser = app.browser();
        admin_browser.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.ok();
        let (_, gus) = app.client_user(&admin_browser, "Globex", "gus@globex.test").await;
        assert_eq!(gus.rpc("describe_request", &[("request_code", &other)]).await.error(), "NotAllowed");
    }

    async fn overridden_terms_stay_only_if_their_activation_succeeds(app) {
        let settings = LicensingSettings { max_activations: 1, ..Default::default() };
        let f = fixture(&app, settings, 2).await;
        let request = |key: &str, machine: &str| Request { prd: "CALC".into(), key: key.into(), fp: fingerprint("CALC", machine), host: machine.into(), nonce: format!("n-{machine}"), t: app.clock.now() }.encode();
        let terms = || licensing::activation::Terms {
            features: vec!["print".into(), "export".into()],
            counters: BTreeMap::from([("users".into(), 99)]),
            expiry: protocol::catalog::ExpiryEdit::NoEnd,
        };
        // Licence 1 has used its one activation: the answer is refused, and its terms are as
        // they were (the terms and the activation are one transaction).
        assert_eq!(activate(&app, &f.keys[0], "ws-1").await.0, StatusCode::CREATED);
        app.services.remove_activation(&f.keys[0], None, Remover::Portal { actor: &f.admin, force: true, free_now: true }).await.expect("removed");
        let refused = app.services.answer_request_with(&f.admin, &request(&f.keys[0], "ws-2"), Some(terms())).await;
        assert!(matches!(refused, Err(licensing::Error::Refused(licensing::Refusal::ActivationLimit, _))), "{refused:?}");
        let lic = app.services.licence(&f.admin, f.licence_ids[0]).await.expect("licence");
        assert_eq!((lic.features, lic.counters, lic.open_ended), (vec!["print".to_owned()], BTreeMap::from([("users".to_owned(), 5)]), false));
        // Licence 2 is answered with them: the code and the licence carry the new terms.
        let issued = app.services.answer_request_with(&f.admin, &request(&f.keys[1], "ws-3"), Some(terms())).await.expect("answered");
        assert_eq!((issued.claims.feat.clone(), issued.claims.cnt["users"], issued.claims.end.clone()), (vec!["print".to_owned(), "export".to_owned()], 99, None));
        let lic = app.services.licence(&f.admin, f.licence_ids[1]).await.expect("licence");
        assert_eq!((lic.counters["users"], lic.open_ended, lic.activation.map(|a| a.hostname)), (99, true, Some("ws-3".to_owned())));
    }

    async fn offline_requests_are_answered_for_ones_own_licences_only(app) {
        let f = fixture(&app, LicensingSettings::default(), 1).await;
        let request = Request { prd: "CALC".into(), key: f.keys[0].clone(), fp: fingerprint("CALC", "offline-pc"), host: "offline-pc".into(), nonce: "n-123".into(), t: app.clock.now() };
        let code = request.encode();
        let issued = app.services.answer_request(&f.client, &code).await.expect("client answers its own");
        assert_eq!(issued.claims.req.as_deref(), Some("n-123"));
        assert_eq!(issued.claims.fp, fingerprint("CALC", "offline-pc"));

        // Another client's user may not.
        let admin_browser = app.browser();
        admin_browser.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.ok();
        let (_, _) = app.client_user(&admin_browser, "Globex", "gus@globex.test").await;
        let gus = app.services.sign_in("gus@globex.test", "client password 123", "t", None).await.expect("gus").user;
        assert!(matches!(app.services.answer_request(&gus, &code).await, Err(licensing::Error::NotAllowed)));
        // A damaged code is refused in words.
        let damaged = format!("{}x", &code[..code.len() - 1]);
        let err = app.services.answer_request(&f.client, &damaged).await.expect_err("damaged");
        assert_eq!(err.to_string(), "the request code is damaged: check that it was copied whole.");
    }

    async fn bad_requests_get_problem_details_and_change_nothing(app) {
        let f = fixture(&app, LicensingSettings::default(), 1).await;
        let fp = fingerprint("CALC", "ws-1");
        for (body, status, field) in [
            (json!({"licence_key": f.keys[0], "fingerprint": "abc", "hostname": "ws"}), StatusCode::UNPROCESSABLE_ENTITY, Some("fingerprint")),
            (json!({"licence_key": f.keys[0], "fingerprint": fp, "hostname": ""}), StatusCode::UNPROCESSABLE_ENTITY, Some("hostname")),
            (json!({"licence_key": "'; DROP TABLE licences; --", "fingerprint": fp, "hostname": "ws"}), StatusCode::UNPROCESSABLE_ENTITY, Some("licence_key")),
            (json!({"licence_key": "AAAAA-BBBBB-CCCCC-DDDDD", "fingerprint": fp, "hostname": "ws"}), StatusCode::NOT_FOUND, None),
            (json!({"licence_key": f.keys[0]}), StatusCode::UNPROCESSABLE_ENTITY, None),
        ] {
            let (s, b, ctype) = post(&app, "/api/v1/activations", body.clone()).await;
            assert_eq!(s, status, "{body}: {b}");
            assert_eq!(ctype, "application/problem+json", "{body}");
            assert_eq!(b["status"], status.as_u16());
            assert!(b["detail"].as_str().is_some_and(|d| !d.is_empty()));
            if let Some(field) = field {
                assert_eq!(b["field"], field);
            }
        }
        let res = reqwest::Client::new().post(format!("{}/api/v1/activations", app.base_url)).body("{not json").header("content-type", "application/json").send().await.expect("req");
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        let res = reqwest::get(format!("{}/api/v1/nothing-here", app.base_url)).await.expect("req");
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        // Nothing was activated by all that.
        let lic = &app.services.order_licences(&f.admin, 1, &licensing::page::Page::ALL).await.expect("l").items[0];
        assert_eq!((lic.activation_count, lic.activation.is_none()), (0, true));
    }
}

fn base64_url(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .expect("base64url")
}

both_backends! {
    async fn the_dashboard_counts_licences_activations_and_what_expires_soon(app) {
        // An empty server: every first step still to do, no figures.
        let admin_browser = app.admin().await;
        let empty = admin_browser.rpc("get_dashboard", &[]).await.ok();
        assert_eq!(empty["checklist"], json!({"product": false, "client": false, "order": false, "activation": false}));
        assert_eq!(empty["activations_per_day"].as_array().map(Vec::len), Some(30));

        let settings = LicensingSettings { limited: true, validity_days: Some(20), end_user_removal: false, max_activations: 5, ..Default::default() };
        let f = fixture(&app, settings, 3).await;
        assert_eq!(activate(&app, &f.keys[0], "ws-1").await.0, StatusCode::CREATED);
        assert_eq!(activate(&app, &f.keys[1], "ws-2").await.0, StatusCode::CREATED);
        let d = app.services.dashboard(&f.admin).await.expect("dashboard");
        assert!(d.checklist.expect("an administrator's checklist").all_done(), "{:?}", d.checklist);
        assert_eq!(d.products.len(), 1);
        assert_eq!((d.products[0].licences, d.products[0].active), (3, 2));
        assert_eq!(d.activations_per_day.last().map(|c| c.count), Some(2));
        assert_eq!(d.activations_per_day.iter().map(|c| c.count).sum::<i64>(), 2);
        // Each licence that ends within 30 days is counted and listed, soonest first.
        let mut ends = Vec::new();
        for id in &f.licence_ids {
            let lic = app.services.licence(&f.admin, *id).await.expect("licence");
            if let Some(day) = lic.expires_on.as_deref().and_then(protocol::time::parse_date) {
                ends.push(day);
            }
        }
        assert!(!ends.is_empty(), "a 20-day licence has an end");
        assert_eq!(d.expiring_count, ends.len() as i64);
        assert_eq!(d.expiring.len(), ends.len());
        assert!(d.expiring.windows(2).all(|w| w[0].expires_on <= w[1].expires_on));
        assert_eq!(d.expiring[0].client_name, "Acme");
        // Each figure links to the licences list it sums up: the list the link asks for
        // counts as many.
        let listed = |filter: LicenceFilter| {
            let (services, admin) = (app.services.clone(), f.admin.clone());
            async move { services.count_licences(&admin, &filter, true).await.expect("count") }
        };
        let expiring = LicenceFilter { expiring_within_days: Some(protocol::dashboard::DASHBOARD_DAYS - 1), ..Default::default() };
        assert_eq!(listed(expiring).await, d.expiring_count);
        let limited = LicenceFilter { time_limited: Some(true), ..Default::default() };
        assert_eq!(listed(limited.clone()).await, d.limited_running);
        assert_eq!(d.limited_running, ends.len() as i64);
        let calc = LicenceFilter { product: Some(d.products[0].code.clone()), ..Default::default() };
        assert_eq!(listed(calc).await, d.products[0].licences);
        // Made permanent, a licence leaves the time-limited figure and the list alike.
        app.services.make_licence_permanent(&f.admin, f.licence_ids[0]).await.expect("permanent");
        let permanent = app.services.dashboard(&f.admin).await.expect("dashboard");
        assert_eq!(permanent.limited_running, d.limited_running - 1);
        assert_eq!(listed(limited).await, permanent.limited_running);
        // A day later than the last of them, nothing is about to expire.
        app.clock.advance(31 * DAY);
        let later = app.services.dashboard(&f.admin).await.expect("dashboard");
        assert_eq!(later.expiring_count, 0);
        assert_eq!(later.activations_per_day.iter().map(|c| c.count).sum::<i64>(), 0, "the chart moves with the days");

        // A client user's dashboard is their organisation's only: another client's licences,
        // activations and pools are not in it, nor the first steps.
        // (A month later: the administrator signs in again.)
        let (globex, gil) = app.client_user(&app.admin().await, "Globex", "gil@globex.test").await;
        let product_id = app.services.licence_page(&f.admin, f.licence_ids[0]).await.expect("page").product.id;
        let order = app.services.create_order(&f.admin, licensing::catalog::OrderInput { client_id: globex, product_id, quantity: 1, reference: String::new(), features: None, counters: None, notes: String::new() }).await.expect("order");
        let theirs = app.services.order_licences(&f.admin, order.id, &licensing::page::Page::ALL).await.expect("licences").items;
        assert_eq!(activate(&app, &theirs[0].key, "globex-1").await.0, StatusCode::CREATED);
        own_pool(&app, &f, 60).await;
        let all = app.services.dashboard(&f.admin).await.expect("dashboard");
        assert_eq!((all.products[0].licences, all.products[0].active, all.pool_count), (4, 3, 1));
        let carla = app.browser();
        carla.sign_in("carla@acme.test", "client password 123").await.ok();
        let mine = carla.rpc("get_dashboard", &[]).await.ok();
        assert_eq!(mine["checklist"], Value::Null);
        assert_eq!((mine["products"][0]["licences"].clone(), mine["products"][0]["active"].clone()), (json!(3), json!(2)));
        let in_30_days = |d: &Value| d["activations_per_day"].as_array().expect("days").iter().map(|d| d["count"].as_i64().unwrap_or(0)).sum::<i64>();
        assert_eq!(in_30_days(&mine), 0, "Acme's were 31 days ago; Globex's today is not Acme's");
        assert_eq!(mine["expiring_count"], 0);
        // A client user's figures lead to their own lists, counting as many.
        let theirs = |filter: LicenceFilter| {
            let (services, client) = (app.services.clone(), f.client.clone());
            async move { services.count_licences(&client, &filter, false).await.expect("count") }
        };
        assert_eq!(json!(theirs(LicenceFilter { time_limited: Some(true), ..Default::default() }).await), mine["limited_running"]);
        assert_eq!(json!(theirs(LicenceFilter { product: Some("CALC".into()), ..Default::default() }).await), mine["products"][0]["licences"]);
        assert_eq!(mine["pool_count"], 1);
        assert!(mine["recent"].as_array().expect("recent").iter().all(|e| e["client_id"] == json!(f.client.client.as_ref().map(|c| c.id))), "{}", mine["recent"]);
        let gils = gil.rpc("get_dashboard", &[]).await.ok();
        assert_eq!((gils["products"][0]["licences"].clone(), gils["products"][0]["active"].clone()), (json!(1), json!(1)));
        assert_eq!(gils["pool_count"], 0);
        assert_eq!((in_30_days(&gils), gils["expiring_count"].clone()), (1, json!(1)));
        assert!(gils["recent"].as_array().expect("recent").iter().all(|e| e["client_id"] == json!(globex)), "{}", gils["recent"]);
    }
}
