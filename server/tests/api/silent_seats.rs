//! Seats through outages: a pool either gives a silent seat back when its lease ends, or holds
//! it until its application comes back (Powerproject's "retained until a connection is
//! re-established"). Real CLI workstations behind a proxy that cuts the network: in *held* mode
//! the seat is still theirs when the network returns and the application saw nothing; in
//! *lease* mode the seat is taken again by itself when one is free, and a real loss is
//! reported clearly when none is.

use crate::both_backends;
use crate::helpers::*;
use crate::manage::token;
use crate::workstation::{holding, proxied, proxy};
use licensing::Backend;
use protocol::floating::SilentSeats;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

both_backends! {
    async fn a_pool_that_holds_silent_seats_keeps_them_until_their_application_comes_back(app) {
        let admin = app.admin().await;
        let api = token(&app, &admin, "ops", "write").await;
        let services_admin = app.services.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD, "t", None).await.expect("admin").user;
        let pool = crate::seeded::acme_pool_of(&app.services, &services_admin, 60).await;
        app.services.add_pool_key(&services_admin, pool.id, key_input("F", "ConcurrentUser", 1)).await.expect("key");
        let path = format!("/api/v1/pools/{}/silent-seats", pool.id);
        let (status, bad) = api.call(reqwest::Method::PUT, &path, Some(json!({"silent_seats": "forever"}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        let (status, held) = api.call(reqwest::Method::PUT, &path, Some(json!({"silent_seats": "held"}))).await;
        assert_eq!((status, held["silent_seats"].as_str()), (StatusCode::OK, Some("held")), "{held}");
        // A seat that never sent a heartbeat has no application to wait for: it is not held
        // (a checkout whose answer was lost, or someone hoarding seats with the pool key).
        let (status, hoarded, _) = api_post(&app, "/api/v1/seats", json!({"pool_key": pool.access_key, "feature": "F", "user": "x", "host": "x", "process": "x"})).await;
        assert_eq!(status, StatusCode::CREATED, "{hoarded}");
        app.clock.advance(120);
        assert_eq!(app.services.reclaim_expired_seats().await.expect("reclaim"), 1, "never heard from: not held");
        let checkout = json!({"pool_key": pool.access_key, "feature": "F", "user": "ann", "host": "ws-1", "process": "cad", "installation": "ann's own secret"});
        let (status, seat, _) = api_post(&app, "/api/v1/seats", checkout.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{seat}");
        let beat = |token: serde_json::Value| {
            let (app, id) = (&app, seat["seat_id"].clone());
            async move { api_post(app, &format!("/api/v1/seats/{id}/heartbeat"), json!({"lease_token": token})).await }
        };

        app.clock.advance(10);
        let (status, kept, _) = beat(seat["lease_token"].clone()).await;
        assert_eq!(status, StatusCode::OK, "{kept}");
        // Silent far longer than its lease: the reclaimer leaves it, the monitor says so.
        app.clock.advance(3_600);
        assert_eq!(app.services.reclaim_expired_seats().await.expect("reclaim"), 0);
        let detail = app.services.detailed_usage(&services_admin, pool.id, "Vendor", "F").await.expect("detail");
        assert_eq!(detail.len(), 1);
        assert_eq!(detail[0].silent_since, Some(detail[0].last_used_at), "not heard from since its last heartbeat");
        // Nobody else gets it: not another user, nor another installation naming its session.
        let other = json!({"pool_key": pool.access_key, "feature": "F", "user": "bob", "host": "ws-2", "process": "cad"});
        let (status, refused, _) = api_post(&app, "/api/v1/seats", other).await;
        assert_eq!((status, refused["type"].as_str()), (StatusCode::FORBIDDEN, Some("/problems/seats-taken")), "{refused}");
        let mut impostor = checkout.clone();
        impostor["installation"] = json!("someone else's secret");
        let (status, refused, _) = api_post(&app, "/api/v1/seats", impostor).await;
        assert_eq!(status, StatusCode::CONFLICT, "{refused}");
        assert!(refused["detail"].as_str().is_some_and(|d| d.contains("owner frees it")), "{refused}");
        // Its application comes back: the same seat, a fresh lease.
        let (status, kept, _) = beat(seat["lease_token"].clone()).await;
        assert_eq!(status, StatusCode::OK, "{kept}");
        let detail = app.services.detailed_usage(&services_admin, pool.id, "Vendor", "F").await.expect("detail");
        assert_eq!((detail[0].id, detail[0].silent_since), (seat["seat_id"].as_i64().expect("id"), None));

        // Back to leases: the next silence ends the seat, and its application hears why.
        let (status, _) = api.call(reqwest::Method::PUT, &path, Some(json!({"silent_seats": "lease"}))).await;
        assert_eq!(status, StatusCode::OK);
        app.clock.advance(120);
        assert_eq!(app.services.reclaim_expired_seats().await.expect("reclaim"), 1);
        let (status, gone, _) = beat(seat["lease_token"].clone()).await;
        assert_eq!((status, gone["type"].as_str()), (StatusCode::GONE, Some("/problems/lease-expired")), "{gone}");

        // Who may choose: the pool's owner and administrators; a reader or another client, no.
        let reader = token(&app, &admin, "reader", "read").await;
        assert_eq!(reader.call(reqwest::Method::PUT, &path, Some(json!({"silent_seats": "held"}))).await.0, StatusCode::FORBIDDEN);
        let (_, mallory) = app.client_user(&admin, "Other", "mallory@other.test").await;
        let mallory = token(&app, &mallory, "m", "write").await;
        assert_eq!(mallory.call(reqwest::Method::PUT, &path, Some(json!({"silent_seats": "held"}))).await.0, StatusCode::FORBIDDEN);
        let (_, log) = api.get("/api/v1/audit?action=pool.silent-seats").await;
        assert_eq!(log["entries"].as_array().map(Vec::len), Some(2), "{log}");
        assert_eq!(log["entries"][1]["changes"][0]["after"], "kept until the application comes back or is freed");
    }
}

/// A pool of one seat of F with a 30 s lease, in `mode`, and the network to it through a proxy.
struct CutOff {
    app: TestApp,
    admin: licensing::CurrentUser,
    pool: protocol::floating::Pool,
    port: u16,
    upstream: std::net::SocketAddr,
    network: Vec<tokio::task::JoinHandle<()>>,
}

impl CutOff {
    async fn new(mode: SilentSeats) -> Self {
        let app = TestApp::spawn(Backend::Sqlite, &[]).await;
        let (admin, pool) = acme_pool(&app, 30).await;
        app.services
            .add_pool_key(&admin, pool.id, key_input("F", "ConcurrentUser", 1))
            .await
            .expect("key");
        app.services
            .set_silent_seats(&admin, pool.id, mode)
            .await
            .expect("mode");
        let (port, upstream, network) = proxied(&app).await;
        Self {
            app,
            admin,
            pool,
            port,
            upstream,
            network,
        }
    }

    fn through(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A workstation holding the pool's seat through the proxy.
    async fn hold(
        &self,
        store: &tempfile::TempDir,
    ) -> (tokio::process::Child, crate::workstation::Lines) {
        holding(
            &self.through(),
            store.path(),
            "ws-1",
            &self.pool.access_key,
            "ann",
        )
        .await
    }

    /// Cuts the network for longer than a heartbeat's interval (10 s), while the server's clock
    /// runs far past the lease and its reclaimer goes round; then brings it back.
    async fn outage(&mut self) -> u64 {
        self.network.iter().for_each(tokio::task::JoinHandle::abort);
        tokio::time::sleep(Duration::from_secs(11)).await;
        self.app.clock.advance(600);
        let reclaimed = self
            .app
            .services
            .reclaim_expired_seats()
            .await
            .expect("reclaim");
        self.network = proxy(self.port, self.upstream).await;
        reclaimed
    }

    async fn seats(&self) -> Vec<(i64, String, i64, Option<i64>)> {
        let detail = self
            .app
            .services
            .detailed_usage(&self.admin, self.pool.id, "Vendor", "F")
            .await
            .expect("detail");
        detail
            .into_iter()
            .map(|s| (s.id, s.host, s.last_used_at, s.silent_since))
            .collect()
    }

    /// Waits (up to 20 s) until the seats are as `done` wants.
    async fn until(
        &self,
        done: impl Fn(&[(i64, String, i64, Option<i64>)]) -> bool,
    ) -> Vec<(i64, String, i64, Option<i64>)> {
        for _ in 0..100 {
            let seats = self.seats().await;
            if done(&seats) {
                return seats;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("the seats never got there: {:?}", self.seats().await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_mode_keeps_a_workstations_seat_through_an_outage_longer_than_its_lease() {
    within_limit(async {
        let mut net = CutOff::new(SilentSeats::Held).await;
        let store = tempfile::tempdir().expect("dir");
        let (mut ws, _lines) = net.hold(&store).await;
        // Its application is heard at least once (a seat never heard from is not held).
        let taken = net.seats().await;
        net.app.clock.advance(5);
        let before = net.until(|s| s.len() == 1 && s[0].2 > taken[0].2).await;
        assert_eq!(net.outage().await, 0, "the seat is held, not reclaimed");
        let silent = net.seats().await;
        assert_eq!(silent[0].0, before[0].0);
        assert!(
            silent[0].3.is_some(),
            "the monitor shows it silent: {silent:?}"
        );
        // The network is back: the next heartbeat keeps the very same seat.
        let after = net.until(|s| s.len() == 1 && s[0].3.is_none()).await;
        assert_eq!(after[0].0, before[0].0, "the same seat");
        assert!(
            ws.try_wait().expect("wait").is_none(),
            "the application is still running, never told of a loss"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_mode_takes_a_seat_again_by_itself_when_the_network_returns() {
    within_limit(async {
        let mut net = CutOff::new(SilentSeats::Lease).await;
        let store = tempfile::tempdir().expect("dir");
        let (mut ws, _lines) = net.hold(&store).await;
        let before = net.seats().await;
        assert_eq!(
            net.outage().await,
            1,
            "the lease ran out: the seat went back"
        );
        assert!(net.seats().await.is_empty());
        // The network is back: the workstation's next heartbeat hears its seat went back and
        // takes one again, unseen by the application.
        let after = net.until(|s| s.len() == 1).await;
        assert_ne!(after[0].0, before[0].0, "a new seat");
        assert_eq!(after[0].1, "ws-1");
        assert!(
            ws.try_wait().expect("wait").is_none(),
            "the application is still running"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_mode_reports_a_real_loss_when_no_seat_is_free_after_the_outage() {
    use tokio::io::AsyncReadExt;
    within_limit(async {
        let mut net = CutOff::new(SilentSeats::Lease).await;
        let store = tempfile::tempdir().expect("dir");
        let (mut ws, _lines) = net.hold(&store).await;
        net.network.iter().for_each(tokio::task::JoinHandle::abort);
        net.app.clock.advance(600);
        assert_eq!(
            net.app
                .services
                .reclaim_expired_seats()
                .await
                .expect("reclaim"),
            1
        );
        // Meanwhile someone else, still connected, takes the only seat.
        let other = tempfile::tempdir().expect("dir");
        let (_bob, _) = holding(
            &net.app.base_url,
            other.path(),
            "ws-2",
            &net.pool.access_key,
            "bob",
        )
        .await;
        net.network = proxy(net.port, net.upstream).await;
        let status = tokio::time::timeout(Duration::from_secs(30), ws.wait())
            .await
            .expect("the workstation stops")
            .expect("wait");
        assert_eq!(status.code(), Some(2), "a licence problem");
        let mut said = String::new();
        ws.stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut said)
            .await
            .expect("read");
        assert!(said.contains("before its lease ran out"), "{said}");
        assert!(
            said.contains("tried to take a seat again and was refused") && said.contains("in use"),
            "{said}"
        );
    })
    .await;
}
