//! UDP encapsulation of ESP (RFC 3948): telling apart the three kinds of UDP payload that arrive
//! on port 4500 (NAT-keepalive, IKE behind a non-ESP marker, ESP), and building each of them.
//! Owns only that first-bytes demultiplexing (no-panic contract: [crate docs](crate)); never looks
//! inside the IKE message or the ESP packet it hands on.
//!
//! ```text
//! ESP   (s2.1):  | SPI (non-zero, 4) | sequence (4) | ... ESP packet ...   |
//! IKE   (s2.2):  | 0x00000000 non-ESP marker (4)    | IKE header ...       |
//! Keepalive (s2.3): | 0xFF |
//! ```
//!
//! The UDP header is `crate::udp`'s. RFC 3948 s2.1 and s2.3 say the IPv4 UDP checksum of ESP and
//! keepalive datagrams SHOULD be sent as zero and that receivers MUST NOT depend on it being
//! zero: whoever checks UDP checksums on port 4500 must accept both a zero (absent) checksum and
//! a correct one.
//!
//! Transport-mode checksums after NAT (RFC 3948 s3.1.2): when a transport-mode ESP packet went
//! through a NAT, the inner TCP/UDP checksum covers the original addresses, and the decapsulating
//! receiver MUST then either fix it incrementally from the NAT-OA addresses learned in IKE,
//! recompute it, or (UDP) zero it. Tunnel mode needs no fix: the inner packet is intact and its
//! checksums are verified as usual. This module does none of it: it returns the ESP bytes
//! exactly as received, and no address or checksum is touched anywhere in `realm-wire`. In Realm
//! the RSIP host sends with the address the gateway assigned it, so no translation happens and
//! the received and original addresses are the same, in which case the RFC's additions and
//! subtractions cancel out; a peer that did pass a NAT is handled in `realm-ipsec`, which has
//! the NAT-OA addresses.

use serde::Serialize;

use crate::Error;
use crate::esp;

/// UDP port for IKE and UDP-encapsulated ESP after NAT detection (RFC 3948 s2, RFC 3947).
pub const UDP_ENCAP_PORT: u16 = 4500;

/// UDP port of IKE before any switch to port 4500 (RFC 2408, RFC 2409); no ESP arrives here.
pub const IKE_PORT: u16 = 500;

/// The one-byte NAT-keepalive payload (RFC 3948 s2.3).
pub const NAT_KEEPALIVE: u8 = 0xff;

/// The non-ESP marker that precedes an IKE message on port 4500 (RFC 3948 s2.2): four zero
/// bytes where an ESP packet has its SPI, which is never 0.
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];

/// What a UDP payload received on port 4500 is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Classified<'a> {
    /// A NAT-keepalive: the receiver SHOULD ignore it (RFC 3948 s2.3).
    Keepalive,
    /// An IKE message, the non-ESP marker removed (not yet parsed: that is `crate::isakmp`'s).
    Ike(&'a [u8]),
    /// An ESP packet: at least the 8-byte header, SPI non-zero. Ready for
    /// [`esp::Packet::new_checked`], which cannot fail on it.
    Esp(&'a [u8]),
}

/// Classifies a UDP payload received on [`UDP_ENCAP_PORT`].
///
/// - one byte `0xFF`: [`Classified::Keepalive`] (RFC 3948 s2.3);
/// - four zero bytes, then at least one byte: [`Classified::Ike`] with the bytes after the marker
///   (s2.2);
/// - otherwise, at least 8 bytes: [`Classified::Esp`], the first four being the (non-zero) SPI
///   (s2.1).
///
/// Errors: an empty payload, or 2 or 3 bytes, is `Truncated`; one byte other than `0xFF` is
/// `Malformed`; a marker with nothing after it is `Truncated` ("IKE message"); 4 to 7 bytes
/// with a non-zero first word are `Truncated` ("ESP header").
pub fn classify(payload: &[u8]) -> Result<Classified<'_>, Error> {
    match payload {
        [NAT_KEEPALIVE] => return Ok(Classified::Keepalive),
        [_] => {
            return Err(Error::Malformed {
                what: "UDP-encapsulated payload",
                offset: 0,
                reason: "a one-byte payload must be the NAT-keepalive 0xFF (RFC 3948 2.3)",
            });
        }
        _ => {}
    }
    let Some((first, rest)) = payload.split_first_chunk::<4>() else {
        return Err(Error::Truncated {
            what: "UDP-encapsulated payload",
            offset: 0,
            need: 4,
            have: payload.len(),
        });
    };
    if *first == NON_ESP_MARKER {
        if rest.is_empty() {
            return Err(Error::Truncated {
                what: "IKE message after non-ESP marker",
                offset: NON_ESP_MARKER.len(),
                need: 1,
                have: 0,
            });
        }
        return Ok(Classified::Ike(rest));
    }
    if payload.len() < esp::HEADER_LEN {
        return Err(Error::Truncated {
            what: "ESP header",
            offset: 0,
            need: esp::HEADER_LEN,
            have: payload.len(),
        });
    }
    Ok(Classified::Esp(payload))
}

