//! Access rules (DSLS authorization rules): deny, allow and reserve, each refused at checkout with
//! the rule named and shown in *Explain*; a user blocked while holding a seat loses it at the next
//! heartbeat (410 naming the rule), cannot borrow it, and a silent held seat of theirs is ended by
//! the reclaimer; reservations hold when outsiders race for the last unkept seat; only the pool's
//! owner and administrators edit the rules, and every change is audited.

use crate::both_backends;
use crate::floating::{beat, checkout, release, usage_of};
use crate::helpers::*;
use crate::manage::token;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

fn detail(body: &Value) -> &str {
    body["detail"].as_str().unwrap_or("")
}

/// The verdict *Explain* gives the first key of `feature` for `user`.
async fn explained(
    api: &crate::manage::Api,
    pool_id: i64,
    feature: &str,
    user: Option<&str>,
) -> String {
    let mut body = json!({"feature": feature, "release_number": 2026});
    if let Some(u) = user {
        body["user"] = json!(u);
        body["host"] = json!("ws-9");
    }
    let (status, verdicts) = api
        .call(
            Method::POST,
            &format!("/api/v1/pools/{pool_id}/explain"),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{verdicts}");
    // The best verdict among the feature's keys: a rank, else the rule of a key that had room.
    let of_feature: Vec<&Value> = verdicts
        .as_array()
        .map(|all| {
            all.iter()
                .filter(|v| v["key"]["feature"] == feature)
                .collect()
        })
        .unwrap_or_default();
    assert!(!of_feature.is_empty(), "{verdicts}");
    if let Some(r) = of_feature.iter().filter_map(|v| v["rank"].as_i64()).min() {
        return format!("rank {r}");
    }
    let why: Vec<&str> = of_feature
        .iter()
        .filter_map(|v| v["filtered_by"].as_str())
        .collect();
    why.iter()
        .find(|w| **w != "no quantity left")
        .or(why.first())
        .map(|w| (*w).to_owned())
        .unwrap_or_default()
}

/// A browser signed in as the administrator, the same administrator as a service caller, and
/// Acme's pool with a 60 s lease.
async fn admin_and_pool(
    app: &TestApp,
) -> (Browser, licensing::CurrentUser, protocol::floating::Pool) {
    let (browser, admin) = app.admin_both().await;
    let pool = crate::seeded::acme_pool_of(&app.services, &admin, 60).await;
    (browser, admin, pool)
}

both_backends! {
    async fn deny_and_allow_rules_refuse_by_name_and_a_block_ends_seats_at_the_next_heartbeat(app) {
        let (browser, admin, pool) = admin_and_pool(&app).await;
        let api = token(&app, &browser, "ops", "write").await;
        for (f, n) in [("F", 3), ("G", 2)] {
            app.services.add_pool_key(&admin, pool.id, key_input(f, "ConcurrentUser", n)).await.expect("key");
        }
        let rules = format!("/api/v1/pools/{}/access/rules", pool.id);
        let (st, ann) = checkout(&app, &pool.access_key, "F", "ann", "ws-1").await;
        assert_eq!(st, StatusCode::CREATED, "{ann}");

        // Bad rules are refused and change nothing.
        for (bad, field) in [
            (json!({"effect": "reserve", "subject_kind": "user", "subject": "ann"}), "seats"),
            (json!({"effect": "deny", "subject_kind": "user", "subject": "ann", "seats": 2}), "seats"),
            (json!({"effect": "deny", "subject_kind": "group", "subject": "nobody"}), "subject"),
            (json!({"effect": "deny", "subject_kind": "user", "subject": "  "}), "subject"),
            (json!({"effect": "deny", "subject_kind": "user", "subject": "a\u{0007}b"}), "subject"),
        ] {
            let (st, body) = api.call(Method::POST, &rules, Some(bad)).await;
            assert_eq!((st, body["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(field)), "{body}");
        }
        let (st, body) = api.call(Method::POST, &rules, Some(json!({"effect": "permit", "subject_kind": "user", "subject": "ann"}))).await;
        assert!(st.is_client_error(), "{body}");
        let (_, access) = api.get(&format!("/api/v1/pools/{}/access", pool.id)).await;
        assert_eq!(access, json!({"rules": [], "groups": []}));

        // Deny ann (in any case) every feature: her seat ends at its next heartbeat, told why.
        let (st, deny) = api.call(Method::POST, &rules, Some(json!({"effect": "deny", "subject_kind": "user", "subject": "ANN", "note": "left the company"}))).await;
        assert_eq!(st, StatusCode::CREATED, "{deny}");
        let named = format!("rule {} (deny user ANN, every feature)", deny["id"]);
        let (st, gone) = beat(&app, &ann).await;
        assert_eq!((st, gone["type"].as_str()), (StatusCode::GONE, Some("/problems/gone")), "{gone}");
        assert!(detail(&gone).contains(&named), "{gone}");
        assert_eq!(usage_of(&app, &admin, "F").await, (0, 3), "her seat came back");
        // Her next checkouts are refused with the rule named, from any machine; she cannot
        // take her old session back either.
        for host in ["ws-1", "laptop"] {
            let (st, refused) = checkout(&app, &pool.access_key, "F", "ann", host).await;
            assert_eq!((st, refused["type"].as_str()), (StatusCode::FORBIDDEN, Some("/problems/access-rule")), "{refused}");
            assert!(detail(&refused).contains(&named) && detail(&refused).contains("user ann on"), "{refused}");
        }
        assert_eq!(crate::floating::refused_today(&app, &admin, "F").await, 0, "a rule's refusal is not a want of seats");
        // Explain names it for her, and ranks the key for anyone else.
        assert_eq!(explained(&api, pool.id, "F", Some("ann")).await, format!("denied by access {named}"));
        assert_eq!(explained(&api, pool.id, "F", Some("bob")).await, "rank 1");
        assert_eq!(explained(&api, pool.id, "F", None).await, "rank 1", "without a user, rules are not judged");

        // Allow G only to a group: outsiders are refused naming the rule, members get seats.
        let group = format!("/api/v1/pools/{}/access/groups/Designers", pool.id);
        let (st, g) = api.call(Method::PUT, &group, Some(json!({"kind": "user", "members": ["bob", " CARL ", "bob", ""]}))).await;
        assert_eq!((st, g["members"].clone()), (StatusCode::OK, json!(["bob", "CARL"])), "{g}");
        let (st, allow) = api.call(Method::POST, &rules, Some(json!({"effect": "allow", "subject_kind": "group", "subject": "designers", "feature": "G"}))).await;
        assert_eq!((st, allow["subject"].as_str()), (StatusCode::CREATED, Some("Designers")), "{allow}");
        let (st, refused) = checkout(&app, &pool.access_key, "G", "dan", "ws-4").await;
        assert_eq!((st, refused["type"].as_str()), (StatusCode::FORBIDDEN, Some("/problems/access-rule")), "{refused}");
        assert!(detail(&refused).contains(&format!("only for those its access rules allow (rule {})", allow["id"])), "{refused}");
        assert!(!detail(&refused).contains("Designers"), "whom it allows is not told to a pool-key holder: {refused}");
        assert!(explained(&api, pool.id, "G", Some("dan")).await.starts_with("not named by the access rules that allow it"));
        let (st, carl) = checkout(&app, &pool.access_key, "G", "carl", "ws-5").await;
        assert_eq!(st, StatusCode::CREATED, "{carl}");
        let (st, dan_f) = checkout(&app, &pool.access_key, "F", "dan", "ws-4").await;
        assert_eq!(st, StatusCode::CREATED, "the allow rule is about G only: {dan_f}");
        // Carl leaves the group: his seat of G ends at its next heartbeat.
        let (st, _) = api.call(Method::PUT, &group, Some(json!({"kind": "user", "members": ["bob"]}))).await;
        assert_eq!(st, StatusCode::OK);
        let (st, gone) = beat(&app, &carl).await;
        assert_eq!(st, StatusCode::GONE, "{gone}");
        assert_eq!(beat(&app, &dan_f).await.0, StatusCode::OK);

        // A group a rule names cannot be removed; the rules can, and then it can.
        let (st, conflict) = api.call(Method::DELETE, &group, None).await;
        assert_eq!(st, StatusCode::CONFLICT, "{conflict}");
        assert!(detail(&conflict).contains(&allow["id"].to_string()), "{conflict}");
        for rule in [&deny, &allow] {
            let (st, _) = api.call(Method::DELETE, &format!("{rules}/{}", rule["id"]), None).await;
            assert_eq!(st, StatusCode::NO_CONTENT);
        }
        assert_eq!(api.call(Method::DELETE, &format!("{rules}/{}", deny["id"]), None).await.0, StatusCode::NOT_FOUND);
        assert_eq!(api.call(Method::DELETE, &group, None).await.0, StatusCode::NO_CONTENT);
        let (st, back) = checkout(&app, &pool.access_key, "F", "ann", "ws-1").await;
        assert_eq!(st, StatusCode::CREATED, "rule removed, ann is back: {back}");

        // Blocking the machine of a seat from the monitor: every seat on it ends at its next
        // heartbeat, and it cannot borrow meanwhile.
        let block = app.services.block_seat_holder(&admin, back["seat_id"].as_i64().expect("id"), protocol::access::SubjectKind::Host).await.expect("block");
        assert_eq!(block.describe(), format!("rule {} (deny host ws-1, every feature)", block.id));
        let (st, gone) = beat(&app, &back).await;
        assert!(st == StatusCode::GONE && detail(&gone).contains(&block.describe()), "{gone}");
        let (st, refused) = checkout(&app, &pool.access_key, "G", "bob", "WS-1").await;
        assert_eq!((st, refused["type"].as_str()), (StatusCode::FORBIDDEN, Some("/problems/access-rule")), "{refused}");

        // Who may edit: administrators and the pool's owner; a read-only token and another
        // client's user may not (and see nothing of it).
        let reader = token(&app, &browser, "reader", "read").await;
        assert_eq!(reader.call(Method::POST, &rules, Some(json!({"effect": "deny", "subject_kind": "user", "subject": "x"}))).await.0, StatusCode::FORBIDDEN);
        let (_, mallory) = app.client_user(&browser, "Other", "mallory@other.test").await;
        let mallory = token(&app, &mallory, "m", "write").await;
        for (method, path, body) in [
            (Method::GET, format!("/api/v1/pools/{}/access", pool.id), None),
            (Method::POST, rules.clone(), Some(json!({"effect": "allow", "subject_kind": "user", "subject": "mallory"}))),
            (Method::DELETE, format!("{rules}/{}", block.id), None),
            (Method::PUT, group.clone(), Some(json!({"kind": "user", "members": ["mallory"]}))),
        ] {
            let (st, body) = mallory.call(method, &path, body).await;
            assert_eq!(st, StatusCode::FORBIDDEN, "{path}: {body}");
        }
        let mallory_user = app.services.sign_in("mallory@other.test", "client password 123", "t", None).await.expect("mallory").user;
        let refused = app.services.block_seat_holder(&mallory_user, dan_f["seat_id"].as_i64().expect("id"), protocol::access::SubjectKind::User).await;
        assert!(matches!(refused, Err(licensing::Error::NotFound(_))), "another organisation's seat is not found: {refused:?}");
        let (_, access) = api.get(&format!("/api/v1/pools/{}/access", pool.id)).await;
        assert_eq!(access["rules"].as_array().map(Vec::len), Some(1), "{access}");

        // Every change is in the audit log.
        let (_, log) = api.get("/api/v1/audit?action=pool.access-rule.add").await;
        assert_eq!(log["entries"].as_array().map(Vec::len), Some(3), "{log}");
        assert!(log["entries"][2]["detail"].as_str().is_some_and(|d| d.ends_with("(deny user ANN, every feature) — left the company.")), "{log}");
        let (_, log) = api.get("/api/v1/audit?action=pool.access-group.save").await;
        assert_eq!(log["entries"].as_array().map(Vec::len), Some(2), "{log}");
        let (_, log) = api.get("/api/v1/audit?action=pool.access-rule.remove").await;
        assert_eq!(log["entries"].as_array().map(Vec::len), Some(2), "{log}");
    }

    async fn a_reservation_keeps_seats_for_its_group_even_when_outsiders_race_for_them(app) {
        let (browser, admin, pool) = admin_and_pool(&app).await;
        let api = token(&app, &browser, "ops", "write").await;
        // Two keys of F, so that checkouts racing for different keys meet only at the
        // reservation's lock.
        for quantity in [2, 2] {
            app.services.add_pool_key(&admin, pool.id, key_input("F", "ConcurrentUser", quantity)).await.expect("key");
        }
        let (st, _) = api.call(Method::PUT, &format!("/api/v1/pools/{}/access/groups/cad", pool.id), Some(json!({"kind": "user", "members": ["ann", "bob"]}))).await;
        assert_eq!(st, StatusCode::OK);
        let (st, reserve) = api.call(Method::POST, &format!("/api/v1/pools/{}/access/rules", pool.id), Some(json!({"effect": "reserve", "subject_kind": "group", "subject": "cad", "seats": 2, "feature": "F"}))).await;
        assert_eq!(st, StatusCode::CREATED, "{reserve}");
        let named = format!("rule {} (reserve 2 seats for group cad, feature F)", reserve["id"]);

        // Eight outsiders at once for the 2 seats the reservation leaves: exactly 2 get one.
        let takers: Vec<_> = (0..8).map(|i| {
            let (app, key) = (&app, pool.access_key.clone());
            async move { checkout(app, &key, "F", &format!("out{i}"), &format!("ws-{i}")).await }
        }).collect();
        let answers = futures_util::future::join_all(takers).await;
        let granted: Vec<&Value> = answers.iter().filter(|(st, _)| *st == StatusCode::CREATED).map(|(_, b)| b).collect();
        assert_eq!(granted.len(), 2, "{answers:?}");
        for (st, refused) in answers.iter().filter(|(st, _)| *st != StatusCode::CREATED) {
            assert_eq!((*st, refused["type"].as_str()), (StatusCode::FORBIDDEN, Some("/problems/seats-taken")), "{refused}");
            assert!(detail(refused).contains(&named), "{refused}");
        }
        assert_eq!(usage_of(&app, &admin, "F").await, (2, 4));
        assert_eq!(explained(&api, pool.id, "F", Some("zed")).await, format!("the free seats are kept by access {named}"));
        assert_eq!(explained(&api, pool.id, "F", Some("ann")).await, "rank 1");

        // The group takes its kept seats.
        let (st, ann) = checkout(&app, &pool.access_key, "F", "ann", "ws-a").await;
        assert_eq!(st, StatusCode::CREATED, "{ann}");
        let (st, bob) = checkout(&app, &pool.access_key, "F", "Bob", "ws-b").await;
        assert_eq!(st, StatusCode::CREATED, "{bob}");
        // An outsider gives one back: ann's release then keeps her seat for the group again,
        // while the outsider's seat is anyone's.
        assert_eq!(release(&app, granted[0]).await, StatusCode::NO_CONTENT);
        assert_eq!(release(&app, &ann).await, StatusCode::NO_CONTENT);
        let (st, out) = checkout(&app, &pool.access_key, "F", "zed", "ws-z").await;
        assert_eq!(st, StatusCode::CREATED, "{out}");
        let (st, refused) = checkout(&app, &pool.access_key, "F", "yan", "ws-y").await;
        assert!(st == StatusCode::FORBIDDEN && detail(&refused).contains(&named), "{refused}");
        let (st, ann) = checkout(&app, &pool.access_key, "F", "ann", "ws-a").await;
        assert_eq!(st, StatusCode::CREATED, "{ann}");
        // A reservation never takes a seat from anyone who holds one.
        assert_eq!(beat(&app, &out).await.0, StatusCode::OK);
        assert_eq!(usage_of(&app, &admin, "F").await, (4, 4));
        let _ = bob;
    }

    async fn a_blocked_user_cannot_borrow_and_their_held_silent_seat_is_ended(app) {
        let (admin, pool) = crate::borrowing::lending_pool(&app, 2, None).await;
        app.services.set_silent_seats(&admin, pool.id, protocol::floating::SilentSeats::Held).await.expect("held");
        let ann = crate::borrowing::seat(&app, &pool, "ann").await;
        let bob = crate::borrowing::seat(&app, &pool, "bob").await;
        app.clock.advance(5);
        assert_eq!(beat(&app, &bob).await.0, StatusCode::OK, "bob's application was heard once");
        let input = |user: &str| protocol::access::AccessRuleInput {
            feature: None,
            effect: protocol::access::Effect::Deny,
            subject_kind: protocol::access::SubjectKind::User,
            subject: user.into(),
            seats: None,
            note: String::new(),
        };
        let rule = app.services.add_access_rule(&admin, pool.id, input("ann")).await.expect("deny ann");
        let (st, refused) = crate::borrowing::seat_call(&app, &ann, "borrow", 2).await;
        assert_eq!((st, refused["type"].as_str()), (StatusCode::FORBIDDEN, Some("/problems/access-rule")), "{refused}");
        assert!(detail(&refused).contains(&rule.describe()), "{refused}");

        // Bob's application goes silent past its lease: the pool holds his seat...
        app.clock.advance(3_600);
        assert_eq!(app.services.reclaim_expired_seats().await.expect("reclaim"), 1, "ann's never-heard seat only");
        assert_eq!(usage_of(&app, &admin, "F").await.0, 1);
        // ...until he is blocked: no heartbeat will come to end it, the reclaimer does.
        app.services.add_access_rule(&admin, pool.id, input("bob")).await.expect("deny bob");
        assert_eq!(app.services.reclaim_expired_seats().await.expect("reclaim"), 1);
        assert_eq!(usage_of(&app, &admin, "F").await.0, 0);
        let (st, gone) = beat(&app, &bob).await;
        assert_eq!(st, StatusCode::GONE, "{gone}");
        assert!(detail(&gone).contains("denied by access rule"), "{gone}");
    }

    async fn rules_follow_bundles_and_names_keep_their_commas(app) {
        let (browser, admin, pool) = admin_and_pool(&app).await;
        let api = token(&app, &browser, "ops", "write").await;
        for f in ["F", "G"] {
            app.services.add_pool_key(&admin, pool.id, key_input(f, "ConcurrentUser", 2)).await.expect("key");
        }
        app.services.add_bundle(&admin, pool.id, &protocol::floating::Bundle { feature: "F".into(), also_feature: "G".into() }).await.expect("bundle");
        let rules = format!("/api/v1/pools/{}/access/rules", pool.id);
        let deny_g = json!({"effect": "deny", "subject_kind": "user", "subject": "ann", "feature": "G"});
        let (st, rule) = api.call(Method::POST, &rules, Some(deny_g)).await;
        assert_eq!(st, StatusCode::CREATED, "{rule}");
        // The same rule again is refused (a block clicked twice would need removing twice).
        let (st, twice) = api.call(Method::POST, &rules, Some(json!({"effect": "deny", "subject_kind": "user", "subject": " Ann ", "feature": "G"}))).await;
        assert_eq!(st, StatusCode::CONFLICT, "{twice}");

        // F brings G along: a user denied G gets no F either, told which rule.
        let (st, refused) = checkout(&app, &pool.access_key, "F", "ann", "ws-1").await;
        assert_eq!((st, refused["type"].as_str()), (StatusCode::FORBIDDEN, Some("/problems/access-rule")), "{refused}");
        assert!(detail(&refused).contains("refuses feature G to user ann"), "{refused}");
        assert!(explained(&api, pool.id, "F", Some("ann")).await.contains("(feature G comes with F)"));
        // Bob holds F (and G); denied G later, he loses both at his next heartbeat.
        let (st, bob) = checkout(&app, &pool.access_key, "F", "bob", "ws-2").await;
        assert_eq!(st, StatusCode::CREATED, "{bob}");
        assert_eq!(usage_of(&app, &admin, "G").await, (1, 2));
        let (st, _) = api.call(Method::POST, &rules, Some(json!({"effect": "deny", "subject_kind": "user", "subject": "bob", "feature": "G"}))).await;
        assert_eq!(st, StatusCode::CREATED);
        let (st, gone) = beat(&app, &bob).await;
        assert_eq!(st, StatusCode::GONE, "{gone}");
        assert!(detail(&gone).contains("(feature G comes with F)"), "{gone}");
        assert_eq!((usage_of(&app, &admin, "F").await, usage_of(&app, &admin, "G").await), ((0, 2), (0, 2)));

        // A reservation of G holds against checkouts of F that bring G along.
        let (st, _) = api.call(Method::POST, &rules, Some(json!({"effect": "reserve", "subject_kind": "host", "subject": "lab-1", "feature": "G", "seats": 2}))).await;
        assert_eq!(st, StatusCode::CREATED);
        let (st, refused) = checkout(&app, &pool.access_key, "F", "cat", "ws-3").await;
        assert_eq!((st, refused["type"].as_str()), (StatusCode::FORBIDDEN, Some("/problems/seats-taken")), "{refused}");
        assert!(detail(&refused).contains("the free seats of G are kept for others by access rule"), "{refused}");
        assert_eq!(usage_of(&app, &admin, "F").await, (0, 2), "nothing of F was kept either");
        let (st, lab) = checkout(&app, &pool.access_key, "F", "cat", "LAB-1").await;
        assert_eq!(st, StatusCode::CREATED, "{lab}");

        // A member's name may hold a comma: it stays one name.
        let (st, g) = api.call(Method::PUT, &format!("/api/v1/pools/{}/access/groups/staff", pool.id), Some(json!({"kind": "user", "members": ["Doe, John"]}))).await;
        assert_eq!((st, g["members"].clone()), (StatusCode::OK, json!(["Doe, John"])), "{g}");
        let (st, allow) = api.call(Method::POST, &rules, Some(json!({"effect": "allow", "subject_kind": "group", "subject": "staff", "feature": "F"}))).await;
        assert_eq!(st, StatusCode::CREATED, "{allow}");
        let (_, access) = api.get(&format!("/api/v1/pools/{}/access", pool.id)).await;
        assert_eq!(access["groups"][0]["members"], json!(["Doe, John"]), "{access}");
        assert_eq!(explained(&api, pool.id, "F", Some("Doe")).await, format!("not named by the access rules that allow it (rule {})", allow["id"]));
        assert_ne!(explained(&api, pool.id, "F", Some("doe, john")).await.get(..3), Some("not"));
    }
}
