//! A loopback HTTP/1.1 server that stands in for an outside JSON API (an
//! email provider) in tests: it reads each request whole, as the
//! components' outbound client sends it (a Content-Length or a chunked
//! body), and answers with the status and JSON the test's `answer` picks.
//! What the API checks and says stays with each test file.

use anyhow::Result;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;

/// One request as received.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// `POST`, `GET` …
    pub method: String,
    /// The request target (`/email`).
    pub path: String,
    /// Headers by lower-case name.
    pub headers: HashMap<String, String>,
    /// The body bytes, de-chunked.
    pub body: Vec<u8>,
}

impl RawRequest {
    /// A header's value, by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The body as JSON; `null` when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Serves on 127.0.0.1:<free port>, each connection on its own thread (so
/// a slow `answer` lets requests overlap), one request a connection,
/// answered with `answer`'s status and JSON. Returns the address.
pub fn serve<F>(answer: F) -> Result<SocketAddr>
where
    F: Fn(RawRequest) -> (u16, Value) + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let answer = answer.clone();
            std::thread::spawn(move || {
                let _ = exchange(stream, answer.as_ref());
            });
        }
    });
    Ok(addr)
}

fn exchange(mut stream: TcpStream, answer: &dyn Fn(RawRequest) -> (u16, Value)) -> Result<()> {
    let request = read_request(&mut BufReader::new(stream.try_clone()?))?;
    let (status, body) = answer(request);
    write_json(&mut stream, status, &body)
}

/// Reads one HTTP/1.1 request: its request line, its headers, and a
/// Content-Length or chunked body (none without either).
pub fn read_request(reader: &mut impl BufRead) -> Result<RawRequest> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let body = if let Some(len) = headers.get("content-length") {
        let mut body = vec![0; len.parse()?];
        reader.read_exact(&mut body)?;
        body
    } else if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
        read_chunked(reader)?
    } else {
        Vec::new()
    };
    Ok(RawRequest {
        method,
        path,
        headers,
        body,
    })
}

fn read_chunked(reader: &mut impl BufRead) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size)?;
        let size = usize::from_str_radix(size.trim(), 16)?;
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk)?;
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(&chunk[..size]);
    }
}

/// Answers with `status` and `body` as JSON, then closes the connection.
pub fn write_json(stream: &mut impl Write, status: u16, body: &Value) -> Result<()> {
    let body = body.to_string();
    write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    Ok(())
}
