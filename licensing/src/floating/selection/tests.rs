use super::*;
use proptest::prelude::*;

const TODAY: i64 = 20_000;

fn key(id: i64) -> Key {
    Key {
        id,
        editor: "Vendor".into(),
        feature: "CAD".into(),
        model: Model::ConcurrentUser,
        quantity: 2,
        in_use: 0,
        start: Some(TODAY - 10),
        end: Some(TODAY + 10),
        group_index: 1,
        max_release_number: 0,
        max_release_date: None,
        commercial_type: CommercialType::Std,
        customer_id: "C1".into(),
        pricing_structure: "PLC".into(),
        additional_info: String::new(),
        file_index: 1,
        generation_date: TODAY - 100,
    }
}

fn ask() -> Ask {
    Ask {
        editor: Some("Vendor".into()),
        feature: "CAD".into(),
        release_number: 2026,
        release_date: Some(TODAY - 30),
        needed: 1,
        ..Ask::default()
    }
}

#[test]
fn a_full_key_that_fits_means_waiting_and_one_that_does_not_means_giving_up() {
    let mut full = key(1);
    full.in_use = 2;
    assert!(fits_when_free(std::slice::from_ref(&full), &ask(), TODAY));
    let mut newer_release = ask();
    newer_release.release_number = 2030;
    full.max_release_number = 2027;
    assert!(!fits_when_free(
        std::slice::from_ref(&full),
        &newer_release,
        TODAY
    ));
    let mut edu = ask();
    edu.commercial_type = Some(CommercialType::Edu);
    assert!(!fits_when_free(&[key(1)], &edu, TODAY));
    // Tokens: 8 asked of a key of 10 with 5 free is a wait; 11 asked never fits.
    let mut tokens = key(2);
    (tokens.model, tokens.quantity, tokens.in_use) = (Model::Token, 10, 5);
    let mut eight = ask();
    eight.needed = 8;
    assert!(fits_when_free(std::slice::from_ref(&tokens), &eight, TODAY));
    eight.needed = 11;
    assert!(!fits_when_free(&[tokens], &eight, TODAY));
}

fn verdict_of(keys: &[Key], a: &Ask, id: i64) -> Verdict {
    explain(keys, a, TODAY)
        .into_iter()
        .find(|(k, _)| *k == id)
        .map(|(_, v)| v)
        .expect("a verdict")
}

/// The key `changed` (id 2) against a plain key (id 1): which one is granted.
fn winner(changed: impl Fn(&mut Key)) -> i64 {
    let mut b = key(2);
    changed(&mut b);
    select(&[key(1), b], &ask(), TODAY).expect("granted").id
}

// ---- one test per filter ----

#[test]
fn a_key_not_started_is_filtered() {
    let mut k = key(1);
    k.start = Some(TODAY + 1);
    assert_eq!(
        verdict_of(&[k], &ask(), 1),
        Verdict::Filtered(Rule::NotStarted)
    );
}

#[test]
fn a_key_past_its_end_is_filtered_and_its_last_day_still_counts() {
    let mut k = key(1);
    k.end = Some(TODAY - 1);
    assert_eq!(
        verdict_of(&[k.clone()], &ask(), 1),
        Verdict::Filtered(Rule::Ended)
    );
    k.end = Some(TODAY);
    assert_eq!(verdict_of(&[k], &ask(), 1), Verdict::Ranked(1));
}

#[test]
fn only_the_highest_valid_group_index_counts() {
    let old = key(1);
    let mut new = key(2);
    new.group_index = 2;
    new.in_use = 2; // even when the newer key is full, the older one stays superseded
    let keys = [old, new.clone()];
    assert_eq!(
        verdict_of(&keys, &ask(), 1),
        Verdict::Filtered(Rule::Superseded { highest: 2 })
    );
    // A higher group that is not active yet supersedes nothing.
    let mut future = new;
    future.in_use = 0;
    future.start = Some(TODAY + 5);
    assert_eq!(verdict_of(&[key(1), future], &ask(), 1), Verdict::Ranked(1));
}

