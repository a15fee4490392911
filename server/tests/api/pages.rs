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
        assert_eq!(home.headers()["location"], "/client");

        let missing = admin.get("/no/such/page").await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert!(missing.text().await.expect("html").contains("Page not found"));
    }

    async fn security_headers_are_set(app) {
        let res = app.browser().get("/login").await;
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
        assert_eq!(res.headers()["x-frame-options"], "DENY");
    }
}
