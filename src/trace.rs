//! The trace: what the library does, told to a sink the application sets (or to stderr with
//! `MSGRPRIV_TRACE`), so that nothing happens silently: sign-ins, every message sent and
//! received, invitations dropped and why, events queued and delivered, and events left
//! waiting while nobody dispatches.
//!
//! Off by default. A trace point costs one relaxed atomic load and a branch while its level is
//! off; the text is only formatted when it is on.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Once, PoisonError, RwLock, Weak};
use std::time::Duration;

/// How much is told: each level includes the ones before it.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TraceLevel {
    /// Nothing.
    Off = 0,
    /// What is probably a mistake of the application, or a loss: an invitation nobody was
    /// told of, a message not delivered or refused, events waiting while nobody dispatches,
    /// a lost connection.
    Warning = 1,
    /// What happens: sign-ins and sign-outs, every message sent and received.
    Info = 2,
    /// Every event queued and delivered.
    Debug = 3,
}

impl TraceLevel {
    /// The level of a number (0 to 3; None otherwise).
    pub fn from_u8(v: u8) -> Option<TraceLevel> {
        Some(match v {
            0 => TraceLevel::Off,
            1 => TraceLevel::Warning,
            2 => TraceLevel::Info,
            3 => TraceLevel::Debug,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            TraceLevel::Off => "off",
            TraceLevel::Warning => "warning",
            TraceLevel::Info => "info",
            TraceLevel::Debug => "debug",
        }
    }
}

/// Where the trace goes: called with each message's level and text, on the thread that did
/// the work, possibly while the library holds locks of its own: it must not call the
/// library, and should return quickly.
pub type TraceSink = Arc<dyn Fn(TraceLevel, &str) + Send + Sync>;

static LEVEL: AtomicU8 = AtomicU8::new(0);
static SINK: RwLock<Option<TraceSink>> = RwLock::new(None);
static FROM_ENV: Once = Once::new();

/// Whether messages of `level` are told now.
#[inline(always)]
pub(crate) fn enabled(level: TraceLevel) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Sets the trace: messages up to `level` go to `sink` (None: to stderr). `TraceLevel::Off`
/// turns it off. The previous sink is dropped once no message is being told to it.
pub fn set_trace(level: TraceLevel, sink: Option<TraceSink>) {
    FROM_ENV.call_once(|| {});
    install(level, sink);
}

/// Makes `sink` (None: stderr) the sink of messages up to `level`, or turns the trace off.
fn install(level: TraceLevel, sink: Option<TraceSink>) {
    let sink = match (level, sink) {
        (TraceLevel::Off, _) => None,
        (_, Some(s)) => Some(s),
        (_, None) => Some(stderr_sink()),
    };
    let old = std::mem::replace(
        &mut *SINK.write().unwrap_or_else(PoisonError::into_inner),
        sink,
    );
    LEVEL.store(level as u8, Ordering::Relaxed);
    if level >= TraceLevel::Warning {
        start_watchdog();
    }
    drop(old);
}

fn stderr_sink() -> TraceSink {
    Arc::new(|level: TraceLevel, text: &str| {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr().lock(),
            "msgrpriv[{}]: {text}",
            level.name()
        );
    })
}

/// Reads `MSGRPRIV_TRACE` once (at the first client): `1` (or `debug`) tells everything to
/// stderr, `info` and `warning` less, `0` or unset nothing. A sink set before wins.
pub(crate) fn init_from_env() {
    FROM_ENV.call_once(|| {
        let Ok(v) = std::env::var("MSGRPRIV_TRACE") else {
            return;
        };
        let level = match v.trim().to_ascii_lowercase().as_str() {
            "" | "0" | "off" => return,
            "warning" | "warn" => TraceLevel::Warning,
            "info" => TraceLevel::Info,
            _ => TraceLevel::Debug,
        };
        install(level, None);
    });
}

/// Tells `args` at `level` (see [`trace!`]); a panicking sink is contained.
#[cold]
#[inline(never)]
pub(crate) fn emit(level: TraceLevel, args: std::fmt::Arguments<'_>) {
    let sink = SINK.read().unwrap_or_else(PoisonError::into_inner).clone();
    if let Some(sink) = sink {
        let text = std::fmt::format(args);
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink(level, &text)));
    }
}

/// `trace!(Info, "...", args)`: formats and tells the message only when `Info` is on.
macro_rules! trace {
    ($level:ident, $($t:tt)*) => {
        if $crate::trace::enabled($crate::trace::TraceLevel::$level) {
            $crate::trace::emit($crate::trace::TraceLevel::$level, format_args!($($t)*))
        }
    };
}
pub(crate) use trace;

/// Something the watchdog looks at: a client's event queue that may hold events nobody
/// dispatches.
pub(crate) trait Stalled: Send + Sync {
    /// Warns (once per backlog) when events have waited longer than `limit`.
    fn check(&self, limit: Duration);
}

/// How long events may wait in a manual-mode queue before the trace warns.
pub(crate) const STALL_LIMIT: Duration = Duration::from_secs(1);

static WATCHED: Mutex<Vec<Weak<dyn Stalled>>> = Mutex::new(Vec::new());
static WATCHDOG: Once = Once::new();

/// Adds a queue to the ones the watchdog looks at (held weakly). Never waits long for the
/// list's lock: in a child forked while another thread held it, it stays held for ever, and
/// the queue is then not watched rather than the client not made.
pub(crate) fn watch(q: Weak<dyn Stalled>) {
    for _ in 0..1000 {
        match WATCHED.try_lock() {
            Ok(mut w) => {
                w.retain(|q| q.strong_count() > 0);
                w.push(q);
                return;
            }
            Err(std::sync::TryLockError::Poisoned(p)) => {
                p.into_inner().push(q);
                return;
            }
            Err(std::sync::TryLockError::WouldBlock) => std::thread::yield_now(),
        }
    }
}

/// Starts the watchdog thread (once per process, only when a trace is set): every quarter
/// second it looks for queues whose events have waited longer than [`STALL_LIMIT`].
fn start_watchdog() {
    WATCHDOG.call_once(|| {
        let _ = std::thread::Builder::new()
            .name("msgrpriv-trace".into())
            .spawn(|| loop {
                std::thread::sleep(Duration::from_millis(250));
                if !enabled(TraceLevel::Warning) {
                    continue;
                }
                let live: Vec<Arc<dyn Stalled>> = {
                    let mut w = WATCHED.lock().unwrap_or_else(PoisonError::into_inner);
                    w.retain(|q| q.strong_count() > 0);
                    w.iter().filter_map(Weak::upgrade).collect()
                };
                for q in live {
                    q.check(STALL_LIMIT);
                }
            });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_include_the_ones_before() {
        assert!(TraceLevel::Warning < TraceLevel::Info && TraceLevel::Info < TraceLevel::Debug);
        assert_eq!(TraceLevel::from_u8(2), Some(TraceLevel::Info));
        assert_eq!(TraceLevel::from_u8(4), None);
    }
}
