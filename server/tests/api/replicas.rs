//! Several stateless replicas on one PostgreSQL database, and real workstations that list them
//! all: one replica killed with SIGKILL while the workstations heartbeat through it, and no
//! workstation loses its seat; activation moves to the next replica too.

use crate::helpers::*;
use crate::workstation::{holding, text, Workstation};
use licensing::Backend;
use protocol::catalog::LicensingSettings;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

/// A `server serve` process on `database_url`, and the URL it listens at.
async fn replica(database_url: &str, master_key: &str) -> (tokio::process::Child, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .env_remove("LICENTIA_CONFIG")
        .env("DATABASE_URL", database_url)
        .env("LICENTIA_MASTER_KEY", master_key)
        .env("LICENTIA_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .arg("serve")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn a replica");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    while let Some(line) = lines.next_line().await.expect("read") {
        if let Some(rest) = line.strip_prefix("Licentia is running at ") {
            let url = rest.split_whitespace().next().unwrap_or_default();
            // Keep reading its output so that it never blocks on a full pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return (child, url.trim_end_matches('/').to_owned());
        }
    }
    panic!("the replica did not start");
}

/// Every key's `in_use` against the seats that hold it: the pairs that disagree.
async fn ledger_mismatches(app: &TestApp) -> Vec<(i64, i64, i64)> {
    sqlx::query_as::<_, (i64, i64, i64)>(
        "SELECT k.id, k.in_use, CAST(COALESCE(SUM(s.amount), 0) AS BIGINT) FROM pool_keys k \
         LEFT JOIN seats s ON s.key_id = k.id AND s.released_at IS NULL \
         GROUP BY k.id, k.in_use HAVING k.in_use <> COALESCE(SUM(s.amount), 0)",
    )
    .fetch_all(app.services.db().pool())
    .await
    .expect("ledger")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_under_heartbeats_loses_no_seat() {
    if !postgres_available() {
        return;
    }
    within_limit(async {
        let master_key = licensing::keys::MasterKey::random().to_base64();
        let (url, _) = fresh_database(Backend::Postgres).await;
        let app = TestApp::spawn_at(&url, None, &[("LICENTIA_MASTER_KEY", &master_key)]).await;
        let f = fixture(
            &app,
            LicensingSettings {
                max_activations: 5,
                ..Default::default()
            },
            1,
        )
        .await;
        let pool = own_pool(&app, &f, 30).await;
        app.services
            .add_pool_key(&f.admin, pool.id, key_input("F", "ConcurrentUser", 5))
            .await
            .expect("key");
        let (mut first, a) = replica(&url, &master_key).await;
        let (_second, b) = replica(&url, &master_key).await;
        let servers = format!("{a},{b}");

        let store = tempfile::tempdir().expect("dir");
        let mut holders = Vec::new();
        for host in ["ws-1", "ws-2", "ws-3"] {
            let (child, lines) =
                holding(&servers, store.path(), host, &pool.access_key, host).await;
            holders.push((child, lines));
        }
        let seats = |app: &TestApp| {
            let (services, admin) = (app.services.clone(), f.admin.clone());
            async move {
                let mut ids: Vec<i64> = services
                    .detailed_usage(&admin, pool.id, "Vendor", "F")
                    .await
                    .expect("usage")
                    .iter()
                    .map(|s| s.id)
                    .collect();
                ids.sort_unstable();
                ids
            }
        };
        let before = seats(&app).await;
        assert_eq!(before.len(), 3);

        // The first replica dies at once, as a crashed machine would.
        first.start_kill().expect("SIGKILL");
        first.wait().await.expect("wait");
        // Longer than a lease: only heartbeats through the second replica keep the seats, and
        // its reclaimer would end any that went silent.
        tokio::time::sleep(Duration::from_secs(40)).await;
        assert_eq!(
            seats(&app).await,
            before,
            "every workstation kept its own seat"
        );
        assert_eq!(
            ledger_mismatches(&app).await,
            [],
            "in_use equals the live seats"
        );

        // A licence activates and validates through the list too, the dead replica first.
        let (_shipped, root) = crate::workstation::shipped_root(&app).await;
        let ws = Workstation::new(&servers, "office-pc").shipped_with(&root);
        let out = ws.run(&["activate", "--key", &f.keys[0]]);
        assert!(out.status.success(), "{}", text(&out));
        let out = ws.run(&["validate"]);
        assert!(out.status.success(), "{}", text(&out));

        // The workstations close: their releases reach the second replica.
        for (child, mut lines) in holders {
            let pid = child.id().expect("pid").to_string();
            assert!(std::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .expect("kill")
                .success());
            let mut child = child;
            assert!(child.wait().await.expect("wait").success());
            let mut rest = Vec::new();
            while let Some(line) = lines.next_line().await.expect("read") {
                rest.push(line);
            }
            assert!(rest.iter().any(|l| l == "Released."), "{rest:?}");
        }
        assert_eq!(seats(&app).await, Vec::<i64>::new());
        assert_eq!(ledger_mismatches(&app).await, []);
    })
    .await;
}
