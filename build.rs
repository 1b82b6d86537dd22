//! Generates `include/msgrpriv.h` with cbindgen and, for the CMake build, sets the shared
//! library's SONAME.
//!
//! The header is written only when its content changes, so builds stay incremental. With
//! `MSGRPRIV_CHECK_HEADER=1` nothing is written: the build fails if the committed header
//! differs from what the sources generate (the CI staleness check).
//!
//! cbindgen parses `src/ffi` only (types, enums and functions of the C surface). The result
//! codes come from the table in `src/error.rs`, compiled into this build script as a module,
//! so that table stays the single source of truth: keep `src/error.rs` free of dependencies
//! on the rest of the crate.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

#[allow(dead_code)]
#[path = "src/error.rs"]
mod error;

const HEADER: &str = "include/msgrpriv.h";

fn main() {
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    for p in [
        "build.rs",
        "cbindgen.toml",
        "Cargo.toml",
        "src/ffi",
        "src/error.rs",
    ] {
        println!("cargo:rerun-if-changed={p}");
    }
    println!("cargo:rerun-if-env-changed=MSGRPRIV_CHECK_HEADER");
    println!("cargo:rerun-if-env-changed=MSGRPRIV_SET_SONAME");
    let check = env::var("MSGRPRIV_CHECK_HEADER").is_ok_and(|v| v == "1");
    // The header itself is watched only by the check: a build that writes it would otherwise
    // see it changed and run again. (A hand edit survives until the next change of the inputs
    // above, and fails the check meanwhile.)
    if check {
        println!("cargo:rerun-if-changed={HEADER}");
    }

    let version = Version::from_env();
    if env::var("MSGRPRIV_SET_SONAME").is_ok_and(|v| v == "1") {
        set_soname(&version);
    }

    let fresh = generate(&root, &version);
    let path = root.join(HEADER);
    let committed = fs::read(&path).ok();
    if check {
        if committed.as_deref() != Some(&fresh[..]) {
            panic!(
                "{HEADER} is stale: it differs from what the sources generate{}.\n\
                 Run `cargo build` (without MSGRPRIV_CHECK_HEADER) and commit {HEADER}.",
                first_difference(committed.as_deref().unwrap_or_default(), &fresh)
            );
        }
    } else if committed.as_deref() != Some(&fresh[..]) {
        write_atomically(&path, &fresh);
    }
}

/// The crate version, from the variables cargo sets.
struct Version {
    major: u32,
    minor: u32,
    patch: u32,
}

impl Version {
    fn from_env() -> Self {
        let part = |name: &str| -> u32 {
            env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name}"))
        };
        let v = Version {
            major: part("CARGO_PKG_VERSION_MAJOR"),
            minor: part("CARGO_PKG_VERSION_MINOR"),
            patch: part("CARGO_PKG_VERSION_PATCH"),
        };
        assert!(
            v.minor < 100 && v.patch < 100,
            "MSGR_VERSION_NUMBER needs minor and patch < 100"
        );
        v
    }

    /// The ABI version in the SONAME: MAJOR, or 0.MINOR before 1.0 (as cargo-c does).
    /// CMakeLists.txt computes the same from Cargo.toml.
    fn abi(&self) -> String {
        if self.major > 0 {
            self.major.to_string()
        } else {
            format!("0.{}", self.minor)
        }
    }
}

/// Gives the cdylib the SONAME `libmsgrpriv.so.<abi>` (install name on macOS), which cargo
/// does not set. Only when asked (`MSGRPRIV_SET_SONAME=1`, set by CMakeLists.txt): the CMake
/// build copies the library under that name and installs it with its links, while cargo
/// leaves only `libmsgrpriv.so`, and a program linked against a library with a SONAME looks
/// for that name when it starts. docs/BUILDING.md, "The library with cargo".
fn set_soname(v: &Version) {
    let abi = v.abi();
    match env::var("CARGO_CFG_TARGET_OS").unwrap_or_default().as_str() {
        "linux" | "android" | "freebsd" | "netbsd" | "openbsd" | "dragonfly" | "illumos"
        | "solaris" => {
            println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libmsgrpriv.so.{abi}");
        }
        "macos" | "ios" => {
            println!(
                "cargo:rustc-cdylib-link-arg=-Wl,-install_name,@rpath/libmsgrpriv.{abi}.dylib"
            );
        }
        _ => {}
    }
}

