//! Every list of the Web API comes in pages: `limit` items after the `after` cursor, and a
//! `Link: <…>; rel="next"` to the next page. Walking the pages yields the same items as one
//! large page, filters carry over, a change between two pages neither repeats nor skips an
//! item, and a bad `limit` or a made-up cursor is refused clearly without a 5xx.

use crate::both_backends;
use crate::helpers::*;
use crate::manage::{product_body, token, Api};
use protocol::activation::fingerprint;
use protocol::borrow::{secret_hash, MobileSettings};
use reqwest::StatusCode;
use serde_json::{json, Value};

const FP: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Where a page's items are in its body.
type Items = fn(&Value) -> Vec<Value>;

/// The items of every page from `first` on, following the `Link`s; and how many pages.
async fn walk(api: &Api, first: &str, items_of: Items) -> (Vec<Value>, usize) {
    let (mut items, mut pages, mut next) = (Vec::new(), 0, Some(first.to_owned()));
    while let Some(path) = next {
        let (status, body, link) = api.page(&path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        items.extend(items_of(&body));
        pages += 1;
        assert!(pages < 100, "{first}: the links go round in circles");
        next = link;
    }
    (items, pages)
}

fn array(body: &Value) -> Vec<Value> {
    body.as_array().cloned().expect("a JSON array")
}

fn entries(body: &Value) -> Vec<Value> {
    array(&body["entries"])
}

/// `path` with `limit` added to its query.
fn limited(path: &str, limit: i64) -> String {
    let join = if path.contains('?') { '&' } else { '?' };
    format!("{path}{join}limit={limit}")
}

async fn created(api: &Api, path: &str, body: Value) -> Value {
    let (status, made) = api.post(path, body).await;
    assert_eq!(status, StatusCode::CREATED, "{path}: {made}");
    made
}

both_backends! {
    async fn every_list_walks_page_by_page_to_the_same_items_as_one_page(app) {
        let admin = app.admin().await;
        let api = token(&app, &admin, "pages", "write").await;
        for code in ["P3", "P1", "P2"] {
            created(&api, "/api/v1/products", product_body(code)).await;
        }
        let (_, products) = api.get("/api/v1/products").await;
        let product = products[0]["id"].clone();
        // Names that sort differently by case: the list folds it.
        let mut clients = Vec::new();
        for name in ["beta", "Acme", "Cobalt"] {
            clients.push(created(&api, "/api/v1/clients", json!({"name": name})).await["id"].clone());
        }
        let (acme, beta) = (&clients[1], &clients[0]);
        let mut orders = Vec::new();
        for (client, quantity) in [(acme, 5), (acme, 1), (beta, 1), (acme, 1)] {
            let body = json!({"client_id": client, "product_id": product, "quantity": quantity});
            orders.push(created(&api, "/api/v1/orders", body).await["id"].clone());
        }
        let (_, licences) = api.get(&format!("/api/v1/orders/{}/licences", orders[0])).await;
        for (i, licence) in array(&licences).iter().take(3).enumerate() {
            let host = format!("ws-{i}");
            let body = json!({"licence_key": licence["key"], "fingerprint": fingerprint("P1", &host), "hostname": host});
            let (status, act, _) = api_post(&app, "/api/v1/activations", body).await;
            assert_eq!(status, StatusCode::CREATED, "{act}");
        }
        let mut batches = Vec::new();
        for count in [5, 1, 1] {
            let body = json!({"product_id": product, "count": count});
            batches.push(created(&api, "/api/v1/serial-batches", body).await["id"].clone());
        }
        let mut pools = Vec::new();
        for name in ["Office", "Lab", "Annex"] {
            pools.push(created(&api, "/api/v1/pools", json!({"client_id": acme, "name": name})).await);
        }
        let pool_id = pools[0]["id"].as_i64().expect("pool id");
        for feature in ["H", "F", "G"] {
            let key = json!({"editor": "Vendor", "feature": feature, "model": "ConcurrentUser", "quantity": 5});
            created(&api, &format!("/api/v1/pools/{pool_id}/keys"), key).await;
        }
        for (feature, also) in [("G", "H"), ("F", "H"), ("F", "G")] {
            let bundle = json!({"feature": feature, "also_feature": also});
            created(&api, &format!("/api/v1/pools/{pool_id}/bundles"), bundle).await;
        }
        let services_admin = app.services.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD, "t", None).await.expect("admin").user;
        let lend = MobileSettings { allowed: true, max_borrow_days: Some(5) };
        app.services.set_mobile(&services_admin, pool_id, &lend).await.expect("lend");
        for user in ["cy", "ann", "bob"] {
            let checkout = json!({"pool_key": pools[0]["access_key"], "feature": "H", "user": user, "host": user, "process": "cad"});
            let (status, seat, _) = api_post(&app, "/api/v1/seats", checkout).await;
            assert_eq!(status, StatusCode::CREATED, "{seat}");
            let borrow = json!({"lease_token": seat["lease_token"], "fingerprint": FP, "days": 2, "return_hash": secret_hash("secret")});
            let (status, lent, _) = api_post(&app, &format!("/api/v1/seats/{}/borrow", seat["seat_id"]), borrow).await;
            assert_eq!(status, StatusCode::OK, "{lent}");
        }

        for port in [9, 10, 11] {
            let hook = json!({"url": format!("http://127.0.0.1:{port}/hook"), "events": ["serial.revoked"]});
            created(&api, "/api/v1/webhooks", hook).await;
        }

        let lists: Vec<(String, Items)> = vec![
            ("/api/v1/products".into(), array),
            ("/api/v1/clients".into(), array),
            ("/api/v1/clients?sort=created".into(), array),
            ("/api/v1/orders".into(), array),
            (format!("/api/v1/orders?client_id={acme}"), array),
            ("/api/v1/orders?sort=client&order=asc".into(), array),
            (format!("/api/v1/orders/{}/licences", orders[0]), array),
            ("/api/v1/activations".into(), array),
            ("/api/v1/licences".into(), array),
            ("/api/v1/licences?sort=client&order=asc".into(), array),
            ("/api/v1/serial-batches".into(), array),
            ("/api/v1/serials".into(), array),
            (format!("/api/v1/serials?batch_id={}", batches[0]), array),
            ("/api/v1/pools".into(), array),
            (format!("/api/v1/pools/{pool_id}/keys"), array),
            (format!("/api/v1/pools/{pool_id}/bundles"), array),
            ("/api/v1/usage".into(), array),
            (format!("/api/v1/pools/{pool_id}/usage/Vendor/H"), array),
            (format!("/api/v1/pools/{pool_id}/mobile-licences"), array),
            ("/api/v1/audit".into(), entries),
            ("/api/v1/webhooks".into(), array),
        ];
        for (path, items_of) in lists {
            let (status, whole, last) = api.page(&limited(&path, 500)).await;
            assert_eq!(status, StatusCode::OK, "{path}: {whole}");
            assert_eq!(last, None, "{path}: everything fits one page of 500");
            let whole = items_of(&whole);
            assert!(whole.len() >= 3, "{path}: {} items", whole.len());
            let (paged, pages) = walk(&api, &limited(&path, 2), items_of).await;
            assert_eq!(paged, whole, "{path}: the pages hold the same items in the same order");
            assert_eq!(pages, whole.len().div_ceil(2), "{path}: pages of two, the last one not empty");
        }

        // The lists' orders: by code, by name whatever the case, newest first; filters carry
        // over into the next page's link.
        let (all, _) = walk(&api, &limited("/api/v1/products", 1), array).await;
        let codes: Vec<_> = all.iter().map(|p| p["code"].as_str().unwrap_or_default()).collect();
        assert_eq!(codes, ["P1", "P2", "P3"]);
        let (all, _) = walk(&api, &limited("/api/v1/clients", 1), array).await;
        let names: Vec<_> = all.iter().map(|c| c["name"].as_str().unwrap_or_default()).collect();
        assert_eq!(names, ["Acme", "beta", "Cobalt"]);
        // Z–A, newest first, and searched (any case, the contact and notes too).
        let (all, _) = walk(&api, &limited("/api/v1/clients?sort=name&order=desc", 1), array).await;
        let names: Vec<_> = all.iter().map(|c| c["name"].as_str().unwrap_or_default()).collect();
        assert_eq!(names, ["Cobalt", "beta", "Acme"]);
        let (all, _) = walk(&api, &limited("/api/v1/clients?sort=created", 1), array).await;
        assert_eq!(all.iter().map(|c| c["id"].clone()).collect::<Vec<_>>(), [clients[2].clone(), clients[1].clone(), clients[0].clone()]);
        let (found, _) = walk(&api, "/api/v1/clients?q=OBA", array).await;
        assert_eq!(found.iter().map(|c| c["name"].clone()).collect::<Vec<_>>(), ["Cobalt"]);
        // The contact and notes are searched too, and a name in any case of any alphabet.
        created(&api, "/api/v1/clients", json!({"name": "École Zèbre", "contact_email": "ops@delta.test", "notes": "Key account"})).await;
        for q in ["DELTA", "key%20ACC", "%C3%A9cole", "Z%C3%88BRE"] {
            let (found, _) = walk(&api, &format!("/api/v1/clients?q={q}"), array).await;
            assert_eq!(found.iter().map(|c| c["name"].clone()).collect::<Vec<_>>(), ["École Zèbre"], "{q}");
        }
        // A cursor of one sort is not a place in another.
        let (_, _, by_name) = api.page("/api/v1/clients?limit=1").await;
        let after = by_name.and_then(|l| l.split("after=").nth(1).map(str::to_owned)).expect("a cursor");
        let (st, refused) = api.get(&format!("/api/v1/clients?sort=created&after={after}")).await;
        assert_eq!((st, refused["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("after")), "{refused}");
        let (st, refused) = api.get("/api/v1/clients?sort=size").await;
        assert_eq!((st, refused["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("sort")));
        let (all, _) = walk(&api, &limited(&format!("/api/v1/orders?client_id={acme}"), 1), array).await;
        let ids: Vec<_> = all.iter().map(|o| o["id"].clone()).collect();
        assert_eq!(ids, [orders[3].clone(), orders[1].clone(), orders[0].clone()], "Acme's, newest first");
        // Sorted by client (case folded), the same client's newest last going up; searched by a
        // part of the client's name in any case; another product's none.
        let (all, _) = walk(&api, &limited("/api/v1/orders?sort=client&order=asc", 1), array).await;
        let names: Vec<_> = all.iter().map(|o| o["client_name"].as_str().unwrap_or_default()).collect();
        assert_eq!(names, ["Acme", "Acme", "Acme", "beta"]);
        assert_eq!(all[0]["id"], orders[0], "ties by id, in the sort's direction");
        let (found, _) = walk(&api, "/api/v1/orders?q=BET", array).await;
        assert_eq!(found.iter().map(|o| o["id"].clone()).collect::<Vec<_>>(), [orders[2].clone()]);
        let (by_number, _) = walk(&api, &format!("/api/v1/orders?q=%23{}", orders[1]), array).await;
        assert_eq!(by_number.iter().map(|o| o["id"].clone()).collect::<Vec<_>>(), [orders[1].clone()], "#N finds order N");
        let (none, _) = walk(&api, "/api/v1/orders?product=P2", array).await;
        assert!(none.is_empty());
        let (all, _) = walk(&api, &limited(&format!("/api/v1/serials?batch_id={}", batches[0]), 2), array).await;
        assert_eq!(all.len(), 5, "the batch's serials only");
        assert!(all.iter().all(|s| s["batch_id"] == batches[0]));
    }

    async fn a_page_holds_a_hundred_unless_asked_and_every_page_stays_masked(app) {
        let admin = app.admin().await;
        let api = token(&app, &admin, "pages", "write").await;
        let product = created(&api, "/api/v1/products", product_body("P")).await["id"].clone();
        let client = created(&api, "/api/v1/clients", json!({"name": "Acme"})).await["id"].clone();
        let order = created(&api, "/api/v1/orders", json!({"client_id": client, "product_id": product, "quantity": 150})).await;
        let path = format!("/api/v1/orders/{}/licences", order["id"]);
        let (_, first, next) = api.page(&path).await;
        assert_eq!(array(&first).len(), 100);
        let (_, second, last) = api.page(&next.expect("a second page")).await;
        assert_eq!((array(&second).len(), last), (50, None));
        assert!(array(&first).iter().chain(array(&second).iter()).all(|l| !l["key"].as_str().unwrap_or("…").ends_with('…')));
        // A read-only token walking the same list sees every key masked, on every page.
        let reader = token(&app, &admin, "reader", "read").await;
        let (keys, pages) = walk(&reader, &limited(&path, 40), array).await;
        assert_eq!((keys.len(), pages), (150, 4));
        assert!(keys.iter().all(|l| l["key"].as_str().is_some_and(|k| k.ends_with('…'))), "masked");
    }

    async fn the_longest_names_page_and_a_request_sent_unencoded_keeps_its_link(app) {
        let admin = app.admin().await;
        let api = token(&app, &admin, "pages", "write").await;
        // Names of the longest kind: 120 characters of four UTF-8 bytes each.
        for last in ["a", "b", "c"] {
            let name = format!("{}{last}", "𝄞".repeat(119));
            created(&api, "/api/v1/clients", json!({"name": name})).await;
        }
        let (all, pages) = walk(&api, "/api/v1/clients?limit=1", array).await;
        assert_eq!((all.len(), pages), (3, 3));
        let pool = created(&api, "/api/v1/pools", json!({"client_id": all[0]["id"]})).await;
        let long = |c: char| format!("{}{c}", "語".repeat(99));
        for feature in [long('x'), long('y'), long('z')] {
            let key = json!({"editor": long('e'), "feature": feature, "model": "ConcurrentUser", "quantity": 1});
            created(&api, &format!("/api/v1/pools/{}/keys", pool["id"]), key).await;
        }
        let (usage, pages) = walk(&api, "/api/v1/usage?limit=1", array).await;
        assert_eq!((usage.len(), pages), (3, 3));
        // UTF-8 sent as it is in the query: the next page's link is still there, in ASCII.
        let head = api.raw_head("/api/v1/clients?limit=1&unused=é".as_bytes()).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let link = head.lines().find(|l| l.to_ascii_lowercase().starts_with("link:")).expect("a Link");
        assert!(link.is_ascii() && link.contains("unused=%C3%A9") && link.contains("after="), "{link}");
    }

    async fn a_change_between_two_pages_neither_repeats_nor_skips_an_item(app) {
        let admin = app.admin().await;
        let api = token(&app, &admin, "pages", "write").await;
        let product = created(&api, "/api/v1/products", product_body("P")).await["id"].clone();
        let client = created(&api, "/api/v1/clients", json!({"name": "Acme"})).await["id"].clone();
        let order = json!({"client_id": client, "product_id": product, "quantity": 1});
        let mut ids = Vec::new();
        for _ in 0..4 {
            ids.push(created(&api, "/api/v1/orders", order.clone()).await["id"].clone());
        }
        let (_, first, next) = api.page("/api/v1/orders?limit=2").await;
        assert_eq!(array(&first).iter().map(|o| o["id"].clone()).collect::<Vec<_>>(), [ids[3].clone(), ids[2].clone()]);
        // A new order (it sorts first) and one of the first page deleted: an offset would now
        // show the first page's last order again.
        created(&api, "/api/v1/orders", order.clone()).await;
        let (status, _) = api.call(reqwest::Method::DELETE, &format!("/api/v1/orders/{}", ids[3]), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (_, second, last) = api.page(&next.expect("a second page")).await;
        assert_eq!(array(&second).iter().map(|o| o["id"].clone()).collect::<Vec<_>>(), [ids[1].clone(), ids[0].clone()]);
        assert_eq!(last, None);
    }

    async fn a_bad_limit_or_a_made_up_cursor_is_refused_clearly(app) {
        let admin = app.admin().await;
        let api = token(&app, &admin, "pages", "write").await;
        for name in ["Acme", "Beta", "Cobalt"] {
            created(&api, "/api/v1/clients", json!({"name": name})).await;
        }
        let before = api.get("/api/v1/clients").await.1;
        let (_, _, next) = api.page("/api/v1/clients?limit=1").await;
        let client_cursor = next.expect("a next page").rsplit_once("after=").expect("after").1.to_owned();
        let long = "A".repeat(601);
        let refusals = [
            ("/api/v1/clients?limit=0", StatusCode::UNPROCESSABLE_ENTITY, "limit"),
            ("/api/v1/clients?limit=-1", StatusCode::UNPROCESSABLE_ENTITY, "limit"),
            ("/api/v1/clients?limit=501", StatusCode::UNPROCESSABLE_ENTITY, "limit"),
            ("/api/v1/audit?limit=100000", StatusCode::UNPROCESSABLE_ENTITY, "limit"),
            ("/api/v1/pools/1/keys?limit=0", StatusCode::UNPROCESSABLE_ENTITY, "limit"),
            ("/api/v1/clients?after=not%20a%20cursor", StatusCode::UNPROCESSABLE_ENTITY, "after"),
            ("/api/v1/clients?after=e30", StatusCode::UNPROCESSABLE_ENTITY, "after"), // `{}`
            ("/api/v1/usage?after=WzFd", StatusCode::UNPROCESSABLE_ENTITY, "after"), // `[1]`
            (&format!("/api/v1/clients?after={long}"), StatusCode::UNPROCESSABLE_ENTITY, "after"),
            // One list's cursor is not another's key.
            (&format!("/api/v1/orders?after={client_cursor}"), StatusCode::UNPROCESSABLE_ENTITY, "after"),
            (&format!("/api/v1/activations?after={client_cursor}"), StatusCode::UNPROCESSABLE_ENTITY, "after"),
        ];
        for (path, status, field) in refusals {
            let (got, body) = api.get(path).await;
            assert_eq!(got, status, "{path}: {body}");
            assert_eq!(body["field"], field, "{path}: {body}");
            assert!(body["detail"].as_str().is_some_and(|d| d.len() > 20), "{path}: {body}");
        }
        for path in ["/api/v1/clients?limit=ten", "/api/v1/clients?limit=1&limit=2", "/api/v1/clients?after=%00"] {
            let (got, body) = api.get(path).await;
            assert!(got.is_client_error(), "{path}: {got} {body}");
        }
        assert_eq!(api.get("/api/v1/clients").await.1, before, "nothing changed");
    }

    async fn a_cursor_never_widens_what_a_token_may_see(app) {
        let admin = app.admin().await;
        let api = token(&app, &admin, "pages", "write").await;
        let product = created(&api, "/api/v1/products", product_body("P")).await["id"].clone();
        let (acme_id, carla) = app.client_user(&admin, "Acme", "carla@acme.test").await;
        let other = created(&api, "/api/v1/clients", json!({"name": "Other"})).await["id"].clone();
        for (client, host) in [(json!(acme_id), "acme-1"), (other.clone(), "other-1"), (json!(acme_id), "acme-2"), (other, "other-2")] {
            let order = created(&api, "/api/v1/orders", json!({"client_id": client, "product_id": product, "quantity": 1})).await;
            let (_, licences) = api.get(&format!("/api/v1/orders/{}/licences", order["id"])).await;
            let body = json!({"licence_key": licences[0]["key"], "fingerprint": fingerprint("P", host), "hostname": host});
            assert_eq!(api_post(&app, "/api/v1/activations", body).await.0, StatusCode::CREATED);
        }
        // The administrator's cursor, taken after the newest activation (Other's), handed to
        // Acme's own token: it pages Acme's activations and nothing else.
        let (_, _, next) = api.page("/api/v1/activations?limit=1").await;
        let cursor = next.expect("next").rsplit_once("after=").expect("after").1.to_owned();
        let own = token(&app, &carla, "acme", "read").await;
        let (all, _) = walk(&own, &format!("/api/v1/activations?limit=1&after={cursor}"), array).await;
        let hosts: Vec<_> = all.iter().map(|a| a["activation"]["hostname"].as_str().unwrap_or_default()).collect();
        assert_eq!(hosts, ["acme-2", "acme-1"]);
        for path in ["/api/v1/clients?limit=1", "/api/v1/products?limit=1", "/api/v1/serial-batches?limit=1"] {
            assert_eq!(own.get(path).await.0, StatusCode::FORBIDDEN, "{path}");
        }
    }
}
