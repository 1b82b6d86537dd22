//! Callbacks that call back into the library: ending their own registration, releasing
//! (detaching) their session, closing their manager, destroying their client, and nested
//! dispatch. Nothing deadlocks, nothing is delivered after its object is gone, every
//! registration's state is dropped exactly once.

mod common;
use common::*;
use msgrpriv::error::*;
use msgrpriv::*;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Counts drops of a registration's captured state (the C layer's destroy notification).
struct DropCount(Arc<AtomicUsize>);
impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn callback_unadvises_itself_and_runs_once() {
    let w = World::new();
    w.register_app("");
    let (a, b) = w.connected();
    let calls = Arc::new(AtomicUsize::new(0));
    let drops = Arc::new(AtomicUsize::new(0));
    let cookie = Arc::new(Mutex::new(0u32));
    {
        let (calls, cookie2, a2) = (calls.clone(), cookie.clone(), a.clone());
        let guard = DropCount(drops.clone());
        let c = a
            .advise(SessionEventKind::ContextData, move |_| {
                let _ = &guard;
                calls.fetch_add(1, Ordering::SeqCst);
                a2.unadvise(*cookie2.lock()).unwrap();
                // Still alive while running: the drop waits for the callback to return.
            })
            .unwrap();
        *cookie.lock() = c;
    }
    b.send_context_data("1").unwrap();
    b.send_context_data("2").unwrap();
    w.pump();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert_eq!(a.unadvise(*cookie.lock()), Err(E_INVALIDARG));
}

