//! Server-rendered pages: the right page, status and redirect for who is asking.

use crate::both_backends;
use reqwest::StatusCode;

both_backends! {
    async fn pages_answer_by_role(app) {
        let admin = app.admin().await;
        let (_, carla) = app.client_user(&admin, "Acme Tools", "carla@acme.test").await;
        let anonymous = app.browser();

        let login = anonymous.get("/login").await;
        assert_eq!(login.status(), StatusCode::OK);
        let html = login.text().await.expect("html");
        assert!(html.contains("<h1>Sign in</h1>"), "{html}");
        assert!(html.contains("/pkg/licentia.js"), "hydration script referenced");

        let to_login = anonymous.get("/admin/clients").await;
        assert_eq!(to_login.status(), StatusCode::FOUND);
        assert_eq!(to_login.headers()["location"], "/login");

        let refused = carla.get("/admin/clients").await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert!(refused.text().await.expect("html").contains("Not allowed"));

        let new_client = admin.get("/admin/clients/new").await;
        assert_eq!(new_client.status(), StatusCode::OK);
        // (Without the empty comments that mark where hydration picks up.)
        let html = new_client.text().await.expect("html").replace("<!>", "");
        assert!(html.contains("<h1>New client</h1>") && !html.contains("was not found"), "{html}");

        let clients = admin.get("/admin/clients").await;
        assert_eq!(clients.status(), StatusCode::OK);
        assert!(clients.text().await.expect("html").contains("Acme Tools"));

        let org = carla.get("/client").await;
        assert_eq!(org.status(), StatusCode::OK);
        assert!(org.text().await.expect("html").contains("Acme Tools"));
        let not_client = admin.get("/client").await;
        assert_eq!(not_client.status(), StatusCode::FORBIDDEN);

        let home = carla.get("/").await;
        assert_eq!(home.status(), StatusCode::FOUND);
        assert_eq!(home.headers()["location"], "/client/licences");

        let missing = admin.get("/no/such/page").await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert!(missing.text().await.expect("html").contains("Page not found"));
    }

    async fn area_pages_arrive_whole_with_no_placeholder_to_jump_when_data_lands(app) {
        // Streamed in order, an area page carries what it loads in its HTML where it belongs:
        // no "Loading…" stands in its place to be swapped later (the layout shift a browser
        // sees), and the page reads without JavaScript.
        let admin = app.admin().await;
        let (_, carla) = app.client_user(&admin, "Acme Tools", "carla@acme.test").await;
        for (who, path, shows) in [
            (&admin, "/admin", "Use over time, every pool"),
            (&admin, "/admin/clients", "Acme Tools"),
            (&carla, "/client", "Acme Tools"),
        ] {
            let res = who.get(path).await;
            assert_eq!(res.status(), StatusCode::OK, "{path}");
            let html = res.text().await.expect("html").replace("<!>", "");
            assert!(html.contains(shows), "{path}: {html}");
            assert!(!html.contains("class=\"loading\""), "{path} sent a placeholder: {html}");
        }
    }

    async fn pages_and_answers_are_compressed_for_browsers_that_accept_it(app) {
        let client = reqwest::Client::new();
        for (accept, encoding) in [("br", "br"), ("gzip", "gzip"), ("gzip, deflate, br", "br")] {
            let page = client.get(format!("{}/login", app.base_url)).header("accept-encoding", accept).send().await.expect("page");
            assert_eq!(page.status(), StatusCode::OK);
            assert_eq!(page.headers()["content-encoding"], encoding, "{accept}");
            assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
        }
        let plain = client.get(format!("{}/login", app.base_url)).send().await.expect("page");
        assert!(plain.headers().get("content-encoding").is_none(), "nothing asked, nothing compressed");
        assert!(plain.text().await.expect("html").contains("<h1>Sign in</h1>"));
        let jwks = client.get(format!("{}/.well-known/jwks.json", app.base_url)).header("accept-encoding", "gzip").send().await.expect("jwks");
        assert_eq!(jwks.headers()["content-encoding"], "gzip");
    }

    async fn security_headers_are_set(app) {
        let res = app.browser().get("/login").await;
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
        assert_eq!(res.headers()["x-frame-options"], "DENY");
    }
}

/// Renders `/admin` → 302 → `/login` `renders` times from `tasks` concurrent callers while other
/// servers start in the same process (each start builds its route list by rendering the app once).
/// Every render must finish (a whole page ends with the `__INCOMPLETE_CHUNKS` trailer): a stalled
/// one fails the test after 20 s instead of hanging.
async fn redirect_chain_under_load(app: &crate::helpers::TestApp, tasks: usize, renders: usize) {
    let backend = app.services.db().backend();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let starting = done.clone();
    let starts = tokio::spawn(async move {
        // (At most 30: each start on PostgreSQL leaves a database in the throwaway cluster.)
        for _ in 0..30 {
            if starting.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            drop(crate::helpers::TestApp::spawn(backend, &[]).await);
        }
    });
    let mut callers = Vec::new();
    for _ in 0..tasks {
        let base = app.base_url.clone();
        callers.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(20))
                .build()
                .expect("client");
            for _ in 0..renders {
                let page = client
                    .get(format!("{base}/admin"))
                    .header("accept", "text/html")
                    .send()
                    .await
                    .expect("the redirect and the sign-in page answer within 20 s");
                assert_eq!(page.url().path(), "/login");
                assert_eq!(page.status(), StatusCode::OK);
                let html = page
                    .text()
                    .await
                    .expect("the whole page arrives within 20 s");
                assert!(
                    html.contains("<h1>Sign in</h1>") && html.contains("__INCOMPLETE_CHUNKS=[];"),
                    "{}",
                    &html[html.len().saturating_sub(300)..]
                );
            }
        }));
    }
    let mut outcome = Ok(());
    for c in callers {
        outcome = outcome.and(c.await);
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    starts.await.expect("starts");
    outcome.expect("every render finished");
}

both_backends! {
    async fn the_sign_in_redirect_renders_under_concurrent_load(app) {
        redirect_chain_under_load(&app, 8, 40).await;
    }
}

both_backends! {
    async fn a_page_knows_its_own_session_in_every_resource_it_sends(app) {
        // A server function that reads the request (its session cookie) after its first await
        // may find it gone while the page renders, and send data the hydrating page does not
        // match (the account page's "This browser" became "Sign out" and the portal panicked).
        let admin = app.admin().await;
        let (_, carla) = app.client_user(&admin, "Acme", "carla@acme.test").await;
        for _ in 0..3 {
            let html = carla.get("/client/account").await.text().await.expect("html");
            let sessions: Vec<&str> = html
                .split("__RESOLVED_RESOURCES[")
                .filter(|chunk| chunk.contains("\\\"current\\\""))
                .collect();
            assert!(!sessions.is_empty(), "the sessions are sent with the page");
            for s in sessions {
                assert!(s.contains("\\\"current\\\":true"), "{s}");
            }
        }
    }
}
