//! One contract: every type that crosses the application's wire (`protocol::application`,
//! `protocol::seats`, `protocol::problem`) goes through serde and back unchanged, and what it
//! writes is what the served OpenAPI document describes under the type's name. The server
//! deserialises these types and the client library sends them, so a drift between the code and
//! the document fails here.

use crate::helpers::*;
use licentia_client::ProblemKind;
use protocol::activation::Claims;
use protocol::application::{
    ActivateRequest, CodeAnswer, LicenceRef, RemoveRequest, ValidateRequest,
};
use protocol::floating::{Bundle, Pool, PoolKeyInput};
use protocol::problem::Problem;
use protocol::seats::{
    Beat, CheckoutRequest, ExplainRequest, Grant, LeaseRequest, PoolRef, Requester, SeatTerms,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::fmt::Debug;

/// `value` as JSON: valid against the document's schema `name`, and read back equal.
fn holds<T: Serialize + DeserializeOwned + PartialEq + Debug>(doc: &Value, name: &str, value: &T) {
    let json = serde_json::to_value(value).expect("serialises");
    let back: T = serde_json::from_value(json.clone()).expect("deserialises");
    assert_eq!(&back, value, "{name} changes on its way through JSON");
    assert!(
        doc["components"]["schemas"].get(name).is_some(),
        "the document has no schema {name}"
    );
    // The document itself is the schema's root, so that its `$ref`s resolve.
    let mut schema = doc.clone();
    schema["$ref"] = Value::String(format!("#/components/schemas/{name}"));
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let errors: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{name} {json} does not match the document: {errors:?}"
    );
}

