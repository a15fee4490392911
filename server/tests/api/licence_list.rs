//! Every licence in one list, across orders and serials: filtered by status, product, client,
//! feature, end and a search, sorted, paged and exported as CSV by the server; each caller sees
//! their own (a client user their organisation's), a read-only token sees keys masked and
//! cannot find a licence by guessing its key, and each status filter picks exactly the licences
//! the list says stand so.

use crate::both_backends;
use crate::helpers::*;
use crate::manage::{token, Api};
use licensing::catalog::OrderInput;
use licensing::web::{BatchInput, SerialQuery};
use protocol::activation::fingerprint;
use protocol::catalog::LicensingSettings;
use reqwest::StatusCode;
use serde_json::{json, Value};

const DAY: i64 = 86_400;

async fn activate(app: &TestApp, body: Value) {
    let (st, reply, _) = api_post(app, "/api/v1/activations", body).await;
    assert_eq!(st, StatusCode::CREATED, "{reply}");
}

/// Every licence `path` lists, walking its pages two at a time.
async fn all_of(api: &Api, path: &str) -> Vec<Value> {
    let join = if path.contains('?') { '&' } else { '?' };
    let mut next = Some(format!("{path}{join}limit=2"));
    let mut rows = Vec::new();
    while let Some(at) = next {
        let (st, body, link) = api.page(&at).await;
        assert_eq!(st, StatusCode::OK, "{at}: {body}");
        rows.extend(body.as_array().cloned().expect("an array"));
        next = link;
        assert!(rows.len() < 100, "{path}: the links go round in circles");
    }
    rows
}

fn ids(rows: &[Value]) -> Vec<i64> {
    rows.iter()
        .map(|r| r["licence"]["id"].as_i64().expect("an id"))
        .collect()
}

