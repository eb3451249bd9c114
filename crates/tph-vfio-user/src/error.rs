//! The crate's one error type.

use std::path::PathBuf;

/// What can go wrong setting up or running a server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another server listens on the socket.
    #[error("{}: the socket is in use (another server accepts connections on it)", .0.display())]
    SocketInUse(PathBuf),
    /// The path exists and is not a socket (it is never removed).
    #[error("{}: exists and is not a socket (it is left alone)", .0.display())]
    NotASocket(PathBuf),
    /// Creating the listening socket failed.
    #[error("{}: cannot listen: {source}", path.display())]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The function cannot be served (no such function, or not an endpoint).
    #[error("{0}")]
    Function(String),
    /// The client does not speak the vfio-user protocol this server speaks.
    #[error("protocol mismatch: {0}")]
    Protocol(String),
    /// The vfio-user server (rust-vmm's `vfio_user` crate) failed.
    #[error("vfio-user: {0}")]
    Server(#[from] vfio_user::Error),
    /// Accepting or relaying a connection failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// [`crate::Stopper::stop`] ended the server before a client came.
    #[error("stopped before a client came")]
    Stopped,
    /// Writing the trace failed.
    #[error("writing the trace: {0}")]
    Trace(#[source] std::io::Error),
}
