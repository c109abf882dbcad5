//! Key export for debugging (issue 12, item 7): the lines Wireshark's IKEv1 dissector reads to
//! decrypt Main Mode messages 5 and 6, Aggressive Mode message 3, Quick Mode and Informational
//! exchanges. Off by default: the daemon writes them only when told to, and the output is as
//! secret as the keys.
//!
//! The ESP keys a Quick Mode yields are exported by realm-ipsec (`wireshark::esp_sa_line`) once
//! the SAs are installed, so each format has one home.

use crate::ikev1::main_mode::IsakmpSa;

/// One line of Wireshark's `ikev1_decryption_table` UAT (`~/.config/wireshark/ikev1_decryption_table`,
/// or `tshark -o "uat:ikev1_decryption_table:LINE"`): the initiator's cookie and the ISAKMP SA's
/// encryption key Ka (RFC 2409 Appendix B), both byte fields, which UAT files write as bare hex:
/// `83d374c30b3b5082,0123...ef`. Wireshark derives the IVs itself.
pub fn ikev1_decryption_table_line(sa: &IsakmpSa) -> String {
    format!(
        "{},{}",
        hex::encode(sa.initiator_cookie),
        hex::encode(sa.encryption_key.expose())
    )
}
