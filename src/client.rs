//! The client: one signed-in identity attached to a service. It owns the event queue of its
//! managers and sessions, the table of live sessions, and the launcher.

use crate::dispatch::DispatchMode;
use crate::error::{
    Hr, Result, E_UNEXPECTED, MSGR_E_ALREADY_LOGGED_ON, MSGR_E_NOT_LOGGED_ON,
    MSGR_E_SERVER_SHUTDOWN,
};
use crate::launcher::{Launcher, ProcessLauncher};
use crate::lock::{Connection, LockCell};
use crate::locks::Mutex;
use crate::registry::{AppRegistry, RegistryListener};
use crate::service::{Delivery, Endpoint, Message, SendDone, Service};
use crate::session::{Host, Queue, Session, SessionCore};
use crate::session_manager::{
    walk_signed_in, walk_signed_out, ManagerCore, ManagerEvent, ManagerLink, SessionManager,
};
use crate::trace::trace;
use crate::types::{check_sign_in_name, Text};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Default)]
struct ClientState {
    signed_in: bool,
    /// Signed out by a lost connection, which the service is trying to restore.
    reconnecting: bool,
    /// Why the client was last signed out other than by the application (S_OK: never).
    sign_out_reason: Hr,
    shut_down: bool,
    destroyed: bool,
    /// The managers in creation order (see [`ManagerLink`]); closed and dropped ones are
    /// skipped by the walks and pruned from time to time.
    managers: Vec<ManagerLink>,
    /// `managers` is pruned of ended managers when a new one would make it this long (then
    /// twice the number left), so that adding N managers costs O(N) in all, not O(N^2).
    prune_managers_at: usize,
    /// Live (invited, not yet ended) sessions by SessionID.
    sessions: HashMap<Text, Session>,
    /// Launched process id -> the session whose acceptance launched it.
    launched: HashMap<u32, Weak<SessionCore>>,
}

pub(crate) struct ClientCore {
    service: Arc<dyn Service>,
    registry: Arc<AppRegistry>,
    /// The sign-in name as the service spells it.
    name: Mutex<Text>,
    /// Shared with the client's managers and sessions, which raise their events on it.
    queue: Arc<Queue>,
    state: Mutex<ClientState>,
    /// The current [`Connection`], packed (see [`Connection::pack`]): changed under `state`'s
    /// lock each time `signed_in` flips.
    connection: AtomicU64,
    launcher: Mutex<Arc<dyn Launcher>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    weak_self: Weak<ClientCore>,
}

/// Whether a client is signed in ([`Client::connection_state`]).
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Signed out: by the application, or by a lost connection the service does not
    /// restore.
    SignedOut = 0,
    /// Signed in.
    SignedIn = 1,
    /// Signed out by a lost connection; the service is signing the client in again, with
    /// growing pauses between attempts. When it gets in, the client is signed in as by
    /// [`Client::sign_in`] (the managers get OnLockEnable and OnLockStatusChanged).
    Reconnecting = 2,
}

/// A Messenger client: one signed-in user on one service.
#[derive(Clone)]
pub struct Client(pub(crate) Arc<ClientCore>);

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Client({:?})", self.sign_in_name())
    }
}

