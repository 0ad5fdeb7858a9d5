//! The local host holds slow, silent and surplus clients to its connection
//! limits: each test starts the host binary with small limits on its
//! command line, plays one kind of bad client over raw TCP, and checks that
//! the client is cut off (within a generous multiple of the limit) while
//! ordinary requests are still served.

use anyhow::{Context, Result, bail, ensure};
use gatehouse_host::limits::{accept_backoff, accept_error_needs_backoff};
use gatehouse_tests::{TempDir, cache_dir, free_port, get, host_binary, root, wasm};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a limit of one second may take to show: five times the limit,
/// so a loaded machine cannot fail the test, while "never" still does.
const WITHIN: Duration = Duration::from_secs(5);

/// A limit no test reaches, for the limits a test is not about.
const LONG: &str = "60";

fn probe_app() -> PathBuf {
    root().join("tests/conformance/probe-app")
}

/// The host binary serving the probe app with `limits` on its command
/// line, on a free loopback port; killed on drop.
struct LimitedHost {
    port: u16,
    child: Child,
    state: TempDir,
}

impl LimitedHost {
    fn start(limits: &[(&str, &str)]) -> Result<LimitedHost> {
        wasm("probe")?;
        let state = TempDir::new("limits")?;
        let port = free_port()?;
        let log = std::fs::File::create(state.path().join("host.log"))?;
        let mut command = Command::new(host_binary()?);
        command
            .args(["up", "--migrations", "none", "--quiet", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--manifest")
            .arg(probe_app().join("spin.toml"))
            .arg("--runtime-config-file")
            .arg(probe_app().join("runtime-config.toml"))
            .arg("--state-dir")
            .arg(state.path())
            .arg("--cache-dir")
            .arg(cache_dir())
            .env("SPIN_VARIABLE_API_TOKEN", "x")
            .stdout(Stdio::null())
            .stderr(log);
        for (flag, value) in limits {
            command.arg(flag).arg(value);
        }
        let child = command.spawn()?;
        let mut host = LimitedHost { port, child, state };
        let deadline = Instant::now() + Duration::from_secs(30);
        while get(&host.url("/probe/counter"), &[])
            .map(|r| r.status)
            .unwrap_or(0)
            != 200
        {
            if let Some(status) = host.child.try_wait()? {
                bail!("host exited with {status}: {}", host.log());
            }
            ensure!(
                Instant::now() < deadline,
                "host did not come up: {}",
                host.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(host)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn connect(&self) -> Result<TcpStream> {
        let stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_millis(100)))?;
        Ok(stream)
    }

    /// An ordinary request on a fresh connection is answered.
    fn serves_normally(&self) -> Result<()> {
        let reply = get(&self.url("/probe/counter"), &[])?;
        ensure!(
            reply.status == 200,
            "status {}: {}",
            reply.status,
            reply.text()
        );
        Ok(())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.state.path().join("host.log")).unwrap_or_default()
    }
}

impl Drop for LimitedHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn timed_out(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

fn closed_by_peer(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
    )
}

/// Whether the host closes `stream` within `within`, reading (and
/// discarding) whatever it sends until then.
fn closed_within(stream: &mut TcpStream, within: Duration) -> Result<bool> {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(_) => {}
            Err(e) if closed_by_peer(&e) => return Ok(true),
            Err(e) if timed_out(&e) => {}
            Err(e) => return Err(e.into()),
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
    }
}

/// A response read off a raw connection.
struct RawReply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// Reads one `Content-Length`-framed response from `stream`.
fn read_response(stream: &mut TcpStream, within: Duration) -> Result<RawReply> {
    let deadline = Instant::now() + within;
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).into_owned();
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .with_context(|| format!("no status line in {head:?}"))?;
            if let Some(body) = whole_body(&head, &data[end + 4..])? {
                return Ok(RawReply { status, head, body });
            }
        }
        match stream.read(&mut buf) {
            Ok(0) => bail!(
                "connection closed before a whole response: {:?}",
                String::from_utf8_lossy(&data)
            ),
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e) if timed_out(&e) => {}
            Err(e) => return Err(e.into()),
        }
        ensure!(Instant::now() < deadline, "no response within {within:?}");
    }
}

