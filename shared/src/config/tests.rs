use super::*;
use std::collections::HashMap;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

const PUSHER: &[(&str, &str)] = &[
    (PUSHER_APP_ID, "3"),
    (PUSHER_KEY, "278d425bdf160c739803"),
    (PUSHER_SECRET, "7ad3773142a6692b25b8"),
    (PUSHER_CLUSTER, "eu"),
];

#[test]
fn table_name_is_required_and_valid() {
    assert_eq!(table_name(&env(&[])), Err(ConfigError::Missing(TABLE_NAME)));
    let err = table_name(&env(&[(TABLE_NAME, "a b")])).unwrap_err();
    assert!(err.to_string().contains(TABLE_NAME), "{err}");
    assert_eq!(
        table_name(&env(&[(TABLE_NAME, "secret-rooms_1.x")])),
        Ok("secret-rooms_1.x".into())
    );
}

#[test]
fn room_key_needs_32_bytes() {
    assert_eq!(
        room_key(&env(&[])).unwrap_err(),
        ConfigError::Missing(ROOM_ID_KEY)
    );
    let short = room_key(&env(&[(ROOM_ID_KEY, "short")])).unwrap_err();
    assert!(short.to_string().contains(ROOM_ID_KEY), "{short}");
    // 32 characters are not 32 bytes of key material.
    let chars = room_key(&env(&[(ROOM_ID_KEY, &"k".repeat(32))])).unwrap_err();
    assert!(chars.to_string().contains("24 bytes"), "{chars}");
    let words = room_key(&env(&[(ROOM_ID_KEY, "correct horse battery staple!!!!")]));
    assert!(words.unwrap_err().to_string().contains("hex or base64"));
    let half = room_key(&env(&[(
        ROOM_ID_KEY,
        &"421996cdfc711f4c28b6fa7b6af60fde1723301e983980791d14e64dd1fee65b"[..32],
    )]))
    .unwrap_err();
    assert!(half.to_string().contains("16 bytes"), "{half}");
    assert!(
        room_key(&env(&[(
            ROOM_ID_KEY,
            "421996cdfc711f4c28b6fa7b6af60fde1723301e983980791d14e64dd1fee65b"
        )]))
        .is_ok()
    );
}

#[test]
fn the_create_limit_defaults_on_can_be_turned_off_and_needs_the_key() {
    let key = "421996cdfc711f4c28b6fa7b6af60fde1723301e983980791d14e64dd1fee65b".to_owned();
    let on = create_limit(&env(&[(ROOM_ID_KEY, &key)])).unwrap().unwrap();
    assert_eq!(on.limit, CreateLimit::default());
    assert_eq!(
        create_limit(&env(&[])).unwrap_err(),
        ConfigError::Missing(ROOM_ID_KEY)
    );
    assert!(
        create_limit(&env(&[(CREATE_RATE_LIMIT, "0")]))
            .unwrap()
            .is_none()
    );
    let set = [
        (ROOM_ID_KEY, key.as_str()),
        (CREATE_RATE_LIMIT, "5"),
        (CREATE_RATE_WINDOW_SECS, "60"),
    ];
    let limit = create_limit(&env(&set)).unwrap().unwrap().limit;
    assert_eq!((limit.creates, limit.window_secs), (5, 60));
    let bad = create_limit(&env(&[(ROOM_ID_KEY, &key), (CREATE_RATE_LIMIT, "-1")]));
    assert!(bad.unwrap_err().to_string().contains(CREATE_RATE_LIMIT));
}

#[test]
fn pusher_names_each_missing_variable_and_a_bad_timeout() {
    for missing in [PUSHER_APP_ID, PUSHER_KEY, PUSHER_SECRET, PUSHER_CLUSTER] {
        let pairs: Vec<_> = PUSHER
            .iter()
            .copied()
            .filter(|(k, _)| *k != missing)
            .collect();
        assert_eq!(
            pusher(&env(&pairs)).unwrap_err(),
            ConfigError::Missing(missing)
        );
    }
    let mut bad_timeout = PUSHER.to_vec();
    bad_timeout.push((PUSHER_TIMEOUT_MS, "60000"));
    let err = pusher(&env(&bad_timeout)).unwrap_err();
    assert!(err.to_string().contains(PUSHER_TIMEOUT_MS), "{err}");
}

#[test]
fn dynamodb_timeouts_default_and_must_be_ordered() {
    assert_eq!(dynamodb_timeouts(&env(&[])), Ok(Timeouts::default()));
    let slow = [
        (DYNAMODB_ATTEMPT_TIMEOUT_MS, "9000"),
        (DYNAMODB_OPERATION_TIMEOUT_MS, "30000"),
    ];
    assert_eq!(
        dynamodb_timeouts(&env(&slow)),
        Ok(Timeouts {
            attempt: Duration::from_millis(9000),
            operation: Duration::from_millis(30000)
        })
    );
    let inverted = [
        (DYNAMODB_ATTEMPT_TIMEOUT_MS, "9000"),
        (DYNAMODB_OPERATION_TIMEOUT_MS, "1000"),
    ];
    let err = dynamodb_timeouts(&env(&inverted)).unwrap_err();
    assert!(
        err.to_string().contains(DYNAMODB_ATTEMPT_TIMEOUT_MS),
        "{err}"
    );
    let err = dynamodb_timeouts(&env(&[(DYNAMODB_OPERATION_TIMEOUT_MS, "99")])).unwrap_err();
    assert!(
        err.to_string().contains(DYNAMODB_OPERATION_TIMEOUT_MS),
        "{err}"
    );
}

