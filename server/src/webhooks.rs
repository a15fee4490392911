//! Sends the webhook deliveries that are due: each claimed on its own right before it is sent
//! (so one sender makes each attempt, and a webhook removed before its claim gets nothing), POSTed as
//! JSON with its signature (`Licentia-Signature: t=…,v1=…`, HMAC-SHA256 of `"<t>.<body>"`), the
//! event and the delivery id, over https (public roots, plus `LICENTIA_WEBHOOK_CA_FILE`) or http,
//! within 10 s, without following redirects or environment proxies, reading at most 1 KiB of the
//! answer; eight at once, at most two of one webhook per round. Addresses that are not public
//! (loopback, private, link-local…) are refused unless `LICENTIA_WEBHOOK_PRIVATE_ADDRESSES`
//! allows them: a webhook is not a way into the server's own network.

use futures_util::StreamExt;
use licensing::Licentia;
use protocol::webhooks::SIGNATURE_HEADER;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Deliveries one round looks at.
const ROUND: i64 = 50;
/// Attempts under way at once.
const AT_ONCE: usize = 8;
/// The most of an answer read.
const ANSWER_BYTES: usize = 1024;
/// Attempts at one webhook's deliveries per round.
const PER_WEBHOOK: usize = 2;

/// How deliveries go out.
#[derive(Clone)]
pub struct Sender {
    http: reqwest::Client,
    allow_private: bool,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("allow_private", &self.allow_private)
            .finish_non_exhaustive()
    }
}

/// Whether `ip` is an address on the public internet (not loopback, private, link-local,
/// shared, unspecified, multicast, documentation or unique-local).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            // IPv4 inside IPv6: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d) and NAT64
            // (64:ff9b::a.b.c.d) reach that IPv4 address; judge it.
            let embedded = |hi: u16, lo: u16| {
                std::net::Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)
            };
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            if s[..6] == [0; 6] && !(v6.is_loopback() || v6.is_unspecified()) {
                return is_public(IpAddr::V4(embedded(s[6], s[7])));
            }
            if s[0] == 0x64 && s[1] == 0xff9b {
                return is_public(IpAddr::V4(embedded(s[6], s[7])));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                || s[0] == 0x2002
                || (s[0] == 0x2001 && (s[1] == 0 || s[1] == 0x0db8)))
        }
    }
}

/// Resolves names to their public addresses only, so the address checked is the one connected
/// to (a name that answers a private address once checked is not followed).
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("{host} has no public address").into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

impl Sender {
    /// `extra_roots`: certificates trusted beside the public roots (a private CA). Refused when
    /// the client cannot be built as asked (never a client with fewer protections).
    pub fn new(
        allow_private: bool,
        extra_roots: &[reqwest::Certificate],
    ) -> Result<Self, reqwest::Error> {
        // No proxy from the environment: through one, the receiver's name would be resolved
        // (and reached) from the proxy's side, past the address check.
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Licentia-Webhooks/", env!("CARGO_PKG_VERSION")));
        for root in extra_roots {
            builder = builder.add_root_certificate(root.clone());
        }
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        Ok(Self {
            http: builder.build()?,
            allow_private,
        })
    }

    /// Sends what is due now; returns how many attempts were made.
    pub async fn deliver_due(&self, services: &Licentia) -> licensing::Result<usize> {
        // At most two of one webhook's deliveries per round: a slow receiver does not hold every
        // slot.
        let mut per_hook: std::collections::HashMap<i64, usize> = Default::default();
        let due: Vec<i64> = services
            .due_deliveries(ROUND * 4)
            .await?
            .into_iter()
            .filter(|(_, hook)| {
                let n = per_hook.entry(*hook).or_default();
                *n += 1;
                *n <= PER_WEBHOOK
            })
            .map(|(id, _)| id)
            .take(ROUND as usize)
            .collect();
        let made = futures_util::stream::iter(due)
            .map(|id| self.attempt(services, id))
            .buffer_unordered(AT_ONCE)
            .collect::<Vec<_>>()
            .await;
        let mut n = 0;
        for outcome in made {
            if outcome? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// One attempt at delivery `id`, if it can be claimed.
    async fn attempt(&self, services: &Licentia, id: i64) -> licensing::Result<bool> {
        let Some(d) = services.claim_delivery(id).await? else {
            return Ok(false);
        };
        let (status, answer) = match self.refused_address(&d.url) {
            Some(why) => (None, why),
            None => self.post(services, &d).await,
        };
        services
            .delivery_attempted(d.id, &d.claim, status, &answer)
            .await?;
        Ok(true)
    }

    /// Why `url` is not sent to, when its host is an address that is not public.
    fn refused_address(&self, url: &str) -> Option<String> {
        if self.allow_private {
            return None;
        }
        let parsed = reqwest::Url::parse(url).ok()?;
        let ip = match parsed.host()? {
            url::Host::Ipv4(v4) => IpAddr::V4(v4),
            url::Host::Ipv6(v6) => IpAddr::V6(v6),
            url::Host::Domain(_) => return None,
        };
        (!is_public(ip)).then(|| {
            "not sent: the address is not public (LICENTIA_WEBHOOK_PRIVATE_ADDRESSES allows it)"
                .to_owned()
        })
    }

    async fn post(
        &self,
        services: &Licentia,
        d: &licensing::webhooks::DueDelivery,
    ) -> (Option<u16>, String) {
        let t = services.clock().now();
        let sent = self
            .http
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
        match sent {
            Ok(mut res) => {
                let status = res.status().as_u16();
                let mut answer = Vec::new();
                while answer.len() < ANSWER_BYTES {
                    match res.chunk().await {
                        Ok(Some(chunk)) => answer.extend_from_slice(&chunk),
                        _ => break,
                    }
                }
                answer.truncate(ANSWER_BYTES);
                (Some(status), String::from_utf8_lossy(&answer).into_owned())
            }
            Err(e) => (None, format!("not reached: {}", reason(&e))),
        }
    }
}

/// Why a request failed, in a few words (no URL: the portal shows it beside the webhook).
fn reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "no answer within 10 s".into()
    } else if e.is_connect() {
        // The resolver's refusal of a private address comes this way too.
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            if s.to_string().contains("has no public address") {
                return s.to_string();
            }
            source = s.source();
        }
        "the connection was refused or could not be made".into()
    } else {
        "the request failed".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_sent_to() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "fec0::1",
            "2002:7f00:1::1",
            "2001::1",
            "192.0.0.8",
        ] {
            assert!(!is_public(private.parse().expect("ip")), "{private}");
        }
        for public in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "64:ff9b::5db8:d822",
        ] {
            assert!(is_public(public.parse().expect("ip")), "{public}");
        }
        let s = Sender::new(false, &[]).expect("client");
        assert!(
            s.refused_address("http://2130706433/hook").is_some(),
            "127.0.0.1 written as a number"
        );
        assert!(s.refused_address("http://[::1]:8080/").is_some());
        assert!(s.refused_address("http://[::127.0.0.1]/").is_some());
        assert!(Sender::new(true, &[])
            .expect("client")
            .refused_address("http://127.0.0.1/")
            .is_none());
    }
}
