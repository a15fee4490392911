use super::*;
use proptest::prelude::*;

fn rule(
    id: i64,
    feature: Option<&str>,
    effect: Effect,
    kind: SubjectKind,
    subject: &str,
) -> AccessRule {
    AccessRule {
        id,
        feature: feature.map(str::to_owned),
        effect,
        subject_kind: kind,
        subject: subject.into(),
        seats: None,
        note: String::new(),
        created_at: 0,
    }
}

fn reserve(id: i64, feature: Option<&str>, kind: SubjectKind, subject: &str, n: i64) -> AccessRule {
    AccessRule {
        seats: Some(n),
        ..rule(id, feature, Effect::Reserve, kind, subject)
    }
}

fn who<'a>(user: &'a str, host: &'a str) -> Asker<'a> {
    Asker { user, host }
}

fn designers() -> AccessGroup {
    AccessGroup {
        name: "Designers".into(),
        kind: GroupKind::User,
        members: vec!["ann".into(), "bob".into()],
    }
}

fn holder(user: &str, amount: i64) -> Holder {
    Holder {
        user: user.into(),
        host: format!("{user}-pc"),
        amount,
    }
}

#[test]
fn no_rules_bar_nobody_and_keep_nothing() {
    let access = PoolAccess::default();
    assert_eq!(access.barred("CAD", who("ann", "ws1")), None);
    assert!(!access.reserves("CAD"));
    assert_eq!(
        access.reserved_against("CAD", who("ann", "ws1"), 1, 1, &[]),
        None
    );
    assert!(access
        .reserved_against("CAD", who("ann", "ws1"), 0, 1, &[])
        .is_none());
    let kept = PoolAccess {
        rules: vec![reserve(1, None, SubjectKind::User, "ann", 1)],
        groups: vec![],
    };
    assert_eq!(
        kept.reserved_against("CAD", who("bob", "ws1"), 0, 1, &[]),
        None,
        "no free seat at all is not the reservation's doing"
    );
}

#[test]
fn a_deny_names_a_user_a_host_or_a_group_member_whatever_their_case() {
    let access = PoolAccess {
        rules: vec![
            rule(1, None, Effect::Deny, SubjectKind::User, "Carol"),
            rule(2, Some("CAD"), Effect::Deny, SubjectKind::Host, "kiosk-1"),
            rule(
                3,
                Some("RENDER"),
                Effect::Deny,
                SubjectKind::Group,
                "designers",
            ),
        ],
        groups: vec![designers()],
    };
    assert_eq!(
        access.barred("CAD", who(" CAROL ", "ws1")),
        Some(Barred::Denied(&access.rules[0]))
    );
    assert_eq!(
        access.barred("VIEW", who("carol", "ws1")),
        Some(Barred::Denied(&access.rules[0]))
    );
    assert_eq!(
        access.barred("CAD", who("ann", "KIOSK-1")),
        Some(Barred::Denied(&access.rules[1]))
    );
    assert_eq!(
        access.barred("VIEW", who("ann", "kiosk-1")),
        None,
        "rule 2 is about CAD only"
    );
    assert_eq!(
        access.barred("RENDER", who("BOB", "ws")),
        Some(Barred::Denied(&access.rules[2]))
    );
    assert_eq!(access.barred("RENDER", who("dan", "ws")), None);
    assert_eq!(
        access.barred("VIEW", who("car\u{200B}ol\u{00AD}", "ws1")),
        Some(Barred::Denied(&access.rules[0])),
        "invisible characters do not make another name"
    );
    assert_eq!(
        access.barred("VIEW", who("\u{00C7}AROL", "ws1")),
        None,
        "a different letter is a different name"
    );
    assert!(same_name("ÇAROL", "çarol") && !same_name("carol", "carl"));
    let why = access
        .barred("CAD", who("carol", "ws1"))
        .expect("denied")
        .reason();
    assert_eq!(
        why,
        "denied by access rule 1 (deny user Carol, every feature)"
    );
}

