//! Licence servers named by a DNS SRV record (RFC 2782): `srv:_licentia._tcp.example.com` in a
//! server list stands for the record's targets as `https://target:port` (`srv+http:` for plain
//! HTTP), ordered by priority and, within one, shuffled by weight, so an office can move or add
//! servers by editing DNS instead of every workstation's configuration.
//!
//! DNS is not trusted to choose whom TLS authenticates: with `srv:`, only targets in the record's
//! own domain (`example.com` or below) are used, so a forged answer cannot send licence keys and
//! lease tokens to a server that merely holds a valid certificate for a domain of its own.
//! `srv+http:` trusts DNS as plain HTTP trusts the network (a LAN's own site server).
//!
//! A small synchronous DNS client (RFC 1035) does the look-up: one SRV question over UDP to the
//! first three resolvers of `/etc/resolv.conf` (or `LICENTIA_DNS_RESOLVER=host:port`), over TCP
//! when the answer is truncated, each within 2 s however slowly the resolver answers. An answer
//! is kept for its TTL (at least 30 s, at most an hour), "no such name" too; when no resolver
//! answers, a running application keeps using the last answer (asking again every 30 s), so a
//! DNS outage does not stop its seats.

use rand::Rng;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One target of an SRV record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub host: String,
    pub ttl: u32,
}

const SRV: u16 = 33;
const CLASS_IN: u16 = 1;
/// How long one resolver may take to answer, all of it.
const TIMEOUT: Duration = Duration::from_secs(2);
/// How long a failed look-up keeps the last answer before asking again.
const RETRY: Duration = Duration::from_secs(30);

/// The server list with every `srv:` / `srv+http:` entry replaced by its targets' URLs, and why
/// an entry gave none (the last such reason), for the error when no server answers.
pub fn expand(servers: &[String]) -> (Vec<String>, Option<String>) {
    let mut out = Vec::new();
    let mut failed = None;
    for server in servers {
        let (scheme, name) = match (
            server.strip_prefix("srv:"),
            server.strip_prefix("srv+http:"),
        ) {
            (Some(name), _) => ("https", name),
            (_, Some(name)) => ("http", name),
            _ => {
                out.push(server.clone());
                continue;
            }
        };
        match targets(name) {
            Ok(found) => {
                let named = found.len();
                let usable: Vec<Target> = found
                    .into_iter()
                    .filter(|t| scheme == "http" || within(&t.host, name))
                    .collect();
                out.extend(
                    usable
                        .iter()
                        .map(|t| format!("{scheme}://{}:{}", t.host, t.port)),
                );
                if usable.is_empty() {
                    failed = Some(match named {
                        0 => format!("no servers from the SRV record {name}: no such record"),
                        _ => format!(
                            "the SRV record {name} names only servers outside {}, which are \
                             not used over HTTPS",
                            domain_of(name)
                        ),
                    });
                }
            }
            Err(e) => failed = Some(format!("no servers from the SRV record {name}: {e}")),
        }
    }
    (out, failed)
}

/// The domain an SRV name is about: `_licentia._tcp.example.com` → `example.com`.
fn domain_of(name: &str) -> &str {
    let mut rest = name.trim_end_matches('.');
    while let Some((label, after)) = rest.split_once('.') {
        if !label.starts_with('_') {
            break;
        }
        rest = after;
    }
    rest
}

/// Whether `host` is the SRV name's domain or a name below it.
pub fn within(host: &str, name: &str) -> bool {
    let (host, domain) = (host.trim_end_matches('.'), domain_of(name));
    if host.eq_ignore_ascii_case(domain) {
        return true;
    }
    host.len() > domain.len() + 1
        && host.is_char_boundary(host.len() - domain.len() - 1)
        && host[host.len() - domain.len() - 1..].starts_with('.')
        && host[host.len() - domain.len()..].eq_ignore_ascii_case(domain)
}

/// Names looked up: until when each answer holds, and the answer.
type Answers = HashMap<String, (Instant, Vec<Target>)>;

static CACHE: Mutex<Option<Answers>> = Mutex::new(None);

