//! Reading captures: classic pcap and pcapng files, and stripping the link
//! layer down to the IPv4 packet.

use std::io::Read;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use pcap_file::DataLink;
use pcap_file::pcap::PcapParser;
use pcap_file::pcapng::{Block, PcapNgParser};

/// One captured frame.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    /// 1-based frame number, as tshark counts.
    pub(crate) number: usize,
    pub(crate) timestamp: Duration,
    pub(crate) link: DataLink,
    pub(crate) data: Vec<u8>,
}

/// Reads every frame of a pcap or pcapng file (told apart by the magic number).
pub(crate) fn read_frames(mut input: impl Read) -> Result<Vec<Frame>> {
    let mut bytes = Vec::new();
    input
        .read_to_end(&mut bytes)
        .context("reading the capture")?;
    let magic = bytes
        .get(..4)
        .context("capture is shorter than a file header")?;
    if magic == [0x0a, 0x0d, 0x0d, 0x0a] {
        read_pcapng(&bytes)
    } else {
        read_pcap(&bytes)
    }
}

// The file is in memory already: pcap-file's slice parsers read it in place
// (its readers would first allocate a 10 MB buffer per file).

fn read_pcap(bytes: &[u8]) -> Result<Vec<Frame>> {
    let (mut rest, parser) = PcapParser::new(bytes).context("not a pcap or pcapng file")?;
    let link = parser.header().datalink;
    let mut frames = Vec::new();
    while !rest.is_empty() {
        let (tail, packet) = parser
            .next_packet(rest)
            .with_context(|| format!("pcap frame {}", frames.len() + 1))?;
        rest = tail;
        frames.push(Frame {
            number: frames.len() + 1,
            timestamp: packet.timestamp,
            link,
            data: packet.data.into_owned(),
        });
    }
    Ok(frames)
}

fn read_pcapng(bytes: &[u8]) -> Result<Vec<Frame>> {
    let (mut rest, mut parser) = PcapNgParser::new(bytes).context("not a pcapng file")?;
    let mut frames = Vec::new();
    // Link types by interface ID, in the order the interface blocks come.
    let mut links: Vec<DataLink> = Vec::new();
    while !rest.is_empty() {
        let (tail, block) = parser
            .next_block(rest)
            .with_context(|| format!("pcapng block after frame {}", frames.len()))?;
        rest = tail;
        let (link, timestamp, data) = match block {
            Block::SectionHeader(_) => {
                links.clear();
                continue;
            }
            Block::InterfaceDescription(idb) => {
                links.push(idb.linktype);
                continue;
            }
            Block::EnhancedPacket(epb) => {
                let link = links
                    .get(epb.interface_id as usize)
                    .copied()
                    .context("enhanced packet block names an unknown interface")?;
                (link, epb.timestamp, epb.data.into_owned())
            }
            Block::SimplePacket(spb) => {
                let link = links
                    .first()
                    .copied()
                    .context("simple packet block before any interface")?;
                (link, Duration::ZERO, spb.data.into_owned())
            }
            _ => continue,
        };
        frames.push(Frame {
            number: frames.len() + 1,
            timestamp,
            link,
            data,
        });
    }
    Ok(frames)
}

/// What lies under the link layer of a frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Network<'a> {
    Ipv4(&'a [u8]),
    /// Not IPv4 (ARP, IPv6, ...): named by its EtherType or link type.
    Other(String),
}

/// Strips the link-layer header of `data` for the link types captures on
/// Linux produce: Ethernet (with 802.1Q tags), raw IP, Linux cooked (SLL and
/// SLL2), and BSD loopback.
pub(crate) fn network_layer(link: DataLink, data: &[u8]) -> Result<Network<'_>> {
    let (ethertype, rest) = match link {
        DataLink::ETHERNET => {
            let mut off = 12;
            let mut ethertype = be16(data, off).context("Ethernet header truncated")?;
            while ethertype == 0x8100 || ethertype == 0x88a8 {
                off += 4;
                ethertype = be16(data, off).context("802.1Q tag truncated")?;
            }
            (ethertype, data.get(off + 2..))
        }
        DataLink::RAW | DataLink::IPV4 => {
            return Ok(match data.first().map(|b| b >> 4) {
                Some(4) => Network::Ipv4(data),
                Some(v) => Network::Other(format!("IP version {v}")),
                None => bail!("empty frame"),
            });
        }
        DataLink::LINUX_SLL => (
            be16(data, 14).context("Linux cooked header truncated")?,
            data.get(16..),
        ),
        DataLink::LINUX_SLL2 => (
            be16(data, 0).context("Linux cooked v2 header truncated")?,
            data.get(20..),
        ),
        DataLink::NULL | DataLink::LOOP => {
            let family = data.get(..4).context("loopback header truncated")?;
            // The family is in host byte order of the capturing machine: accept either.
            let af = u32::from_le_bytes([family[0], family[1], family[2], family[3]]);
            let af_be = u32::from_be_bytes([family[0], family[1], family[2], family[3]]);
            let ethertype = if af == 2 || af_be == 2 { 0x0800 } else { 0 };
            (ethertype, data.get(4..))
        }
        other => return Ok(Network::Other(format!("link type {other:?}"))),
    };
    let rest = rest.context("link-layer header truncated")?;
    Ok(match ethertype {
        0x0800 => Network::Ipv4(rest),
        0x86dd => Network::Other("IPv6".into()),
        0x0806 => Network::Other("ARP".into()),
        other => Network::Other(format!("EtherType 0x{other:04x}")),
    })
}

fn be16(data: &[u8], off: usize) -> Option<u16> {
    let b = data.get(off..off.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};

    #[test]
    fn strips_ethernet_vlan_and_cooked_headers() {
        let ip = [0x45u8, 0, 0, 20];
        let mut eth = vec![0u8; 12];
        eth.extend_from_slice(&[0x81, 0x00, 0, 5, 0x08, 0x00]);
        eth.extend_from_slice(&ip);
        assert_eq!(
            network_layer(DataLink::ETHERNET, &eth).unwrap(),
            Network::Ipv4(&ip)
        );

        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x08, 0x00]);
        sll.extend_from_slice(&ip);
        assert_eq!(
            network_layer(DataLink::LINUX_SLL, &sll).unwrap(),
            Network::Ipv4(&ip)
        );

        assert!(network_layer(DataLink::ETHERNET, &[0u8; 5]).is_err());
        assert_eq!(
            network_layer(DataLink::RAW, &ip).unwrap(),
            Network::Ipv4(&ip)
        );
    }

    #[test]
    fn reads_a_pcap_it_wrote() {
        let mut out = Vec::new();
        let header = PcapHeader {
            datalink: DataLink::RAW,
            ..Default::default()
        };
        let mut w = PcapWriter::with_header(&mut out, header).unwrap();
        w.write_packet(&PcapPacket::new(
            Duration::from_secs(1),
            4,
            &[0x45, 0, 0, 4],
        ))
        .unwrap();
        let frames = read_frames(&out[..]).unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].link, DataLink::RAW);
        assert_eq!(frames[0].data, [0x45, 0, 0, 4]);
        assert!(read_frames(&b"garbage!"[..]).is_err());
    }
}
