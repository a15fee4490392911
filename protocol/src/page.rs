//! Pages of a list: how many items (`limit`) and where the page starts (`after`, a cursor the
//! previous page gave). Every list of the Web API reads these; a page that has a next one says
//! so in a `Link: <…>; rel="next"` header (RFC 8288).

use crate::input::InputError;
use serde::{Deserialize, Serialize};

/// Items per page when the caller does not say.
pub const DEFAULT_PAGE: i64 = 100;
/// The most items one page may hold.
pub const MAX_PAGE: i64 = 500;
/// The longest cursor accepted. The longest the server gives is a usage row's (an editor and a
/// feature of up to 100 characters, four bytes each at most in UTF-8, a commercial type and a
/// pool id, as base64url JSON: about 1,150 characters).
pub const MAX_CURSOR_LEN: usize = 2048;

/// Which page of a list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct PageQuery {
    /// How many items (1–500, default 100).
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 500))]
    pub limit: Option<i64>,
    /// Start after this cursor: the `after` of the previous page's `Link: rel="next"`.
    #[cfg_attr(feature = "openapi", param(max_length = 2048))]
    pub after: Option<String>,
}

/// The page size asked for: `DEFAULT_PAGE` when none, refused outside 1..=`MAX_PAGE` (a
/// silently smaller page would look like the end of the list).
pub fn page_limit(limit: Option<i64>) -> Result<i64, InputError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(InputError::new(
            "limit",
            format!("Ask for 1 to {MAX_PAGE} items per page (limit)."),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_size_is_taken_within_bounds_and_refused_outside() {
        assert_eq!(page_limit(None), Ok(DEFAULT_PAGE));
        assert_eq!(page_limit(Some(1)), Ok(1));
        assert_eq!(page_limit(Some(MAX_PAGE)), Ok(MAX_PAGE));
        for bad in [0, -5, MAX_PAGE + 1, i64::MAX, i64::MIN] {
            let e = page_limit(Some(bad)).expect_err("refused");
            assert_eq!(e.field, "limit");
            assert!(e.message.contains("500"), "{}", e.message);
        }
    }
}