#[test]
fn a_full_key_is_filtered_and_tokens_need_enough() {
    let mut k = key(1);
    k.in_use = 2;
    assert_eq!(
        verdict_of(&[k.clone()], &ask(), 1),
        Verdict::Filtered(Rule::NoneLeft)
    );
    k.in_use = 1;
    let mut a = ask();
    a.needed = 2;
    assert_eq!(verdict_of(&[k], &a, 1), Verdict::Filtered(Rule::NoneLeft));
}

#[test]
fn editor_feature_and_model_must_match() {
    let mut k = key(1);
    k.editor = "Other".into();
    assert_eq!(verdict_of(&[k], &ask(), 1), Verdict::Filtered(Rule::Editor));
    let mut k = key(1);
    k.feature = "CAM".into();
    assert_eq!(
        verdict_of(&[k], &ask(), 1),
        Verdict::Filtered(Rule::Feature)
    );
    let mut a = ask();
    a.model = Some(Model::Token);
    assert_eq!(verdict_of(&[key(1)], &a, 1), Verdict::Filtered(Rule::Model));
}

#[test]
fn max_release_number_is_zero_or_at_least_the_clients() {
    let mut k = key(1);
    k.max_release_number = 2025;
    assert_eq!(
        verdict_of(&[k.clone()], &ask(), 1),
        Verdict::Filtered(Rule::ReleaseNumber)
    );
    k.max_release_number = 2026;
    assert_eq!(verdict_of(&[k], &ask(), 1), Verdict::Ranked(1));
}

#[test]
fn max_release_date_is_at_least_the_clients() {
    let mut k = key(1);
    k.max_release_date = Some(TODAY - 31);
    assert_eq!(
        verdict_of(&[k.clone()], &ask(), 1),
        Verdict::Filtered(Rule::ReleaseDate)
    );
    k.max_release_date = Some(TODAY - 30);
    assert_eq!(verdict_of(&[k], &ask(), 1), Verdict::Ranked(1));
}

#[test]
fn commercial_type_customer_and_pricing_match_only_when_passed() {
    let mut a = ask();
    a.commercial_type = Some(CommercialType::Edu);
    assert_eq!(
        verdict_of(&[key(1)], &a, 1),
        Verdict::Filtered(Rule::CommercialType)
    );
    let mut a = ask();
    a.customer_id = Some("C2".into());
    assert_eq!(
        verdict_of(&[key(1)], &a, 1),
        Verdict::Filtered(Rule::CustomerId)
    );
    let mut a = ask();
    a.pricing_structure = Some("QLC".into());
    assert_eq!(
        verdict_of(&[key(1)], &a, 1),
        Verdict::Filtered(Rule::PricingStructure)
    );
    assert_eq!(verdict_of(&[key(1)], &ask(), 1), Verdict::Ranked(1));
}

// ---- one test per sort key ----

#[test]
fn std_before_edu_before_demo() {
    assert_eq!(winner(|k| k.commercial_type = CommercialType::Edu), 1);
    let mut edu = key(1);
    edu.commercial_type = CommercialType::Edu;
    let mut demo = key(2);
    demo.commercial_type = CommercialType::Demo;
    assert_eq!(select(&[demo, edu], &ask(), TODAY).map(|k| k.id), Some(1));
}

#[test]
fn lower_max_release_number_first_and_zero_is_infinite() {
    assert_eq!(
        winner(|k| k.max_release_number = 2030),
        2,
        "2030 before 0 (infinite)"
    );
    let mut a = key(1);
    a.max_release_number = 2031;
    let mut b = key(2);
    b.max_release_number = 2030;
    assert_eq!(select(&[a, b], &ask(), TODAY).map(|k| k.id), Some(2));
}

#[test]
fn earlier_max_release_date_first() {
    assert_eq!(
        winner(|k| k.max_release_date = Some(TODAY)),
        2,
        "a date before none"
    );
    let mut a = key(1);
    a.max_release_date = Some(TODAY + 5);
    let mut b = key(2);
    b.max_release_date = Some(TODAY + 1);
    assert_eq!(select(&[a, b], &ask(), TODAY).map(|k| k.id), Some(2));
}