/// Runs cbindgen over src/ffi with cbindgen.toml plus the generated macros.
fn generate(root: &Path, v: &Version) -> Vec<u8> {
    let mut config = cbindgen::Config::from_file(root.join("cbindgen.toml"))
        .unwrap_or_else(|e| panic!("cbindgen.toml: {e}"));
    let generated = format!("{}\n{}", version_macros(v), result_code_macros());
    config.after_includes = Some(match config.after_includes.take() {
        Some(fixed) => format!("\n{}\n\n{generated}", fixed.trim()),
        None => generated,
    });
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(root.join("src/ffi/mod.rs"))
        .generate()
        .unwrap_or_else(|e| panic!("cbindgen: {e}"));
    let mut out = Vec::new();
    bindings.write(&mut out);
    out
}

fn version_macros(v: &Version) -> String {
    let (major, minor, patch) = (v.major, v.minor, v.patch);
    let number = major * 10000 + minor * 100 + patch;
    format!(
        "/** Major version of the library this header belongs to (see msgr_version()). */\n\
         #define MSGR_VERSION_MAJOR {major}\n\
         /** Minor version. */\n\
         #define MSGR_VERSION_MINOR {minor}\n\
         /** Patch version. */\n\
         #define MSGR_VERSION_PATCH {patch}\n\
         /** The version as one number: MAJOR * 10000 + MINOR * 100 + PATCH. */\n\
         #define MSGR_VERSION_NUMBER {number}\n\
         /** The version as msgr_version() returns it: \"MAJOR.MINOR.PATCH\". */\n\
         #define MSGR_VERSION_STRING \"{major}.{minor}.{patch}\"\n"
    )
}

/// One `#define NAME ((MSGR_HRESULT)0x........)` per code of `error::CODES`, in table order,
/// each with its text as documentation. Generic COM names (the "generic" family) are defined
/// only when absent, so the header coexists with others that define them.
fn result_code_macros() -> String {
    let mut s = String::from(
        "/*\n * Result codes (docs/CONTRACT.md). Values never change. Generic COM names (S_OK,\n \
         * E_INVALIDARG, ...) are defined only when another header has not defined them.\n */\n",
    );
    let mut family = "";
    for c in error::CODES {
        assert!(!c.text.contains("*/") && !c.name.is_empty(), "{}", c.name);
        if c.family != family {
            family = c.family;
            let title = match family {
                "generic" => "Generic codes (COM).",
                "lock" => "Lock and Key errors (LockError).",
                "session" => "Session results (SESSION_RESULT).",
                "messenger" => "Messenger client codes: MSGR_E(x) = 0x81000300 + x.",
                other => panic!("unknown code family {other}: give it a title in build.rs"),
            };
            let _ = write!(s, "\n/* {title} */\n\n");
        }
        let def = format!(
            "#define {} ((MSGR_HRESULT)0x{:08X})",
            c.name, c.code.0 as u32
        );
        let _ = writeln!(s, "/** {} */", c.text);
        if c.family == "generic" {
            let _ = writeln!(s, "#if !defined({})\n{def}\n#endif", c.name);
        } else {
            let _ = writeln!(s, "{def}");
        }
    }
    s
}

fn first_difference(old: &[u8], new: &[u8]) -> String {
    let (old, new) = (String::from_utf8_lossy(old), String::from_utf8_lossy(new));
    for (n, (a, b)) in old.lines().zip(new.lines()).enumerate() {
        if a != b {
            return format!(
                " (first at line {}:\n  committed: {a}\n  generated: {b})",
                n + 1
            );
        }
    }
    format!(
        " ({} lines committed, {} generated)",
        old.lines().count(),
        new.lines().count()
    )
}

/// Replaces `path` by `data` through a rename, so that concurrent builds (several profiles at
/// once) never see a half-written header.
fn write_atomically(path: &Path, data: &[u8]) {
    let dir = path.parent().expect("header directory");
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let tmp = dir.join(format!(".msgrpriv.h.{}.tmp", std::process::id()));
    fs::write(&tmp, data).unwrap_or_else(|e| panic!("{}: {e}", tmp.display()));
    fs::rename(&tmp, path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