impl PartialEq for Client {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Client {
    /// Creates a client and signs `sign_in_name` in on `service`.
    /// E_INVALIDARG for an empty or over-long name; MSGR_E_ALREADY_LOGGED_ON when that name
    /// is signed in already.
    pub fn new(
        service: Arc<dyn Service>,
        sign_in_name: &str,
        mode: DispatchMode,
    ) -> Result<Client> {
        check_sign_in_name(sign_in_name)?;
        crate::trace::init_from_env();
        let registry = service.registry();
        let queue = Arc::new(Queue::with_owner(mode, sign_in_name.to_owned()));
        crate::trace::watch(Arc::downgrade(&queue) as Weak<dyn crate::trace::Stalled>);
        let core = Arc::new_cyclic(|weak| ClientCore {
            service,
            registry,
            name: Mutex::new(Text::new(sign_in_name).unwrap_or_else(|_| Text::empty())),
            queue,
            state: Mutex::new(ClientState::default()),
            connection: AtomicU64::new(0),
            launcher: Mutex::new(Arc::new(ProcessLauncher)),
            thread: Mutex::new(None),
            weak_self: weak.clone(),
        });
        core.sign_in()?;
        let listener: Weak<dyn RegistryListener> =
            Arc::downgrade(&core) as Weak<dyn RegistryListener>;
        core.registry.subscribe(listener);
        if mode == DispatchMode::Thread {
            let c = Arc::clone(&core);
            let handle = std::thread::Builder::new()
                .name("msgrpriv-dispatch".into())
                .spawn(move || {
                    c.queue.run_thread();
                })
                .map_err(|_| crate::error::E_OUTOFMEMORY)?;
            *core.thread.lock() = Some(handle);
        }
        Ok(Client(core))
    }

    /// The sign-in name as the service spells it.
    pub fn sign_in_name(&self) -> Text {
        self.0.name.lock().clone()
    }

    /// True while signed in.
    pub fn is_signed_in(&self) -> bool {
        self.0.state.lock().signed_in
    }

    /// Whether the client is signed in, reconnecting or signed out, and why it was last
    /// signed out other than by the application: S_OK when it never was,
    /// MSGR_E_DISCONNECTED for a lost connection, MSGR_E_ALREADY_LOGGED_ON when another
    /// sign-in of the same name replaced it (the service does not reconnect then),
    /// SR_AUTHENTICATION_FAILED or SR_NETWORK_CONFIG_FAILURE when reconnecting was refused
    /// (which ends the attempts). Signing in again does not clear the reason.
    pub fn connection_state(&self) -> (ConnectionState, Hr) {
        let st = self.0.state.lock();
        let state = if st.signed_in {
            ConnectionState::SignedIn
        } else if st.reconnecting {
            ConnectionState::Reconnecting
        } else {
            ConnectionState::SignedOut
        };
        (state, st.sign_out_reason)
    }

    /// The dispatch mode chosen at creation.
    pub fn dispatch_mode(&self) -> DispatchMode {
        self.0.queue.mode()
    }

    /// Signs in again after [`sign_out`](Self::sign_out). Every manager is locked again
    /// (OnLockEnable, OnLockStatusChanged). MSGR_E_ALREADY_LOGGED_ON when signed in;
    /// MSGR_E_SERVER_SHUTDOWN after shutdown.
    pub fn sign_in(&self) -> Result<()> {
        self.0.sign_in()
    }

    /// Signs out: every live session ends (SS_TERMINATED, OnTermination(SR_CONNECTION_FAILURE)
    /// on both sides) and every manager goes back to LOCK_NOTINITIALIZED.
    /// MSGR_E_NOT_LOGGED_ON when not signed in.
    pub fn sign_out(&self) -> Result<()> {
        self.0.sign_out()
    }

    /// Shuts the client down: signs out if needed, then OnAppShutdown is the last event of
    /// every manager. Later sign-ins and new managers give MSGR_E_SERVER_SHUTDOWN.
    pub fn shutdown(&self) -> Result<()> {
        self.0.shutdown()
    }

    /// Destroys the client: signs out, drops every queued event and stops its thread. Any
    /// later use of its managers and sessions finds them signed out. Idempotent.
    pub fn destroy(&self) {
        self.0.destroy()
    }

    /// Delivers queued events (manual mode): waits up to `timeout` for the first, then
    /// delivers all pending ones; returns how many ran. E_ILLEGAL_METHOD_CALL in thread
    /// mode (except from inside a callback on the client's own thread).
    pub fn dispatch(&self, timeout: Option<Duration>) -> Result<u32> {
        self.0.queue.dispatch(timeout)
    }

