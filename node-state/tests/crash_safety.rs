//! Crash safety with real processes: a child rewrites `cpu_manager_state` in a loop and is
//! SIGKILLed at 200 random moments. After every kill the file must hold one complete
//! generation with a valid checksum, generations never go backwards, and at most the one
//! in-flight temp file may exist (it is removed when the store is next opened).
//!
//! The child is this test binary re-executed with `NODE_STATE_CRASH_CHILD_DIR` set, running
//! only the `crash_child` test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use node_state::cpu_manager::{CPU_MANAGER_STATE_FILE, CpuManagerState};
use node_state::cpuset::CpuSet;
use node_state::store::{FileStore, StateFile, is_temp_name};

const CHILD_ENV: &str = "NODE_STATE_CRASH_CHILD_DIR";
const KILLS: usize = 200;

/// Generation `generation` of the state: about 4 KiB, every byte depending on the generation
/// (the default cpuset *is* the generation number).
fn state_for(generation: u64) -> CpuManagerState {
    let mut s = CpuManagerState::new(
        "static",
        &CpuSet::from_ids([i64::try_from(generation).unwrap()]),
    );
    for pod in 0..24u64 {
        for c in 0..3u64 {
            let first = i64::try_from((generation + pod * 3 + c) % 60).unwrap();
            s.set_container_cpus(
                &format!("pod-{pod:02}-0c9f1e2a-uid-{generation}"),
                &format!("container-{c}"),
                &CpuSet::from_ids([first, first + 2, first + 3]),
            )
            .unwrap();
        }
    }
    s
}

fn generation_of(s: &CpuManagerState) -> u64 {
    s.default_cpu_set.parse().unwrap()
}

#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = FileStore::open(&dir).unwrap();
    let mut generation = match store.load::<CpuManagerState>(CPU_MANAGER_STATE_FILE) {
        Ok(s) => generation_of(&s) + 1,
        Err(e) if e.is_not_found() => 0,
        Err(e) => panic!("child found a bad file: {e}"),
    };
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready").unwrap();
        out.flush().unwrap();
    }
    loop {
        store
            .save(CPU_MANAGER_STATE_FILE, &state_for(generation))
            .unwrap();
        generation += 1;
    }
}

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn temp_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| is_temp_name(e.as_ref().unwrap().file_name().to_str().unwrap()))
        .count()
}

#[test]
fn sigkill_at_random_moments_leaves_old_or_new_state() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    #[expect(
        clippy::cast_possible_truncation,
        reason = "a seed: the clock's low 64 bits are enough"
    )]
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test seed {seed}");
    let mut rng = XorShift(seed);
    let mut last_generation: Option<u64> = None;
    let mut kills_with_temp = 0;
    let mut advanced = 0;

    for kill in 0..KILLS {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        loop {
            let line = lines
                .next()
                .expect("child exited before it was ready")
                .unwrap();
            // libtest prints "test crash_child ... " without a newline before our output.
            if line.trim_end().ends_with("ready") {
                break;
            }
        }
        // 0 to 4 ms into the write loop: lands before, during and after fsyncs and renames.
        std::thread::sleep(Duration::from_micros(rng.next() % 4000));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(!status.success(), "child ended on its own: {status}");

        let temps = temp_files(dir.path());
        assert!(temps <= 1, "kill {kill}: {temps} temp files");
        if temps == 1 {
            kills_with_temp += 1;
        }
        let path = dir.path().join(CPU_MANAGER_STATE_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && last_generation.is_none() => {
                continue;
            }
            Err(e) => panic!("kill {kill}: {e}"),
        };
        let state = CpuManagerState::decode(&bytes, &path)
            .unwrap_or_else(|e| panic!("kill {kill}: file does not verify: {e}"));
        let generation = generation_of(&state);
        assert_eq!(
            bytes,
            state_for(generation).encode().unwrap(),
            "kill {kill}: not a complete generation"
        );
        if let Some(last) = last_generation {
            assert!(
                generation >= last,
                "kill {kill}: generation went back from {last} to {generation}"
            );
            if generation > last {
                advanced += 1;
            }
        }
        last_generation = Some(generation);
    }

    // Opening the store again removes the in-flight temp file of the last kill.
    FileStore::open(dir.path()).unwrap();
    assert_eq!(temp_files(dir.path()), 0);
    eprintln!(
        "{KILLS} kills in {:?}: {kills_with_temp} caught a write in flight, the state advanced {advanced} times, last generation {last_generation:?}",
        started.elapsed()
    );
    assert!(
        kills_with_temp > 0,
        "no kill landed during a write; the test would prove nothing"
    );
    assert!(advanced > 0, "the child never completed a write");
}
