//! The session protocol over XMPP: each [`Message`] as a XEP-0166 Jingle IQ set, and back.
//! docs/xmpp.md is its specification.
//!
//! | Message | Jingle action | carries |
//! |---|---|---|
//! | Invite | session-initiate | content "app": `<description xmlns=NS guid name url timeout>` with `<app-data/>` and `<address/>`, an (unopened) jingle-ibb transport |
//! | Accept | session-accept | the same content: `<app-data/>`, `<address/>` |
//! | Decline | session-terminate, `<decline/>` (`<unsupported-applications/>` when the application is not there) | `<app-data xmlns=NS/>` |
//! | Cancel(hr) | session-terminate, `<cancel/>` | `<hresult xmlns=NS>`, `<app-data xmlns=NS/>` |
//! | ContextData | session-info | `<context xmlns=NS>` |
//! | LaunchFailed | session-terminate, `<failed-application/>` | |
//! | PeerGone | session-terminate, `<gone/>` | |
//! | Timeout | session-terminate, `<timeout/>` | |
//!
//! Application data is present exactly when the element is (an empty element is an empty
//! string, no element is NULL).

use crate::error::Hr;
use crate::service::Message;
use crate::types::Text;
use xmpp_parsers::ibb::{Stanza as IbbStanza, StreamId};
use xmpp_parsers::jingle::{
    Action, Content, ContentId, Creator, Description, Jingle, Reason, ReasonElement, SessionId,
};
use xmpp_parsers::jingle_ibb::Transport as IbbTransport;
use xmpp_parsers::minidom::rxml::NcName;
use xmpp_parsers::minidom::Element;

/// Our namespace: the description and the payloads of every step.
pub const NS: &str = "urn:x-msgrpriv:session:0";

/// Why an incoming Jingle payload is refused (the IQ is answered with bad-request).
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

fn text_elem(name: &str, text: &str) -> Element {
    Element::builder(name, NS).append(text).build()
}

fn opt_text(parent: &Element, name: &str) -> Result<Option<Text>, Malformed> {
    match parent.get_child(name, NS) {
        None => Ok(None),
        Some(e) => Text::new(&e.text())
            .map(Some)
            .map_err(|_| Malformed("a text holds a NUL")),
    }
}

fn text(parent: &Element, name: &str) -> Result<Text, Malformed> {
    Ok(opt_text(parent, name)?.unwrap_or_else(Text::empty))
}

fn description(attrs: &[(&str, String)], app_data: &Option<Text>, address: &Text) -> Element {
    let mut b = Element::builder("description", NS);
    for (k, v) in attrs {
        b = b.attr(NcName::try_from(*k).expect("a valid name"), v.as_str());
    }
    let mut d = b.build();
    if let Some(data) = app_data {
        d.append_child(text_elem("app-data", data.as_str()));
    }
    d.append_child(text_elem("address", address.as_str()));
    d
}

fn content(desc: Element, sid: &str) -> Content {
    Content::new(Creator::Initiator, ContentId("app".into()))
        .with_description(Description::Unknown(desc))
        .with_transport(IbbTransport {
            block_size: 4096,
            sid: StreamId(sid.to_owned()),
            stanza: IbbStanza::Iq,
        })
}

fn terminate(sid: SessionId, reason: Reason) -> Jingle {
    Jingle::new(Action::SessionTerminate, sid).set_reason(ReasonElement {
        reason,
        texts: Default::default(),
    })
}

/// The Jingle payload that carries `msg`.
pub fn to_jingle(msg: &Message) -> Jingle {
    let id = msg.session_id().as_str();
    let sid = SessionId(id.to_owned());
    match msg {
        Message::Invite {
            app_guid,
            app_name,
            app_url,
            app_data,
            address,
            timeout_ms,
            ..
        } => {
            let desc = description(
                &[
                    ("guid", app_guid.as_str().to_owned()),
                    ("name", app_name.as_str().to_owned()),
                    ("url", app_url.as_str().to_owned()),
                    ("timeout", timeout_ms.to_string()),
                ],
                app_data,
                address,
            );
            Jingle::new(Action::SessionInitiate, sid).add_content(content(desc, id))
        }
        Message::Accept {
            app_data, address, ..
        } => {
            let desc = description(&[], app_data, address);
            Jingle::new(Action::SessionAccept, sid).add_content(content(desc, id))
        }
        Message::Decline {
            app_data,
            not_present,
            ..
        } => {
            let reason = if *not_present {
                Reason::UnsupportedApplications
            } else {
                Reason::Decline
            };
            let mut j = terminate(sid, reason);
            if let Some(d) = app_data {
                j.other.push(text_elem("app-data", d.as_str()));
            }
            j
        }
        Message::Cancel { hr, app_data, .. } => {
            let mut j = terminate(sid, Reason::Cancel);
            j.other
                .push(text_elem("hresult", &format!("0x{:08X}", hr.0 as u32)));
            if let Some(d) = app_data {
                j.other.push(text_elem("app-data", d.as_str()));
            }
            j
        }
        Message::ContextData { data, .. } => {
            let mut j = Jingle::new(Action::SessionInfo, sid);
            j.other.push(text_elem("context", data.as_str()));
            j
        }
        Message::LaunchFailed { .. } => terminate(sid, Reason::FailedApplication),
        Message::PeerGone { .. } => terminate(sid, Reason::Gone),
        Message::Timeout { .. } => terminate(sid, Reason::Timeout),
        Message::Refused { hr, .. } => {
            let mut j = terminate(sid, Reason::SecurityError);
            j.other
                .push(text_elem("hresult", &format!("0x{:08X}", hr.0 as u32)));
            j
        }
    }
}

