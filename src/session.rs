//! The session (IMsgrSession + DMsgrSessionEvents): one invitation / peer-to-peer
//! application session between two users, and its state machine on either side.
//!
//! Every transition changes the state and queues its events under the session's lock, so
//! the events of one session are queued in the order of its transitions; messages to the
//! other side are sent after the lock is released. OnStateChanged comes first in a
//! transition; OnTermination is the last event of a session on each side, exactly once.

use crate::dispatch::{EventQueue, FollowUp, Job, SinksPtr};
use crate::error::*;
use crate::event::{SessionEvent, SessionEventKind};
use crate::launcher::{LaunchRequest, Launcher};
use crate::lock::{Connection, LockCell};
use crate::locks::{Mutex, MutexGuard};
use crate::registry::AppRegistry;
use crate::service::{Delivery, Message, SendDone, SendReport, Service, Undeliverable};
use crate::sinks::{Callback, Sinks};
use crate::timer::{Expiry, TimerId};
use crate::trace::trace;
use crate::types::{
    app_data as check_app_data, check_chars, check_sign_in_name, limits, new_session_id,
    normalize_guid,
    session_flags::{SF_INVITEE, SF_INVITER},
    SessionState, Text,
};
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The event queue of a client, whose jobs carry sessions.
pub(crate) type Queue = EventQueue<Session>;

/// What sessions and managers use of the client they belong to (implemented by the client).
/// The client's event queue is not here: sessions and managers hold it directly, so raising
/// an event costs no call through this trait.
pub(crate) trait Host: Send + Sync {
    /// The service the client is attached to.
    fn service(&self) -> &Arc<dyn Service>;
    /// The application registry of that service.
    fn registry(&self) -> &AppRegistry;
    /// The sign-in name as the service spells it.
    fn sign_in_name(&self) -> Text;
    /// True while signed in.
    fn is_signed_in(&self) -> bool;
    /// The current connection: its epoch and whether it enforces Lock and Key.
    fn connection(&self) -> Connection;
    /// Adds an invited session to the live table. MSGR_E_NOT_LOGGED_ON when signed out,
    /// E_UNEXPECTED when a live session already has its SessionID.
    fn add_session(&self, s: &Session) -> Result<()>;
    /// Removes an ended session from the live table.
    fn forget_session(&self, id: &Text);
    /// The launcher of accepted invitations' applications.
    fn launcher(&self) -> Arc<dyn Launcher>;
    /// Records that accepting `s` launched process `pid`.
    fn record_launch(&self, pid: u32, s: &Session);
    /// The session whose acceptance launched process `pid`.
    fn launching_session(&self, pid: u32) -> Option<Session>;
    /// The client itself, for the client's side to recover its own type.
    fn as_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync>;
}

/// How long after the inviter's deadline an invitee that heard nothing (no answer
/// acknowledged, no timeout) ends the invitation by itself.
pub const INVITEE_GRACE: Duration = Duration::from_secs(5);

pub(crate) struct SessionData {
    state: SessionState,
    app_guid: Option<Text>,
    /// Name and URL the inviter sent, for OnAppNotPresent.
    app_name_hint: Option<Text>,
    app_url_hint: Option<Text>,
    context_data: Option<Text>,
    local_address: Text,
    remote_address: Option<Text>,
    user: Option<Text>,
    sends: u32,
    invitation_handled: bool,
    /// OnTermination of a transition that still has a message to send: raised after the
    /// send, so that an OnSendError of that step comes before it.
    pending_termination: Option<SessionEvent>,
    /// True once OnTermination was queued: nothing is raised after it.
    terminated: bool,
    /// The session's deadline, when one runs (see [`Session::deadline`]).
    timer: Option<TimerId>,
    /// Context data the inviter sent while this invitee was still launching (SS_ACCEPTED):
    /// raised once it is connected, after OnReadyToLaunch and its OnStateChanged, so that
    /// the invitee's events come in one order whatever the network's timing.
    held_context: Vec<Text>,
    /// Handed to the event queue when the session is dropped or its application releases it
    /// (see [`SinksPtr`]): queued jobs point at it without holding the session.
    sinks: ManuallyDrop<Arc<Sinks<SessionEvent>>>,
}

/// The session's data, locked. Taking it marks the lock-free copy of the state busy
/// ([`BUSY`]); releasing it publishes the state there, as the last thing of the critical
/// section: a reader that sees a new state also finds the events of the transition queued,
/// as when it read the state under the lock.
struct Locked<'a> {
    data: MutexGuard<'a, SessionData>,
    mirror: &'a AtomicU8,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.mirror.store(self.data.state as u8, Ordering::Release);
    }
}

impl std::ops::Deref for Locked<'_> {
    type Target = SessionData;
    fn deref(&self) -> &SessionData {
        &self.data
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut SessionData {
        &mut self.data
    }
}

impl SessionCore {
    /// The state (see [`Session::state`]). While a critical section is under way it waits for
    /// it, as a read under the lock would (so a callback of an event raised in that section
    /// sees the state the section leaves, never the one before); otherwise it reads the copy
    /// published at the end of the last section, writing nothing: readers of one session on
    /// several threads share its cache line without contending for it.
    pub(crate) fn state(&self) -> SessionState {
        // An acquire: a copy stored at the end of a section (a release) brings the events
        // that section queued with it.
        let v = self.state.load(Ordering::Acquire);
        if v & BUSY != 0 {
            return self.data.lock().state;
        }
        SessionState::from_u8(v)
    }

