//! The IKEv1 key schedule (RFC 2409 section 5, section 5.5 and Appendix B): what Phase 1 derives
//! from the nonces, the Diffie-Hellman secret and the cookies, the encryption key and IVs of the
//! ISAKMP SA, and the KEYMAT of the IPsec SAs that Quick Mode negotiates.
//!
//! Every value here is typed ([`Skeyid`], [`SkeyidD`], [`SkeyidA`], [`SkeyidE`],
//! [`EncryptionKey`], [`Keymat`], [`Iv`]) so one cannot be used for another, and every secret is
//! zeroized on drop and never printed. All primitives come from the [`Crypto`] provider; this
//! module only concatenates what the RFC says in the order it says.
//!
//! Not covered: SKEYID for the public-key-encryption authentication methods (RFC 2409 sections
//! 5.2 and 5.3), which Realm does not offer.

use crate::crypto::{
    CipherAlgorithm, Crypto, CryptoError, HashAlgorithm, PrfAlgorithm, PrfOutput, SharedSecret,
};

secret_bytes!(
    /// SKEYID: the string derived from secret material known only to the parties (RFC 2409
    /// section 3.2). Keys HASH_I/HASH_R.
    Skeyid,
    pub(crate)
);
secret_bytes!(
    /// SKEYID_d = prf(SKEYID, g^xy | CKY-I | CKY-R | 0): keys KEYMAT for non-ISAKMP SAs.
    SkeyidD,
    pub(crate)
);
secret_bytes!(
    /// SKEYID_a = prf(SKEYID, SKEYID_d | g^xy | CKY-I | CKY-R | 1): keys the ISAKMP SA's
    /// authentication (the Phase 2 and Informational HASH payloads).
    SkeyidA,
    pub(crate)
);
secret_bytes!(
    /// SKEYID_e = prf(SKEYID, SKEYID_a | g^xy | CKY-I | CKY-R | 2): the material of the ISAKMP
    /// SA's encryption key ([`EncryptionKey`], RFC 2409 Appendix B).
    SkeyidE,
    pub(crate)
);
secret_bytes!(
    /// Quick Mode KEYMAT for one IPsec SA (RFC 2409 section 5.5), as long as asked for.
    Keymat,
    pub(crate)
);
secret_bytes!(
    /// The encryption key Ka's bytes (see [`EncryptionKey`]).
    KeyBytes,
    pub(crate)
);

impl From<PrfOutput> for Skeyid {
    fn from(out: PrfOutput) -> Self {
        Self::from_bytes(out.expose().to_vec())
    }
}

/// How Phase 1 authenticates, as far as SKEYID depends on it (RFC 2409 section 5).
#[derive(Clone, Copy)]
pub enum Phase1Auth<'a> {
    /// Pre-shared key: SKEYID = prf(pre-shared-key, Ni_b | Nr_b).
    PreSharedKey(&'a [u8]),
    /// Signatures (RSA, DSS, ECDSA): SKEYID = prf(Ni_b | Nr_b, g^xy).
    Signature,
}

impl std::fmt::Debug for Phase1Auth<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PreSharedKey(_) => f.write_str("PreSharedKey(<redacted>)"),
            Self::Signature => f.write_str("Signature"),
        }
    }
}

/// What Phase 1's key derivation takes.
#[derive(Debug, Clone, Copy)]
pub struct Phase1Inputs<'a> {
    /// The negotiated PRF (the HMAC of the negotiated hash when no PRF attribute was agreed).
    pub prf: PrfAlgorithm,
    /// The authentication method.
    pub auth: Phase1Auth<'a>,
    /// Ni_b: the body of the initiator's nonce payload.
    pub ni_b: &'a [u8],
    /// Nr_b: the body of the responder's nonce payload.
    pub nr_b: &'a [u8],
    /// g^xy, the Diffie-Hellman shared secret in its group's fixed length.
    pub g_xy: &'a SharedSecret,
    /// CKY-I, the initiator's cookie.
    pub cky_i: [u8; 8],
    /// CKY-R, the responder's cookie.
    pub cky_r: [u8; 8],
}

