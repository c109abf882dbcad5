//! Shared by the `realm peer` integration tests (`peer`, `peer_ike`,
//! `interop_strongswan_ikev1`): two namespaces joined by a veth with an underlay
//! address each, `realm peer` daemons started in them and asked over `realm ctl`,
//! a TCP echo across, and dumpcap/tshark on the underlay.
//!
//! Needs root, iproute2 and tshark (`scripts/install-deps`): without them the
//! tests FAIL, they never skip.
#![allow(
    dead_code,
    unreachable_pub,
    missing_debug_implementations,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic
)]
// `side` indexes several per-side arrays at once.
#![allow(clippy::needless_range_loop)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use realm_io::netns::{self, ChildId, Lab, LabStdio};
use serde_json::Value;

pub const REALM: &str = env!("CARGO_BIN_EXE_realm");
pub const WAIT: Duration = Duration::from_secs(20);

/// Underlay addresses of peers A and B, on one veth link.
pub const UNDERLAY: [Ipv4Addr; 2] = [Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)];
pub const MARKER: &[u8] = b"REALM-PLAINTEXT-MARKER:";
pub const PORT: u16 = 5001;

pub struct Pair {
    pub lab: Lab,
    pub ns: [String; 2],
    pub dir: PathBuf,
    pub peers: [Option<ChildId>; 2],
}

impl Pair {
    pub fn new() -> Pair {
        if let Err(e) = netns::require_privileges() {
            panic!(
                "realm peer tests build network namespaces: run them as root with iproute2: {e}"
            );
        }
        let mut lab = Lab::new().expect("lab");
        let a = lab.add_namespace("peer_a").unwrap();
        let b = lab.add_namespace("peer_b").unwrap();
        lab.veth((&a, "eth0"), (&b, "eth0")).unwrap();
        for (ns, addr) in [(&a, UNDERLAY[0]), (&b, UNDERLAY[1])] {
            lab.add_address(ns, "eth0", realm_io::Ipv4Prefix::new(addr, 24).unwrap())
                .unwrap();
        }
        let dir = std::env::temp_dir().join(format!("realm-peer-test-{}", lab.tag()));
        std::fs::create_dir_all(&dir).unwrap();
        Pair {
            lab,
            ns: [a, b],
            dir,
            peers: [None, None],
        }
    }

    pub fn socket(&self, side: usize) -> PathBuf {
        self.dir.join(format!("ctl-{side}.sock"))
    }