#[test]
fn warm_up_is_on_unless_turned_off() {
    assert_eq!(warm_up(&env(&[])), Ok(true));
    assert_eq!(warm_up(&env(&[(WARM_UP_CONNECTIONS, "1")])), Ok(true));
    assert_eq!(warm_up(&env(&[(WARM_UP_CONNECTIONS, "false")])), Ok(false));
    let err = warm_up(&env(&[(WARM_UP_CONNECTIONS, "maybe")])).unwrap_err();
    assert!(err.to_string().contains(WARM_UP_CONNECTIONS), "{err}");
}

#[test]
fn rate_limit_defaults_and_bounds() {
    assert_eq!(rate_limit(&env(&[])), Ok(RateLimit::default()));
    assert_eq!(
        rate_limit(&env(&[
            (MESSAGE_RATE_LIMIT, "5"),
            (MESSAGE_RATE_WINDOW_SECS, "60")
        ])),
        Ok(RateLimit {
            count: 5,
            window_secs: 60
        })
    );
    for (name, bad) in [
        (MESSAGE_RATE_LIMIT, "0"),
        (MESSAGE_RATE_LIMIT, "x"),
        (MESSAGE_RATE_LIMIT, "1048576"),
        (MESSAGE_RATE_WINDOW_SECS, "0"),
    ] {
        let err = rate_limit(&env(&[(name, bad)])).unwrap_err();
        assert!(err.to_string().contains(name), "{name}={bad}: {err}");
    }
}

#[test]
fn the_rate_window_is_no_shorter_than_dynamodb_operations() {
    let window = |window_secs| RateLimit {
        count: 5,
        window_secs,
    };
    assert_eq!(check_rate_window(window(5), Timeouts::default()), Ok(()));
    let err = check_rate_window(window(4), Timeouts::default()).unwrap_err();
    assert!(err.to_string().contains(MESSAGE_RATE_WINDOW_SECS), "{err}");
    assert!(err.to_string().contains("5 s"), "{err}");
}

#[test]
fn aws_settings_name_what_is_missing() {
    let full = [
        (AWS_REGION, "eu-west-1"),
        (AWS_ACCESS_KEY_ID, "AKIDEXAMPLE"),
        (AWS_SECRET_ACCESS_KEY, "secret"),
        (AWS_SESSION_TOKEN, "token"),
    ];
    let without = |missing: &str| {
        let pairs: Vec<_> = full
            .iter()
            .copied()
            .filter(|(k, _)| *k != missing)
            .collect();
        aws(&env(&pairs))
    };
    let settings = without("none").unwrap();
    assert_eq!(settings.region, "eu-west-1");
    assert_eq!(settings.session_token.as_deref(), Some("token"));
    assert_eq!(without(AWS_SESSION_TOKEN).unwrap().session_token, None);
    for name in [AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY] {
        assert_eq!(without(name), Err(ConfigError::Missing(name)));
    }
    let mut fallback: Vec<_> = full
        .iter()
        .copied()
        .filter(|(k, _)| *k != AWS_REGION)
        .collect();
    fallback.push((AWS_DEFAULT_REGION, "us-east-2"));
    fallback.push((AWS_ENDPOINT_URL, "http://127.0.0.1:8000"));
    let settings = aws(&env(&fallback)).unwrap();
    assert_eq!(settings.region, "us-east-2");
    assert_eq!(settings.endpoint.as_deref(), Some("http://127.0.0.1:8000"));
}

#[test]
fn pusher_host_defaults_to_the_cluster_and_can_be_overridden() {
    let config = pusher(&env(PUSHER)).unwrap();
    assert_eq!(config.base_url, "https://api-eu.pusher.com");
    assert_eq!(config.timeout, Duration::from_secs(3));
    for (host, expected) in [
        ("127.0.0.1:6001", "https://127.0.0.1:6001"),
        ("http://127.0.0.1:6001/", "http://127.0.0.1:6001"),
        ("https://soketi.example.com", "https://soketi.example.com"),
    ] {
        let mut pairs = PUSHER.to_vec();
        pairs.retain(|(k, _)| *k != PUSHER_CLUSTER);
        pairs.push((PUSHER_HOST, host));
        assert_eq!(pusher(&env(&pairs)).unwrap().base_url, expected);
    }
    for bad in ["ftp://x", "http://x/apps", "http://", "http://u:p@x"] {
        let mut pairs = PUSHER.to_vec();
        pairs.push((PUSHER_HOST, bad));
        let err = pusher(&env(&pairs)).unwrap_err();
        assert!(err.to_string().contains(PUSHER_HOST), "{bad}: {err}");
    }
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let config = pusher(&env(PUSHER)).unwrap();
    assert!(!format!("{config:?}").contains("7ad3773142a6692b25b8"));
    let key = room_key(&env(&[(
        ROOM_ID_KEY,
        "421996cdfc711f4c28b6fa7b6af60fde1723301e983980791d14e64dd1fee65b",
    )]))
    .unwrap();
    assert!(!format!("{key:?}").contains("4219"));
}