/// The targets of `name` in the order to try them: from the cache while its TTL holds, else
/// asked; the last answer if no resolver answers now.
pub fn targets(name: &str) -> Result<Vec<Target>, String> {
    let key = name.trim_end_matches('.').to_ascii_lowercase();
    let cached = CACHE
        .lock()
        .ok()
        .and_then(|c| c.as_ref().and_then(|m| m.get(&key).cloned()));
    if let Some((until, found)) = &cached {
        if Instant::now() < *until {
            return Ok(ordered(found.clone()));
        }
    }
    let keep = |until: Duration, found: &[Target]| {
        if let Ok(mut c) = CACHE.lock() {
            c.get_or_insert_with(HashMap::new)
                .insert(key.clone(), (Instant::now() + until, found.to_vec()));
        }
    };
    match look_up(&key) {
        // ("No such name" is an answer too: the record was removed.)
        Ok(found) => {
            let ttl = found.iter().map(|t| t.ttl).min().unwrap_or(30);
            keep(Duration::from_secs(u64::from(ttl.clamp(30, 3600))), &found);
            Ok(ordered(found))
        }
        Err(e) => match cached {
            Some((_, found)) => {
                keep(RETRY, &found);
                Ok(ordered(found))
            }
            None => Err(e),
        },
    }
}

/// RFC 2782's order: lowest priority first; within one priority, a weighted random order
/// (a target of weight 0 is tried last among its peers). A target "." means "no service here".
pub fn ordered(mut found: Vec<Target>) -> Vec<Target> {
    found.retain(|t| !t.host.is_empty() && t.host != ".");
    let mut rng = rand::thread_rng();
    let mut out = Vec::with_capacity(found.len());
    let mut priorities: Vec<u16> = found.iter().map(|t| t.priority).collect();
    priorities.sort_unstable();
    priorities.dedup();
    for p in priorities {
        let mut same: Vec<Target> = found.iter().filter(|t| t.priority == p).cloned().collect();
        while !same.is_empty() {
            let total: u32 = same.iter().map(|t| u32::from(t.weight)).sum();
            let pick = if total == 0 {
                0
            } else {
                let mut roll = rng.gen_range(0..total);
                same.iter()
                    .position(|t| {
                        let w = u32::from(t.weight);
                        if roll < w {
                            true
                        } else {
                            roll -= w;
                            false
                        }
                    })
                    .unwrap_or(0)
            };
            out.push(same.remove(pick));
        }
    }
    out
}

/// The resolvers to ask: `LICENTIA_DNS_RESOLVER` (host:port), else the first three of
/// `/etc/resolv.conf` (as the C library asks them).
fn resolvers() -> Result<Vec<SocketAddr>, String> {
    if let Ok(given) = std::env::var("LICENTIA_DNS_RESOLVER") {
        let found: Vec<SocketAddr> = given
            .to_socket_addrs()
            .map(Iterator::collect)
            .unwrap_or_default();
        if found.is_empty() {
            return Err(format!(
                "LICENTIA_DNS_RESOLVER={given} is not a resolver's host:port"
            ));
        }
        return Ok(found);
    }
    let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let found: Vec<SocketAddr> = conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|ip| {
            ip.trim()
                .split('%')
                .next()?
                .parse::<std::net::IpAddr>()
                .ok()
        })
        .map(|ip| SocketAddr::new(ip, 53))
        .take(3)
        .collect();
    Ok(if found.is_empty() {
        vec![SocketAddr::from(([127, 0, 0, 1], 53))]
    } else {
        found
    })
}

/// The targets of `name` from the first resolver that answers ("no such name" is an answer:
/// none).
fn look_up(name: &str) -> Result<Vec<Target>, String> {
    let mut last = "no resolver".to_owned();
    for resolver in resolvers()? {
        match ask(resolver, name) {
            Ok(found) => return Ok(found),
            Err(Answer::Error(3)) => return Ok(Vec::new()),
            Err(e) => last = format!("{resolver}: {e}"),
        }
    }
    Err(last)
}

