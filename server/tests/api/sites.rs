//! Site licence servers at the vendor: linking a customer's server with a licence of a product
//! sold for site servers, the entitlement it is sent (signed, bound, numbered), refreshing it
//! to pick up changes, revocation, and moving to new hardware.

use crate::both_backends;
use crate::helpers::api_post as post;
use crate::helpers::*;
use crate::manage::token;
use protocol::activation::{fingerprint, JwkSet};
use protocol::catalog::{ExpiryEdit, LicensingSettings};
use protocol::site::EntitlementClaims;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;

const DAY: i64 = 86_400;

fn site_product() -> LicensingSettings {
    LicensingSettings {
        site_refresh_days: Some(30),
        ..Default::default()
    }
}

/// A site server's fingerprint (`machine` stands for its identity).
fn site_fp(machine: &str) -> String {
    fingerprint("licentia-site", machine)
}

fn request(key: &str, machine: &str, held: i64) -> Value {
    json!({"key": key, "fp": site_fp(machine), "host": machine, "nonce": "n", "held": held, "t": 0})
}

async fn link(app: &TestApp, key: &str, machine: &str, held: i64) -> (StatusCode, Value) {
    let (st, body, _) = post(app, "/api/v1/sites/link", request(key, machine, held)).await;
    (st, body)
}

/// The entitlement of an answer, checked against the vendor's published keys.
async fn verified(app: &TestApp, answer: &Value) -> EntitlementClaims {
    let keys: JwkSet = reqwest::get(format!("{}/.well-known/jwks.json", app.base_url))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let jws = answer["entitlement"].as_str().expect("entitlement");
    let claims = protocol::site::verify(jws, &keys).expect("a valid entitlement");
    assert_eq!(
        serde_json::to_value(&claims).expect("json"),
        answer["claims"]
    );
    claims
}

fn seats(claims: &EntitlementClaims) -> Vec<(String, i64)> {
    claims
        .keys
        .iter()
        .map(|k| (k.feature.clone(), k.quantity))
        .collect()
}

