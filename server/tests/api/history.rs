//! Usage over time: the session history through the API (filters, pages, totals, CSV, who may
//! read it, the purge), casual metering with a manual clock (month boundaries, two machines of
//! one user, a restart in the middle, the red marker and the once-a-month log line) and the
//! monthly report (at the right instant whatever the month's length, once with two servers on
//! one database, at the next start when no server ran at midnight).

use crate::both_backends;
use crate::floating::{beat, checkout, release};
use crate::helpers::*;
use crate::manage::{token, year_token, Api};
use licensing::CurrentUser;
use protocol::time::{days_from_civil, format_date};
use reqwest::StatusCode;
use serde_json::Value;

/// Moves `app`'s clock to `at` (Unix seconds).
fn set_clock(app: &TestApp, at: i64) {
    app.clock.advance(at - app.clock.now());
}

fn utc(year: i64, month: u32, day: u32, hour: i64, minute: i64) -> i64 {
    days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60
}

fn users(page: &Value) -> Vec<String> {
    page["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| s["user"].as_str().expect("user").to_owned())
        .collect()
}

/// A casual NamedUser key of `feature` with `max` minutes a month; returns its id.
async fn casual_key(app: &TestApp, admin: &CurrentUser, pool: i64, feature: &str, max: i64) -> i64 {
    let mut k = key_input(feature, "NamedUser", 5);
    k.casual_max_minutes = Some(max);
    app.services
        .add_pool_key(admin, pool, k)
        .await
        .expect("casual key")
        .id
}

/// This month's casual use of `user` on `feature` as *Detailed usage* shows it.
async fn casual_of(
    app: &TestApp,
    admin: &CurrentUser,
    pool: i64,
    feature: &str,
    user: &str,
) -> Option<(i64, bool)> {
    let seats = app
        .services
        .detailed_usage(admin, pool, "Vendor", feature)
        .await
        .expect("usage");
    let seat = seats
        .iter()
        .find(|s| s.user == user)
        .expect("a seat of the user");
    seat.casual.map(|c| (c.minutes, c.over()))
}

async fn overuse_lines(api: &Api) -> Vec<String> {
    let (status, page) = api.get("/api/v1/audit?action=pool.casual-overuse").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["detail"].as_str().expect("detail").to_owned())
        .collect()
}

/// The months the server holds a casual report of, newest first.
async fn report_months(app: &TestApp, admin: &CurrentUser) -> Vec<String> {
    app.services
        .casual_reports(admin)
        .await
        .expect("reports")
        .into_iter()
        .map(|r| r.month)
        .collect()
}

async fn raw_get(base: &str, api_token: &str, path: &str) -> (StatusCode, String) {
    let res = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(api_token)
        .send()
        .await
        .expect("request");
    (res.status(), res.text().await.expect("body"))
}

