//! A tiny HTTP/1.1 webhook receiver on 127.0.0.1 for tests (this crate's and the
//! integration tests'): it records each request and answers with a chosen status.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request the receiver took.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

/// Answers the n-th request with `statuses[n]` (the last one repeats); `None` never answers.
pub async fn receiver(statuses: Vec<Option<u16>>) -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&got);
    tokio::spawn(async move {
        let mut n = 0usize;
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let status = statuses[n.min(statuses.len() - 1)];
            n += 1;
            let seen = Arc::clone(&seen);
            tokio::spawn(async move { serve(stream, status, seen).await });
        }
    });
    (url, got)
}

async fn serve(mut stream: TcpStream, status: Option<u16>, seen: Arc<Mutex<Vec<Received>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = stream.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let headers: HashMap<String, String> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    while buf.len() < header_end + len {
        let n = stream.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    seen.lock().unwrap().push(Received {
        headers,
        body: buf[header_end..header_end + len].to_vec(),
    });
    match status {
        Some(code) => {
            let resp = format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = stream.write_all(resp.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
        // Hold the connection open without answering until the client gives up.
        None => {
            let _ = stream.read(&mut chunk).await;
        }
    }
}
