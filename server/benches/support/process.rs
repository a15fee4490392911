//! What the benchmarks share about the server processes they start: settings that let one load
//! generator past the rate limits, starting a process and reading its URL, and its CPU time and
//! memory from /proc. (Included by path.)

use std::collections::BTreeMap;
use tokio::io::AsyncBufReadExt;

/// The server's settings on `database_url` with a fresh master key, a free port and checkout
/// limits far above what one machine sends.
pub fn server_env(database_url: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("DATABASE_URL".to_owned(), database_url.to_owned()),
        (
            "LICENTIA_MASTER_KEY".to_owned(),
            licensing::keys::MasterKey::random().to_base64(),
        ),
        ("LICENTIA_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        (
            "LICENTIA_CHECKOUT_MAX_PER_MINUTE_POOL".to_owned(),
            "100000000".to_owned(),
        ),
        (
            "LICENTIA_CHECKOUT_MAX_PER_MINUTE_ADDRESS".to_owned(),
            "100000000".to_owned(),
        ),
    ])
}

/// Starts `cmd` and waits for the line that names its URL after `prefix`; its later output is
/// read on, so that it never blocks on a full pipe. Killed when the child is dropped.
pub async fn start(
    mut cmd: tokio::process::Command,
    prefix: &str,
) -> (String, tokio::process::Child) {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start a server");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    while let Some(line) = lines.next_line().await.expect("read") {
        if let Some(rest) = line.strip_prefix(prefix) {
            let url = rest.split_whitespace().next().unwrap_or_default();
            let url = url.trim_end_matches('/').to_owned();
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return (url, child);
        }
    }
    panic!("a server did not start");
}

/// A process's CPU seconds so far (user + system) and its resident memory in KiB.
pub fn usage(pid: u32, ticks_per_sec: f64) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat: 12 and 13 after the name.
    let cpu = (tick(11) + tick(12)) / ticks_per_sec;
    (cpu, status_kib(pid, "VmRSS:"))
}

/// A field of /proc/<pid>/status in KiB (0 when absent).
pub fn status_kib(pid: u32, name: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}
