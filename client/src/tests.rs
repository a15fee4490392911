use super::*;
use ed25519_dalek::SigningKey;
use protocol::activation::{sign, Jwk, JwkSet};
use std::collections::BTreeMap;

fn licensing(dir: &std::path::Path, machine: &str, code: &str) -> Licensing {
    let key = SigningKey::from_bytes(&[3u8; 32]);
    let mut store = Store::open_with_witness(dir, "CALC", &dir.join("witness")).expect("store");
    store.state.jwks = Some(JwkSet {
        keys: vec![Jwk::ed25519("k", &key.verifying_key())],
    });
    store.state.activation_code = Some(code.to_owned());
    Licensing::new(None, "CALC", Some(machine), store)
        .expect("licensing")
        .trusting_server_keys()
}

fn code(machine: &str, exp: Option<i64>) -> String {
    let claims = Claims {
        iss: "test".into(),
        sub: "KEY".into(),
        lic: 1,
        act: 1,
        prd: "CALC".into(),
        fp: code::fingerprint("CALC", machine),
        host: machine.into(),
        feat: vec!["print".into()],
        cnt: BTreeMap::new(),
        start: None,
        end: exp.map(|_| "2020-01-01".into()),
        iat: 0,
        nbf: None,
        exp,
        next: now() + 3_600,
        req: None,
    };
    sign(&claims, "k", &SigningKey::from_bytes(&[3u8; 32]))
}

#[test]
fn a_valid_code_passes_offline() {
    let dir = tempfile::tempdir().expect("dir");
    let claims = licensing(dir.path(), "m1", &code("m1", None))
        .status()
        .expect("valid");
    assert_eq!(claims.feat, ["print"]);
}

#[test]
fn another_machines_code_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let err = licensing(dir.path(), "m2", &code("m1", None))
        .status()
        .expect_err("other machine");
    assert!(matches!(err, Error::Code(CodeError::WrongMachine)), "{err}");
    assert_eq!(err.exit_code(), 2);
}

#[test]
fn an_expired_code_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let err = licensing(dir.path(), "m1", &code("m1", Some(1_577_923_200)))
        .status()
        .expect_err("expired");
    assert!(matches!(err, Error::Code(CodeError::Expired(_))), "{err}");
}

#[test]
fn a_changed_byte_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let good = code("m1", None);
    let mut bad = good.clone().into_bytes();
    let i = good.find('.').expect("dot") + 5;
    bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
    let bad = String::from_utf8(bad).expect("ascii");
    let err = licensing(dir.path(), "m1", &bad)
        .status()
        .expect_err("tampered");
    assert!(matches!(err, Error::Code(_)), "{err}");
}

#[test]
fn an_overdue_validation_is_refused_offline() {
    let dir = tempfile::tempdir().expect("dir");
    let key = SigningKey::from_bytes(&[3u8; 32]);
    let mut claims = code::verify_signature(
        &code("m1", None),
        &JwkSet {
            keys: vec![Jwk::ed25519("k", &key.verifying_key())],
        },
    )
    .expect("valid");
    claims.next = now() - VALIDATION_GRACE_SECS - 60;
    let overdue = sign(&claims, "k", &key);
    let err = licensing(dir.path(), "m1", &overdue)
        .status()
        .expect_err("overdue");
    assert!(err.to_string().contains("had to be validated"), "{err}");
}

#[test]
fn pinned_keys_are_the_only_ones_trusted() {
    let dir = tempfile::tempdir().expect("dir");
    // The state file's keys would accept the code; the application's own keys do not.
    let other = SigningKey::from_bytes(&[4u8; 32]);
    let mut l = licensing(dir.path(), "m1", &code("m1", None)).with_jwks(JwkSet {
        keys: vec![Jwk::ed25519("k", &other.verifying_key())],
    });
    assert!(matches!(
        l.status(),
        Err(Error::Code(CodeError::BadSignature))
    ));
}

