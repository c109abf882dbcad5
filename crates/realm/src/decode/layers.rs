//! Walking a packet layer by layer: IPv4, then by protocol UDP/TCP/ICMP,
//! IP-in-IP and GRE (recursing into the inner packet), ESP and AH; and by port
//! RSIP (4555), ISAKMP (500) and UDP-encapsulated ESP/IKE (4500).

use std::collections::HashMap;
use std::net::Ipv4Addr;

use realm_wire::checksum::Verification;
use realm_wire::ipv4::IpProtocol;
use realm_wire::rsip::{self, StreamDecoder};
use realm_wire::{Error, ah, esp, gre, icmp, ipip, ipv4, isakmp, tcp, udp, udp_encap};
use serde::Serialize;

use super::capture::{self, Frame, Network};

/// Largest RSIP message the TCP reassembly accepts (the overall length is 16 bits).
const MAX_RSIP_MESSAGE: usize = u16::MAX as usize;

/// Tunnels nested deeper than this are not followed (a crafted packet could
/// nest IP-in-IP a hundred times).
const MAX_DEPTH: usize = 8;

/// One decoded layer.
#[derive(Debug, Serialize)]
#[serde(tag = "layer", rename_all = "snake_case")]
pub(crate) enum Layer {
    Ipv4(ipv4::Repr),
    Udp(udp::Repr),
    Tcp(tcp::Repr),
    Icmp(icmp::Repr),
    /// The outer header of an IP-in-IP tunnel (RFC 2003); the inner packet follows.
    IpIp,
    Gre(gre::Repr),
    Esp(esp::Repr),
    Ah(ah::Repr),
    /// A one-byte NAT keepalive on UDP 4500 (RFC 3948 s2.3).
    NatKeepalive,
    Isakmp(isakmp::Message),
    Rsip(rsip::Message),
    /// Bytes nothing here decodes.
    Data {
        len: usize,
    },
}

/// Something that could not be decoded, and where.
#[derive(Debug, Serialize)]
pub(crate) struct Problem {
    /// The layer being decoded.
    pub(crate) layer: &'static str,
    /// Byte offset within that layer's bytes, where known.
    pub(crate) offset: Option<usize>,
    pub(crate) message: String,
    /// For RSIP: the RFC 3103 Appendix A code a gateway answers with.
    pub(crate) rsip_error: Option<RsipErrorCode>,
}

/// An RSIP error code with its RFC name.
#[derive(Debug, Serialize)]
pub(crate) struct RsipErrorCode {
    pub(crate) code: u16,
    pub(crate) name: String,
}

/// Everything decoded from one packet (or one hex input).
#[derive(Debug, Default, Serialize)]
pub(crate) struct Report {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) frame: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) time: Option<f64>,
    pub(crate) layers: Vec<Layer>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) problems: Vec<Problem>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) notes: Vec<String>,
    /// The packet is TCP or UDP to or from the RSIP port, even if it completes
    /// no message (a segment of a longer one).
    #[serde(skip)]
    pub(crate) rsip_port: bool,
}

impl Report {
    pub(crate) fn problem(
        &mut self,
        layer: &'static str,
        offset: Option<usize>,
        message: String,
        rsip_error: Option<RsipErrorCode>,
    ) {
        self.problems.push(Problem {
            layer,
            offset,
            message,
            rsip_error,
        });
    }

    fn wire_problem(&mut self, layer: &'static str, e: &Error) {
        self.problem(layer, e.offset(), e.to_string(), None);
    }

    pub(crate) fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    /// True when nothing failed to decode.
    pub(crate) fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// True when the packet carries something `realm decode` is for: RSIP,
    /// IPsec, IKE or a tunnel, or a problem.
    pub(crate) fn is_interesting(&self) -> bool {
        !self.problems.is_empty()
            || self.rsip_port
            || self.layers.iter().any(|l| {
                matches!(
                    l,
                    Layer::Rsip(_)
                        | Layer::Esp(_)
                        | Layer::Ah(_)
                        | Layer::Isakmp(_)
                        | Layer::IpIp
                        | Layer::Gre(_)
                        | Layer::NatKeepalive
                )
            })
    }
}

/// A TCP flow, one direction.
type FlowKey = (Ipv4Addr, u16, Ipv4Addr, u16);

/// Decoding state that spans packets: RSIP over TCP is a byte stream, so each
/// flow direction gets a [`StreamDecoder`]. Segments are taken in capture
/// order; retransmissions and reordering are not undone (a capture taken at
/// either end of a healthy connection needs neither).
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    rsip_streams: HashMap<FlowKey, StreamDecoder>,
}

impl Decoder {
    /// Decodes one captured frame: its link layer, then everything under it.
    pub(crate) fn frame(&mut self, frame: &Frame) -> Report {
        let mut report = Report {
            frame: Some(frame.number),
            time: Some(frame.timestamp.as_secs_f64()),
            ..Report::default()
        };
        match capture::network_layer(frame.link, &frame.data) {
            Ok(Network::Ipv4(ip)) => self.ipv4(ip, &mut report),
            Ok(Network::Other(what)) => report.note(format!("not IPv4: {what}")),
            Err(e) => report.problem("link layer", None, format!("{e:#}"), None),
        }
        report
    }

