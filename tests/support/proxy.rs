//! A TCP stand-in for a Flink REST endpoint whose failure mode a test switches at run time, on one fixed
//! loopback port: closed (nobody listens: connection refused), blackhole (connections are accepted and
//! never answered), or forward (a transparent proxy to a real Flink). Accepted connections are counted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// No listener on the port: connecting fails with "connection refused".
    Closed,
    /// Accepts, reads and discards, never answers.
    Blackhole,
    /// Forwards every connection to this address.
    Forward(SocketAddr),
}

pub struct Proxy {
    pub port: u16,
    accepted: Arc<AtomicUsize>,
    /// Bumped on every mode change: connections of the previous mode end (blackholed ones are closed).
    generation: watch::Sender<u64>,
    listener: Option<JoinHandle<()>>,
    mode: Mode,
}

impl Proxy {
    /// A proxy on a free loopback port, starting in `mode`.
    pub async fn start(mode: Mode) -> Proxy {
        let mut proxy = Proxy {
            port: super::free_port(),
            accepted: Arc::new(AtomicUsize::new(0)),
            generation: watch::channel(0).0,
            listener: None,
            mode: Mode::Closed,
        };
        proxy.set_mode(mode).await;
        proxy
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Connections accepted so far (in every mode).
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Switches the failure mode; connections of the previous mode are closed.
    pub async fn set_mode(&mut self, mode: Mode) {
        if let Some(listener) = self.listener.take() {
            listener.abort();
            let _ = listener.await;
        }
        self.generation.send_modify(|g| *g += 1);
        self.mode = mode;
        if mode == Mode::Closed {
            return;
        }
        // The port was ours a moment ago (SO_REUSEADDR is set by tokio); another process taking it in between
        // would fail here, not silently.
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap_or_else(|e| panic!("cannot bind the proxy port {} again: {e}", self.port));
        let accepted = self.accepted.clone();
        let generation = self.generation.subscribe();
        self.listener = Some(tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                let mut ended = generation.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = ended.changed() => {}
                        _ = serve(stream, mode) => {}
                    }
                });
            }
        }));
    }
}

async fn serve(mut stream: TcpStream, mode: Mode) {
    match mode {
        Mode::Closed => {}
        Mode::Blackhole => {
            let mut sink = [0u8; 4096];
            while let Ok(n) = stream.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        }
        Mode::Forward(target) => {
            if let Ok(mut upstream) = TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut stream, &mut upstream).await;
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(listener) = self.listener.take() {
            listener.abort();
        }
        self.generation.send_modify(|g| *g += 1);
    }
}