    /// A descriptor readable while events are pending (manual mode), owned by the client.
    pub fn event_fd(&self) -> Result<i32> {
        self.0.queue.event_fd()
    }

    /// Number of events waiting for delivery.
    pub fn pending_events(&self) -> usize {
        self.0.queue.pending()
    }

    /// Replaces the launcher used when an accepted invitation launches its application.
    pub fn set_launcher(&self, launcher: Arc<dyn Launcher>) {
        let old = std::mem::replace(&mut *self.0.launcher.lock(), launcher);
        drop(old);
    }

    /// Creates a session manager on this client.
    pub fn create_session_manager(&self) -> Result<SessionManager> {
        SessionManager::new(self)
    }

    /// The client a manager belongs to.
    fn of(m: &ManagerCore) -> Client {
        let any = Arc::clone(m.host()).as_any();
        Client(
            any.downcast::<ClientCore>()
                .expect("managers belong to clients"),
        )
    }

    /// Number of live (invited, not yet ended) sessions.
    pub fn live_sessions(&self) -> usize {
        self.0.state.lock().sessions.len()
    }
}

impl ClientCore {
    /// This client as its managers and sessions see it.
    fn host(&self) -> Arc<dyn Host> {
        self.weak_self.upgrade().expect("client alive while in use")
    }

    fn live_managers(&self) -> Vec<Arc<ManagerCore>> {
        self.live_managers_locked(&mut self.state.lock())
    }

    /// Flips `signed_in` (the caller holds the state lock) and starts the next connection
    /// epoch; `enforced` is whether the new connection enforces Lock and Key.
    fn set_signed_in(&self, st: &mut ClientState, signed_in: bool, enforced: bool) -> u64 {
        debug_assert_ne!(st.signed_in, signed_in);
        st.signed_in = signed_in;
        let next = Connection {
            epoch: self.connection().epoch + 1,
            enforced: enforced && signed_in,
        };
        self.connection.store(next.pack(), Ordering::Release);
        next.epoch
    }

    fn add_manager(&self, m: &Arc<ManagerCore>) -> Result<()> {
        let (signed_in, epoch) = {
            let mut st = self.state.lock();
            if st.shut_down || st.destroyed {
                return Err(MSGR_E_SERVER_SHUTDOWN);
            }
            if st.managers.len() >= st.prune_managers_at {
                st.managers.retain(|l| l.core.strong_count() > 0);
                st.prune_managers_at = (2 * st.managers.len()).max(16);
            }
            st.managers.push(ManagerLink::new(m));
            (st.signed_in, self.connection().epoch)
        };
        if signed_in {
            m.signed_in(self.service.lock_enforced(), epoch);
        }
        Ok(())
    }

    fn sign_in(&self) -> Result<()> {
        {
            let mut st = self.state.lock();
            if st.shut_down || st.destroyed {
                return Err(MSGR_E_SERVER_SHUTDOWN);
            }
            if st.signed_in {
                return Err(MSGR_E_ALREADY_LOGGED_ON);
            }
            // The application's sign-in replaces the service's attempts to restore a lost
            // connection (the service stops them).
            st.reconnecting = false;
        }
        let endpoint: Weak<dyn Endpoint> = self.weak_self.clone() as Weak<dyn Endpoint>;
        let name = self.name.lock().clone();
        let spelled = self
            .service
            .sign_in(name.as_str(), endpoint)
            .inspect_err(|hr| trace!(Warning, "{name}: sign-in refused: {hr:?}"))?;
        trace!(Info, "{spelled}: signed in");
        *self.name.lock() = spelled;
        if self.became_signed_in() {
            Ok(())
        } else {
            Err(MSGR_E_ALREADY_LOGGED_ON)
        }
    }