    /// SF_INVITER or SF_INVITEE.
    pub(crate) fn flags(&self) -> u32 {
        self.flags
    }
}

/// Set in [`SessionCore::state`]'s copy while a critical section is under way.
const BUSY: u8 = 0x80;

pub(crate) struct SessionCore {
    host: Arc<dyn Host>,
    /// The client's event queue (the host's, held here so that raising needs no call).
    queue: Arc<Queue>,
    lock: Arc<LockCell>,
    id: Text,
    flags: u32,
    /// `data.state` as of the end of the last critical section, with [`BUSY`] set while one is
    /// under way (see [`Locked`]), so that [`Session::state`] reads it without the lock.
    state: AtomicU8,
    data: Mutex<SessionData>,
}

/// A session. Cloning gives another reference to the same session.
#[derive(Clone)]
pub struct Session(pub(crate) Arc<SessionCore>);

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session({}, {:?})", self.0.id, self.state())
    }
}

impl PartialEq for Session {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for Session {}

/// What a locked transition leaves to do once the lock is released: a message to the other
/// side, the step's OnSendError code (none for steps that have none: the timeout, a launch
/// failure's notice) and what the delivery report starts or stops.
struct Outgoing {
    msg: Message,
    failure: Option<Hr>,
    then: Then,
}

/// A step's delivery report, as a [`SendDone`] tag: the OnSendError code (bits 0-31, with
/// bit 32 set when there is one), what the report does (bits 33-34) and whether the step
/// ended the session (bit 35).
fn report_tag(failure: Option<Hr>, then: Then, ended: bool) -> u64 {
    let hr = failure.map_or(0, |hr| u64::from(hr.0 as u32) | 1 << 32);
    hr | (then as u64) << 33 | u64::from(ended) << 35
}

fn from_report_tag(tag: u64) -> (Option<Hr>, Then, bool) {
    let failure = (tag & 1 << 32 != 0).then_some(Hr(tag as u32 as i32));
    let then = match (tag >> 33) & 3 {
        1 => Then::AwaitAnswer,
        2 => Then::Acknowledge,
        _ => Then::Nothing,
    };
    (failure, then, tag & 1 << 35 != 0)
}

/// What a step's delivery report does besides OnSendError.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Then {
    Nothing = 0,
    /// The invitation went out (or could not): the inviter's deadline starts.
    AwaitAnswer = 1,
    /// The invitee's Accept: delivered, the invitee's deadline ends; not delivered, it
    /// stays, and the invitee ends with the invitation (SR_SESSION_TIMEOUT).
    Acknowledge = 2,
}

impl Outgoing {
    fn new(msg: Message, failure: Hr) -> Self {
        Outgoing {
            msg,
            failure: Some(failure),
            then: Then::Nothing,
        }
    }
}

/// A step of the state machine ([`Session::step`]): a call of the application, a message
/// from the other side, the outcome of a launch, or the session's deadline.
enum Step {
    /// Invite: `peer` is the invitee as the service spells it; the rest goes in the message.
    Invite {
        peer: Text,
        app_guid: Text,
        app_name: Text,
        app_url: Text,
        app_data: Option<Text>,
    },
    /// Accept; `present`: whether the application is registered here.
    Accept {
        app_data: Option<Text>,
        present: bool,
    },
    Decline {
        app_data: Option<Text>,
    },
    Cancel {
        hr: Hr,
        app_data: Option<Text>,
    },
    SendContextData {
        data: Text,
    },
    /// BeforeAppLaunch was delivered and the launch (if any) done: the process id, if one
    /// was started, or the launch's failure.
    Launched(Result<Option<u32>>),
    /// The session's deadline with this id is due.
    Deadline(TimerId),
}

/// What a step leaves to do once the lock is released: a message to send, and whether the
/// session ended (its OnTermination is pending).
struct After {
    out: Option<Outgoing>,
    ended: bool,
}

impl After {
    const NOTHING: After = After {
        out: None,
        ended: false,
    };
    const ENDED: After = After {
        out: None,
        ended: true,
    };

    fn send(out: Outgoing) -> After {
        After {
            out: Some(out),
            ended: false,
        }
    }

    fn end_sending(out: Outgoing) -> After {
        After {
            out: Some(out),
            ended: true,
        }
    }
}

impl Session {
    pub(crate) fn new_inviter(
        host: &Arc<dyn Host>,
        queue: &Arc<Queue>,
        lock: &Arc<LockCell>,
    ) -> Session {
        Session(Arc::new(SessionCore {
            host: Arc::clone(host),
            queue: Arc::clone(queue),
            lock: Arc::clone(lock),
            id: new_session_id(),
            flags: SF_INVITER,
            state: AtomicU8::new(SessionState::Ready as u8),
            data: Mutex::new(SessionData::new(SessionState::Ready, queue)),
        }))
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new_invitee(
        host: &Arc<dyn Host>,
        queue: &Arc<Queue>,
        lock: Arc<LockCell>,
        id: Text,
        inviter: Text,
        app_guid: Text,
        app_name: Text,
        app_url: Text,
        app_data: Option<Text>,
        inviter_address: Text,
    ) -> Session {
        let mut d = SessionData::new(SessionState::Invitation, queue);
        d.app_guid = Some(app_guid);
        d.app_name_hint = Some(app_name);
        d.app_url_hint = Some(app_url);
        d.context_data = app_data;
        d.user = Some(inviter);
        d.remote_address = Some(inviter_address);
        Session(Arc::new(SessionCore {
            host: Arc::clone(host),
            queue: Arc::clone(queue),
            lock,
            id,
            flags: SF_INVITEE,
            state: AtomicU8::new(d.state as u8),
            data: Mutex::new(d),
        }))
    }

    fn lock(&self) -> Locked<'_> {
        let data = self.0.data.lock();
        // Before anything of the section: a job it queues is taken after this store, so a
        // callback reading the state finds the mark (or the copy the section ends with).
        self.0
            .state
            .store(data.state as u8 | BUSY, Ordering::Relaxed);
        Locked {
            data,
            mirror: &self.0.state,
        }
    }

