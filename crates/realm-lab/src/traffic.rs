//! Traffic through the lab, each check with sockets opened inside the
//! namespaces (threads of this process entered into them). A check reports
//! what it saw, in particular the source address and port the far side
//! observed: with RSIP that is the gateway's public address and a port the
//! host leased, unchanged, since nothing is translated.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::time::timeout;

use crate::topology::{GATEWAY_PUBLIC, PUBLIC_HOST, RsipLab};

/// How long one exchange may take.
const STEP: Duration = Duration::from_secs(5);

/// One check's result.
#[derive(Debug, Clone)]
pub struct Check {
    /// What was tried, e.g. `"HTTP GET"`.
    pub name: String,
    /// From where (a lab role).
    pub from: String,
    /// To where.
    pub to: String,
    /// Passed?
    pub ok: bool,
    /// What was seen, or why it failed.
    pub detail: String,
}

impl Check {
    fn new(name: &str, from: &str, to: String, r: anyhow::Result<String>) -> Check {
        let (ok, detail) = match r {
            Ok(d) => (true, d),
            Err(e) => (false, format!("{e:#}")),
        };
        Check {
            name: name.into(),
            from: from.into(),
            to,
            ok,
            detail,
        }
    }
}

fn host_role(i: usize) -> String {
    format!("host{}", i + 1)
}

/// Fails unless `seen` is the public address with one of `leased` ports.
fn check_source(seen: SocketAddr, leased: &[u16]) -> anyhow::Result<()> {
    let SocketAddr::V4(v4) = seen else {
        bail!("seen from {seen}");
    };
    if *v4.ip() != GATEWAY_PUBLIC || !leased.contains(&v4.port()) {
        bail!(
            "the public host saw {seen}, not {GATEWAY_PUBLIC} with a leased port ({} leased)",
            leased.len()
        );
    }
    Ok(())
}