    /// The service let the client in: it is signed in, and its managers hear it (false:
    /// it was signed in already).
    fn became_signed_in(&self) -> bool {
        let enforced = self.service.lock_enforced();
        let mut st = self.state.lock();
        if st.signed_in {
            return false;
        }
        st.reconnecting = false;
        let epoch = self.set_signed_in(&mut st, true, enforced);
        // Under the state lock (the walk takes the managers' lock cells, holds them until it
        // has queued their events in one push, and runs no application code): no reference
        // count per manager, one queue lock per walk.
        st.managers.retain(|l| l.core.strong_count() > 0);
        walk_signed_in(&st.managers, &self.queue, enforced, epoch);
        true
    }

    fn sign_out(&self) -> Result<()> {
        self.signed_out(true)
    }

    /// Signs out: ends every live session (SR_CONNECTION_FAILURE) and sends the managers back
    /// to LOCK_NOTINITIALIZED. `notify`: tell the peers and the service (false when the
    /// connection to the service is gone already).
    fn signed_out(&self, notify: bool) -> Result<()> {
        let (sessions, epoch) = {
            let mut st = self.state.lock();
            if !st.signed_in {
                if notify && std::mem::take(&mut st.reconnecting) {
                    drop(st);
                    let me = self.name.lock().clone();
                    trace!(Info, "{me}: stops reconnecting");
                    let endpoint: Weak<dyn Endpoint> = self.weak_self.clone() as Weak<dyn Endpoint>;
                    self.service.stop_reconnecting(&me, &endpoint);
                }
                return Err(MSGR_E_NOT_LOGGED_ON);
            }
            let epoch = self.set_signed_in(&mut st, false, false);
            let sessions: Vec<Session> = st.sessions.drain().map(|(_, s)| s).collect();
            (sessions, epoch)
        };
        let me = self.name.lock().clone();
        if notify {
            trace!(
                Info,
                "{me}: signs out, {} live sessions end",
                sessions.len()
            );
        } else {
            trace!(
                Warning,
                "{me}: the connection to the service was lost; signed out, {} live sessions end",
                sessions.len()
            );
        }
        for s in &sessions {
            if let Some(peer) = s.disconnect() {
                if notify {
                    let msg = Message::PeerGone {
                        session_id: s.id().clone(),
                    };
                    self.service.send(&me, &peer, msg, SendDone::nobody());
                }
            }
        }
        drop(sessions);
        if notify {
            self.service.sign_out(&me);
        }
        // As in sign_in: the walk under the state lock.
        let mut st = self.state.lock();
        st.managers.retain(|l| l.core.strong_count() > 0);
        walk_signed_out(&st.managers, &self.queue, epoch);
        Ok(())
    }

    fn shutdown(&self) -> Result<()> {
        {
            let st = self.state.lock();
            if st.shut_down || st.destroyed {
                return Err(MSGR_E_SERVER_SHUTDOWN);
            }
        }
        let _ = self.sign_out();
        let managers = {
            let mut st = self.state.lock();
            st.shut_down = true;
            self.live_managers_locked(&mut st)
        };
        for m in managers {
            m.raise(ManagerEvent::AppShutdown);
        }
        Ok(())
    }

    /// The managers neither released nor closed, in creation order. A closed manager leaves
    /// the list once released (not at `close`, which would cost a search per close); one
    /// dropped here, under the lock, runs no application code: `close` already ended its
    /// registrations.
    fn live_managers_locked(&self, st: &mut ClientState) -> Vec<Arc<ManagerCore>> {
        st.managers.retain(|l| l.core.strong_count() > 0);
        st.managers
            .iter()
            .filter_map(|l| l.core.upgrade())
            .filter(|m| !m.is_closed())
            .collect()
    }