    /// Queues events for this session, in order, while its lock is held.
    fn raise(&self, d: &SessionData, events: impl IntoIterator<Item = SessionEvent>) {
        self.0
            .queue
            .push_all(events.into_iter().map(|event| Job::Session {
                session:
                    matches!(event, SessionEvent::BeforeAppLaunch { .. }).then(|| self.clone()),
                sinks: SinksPtr::new(&d.sinks),
                event,
            }));
    }

    /// Moves to `to` and queues OnStateChanged(previous, to) followed by `then`.
    fn transition(
        &self,
        d: &mut SessionData,
        to: SessionState,
        then: impl IntoIterator<Item = SessionEvent>,
    ) {
        let previous = d.state;
        d.state = to;
        self.raise(
            d,
            std::iter::once(SessionEvent::StateChanged {
                previous,
                current: to,
            })
            .chain(then),
        );
    }

    /// Ends the session (terminal `to`) with the given events; OnTermination is kept
    /// pending until [`after_end`](Self::after_end), once the step's message was sent. The
    /// session's deadline ends with it.
    fn end(
        &self,
        d: &mut SessionData,
        to: SessionState,
        before: impl IntoIterator<Item = SessionEvent>,
        hr: Hr,
        app_data: Option<Text>,
    ) {
        debug_assert!(to.is_terminal());
        d.held_context.clear();
        self.cancel_deadline(d);
        self.transition(d, to, before);
        d.pending_termination = Some(SessionEvent::Termination { hr, app_data });
    }

    /// Queues the pending OnTermination (the session's last event) and forgets the session.
    fn after_end(&self) {
        // Out of the live table first: by the time OnTermination can be delivered, the
        // client no longer counts the session.
        self.0.host.forget_session(&self.0.id);
        let mut d = self.lock();
        self.cancel_deadline(&mut d);
        if let Some(t) = d.pending_termination.take() {
            d.terminated = true;
            self.raise(&d, [t]);
        }
    }

    /// Runs the session's deadline `delay` from now (replacing any other).
    fn start_deadline(&self, d: &mut SessionData, delay: Duration) {
        self.cancel_deadline(d);
        let target = Arc::downgrade(&self.0) as std::sync::Weak<dyn Expiry>;
        d.timer = Some(self.0.host.service().timers().schedule(delay, target));
    }

    fn cancel_deadline(&self, d: &mut SessionData) {
        if let Some(id) = d.timer.take() {
            self.0.host.service().timers().cancel(id);
        }
    }

    /// What a locked transition left to do: sends its message, if any, and finishes the
    /// session when it ended. OnTermination waits for the message's delivery report, so
    /// that the step's OnSendError comes before it; when the report does not come back
    /// before the send returns (a network service), the wait is bounded by the invitation
    /// timeout.
    fn finish(&self, out: Option<Outgoing>, ended: bool) {
        let Some(out) = out else {
            if ended {
                self.after_end();
            }
            return;
        };
        let (me, peer) = {
            let d = self.lock();
            (self.0.host.sign_in_name(), d.user.clone())
        };
        let Some(peer) = peer else {
            self.sent(out.failure, out.then, ended, Ok(()));
            return;
        };
        if ended && out.failure.is_none() && out.then == Then::Nothing {
            // Nothing to report: the end comes at once, the peer is told after it.
            self.after_end();
            trace!(Info, "{me}: sends {} to {peer}", out.msg.describe());
            self.0
                .host
                .service()
                .send(&me, &peer, out.msg, SendDone::nobody());
            return;
        }
        let tag = report_tag(out.failure, out.then, ended);
        let to = Arc::clone(&self.0) as Arc<dyn SendReport>;
        trace!(Info, "{me}: sends {} to {peer}", out.msg.describe());
        self.0
            .host
            .service()
            .send(&me, &peer, out.msg, SendDone::new(to, tag));
        if ended {
            let mut d = self.lock();
            if d.pending_termination.is_some() && d.timer.is_none() {
                let bound = self.0.host.service().invitation_timeout();
                self.start_deadline(&mut d, bound);
            }
        }
    }