    pub fn log(&self, side: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("peer-{side}.log"))).unwrap_or_default()
    }

    pub fn export(&self, side: usize) -> PathBuf {
        self.dir.join(format!("esp_sa-{side}"))
    }

    /// Starts `realm peer` on `side` and waits until its control socket answers.
    pub fn start(&mut self, side: usize, config: &str) {
        let path = self.dir.join(format!("peer-{side}.toml"));
        std::fs::write(&path, config).unwrap();
        let log = self.dir.join(format!("peer-{side}.log"));
        let script = r#"exec "$0" peer --config "$1" 2>"$2""#;
        let args = [script, REALM, path.to_str().unwrap(), log.to_str().unwrap()];
        let id = self
            .lab
            .spawn(
                &self.ns[side].clone(),
                "sh",
                &[&["-c"][..], &args[..]].concat(),
                LabStdio::Null,
            )
            .unwrap();
        self.peers[side] = Some(id);
        let deadline = realm_io::now() + WAIT;
        loop {
            if ctl(&self.socket(side), "status").is_ok() {
                return;
            }
            if let Some(Some(status)) = self.lab.child_mut(id).map(|c| c.try_wait().unwrap()) {
                panic!(
                    "realm peer {side} exited with {status}:\n{}",
                    self.log(side)
                );
            }
            assert!(
                realm_io::now() < deadline,
                "realm peer {side} did not come up:\n{}",
                self.log(side)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn sas(&self, side: usize) -> Vec<Value> {
        match ctl(&self.socket(side), "sas") {
            Ok(Value::Array(v)) => v,
            other => panic!("ctl sas on {side}: {other:?}\n{}", self.log(side)),
        }
    }

    /// SIGKILL to a peer: it dies without a word to anyone (no Delete).
    pub fn kill(&mut self, side: usize) {
        let id = self.peers[side].take().unwrap();
        let pid = self.lab.child_mut(id).unwrap().id();
        signal(pid, "KILL");
        let _ = self.lab.wait(id);
    }

    /// SIGTERM to a peer: it must exit 0 and remove its socket file and TUN.
    pub fn stop(&mut self, side: usize) {
        let id = self.peers[side].take().unwrap();
        let pid = self.lab.child_mut(id).unwrap().id();
        signal(pid, "TERM");
        let out = self.lab.wait(id).unwrap();
        assert!(
            out.status.success(),
            "peer {side} exit {}:\n{}",
            out.status,
            self.log(side)
        );
        assert!(!self.socket(side).exists(), "control socket left behind");
        let links = self
            .lab
            .run(&self.ns[side], "ip", &["link", "show", "realm0"])
            .unwrap();
        assert!(!links.status.success(), "TUN left behind");
        assert!(
            self.log(side).contains("realm peer stopping"),
            "{}",
            self.log(side)
        );
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for side in 0..2 {
                eprintln!("--- realm peer {side} log ---\n{}", self.log(side));
            }
        }
        // REALM_TEST_KEEP=1 keeps configs, logs, captures and key files for a look.
        if std::env::var_os("REALM_TEST_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// `realm ctl --socket S COMMAND --json`, parsed.
pub fn ctl(socket: &Path, command: &str) -> Result<Value, String> {
    ctl_args(socket, command, &[])
}

/// `realm ctl --socket S COMMAND ARGS... --json`, parsed.
pub fn ctl_args(socket: &Path, command: &str, args: &[&str]) -> Result<Value, String> {
    let out = Command::new(REALM)
        .args(["ctl", "--socket"])
        .arg(socket)
        .arg(command)
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

/// 1 MiB of recognisable data: MARKER and a counter, repeated.
pub fn payload() -> Vec<u8> {
    let mut d = Vec::with_capacity(1 << 20);
    let mut i = 0u32;
    while d.len() < 1 << 20 {
        d.extend_from_slice(MARKER);
        d.extend_from_slice(format!("{i:08}\n").as_bytes());
        i += 1;
    }
    d.truncate(1 << 20);
    d
}

/// A TCP echo server in `server_ns` on `addr`; a client in `client_ns` sends
/// the payload, the server sends it all back after EOF, the client compares.
pub fn tcp_echo(server_ns: &str, addr: Ipv4Addr, client_ns: &str) -> SocketAddr {
    let listener = netns::in_namespace(server_ns, || TcpListener::bind((addr, PORT)))
        .unwrap()
        .unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, from) = listener.accept().unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        s.write_all(&got).unwrap();
        from
    });
    let data = payload();
    let mut c = netns::in_namespace(client_ns, || {
        TcpStream::connect_timeout(&SocketAddr::from((addr, PORT)), WAIT)
    })
    .unwrap()
    .expect("TCP connect through the peers");
    c.set_read_timeout(Some(WAIT)).unwrap();
    c.set_write_timeout(Some(WAIT)).unwrap();
    c.write_all(&data).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    assert_eq!(back.len(), data.len(), "echoed length");
    assert!(back == data, "echoed bytes differ");
    server.join().unwrap()
}

/// dumpcap writing everything on `ns`'s eth0 to a pcap file, until [`Capture::stop`].
pub struct Capture {
    id: ChildId,
    file: PathBuf,
    stderr: std::thread::JoinHandle<String>,
}

impl Capture {
    pub fn start(pair: &mut Pair, side: usize) -> Capture {
        let file = pair.dir.join(format!("underlay-{side}.pcap"));
        let ns = pair.ns[side].clone();
        let id = pair
            .lab
            .spawn(
                &ns,
                "dumpcap",
                &["-i", "eth0", "-B", "64", "-P", "-w", file.to_str().unwrap()],
                LabStdio::Capture,
            )
            .expect("dumpcap (tshark's capture engine) is required (scripts/install-deps)");
        // dumpcap prints "Capturing on 'eth0'" BEFORE it opens the device, and
        // "File: ..." once the device and the file are open.
        let stderr = pair.lab.child_mut(id).unwrap().stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = std::thread::spawn(move || {
            let mut said = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.starts_with("File:") {
                    let _ = tx.send(());
                }
                said += &line;
                said.push('\n');
            }
            said
        });
        if rx.recv_timeout(WAIT).is_err() {
            pair.lab.kill(id).ok();
            panic!(
                "dumpcap did not start capturing: {}",
                stderr.join().unwrap()
            );
        }
        Capture { id, file, stderr }
    }

    /// Stops dumpcap; returns the file and what dumpcap said (its counts).
    pub fn stop(self, pair: &mut Pair) -> (PathBuf, String) {
        // Let the kernel hand over its last ring-buffer block (retired on a
        // timeout); what is still in it when dumpcap stops is lost.
        std::thread::sleep(Duration::from_millis(500));
        let pid = pair.lab.child_mut(self.id).unwrap().id();
        signal(pid, "INT");
        let status = pair.lab.child_mut(self.id).unwrap().wait().unwrap();
        let said = self.stderr.join().unwrap();
        assert!(status.success(), "dumpcap: {said}");
        (self.file, said)
    }
}

/// `frame.protocols` of every frame, as tshark sees them (optionally with a
/// Wireshark profile directory holding `esp_sa`).
pub fn protocols(file: &Path, home: Option<&Path>) -> Vec<String> {
    let mut cmd = Command::new("tshark");
    cmd.args(["-n", "-r"]).arg(file);
    cmd.args(["-T", "fields", "-e", "frame.protocols", "-e", "tcp.port"]);
    match home {
        Some(h) => {
            cmd.env("HOME", h);
            cmd.args(["-o", "esp.enable_encryption_decode:TRUE"]);
        }
        None => {
            cmd.env("HOME", file.parent().unwrap());
        }
    }
    let out = cmd.output().expect("tshark");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

pub fn count(sa: &Value, field: &str) -> u64 {
    sa[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {sa}"))
}

/// A TCP connection kept busy for `duration`: the client in `client_ns` sends a numbered
/// 16 KiB chunk every 50 ms to an echo server in `server_ns` on `addr` and reads each back.
/// Panics unless every chunk comes back intact, in order, on the one connection. Returns the
/// number of chunks.
pub fn tcp_session(
    server_ns: &str,
    addr: Ipv4Addr,
    port: u16,
    client_ns: &str,
    duration: Duration,
) -> usize {
    let listener = netns::in_namespace(server_ns, || TcpListener::bind((addr, port)))
        .unwrap()
        .unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                return;
            }
            s.write_all(&buf[..n]).unwrap();
        }
    });
    let mut c = netns::in_namespace(client_ns, || {
        TcpStream::connect_timeout(&SocketAddr::from((addr, port)), WAIT)
    })
    .unwrap()
    .expect("TCP connect through the SAs");
    c.set_read_timeout(Some(WAIT)).unwrap();
    c.set_write_timeout(Some(WAIT)).unwrap();
    let deadline = realm_io::now() + duration;
    let mut i = 0usize;
    while realm_io::now() < deadline {
        let mut chunk = Vec::with_capacity(16 * 1024);
        while chunk.len() < 16 * 1024 {
            chunk.extend_from_slice(format!("{MARKER:?}{i:010}\n").as_bytes());
        }
        chunk.truncate(16 * 1024);
        c.write_all(&chunk).unwrap();
        let mut back = vec![0u8; chunk.len()];
        c.read_exact(&mut back)
            .unwrap_or_else(|e| panic!("chunk {i} not echoed: {e}"));
        assert!(back == chunk, "chunk {i} came back different");
        i += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    c.shutdown(std::net::Shutdown::Write).unwrap();
    server.join().unwrap();
    i
}