#[test]
fn a_clock_set_back_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let mut l = licensing(dir.path(), "m1", &code("m1", None));
    l.store.state.memory.last_seen = now() + 3_600;
    assert!(matches!(l.status(), Err(Error::ClockSetBack { .. })));
    // Within the tolerance, it is not.
    l.store.state.memory.last_seen = now() + CLOCK_TOLERANCE_SECS / 2;
    l.status().expect("small corrections are tolerated");
}

#[test]
fn a_check_writes_the_time_seen_only_once_it_moved_on_by_a_minute() {
    let dir = tempfile::tempdir().expect("dir");
    let mut l = licensing(dir.path(), "m1", &code("m1", None));
    l.status().expect("valid");
    let generation = l.store.state.generation;
    assert!(generation > 0, "the first check writes the time it saw");
    // Every file under the store's directory (the state, and the witness in its own folder).
    let files = |d: &std::path::Path| {
        let mut texts = Vec::new();
        let mut dirs = vec![d.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("dir").flatten() {
                let path = entry.path();
                match path.is_dir() {
                    true => dirs.push(path),
                    false => texts.push((path.clone(), std::fs::read(&path).expect("file"))),
                }
            }
        }
        texts.sort();
        texts
    };
    let before = files(dir.path());
    l.status().expect("valid");
    assert_eq!(
        l.store.state.generation, generation,
        "a moment later nothing is written"
    );
    assert_eq!(files(dir.path()), before);
    // Set back within the tolerance and the step, the clock is still refused past them.
    l.store.state.memory.last_seen = now() + CLOCK_TOLERANCE_SECS + LAST_SEEN_STEP_SECS + 5;
    assert!(matches!(l.status(), Err(Error::ClockSetBack { .. })));
}

#[test]
fn what_counts_is_the_time_written_on_disk_not_the_one_held_in_memory() {
    // A long run's checks keep a newer time in memory than on disk; once the one on disk is a
    // minute behind, the next check writes it, so a restart with the clock set back finds it.
    let dir = tempfile::tempdir().expect("dir");
    let mut l = licensing(dir.path(), "m1", &code("m1", None));
    let t = now();
    l.store.state.memory.last_seen = t - 120;
    l.store.save().expect("saved");
    assert_eq!(l.store.written_last_seen(), t - 120);
    let written = l.store.state.generation;
    l.store.state.memory.last_seen = t - 30;
    l.status().expect("valid");
    assert!(
        l.store.state.generation > written,
        "a time a minute behind on disk is written"
    );
    assert!(l.store.written_last_seen() >= t);
}

fn root_of(seed: u8) -> (SigningKey, JwkSet) {
    let root = SigningKey::from_bytes(&[seed; 32]);
    let set = JwkSet {
        keys: vec![Jwk::ed25519("root", &root.verifying_key())],
    };
    (root, set)
}

fn endorsement_of(keys: &[(&str, &SigningKey)], by: &SigningKey) -> String {
    protocol::trust::endorse(
        &protocol::trust::Endorsement {
            iss: "test".into(),
            iat: now(),
            retired: Vec::new(),
            keys: JwkSet {
                keys: keys
                    .iter()
                    .map(|(kid, k)| Jwk::ed25519(kid, &k.verifying_key()))
                    .collect(),
            },
        },
        "root",
        by,
    )
}

#[test]
fn nothing_is_trusted_unless_the_application_says_so() {
    let dir = tempfile::tempdir().expect("dir");
    let store = licensing(dir.path(), "m1", &code("m1", None)).store;
    // The state file holds keys that would verify the code, but nothing pins them.
    let mut l = Licensing::new(None, "CALC", Some("m1"), store).expect("licensing");
    let err = l.status().expect_err("untrusted");
    assert!(matches!(err, Error::Untrusted), "{err}");
    assert!(err.to_string().contains("--root FILE"), "{err}");
    assert_eq!(err.exit_code(), 1);
}