    /// A step's delivery report: OnSendError when it was not delivered, then what the step
    /// starts or stops, then the end of the session when the step ended it.
    fn sent(
        &self,
        failure: Option<Hr>,
        then: Then,
        ended: bool,
        r: std::result::Result<(), Undeliverable>,
    ) {
        if r.is_err() {
            trace!(
                Warning,
                "{}: a message of session {} was not delivered{}",
                self.0.host.sign_in_name(),
                self.0.id,
                match failure {
                    Some(hr) => format!(" (OnSendError({hr:?}))"),
                    None => String::new(),
                }
            );
        }
        // Delivered, and nothing to start or stop: the common case takes no lock.
        if r.is_err() || then != Then::Nothing {
            let mut d = self.lock();
            if let (Err(Undeliverable), Some(hr)) = (r, failure) {
                if !d.terminated {
                    self.raise(&d, [SessionEvent::SendError { hr }]);
                }
            }
            match then {
                Then::Nothing => {}
                Then::AwaitAnswer => {
                    if d.state == SessionState::Invitation && d.timer.is_none() {
                        let timeout = self.0.host.service().invitation_timeout();
                        self.start_deadline(&mut d, timeout);
                    }
                }
                Then::Acknowledge => {
                    if r.is_ok() && !d.state.is_terminal() {
                        self.cancel_deadline(&mut d);
                    }
                }
            }
        }
        if ended {
            self.after_end();
        }
    }

    /// The session's deadline `id` is due (see [`deadline_due`](Self::deadline_due)).
    fn deadline(&self, id: TimerId) {
        let _ = self.step(Step::Deadline(id));
    }

    /// The manager's Lock and Key status lets gated calls through (see [`LockCell::gate`]).
    fn gate(&self) -> Result<()> {
        self.0.lock.gate(self.0.host.connection())
    }

    fn is_inviter(&self) -> bool {
        self.0.flags & SF_INVITER != 0
    }

    // ---- properties ----

    /// SessionID: `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}`, shared by both sides.
    pub fn id(&self) -> &Text {
        &self.0.id
    }

    /// State. Lock-free unless a transition is under way (see `SessionCore::state`).
    pub fn state(&self) -> SessionState {
        self.0.state()
    }

    /// Flags: SF_INVITER or SF_INVITEE.
    pub fn flags(&self) -> u32 {
        self.0.flags()
    }

    /// Application: the GUID. SR_APP_NOT_SPECIFIED when none is set.
    pub fn application(&self) -> Result<Text> {
        self.lock().app_guid.clone().ok_or(SR_APP_NOT_SPECIFIED)
    }

    /// Sets Application; only in SS_READY (SR_SESSION_NOT_READY), only a GUID registered
    /// with the client's registry (SR_APP_NOT_REGISTERED), E_INVALIDARG for a malformed GUID.
    pub fn set_application(&self, guid: &str) -> Result<()> {
        self.gate()?;
        let g = normalize_guid(guid)?;
        if self.state() != SessionState::Ready {
            return Err(SR_SESSION_NOT_READY);
        }
        if !self.0.host.registry().contains(&g) {
            return Err(SR_APP_NOT_REGISTERED);
        }
        let mut d = self.lock();
        if d.state != SessionState::Ready {
            return Err(SR_SESSION_NOT_READY);
        }
        d.app_guid = Some(Text::new(&g)?);
        Ok(())
    }

    fn app_field(&self, pick: impl Fn(&crate::registry::AppEntry) -> &str) -> Result<Text> {
        let guid = self.lock().app_guid.clone().ok_or(SR_APP_NOT_SPECIFIED)?;
        self.0
            .host
            .registry()
            .with(guid.as_str(), |e| Text::new(pick(e)))
            .unwrap_or_else(|| Ok(Text::empty()))
    }

    /// ApplicationName, from the registry (empty when the application is not there).
    /// SR_APP_NOT_SPECIFIED when no application is set.
    pub fn application_name(&self) -> Result<Text> {
        self.app_field(|e| &e.name)
    }

    /// ApplicationURL, from the registry. SR_APP_NOT_SPECIFIED when no application is set.
    pub fn application_url(&self) -> Result<Text> {
        self.app_field(|e| &e.url)
    }

    /// ContextData: the last application data received from the other side (empty when
    /// none yet).
    pub fn context_data(&self) -> Text {
        self.lock().context_data.clone().unwrap_or_else(Text::empty)
    }

    /// LocalAddress: a stored value handed to the other side with Invite or Accept.
    pub fn local_address(&self) -> Text {
        self.lock().local_address.clone()
    }

    /// Sets LocalAddress: at most 30 characters (E_INVALIDARG).
    pub fn set_local_address(&self, address: &str) -> Result<()> {
        self.gate()?;
        check_chars(address, limits::LOCAL_ADDRESS_CHARS, E_INVALIDARG)?;
        let t = Text::new(address)?;
        self.lock().local_address = t;
        Ok(())
    }

    /// RemoteAddress: the other side's LocalAddress, once SS_CONNECTED; None (S_FALSE)
    /// before.
    pub fn remote_address(&self) -> Option<Text> {
        let d = self.lock();
        if d.state == SessionState::Connected {
            d.remote_address.clone()
        } else {
            None
        }
    }

    /// User: the other party's sign-in name. SR_NO_USER_INVITED when nobody was invited.
    pub fn user(&self) -> Result<Text> {
        self.lock().user.clone().ok_or(SR_NO_USER_INVITED)
    }

    /// Whether a manager set `handled` in OnInvitation (invitee side).
    pub fn invitation_handled(&self) -> bool {
        self.lock().invitation_handled
    }

    // ---- registrations ----

    /// Registers a callback for one event kind; returns its cookie.
    pub fn advise(
        &self,
        kind: SessionEventKind,
        callback: impl Fn(&mut SessionEvent) + Send + Sync + 'static,
    ) -> Result<u32> {
        self.advise_callback(kind, Callback::new(callback))
    }

