//! Real `licentia-client` processes acting as workstations against a running server.

use crate::helpers::*;
use licensing::Backend;
use protocol::catalog::LicensingSettings;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) fn client_bin() -> PathBuf {
    let server = PathBuf::from(env!("CARGO_BIN_EXE_server"));
    let bin = server.with_file_name("licentia-client");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p client --bin licentia-client` first \
         (scripts/test does; `cargo test` alone builds it only as a test harness)",
        bin.display()
    );
    bin
}

pub(crate) struct Workstation {
    pub(crate) store: tempfile::TempDir,
    /// Where the client keeps the witness of its state (away from the store, as by default).
    pub(crate) witness: tempfile::TempDir,
    pub(crate) machine: &'static str,
    server: String,
    /// The vendor's root key shipped with the application (`--root`), if any.
    root: Option<PathBuf>,
}

impl Workstation {
    pub(crate) fn new(server: &str, machine: &'static str) -> Self {
        Self {
            store: tempfile::tempdir().expect("dir"),
            witness: tempfile::tempdir().expect("dir"),
            machine,
            server: server.to_owned(),
            root: None,
        }
    }

    /// The same machine, its application shipped with the vendor's root key.
    pub(crate) fn shipped_with(mut self, root: &Path) -> Self {
        self.root = Some(root.to_owned());
        self
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.run_for("CALC", args)
    }

    /// Runs the CLI as the application of `product`.
    pub(crate) fn run_for(&self, product: &str, args: &[&str]) -> Output {
        self.command(&self.server, product)
            .args(args)
            .output()
            .expect("run licentia-client")
    }

    /// Runs the CLI on this machine while its server cannot be reached.
    pub(crate) fn run_cut_off(&self, args: &[&str]) -> Output {
        self.command("http://127.0.0.1:9", "CALC")
            .args(args)
            .output()
            .expect("run licentia-client")
    }

    pub(crate) fn command(&self, server: &str, product: &str) -> Command {
        let mut cmd = Command::new(client_bin());
        // An empty server: a machine that has never been told of one (offline).
        if !server.is_empty() {
            cmd.args(["--server", server]);
        }
        if let Some(root) = &self.root {
            cmd.arg("--root").arg(root);
        }
        cmd.args([
            "--product",
            product,
            "--machine-id",
            self.machine,
            "--hostname",
            self.machine,
        ])
        .arg("--store")
        .arg(self.store.path())
        .env("LICENTIA_WITNESS_DIR", self.witness.path());
        cmd
    }

    /// Changes the state as someone who knows how it is sealed would: the seal and the witness
    /// stay consistent, so only the checks that do not rest on them are left.
    pub(crate) fn reseal(&self, change: impl FnOnce(&mut licentia_client::Store)) {
        let mut store = licentia_client::Store::open_with_witness(
            self.store.path(),
            "CALC",
            self.witness.path(),
        )
        .expect("store");
        store.bind(&protocol::activation::fingerprint("CALC", self.machine));
        change(&mut store);
        // Such a person rewrites the witness as well, taint and all.
        let forged = licentia_client::Vouched {
            untaint: true,
            clock: true,
        };
        store.save_with(forged).expect("save");
    }

    pub(crate) fn store_file(&self) -> PathBuf {
        Path::new(self.store.path()).join("calc.json")
    }
}

/// The output of a `checkout --hold` workstation, read line by line.
pub(crate) type Lines = tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>;

/// A workstation (`--server` may list several) holding a seat of feature F of the pool of
/// `pool_key` for `user`, once it says so; and the rest of what it prints.
pub(crate) async fn holding(
    servers: &str,
    store: &Path,
    host: &str,
    pool_key: &str,
    user: &str,
) -> (tokio::process::Child, Lines) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(client_bin())
        .args(["--server", servers, "--hostname", host, "checkout"])
        .args([
            "--pool-key",
            pool_key,
            "--feature",
            "F",
            "--user",
            user,
            "--hold",
        ])
        .arg("--store")
        .arg(store)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn licentia-client");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    loop {
        match lines.next_line().await.expect("read") {
            Some(line) if line.starts_with("Holding") => return (child, lines),
            Some(_) => {}
            None => panic!("the workstation {host} never held its seat"),
        }
    }
}

/// The server's root key written to a file, as a vendor ships it with the application.
pub(crate) async fn shipped_root(app: &TestApp) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("vendor-root.json");
    let root = reqwest::get(format!("{}/.well-known/licentia-root.json", app.base_url))
        .await
        .expect("root")
        .text()
        .await
        .expect("body");
    std::fs::write(&file, root).expect("write");
    (dir, file)
}

/// The server's JWKS written to a file in `dir`, as a vendor ships it with the application.
async fn shipped_jwks(app: &TestApp, dir: &Path) -> PathBuf {
    let file = dir.join("vendor-jwks.json");
    let jwks = reqwest::get(format!("{}/.well-known/jwks.json", app.base_url))
        .await
        .expect("jwks")
        .text()
        .await
        .expect("text");
    std::fs::write(&file, jwks).expect("write");
    file
}

pub(crate) fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A machine that never reached the server imports its response code with the keys shipped
/// with the application, and is told clearly that it needs them when they are missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_import_asks_for_the_vendors_keys_when_it_lacks_them() {
    let app = TestApp::spawn(Backend::Sqlite, &[]).await;
    let f = fixture(&app, LicensingSettings::default(), 1).await;
    let ws = Workstation::new("", "air-gapped");
    let out = ws.run(&["request-code", "--key", &f.keys[0]]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Paste this request code into the portal (Offline activation)"),
        "names the portal page that exists: {}",
        text(&out)
    );
    let request = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let answer = app
        .services
        .answer_request(&f.admin, &request)
        .await
        .expect("answered");
    let out = ws.run(&["import", &answer.code]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("give --root FILE (LICENTIA_ROOT")
            && text(&out).contains("--jwks FILE (LICENTIA_JWKS)"),
        "{}",
        text(&out)
    );
    let jwks_file = shipped_jwks(&app, ws.store.path()).await;
    let out = ws.run(&[
        "--jwks",
        jwks_file.to_str().expect("utf-8"),
        "import",
        &answer.code,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Activated (offline)"), "{}", text(&out));
}

/// A server listed first that cannot be reached is passed over; one that answers with a
/// refusal (4xx) is the answer: the next server is not asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_list_moves_on_when_a_server_is_away_never_after_a_refusal() {
    let app = TestApp::spawn(Backend::Sqlite, &[]).await;
    let f = fixture(&app, LicensingSettings::default(), 2).await;
    let (_shipped, root) = shipped_root(&app).await;
    let away = format!("http://127.0.0.1:9,{}", app.base_url);
    let ws = Workstation::new(&away, "machine-1").shipped_with(&root);
    let out = ws.run(&["activate", "--key", &f.keys[0]]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(ws.run(&["validate"]).status.success());
    // Another installation, listed first, does not know the key: its refusal stands.
    let other = TestApp::spawn(Backend::Sqlite, &[]).await;
    let refusing = format!("{},{}", other.base_url, app.base_url);
    let ws2 = Workstation::new(&refusing, "machine-2").shipped_with(&root);
    let out = ws2.run(&["activate", "--key", &f.keys[1]]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let licence = app
        .services
        .licence(&f.admin, f.licence_ids[1])
        .await
        .expect("licence");
    assert!(
        licence.activation.is_none(),
        "the second server was not asked"
    );
    // Nothing listed at all: said plainly.
    let none = Workstation::new(" , ", "machine-3").shipped_with(&root);
    let out = none.run(&["activate", "--key", &f.keys[1]]);
    assert!(
        !out.status.success() && text(&out).contains("no licence server is configured"),
        "{}",
        text(&out)
    );
}

/// A licence key typed into another product's application is refused by the server before it
/// binds anything: no ghost machine holds one of the licence's activations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_product_code_burns_no_activation() {
    let app = TestApp::spawn(Backend::Sqlite, &[]).await;
    let f = fixture(&app, LicensingSettings::default(), 1).await;
    let (_shipped, root) = shipped_root(&app).await;
    let ws = Workstation::new(&app.base_url, "machine-1").shipped_with(&root);
    let out = ws.run_for("WRONG", &["activate", "--key", &f.keys[0]]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("This licence key is for product CALC, not WRONG"),
        "{}",
        text(&out)
    );
    let licence = app
        .services
        .licence(&f.admin, f.licence_ids[0])
        .await
        .expect("licence");
    assert!(licence.activation.is_none() && licence.activation_count == 0);
    let out = ws.run(&["activate", "--key", &f.keys[0]]);
    assert!(out.status.success(), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workstations_activate_validate_and_exchange_codes_offline() {
    let app = TestApp::spawn(Backend::Sqlite, &[]).await;
    let f = fixture(
        &app,
        LicensingSettings {
            limited: true,
            validity_days: Some(30),
            end_user_removal: false,
            ..Default::default()
        },
        2,
    )
    .await;
    let (admin, carla) = (&f.admin, &f.client);

    // Online activation, then an offline check. (The test server's clock is fixed in the future, so
    // the client checks dates against it only through what the server signs.)
    let (_shipped, root) = shipped_root(&app).await;
    let ws1 = Workstation::new(&app.base_url, "machine-1").shipped_with(&root);
    let out = ws1.run(&["activate", "--key", &f.keys[0]]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Features:   print"), "{}", text(&out));

    // The end user cannot remove a limited licence: a clear refusal, exit code 2.
    let out = ws1.run(&["remove"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("limited licence"), "{}", text(&out));

    // The administrator extends it; the next validation shows the new end.
    let new_end = protocol::time::format_date(app.clock.now() / 86_400 + 200);
    app.services
        .edit_licence(
            admin,
            f.licence_ids[0],
            vec!["print".into()],
            BTreeMap::new(),
            protocol::catalog::ExpiryEdit::On(new_end.clone()),
        )
        .await
        .expect("extend");
    let out = ws1.run(&["validate"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&new_end), "{}", text(&out));

    // Cut off from the server, the machine checks its code against the endorsement it kept,
    // verified with the root shipped in the application.
    let out = ws1.run_cut_off(&["status"]);
    assert!(out.status.success(), "{}", text(&out));
    // Without the endorsement it must ask the (unreachable) server.
    ws1.reseal(|store| store.state.endorsement = None);
    let out = ws1.run_cut_off(&["status"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "without keys it must ask the (unreachable) server: {}",
        text(&out)
    );
    // An application that ships the signing keys themselves needs neither.
    let jwks_file = shipped_jwks(&app, ws1.store.path()).await;
    let keys_only = Workstation {
        root: None,
        ..Workstation::new("", "machine-1")
    };
    std::fs::copy(ws1.store_file(), keys_only.store_file()).expect("copy");
    keys_only.reseal(|_| {});
    let out = keys_only.run_cut_off(&["--jwks", jwks_file.to_str().expect("utf-8"), "status"]);
    assert!(out.status.success(), "{}", text(&out));

    // Offline: a request code, answered in the portal by the client user, imported once.
    let ws2 = Workstation::new(&app.base_url, "machine-2").shipped_with(&root);
    let out = ws2.run(&["request-code", "--key", &f.keys[1]]);
    assert!(out.status.success(), "{}", text(&out));
    let request = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(request.starts_with("LRQ1-"), "{request}");
    let answer = app
        .services
        .answer_request(carla, &request)
        .await
        .expect("answered");
    // Another machine cannot use this response.
    let ws3 = Workstation::new(&app.base_url, "machine-3").shipped_with(&root);
    ws3.run(&["request-code", "--key", &f.keys[1]]);
    let out = ws3.run(&["import", &answer.code]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = ws2.run(&["import", &answer.code]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Activated (offline)"), "{}", text(&out));
    let out = ws2.run(&["import", &answer.code]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a second import is refused: {}",
        text(&out)
    );
    assert!(text(&out).contains("no pending request"), "{}", text(&out));

    // A state file edited by hand fails its seal: offline use waits for the server.
    let genuine = std::fs::read_to_string(ws2.store_file()).expect("store");
    let mut state: serde_json::Value = serde_json::from_str(&genuine).expect("json");
    state["memory"]["last_seen"] = 0.into();
    std::fs::write(ws2.store_file(), state.to_string()).expect("write");
    let out = ws2.run(&["status"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("changed outside the licensing client"),
        "{}",
        text(&out)
    );
    // Validating online replaces it (the server's clock has moved on by then).
    app.clock.advance(1);
    let out = ws2.run(&["validate"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(ws2.run(&["status"]).status.success());

    // A state restored from an older copy is behind its witness.
    std::fs::write(ws2.store_file(), &genuine).expect("restore");
    let out = ws2.run(&["status"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("older than the one this machine last saved"),
        "{}",
        text(&out)
    );
    app.clock.advance(1);
    let out = ws2.run(&["validate"]);
    assert!(out.status.success(), "{}", text(&out));

    // Re-sealed by someone who knows how: a code changed by one character still fails its
    // signature.
    let code = state["activation_code"].as_str().expect("code").to_owned();
    let mid = code.len() / 2;
    let mut tampered = code.clone();
    tampered.replace_range(
        mid..mid + 1,
        if &code[mid..mid + 1] == "x" { "y" } else { "x" },
    );
    ws2.reseal(|store| store.state.activation_code = Some(tampered));
    let out = ws2.run(&["status"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("signature is not valid"),
        "{}",
        text(&out)
    );
    // Activating again on the same machine mends it.
    assert!(ws2.run(&["activate", "--key", &f.keys[1]]).status.success());

    // A clock set back before the last check is noticed, re-sealed or not.
    ws2.reseal(|store| store.state.memory.last_seen = licentia_now() + 86_400);
    let out = ws2.run(&["status"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("system clock is set back"),
        "{}",
        text(&out)
    );
    // And, with no file to edit at all, before a time the server signed: a code issued by a
    // server a day ahead of this machine's clock is refused.
    app.clock.advance(86_400);
    let out = ws1.run(&["validate"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("the clock is behind"), "{}", text(&out));

    // An unreachable server is reported as such (exit code 3).
    let offline = Workstation::new("http://127.0.0.1:9", "machine-4");
    let out = offline.run(&["activate", "--key", &f.keys[0]]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("cannot be reached"), "{}", text(&out));
}

/// Trust comes from the root shipped with the application and nothing else: a state file edited
/// to trust a new key and hold a self-signed code is refused, a key rotation is followed, and a
/// withdrawn key's code is refused at validation with a clear answer, then replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_comes_from_the_shipped_root_only() {
    use ed25519_dalek::SigningKey;
    use protocol::activation::{sign, verify_signature, Jwk, JwkSet};
    let app = TestApp::spawn(Backend::Sqlite, &[]).await;
    let f = fixture(&app, LicensingSettings::default(), 1).await;
    let (_shipped, root) = shipped_root(&app).await;
    let ws = Workstation::new(&app.base_url, "machine-1").shipped_with(&root);
    let out = ws.run(&["activate", "--key", &f.keys[0]]);
    assert!(out.status.success(), "{}", text(&out));
    let genuine: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ws.store_file()).expect("store"))
            .expect("json");

    // Forge: a key of one's own in the state file, an "endorsement" of it signed with that key
    // under the root's name, and a never-expiring code signed with it.
    let vendor_keys: JwkSet = reqwest::get(format!("{}/.well-known/jwks.json", app.base_url))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let code = genuine["activation_code"].as_str().expect("code");
    let mut claims = verify_signature(code, &vendor_keys).expect("genuine");
    claims.feat = vec!["everything".into()];
    claims.exp = None;
    claims.next = licentia_now() + 10 * 365 * 86_400;
    let mine = SigningKey::from_bytes(&[42; 32]);
    let my_set = JwkSet {
        keys: vec![Jwk::ed25519("mine", &mine.verifying_key())],
    };
    let root_kid = serde_json::from_str::<JwkSet>(&std::fs::read_to_string(&root).expect("root"))
        .expect("root jwks")
        .keys[0]
        .kid
        .clone();
    let endorsement = protocol::trust::endorse(
        &protocol::trust::Endorsement {
            iss: app.base_url.clone(),
            iat: licentia_now(),
            keys: my_set.clone(),
            retired: Vec::new(),
        },
        &root_kid,
        &mine,
    );
    let forged_code = sign(&claims, "mine", &mine);
    // Written by hand, the file fails its seal.
    let mut state = genuine.clone();
    state["jwks"] = serde_json::to_value(&my_set).expect("json");
    state["activation_code"] = forged_code.clone().into();
    std::fs::write(ws.store_file(), state.to_string()).expect("write");
    let out = ws.run(&["status"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("changed outside"), "{}", text(&out));
    // Re-sealed by someone who knows how, the key is still not trusted: not in the state's
    // development key list, not in an endorsement signed with it, and not without one.
    type Forgery<'a> = Box<dyn Fn(&mut licentia_client::Store) + 'a>;
    let forgeries: [(&str, Forgery); 3] = [
        (
            "jwks",
            Box::new(|store| store.state.jwks = Some(my_set.clone())),
        ),
        (
            "endorsement",
            Box::new(|store| store.state.endorsement = Some(endorsement.clone())),
        ),
        ("nothing else", Box::new(|_| {})),
    ];
    for (what, forge) in forgeries {
        ws.reseal(|store| {
            forge(store);
            store.state.activation_code = Some(forged_code.clone());
        });
        let out = ws.run(&["status"]);
        assert_eq!(out.status.code(), Some(2), "{what}: {}", text(&out));
        assert!(
            text(&out).contains("unknown key (mine)"),
            "{what}: {}",
            text(&out)
        );
        // Cut off from the server, the forged endorsement is not taken either.
        let out = ws.run_cut_off(&["status"]);
        assert!(
            text(&out).contains("unknown key (mine)") || text(&out).contains("cannot be reached"),
            "{what}: {}",
            text(&out)
        );
        assert_ne!(out.status.code(), Some(0), "{what}: {}", text(&out));
    }
    // Back to the genuine state, as the server vouches for it.
    assert!(ws.run(&["activate", "--key", &f.keys[0]]).status.success());
    let genuine: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ws.store_file()).expect("store"))
            .expect("json");

    // The vendor rotates its signing key: the next code is signed with the new one, which the
    // client learns from the root's endorsement, with nothing new shipped.
    let old_kid = app.services.ensure_signing_key().await.expect("kid");
    let new_kid = app.services.rotate_signing_key().await.expect("rotate");
    let out = ws.run(&["validate"]);
    assert!(out.status.success(), "{}", text(&out));
    let after: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ws.store_file()).expect("store"))
            .expect("json");
    let fresh = after["activation_code"].as_str().expect("code");
    assert_eq!(
        protocol::activation::key_id(fresh).as_deref(),
        Some(new_kid.as_str())
    );
    assert!(ws.run(&["status"]).status.success());

    // A machine still holding a code of the old key, once the vendor withdraws that key, is
    // told so at validation, and activates again on the same machine for a current code.
    let old_code = genuine["activation_code"]
        .as_str()
        .expect("code")
        .to_owned();
    ws.reseal(|store| store.state.activation_code = Some(old_code.clone()));
    assert_eq!(
        protocol::activation::key_id(code).as_deref(),
        Some(old_kid.as_str())
    );
    app.services
        .retire_signing_key(&old_kid)
        .await
        .expect("retire");
    let out = ws.run(&["validate"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("which the vendor has withdrawn"),
        "{}",
        text(&out)
    );
    let out = ws.run(&["activate", "--key", &f.keys[0]]);
    assert!(out.status.success(), "{}", text(&out));
    let licence = app
        .services
        .licence(&f.admin, f.licence_ids[0])
        .await
        .expect("licence");
    assert_eq!(
        licence.activation_count, 1,
        "activating again on the same machine uses nothing"
    );
    drop(old_code);
}

/// A licence removed in the portal without its machine is not usable by another machine until
/// the date the portal gave; the machine's own removal frees it at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_licence_removed_without_its_machine_waits_for_its_code_to_lapse() {
    use licensing::activation::Remover;
    let app = TestApp::spawn(Backend::Sqlite, &[]).await;
    let settings = LicensingSettings {
        validate_every_days: 7,
        ..Default::default()
    };
    let f = fixture(&app, settings, 1).await;
    let (_shipped, root) = shipped_root(&app).await;
    let ws1 = Workstation::new(&app.base_url, "machine-1").shipped_with(&root);
    let ws2 = Workstation::new(&app.base_url, "machine-2").shipped_with(&root);
    // The server's clock starts three weeks back, so that it can reach the day the licence
    // frees without signing codes in the workstations' future (which they refuse).
    let wait = 7 * 86_400 + protocol::activation::VALIDATION_GRACE_SECS;
    app.clock.advance(-(wait + 3_600));
    let out = ws1.run(&["activate", "--key", &f.keys[0]]);
    assert!(out.status.success(), "{}", text(&out));
    let portal = Remover::Portal {
        actor: &f.client,
        force: false,
        free_now: false,
    };
    let removal = app
        .services
        .remove_activation(&f.keys[0], None, portal)
        .await
        .expect("removed in the portal");
    let frees_at = removal.frees_at.expect("waits for the code");
    let out = ws2.run(&["activate", "--key", &f.keys[0]]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains(&protocol::time::format_utc(frees_at)),
        "the date the portal showed: {}",
        text(&out)
    );
    assert_eq!(
        frees_at,
        app.clock.now() + wait,
        "the removed code's validation time plus grace"
    );
    app.clock.advance(wait + 1);
    let out = ws2.run(&["activate", "--key", &f.keys[0]]);
    assert!(out.status.success(), "{}", text(&out));
    // The machine's own removal frees the licence at once.
    assert!(ws2.run(&["remove"]).status.success());
    let out = ws1.run(&["activate", "--key", &f.keys[0]]);
    assert!(out.status.success(), "{}", text(&out));
}

/// The offline transfer: a machine that cannot reach the server gives its licence up with a
/// removal code, pasted into the portal by the client's user, which frees the licence at once,
/// also after a removal in the portal that was waiting for the machine's code to lapse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_code_frees_the_licence_at_once() {
    use licensing::activation::Remover;
    let app = TestApp::spawn(Backend::Sqlite, &[]).await;
    let f = fixture(&app, LicensingSettings::default(), 1).await;
    let (_shipped, root) = shipped_root(&app).await;
    let ws1 = Workstation::new(&app.base_url, "machine-1").shipped_with(&root);
    let ws2 = Workstation::new(&app.base_url, "machine-2").shipped_with(&root);
    assert!(ws1.run(&["activate", "--key", &f.keys[0]]).status.success());
    let before = std::fs::read_to_string(ws1.store_file()).expect("store");

    let out = ws1.run_cut_off(&["removal-code"]);
    assert!(out.status.success(), "{}", text(&out));
    let code = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(code.starts_with("LRM1-"), "{code}");
    // Given up here: the licence no longer works on this machine; asked again, the same code.
    let out = ws1.run_cut_off(&["status"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no licence is activated"),
        "{}",
        text(&out)
    );
    let again = ws1.run_cut_off(&["removal-code"]);
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), code);
    // Putting the old state back is noticed.
    std::fs::write(ws1.store_file(), &before).expect("restore");
    let out = ws1.run_cut_off(&["status"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("older than the one this machine last saved"),
        "{}",
        text(&out)
    );

    // A code naming another machine, or damaged, is refused; another client's user may not.
    let mut other = protocol::activation::RemovalCode::decode(&code).expect("decodes");
    other.fp = protocol::activation::fingerprint("CALC", "machine-2");
    let refused = app
        .services
        .accept_removal_code(&f.client, &other.encode())
        .await;
    assert!(
        matches!(refused, Err(licensing::Error::Invalid(_))),
        "{refused:?}"
    );
    let refused = app
        .services
        .accept_removal_code(&f.client, &code[..code.len() - 2])
        .await;
    assert!(
        matches!(refused, Err(licensing::Error::Invalid(_))),
        "{refused:?}"
    );
    let admin_browser = app.browser();
    admin_browser
        .sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
        .await
        .ok();
    let (_, stranger) = app
        .client_user(&admin_browser, "Globex", "gus@globex.test")
        .await;
    let refused = stranger
        .rpc("accept_removal_code", &[("removal_code", &code)])
        .await;
    assert_eq!(refused.error(), "NotAllowed");

    // The client's user pastes it: the licence is free for another machine at once.
    let host = app
        .services
        .accept_removal_code(&f.client, &code)
        .await
        .expect("freed");
    assert_eq!(host, "machine-1");
    let out = ws2.run(&["activate", "--key", &f.keys[0]]);
    assert!(out.status.success(), "{}", text(&out));
    let twice = app.services.accept_removal_code(&f.client, &code).await;
    assert!(matches!(twice, Err(licensing::Error::Gone(_))), "{twice:?}");

    // After a removal in the portal that waits for the machine's code, the machine's removal
    // code frees the licence at once too.
    let portal = Remover::Portal {
        actor: &f.client,
        force: false,
        free_now: false,
    };
    app.services
        .remove_activation(&f.keys[0], None, portal)
        .await
        .expect("removed");
    assert_eq!(
        ws1.run(&["activate", "--key", &f.keys[0]]).status.code(),
        Some(2)
    );
    let out = ws2.run_cut_off(&["removal-code"]);
    assert!(out.status.success(), "{}", text(&out));
    let code = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    app.services
        .accept_removal_code(&f.client, &code)
        .await
        .expect("freed");
    app.clock.advance(1);
    let out = ws1.run(&["activate", "--key", &f.keys[0]]);
    assert!(out.status.success(), "{}", text(&out));

    // A removal code made before the machine took the licence again gives up an old code:
    // it frees nothing.
    let out = ws1.run_cut_off(&["removal-code"]);
    let stale = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    app.clock.advance(1);
    assert!(ws1.run(&["activate", "--key", &f.keys[0]]).status.success());
    let refused = app.services.accept_removal_code(&f.client, &stale).await;
    assert!(
        matches!(&refused, Err(licensing::Error::Invalid(e)) if e.message.contains("older licence code")),
        "{refused:?}"
    );
    // A plain removal call naming key and machine, without the code, frees nothing at once.
    let (st, body, _) = api_post(
        &app,
        "/api/v1/activations/remove",
        serde_json::json!({"licence_key": f.keys[0], "fingerprint": protocol::activation::fingerprint("CALC", "machine-1")}),
    )
    .await;
    assert_eq!(st, reqwest::StatusCode::OK, "{body}");
    assert!(body["frees_at"].as_i64().is_some(), "{body}");
    assert_eq!(
        ws2.run(&["activate", "--key", &f.keys[0]]).status.code(),
        Some(2)
    );
}

fn licentia_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Floating seats held by real CLI processes: a seat while held (through a server list whose
/// first server is down), a refusal naming the feature and its seats, release on SIGTERM, and a
/// killed workstation's seat back after its lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workstations_hold_floating_seats() {
    use tokio::io::AsyncBufReadExt;
    within_limit(async {
        let app = TestApp::spawn(Backend::Sqlite, &[]).await;
        let (admin, pool) = acme_pool(&app, 30).await;
        app.services
            .add_pool_key(&admin, pool.id, key_input("F", "ConcurrentUser", 1))
            .await
            .expect("key");
        let servers = format!("http://127.0.0.1:9,{}", app.base_url);
        let store = tempfile::tempdir().expect("dir");
        let hold = |host: &str| {
            let mut cmd = tokio::process::Command::new(client_bin());
            cmd.args(["--server", &servers, "--hostname", host, "checkout"])
                .args(["--pool-key", &pool.access_key, "--feature", "F"])
                .args(["--user", "ann", "--process", "cad.exe", "--hold"])
                .arg("--store")
                .arg(store.path())
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true);
            cmd.spawn().expect("spawn licentia-client")
        };
        let held = |mut child: tokio::process::Child| async move {
            let out = child.stdout.take().expect("stdout");
            let mut lines = tokio::io::BufReader::new(out).lines();
            while let Some(line) = lines.next_line().await.expect("read") {
                if line.starts_with("Holding") {
                    return (child, lines);
                }
            }
            panic!("the workstation never held its seat");
        };
        let in_use = |app: &TestApp| {
            let (services, admin) = (app.services.clone(), admin.clone());
            async move {
                services
                    .usage_per_feature(&admin)
                    .await
                    .expect("usage")
                    .first()
                    .map(|u| u.in_use)
            }
        };

        let (holder, mut lines) = held(hold("ws-1")).await;
        assert_eq!(in_use(&app).await, Some(1));
        let seats = app
            .services
            .detailed_usage(&admin, pool.id, "Vendor", "F")
            .await
            .expect("detail");
        assert_eq!(
            (seats[0].host.as_str(), seats[0].process.as_str()),
            ("ws-1", "cad.exe")
        );

        let second = Command::new(client_bin())
            .args(["--server", &app.base_url, "--hostname", "ws-2", "checkout"])
            .args([
                "--pool-key",
                &pool.access_key,
                "--feature",
                "F",
                "--user",
                "bob",
            ])
            .arg("--store")
            .arg(store.path())
            .output()
            .expect("run");
        assert_eq!(second.status.code(), Some(2), "{}", text(&second));
        assert!(
            text(&second).contains("The 1 seat of feature F is in use."),
            "{}",
            text(&second)
        );

        let pid = holder.id().expect("pid").to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(killed.success());
        let mut holder = holder;
        let status = holder.wait().await.expect("wait");
        assert!(status.success(), "{status}");
        let mut rest = Vec::new();
        while let Some(line) = lines.next_line().await.expect("read") {
            rest.push(line);
        }
        assert!(rest.iter().any(|l| l == "Released."), "{rest:?}");
        assert_eq!(in_use(&app).await, Some(0));

        // A killed workstation releases nothing…
        let (mut holder, _lines) = held(hold("ws-3")).await;
        holder.start_kill().expect("kill -9");
        holder.wait().await.expect("wait");
        assert_eq!(in_use(&app).await, Some(1));
        let seat_of_ws3 = |app: &TestApp| {
            let (services, admin) = (app.services.clone(), admin.clone());
            async move {
                let seats = services
                    .detailed_usage(&admin, pool.id, "Vendor", "F")
                    .await
                    .expect("detail");
                seats.iter().map(|s| s.id).collect::<Vec<_>>()
            }
        };
        let before = seat_of_ws3(&app).await;
        // …and another machine with the pool key, naming its user and host, cannot take it over…
        let elsewhere = tempfile::tempdir().expect("dir");
        let hijack = Command::new(client_bin())
            .args(["--server", &app.base_url, "--hostname", "ws-3", "checkout"])
            .args(["--pool-key", &pool.access_key, "--feature", "F"])
            .args(["--user", "ann", "--process", "cad.exe"])
            .arg("--store")
            .arg(elsewhere.path())
            .output()
            .expect("run");
        assert_eq!(hijack.status.code(), Some(2), "{}", text(&hijack));
        assert!(
            text(&hijack).contains("Only the installation that took it can resume it"),
            "{}",
            text(&hijack)
        );
        // …while the workstation itself, restarted, resumes its own seat at once.
        let (mut holder, _lines) = held(hold("ws-3")).await;
        assert_eq!(seat_of_ws3(&app).await, before);
        holder.start_kill().expect("kill -9");
        holder.wait().await.expect("wait");
        // Its seat comes back once its lease ran out.
        assert_eq!(in_use(&app).await, Some(1));
        app.clock.advance(31);
        assert_eq!(
            app.services.reclaim_expired_seats().await.expect("reclaim"),
            1
        );
        assert_eq!(in_use(&app).await, Some(0));
    })
    .await;
}

/// Forwards 127.0.0.1:`port` to `upstream` until aborted (the network between a workstation and
/// its server). Returns the tasks to abort to cut it.
pub(crate) async fn proxy(
    port: u16,
    upstream: std::net::SocketAddr,
) -> Vec<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the proxy");
    let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::<tokio::task::AbortHandle>::new()));
    let accept = {
        let conns = conns.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await else {
                    continue;
                };
                let task = tokio::spawn(async move {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                if let Ok(mut c) = conns.lock() {
                    c.push(task.abort_handle());
                }
            }
        })
    };
    let conns_for_cut = conns.clone();
    // Aborting this task drops its guard, which cuts every open connection.
    let cut = tokio::spawn(async move {
        struct CutOnDrop(std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>);
        impl Drop for CutOnDrop {
            fn drop(&mut self) {
                if let Ok(c) = self.0.lock() {
                    c.iter().for_each(tokio::task::AbortHandle::abort);
                }
            }
        }
        let _guard = CutOnDrop(conns_for_cut);
        std::future::pending::<()>().await;
    });
    vec![accept, cut]
}

/// The network to `app` through a proxy on a port of its own: the port, the server's address
/// (to bring the proxy back), and the tasks to abort to cut it.
pub(crate) async fn proxied(
    app: &TestApp,
) -> (u16, std::net::SocketAddr, Vec<tokio::task::JoinHandle<()>>) {
    let upstream: std::net::SocketAddr = app
        .base_url
        .trim_start_matches("http://")
        .parse()
        .expect("addr");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    (port, upstream, proxy(port, upstream).await)
}

/// A seat whose release reaches no server is remembered and released at the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_that_reaches_no_server_is_done_at_the_next_start() {
    use licentia_client::floating::{Floating, PoolRef, Requester};
    within_limit(async {
        let app = TestApp::spawn(Backend::Sqlite, &[]).await;
        let (admin, pool) = acme_pool(&app, 60).await;
        app.services
            .add_pool_key(&admin, pool.id, key_input("F", "ConcurrentUser", 1))
            .await
            .expect("key");
        let (port, upstream, network) = proxied(&app).await;
        let store = tempfile::tempdir().expect("dir");
        let floating = || {
            Floating::new(
                &[format!("http://127.0.0.1:{port}")],
                PoolRef::Key(pool.access_key.clone()),
                Requester {
                    user: "ann".into(),
                    host: "laptop".into(),
                    process: "cad".into(),
                    ..Requester::default()
                },
                store.path(),
            )
        };
        let in_use =
            || async { app.services.usage_per_feature(&admin).await.expect("usage")[0].in_use };
        let first = floating();
        let seat = tokio::task::spawn_blocking(move || first.checkout("F", None))
            .await
            .expect("join")
            .expect("a seat");
        assert_eq!(in_use().await, 1);

        // The network goes down; the application closes: the release is kept for later.
        network.iter().for_each(tokio::task::JoinHandle::abort);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let released = tokio::task::spawn_blocking(move || seat.release())
            .await
            .expect("join");
        assert!(
            matches!(released, Err(licentia_client::Error::Unreachable { .. })),
            "{released:?}"
        );
        assert_eq!(in_use().await, 1);
        let pending = std::fs::read_dir(store.path())
            .expect("store")
            .filter_map(Result::ok)
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("seats-pending-")
            });
        assert!(pending, "the release is remembered");

        // The next start, with the network back, releases it first.
        let _network = proxy(port, upstream).await;
        let next = floating();
        let left = tokio::task::spawn_blocking(move || next.housekeeping())
            .await
            .expect("join")
            .expect("housekeeping");
        assert_eq!(left, 0);
        assert_eq!(in_use().await, 0);
    })
    .await;
}

/// A pool key replaced with a grace period, seen from real CLI workstations: the old key keeps
/// checking out through the grace, the new key works at once, and after the grace the old key is
/// refused with a message that says it was replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workstations_move_to_a_replaced_pool_key_within_its_grace() {
    within_limit(async {
        let app = TestApp::spawn(Backend::Sqlite, &[]).await;
        let (admin, pool) = acme_pool(&app, 60).await;
        app.services
            .add_pool_key(&admin, pool.id, key_input("F", "ConcurrentUser", 3))
            .await
            .expect("key");
        let old = pool.access_key.clone();
        let new = app
            .services
            .rotate_pool_key(&admin, pool.id, 1)
            .await
            .expect("replaced")
            .access_key;
        let once = |key: &str, host: &str| {
            let store = tempfile::tempdir().expect("dir");
            let out = Command::new(client_bin())
                .args(["--server", &app.base_url, "--hostname", host, "checkout"])
                .args(["--pool-key", key, "--feature", "F", "--user", host])
                .arg("--store")
                .arg(store.path())
                .output()
                .expect("run");
            (out.status.code(), text(&out))
        };
        // During the grace: a workstation still on the old key holds a seat…
        let store = tempfile::tempdir().expect("dir");
        let (mut holder, _lines) =
            holding(&app.base_url, store.path(), "ws-old", &old, "ann").await;
        // …and one given the new key checks out at once.
        let (code, out) = once(&new, "ws-new");
        assert_eq!(code, Some(0), "{out}");

        // After the grace the old key is refused, saying why; the new one still works.
        app.clock.advance(3600);
        let (code, out) = once(&old, "ws-late");
        assert_eq!(code, Some(2), "{out}");
        assert!(out.contains("This pool key was replaced on"), "{out}");
        assert!(
            out.contains("ask the pool's owner for the new key"),
            "{out}"
        );
        let (code, out) = once(&new, "ws-new-2");
        assert_eq!(code, Some(0), "{out}");
        holder.start_kill().expect("kill");
        holder.wait().await.expect("wait");
    })
    .await;
}
