//! The Activation Center's server functions as the portal's forms call them: field names, access
//! rules and refusals in words.

use crate::both_backends;
use crate::helpers::*;
use reqwest::StatusCode;

async fn new_product(admin: &Browser, limited: bool) -> serde_json::Value {
    let mut form = vec![
        ("form[code]", "calc"),
        ("form[name]", "Calc"),
        ("form[editor]", "Vendor"),
        ("form[release_number]", "2026"),
        ("form[release_date]", "2026-01-15"),
        ("form[features]", "print: Printing\nexport: Export"),
        ("form[default_features]", "print"),
        ("form[default_counters]", "users = 5"),
        ("form[validity_days]", "30"),
        ("form[max_activations]", "3"),
    ];
    if limited {
        form.push(("form[limited]", "on"));
    } else {
        form.push(("form[end_user_removal]", "on"));
    }
    admin.rpc("save_product", &form).await.ok()
}

both_backends! {
    async fn products_orders_and_licences_through_the_portal(app) {
        let admin = app.admin().await;
        let (client_id, carla) = app.client_user(&admin, "Acme", "carla@acme.test").await;
        let product = new_product(&admin, false).await;
        assert_eq!(product["code"], "CALC");
        assert_eq!(product["settings"]["end_user_removal"], true);
        assert_eq!(product["default_counters"]["users"], 5);
        let pid = product["id"].as_i64().expect("id").to_string();

        let dup = admin.rpc("save_product", &[("form[code]", "CALC"), ("form[name]", "Again")]).await;
        assert_eq!(dup.status, StatusCode::CONFLICT);
        assert_eq!(dup.message(), "A product with the code CALC already exists.");
        let bad = admin.rpc("save_product", &[("form[code]", "X"), ("form[name]", "X"), ("form[default_counters]", "users")]).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(bad.message(), "Write each counter as name = value (\u{201c}users\u{201d}).");

        let order = admin.rpc("create_order", &[("client_id", &client_id.to_string()), ("product_id", &pid), ("quantity", "2"), ("reference", "PO-7")]).await.ok();
        let oid = order["id"].as_i64().expect("id").to_string();
        assert_eq!(order["quantity"], 2);
        assert_eq!(order["features"], serde_json::json!(["print"]));

        let updated = admin.rpc("update_order", &[("id", oid.as_str()), ("features[]", "print"), ("features[]", "export"), ("counter_name[]", "users"), ("counter_value[]", "7"), ("reference", "PO-7b"), ("notes", "")]).await.ok();
        assert_eq!(updated["features"], serde_json::json!(["print", "export"]));
        assert_eq!(updated["counters"]["users"], 7);
        // The portal's counter rows: a blank row dropped, a name twice refused with nothing changed.
        let rows = admin.rpc("update_order", &[("id", oid.as_str()), ("features[]", "print"), ("features[]", "export"), ("counter_name[]", "users"), ("counter_value[]", "9"), ("counter_name[]", ""), ("counter_value[]", ""), ("counter_name[]", "seats"), ("counter_value[]", "3"), ("reference", "PO-7b"), ("notes", "")]).await.ok();
        assert_eq!(rows["counters"], serde_json::json!({"seats": 3, "users": 9}));
        let twice = admin.rpc("update_order", &[("id", oid.as_str()), ("counter_name[]", "users"), ("counter_value[]", "1"), ("counter_name[]", "users"), ("counter_value[]", "2"), ("reference", "PO-7b"), ("notes", "")]).await;
        assert_eq!(twice.status, reqwest::StatusCode::UNPROCESSABLE_ENTITY);
        assert!(twice.body.to_string().contains("given twice"), "{}", twice.body);
        let none = admin.rpc("update_order", &[("id", oid.as_str()), ("reference", ""), ("notes", "")]).await.ok();
        assert_eq!(none["features"], serde_json::json!([]), "no box ticked: no features");

        admin.rpc("update_order", &[("id", oid.as_str()), ("reference", ""), ("notes", "internal: pays late")]).await.ok();
        admin.rpc("update_client", &[("id", &client_id.to_string()), ("client[name]", "Acme"), ("client[contact_email]", ""), ("client[notes]", "internal: key account")]).await.ok();

        // The client user sees its order and licences (not the vendor's notes), and may not change them.
        let page = carla.rpc("get_order_page", &[("id", &oid)]).await.ok();
        assert_eq!(page["order"]["notes"], "");
        assert_eq!(carla.rpc("orders_page", &[]).await.ok()["rows"][0]["notes"], "");
        assert_eq!(carla.rpc("my_client", &[]).await.ok()["client"]["notes"], "");
        assert_eq!(admin.rpc("get_order_page", &[("id", &oid)]).await.ok()["order"]["notes"], "internal: pays late");
        assert_eq!(page["licences"].as_array().map(Vec::len), Some(2));
        assert_eq!(carla.rpc("orders_page", &[]).await.ok()["total"], 1);
        for (name, form) in [
            ("update_order", vec![("id", oid.as_str()), ("reference", ""), ("notes", "")]),
            ("delete_order", vec![("id", oid.as_str())]),
            ("list_products", vec![]),
            ("edit_licence", vec![("licence_id", "1"), ("expires_on", "")]),
        ] {
            assert_eq!(carla.rpc(name, &form).await.error(), "NotAllowed", "{name}");
        }

        // Another client sees none of it.
        let (_, gus) = app.client_user(&admin, "Globex", "gus@globex.test").await;
        assert_eq!(gus.rpc("get_order_page", &[("id", &oid)]).await.error(), "NotAllowed");
        assert_eq!(gus.rpc("orders_page", &[]).await.ok()["total"], 0);
        assert_eq!(gus.rpc("orders_page", &[("filter[client_id]", &client_id.to_string())]).await.error(), "NotAllowed", "another client's orders by name");
        assert_eq!(gus.rpc("remove_activation", &[("licence_id", "1")]).await.error(), "NotAllowed");
        let key = page["licences"][0]["key"].as_str().expect("key");
        let request = protocol::activation::Request { prd: "CALC".into(), key: key.into(), fp: protocol::activation::fingerprint("CALC", "m"), host: "m".into(), nonce: "abc".into(), t: 0 };
        assert_eq!(gus.rpc("answer_request", &[("request_code", &request.encode())]).await.error(), "NotAllowed");

        // Overriding the terms is for administrators only.
        let code = request.encode();
        let overriding = [("request_code", code.as_str()), ("override_terms", "on"), ("features", "export"), ("counter_name[]", "users"), ("counter_value[]", "1"), ("expires_on", "")];
        assert_eq!(carla.rpc("answer_request", &overriding).await.error(), "NotAllowed");
        let with_overrides = admin.rpc("answer_request", &overriding).await.ok();
        let jwks = app.services.jwks().await.expect("jwks");
        let claims = protocol::activation::verify_signature(with_overrides.as_str().expect("code"), &jwks).expect("valid");
        assert_eq!((claims.feat, claims.cnt["users"]), (vec!["export".to_owned()], 1));
        // Removed without the machine: freed at once only when the administrator asks.
        let removal = admin.rpc("remove_activation", &[("licence_id", &page["licences"][0]["id"].to_string())]).await.ok();
        assert!(removal["frees_at"].as_i64().is_some(), "{removal}");
        admin.rpc("free_licence_now", &[("licence_id", &page["licences"][0]["id"].to_string())]).await.ok();

        // Overrides for an activation that fails leave the licence as it was.
        app.services.activate(key, &protocol::activation::fingerprint("CALC", "elsewhere"), "elsewhere", licensing::activation::Channel::Online).await.expect("bound elsewhere");
        let other_machine = protocol::activation::Request { nonce: "xyz".into(), ..request.clone() };
        let other_code = other_machine.encode();
        let refused = admin.rpc("answer_request", &[("request_code", other_code.as_str()), ("override_terms", "on"), ("features", "print"), ("counter_name[]", "users"), ("counter_value[]", "99"), ("expires_on", "")]).await;
        assert_eq!(refused.error(), "Conflict");
        let after = admin.rpc("get_order_page", &[("id", &oid)]).await.ok();
        assert_eq!(after["licences"][0]["counters"]["users"], 1, "terms unchanged");
        admin.rpc("remove_activation", &[("licence_id", &page["licences"][0]["id"].to_string()), ("free_now", "true")]).await.ok();

        // A request whose activation was removed cannot be answered again: the machine asks anew.
        assert_eq!(carla.rpc("answer_request", &[("request_code", &request.encode())]).await.error(), "Refused");
        let request = protocol::activation::Request { nonce: "def".into(), ..request };

        // The owner answers its own request, and may remove the activation (the product allows it).
        let code = carla.rpc("answer_request", &[("request_code", &request.encode())]).await.ok();
        assert!(code.as_str().is_some_and(|c| c.split('.').count() == 3));
        let lid = page["licences"][0]["id"].as_i64().expect("id").to_string();
        carla.rpc("remove_activation", &[("licence_id", &lid)]).await.ok();
        assert_eq!(carla.rpc("remove_activation", &[("licence_id", &lid)]).await.error(), "Gone");

        // A product with orders cannot be deleted; the order can, then the product.
        assert_eq!(admin.rpc("delete_product", &[("id", &pid)]).await.error(), "Conflict");
        admin.rpc("delete_order", &[("id", &oid)]).await.ok();
        admin.rpc("delete_product", &[("id", &pid)]).await.ok();
    }

    async fn client_users_cannot_remove_limited_licences(app) {
        let admin = app.admin().await;
        let (client_id, carla) = app.client_user(&admin, "Acme", "carla@acme.test").await;
        let pid = new_product(&admin, true).await["id"].as_i64().expect("id").to_string();
        let order = admin.rpc("create_order", &[("client_id", &client_id.to_string()), ("product_id", &pid), ("quantity", "1"), ("reference", "")]).await.ok();
        let page = carla.rpc("get_order_page", &[("id", &order["id"].to_string())]).await.ok();
        let key = page["licences"][0]["key"].as_str().expect("key").to_owned();
        let lid = page["licences"][0]["id"].to_string();
        app.services.activate(&key, &protocol::activation::fingerprint("CALC", "m"), "m", licensing::activation::Channel::Online).await.expect("activate");
        // The activation shows in both activation lists and in the client's counts; not to others.
        let listed = carla.rpc("activations_page", &[]).await.ok();
        assert_eq!(listed["rows"][0]["licence_key"], key.as_str());
        assert_eq!(listed["rows"][0]["activation"]["hostname"], "m");
        assert_eq!(admin.rpc("activations_page", &[]).await.ok()["total"], 1);
        let (_, gus) = app.client_user(&admin, "Globex", "gus@globex.test").await;
        let theirs = gus.rpc("activations_page", &[]).await.ok();
        assert_eq!((theirs["total"].clone(), theirs["rows"].as_array().map(Vec::len)), (serde_json::json!(0), Some(0)));
        let detail = admin.rpc("get_client_detail", &[("id", &client_id.to_string())]).await.ok();
        assert_eq!((detail["client"]["order_count"].as_i64(), detail["client"]["active_licences"].as_i64()), (Some(1), Some(1)));

        let refused = carla.rpc("remove_activation", &[("licence_id", &lid)]).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert_eq!(refused.message(), "This is a limited licence: only your vendor's administrator can remove it.");
        admin.rpc("remove_activation", &[("licence_id", &lid)]).await.ok();
    }
}
