//! The whole connection path of a running node — codec, hello, dispatch,
//! the node loop behind it — fed generated, mutated and random frames, as a
//! client of the master, as a client of a secondary, and as the master of a
//! secondary. Nothing may panic or stop a node; every connection ends
//! closed once its peer has sent everything (its requests answered or not),
//! and both nodes still answer a well-formed client afterwards.
//!
//! `REPLOG_FUZZ_CASES=N` sets the number of frames (default one million),
//! `REPLOG_FUZZ_SEED` the seed; a failure prints both.

mod common;

use std::time::Duration;

use bytes::BytesMut;
use common::frames::{frame, fuzz_cases, fuzz_seed, mutated, noise};
use common::{framed, prefixed};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use replog::net::{mem_listener, Mem, MemConnector};
use replog::node::config::{Cluster, NodeConfig};
use replog::wire::{Frame, FrameCodec, Hello, Role, PROTOCOL_VERSION};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;

const CLUSTER: &str = "m=127.0.0.1:1,s1=127.0.0.1:2,s2=127.0.0.1:3";

/// Starts node `id` of [`CLUSTER`] on an in-memory listener.
fn start(id: &str, stop: &CancellationToken) -> MemConnector {
    let cluster = Cluster::parse(CLUSTER, None).unwrap();
    let mut cfg = NodeConfig::new(id, cluster);
    cfg.seed = Some(7);
    let (listener, connector) = mem_listener();
    let stop = stop.clone();
    tokio::spawn(async move {
        replog::node::run::<Mem>(cfg, listener, stop, |_| {})
            .await
            .unwrap()
    });
    connector
}

/// Who the fuzzed connection claims to be, to which node.
#[derive(Debug, Clone, Copy)]
enum Target {
    ClientOfMaster,
    ClientOfSecondary,
    MasterOfSecondary,
}

fn hello(target: Target) -> Frame {
    let cluster = Cluster::parse(CLUSTER, None).unwrap();
    Frame::Hello(Hello {
        version: PROTOCOL_VERSION,
        cluster: Some(cluster.fingerprint()),
        role: match target {
            Target::MasterOfSecondary => Role::Master {
                id: "m".into(),
                epoch: 1,
            },
            _ => Role::Client,
        },
        nonce: None,
        token: None,
    })
}

/// The bytes one connection sends: a hello (usually valid), then frames,
/// most of them valid requests for the role with random fields, some of any
/// kind, some damaged. Returns the bytes and how many frames they hold.
fn connection_bytes(rng: &mut SmallRng, target: Target) -> (Vec<u8>, u64) {
    let mut out = match rng.gen_range(0..20) {
        0 => prefixed(&mutated(rng)),
        1 => noise(rng),
        _ => framed(&hello(target)),
    };
    let n = rng.gen_range(1..40);
    for _ in 0..n {
        let bytes = match rng.gen_range(0..20) {
            0 => prefixed(&mutated(rng)),
            1 => noise(rng),
            2..=4 => framed(&frame(rng)),
            _ => framed(&request(rng, target)),
        };
        out.extend_from_slice(&bytes);
    }
    (out, n + 1)
}

/// A frame the role would really send, with random values.
fn request(rng: &mut SmallRng, target: Target) -> Frame {
    loop {
        let f = frame(rng);
        let fits = match target {
            Target::MasterOfSecondary => matches!(
                f,
                Frame::Sync { .. } | Frame::Entries { .. } | Frame::Heartbeat { .. }
            ),
            _ => matches!(
                f,
                Frame::Append { .. } | Frame::List { .. } | Frame::Health { .. }
            ),
        };
        if fits {
            return f;
        }
    }
}