#[test]
fn an_allow_list_admits_only_whom_it_names_and_a_deny_beats_it() {
    let access = PoolAccess {
        rules: vec![
            rule(
                4,
                Some("CAD"),
                Effect::Allow,
                SubjectKind::Group,
                "designers",
            ),
            rule(5, Some("CAD"), Effect::Allow, SubjectKind::Host, "lab-1"),
            rule(6, None, Effect::Deny, SubjectKind::User, "bob"),
        ],
        groups: vec![designers()],
    };
    assert_eq!(access.barred("CAD", who("ann", "ws")), None);
    assert_eq!(
        access.barred("CAD", who("zed", "LAB-1")),
        None,
        "allowed by host"
    );
    assert_eq!(
        access.barred("CAD", who("zed", "ws")),
        Some(Barred::NotAllowed(vec![&access.rules[0], &access.rules[1]]))
    );
    assert_eq!(
        access.barred("VIEW", who("zed", "ws")),
        None,
        "no allow rule is about VIEW"
    );
    let bundled = vec!["CAD".to_owned()];
    assert_eq!(access.barred_with("VIEW", &bundled, who("zed", "ws")), Some(
        "not named by the access rules that allow it (rules 4, 5) (feature CAD comes with VIEW)".to_owned()
    ));
    assert_eq!(access.barred_with("VIEW", &[], who("zed", "ws")), None);
    assert_eq!(
        access.barred("CAD", who("bob", "lab-1")),
        Some(Barred::Denied(&access.rules[2]))
    );
    let message = access
        .barred("CAD", who("zed", "ws"))
        .expect("barred")
        .message("CAD", who("zed", "ws"));
    assert!(message.contains("(rules 4, 5)"), "{message}");
    assert!(
        !message.contains("designers") && !message.contains("lab-1"),
        "whom they allow is not told: {message}"
    );
    assert!(message.contains("user zed on ws"), "{message}");
}

#[test]
fn a_group_of_hosts_is_matched_by_host_and_an_unknown_group_names_nobody() {
    let access = PoolAccess {
        rules: vec![
            rule(7, None, Effect::Deny, SubjectKind::Group, "kiosks"),
            rule(8, None, Effect::Deny, SubjectKind::Group, "gone"),
        ],
        groups: vec![AccessGroup {
            name: "kiosks".into(),
            kind: GroupKind::Host,
            members: vec!["k1".into(), "k2".into()],
        }],
    };
    assert!(access.barred("CAD", who("ann", "K2")).is_some());
    assert!(
        access.barred("CAD", who("k1", "ws")).is_none(),
        "a user named like a host"
    );
}

#[test]
fn a_reservation_keeps_its_unheld_seats_from_everyone_else() {
    let access = PoolAccess {
        rules: vec![reserve(9, Some("CAD"), SubjectKind::Group, "designers", 2)],
        groups: vec![designers()],
    };
    // 3 free, 2 kept for designers who hold none: an outsider gets the third only.
    assert_eq!(
        access.reserved_against("CAD", who("zed", "ws"), 3, 1, &[]),
        None
    );
    assert_eq!(
        access.reserved_against("CAD", who("zed", "ws"), 2, 1, &[]),
        Some(&access.rules[0])
    );
    // A designer may take any free seat.
    assert_eq!(
        access.reserved_against("CAD", who("ann", "ws"), 1, 1, &[]),
        None
    );
    // Seats designers hold count toward their reservation.
    let held = [holder("ann", 1)];
    assert_eq!(
        access.reserved_against("CAD", who("zed", "ws"), 2, 1, &held),
        None
    );
    assert_eq!(
        access.reserved_against("CAD", who("zed", "ws"), 1, 1, &held),
        Some(&access.rules[0])
    );
    // Tokens: the amount asked must fit beside the kept seats.
    assert_eq!(
        access.reserved_against("CAD", who("zed", "ws"), 5, 4, &[]),
        Some(&access.rules[0])
    );
    assert_eq!(
        access.reserved_against("CAD", who("zed", "ws"), 6, 4, &[]),
        None
    );
    // Another feature is not kept.
    assert_eq!(
        access.reserved_against("VIEW", who("zed", "ws"), 1, 1, &[]),
        None
    );
    assert!(access.reserves("CAD") && !access.reserves("VIEW"));
}

