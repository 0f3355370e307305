use super::*;

fn outbox() -> Outbox {
    let (tx, _rx) = mpsc::channel(1);
    Outbox {
        tx,
        overflowed: Arc::new(Notify::new()),
    }
}

#[test]
fn client_events_are_limited_per_connection_and_second() {
    let mut budget = ClientEventBudget::default();
    for _ in 0..CLIENT_EVENTS_PER_SECOND {
        assert!(budget.take(100));
    }
    assert!(!budget.take(100), "the eleventh in one second");
    assert!(budget.take(101), "a new second, a new budget");
}

#[test]
fn a_socket_listens_on_a_bounded_number_of_channels_and_leaves_them_all() {
    let hub = Hub::default();
    let out = outbox();
    for n in 0..MAX_SUBSCRIPTIONS_PER_SOCKET {
        assert!(hub.subscribe(&format!("c{n}"), "1.1", out.clone()));
    }
    assert!(!hub.subscribe("one-too-many", "1.1", out.clone()));
    assert!(
        hub.subscribe("c0", "1.1", out.clone()),
        "again: no new channel"
    );
    assert!(
        hub.subscribe("c0", "2.2", out.clone()),
        "others are not limited by it"
    );
    assert_eq!(hub.counts(), (MAX_SUBSCRIPTIONS_PER_SOCKET, 2));
    hub.unsubscribe("c1", "1.1");
    assert!(
        hub.subscribe("one-more", "1.1", out.clone()),
        "room was made"
    );
    hub.disconnect("1.1");
    assert_eq!(hub.counts(), (1, 1), "only 2.2's c0 is left");
    hub.disconnect("2.2");
    assert_eq!(hub.counts(), (0, 0));
}