    /// Decodes one IPv4 packet and everything inside it.
    pub(crate) fn ipv4(&mut self, bytes: &[u8], report: &mut Report) {
        self.ipv4_at_depth(bytes, report, 0);
    }

    fn ipv4_at_depth(&mut self, bytes: &[u8], report: &mut Report, depth: usize) {
        if depth > MAX_DEPTH {
            report.note(format!(
                "tunnels nested deeper than {MAX_DEPTH}: not followed"
            ));
            return;
        }
        let packet = match ipv4::Packet::new_checked(bytes) {
            Ok(p) => p,
            Err(e) => return report.wire_problem("IPv4", &e),
        };
        let repr = match ipv4::Repr::parse(&packet) {
            Ok(r) => r,
            Err(e @ Error::Checksum { .. }) => {
                report.wire_problem("IPv4", &e);
                match ipv4::Repr::parse_with(&packet, Verification::Skip) {
                    Ok(r) => r,
                    Err(e) => return report.wire_problem("IPv4", &e),
                }
            }
            Err(e) => return report.wire_problem("IPv4", &e),
        };
        let (src, dst, protocol) = (repr.src_addr, repr.dst_addr, repr.protocol);
        let fragment = repr.more_frags || repr.frag_offset != 0;
        report.layers.push(Layer::Ipv4(repr));
        let payload = packet.payload();
        if fragment {
            report.note("IPv4 fragment: the payload is not decoded".into());
            report.layers.push(Layer::Data { len: payload.len() });
            return;
        }
        match protocol {
            IpProtocol::Udp => self.udp(src, dst, payload, report),
            IpProtocol::Tcp => self.tcp(src, dst, payload, report),
            IpProtocol::Icmp => Self::icmp(payload, report),
            IpProtocol::IpIp => match ipip::decapsulate(bytes) {
                Ok(d) => {
                    report.layers.push(Layer::IpIp);
                    self.ipv4_at_depth(d.inner.into_inner(), report, depth + 1);
                }
                Err(e) => report.wire_problem("IP-in-IP", &e),
            },
            IpProtocol::Gre => match gre::decapsulate(bytes) {
                Ok(d) => {
                    report.layers.push(Layer::Gre(d.gre));
                    self.ipv4_at_depth(d.inner.into_inner(), report, depth + 1);
                }
                Err(e) => report.wire_problem("GRE", &e),
            },
            IpProtocol::Esp => Self::esp(payload, report),
            IpProtocol::Ah => {
                match ah::Packet::new_checked(payload).and_then(|p| ah::Repr::parse(&p)) {
                    Ok(r) => {
                        report.layers.push(Layer::Ah(r));
                        let header_len = ah::Packet::new_checked(payload).map(|p| p.header_len());
                        if let Some(rest) = header_len.ok().and_then(|n| payload.get(n..)) {
                            report.layers.push(Layer::Data { len: rest.len() });
                        }
                    }
                    Err(e) => report.wire_problem("AH", &e),
                }
            }
            _ => report.layers.push(Layer::Data { len: payload.len() }),
        }
    }

    fn udp(&mut self, src: Ipv4Addr, dst: Ipv4Addr, bytes: &[u8], report: &mut Report) {
        let packet = match udp::Packet::new_checked(bytes) {
            Ok(p) => p,
            Err(e) => return report.wire_problem("UDP", &e),
        };
        let repr = match udp::Repr::parse(&packet, src, dst) {
            Ok(r) => r,
            Err(Error::Checksum { .. }) => {
                // Not an error of the packet: captures taken on the sending
                // host carry partial checksums the NIC (or veth) would have
                // completed (checksum offload); Wireshark does not validate
                // them by default either.
                report.note(
                    "UDP checksum incorrect (checksum offload on the capturing host?)".into(),
                );
                match udp::Repr::parse_with(&packet, src, dst, Verification::Skip) {
                    Ok(r) => r,
                    Err(e) => return report.wire_problem("UDP", &e),
                }
            }
            Err(e) => return report.wire_problem("UDP", &e),
        };
        let ports = [repr.src_port, repr.dst_port];
        report.layers.push(Layer::Udp(repr));
        let payload = packet.payload();
        if ports.contains(&rsip::PORT) {
            report.rsip_port = true;
            self.rsip_datagram(payload, report);
        } else if ports.contains(&udp_encap::IKE_PORT) {
            self.isakmp(payload, report);
        } else if ports.contains(&udp_encap::UDP_ENCAP_PORT) {
            match udp_encap::classify(payload) {
                Ok(udp_encap::Classified::Keepalive) => report.layers.push(Layer::NatKeepalive),
                Ok(udp_encap::Classified::Ike(ike)) => self.isakmp(ike, report),
                Ok(udp_encap::Classified::Esp(esp)) => Self::esp(esp, report),
                Err(e) => report.wire_problem("UDP encapsulation", &e),
            }
        } else {
            report.layers.push(Layer::Data { len: payload.len() });
        }
    }

