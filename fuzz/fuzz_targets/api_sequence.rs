//! API-sequence fuzzer over the C ABI: random sequences of exported calls with valid,
//! released, forged, wrong-kind and NULL handles, random strings (invalid UTF-8, oversize,
//! empty), random dispatch, and callbacks that re-enter the API. Checked as it goes:
//! every returned code is a documented one; no callback runs for a released session or
//! manager (callbacks of manual-mode clients; for thread-mode ones AddressSanitizer checks
//! that no callback runs after its destroy callback); each set of registrations made
//! together on a session side sees at most one OnTermination and nothing after it; every
//! registration's destroy callback runs exactly once by the end.
#![no_main]

use libfuzzer_sys::fuzz_target;
use msgrpriv::error::{lookup, Hr, E_HANDLE};
use msgrpriv::ffi::*;
use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

const APP: &str = "{11111111-2222-3333-4444-555555555555}";
const KEY_ID: &str = "fuzz-app";
const KEY: &str = "fuzz-key";

static LIVE_REGS: Mutex<i64> = Mutex::new(0);
static RELEASED: Mutex<Vec<usize>> = Mutex::new(Vec::new());

fn ok(hr: i32) -> i32 {
    assert!(lookup(Hr(hr)).is_some(), "undocumented code {hr:#x}");
    hr
}

struct Input<'a> {
    data: &'a [u8],
}
impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> Option<T> {
        if v.is_empty() {
            None
        } else {
            Some(v[self.byte() as usize % v.len()])
        }
    }
    fn string(&mut self) -> Vec<u8> {
        match self.byte() % 8 {
            0 => b"".to_vec(),
            1 => vec![0xff, 0xfe, b'x'],
            2 => vec![b'a'; 301],
            3 => vec![b'd'; 513],
            4 => "é".repeat(300).into_bytes(),
            5 => b"hello".to_vec(),
            6 => APP.as_bytes().to_vec(),
            _ => {
                let n = (self.byte() % 16) as usize;
                (0..n).map(|_| self.byte().max(1)).collect()
            }
        }
    }
}

fn cstr(v: Vec<u8>) -> CString {
    CString::new(v.into_iter().filter(|b| *b != 0).collect::<Vec<_>>()).unwrap()
}

/// What the registrations made together on one session side share (each holds one `Arc`,
/// as its user data): the OnTermination count. Several managers of one client each get
/// OnInvitation for the same session, so one side may be watched more than once: counts
/// are per watch, not per side.
#[derive(Default)]
struct Side {
    terminations: AtomicU32,
}

unsafe extern "C" fn destroy(ud: *mut c_void) {
    *LIVE_REGS.lock().unwrap() -= 1;
    drop(Arc::from_raw(ud as *const Side));
}

fn ud_of(side: &Arc<Side>) -> *mut c_void {
    *LIVE_REGS.lock().unwrap() += 1;
    Arc::into_raw(side.clone()) as *mut c_void
}

fn new_ud() -> *mut c_void {
    ud_of(&Arc::new(Side::default()))
}

unsafe fn side<'a>(ud: *mut c_void) -> &'a Side {
    &*(ud as *const Side)
}

