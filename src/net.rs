//! The transport the runtime runs on: real tokio TCP in production, or any
//! other stream type (turmoil's simulated TCP in the simulation tests).

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