/// One question to one resolver: over UDP, again over TCP if the answer was truncated; all of
/// it within `TIMEOUT`.
pub fn ask(resolver: SocketAddr, name: &str) -> Result<Vec<Target>, Answer> {
    let deadline = Instant::now() + TIMEOUT;
    let id: u16 = rand::thread_rng().gen();
    let query = encode_query(id, name).map_err(Answer::Failed)?;
    let bind: SocketAddr = if resolver.is_ipv4() {
        SocketAddr::from(([0, 0, 0, 0], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    };
    let socket = UdpSocket::bind(bind).map_err(failed)?;
    socket.connect(resolver).map_err(failed)?;
    socket.send(&query).map_err(failed)?;
    let mut buf = [0u8; 4096];
    let answer = loop {
        socket
            .set_read_timeout(Some(left(deadline)?))
            .map_err(failed)?;
        let n = socket.recv(&mut buf).map_err(failed)?;
        // (Another answer — a late one to an earlier question — is not ours: wait on, within
        // the same deadline.)
        if n >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id {
            break buf[..n].to_vec();
        }
    };
    match parse_answer(id, name, &answer) {
        Err(Answer::Truncated) => ask_tcp(resolver, (id, name), &query, deadline),
        other => other,
    }
}

fn failed(e: std::io::Error) -> Answer {
    Answer::Failed(e.to_string())
}

/// The time left before `deadline`, or a timeout.
fn left(deadline: Instant) -> Result<Duration, Answer> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| Answer::Failed("no answer in time".into()))
}

fn ask_tcp(
    resolver: SocketAddr,
    (id, name): (u16, &str),
    query: &[u8],
    deadline: Instant,
) -> Result<Vec<Target>, Answer> {
    let mut stream = TcpStream::connect_timeout(&resolver, left(deadline)?).map_err(failed)?;
    stream
        .set_write_timeout(Some(left(deadline)?))
        .map_err(failed)?;
    let len = u16::try_from(query.len()).map_err(|e| Answer::Failed(e.to_string()))?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    stream.write_all(&framed).map_err(failed)?;
    let mut len = [0u8; 2];
    read_within(&mut stream, &mut len, deadline)?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
    read_within(&mut stream, &mut answer, deadline)?;
    parse_answer(id, name, &answer)
}

/// Fills `buf` from `stream` before `deadline`, however slowly the bytes come.
fn read_within(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> Result<(), Answer> {
    let mut filled = 0;
    while filled < buf.len() {
        stream
            .set_read_timeout(Some(left(deadline)?))
            .map_err(failed)?;
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Err(Answer::Malformed("cut short")),
            Ok(n) => filled += n,
            Err(e) => return Err(failed(e)),
        }
    }
    Ok(())
}

/// A DNS query for the SRV records of `name`, recursion desired.
pub fn encode_query(id: u16, name: &str) -> Result<Vec<u8>, String> {
    let mut q = Vec::with_capacity(18 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00]); // RD
    q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // one question
    for label in name.trim_end_matches('.').split('.') {
        let len = u8::try_from(label.len())
            .ok()
            .filter(|l| (1..=63).contains(l))
            .ok_or_else(|| format!("{name} is not a DNS name"))?;
        q.push(len);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    if q.len() - 12 > 255 {
        return Err(format!("{name} is longer than a DNS name may be"));
    }
    q.extend_from_slice(&SRV.to_be_bytes());
    q.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(q)
}

/// Why an answer gives no targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// No answer (a timeout, a refused connection, a name that cannot be asked), saying why.
    Failed(String),
    Truncated,
    /// The resolver's error code (3: no such name).
    Error(u8),
    Malformed(&'static str),
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Failed(why) => f.write_str(why),
            Answer::Truncated => f.write_str("the answer was truncated"),
            Answer::Error(3) => f.write_str("no such name"),
            Answer::Error(5) => f.write_str("the resolver refused to answer"),
            Answer::Error(code) => write!(f, "the resolver answered error {code}"),
            Answer::Malformed(what) => write!(f, "a malformed answer ({what})"),
        }
    }
}