#[test]
fn rules_in_words() {
    let r = reserve(3, None, SubjectKind::User, "ann", 1);
    assert_eq!(
        r.describe(),
        "rule 3 (reserve 1 seat for user ann, every feature)"
    );
    let r = reserve(3, Some("CAD"), SubjectKind::Group, "x", 2);
    assert_eq!(
        r.describe(),
        "rule 3 (reserve 2 seats for group x, feature CAD)"
    );
}

#[test]
fn input_is_checked_before_it_is_kept() {
    let base = AccessRuleInput {
        feature: Some("  ".into()),
        effect: Effect::Deny,
        subject_kind: SubjectKind::User,
        subject: " ann ".into(),
        seats: None,
        note: String::new(),
    };
    let ok = base.clone().checked().expect("valid");
    assert_eq!((ok.feature, ok.subject.as_str()), (None, "ann"));
    let field = |i: AccessRuleInput| i.checked().expect_err("invalid").field;
    assert_eq!(
        field(AccessRuleInput {
            subject: " ".into(),
            ..base.clone()
        }),
        "subject"
    );
    assert_eq!(
        field(AccessRuleInput {
            subject: "a\u{7}".into(),
            ..base.clone()
        }),
        "subject"
    );
    assert_eq!(
        field(AccessRuleInput {
            seats: Some(2),
            ..base.clone()
        }),
        "seats"
    );
    let reserve = AccessRuleInput {
        effect: Effect::Reserve,
        ..base.clone()
    };
    assert_eq!(field(reserve.clone()), "seats");
    assert_eq!(
        field(AccessRuleInput {
            seats: Some(0),
            ..reserve.clone()
        }),
        "seats"
    );
    assert!(AccessRuleInput {
        seats: Some(3),
        ..reserve
    }
    .checked()
    .is_ok());
    assert_eq!(
        field(AccessRuleInput {
            feature: Some("x".repeat(101)),
            ..base.clone()
        }),
        "feature"
    );
    assert_eq!(
        field(AccessRuleInput {
            note: "n".repeat(201),
            ..base
        }),
        "note"
    );

    let group = AccessGroupInput {
        kind: GroupKind::User,
        members: members_of("ann\n ANN , bob\n\n"),
    };
    assert_eq!(group.checked().expect("valid").members, vec!["ann", "bob"]);
    let empty = AccessGroupInput {
        kind: GroupKind::Host,
        members: vec![" ".into()],
    };
    assert_eq!(empty.checked().expect_err("empty").field, "members");
    let many = AccessGroupInput {
        kind: GroupKind::Host,
        members: (0..=MAX_MEMBERS).map(|i| format!("h{i}")).collect(),
    };
    assert_eq!(many.checked().expect_err("too many").field, "members");
    assert!(group_name(" ").is_err() && group_name(&"g".repeat(65)).is_err());
}

