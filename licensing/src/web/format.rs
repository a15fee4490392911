//! Serial numbers of the web licensing model: unforgeable, readable aloud, and checked before any
//! database look-up. A serial is 20 bytes — version, product, a random serial id, the custom
//! features as a bit mask over the product's catalogue, and a 56-bit HMAC of all that under a key
//! only the server has — written as 32 characters of Crockford's base32 in groups of four.
//! A typo, a transposition or a guess fails the MAC and is refused at once.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;

/// Crockford's base32: no I, L, O or U, so nothing is read as something else.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const VERSION: u8 = 1;
const BYTES: usize = 20;
const MAC_BYTES: usize = 7;
/// Characters in a serial, without the dashes.
pub const CHARS: usize = 32;

/// What a serial carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SerialData {
    /// The product's id (up to 2^24 - 1).
    pub product_id: u32,
    /// Random, 40 bits: tells serials of one product apart.
    pub serial_id: u64,
    /// Bit i set: the product's feature i is enabled. 0: the product's default features.
    pub feature_mask: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SerialError {
    #[error("a serial number has 32 letters and digits, in groups of four such as 1A2B-3C4D-…")]
    Shape,
    #[error("this serial number is not valid: check it for typos")]
    Invalid,
    #[error("the product id {0} is too large for a serial number")]
    ProductTooLarge(u32),
}

/// The server's serial key (derived from the master key): never printed, wiped when dropped.
#[derive(Clone, Debug)]
pub struct SerialKey(SecretSlice<u8>);