/// An HTTP/1.0 GET from host `i` to a one-shot server on the public host,
/// port `port`.
pub fn http_get(lab: &RsipLab, i: usize, port: u16) -> Check {
    let r = (|| -> anyhow::Result<String> {
        let leased = lab.leased_ports(i)?;
        let listener = realm_io::netns::block_on_in(&lab.public_ns, || async move {
            let l = std::net::TcpListener::bind((PUBLIC_HOST, port))?;
            l.set_nonblocking(true)?;
            Ok::<_, std::io::Error>(l)
        })??;
        let server = realm_io::netns::spawn_in(&lab.public_ns, move || async move {
            let listener = TcpListener::from_std(listener)?;
            let (mut s, peer) = timeout(STEP, listener.accept()).await??;
            let mut req = vec![0u8; 4096];
            let mut got = 0;
            while !req[..got].windows(4).any(|w| w == b"\r\n\r\n") && got < req.len() {
                let n = timeout(STEP, s.read(&mut req[got..])).await??;
                if n == 0 {
                    break;
                }
                got += n;
            }
            let body = format!("hello {peer} from the public host\n");
            let resp = format!(
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            s.write_all(resp.as_bytes()).await?;
            s.shutdown().await?;
            Ok::<_, anyhow::Error>(peer)
        });
        let response = realm_io::netns::block_on_in(&lab.host_ns[i], || async move {
            let mut s = timeout(STEP, TcpStream::connect((PUBLIC_HOST, port))).await??;
            let local = s.local_addr()?;
            s.write_all(format!("GET / HTTP/1.0\r\nHost: {PUBLIC_HOST}\r\n\r\n").as_bytes())
                .await?;
            let mut buf = Vec::new();
            timeout(STEP, s.read_to_end(&mut buf)).await??;
            Ok::<_, anyhow::Error>((local, String::from_utf8_lossy(&buf).into_owned()))
        })??;
        let peer = server
            .join()
            .map_err(|_| anyhow::anyhow!("server thread panicked"))???;
        let (local, text) = response;
        if !text.starts_with("HTTP/1.0 200 OK") || !text.contains("from the public host") {
            bail!("unexpected response {text:?}");
        }
        check_source(peer, &leased)?;
        Ok(format!("200 OK; client socket {local}, server saw {peer}"))
    })();
    Check::new(
        "HTTP GET",
        &host_role(i),
        format!("{PUBLIC_HOST}:{port}"),
        r,
    )
}

/// UDP both ways: host `i` sends to an echo server on the public host, which
/// answers twice (the echo, then a datagram of its own a little later).
pub fn udp_both_ways(lab: &RsipLab, i: usize, port: u16) -> Check {
    let r = (|| -> anyhow::Result<String> {
        let leased = lab.leased_ports(i)?;
        let sock = realm_io::netns::block_on_in(&lab.public_ns, || async move {
            let s = std::net::UdpSocket::bind((PUBLIC_HOST, port))?;
            s.set_nonblocking(true)?;
            Ok::<_, std::io::Error>(s)
        })??;
        let server = realm_io::netns::spawn_in(&lab.public_ns, move || async move {
            let s = UdpSocket::from_std(sock)?;
            let mut buf = [0u8; 2048];
            let (n, peer) = timeout(STEP, s.recv_from(&mut buf)).await??;
            s.send_to(&buf[..n], peer).await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
            s.send_to(b"unsolicited from the public host", peer).await?;
            Ok::<_, anyhow::Error>(peer)
        });
        let (local, echo, later) = realm_io::netns::block_on_in(&lab.host_ns[i], || async move {
            let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await?;
            s.send_to(b"ping over RSIP", (PUBLIC_HOST, port)).await?;
            let mut buf = [0u8; 2048];
            let (n, _) = timeout(STEP, s.recv_from(&mut buf)).await??;
            let echo = buf[..n].to_vec();
            let (n, _) = timeout(STEP, s.recv_from(&mut buf)).await??;
            Ok::<_, anyhow::Error>((s.local_addr()?, echo, buf[..n].to_vec()))
        })??;
        let peer = server
            .join()
            .map_err(|_| anyhow::anyhow!("server thread panicked"))???;
        if echo != b"ping over RSIP" || later != b"unsolicited from the public host" {
            bail!("wrong datagrams back");
        }
        check_source(peer, &leased)?;
        Ok(format!(
            "echo and a second datagram back; socket {local}, server saw {peer}"
        ))
    })();
    Check::new(
        "UDP both ways",
        &host_role(i),
        format!("{PUBLIC_HOST}:{port}"),
        r,
    )
}

/// `ping -c 3` from host `i` to the public host.
pub fn ping(lab: &RsipLab, i: usize) -> Check {
    let r = lab
        .run_ok(
            &lab.host_ns[i],
            "ping",
            &[
                "-n",
                "-c",
                "3",
                "-i",
                "0.2",
                "-W",
                "2",
                &PUBLIC_HOST.to_string(),
            ],
        )
        .and_then(|out| {
            let summary = out
                .lines()
                .find(|l| l.contains("packets transmitted"))
                .unwrap_or("")
                .trim()
                .to_owned();
            if summary.contains(" 0% packet loss") {
                Ok(summary)
            } else {
                bail!("{summary}")
            }
        });
    Check::new("ICMP echo", &host_role(i), PUBLIC_HOST.to_string(), r)
}

/// The public host connects to `GATEWAY_PUBLIC:port`, which host `i` holds
/// through a LISTEN binding; a server in host `i` answers.
pub fn inbound_to_listen(lab: &RsipLab, i: usize, port: u16) -> Check {
    let r = (|| -> anyhow::Result<String> {
        let listener = realm_io::netns::block_on_in(&lab.host_ns[i], || async move {
            let l = std::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))?;
            l.set_nonblocking(true)?;
            Ok::<_, std::io::Error>(l)
        })??;
        let server = realm_io::netns::spawn_in(&lab.host_ns[i], move || async move {
            let listener = TcpListener::from_std(listener)?;
            let (mut s, peer) = timeout(STEP, listener.accept()).await??;
            s.write_all(format!("hello {peer}, this is an RSIP host\n").as_bytes())
                .await?;
            s.shutdown().await?;
            Ok::<_, anyhow::Error>(peer)
        });
        let text = realm_io::netns::block_on_in(&lab.public_ns, || async move {
            let target = SocketAddrV4::new(GATEWAY_PUBLIC, port);
            let mut s = timeout(STEP, TcpStream::connect(target)).await??;
            let mut buf = Vec::new();
            timeout(STEP, s.read_to_end(&mut buf)).await??;
            Ok::<_, anyhow::Error>(String::from_utf8_lossy(&buf).into_owned())
        })
        .context("connect from the public host")??;
        let peer = server
            .join()
            .map_err(|_| anyhow::anyhow!("server thread panicked"))???;
        if !text.contains("this is an RSIP host") {
            bail!("unexpected answer {text:?}");
        }
        Ok(format!(
            "host{} answered; it saw the public host as {peer}",
            i + 1
        ))
    })();
    Check::new(
        "TCP to a LISTEN port",
        "public",
        format!("{GATEWAY_PUBLIC}:{port} (host{})", i + 1),
        r,
    )
}
