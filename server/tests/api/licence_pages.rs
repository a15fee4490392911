//! A licence's page (every activation, validations, the audit log's changes, notes, extend and
//! make permanent) and the activations list filtered, sorted and paged by the server, exported
//! as CSV through the portal and the API; who may read and change what.

use crate::both_backends;
use crate::helpers::*;
use crate::manage::{token, year_token};
use licensing::activation::Remover;
use licensing::catalog::OrderInput;
use protocol::activation::fingerprint;
use protocol::catalog::{ActivationFilter, LicensingSettings};
use reqwest::StatusCode;
use serde_json::{json, Value};

const DAY: i64 = 86_400;

async fn activate_as(app: &TestApp, product: &str, key: &str, machine: &str) -> Value {
    let (st, body, _) = api_post(
        app,
        "/api/v1/activations",
        json!({"licence_key": key, "fingerprint": fingerprint(product, machine), "hostname": machine}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    body
}

fn admin_removal(f: &Fixture) -> Remover<'_> {
    Remover::Portal {
        actor: &f.admin,
        force: true,
        free_now: true,
    }
}

/// The machines a list page holds, in order.
fn machines(rows: &Value) -> Vec<String> {
    rows.as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            r["activation"]["hostname"]
                .as_str()
                .expect("host")
                .to_owned()
        })
        .collect()
}

