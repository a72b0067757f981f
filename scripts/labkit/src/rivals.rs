//! The rivals of the echo servers' benchmarks (labs 7.6 and 7.9): tokio echo servers as a tokio
//! user writes them, on the multi-threaded runtime of `#[tokio::main]` and on a
//! `current_thread` runtime, each listening on a fresh port with a backlog of 1,024.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Both tokio runtimes, built once; [`TokioEcho::start`] puts a new echo server on either.
pub struct TokioEcho {
    multi: tokio::runtime::Runtime,
    current: tokio::runtime::Handle,
}

impl TokioEcho {
    pub fn new() -> TokioEcho {
        let multi = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("tokio multi-thread runtime");
        // A current_thread runtime runs its tasks and drives its I/O only inside
        // `Runtime::block_on`: one thread owns it and blocks there forever.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let current = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio current-thread runtime");
            tx.send(current.handle().clone())
                .expect("the benchmark waits for the handle");
            current.block_on(std::future::pending::<()>());
        });
        let current = rx.recv().expect("current-thread runtime handle");
        TokioEcho { multi, current }
    }

    /// A new echo server on 127.0.0.1, on the multi-threaded runtime or the current-thread one.
    pub fn start(&self, multi_thread: bool) -> SocketAddr {
        let handle = if multi_thread {
            self.multi.handle()
        } else {
            &self.current
        };
        let listener = handle
            .block_on(async {
                let socket = TcpSocket::new_v4()?;
                socket.set_reuseaddr(true)?;
                socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
                socket.listen(1024)
            })
            .expect("tokio listener");
        let addr = listener.local_addr().expect("the listener's address");
        handle.spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        tokio::spawn(echo(stream));
                    }
                    Err(e) => eprintln!("tokio accept: {e}"),
                }
            }
        });
        addr
    }
}

impl Default for TokioEcho {
    fn default() -> TokioEcho {
        TokioEcho::new()
    }
}

async fn echo(mut stream: TcpStream) {
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}
