//! Sends the webhook deliveries that are due: each claimed (so one replica sends it), POSTed as
//! JSON with its signature (`Licentia-Signature: t=…,v1=…`, HMAC-SHA256 of `"<t>.<body>"`), the
//! event and the delivery id, within 10 s and without following redirects; the answer recorded
//! (2xx: delivered; anything else: retried with backoff, then given up).

use licensing::Licentia;
use protocol::webhooks::SIGNATURE_HEADER;
use std::time::Duration;

/// Deliveries one round sends at most.
const ROUND: i64 = 50;

/// The HTTP client deliveries go out with.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Licentia-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// Sends what is due now; returns how many were attempted.
pub async fn deliver_due(services: &Licentia, http: &reqwest::Client) -> licensing::Result<usize> {
    let due = services.claim_due_deliveries(ROUND).await?;
    let n = due.len();
    for d in due {
        let t = services.clock().now();
        let sent = http
            .post(&d.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                SIGNATURE_HEADER,
                licensing::webhooks::signature(&d.secret, t, d.payload.as_bytes()),
            )
            .header("Licentia-Event", &d.event)
            .header("Licentia-Delivery", d.id.to_string())
            .body(d.payload.clone())
            .send()
            .await;
        let (status, answer) = match sent {
            Ok(res) => {
                let status = res.status().as_u16();
                (Some(status), res.text().await.unwrap_or_default())
            }
            Err(e) => (None, format!("not reached: {}", reason(&e))),
        };
        services.delivery_attempted(d.id, status, &answer).await?;
    }
    Ok(n)
}

/// Why a request failed, in a few words (no URL: the portal shows it beside the webhook).
fn reason(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "no answer within 10 s"
    } else if e.is_connect() {
        "the connection was refused or could not be made"
    } else if e.is_redirect() {
        "it answered with a redirect"
    } else {
        "the request failed"
    }
}
