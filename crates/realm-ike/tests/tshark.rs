//! tshark decrypts Realm's Main Mode messages 5 and 6 with the key from
//! `export::ikev1_decryption_table_line` (Wireshark's `ikev1_decryption_table`
//! UAT): an independent implementation agrees with Realm's key schedule
//! (Appendix B key expansion), IV chaining and encryption. With a wrong key it
//! decrypts nothing (the control that shows the check can fail). Likewise a protected
//! Informational (RFC 2409 5.7) sealed after the handshake: tshark derives its IV from the
//! last phase 1 block and the Message ID and reads the R-U-THERE and the Delete inside.
//! With RSA signatures (RFC 2409 5.1) tshark decrypts messages 5 and 6 and shows the ID
//! (ID_DER_ASN1_DN), the X.509 certificate it dissects (its dNSName) and the SIG.
//! And Aggressive Mode: tshark decrypts message 3 (HASH_I) and an Informational after it, whose
//! IV derives from message 3's last block.
//! Needs tshark (`scripts/install-deps`); FAILS if it is missing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::process::Command;

use realm_ike::export::ikev1_decryption_table_line;
use realm_ike::ikev1::aggressive_mode;
use realm_ike::ikev1::informational::{self, delete_esp, ru_there};
use realm_ike::ikev1::main_mode::{
    Initiator, IsakmpSa, MainModeConfig, Phase1Credentials, Responder,
};
use realm_ike::ikev1::nat_t::{Endpoints, NatTConfig};
use realm_ike::proposal::{IkeProposal, Preference};
use realm_ike::{AwsLcCrypto, CipherAlgorithm, DhGroup, HashAlgorithm};
use realm_wire::isakmp::Identification;
use std::time::UNIX_EPOCH;

#[allow(dead_code)] // the seeded provider and PSK phase 1 are not used here
mod common;
use common::certs::{MOON_IP, SUN_IP, VALID, credentials, host, now, root_ca};

const PSK: &[u8] = b"tshark reads this too";
const I: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const R: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

fn config(proposal: IkeProposal, id: Identification) -> MainModeConfig {
    MainModeConfig {
        proposals: vec![proposal],
        lifetime: NonZeroU32::new(3600).unwrap(),
        preference: Preference::Ours,
        local_id: id,
        auth: Phase1Credentials::PreSharedKey,
        nat_t: NatTConfig::default(),
        vendor_ids: Vec::new(),
    }
}

/// Main Mode between the two roles; the six messages and the initiator's SA.
fn handshake(proposal: IkeProposal) -> (Vec<Vec<u8>>, IsakmpSa) {
    let c = AwsLcCrypto::new();
    let ends = |l: Ipv4Addr, r: Ipv4Addr| Endpoints {
        local: SocketAddr::from((l, 500)),
        remote: SocketAddr::from((r, 500)),
    };
    let i_cfg = config(proposal, Identification::ipv4(I));
    let (i, m1) = Initiator::start(&c, i_cfg, ends(I, R)).unwrap();
    let r_cfg = config(proposal, Identification::fqdn("gw.example.net"));
    let (r, m2) =
        Responder::handle_sa(r_cfg, [0xc0, 0x0c, 0x1e, 2, 3, 4, 5, 6], ends(R, I), &m1).unwrap();
    let (i, m3) = i.handle_sa(&c, &m2).map_err(|f| f.error).unwrap();
    let (r, m4) = r.handle_ke(&c, &m3, PSK).map_err(|f| f.error).unwrap();
    let (i, m5) = i.handle_ke(&c, &m4, PSK).map_err(|f| f.error).unwrap();
    let (_, m6) = r
        .handle_id(&c, &m5, UNIX_EPOCH)
        .map_err(|f| f.error)
        .unwrap();
    let sa = i
        .handle_id(&c, &m6, UNIX_EPOCH)
        .map_err(|f| f.error)
        .unwrap();
    (vec![m1, m2, m3, m4, m5, m6], sa)
}

/// IPv4 + UDP 500 -> 500 around `payload` (UDP checksum 0: none, RFC 768).
fn udp_500(src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let len = 28 + payload.len();
    let mut p = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0];
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let sum = p
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u32>();
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = !((sum & 0xffff) + (sum >> 16)) as u16;
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(&500u16.to_be_bytes());
    p.extend_from_slice(&500u16.to_be_bytes());
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