#[test]
fn under_a_pinned_root_the_state_file_cannot_add_a_key() {
    let dir = tempfile::tempdir().expect("dir");
    let (root, roots) = root_of(7);
    let vendor = SigningKey::from_bytes(&[3u8; 32]);
    let mut l = licensing(dir.path(), "m1", &code("m1", None)).with_root(roots.clone());
    // A genuine endorsement of the vendor's key: the code passes offline.
    l.store.state.endorsement = Some(endorsement_of(&[("k", &vendor)], &root));
    l.status().expect("endorsed key");

    // Someone writes their own key into the state file and a code signed with it.
    let mine = SigningKey::from_bytes(&[9u8; 32]);
    let mut claims = code::verify_signature(
        &code("m1", None),
        &JwkSet {
            keys: vec![Jwk::ed25519("k", &vendor.verifying_key())],
        },
    )
    .expect("valid");
    claims.exp = None;
    claims.next = now() + 10 * 365 * 86_400;
    let forged_code = sign(&claims, "mine", &mine);
    l.store.state.activation_code = Some(forged_code.clone());
    l.store.state.jwks = Some(JwkSet {
        keys: vec![Jwk::ed25519("mine", &mine.verifying_key())],
    });
    // ... and an endorsement listing it, signed with their key under the root's name.
    l.store.state.endorsement = Some(endorsement_of(&[("k", &vendor), ("mine", &mine)], &mine));
    let err = l.status().expect_err("forged");
    // The forged endorsement is ignored; with no server to ask, nothing vouches for "mine".
    assert!(matches!(err, Error::Offline(_)), "{err}");

    // Even beside a genuine endorsement, the forged code names a key the root never endorsed.
    l.store.state.endorsement = Some(endorsement_of(&[("k", &vendor)], &root));
    let err = l.status().expect_err("forged");
    assert!(
        matches!(err, Error::Code(CodeError::UnknownKey(_))),
        "{err}"
    );
    // Re-signing the forged claims under the vendor's key id does not help either.
    l.store.state.activation_code = Some(sign(&claims, "k", &mine));
    let err = l.status().expect_err("forged");
    assert!(matches!(err, Error::Code(CodeError::BadSignature)), "{err}");
}

/// A machine whose state was saved once, as a real run leaves it, reopened from disk.
fn saved(dir: &std::path::Path) -> Licensing {
    let mut l = licensing(dir, "m1", &code("m1", None));
    l.store.save().expect("save");
    reopen(dir)
}

fn reopen(dir: &std::path::Path) -> Licensing {
    let store = Store::open_with_witness(dir, "CALC", &dir.join("witness")).expect("store");
    Licensing::new(None, "CALC", Some("m1"), store)
        .expect("licensing")
        .trusting_server_keys()
}

