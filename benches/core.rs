//! The Rust core without the C ABI, for comparison with benches/bench.c (same workloads, Rust
//! callbacks, no handle table, no trampolines):
//!
//!     cargo bench --bench core            # or: cargo bench --bench core -- --quick
//!
//! No external harness (criterion would raise the tests' minimum Rust version through its
//! dependencies): each figure is repeated, and its median and spread printed as benches/bench.c
//! does (`R <key> <unit> <median> <min> <max> <reps>`), so benches/report.py can show them.

use msgrpriv::events::{
    Callback, ManagerEvent, ManagerEventKind, SessionEvent, SessionEventKind, Sinks,
};
use msgrpriv::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The system allocator, counting the allocations of each thread (the `*.allocs_per_event`
/// figures: every workload here raises and dispatches on the main thread).
struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

// SAFETY: forwards every call to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
        System.alloc_zeroed(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
        System.realloc(p, l, size)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn report(key: &str, unit: &str, v: &mut [f64]) {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let med = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    println!(
        "R\t{key}\t{unit}\t{med:.4}\t{:.4}\t{:.4}\t{n}",
        v[0],
        v[n - 1]
    );
    eprintln!(
        "  {key:<44} {med:>12.4} {unit:<8} [{:.4} .. {:.4}] ({n} reps)",
        v[0],
        v[n - 1]
    );
}

fn service() -> Arc<dyn Service> {
    Arc::new(
        EmbeddedService::new(ServiceOptions {
            invitation_timeout: Duration::from_secs(120),
            manual_clock: true,
            registry_path: None,
        })
        .unwrap(),
    )
}

fn drain(c: &Client) {
    while c.dispatch(Some(Duration::ZERO)).unwrap() > 0 {}
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let reps = if quick { 3 } else { 11 };
    let count = Arc::new(AtomicU64::new(0));

    // Sinks::deliver alone: one registration, a trivial event (no queue).
    {
        let sinks: Sinks<ManagerEvent> = Sinks::default();
        let c = count.clone();
        sinks
            .advise(
                ManagerEventKind::LockStatusChanged as u8,
                Callback::new(move |e: &mut ManagerEvent| {
                    if let ManagerEvent::LockStatusChanged { status } = e {
                        c.fetch_add(*status as u64 & 1, Ordering::Relaxed);
                    }
                }),
            )
            .unwrap();
        let n = if quick { 10_000 } else { 10_000_000 };
        let mut v: Vec<f64> = (0..reps)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..n {
                    let mut e = ManagerEvent::LockStatusChanged {
                        status: LockStatus::Unlocked,
                    };
                    sinks.deliver(black_box(&mut e));
                }
                t.elapsed().as_nanos() as f64 / n as f64
            })
            .collect();
        report("core.sinks_deliver_ns", "ns/event", &mut v);
    }

    // Queue + dispatch with Rust callbacks: 1000 managers, sign-out/in (as bench.c).
    {
        let svc = service();
        let c = Client::new(svc, "carol@example.com", DispatchMode::Manual).unwrap();
        let nm = if quick { 20 } else { 1000 };
        let ms: Vec<SessionManager> = (0..nm)
            .map(|_| {
                let m = c.create_session_manager().unwrap();
                let k = count.clone();
                m.advise(ManagerEventKind::LockStatusChanged, move |_| {
                    k.fetch_add(1, Ordering::Relaxed);
                })
                .unwrap();
                let k = count.clone();
                m.advise(ManagerEventKind::LockEnable, move |_| {
                    k.fetch_add(1, Ordering::Relaxed);
                })
                .unwrap();
                m
            })
            .collect();
        drain(&c);
        let cycles = if quick { 2 } else { 20 };
        let (mut ar, mut ad) = (Vec::new(), Vec::new());
        let (mut raise, mut disp): (Vec<f64>, Vec<f64>) = (0..reps)
            .map(|_| {
                let (mut tr, mut td, mut ev) = (0u128, 0u128, 0u64);
                let (mut nr, mut nd) = (0u64, 0u64);
                for _ in 0..cycles {
                    let a0 = allocs();
                    let t0 = Instant::now();
                    c.sign_out().unwrap();
                    let t1 = Instant::now();
                    let a1 = allocs();
                    let n1 = c.dispatch(Some(Duration::ZERO)).unwrap();
                    let t2 = Instant::now();
                    let a2 = allocs();
                    c.sign_in().unwrap();
                    let t3 = Instant::now();
                    let a3 = allocs();
                    let n2 = c.dispatch(Some(Duration::ZERO)).unwrap();
                    let t4 = Instant::now();
                    let a4 = allocs();
                    assert_eq!((n1 as usize, n2 as usize), (nm, 2 * nm));
                    tr += (t1 - t0).as_nanos() + (t3 - t2).as_nanos();
                    td += (t2 - t1).as_nanos() + (t4 - t3).as_nanos();
                    nr += (a1 - a0) + (a3 - a2);
                    nd += (a2 - a1) + (a4 - a3);
                    ev += (n1 + n2) as u64;
                }
                ar.push(nr as f64 / ev as f64);
                ad.push(nd as f64 / ev as f64);
                (tr as f64 / ev as f64, td as f64 / ev as f64)
            })
            .unzip();
        report("core.lock.raise_queue_ns", "ns/event", &mut raise);
        report("core.lock.batch_dispatch_ns", "ns/event", &mut disp);
        report("core.lock.raise_allocs_per_event", "allocs", &mut ar);
        report("core.lock.dispatch_allocs_per_event", "allocs", &mut ad);
        drop(ms);
        c.destroy();
    }

    // OnContextData (a 64-byte string) as benches/bench.c raises it: connected sessions, five
    // sends on each in turn, then one dispatch of them all on the invitee's client.
    {
        const APP: &str = "{6F9619FF-8B86-D011-B42D-00C04FC964FF}";
        let ctx64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let svc = service();
        let a = Client::new(svc.clone(), "frank@example.com", DispatchMode::Manual).unwrap();
        let b = Client::new(svc, "grace@example.com", DispatchMode::Manual).unwrap();
        let ma = a.create_session_manager().unwrap();
        let mb = b.create_session_manager().unwrap();
        ma.register_application(APP, "Bench", "http://example.com/", "", 0)
            .unwrap();
        let invitees: Arc<Mutex<Vec<Session>>> = Arc::default();
        let (inbox, k) = (invitees.clone(), count.clone());
        mb.advise(ManagerEventKind::Invitation, move |e| {
            if let ManagerEvent::Invitation {
                session, handled, ..
            } = e
            {
                let k = k.clone();
                session
                    .advise(SessionEventKind::ContextData, move |e| {
                        if let SessionEvent::ContextData { data } = e {
                            k.fetch_add(data.as_str().len() as u64 & 1, Ordering::Relaxed);
                        }
                    })
                    .unwrap();
                session.accept(None).unwrap();
                *handled = true;
                inbox.lock().unwrap().push(session.clone());
            }
        })
        .unwrap();
        drain(&a);
        drain(&b);
        let k = if quick { 20 } else { 2000 };
        let (mut ar, mut ad) = (Vec::new(), Vec::new());
        let (mut raise, mut disp): (Vec<f64>, Vec<f64>) = (0..reps)
            .map(|_| {
                let sides: Vec<Session> = (0..k)
                    .map(|_| {
                        let s = ma.create_session().unwrap();
                        s.set_application(APP).unwrap();
                        s.invite("grace@example.com", None).unwrap();
                        drain(&b);
                        s
                    })
                    .collect();
                drain(&a);
                let a0 = allocs();
                let t0 = Instant::now();
                for _ in 0..5 {
                    for s in &sides {
                        s.send_context_data(ctx64).unwrap();
                    }
                }
                let t1 = Instant::now();
                let a1 = allocs();
                let n = b.dispatch(Some(Duration::ZERO)).unwrap();
                let t2 = Instant::now();
                let a2 = allocs();
                assert_eq!(n as usize, 5 * k);
                for s in &sides {
                    s.cancel(Hr(0), None).unwrap();
                }
                for s in invitees.lock().unwrap().drain(..) {
                    s.detach();
                }
                drop(sides);
                drain(&a);
                drain(&b);
                ar.push((a1 - a0) as f64 / n as f64);
                ad.push((a2 - a1) as f64 / n as f64);
                (
                    (t1 - t0).as_nanos() as f64 / n as f64,
                    (t2 - t1).as_nanos() as f64 / n as f64,
                )
            })
            .unzip();
        report("core.ctx.raise_queue_ns", "ns/event", &mut raise);
        report("core.ctx.batch_dispatch_ns", "ns/event", &mut disp);
        report("core.ctx.raise_allocs_per_event", "allocs", &mut ar);
        report("core.ctx.dispatch_allocs_per_event", "allocs", &mut ad);
        drop((ma, mb));
        a.destroy();
        b.destroy();
    }

    // Session: state() and create.
    {
        let svc = service();
        let c = Client::new(svc, "dave@example.com", DispatchMode::Manual).unwrap();
        let m = c.create_session_manager().unwrap();
        drain(&c);
        let s = m.create_session().unwrap();
        let n = if quick { 10_000 } else { 5_000_000 };
        let mut v: Vec<f64> = (0..reps)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..n {
                    black_box(black_box(&s).state());
                }
                t.elapsed().as_nanos() as f64 / n as f64
            })
            .collect();
        report("core.session_state_ns", "ns/call", &mut v);
        let n = if quick { 1_000 } else { 100_000 };
        let mut v: Vec<f64> = (0..reps)
            .map(|_| {
                let t = Instant::now();
                let keep: Vec<Session> = (0..n).map(|_| m.create_session().unwrap()).collect();
                let el = t.elapsed().as_nanos() as f64 / n as f64;
                drop(keep);
                el
            })
            .collect();
        report("core.create_session_ns", "ns/session", &mut v);
        let _ = SessionEventKind::ContextData;
        let _ = SessionEvent::ReadyToLaunch;
        c.destroy();
    }
    // Managers: creating one costs the same with 1 thousand or 20 thousand live on the client.
    for live in [1_000usize, 20_000] {
        let live = if quick { live / 100 } else { live };
        let svc = service();
        let c = Client::new(svc, "erin@example.com", DispatchMode::Manual).unwrap();
        let mut v: Vec<f64> = (0..reps)
            .map(|_| {
                let keep: Vec<SessionManager> = (0..live)
                    .map(|_| c.create_session_manager().unwrap())
                    .collect();
                let n = 1_000;
                let t = Instant::now();
                let more: Vec<SessionManager> = (0..n)
                    .map(|_| c.create_session_manager().unwrap())
                    .collect();
                let el = t.elapsed().as_nanos() as f64 / n as f64;
                drop((keep, more));
                drain(&c);
                el
            })
            .collect();
        report(
            &format!("core.create_manager_ns.live_{live}"),
            "ns/manager",
            &mut v,
        );
        c.destroy();
    }
    eprintln!("(core events counted: {})", count.load(Ordering::Relaxed));
}