    /// [`advise`](Self::advise) with a callback already wrapped (dropped on failure).
    pub fn advise_callback(
        &self,
        kind: SessionEventKind,
        callback: Callback<SessionEvent>,
    ) -> Result<u32> {
        let sinks = Arc::clone(&self.lock().sinks);
        sinks.advise(kind as u8, callback)
    }

    /// Ends a registration. E_INVALIDARG for an unknown cookie.
    pub fn unadvise(&self, cookie: u32) -> Result<()> {
        let sinks = Arc::clone(&self.lock().sinks);
        sinks.unadvise(cookie)
    }

    /// Ends every registration and drops the events already queued for them: the
    /// application's last reference is gone. The session itself goes on until it ends.
    pub fn detach(&self) {
        let old = {
            let mut d = self.lock();
            ManuallyDrop::into_inner(std::mem::replace(
                &mut d.sinks,
                ManuallyDrop::new(Arc::new(Sinks::new(self.0.queue.reclaimer().clone()))),
            ))
        };
        old.close();
        // Drops the events queued for it; jobs taken before the replacement (and launch
        // decisions) still point at the old list, which waits for them.
        self.0.queue.release_sinks(old);
    }

    // ---- methods ----

    /// Invite(user, app data): SR_APP_NOT_SPECIFIED without an application,
    /// SR_SESSION_NOT_READY unless SS_READY, SR_INVITED_SELF for oneself,
    /// MSGR_E_NOT_LOGGED_ON when either side is not signed in, E_INVALIDARG for a bad name
    /// or app data over 512 bytes. Moves to SS_INVITATION.
    pub fn invite(&self, user: &str, app_data: Option<&str>) -> Result<()> {
        self.gate()?;
        check_sign_in_name(user)?;
        let app_data = check_app_data(app_data)?;
        let host = &self.0.host;
        let guid = {
            let d = self.lock();
            let guid = d.app_guid.clone().ok_or(SR_APP_NOT_SPECIFIED)?;
            if d.state != SessionState::Ready {
                return Err(SR_SESSION_NOT_READY);
            }
            guid
        };
        // Lookups outside the session's lock: the registry may wait for another process,
        // and a network service's presence is its own business.
        let me = host.sign_in_name();
        if host.service().same_user(me.as_str(), user) {
            return Err(SR_INVITED_SELF);
        }
        if !host.is_signed_in() {
            return Err(MSGR_E_NOT_LOGGED_ON);
        }
        let peer = host.service().online(user).ok_or(MSGR_E_NOT_LOGGED_ON)?;
        let (name, url) = host
            .registry()
            .with(guid.as_str(), |e| (Text::new(&e.name), Text::new(&e.url)))
            .unwrap_or((Ok(Text::empty()), Ok(Text::empty())));
        let (app_name, app_url) = (name?, url?);
        self.step(Step::Invite {
            peer,
            app_guid: guid,
            app_name,
            app_url,
            app_data,
        })
    }

    fn check_answer(&self, d: &SessionData) -> Result<()> {
        if self.is_inviter() {
            return Err(SR_NOT_INVITEE);
        }
        if d.state != SessionState::Invitation {
            return Err(SR_SESSION_STATE_INVALID);
        }
        Ok(())
    }

    /// Accept(app data): invitee only (SR_NOT_INVITEE), in SS_INVITATION only
    /// (SR_SESSION_STATE_INVALID). When the application is not registered here the session
    /// ends declined with SR_APP_NOT_REGISTERED (OnAppNotPresent first).
    pub fn accept(&self, app_data: Option<&str>) -> Result<()> {
        self.gate()?;
        let app_data = check_app_data(app_data)?;
        // An invitee's application never changes; look it up outside the session's lock.
        let guid = self.lock().app_guid.clone().unwrap_or_else(Text::empty);
        let present = self.0.host.registry().contains(guid.as_str());
        self.step(Step::Accept { app_data, present })
    }

    /// Decline(app data): same rules as Accept. Both sides end in SS_DECLINED with
    /// OnTermination(SR_INVITATION_DECLINED, data).
    pub fn decline(&self, app_data: Option<&str>) -> Result<()> {
        self.gate()?;
        let app_data = check_app_data(app_data)?;
        self.step(Step::Decline { app_data })
    }

    /// Cancel(hr, app data): ends the invitation or the session; `hr` is handed to the other
    /// side. In SS_READY it ends with SR_CANCEL_BEFORE_CONNECT and nothing is sent.
    /// SR_SESSION_STATE_INVALID once the session has ended.
    pub fn cancel(&self, hr: Hr, app_data: Option<&str>) -> Result<()> {
        self.gate()?;
        let app_data = check_app_data(app_data)?;
        self.step(Step::Cancel { hr, app_data })
    }

    /// SendContextData(data): at most 300 characters and five sends per side
    /// (SR_CONTEXT_DATA_OVER_LIMIT); SR_NOT_VALID_FOR_APP_INVITE before the invitation was
    /// accepted; SR_SESSION_STATE_INVALID once ended.
    pub fn send_context_data(&self, data: &str) -> Result<()> {
        self.gate()?;
        check_chars(data, limits::CONTEXT_DATA_CHARS, SR_CONTEXT_DATA_OVER_LIMIT)?;
        let data = Text::new(data)?;
        self.step(Step::SendContextData { data })
    }