both_backends! {
    async fn one_list_finds_every_licence_by_status_product_client_feature_and_end(app) {
        // Acme: four licences of a product that ends 10 days after activation. Globex: one
        // with the export feature too. The web model: a serial of another product, whose
        // feature codes are in capitals.
        let limited = LicensingSettings { limited: true, validity_days: Some(10), end_user_removal: false, max_activations: 5, ..Default::default() };
        let f = fixture(&app, limited, 4).await;
        let admin = app.admin().await;
        let (globex, _) = app.client_user(&admin, "Globex", "gil@globex.test").await;
        let products = app.services.list_products(&f.admin, &licensing::page::Page::ALL).await.expect("products").items;
        let calc = products[0].id;
        let theirs = app.services.create_order(&f.admin, OrderInput { client_id: globex, product_id: calc, quantity: 1, reference: String::new(), features: Some(vec!["print".into(), "export".into()]), counters: None, notes: String::new() }).await.expect("order");
        let their_licence = app.services.order_licences(&f.admin, theirs.id, &licensing::page::Page::ALL).await.expect("licences").items.remove(0);
        let mut web = product("WEB", LicensingSettings::default());
        web.features[0].code = "PRINT".into();
        web.default_features = vec!["PRINT".into()];
        let web = app.services.save_product(&f.admin, None, web).await.expect("product");
        let batch = app.services.generate_serials(&f.admin, BatchInput { product_id: web.id, count: 1, features: None, licences_per_serial: Some(1), note: String::new() }).await.expect("batch");
        let serial = app.services.list_serials(&f.admin, SerialQuery { batch_id: Some(batch.id), ..SerialQuery::default() }, &licensing::page::Page::ALL).await.expect("serials").items.remove(0);

        activate(&app, json!({"licence_key": f.keys[0], "fingerprint": fingerprint("CALC", "ws-1"), "hostname": "ws-1"})).await;
        app.clock.advance(DAY);
        activate(&app, json!({"licence_key": f.keys[1], "fingerprint": fingerprint("CALC", "ws-2"), "hostname": "ws-2"})).await;
        activate(&app, json!({"licence_key": their_licence.key, "fingerprint": fingerprint("CALC", "globex-1"), "hostname": "globex-1"})).await;
        activate(&app, json!({"product": "WEB", "serial": serial.serial, "fingerprint": fingerprint("WEB", "web-1"), "hostname": "web-1"})).await;
        // The serial leaks and is replaced: web-1 still runs on the revoked one until its next
        // validation.
        let replacement = app.services.revoke_and_reissue(&f.admin, serial.id, "leaked").await.expect("reissued");
        // Nine days on, the first licence's tenth and last day has passed (the second's is
        // today).
        app.clock.advance(9 * DAY);
        let web_licence = app.services.serial_detail(&f.admin, replacement.id).await.expect("detail").licences[0].id;
        // The fourth, activated today and removed without its machine, whose code may still
        // pass offline: in use until it frees.
        activate(&app, json!({"licence_key": f.keys[3], "fingerprint": fingerprint("CALC", "ws-4"), "hostname": "ws-4"})).await;
        let removal = app.services.remove_activation(&f.keys[3], None, licensing::activation::Remover::Portal { actor: &f.admin, force: true, free_now: false }).await.expect("removed");
        assert!(removal.frees_at.is_some_and(|at| at > app.clock.now()), "{removal:?}");
        // The vendor's own note on the third.
        app.services.set_licence_notes(&f.admin, f.licence_ids[2], "Renewal at risk").await.expect("notes");
        // Signed in again: the sessions of ten days ago have lapsed.
        let admin = app.admin().await;
        let gil = app.browser();
        gil.sign_in("gil@globex.test", "client password 123").await.ok();

        let api = token(&app, &admin, "list", "write").await;
        let all = all_of(&api, "/api/v1/licences").await;
        let mut expected = vec![f.licence_ids[0], f.licence_ids[1], f.licence_ids[2], f.licence_ids[3], their_licence.id, web_licence];
        expected.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(ids(&all), expected, "every licence, newest first");
        let row = |id: i64| all.iter().find(|r| r["licence"]["id"] == id).cloned().expect("listed");
        assert_eq!(row(f.licence_ids[0])["status"], "expired");
        assert_eq!(row(f.licence_ids[1])["status"], "in_use");
        assert_eq!(row(f.licence_ids[2])["status"], "available");
        assert_eq!(row(f.licence_ids[3])["status"], "in_use");
        assert!(row(f.licence_ids[3])["licence"]["activation"].is_null() && row(f.licence_ids[3])["licence"]["pending_free"]["hostname"] == "ws-4", "{}", row(f.licence_ids[3]));
        assert_eq!(row(web_licence)["status"], "revoked");
        assert_eq!(row(web_licence)["client_name"], "");
        assert_eq!(row(web_licence)["serial"], replacement.serial.as_str(), "known by the replacement");
        assert_eq!(row(their_licence.id)["client_name"], "Globex");
        assert_eq!(row(f.licence_ids[1])["licence"]["activation"]["hostname"], "ws-2");

        // Each status filter picks exactly the licences the list says stand so, and none twice.
        let mut seen = 0;
        for status in ["available", "in_use", "expired", "revoked"] {
            let picked = all_of(&api, &format!("/api/v1/licences?status={status}")).await;
            let said: Vec<i64> = all.iter().filter(|r| r["status"] == status).map(|r| r["licence"]["id"].as_i64().unwrap_or_default()).collect();
            assert_eq!(ids(&picked), said, "{status}");
            assert!(!said.is_empty(), "{status}: one of each here");
            seen += said.len();
        }
        assert_eq!(seen, all.len());

        // The other filters, each alone and together.
        let acme = f.client.client.as_ref().expect("Acme").id;
        let pick = |path: String| { let api = &api; async move { ids(&all_of(api, &path).await) } };
        assert_eq!(pick(format!("/api/v1/licences?client_id={globex}")).await, vec![their_licence.id]);
        assert_eq!(pick("/api/v1/licences?product=WEB".into()).await, vec![web_licence]);
        assert_eq!(pick("/api/v1/licences?feature=export".into()).await, vec![their_licence.id], "the order's features, its own once activated");
        assert_eq!(pick("/api/v1/licences?feature=PRINT".into()).await, vec![web_licence], "a code is exact, case and all");
        assert!(!pick("/api/v1/licences?feature=print".into()).await.contains(&web_licence));
        assert_eq!(pick(format!("/api/v1/licences?feature=print&client_id={acme}&status=in_use")).await, vec![f.licence_ids[3], f.licence_ids[1]], "bound, or removed and not freed yet");
        assert_eq!(pick("/api/v1/licences?expiring_within_days=0".into()).await, vec![their_licence.id, f.licence_ids[1]], "their last day is today");
        assert_eq!(pick("/api/v1/licences?q=GLOBEX-1".into()).await, vec![their_licence.id], "a machine's name, any case");
        let key_part = &f.keys[2][5..14];
        assert_eq!(pick(format!("/api/v1/licences?q={key_part}")).await, vec![f.licence_ids[2]], "a part of a key");
        let serial_part = &replacement.serial[3..12];
        assert_eq!(pick(format!("/api/v1/licences?q={serial_part}")).await, vec![web_licence], "a part of a serial");
        assert_eq!(pick("/api/v1/licences?q=renewal".into()).await, vec![f.licence_ids[2]], "the vendor's notes");

        // Sorted by end, soonest first, the licences without one last; by client, A–Z.
        let by_end = pick("/api/v1/licences?sort=expires&order=asc".into()).await;
        assert_eq!(&by_end[..2], &[f.licence_ids[0], f.licence_ids[1]][..]);
        let by_client = all_of(&api, "/api/v1/licences?sort=client&order=asc").await;
        let names: Vec<&str> = by_client.iter().map(|r| r["client_name"].as_str().unwrap_or_default()).collect();
        assert_eq!(names, ["", "Acme", "Acme", "Acme", "Acme", "Globex"]);

        // A read-only token: keys and serials masked, and the search does not look into them
        // (it could learn a key a character at a time).
        let reader = token(&app, &admin, "reader", "read").await;
        let masked = all_of(&reader, "/api/v1/licences").await;
        assert_eq!(ids(&masked), ids(&all));
        assert!(masked.iter().all(|r| r["licence"]["key"].as_str().is_some_and(|k| k.ends_with('…'))), "{masked:?}");
        assert!(masked.iter().all(|r| r["serial"].is_null() || r["serial"].as_str().is_some_and(|s| s.ends_with('…'))));
        assert_eq!(ids(&all_of(&reader, &format!("/api/v1/licences?q={key_part}")).await), Vec::<i64>::new());
        assert_eq!(ids(&all_of(&reader, &format!("/api/v1/licences?q={serial_part}")).await), Vec::<i64>::new());

        // A client user's token: their organisation's only, whatever client they name.
        let carla = app.browser();
        carla.sign_in("carla@acme.test", "client password 123").await.ok();
        let own = token(&app, &carla, "own", "read").await;
        let mut acme_ids = f.licence_ids.clone();
        acme_ids.reverse();
        assert_eq!(ids(&all_of(&own, "/api/v1/licences").await), acme_ids);
        assert_eq!(ids(&all_of(&own, &format!("/api/v1/licences?client_id={globex}")).await), acme_ids);
        assert_eq!(ids(&all_of(&own, "/api/v1/licences?product=WEB").await), Vec::<i64>::new(), "web licences are the vendor's");
        // Nor may a client user's search read the vendor's notes, a character at a time.
        assert_eq!(ids(&all_of(&own, "/api/v1/licences?q=renewal").await), Vec::<i64>::new(), "notes are the vendor's");
        assert!(!ids(&all_of(&own, "/api/v1/licences?q=r").await).contains(&f.licence_ids[2]), "not even one letter of them");

        // Bad filters are refused, saying which.
        for (query, field) in [("status=lost", "status"), ("sort=key", "sort"), ("order=up", "order"), ("feature=a%27b", "feature"), ("expiring_within_days=-1", "expiring_within_days")] {
            let (st, body) = api.get(&format!("/api/v1/licences?{query}")).await;
            assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
            assert_eq!(body["field"], field, "{query}: {body}");
        }

        // The CSV: the same rows in the same order, with their status; a client user's from the
        // portal holds their own; nobody signed in gets nothing.
        let csv = |path: &str, browser: Option<&Browser>, bearer: Option<&Api>| {
            let client = browser.map_or_else(reqwest::Client::new, |b| b.client.clone());
            let mut req = client.get(format!("{}{path}", app.base_url));
            if let Some(api) = bearer {
                req = req.bearer_auth(api.token());
            }
            async move {
                let res = req.send().await.expect("csv");
                (res.status(), res.text().await.expect("body"))
            }
        };
        let (st, file) = csv("/api/v1/licences.csv?sort=expires&order=asc", None, Some(&api)).await;
        assert_eq!(st, StatusCode::OK, "{file}");
        let lines: Vec<&str> = file.lines().collect();
        assert_eq!(lines[0], "licence_id,licence_key,serial,order_id,client,product,status,features,counters,expires_on,activations,machine,mode,activated_at_utc,last_validated_at_utc");
        assert_eq!(lines.len(), 7, "{file}");
        assert!(lines[1].starts_with(&format!("{},{},,", f.licence_ids[0], f.keys[0])) && lines[1].contains(",Acme,CALC,expired,print,users=5,"), "{file}");
        let (_, masked_file) = csv("/api/v1/licences.csv", None, Some(&reader)).await;
        assert!(!masked_file.contains(&f.keys[0]) && masked_file.lines().count() == 7, "{masked_file}");
        let (st, carlas) = csv("/licences.csv?status=available", Some(&carla), None).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(carlas.lines().count(), 2, "{carlas}");
        assert!(carlas.contains(&f.keys[2]), "{carlas}");
        let (_, gils) = csv("/licences.csv", Some(&gil), None).await;
        assert!(gils.contains(&their_licence.key) && !gils.contains(&f.keys[0]), "{gils}");
        assert_eq!(csv("/licences.csv", None, None).await.0, StatusCode::UNAUTHORIZED);

        // The portal's page of the list counts every match and pages with a cursor.
        let reply = admin.rpc("licences_page", &[("limit", "2")]).await.ok();
        assert_eq!(reply["total"], 6);
        assert_eq!(reply["rows"].as_array().map(Vec::len), Some(2));
        let next = reply["next"].as_str().expect("a next page").to_owned();
        let second = admin.rpc("licences_page", &[("limit", "2"), ("after", &next)]).await.ok();
        assert_eq!(second["rows"][0]["licence"]["id"], all[2]["licence"]["id"]);
        let theirs_only = gil.rpc("licences_page", &[]).await.ok();
        assert_eq!(theirs_only["total"], 1);
    }
}
