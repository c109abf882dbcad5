//! The text form of `realm decode`: one line per header, RSIP parameters one
//! per line under their message, problems last with their offsets.

use std::io::{self, Write};

use realm_wire::isakmp::{self, Body, PayloadBody};
use realm_wire::rsip::{Address, Message, Parameter, Ports, Spis};
use realm_wire::{icmp, tcp};

use super::layers::{Layer, Report};

pub(crate) fn write_report(out: &mut impl Write, report: &Report) -> io::Result<()> {
    match (report.frame, report.time) {
        (Some(n), Some(t)) => writeln!(out, "frame {n} at {t:.6} s")?,
        (Some(n), None) => writeln!(out, "frame {n}")?,
        _ => {}
    }
    let indent = if report.frame.is_some() { "  " } else { "" };
    for layer in &report.layers {
        write_layer(out, indent, layer)?;
    }
    for note in &report.notes {
        writeln!(out, "{indent}note: {note}")?;
    }
    for p in &report.problems {
        write!(out, "{indent}error: {}: {}", p.layer, p.message)?;
        if let Some(offset) = p.offset {
            write!(out, " (at byte {offset})")?;
        }
        if let Some(code) = &p.rsip_error {
            write!(out, "; a gateway answers {} ({})", code.name, code.code)?;
        }
        writeln!(out)?;
    }
    Ok(())
}

fn write_layer(out: &mut impl Write, indent: &str, layer: &Layer) -> io::Result<()> {
    match layer {
        Layer::Ipv4(ip) => {
            write!(
                out,
                "{indent}IPv4 {} -> {} {:?} ttl {} id {} len {}",
                ip.src_addr,
                ip.dst_addr,
                ip.protocol,
                ip.ttl,
                ip.ident,
                ip.payload_len + 20 + ip.options.len()
            )?;
            if ip.dont_frag {
                write!(out, " DF")?;
            }
            if ip.more_frags || ip.frag_offset != 0 {
                write!(
                    out,
                    " fragment offset {}{}",
                    ip.frag_offset,
                    if ip.more_frags { " MF" } else { "" }
                )?;
            }
            if ip.dscp != 0 || ip.ecn != 0 {
                write!(out, " dscp {} ecn {}", ip.dscp, ip.ecn)?;
            }
            if !ip.options.is_empty() {
                write!(out, " options {}", hex::encode(&ip.options))?;
            }
            writeln!(out)
        }
        Layer::Udp(u) => writeln!(
            out,
            "{indent}UDP {} -> {} len {}",
            u.src_port,
            u.dst_port,
            u.payload_len + 8
        ),
        Layer::Tcp(t) => writeln!(
            out,
            "{indent}TCP {} -> {} [{}] seq {} ack {} win {} len {}",
            t.src_port,
            t.dst_port,
            tcp_flags(t.flags),
            t.seq_number,
            t.ack_number,
            t.window_len,
            t.payload_len
        ),
        Layer::Icmp(i) => writeln!(out, "{indent}ICMP {}", icmp_summary(i)),
        Layer::IpIp => writeln!(out, "{indent}IP-in-IP tunnel (RFC 2003), inner packet:"),
        Layer::Gre(g) => {
            write!(out, "{indent}GRE protocol {:?}", g.protocol_type)?;
            if let Some(key) = g.key {
                write!(out, " key {key}")?;
            }
            if let Some(seq) = g.sequence_number {
                write!(out, " seq {seq}")?;
            }
            if g.checksum_present {
                write!(out, " checksum")?;
            }
            writeln!(out, ", inner packet:")
        }
        Layer::Esp(e) => writeln!(
            out,
            "{indent}ESP spi 0x{:08x} seq {}",
            e.spi, e.sequence_number
        ),
        Layer::Ah(a) => writeln!(
            out,
            "{indent}AH spi 0x{:08x} seq {} next header {} icv {}",
            a.spi,
            a.sequence_number,
            a.next_header,
            hex::encode(&a.icv)
        ),
        Layer::NatKeepalive => writeln!(out, "{indent}NAT keepalive (RFC 3948)"),
        Layer::Isakmp(m) => write_isakmp(out, indent, m),
        Layer::Rsip(m) => write_rsip(out, indent, m),
        Layer::Data { len } => writeln!(out, "{indent}data, {len} bytes"),
    }
}

fn tcp_flags(flags: tcp::Flags) -> String {
    flags.names().collect::<Vec<_>>().join(",")
}

fn icmp_summary(repr: &icmp::Repr) -> String {
    match repr {
        icmp::Repr::EchoRequest {
            ident,
            seq_no,
            data,
        } => {
            format!("echo request id {ident} seq {seq_no}, {} bytes", data.len())
        }
        icmp::Repr::EchoReply {
            ident,
            seq_no,
            data,
        } => {
            format!("echo reply id {ident} seq {seq_no}, {} bytes", data.len())
        }
        icmp::Repr::DstUnreachable {
            reason,
            next_hop_mtu,
            invoking,
        } => {
            let mtu = next_hop_mtu
                .map(|m| format!(" mtu {m}"))
                .unwrap_or_default();
            format!(
                "destination unreachable {reason:?}{mtu}, about {}",
                invoking_summary(invoking)
            )
        }
        icmp::Repr::TimeExceeded { reason, invoking } => {
            format!(
                "time exceeded {reason:?}, about {}",
                invoking_summary(invoking)
            )
        }
        other => format!("{other:?}"),
    }
}

