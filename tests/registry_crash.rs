//! Crash safety of the registry file: a writer process is SIGKILLed at random instants while
//! registering; after every kill the file must parse and hold every guid the writer reported
//! as registered, plus at most the one registration that was in flight.
//!
//! `MSGRPRIV_CRASH_ITERATIONS` sets the number of kills (default 200), `MSGRPRIV_CRASH_SEED`
//! the random seed (printed, to replay a failure), `MSGRPRIV_CRASH_MAX_DELAY_US` the longest
//! delay between the child being ready and the kill (default 30000).
#![cfg(unix)]

mod common;
use common::Rng;
use msgrpriv::registry::AppRegistry;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const CHILD_PATH: &str = "MSGRPRIV_CRASH_CHILD_PATH";
const CHILD_ROUND: &str = "MSGRPRIV_CRASH_CHILD_ROUND";
/// Registrations one child makes at most (it is normally killed long before).
const CHILD_MAX: u32 = 20_000;

fn guid(round: u32, i: u32) -> String {
    format!("{{{round:08X}-0000-4000-8000-{i:012X}}}")
}

/// Child role: registers guid(round, 0), guid(round, 1), ... printing `REG <guid>` only after
/// each `register` returned Ok. Does nothing in a normal test run.
#[test]
fn crash_child_role() {
    let (Ok(path), Ok(round)) = (std::env::var(CHILD_PATH), std::env::var(CHILD_ROUND)) else {
        return;
    };
    let round: u32 = round.parse().unwrap();
    let reg = AppRegistry::open(Path::new(&path)).expect("open");
    let mut out = std::io::stdout().lock();
    // Leading newline: the harness has already printed "test crash_child_role ... ".
    out.write_all(b"\nREADY\n").unwrap();
    out.flush().unwrap();
    for i in 0..CHILD_MAX {
        let g = guid(round, i);
        if let Err(e) = reg.register(&g, "crash test", "", "", 0) {
            // Reported as a line the parent recognises as a failure.
            let _ = writeln!(out, "ERR {g} {e:?}");
            let _ = out.flush();
            std::process::exit(3);
        }
        // One write per line: the parent ignores a final line without its newline.
        out.write_all(format!("REG {g}\n").as_bytes()).unwrap();
        out.flush().unwrap();
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn guids_on_disk(path: &Path) -> BTreeSet<String> {
    let bytes = std::fs::read(path).expect("registry file exists after a kill");
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "registry file does not parse after a kill: {e}\n{}",
            String::from_utf8_lossy(&bytes)
        )
    });
    assert_eq!(v["version"], 1);
    v["apps"]
        .as_array()
        .expect("apps array")
        .iter()
        .map(|a| a["guid"].as_str().expect("guid string").to_owned())
        .collect()
}

fn temp_leftovers(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .map(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(".apps.json.tmp-")
                })
                .unwrap_or(false)
        })
        .count()
}

#[test]
fn killed_writers_never_lose_or_corrupt_anything() {
    let iterations = env_u64("MSGRPRIV_CRASH_ITERATIONS", 200);
    let max_delay_us = env_u64("MSGRPRIV_CRASH_MAX_DELAY_US", 30_000);
    let seed = env_u64(
        "MSGRPRIV_CRASH_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1,
    );
    println!("crash test: {iterations} iterations, seed {seed}, max delay {max_delay_us} us");
    let mut rng = Rng(seed);

    let dir: PathBuf =
        std::env::temp_dir().join(format!("msgrpriv-crash-{}-{}", std::process::id(), seed));
    std::fs::create_dir_all(&dir).unwrap();
    // Kept on failure, for inspection.
    println!("crash test: directory {}", dir.display());
    let path = dir.join("apps.json");
    let exe = std::env::current_exe().unwrap();

    let started = Instant::now();
    let mut known: BTreeSet<String> = BTreeSet::new();
    let (mut total_reported, mut in_flight_committed, mut leftovers, mut mid_run_kills) =
        (0usize, 0usize, 0usize, 0usize);
    for round in 0..iterations as u32 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child_role",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_PATH, &path)
            .env(CHILD_ROUND, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // Read the child's lines in a thread; READY is signalled over a channel.
        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        let reader = std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut complete = Vec::new();
            let mut line = String::new();
            loop {
                line.clear();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if !line.ends_with('\n') => break, // cut short by the kill
                    Ok(_) => {}
                }
                let l = line.trim_end();
                if l == "READY" {
                    let _ = ready_tx.send(());
                } else if let Some(g) = l.strip_prefix("REG ") {
                    complete.push(g.to_owned());
                } else if l.starts_with("ERR ") {
                    panic!("child failed: {l}");
                }
            }
            let _ = r.read_to_end(&mut Vec::new());
            complete
        });
        ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("child did not get ready");
        std::thread::sleep(Duration::from_micros(rng.below(max_delay_us + 1)));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        let reported = reader.join().expect("child reported a failure");
        if status.code().is_none() {
            mid_run_kills += 1;
        }

        leftovers += temp_leftovers(&dir);
        let on_disk = guids_on_disk(&path);
        for g in &known {
            assert!(on_disk.contains(g), "round {round}: earlier guid {g} lost");
        }
        for g in &reported {
            assert!(
                on_disk.contains(g),
                "round {round}: reported guid {g} missing"
            );
        }
        let in_flight = guid(round, reported.len() as u32);
        let extra: Vec<_> = on_disk
            .iter()
            .filter(|g| !known.contains(*g) && !reported.contains(*g))
            .collect();
        match extra.as_slice() {
            [] => {}
            [g] if **g == in_flight => in_flight_committed += 1,
            other => panic!("round {round}: unexpected entries {other:?}"),
        }
        total_reported += reported.len();
        // The library must agree with the raw file (and cleans leftovers at open).
        let reg = AppRegistry::open(&path).expect("registry opens after a kill");
        let listed: BTreeSet<String> = reg.list().into_iter().map(|e| e.guid).collect();
        assert_eq!(listed, on_disk, "round {round}");
        assert_eq!(temp_leftovers(&dir), 0, "leftovers removed at open");
        known = on_disk;
        // Keep the file small so each round stays fast.
        if known.len() > 400 {
            std::fs::remove_file(&path).unwrap();
            known.clear();
        }
    }
    let elapsed = started.elapsed();
    println!(
        "crash test: {iterations} kills ({mid_run_kills} by signal) in {:.1} s; {total_reported} \
         registrations reported, {in_flight_committed} in-flight ones found committed, \
         {leftovers} leftover temporary files seen",
        elapsed.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
