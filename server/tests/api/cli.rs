//! The `server` binary as an operator uses it: the admin CLI and clear failures at start-up.

use crate::helpers::*;
use licensing::Backend;
use std::io::Write;
use std::process::{Command, Stdio};

/// The binary, with a master key of its own so that nothing is written outside temporary places.
fn server() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_server"));
    cmd.env_remove("DATABASE_URL")
        .env_remove("LICENTIA_CONFIG")
        .env("LICENTIA_MASTER_KEY", MASTER_KEY)
        .env("RUST_LOG", "warn");
    cmd
}

const MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn run_with_stdin(mut cmd: Command, input: &str) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn server");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    child.wait_with_output().expect("wait")
}

#[tokio::test]
async fn admin_create_from_the_cli_then_sign_in() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        if backend == Backend::Postgres && !postgres_available() {
            continue;
        }
        let (url, _dir) = fresh_database(backend).await;
        let mut cmd = server();
        cmd.env("DATABASE_URL", &url).args([
            "admin",
            "create",
            "--email",
            "Ops@Vendor.test",
            "--name",
            "Olga Ops",
        ]);
        let out = run_with_stdin(cmd, "a long cli password\n");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Administrator Ops@Vendor.test created")
        );

        // A second with the same address is refused with a message, and exits non-zero.
        let mut cmd = server();
        cmd.env("DATABASE_URL", &url).args([
            "admin",
            "create",
            "--email",
            "ops@vendor.test",
            "--name",
            "Olga Again",
        ]);
        let out = run_with_stdin(cmd, "a long cli password\n");
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));

        // A short password is refused.
        let mut cmd = server();
        cmd.env("DATABASE_URL", &url).args([
            "admin",
            "create",
            "--email",
            "x@vendor.test",
            "--name",
            "X",
        ]);
        let out = run_with_stdin(cmd, "short\n");
        assert!(String::from_utf8_lossy(&out.stderr).contains("at least 12 characters"));

        // The account works against a server on the same database.
        let config = server::config::Config::from_sources(
            [
                ("DATABASE_URL".to_owned(), url.clone()),
                ("LICENTIA_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
                ("LICENTIA_MASTER_KEY".to_owned(), MASTER_KEY.to_owned()),
            ]
            .into(),
            None,
        )
        .expect("config");
        let services = server::open_services(&config, licensing::Clock::system())
            .await
            .expect("open");
        let signed = services
            .sign_in("ops@vendor.test", "a long cli password", "127.0.0.1", None)
            .await
            .expect("sign in");
        assert_eq!(signed.user.role, licensing::Role::Admin);
        assert_eq!(
            services.issue_setup_token().await.expect("ok"),
            None,
            "no setup link once an admin exists"
        );

        // reset-password works for it too.
        let mut cmd = server();
        cmd.env("DATABASE_URL", &url).args([
            "admin",
            "reset-password",
            "--email",
            "ops@vendor.test",
        ]);
        let out = run_with_stdin(cmd, "another long password\n");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        services
            .sign_in(
                "ops@vendor.test",
                "another long password",
                "127.0.0.2",
                None,
            )
            .await
            .expect("new password");

        // Both commands are in the audit log as the command line's, with who ran them.
        let signed = services
            .sign_in(
                "ops@vendor.test",
                "another long password",
                "127.0.0.3",
                None,
            )
            .await
            .expect("sign in");
        let page = services
            .audit_log(&signed.user, &protocol::audit::AuditQuery::default())
            .await
            .expect("audit log");
        for (action, subject) in [
            ("admin.create", "user ops@vendor.test"),
            ("password.reset", "user ops@vendor.test"),
        ] {
            let e = page
                .entries
                .iter()
                .find(|e| e.action == action)
                .unwrap_or_else(|| panic!("{action} in {:?}", page.entries));
            assert_eq!(e.subject, subject);
            assert_eq!(e.channel, protocol::audit::Channel::Cli);
            assert!(e.actor.starts_with("admin CLI"), "{}", e.actor);
        }
    }
}

#[test]
fn help_describes_the_commands() {
    let out = server().arg("--help").output().expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["serve", "migrate", "admin"] {
        assert!(text.contains(word), "{text}");
    }
    let out = server().args(["admin", "--help"]).output().expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("create") && text.contains("reset-password"),
        "{text}"
    );
}

#[test]
fn bad_configuration_and_unusable_databases_stop_with_a_clear_message() {
    let out = server()
        .env("DATABASE_URL", "mysql://nope")
        .arg("migrate")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("DATABASE_URL must start with sqlite: or postgres://"));

    let dir = tempfile::tempdir().expect("dir");
    let garbage = dir.path().join("not-a-database.db");
    std::fs::write(&garbage, vec![0x42u8; 8192]).expect("write");
    let out = server()
        .env("DATABASE_URL", format!("sqlite://{}", garbage.display()))
        .arg("migrate")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("SQLite database") && err.contains("not a database"),
        "{err}"
    );

    let out = server()
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/nothing")
        .arg("migrate")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot connect to the PostgreSQL database")
    );
}

#[test]
fn migrate_creates_the_schema_and_is_idempotent() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}/sub/dir/licentia.db", dir.path().display());
    for _ in 0..2 {
        let out = server()
            .env("DATABASE_URL", &url)
            .arg("migrate")
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("up to date"));
    }
}

#[tokio::test]
async fn serve_prints_the_setup_link_and_stops_gracefully_on_sigterm() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = tempfile::tempdir().expect("dir");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/data/licentia.db", dir.path().display()),
        )
        .env("LICENTIA_LISTEN", "127.0.0.1:0")
        .env(
            "LICENTIA_MASTER_KEY_FILE",
            dir.path().join("data/master.key"),
        )
        .env_remove("LICENTIA_MASTER_KEY")
        .env("RUST_LOG", "warn")
        .arg("serve")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let (mut url, mut setup) = (None, None);
    while let Ok(Some(line)) =
        tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
            .await
            .expect("the server prints within 30 s")
    {
        if let Some(rest) = line.strip_prefix("Licentia is running at ") {
            url = rest
                .split_whitespace()
                .next()
                .map(|u| u.trim_end_matches('/').to_owned());
        }
        if line.contains("/setup/") {
            setup = Some(line.trim().to_owned());
            break;
        }
    }
    let url = url.expect("URL printed");
    let setup = setup.expect("setup link printed");
    assert!(setup.starts_with(&format!("{url}/setup/")), "{setup}");
    let health = reqwest::get(format!("{url}/healthz"))
        .await
        .expect("health");
    assert_eq!(health.status(), reqwest::StatusCode::OK);
    let page = reqwest::get(&setup).await.expect("setup page");
    assert!(page
        .text()
        .await
        .expect("html")
        .contains("Create the first administrator"));

    let pid = child.id().expect("pid").to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait())
        .await
        .expect("stops within 10 s")
        .expect("exit status");
    assert!(status.success(), "{status}");
}