fn claims() -> Claims {
    Claims {
        iss: "https://licences.example".into(),
        sub: "AAAAA-BBBBB-CCCCC-DDDDD".into(),
        lic: 1,
        act: 2,
        prd: "CALC".into(),
        fp: "ab".repeat(32),
        host: "ws-1".into(),
        feat: vec!["print".into()],
        cnt: [("users".to_owned(), 5)].into(),
        start: Some("2026-11-29".into()),
        end: Some("2026-12-28".into()),
        iat: 1_764_460_800,
        nbf: Some(1_764_374_400),
        exp: Some(1_766_966_400),
        next: 1_765_065_600,
        req: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_wire_type_round_trips_and_matches_the_served_document() {
    within_limit(async {
        let app = TestApp::spawn(licensing::Backend::Sqlite, &[]).await;
        let doc: Value = reqwest::get(format!("{}/api/v1/openapi.json", app.base_url))
            .await
            .expect("request")
            .json()
            .await
            .expect("json");
        let fp = "ab".repeat(32);
        for licence in [
            LicenceRef::Key {
                licence_key: "AAAAA-BBBBB-CCCCC-DDDDD".into(),
                product: Some("CALC".into()),
            },
            LicenceRef::Key {
                licence_key: "AAAAA-BBBBB-CCCCC-DDDDD".into(),
                product: None,
            },
            LicenceRef::Serial {
                product: "CALC".into(),
                serial: "7K2M-AAAA".into(),
            },
        ] {
            holds(
                &doc,
                "ActivateRequest",
                &ActivateRequest {
                    licence: licence.clone().into(),
                    fingerprint: fp.clone(),
                    hostname: "ws-1".into(),
                },
            );
            holds(
                &doc,
                "RemoveRequest",
                &RemoveRequest {
                    licence: licence.into(),
                    fingerprint: fp.clone(),
                    activation_code: Some("a.b.c".into()),
                },
            );
        }
        holds(
            &doc,
            "ValidateRequest",
            &ValidateRequest {
                activation_code: "a.b.c".into(),
                fingerprint: fp.clone(),
            },
        );
        holds(
            &doc,
            "CodeAnswer",
            &CodeAnswer {
                activation_code: "a.b.c".into(),
                claims: claims(),
            },
        );
        let terms = SeatTerms {
            feature: "F".into(),
            editor: Some("Vendor".into()),
            model: Some("Token".into()),
            release_number: 2026,
            release_date: Some("2026-01-15".into()),
            commercial_type: Some("STD".into()),
            customer_id: Some("C-1".into()),
            pricing_structure: Some("PLC".into()),
            tokens: Some(3),
        };
        holds(&doc, "SeatTerms", &terms);
        for pool in [
            PoolRef::Key("POOL-ABC".into()),
            PoolRef::Serial {
                product: "CALC".into(),
                serial: "7K2M-AAAA".into(),
            },
        ] {
            holds(
                &doc,
                "CheckoutRequest",
                &CheckoutRequest {
                    pool: pool.into(),
                    who: Requester {
                        user: "ann".into(),
                        host: "ws-1".into(),
                        process: "cad".into(),
                        session: "rdp-2".into(),
                        installation: Some("installation secret of a test".into()),
                    },
                    terms: terms.clone(),
                },
            );
        }
        holds(
            &doc,
            "Grant",
            &Grant {
                seat_id: 1,
                lease_token: "t".into(),
                lease_expires_at: 10,
                heartbeat_secs: 60,
                key_id: 2,
                editor: "Vendor".into(),
                feature: "F".into(),
                model: "ConcurrentUser".into(),
                bundled: vec!["G".into()],
            },
        );
        holds(
            &doc,
            "LeaseRequest",
            &LeaseRequest {
                lease_token: "t".into(),
            },
        );
        holds(
            &doc,
            "Beat",
            &Beat {
                lease_expires_at: 10,
                key_id: 2,
                moved: true,
            },
        );
        holds(
            &doc,
            "Bundle",
            &Bundle {
                feature: "F".into(),
                also_feature: "G".into(),
            },
        );
        holds(
            &doc,
            "ClientBody",
            &protocol::account::ClientBody {
                name: "Acme".into(),
                contact_email: "it@acme.example".into(),
                notes: "n".into(),
            },
        );
        holds(
            &doc,
            "PoolKeyInput",
            &PoolKeyInput {
                editor: "Vendor".into(),
                feature: "F".into(),
                model: "ConcurrentUser".into(),
                quantity: 2,
                commercial_type: "STD".into(),
                ..Default::default()
            },
        );
        holds(
            &doc,
            "Pool",
            &Pool {
                id: 1,
                name: "Lab".into(),
                client_id: Some(1),
                serial_id: None,
                owner: "Acme".into(),
                access_key: "POOL-ABC".into(),
                key_rotated_at: Some(7),
                previous_key_until: Some(9),
                max_tokens_per_checkout: Some(4),
                lease_secs: 300,
                silent_seats: protocol::floating::SilentSeats::Held,
                keys: 1,
                in_use: 0,
                created_at: 5,
                mobile_allowed: true,
                max_borrow_days: Some(14),
                borrow_days: Some(14),
                lending_off: None,
            },
        );
        // Each endpoint takes and answers exactly these types, by name.
        let schema_of = |path: &str, method: &str, at: &[&str]| -> String {
            let mut v = &doc["paths"][path][method];
            for step in at {
                v = &v[*step];
            }
            let content = &v["content"];
            let schema = if content.get("application/json").is_some() { &content["application/json"] } else { &content["application/problem+json"] };
            schema["schema"]["$ref"].as_str().unwrap_or("").rsplit('/').next().unwrap_or("").to_owned()
        };
        for (path, body, answer, status) in [
            ("/api/v1/activations", "ActivateRequest", Some("CodeAnswer"), "201"),
            ("/api/v1/activations/validate", "ValidateRequest", Some("CodeAnswer"), "200"),
            ("/api/v1/activations/remove", "RemoveRequest", None, "204"),
            ("/api/v1/seats", "CheckoutRequest", Some("Grant"), "201"),
            ("/api/v1/seats/{id}/heartbeat", "LeaseRequest", Some("Beat"), "200"),
            ("/api/v1/seats/{id}/release", "LeaseRequest", None, "204"),
            ("/api/v1/pools/{id}/explain", "ExplainRequest", None, "200"),
            ("/api/v1/pools/{id}/access/rules", "AccessRuleInput", Some("AccessRule"), "201"),
        ] {
            assert_eq!(schema_of(path, "post", &["requestBody"]), body, "{path}");
            if let Some(answer) = answer {
                assert_eq!(schema_of(path, "post", &["responses", status]), answer, "{path}");
            }
            assert_eq!(schema_of(path, "post", &["responses", "403"]), "Problem", "{path}");
        }
        // What clients of the earlier release sent (their JSON was written by hand) still reads.
        let old: ActivateRequest = serde_json::from_value(serde_json::json!({"licence_key": "AAAAA-BBBBB-CCCCC-DDDDD", "fingerprint": fp, "hostname": "ws-1"})).expect("an old activation");
        assert_eq!(old.licence(), Ok(LicenceRef::Key { licence_key: "AAAAA-BBBBB-CCCCC-DDDDD".into(), product: None }));
        let old: CheckoutRequest = serde_json::from_value(serde_json::json!({
            "feature": "F", "user": "ann", "host": "ws-1", "process": "cad", "session": "",
            "release_number": 0, "release_date": null, "editor": null, "commercial_type": null,
            "customer_id": null, "pricing_structure": null, "tokens": null, "pool_key": "POOL-ABC"
        })).expect("an old checkout");
        assert_eq!((old.pool(), old.terms.clone()), (Ok(PoolRef::Key("POOL-ABC".into())), SeatTerms { feature: "F".into(), ..SeatTerms::default() }));
        holds(&doc, "SeatTerms", &SeatTerms { feature: "F".into(), ..SeatTerms::default() });
        // An explanation asked as before (the terms alone) still reads; with who asks, too.
        let old: ExplainRequest = serde_json::from_value(serde_json::json!({"feature": "F", "release_number": 2026})).expect("an old explain");
        assert_eq!((old.terms.feature.as_str(), old.user), ("F", None));
        holds(&doc, "ExplainRequest", &ExplainRequest { terms: SeatTerms { feature: "F".into(), ..SeatTerms::default() }, user: Some("ann".into()), host: Some("ws-1".into()) });
        use protocol::access::{AccessGroup, AccessGroupInput, AccessRule, AccessRuleInput, Effect, GroupKind, PoolAccess, SubjectKind};
        let rule = AccessRule { id: 3, feature: Some("F".into()), effect: Effect::Reserve, subject_kind: SubjectKind::Group, subject: "cad".into(), seats: Some(2), note: "the CAD team".into(), created_at: 7 };
        holds(&doc, "AccessRule", &rule);
        holds(&doc, "AccessRuleInput", &AccessRuleInput { feature: None, effect: Effect::Deny, subject_kind: SubjectKind::Host, subject: "kiosk".into(), seats: None, note: String::new() });
        let group = AccessGroup { name: "cad".into(), kind: GroupKind::User, members: vec!["ann".into(), "Doe, John".into()] };
        holds(&doc, "AccessGroupInput", &AccessGroupInput { kind: GroupKind::Host, members: vec!["k1".into()] });
        holds(&doc, "PoolAccess", &PoolAccess { rules: vec![rule], groups: vec![group.clone()] });
        holds(&doc, "AccessGroup", &group);

        for kind in ProblemKind::ALL {
            let mut problem = Problem::new(kind, "what happened and what to do");
            if kind == ProblemKind::Invalid {
                problem.field = Some("feature".into());
            }
            if kind.is_transient() {
                problem.retry_after = Some(30);
            }
            holds(&doc, "Problem", &problem);
        }
    })
    .await;
}

/// An application tells the refusals apart by problem type: the client library's error
/// carries the kind, for each refusal an application meets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_reach_the_client_library_as_kinds() {
    use licentia_client::floating::{Floating, PoolRef, Requester};
    within_limit(async {
        let app = TestApp::spawn(licensing::Backend::Sqlite, &[]).await;
        let (admin, pool) = acme_pool(&app, 60).await;
        app.services
            .add_pool_key(&admin, pool.id, key_input("F", "ConcurrentUser", 1))
            .await
            .expect("key");
        let store = tempfile::tempdir().expect("dir");
        let servers = [app.base_url.clone()];
        let floating = |user: &str| {
            Floating::new(
                &servers,
                PoolRef::Key(pool.access_key.clone()),
                Requester {
                    user: user.into(),
                    host: format!("{user}-pc"),
                    process: "cad".into(),
                    session: String::new(),
                    installation: None,
                },
                store.path(),
            )
        };
        app.services
            .add_pool_key(&admin, pool.id, key_input("T", "Token", 10))
            .await
            .expect("token key");
        app.services
            .add_access_rule(
                &admin,
                pool.id,
                protocol::access::AccessRuleInput {
                    feature: Some("F".into()),
                    effect: protocol::access::Effect::Deny,
                    subject_kind: protocol::access::SubjectKind::User,
                    subject: "dan".into(),
                    seats: None,
                    note: String::new(),
                },
            )
            .await
            .expect("deny dan");
        let (ann, bob, dan) = (floating("ann"), floating("bob"), floating("dan"));
        let edu = floating("eve").for_application(protocol::seats::SeatTerms {
            commercial_type: Some("EDU".into()),
            ..Default::default()
        });
        let kinds = tokio::task::spawn_blocking(move || {
            let kind = |r: Result<licentia_client::floating::Seat, licentia_client::Error>| {
                r.err().and_then(|e| e.kind())
            };
            let seat = ann.checkout("F", None).expect("ann's seat");
            let taken = kind(bob.checkout("F", None));
            // All of F is taken, but no key of F is EDU: waiting would never help.
            let never = kind(edu.checkout("F", None));
            let no_key = kind(bob.checkout("G", None));
            let bad = kind(bob.checkout("F", Some(0)));
            let denied = kind(dan.checkout("F", None));
            // 6 of 10 tokens out: 8 more is a wait, 11 never fits.
            let tokens = ann.checkout("T", Some(6)).expect("ann's tokens");
            let short = kind(bob.checkout("T", Some(8)));
            let too_many = kind(bob.checkout("T", Some(11)));
            seat.release().expect("release");
            tokens.release().expect("release");
            [taken, never, no_key, bad, denied, short, too_many]
        })
        .await
        .expect("join");
        use ProblemKind::*;
        assert_eq!(
            kinds,
            [
                SeatsTaken,
                NoMatchingKey,
                NoMatchingKey,
                Invalid,
                AccessRule,
                SeatsTaken,
                NoMatchingKey
            ]
            .map(Some)
        );
        assert!(
            ProblemKind::SeatsTaken.is_transient() && !ProblemKind::NoMatchingKey.is_transient()
        );

        // Activation: another machine holds it; then no activation is left.
        let f_app = TestApp::spawn(licensing::Backend::Sqlite, &[]).await;
        let f = fixture(
            &f_app,
            protocol::catalog::LicensingSettings {
                max_activations: 1,
                ..Default::default()
            },
            1,
        )
        .await;
        let dir = tempfile::tempdir().expect("dir");
        let base = f_app.base_url.clone();
        let key = f.keys[0].clone();
        let root = f_app.services.root_jwks();
        let kinds = tokio::task::spawn_blocking(move || {
            let machine = |id: &str| {
                let store = licentia_client::Store::open_with_witness(
                    &dir.path().join(id),
                    "CALC",
                    &dir.path().join("witness"),
                )
                .expect("store");
                licentia_client::Licensing::new(Some(&base), "CALC", Some(id), store)
                    .expect("licensing")
                    .with_root(root.clone())
            };
            let mut one = machine("m1");
            one.activate(licentia_client::Held::Key(&key), "m1")
                .expect("first machine");
            let elsewhere = machine("m2")
                .activate(licentia_client::Held::Key(&key), "m2")
                .err()
                .and_then(|e| e.kind());
            one.remove().expect("removed");
            let limit = machine("m2")
                .activate(licentia_client::Held::Key(&key), "m2")
                .err()
                .and_then(|e| e.kind());
            (elsewhere, limit)
        })
        .await
        .expect("join");
        assert_eq!(
            kinds,
            (
                Some(ProblemKind::ActivatedElsewhere),
                Some(ProblemKind::ActivationLimit)
            )
        );
    })
    .await;
}
