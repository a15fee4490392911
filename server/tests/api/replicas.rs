//! Several stateless replicas on one PostgreSQL database, and real workstations that list them
//! all: one replica killed with SIGKILL while the workstations heartbeat through it, and no
//! workstation loses its seat; activation moves to the next replica too. And a server list that
//! comes from a DNS SRV record served by a real resolver.

use crate::helpers::*;
use crate::workstation::{holding, text, Workstation};
use licensing::Backend;
use protocol::catalog::LicensingSettings;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

/// A `server serve` process on `database_url`, and the URL it listens at.
pub(crate) async fn replica(
    database_url: &str,
    master_key: &str,
) -> (tokio::process::Child, String) {
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

/// A real DNS resolver (dnsmasq, which `scripts/test` installs) on a loopback port of its own,
/// answering `_licentia._tcp.licentia.test` with the given (port, priority, weight) targets on
/// 127.0.0.1; killed when dropped.
struct Resolver {
    child: std::process::Child,
    addr: String,
}

impl Resolver {
    /// dnsmasq listens on UDP and TCP: a port free for UDP may be taken for TCP by another test,
    /// so a resolver that exits at once is started again on a fresh port.
    fn start(targets: &[(u16, u16, u16)]) -> Self {
        let mut last = None;
        for _ in 0..5 {
            match Self::try_start(targets) {
                Ok(resolver) => return resolver,
                Err(status) => last = Some(status),
            }
        }
        panic!("dnsmasq exited five times on fresh ports: {last:?}");
    }

    fn try_start(targets: &[(u16, u16, u16)]) -> Result<Self, String> {
        let dnsmasq = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("dnsmasq (Debian's dnsmasq-base; scripts/test installs it)");
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("a free port")
            .port();
        let mut cmd = std::process::Command::new(dnsmasq);
        cmd.args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--pid-file=",
            // Names under nowhere.test do not exist (NXDOMAIN).
            "--local=/nowhere.test/",
        ])
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
        // (As root, dnsmasq would change to a user of its own; there is no need.)
        let uid = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m));
        if uid.ok() == Some(0) {
            cmd.arg("--user=root");
        }
        for (target, priority, weight) in targets {
            cmd.arg(format!(
                "--srv-host=_licentia._tcp.licentia.test,127.0.0.1,{target},{priority},{weight}"
            ));
        }
        let mut child = cmd.spawn().expect("start dnsmasq");
        let addr = format!("127.0.0.1:{port}");
        let resolver: std::net::SocketAddr = addr.parse().expect("addr");
        let started = std::time::Instant::now();
        while licentia_client::srv::ask(resolver, "_licentia._tcp.licentia.test").is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("{status} on port {port}"));
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "dnsmasq did not answer"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self { child, addr })
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server list from a DNS SRV record: the workstation asks a real resolver, tries the
/// record's first target (a server that is down) and moves to the next by priority, never to
/// the last; a name without a record is reported as such.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_come_from_a_dns_srv_record() {
    within_limit(async {
        let app = TestApp::spawn(Backend::Sqlite, &[]).await;
        let f = fixture(
            &app,
            LicensingSettings {
                max_activations: 5,
                ..Default::default()
            },
            1,
        )
        .await;
        let port_of = |url: &str| -> u16 {
            url.rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .expect("a port")
        };
        // Priority 10: a port nothing listens on. 20: the server. 30: another installation,
        // which knows no such licence and would refuse it (a refusal is not passed over): the
        // activation succeeds only if the record's order is kept.
        let down = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let stranger = TestApp::spawn(Backend::Sqlite, &[]).await;
        let resolver = Resolver::start(&[
            (down, 10, 100),
            (port_of(&app.base_url), 20, 5),
            (port_of(&stranger.base_url), 30, 5),
        ]);
        let (_shipped, root) = crate::workstation::shipped_root(&app).await;
        let ws =
            Workstation::new("srv+http:_licentia._tcp.licentia.test", "srv-pc").shipped_with(&root);
        let run = |args: &[&str]| {
            ws.command("srv+http:_licentia._tcp.licentia.test", "CALC")
                .env("LICENTIA_DNS_RESOLVER", &resolver.addr)
                .args(args)
                .output()
                .expect("run licentia-client")
        };
        let out = run(&["activate", "--key", &f.keys[0]]);
        assert!(out.status.success(), "{}", text(&out));
        let out = run(&["validate"]);
        assert!(out.status.success(), "{}", text(&out));

        // A name with no record: another workstation says so.
        let other = Workstation::new("", "srv-pc-2").shipped_with(&root);
        let out = other
            .command("srv+http:_licentia._tcp.nowhere.test", "CALC")
            .env("LICENTIA_DNS_RESOLVER", &resolver.addr)
            .args(["activate", "--key", &f.keys[0]])
            .output()
            .expect("run licentia-client");
        assert!(!out.status.success());
        assert!(
            text(&out).contains(
                "no servers from the SRV record _licentia._tcp.nowhere.test: no such record"
            ),
            "{}",
            text(&out)
        );
    })
    .await;
}