/// SKEYID for `auth` (RFC 2409 section 5).
pub fn skeyid<C: Crypto>(crypto: &C, inputs: &Phase1Inputs<'_>) -> Result<Skeyid, CryptoError> {
    let out = match inputs.auth {
        // RFC 2409 5: "For pre-shared keys: SKEYID = prf(pre-shared-key, Ni_b | Nr_b)"
        Phase1Auth::PreSharedKey(psk) => {
            crypto.prf(inputs.prf, psk, &[inputs.ni_b, inputs.nr_b])?
        }
        // RFC 2409 5: "For signatures: SKEYID = prf(Ni_b | Nr_b, g^xy)". HMAC takes the key in
        // one piece, so the nonces are joined (in a buffer zeroized afterwards: nonces are
        // public, but the habit costs nothing).
        Phase1Auth::Signature => {
            let mut key =
                zeroize::Zeroizing::new(Vec::with_capacity(inputs.ni_b.len() + inputs.nr_b.len()));
            key.extend_from_slice(inputs.ni_b);
            key.extend_from_slice(inputs.nr_b);
            crypto.prf(inputs.prf, &key, &[inputs.g_xy.expose()])?
        }
    };
    Ok(out.into())
}

/// The ISAKMP SA's keys: SKEYID and the three strings derived from it (RFC 2409 section 5),
/// with the PRF that made them.
#[derive(Debug, Clone)]
pub struct Phase1Keys {
    prf: PrfAlgorithm,
    skeyid: Skeyid,
    skeyid_d: SkeyidD,
    skeyid_a: SkeyidA,
    skeyid_e: SkeyidE,
}

impl Phase1Keys {
    /// Derives SKEYID, SKEYID_d, SKEYID_a and SKEYID_e (RFC 2409 section 5):
    ///
    /// ```text
    /// SKEYID_d = prf(SKEYID, g^xy | CKY-I | CKY-R | 0)
    /// SKEYID_a = prf(SKEYID, SKEYID_d | g^xy | CKY-I | CKY-R | 1)
    /// SKEYID_e = prf(SKEYID, SKEYID_a | g^xy | CKY-I | CKY-R | 2)
    /// ```
    ///
    /// The 0, 1 and 2 are single octets.
    pub fn derive<C: Crypto>(crypto: &C, inputs: &Phase1Inputs<'_>) -> Result<Self, CryptoError> {
        let skeyid = skeyid(crypto, inputs)?;
        let prf = inputs.prf;
        let g_xy = inputs.g_xy.expose();
        let (cky_i, cky_r) = (&inputs.cky_i[..], &inputs.cky_r[..]);
        let key = skeyid.expose();
        let d = crypto.prf(prf, key, &[g_xy, cky_i, cky_r, &[0]])?;
        let a = crypto.prf(prf, key, &[d.expose(), g_xy, cky_i, cky_r, &[1]])?;
        let e = crypto.prf(prf, key, &[a.expose(), g_xy, cky_i, cky_r, &[2]])?;
        Ok(Self {
            prf,
            skeyid,
            skeyid_d: SkeyidD::from_bytes(d.expose().to_vec()),
            skeyid_a: SkeyidA::from_bytes(a.expose().to_vec()),
            skeyid_e: SkeyidE::from_bytes(e.expose().to_vec()),
        })
    }

    /// The PRF these keys were derived with (and that every later step uses).
    pub fn prf(&self) -> PrfAlgorithm {
        self.prf
    }

    /// SKEYID.
    pub fn skeyid(&self) -> &Skeyid {
        &self.skeyid
    }

    /// SKEYID_d.
    pub fn skeyid_d(&self) -> &SkeyidD {
        &self.skeyid_d
    }

    /// SKEYID_a.
    pub fn skeyid_a(&self) -> &SkeyidA {
        &self.skeyid_a
    }