/// The SRV records of `name` in an answer to query `id` (records about other names are not
/// read).
pub fn parse_answer(id: u16, name: &str, msg: &[u8]) -> Result<Vec<Target>, Answer> {
    let name = name.trim_end_matches('.');
    let u16_at = |at: usize| -> Result<u16, Answer> {
        msg.get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or(Answer::Malformed("cut short"))
    };
    if u16_at(0)? != id {
        return Err(Answer::Malformed("another query's id"));
    }
    let flags = u16_at(2)?;
    if flags & 0x8000 == 0 {
        return Err(Answer::Malformed("not an answer"));
    }
    if flags & 0x0200 != 0 {
        return Err(Answer::Truncated);
    }
    let rcode = (flags & 0x000f) as u8;
    if rcode != 0 {
        return Err(Answer::Error(rcode));
    }
    let (questions, answers) = (u16_at(4)?, u16_at(6)?);
    let mut at = 12;
    for _ in 0..questions {
        at = read_name(msg, at)?.1 + 4;
    }
    let mut found = Vec::new();
    for _ in 0..answers {
        let (owner, after) = read_name(msg, at)?;
        at = after;
        let (kind, class) = (u16_at(at)?, u16_at(at + 2)?);
        let ttl = msg
            .get(at + 4..at + 8)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or(Answer::Malformed("cut short"))?;
        let len = usize::from(u16_at(at + 8)?);
        let data = at + 10;
        if msg.len() < data + len {
            return Err(Answer::Malformed("cut short"));
        }
        if kind == SRV && class == CLASS_IN && len >= 7 && owner.eq_ignore_ascii_case(name) {
            let (host, _) = read_name(msg, data + 6)?;
            found.push(Target {
                priority: u16_at(data)?,
                weight: u16_at(data + 2)?,
                port: u16_at(data + 4)?,
                host,
                ttl,
            });
        }
        at = data + len;
    }
    Ok(found)
}