    // ---- the other side, the service and the dispatcher ----

    /// A message about this session from the other side (or the service).
    pub(crate) fn receive(&self, from: &Text, msg: Message) -> Delivery {
        let (After { out, ended }, delivery) = {
            let mut d = self.lock();
            self.received(&mut d, from, msg)
        };
        self.finish(out, ended);
        delivery
    }

    /// Whether the session is live with `from` as its peer.
    pub(crate) fn is_live_with(&self, from: &Text) -> bool {
        let d = self.lock();
        self.live_with(&d, from)
    }

    fn live_with(&self, d: &SessionData, from: &Text) -> bool {
        !d.state.is_terminal()
            && d.user.as_ref().is_some_and(|peer| {
                self.0
                    .host
                    .service()
                    .same_user(peer.as_str(), from.as_str())
            })
    }

    /// Our client signs out: the session ends (SR_CONNECTION_FAILURE). Returns the peer to
    /// tell, when the session was live.
    pub(crate) fn disconnect(&self) -> Option<Text> {
        let mut d = self.lock();
        if d.state.is_terminal() || d.state == SessionState::Ready {
            return None;
        }
        self.end(
            &mut d,
            SessionState::Terminated,
            [],
            SR_CONNECTION_FAILURE,
            None,
        );
        if let Some(t) = d.pending_termination.take() {
            d.terminated = true;
            self.raise(&d, [t]);
        }
        d.user.clone()
    }