    /// SKEYID_e.
    pub fn skeyid_e(&self) -> &SkeyidE {
        &self.skeyid_e
    }

    /// The ISAKMP SA's encryption key Ka for `cipher` (RFC 2409 Appendix B): the first bytes of
    /// SKEYID_e when it is long enough, otherwise of
    ///
    /// ```text
    /// Ka = K1 | K2 | K3 ...,  K1 = prf(SKEYID_e, 0),  K2 = prf(SKEYID_e, K1),  K3 = prf(SKEYID_e, K2) ...
    /// ```
    ///
    /// where the 0 is one zero octet (strongSwan's reading too). With HMAC-SHA1 (20 bytes) this
    /// expands for AES-256 and truncates for AES-128.
    pub fn encryption_key<C: Crypto>(
        &self,
        crypto: &C,
        cipher: CipherAlgorithm,
    ) -> Result<EncryptionKey, CryptoError> {
        let want = cipher.key_len();
        let e = self.skeyid_e.expose();
        let bytes = match e.get(..want) {
            Some(prefix) => prefix.to_vec(),
            None => expand(crypto, self.prf, e, &[], &[0], want)?,
        };
        Ok(EncryptionKey {
            cipher,
            key: KeyBytes::from_bytes(bytes),
        })
    }

    /// KEYMAT for one IPsec SA (RFC 2409 section 5.5), `len` bytes:
    ///
    /// ```text
    /// KEYMAT = K1 | K2 | K3 ...
    /// K1 = prf(SKEYID_d, [ g(qm)^xy | ] protocol | SPI | Ni_b | Nr_b)
    /// K2 = prf(SKEYID_d, K1 | [ g(qm)^xy | ] protocol | SPI | Ni_b | Nr_b)  ...
    /// ```
    ///
    /// Each SA (one per direction) gets its own KEYMAT with its own SPI. Callers split it into
    /// the encryption key followed by the integrity key ([`Keymat::split_at`]). At most
    /// [`MAX_KEYMAT_LEN`] bytes are derived at once.
    pub fn keymat<C: Crypto>(
        &self,
        crypto: &C,
        inputs: &KeymatInputs<'_>,
        len: usize,
    ) -> Result<Keymat, CryptoError> {
        if len > MAX_KEYMAT_LEN {
            return Err(CryptoError::TooMuchKeyMaterial {
                requested: len,
                max: MAX_KEYMAT_LEN,
            });
        }
        let spi = inputs.spi.to_be_bytes();
        let protocol = [inputs.protocol.id()];
        let pfs = inputs.pfs.map_or(&[][..], SharedSecret::expose);
        let seed: [&[u8]; 5] = [pfs, &protocol, &spi, inputs.ni_b, inputs.nr_b];
        let bytes = expand(crypto, self.prf, self.skeyid_d.expose(), &seed, &[], len)?;
        Ok(Keymat::from_bytes(bytes))
    }
}

/// The most KEYMAT derived for one SA at once: ample for any ESP or AH key pair (AES-256-GCM's
/// 36 bytes plus HMAC-SHA2-512's 64) and a bound on the work a bad length could ask for.
pub const MAX_KEYMAT_LEN: usize = 256;

/// `K1 | K2 | ...` truncated to `len`, with `K1 = prf(key, first | seed)` and
/// `Kn = prf(key, Kn-1 | seed)`: both RFC 2409 expansions. Appendix B has an empty seed and
/// `first` = one zero octet; section 5.5 has the KEYMAT seed and an empty `first`.
fn expand<C: Crypto>(
    crypto: &C,
    prf: PrfAlgorithm,
    key: &[u8],
    seed: &[&[u8]],
    first: &[u8],
    len: usize,
) -> Result<Vec<u8>, CryptoError> {
    // Zeroized if an error cuts the expansion short; sized up front so it never reallocates
    // (a reallocation would leave a copy behind).
    let mut out = zeroize::Zeroizing::new(Vec::with_capacity(len + prf.output_len()));
    let mut previous: Option<PrfOutput> = None;
    while out.len() < len {
        let mut data: Vec<&[u8]> = Vec::with_capacity(seed.len() + 1);
        data.push(previous.as_ref().map_or(first, PrfOutput::expose));
        data.extend_from_slice(seed);
        let k = crypto.prf(prf, key, &data)?;
        if k.is_empty() {
            return Err(CryptoError::Provider);
        }
        out.extend_from_slice(k.expose());
        previous = Some(k);
    }
    // Zeroize the tail before dropping it (truncate alone would leave the bytes in place).
    if let Some(tail) = out.get_mut(len..) {
        zeroize::Zeroize::zeroize(tail);
    }
    out.truncate(len);
    Ok(std::mem::take(&mut *out))
}