    fn tcp(&mut self, src: Ipv4Addr, dst: Ipv4Addr, bytes: &[u8], report: &mut Report) {
        let packet = match tcp::Packet::new_checked(bytes) {
            Ok(p) => p,
            Err(e) => return report.wire_problem("TCP", &e),
        };
        let repr = match tcp::Repr::parse(&packet, src, dst) {
            Ok(r) => r,
            Err(Error::Checksum { .. }) => {
                // Not an error of the packet: captures taken on the sending
                // host carry partial checksums the NIC (or veth) would have
                // completed (checksum offload); Wireshark does not validate
                // them by default either.
                report.note(
                    "TCP checksum incorrect (checksum offload on the capturing host?)".into(),
                );
                match tcp::Repr::parse_with(&packet, src, dst, Verification::Skip) {
                    Ok(r) => r,
                    Err(e) => return report.wire_problem("TCP", &e),
                }
            }
            Err(e) => return report.wire_problem("TCP", &e),
        };
        let key = (src, repr.src_port, dst, repr.dst_port);
        let is_rsip = repr.src_port == rsip::PORT || repr.dst_port == rsip::PORT;
        report.rsip_port |= is_rsip;
        report.layers.push(Layer::Tcp(repr));
        let payload = packet.payload();
        if !is_rsip {
            if !payload.is_empty() {
                report.layers.push(Layer::Data { len: payload.len() });
            }
            return;
        }
        self.rsip_segment(key, payload, report);
    }

    /// Feeds a TCP segment of an RSIP connection to its flow's stream decoder
    /// and decodes every message it completes.
    fn rsip_segment(&mut self, key: FlowKey, payload: &[u8], report: &mut Report) {
        if payload.is_empty() {
            return;
        }
        let stream = self
            .rsip_streams
            .entry(key)
            .or_insert_with(|| StreamDecoder::new(MAX_RSIP_MESSAGE));
        let mut rest = payload;
        while !rest.is_empty() {
            let taken = stream.push(rest);
            rest = rest.get(taken..).unwrap_or_default();
            loop {
                match stream.next_frame() {
                    Ok(Some(frame)) => {
                        let frame = frame.to_vec();
                        Self::rsip_message(&frame, report);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        report.problem(
                            "RSIP stream",
                            None,
                            format!("{e}: the rest of this TCP stream is not decoded"),
                            Some(RsipErrorCode {
                                code: e.code().into(),
                                name: e.code().to_string(),
                            }),
                        );
                        self.rsip_streams.remove(&key);
                        return;
                    }
                }
            }
            if taken == 0 {
                break;
            }
        }
        if let Some(stream) = self.rsip_streams.get(&key)
            && stream.buffered() > 0
        {
            report.note(format!(
                "{} bytes of a partial RSIP message buffered",
                stream.buffered()
            ));
        }
    }

    /// Decodes one RSIP message carried whole (a UDP datagram or hex input).
    pub(crate) fn rsip_datagram(&mut self, bytes: &[u8], report: &mut Report) {
        Self::rsip_message(bytes, report);
    }

    fn rsip_message(bytes: &[u8], report: &mut Report) {
        match rsip::Message::parse(bytes) {
            Ok(m) => report.layers.push(Layer::Rsip(m)),
            Err(e) => {
                let code = e.code();
                report.problem(
                    "RSIP",
                    Some(e.offset()),
                    e.kind.to_string(),
                    Some(RsipErrorCode {
                        code: code.into(),
                        name: code.to_string(),
                    }),
                );
            }
        }
    }

    /// Decodes one ISAKMP message.
    pub(crate) fn isakmp(&mut self, bytes: &[u8], report: &mut Report) {
        match isakmp::Message::parse(bytes) {
            Ok(m) => report.layers.push(Layer::Isakmp(m)),
            Err(e) => report.wire_problem("ISAKMP", &e),
        }
    }

    fn esp(bytes: &[u8], report: &mut Report) {
        match esp::Packet::new_checked(bytes).and_then(|p| esp::Repr::parse(&p)) {
            Ok(r) => {
                report.layers.push(Layer::Esp(r));
                // Without the SA the IV, ciphertext and ICV cannot be told apart.
                report.layers.push(Layer::Data {
                    len: bytes.len().saturating_sub(esp::HEADER_LEN),
                });
            }
            Err(e) => report.wire_problem("ESP", &e),
        }
    }

    fn icmp(bytes: &[u8], report: &mut Report) {
        match icmp::Packet::new_checked(bytes).and_then(|p| icmp::Repr::parse(&p)) {
            Ok(r) => report.layers.push(Layer::Icmp(r)),
            Err(e) => report.wire_problem("ICMP", &e),
        }
    }
}