both_backends! {
    async fn a_licence_page_shows_every_activation_its_validations_changes_and_notes(app) {
        let settings = LicensingSettings { limited: true, validity_days: Some(20), end_user_removal: false, max_activations: 5, ..Default::default() };
        let f = fixture(&app, settings, 2).await;
        let (id, key) = (f.licence_ids[0], f.keys[0].clone());
        let first = activate_as(&app, "CALC", &key, "ws-1").await;
        let code = first["activation_code"].as_str().expect("code").to_owned();
        for _ in 0..2 {
            assert_eq!(validate_code(&app, &code, "ws-1").await.0, StatusCode::OK);
        }
        app.services.remove_activation(&key, None, admin_removal(&f)).await.expect("removed");
        app.clock.advance(60);
        activate_as(&app, "CALC", &key, "ws-2").await;

        let page = app.services.licence_page(&f.admin, id).await.expect("page");
        let hosts: Vec<_> = page.activations.iter().map(|a| (a.hostname.as_str(), a.removed_at.is_some(), a.validations)).collect();
        assert_eq!(hosts, [("ws-2", false, 0), ("ws-1", true, 2)], "newest first, the past one kept");
        assert_eq!(page.licence.activation.as_ref().map(|a| a.hostname.as_str()), Some("ws-2"));
        let actions: Vec<_> = page.changes.iter().map(|c| c.action.as_str()).collect();
        assert_eq!(actions, ["activation.create", "activation.remove", "activation.create"]);
        assert_eq!(page.notes.as_deref(), Some(""));
        assert_eq!(page.client.as_ref().map(|c| c.name.as_str()), Some("Acme"));
        assert_eq!(page.order_reference.as_deref(), Some("PO-1"));
        assert!(!page.expired);
        // The other licence's history is not this one's.
        let other = app.services.licence_page(&f.admin, f.licence_ids[1]).await.expect("other");
        assert!(other.activations.is_empty() && other.changes.is_empty(), "{other:?}");

        // Notes: the vendor's own; the client's user reads neither them nor their entry.
        app.services.set_licence_notes(&f.admin, id, "  Paid by wire, PO-1.  ").await.expect("notes");
        let page = app.services.licence_page(&f.admin, id).await.expect("page");
        assert_eq!(page.notes.as_deref(), Some("Paid by wire, PO-1."));
        assert!(page.changes[0].changes.iter().any(|c| c.field == "notes"), "{:?}", page.changes[0]);
        let theirs = app.services.licence_page(&f.client, id).await.expect("the client's view");
        assert_eq!(theirs.notes, None);
        assert!(theirs.changes.len() >= 3, "the client reads its licence's history: {:?}", theirs.changes);
        assert!(theirs.changes.iter().all(|c| c.changes.iter().all(|ch| ch.field != "notes")), "{:?}", theirs.changes);
        // The vendor's entry says the notes changed, not what they say.
        let noted = &page.changes[0].changes[0];
        assert!(!noted.after.contains("wire") && !noted.before.contains("wire"), "{noted:?}");
        assert_eq!(theirs.activations.len(), 2);
        let long = "x".repeat(4001);
        let refused = app.services.set_licence_notes(&f.admin, id, &long).await.expect_err("too long");
        assert!(format!("{refused:?}").contains("notes"), "{refused:?}");
        assert!(matches!(app.services.set_licence_notes(&f.client, id, "mine").await, Err(licensing::Error::NotAllowed)));

        // Extend from the end; a licence without an end has nothing to extend.
        let end = protocol::time::parse_date(page.licence.expires_on.as_deref().expect("an end")).expect("date");
        let extended = app.services.extend_licence(&f.admin, id, 30).await.expect("extended");
        assert_eq!(extended.expires_on, Some(protocol::time::format_date(end + 30)));
        for bad in [0, -1, 3651] {
            let e = app.services.extend_licence(&f.admin, id, bad).await.expect_err("refused");
            assert!(format!("{e:?}").contains("days"), "{e:?}");
        }
        let not_yet = app.services.extend_licence(&f.admin, f.licence_ids[1], 30).await.expect_err("no end yet");
        assert!(format!("{not_yet:?}").contains("no end date"), "{not_yet:?}");
        // A trial not activated yet made permanent still follows its order's terms.
        let waiting = app.services.make_licence_permanent(&f.admin, f.licence_ids[1]).await.expect("permanent");
        assert!(waiting.open_ended);
        let order_id = waiting.order_id.expect("an order");
        app.services.update_order(&f.admin, order_id, vec!["print".into()], Default::default(), "PO-1", "").await.expect("order terms");
        assert_eq!(app.services.licence(&f.admin, f.licence_ids[1]).await.expect("licence").features, ["print"], "it follows the order");
        assert!(matches!(app.services.extend_licence(&f.client, id, 30).await, Err(licensing::Error::NotAllowed)));
        // An ended licence is extended from today.
        app.clock.advance(60 * DAY);
        let today = protocol::time::day_of(app.clock.now());
        assert!(app.services.licence_page(&f.admin, id).await.expect("page").expired);
        let revived = app.services.extend_licence(&f.admin, id, 30).await.expect("extended");
        assert_eq!(revived.expires_on, Some(protocol::time::format_date(today + 30)));
        // Two extensions at once: both count.
        let (a, b) = tokio::join!(app.services.extend_licence(&f.admin, id, 10), app.services.extend_licence(&f.admin, id, 10));
        let ends: Vec<_> = [a.expect("a"), b.expect("b")].into_iter().map(|l| l.expires_on.expect("end")).collect();
        assert!(ends.contains(&protocol::time::format_date(today + 50)), "one after the other: {ends:?}");
        let revived = app.services.licence(&f.admin, id).await.expect("licence");
        // A trial made a full licence: no end, features kept, the change in its history.
        let full = app.services.make_licence_permanent(&f.admin, id).await.expect("permanent");
        assert!(full.open_ended && full.expires_on.is_none());
        assert_eq!(full.features, revived.features);
        assert_eq!(full.counters, revived.counters);
        assert!(matches!(app.services.make_licence_permanent(&f.admin, id).await, Err(licensing::Error::Conflict(_))));
        assert!(app.services.extend_licence(&f.admin, id, 30).await.is_err());
        let page = app.services.licence_page(&f.admin, id).await.expect("page");
        let edits = page.changes.iter().filter(|c| c.action == "licence.edit").count();
        assert_eq!(edits, 6, "notes, four extensions and the end taken away");

        // Through the portal: the page for its client's user; nothing for another client's;
        // the actions for administrators only.
        let carla = app.browser();
        carla.sign_in("carla@acme.test", "client password 123").await.ok();
        let id_text = id.to_string();
        let mine = carla.rpc("get_licence_page", &[("id", &id_text)]).await.ok();
        assert_eq!(mine["licence"]["key"], key.as_str());
        assert_eq!(mine["notes"], Value::Null);
        for (name, form) in [
            ("extend_licence", vec![("licence_id", id_text.as_str()), ("days", "30")]),
            ("make_licence_permanent", vec![("licence_id", id_text.as_str())]),
            ("set_licence_notes", vec![("licence_id", id_text.as_str()), ("notes", "mine")]),
        ] {
            assert_eq!(carla.rpc(name, &form).await.status, StatusCode::FORBIDDEN, "{name}");
        }
        let admin = app.admin().await;
        let (_, gil) = app.client_user(&admin, "Globex", "gil@globex.test").await;
        let refused = gil.rpc("get_licence_page", &[("id", &id_text)]).await;
        assert!(matches!(refused.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND), "{}", refused.status);
        assert_eq!(admin.rpc("get_licence_page", &[("id", "999999")]).await.status, StatusCode::NOT_FOUND);
        assert_eq!(app.services.licence_page(&f.admin, id).await.expect("page").notes.as_deref(), Some("Paid by wire, PO-1."));
    }

    async fn the_activations_list_filters_sorts_pages_and_exports_csv(app) {
        let settings = LicensingSettings { limited: true, validity_days: Some(10), end_user_removal: false, max_activations: 5, ..Default::default() };
        let f = fixture(&app, settings, 4).await;
        // A second product whose code contains the first's, and another client's order of it.
        let pro = app.services.save_product(&f.admin, None, product("CALCPRO", LicensingSettings::default())).await.expect("product");
        let admin = app.admin().await;
        let (globex, gil) = app.client_user(&admin, "Globex", "gil@globex.test").await;
        let order = app.services.create_order(&f.admin, OrderInput { client_id: globex, product_id: pro.id, quantity: 2, reference: String::new(), features: None, counters: None, notes: String::new() }).await.expect("order");
        let pro_keys: Vec<String> = app.services.order_licences(&f.admin, order.id, &licensing::page::Page::ALL).await.expect("licences").items.into_iter().map(|l| l.key).collect();
        for (i, key) in f.keys.iter().enumerate() {
            activate_as(&app, "CALC", key, &format!("acme-{i}")).await;
            app.clock.advance(60);
        }
        for (i, key) in pro_keys.iter().enumerate() {
            activate_as(&app, "CALCPRO", key, &format!("globex-{i}")).await;
            app.clock.advance(60);
        }
        app.services.remove_activation(&f.keys[3], None, admin_removal(&f)).await.expect("removed");

        let list = |filter: ActivationFilter| {
            let services = app.services.clone();
            let admin = f.admin.clone();
            async move {
                services.list_activations(&admin, &filter, true, &licensing::page::Page::ALL).await.expect("list").items.into_iter().map(|r| r.activation.hostname).collect::<Vec<_>>()
            }
        };
        // Newest first, live only, by default; the product filter is exact.
        assert_eq!(list(ActivationFilter::default()).await, ["globex-1", "globex-0", "acme-2", "acme-1", "acme-0"]);
        let calc = ActivationFilter { product: Some("CALC".into()), ..Default::default() };
        assert_eq!(list(calc.clone()).await, ["acme-2", "acme-1", "acme-0"]);
        assert_eq!(list(ActivationFilter { q: Some("calc".into()), ..Default::default() }).await.len(), 5, "a search is a substring");
        assert_eq!(list(ActivationFilter { status: Some("removed".into()), ..Default::default() }).await, ["acme-3"]);
        assert_eq!(list(ActivationFilter { status: Some("all".into()), product: Some("CALC".into()), sort: Some("machine".into()), order: Some("asc".into()), ..Default::default() }).await, ["acme-0", "acme-1", "acme-2", "acme-3"]);
        assert_eq!(list(ActivationFilter { client_id: Some(globex), ..Default::default() }).await, ["globex-1", "globex-0"]);
        assert_eq!(list(ActivationFilter { mode: Some("offline".into()), ..Default::default() }).await, Vec::<String>::new());
        // Only the limited product's licences end; within 10 days all of them, within 5 none.
        assert_eq!(list(ActivationFilter { expiring_within_days: Some(10), ..Default::default() }).await.len(), 3);
        assert_eq!(list(ActivationFilter { expiring_within_days: Some(5), ..Default::default() }).await.len(), 0);
        assert_eq!(app.services.count_activations(&f.admin, &calc, true).await.expect("count"), 3);
        // A client user sees their own, whatever client they name.
        let theirs = app.services.list_activations(&f.client, &ActivationFilter { client_id: Some(globex), ..Default::default() }, true, &licensing::page::Page::ALL).await.expect("list");
        assert_eq!(theirs.items.len(), 3, "Acme's own only");
        // Bad filters are refused, naming the field.
        for (filter, field) in [
            (ActivationFilter { status: Some("gone".into()), ..Default::default() }, "status"),
            (ActivationFilter { sort: Some("key".into()), ..Default::default() }, "sort"),
            (ActivationFilter { order: Some("up".into()), ..Default::default() }, "order"),
            (ActivationFilter { mode: Some("carrier pigeon".into()), ..Default::default() }, "mode"),
            (ActivationFilter { expiring_within_days: Some(3651), ..Default::default() }, "expiring_within_days"),
            (ActivationFilter { q: Some("x".repeat(101)), ..Default::default() }, "q"),
        ] {
            let e = app.services.list_activations(&f.admin, &filter, true, &licensing::page::Page::ALL).await.expect_err("refused");
            assert!(format!("{e:?}").contains(field), "{field}: {e:?}");
        }

        // The API: page by page in every sort, both ways, equals one page; the filters and the
        // sort travel in the next link.
        let api = token(&app, &admin, "full", "write").await;
        for sort in ["activated", "validated", "machine", "client", "product"] {
            for order in ["asc", "desc"] {
                let base = format!("/api/v1/activations?status=all&sort={sort}&order={order}");
                let (st, whole, _) = api.page(&format!("{base}&limit=500")).await;
                assert_eq!(st, StatusCode::OK, "{whole}");
                let mut walked = Vec::new();
                let mut next = Some(format!("{base}&limit=2"));
                while let Some(path) = next {
                    let (st, rows, link) = api.page(&path).await;
                    assert_eq!(st, StatusCode::OK, "{rows}");
                    walked.extend(machines(&rows));
                    if let Some(l) = &link {
                        assert!(l.contains(&format!("sort={sort}")), "{l}");
                    }
                    next = link;
                }
                assert_eq!(walked, machines(&whole), "{sort} {order}");
                assert_eq!(walked.len(), 6);
            }
        }
        // A cursor of one sort is refused by another.
        let (_, _, link) = api.page("/api/v1/activations?sort=machine&limit=1").await;
        let after = link.expect("a next page").split("after=").nth(1).expect("cursor").to_owned();
        let (st, problem) = api.get(&format!("/api/v1/activations?sort=activated&after={after}")).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        let (st, problem) = api.get("/api/v1/activations?status=gone").await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");

        // CSV through the API and the portal, the same filters, the same rows.
        let csv = |path: String, token: Option<String>, browser: Option<&Browser>| {
            let client = browser.map_or_else(reqwest::Client::new, |b| b.client.clone());
            let url = format!("{}{path}", app.base_url);
            async move {
                let mut req = client.get(url);
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                let res = req.send().await.expect("csv");
                let status = res.status();
                (status, res.text().await.expect("body"))
            }
        };
        let (st, text) = csv("/api/v1/activations.csv?product=CALC&status=all".into(), Some(api.token().to_owned()), None).await;
        assert_eq!(st, StatusCode::OK, "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("activation_id,licence_id,licence_key,serial,client,product,machine"), "{text}");
        assert_eq!(lines.len(), 5, "a header and four activations: {text}");
        assert!(lines.iter().skip(1).all(|l| l.contains(",Acme,CALC,acme-")), "{text}");
        assert!(text.contains(&f.keys[0]), "a full token's export has the keys");
        let (st, portal) = csv("/activations.csv?product=CALC&status=all".into(), None, Some(&admin)).await;
        assert_eq!((st, portal.lines().count()), (StatusCode::OK, 5), "{portal}");
        // A client user's export holds their own; no session, no export.
        let carla = app.browser();
        carla.sign_in("carla@acme.test", "client password 123").await.ok();
        let (st, own) = csv("/activations.csv?status=all".into(), None, Some(&carla)).await;
        assert_eq!(st, StatusCode::OK);
        assert!(own.contains("acme-0") && !own.contains("globex"), "{own}");
        let (st, gil_own) = csv("/activations.csv".into(), None, Some(&gil)).await;
        assert!(st == StatusCode::OK && !gil_own.contains("acme"), "{gil_own}");
        assert_eq!(csv("/activations.csv".into(), None, None).await.0, StatusCode::UNAUTHORIZED);

        // A read-only token sees keys masked: its search does not look into them, and its
        // export leaves them out.
        let reader = year_token(&app, &admin, "reader").await;
        let probe = &f.keys[0][..6];
        let (st, found) = reader.get(&format!("/api/v1/activations?q={probe}")).await;
        assert_eq!((st, found.as_array().map(Vec::len)), (StatusCode::OK, Some(0)), "{found}");
        let (_, found) = api.get(&format!("/api/v1/activations?q={probe}")).await;
        assert_eq!(found.as_array().map(Vec::len), Some(1), "a full token finds it: {found}");
        let reveals = || async {
            let q = protocol::audit::AuditQuery { action: Some("secret.reveal".into()), ..Default::default() };
            app.services.audit_log(&f.admin, &q).await.expect("audit").entries.len()
        };
        let before = reveals().await;
        let (st, masked) = csv("/api/v1/activations.csv".into(), Some(reader.token().to_owned()), None).await;
        assert_eq!(st, StatusCode::OK);
        assert!(!masked.contains(&f.keys[0]) && masked.contains("acme-0"), "{masked}");
        assert_eq!(reveals().await, before, "nothing shown whole, nothing recorded");
        let _ = csv("/api/v1/activations.csv".into(), Some(api.token().to_owned()), None).await;
        assert_eq!(reveals().await, before + 1, "an export of keys is recorded");

        // The portal's page of the list: a page of 50 with the total.
        let page = admin.rpc("activations_page", &[("filter[product]", "CALC"), ("filter[status]", "all")]).await.ok();
        assert_eq!(page["total"], 4);
        assert_eq!(machines(&page["rows"]), ["acme-3", "acme-2", "acme-1", "acme-0"]);
        let theirs = gil.rpc("activations_page", &[]).await.ok();
        assert_eq!(machines(&theirs["rows"]), ["globex-1", "globex-0"]);
    }
}

both_backends! {
    async fn a_bulk_action_checks_every_licence_before_it_changes_any(app) {
        let settings = LicensingSettings { limited: true, validity_days: Some(20), end_user_removal: false, max_activations: 5, ..Default::default() };
        let f = fixture(&app, settings, 3).await;
        for (i, key) in f.keys.iter().take(2).enumerate() {
            activate_as(&app, "CALC", key, &format!("ws-{i}")).await;
        }
        let (a, b, idle) = (f.licence_ids[0], f.licence_ids[1], f.licence_ids[2]);
        let licence = |id: i64| {
            let services = app.services.clone();
            let admin = f.admin.clone();
            async move { services.licence(&admin, id).await.expect("licence") }
        };
        let end_of = |l: &protocol::catalog::Licence| protocol::time::parse_date(l.expires_on.as_deref().expect("an end")).expect("day");
        let (end_a, end_b) = (end_of(&licence(a).await), end_of(&licence(b).await));
        use protocol::catalog::BulkLicenceAction as Bulk;

        // One licence without an end refuses the whole extension, naming it; nothing moves.
        let refused = app.services.bulk_licences(&f.admin, &[a, idle, b], &Bulk::Extend { days: 30 }).await.expect_err("refused");
        assert!(format!("{refused:?}").contains(&f.keys[2]), "{refused:?}");
        assert_eq!((end_of(&licence(a).await), end_of(&licence(b).await)), (end_a, end_b));
        assert_eq!(app.services.bulk_licences(&f.admin, &[a, b, a], &Bulk::Extend { days: 30 }).await.expect("extended"), 2);
        assert_eq!((end_of(&licence(a).await), end_of(&licence(b).await)), (end_a + 30, end_b + 30), "each once");

        // Features: one outside the catalogue changes nothing; one in it is added, then removed.
        let foreign = Bulk::AddFeature { feature: "teleport".into() };
        let e = app.services.bulk_licences(&f.admin, &[a, b], &foreign).await.expect_err("refused");
        assert!(format!("{e:?}").contains("teleport"), "{e:?}");
        let before = licence(a).await.features;
        let extra = product("CALC", LicensingSettings::default()).features.iter().map(|f| f.code.clone()).find(|c| !before.contains(c)).expect("a feature not granted yet");
        app.services.bulk_licences(&f.admin, &[a, b], &Bulk::AddFeature { feature: extra.clone() }).await.expect("added");
        assert!(licence(a).await.features.contains(&extra) && licence(b).await.features.contains(&extra));
        app.services.bulk_licences(&f.admin, &[a, b], &Bulk::RemoveFeature { feature: extra.clone() }).await.expect("removed");
        assert_eq!(licence(a).await.features, before);
        // Removing a feature a licence lacks changes nothing and is not counted.
        assert_eq!(app.services.bulk_licences(&f.admin, &[a, idle], &Bulk::RemoveFeature { feature: extra.clone() }).await.expect("nothing to do"), 0);
        // A feature given to a licence that follows its order: its counters still follow.
        app.services.bulk_licences(&f.admin, &[idle], &Bulk::AddFeature { feature: extra.clone() }).await.expect("added");
        let order_id = licence(idle).await.order_id.expect("an order");
        let counters = std::collections::BTreeMap::from([("seats".to_owned(), 7)]);
        app.services.update_order(&f.admin, order_id, vec!["print".into()], counters.clone(), "PO-1", "").await.expect("order terms");
        let idle_now = licence(idle).await;
        assert_eq!(idle_now.counters, counters, "its counters follow the order");
        assert!(idle_now.features.contains(&extra), "its features are its own now: {:?}", idle_now.features);

        // Removal: a licence on no machine refuses it all; then both machines are let go.
        let e = app.services.bulk_licences(&f.admin, &[a, idle], &Bulk::RemoveFromMachines).await.expect_err("refused");
        assert!(format!("{e:?}").contains("no machine"), "{e:?}");
        assert!(licence(a).await.activation.is_some());
        assert_eq!(app.services.bulk_licences(&f.admin, &[a, b], &Bulk::RemoveFromMachines).await.expect("removed"), 2);
        assert!(licence(a).await.activation.is_none() && licence(b).await.activation.is_none());
        // Every change is in each licence's own history.
        let history = app.services.licence_page(&f.admin, a).await.expect("page").changes;
        assert_eq!(history.iter().filter(|c| c.action == "licence.edit").count(), 3);
        assert_eq!(history.iter().filter(|c| c.action == "activation.remove").count(), 1);

        // Nothing picked, or too many: refused. A client user may not.
        let e = app.services.bulk_licences(&f.admin, &[], &Bulk::Extend { days: 30 }).await.expect_err("none");
        assert!(format!("{e:?}").contains("ids"), "{e:?}");
        assert!(matches!(app.services.bulk_licences(&f.client, &[a], &Bulk::Extend { days: 30 }).await, Err(licensing::Error::NotAllowed)));
        let carla = app.browser();
        carla.sign_in("carla@acme.test", "client password 123").await.ok();
        let (a_text, b_text) = (a.to_string(), b.to_string());
        let form = [("ids[]", a_text.as_str()), ("ids[]", b_text.as_str()), ("action", "extend-365")];
        assert_eq!(carla.rpc("bulk_licences", &form).await.status, StatusCode::FORBIDDEN);
        assert_eq!(end_of(&licence(a).await), end_a + 30);
        let admin = app.admin().await;
        assert_eq!(admin.rpc("bulk_licences", &form).await.ok(), json!(2));
        assert_eq!(end_of(&licence(a).await), end_a + 30 + 365);
        let bad = admin.rpc("bulk_licences", &[("ids[]", a_text.as_str()), ("action", "add-feature")]).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}

both_backends! {
    async fn an_extension_made_while_its_machine_activates_again_is_kept(app) {
        let settings = LicensingSettings { limited: true, validity_days: Some(20), end_user_removal: false, max_activations: 5, ..Default::default() };
        let f = fixture(&app, settings, 1).await;
        let (id, key) = (f.licence_ids[0], f.keys[0].clone());
        activate_as(&app, "CALC", &key, "ws-1").await;
        let end_of = || async {
            let l = app.services.licence(&f.admin, id).await.expect("licence");
            protocol::time::parse_date(l.expires_on.as_deref().expect("an end")).expect("date")
        };
        let first = end_of().await;
        // The machine activates again (its end kept) while an administrator extends, many
        // times over: every extension counts, whichever comes first.
        for round in 1..=12 {
            let (again, extended) = tokio::join!(
                activate_as(&app, "CALC", &key, "ws-1"),
                app.services.extend_licence(&f.admin, id, 1)
            );
            extended.expect("extended");
            assert_eq!(end_of().await, first + round, "round {round}");
            // The code carries the end the row had when it was written: before or after this
            // round's extension, never an older one.
            let end = again["claims"]["end"].as_str().and_then(protocol::time::parse_date);
            assert!(end == Some(first + round - 1) || end == Some(first + round), "round {round}: {again}");
        }
    }
}
