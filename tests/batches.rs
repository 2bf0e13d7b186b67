//! Batch frames on a real node: an `Appends` frame is taken and answered as
//! its appends would be one by one, whatever `--max-inflight` is; a client
//! of version 5 gets one answer frame per append; hellos outside the
//! versions a node serves are refused with the range.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures_util::{SinkExt, StreamExt};
use replog::client::Client;
use replog::wire::{AppendItem, Frame, FrameCodec, Hello, Role, WriteConcern};
use tokio_util::codec::{FramedRead, FramedWrite};

type Reader = FramedRead<tokio::net::tcp::OwnedReadHalf, FrameCodec>;
type Writer = FramedWrite<tokio::net::tcp::OwnedWriteHalf, FrameCodec>;

/// A raw client connection that said hello as `version`; the node's
/// answer to the hello.
async fn connect(addr: &str, version: u32) -> (Reader, Writer, Frame) {
    let s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (r, w) = s.into_split();
    let mut reader = FramedRead::new(r, FrameCodec::new(1 << 20));
    let mut writer = FramedWrite::new(w, FrameCodec::new(1 << 20));
    let hello = Hello {
        version,
        cluster: None,
        role: Role::Client,
        nonce: None,
        token: None,
    };
    writer.send(Frame::Hello(hello)).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(10), reader.next())
        .await
        .expect("an answer to the hello")
        .expect("not closed")
        .unwrap();
    (reader, writer, answer)
}

fn item(req: u64) -> AppendItem {
    AppendItem {
        req,
        key: Some(format!("key-{req}")),
        w: WriteConcern::Nodes(1),
        timeout_ms: None,
        message: Bytes::from(format!("m{req}")),
        progress: false,
    }
}

/// Reads answer frames until `n` appends are answered; the sequence number
/// each request got, and the answer frames that carried them.
async fn answers(reader: &mut Reader, n: usize) -> (BTreeMap<u64, u64>, Vec<Frame>) {
    let mut seqs = BTreeMap::new();
    let mut frames = Vec::new();
    while seqs.len() < n {
        let frame = tokio::time::timeout(Duration::from_secs(10), reader.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} answered: {seqs:?}", seqs.len()))
            .expect("not closed")
            .unwrap();
        let got = match &frame {
            Frame::Answers { answers } => answers
                .iter()
                .map(|a| (a.req, a.result.clone().expect("appended")))
                .collect(),
            Frame::Appended { req, seq } => vec![(*req, *seq)],
            other => panic!("not an answer: {other:?}"),
        };
        for (req, seq) in got {
            assert!(seqs.insert(req, seq).is_none(), "{req} answered twice");
        }
        frames.push(frame);
    }
    (seqs, frames)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_appends_frame_larger_than_max_inflight_is_answered_whole_and_in_order() {
    let mut c = Cluster::new(1, false, |_| flags(&["--max-inflight", "2"]));
    c.start_all();
    c.wait_up(0).await;
    let m = c.master().to_string();
    let (mut reader, mut writer, welcome) = connect(&m, 6).await;
    assert!(matches!(welcome, Frame::Welcome(_)), "{welcome:?}");
    // Seven appends in one frame, against two credits: the node takes them
    // as credits come back, and never waits on credits its own unsent
    // appends hold.
    let appends = (1..=7).map(item).collect();
    writer.send(Frame::Appends { appends }).await.unwrap();
    let (seqs, _) = answers(&mut reader, 7).await;
    let expected: BTreeMap<u64, u64> = (1..=7).map(|r| (r, r)).collect();
    assert_eq!(seqs, expected, "sequence numbers follow the frame's order");
    // A retry of the whole batch, keys and all, appends nothing new.
    let appends = (1..=7).map(item).collect();
    writer.send(Frame::Appends { appends }).await.unwrap();
    let (again, _) = answers(&mut reader, 7).await;
    assert_eq!(again, expected);
    let listed = Client::connect(&m)
        .await
        .unwrap()
        .list_all(1)
        .await
        .unwrap();
    let want: Vec<(u64, String)> = (1..=7).map(|r| (r, format!("m{r}"))).collect();
    assert_eq!(text(listed), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_5_client_gets_one_answer_frame_per_append() {
    let mut c = Cluster::new(1, false, |_| Vec::new());
    c.start_all();
    c.wait_up(0).await;
    let m = c.master().to_string();
    let (mut reader, mut writer, welcome) = connect(&m, 5).await;
    assert!(matches!(welcome, Frame::Welcome(_)), "{welcome:?}");
    // Sent together, so that their answers are queued together: a version
    // 6 client would have them merged.
    for req in 1..=50 {
        writer.feed(Frame::from(item(req))).await.unwrap();
    }
    writer.flush().await.unwrap();
    let (seqs, frames) = answers(&mut reader, 50).await;
    assert_eq!(seqs.len(), 50);
    assert!(
        frames.iter().all(|f| matches!(f, Frame::Appended { .. })),
        "a version-5 client was sent a frame it cannot read"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hellos_outside_the_served_versions_are_refused_with_the_range() {
    let mut c = Cluster::new(1, false, |_| Vec::new());
    c.start_all();
    c.wait_up(0).await;
    let m = c.master().to_string();
    let newest = replog::wire::PROTOCOL_VERSION;
    for version in [4, newest + 1] {
        let (_, _, answer) = connect(&m, version).await;
        match answer {
            Frame::Refused { reason } => assert!(
                reason.contains(&format!("protocol version {version} "))
                    && reason.contains(&format!("versions 5 to {newest}")),
                "{reason}"
            ),
            other => panic!("version {version} was not refused: {other:?}"),
        }
    }
}