/// A name at `at` (labels, or a pointer to them), and where what follows it starts: only what a
/// host name may hold (letters, digits, `-`, `_`), at most 255 octets.
fn read_name(msg: &[u8], at: usize) -> Result<(String, usize), Answer> {
    let mut labels: Vec<String> = Vec::new();
    let mut octets = 0usize;
    let mut pos = at;
    let mut after = None;
    // Each pointer must point backwards: no loop can last.
    let mut limit = at;
    loop {
        let len = *msg.get(pos).ok_or(Answer::Malformed("cut short"))?;
        match len {
            0 => {
                let name = if labels.is_empty() {
                    ".".to_owned()
                } else {
                    labels.join(".")
                };
                return Ok((name, after.unwrap_or(pos + 1)));
            }
            l if l & 0xc0 == 0xc0 => {
                let low = *msg.get(pos + 1).ok_or(Answer::Malformed("cut short"))?;
                let target = (usize::from(l & 0x3f) << 8) | usize::from(low);
                if target >= limit {
                    return Err(Answer::Malformed("a name pointer that does not point back"));
                }
                after.get_or_insert(pos + 2);
                limit = target;
                pos = target;
            }
            l if l & 0xc0 == 0 => {
                let label = msg
                    .get(pos + 1..pos + 1 + usize::from(l))
                    .ok_or(Answer::Malformed("cut short"))?;
                octets += 1 + label.len();
                if octets > 255 {
                    return Err(Answer::Malformed("a name longer than 255 octets"));
                }
                if !label
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
                {
                    return Err(Answer::Malformed("a name no host could have"));
                }
                labels.push(String::from_utf8_lossy(label).into_owned());
                pos += 1 + usize::from(l);
            }
            _ => return Err(Answer::Malformed("a label type not in use")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: &str = "_licentia._tcp.example.com";

    /// An answer to `query` with the given SRV records (the owner name pointing at the
    /// question's).
    fn answer(query: &[u8], records: &[(u16, u16, u16, &str)]) -> Vec<u8> {
        let mut a = query.to_vec();
        a[2] = 0x81;
        a[3] = 0x80;
        a[6..8].copy_from_slice(&u16::try_from(records.len()).expect("few").to_be_bytes());
        for (priority, weight, port, host) in records {
            a.extend_from_slice(&[0xc0, 12]);
            a.extend_from_slice(&SRV.to_be_bytes());
            a.extend_from_slice(&CLASS_IN.to_be_bytes());
            a.extend_from_slice(&300u32.to_be_bytes());
            let mut data = Vec::new();
            for v in [priority, weight, port] {
                data.extend_from_slice(&v.to_be_bytes());
            }
            for label in host.split('.') {
                data.push(u8::try_from(label.len()).expect("short"));
                data.extend_from_slice(label.as_bytes());
            }
            data.push(0);
            a.extend_from_slice(&u16::try_from(data.len()).expect("short").to_be_bytes());
            a.extend_from_slice(&data);
        }
        a
    }

    #[test]
    fn an_srv_answer_is_read_with_its_compressed_names() {
        let q = encode_query(7, NAME).expect("query");
        assert_eq!(&q[12..22], b"\x09_licentia");
        let a = answer(
            &q,
            &[
                (10, 60, 8443, "a.example.com"),
                (20, 0, 443, "b.example.com"),
            ],
        );
        let found = parse_answer(7, NAME, &a).expect("targets");
        assert_eq!(found.len(), 2);
        let first = &found[0];
        assert_eq!(
            (
                first.priority,
                first.weight,
                first.port,
                first.host.as_str()
            ),
            (10, 60, 8443, "a.example.com")
        );
        assert_eq!(found[1].ttl, 300);
        assert_eq!(
            parse_answer(8, NAME, &a),
            Err(Answer::Malformed("another query's id"))
        );
        assert_eq!(
            parse_answer(7, "_other._tcp.example.com", &a),
            Ok(vec![]),
            "records about another name are not read"
        );
        let mut truncated = a.clone();
        truncated[2] |= 0x02;
        assert_eq!(parse_answer(7, NAME, &truncated), Err(Answer::Truncated));
        let mut nx = q.clone();
        nx[2] = 0x81;
        nx[3] = 0x83;
        assert_eq!(parse_answer(7, NAME, &nx), Err(Answer::Error(3)));
        assert_eq!(
            parse_answer(7, NAME, &a[..a.len() - 3]),
            Err(Answer::Malformed("cut short"))
        );
    }

    #[test]
    fn hostile_names_are_refused() {
        let q = encode_query(1, "x.test").expect("query");
        let mut a = answer(&q, &[(1, 1, 1, "h.test")]);
        // The answer's owner name now points at itself.
        let at = q.len();
        a[at] = 0xc0;
        a[at + 1] = u8::try_from(at).expect("small");
        assert!(matches!(
            parse_answer(1, "x.test", &a),
            Err(Answer::Malformed(_))
        ));
        // A target that would change the URL (a path, a port, a user) is no host name.
        for host in ["evil.test/x#", "a:1.test", "user@h.test"] {
            let a = answer(&q, &[(1, 1, 1, host)]);
            assert_eq!(
                parse_answer(1, "x.test", &a),
                Err(Answer::Malformed("a name no host could have")),
                "{host}"
            );
        }
        let long = vec!["a".repeat(60); 5].join(".");
        let a = answer(&q, &[(1, 1, 1, &long)]);
        assert_eq!(
            parse_answer(1, "x.test", &a),
            Err(Answer::Malformed("a name longer than 255 octets"))
        );
        assert!(encode_query(1, "a..b").is_err());
        assert!(encode_query(1, &"x".repeat(64)).is_err());
        // 255 octets at most, length bytes and the root included.
        let (a63, a61) = ("a".repeat(63), "a".repeat(61));
        let longest = format!("{a63}.{a63}.{a63}.{a61}");
        assert!(encode_query(1, &longest).is_ok());
        assert!(encode_query(1, &format!("{longest}b")).is_err());
    }

    #[test]
    fn over_https_only_targets_in_the_records_domain_are_used() {
        assert_eq!(domain_of(NAME), "example.com");
        for host in ["example.com", "lic-a.example.com", "A.B.EXAMPLE.COM."] {
            assert!(within(host, NAME), "{host}");
        }
        for host in ["evil.com", "notexample.com", "example.com.evil.com", "com"] {
            assert!(!within(host, NAME), "{host}");
        }
    }

    #[test]
    fn targets_are_tried_by_priority_then_weight() {
        let t = |priority, weight, host: &str| Target {
            priority,
            weight,
            port: 443,
            host: host.into(),
            ttl: 60,
        };
        for _ in 0..50 {
            let order = ordered(vec![
                t(20, 5, "backup"),
                t(10, 0, "rarely"),
                t(10, 100, "mostly"),
                t(0, 0, "."),
            ]);
            let hosts: Vec<&str> = order.iter().map(|t| t.host.as_str()).collect();
            assert_eq!(
                hosts,
                ["mostly", "rarely", "backup"],
                "weight 0 last, '.' dropped"
            );
        }
        // Equal weights: each comes first about half the time.
        let firsts = (0..400)
            .filter(|_| ordered(vec![t(1, 10, "a"), t(1, 10, "b")])[0].host == "a")
            .count();
        assert!((120..=280).contains(&firsts), "{firsts}");
    }
}