thread_local! {
    /// True on the thread running the fuzz input (where manual-mode clients dispatch).
    static FUZZ_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn on_fuzz_thread() -> bool {
    FUZZ_THREAD.with(|t| t.get())
}

/// No callback for a handle released before it: checked for callbacks run by a manual
/// dispatch on the fuzzing thread, which are ordered with its releases. A thread-mode
/// client's callbacks run on its own thread, unordered with a release made meanwhile on the
/// fuzzing thread (a delivery already under way may finish); there the checked property is
/// memory safety: every callback reads its user data, which its destroy callback frees, so
/// a callback after its destroy callback is a use-after-free for AddressSanitizer.
fn assert_not_released(h: usize) {
    if on_fuzz_thread() {
        assert!(
            !RELEASED.lock().unwrap().contains(&h),
            "callback for a released handle"
        );
    }
}

/// A call through the handle lent to a callback succeeds, except on a dispatch thread when
/// the fuzzing thread has meanwhile released that handle (then E_HANDLE).
fn lent_ok(hr: i32, h: usize) -> bool {
    ok(hr);
    if hr == 0 {
        return true;
    }
    assert!(
        !on_fuzz_thread() && hr == E_HANDLE.0 && RELEASED.lock().unwrap().contains(&h),
        "call through a lent handle failed: {hr:#x}"
    );
    false
}

/// Reads the user data's byte: a use-after-free if its destroy callback already ran.
unsafe fn touch(ud: *mut c_void) {
    std::ptr::read_volatile(ud as *const u8);
}

unsafe extern "C" fn on_termination(
    ud: *mut c_void,
    s: *mut msgr_session,
    hr: i32,
    _d: *const c_char,
) {
    touch(ud);
    let n = side(ud).terminations.fetch_add(1, Ordering::SeqCst) + 1;
    assert_eq!(n, 1, "two OnTermination for one registration");
    // The other side of a Cancel gets the code given to Cancel, whatever it is (the header):
    // here -1 (op 6) or SR_SESSION_CANCELLED_REMOTE (op 7).
    if hr != -1 {
        ok(hr);
    }
    assert_not_released(s as usize);
    let mut buf = [0 as c_char; 64];
    let mut n = 0usize;
    if !lent_ok(
        msgr_session_get_session_id(s, buf.as_mut_ptr(), 64, &mut n),
        s as usize,
    ) {
        return;
    }
    assert!(
        CStr::from_ptr(buf.as_ptr()).to_bytes().len() == 38,
        "a SessionID"
    );
    let mut st = 0u32;
    if !lent_ok(msgr_session_get_flags(s, &mut st), s as usize) {
        return;
    }
}

unsafe extern "C" fn on_state(ud: *mut c_void, s: *mut msgr_session, _prev: SESSION_STATE) {
    touch(ud);
    assert_eq!(
        side(ud).terminations.load(Ordering::SeqCst),
        0,
        "OnStateChanged after OnTermination"
    );
    assert_not_released(s as usize);
    // Re-enter: a getter and sometimes a cancel from inside the callback.
    let mut st = SESSION_STATE::SS_UNKNOWN;
    ok(msgr_session_get_state(s, &mut st));
    if matches!(st, SESSION_STATE::SS_CONNECTED) {
        ok(msgr_session_send_context_data(s, c"from callback".as_ptr()));
    }
}

unsafe extern "C" fn on_context(ud: *mut c_void, s: *mut msgr_session, _d: *const c_char) {
    touch(ud);
    assert_eq!(
        side(ud).terminations.load(Ordering::SeqCst),
        0,
        "OnContextData after OnTermination"
    );
    assert_not_released(s as usize);
}

unsafe extern "C" fn on_invitation(
    ud: *mut c_void,
    m: *mut msgr_session_manager,
    s: *mut msgr_session,
    data: *const c_char,
    handled: *mut bool,
) {
    touch(ud);
    assert_not_released(m as usize);
    *handled = true;
    let mut cookie = 0;
    let watch = Arc::new(Side::default());
    ok(msgr_session_on_termination(
        s,
        Some(on_termination),
        ud_of(&watch),
        Some(destroy),
        &mut cookie,
    ));
    ok(msgr_session_on_state_changed(
        s,
        Some(on_state),
        ud_of(&watch),
        Some(destroy),
        &mut cookie,
    ));
    // Decide from the app data: accept, decline, or keep it for later.
    let first = if data.is_null() { 0 } else { *data as u8 };
    match first % 3 {
        0 => {
            ok(msgr_session_accept(s, std::ptr::null()));
        }
        1 => {
            ok(msgr_session_decline(s, c"no".as_ptr()));
        }
        _ => {
            if ok(msgr_session_add_ref(s)) == 0 {
                KEPT.lock().unwrap().push(s as usize);
            }
        }
    }
}

/// Invitee sessions kept by OnInvitation, one entry per reference taken: every manager of a
/// client gets OnInvitation for the same session, so one handle may be kept more than once.
static KEPT: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// Drops one reference KEPT held on `k` (its entry already removed); the handle counts as
/// released when that was the last one.
unsafe fn release_kept(k: usize) {
    if !KEPT.lock().unwrap().contains(&k) {
        RELEASED.lock().unwrap().push(k);
    }
    ok(msgr_session_release(k as *mut _));
}

unsafe extern "C" fn on_challenge(
    ud: *mut c_void,
    m: *mut msgr_session_manager,
    cookie: i32,
    ch: *const c_char,
) {
    touch(ud);
    assert_not_released(m as usize);
    let mut out = [0 as c_char; 33];
    let key = if cookie % 2 == 0 {
        c"fuzz-key"
    } else {
        c"wrong"
    };
    assert_eq!(
        msgr_lock_compute_response(ch, key.as_ptr(), out.as_mut_ptr()),
        0
    );
    ok(msgr_session_manager_send_response(
        m,
        c"fuzz-app".as_ptr(),
        out.as_ptr(),
        cookie,
    ));
}

fuzz_target!(|data: &[u8]| unsafe {
    FUZZ_THREAD.with(|t| t.set(true));
    RELEASED.lock().unwrap().clear();
    KEPT.lock().unwrap().clear();
    let mut inp = Input { data };
    let opts = msgr_service_options {
        struct_size: std::mem::size_of::<msgr_service_options>() as u32,
        invitation_timeout_ms: 1000,
        manual_clock: true,
        registry_path: std::ptr::null(),
        ..Default::default()
    };
    let mut svc = null_mut();
    assert_eq!(msgr_service_create(&opts, &mut svc), 0);
    if inp.byte() % 2 == 0 {
        let (i, k) = (CString::new(KEY_ID).unwrap(), CString::new(KEY).unwrap());
        assert_eq!(msgr_service_add_app_key(svc, i.as_ptr(), k.as_ptr()), 0);
    }
    let names = ["u0", "u1", "u2"];
    let mut clients: Vec<*mut msgr_client> = Vec::new();
    let mut managers: Vec<*mut msgr_session_manager> = Vec::new();
    let mut sessions: Vec<*mut msgr_session> = Vec::new();
    let mut dead: Vec<usize> = vec![0x1234, 0x8, usize::MAX];
    for n in names {
        let mut c = null_mut();
        let name = CString::new(n).unwrap();
        assert_eq!(msgr_client_create(svc, name.as_ptr(), 0, &mut c), 0);
        clients.push(c);
    }
    let mut steps = 0;
    while !inp.data.is_empty() && steps < 400 {
        steps += 1;
        let op = inp.byte() % 20;
        let any_handle = |inp: &mut Input, v: &[usize]| -> usize {
            match inp.byte() % 4 {
                0 => 0,
                1 => inp.pick(&dead).unwrap_or(0),
                _ => inp.pick(v).unwrap_or(0),
            }
        };
        match op {
            0 => {
                if let Some(c) = inp.pick(&clients) {
                    let mut m = null_mut();
                    if ok(msgr_session_manager_create(c, &mut m)) == 0 {
                        let mut cookie = 0;
                        ok(msgr_session_manager_on_invitation(
                            m,
                            Some(on_invitation),
                            new_ud(),
                            Some(destroy),
                            &mut cookie,
                        ));
                        ok(msgr_session_manager_on_lock_challenge(
                            m,
                            Some(on_challenge),
                            new_ud(),
                            Some(destroy),
                            &mut cookie,
                        ));
                        managers.push(m);
                    }
                }
            }
            1 => {
                if !managers.is_empty() {
                    let i = inp.byte() as usize % managers.len();
                    let m = managers.swap_remove(i);
                    RELEASED.lock().unwrap().push(m as usize);
                    assert_eq!(msgr_session_manager_release(m), 0);
                    dead.push(m as usize);
                }
            }
            2 => {
                if let Some(m) = inp.pick(&managers) {
                    let mut s = null_mut();
                    if ok(msgr_session_manager_create_session(m, &mut s)) == 0 {
                        let mut cookie = 0;
                        let watch = Arc::new(Side::default());
                        ok(msgr_session_on_termination(
                            s,
                            Some(on_termination),
                            ud_of(&watch),
                            Some(destroy),
                            &mut cookie,
                        ));
                        ok(msgr_session_on_state_changed(
                            s,
                            Some(on_state),
                            ud_of(&watch),
                            Some(destroy),
                            &mut cookie,
                        ));
                        ok(msgr_session_on_context_data(
                            s,
                            Some(on_context),
                            ud_of(&watch),
                            Some(destroy),
                            &mut cookie,
                        ));
                        sessions.push(s);
                    }
                }
            }
            3 => {
                if !sessions.is_empty() {
                    let i = inp.byte() as usize % sessions.len();
                    let s = sessions.swap_remove(i);
                    RELEASED.lock().unwrap().push(s as usize);
                    assert_eq!(msgr_session_release(s), 0);
                    dead.push(s as usize);
                }
            }
            4 => {
                let s = any_handle(
                    &mut inp,
                    &sessions.iter().map(|p| *p as usize).collect::<Vec<_>>(),
                );
                let g = if inp.byte() % 4 == 0 {
                    cstr(inp.string())
                } else {
                    CString::new(APP).unwrap()
                };
                ok(msgr_session_set_application(s as *mut _, g.as_ptr()));
            }
            5 => {
                let s = any_handle(
                    &mut inp,
                    &sessions.iter().map(|p| *p as usize).collect::<Vec<_>>(),
                );
                let who = if inp.byte() % 3 == 0 {
                    cstr(inp.string())
                } else {
                    CString::new(names[inp.byte() as usize % 3]).unwrap()
                };
                let data = cstr(inp.string());
                ok(msgr_session_invite(
                    s as *mut _,
                    who.as_ptr(),
                    data.as_ptr(),
                ));
            }
            6 => {
                let popped = KEPT.lock().unwrap().pop();
                if let Some(k) = popped {
                    let d = cstr(inp.string());
                    match inp.byte() % 3 {
                        0 => ok(msgr_session_accept(k as *mut _, d.as_ptr())),
                        1 => ok(msgr_session_decline(k as *mut _, d.as_ptr())),
                        _ => ok(msgr_session_cancel(k as *mut _, -1, d.as_ptr())),
                    };
                    release_kept(k);
                }
            }
            7 => {
                let s = any_handle(
                    &mut inp,
                    &sessions.iter().map(|p| *p as usize).collect::<Vec<_>>(),
                );
                let d = cstr(inp.string());
                ok(msgr_session_cancel(
                    s as *mut _,
                    0x8100_0607u32 as i32,
                    d.as_ptr(),
                ));
            }
            8 => {
                let s = any_handle(
                    &mut inp,
                    &sessions.iter().map(|p| *p as usize).collect::<Vec<_>>(),
                );
                let d = cstr(inp.string());
                ok(msgr_session_send_context_data(s as *mut _, d.as_ptr()));
            }
            9 | 10 => {
                for c in &clients {
                    let mut n = 0;
                    ok(msgr_client_dispatch(*c, 0, &mut n));
                }
            }
            11 => {
                if let Some(m) = inp.pick(&managers) {
                    let g = if inp.byte() % 2 == 0 {
                        CString::new(APP).unwrap()
                    } else {
                        cstr(inp.string())
                    };
                    if inp.byte() % 2 == 0 {
                        let name = cstr(inp.string());
                        ok(msgr_session_manager_register_application(
                            m,
                            g.as_ptr(),
                            name.as_ptr(),
                            c"u".as_ptr(),
                            std::ptr::null(),
                            0,
                        ));
                    } else {
                        ok(msgr_session_manager_unregister_application(m, g.as_ptr()));
                    }
                }
            }
            12 => {
                if let Some(m) = inp.pick(&managers) {
                    ok(msgr_session_manager_request_challenge(m, inp.byte() as i32));
                }
            }
            13 => {
                ok(msgr_service_advance_clock(svc, (inp.byte() as u64) * 10));
            }
            14 => {
                if let Some(c) = inp.pick(&clients) {
                    match inp.byte() % 4 {
                        0 => ok(msgr_client_sign_out(c)),
                        1 => ok(msgr_client_sign_in(c)),
                        2 => ok(msgr_client_shutdown(c)),
                        _ => ok(msgr_service_set_reachable(
                            svc,
                            c"u1".as_ptr(),
                            inp.byte() % 2 == 0,
                        )),
                    };
                }
            }
            15 => {
                // Getters through any handle of any kind.
                let all: Vec<usize> = sessions
                    .iter()
                    .map(|p| *p as usize)
                    .chain(managers.iter().map(|p| *p as usize))
                    .chain(clients.iter().map(|p| *p as usize))
                    .chain(dead.iter().copied())
                    .collect();
                let h = any_handle(&mut inp, &all);
                let mut buf = [0 as c_char; 8];
                let mut n = 0usize;
                let mut st = SESSION_STATE::SS_UNKNOWN;
                let mut ls = MsgrLockStatus::LOCK_DISABLED;
                let mut f = 0u32;
                match inp.byte() % 6 {
                    0 => ok(msgr_session_get_state(h as *mut _, &mut st)),
                    1 => ok(msgr_session_get_user(
                        h as *mut _,
                        buf.as_mut_ptr(),
                        8,
                        &mut n,
                    )),
                    2 => ok(msgr_session_get_context_data(
                        h as *mut _,
                        buf.as_mut_ptr(),
                        buf.len(),
                        &mut n,
                    )),
                    3 => ok(msgr_session_manager_get_lock_status(h as *mut _, &mut ls)),
                    4 => ok(msgr_session_get_flags(h as *mut _, &mut f)),
                    _ => ok(msgr_session_get_remote_address(
                        h as *mut _,
                        std::ptr::null_mut(),
                        0,
                        &mut n,
                    )),
                };
            }
            16 => {
                let s = any_handle(
                    &mut inp,
                    &sessions.iter().map(|p| *p as usize).collect::<Vec<_>>(),
                );
                let a = cstr(inp.string());
                ok(msgr_session_set_local_address(s as *mut _, a.as_ptr()));
            }
            17 => {
                if let Some(s) = inp.pick(&sessions) {
                    ok(msgr_session_add_ref(s));
                    ok(msgr_session_release(s));
                }
            }
            18 => {
                let mut cookie = 0;
                let s = any_handle(
                    &mut inp,
                    &sessions.iter().map(|p| *p as usize).collect::<Vec<_>>(),
                );
                let r = ok(msgr_session_on_context_data(
                    s as *mut _,
                    Some(on_context),
                    new_ud(),
                    Some(destroy),
                    &mut cookie,
                ));
                if r == 0 && inp.byte() % 2 == 0 {
                    ok(msgr_session_unadvise(s as *mut _, cookie));
                }
            }
            _ => {
                let s = cstr(inp.string());
                let mut c = null_mut();
                if ok(msgr_client_create(
                    svc,
                    s.as_ptr(),
                    (inp.byte() % 3) as i32,
                    &mut c,
                )) == 0
                {
                    clients.push(c);
                }
            }
        }
    }
    for c in &clients {
        let mut n = 0;
        ok(msgr_client_dispatch(*c, 0, &mut n));
    }
    // Releases are recorded before they are made, as above: a thread-mode client's
    // callbacks may still be running meanwhile.
    let kept = std::mem::take(&mut *KEPT.lock().unwrap());
    for k in kept {
        RELEASED.lock().unwrap().push(k);
        ok(msgr_session_release(k as *mut _));
    }
    for s in sessions {
        RELEASED.lock().unwrap().push(s as usize);
        assert_eq!(msgr_session_release(s), 0);
    }
    for m in managers {
        RELEASED.lock().unwrap().push(m as usize);
        assert_eq!(msgr_session_manager_release(m), 0);
    }
    for c in clients {
        assert_eq!(msgr_client_destroy(c), 0);
    }
    // Sessions a dispatch thread kept after the first sweep (its thread is gone now).
    let kept = std::mem::take(&mut *KEPT.lock().unwrap());
    for k in kept {
        ok(msgr_session_release(k as *mut _));
    }
    assert_eq!(msgr_service_destroy(svc), 0);
    assert_eq!(
        *LIVE_REGS.lock().unwrap(),
        0,
        "a destroy callback did not run (or ran twice)"
    );
});