#[test]
fn fewer_additional_info_fields_first_then_the_lower_string() {
    let mut a = key(1);
    a.additional_info = "x;y".into();
    let mut b = key(2);
    b.additional_info = "z".into();
    assert_eq!(
        select(&[a.clone(), b.clone()], &ask(), TODAY).map(|k| k.id),
        Some(2)
    );
    b.additional_info = "b;c".into();
    a.additional_info = "a;z".into();
    assert_eq!(select(&[b, a], &ask(), TODAY).map(|k| k.id), Some(1));
}

#[test]
fn later_end_date_first_and_none_is_latest() {
    assert_eq!(winner(|k| k.end = Some(TODAY + 20)), 2);
    assert_eq!(winner(|k| k.end = None), 2);
}

#[test]
fn lower_file_index_first() {
    assert_eq!(winner(|k| k.file_index = 0), 2);
    assert_eq!(winner(|k| k.file_index = 5), 1);
}

#[test]
fn later_generation_date_first() {
    assert_eq!(winner(|k| k.generation_date = TODAY - 1), 2);
}

#[test]
fn the_id_breaks_a_complete_tie() {
    assert_eq!(winner(|_| {}), 1);
}

#[test]
fn usable_keys_are_active_and_of_the_highest_active_group() {
    let mut ended = key(1);
    ended.end = Some(TODAY - 1);
    let old = key(2);
    let mut newer = key(3);
    newer.group_index = 2;
    let mut other_feature = key(4);
    other_feature.feature = "CAM".into();
    let keys = [ended, old, newer, other_feature];
    let ids: Vec<i64> = usable(&keys, TODAY).iter().map(|k| k.id).collect();
    assert_eq!(ids, [3, 4]);
}

// ---- worked examples from the DSLS text ----

/// An EDU key with an unlimited release loses to a STD key limited to the client's release:
/// commercial type is the first sort key, before release number.
#[test]
fn worked_example_commercial_type_outranks_release() {
    let mut edu = key(1);
    edu.commercial_type = CommercialType::Edu;
    let mut std = key(2);
    std.max_release_number = 2026;
    assert_eq!(select(&[edu, std], &ask(), TODAY).map(|k| k.id), Some(2));
}

/// Three keys for one feature: one expired, one superseded by a newer enrolment, one full.
/// The explanation says why each was not granted, and the pool refuses.
#[test]
fn worked_example_everything_filtered_is_explained() {
    let mut expired = key(1);
    expired.end = Some(TODAY - 1);
    expired.group_index = 3;
    let old = key(2);
    let mut full = key(3);
    full.group_index = 2;
    full.in_use = 2;
    let keys = [expired, old, full];
    assert_eq!(
        explain(&keys, &ask(), TODAY),
        [
            (1, Verdict::Filtered(Rule::Ended)),
            (2, Verdict::Filtered(Rule::Superseded { highest: 2 })),
            (3, Verdict::Filtered(Rule::NoneLeft)),
        ]
    );
    assert!(select(&keys, &ask(), TODAY).is_none());
}

/// When the granted key expires, the same algorithm picks the next one (the silent move).
#[test]
fn worked_example_the_next_key_after_expiry() {
    let mut soon = key(1);
    soon.end = Some(TODAY);
    let mut later = key(2);
    later.end = Some(TODAY + 30);
    later.file_index = 9;
    let keys = [soon, later];
    assert_eq!(
        select(&keys, &ask(), TODAY).map(|k| k.id),
        Some(2),
        "later end first"
    );
    assert_eq!(select(&keys, &ask(), TODAY + 1).map(|k| k.id), Some(2));
    assert!(select(&keys, &ask(), TODAY + 31).is_none());
}