/// A pcap file (LINKTYPE_RAW, 101) holding `packets`.
fn pcap(packets: &[Vec<u8>]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&4u16.to_le_bytes());
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&65535u32.to_le_bytes());
    f.extend_from_slice(&101u32.to_le_bytes());
    for (i, p) in packets.iter().enumerate() {
        f.extend_from_slice(&(i as u32 + 1).to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&(p.len() as u32).to_le_bytes());
        f.extend_from_slice(&(p.len() as u32).to_le_bytes());
        f.extend_from_slice(p);
    }
    f
}

/// tshark's `field` per frame, reading `file` with `line` as the only
/// `ikev1_decryption_table` entry.
fn fields(file: &std::path::Path, home: &std::path::Path, line: &str, field: &str) -> Vec<String> {
    let out = Command::new("tshark")
        .env("HOME", home) // no personal Wireshark profile
        .args(["-n", "-r"])
        .arg(file)
        .args(["-o", &format!("uat:ikev1_decryption_table:{line}")])
        .args(["-T", "fields", "-e", field])
        .output()
        .expect("tshark is required (scripts/install-deps)");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn tshark_decrypts_main_mode_with_the_exported_key() {
    let dir = std::env::temp_dir().join(format!("realm-ike-tshark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (n, (cipher, hash, group)) in [
        (
            CipherAlgorithm::Aes128Cbc,
            HashAlgorithm::Sha256,
            DhGroup::Modp2048,
        ),
        (
            CipherAlgorithm::Aes256Cbc,
            HashAlgorithm::Sha1,
            DhGroup::Ecp256,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let (messages, sa) = handshake(IkeProposal::new(cipher, hash, group));
        let packets: Vec<Vec<u8>> = messages
            .iter()
            .enumerate()
            .map(|(k, m)| match k % 2 {
                0 => udp_500(I, R, m),
                _ => udp_500(R, I, m),
            })
            .collect();
        let file = dir.join(format!("main-mode-{n}.pcap"));
        std::fs::write(&file, pcap(&packets)).unwrap();
        let line = ikev1_decryption_table_line(&sa);
        assert_eq!(line.len(), 16 + 1 + 2 * sa.encryption_key.expose().len());

        // Messages 5 and 6 carry ID_IPV4_ADDR (1) and ID_FQDN (2), readable
        // only once decrypted; messages 1-4 carry no ID.
        let types = fields(&file, &dir, &line, "isakmp.id.type");
        assert_eq!(
            types,
            ["", "", "", "", "1", "2"],
            "{cipher:?}/{hash:?}/{group:?}: {line}"
        );

        // The control: one key byte wrong, nothing decrypts.
        let mut wrong = line.clone().into_bytes();
        let at = line.len() - 1;
        wrong[at] = if wrong[at] == b'0' { b'1' } else { b'0' };
        let wrong = String::from_utf8(wrong).unwrap();
        let types = fields(&file, &dir, &wrong, "isakmp.id.type");
        assert!(
            types.iter().all(String::is_empty),
            "decrypted with a wrong key? {types:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tshark_decrypts_a_protected_informational_with_the_exported_key() {
    let dir = std::env::temp_dir().join(format!("realm-ike-tshark-info-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let proposal = IkeProposal::new(
        CipherAlgorithm::Aes128Cbc,
        HashAlgorithm::Sha256,
        DhGroup::Modp2048,
    );
    let (messages, sa) = handshake(proposal);
    let c = AwsLcCrypto::new();
    let (_, info) = informational::seal(
        &c,
        &sa,
        vec![ru_there(&sa, 0x0bad_cafe), delete_esp(&[0xc1c1_0001])],
    )
    .unwrap();
    let mut packets: Vec<Vec<u8>> = messages
        .iter()
        .enumerate()
        .map(|(k, m)| match k % 2 {
            0 => udp_500(I, R, m),
            _ => udp_500(R, I, m),
        })
        .collect();
    packets.push(udp_500(I, R, &info));
    let file = dir.join("informational.pcap");
    std::fs::write(&file, pcap(&packets)).unwrap();
    let line = ikev1_decryption_table_line(&sa);

    let notify = fields(&file, &dir, &line, "isakmp.notify.msgtype");
    assert_eq!(notify, ["", "", "", "", "", "", "36136"], "{line}");
    let seq = fields(&file, &dir, &line, "isakmp.notify.data.dpd.are_you_there");
    assert_eq!(
        seq.last().map(String::as_str),
        Some(0x0bad_cafe_u32.to_string().as_str())
    );
    let spis = fields(&file, &dir, &line, "isakmp.delete.spi");
    assert_eq!(spis.last().map(String::as_str), Some("c1c10001"));

    // The control: with a wrong key, the Informational stays ciphertext.
    let mut wrong = line.clone().into_bytes();
    let at = line.len() - 1;
    wrong[at] = if wrong[at] == b'0' { b'1' } else { b'0' };
    let wrong = String::from_utf8(wrong).unwrap();
    let notify = fields(&file, &dir, &wrong, "isakmp.notify.msgtype");
    assert!(notify.iter().all(String::is_empty), "{notify:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tshark_decrypts_rsa_signature_main_mode_and_shows_the_certificates() {
    let dir = std::env::temp_dir().join(format!("realm-ike-tshark-rsa-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = root_ca("strongSwan Root CA");
    let moon = host("moon.strongswan.org", MOON_IP, &ca, VALID);
    let sun = host("sun.strongswan.org", SUN_IP, &ca, VALID);
    let proposal = IkeProposal::new(
        CipherAlgorithm::Aes128Cbc,
        HashAlgorithm::Sha256,
        DhGroup::Modp2048,
    );
    let rsa_config = |creds: std::sync::Arc<realm_ike::ikev1::main_mode::RsaCredentials>| {
        let mut c = config(proposal, creds.default_id());
        c.auth = Phase1Credentials::RsaSignature(creds);
        c
    };
    let c = AwsLcCrypto::new();
    let ends = |l: Ipv4Addr, r: Ipv4Addr| Endpoints {
        local: SocketAddr::from((l, 500)),
        remote: SocketAddr::from((r, 500)),
    };
    let (i, m1) =
        Initiator::start(&c, rsa_config(credentials(&moon, &ca, None)), ends(I, R)).unwrap();
    let (r, m2) = Responder::handle_sa(
        rsa_config(credentials(&sun, &ca, None)),
        [0xc0, 0x0c, 0x1e, 2, 3, 4, 5, 7],
        ends(R, I),
        &m1,
    )
    .unwrap();
    let (i, m3) = i.handle_sa(&c, &m2).map_err(|f| f.error).unwrap();
    let (r, m4) = r.handle_ke(&c, &m3, &[]).map_err(|f| f.error).unwrap();
    let (i, m5) = i.handle_ke(&c, &m4, &[]).map_err(|f| f.error).unwrap();
    let (_, m6) = r.handle_id(&c, &m5, now()).map_err(|f| f.error).unwrap();
    let sa = i.handle_id(&c, &m6, now()).map_err(|f| f.error).unwrap();
    let packets: Vec<Vec<u8>> = [m1, m2, m3, m4, m5, m6]
        .iter()
        .enumerate()
        .map(|(k, m)| match k % 2 {
            0 => udp_500(I, R, m),
            _ => udp_500(R, I, m),
        })
        .collect();
    let file = dir.join("main-mode-rsa.pcap");
    std::fs::write(&file, pcap(&packets)).unwrap();
    let line = ikev1_decryption_table_line(&sa);

    // ID_DER_ASN1_DN (9) in messages 5 and 6.
    let types = fields(&file, &dir, &line, "isakmp.id.type");
    assert_eq!(types, ["", "", "", "", "9", "9"], "{line}");
    // CERTREQ (X.509 signature, 4) in messages 3 and 4.
    let requests = fields(&file, &dir, &line, "isakmp.certreq.type");
    assert_eq!(requests, ["", "", "4", "4", "", ""]);
    // The certificates, dissected: encoding 4 and each host's dNSName.
    let encodings = fields(&file, &dir, &line, "isakmp.cert.encoding");
    assert_eq!(encodings, ["", "", "", "", "4", "4"]);
    let names = fields(&file, &dir, &line, "x509ce.dNSName");
    assert_eq!(
        names,
        ["", "", "", "", "moon.strongswan.org", "sun.strongswan.org"]
    );
    let sigs = fields(&file, &dir, &line, "isakmp.sig");
    assert!(sigs[..4].iter().all(String::is_empty), "{sigs:?}");
    assert!(sigs[4..].iter().all(|s| s.len() == 512), "{sigs:?}");

    // The control: with a wrong key, no certificate is seen.
    let mut wrong = line.clone().into_bytes();
    let at = line.len() - 1;
    wrong[at] = if wrong[at] == b'0' { b'1' } else { b'0' };
    let wrong = String::from_utf8(wrong).unwrap();
    let names = fields(&file, &dir, &wrong, "x509ce.dNSName");
    assert!(names.iter().all(String::is_empty), "{names:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Aggressive Mode between the two roles; the three messages and the initiator's SA.
fn aggressive_handshake(proposal: IkeProposal) -> (Vec<Vec<u8>>, IsakmpSa) {
    let c = AwsLcCrypto::new();
    let ends = |l: Ipv4Addr, r: Ipv4Addr| Endpoints {
        local: SocketAddr::from((l, 500)),
        remote: SocketAddr::from((r, 500)),
    };
    let i_cfg = config(proposal, Identification::ipv4(I));
    let (i, m1) = aggressive_mode::Initiator::start(&c, i_cfg, ends(I, R)).unwrap();
    let r_cfg = config(proposal, Identification::fqdn("gw.example.net"));
    let (r, m2) = aggressive_mode::Responder::handle_first(
        r_cfg,
        [0xc0, 0x0c, 0x1e, 2, 3, 4, 5, 7],
        ends(R, I),
        &c,
        &m1,
        |_| Some(PSK.to_vec()),
    )
    .unwrap();
    let (sa, m3) = i
        .handle_second(&c, &m2, PSK, 4500)
        .map_err(|f| f.error)
        .unwrap();
    r.handle_third(&c, &m3, ends(R, I))
        .map_err(|f| f.error)
        .unwrap();
    (vec![m1, m2, m3], sa)
}

#[test]
fn tshark_decrypts_aggressive_mode_message_3_and_what_follows() {
    let dir = std::env::temp_dir().join(format!("realm-ike-tshark-aggr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let proposal = IkeProposal::new(
        CipherAlgorithm::Aes128Cbc,
        HashAlgorithm::Sha256,
        DhGroup::Modp2048,
    );
    let (messages, sa) = aggressive_handshake(proposal);
    let c = AwsLcCrypto::new();
    // A protected Informational after phase 1: its IV comes from message 3's last block.
    let (_, info) = informational::seal(&c, &sa, vec![ru_there(&sa, 0x0bad_cafe)]).unwrap();
    let packets = vec![
        udp_500(I, R, &messages[0]),
        udp_500(R, I, &messages[1]),
        udp_500(I, R, &messages[2]),
        udp_500(I, R, &info),
    ];
    let file = dir.join("aggressive.pcap");
    std::fs::write(&file, pcap(&packets)).unwrap();
    let line = ikev1_decryption_table_line(&sa);

    // Message 2 carries HASH_R in plaintext; message 3's HASH_I is readable only decrypted.
    let hashes = fields(&file, &dir, &line, "isakmp.hash");
    assert_eq!(hashes.len(), 4, "{hashes:?}");
    assert!(hashes[0].is_empty() && !hashes[1].is_empty(), "{hashes:?}");
    assert_eq!(hashes[2].len(), 64, "HASH_I decrypted: {hashes:?}");
    let notify = fields(&file, &dir, &line, "isakmp.notify.msgtype");
    assert_eq!(notify, ["", "", "", "36136"], "{line}");

    // The control: with a wrong key, message 3 and the Informational stay ciphertext.
    let mut wrong = line.clone().into_bytes();
    let at = line.len() - 1;
    wrong[at] = if wrong[at] == b'0' { b'1' } else { b'0' };
    let wrong = String::from_utf8(wrong).unwrap();
    let hashes = fields(&file, &dir, &wrong, "isakmp.hash");
    assert!(hashes[2].is_empty() && hashes[3].is_empty(), "{hashes:?}");
    let notify = fields(&file, &dir, &wrong, "isakmp.notify.msgtype");
    assert!(notify.iter().all(String::is_empty), "{notify:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
