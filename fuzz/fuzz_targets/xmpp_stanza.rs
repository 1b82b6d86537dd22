//! The XMPP stanza-to-message path: any bytes, parsed as an XML element, handed to the
//! Jingle mapping that an incoming IQ set goes through. It must never panic; whatever it
//! accepts must survive the way back (message -> Jingle -> element -> message unchanged).
#![no_main]

use libfuzzer_sys::fuzz_target;
use msgrpriv::xmpp::protocol::{from_jingle, message_from_payload, to_jingle, Incoming};
use xmpp_parsers::minidom::Element;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(elem) = text.parse::<Element>() else {
        return;
    };
    if let Ok(Incoming::Step(msg)) = message_from_payload(elem) {
        let back: Element = to_jingle(&msg).into();
        let j = xmpp_parsers::jingle::Jingle::try_from(back).expect("our own Jingle parses");
        let Ok(Incoming::Step(again)) = from_jingle(&j) else {
            panic!("our own Jingle maps back to a step")
        };
        assert_eq!(format!("{again:?}"), format!("{msg:?}"));
    }
});