#[test]
fn an_access_rule_filters_every_key_of_the_feature_and_is_named() {
    let mut other = key(2);
    other.feature = "VIEW".into();
    let mut full = key(3);
    full.in_use = full.quantity;
    let keys = vec![key(1), other, full];
    let denied = Ask {
        access: Some(Rule::Access(
            "denied by access rule 7 (deny user ann, every feature)".into(),
        )),
        ..ask()
    };
    let verdicts = explain(&keys, &denied, TODAY);
    assert_eq!(
        verdicts[0].1,
        Verdict::Filtered(denied.access.clone().expect("set"))
    );
    assert_eq!(
        verdicts[1].1,
        Verdict::Filtered(Rule::Feature),
        "another feature says so"
    );
    assert_eq!(
        verdicts[2].1,
        Verdict::Filtered(denied.access.clone().expect("set")),
        "a deny is named before a full key's quantity"
    );
    assert!(select(&keys, &denied, TODAY).is_none());
    assert!(
        !fits_when_free(&keys, &denied, TODAY),
        "waiting does not lift a deny"
    );
    assert_eq!(
        Rule::Access("denied by access rule 7 (deny user ann, every feature)".into()).to_string(),
        "denied by access rule 7 (deny user ann, every feature)"
    );

    let kept = Ask {
        access: Some(Rule::Reserved(
            "rule 9 (reserve 2 seats for group cad, feature CAD)".into(),
        )),
        ..ask()
    };
    let verdicts = explain(&keys, &kept, TODAY);
    assert_eq!(
        verdicts[0].1,
        Verdict::Filtered(kept.access.clone().expect("set"))
    );
    assert_eq!(
        verdicts[2].1,
        Verdict::Filtered(Rule::NoneLeft),
        "a full key is full first"
    );
    assert!(
        fits_when_free(&keys, &kept, TODAY),
        "kept seats come free: waiting helps"
    );
    assert_eq!(
        kept.access.clone().expect("set").to_string(),
        "the free seats are kept by access rule 9 (reserve 2 seats for group cad, feature CAD)"
    );
}

fn arb_key(id: i64) -> impl Strategy<Value = Key> {
    (
        0..3i64,
        0..3i64,
        0..3usize,
        prop::option::of(TODAY - 3..TODAY + 3),
        0..3i64,
        prop::option::of(0..3usize),
        0..3i64,
        0..3i64,
    )
        .prop_map(move |(q, used, ct, end, group, info, file, gen)| {
            let mut k = key(id);
            k.quantity = q;
            k.in_use = used.min(q);
            k.commercial_type = [
                CommercialType::Std,
                CommercialType::Edu,
                CommercialType::Demo,
            ][ct];
            k.end = end;
            k.group_index = group;
            k.additional_info = info.map(|n| vec!["f"; n].join(";")).unwrap_or_default();
            k.file_index = file;
            k.generation_date = gen;
            k
        })
}

proptest! {
    /// The granted key passes every filter, and no key that passes is preferred to it.
    #[test]
    fn the_grant_is_a_best_eligible_key(keys in prop::collection::vec(any::<u8>(), 1..8)
        .prop_flat_map(|v| v.iter().enumerate().map(|(i, _)| arb_key(i as i64 + 1)).collect::<Vec<_>>()))
    {
        let verdicts = explain(&keys, &ask(), TODAY);
        let ranked: Vec<&Key> = keys.iter().filter(|k| verdicts.iter().any(|(id, v)| *id == k.id && matches!(v, Verdict::Ranked(_)))).collect();
        match select(&keys, &ask(), TODAY) {
            None => prop_assert!(ranked.is_empty()),
            Some(g) => {
                prop_assert!(g.remaining() >= 1);
                for k in &ranked {
                    prop_assert!(preference(g, k) != Ordering::Greater);
                }
            }
        }
        // Ranks are 1..=n without gaps.
        let mut ranks: Vec<usize> = verdicts.iter().filter_map(|(_, v)| match v { Verdict::Ranked(r) => Some(*r), _ => None }).collect();
        ranks.sort_unstable();
        prop_assert_eq!(ranks, (1..=ranked.len()).collect::<Vec<_>>());
    }
}
