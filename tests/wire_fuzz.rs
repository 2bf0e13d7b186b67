//! Decoding cannot be made to panic or to allocate what the bytes do not
//! hold. Every frame type is generated, encoded, then mutated (flipped,
//! cut, spliced, lengths replaced by huge claims) or replaced by noise, and
//! fed to the codec; the allocator of this test binary counts what each
//! decode allocates on its thread.
//!
//! `REPLOG_FUZZ_CASES=N cargo test --release --test wire_fuzz` runs N cases
//! instead of the default (see the README); `REPLOG_FUZZ_SEED` picks the
//! seed. A failure prints the seed, the case number and the input in hex.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

mod common;

use bytes::BytesMut;
use common::frames::{frame, fuzz_cases, fuzz_seed, huge_claim, mutated, noise};
use common::prefixed;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use replog::wire::{Frame, FrameCodec};
use tokio_util::codec::{Decoder, Encoder};

/// Counts the bytes each thread asks the allocator for.
struct Counting;

thread_local! {
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATED.try_with(|a| a.set(a.get().saturating_add(layout.size())));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATED.try_with(|a| a.set(a.get().saturating_add(new_size)));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocated() -> usize {
    ALLOCATED.with(Cell::get)
}

/// What decoding `len` bytes may allocate at most: the decoded form of a
/// frame (integers widened to 8 bytes, vectors doubling as they grow) is a
/// bounded multiple of its size, and never depends on a claimed length.
fn allowance(len: usize) -> usize {
    64 * len + 4096
}

const MAX_FRAME: usize = 64 * 1024;

/// Feeds one payload, framed, to a fresh codec; returns what it decoded to.
fn decode(payload: &[u8]) -> Result<Option<Frame>, String> {
    let mut codec = FrameCodec::new(MAX_FRAME);
    let mut buf = BytesMut::from(&prefixed(payload)[..]);
    let before = allocated();
    let result = codec.decode(&mut buf);
    let used = allocated() - before;
    if used > allowance(payload.len()) {
        return Err(format!(
            "decoding {} bytes allocated {used} bytes (allowed {})",
            payload.len(),
            allowance(payload.len())
        ));
    }
    Ok(result.ok().flatten())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn crafted_lengths_inside_a_frame_are_refused_without_allocating() {
    // One frame of each kind that holds a length, with that length replaced
    // by a claim of 2^60 and nothing behind it: about 20 bytes each.
    let claims: Vec<Vec<u8>> = vec![
        // Refused { reason: <2^60 bytes> }
        [vec![2], huge_claim(&mut SmallRng::seed_from_u64(1))].concat(),
        // Append { req 1, key None, w Nodes(1), timeout None, message <2^60> }
        [
            vec![3, 1, 0, 0, 1, 0],
            huge_claim(&mut SmallRng::seed_from_u64(2)),
        ]
        .concat(),
        // Entries { entries: <2^60 entries> }
        [vec![11], huge_claim(&mut SmallRng::seed_from_u64(3))].concat(),
        // Listed { req 1, entries: <2^60 pairs> }
        [vec![8, 1], huge_claim(&mut SmallRng::seed_from_u64(4))].concat(),
        // Hello { version 2, cluster Some(1), role Master { id: <2^60> } }
        [
            vec![0, 2, 1, 1, 1],
            huge_claim(&mut SmallRng::seed_from_u64(5)),
        ]
        .concat(),
    ];
    for payload in claims {
        assert!(payload.len() < 32);
        let mut codec = FrameCodec::new(MAX_FRAME);
        let mut buf = BytesMut::from(&prefixed(&payload)[..]);
        let before = allocated();
        let result = codec.decode(&mut buf);
        let used = allocated() - before;
        assert!(result.is_err(), "{} decoded: {result:?}", hex(&payload));
        assert!(
            used <= allowance(payload.len()),
            "{}: {used} bytes allocated",
            hex(&payload)
        );
    }
}

#[test]
fn every_frame_kind_survives_encoding_unchanged() {
    let mut rng = SmallRng::seed_from_u64(7);
    let mut codec = FrameCodec::new(MAX_FRAME);
    for _ in 0..2000 {
        let f = frame(&mut rng);
        let mut buf = BytesMut::new();
        codec.encode(f.clone(), &mut buf).unwrap();
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(f));
    }
}

#[test]
fn a_million_mutated_and_random_frames_never_panic_or_overallocate() {
    let seed = fuzz_seed();
    let n = fuzz_cases(1_000_000);
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut decoded = 0u64;
    for case in 0..n {
        let payload = match case % 4 {
            0 => noise(&mut rng),
            _ => mutated(&mut rng),
        };
        let outcome = std::panic::catch_unwind(|| decode(&payload));
        match outcome {
            Ok(Ok(Some(_))) => decoded += 1,
            Ok(Ok(None)) => {}
            Ok(Err(why)) => panic!("seed {seed} case {case}: {why}; input {}", hex(&payload)),
            Err(_) => panic!(
                "seed {seed} case {case}: decoding panicked; input {}",
                hex(&payload)
            ),
        }
    }
    // The mutations must leave some frames valid, or they test only the
    // first byte.
    assert!(decoded > n / 100, "only {decoded} of {n} inputs decoded");
    eprintln!("{n} inputs, seed {seed}: {decoded} decoded to a frame, none panicked");
}
