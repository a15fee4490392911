//! The offline check in the client library side by side with a bare Ed25519 verification of the
//! same code's signature, measured in the same run: the endorsement and the code verified by
//! hand each time (two signatures), the library's verification (`Licensing::jwks`: the kept
//! endorsement, verified once per text; then the code and its claims), and the whole
//! `Licensing::status` as an application calls it (with the sealed state file's read and write,
//! which record the latest time seen). Ratios are to the bare verify.
//!
//!     cargo bench -p client --bench offline [-- --iterations 2000]
//!
//! Prints one table; no assertions (speed is measured, not tested).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::{Signature, SigningKey};
use licentia_client::{Licensing, Store};
use protocol::activation::{self as code, Claims, Jwk, JwkSet};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn iterations() -> usize {
    let argv: Vec<String> = std::env::args().collect();
    argv.iter()
        .position(|a| a == "--iterations")
        .and_then(|i| argv.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The median time of one call of `f` over `n` calls, in microseconds.
fn median_us(n: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[n / 2].as_secs_f64() * 1e6
}

fn main() {
    let n = iterations();
    let vendor = SigningKey::from_bytes(&[3; 32]);
    let root = SigningKey::from_bytes(&[7; 32]);
    let roots = JwkSet {
        keys: vec![Jwk::ed25519("root", &root.verifying_key())],
    };
    let claims = Claims {
        iss: "bench".into(),
        sub: "KEY".into(),
        lic: 1,
        act: 1,
        prd: "CALC".into(),
        fp: code::fingerprint("CALC", "bench-machine"),
        host: "bench-machine".into(),
        feat: vec!["print".into()],
        cnt: BTreeMap::new(),
        start: None,
        end: None,
        iat: now() - 60,
        nbf: None,
        exp: None,
        next: now() + 86_400,
        req: None,
    };
    let activation_code = code::sign(&claims, "k", &vendor);
    let endorsement = protocol::trust::endorse(
        &protocol::trust::Endorsement {
            iss: "bench".into(),
            iat: now() - 60,
            retired: Vec::new(),
            keys: JwkSet {
                keys: vec![Jwk::ed25519("k", &vendor.verifying_key())],
            },
        },
        "root",
        &root,
    );

    // Bare: the code's signature over its signing input, nothing else.
    let (input, signature) = activation_code.rsplit_once('.').expect("a compact JWS");
    let signature: [u8; 64] = URL_SAFE_NO_PAD
        .decode(signature)
        .expect("base64")
        .try_into()
        .expect("64 bytes");
    let signature = Signature::from_bytes(&signature);
    let public = vendor.verifying_key();
    let bare = median_us(n, || {
        public
            .verify_strict(input.as_bytes(), &signature)
            .expect("verifies");
    });

    // The verification, done by hand: the endorsement against the root, then the code.
    let both = median_us(n, || {
        let keys = protocol::trust::verify_endorsement(&endorsement, &roots).expect("endorsed");
        let claims = code::verify_signature(&activation_code, &keys.keys).expect("verifies");
        code::check(&claims, "CALC", &claims.fp, now()).expect("valid");
    });

    // The whole offline check, on a real state file in a temporary directory.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store =
        Store::open_with_witness(dir.path(), "CALC", &dir.path().join("witness")).expect("store");
    store.state.activation_code = Some(activation_code.clone());
    store.state.endorsement = Some(endorsement.clone());
    let mut licensing = Licensing::new(None, "CALC", Some("bench-machine"), store)
        .expect("licensing")
        .with_root(roots.clone());
    licensing.status().expect("valid offline");
    // The library's verification without the state file's write: its trusted keys (the kept
    // endorsement, verified once per text) and the code.
    let verification = median_us(n, || {
        let keys = licensing.jwks().expect("trusted keys");
        let claims = code::verify_signature(&activation_code, &keys).expect("verifies");
        code::check(&claims, "CALC", &claims.fp, now()).expect("valid");
    });
    let status = median_us(n, || {
        licensing.status().expect("valid offline");
    });

    println!("{n} calls each, median of one call");
    println!("{:<56} {:>9} {:>7}", "", "µs", "ratio");
    println!(
        "{:<56} {bare:>9.1} {:>7.2}",
        "bare Ed25519 verify of the code's signature", 1.0
    );
    println!(
        "{:<56} {both:>9.1} {:>7.2}",
        "endorsement and code verified, each time",
        both / bare
    );
    println!(
        "{:<56} {verification:>9.1} {:>7.2}",
        "Licensing::jwks + the code verified and checked",
        verification / bare
    );
    println!(
        "{:<56} {status:>9.1} {:>7.2}",
        "Licensing::status (pinned root, sealed state file)",
        status / bare
    );
}