#[test]
fn callback_unadvises_a_later_registration_for_the_same_event() {
    let w = World::new();
    w.register_app("");
    let (a, b) = w.connected();
    let second_calls = Arc::new(AtomicUsize::new(0));
    let second = Arc::new(Mutex::new(0u32));
    {
        let (a2, second) = (a.clone(), second.clone());
        a.advise(SessionEventKind::ContextData, move |_| {
            let _ = a2.unadvise(*second.lock());
        })
        .unwrap();
    }
    {
        let n = second_calls.clone();
        *second.lock() = a
            .advise(SessionEventKind::ContextData, move |_| {
                n.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
    }
    b.send_context_data("x").unwrap();
    w.pump();
    assert_eq!(second_calls.load(Ordering::SeqCst), 0);
}

#[test]
fn callback_registering_another_leaves_the_later_registrations_called() {
    // Registrations 1 and 2 for OnContextData; 1 adds registration 3 while the first event
    // is delivered (the list is replaced under the delivery). 2 still gets that event, 3 only
    // the events delivered after it was added.
    let w = World::new();
    w.register_app("");
    let (a, b) = w.connected();
    let log = Arc::new(Mutex::new(Vec::<(u32, String)>::new()));
    let record = |id: u32| {
        let log = log.clone();
        move |e: &mut SessionEvent| {
            if let SessionEvent::ContextData { data } = e {
                log.lock().push((id, data.as_str().to_owned()));
            }
        }
    };
    {
        let (a2, added, third) = (a.clone(), Arc::new(AtomicUsize::new(0)), record(3));
        let first = record(1);
        a.advise(SessionEventKind::ContextData, move |e| {
            first(e);
            if added.fetch_add(1, Ordering::SeqCst) == 0 {
                a2.advise(SessionEventKind::ContextData, third.clone())
                    .unwrap();
            }
        })
        .unwrap();
    }
    a.advise(SessionEventKind::ContextData, record(2)).unwrap();
    b.send_context_data("1").unwrap();
    b.send_context_data("2").unwrap();
    w.pump();
    let expected: Vec<(u32, String)> = [(1, "1"), (2, "1"), (1, "2"), (2, "2"), (3, "2")]
        .iter()
        .map(|(i, d)| (*i, d.to_string()))
        .collect();
    assert_eq!(*log.lock(), expected);
}

#[test]
fn releasing_the_session_inside_its_callback_drops_queued_events() {
    let w = World::new();
    w.register_app("");
    let (a, b) = w.connected();
    let seen = Arc::new(AtomicUsize::new(0));
    let drops = Arc::new(AtomicUsize::new(0));
    for _ in 0..3 {
        let (seen, a2, g) = (seen.clone(), a.clone(), DropCount(drops.clone()));
        a.advise(SessionEventKind::ContextData, move |_| {
            let _ = &g;
            seen.fetch_add(1, Ordering::SeqCst);
            a2.detach();
        })
        .unwrap();
    }
    b.send_context_data("1").unwrap();
    b.send_context_data("2").unwrap();
    w.pump();
    // The first callback detached: the other two registrations were ended before running,
    // and the second event was dropped.
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    assert_eq!(drops.load(Ordering::SeqCst), 3);
    // The session itself goes on.
    assert_eq!(a.state(), SessionState::Connected);
    b.cancel(E_FAIL, None).unwrap();
    w.pump();
    assert_eq!(a.state(), SessionState::Cancelled);
}

#[test]
fn closing_the_manager_inside_its_callback() {
    let w = World::new();
    let m = w.a.create_session_manager().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let drops = Arc::new(AtomicUsize::new(0));
    for k in [
        ManagerEventKind::LockEnable,
        ManagerEventKind::LockStatusChanged,
    ] {
        let (seen, m2, g) = (seen.clone(), m.clone(), DropCount(drops.clone()));
        m.advise(k, move |_| {
            let _ = &g;
            seen.fetch_add(1, Ordering::SeqCst);
            m2.close();
        })
        .unwrap();
    }
    w.pump();
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    assert_eq!(drops.load(Ordering::SeqCst), 2);
    assert_eq!(
        m.advise(ManagerEventKind::AppShutdown, |_| {}).unwrap_err(),
        E_HANDLE
    );
}

#[test]
fn destroying_the_client_inside_a_callback() {
    for mode in [DispatchMode::Manual, DispatchMode::Thread] {
        let svc: Arc<dyn Service> = Arc::new(service(true));
        let c = Client::new(svc, "eve@example.com", mode).unwrap();
        let m = SessionManager::new(&c).unwrap();
        let seen = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        {
            let (seen, c2) = (seen.clone(), c.clone());
            m.advise(ManagerEventKind::LockStatusChanged, move |_| {
                seen.fetch_add(1, Ordering::SeqCst);
                c2.destroy();
            })
            .unwrap();
        }
        {
            let (seen, c2) = (seen.clone(), c.clone());
            m.advise(ManagerEventKind::LockEnable, move |_| {
                seen.fetch_add(1, Ordering::SeqCst);
                let _ = c2.sign_out(); // queues LockStatusChanged(NotInitialized)
            })
            .unwrap();
        }
        // Raise the events again now that the callbacks are registered.
        c.sign_out().unwrap();
        c.sign_in().unwrap();
        if mode == DispatchMode::Manual {
            assert!(c.dispatch(Some(Duration::from_secs(1))).unwrap() >= 1);
        } else {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while seen.load(Ordering::SeqCst) < 2 && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        // (the LockStatusChanged(NotInitialized) of the first sign_out came first)
        assert!(seen.load(Ordering::SeqCst) >= 1);
        let before = seen.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(seen.load(Ordering::SeqCst), before, "nothing after destroy");
        assert_eq!(c.pending_events(), 0);
        done.fetch_add(1, Ordering::SeqCst);
        m.close();
    }
}

#[test]
fn nested_dispatch_keeps_order() {
    let w = World::new();
    w.register_app("");
    let (a, b) = w.connected();
    let order = Arc::new(Mutex::new(Vec::new()));
    {
        let (order, client) = (order.clone(), w.a.clone());
        a.advise(SessionEventKind::ContextData, move |e| {
            if let SessionEvent::ContextData { data } = e {
                order.lock().push(data.to_string());
                if data.as_str() == "1" {
                    client.dispatch(Some(Duration::ZERO)).unwrap();
                    order.lock().push("end-of-1".into());
                }
            }
        })
        .unwrap();
    }
    for d in ["1", "2", "3"] {
        b.send_context_data(d).unwrap();
    }
    w.pump();
    assert_eq!(*order.lock(), vec!["1", "2", "3", "end-of-1"]);
}

#[test]
fn another_thread_waits_for_its_turn() {
    let w = World::new();
    w.register_app("");
    let (a, b) = w.connected();
    let in_cb = Arc::new(std::sync::Barrier::new(2));
    let running = Arc::new(AtomicUsize::new(0));
    let overlap = Arc::new(AtomicUsize::new(0));
    {
        let (in_cb, running, overlap) = (in_cb.clone(), running.clone(), overlap.clone());
        let first = Arc::new(AtomicUsize::new(0));
        a.advise(SessionEventKind::ContextData, move |_| {
            if running.fetch_add(1, Ordering::SeqCst) != 0 {
                overlap.fetch_add(1, Ordering::SeqCst);
            }
            if first.fetch_add(1, Ordering::SeqCst) == 0 {
                in_cb.wait();
            }
            std::thread::sleep(Duration::from_millis(50));
            running.fetch_sub(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    b.send_context_data("1").unwrap();
    b.send_context_data("2").unwrap();
    let client = w.a.clone();
    let t = std::thread::spawn(move || client.dispatch(Some(Duration::from_secs(5))).unwrap());
    in_cb.wait();
    // While the other thread delivers "1", this one must not deliver "2" concurrently.
    let n = w.a.dispatch(Some(Duration::from_millis(300))).unwrap();
    let m = t.join().unwrap();
    assert_eq!(n + m, 2);
    assert_eq!(overlap.load(Ordering::SeqCst), 0);
}

#[test]
fn event_fd_is_readable_while_events_are_pending() {
    let w = World::new();
    let fd = w.a.event_fd().unwrap();
    assert_eq!(w.a.event_fd().unwrap(), fd);
    let readable = |fd: i32| {
        let mut p = libc_pollfd(fd);
        unsafe { poll(&mut p, 1, 0) == 1 && (p.revents & 1) != 0 }
    };
    assert!(!readable(fd));
    w.register_app("");
    // register_app pumps: nothing pending now.
    assert!(!readable(fd));
    w.ma.unregister_application(APP).unwrap();
    assert!(readable(fd));
    assert!(readable(fd), "level-triggered");
    w.a.dispatch(Some(Duration::ZERO)).unwrap();
    assert!(!readable(fd));
}

#[repr(C)]
struct PollFd {
    fd: i32,
    events: i16,
    revents: i16,
}
fn libc_pollfd(fd: i32) -> PollFd {
    PollFd {
        fd,
        events: 1,
        revents: 0,
    }
}
extern "C" {
    fn poll(fds: *mut PollFd, n: u64, timeout: i32) -> i32;
}

#[test]
fn dispatch_waits_for_the_first_event() {
    let w = World::new();
    w.register_app("");
    let (_a, b) = w.connected();
    let start = std::time::Instant::now();
    assert_eq!(w.a.dispatch(Some(Duration::from_millis(30))).unwrap(), 0);
    assert!(start.elapsed() >= Duration::from_millis(25));
    let b2 = b.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        b2.send_context_data("late").unwrap();
    });
    let n = w.a.dispatch(Some(Duration::from_secs(5))).unwrap();
    t.join().unwrap();
    assert_eq!(n, 1);
}

/// When a destroy notification runs: at once when no delivery is under way on the client;
/// for a registration ended during the delivery of an event (here by another object's
/// callback), once that event's delivery has finished, before the next event's callbacks.
#[test]
fn an_ended_registration_is_dropped_after_the_event_under_way() {
    let w = World::new();
    w.pump();
    let (m1, m2, m3) = (
        w.a.create_session_manager().unwrap(),
        w.a.create_session_manager().unwrap(),
        w.a.create_session_manager().unwrap(),
    );
    w.pump();
    let drops = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    // No delivery under way: dropped before unadvise returns.
    let g = DropCount(drops.clone());
    let c0 = m2
        .advise(ManagerEventKind::LockStatusChanged, move |_| {
            let _ = &g;
        })
        .unwrap();
    m2.unadvise(c0).unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 1);

    // m2's registration R, ended by m1's callback during the first event of a sign-out.
    let (g, k) = (DropCount(drops.clone()), calls.clone());
    let r = m2
        .advise(ManagerEventKind::LockStatusChanged, move |_| {
            let _ = &g;
            k.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let seen_inside = Arc::new(AtomicUsize::new(usize::MAX));
    let seen_next = Arc::new(AtomicUsize::new(usize::MAX));
    {
        let (m2, d, s) = (m2.clone(), drops.clone(), seen_inside.clone());
        m1.advise(ManagerEventKind::LockStatusChanged, move |_| {
            m2.unadvise(r).unwrap();
            s.store(d.load(Ordering::SeqCst), Ordering::SeqCst);
        })
        .unwrap();
    }
    {
        let (d, s) = (drops.clone(), seen_next.clone());
        m3.advise(ManagerEventKind::LockStatusChanged, move |_| {
            s.store(d.load(Ordering::SeqCst), Ordering::SeqCst);
        })
        .unwrap();
    }
    w.a.sign_out().unwrap();
    // One OnLockStatusChanged per manager: the world's own, then m1, m2, m3.
    assert_eq!(w.a.dispatch(Some(Duration::ZERO)).unwrap(), 4);
    // Inside m1's callback the list holding R may still be read: R is not dropped yet...
    assert_eq!(seen_inside.load(Ordering::SeqCst), 1);
    // ... but it is before m3's event (the next one) is delivered, and R never ran.
    assert_eq!(seen_next.load(Ordering::SeqCst), 2);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(drops.load(Ordering::SeqCst), 2);
}

/// A manager's events queue a pointer to its sink list, not a reference count: when the
/// manager is dropped (not closed) with events queued, they are still delivered, and its
/// registrations are dropped after them (the list is freed behind the queued jobs).
#[test]
fn a_manager_dropped_with_events_queued_delivers_them_then_drops_its_registrations() {
    let w = World::new();
    w.pump();
    let m = w.a.create_session_manager().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let drops = Arc::new(AtomicUsize::new(0));
    {
        let (seen, g) = (seen.clone(), DropCount(drops.clone()));
        m.advise(ManagerEventKind::LockStatusChanged, move |_| {
            let _ = &g;
            seen.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    w.pump();
    seen.store(0, Ordering::SeqCst);
    w.a.sign_out().unwrap();
    drop(m);
    // Its event and the world's own manager's; the release waits behind them and is not an
    // event itself.
    assert_eq!(w.a.pending_events(), 2);
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    assert_eq!(w.a.dispatch(Some(Duration::ZERO)).unwrap(), 2);
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert_eq!(w.a.pending_events(), 0);
}

/// The last reference to a manager dropped inside its own callback while its next event was
/// already taken for delivery (one batch): that event is dropped uncounted, its list is freed
/// when the dispatch ends, nothing is read after it is freed (AddressSanitizer runs this).
#[test]
fn the_last_reference_to_a_manager_dropped_inside_its_callback() {
    for nested in [false, true] {
        let w = World::new();
        w.pump();
        let slot: Arc<Mutex<Option<SessionManager>>> =
            Arc::new(Mutex::new(Some(w.a.create_session_manager().unwrap())));
        let seen = Arc::new(AtomicUsize::new(0));
        let drops = Arc::new(AtomicUsize::new(0));
        let client = w.a.clone();
        for k in [
            ManagerEventKind::LockEnable,
            ManagerEventKind::LockStatusChanged,
        ] {
            let (seen, slot2, g) = (seen.clone(), slot.clone(), DropCount(drops.clone()));
            let client = client.clone();
            let m = slot.lock().clone().unwrap();
            m.advise(k, move |_| {
                let _ = &g;
                seen.fetch_add(1, Ordering::SeqCst);
                let m = slot2.lock().take();
                if let Some(m) = m {
                    m.close();
                    drop(m);
                }
                if nested {
                    client.dispatch(Some(Duration::ZERO)).unwrap();
                }
            })
            .unwrap();
        }
        // Both events of the manager's creation are queued; one dispatch takes them together.
        assert_eq!(w.a.pending_events(), 2);
        assert_eq!(
            w.a.dispatch(Some(Duration::ZERO)).unwrap(),
            1,
            "nested: {nested}"
        );
        assert_eq!(seen.load(Ordering::SeqCst), 1);
        assert_eq!(drops.load(Ordering::SeqCst), 2);
        assert_eq!(w.a.pending_events(), 0);
        drop(client);
    }
}

/// Managers closed and released while nobody dispatches: their events leave the queue, the
/// others' stay pending and keep the descriptor readable, and nothing is left once those are
/// purged too.
#[test]
fn managers_released_while_nobody_dispatches() {
    let w = World::new();
    w.pump();
    let m1 = w.a.create_session_manager().unwrap();
    let m2 = w.a.create_session_manager().unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    {
        let g = DropCount(drops.clone());
        m2.advise(ManagerEventKind::AppShutdown, move |_| {
            let _ = &g;
        })
        .unwrap();
    }
    let fd = w.a.event_fd().unwrap();
    let readable = |fd: i32| {
        let mut p = libc_pollfd(fd);
        unsafe { poll(&mut p, 1, 0) == 1 && (p.revents & 1) != 0 }
    };
    assert_eq!(w.a.pending_events(), 4);
    m2.close();
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    drop(m2);
    // m1's two creation events are left.
    assert_eq!(w.a.pending_events(), 2);
    assert!(readable(fd));
    m1.close();
    assert_eq!(w.a.pending_events(), 0);
    assert!(!readable(fd));
    assert_eq!(w.a.dispatch(Some(Duration::ZERO)).unwrap(), 0);
    assert_eq!(w.a.pending_events(), 0);
    assert!(!readable(fd));
    // An event after it is delivered as usual.
    w.a.sign_out().unwrap();
    assert!(readable(fd));
    assert_eq!(w.a.dispatch(Some(Duration::ZERO)).unwrap(), 1);
}

/// Managers created, raising events and dropped on several threads at once while the
/// client's thread delivers: every registration is dropped exactly once, nothing is read
/// after it is freed (AddressSanitizer runs this).
#[test]
fn managers_dropped_while_their_events_are_delivered_on_the_client_thread() {
    let svc = Arc::new(service(true));
    let c = Client::new(svc, "carol@example.com", DispatchMode::Thread).unwrap();
    let made = Arc::new(AtomicUsize::new(0));
    let drops = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(AtomicUsize::new(0));
    // A manager that lives throughout: its events show that the client's thread delivered
    // while the others were created and dropped (theirs may all come too late to be seen).
    let kept = c.create_session_manager().unwrap();
    let delivered = Arc::new(AtomicUsize::new(0));
    let d2 = delivered.clone();
    kept.advise(ManagerEventKind::LockStatusChanged, move |_| {
        d2.fetch_add(1, Ordering::Relaxed);
    })
    .unwrap();
    std::thread::scope(|s| {
        let c2 = c.clone();
        s.spawn(move || {
            for _ in 0..200 {
                let _ = c2.sign_out();
                let _ = c2.sign_in();
            }
        });
        for _ in 0..2 {
            let (c, made, drops, seen) = (c.clone(), made.clone(), drops.clone(), seen.clone());
            s.spawn(move || {
                for i in 0..300 {
                    let m = c.create_session_manager().unwrap();
                    for k in [
                        ManagerEventKind::LockEnable,
                        ManagerEventKind::LockStatusChanged,
                    ] {
                        let (g, seen) = (DropCount(drops.clone()), seen.clone());
                        m.advise(k, move |_| {
                            let _ = &g;
                            seen.fetch_add(1, Ordering::Relaxed);
                        })
                        .unwrap();
                        made.fetch_add(1, Ordering::SeqCst);
                    }
                    if i % 2 == 0 {
                        m.close();
                    }
                    drop(m);
                }
            });
        }
    });
    let start = std::time::Instant::now();
    while delivered.load(Ordering::Relaxed) == 0 && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        delivered.load(Ordering::Relaxed) > 0,
        "the client's thread delivered"
    );
    drop(kept);
    c.destroy();
    assert_eq!(drops.load(Ordering::SeqCst), made.load(Ordering::SeqCst));
    eprintln!(
        "events seen by the managers created and dropped: {}",
        seen.load(Ordering::Relaxed)
    );
}
