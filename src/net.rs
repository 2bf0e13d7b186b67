//! The transport the runtime runs on: real tokio TCP in production, or any
//! other stream type (turmoil's simulated TCP in the simulation tests); and
//! the writer task every connection (node or client) sends frames through.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};

/// Something that can accept and open byte streams.
pub trait Net: Send + Sync + 'static {
    /// A connected byte stream.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// A bound listener.
    type Listener: Send + Sync + 'static;

    /// Waits for the next incoming connection.
    fn accept(
        listener: &Self::Listener,
    ) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send;

    /// Opens a connection to `addr` (`HOST:PORT`).
    fn connect(addr: String) -> impl Future<Output = io::Result<Self::Stream>> + Send;

    /// Whether a simulation drives this transport, one step at a time on
    /// one thread (turmoil): work that may block (reads of the log) then
    /// runs in place, since a blocking thread would finish it outside the
    /// simulation's schedule.
    const SIMULATED: bool = false;
}

/// Any connected byte stream: plain TCP, TLS over TCP, an in-memory or a
/// simulated stream. Connections travel boxed, so that one code path serves
/// them all whatever a transport wraps around them.
pub trait Conn: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Conn for T {}

/// A connection of any kind.
pub type BoxConn = Box<dyn Conn>;

/// Real TCP through tokio.
#[derive(Debug, Clone, Copy)]
pub struct Tcp;

impl Net for Tcp {
    type Stream = tokio::net::TcpStream;
    type Listener = tokio::net::TcpListener;

    async fn accept(listener: &Self::Listener) -> io::Result<(Self::Stream, SocketAddr)> {
        let (stream, addr) = listener.accept().await?;
        // Small frames (acks, heartbeats) must not wait for Nagle.
        stream.set_nodelay(true)?;
        Ok((stream, addr))
    }

    async fn connect(addr: String) -> io::Result<Self::Stream> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        // Dialling a port nobody listens on, in the ephemeral range, can
        // connect a socket to itself (TCP simultaneous open). It would then
        // hold the port the peer needs to bind when it comes back.
        if stream.local_addr()? == stream.peer_addr()? {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "connection refused (connected to itself)",
            ));
        }
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

/// In-memory streams, for tests that drive a node's connection path
/// without sockets: a listener fed by a [`MemConnector`]. Nothing can be
/// dialled from a node on `Mem` (its links keep failing to connect).
#[derive(Debug, Clone, Copy)]
pub struct Mem;

/// The accepting end of [`Mem`].
#[derive(Debug)]
pub struct MemListener {
    /// Server ends of the streams [`MemConnector::connect`] made.
    rx: tokio::sync::Mutex<tokio::sync::mpsc::Receiver<tokio::io::DuplexStream>>,
}

/// Opens in-memory connections to a node listening on a [`MemListener`].
#[derive(Debug, Clone)]
pub struct MemConnector {
    tx: tokio::sync::mpsc::Sender<tokio::io::DuplexStream>,
}

/// A listener and the connector that opens connections to it.
pub fn mem_listener() -> (MemListener, MemConnector) {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    (
        MemListener {
            rx: tokio::sync::Mutex::new(rx),
        },
        MemConnector { tx },
    )
}

impl MemConnector {
    /// Opens a connection; returns the client's end.
    pub async fn connect(&self) -> io::Result<tokio::io::DuplexStream> {
        let (client, server) = tokio::io::duplex(64 * 1024);
        self.tx
            .send(server)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::ConnectionRefused, "listener closed"))?;
        Ok(client)
    }
}

impl Net for Mem {
    type Stream = tokio::io::DuplexStream;
    type Listener = MemListener;

    async fn accept(listener: &Self::Listener) -> io::Result<(Self::Stream, SocketAddr)> {
        match listener.rx.lock().await.recv().await {
            Some(stream) => Ok((stream, SocketAddr::from(([127, 0, 0, 1], 0)))),
            None => {
                // No connector left: nothing will ever come.
                std::future::pending::<()>().await;
                unreachable!()
            }
        }
    }

