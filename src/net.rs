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
}

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

/// Writes queued frames to one connection, batching whatever is queued into
/// one flush. Ends when the queue closes or a write fails (logged: a frame
/// that cannot be encoded is a bug worth seeing, not a silent stall).
pub async fn write_frames<W>(
    mut writer: tokio_util::codec::FramedWrite<W, crate::wire::FrameCodec>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<crate::wire::Frame>,
    peer: String,
) where
    W: tokio::io::AsyncWrite + Unpin,
{
    use futures_util::SinkExt;
    let result: Result<(), crate::wire::FrameError> = async {
        while let Some(frame) = rx.recv().await {
            writer.feed(frame).await?;
            while let Ok(frame) = rx.try_recv() {
                writer.feed(frame).await?;
            }
            writer.flush().await?;
        }
        Ok(())
    }
    .await;
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