#[test]
fn portal_forms_become_checked_input() {
    let form = AccessRuleForm {
        feature: String::new(),
        effect: "reserve".into(),
        subject_kind: "group".into(),
        subject: " designers ".into(),
        seats: " 2 ".into(),
        note: "for the CAD team".into(),
    };
    let input = form.clone().input().expect("valid");
    assert_eq!(
        (
            input.feature,
            input.effect,
            input.subject.as_str(),
            input.seats
        ),
        (None, Effect::Reserve, "designers", Some(2))
    );
    let field = |f: AccessRuleForm| f.input().expect_err("invalid").field;
    assert_eq!(
        field(AccessRuleForm {
            effect: "permit".into(),
            ..form.clone()
        }),
        "effect"
    );
    assert_eq!(
        field(AccessRuleForm {
            subject_kind: "team".into(),
            ..form.clone()
        }),
        "subject_kind"
    );
    assert_eq!(
        field(AccessRuleForm {
            seats: "two".into(),
            ..form.clone()
        }),
        "seats"
    );
    assert_eq!(
        field(AccessRuleForm {
            seats: String::new(),
            ..form
        }),
        "seats"
    );
    let group = AccessGroupForm {
        name: " Designers ".into(),
        kind: "user".into(),
        members: "ann\nbob, carl".into(),
    };
    let (name, input) = group.clone().input().expect("valid");
    assert_eq!((name.as_str(), input.members.len()), ("Designers", 3));
    assert_eq!(
        AccessGroupForm {
            kind: "users".into(),
            ..group.clone()
        }
        .input()
        .expect_err("kind")
        .field,
        "kind"
    );
    assert_eq!(
        AccessGroupForm {
            name: String::new(),
            ..group
        }
        .input()
        .expect_err("name")
        .field,
        "name"
    );
}

proptest! {
    /// A deny rule that names someone refuses them, whatever allow rules also name them.
    #[test]
    fn a_deny_always_beats_an_allow(user in "[a-zA-Z]{1,8}", feature in "[A-Z]{1,4}", on_all in any::<bool>()) {
        let access = PoolAccess {
            rules: vec![
                rule(1, Some(&feature), Effect::Allow, SubjectKind::User, &user),
                rule(2, (!on_all).then_some(feature.as_str()), Effect::Deny, SubjectKind::User, &user.to_uppercase()),
            ],
            groups: vec![],
        };
        let barred = access.barred(&feature, who(&user, "h"));
        prop_assert!(matches!(barred, Some(Barred::Denied(r)) if r.id == 2));
    }

    /// Played out over any sequence of checkouts and releases judged by the rule, a reservation
    /// of R seats out of Q leaves its members a free seat whenever they hold fewer than R, and
    /// never refuses anyone a seat that is neither taken nor kept.
    #[test]
    fn a_reservation_holds_through_any_sequence(
        quantity in 1i64..8,
        kept in 1i64..8,
        steps in proptest::collection::vec((0usize..4, any::<bool>()), 1..60),
    ) {
        let kept = kept.min(quantity);
        let access = PoolAccess {
            rules: vec![reserve(1, Some("F"), SubjectKind::Group, "team", kept)],
            groups: vec![AccessGroup { name: "team".into(), kind: GroupKind::User, members: vec!["m0".into(), "m1".into()] }],
        };
        let users = ["m0", "m1", "o0", "o1"];
        let mut holders: Vec<Holder> = Vec::new();
        for (u, take) in steps {
            let user = users[u];
            if take {
                let free = quantity - holders.len() as i64;
                let refused = access.reserved_against("F", who(user, "h"), free, 1, &holders).is_some();
                let members_hold = holders.iter().filter(|h| h.user.starts_with('m')).count() as i64;
                let member = user.starts_with('m');
                if member {
                    prop_assert!(!refused);
                    if members_hold < kept {
                        prop_assert!(free >= 1, "a member found no free seat while the team held {members_hold} < {kept}");
                    }
                } else {
                    let kept_now = (kept - members_hold).max(0);
                    prop_assert_eq!(refused, free >= 1 && free - kept_now < 1);
                }
                if !refused && free >= 1 {
                    holders.push(Holder { user: user.into(), host: "h".into(), amount: 1 });
                }
            } else if let Some(i) = holders.iter().position(|h| h.user == user) {
                holders.remove(i);
            }
        }
    }
}