/// What an incoming Jingle request asks.
#[derive(Debug)]
pub enum Incoming {
    /// A step of a session.
    Step(Message),
    /// A session-info without payload: a ping of the session (answered when the session
    /// exists).
    Ping(Text),
    /// A session-info whose payload is not ours (answered with unsupported-info when the
    /// session exists).
    UnsupportedInfo(Text),
}

impl Incoming {
    /// The SessionID it is about.
    pub fn session_id(&self) -> &Text {
        match self {
            Incoming::Step(m) => m.session_id(),
            Incoming::Ping(id) | Incoming::UnsupportedInfo(id) => id,
        }
    }
}

/// What an IQ set's payload asks: a Jingle element of ours, or why it is refused.
pub fn message_from_payload(payload: Element) -> Result<Incoming, Malformed> {
    if !payload.is("jingle", xmpp_parsers::ns::JINGLE) {
        return Err(Malformed("not a Jingle element"));
    }
    let j = Jingle::try_from(payload).map_err(|_| Malformed("not a Jingle element"))?;
    from_jingle(&j)
}

fn our_description(j: &Jingle) -> Result<&Element, Malformed> {
    j.contents
        .iter()
        .find_map(|c| match &c.description {
            Some(Description::Unknown(e)) if e.is("description", NS) => Some(e),
            _ => None,
        })
        .ok_or(Malformed("no description of ours"))
}

fn other_text(j: &Jingle, name: &str) -> Result<Option<Text>, Malformed> {
    match j.other.iter().find(|e| e.is(name, NS)) {
        None => Ok(None),
        Some(e) => Text::new(&e.text())
            .map(Some)
            .map_err(|_| Malformed("a text holds a NUL")),
    }
}

fn parse_hr(s: &str) -> Result<Hr, Malformed> {
    let digits = s
        .trim()
        .strip_prefix("0x")
        .ok_or(Malformed("hresult not in hex"))?;
    u32::from_str_radix(digits, 16)
        .map(|v| Hr(v as i32))
        .map_err(|_| Malformed("hresult not in hex"))
}

