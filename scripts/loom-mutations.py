#!/usr/bin/env python3
"""The mutation checks of the loom models (docs/HARDENING.md): each deliberate bug below is
patched into the source, every model is run (bash scripts/loom.sh NAME --exact, one process per
model: a loom deadlock report aborts the test binary), the models that failed are printed, and
the source is restored. Not part of CI; run by hand after changing a model or the code it
checks: python3 scripts/loom-mutations.py [NAME-PREFIX...]. The patches match the code's text:
when the code changes, a patch that no longer applies stops the script (update it)."""
import os, re, subprocess, sys
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + '/'
M = {
 'M1 push: no notify of waiters': ('src/dispatch.rs', """        let notify = st.waiters > 0;
        let wake = self.rouse(&mut st);""", """        let notify = false;
        let wake = self.rouse(&mut st);"""),
 'M2 deliver_taken: jobs taken from the back of the buffer': ('src/dispatch.rs', """        let job = unsafe { self.jobs.as_ptr().add(self.next).read() };
        self.next += 1;
""", """        let job = self.jobs.pop().expect("not empty");
"""),
 'M3 deliver_taken: no closed_fast check': ('src/dispatch.rs', "            if self.closed_fast.load(Ordering::Acquire) {", "            if false && self.closed_fast.load(Ordering::Acquire) {"),
 'M4 close: no notify_all': ('src/dispatch.rs', """            self.closed_fast.store(true, Ordering::Release);
            self.cv.notify_all();""", """            self.closed_fast.store(true, Ordering::Release);"""),
 'M5 dispatch: busy ignored': ('src/dispatch.rs', "if st.busy.is_none() || nested {", "if st.busy.is_none() || nested || true {"),
 'M6 dispatch: swap even when taken is not empty': ('src/dispatch.rs', "if taken.is_empty() && !st.jobs.is_empty() {", "if !st.jobs.is_empty() {"),
 'M7 close: closed_fast never set': ('src/dispatch.rs', """            st.closed = true;
            self.closed_fast.store(true, Ordering::Release);""", """            st.closed = true;"""),
 'M8 close: closed_fast stored after the lock is released (benign)': ('src/dispatch.rs', """            self.closed_fast.store(true, Ordering::Release);
            self.cv.notify_all();
            let wake = self.rouse(&mut st);
            if let Some(n) = self.notifier.get() {
                n.clear();
            }
            self.has_jobs.store(false, Ordering::Relaxed);
            st.releases = 0;
            (std::mem::take(&mut st.jobs), wake)
        };""", """            self.cv.notify_all();
            let wake = self.rouse(&mut st);
            if let Some(n) = self.notifier.get() {
                n.clear();
            }
            self.has_jobs.store(false, Ordering::Relaxed);
            st.releases = 0;
            (std::mem::take(&mut st.jobs), wake)
        };
        self.closed_fast.store(true, Ordering::Release);"""),
 'M9 push: has_jobs never set, the spinning delivery thread misses work (benign: it then goes to sleep, which checks the queue under the lock, or is woken)': ('src/dispatch.rs', """        if was_empty {
            self.has_jobs.store(true, Ordering::Release);""", """        if was_empty {"""),
 'M10 dispatch: has_jobs not cleared when the jobs are taken (the delivery thread spins for ever)': ('src/dispatch.rs', """                        self.has_jobs.store(false, Ordering::Relaxed);
                        self.taken_len""", """                        self.taken_len"""),
 'W1 push: the sleeping delivery thread is not woken': ('src/dispatch.rs', """        let wake = self.rouse(&mut st);
        drop(st);""", """        let wake = false;
        drop(st);"""),
 'W2 push_all: the sleeping delivery thread is not woken': ('src/dispatch.rs', "let wake = st.jobs.len() > from && self.rouse(&mut st);", "let wake = false;"),
 'W3 close: the sleeping delivery thread is not woken': ('src/dispatch.rs', """            let wake = self.rouse(&mut st);
            if let Some(n)""", """            let wake = false;
            if let Some(n)"""),
 'W4 sleep: the queue not looked at under the lock before sleeping': ('src/dispatch.rs', """            if st.closed || !st.jobs.is_empty() {
                return;
            }
            st.sleeping = true;""", """            if st.closed {
                return;
            }
            st.sleeping = true;"""),
 'W5 sleep: sleeping set in a second critical section': ('src/dispatch.rs', """            st.sleeping = true;
            self.wake.set(ASLEEP);""", """            drop(st);
            self.state.lock().sleeping = true;
            self.wake.set(ASLEEP);"""),
 'W6 sleep: the word set to ASLEEP after the lock is released': ('src/dispatch.rs', """            st.sleeping = true;
            self.wake.set(ASLEEP);
        }""", """            st.sleeping = true;
        }
        self.wake.set(ASLEEP);"""),
 'W7 rouse: the word not set to AWAKE': ('src/dispatch.rs', """        st.sleeping = false;
        self.wake.set(AWAKE);""", """        st.sleeping = false;"""),
 'S1 deliver: calls every matching entry of the list it loaded (no look at the current list after a call)': ('src/sinks.rs', """            if called
                && self.list.load(Ordering::Acquire) != list
                && !entry.callback.reg.active.load(Ordering::Acquire)
            {""", """            if false {"""),
 'S2 close: registrations not marked inactive': ('src/sinks.rs', """        for e in self.current() {
            e.callback.reg.active.store(false, Ordering::Release);
        }""", ""),
 'S4 unadvise: registration not marked inactive': ('src/sinks.rs', "        cur[pos].callback.reg.active.store(false, Ordering::Release);\n", ""),
 'S5 advise after close: callback leaked': ('src/sinks.rs', """            drop(w);
            drop(callback);
            return Err(E_HANDLE);""", """            drop(w);
            std::mem::forget(callback);
            return Err(E_HANDLE);"""),
 'R1 reclaimer: a replaced list is freed at once even while a delivery is under way': ('src/sinks.rs', """        if before < DELIVERY {""", """        if true || before < DELIVERY {"""),
 'R2 reclaimer: the last delivery to leave does not free what was retired (leak)': ('src/sinks.rs', """        let before = self.state.fetch_sub(DELIVERY, Ordering::AcqRel);
        if before > DELIVERY && before < 2 * DELIVERY {
            self.collect(RETIRED | AT_EXIT);
        }""", """        self.state.fetch_sub(DELIVERY, Ordering::AcqRel);"""),
 'R3 release: a released pointee is freed at once (no Release job behind the queued ones)': ('src/dispatch.rs', """        if st.jobs.iter().any(|j| j.points_at(addr)) {""", """        if false && st.jobs.iter().any(|j| j.points_at(addr)) {"""),
 'R4 release: what waits for the deliveries under way is freed between events': ('src/sinks.rs', """        self.put(garbage, AT_EXIT);""", """        self.put(garbage, RETIRED);"""),
 'R5 dispatch: the reclaimer entered after the queue lock is released': ('src/dispatch.rs', """                    self.reclaimer.enter();
                    let n = MutexGuard::unlocked(&mut st, || {
                        let n = self.deliver_taken();""", """                    let n = MutexGuard::unlocked(&mut st, || {
                        self.reclaimer.enter();
                        let n = self.deliver_taken();"""),
 'R6 close: a dropped Release job frees at once': ('src/dispatch.rs', """        if let Some(g) = self.garbage.take() {
            self.reclaimer.retire_at_exit(g);
        }""", """        drop(self.garbage.take());"""),
 'R7 release: freed at once although a delivery is under way': ('src/sinks.rs', """        if idle {
            drop(garbage);""", """        if true || idle {
            drop(garbage);"""),
 'R8 release: the deliveries under way counted before the queue lock is taken': [('src/dispatch.rs', """    pub(crate) fn release_later<G: Send + 'static>(&self, garbage: G, addr: usize) {
        let mut st = self.state.lock();""", """    pub(crate) fn release_later<G: Send + 'static>(&self, garbage: G, addr: usize) {
        let idle_before_lock = self.reclaimer.idle();
        let mut st = self.state.lock();"""), ('src/dispatch.rs', """        let idle = self.reclaimer.idle();
        drop(st);""", """        let idle = idle_before_lock;
        drop(st);""")],
 'R9 release: the deliveries under way counted with a relaxed load (the free not ordered after their reads)': ('src/sinks.rs', "self.state.load(Ordering::Acquire) < DELIVERY", "self.state.load(Ordering::Relaxed) < DELIVERY"),
 'L1 manager drop: the list handed to the queue without stopping the lock cell': ('src/session_manager.rs', """    lock.stop_announcing();
    release();""", """    release();"""),
 'L2 manager drop: the lock cell stops announcing only after the list is handed over': ('src/session_manager.rs', """    lock.stop_announcing();
    release();""", """    release();
    lock.stop_announcing();"""),
 'L3 lock cell: signed_out announces after stop_announcing': ('src/lock.rs', """    pub(crate) fn signed_out_held(&self, epoch: u64) -> Option<Held<'_>> {
        let mut d = self.data.lock();
        if d.epoch > epoch || !d.announcing {""", """    pub(crate) fn signed_out_held(&self, epoch: u64) -> Option<Held<'_>> {
        let mut d = self.data.lock();
        if d.epoch > epoch {"""),
 'L4 walk: the cells let go before the one push': ('src/session_manager.rs', """    if !jobs.0.is_empty() {
        queue.push_all(jobs.0);
    }
    drop(held);""", """    drop(held);
    if !jobs.0.is_empty() {
        queue.push_all(jobs.0);
    }"""),
}
only = sys.argv[1:]
for name, m in M.items():
    if only and not any(name.startswith(o) for o in only): continue
    mods = m if isinstance(m, list) else [m]
    saved = {}
    for f, a, b in mods:
        s = saved.get(f) or open(root+f).read()
        saved.setdefault(f, s)
        cur = open(root+f).read()
        assert a in cur, (name, a[:50])
        open(root+f,'w').write(cur.replace(a, b, 1))
    try:
        models = ["queue_two_producers_one_dispatcher", "queue_close_racing_dispatch", "queue_thread_wakes_for_push", "queue_close_wakes_waiters", "queue_nested_dispatch_and_second_thread", "sinks_close_racing_deliver", "sinks_unadvise_racing_deliver", "queue_release_waits_for_queued_and_taken_jobs", "queue_release_racing_close", "manager_release_racing_walk", "queue_release_inside_and_beside_delivery", "queue_release_job_dropped_by_close"]
        failed, why, errs, out_all = [], {}, [], ""
        for mdl in models:
            r = subprocess.run(f"RUST_BACKTRACE=0 timeout 600 bash scripts/loom.sh {mdl} --exact 2>&1", shell=True, cwd=root, capture_output=True, text=True)
            out = r.stdout; out_all += out
            errs += re.findall(r"^error(?:\[\w+\])?: (?!test failed).*$", out, re.M)
            if r.returncode != 0:
                failed.append(mdl)
                m = re.search(r"panicked at [^\n]*\n([^\n]*)", out)
                why[mdl] = (m.group(1) if m else "?")[:160]
        print(f"== {name}: caught by {failed} {errs[:2]}")
        for t, msg in why.items(): print(f"     {t}: {msg}")
        sys.stdout.flush()
    finally:
        for f, s in saved.items(): open(root+f,'w').write(s)