/// Sends `bytes`, closes the sending side, and waits for the node to close
/// the connection, reading (and decoding) whatever it answers.
async fn exchange(connector: &MemConnector, bytes: Vec<u8>) -> Result<(), String> {
    let stream = connector.connect().await.map_err(|e| e.to_string())?;
    let (mut r, mut w) = tokio::io::split(stream);
    let writer = tokio::spawn(async move {
        // The node may close first (a refused hello): not an error.
        let _ = w.write_all(&bytes).await;
        let _ = w.shutdown().await;
    });
    let mut buf = BytesMut::new();
    let mut codec = FrameCodec::new(64 * 1024 * 1024);
    let read = async {
        loop {
            let mut chunk = [0u8; 8192];
            match r.read(&mut chunk).await {
                Ok(0) | Err(_) => return Ok(()),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            while let Some(_frame) = codec
                .decode(&mut buf)
                .map_err(|e| format!("the node sent an undecodable frame: {e}"))?
            {}
        }
    };
    let result = tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .map_err(|_| "the node did not close the connection".to_string())?;
    let _ = writer.await;
    result
}

/// A well-formed client asks for health: the node is alive and serving.
async fn still_serving(connector: &MemConnector) -> Result<(), String> {
    let mut bytes = framed(&hello(Target::ClientOfMaster));
    bytes.extend_from_slice(&framed(&Frame::Health { req: 1 }));
    let stream = connector.connect().await.map_err(|e| e.to_string())?;
    let (mut r, mut w) = tokio::io::split(stream);
    w.write_all(&bytes).await.map_err(|e| e.to_string())?;
    let mut buf = BytesMut::new();
    let mut codec = FrameCodec::new(64 * 1024 * 1024);
    let answer = async {
        loop {
            let mut chunk = [0u8; 8192];
            let n = r.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("closed before answering".to_string());
            }
            buf.extend_from_slice(&chunk[..n]);
            while let Some(f) = codec.decode(&mut buf).map_err(|e| e.to_string())? {
                if matches!(f, Frame::HealthReport { .. }) {
                    return Ok(());
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), answer)
        .await
        .map_err(|_| "no health answer".to_string())?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_fuzzed_frames_through_every_role_never_stop_a_node() {
    // A panic in any task of either node (tokio would only drop that task)
    // is counted here.
    static PANICS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        default_hook(info);
    }));
    let seed = fuzz_seed();
    let target_frames = fuzz_cases(1_000_000);
    let stop = CancellationToken::new();
    let master = start("m", &stop);
    let secondary = start("s1", &stop);
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut frames = 0u64;
    let mut connections = 0u64;
    // Several connections at once, as a real network would have them.
    let mut batch = tokio::task::JoinSet::new();
    while frames < target_frames {
        let target = match connections % 3 {
            0 => Target::ClientOfMaster,
            1 => Target::ClientOfSecondary,
            _ => Target::MasterOfSecondary,
        };
        let (bytes, n) = connection_bytes(&mut rng, target);
        frames += n;
        connections += 1;
        let connector = match target {
            Target::ClientOfMaster => master.clone(),
            _ => secondary.clone(),
        };
        let case = connections;
        batch.spawn(async move {
            exchange(&connector, bytes)
                .await
                .map_err(|e| format!("connection {case} ({target:?}): {e}"))
        });
        if batch.len() >= 32 {
            if let Some(done) = batch.join_next().await {
                if let Err(e) = done.expect("no panic") {
                    panic!("seed {seed}: {e}");
                }
            }
        }
    }
    while let Some(done) = batch.join_next().await {
        if let Err(e) = done.expect("no panic") {
            panic!("seed {seed}: {e}");
        }
    }
    for (name, node) in [("master", &master), ("secondary", &secondary)] {
        if let Err(e) = still_serving(node).await {
            panic!("seed {seed}: the {name} stopped serving: {e}");
        }
    }
    let panics = PANICS.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        panics, 0,
        "seed {seed}: {panics} task(s) panicked (see above)"
    );
    stop.cancel();
    eprintln!("{frames} frames on {connections} connections, seed {seed}");
}