#[test]
fn a_state_edited_by_hand_is_refused_offline() {
    let dir = tempfile::tempdir().expect("dir");
    saved(dir.path()).status().expect("intact");
    let file = dir.path().join("calc.json");
    let text = std::fs::read_to_string(&file).expect("read");
    let mut state: serde_json::Value = serde_json::from_str(&text).expect("json");
    state["memory"]["last_seen"] = 0.into();
    std::fs::write(&file, state.to_string()).expect("write");
    let err = reopen(dir.path()).status().expect_err("edited");
    assert!(matches!(err, Error::StateTampered(_)), "{err}");
    assert!(err.to_string().contains("changed outside"), "{err}");
    assert_eq!(err.exit_code(), 2);
    // A state an older client wrote (no seal) says so, and waits for the server the same way.
    let dir = tempfile::tempdir().expect("dir");
    saved(dir.path());
    let file = dir.path().join("calc.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
    state.as_object_mut().expect("object").remove("seal");
    std::fs::write(&file, state.to_string()).expect("write");
    let err = reopen(dir.path()).status().expect_err("unsealed");
    assert!(err.to_string().contains("older version"), "{err}");
}

#[test]
fn a_state_restored_from_an_older_copy_is_refused_offline() {
    let dir = tempfile::tempdir().expect("dir");
    let mut l = saved(dir.path());
    let file = dir.path().join("calc.json");
    let older = std::fs::read_to_string(&file).expect("read");
    l.status().expect("intact");
    std::fs::write(&file, &older).expect("restore");
    let err = reopen(dir.path()).status().expect_err("rolled back");
    assert!(matches!(err, Error::StateTampered(_)), "{err}");
    assert!(err.to_string().contains("older than"), "{err}");
    // Deleting the witness as well does not help: a sealed state without it is refused.
    std::fs::remove_dir_all(dir.path().join("witness")).expect("rm");
    let err = reopen(dir.path()).status().expect_err("no witness");
    assert!(matches!(err, Error::StateTampered(_)), "{err}");
    // Nor does deleting the state to start afresh while the witness remembers it.
    let dir = tempfile::tempdir().expect("dir");
    saved(dir.path());
    std::fs::remove_file(dir.path().join("calc.json")).expect("rm");
    assert!(reopen(dir.path()).store.memory().tainted.is_some());
}

#[test]
fn a_state_from_another_machine_fails_its_seal() {
    let dir = tempfile::tempdir().expect("dir");
    saved(dir.path());
    let store =
        Store::open_with_witness(dir.path(), "CALC", &dir.path().join("witness")).expect("store");
    let l = Licensing::new(None, "CALC", Some("m2"), store).expect("licensing");
    assert!(l
        .store
        .memory()
        .tainted
        .expect("tainted")
        .contains("changed outside"));
}

#[test]
fn a_code_signed_after_the_local_clock_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let key = SigningKey::from_bytes(&[3u8; 32]);
    let keys = JwkSet {
        keys: vec![Jwk::ed25519("k", &key.verifying_key())],
    };
    let mut claims = code::verify_signature(&code("m1", None), &keys).expect("valid");
    claims.iat = now() + 86_400;
    let future = sign(&claims, "k", &key);
    let err = licensing(dir.path(), "m1", &future)
        .status()
        .expect_err("signed in the future");
    assert!(matches!(err, Error::ClockBehind { .. }), "{err}");
    // Once a code signed at a time was accepted, the clock may not go before it either
    // (beyond the drift clocks have).
    let mut l = licensing(dir.path(), "m1", &code("m1", None));
    l.store.state.memory.newest_signed = now() + 2 * SIGNED_TIME_TOLERANCE_SECS;
    assert!(matches!(l.status(), Err(Error::ClockBehind { .. })));
    l.store.state.memory.newest_signed = now() + SIGNED_TIME_TOLERANCE_SECS / 2;
    l.status()
        .expect("a clock a little behind the server's is drift, not an attack");
}

/// A code for machine m1 signed at `iat`.
fn code_at(iat: i64) -> String {
    let key = SigningKey::from_bytes(&[3u8; 32]);
    let keys = JwkSet {
        keys: vec![Jwk::ed25519("k", &key.verifying_key())],
    };
    let mut claims = code::verify_signature(&code("m1", None), &keys).expect("valid");
    claims.iat = iat;
    sign(&claims, "k", &key)
}