/// The UDP payload of a NAT-keepalive (RFC 3948 s2.3: "a one-octet-long payload with the value
/// 0xFF").
pub const fn keepalive() -> [u8; 1] {
    [NAT_KEEPALIVE]
}

/// Appends an IKE message for port 4500 to `out`: the non-ESP marker, then the message
/// (RFC 3948 s2.2). Fails on an empty message, which [`classify`] would reject.
pub fn emit_ike(ike_message: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    if ike_message.is_empty() {
        return Err(Error::Truncated {
            what: "IKE message after non-ESP marker",
            offset: NON_ESP_MARKER.len(),
            need: 1,
            have: 0,
        });
    }
    out.reserve(NON_ESP_MARKER.len().saturating_add(ike_message.len()));
    out.extend_from_slice(&NON_ESP_MARKER);
    out.extend_from_slice(ike_message);
    Ok(())
}

/// Appends an ESP packet for port 4500 to `out`: the packet as it is, nothing in front
/// (RFC 3948 s2.1). Fails if it is shorter than the ESP header or its SPI is 0 ("The SPI field
/// in the ESP header MUST NOT be a zero value"): the receiver would take it for IKE.
pub fn emit_esp(esp_packet: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    let packet = esp::Packet::new_checked(esp_packet)?;
    if packet.spi() == 0 {
        return Err(Error::Malformed {
            what: "ESP SPI",
            offset: 0,
            reason: "SPI 0 would read as the non-ESP marker (RFC 3948 2.1)",
        });
    }
    out.extend_from_slice(esp_packet);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_is_one_ff_byte() {
        assert_eq!(classify(&[0xff]), Ok(Classified::Keepalive));
        assert_eq!(classify(&keepalive()), Ok(Classified::Keepalive));
        assert!(matches!(
            classify(&[0x00]),
            Err(Error::Malformed {
                what: "UDP-encapsulated payload",
                offset: 0,
                ..
            })
        ));
        assert!(matches!(classify(&[0xfe]), Err(Error::Malformed { .. })));
    }

    #[test]
    fn non_esp_marker_then_ike() {
        // Marker, then the start of an IKEv1 header (initiator cookie ...).
        let bytes = [0, 0, 0, 0, 0x5a, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77];
        assert_eq!(classify(&bytes), Ok(Classified::Ike(&bytes[4..])));
        let mut out = Vec::new();
        emit_ike(&bytes[4..], &mut out).unwrap();
        assert_eq!(out, bytes);
        // Even an IKE message that starts with zero bytes keeps them.
        assert_eq!(classify(&[0, 0, 0, 0, 0]), Ok(Classified::Ike(&[0])));
    }

    #[test]
    fn esp_starts_with_a_non_zero_spi() {
        let bytes = [0x00, 0x00, 0xa5, 0xf8, 0, 0, 0, 0x0a, 0xfa, 0xce];
        assert_eq!(classify(&bytes), Ok(Classified::Esp(&bytes[..])));
        let Ok(Classified::Esp(esp_bytes)) = classify(&bytes) else {
            unreachable!()
        };
        assert_eq!(esp::Packet::new_checked(esp_bytes).unwrap().spi(), 0xa5f8);
        let mut out = Vec::new();
        emit_esp(&bytes, &mut out).unwrap();
        assert_eq!(out, bytes);
        // SPI 1..255 are IANA-reserved but still ESP here: that is for the SA lookup to refuse.
        assert!(matches!(
            classify(&[0, 0, 0, 1, 0, 0, 0, 1]),
            Ok(Classified::Esp(_))
        ));
    }

    #[test]
    fn malformed_payloads_are_typed_errors() {
        assert_eq!(
            classify(&[]),
            Err(Error::Truncated {
                what: "UDP-encapsulated payload",
                offset: 0,
                need: 4,
                have: 0
            })
        );
        assert_eq!(
            classify(&[0xff, 0xff]),
            Err(Error::Truncated {
                what: "UDP-encapsulated payload",
                offset: 0,
                need: 4,
                have: 2
            })
        );
        assert_eq!(
            classify(&[0, 0, 0]),
            Err(Error::Truncated {
                what: "UDP-encapsulated payload",
                offset: 0,
                need: 4,
                have: 3
            })
        );
        assert_eq!(
            classify(&[0, 0, 0, 0]),
            Err(Error::Truncated {
                what: "IKE message after non-ESP marker",
                offset: 4,
                need: 1,
                have: 0
            })
        );
        assert_eq!(
            classify(&[1, 2, 3, 4, 5, 6, 7]),
            Err(Error::Truncated {
                what: "ESP header",
                offset: 0,
                need: 8,
                have: 7
            })
        );
    }

    #[test]
    fn builders_refuse_what_would_be_misread() {
        let mut out = Vec::new();
        assert!(emit_ike(&[], &mut out).is_err());
        assert!(emit_esp(&[0, 0, 0, 0, 0, 0, 0, 1], &mut out).is_err());
        assert!(emit_esp(&[0, 0, 0, 1], &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn ports() {
        assert_eq!((UDP_ENCAP_PORT, IKE_PORT), (4500, 500));
    }
}