/// What a Jingle payload asks.
pub fn from_jingle(j: &Jingle) -> Result<Incoming, Malformed> {
    let session_id = Text::new(&j.sid.0).map_err(|_| Malformed("bad sid"))?;
    Ok(Incoming::Step(match j.action {
        Action::SessionInitiate => {
            let d = our_description(j)?;
            let attr = |k: &str| Text::new(d.attr(k).unwrap_or("")).map_err(|_| Malformed("NUL"));
            let timeout_ms = d
                .attr("timeout")
                .ok_or(Malformed("no timeout"))?
                .parse::<u64>()
                .map_err(|_| Malformed("timeout not a number"))?;
            Message::Invite {
                session_id,
                app_guid: attr("guid")?,
                app_name: attr("name")?,
                app_url: attr("url")?,
                app_data: opt_text(d, "app-data")?,
                address: text(d, "address")?,
                timeout_ms,
            }
        }
        Action::SessionAccept => {
            let d = our_description(j)?;
            Message::Accept {
                session_id,
                app_data: opt_text(d, "app-data")?,
                address: text(d, "address")?,
            }
        }
        Action::SessionInfo => match other_text(j, "context")? {
            Some(data) => Message::ContextData { session_id, data },
            None if j.other.is_empty() => return Ok(Incoming::Ping(session_id)),
            None => return Ok(Incoming::UnsupportedInfo(session_id)),
        },
        Action::SessionTerminate => {
            let reason = j
                .reason
                .as_ref()
                .map(|r| &r.reason)
                .ok_or(Malformed("no reason"))?;
            let app_data = other_text(j, "app-data")?;
            match reason {
                Reason::Decline => Message::Decline {
                    session_id,
                    app_data,
                    not_present: false,
                },
                Reason::UnsupportedApplications => Message::Decline {
                    session_id,
                    app_data,
                    not_present: true,
                },
                Reason::Cancel => {
                    let hr = match j.other.iter().find(|e| e.is("hresult", NS)) {
                        Some(e) => parse_hr(&e.text())?,
                        None => crate::error::SR_SESSION_CANCELLED_REMOTE,
                    };
                    Message::Cancel {
                        session_id,
                        hr,
                        app_data,
                    }
                }
                Reason::SecurityError => {
                    let hr = match j.other.iter().find(|e| e.is("hresult", NS)) {
                        Some(e) => parse_hr(&e.text())?,
                        None => crate::error::E_ACCESSDENIED,
                    };
                    Message::Refused { session_id, hr }
                }
                Reason::FailedApplication => Message::LaunchFailed { session_id },
                Reason::Timeout | Reason::Expired => Message::Timeout { session_id },
                _ => Message::PeerGone { session_id },
            }
        }
        _ => return Err(Malformed("unsupported action")),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Text {
        Text::new(s).unwrap()
    }

    fn round_trip(msg: Message) {
        let j = to_jingle(&msg);
        let elem: Element = j.clone().into();
        let back = Jingle::try_from(elem).expect("parses");
        let Incoming::Step(got) = from_jingle(&back).unwrap() else {
            panic!("not a step")
        };
        assert_eq!(format!("{got:?}"), format!("{msg:?}"));
    }

    #[test]
    fn every_message_round_trips() {
        let id = t("{11111111-2222-3333-4444-555555555555}");
        round_trip(Message::Invite {
            session_id: id.clone(),
            app_guid: t("{AAAAAAAA-2222-3333-4444-555555555555}"),
            app_name: t("Chess <&>"),
            app_url: t("http://example.com/?a=1&b=2"),
            app_data: Some(t("let's play")),
            address: t("10.0.0.1:80"),
            timeout_ms: 120_000,
        });
        round_trip(Message::Invite {
            session_id: id.clone(),
            app_guid: t("{AAAAAAAA-2222-3333-4444-555555555555}"),
            app_name: t(""),
            app_url: t(""),
            app_data: None,
            address: t(""),
            timeout_ms: 1,
        });
        round_trip(Message::Accept {
            session_id: id.clone(),
            app_data: Some(t("")),
            address: t("a"),
        });
        for not_present in [false, true] {
            round_trip(Message::Decline {
                session_id: id.clone(),
                app_data: Some(t("no")),
                not_present,
            });
        }
        round_trip(Message::Cancel {
            session_id: id.clone(),
            hr: crate::error::E_FAIL,
            app_data: None,
        });
        round_trip(Message::ContextData {
            session_id: id.clone(),
            data: t("ctx é"),
        });
        round_trip(Message::LaunchFailed {
            session_id: id.clone(),
        });
        round_trip(Message::PeerGone {
            session_id: id.clone(),
        });
        round_trip(Message::Timeout {
            session_id: id.clone(),
        });
        round_trip(Message::Refused {
            session_id: id,
            hr: crate::error::E_NOT_ENOUGH_QUOTA,
        });
    }

    #[test]
    fn malformed_payloads_are_refused() {
        let sid = SessionId("s".into());
        assert!(from_jingle(&Jingle::new(Action::SessionInitiate, sid.clone())).is_err());
        assert!(from_jingle(&Jingle::new(Action::SessionTerminate, sid.clone())).is_err());
        assert!(from_jingle(&Jingle::new(Action::ContentAdd, sid.clone())).is_err());
        assert!(matches!(
            from_jingle(&Jingle::new(Action::SessionInfo, sid.clone())),
            Ok(Incoming::Ping(id)) if id.as_str() == "s"
        ));
        let mut info = Jingle::new(Action::SessionInfo, sid.clone());
        info.other
            .push(Element::builder("ringing", "urn:xmpp:jingle:apps:rtp:info:1").build());
        assert!(matches!(
            from_jingle(&info),
            Ok(Incoming::UnsupportedInfo(id)) if id.as_str() == "s"
        ));
        let mut j = terminate(sid, Reason::Cancel);
        j.other.push(text_elem("hresult", "12"));
        assert!(from_jingle(&j).is_err());
    }
}
