//! Arbitrary bytes in a data directory never panic the node opening it:
//! opening either recovers (and everything it then shows reads back) or
//! refuses with an error. Segments are random noise, or real logs with
//! bytes flipped, cut, or lengths replaced by huge values.
//!
//! `REPLOG_FUZZ_CASES=N` (cases / 100 are used here, each one a directory on
//! disk) and `REPLOG_FUZZ_SEED` work as for `wire_fuzz`.

use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use replog::entry::Entry;
use replog::storage::Log;

fn cases() -> u64 {
    std::env::var("REPLOG_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(3_000, |n| (n / 100).max(1))
}

fn seed() -> u64 {
    std::env::var("REPLOG_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().next_u64())
}

/// The bytes of a real segment of `n` entries.
fn real_segment(rng: &mut SmallRng, n: u64) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = Log::open(dir.path(), 1 << 30).unwrap();
        let entries: Vec<Entry> = (1..=n)
            .map(|seq| Entry {
                epoch: 1 + seq / 5,
                seq,
                log: (seq % 3) as u32,
                number: seq,
                key: rng.gen_bool(0.5).then(|| format!("k{seq}")),
                message: (0..rng.gen_range(0..30))
                    .map(|_| rng.gen::<u8>())
                    .collect::<Vec<u8>>()
                    .into(),
            })
            .collect();
        log.append(&entries).unwrap();
    }
    std::fs::read(dir.path().join(format!("{:020}.log", 1))).unwrap()
}

fn damage(rng: &mut SmallRng, mut b: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.gen_range(1..4) {
        let at = rng.gen_range(0..=b.len());
        match rng.gen_range(0..5) {
            0 if !b.is_empty() => {
                let i = rng.gen_range(0..b.len());
                b[i] ^= 1 << rng.gen_range(0..8);
            }
            1 => b.truncate(at),
            2 if at + 4 <= b.len() => {
                // A length field (or anything) replaced by a huge value.
                let v: u32 = rng.gen_range(1 << 28..=u32::MAX);
                b[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
            3 => b.extend(std::iter::repeat_n(0, rng.gen_range(1..64))),
            _ => {
                let noise: Vec<u8> = (0..rng.gen_range(1..16)).map(|_| rng.gen()).collect();
                b.splice(at..at, noise);
            }
        }
    }
    b
}

#[test]
fn arbitrary_bytes_in_segment_files_never_panic_the_opening_node() {
    let seed = seed();
    let n = cases();
    let mut rng = SmallRng::seed_from_u64(seed);
    let (mut opened, mut refused) = (0u64, 0u64);
    for case in 0..n {
        let dir = tempfile::tempdir().unwrap();
        let first = if rng.gen_bool(0.8) {
            let len = rng.gen_range(1..12);
            let real = real_segment(&mut rng, len);
            damage(&mut rng, real)
        } else {
            (0..rng.gen_range(0..200)).map(|_| rng.gen()).collect()
        };
        std::fs::write(dir.path().join(format!("{:020}.log", 1)), &first).unwrap();
        if rng.gen_bool(0.2) {
            // A second segment, at a plausible or implausible start.
            let start: u64 = rng.gen_range(1..20);
            let second: Vec<u8> = (0..rng.gen_range(0..100)).map(|_| rng.gen()).collect();
            std::fs::write(dir.path().join(format!("{start:020}.log")), second).unwrap();
        }
        if rng.gen_bool(0.1) {
            let epoch: Vec<u8> = (0..rng.gen_range(0..10)).map(|_| rng.gen()).collect();
            std::fs::write(dir.path().join("epoch"), epoch).unwrap();
        }
        let path = dir.path().to_path_buf();
        let outcome = std::panic::catch_unwind(move || match Log::open(&path, 1 << 20) {
            Ok(log) => {
                // What recovery kept must read back.
                let last = log.last().seq;
                let read = log.read(1, last, usize::MAX, usize::MAX).map(|v| v.len());
                Some(read.map_err(|e| e.to_string()).map(|got| (got, last)))
            }
            Err(_) => None,
        });
        match outcome {
            Ok(Some(Ok((got, last)))) => {
                assert_eq!(
                    got as u64, last,
                    "seed {seed} case {case}: recovered {last} entries but {got} read back"
                );
                opened += 1;
            }
            Ok(Some(Err(e))) => {
                panic!("seed {seed} case {case}: recovered, then could not read: {e}")
            }
            Ok(None) => refused += 1,
            Err(_) => panic!(
                "seed {seed} case {case}: opening panicked; first segment {:?}",
                first
            ),
        }
    }
    assert!(
        opened > 0 && refused > 0,
        "opened {opened}, refused {refused}"
    );
}
