//! The rules of the second factor: time-based one-time passwords (RFC 6238: HMAC-SHA1, six
//! digits, 30-second steps, as authenticator apps make them), the `otpauth://` URI apps import,
//! and recovery codes. Plain functions; the services in `second_factor` store and check them.

use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha1::Sha1;

/// Seconds per step.
pub const STEP_SECS: i64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Steps either side of now that are accepted (a phone's clock a little off, a code typed
/// as it changes).
pub const DRIFT_STEPS: i64 = 1;
/// Bytes of a secret (160 bits, RFC 4226's recommendation).
pub const SECRET_BYTES: usize = 20;
/// Recovery codes made at a time.
pub const RECOVERY_CODES: usize = 10;

/// A new random secret.
pub fn new_secret() -> [u8; SECRET_BYTES] {
    let mut secret = [0u8; SECRET_BYTES];
    OsRng.fill_bytes(&mut secret);
    secret
}

/// The secret as authenticator apps take it typed in: base32 without padding.
pub fn secret_text(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

/// The secret back from its text (as `secret_text` wrote it, any case, spaces ignored).
pub fn secret_from_text(text: &str) -> Option<Vec<u8>> {
    let clean: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    data_encoding::BASE32_NOPAD.decode(clean.as_bytes()).ok()
}

/// RFC 4226's HOTP value for `counter`, truncated to `digits` digits.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(&counter.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[hash.len() - 1] & 0x0f);
    let value = u32::from_be_bytes([
        hash[offset] & 0x7f,
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ]);
    value % 10u32.pow(digits)
}

/// The step `unix_secs` falls in.
pub fn step_of(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(STEP_SECS)
}

/// The code an app shows at `unix_secs`.
pub fn code_at(secret: &[u8], unix_secs: i64) -> String {
    let step = u64::try_from(step_of(unix_secs)).unwrap_or(0);
    format!(
        "{:0width$}",
        hotp(secret, step, DIGITS),
        width = DIGITS as usize
    )
}

/// The step whose code `typed` is, within the drift of `now`, and later than `last_used` (a
/// code works once: the same code, or an earlier one, seen again is refused). Spaces in what
/// was typed are ignored. Compared in constant time.
pub fn matching_step(secret: &[u8], typed: &str, now: i64, last_used: Option<i64>) -> Option<i64> {
    let typed: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    if typed.len() != DIGITS as usize || !typed.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now_step = step_of(now);
    let mut found = None;
    for step in now_step - DRIFT_STEPS..=now_step + DRIFT_STEPS {
        let Ok(counter) = u64::try_from(step) else {
            continue;
        };
        let code = format!(
            "{:0width$}",
            hotp(secret, counter, DIGITS),
            width = DIGITS as usize
        );
        let same = code
            .bytes()
            .zip(typed.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
        if same && last_used.is_none_or(|last| step > last) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// The URI an authenticator app imports (Key Uri Format): the account and the issuer name the
/// entry in the app.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let issuer_enc = protocol::audit::percent_encode(issuer);
    format!(
        "otpauth://totp/{issuer_enc}:{}?secret={}&issuer={issuer_enc}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        protocol::audit::percent_encode(account),
        secret_text(secret)
    )
}

/// The letters of recovery codes: no 0/O or 1/I/L to misread.
const RECOVERY_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// A new recovery code, `XXXXX-XXXXX` (ten letters of 31, about 49.5 bits, each drawn
/// uniformly).
pub fn new_recovery_code() -> String {
    use rand::Rng;
    let letters: String = (0..10)
        .map(|_| char::from(RECOVERY_ALPHABET[OsRng.gen_range(0..RECOVERY_ALPHABET.len())]))
        .collect();
    format!("{}-{}", &letters[..5], &letters[5..])
}

/// A typed recovery code in its stored form (upper case, no dash or spaces), if it can be one.
pub fn normalise_recovery_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == 10 && code.bytes().all(|b| RECOVERY_ALPHABET.contains(&b))).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 6238, appendix B: the SHA-1 secret and the eight-digit values at its times.
    #[test]
    fn the_rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, expected) in [
            (59u64, 94_287_082u32),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ] {
            assert_eq!(hotp(secret, time / 30, 8), expected, "T = {time}");
        }
        assert_eq!(code_at(secret, 59), "287082");
        assert_eq!(code_at(secret, 1_111_111_109), "081804");
    }

    #[test]
    fn rfc_4226_hotp_values() {
        let secret = b"12345678901234567890";
        let expected = [755_224, 287_082, 359_152, 969_429, 338_314];
        for (counter, value) in expected.into_iter().enumerate() {
            assert_eq!(hotp(secret, counter as u64, 6), value);
        }
    }

    #[test]
    fn a_code_is_accepted_a_step_either_side_and_only_once() {
        let secret = b"12345678901234567890";
        let now = 1_111_111_111;
        let code = code_at(secret, now);
        let step = step_of(now);
        assert_eq!(matching_step(secret, &code, now, None), Some(step));
        assert_eq!(matching_step(secret, &code, now + 30, None), Some(step));
        assert_eq!(matching_step(secret, &code, now - 30, None), Some(step));
        assert_eq!(
            matching_step(secret, &code, now + 90, None),
            None,
            "too late"
        );
        assert_eq!(matching_step(secret, &code, now, Some(step)), None, "used");
        assert_eq!(
            matching_step(secret, &code, now, Some(step - 1)),
            Some(step)
        );
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(matching_step(secret, &spaced, now, None), Some(step));
        for bad in ["", "12345", "1234567", "abcdef", "12 34 5"] {
            assert_eq!(matching_step(secret, bad, now, None), None, "{bad}");
        }
    }

    #[test]
    fn the_uri_names_the_issuer_the_account_and_the_secret() {
        let uri = otpauth_uri("Licentia", "ada@vendor.test", b"12345678901234567890");
        assert_eq!(
            uri,
            "otpauth://totp/Licentia:ada%40vendor.test?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Licentia&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn a_secret_reads_back_from_its_text() {
        let secret = new_secret();
        let text = secret_text(&secret);
        assert_eq!(secret_from_text(&text), Some(secret.to_vec()));
        assert_eq!(
            secret_from_text(&text.to_lowercase()),
            Some(secret.to_vec())
        );
        assert_eq!(secret_from_text("not base32!"), None);
    }

    #[test]
    fn recovery_codes_read_back_however_they_are_typed() {
        let code = new_recovery_code();
        assert_eq!(code.len(), 11);
        let stored = normalise_recovery_code(&code).expect("well formed");
        assert_eq!(
            normalise_recovery_code(&code.to_lowercase()),
            Some(stored.clone())
        );
        assert_eq!(
            normalise_recovery_code(&code.replace('-', " ")),
            Some(stored)
        );
        assert_eq!(normalise_recovery_code("123456"), None);
        assert_eq!(
            normalise_recovery_code("00000-00000"),
            None,
            "0 is not in the alphabet"
        );
    }

    proptest! {
        #[test]
        fn the_code_of_now_always_matches_now_once(
            secret in proptest::collection::vec(any::<u8>(), 10..40),
            now in 30i64..4_000_000_000,
        ) {
            let code = code_at(&secret, now);
            prop_assert_eq!(code.len(), 6);
            let step = matching_step(&secret, &code, now, None);
            // Now's step, or (one time in a million) a neighbour whose code is the same.
            prop_assert!(step.is_some_and(|s| (s - step_of(now)).abs() <= 1));
            let s = step.unwrap_or_default();
            prop_assert_eq!(code_at(&secret, s * STEP_SECS), code.clone());
            // Once used, neither it nor an earlier step passes again.
            prop_assert_eq!(matching_step(&secret, &code, now, Some(step_of(now) + 1)), None);
        }
    }
}