/// The ISAKMP SA's encryption key Ka with its cipher (RFC 2409 Appendix B). Zeroized on drop.
#[derive(Debug, Clone)]
pub struct EncryptionKey {
    cipher: CipherAlgorithm,
    key: KeyBytes,
}

impl EncryptionKey {
    /// The cipher the key is for.
    pub fn cipher(&self) -> CipherAlgorithm {
        self.cipher
    }

    /// The key bytes (for the provider and the key exporter).
    pub fn expose(&self) -> &[u8] {
        self.key.expose()
    }

    /// Encrypts whole blocks in place with `iv` (the caller pads, RFC 2409 Appendix B).
    pub fn encrypt<C: Crypto>(
        &self,
        crypto: &C,
        iv: &Iv,
        data: &mut [u8],
    ) -> Result<(), CryptoError> {
        crypto.encrypt_cbc(self.cipher, self.key.expose(), iv.as_bytes(), data)
    }

    /// Decrypts whole blocks in place with `iv`.
    pub fn decrypt<C: Crypto>(
        &self,
        crypto: &C,
        iv: &Iv,
        data: &mut [u8],
    ) -> Result<(), CryptoError> {
        crypto.decrypt_cbc(self.cipher, self.key.expose(), iv.as_bytes(), data)
    }
}

impl Keymat {
    /// The first `encryption_len` bytes (the encryption key) and the rest (the integrity key);
    /// `None` if the KEYMAT is shorter than `encryption_len`.
    pub fn split_at(&self, encryption_len: usize) -> Option<(&[u8], &[u8])> {
        self.expose().split_at_checked(encryption_len)
    }
}

/// The protocols Quick Mode keys, by their IPsec DOI protocol ID (RFC 2407 section 4.4.1), the
/// `protocol` octet of KEYMAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpsecProtocol {
    /// PROTO_IPSEC_AH (2).
    Ah,
    /// PROTO_IPSEC_ESP (3).
    Esp,
}

impl IpsecProtocol {
    /// The protocol ID.
    pub const fn id(self) -> u8 {
        match self {
            Self::Ah => 2,
            Self::Esp => 3,
        }
    }
}

/// What KEYMAT for one SA takes (RFC 2409 section 5.5).
#[derive(Debug, Clone, Copy)]
pub struct KeymatInputs<'a> {
    /// The SA's protocol.
    pub protocol: IpsecProtocol,
    /// The SA's SPI: the one its receiving side chose (so each direction has its own).
    pub spi: u32,
    /// Ni_b of this Quick Mode.
    pub ni_b: &'a [u8],
    /// Nr_b of this Quick Mode.
    pub nr_b: &'a [u8],
    /// g(qm)^xy when Quick Mode carried KE payloads (perfect forward secrecy), else `None`.
    pub pfs: Option<&'a SharedSecret>,
}

/// A CBC IV for the ISAKMP SA (one AES block). Not secret: IVs are derived from public values
/// or are the last ciphertext block of a message on the wire.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Iv([u8; Iv::LEN]);

impl Iv {
    /// The IV length: the AES block.
    pub const LEN: usize = 16;

    /// An IV from its bytes; `None` unless exactly [`Iv::LEN`] long.
    pub fn new(bytes: &[u8]) -> Option<Self> {
        bytes.try_into().ok().map(Self)
    }