fn invoking_summary(inv: &icmp::Invoking) -> String {
    let h = &inv.header;
    let mut s = format!("{} -> {} {:?}", h.src_addr, h.dst_addr, h.protocol);
    if let Some((sp, dp)) = inv.ports() {
        s.push_str(&format!(" ports {sp} -> {dp}"));
    }
    if let Some(spi) = inv.spi() {
        s.push_str(&format!(" spi 0x{spi:08x}"));
    }
    s
}

fn write_isakmp(out: &mut impl Write, indent: &str, m: &isakmp::Message) -> io::Result<()> {
    let h = &m.header;
    writeln!(
        out,
        "{indent}ISAKMP {:?} icookie {} rcookie {} msgid 0x{:08x} flags 0x{:02x}",
        h.exchange_type,
        hex::encode(h.initiator_cookie),
        hex::encode(h.responder_cookie),
        h.message_id,
        h.flags.0,
    )?;
    match &m.body {
        Body::Encrypted { ciphertext, .. } => {
            writeln!(
                out,
                "{indent}  encrypted payloads, {} bytes",
                ciphertext.len()
            )
        }
        Body::Payloads(chain) => {
            for p in &chain.payloads {
                writeln!(out, "{indent}  {}", payload_summary(&p.body))?;
            }
            Ok(())
        }
    }
}

fn payload_summary(body: &PayloadBody) -> String {
    match body {
        PayloadBody::SecurityAssociation(sa) => {
            let transforms: usize = sa.proposals.iter().map(|p| p.transforms.len()).sum();
            format!(
                "SA doi {} with {} proposal(s), {transforms} transform(s)",
                sa.doi,
                sa.proposals.len()
            )
        }
        PayloadBody::Notification(n) => format!("Notification {:?}", n.message_type),
        PayloadBody::VendorId(v) => format!("Vendor ID {}", hex::encode(&v.data)),
        other => {
            // The variant name is the payload type; the fields follow in Debug form.
            let debug = format!("{other:?}");
            if debug.len() > 120 {
                format!("{}...", &debug[..debug.floor_char_boundary(117)])
            } else {
                debug
            }
        }
    }
}

fn write_rsip(out: &mut impl Write, indent: &str, m: &Message) -> io::Result<()> {
    let t = m.msg_type();
    writeln!(
        out,
        "{indent}RSIP {t} ({}) length {}",
        u8::from(t),
        m.buffer_len()
    )?;
    for p in m.params() {
        writeln!(out, "{indent}  {}", param_text(p))?;
    }
    Ok(())
}

/// One RSIP parameter as `Name: value`.
pub(crate) fn param_text(p: &Parameter) -> String {
    match p {
        Parameter::Address(a) => format!("Address: {}", address_text(a)),
        Parameter::Ports(ports) => format!("Ports: {}", ports_text(ports)),
        Parameter::LeaseTime(s) => format!("Lease Time: {s} s"),
        Parameter::ClientId(c) => format!("Client ID: {c}"),
        Parameter::BindId(b) => format!("Bind ID: {b}"),
        Parameter::TunnelType(t) => format!("Tunnel Type: {t} ({})", u8::from(*t)),
        Parameter::RsipMethod(m) => format!("RSIP Method: {m} ({})", u8::from(*m)),
        Parameter::Error(e) => format!("Error: {e} ({})", u16::from(*e)),
        Parameter::FlowPolicy(f) => format!("Flow Policy: local {}, remote {}", f.local, f.remote),
        Parameter::Indicator(i) => format!("Indicator: {}", i.value),
        Parameter::MessageCounter(c) => format!("Message Counter: {c}"),
        Parameter::VendorSpecific(v) => format!(
            "Vendor Specific: vendor {} subtype {} value {}",
            v.vendor_id,
            v.subtype,
            hex::encode(&v.value)
        ),
        Parameter::Spi(s) => format!("SPI: {}", spis_text(s)),
        Parameter::Authentication(a) => format!(
            "Authentication: key {} counter {} MAC {}",
            a.key_id,
            a.counter,
            hex::encode(a.mac)
        ),
        Parameter::Unknown { param_type, value } => {
            format!(
                "unknown parameter type {param_type}: {}",
                hex::encode(value)
            )
        }
    }
}

fn address_text(a: &Address) -> String {
    match a {
        Address::Ipv4(ip) => ip.to_string(),
        Address::Ipv4Netmask(m) => format!("netmask {m}"),
        Address::Ipv6(ip) => ip.to_string(),
        Address::Fqdn(name) => format!("FQDN {name}"),
        Address::DontCare(t) => format!("don't care ({t:?})"),
    }
}

fn ports_text(p: &Ports) -> String {
    match p {
        Ports::DontNeed => "don't need".into(),
        Ports::DontCare { count } => format!("don't care, {count} wanted"),
        Ports::Range { first, count: 1 } => first.to_string(),
        Ports::Range { first, count } => {
            let last = u32::from(*first) + u32::from(*count) - 1;
            format!("{first}-{last} ({count} ports)")
        }
        Ports::List(list) => list
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn spis_text(s: &Spis) -> String {
    match s {
        Spis::DontCare { count } => format!("don't care, {count} wanted"),
        Spis::Range { first, count: 1 } => format!("0x{:08x}", first.0),
        Spis::Range { first, count } => {
            let last = u64::from(first.0) + u64::from(*count) - 1;
            format!("0x{:08x}-0x{last:08x} ({count} SPIs)", first.0)
        }
        Spis::List(list) => list
            .iter()
            .map(|s| format!("0x{:08x}", s.0))
            .collect::<Vec<_>>()
            .join(", "),
    }
}
