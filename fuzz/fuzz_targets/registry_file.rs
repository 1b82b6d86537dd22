//! Fuzzes the registry file reader: any bytes in place of the registry file give either a
//! usable registry or E_FAIL at open, never a panic, and a registry that opened survives a
//! write and a re-read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use msgrpriv::error::{E_FAIL, SR_APP_NOT_REGISTERED};
use msgrpriv::registry::AppRegistry;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("msgrpriv-fuzz-reg-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("apps.json");
    let _ = std::fs::remove_file(&path);
    std::fs::write(&path, data).unwrap();
    match AppRegistry::open(&path) {
        Err(e) => assert_eq!(e, E_FAIL),
        Ok(reg) => {
            let before = reg.list();
            let g = "{00000000-0000-0000-0000-00000000FFFF}";
            let existed = reg.get(g).is_some();
            if !existed {
                reg.register(g, "fuzz", "u", "", 0).unwrap();
                assert!(reg.get(g).is_some());
                reg.unregister(g).unwrap();
            }
            assert_eq!(
                reg.unregister("{00000000-0000-0000-0000-00000000FFFE}")
                    .is_err(),
                before
                    .iter()
                    .all(|e| e.guid != "{00000000-0000-0000-0000-00000000FFFE}")
            );
            let _ = SR_APP_NOT_REGISTERED;
            let reopened = AppRegistry::open(&path).expect("a registry we wrote reopens");
            assert_eq!(reopened.list(), reg.list());
        }
    }
});
