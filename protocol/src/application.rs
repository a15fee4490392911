//! What protected applications send to activate, validate and remove a licence, and what they
//! get back: written once here, deserialised by the server and sent by the client library.

use crate::activation::Claims;
use crate::input::InputError;
use serde::{Deserialize, Serialize};

/// The licence an application acts on: a licence key (standard model) or a product's serial
/// number (web model). On the wire it is [`LicenceFields`]: `licence_key`, or `product` with
/// `serial`; a request's `licence()` reads it back, naming the field that is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LicenceRef {
    /// A licence key, with the application's product code when it names one: a key of another
    /// product is then refused before anything changes.
    Key {
        licence_key: String,
        product: Option<String>,
    },
    /// A serial number of `product`.
    Serial { product: String, serial: String },
}

/// The licence as its fields travel (see [`LicenceRef`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LicenceFields {
    /// A standard-model licence key, `XXXXX-XXXXX-XXXXX-XXXXX`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licence_key: Option<String>,
    /// A web-model serial number (with `product`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// The application's product code: required with a serial; with a licence key, a key of
    /// another product is refused before anything changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
}

impl TryFrom<LicenceFields> for LicenceRef {
    type Error = InputError;

    fn try_from(f: LicenceFields) -> Result<Self, InputError> {
        match (f.licence_key, f.serial, f.product) {
            (Some(licence_key), None, product) => Ok(Self::Key {
                licence_key,
                product,
            }),
            (None, Some(serial), Some(product)) => Ok(Self::Serial { product, serial }),
            (None, Some(_), None) => Err(InputError::new(
                "product",
                "Send the product code with the serial number.",
            )),
            (Some(_), Some(_), _) => Err(InputError::new(
                "serial",
                "Send a licence key or a serial number, not both.",
            )),
            (None, None, _) => Err(InputError::new(
                "licence_key",
                "Send the licence key (or the product code and serial number).",
            )),
        }
    }
}

impl From<LicenceRef> for LicenceFields {
    fn from(r: LicenceRef) -> Self {
        match r {
            LicenceRef::Key {
                licence_key,
                product,
            } => Self {
                licence_key: Some(licence_key),
                serial: None,
                product,
            },
            LicenceRef::Serial { product, serial } => Self {
                licence_key: None,
                serial: Some(serial),
                product: Some(product),
            },
        }
    }
}

/// `POST /api/v1/activations`: bind a licence to this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActivateRequest {
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(inline))]
    pub licence: LicenceFields,
    /// The machine's fingerprint: 64 hexadecimal digits, as the client library makes it.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-fA-F]{64}$"))]
    pub fingerprint: String,
    /// The machine's name as people know it, 1 to 255 printable characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub hostname: String,
}

/// `POST /api/v1/activations/validate`: the application's periodic check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ValidateRequest {
    /// The code the server gave at activation (or at the last validation).
    pub activation_code: String,
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-fA-F]{64}$"))]
    pub fingerprint: String,
}

/// `POST /api/v1/activations/remove`: free the licence this machine holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RemoveRequest {
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(inline))]
    pub licence: LicenceFields,
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-fA-F]{64}$"))]
    pub fingerprint: String,
    /// The machine's latest activation code, which it gives up: with it the licence frees at
    /// once; without it (or with an older one) only once the machine's code can no longer pass
    /// offline, as for a removal made without the machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_code: Option<String>,
}

impl ActivateRequest {
    /// The licence asked for, or what is missing or too much.
    pub fn licence(&self) -> Result<LicenceRef, InputError> {
        self.licence.clone().try_into()
    }
}

impl RemoveRequest {
    /// The licence asked for, or what is missing or too much.
    pub fn licence(&self) -> Result<LicenceRef, InputError> {
        self.licence.clone().try_into()
    }
}

/// An activation code and what it says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CodeAnswer {
    /// A compact JWS (EdDSA) that the application verifies offline against the JWKS.
    pub activation_code: String,
    pub claims: Claims,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_licence_travels_as_its_fields_and_comes_back() {
        let key = LicenceRef::Key {
            licence_key: "K".into(),
            product: Some("CALC".into()),
        };
        let req = ActivateRequest {
            licence: key.clone().into(),
            fingerprint: "f".into(),
            hostname: "h".into(),
        };
        let v = serde_json::to_value(&req).expect("json");
        assert_eq!(
            v,
            json!({"licence_key": "K", "product": "CALC", "fingerprint": "f", "hostname": "h"})
        );
        let back: ActivateRequest = serde_json::from_value(v).expect("back");
        assert_eq!(back.licence(), Ok(key));
        let serial: RemoveRequest =
            serde_json::from_value(json!({"serial": "S", "product": "CALC", "fingerprint": "f"}))
                .expect("serial");
        assert_eq!(
            serial.licence(),
            Ok(LicenceRef::Serial {
                product: "CALC".into(),
                serial: "S".into()
            })
        );
    }

    #[test]
    fn ambiguous_or_incomplete_licences_are_refused_naming_the_field() {
        for (body, field) in [
            (json!({"serial": "S", "fingerprint": "f"}), "product"),
            (
                json!({"serial": "S", "licence_key": "K", "product": "P", "fingerprint": "f"}),
                "serial",
            ),
            (json!({"fingerprint": "f"}), "licence_key"),
        ] {
            let req: RemoveRequest = serde_json::from_value(body).expect("reads");
            assert_eq!(req.licence().expect_err("refused").field, field);
        }
    }
}