    /// The first Phase 1 IV: `hash(g^xi | g^xr)` truncated to the block (RFC 2409 Appendix B),
    /// with the negotiated hash and both public values as their KE payloads carried them.
    pub fn phase1<C: Crypto>(
        crypto: &C,
        hash: HashAlgorithm,
        cipher: CipherAlgorithm,
        g_xi: &[u8],
        g_xr: &[u8],
    ) -> Result<Self, CryptoError> {
        Self::truncated(crypto.hash(hash, &[g_xi, g_xr])?.as_bytes(), cipher)
    }

    /// The first IV of a Phase 2 (Quick Mode) or Informational exchange: `hash(last Phase 1
    /// CBC output block | M-ID)` truncated to the block (RFC 2409 Appendix B), with the M-ID in
    /// network order. Later messages of the exchange chain from their predecessor's last block
    /// ([`Iv::last_block_of`]).
    pub fn phase2<C: Crypto>(
        crypto: &C,
        hash: HashAlgorithm,
        cipher: CipherAlgorithm,
        last_phase1_block: &Iv,
        message_id: u32,
    ) -> Result<Self, CryptoError> {
        let m_id = message_id.to_be_bytes();
        let digest = crypto.hash(hash, &[last_phase1_block.as_bytes(), &m_id])?;
        Self::truncated(digest.as_bytes(), cipher)
    }

    /// The last cipher block of an encrypted message: the IV of the next message in the same
    /// exchange (RFC 2409 Appendix B's CBC chaining). `None` for a ciphertext shorter than a
    /// block.
    pub fn last_block_of(ciphertext: &[u8]) -> Option<Self> {
        let start = ciphertext.len().checked_sub(Self::LEN)?;
        Self::new(ciphertext.get(start..)?)
    }

    /// The IV bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn truncated(digest: &[u8], cipher: CipherAlgorithm) -> Result<Self, CryptoError> {
        digest
            .get(..cipher.block_len())
            .and_then(Self::new)
            .ok_or(CryptoError::Provider)
    }
}

impl std::fmt::Debug for Iv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Iv(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::AwsLcCrypto;

    #[test]
    fn last_block_of_needs_a_whole_block() {
        assert_eq!(Iv::last_block_of(&[0u8; 15]), None);
        let ct: Vec<u8> = (0u8..48).collect();
        let iv = Iv::last_block_of(&ct).unwrap();
        assert_eq!(iv.as_bytes(), &ct[32..]);
    }

    #[test]
    fn keymat_length_is_bounded() {
        let c = AwsLcCrypto::new();
        let g = SharedSecret::from_bytes(vec![7; 32]);
        let inputs = Phase1Inputs {
            prf: PrfAlgorithm::HmacSha1,
            auth: Phase1Auth::PreSharedKey(b"k"),
            ni_b: b"ni",
            nr_b: b"nr",
            g_xy: &g,
            cky_i: [1; 8],
            cky_r: [2; 8],
        };
        let keys = Phase1Keys::derive(&c, &inputs).unwrap();
        let km = KeymatInputs {
            protocol: IpsecProtocol::Esp,
            spi: 1,
            ni_b: b"a",
            nr_b: b"b",
            pfs: None,
        };
        assert_eq!(
            keys.keymat(&c, &km, MAX_KEYMAT_LEN).unwrap().len(),
            MAX_KEYMAT_LEN
        );
        assert_eq!(
            keys.keymat(&c, &km, MAX_KEYMAT_LEN + 1).unwrap_err(),
            CryptoError::TooMuchKeyMaterial {
                requested: MAX_KEYMAT_LEN + 1,
                max: MAX_KEYMAT_LEN
            }
        );
        assert_eq!(keys.keymat(&c, &km, 0).unwrap().len(), 0);
    }

    #[test]
    fn psk_is_not_printed() {
        let shown = format!("{:?}", Phase1Auth::PreSharedKey(b"hunter2"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
