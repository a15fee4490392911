//! What a site server is entitled to serve, from the licence it links with: a plain function of
//! the licence's terms and its product.

use protocol::floating::PoolKeyInput;
use std::collections::BTreeMap;

/// The counter that sets every feature's seats when the feature has no counter of its own.
pub const SEATS_COUNTER: &str = "seats";

/// The licence a site links with, as the entitlement needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteTerms<'a> {
    /// The product's editor (DSLS's editor field: what applications name with the feature).
    pub editor: &'a str,
    /// The licence's features and counters (its own, or its order's).
    pub features: &'a [String],
    pub counters: &'a BTreeMap<String, i64>,
    /// The licence's last day (a day number), if it ends.
    pub end: Option<i64>,
    /// The client the seats belong to, and the order they were sold in.
    pub client_id: i64,
    pub order_id: i64,
    /// The day the entitlement is issued (DSLS's generation date).
    pub today: i64,
}

/// The seats of one feature: its own counter, else the licence's `seats` counter, else one.
pub fn seats_of(feature: &str, counters: &BTreeMap<String, i64>) -> i64 {
    counters
        .get(feature)
        .or_else(|| counters.get(SEATS_COUNTER))
        .copied()
        .unwrap_or(1)
}

/// The pool keys a site serves for `terms`: one concurrent-user key per feature (each feature
/// once, in the licence's order), its seats as [`seats_of`] says — a feature whose count is 0
/// or less gets no key —, ending with the licence, numbered with the client and order so the
/// vendor's records and the site's monitor name the same sale.
pub fn entitled_keys(terms: &SiteTerms<'_>) -> Vec<PoolKeyInput> {
    let mut seen = std::collections::BTreeSet::new();
    terms
        .features
        .iter()
        .filter(|f| seen.insert(f.as_str()))
        .filter_map(|feature| {
            let quantity = seats_of(feature, terms.counters);
            (quantity > 0).then(|| PoolKeyInput {
                editor: terms.editor.to_owned(),
                feature: feature.clone(),
                model: "ConcurrentUser".into(),
                quantity,
                commercial_type: "STD".into(),
                end_date: terms.end.map(protocol::time::format_date),
                customer_id: terms.client_id.to_string(),
                additional_info: format!("order={}", terms.order_id),
                generation_date: Some(protocol::time::format_date(terms.today)),
                ..Default::default()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn terms<'a>(features: &'a [String], counters: &'a BTreeMap<String, i64>) -> SiteTerms<'a> {
        SiteTerms {
            editor: "Vendor Ltd",
            features,
            counters,
            end: Some(20_500),
            client_id: 3,
            order_id: 7,
            today: 20_400,
        }
    }

    #[test]
    fn a_feature_takes_its_own_counter_then_seats_then_one() {
        let features = vec!["CAD".to_owned(), "PRINT".to_owned(), "EXPORT".to_owned()];
        let counters = BTreeMap::from([("CAD".to_owned(), 5), ("seats".to_owned(), 3)]);
        let keys = entitled_keys(&terms(&features, &counters));
        let seats: Vec<_> = keys
            .iter()
            .map(|k| (k.feature.as_str(), k.quantity))
            .collect();
        assert_eq!(seats, [("CAD", 5), ("PRINT", 3), ("EXPORT", 3)]);
        let alone = entitled_keys(&terms(&features[..1], &BTreeMap::new()));
        assert_eq!(alone[0].quantity, 1);
    }

    #[test]
    fn keys_carry_the_editor_the_end_and_the_sale() {
        let features = vec!["CAD".to_owned()];
        let counters = BTreeMap::new();
        let k = &entitled_keys(&terms(&features, &counters))[0];
        assert_eq!(k.editor, "Vendor Ltd");
        assert_eq!(k.model, "ConcurrentUser");
        assert_eq!(
            k.end_date.as_deref(),
            Some(protocol::time::format_date(20_500).as_str())
        );
        assert_eq!(k.customer_id, "3");
        assert_eq!(k.additional_info, "order=7");
        assert_eq!(k.commercial_type, "STD");
        let open = SiteTerms {
            end: None,
            ..terms(&features, &counters)
        };
        assert_eq!(entitled_keys(&open)[0].end_date, None);
    }

    #[test]
    fn a_feature_counted_at_zero_gets_no_key() {
        let features = vec!["CAD".to_owned(), "PRINT".to_owned()];
        let counters = BTreeMap::from([("PRINT".to_owned(), 0)]);
        let keys = entitled_keys(&terms(&features, &counters));
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].feature, "CAD");
    }

    proptest! {
        /// Each distinct feature with a positive count gets exactly one key, in the licence's
        /// order, with at least one seat; nothing else gets a key.
        #[test]
        fn one_key_per_counted_feature(
            features in proptest::collection::vec("[A-D]", 0..8),
            counts in proptest::collection::btree_map("[A-D]|seats", -2i64..6, 0..5),
        ) {
            let keys = entitled_keys(&terms(&features, &counts));
            let mut expected: Vec<&String> = Vec::new();
            for f in &features {
                if !expected.contains(&f) && seats_of(f, &counts) > 0 {
                    expected.push(f);
                }
            }
            let got: Vec<&String> = keys.iter().map(|k| &k.feature).collect();
            prop_assert_eq!(got, expected);
            for k in &keys {
                prop_assert!(k.quantity >= 1);
                prop_assert_eq!(k.quantity, seats_of(&k.feature, &counts));
            }
        }
    }
}