/// The body after `head` once all of it is in `rest`: framed by
/// `Content-Length`, or chunked (a guest that gives no length is sent
/// chunked, as Spin sends it).
fn whole_body(head: &str, rest: &[u8]) -> Result<Option<Vec<u8>>> {
    let field = |wanted: &str| {
        head.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case(wanted)
                .then(|| value.trim().to_string())
        })
    };
    if let Some(length) = field("content-length") {
        let length: usize = length.parse()?;
        return Ok((rest.len() >= length).then(|| rest[..length].to_vec()));
    }
    ensure!(
        field("transfer-encoding").as_deref() == Some("chunked"),
        "neither a length nor chunked in {head:?}"
    );
    let (mut at, mut body) = (0, Vec::new());
    loop {
        let Some(line_end) = rest[at..].windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size =
            usize::from_str_radix(std::str::from_utf8(&rest[at..at + line_end])?.trim(), 16)?;
        let start = at + line_end + 2;
        if rest.len() < start + size + 2 {
            return Ok(None);
        }
        if size == 0 {
            return Ok(Some(body));
        }
        body.extend_from_slice(&rest[start..start + size]);
        at = start + size + 2;
    }
}

/// Sends a keep-alive `GET path` on `stream` and reads its response.
fn exchange(stream: &mut TcpStream, path: &str) -> Result<RawReply> {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: limits.test\r\n\r\n")?;
    read_response(stream, WITHIN)
}