    fn destroy(&self) {
        {
            let mut st = self.state.lock();
            if st.destroyed {
                return;
            }
            st.shut_down = true;
        }
        let _ = self.sign_out();
        let (managers, launched) = {
            let mut st = self.state.lock();
            st.destroyed = true;
            (
                std::mem::take(&mut st.managers),
                std::mem::take(&mut st.launched),
            )
        };
        self.queue.close();
        drop((managers, launched));
        let handle = self.thread.lock().take();
        if let Some(h) = handle {
            if self.queue.on_own_thread() {
                drop(h); // destroyed from its own callback: the thread ends when it returns
            } else {
                let _ = h.join();
            }
        }
        let old = std::mem::replace(
            &mut *self.launcher.lock(),
            Arc::new(ProcessLauncher) as Arc<dyn Launcher>,
        );
        drop(old);
    }

    fn session(&self, id: &Text) -> Option<Session> {
        self.state.lock().sessions.get(id).cloned()
    }

    /// A new session for an invitation; one that reuses the SessionID of a session this
    /// client has is refused (OutOfOrder).
    fn receive_invitation(&self, from: &Text, msg: Message) -> Delivery {
        let Message::Invite {
            session_id,
            app_guid,
            app_name,
            app_url,
            app_data,
            address,
            timeout_ms,
        } = msg
        else {
            return Delivery::Taken;
        };
        let managers = self.live_managers();
        let open: Vec<_> = managers
            .iter()
            .filter(|m| m.lock().status().is_open())
            .collect();
        if open.is_empty() {
            let me = self.name.lock().clone();
            if managers.is_empty() {
                trace!(
                    Warning,
                    "{me}: invitation {session_id} from {from}: no session manager to tell (none is open); the inviter waits until its timeout"
                );
            } else {
                trace!(
                    Warning,
                    "{me}: invitation {session_id} from {from}: every session manager ({}) is locked (Lock and Key), so none is told; the inviter waits until its timeout",
                    managers.len()
                );
            }
        }
        let lock = open
            .first()
            .map(|m| Arc::clone(m.lock()))
            .unwrap_or_else(LockCell::new);
        let session = Session::new_invitee(
            &self.host(),
            &self.queue,
            lock,
            session_id,
            from.clone(),
            app_guid,
            app_name,
            app_url,
            app_data.clone(),
            address,
        );
        if self.add_session(&session).is_err() {
            trace!(
                Warning,
                "{}: invitation {} from {from} refused: it reuses the SessionID of a live session",
                *self.name.lock(),
                session.id()
            );
            return Delivery::OutOfOrder;
        }
        session.await_inviter(Duration::from_millis(timeout_ms));
        for m in open {
            m.raise(ManagerEvent::Invitation {
                session: session.clone(),
                app_data: app_data.clone(),
                handled: false,
            });
        }
        Delivery::Taken
    }
}

impl Host for ClientCore {
    fn service(&self) -> &Arc<dyn Service> {
        &self.service
    }

    fn registry(&self) -> &AppRegistry {
        &self.registry
    }

    fn sign_in_name(&self) -> Text {
        self.name.lock().clone()
    }

    fn is_signed_in(&self) -> bool {
        self.state.lock().signed_in
    }

    fn connection(&self) -> Connection {
        Connection::unpack(self.connection.load(Ordering::Acquire))
    }

    fn add_session(&self, s: &Session) -> Result<()> {
        let mut st = self.state.lock();
        if !st.signed_in {
            return Err(MSGR_E_NOT_LOGGED_ON);
        }
        // A SessionID names one live session: an invitation that reuses one (only a hostile
        // peer would) must not take the place of the session that has it.
        match st.sessions.entry(s.id().clone()) {
            std::collections::hash_map::Entry::Occupied(_) => Err(E_UNEXPECTED),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(s.clone());
                Ok(())
            }
        }
    }

    fn forget_session(&self, id: &Text) {
        let removed = self.state.lock().sessions.remove(id);
        drop(removed);
    }

    fn launcher(&self) -> Arc<dyn Launcher> {
        Arc::clone(&self.launcher.lock())
    }

    fn record_launch(&self, pid: u32, s: &Session) {
        let mut st = self.state.lock();
        st.launched.retain(|_, w| w.strong_count() > 0);
        st.launched.insert(pid, Arc::downgrade(&s.0));
    }