fn encode(bytes: &[u8; BYTES]) -> String {
    let mut out = String::with_capacity(CHARS + CHARS / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    let mut n = 0;
    for b in bytes {
        acc = (acc << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            if n > 0 && n % 4 == 0 {
                out.push('-');
            }
            out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
            n += 1;
        }
    }
    out
}

/// Reads a serial as typed: case, spaces and dashes do not matter, and O/I/L are read as 0/1/1.
fn decode(text: &str) -> Result<[u8; BYTES], SerialError> {
    let mut values = Vec::with_capacity(CHARS);
    for c in text.chars() {
        let c = match c.to_ascii_uppercase() {
            ' ' | '-' | '\t' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        let v = ALPHABET
            .iter()
            .position(|a| char::from(*a) == c)
            .ok_or(SerialError::Shape)?;
        values.push(v as u32);
    }
    if values.len() != CHARS {
        return Err(SerialError::Shape);
    }
    let mut out = [0u8; BYTES];
    let (mut acc, mut bits, mut i) = (0u32, 0u32, 0);
    for v in values {
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out[i] = ((acc >> bits) & 0xff) as u8;
            i += 1;
        }
    }
    Ok(out)
}

impl SerialKey {
    pub fn new(key: [u8; 32]) -> Self {
        Self(key.to_vec().into())
    }

    fn mac(&self, body: &[u8]) -> [u8; MAC_BYTES] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.expose_secret())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(body);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; MAC_BYTES];
        out.copy_from_slice(&full[..MAC_BYTES]);
        out
    }

    /// Writes a serial for `data`.
    pub fn mint(&self, data: SerialData) -> Result<String, SerialError> {
        if data.product_id >= 1 << 24 {
            return Err(SerialError::ProductTooLarge(data.product_id));
        }
        let mut bytes = [0u8; BYTES];
        bytes[0] = VERSION;
        bytes[1..4].copy_from_slice(&data.product_id.to_be_bytes()[1..]);
        bytes[4..9].copy_from_slice(&(data.serial_id & 0xff_ffff_ffff).to_be_bytes()[3..]);
        bytes[9..13].copy_from_slice(&data.feature_mask.to_be_bytes());
        let mac = self.mac(&bytes[..BYTES - MAC_BYTES]);
        bytes[BYTES - MAC_BYTES..].copy_from_slice(&mac);
        Ok(encode(&bytes))
    }

    /// Checks a serial as typed, without touching the database: its shape, then its MAC.
    pub fn check(&self, text: &str) -> Result<SerialData, SerialError> {
        let bytes = decode(text)?;
        let expected = self.mac(&bytes[..BYTES - MAC_BYTES]);
        // Constant-time comparison: a guess learns nothing from how long the refusal took.
        let diff = expected
            .iter()
            .zip(&bytes[BYTES - MAC_BYTES..])
            .fold(0u8, |d, (a, b)| d | (a ^ b));
        if diff != 0 || bytes[0] != VERSION {
            return Err(SerialError::Invalid);
        }
        let mut product = [0u8; 4];
        product[1..].copy_from_slice(&bytes[1..4]);
        let mut serial = [0u8; 8];
        serial[3..].copy_from_slice(&bytes[4..9]);
        let mut mask = [0u8; 4];
        mask.copy_from_slice(&bytes[9..13]);
        Ok(SerialData {
            product_id: u32::from_be_bytes(product),
            serial_id: u64::from_be_bytes(serial),
            feature_mask: u32::from_be_bytes(mask),
        })
    }

    /// The canonical spelling of a valid serial (upper case, grouped).
    pub fn canonical(&self, text: &str) -> Result<String, SerialError> {
        let data = self.check(text)?;
        self.mint(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> SerialKey {
        SerialKey::new([42u8; 32])
    }

    fn data() -> impl Strategy<Value = SerialData> {
        (0u32..(1 << 24), 0u64..(1 << 40), any::<u32>()).prop_map(|(p, s, m)| SerialData {
            product_id: p,
            serial_id: s,
            feature_mask: m,
        })
    }

    #[test]
    fn a_serial_reads_back_and_looks_right() {
        let d = SerialData {
            product_id: 7,
            serial_id: 123_456,
            feature_mask: 0b101,
        };
        let s = key().mint(d).expect("mint");
        assert_eq!(s.len(), CHARS + 7);
        assert!(s.split('-').all(|g| g.len() == 4), "{s}");
        assert_eq!(key().check(&s), Ok(d));
        // Typed loosely: lower case, spaces, no dashes, O for 0.
        let loose = s.to_lowercase().replace('-', " ").replace('0', "o");
        assert_eq!(key().check(&loose), Ok(d));
        assert_eq!(key().canonical(&loose).as_deref(), Ok(s.as_str()));
    }

    #[test]
    fn other_keys_and_bad_shapes_are_refused() {
        let s = key()
            .mint(SerialData {
                product_id: 1,
                serial_id: 1,
                feature_mask: 0,
            })
            .expect("mint");
        assert_eq!(
            SerialKey::new([1u8; 32]).check(&s),
            Err(SerialError::Invalid)
        );
        assert_eq!(key().check(""), Err(SerialError::Shape));
        assert_eq!(key().check(&s[..s.len() - 1]), Err(SerialError::Shape));
        assert_eq!(key().check(&format!("{s}0")), Err(SerialError::Shape));
        assert_eq!(
            key().check("'; DROP TABLE serials; --"),
            Err(SerialError::Shape)
        );
        assert_eq!(
            key().check(&s.replace(&s[0..1], "U")),
            Err(SerialError::Shape)
        );
        assert_eq!(
            key().mint(SerialData {
                product_id: 1 << 24,
                serial_id: 0,
                feature_mask: 0
            }),
            Err(SerialError::ProductTooLarge(1 << 24))
        );
    }

    proptest! {
        #[test]
        fn every_minted_serial_validates(d in data()) {
            let s = key().mint(d).expect("mint");
            prop_assert_eq!(key().check(&s), Ok(d));
        }

        #[test]
        fn every_single_character_change_is_refused(d in data(), pos in 0usize..CHARS, replacement in 0usize..32) {
            let s = key().mint(d).expect("mint");
            let mut chars: Vec<char> = s.chars().filter(|c| *c != '-').collect();
            let new = char::from(ALPHABET[replacement]);
            prop_assume!(chars[pos] != new);
            chars[pos] = new;
            let changed: String = chars.into_iter().collect();
            prop_assert_eq!(key().check(&changed), Err(SerialError::Invalid));
        }

        #[test]
        fn every_transposition_is_refused(d in data(), pos in 0usize..CHARS - 1) {
            let s = key().mint(d).expect("mint");
            let mut chars: Vec<char> = s.chars().filter(|c| *c != '-').collect();
            prop_assume!(chars[pos] != chars[pos + 1]);
            chars.swap(pos, pos + 1);
            let swapped: String = chars.into_iter().collect();
            prop_assert_eq!(key().check(&swapped), Err(SerialError::Invalid));
        }
    }
}