    async fn connect(_addr: String) -> io::Result<Self::Stream> {
        Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "in-memory transport: nothing to dial",
        ))
    }
}

/// The read half of a framed connection.
pub type FrameReader =
    tokio_util::codec::FramedRead<tokio::io::ReadHalf<BoxConn>, crate::wire::FrameCodec>;

/// The write half of a framed connection.
pub type FrameWriter =
    tokio_util::codec::FramedWrite<tokio::io::WriteHalf<BoxConn>, crate::wire::FrameCodec>;

/// Why [`dial`] failed.
#[derive(Debug)]
pub enum DialError {
    /// Nothing answered in time, or the connection failed: try again later.
    Unreachable(String),
    /// TLS itself refused the peer (a certificate of another CA or name, an
    /// alert): a misconfiguration, not a network hiccup. Holds TLS's reason.
    TlsRefused(String),
}

impl std::fmt::Display for DialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DialError::Unreachable(s) => f.write_str(s),
            DialError::TlsRefused(s) => write!(f, "TLS handshake failed: {s}"),
        }
    }
}

/// Dials `addr` over `N`, wraps the connection in TLS when `tls` is given
/// (checking the node's certificate against the host dialled), says
/// `hello`, and returns the framed halves with the first answer (`None`
/// if the connection closed). Every step has `deadline`. The one way a
/// client, a master's link and a test open a replog connection.
pub async fn dial<N: Net>(
    addr: &str,
    tls: Option<&tokio_rustls::TlsConnector>,
    hello: crate::wire::Hello,
    max_frame: usize,
    deadline: std::time::Duration,
) -> Result<
    (
        FrameReader,
        FrameWriter,
        Option<Result<crate::wire::Frame, crate::wire::FrameError>>,
    ),
    DialError,