    fn launching_session(&self, pid: u32) -> Option<Session> {
        self.state.lock().launched.get(&pid)?.upgrade().map(Session)
    }

    fn as_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync> {
        self
    }
}

impl SessionManager {
    /// Creates a manager on `client`. When the client is signed in, OnLockEnable and
    /// OnLockStatusChanged are queued for it at once. MSGR_E_SERVER_SHUTDOWN after the
    /// client shut down.
    pub fn new(client: &Client) -> Result<SessionManager> {
        let host: Arc<dyn Host> = Arc::clone(&client.0) as Arc<dyn Host>;
        let core = ManagerCore::new(host, Arc::clone(&client.0.queue));
        client.0.add_manager(&core)?;
        Ok(SessionManager(core))
    }

    /// The client this manager belongs to.
    pub fn client(&self) -> Client {
        Client::of(&self.0)
    }
}

impl Endpoint for ClientCore {
    fn deliver(&self, from: &Text, msg: Message) -> Delivery {
        trace!(
            Info,
            "{}: received {} from {from}",
            *self.name.lock(),
            msg.describe()
        );
        if let Message::Invite { .. } = msg {
            if !self.is_signed_in() {
                trace!(
                    Warning,
                    "{}: invitation {} from {from} dropped: signed out",
                    *self.name.lock(),
                    msg.session_id()
                );
                return Delivery::Taken;
            }
            return self.receive_invitation(from, msg);
        }
        let id = msg.session_id().clone();
        let delivery = match self.session(&id) {
            Some(s) => s.receive(from, msg),
            None => Delivery::UnknownSession,
        };
        if delivery != Delivery::Taken {
            trace!(
                Warning,
                "{}: a step of session {id} from {from} refused: {delivery:?}",
                *self.name.lock()
            );
        }
        delivery
    }

    fn has_session(&self, from: &Text, session_id: &Text) -> bool {
        self.session(session_id)
            .is_some_and(|s| s.is_live_with(from))
    }

    fn connection_lost(&self, hr: Hr, retrying: bool) {
        {
            let mut st = self.state.lock();
            if !st.signed_in {
                return;
            }
            st.sign_out_reason = hr;
            st.reconnecting = retrying && !st.shut_down && !st.destroyed;
        }
        let _ = self.signed_out(false);
    }

    fn reconnected(&self) -> bool {
        {
            let st = self.state.lock();
            if !st.reconnecting || st.signed_in || st.shut_down || st.destroyed {
                return false;
            }
        }
        trace!(Info, "{}: signed in again", *self.name.lock());
        self.became_signed_in()
    }

    fn reconnect_failed(&self, hr: Hr) {
        let mut st = self.state.lock();
        if st.reconnecting {
            st.reconnecting = false;
            st.sign_out_reason = hr;
        }
    }
}

impl ClientCore {
    /// Managers still listening: none once OnAppShutdown was raised.
    fn listening_managers(&self) -> Vec<Arc<ManagerCore>> {
        let mut st = self.state.lock();
        if st.shut_down {
            return Vec::new();
        }
        self.live_managers_locked(&mut st)
    }
}

impl RegistryListener for ClientCore {
    fn app_registered(&self, guid: &str) {
        let Ok(g) = Text::new(guid) else { return };
        for m in self.listening_managers() {
            m.raise(ManagerEvent::AppRegistered { guid: g.clone() });
        }
    }

    fn app_unregistered(&self, guid: &str) {
        let Ok(g) = Text::new(guid) else { return };
        for m in self.listening_managers() {
            m.raise(ManagerEvent::AppUnregistered { guid: g.clone() });
        }
    }
}

impl Drop for ClientCore {
    fn drop(&mut self) {
        let st = self.state.get_mut();
        if st.signed_in {
            let name = self.name.get_mut().clone();
            self.service.sign_out(&name);
        }
    }
}

/// Clients are shared across threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Client>()
};
