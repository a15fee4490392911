//! Every list exports as CSV, through the API and the portal: clients, orders, an order's
//! licences, serials and floating usage. Each export is the caller's own view (a client user's
//! holds their organisation's rows only), keys are masked for a read-only token, serial numbers
//! need a read-write one, and exporting secrets whole is recorded.

use crate::both_backends;
use crate::helpers::*;
use crate::manage::year_token;
use licensing::catalog::OrderInput;
use protocol::activation::fingerprint;
use protocol::catalog::LicensingSettings;
use reqwest::StatusCode;
use serde_json::json;

/// `path` fetched with a bearer token, a signed-in browser's cookies, or neither.
async fn download(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    browser: Option<&Browser>,
) -> (StatusCode, String) {
    let client = browser.map_or_else(reqwest::Client::new, |b| b.client.clone());
    let mut req = client.get(format!("{}{path}", app.base_url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.expect("csv");
    let status = res.status();
    if status == StatusCode::OK {
        let kind = res.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap_or("");
        assert!(kind.starts_with("text/csv"), "{path}: {kind}");
        let disposition = res.headers()[reqwest::header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap_or("");
        assert!(
            disposition.starts_with("attachment; filename=\""),
            "{path}: {disposition}"
        );
    }
    (status, res.text().await.expect("body"))
}

async fn audit_count(app: &TestApp, admin: &licensing::CurrentUser, action: &str) -> usize {
    let q = protocol::audit::AuditQuery {
        action: Some(action.into()),
        ..Default::default()
    };
    app.services
        .audit_log(admin, &q)
        .await
        .expect("audit")
        .entries
        .len()
}

both_backends! {
    async fn every_list_exports_as_csv_in_the_callers_own_view(app) {
        let f = fixture(&app, LicensingSettings { max_activations: 3, ..Default::default() }, 2).await;
        let admin = app.admin().await;
        // A client whose name a spreadsheet would run as a formula, with an order of its own.
        let (globex, gil) = app.client_user(&admin, "=HYPERLINK(\"x\")", "gil@globex.test").await;
        let calc = app.services.list_products(&f.admin, &licensing::page::Page::ALL).await.expect("products").items[0].id;
        let theirs = app.services.create_order(&f.admin, OrderInput { client_id: globex, product_id: calc, quantity: 1, reference: "G-7".into(), features: None, counters: None, notes: String::new() }).await.expect("order");
        let (st, act, _) = api_post(&app, "/api/v1/activations", json!({"licence_key": f.keys[0], "fingerprint": fingerprint("CALC", "ws-1"), "hostname": "ws-1"})).await;
        assert_eq!(st, StatusCode::CREATED, "{act}");
        let order = app.services.list_orders(&f.admin, &Default::default(), &licensing::page::Page::ALL).await.expect("orders").items.into_iter().find(|o| o.reference == "PO-1").expect("Acme's order");
        let api = year_token(&app, &admin, "exports").await;
        let write = crate::manage::token(&app, &admin, "writer", "write").await;
        let carla = app.browser();
        carla.sign_in("carla@acme.test", "client password 123").await.ok();

        // Clients: administrators only.
        let (st, clients) = download(&app, "/api/v1/clients.csv", Some(api.token()), None).await;
        assert_eq!(st, StatusCode::OK, "{clients}");
        let lines: Vec<&str> = clients.lines().collect();
        assert_eq!(lines[0], "client_id,name,contact_email,users,orders,licences_on_machines,created_at_utc,notes");
        assert_eq!(lines.len(), 3, "{clients}");
        assert!(lines[1].contains(",\"'=HYPERLINK(\"\"x\"\")\","), "a formula stays text: {clients}");
        assert!(lines[2].contains(",Acme,") && lines[2].contains(",1,1,1,"), "one user, one order, one licence on a machine: {clients}");
        assert_eq!(download(&app, "/clients.csv", None, Some(&admin)).await, (StatusCode::OK, clients.clone()));
        assert_eq!(download(&app, "/clients.csv", None, Some(&carla)).await.0, StatusCode::FORBIDDEN);
        let (_, acme_only) = download(&app, "/api/v1/clients.csv?q=acm", Some(api.token()), None).await;
        assert_eq!(acme_only.lines().count(), 2, "the list's search: {acme_only}");
        assert_eq!(download(&app, "/clients.csv", None, None).await.0, StatusCode::UNAUTHORIZED);

        // Orders: newest first, filtered by client; a client user's hold their own only.
        let (st, orders) = download(&app, "/api/v1/orders.csv", Some(api.token()), None).await;
        assert_eq!(st, StatusCode::OK, "{orders}");
        let lines: Vec<&str> = orders.lines().collect();
        assert_eq!(lines[0], "order_id,client,product,reference,quantity,licences_on_machines,features,counters,created_at_utc,notes");
        assert_eq!(lines.len(), 3, "{orders}");
        assert!(lines[1].starts_with(&format!("{},", theirs.id)) && lines[2].contains(",Acme,CALC,PO-1,2,1,"), "{orders}");
        let (_, acme_only) = download(&app, &format!("/api/v1/orders.csv?client_id={}", order.client_id), Some(api.token()), None).await;
        assert_eq!(acme_only.lines().count(), 2, "{acme_only}");
        let (st, own) = download(&app, "/orders.csv", None, Some(&carla)).await;
        assert_eq!(st, StatusCode::OK);
        assert!(own.contains("PO-1") && !own.contains("G-7"), "{own}");
        let (_, gil_own) = download(&app, "/orders.csv", None, Some(&gil)).await;
        assert!(gil_own.contains("G-7") && !gil_own.contains("PO-1"), "{gil_own}");
        assert_eq!(download(&app, "/api/v1/orders.csv?client_id=x", Some(api.token()), None).await.0, StatusCode::BAD_REQUEST);

        // An order's licences: keys whole for a read-write token (recorded), masked for a
        // read-only one; another client's order is not theirs to export.
        let path = format!("/api/v1/orders/{}/licences.csv", order.id);
        let reveals = audit_count(&app, &f.admin, "secret.reveal").await;
        let (st, masked) = download(&app, &path, Some(api.token()), None).await;
        assert_eq!(st, StatusCode::OK, "{masked}");
        let lines: Vec<&str> = masked.lines().collect();
        assert_eq!(lines[0], "licence_id,licence_key,features,counters,expires_on,activations,machine,mode,activated_at_utc,last_validated_at_utc");
        assert_eq!(lines.len(), 3, "{masked}");
        assert!(!masked.contains(&f.keys[0]) && masked.contains('…'), "masked: {masked}");
        assert!(lines[1].contains(",ws-1,online,"), "the machine holding it: {masked}");
        assert_eq!(audit_count(&app, &f.admin, "secret.reveal").await, reveals, "nothing shown whole");
        let (_, whole) = download(&app, &path, Some(write.token()), None).await;
        assert!(whole.contains(&f.keys[0]) && whole.contains(&f.keys[1]), "{whole}");
        assert_eq!(audit_count(&app, &f.admin, "secret.reveal").await, reveals + 1, "recorded");
        let portal_path = format!("/orders/{}/licences.csv", order.id);
        assert_eq!(download(&app, &portal_path, None, Some(&carla)).await, (StatusCode::OK, whole.clone()));
        let (st, _) = download(&app, &portal_path, None, Some(&gil)).await;
        assert!(st == StatusCode::NOT_FOUND || st == StatusCode::FORBIDDEN, "{st}");

        // Serials: whole numbers, so a read-write token's; each export is in the audit log.
        let (st, batch) = write.post("/api/v1/serial-batches", json!({"product_id": calc, "count": 3})).await;
        assert_eq!(st, StatusCode::CREATED, "{batch}");
        let exports = audit_count(&app, &f.admin, "serials.export").await;
        let (st, serials) = download(&app, "/api/v1/serials.csv", Some(write.token()), None).await;
        assert_eq!(st, StatusCode::OK, "{serials}");
        let lines: Vec<&str> = serials.lines().collect();
        assert_eq!(lines[0], "serial,product,features,licences,status,replaced_by,on_machines,machines,created_at_utc");
        assert_eq!(lines.len(), 4, "{serials}");
        assert!(lines.iter().skip(1).all(|l| l.contains(",CALC,") && l.contains(",valid,")), "{serials}");
        assert_eq!(audit_count(&app, &f.admin, "serials.export").await, exports + 1);
        let first = lines[1].split(',').next().expect("serial").to_owned();
        let (_, found) = download(&app, &format!("/api/v1/serials.csv?search={}", &first[..9]), Some(write.token()), None).await;
        assert_eq!(found.lines().count(), 2, "{found}");
        let (st, _) = download(&app, "/api/v1/serials.csv", Some(api.token()), None).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "a read-only token exports no serials");
        let (st, portal) = download(&app, &format!("/serials.csv?batch_id={}", batch["id"]), None, Some(&admin)).await;
        assert_eq!((st, portal.lines().count()), (StatusCode::OK, 4), "{portal}");
        assert_eq!(download(&app, "/serials.csv", None, Some(&carla)).await.0, StatusCode::FORBIDDEN);
        assert_eq!(audit_count(&app, &f.admin, "serials.export").await, exports + 3, "every export, and only those that happened");

        // Usage per feature: a client user's holds their own pools.
        let (st, pool) = write.post("/api/v1/pools", json!({"client_id": order.client_id, "name": "Office"})).await;
        assert_eq!(st, StatusCode::CREATED, "{pool}");
        let key = json!({"editor": "Vendor", "feature": "CAD", "model": "ConcurrentUser", "quantity": 5});
        assert_eq!(write.post(&format!("/api/v1/pools/{}/keys", pool["id"]), key).await.0, StatusCode::CREATED);
        let (st, seat, _) = api_post(&app, "/api/v1/seats", json!({"pool_key": pool["access_key"], "feature": "CAD", "user": "ann", "host": "ws-9", "process": "cad"})).await;
        assert_eq!(st, StatusCode::CREATED, "{seat}");
        let (st, usage) = download(&app, "/api/v1/usage.csv", Some(api.token()), None).await;
        assert_eq!(st, StatusCode::OK, "{usage}");
        let lines: Vec<&str> = usage.lines().collect();
        assert_eq!(lines[0], "editor,feature,commercial_type,pool_id,owner,in_use,count,on_mobile_licences,refused_today");
        assert_eq!(lines[1], format!("Vendor,CAD,STD,{},Acme,1,5,0,0", pool["id"]));
        assert_eq!(download(&app, "/usage.csv", None, Some(&carla)).await, (StatusCode::OK, usage.clone()));
        // A serial's pool is owned by its serial number: whole for a read-write token (and
        // recorded), masked for a read-only one.
        let (_, listed) = write.get(&format!("/api/v1/serials?batch_id={}", batch["id"])).await;
        let serial = listed[0]["serial"].as_str().expect("serial").to_owned();
        let (st, web_pool) = write.post("/api/v1/pools", json!({"serial_id": listed[0]["id"]})).await;
        assert_eq!(st, StatusCode::CREATED, "{web_pool}");
        let key = json!({"editor": "Vendor", "feature": "WEB", "model": "ConcurrentUser", "quantity": 2});
        assert_eq!(write.post(&format!("/api/v1/pools/{}/keys", web_pool["id"]), key).await.0, StatusCode::CREATED);
        let (_, masked) = download(&app, "/api/v1/usage.csv", Some(api.token()), None).await;
        assert!(!masked.contains(&serial) && masked.contains(&format!(",{},{}…,", web_pool["id"], &serial[..4])), "{masked}");
        let reveals = audit_count(&app, &f.admin, "secret.reveal").await;
        let (_, whole) = download(&app, "/api/v1/usage.csv", Some(write.token()), None).await;
        assert!(whole.contains(&format!(",{},{serial},", web_pool["id"])), "{whole}");
        assert_eq!(audit_count(&app, &f.admin, "secret.reveal").await, reveals + 1);
        let (st, none) = download(&app, "/usage.csv", None, Some(&gil)).await;
        assert_eq!((st, none.lines().count()), (StatusCode::OK, 1), "only the header: {none}");
    }
}
