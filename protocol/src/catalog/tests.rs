use super::*;

fn product() -> ProductInput {
    ProductInput {
        code: " elec-calc ".into(),
        name: "elec calc".into(),
        editor: "Trace".into(),
        release_number: 2026,
        release_date: Some("2026-01-15".into()),
        features: vec![
            Feature {
                code: "print".into(),
                name: "Printing".into(),
            },
            Feature {
                code: "export".into(),
                name: "".into(),
            },
        ],
        default_features: vec!["print".into(), "print".into()],
        default_counters: BTreeMap::from([("users".into(), 5)]),
        settings: LicensingSettings::default(),
    }
}

#[test]
fn a_valid_product_is_normalised() {
    let p = product().validate().expect("valid");
    assert_eq!(p.code, "ELEC-CALC");
    assert_eq!(p.default_features, ["print"]);
    assert_eq!(p.features[1].name, "export");
}

#[test]
fn product_rules() {
    let mut p = product();
    p.default_features = vec!["fly".into()];
    assert_eq!(
        p.validate().expect_err("not in catalogue").message,
        "The feature fly is not in the product's catalogue."
    );
    let mut p = product();
    p.features.push(Feature {
        code: "print".into(),
        name: "again".into(),
    });
    assert!(p.validate().is_err());
    let mut p = product();
    p.code = "bad code!".into();
    assert_eq!(p.validate().expect_err("code").field, "code");
    let mut p = product();
    p.settings.limited = true;
    p.settings.validity_days = Some(30);
    assert_eq!(
        p.clone().validate().expect_err("removable").field,
        "end_user_removal"
    );
    p.settings.end_user_removal = false;
    assert!(p.clone().validate().is_ok());
    p.settings.validity_days = None;
    assert_eq!(p.validate().expect_err("unbounded").field, "validity_days");
    let mut p = product();
    p.settings.fixed_start = Some("2026-05-01".into());
    p.settings.fixed_end = Some("2026-04-01".into());
    assert_eq!(p.clone().validate().expect_err("order").field, "fixed_end");
    p.settings.fixed_end = Some("2026-02-30".into());
    assert_eq!(p.validate().expect_err("date").field, "fixed_end");
    let mut p = product();
    p.settings.licences_per_serial = 101;
    assert_eq!(
        p.validate().expect_err("range").message,
        "Licences per serial must be from 1 to 100."
    );
}

#[test]
fn bulk_actions_read_from_the_form_and_change_features_as_told() {
    assert_eq!(
        BulkLicenceAction::from_form("extend-30", None),
        Ok(BulkLicenceAction::Extend { days: 30 })
    );
    assert_eq!(
        BulkLicenceAction::from_form("remove", Some("x")),
        Ok(BulkLicenceAction::RemoveFromMachines)
    );
    assert_eq!(
        BulkLicenceAction::from_form("add-feature", Some(" 3d ")),
        Ok(BulkLicenceAction::AddFeature {
            feature: "3d".into()
        })
    );
    assert_eq!(
        BulkLicenceAction::from_form("add-feature", Some("  ")).map_err(|e| e.field),
        Err("feature")
    );
    assert_eq!(
        BulkLicenceAction::from_form("burn", None).map_err(|e| e.field),
        Err("action")
    );
    let have = vec!["a".to_owned(), "c".to_owned()];
    let add = BulkLicenceAction::AddFeature {
        feature: "b".into(),
    };
    assert_eq!(
        add.features_after(&have),
        Some(vec!["a".into(), "b".into(), "c".into()])
    );
    let again = BulkLicenceAction::AddFeature {
        feature: "a".into(),
    };
    assert_eq!(
        again.features_after(&have),
        Some(have.clone()),
        "added once"
    );
    let remove = BulkLicenceAction::RemoveFeature {
        feature: "a".into(),
    };
    assert_eq!(remove.features_after(&have), Some(vec!["c".into()]));
    assert_eq!(
        BulkLicenceAction::Extend { days: 1 }.features_after(&have),
        None
    );
}

#[test]
fn bulk_ids_are_taken_once_within_bounds() {
    assert_eq!(bulk_ids(&[3, 1, 3, 2, 1]), Ok(vec![3, 1, 2]));
    assert_eq!(bulk_ids(&[]).map_err(|e| e.field), Err("ids"));
    let many: Vec<i64> = (0..=BULK_MAX as i64).collect();
    assert_eq!(bulk_ids(&many).map_err(|e| e.field), Err("ids"));
    assert_eq!(bulk_ids(&many[..BULK_MAX]).map(|v| v.len()), Ok(BULK_MAX));
}

#[test]
fn every_licence_status_reads_back_from_its_word() {
    for status in LicenceStatus::ALL {
        assert_eq!(LicenceStatus::parse(status.as_str()), Some(status));
    }
    assert_eq!(LicenceStatus::parse("In use"), None);
    assert_eq!(
        serde_json::to_value(LicenceStatus::InUse).ok(),
        Some(serde_json::json!("in_use")),
        "the API's word is the address's"
    );
}

#[test]
fn a_list_filter_is_its_address() {
    let f = LicenceFilter {
        q: Some("a b&c".into()),
        status: Some("in_use".into()),
        feature: Some(" ".into()),
        client_id: Some(3),
        ..LicenceFilter::default()
    };
    assert_eq!(f.query_string(), "q=a%20b%26c&status=in_use&client_id=3");
    assert_eq!(OrderFilter::default().query_string(), "");
}

#[test]
fn a_product_for_site_servers_refreshes_within_a_year() {
    let form = |site: bool, days: &str| ProductForm {
        code: "CAD".into(),
        name: "CAD".into(),
        site_server: site.then(|| "on".to_owned()),
        site_refresh_days: days.into(),
        ..Default::default()
    };
    let settings = |f: ProductForm| f.into_input().expect("form").settings;
    assert_eq!(
        settings(form(false, "10")).site_refresh_days,
        None,
        "unticked: days ignored"
    );
    assert_eq!(
        settings(form(true, "")).site_refresh_days,
        Some(crate::site::DEFAULT_REFRESH_DAYS)
    );
    assert_eq!(settings(form(true, "90")).site_refresh_days, Some(90));
    for days in ["0", "366"] {
        let mut p = product();
        p.settings = settings(form(true, days));
        assert_eq!(p.validate().expect_err("range").field, "site_refresh_days");
    }
}