both_backends! {
    async fn a_site_links_and_picks_up_more_seats_at_refresh(app) {
        let f = fixture(&app, site_product(), 1).await;
        let id = f.licence_ids[0];
        let terms = |print: i64| {
            let (s, admin) = (app.services.clone(), f.admin.clone());
            async move {
                s.edit_licence(&admin, id, vec!["print".into(), "export".into()], BTreeMap::from([("print".into(), print), ("seats".into(), 2)]), ExpiryEdit::Keep)
                    .await
                    .expect("terms");
            }
        };
        terms(4).await;
        let (st, answer) = link(&app, &f.keys[0], "site-a", 0).await;
        assert_eq!(st, StatusCode::OK, "{answer}");
        let first = verified(&app, &answer).await;
        assert_eq!(seats(&first), [("print".to_owned(), 4), ("export".to_owned(), 2)]);
        assert_eq!((first.seq, first.fp.as_str(), first.host.as_str()), (1, site_fp("site-a").as_str(), "site-a"));
        assert_eq!(first.client, "Acme");
        assert_eq!(first.refresh_by, first.iat + 30 * DAY);
        assert!(first.keys.iter().all(|k| k.editor == "Vendor" && k.model == "ConcurrentUser"));

        // The licence is the site's: no application activates it, no other server links it.
        let (st, body, _) = post(&app, "/api/v1/activations", json!({"licence_key": f.keys[0], "fingerprint": fingerprint("CALC", "ws-1"), "hostname": "ws-1"})).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
        assert!(body["detail"].as_str().unwrap_or("").contains("site licence server"), "{body}");
        let (st, body) = link(&app, &f.keys[0], "site-b", 0).await;
        assert_eq!((st, body["type"].as_str()), (StatusCode::CONFLICT, Some("/problems/activated-elsewhere")), "{body}");
        assert!(body["detail"].as_str().unwrap_or("").contains("site-a"), "{body}");

        // The vendor sells more seats; the site's refresh picks them up, numbered after the first.
        terms(6).await;
        app.clock.advance(DAY);
        let (st, answer) = link(&app, &f.keys[0], "site-a", first.seq).await;
        assert_eq!(st, StatusCode::OK, "{answer}");
        let second = verified(&app, &answer).await;
        assert_eq!(seats(&second), [("print".to_owned(), 6), ("export".to_owned(), 2)]);
        assert_eq!((second.seq, second.site), (2, first.site));
        assert!(second.replaces(&first).is_ok());
        assert!(first.replaces(&second).is_err(), "the older never replaces the newer");

        // The vendor's list shows the site; its audit history the link and the refresh.
        let browser = app.admin().await;
        let api = token(&app, &browser, "sites", "write").await;
        let (st, list) = api.get("/api/v1/sites").await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(list[0]["hostname"], "site-a");
        assert_eq!((list[0]["seq"].as_i64(), list[0]["unlinked_at"].clone()), (Some(2), Value::Null));
        assert!(!list[0]["licence_key"].as_str().unwrap_or("").contains(&f.keys[0]), "masked in a list");
        let page = app.services.licence_page(&f.admin, id).await.expect("page");
        let actions: Vec<_> = page.changes.iter().map(|e| e.action.as_str()).collect();
        assert!(actions.contains(&"site.link") && actions.contains(&"site.refresh"), "{actions:?}");

        // Revoked, the site's next refresh is refused.
        let site = first.site;
        let (st, body) = api.post(&format!("/api/v1/sites/{site}/revoke"), json!({"reason": "unpaid"})).await;
        assert_eq!(st, StatusCode::NO_CONTENT, "{body}");
        let (st, body) = link(&app, &f.keys[0], "site-a", second.seq).await;
        assert_eq!(st, StatusCode::GONE, "{body}");
        assert!(body["detail"].as_str().unwrap_or("").contains("unpaid"), "{body}");
        // A client user's token sees their own site, and may not revoke or free it.
        let carla = app.browser();
        carla.sign_in("carla@acme.test", "client password 123").await.ok();
        let theirs = token(&app, &carla, "mine", "write").await;
        let (st, list) = theirs.get("/api/v1/sites").await;
        assert_eq!((st, list.as_array().map(Vec::len)), (StatusCode::OK, Some(1)));
        let (st, _) = theirs.post(&format!("/api/v1/sites/{site}/free"), json!({"at_once": true})).await;
        assert_eq!(st, StatusCode::FORBIDDEN);
    }

    async fn a_site_moves_to_new_hardware_by_unlinking_or_being_freed(app) {
        let f = fixture(&app, site_product(), 1).await;
        let key = f.keys[0].clone();
        let (st, answer) = link(&app, &key, "old-server", 0).await;
        assert_eq!(st, StatusCode::OK, "{answer}");
        let old = verified(&app, &answer).await;
        let unlink = |seq: i64, machine: &str| json!({"key": key, "site": old.site, "fp": site_fp(machine), "host": machine, "seq": seq, "t": 0});
        // Only the latest entitlement's number, from its own machine, unlinks.
        let (st, body, _) = post(&app, "/api/v1/sites/unlink", unlink(old.seq + 1, "old-server")).await;
        assert_eq!(st, StatusCode::CONFLICT, "{body}");
        let (st, body, _) = post(&app, "/api/v1/sites/unlink", unlink(old.seq, "other")).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{body}");
        let (st, body, _) = post(&app, "/api/v1/sites/unlink", unlink(old.seq, "old-server")).await;
        assert_eq!(st, StatusCode::NO_CONTENT, "{body}");
        let (st, _, _) = post(&app, "/api/v1/sites/unlink", unlink(old.seq, "old-server")).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "once");

        // The new server links; its entitlement is numbered after the old one's.
        let (st, answer) = link(&app, &key, "new-server", 0).await;
        assert_eq!(st, StatusCode::OK, "{answer}");
        let new = verified(&app, &answer).await;
        assert!(new.seq > old.seq && new.site != old.site);

        // Freed by the vendor without the server's word, the licence waits for the entitlement
        // there to stop granting; then a third server links.
        let browser = app.admin().await;
        let api = token(&app, &browser, "sites", "write").await;
        let (st, body) = api.post(&format!("/api/v1/sites/{}/free", new.site), json!({})).await;
        assert_eq!(st, StatusCode::NO_CONTENT, "{body}");
        let (st, body) = link(&app, &key, "third-server", 0).await;
        assert_eq!(st, StatusCode::CONFLICT, "{body}");
        assert!(body["detail"].as_str().unwrap_or("").contains("new-server"), "{body}");
        app.clock.advance(30 * DAY + 1);
        let (st, body) = link(&app, &key, "third-server", 0).await;
        assert_eq!(st, StatusCode::OK, "{body}");
    }

    async fn a_site_that_keeps_moving_is_held_back_by_the_anti_churn_limit(app) {
        let f = fixture(&app, LicensingSettings { max_activations: 100, ..site_product() }, 1).await;
        let key = f.keys[0].clone();
        let mut refused = None;
        for round in 0..12 {
            let machine = format!("server-{round}");
            let (st, answer) = link(&app, &key, &machine, 0).await;
            if st == StatusCode::TOO_MANY_REQUESTS {
                refused = Some((round, answer));
                break;
            }
            assert_eq!(st, StatusCode::OK, "{answer}");
            let c = verified(&app, &answer).await;
            let (st, body, _) = post(&app, "/api/v1/sites/unlink", json!({"key": key, "site": c.site, "fp": site_fp(&machine), "host": machine, "seq": c.seq, "t": 0})).await;
            assert_eq!(st, StatusCode::NO_CONTENT, "{body}");
        }
        // Ten events a day by default: five links and five unlinks.
        let (round, body) = refused.expect("refused before twelve moves");
        assert_eq!(round, 5, "{body}");
        assert_eq!(body["type"], "/problems/churn-limit");
    }

    async fn only_a_site_licence_links_and_bad_requests_change_nothing(app) {
        let f = fixture(&app, LicensingSettings::default(), 1).await;
        let (st, body) = link(&app, &f.keys[0], "site-a", 0).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{body}");
        assert!(body["detail"].as_str().unwrap_or("").contains("not by a site licence server"), "{body}");
        let (st, body) = link(&app, "NOPE2-NOPE2-NOPE2-NOPE2", "site-a", 0).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{body}");
        let (st, body, _) = post(&app, "/api/v1/sites/link", json!({"key": f.keys[0], "fp": "not hex", "host": "x", "nonce": "n", "held": 0, "t": 0})).await;
        assert_eq!((st, body["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("fingerprint")), "{body}");
        for held in [-1, i64::MAX] {
            let (st, body, _) = post(&app, "/api/v1/sites/link", json!({"key": f.keys[0], "fp": site_fp("a"), "host": "x", "nonce": "n", "held": held, "t": 0})).await;
            assert_eq!((st, body["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("held")), "{body}");
        }
        let sites = app.services.list_sites(&f.admin).await.expect("sites");
        assert!(sites.is_empty());
        // No token, no list.
        let anonymous = reqwest::get(format!("{}/api/v1/sites", app.base_url)).await.expect("get");
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    }

    async fn a_licence_moves_to_as_many_servers_as_its_activations_allow(app) {
        // Three by default: each new server uses one (an unlink gives none back), a server
        // seen before none.
        let f = fixture(&app, site_product(), 1).await;
        let key = f.keys[0].clone();
        for machine in ["one", "two", "three", "one"] {
            let (st, answer) = link(&app, &key, machine, 0).await;
            assert_eq!(st, StatusCode::OK, "{machine}: {answer}");
            let c = verified(&app, &answer).await;
            let (st, body, _) = post(&app, "/api/v1/sites/unlink", json!({"key": key, "site": c.site, "fp": site_fp(machine), "host": machine, "seq": c.seq, "t": 0})).await;
            assert_eq!(st, StatusCode::NO_CONTENT, "{body}");
        }
        let (st, body) = link(&app, &key, "four", 0).await;
        assert_eq!((st, body["type"].as_str()), (StatusCode::FORBIDDEN, Some("/problems/activation-limit")), "{body}");
    }

    async fn a_revoked_site_cannot_unlink_itself_free(app) {
        let f = fixture(&app, site_product(), 1).await;
        let key = f.keys[0].clone();
        let (_, answer) = link(&app, &key, "site-a", 0).await;
        let c = verified(&app, &answer).await;
        app.services.revoke_site(&f.admin, c.site, "chargeback").await.expect("revoke");
        let (st, body, _) = post(&app, "/api/v1/sites/unlink", json!({"key": key, "site": c.site, "fp": site_fp("site-a"), "host": "site-a", "seq": c.seq, "t": 0})).await;
        assert_eq!(st, StatusCode::GONE, "{body}");
        let (st, body) = link(&app, &key, "site-b", 0).await;
        assert_eq!(st, StatusCode::CONFLICT, "the revoked site still holds the licence: {body}");
        // The product keeps its mode while a site holds one of its licences.
        let product = app.services.licence_page(&f.admin, f.licence_ids[0]).await.expect("page").product;
        let mut input = product_input_of(&product);
        input.settings.site_refresh_days = None;
        let refused = app.services.save_product(&f.admin, Some(product.id), input).await.expect_err("in use");
        assert!(refused.to_string().contains("linked to site servers"), "{refused}");
    }

    async fn a_limited_site_licence_takes_its_end_when_first_linked(app) {
        let settings = LicensingSettings { limited: true, validity_days: Some(10), end_user_removal: false, ..site_product() };
        let f = fixture(&app, settings, 1).await;
        let (st, answer) = link(&app, &f.keys[0], "site-a", 0).await;
        assert_eq!(st, StatusCode::OK, "{answer}");
        let c = verified(&app, &answer).await;
        // Ten days, today the first (as on a machine).
        let end = protocol::time::format_date(protocol::time::day_of(app.clock.now()) + 9);
        assert!(c.keys.iter().all(|k| k.end_date.as_deref() == Some(end.as_str())), "{:?}", c.keys);
        let lic = app.services.licence(&f.admin, f.licence_ids[0]).await.expect("licence");
        assert_eq!(lic.expires_on.as_deref(), Some(end.as_str()), "fixed on the licence");
        app.clock.advance(11 * DAY);
        let (st, body) = link(&app, &f.keys[0], "site-a", c.seq).await;
        assert_eq!(st, StatusCode::GONE, "{body}");
    }

    async fn an_expired_site_licence_links_no_server(app) {
        let settings = LicensingSettings { limited: true, validity_days: Some(10), end_user_removal: false, ..site_product() };
        let f = fixture(&app, settings, 1).await;
        app.services.edit_licence(&f.admin, f.licence_ids[0], vec!["print".into()], BTreeMap::new(), ExpiryEdit::On("2100-01-01".into())).await.expect("end");
        let (st, answer) = link(&app, &f.keys[0], "site-a", 0).await;
        assert_eq!(st, StatusCode::OK, "{answer}");
        let c = verified(&app, &answer).await;
        assert_eq!(c.keys[0].end_date.as_deref(), Some("2100-01-01"));
        app.clock.advance(80 * 365 * DAY);
        let (st, body) = link(&app, &f.keys[0], "site-a", c.seq).await;
        assert_eq!(st, StatusCode::GONE, "{body}");
        assert!(body["detail"].as_str().unwrap_or("").contains("expired"), "{body}");
    }
}

/// The editor's input that saves `p` as it is.
fn product_input_of(p: &protocol::catalog::Product) -> protocol::catalog::ProductInput {
    protocol::catalog::ProductInput {
        code: p.code.clone(),
        name: p.name.clone(),
        editor: p.editor.clone(),
        release_number: p.release_number,
        release_date: p.release_date.clone(),
        features: p.features.clone(),
        default_features: p.default_features.clone(),
        default_counters: p.default_counters.clone(),
        settings: p.settings.clone(),
    }
}