/// Writes `piece` to a clone of `stream` every 200 ms until the host closes
/// it or the returned flag is set: a client that keeps sending, slowly.
fn trickle(stream: &TcpStream, piece: &'static [u8]) -> Result<Arc<AtomicBool>> {
    let mut writer = stream.try_clone()?;
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    std::thread::spawn(move || {
        while !stopped.load(Ordering::Relaxed) {
            if writer.write_all(piece).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    Ok(stop)
}

#[test]
fn a_client_that_trickles_its_headers_is_disconnected_after_the_header_timeout() -> Result<()> {
    let host = LimitedHost::start(&[
        ("--header-read-timeout", "1"),
        ("--idle-timeout", LONG),
        ("--body-timeout", LONG),
    ])?;
    let mut slow = host.connect()?;
    slow.write_all(b"GET /probe/echo HTTP/1.1\r\nHost: limits.test\r\n")?;
    let stop = trickle(&slow, b"x-slow: 1\r\n")?;
    host.serves_normally()?;
    let closed = closed_within(&mut slow, WITHIN)?;
    stop.store(true, Ordering::Relaxed);
    assert!(
        closed,
        "a head still incomplete after the header timeout was not cut off"
    );
    host.serves_normally()
}

#[test]
fn a_connection_that_never_sends_a_request_is_closed_after_the_idle_timeout() -> Result<()> {
    let host = LimitedHost::start(&[
        ("--idle-timeout", "1"),
        ("--header-read-timeout", LONG),
        ("--body-timeout", LONG),
    ])?;
    let mut silent = (0..20)
        .map(|_| host.connect())
        .collect::<Result<Vec<_>>>()?;
    host.serves_normally()?;
    let started = Instant::now();
    for (i, stream) in silent.iter_mut().enumerate() {
        let left = WITHIN.saturating_sub(started.elapsed());
        assert!(
            closed_within(stream, left)?,
            "silent connection {i} is still open"
        );
    }
    host.serves_normally()
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() -> Result<()> {
    let host = LimitedHost::start(&[
        ("--idle-timeout", "1"),
        ("--header-read-timeout", LONG),
        ("--body-timeout", LONG),
    ])?;
    let mut kept = host.connect()?;
    let reply = exchange(&mut kept, "/probe/counter")?;
    assert_eq!(reply.status, 200, "{}", reply.head);
    host.serves_normally()?;
    assert!(
        closed_within(&mut kept, WITHIN)?,
        "a kept-alive connection with no request stayed open"
    );
    host.serves_normally()
}

/// The idle limit is about silence, not age: a connection that keeps
/// asking outlives it.
#[test]
fn a_connection_in_steady_use_outlives_the_idle_timeout() -> Result<()> {
    let host = LimitedHost::start(&[
        ("--idle-timeout", "3"),
        ("--header-read-timeout", LONG),
        ("--body-timeout", LONG),
    ])?;
    let mut busy = host.connect()?;
    let started = Instant::now();
    let mut requests = 0;
    while started.elapsed() < Duration::from_secs(4) {
        let reply = exchange(&mut busy, "/probe/counter")?;
        assert_eq!(reply.status, 200, "{}", reply.head);
        requests += 1;
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(requests > 1);
    Ok(())
}

/// What a request cut off by the body timeout gets: a 408 problem, and
/// the connection closed after it.
fn assert_body_timed_out(stream: &mut TcpStream) -> Result<()> {
    let reply = read_response(stream, WITHIN)?;
    assert_eq!(reply.status, 408, "{}", reply.head);
    assert!(
        reply
            .head
            .to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{}",
        reply.head
    );
    let problem: serde_json::Value = serde_json::from_slice(&reply.body)?;
    assert_eq!(problem["code"], "request_timeout", "{problem}");
    assert_eq!(problem["status"], 408, "{problem}");
    assert!(
        closed_within(stream, WITHIN)?,
        "connection left open after the 408"
    );
    Ok(())
}

#[test]
fn a_body_that_trickles_in_is_answered_408_after_the_body_timeout() -> Result<()> {
    let host = LimitedHost::start(&[
        ("--body-timeout", "1"),
        ("--header-read-timeout", LONG),
        ("--idle-timeout", LONG),
    ])?;
    let mut slow = host.connect()?;
    slow.write_all(
        b"POST /probe/echo HTTP/1.1\r\nHost: limits.test\r\nContent-Length: 1000\r\n\r\n0123456789",
    )?;
    let stop = trickle(&slow, b"x")?;
    host.serves_normally()?;
    let outcome = assert_body_timed_out(&mut slow);
    stop.store(true, Ordering::Relaxed);
    outcome?;
    host.serves_normally()
}

/// A chunked body is not buffered by the host but streamed to the
/// component; the deadline holds there too.
#[test]
fn a_streamed_body_that_stalls_is_answered_408_after_the_body_timeout() -> Result<()> {
    let host = LimitedHost::start(&[
        ("--body-timeout", "1"),
        ("--header-read-timeout", LONG),
        ("--idle-timeout", LONG),
    ])?;
    let mut slow = host.connect()?;
    slow.write_all(
        b"POST /probe/echo HTTP/1.1\r\nHost: limits.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    )?;
    host.serves_normally()?;
    assert_body_timed_out(&mut slow)?;
    host.serves_normally()
}

#[test]
fn a_body_that_arrives_in_time_is_served() -> Result<()> {
    let host = LimitedHost::start(&[("--body-timeout", "1")])?;
    let mut client = host.connect()?;
    client.write_all(
        b"POST /probe/echo HTTP/1.1\r\nHost: limits.test\r\nContent-Length: 5\r\n\r\nhello",
    )?;
    let reply = read_response(&mut client, WITHIN)?;
    assert_eq!(reply.status, 200, "{}", reply.head);
    let echo: serde_json::Value = serde_json::from_slice(&reply.body)?;
    assert_eq!(echo["body_len"], 5, "{echo}");
    Ok(())
}

#[test]
fn a_connection_over_the_cap_waits_until_an_open_one_closes() -> Result<()> {
    let host = LimitedHost::start(&[
        ("--max-connections", "2"),
        ("--header-read-timeout", LONG),
        ("--idle-timeout", LONG),
        ("--body-timeout", LONG),
    ])?;
    // Two connections, each proven accepted by an answered request and
    // kept open.
    let mut first = host.connect()?;
    let mut second = host.connect()?;
    for stream in [&mut first, &mut second] {
        let reply = exchange(stream, "/probe/counter")?;
        assert_eq!(reply.status, 200, "{}", reply.head);
    }
    // The third gets through the kernel's backlog but no answer.
    let mut third = host.connect()?;
    write!(
        third,
        "GET /probe/counter HTTP/1.1\r\nHost: limits.test\r\n\r\n"
    )?;
    let mut buf = [0u8; 64];
    let waited = Instant::now();
    while waited.elapsed() < Duration::from_secs(1) {
        match third.read(&mut buf) {
            Ok(n) => bail!("a connection over the cap was answered ({n} bytes)"),
            Err(e) if timed_out(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // One closes; the waiting connection is accepted and answered.
    drop(first);
    let reply = read_response(&mut third, WITHIN)?;
    assert_eq!(reply.status, 200, "{}", reply.head);
    // The open ones still work, and with them closed so do new ones.
    let reply = exchange(&mut second, "/probe/counter")?;
    assert_eq!(reply.status, 200, "{}", reply.head);
    drop(second);
    drop(third);
    host.serves_normally()
}

#[test]
fn a_limit_flag_that_is_not_a_sensible_number_stops_the_host_at_start() -> Result<()> {
    for (flag, value) in [
        ("--max-connections", "0"),
        ("--max-connections", "many"),
        ("--header-read-timeout", "0"),
        ("--idle-timeout", "-1"),
        ("--body-timeout", "forever"),
    ] {
        let state = TempDir::new("limits-flag")?;
        let out = Command::new(host_binary()?)
            .args(["up", "--listen", "127.0.0.1:0", "--migrations", "none"])
            .arg("--manifest")
            .arg(probe_app().join("spin.toml"))
            .arg("--state-dir")
            .arg(state.path())
            .args([flag, value])
            .output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{flag} {value}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(flag),
            "{flag} {value}: {stderr}"
        );
    }
    Ok(())
}

#[test]
fn accept_errors_back_off_from_milliseconds_to_at_most_a_second() -> Result<()> {
    let first = accept_backoff(1);
    assert!(
        first > Duration::ZERO && first <= Duration::from_millis(50),
        "{first:?}"
    );
    let mut previous = first;
    for failures in 2..100 {
        let pause = accept_backoff(failures);
        assert!(pause >= previous, "{failures}: {pause:?} < {previous:?}");
        assert!(pause <= Duration::from_secs(1), "{failures}: {pause:?}");
        previous = pause;
    }
    assert!(accept_backoff(10) > first, "the pause does not grow");
    assert_eq!(accept_backoff(u32::MAX), Duration::from_secs(1));
    Ok(())
}

#[test]
fn only_resource_errors_pause_the_accept_loop() -> Result<()> {
    // EMFILE and ENFILE: out of descriptors, per process and system-wide.
    for errno in [24, 23] {
        let e = std::io::Error::from_raw_os_error(errno);
        assert!(accept_error_needs_backoff(&e), "{e}");
    }
    for kind in [ErrorKind::ConnectionAborted, ErrorKind::ConnectionReset] {
        assert!(!accept_error_needs_backoff(&kind.into()), "{kind:?}");
    }
    Ok(())
}

/// The host frames a response as the component did, as Spin does: the
/// component's own `Content-Length` is kept, and a response without one is
/// sent chunked rather than buffered and measured by the host.
#[test]
fn responses_keep_the_components_framing() -> Result<()> {
    let host = LimitedHost::start(&[])?;
    let mut client = host.connect()?;
    let sized = exchange(&mut client, "/probe/sized")?;
    assert_eq!(sized.status, 200, "{}", sized.head);
    let head = sized.head.to_ascii_lowercase();
    let body = br#"{"sized":true}"#;
    assert!(
        head.contains(&format!("content-length: {}", body.len())),
        "{}",
        sized.head
    );
    assert!(!head.contains("transfer-encoding"), "{}", sized.head);
    assert_eq!(sized.body, body);
    let open = exchange(&mut client, "/probe/counter")?;
    assert_eq!(open.status, 200, "{}", open.head);
    let head = open.head.to_ascii_lowercase();
    assert!(head.contains("transfer-encoding: chunked"), "{}", open.head);
    assert!(!head.contains("content-length"), "{}", open.head);
    let counted: serde_json::Value = serde_json::from_slice(&open.body)?;
    assert!(counted["calls"].as_u64().is_some(), "{counted}");
    Ok(())
}