/// `tshark -r FILE -Y FILTER -T fields -e FIELD` with Wireshark's key files under `home`
/// (ESP decryption on): the non-empty lines.
pub fn tshark_fields(
    file: &std::path::Path,
    home: &std::path::Path,
    filter: &str,
    field: &str,
) -> Vec<String> {
    let out = std::process::Command::new("tshark")
        .env("HOME", home)
        .args(["-n", "-o", "esp.enable_encryption_decode:TRUE", "-r"])
        .arg(file)
        .args(["-Y", filter, "-T", "fields", "-e", field])
        .output()
        .expect("tshark");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A CA and two host certificates with RSA-2048 keys, made now with rcgen (PEM): moon
/// (`moon.example.org`, side 0's underlay address) and sun (`sun.example.org`, side 1's).
pub struct TestCerts {
    pub ca: String,
    pub moon: String,
    pub moon_key: String,
    pub sun: String,
    pub sun_key: String,
}

impl TestCerts {
    pub fn new() -> TestCerts {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
            PKCS_RSA_SHA256, SanType,
        };
        let rsa = || {
            let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
            let der: aws_lc_rs::encoding::Pkcs8V1Der<'static> =
                aws_lc_rs::encoding::AsDer::as_der(&key).unwrap();
            KeyPair::from_pkcs8_der_and_sign_algo(&der.as_ref().to_vec().into(), &PKCS_RSA_SHA256)
                .unwrap()
        };
        let ca_key = rsa();
        let mut ca = CertificateParams::default();
        ca.distinguished_name
            .push(DnType::CommonName, "Realm Interop CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let host = |name: &str, ip: Ipv4Addr| {
            let key = rsa();
            let mut p = CertificateParams::default();
            p.distinguished_name.push(DnType::CommonName, name);
            p.subject_alt_names = vec![
                SanType::DnsName(name.try_into().unwrap()),
                SanType::IpAddress(ip.into()),
            ];
            let cert = p.signed_by(&key, &issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (moon, moon_key) = host("moon.example.org", UNDERLAY[0]);
        let (sun, sun_key) = host("sun.example.org", UNDERLAY[1]);
        TestCerts {
            ca: ca_cert.pem(),
            moon,
            moon_key,
            sun,
            sun_key,
        }
    }
}