#[test]
fn a_taint_sticks_until_the_server_gives_a_newer_code() {
    let dir = tempfile::tempdir().expect("dir");
    let mut l = saved(dir.path());
    // One code, accepted and later replayed (the same signed time, whatever the clock does).
    let held = code_at(now() - 60);
    l.accept(&held, None).expect("a code from the server");
    let file = dir.path().join("calc.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
    state["memory"]["newest_signed"] = 0.into();
    std::fs::write(&file, state.to_string()).expect("write");
    // Ordinary commands that save do not launder it, nor does losing the witness.
    let mut l = reopen(dir.path());
    l.request_code(Held::Key("KEY"), "m1")
        .expect("a request can still be made");
    std::fs::remove_dir_all(dir.path().join("witness")).expect("rm");
    let mut l = reopen(dir.path());
    assert!(matches!(l.status(), Err(Error::StateTampered(_))));
    // A code no newer than one it had (a replay, say from a server that echoes it) lifts
    // nothing; a newer one does.
    let err = l.accept(&held, None).expect_err("replayed");
    assert!(matches!(err, Error::StateTampered(_)), "{err}");
    l.accept(&code_at(now()), None).expect("fresh");
    reopen(dir.path()).status().expect("sound again");
}

#[test]
fn a_clock_that_ran_ahead_is_forgotten_when_the_server_signs_now() {
    let dir = tempfile::tempdir().expect("dir");
    let mut l = saved(dir.path());
    l.store.state.memory.last_seen = now() + 86_400;
    l.store.save().expect("save");
    let mut l = reopen(dir.path());
    assert!(matches!(l.status(), Err(Error::ClockSetBack { .. })));
    l.accept(&code_at(now()), None).expect("the server's time");
    reopen(dir.path())
        .status()
        .expect("the clock agrees with the server now");
}

#[test]
fn withdrawn_keys_and_older_endorsements_are_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let (root, roots) = root_of(7);
    let vendor = SigningKey::from_bytes(&[3u8; 32]);
    let mut l = licensing(dir.path(), "m1", &code("m1", None)).with_root(roots);
    l.store.state.endorsement = Some(endorsement_of(&[("k", &vendor)], &root));
    l.status().expect("endorsed");
    // An endorsement older than one this machine has seen is not taken (it may list a key
    // withdrawn since); with no server to ask for the current one, nothing is trusted.
    l.store.state.memory.newest_endorsed = now() + 60;
    assert!(matches!(l.status(), Err(Error::Offline(_))));
    l.store.state.memory.newest_endorsed = 0;
    // A key a newer endorsement listed as withdrawn is refused even offline.
    l.store.state.memory.retired = vec!["k".into()];
    let err = l.status().expect_err("withdrawn");
    assert!(err.to_string().contains("withdrawn"), "{err}");
}

#[test]
fn the_witness_keeps_its_name_from_the_first_run() {
    let dir = tempfile::tempdir().expect("dir");
    // The store's folder does not exist before the first save.
    let store_dir = dir.path().join("not-yet");
    let open = || {
        let store = Store::open_with_witness(&store_dir, "CALC", &dir.path().join("witness"))
            .expect("store");
        Licensing::new(None, "CALC", Some("m1"), store)
            .expect("licensing")
            .trusting_server_keys()
    };
    let mut l = open();
    l.store.state.jwks = licensing(dir.path(), "m1", "x").store.state.jwks;
    l.store.state.activation_code = Some(code("m1", None));
    l.store.save().expect("first save");
    open().status().expect("the same witness on the second run");
}

#[test]
fn giving_the_licence_up_drops_a_pending_offline_request() {
    let dir = tempfile::tempdir().expect("dir");
    let mut l = licensing(dir.path(), "m1", &code("m1", None));
    l.store.state.licence_key = Some("KEY".into());
    l.request_code(Held::Key("KEY"), "m1").expect("request");
    let removal = l.removal_code("m1").expect("given up");
    assert!(removal.starts_with("LRM1-"));
    // An answer to that request can no longer bring the licence back here.
    assert!(l.store.state.pending.is_none());
    assert!(matches!(l.import("a.b.c"), Err(Error::Offline(_))));
    assert_eq!(l.removal_code("m1").expect("shown again"), removal);
}

#[test]
fn a_server_list_is_read_in_order_without_blanks_or_trailing_slashes() {
    assert_eq!(
        server_list(Some(" https://a.example/ ,, https://b.example:8443,")),
        ["https://a.example", "https://b.example:8443"]
    );
    assert!(server_list(Some("")).is_empty());
    assert!(server_list(Some(" , ")).is_empty());
    assert!(server_list(None).is_empty());
}