both_backends! {
    async fn ended_seats_are_kept_with_how_they_ended_and_old_ones_are_purged(app) {
        let (browser, admin) = app.admin_both().await;
        let api = token(&app, &browser, "history", "read").await;
        let pool = crate::seeded::acme_pool_of(&app.services, &admin, 60).await;
        for f in ["F", "G"] {
            app.services.add_pool_key(&admin, pool.id, key_input(f, "ConcurrentUser", 5)).await.expect("key");
        }
        let key = &pool.access_key;
        let (_, ann) = checkout(&app, key, "F", "ann", "ws-1").await;
        app.clock.advance(30);
        assert_eq!(release(&app, &ann).await, StatusCode::NO_CONTENT);
        let (_, bob) = checkout(&app, key, "F", "bob", "ws-2").await;
        app.clock.advance(90);
        app.services.disconnect_seat(&admin, bob["seat_id"].as_i64().expect("seat"), false).await.expect("disconnect");
        let (_, cat) = checkout(&app, key, "G", "cat", "ws-3").await;
        app.clock.advance(61);
        app.services.reclaim_expired_seats().await.expect("reclaim");
        let (st, dan) = checkout(&app, key, "G", "dan", "ws-4").await;
        assert_eq!(st, StatusCode::CREATED, "{dan}");

        let history = format!("/api/v1/pools/{}/history", pool.id);
        let (st, page) = api.get(&history).await;
        assert_eq!(st, StatusCode::OK, "{page}");
        assert_eq!(users(&page), ["cat", "bob", "ann"], "ended seats, newest first; dan's is live");
        let s = &page["sessions"];
        assert_eq!(s[2]["ended_how"], "released");
        assert_eq!(s[2]["ended_at"].as_i64().expect("end") - s[2]["granted_at"].as_i64().expect("start"), 30);
        assert_eq!((s[2]["host"].as_str(), s[2]["process"].as_str(), s[2]["feature"].as_str()), (Some("ws-1"), Some("cad.exe"), Some("F")));
        assert_eq!(s[1]["ended_how"], format!("disconnected by {ADMIN_EMAIL}"));
        assert_eq!(s[1]["ended_by"], format!("admin:{}", admin.id));
        assert_eq!(s[0]["ended_how"], "lease expired");
        assert_eq!(s[0]["seat_id"], cat["seat_id"]);
        assert_eq!(s[0]["model"], "ConcurrentUser");
        // Totals over the whole filter: per user and per feature, most time first.
        assert_eq!(page["per_user"][0], serde_json::json!({"name": "bob", "sessions": 1, "seconds": 90}));
        assert_eq!(page["per_feature"][0], serde_json::json!({"name": "Vendor/F", "sessions": 2, "seconds": 120}));

        // Filters match a part, in any case; the period is of the end, by UTC day.
        for (query, expected) in [
            ("user=AN", vec!["ann"]),
            ("feature=g", vec!["cat"]),
            ("host=ws-2", vec!["bob"]),
            ("user=nobody", vec![]),
        ] {
            let (_, page) = api.get(&format!("{history}?{query}")).await;
            assert_eq!(users(&page), expected, "{query}");
        }
        let today = format_date(app.clock.now() / 86_400);
        let tomorrow = format_date(app.clock.now() / 86_400 + 1);
        let (_, page) = api.get(&format!("{history}?from={today}&to={today}")).await;
        assert_eq!(users(&page).len(), 3);
        let (_, page) = api.get(&format!("{history}?from={tomorrow}")).await;
        assert!(users(&page).is_empty());
        for (bad, field) in [("from=yesterday", "from"), (&*format!("from={tomorrow}&to={today}"), "to"), ("limit=0", "limit")] {
            let (st, problem) = api.get(&format!("{history}?{bad}")).await;
            assert_eq!((st, problem["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(field)), "{bad}: {problem}");
        }

        // A page at a time, following the Link.
        let mut next = Some(format!("{history}?limit=1"));
        let mut seen = Vec::new();
        while let Some(path) = next {
            let (st, page, link) = api.page(&path).await;
            assert_eq!(st, StatusCode::OK, "{page}");
            assert_eq!(page["sessions"].as_array().map(Vec::len), Some(1));
            assert_eq!(page["per_user"].as_array().map(Vec::len), Some(3), "totals are the filter's, not the page's");
            seen.extend(users(&page));
            next = link;
        }
        assert_eq!(seen, ["cat", "bob", "ann"]);

        // CSV through the API and the portal's download.
        let (st, csv) = raw_get(&app.base_url, api_token(&api), &format!("/api/v1/pools/{}/history.csv?user=ann", pool.id)).await;
        assert_eq!(st, StatusCode::OK, "{csv}");
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 2, "{csv}");
        assert!(lines[0].starts_with("id,pool_id,seat_id,key_id,editor,feature,model,user,host,process,session,amount,bundle_of,granted_at_utc,ended_at_utc,duration_s,ended"), "{csv}");
        assert!(lines[1].contains(",ann,ws-1,cad.exe,") && lines[1].contains(",30,released,"), "{csv}");
        let res = browser.get(&format!("/pools/{}/history.csv", pool.id)).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.text().await.expect("csv").lines().count(), 4);
        assert_eq!(app.browser().get(&format!("/pools/{}/history.csv", pool.id)).await.status(), StatusCode::UNAUTHORIZED);

        // Another organisation's user reads none of it.
        let (_, other) = app.client_user(&browser, "Globex", "gil@globex.test").await;
        let globex = token(&app, &other, "globex", "read").await;
        let (st, refused) = globex.get(&history).await;
        assert!(st == StatusCode::NOT_FOUND || st == StatusCode::FORBIDDEN, "{st} {refused}");
        assert_eq!(other.get(&format!("/pools/{}/history.csv", pool.id)).await.status(), st);

        // Acme's own user reads it, without the administrator's address or account.
        let acme = pool.client_id.expect("a client's pool").to_string();
        browser
            .rpc("create_client_user", &[("client_id", acme.as_str()), ("name", "Carl"), ("email", "carl@acme.test"), ("password", "client password 123")])
            .await
            .ok();
        let carl = app.browser();
        carl.sign_in("carl@acme.test", "client password 123").await.ok();
        let carl_api = token(&app, &carl, "carl", "read").await;
        let (st, page) = carl_api.get(&format!("{history}?user=bob")).await;
        assert_eq!(st, StatusCode::OK, "{page}");
        assert_eq!(page["sessions"][0]["ended_how"], "disconnected by an administrator");
        assert_eq!(page["sessions"][0]["ended_by"], "admin");
        assert!(!page.to_string().contains(ADMIN_EMAIL), "{page}");

        // Ten days later dan's seat runs out and eve has one more session; a 5-day retention
        // purges the old ones only.
        app.clock.advance(10 * 86_400);
        app.services.reclaim_expired_seats().await.expect("reclaim");
        let (_, eve) = checkout(&app, key, "F", "eve", "ws-5").await;
        assert_eq!(release(&app, &eve).await, StatusCode::NO_CONTENT);
        assert_eq!(app.services.purge_history(5).await.expect("purge"), 3);
        let (_, page) = api.get(&history).await;
        assert_eq!(users(&page), ["eve", "dan"]);

        // A bundle: one row per seat, the bundled one naming its main seat; the user's time
        // counts once.
        for f in ["B", "C"] {
            app.services.add_pool_key(&admin, pool.id, key_input(f, "ConcurrentUser", 1)).await.expect("key");
        }
        let bundle = protocol::floating::Bundle { feature: "B".into(), also_feature: "C".into() };
        app.services.add_bundle(&admin, pool.id, &bundle).await.expect("bundle");
        let (_, fay) = checkout(&app, key, "B", "fay", "ws-6").await;
        app.clock.advance(20);
        assert_eq!(release(&app, &fay).await, StatusCode::NO_CONTENT);
        let (_, page) = api.get(&format!("{history}?user=fay")).await;
        let rows = page["sessions"].as_array().expect("sessions");
        assert_eq!(rows.len(), 2, "{page}");
        let main = rows.iter().find(|r| r["feature"] == "B").expect("B");
        let bundled = rows.iter().find(|r| r["feature"] == "C").expect("C");
        assert_eq!((main["bundle_of"].clone(), bundled["bundle_of"].clone()), (Value::Null, fay["seat_id"].clone()));
        assert_eq!(page["per_user"], serde_json::json!([{"name": "fay", "sessions": 1, "seconds": 20}]));
        assert_eq!(page["per_feature"].as_array().map(Vec::len), Some(2));

    }

    async fn charts_show_the_peak_against_the_count_and_refusals_by_hour_day_and_month(app) {
        // Mid-morning, so that two hours on is still the same day and month whenever it runs.
        set_clock(&app, utc(2027, 3, 10, 9, 15));
        let (browser, admin) = app.admin_both().await;
        let api = token(&app, &browser, "charts", "read").await;
        let pool = crate::seeded::acme_pool_of(&app.services, &admin, 86_400).await;
        app.services.add_pool_key(&admin, pool.id, key_input("F", "ConcurrentUser", 2)).await.expect("key");
        let key = &pool.access_key;
        for user in ["ann", "bob"] {
            assert_eq!(checkout(&app, key, "F", user, user).await.0, StatusCode::CREATED);
        }
        assert_eq!(checkout(&app, key, "F", "cat", "cat").await.0, StatusCode::FORBIDDEN);
        // Two hours on, nobody checked out: the job notes the seats held in this hour too.
        app.clock.advance(2 * 3600);
        app.services.record_usage_peaks().await.expect("peaks");
        let chart = format!("/api/v1/pools/{}/usage-history", pool.id);
        let (st, hours) = api.get(&format!("{chart}?period=48h")).await;
        assert_eq!(st, StatusCode::OK, "{hours}");
        assert_eq!(hours["period"], "48h");
        let points = hours["series"][0]["points"].as_array().expect("points");
        assert_eq!(points.len(), 48);
        let figures = |p: &Value| (p["peak"].as_i64(), p["count"].as_i64(), p["refusals"].as_i64());
        assert_eq!(figures(&points[47]), (Some(2), Some(2), Some(0)), "this hour: held, none taken");
        assert_eq!(figures(&points[46]), (Some(0), Some(2), Some(0)), "the hour between: nothing noted");
        assert_eq!(figures(&points[45]), (Some(2), Some(2), Some(1)), "the checkouts' hour");
        for period in ["30d", "12m"] {
            let (_, c) = api.get(&format!("{chart}?period={period}")).await;
            let last = c["series"][0]["points"].as_array().and_then(|p| p.last().cloned()).expect("a step");
            assert_eq!(figures(&last), (Some(2), Some(2), Some(1)), "{period}");
        }
        let (st, problem) = api.get(&format!("{chart}?period=week")).await;
        assert_eq!((st, problem["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("period")));
        // The overview adds up every pool; the CSV has the same figures.
        let (_, overview) = api.get("/api/v1/usage-history?period=30d").await;
        assert_eq!(overview["series"][0]["feature"], "F");
        let (st, csv) = raw_get(&app.base_url, api_token(&api), &format!("{chart}.csv?period=12m")).await;
        assert_eq!(st, StatusCode::OK);
        assert!(csv.starts_with("editor,feature,period_start_utc,peak_in_use,count,refusals\r\n"), "{csv}");
        assert_eq!(csv.lines().count(), 13);
        assert!(csv.lines().last().expect("line").ends_with(",2,2,1"), "{csv}");
        let res = browser.get(&format!("/pools/{}/usage-history.csv?period=48h", pool.id)).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.text().await.expect("csv").lines().count(), 49);
        // Another organisation's user charts none of it, and its overview is empty.
        let (_, other) = app.client_user(&browser, "Globex", "gil@globex.test").await;
        let globex = token(&app, &other, "globex", "read").await;
        assert!(globex.get(&format!("{chart}?period=30d")).await.0.is_client_error());
        let (_, theirs) = globex.get("/api/v1/usage-history").await;
        assert_eq!(theirs["series"], serde_json::json!([]));
    }

    async fn the_hours_peak_counts_every_seat_of_checkouts_made_at_once(app) {
        // Eight keys of one feature, each of its own customer: eight checkouts at once, each
        // naming a customer, take their seats on eight keys side by side (not in turn on one),
        // each summing the feature's seats while the others' are not yet committed.
        set_clock(&app, utc(2027, 3, 10, 9, 0));
        let admin = admin_user(&app).await;
        let pool = crate::seeded::acme_pool_of(&app.services, &admin, 86_400).await;
        for i in 0..8 {
            let mut k = key_input("F", "ConcurrentUser", 2);
            k.customer_id = format!("C{i}");
            app.services.add_pool_key(&admin, pool.id, k).await.expect("key");
        }
        let (app, pool_key) = (&app, pool.access_key.as_str());
        let take = move |round: usize, i: usize| async move {
            let user = format!("u{round}-{i}");
            let (st, grant, _) = api_post(app, "/api/v1/seats", serde_json::json!({"pool_key": pool_key, "feature": "F",
                "customer_id": format!("C{i}"), "user": user, "host": user, "process": "cad.exe"})).await;
            (st, grant)
        };
        for round in 0..5 {
            let grants = futures_util::future::join_all((0..8).map(|i| take(round, i))).await;
            for (st, grant) in &grants {
                assert_eq!(*st, StatusCode::CREATED, "{grant}");
            }
            let peak: i64 = sqlx::query_scalar("SELECT peak_in_use FROM usage_hourly WHERE pool_id = $1 AND hour = $2")
                .bind(pool.id)
                .bind(app.clock.now() / 3600)
                .fetch_one(app.services.db().pool())
                .await
                .expect("the hour's row");
            assert_eq!(peak, 8, "round {round}");
            for (_, grant) in &grants {
                assert_eq!(release(app, grant).await, StatusCode::NO_CONTENT);
            }
            app.clock.advance(3600);
        }
    }

    async fn casual_use_is_metered_per_user_and_calendar_month_and_over_use_logged_once(app) {
        let (browser, admin) = app.admin_both().await;
        let api = year_token(&app, &browser, "casual").await;
        let (_, gil) = app.client_user(&browser, "Globex", "gil@globex.test").await;
        let globex = token(&app, &gil, "globex", "read").await;
        let pool = crate::seeded::acme_pool_of(&app.services, &admin, 86_400).await;
        // Only a NamedUser key can be casual, with 1 to 44,640 minutes.
        for (model, max) in [("ConcurrentUser", 50), ("NamedUser", 0), ("NamedUser", 44_641)] {
            let mut k = key_input("LIV", model, 5);
            k.casual_max_minutes = Some(max);
            let refused = app.services.add_pool_key(&admin, pool.id, k).await.expect_err("refused");
            assert!(format!("{refused:?}").contains("casual_max_minutes"), "{refused:?}");
        }
        casual_key(&app, &admin, pool.id, "LIV", 50).await;
        app.services.add_pool_key(&admin, pool.id, key_input("FULL", "NamedUser", 5)).await.expect("full key");

        // The last evening of January: ann on two machines at once, bob on a full key.
        set_clock(&app, utc(2027, 1, 31, 23, 0));
        let key = pool.access_key.clone();
        let (st, ws1) = checkout(&app, &key, "LIV", "ann", "ws-1").await;
        assert_eq!(st, StatusCode::CREATED, "{ws1}");
        app.clock.advance(600);
        let (_, ws2) = checkout(&app, &key, "LIV", "ann", "ws-2").await;
        let (_, _bob) = checkout(&app, &key, "FULL", "bob", "ws-3").await;
        assert_eq!(casual_of(&app, &admin, pool.id, "FULL", "bob").await, None, "N/A on a full key");
        // A restart in the middle loses no minute.
        app.clock.advance(600);
        let app = app.restart(0).await;
        let api = api.on(&app);
        let globex = globex.on(&app);
        app.clock.advance(1200);
        assert_eq!(release(&app, &ws1).await, StatusCode::NO_CONTENT);
        assert_eq!(beat(&app, &ws2).await.0, StatusCode::OK);
        // 23:00–23:40 on two machines overlapping counts once: 40 minutes, under 50.
        assert_eq!(casual_of(&app, &admin, pool.id, "LIV", "ann").await, Some((40, false)));
        assert_eq!(app.services.meter_casual_usage().await.expect("meter"), 0);

        // Past midnight the month turns: January is 60 minutes (over), February starts at 0.
        app.clock.advance(1800);
        assert_eq!(casual_of(&app, &admin, pool.id, "LIV", "ann").await, Some((10, false)));
        app.services.produce_casual_reports(400).await.expect("reports");
        assert!(report_months(&app, &admin).await.contains(&"2027-01".to_owned()));
        let (st, january) = api.get("/api/v1/casual-reports/2027-01").await;
        assert_eq!(st, StatusCode::OK, "{january}");
        let keys = january["keys"].as_array().expect("keys");
        assert_eq!(keys.len(), 1, "the full key is not casual: {january}");
        assert_eq!(keys[0]["users"], serde_json::json!([{"user": "ann", "minutes": 60, "over": true}]));
        assert_eq!(overuse_lines(&api).await, ["Usage of LIV (Vendor) by ann in excess of 50 mn (60 mn in 2027-01)."]);

        // February: 20 minutes, then 31 more on one machine: 51, in red, logged once.
        app.clock.advance(600);
        assert_eq!(release(&app, &ws2).await, StatusCode::NO_CONTENT);
        app.clock.advance(2400);
        let (_, again) = checkout(&app, &key, "LIV", "ann", "ws-1").await;
        app.clock.advance(30 * 60);
        assert_eq!(casual_of(&app, &admin, pool.id, "LIV", "ann").await, Some((50, false)));
        app.clock.advance(1);
        assert_eq!(casual_of(&app, &admin, pool.id, "LIV", "ann").await, Some((51, true)));
        // (The server's own job may log it first.)
        assert!(app.services.meter_casual_usage().await.expect("meter") <= 1);
        assert_eq!(app.services.meter_casual_usage().await.expect("meter"), 0, "once per user, key and month");
        let lines = overuse_lines(&api).await;
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("Usage of LIV (Vendor) by ann in excess of 50 mn (51 mn in 2027-02)"), "{lines:?}");
        // Over-use does not refuse: the seat keeps beating.
        assert_eq!(beat(&app, &again).await.0, StatusCode::OK);

        // The CSV of January's report.
        let (st, csv) = raw_get(&app.base_url, api_token(&api), "/api/v1/casual-reports/2027-01/csv").await;
        assert_eq!(st, StatusCode::OK, "{csv}");
        assert!(csv.starts_with("month,pool_id,pool,key_id,editor,feature,maximum_mn,user,minutes,over_maximum\r\n"), "{csv}");
        assert!(csv.contains(",Vendor,LIV,50,ann,60,yes\r\n"), "{csv}");
        for bad in ["2027-13", "January"] {
            let (st, problem) = api.get(&format!("/api/v1/casual-reports/{bad}")).await;
            assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        }
        assert_eq!(api.get("/api/v1/casual-reports/2031-01").await.0, StatusCode::NOT_FOUND);
        // Another organisation's user sees neither the report nor who used Acme's key.
        let (st, theirs) = globex.get("/api/v1/casual-reports").await;
        assert_eq!((st, theirs), (StatusCode::OK, serde_json::json!([])));
        let (st, refused) = globex.get("/api/v1/casual-reports/2027-01").await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{refused}");
        let (st, csv) = raw_get(&app.base_url, api_token(&globex), "/api/v1/casual-reports/2027-01/csv").await;
        assert!(st == StatusCode::NOT_FOUND && !csv.contains("ann"), "{st} {csv}");

        // Months later the list comes in pages, newest first.
        set_clock(&app, utc(2027, 4, 2, 12, 0));
        app.services.produce_casual_reports(400).await.expect("reports");
        let (mut months, mut next) = (Vec::new(), Some("/api/v1/casual-reports?limit=1".to_owned()));
        while let Some(path) = next {
            let (st, page, link) = api.page(&path).await;
            assert_eq!(st, StatusCode::OK, "{page}");
            assert_eq!(page.as_array().map(Vec::len), Some(1), "{page}");
            months.push(page[0]["month"].as_str().unwrap_or_default().to_owned());
            next = link;
        }
        assert!(months.starts_with(&["2027-03".into(), "2027-02".into(), "2027-01".into()]), "{months:?}");
        assert!(months.is_sorted_by(|a, b| a > b), "newest first, each once: {months:?}");
    }

    async fn the_monthly_report_is_made_once_at_midnight_on_the_first_and_at_the_next_start(app) {
        set_clock(&app, utc(2027, 1, 10, 12, 0));
        let (browser, admin) = app.admin_both().await;
        let api = year_token(&app, &browser, "reports").await;
        let pool = crate::seeded::acme_pool_of(&app.services, &admin, 86_400).await;
        // No casual key enrolled: no report, however many months pass.
        set_clock(&app, utc(2027, 2, 10, 12, 0));
        app.services.produce_casual_reports(400).await.expect("reports");
        assert!(report_months(&app, &admin).await.is_empty());
        set_clock(&app, utc(2027, 1, 10, 12, 0));
        casual_key(&app, &admin, pool.id, "LIV", 2400).await;

        // A replica on the same database, at the same time.
        let other = app.replica().await;
        let other_api = api.on(&other);
        // Each month ends at 00:00 UTC on the 1st of the next: 31, 28, 31, 30 days.
        for (month, next) in [("2027-01", (2027, 2)), ("2027-02", (2027, 3)), ("2027-03", (2027, 4)), ("2027-04", (2027, 5))] {
            let midnight = utc(next.0, next.1, 1, 0, 0);
            for server in [&app, &other] {
                set_clock(server, midnight - 1);
            }
            app.services.produce_casual_reports(400).await.expect("reports");
            assert!(!report_months(&app, &admin).await.contains(&month.to_owned()), "{month} not before its end");
            for server in [&app, &other] {
                set_clock(server, midnight);
            }
            // Both replicas at once: one report.
            let (a, b) = tokio::join!(app.services.produce_casual_reports(400), other.services.produce_casual_reports(400));
            let made = [a.expect("a"), b.expect("b")].concat();
            assert!(made.iter().filter(|m| *m == month).count() <= 1, "{made:?}");
            assert_eq!(report_months(&app, &admin).await.first().map(String::as_str), Some(month));
            let (_, mine) = raw_get(&app.base_url, api_token(&api), &format!("/api/v1/casual-reports/{month}")).await;
            let (_, theirs) = raw_get(&other.base_url, api_token(&other_api), &format!("/api/v1/casual-reports/{month}")).await;
            assert_eq!(mine, theirs, "every replica serves the same bytes");
            let report: Value = serde_json::from_str(&mine).expect("json");
            assert_eq!(report["produced_at"], midnight, "{month}");
            assert_eq!(report["keys"][0]["users"], serde_json::json!([]), "made when nobody used it, too");
        }
        // February of a leap year: 29 days (the months between are caught up at once).
        set_clock(&app, utc(2028, 2, 29, 23, 59) + 59);
        app.services.produce_casual_reports(400).await.expect("reports");
        let months = report_months(&app, &admin).await;
        assert_eq!(months.first().map(String::as_str), Some("2028-01"), "{months:?}");
        set_clock(&app, utc(2028, 3, 1, 0, 0));
        app.services.produce_casual_reports(400).await.expect("reports");
        assert_eq!(report_months(&app, &admin).await.first().map(String::as_str), Some("2028-02"));
        assert_eq!(report_months(&app, &admin).await.len(), 4 + 10, "one per month since the key, none twice");
        drop(other);

        // No server runs at 00:00 on 1 April 2028; the next start, at 03:00, makes March's.
        let app = app.restart(31 * 86_400 + 3 * 3600).await;
        let mut waited = 0;
        while report_months(&app, &admin).await.first().map(String::as_str) != Some("2028-03") {
            waited += 1;
            assert!(waited < 100, "the start made March's report");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let march = app.services.casual_report(&admin, "2028-03").await.expect("march");
        assert_eq!(march.produced_at, utc(2028, 4, 1, 3, 0));
    }
}

fn api_token(api: &Api) -> &str {
    api.token()
}

/// `/metrics` on an address of its own answers without a token; the main address then does
/// not serve it; a short token is refused at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_their_own_address_and_never_without_protection() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("address")
        .port();
    let at = format!("127.0.0.1:{port}");
    let app = TestApp::spawn(
        licensing::Backend::Sqlite,
        &[("LICENTIA_METRICS_LISTEN", &at)],
    )
    .await;
    let res = reqwest::get(format!("http://{at}/metrics"))
        .await
        .expect("scrape");
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.expect("text");
    assert!(
        text.contains("# TYPE licentia_seats_in_use gauge"),
        "{text}"
    );
    assert!(text.contains("licentia_db_connections_max 8"), "{text}");
    let main = reqwest::get(format!("{}/metrics", app.base_url))
        .await
        .expect("main");
    assert_eq!(
        main.status(),
        StatusCode::NOT_FOUND,
        "no token configured: not on the main address"
    );
    // Nothing else is served on the metrics address.
    let other = reqwest::get(format!("http://{at}/api/v1/openapi.json"))
        .await
        .expect("other");
    assert_eq!(other.status(), StatusCode::NOT_FOUND);

    let env = std::collections::BTreeMap::from([
        ("DATABASE_URL".to_owned(), "sqlite://unused.db".to_owned()),
        ("LICENTIA_METRICS_TOKEN".to_owned(), "short".to_owned()),
    ]);
    let refused = server::config::Config::from_sources(env, None).expect_err("too short");
    assert!(
        refused
            .to_string()
            .contains("LICENTIA_METRICS_TOKEN must be at least 16"),
        "{refused}"
    );
}

/// Two real `server` processes started at once on one database, each making at its start the
/// reports that are due: every month's report exists once, made by them, and both serve the
/// same bytes.
async fn two_server_processes_make_each_report_once(backend: licensing::Backend) {
    let (url, dir) = fresh_database(backend).await;
    let master_key = licensing::keys::MasterKey::random().to_base64();
    let app = TestApp::spawn_at(&url, None, &[("LICENTIA_MASTER_KEY", &master_key)]).await;
    let (browser, admin) = app.admin_both().await;
    let token = api_token(&year_token(&app, &browser, "reports").await).to_owned();
    let pool = crate::seeded::acme_pool_of(&app.services, &admin, 86_400).await;
    casual_key(&app, &admin, pool.id, "LIV", 2400).await;
    // Enrolled 40 days ago: last month's report (and perhaps the one before) is due now.
    sqlx::query("UPDATE pool_keys SET created_at = created_at - 40 * 86400")
        .execute(app.services.db().pool())
        .await
        .expect("enrolled earlier");
    let stopped_at = app.clock.now();
    let last_month = {
        let (y, m, _) = protocol::time::civil_from_days(stopped_at.div_euclid(86_400));
        if m == 1 {
            format!("{}-12", y - 1)
        } else {
            format!("{y}-{:02}", m - 1)
        }
    };
    let _dir = (app.stop().await, dir);

    let ((_a, a), (_b, b)) = tokio::join!(
        crate::replicas::replica(&url, &master_key),
        crate::replicas::replica(&url, &master_key)
    );
    let list = |base: String| {
        let token = token.clone();
        async move {
            let (st, body) = raw_get(&base, &token, "/api/v1/casual-reports").await;
            assert_eq!(st, StatusCode::OK, "{body}");
            serde_json::from_str::<Vec<Value>>(&body).expect("a list")
        }
    };
    let mut waited = 0;
    let reports = loop {
        let reports = list(a.clone()).await;
        if reports.iter().any(|r| r["month"] == last_month.as_str()) {
            break reports;
        }
        waited += 1;
        assert!(
            waited < 200,
            "the processes made {last_month}'s report at their start"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(list(b.clone()).await, reports, "both list the same reports");
    let months: Vec<&str> = reports.iter().filter_map(|r| r["month"].as_str()).collect();
    let mut once = months.clone();
    once.dedup();
    assert_eq!(once, months, "no month twice");
    assert!(months.len() <= 2, "{months:?}");
    for month in months {
        let (st, mine) = raw_get(&a, &token, &format!("/api/v1/casual-reports/{month}")).await;
        assert_eq!(st, StatusCode::OK, "{mine}");
        let (_, theirs) = raw_get(&b, &token, &format!("/api/v1/casual-reports/{month}")).await;
        assert_eq!(mine, theirs, "every process serves the same bytes");
        let report: Value = serde_json::from_str(&mine).expect("json");
        assert!(
            report["produced_at"].as_i64() >= Some(stopped_at),
            "made by the processes"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_sqlite_make_each_report_once() {
    within_limit(two_server_processes_make_each_report_once(
        licensing::Backend::Sqlite,
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_postgres_make_each_report_once() {
    if postgres_available() {
        within_limit(two_server_processes_make_each_report_once(
            licensing::Backend::Postgres,
        ))
        .await
    }
}
