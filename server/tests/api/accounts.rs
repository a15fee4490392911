//! Clients and their users: what administrators may do, what client users may not, and that bad
//! input is refused with a clear message and changes nothing.

use crate::both_backends;
use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;

both_backends! {
    async fn administrator_creates_a_client_whose_user_signs_in(app) {
        let admin = app.admin().await;
        let created = admin
            .rpc("create_client", &[("client[name]", "Acme Tools"), ("client[contact_email]", "Buyer@Acme.test"), ("client[notes]", "key account")])
            .await;
        assert!(created.headers.contains_key("serverfnredirect"));
        let client = created.ok();
        assert_eq!(client["name"], "Acme Tools");
        assert_eq!(client["contact_email"], "buyer@acme.test");
        let id = client["id"].as_i64().expect("id").to_string();
        let user = admin
            .rpc("create_client_user", &[("client_id", &id), ("name", "Carla"), ("email", "carla@acme.test"), ("password", "client password 123")])
            .await
            .ok();
        assert_eq!(user["role"], "client");

        let carla = app.browser();
        let reply = carla.sign_in("carla@acme.test", "client password 123").await;
        assert_eq!(reply.headers.get("location").and_then(|v| v.to_str().ok()), Some("/client/licences"));
        reply.ok();
        let me = carla.whoami().await;
        assert_eq!(me["role"], "client");
        assert_eq!(me["client"]["name"], "Acme Tools");
        let mine = carla.rpc("my_client", &[]).await.ok();
        assert_eq!(mine["client"]["name"], "Acme Tools");
        assert_eq!(mine["users"].as_array().map(Vec::len), Some(1));

        let listed = admin.rpc("list_clients", &[]).await.ok();
        assert_eq!(listed[0]["user_count"], 1);
    }

    async fn client_users_are_refused_every_administrator_function(app) {
        let admin = app.admin().await;
        let (client_id, carla) = app.client_user(&admin, "Acme", "carla@acme.test").await;
        let id = client_id.to_string();
        let calls: Vec<(&str, Vec<(&str, &str)>)> = vec![
            ("get_admin_overview", vec![]),
            ("list_clients", vec![]),
            ("clients_page", vec![]),
            ("serials_page", vec![]),
            ("list_admins", vec![]),
            ("create_client", vec![("client[name]", "Sneaky"), ("client[contact_email]", ""), ("client[notes]", "")]),
            ("update_client", vec![("id", &id), ("client[name]", "Renamed"), ("client[contact_email]", ""), ("client[notes]", "")]),
            ("delete_client", vec![("id", &id)]),
            ("create_client_user", vec![("client_id", &id), ("name", "Mallory"), ("email", "m@acme.test"), ("password", "mallory password 1")]),
            ("reset_user_password", vec![("user_id", "1"), ("password", "mallory password 1")]),
            ("delete_client_user", vec![("user_id", "2")]),
        ];
        for (name, form) in calls {
            let reply = carla.rpc(name, &form).await;
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{name}: {}", reply.body);
            assert_eq!(reply.error(), "NotAllowed", "{name}");
        }
        // Nothing changed.
        let listed = admin.rpc("list_clients", &[]).await.ok();
        assert_eq!(listed.as_array().map(Vec::len), Some(1));
        assert_eq!(listed[0]["name"], "Acme");
        assert_eq!(listed[0]["user_count"], 1);
        app.browser().sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.ok();
    }

    async fn a_client_user_sees_only_its_own_client(app) {
        let admin = app.admin().await;
        let (acme, carla) = app.client_user(&admin, "Acme", "carla@acme.test").await;
        let (globex, _) = app.client_user(&admin, "Globex", "gus@globex.test").await;
        carla.rpc("get_client_detail", &[("id", &acme.to_string())]).await.ok();
        let other = carla.rpc("get_client_detail", &[("id", &globex.to_string())]).await;
        assert_eq!(other.error(), "NotAllowed");
        let mine = carla.rpc("my_client", &[]).await.ok();
        let emails: Vec<&str> = mine["users"].as_array().expect("users").iter().filter_map(|u| u["email"].as_str()).collect();
        assert_eq!(emails, ["carla@acme.test"]);
    }

    async fn anonymous_callers_are_refused(app) {
        let _admin = app.admin().await;
        for name in ["list_clients", "my_client", "get_admin_overview", "change_password"] {
            let reply = app.browser().rpc(name, &[("current_password", "x"), ("new_password", "y"), ("new_password_confirm", "y")]).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{name}");
            assert_eq!(reply.error(), "NotSignedIn", "{name}");
        }
        assert_eq!(app.browser().rpc("get_current_user", &[]).await.ok(), Value::Null);
    }

    async fn bad_client_input_is_refused_and_changes_nothing(app) {
        let admin = app.admin().await;
        let long = "n".repeat(121);
        for (name, email, message) in [
            ("", "", "Client name is required."),
            ("   ", "", "Client name is required."),
            (long.as_str(), "", "Client name must be at most 120 characters."),
            ("Two\nlines", "", "Client name must be a single line of text."),
            ("Acme", "not an email", "Enter an e-mail address such as name@example.com."),
        ] {
            let reply = admin.rpc("create_client", &[("client[name]", name), ("client[contact_email]", email), ("client[notes]", "")]).await;
            assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}");
            assert_eq!(reply.message(), message);
        }
        let missing = admin.rpc("create_client", &[("client[contact_email]", "it@acme.test")]).await;
        assert!(!missing.status.is_success() && !missing.status.is_server_error(), "{}", missing.status);
        assert_eq!(admin.rpc("list_clients", &[]).await.ok(), Value::Array(vec![]));

        admin.rpc("create_client", &[("client[name]", "Acme  Tools"), ("client[contact_email]", ""), ("client[notes]", "")]).await.ok();
        let dup = admin.rpc("create_client", &[("client[name]", "acme tools"), ("client[contact_email]", ""), ("client[notes]", "")]).await;
        assert_eq!(dup.status, StatusCode::CONFLICT);
        assert_eq!(dup.message(), "A client named \u{201c}acme tools\u{201d} already exists.");
        assert_eq!(admin.rpc("list_clients", &[]).await.ok().as_array().map(Vec::len), Some(1));
    }

    async fn bad_user_input_is_refused_and_changes_nothing(app) {
        let admin = app.admin().await;
        let (client_id, _) = app.client_user(&admin, "Acme", "carla@acme.test").await;
        let id = client_id.to_string();
        for (name, email, password, status, message) in [
            ("", "x@acme.test", "long enough password", StatusCode::UNPROCESSABLE_ENTITY, "Name is required."),
            ("Xavier", "x@", "long enough password", StatusCode::UNPROCESSABLE_ENTITY, "Enter an e-mail address such as name@example.com."),
            ("Xavier", "x@acme.test", "short", StatusCode::UNPROCESSABLE_ENTITY, "Password must be at least 12 characters."),
            ("Xavier", "CARLA@acme.test", "long enough password", StatusCode::CONFLICT, "An account with the e-mail address carla@acme.test already exists."),
            ("Xavier", ADMIN_EMAIL, "long enough password", StatusCode::CONFLICT, "An account with the e-mail address admin@vendor.test already exists."),
        ] {
            let reply = admin.rpc("create_client_user", &[("client_id", &id), ("name", name), ("email", email), ("password", password)]).await;
            assert_eq!(reply.status, status, "{email}: {}", reply.body);
            assert_eq!(reply.message(), message);
        }
        let nowhere = admin.rpc("create_client_user", &[("client_id", "999999"), ("name", "Xavier"), ("email", "x@acme.test"), ("password", "long enough password")]).await;
        assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
        let not_a_number = admin.rpc("create_client_user", &[("client_id", "1; DROP TABLE users"), ("name", "Xavier"), ("email", "x@acme.test"), ("password", "long enough password")]).await;
        assert!(not_a_number.status.is_client_error(), "{}", not_a_number.status);
        let detail = admin.rpc("get_client_detail", &[("id", &id)]).await.ok();
        assert_eq!(detail["users"].as_array().map(Vec::len), Some(1));
    }

    async fn sql_metacharacters_in_names_are_plain_text(app) {
        let admin = app.admin().await;
        let name = "O'Brien \"; DROP TABLE users; -- %_\\";
        let client = admin.rpc("create_client", &[("client[name]", name), ("client[contact_email]", ""), ("client[notes]", "'); DELETE FROM clients; --")]).await.ok();
        assert_eq!(client["name"], name);
        let id = client["id"].as_i64().expect("id").to_string();
        admin.rpc("create_client_user", &[("client_id", &id), ("name", "Robert'); DROP TABLE users;--"), ("email", "bobby@tables.test"), ("password", "long enough password")]).await.ok();
        let detail = admin.rpc("get_client_detail", &[("id", &id)]).await.ok();
        assert_eq!(detail["client"]["name"], name);
        assert_eq!(detail["client"]["notes"], "'); DELETE FROM clients; --");
        assert_eq!(detail["users"][0]["name"], "Robert'); DROP TABLE users;--");
        // And the page shows it verbatim, escaped.
        let html = admin.get(&format!("/admin/clients/{id}")).await.text().await.expect("html");
        assert!(html.contains("O&#x27;Brien") || html.contains("O'Brien"), "name shown");
        assert!(!html.contains("<script>"), "no markup injected");
    }

    async fn changing_ones_own_password_needs_the_current_one(app) {
        let admin = app.admin().await;
        let other_session = app.browser();
        other_session.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.ok();
        let wrong = admin.rpc("change_password", &[("current_password", "nope"), ("new_password", "a brand new password"), ("new_password_confirm", "a brand new password")]).await;
        assert_eq!(wrong.message(), "The current password is wrong.");
        let mismatch = admin.rpc("change_password", &[("current_password", ADMIN_PASSWORD), ("new_password", "a brand new password"), ("new_password_confirm", "a different new password")]).await;
        assert_eq!(mismatch.message(), "The two passwords do not match.");
        admin.rpc("change_password", &[("current_password", ADMIN_PASSWORD), ("new_password", "a brand new password"), ("new_password_confirm", "a brand new password")]).await.ok();
        // This session goes on; the other one is signed out; the new password works.
        assert_eq!(admin.whoami().await["email"], ADMIN_EMAIL);
        assert_eq!(other_session.rpc("get_current_user", &[]).await.ok(), Value::Null);
        assert_eq!(app.browser().sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await.error(), "BadCredentials");
        app.browser().sign_in(ADMIN_EMAIL, "a brand new password").await.ok();
    }

    async fn administrator_resets_a_client_users_password(app) {
        let admin = app.admin().await;
        let (client_id, carla) = app.client_user(&admin, "Acme", "carla@acme.test").await;
        let detail = admin.rpc("get_client_detail", &[("id", &client_id.to_string())]).await.ok();
        let user_id = detail["users"][0]["id"].as_i64().expect("id").to_string();
        let short = admin.rpc("reset_user_password", &[("user_id", &user_id), ("password", "short")]).await;
        assert_eq!(short.error(), "Invalid");
        carla.whoami().await; // still signed in after a refused reset
        assert_eq!(carla.whoami().await["email"], "carla@acme.test");
        admin.rpc("reset_user_password", &[("user_id", &user_id), ("password", "reset password 456")]).await.ok();
        assert_eq!(carla.rpc("get_current_user", &[]).await.ok(), Value::Null, "sessions end at reset");
        carla.sign_in("carla@acme.test", "reset password 456").await.ok();
        // Administrators' passwords are not reset this way.
        let admins = admin.rpc("list_admins", &[]).await.ok();
        let admin_id = admins[0]["id"].as_i64().expect("id").to_string();
        assert_eq!(admin.rpc("reset_user_password", &[("user_id", &admin_id), ("password", "reset password 456")]).await.error(), "Conflict");
    }

    async fn deleting_a_client_removes_its_users_and_sessions(app) {
        let admin = app.admin().await;
        let (client_id, carla) = app.client_user(&admin, "Acme", "carla@acme.test").await;
        admin.rpc("delete_client", &[("id", &client_id.to_string())]).await.ok();
        assert_eq!(carla.rpc("get_current_user", &[]).await.ok(), Value::Null);
        assert_eq!(app.browser().sign_in("carla@acme.test", "client password 123").await.error(), "BadCredentials");
        assert_eq!(admin.rpc("delete_client", &[("id", &client_id.to_string())]).await.error(), "NotFound");
    }
}
