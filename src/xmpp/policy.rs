//! Who may invite a client: its contacts (the roster, kept up to date from the server's
//! pushes) unless strangers are allowed, and at most so many invitations from one sender in
//! a minute (docs/xmpp.md, "Who may invite whom").

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};
use xmpp_parsers::roster::{Roster, Subscription};

/// The window of the invitation rate limit.
const WINDOW: Duration = Duration::from_secs(60);

/// The smallest number of senders at which the quiet ones are forgotten.
const PRUNE_MIN: usize = 64;

/// Why an invitation is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The sender is not a contact.
    Stranger,
    /// One invitation too many from that sender in the last minute.
    TooMany,
}

/// One client's invitation policy.
pub(crate) struct Policy {
    allow_strangers: bool,
    /// At most this many invitations from one sender in [`WINDOW`]; 0: no limit.
    per_minute: usize,
    /// The user's contacts: bare JIDs, lowercase.
    contacts: HashSet<String>,
    /// When each sender's invitations of the last minute arrived (bare JIDs, lowercase).
    invitations: HashMap<String, VecDeque<Instant>>,
    /// `invitations` is pruned of senders quiet for a minute when it reaches this length.
    prune_at: usize,
}

fn canonical(jid: &str) -> String {
    jid.to_ascii_lowercase()
}

impl Policy {
    pub(crate) fn new(allow_strangers: bool, per_minute: u32) -> Policy {
        Policy {
            allow_strangers,
            per_minute: per_minute as usize,
            contacts: HashSet::new(),
            invitations: HashMap::new(),
            prune_at: PRUNE_MIN,
        }
    }

    /// Whether the roster is needed (strangers are refused).
    pub(crate) fn wants_roster(&self) -> bool {
        !self.allow_strangers
    }

    /// The roster of a new sign-in: the contacts are its items.
    pub(crate) fn set_roster(&mut self, roster: Option<Roster>) {
        self.contacts.clear();
        if let Some(r) = roster {
            self.update(r);
        }
    }

    /// Applies a roster push: every item is a contact from then on, but one the push
    /// removes.
    pub(crate) fn update(&mut self, roster: Roster) {
        for item in roster.items {
            let jid = canonical(item.jid.as_str());
            if item.subscription == Subscription::Remove {
                self.contacts.remove(&jid);
            } else {
                self.contacts.insert(jid);
            }
        }
    }

    /// Whether an invitation from `sender` (a bare JID) arriving `now` is taken; a taken one
    /// counts against the sender's limit.
    pub(crate) fn admit(&mut self, sender: &str, now: Instant) -> Result<(), Refused> {
        let key = canonical(sender);
        if !self.allow_strangers && !self.contacts.contains(&key) {
            return Err(Refused::Stranger);
        }
        if self.per_minute == 0 {
            return Ok(());
        }
        if self.invitations.len() >= self.prune_at {
            self.invitations
                .retain(|_, times| times.back().is_some_and(|t| now - *t < WINDOW));
            self.prune_at = (2 * self.invitations.len()).max(PRUNE_MIN);
        }
        let times = self.invitations.entry(key).or_default();
        while times.front().is_some_and(|t| now - *t >= WINDOW) {
            times.pop_front();
        }
        if times.len() >= self.per_minute {
            return Err(Refused::TooMany);
        }
        times.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmpp_parsers::jid::BareJid;
    use xmpp_parsers::roster::{Ask, Item};

    fn roster(items: &[(&str, Subscription)]) -> Roster {
        Roster {
            ver: None,
            items: items
                .iter()
                .map(|(jid, subscription)| Item {
                    jid: BareJid::new(jid).unwrap(),
                    name: None,
                    subscription: subscription.clone(),
                    ask: Ask::None,
                    groups: Vec::new(),
                    approved: None,
                })
                .collect(),
        }
    }

    #[test]
    fn contacts_only_unless_strangers_are_allowed() {
        let now = Instant::now();
        let mut p = Policy::new(false, 0);
        assert_eq!(p.admit("eve@x", now), Err(Refused::Stranger));
        p.set_roster(Some(roster(&[("Eve@X", Subscription::None)])));
        assert_eq!(p.admit("eve@x", now), Ok(()));
        p.update(roster(&[("eve@x", Subscription::Remove)]));
        assert_eq!(p.admit("EVE@x", now), Err(Refused::Stranger));
        p.update(roster(&[("eve@x", Subscription::Both)]));
        p.set_roster(None);
        assert_eq!(p.admit("eve@x", now), Err(Refused::Stranger));
        let mut open = Policy::new(true, 0);
        assert!(!open.wants_roster());
        assert_eq!(open.admit("eve@x", now), Ok(()));
    }

    #[test]
    fn the_limit_counts_each_sender_over_a_sliding_minute() {
        let t0 = Instant::now();
        let mut p = Policy::new(true, 2);
        assert_eq!(p.admit("a@x", t0), Ok(()));
        assert_eq!(p.admit("a@x", t0 + Duration::from_secs(30)), Ok(()));
        assert_eq!(
            p.admit("A@x", t0 + Duration::from_secs(59)),
            Err(Refused::TooMany)
        );
        assert_eq!(p.admit("b@x", t0 + Duration::from_secs(59)), Ok(()));
        // The first leaves the window after a minute; a refused one did not count.
        assert_eq!(p.admit("a@x", t0 + Duration::from_secs(60)), Ok(()));
        assert_eq!(
            p.admit("a@x", t0 + Duration::from_secs(61)),
            Err(Refused::TooMany)
        );
    }

    #[test]
    fn quiet_senders_are_forgotten() {
        let t0 = Instant::now();
        let mut p = Policy::new(true, 5);
        for i in 0..PRUNE_MIN {
            p.admit(&format!("u{i}@x"), t0).unwrap();
        }
        assert_eq!(p.invitations.len(), PRUNE_MIN);
        p.admit("late@x", t0 + WINDOW).unwrap();
        assert_eq!(p.invitations.len(), 1);
    }
}