    /// Launches the application (unless `enable` is false or there is no path), then
    /// OnReadyToLaunch and SS_CONNECTED; a failed launch ends the session.
    fn launch(&self, enable: bool) {
        let (guid, id) = {
            let d = self.lock();
            if d.state != SessionState::Accepted {
                return;
            }
            (
                d.app_guid.clone().unwrap_or_else(Text::empty),
                self.0.id.clone(),
            )
        };
        let path = if enable {
            self.0
                .host
                .registry()
                .with(guid.as_str(), |e| e.path.clone())
        } else {
            None
        };
        let launched = match path.filter(|p| !p.is_empty()) {
            None => Ok(None),
            Some(path) => {
                let launcher = self.0.host.launcher();
                let req = LaunchRequest {
                    path: &path,
                    session_id: id.as_str(),
                    app_guid: guid.as_str(),
                };
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    launcher.launch(&req)
                }))
                .unwrap_or(Err(E_UNEXPECTED));
                drop(launcher);
                r.map(Some)
            }
        };
        let _ = self.step(Step::Launched(launched));
    }

    // ---- the transition function ----

    /// Applies `step` under the session's lock (the state changes and its events are
    /// queued there), then, with the lock released, sends the step's message and finishes
    /// the session when the step ended it (see [`finish`](Self::finish)). Every change of
    /// state but a sign-out's ([`disconnect`](Self::disconnect)) goes through here. An
    /// error leaves the session as it was.
    fn step(&self, step: Step) -> Result<()> {
        let After { out, ended } = {
            let mut d = self.lock();
            self.apply(&mut d, step)?
        };
        self.finish(out, ended);
        Ok(())
    }

    /// The state machine: `step` applied to the locked data `d`.
    fn apply(&self, d: &mut SessionData, step: Step) -> Result<After> {
        let id = || self.0.id.clone();
        match step {
            Step::Invite {
                peer,
                app_guid,
                app_name,
                app_url,
                app_data,
            } => {
                if d.state != SessionState::Ready || d.app_guid.as_ref() != Some(&app_guid) {
                    return Err(SR_SESSION_NOT_READY);
                }
                self.0.host.add_session(self)?;
                d.user = Some(peer);
                self.transition(d, SessionState::Invitation, []);
                let timeout = self.0.host.service().invitation_timeout();
                Ok(After::send(Outgoing {
                    msg: Message::Invite {
                        session_id: id(),
                        app_guid,
                        app_name,
                        app_url,
                        app_data,
                        address: d.local_address.clone(),
                        timeout_ms: timeout.as_millis().min(u64::MAX as u128) as u64,
                    },
                    failure: Some(SR_INVITATION_SEND_FAILURE),
                    then: Then::AwaitAnswer,
                }))
            }
            Step::Accept { app_data, present } => {
                self.check_answer(d)?;
                if !present {
                    self.cancel_deadline(d);
                    let name = d.app_name_hint.clone().unwrap_or_else(Text::empty);
                    let url = d.app_url_hint.clone().unwrap_or_else(Text::empty);
                    let previous = d.state;
                    d.state = SessionState::Declined;
                    self.raise(
                        d,
                        [
                            SessionEvent::AppNotPresent { name, url },
                            SessionEvent::StateChanged {
                                previous,
                                current: SessionState::Declined,
                            },
                        ],
                    );
                    d.pending_termination = Some(SessionEvent::Termination {
                        hr: SR_APP_NOT_REGISTERED,
                        app_data: None,
                    });
                    let msg = Message::Decline {
                        session_id: id(),
                        app_data: None,
                        not_present: true,
                    };
                    return Ok(After::end_sending(Outgoing::new(
                        msg,
                        SR_DECLINE_SEND_FAILURE,
                    )));
                }
                self.transition(
                    d,
                    SessionState::Accepted,
                    [SessionEvent::BeforeAppLaunch { enable: true }],
                );
                Ok(After::send(Outgoing {
                    msg: Message::Accept {
                        session_id: id(),
                        app_data,
                        address: d.local_address.clone(),
                    },
                    failure: Some(SR_ACCEPT_SEND_FAILURE),
                    then: Then::Acknowledge,
                }))
            }
            Step::Decline { app_data } => {
                self.check_answer(d)?;
                self.end(
                    d,
                    SessionState::Declined,
                    [],
                    SR_INVITATION_DECLINED,
                    app_data.clone(),
                );
                let msg = Message::Decline {
                    session_id: id(),
                    app_data,
                    not_present: false,
                };
                Ok(After::end_sending(Outgoing::new(
                    msg,
                    SR_DECLINE_SEND_FAILURE,
                )))
            }
            Step::Cancel { hr, app_data } => match d.state {
                s if s.is_terminal() => Err(SR_SESSION_STATE_INVALID),
                SessionState::Ready | SessionState::Unknown => {
                    self.end(
                        d,
                        SessionState::Cancelled,
                        [],
                        SR_CANCEL_BEFORE_CONNECT,
                        app_data,
                    );
                    Ok(After::ENDED)
                }
                _ => {
                    self.end(
                        d,
                        SessionState::Cancelled,
                        [],
                        SR_SESSION_CANCELLED_LOCAL,
                        app_data.clone(),
                    );
                    let msg = Message::Cancel {
                        session_id: id(),
                        hr,
                        app_data,
                    };
                    Ok(After::end_sending(Outgoing::new(
                        msg,
                        SR_CANCEL_SEND_FAILURE,
                    )))
                }
            },
            Step::SendContextData { data } => {
                match d.state {
                    SessionState::Accepted | SessionState::Connected => {}
                    s if s.is_terminal() => return Err(SR_SESSION_STATE_INVALID),
                    _ => return Err(SR_NOT_VALID_FOR_APP_INVITE),
                }
                if d.sends >= limits::CONTEXT_DATA_SENDS {
                    return Err(SR_CONTEXT_DATA_OVER_LIMIT);
                }
                d.sends += 1;
                let msg = Message::ContextData {
                    session_id: id(),
                    data,
                };
                Ok(After::send(Outgoing::new(
                    msg,
                    SR_CONTEXT_DATA_SEND_FAILURE,
                )))
            }
            Step::Launched(launched) => {
                if d.state != SessionState::Accepted {
                    return Ok(After::NOTHING);
                }
                match launched {
                    Ok(pid) => {
                        if let Some(pid) = pid {
                            self.0.host.record_launch(pid, self);
                        }
                        self.raise(d, [SessionEvent::ReadyToLaunch]);
                        self.transition(d, SessionState::Connected, []);
                        for data in std::mem::take(&mut d.held_context) {
                            d.context_data = Some(data.clone());
                            self.raise(d, [SessionEvent::ContextData { data }]);
                        }
                        Ok(After::NOTHING)
                    }
                    Err(_) => {
                        self.end(
                            d,
                            SessionState::Terminated,
                            [],
                            SR_APPLICATION_LAUNCH_FAILED,
                            None,
                        );
                        let msg = Message::LaunchFailed { session_id: id() };
                        Ok(After::end_sending(Outgoing::new(
                            msg,
                            SR_SESSION_PROTOCOL_ERROR,
                        )))
                    }
                }
            }
            Step::Deadline(timer) => Ok(self.deadline_due(d, timer)),
        }
    }

    /// A message from `from` about this session, applied to the locked data `d`: one from
    /// anyone but the session's peer, or about an ended session, or that the session's
    /// state does not expect, changes nothing (the [`Delivery`] says which).
    fn received(&self, d: &mut SessionData, from: &Text, msg: Message) -> (After, Delivery) {
        const REFUSED: (After, Delivery) = (After::NOTHING, Delivery::OutOfOrder);
        if !self.live_with(d, from) {
            return (After::NOTHING, Delivery::UnknownSession);
        }
        let (ending, hr, app_data) = match msg {
            Message::Accept {
                app_data, address, ..
            } => {
                if d.state != SessionState::Invitation || !self.is_inviter() {
                    return REFUSED;
                }
                if app_data.is_some() {
                    d.context_data = app_data.clone();
                }
                d.remote_address = Some(address);
                self.cancel_deadline(d);
                self.transition(
                    d,
                    SessionState::Accepted,
                    [
                        SessionEvent::Accepted { app_data },
                        SessionEvent::ReadyToLaunch,
                    ],
                );
                self.transition(d, SessionState::Connected, []);
                return (After::NOTHING, Delivery::Taken);
            }
            Message::ContextData { data, .. } => {
                if !matches!(d.state, SessionState::Accepted | SessionState::Connected) {
                    return REFUSED;
                }
                if d.state == SessionState::Accepted {
                    // Only an invitee waits in SS_ACCEPTED (for its launch); the peer sends
                    // five at most.
                    if d.held_context.len() >= limits::CONTEXT_DATA_SENDS as usize {
                        return REFUSED;
                    }
                    d.held_context.push(data);
                    return (After::NOTHING, Delivery::Taken);
                }
                d.context_data = Some(data.clone());
                self.raise(d, [SessionEvent::ContextData { data }]);
                return (After::NOTHING, Delivery::Taken);
            }
            Message::Invite { .. } => return REFUSED,
            Message::Decline {
                app_data,
                not_present,
                ..
            } => {
                if d.state != SessionState::Invitation || !self.is_inviter() {
                    return REFUSED;
                }
                let hr = if not_present {
                    SR_APP_NOT_REGISTERED
                } else {
                    SR_INVITATION_DECLINED
                };
                let event = SessionEvent::Declined {
                    app_data: app_data.clone(),
                };
                ((SessionState::Declined, Some(event)), hr, app_data)
            }
            Message::Cancel { hr, app_data, .. } => {
                let event = SessionEvent::Cancelled {
                    app_data: app_data.clone(),
                };
                ((SessionState::Cancelled, Some(event)), hr, app_data)
            }
            Message::LaunchFailed { .. } => (
                (SessionState::Terminated, None),
                SR_APPLICATION_LAUNCH_FAILED,
                None,
            ),
            Message::PeerGone { .. } => (
                (SessionState::Terminated, None),
                SR_CONNECTION_FAILURE,
                None,
            ),
            Message::Timeout { .. } => ((SessionState::Terminated, None), SR_SESSION_TIMEOUT, None),
            Message::Refused { hr, .. } => {
                if d.state != SessionState::Invitation || !self.is_inviter() {
                    return REFUSED;
                }
                let event = SessionEvent::Declined { app_data: None };
                ((SessionState::Declined, Some(event)), hr, None)
            }
        };
        if app_data.is_some() {
            d.context_data = app_data.clone();
        }
        let (to, before) = ending;
        self.end(d, to, before, hr, app_data);
        (After::ENDED, Delivery::Taken)
    }

    /// [`apply`](Self::apply) of the session's deadline `timer`: an inviter still waiting for
    /// an answer ends with SR_SESSION_TIMEOUT and tells the invitee; an invitee that heard
    /// neither that nor an acknowledgement of its Accept ends the same way on its own; a
    /// session whose last step's delivery report never came finishes.
    fn deadline_due(&self, d: &mut SessionData, timer: TimerId) -> After {
        if d.timer != Some(timer) {
            return After::NOTHING;
        }
        d.timer = None;
        match d.state {
            s if s.is_terminal() => After {
                out: None,
                ended: d.pending_termination.is_some(),
            },
            SessionState::Invitation | SessionState::Accepted | SessionState::Connected => {
                // The other side ends the same way when this reaches it: an invitee told by
                // its inviter, or an inviter that took an Accept whose acknowledgement was
                // lost and is connected, told by its invitee.
                self.end(d, SessionState::Terminated, [], SR_SESSION_TIMEOUT, None);
                let msg = Message::Timeout {
                    session_id: self.0.id.clone(),
                };
                After::end_sending(Outgoing {
                    msg,
                    failure: None,
                    then: Then::Nothing,
                })
            }
            _ => After::NOTHING,
        }
    }

    /// An invitation arrived for this (invitee) session: it waits for the inviter's
    /// answer-or-timeout at most `timeout` plus [`INVITEE_GRACE`].
    pub(crate) fn await_inviter(&self, timeout: Duration) {
        let mut d = self.lock();
        if d.state == SessionState::Invitation {
            self.start_deadline(&mut d, timeout.saturating_add(INVITEE_GRACE));
        }
    }
}

