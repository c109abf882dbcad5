//! TUN devices in a fresh namespace: the kernel's `ping` is answered by hand-built replies.

// Test code: helpers outside #[test] fns may unwrap and panic too (clippy.toml covers only #[test]).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::{Ipv4Addr, UdpSocket};
use std::sync::mpsc;

use common::{WAIT, icmp_echo, ip_fields, lab};
use realm_io::netns;
use realm_io::{Netlink, RouteVia, Tun, TunConfig};

const TUN_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const PEER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

/// Creates `rtun0` (192.0.2.10/24, MTU 1400) and routes 198.51.100.0/24 into it.
async fn tun_with_route() -> realm_io::Result<Tun> {
    let netlink = Netlink::new()?;
    let tun = Tun::create_with(
        &TunConfig::new("rtun0")
            .mtu(1400)
            .address("192.0.2.10/24".parse()?),
        &netlink,
    )
    .await?;
    netlink
        .add_route(
            "198.51.100.0/24".parse()?,
            &RouteVia::Device("rtun0".into()),
        )
        .await?;
    Ok(tun)
}

#[test]
fn ping_through_tun_is_answered_by_handcrafted_reply() {
    let mut lab = lab();
    let ns = lab.add_namespace("tun").unwrap();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();

    // The "peer": reads the echo request out of the TUN and writes a reply back in.
    let echo = netns::spawn_in(&ns, move || async move {
        let tun = tun_with_route().await?;
        ready_tx.send(()).ok();
        let mut buf = vec![0u8; 2048];
        let request = tokio::time::timeout(WAIT, async {
            loop {
                let n = tun.recv(&mut buf).await?;
                let p = &buf[..n];
                // Skip anything else the stack emits (e.g. IPv6 housekeeping).
                if let Some((src, dst, 1, ihl)) = ip_fields(p)
                    && dst == PEER
                    && p.get(ihl) == Some(&8)
                {
                    let icmp = &p[ihl..];
                    let id = u16::from_be_bytes([icmp[4], icmp[5]]);
                    let seq = u16::from_be_bytes([icmp[6], icmp[7]]);
                    let reply = icmp_echo(dst, src, 0, id, seq, &icmp[8..]);
                    tun.send(&reply).await?;
                    return Ok::<_, std::io::Error>(p.to_vec());
                }
            }
        })
        .await
        .expect("no echo request came out of the TUN")?;
        // Keep the device until ping has read the reply: deleting it flushes its backlog.
        done_rx.recv_timeout(WAIT).ok();
        Ok::<_, realm_io::Error>((request, tun.name().to_owned(), tun.mtu()))
    });
    ready_rx
        .recv_timeout(WAIT)
        .expect("TUN setup did not finish");

    let out = lab
        .run(&ns, "ping", &["-n", "-c1", "-W5", "198.51.100.7"])
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    done_tx.send(()).ok();
    let (request, name, mtu) = echo.join().unwrap().unwrap().unwrap();
    assert!(
        out.status.success(),
        "ping failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("1 received"), "{stdout}");
    let (src, dst, proto, _) = ip_fields(&request).unwrap();
    assert_eq!((src, dst, proto), (TUN_ADDR, PEER, 1));
    assert_eq!((name.as_str(), mtu), ("rtun0", 1400));

    // The device and its route went away with the Tun.
    let links = lab.run_ok(&ns, "ip", &["-o", "link"]).unwrap();
    assert!(!links.contains("rtun0"), "{links}");
}

#[test]
fn recv_batch_reads_every_queued_packet_in_few_wakeups() {
    let mut lab = lab();
    let ns = lab.add_namespace("tunbatch").unwrap();
    let (batches, total) = netns::block_on_in(&ns, || async {
        let tun = tun_with_route().await.unwrap();
        // Queue 20 datagrams before reading any.
        let sock = UdpSocket::bind("192.0.2.10:0").unwrap();
        for i in 0..20u8 {
            sock.send_to(&[i; 32], (PEER, 9)).unwrap();
        }
        let mut bufs = vec![vec![0u8; 1500]; realm_io::MAX_BATCH];
        let mut lens = vec![0usize; realm_io::MAX_BATCH];
        let (mut batches, mut total) = (Vec::new(), 0);
        while total < 20 {
            let n = tokio::time::timeout(WAIT, tun.recv_batch(&mut bufs, &mut lens))
                .await
                .expect("TUN went quiet before 20 datagrams")
                .unwrap();
            let udp = (0..n)
                .filter(
                    |&i| matches!(ip_fields(&bufs[i][..lens[i]]), Some((_, d, 17, _)) if d == PEER),
                )
                .count();
            batches.push(n);
            total += udp;
        }
        (batches, total)
    })
    .unwrap();
    assert_eq!(total, 20);
    assert!(
        batches.iter().any(|&n| n > 1),
        "expected several packets per wake-up, got batches {batches:?}"
    );
}

#[test]
fn rejects_bad_interface_names() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for bad in ["", "name-longer-than-15", "a/b"] {
        let r = rt.block_on(async { Tun::create(&TunConfig::new(bad)).await });
        assert!(
            matches!(r, Err(realm_io::Error::Invalid(_))),
            "{bad:?}: {r:?}"
        );
    }
}