> {
    use futures_util::{SinkExt, StreamExt};
    let unreachable = |s: String| DialError::Unreachable(s);
    let stream = tokio::time::timeout(deadline, N::connect(addr.to_string()))
        .await
        .map_err(|_| unreachable("connect timed out".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    let stream: BoxConn = match tls {
        None => Box::new(stream),
        Some(tls) => {
            let name = crate::tls::server_name(addr).map_err(|e| unreachable(e.to_string()))?;
            let tls_stream = tokio::time::timeout(deadline, tls.connect(name, stream))
                .await
                .map_err(|_| unreachable("the TLS handshake timed out".into()))?
                .map_err(|e| {
                    // rustls reports what TLS itself refused as invalid data.
                    if e.kind() == io::ErrorKind::InvalidData {
                        DialError::TlsRefused(e.to_string())
                    } else {
                        unreachable(format!("TLS handshake failed: {e}"))
                    }
                })?;
            Box::new(tls_stream)
        }
    };
    let (r, w) = tokio::io::split(stream);
    let mut reader = tokio_util::codec::FramedRead::new(r, crate::wire::FrameCodec::new(max_frame));
    let mut writer =
        tokio_util::codec::FramedWrite::new(w, crate::wire::FrameCodec::new(max_frame));
    tokio::time::timeout(deadline, writer.send(crate::wire::Frame::Hello(hello)))
        .await
        .map_err(|_| unreachable("sending the hello timed out".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    let answer = tokio::time::timeout(deadline, reader.next())
        .await
        .map_err(|_| unreachable("no answer to hello".into()))?;
    Ok((reader, writer, answer))
}

/// Frames queued for one connection's writer task. Bounded: whoever fills
/// it faster than the peer reads either waits ([`Outbox::send`], tasks that
/// may wait) or, never waiting, closes the connection ([`Outbox::offer`],
/// the node loop).
#[derive(Debug, Clone)]
pub struct Outbox {
    /// To the writer task.
    tx: tokio::sync::mpsc::Sender<crate::wire::Frame>,
    /// Cancelled to close the connection (the writer flushes what is
    /// queued, then stops).
    close: tokio_util::sync::CancellationToken,
}

impl Outbox {
    /// An outbox of `capacity` frames and the receiver its writer reads.
    pub fn new(capacity: usize) -> (Outbox, OutboxReceiver) {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
        let close = tokio_util::sync::CancellationToken::new();
        (
            Outbox {
                tx,
                close: close.clone(),
            },
            OutboxReceiver { rx, close },
        )
    }

    /// Queues a frame without waiting. A full queue means the peer is not
    /// reading: the connection is closed and `false` returned.
    pub fn offer(&self, frame: crate::wire::Frame) -> bool {
        match self.tx.try_send(frame) {
            Ok(()) => true,
            Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {
                self.close.cancel();
                false
            }
            Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Queues an advisory frame (progress) only while at most one frame is
    /// queued, and never closes the connection: answers, whose room the
    /// queue is sized for, are never crowded out (at most two advisory
    /// frames are ever queued among them).
    pub fn offer_spare(&self, frame: crate::wire::Frame) -> bool {
        if self.tx.capacity() + 1 < self.tx.max_capacity() {
            return false;
        }
        self.tx.try_send(frame).is_ok()
    }

    /// Queues a frame, waiting for room; `false` once the connection closes.
    pub async fn send(&self, frame: crate::wire::Frame) -> bool {
        tokio::select! {
            biased;
            _ = self.close.cancelled() => false,
            sent = self.tx.send(frame) => sent.is_ok(),
        }
    }

    /// Closes the connection: what is queued is still written, then the
    /// writer stops.
    pub fn close(&self) {
        self.close.cancel();
    }

    /// Resolves once the connection is closed (by [`Outbox::close`], a full
    /// queue, or its writer failing).
    pub async fn closed(&self) {
        tokio::select! {
            _ = self.close.cancelled() => {}
            _ = self.tx.closed() => {}
        }
    }
}

/// The writer's end of an [`Outbox`].
#[derive(Debug)]
pub struct OutboxReceiver {
    rx: tokio::sync::mpsc::Receiver<crate::wire::Frame>,
    close: tokio_util::sync::CancellationToken,
}

impl OutboxReceiver {
    /// The next queued frame; `None` once the outbox is closed and what was
    /// queued before has been taken. For a reader that is not a socket
    /// writer (the HTTP front end routes answers to its requests).
    pub async fn recv(&mut self) -> Option<crate::wire::Frame> {
        tokio::select! {
            biased;
            frame = self.rx.recv() => frame,
            _ = self.close.cancelled() => self.rx.try_recv().ok(),
        }
    }
}

/// What a client connection may have outstanding; answers give their
/// credit back once they are written to the socket, not when queued, so a
/// peer that does not read runs out of credit and stops being read.
#[derive(Debug)]
pub struct Credits {
    /// One per request not yet answered (`--max-inflight`).
    pub inflight: tokio::sync::Semaphore,
    /// `List` pages read from the log and not yet written: a slow reader
    /// holds at most this many pages in memory.
    pub list_pages: tokio::sync::Semaphore,
    /// The number of `inflight` credits when none is taken.
    pub max_inflight: usize,
}

impl Credits {
    /// Credits for `max_inflight` requests and `list_pages` pages.
    pub fn new(max_inflight: usize, list_pages: usize) -> Self {
        Credits {
            inflight: tokio::sync::Semaphore::new(max_inflight),
            list_pages: tokio::sync::Semaphore::new(list_pages),
            max_inflight,
        }
    }

    /// Whether no request is in flight.
    pub fn idle(&self) -> bool {
        self.inflight.available_permits() >= self.max_inflight
    }

    /// Gives back what a written frame held.
    fn written(&self, frame_kind: Answer) {
        match frame_kind {
            Answer::None => {}
            Answer::Requests(n) => self.inflight.add_permits(n),
            Answer::ListPage => {
                self.inflight.add_permits(1);
                self.list_pages.add_permits(1);
            }
        }
    }
}

/// What a frame about to be written answers.
#[derive(Debug, Clone, Copy)]
enum Answer {
    None,
    /// Answers this many requests.
    Requests(usize),
    ListPage,
}

fn answer_kind(frame: &crate::wire::Frame) -> Answer {
    use crate::wire::Frame;
    match frame {
        Frame::Appended { .. }
        | Frame::AppendFailed { .. }
        | Frame::HealthReport { .. }
        | Frame::LogsListed { .. }
        | Frame::LogsDetailed { .. } => Answer::Requests(1),
        Frame::Answers { answers } => Answer::Requests(answers.len()),
        Frame::Listed { .. } | Frame::Digests { .. } => Answer::ListPage,
        _ => Answer::None,
    }
}

/// What a writer merges of the frames it finds queued together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coalesce {
    /// Nothing: every frame goes out as it was queued.
    Off,
    /// A client's appends: consecutive `Append` frames become one `Appends`
    /// frame of at most this many bytes of messages and keys (counted as
    /// [`crate::wire::AppendItem::cost`]), and at most [`MAX_BATCH`]
    /// appends.
    Appends {
        /// The node's `--max-message-bytes`: its frames hold that much
        /// and 64 KiB more.
        max_bytes: usize,
    },
    /// A node's answers to a client of version 6 or later: consecutive
    /// `Appended` and `AppendFailed` frames become one `Answers` frame.
    Answers,
}

/// Most appends, or answers, merged into one frame.
pub const MAX_BATCH: usize = 1024;

/// Most bytes of answers merged into one frame, counted generously: far
/// below the 64 KiB every frame limit holds beyond `--max-message-bytes`.
const MAX_ANSWER_BYTES: usize = 32 * 1024;

impl Coalesce {
    /// `first` and whatever of the same kind follows it in the queue, merged
    /// into one frame; the first frame taken that does not belong is
    /// returned too, to go out next.
    fn merge(
        self,
        first: crate::wire::Frame,
        rx: &mut tokio::sync::mpsc::Receiver<crate::wire::Frame>,
    ) -> (crate::wire::Frame, Option<crate::wire::Frame>) {
        use crate::wire::{AppendAnswer, AppendItem};
        match self {
            Coalesce::Off => (first, None),
            Coalesce::Appends { max_bytes } => gather::<AppendItem>(first, rx, max_bytes),
            Coalesce::Answers => gather::<AppendAnswer>(first, rx, MAX_ANSWER_BYTES),
        }
    }
}

/// What a batch frame holds: appends, or answers.
trait Batched: Sized + Into<crate::wire::Frame> {
    /// The frame as an item, or the frame back if it is not one.
    fn take(frame: crate::wire::Frame) -> Result<Self, crate::wire::Frame>;
    /// Bytes it counts against the batch.
    fn cost(&self) -> usize;
    /// The batch frame holding `items`.
    fn batch(items: Vec<Self>) -> crate::wire::Frame;
}

impl Batched for crate::wire::AppendItem {
    fn take(frame: crate::wire::Frame) -> Result<Self, crate::wire::Frame> {
        frame.into_append_item()
    }
    fn cost(&self) -> usize {
        crate::wire::AppendItem::cost(self)
    }
    fn batch(appends: Vec<Self>) -> crate::wire::Frame {
        crate::wire::Frame::Appends { appends }
    }
}

impl Batched for crate::wire::AppendAnswer {
    fn take(frame: crate::wire::Frame) -> Result<Self, crate::wire::Frame> {
        frame.into_append_answer()
    }
    /// At most: the request id, the result's tags and numbers, and the
    /// text of an error.
    fn cost(&self) -> usize {
        use crate::wire::AppendError;
        let text = match &self.result {
            Err(
                AppendError::BadRequest(s) | AppendError::Storage(s) | AppendError::Unauthorized(s),
            ) => s.len(),
            Err(AppendError::NotMaster { master_addr }) => master_addr.len(),
            _ => 0,
        };
        32 + text
    }
    fn batch(answers: Vec<Self>) -> crate::wire::Frame {
        crate::wire::Frame::Answers { answers }
    }
}

/// `first` and the frames of the same kind queued after it, up to
/// [`MAX_BATCH`] of them and `max_bytes` by their cost, in one frame (one
/// alone goes out as it came); and the first frame taken that does not
/// belong, to go out next.
fn gather<T: Batched>(
    first: crate::wire::Frame,
    rx: &mut tokio::sync::mpsc::Receiver<crate::wire::Frame>,
    max_bytes: usize,
) -> (crate::wire::Frame, Option<crate::wire::Frame>) {
    let first = match T::take(first) {
        Ok(item) => item,
        Err(other) => return (other, None),
    };
    let mut bytes = first.cost();
    let mut items = vec![first];
    let mut next = None;
    while items.len() < MAX_BATCH {
        let Ok(frame) = rx.try_recv() else { break };
        match T::take(frame) {
            Ok(item) => {
                let c = item.cost();
                if bytes + c > max_bytes {
                    next = Some(item.into());
                    break;
                }
                bytes += c;
                items.push(item);
            }
            Err(other) => {
                next = Some(other);
                break;
            }
        }
    }
    let frame = match items.len() {
        1 => items.pop().expect("one").into(),
        _ => T::batch(items),
    };
    (frame, next)
}

/// Writes queued frames to one connection, batching whatever is queued into
/// one flush (and merging frames as `coalesce` says), and gives back each
/// answer's credits once it is written. Ends when the outbox closes (after
/// writing what is queued) or a write fails (logged: a frame that cannot be
/// encoded is a bug worth seeing, not a silent stall).
pub async fn write_frames<W>(
    mut writer: tokio_util::codec::FramedWrite<W, crate::wire::FrameCodec>,
    mut outbox: OutboxReceiver,
    peer: String,
    credits: Option<std::sync::Arc<Credits>>,
    coalesce: Coalesce,
) where
    W: tokio::io::AsyncWrite + Unpin,
{
    use futures_util::SinkExt;
    let mut written: Vec<Answer> = Vec::new();
    let result: Result<(), crate::wire::FrameError> = async {
        loop {
            let first = tokio::select! {
                biased;
                frame = outbox.rx.recv() => frame,
                _ = outbox.close.cancelled() => outbox.rx.try_recv().ok(),
            };
            let Some(frame) = first else { break };
            if coalesce != Coalesce::Off && outbox.rx.is_empty() {
                // Alone in the queue: let the tasks already woken run first
                // (say, those a burst of answers just released), so that
                // what they queue goes out in this write rather than one
                // write each. No timer: when nothing else is runnable this
                // costs one pass of the scheduler.
                tokio::task::yield_now().await;
            }
            let mut next = Some(frame);
            while let Some(frame) = next.take().or_else(|| outbox.rx.try_recv().ok()) {
                let (frame, after) = coalesce.merge(frame, &mut outbox.rx);
                next = after;
                written.push(answer_kind(&frame));
                writer.feed(frame).await?;
            }
            writer.flush().await?;
            if let Some(c) = &credits {
                for kind in written.drain(..) {
                    c.written(kind);
                }
            }
            written.clear();
        }
        // The queue closed: say so to the peer (a FIN over TCP). A split
        // stream's write half does not do it when dropped, and the peer
        // would otherwise wait for more until its idle timeout.
        writer.close().await?;
        Ok(())
    }
    .await;
    // Whoever waits on this connection learns it is gone.
    outbox.close.cancel();
    outbox.rx.close();
    if let Err(e) = result {
        match e {
            crate::wire::FrameError::Io(_) => {
                tracing::debug!(%peer, error = %e, "connection write failed")
            }
            other => {
                tracing::error!(%peer, error = %other, "cannot send a frame; closing the connection")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{AppendError, AppendItem, Frame, FrameCodec, WriteConcern};
    use futures_util::StreamExt;

    fn append(req: u64, len: usize) -> Frame {
        Frame::Append {
            req,
            key: None,
            w: WriteConcern::Nodes(1),
            timeout_ms: None,
            message: bytes::Bytes::from(vec![b'x'; len]),
            progress: false,
        }
    }

    fn reqs(frame: &Frame) -> Vec<u64> {
        match frame {
            Frame::Appends { appends } => appends.iter().map(|a: &AppendItem| a.req).collect(),
            Frame::Answers { answers } => answers.iter().map(|a| a.req).collect(),
            Frame::Append { req, .. } | Frame::Appended { req, .. } => vec![*req],
            Frame::AppendFailed { req, .. } | Frame::Health { req } => vec![*req],
            other => panic!("unexpected {other:?}"),
        }
    }

    /// Writes `frames` through a writer that merges as `coalesce` says, and
    /// returns what the peer reads.
    async fn through_writer(coalesce: Coalesce, frames: Vec<Frame>) -> Vec<Frame> {
        let (ours, theirs) = tokio::io::duplex(1 << 20);
        let (outbox, rx) = Outbox::new(frames.len() + 1);
        for f in frames {
            assert!(outbox.offer(f));
        }
        outbox.close();
        let writer = tokio_util::codec::FramedWrite::new(ours, FrameCodec::new(1 << 20));
        write_frames(writer, rx, "test".into(), None, coalesce).await;
        let reader = tokio_util::codec::FramedRead::new(theirs, FrameCodec::new(1 << 20));
        reader.map(|f| f.expect("decodes")).collect().await
    }

    #[tokio::test]
    async fn queued_appends_go_out_as_one_frame_in_order_within_the_byte_limit() {
        // Room for two 100-byte appends (132 bytes each) in 300 bytes.
        let frames = vec![
            append(1, 100),
            append(2, 100),
            append(3, 100),
            Frame::Health { req: 4 },
            append(5, 100),
        ];
        let got = through_writer(Coalesce::Appends { max_bytes: 300 }, frames).await;
        let shape: Vec<Vec<u64>> = got.iter().map(reqs).collect();
        assert_eq!(shape, [vec![1, 2], vec![3], vec![4], vec![5]]);
        assert!(matches!(got[0], Frame::Appends { .. }));
        // Alone, an append goes as it came.
        assert!(matches!(got[1], Frame::Append { .. }));
        assert!(matches!(got[3], Frame::Append { .. }));
    }

    #[tokio::test]
    async fn at_most_max_batch_appends_share_a_frame() {
        let frames = (0..MAX_BATCH as u64 + 3).map(|r| append(r, 1)).collect();
        let got = through_writer(Coalesce::Appends { max_bytes: 1 << 20 }, frames).await;
        let sizes: Vec<usize> = got.iter().map(|f| reqs(f).len()).collect();
        assert_eq!(sizes, [MAX_BATCH, 3]);
    }

    #[tokio::test]
    async fn without_coalescing_frames_go_out_as_queued() {
        let frames = vec![append(1, 10), append(2, 10)];
        let got = through_writer(Coalesce::Off, frames.clone()).await;
        assert_eq!(got, frames);
    }

    #[tokio::test]
    async fn answers_are_merged_and_give_back_one_credit_each() {
        let (ours, theirs) = tokio::io::duplex(1 << 20);
        let credits = std::sync::Arc::new(Credits::new(8, 1));
        let taken = credits.inflight.try_acquire_many(3).expect("free");
        taken.forget();
        let (outbox, rx) = Outbox::new(8);
        let error = AppendError::BadRequest("no".into());
        assert!(outbox.offer(Frame::Appended { req: 1, seq: 10 }));
        assert!(outbox.offer(Frame::AppendFailed { req: 2, error }));
        assert!(outbox.offer(Frame::Appended { req: 3, seq: 11 }));
        outbox.close();
        let writer = tokio_util::codec::FramedWrite::new(ours, FrameCodec::new(1 << 20));
        write_frames(
            writer,
            rx,
            "test".into(),
            Some(credits.clone()),
            Coalesce::Answers,
        )
        .await;
        assert!(
            credits.idle(),
            "three answers in one frame give back three credits"
        );
        let reader = tokio_util::codec::FramedRead::new(theirs, FrameCodec::new(1 << 20));
        let got: Vec<Frame> = reader.map(|f| f.expect("decodes")).collect().await;
        assert_eq!(got.len(), 1);
        assert_eq!(reqs(&got[0]), [1, 2, 3]);
        let Frame::Answers { answers } = &got[0] else {
            panic!("{got:?}")
        };
        assert_eq!(
            Frame::from(answers[2].clone()),
            Frame::Appended { req: 3, seq: 11 }
        );
        assert!(answers[1].result.is_err());
    }
}