impl FollowUp for Session {
    fn invitation_handled(&self, handled: bool) {
        if handled {
            self.lock().invitation_handled = true;
        }
    }

    /// BeforeAppLaunch was delivered: launch (unless disabled or there is no path), then
    /// OnReadyToLaunch and SS_CONNECTED; a failed launch ends the session.
    fn launch_decided(&self, enable: bool) {
        self.launch(enable);
    }
}

// A job is one cache line at most (see `Job`).
#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<Job<Session>>() <= 64);

impl SendReport for SessionCore {
    fn sent(self: Arc<Self>, tag: u64, result: std::result::Result<(), Undeliverable>) {
        let (failure, then, ended) = from_report_tag(tag);
        Session(self).sent(failure, then, ended, result);
    }
}

impl Expiry for SessionCore {
    fn expired(self: Arc<Self>, id: TimerId) {
        Session(self).deadline(id);
    }
}

impl SessionData {
    fn new(state: SessionState, queue: &Queue) -> Self {
        SessionData {
            state,
            app_guid: None,
            app_name_hint: None,
            app_url_hint: None,
            context_data: None,
            local_address: Text::empty(),
            remote_address: None,
            user: None,
            sends: 0,
            invitation_handled: false,
            pending_termination: None,
            terminated: false,
            timer: None,
            held_context: Vec::new(),
            sinks: ManuallyDrop::new(Arc::new(Sinks::new(queue.reclaimer().clone()))),
        }
    }
}

impl Drop for SessionCore {
    fn drop(&mut self) {
        // SAFETY: taken once, here; the field is not used afterwards.
        let sinks = unsafe { ManuallyDrop::take(&mut self.data.get_mut().sinks) };
        self.queue.release_sinks(sinks);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_tags_round_trip() {
        for failure in [
            None,
            Some(SR_ACCEPT_SEND_FAILURE),
            Some(Hr(0)),
            Some(Hr(-1)),
        ] {
            for then in [Then::Nothing, Then::AwaitAnswer, Then::Acknowledge] {
                for ended in [false, true] {
                    let got = from_report_tag(report_tag(failure, then, ended));
                    assert_eq!(got, (failure, then, ended));
                }
            }
        }
    }
}
