//! What the realm-ike handshake tests share: a crypto provider whose random source is seeded,
//! and Main Mode to an ISAKMP SA on both sides.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub(crate) mod certs;

use std::cell::{Cell, RefCell};
use std::num::NonZeroU32;

use realm_ike::ikev1::main_mode::{self, IsakmpSa, MainModeConfig, Phase1Credentials};
use realm_ike::ikev1::nat_t::{Endpoints, NatTConfig};
use realm_ike::proposal::{IkeProposal, Preference};
use realm_wire::isakmp::Identification;
use std::net::SocketAddr;
use std::time::UNIX_EPOCH;

use realm_ike::crypto::{Digest, PrfOutput, SharedSecret};
use realm_ike::{
    AwsLcCrypto, AwsLcKeyPair, CipherAlgorithm, Crypto, CryptoError, DhGroup, HashAlgorithm,
    PrfAlgorithm,
};

/// AwsLcCrypto with a seeded random source, which records every g^xy it computes.
pub(crate) struct SeededCrypto {
    inner: AwsLcCrypto,
    state: Cell<u64>,
    /// Every g^xy computed, in order.
    pub agreed: RefCell<Vec<Vec<u8>>>,
    /// How many DH key pairs were generated.
    pub generated: Cell<usize>,
}

impl SeededCrypto {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            inner: AwsLcCrypto::new(),
            state: Cell::new(seed | 1),
            agreed: RefCell::new(Vec::new()),
            generated: Cell::new(0),
        }
    }
}

impl Crypto for SeededCrypto {
    type KeyPair = AwsLcKeyPair;

    fn fill_random(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        for b in out {
            // xorshift64*: a test RNG, deterministic per seed.
            let mut x = self.state.get();
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.state.set(x);
            *b = (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8;
        }
        Ok(())
    }

    fn generate_key_pair(&self, group: DhGroup) -> Result<AwsLcKeyPair, CryptoError> {
        self.generated.set(self.generated.get() + 1);
        self.inner.generate_key_pair(group)
    }

    fn agree(&self, kp: &AwsLcKeyPair, peer: &[u8]) -> Result<SharedSecret, CryptoError> {
        let s = self.inner.agree(kp, peer)?;
        self.agreed.borrow_mut().push(s.expose().to_vec());
        Ok(s)
    }

    fn prf(&self, prf: PrfAlgorithm, key: &[u8], data: &[&[u8]]) -> Result<PrfOutput, CryptoError> {
        self.inner.prf(prf, key, data)
    }

    fn hash(&self, hash: HashAlgorithm, data: &[&[u8]]) -> Result<Digest, CryptoError> {
        self.inner.hash(hash, data)
    }

    fn encrypt_cbc(
        &self,
        c: CipherAlgorithm,
        key: &[u8],
        iv: &[u8],
        data: &mut [u8],
    ) -> Result<(), CryptoError> {
        self.inner.encrypt_cbc(c, key, iv, data)
    }

    fn decrypt_cbc(
        &self,
        c: CipherAlgorithm,
        key: &[u8],
        iv: &[u8],
        data: &mut [u8],
    ) -> Result<(), CryptoError> {
        self.inner.decrypt_cbc(c, key, iv, data)
    }
}

/// The pre-shared key [`phase1`] uses.
#[allow(dead_code)]
pub(crate) const PSK: &[u8] = b"correct horse battery staple";

/// Main Mode (aes128-sha256-ecp256, PSK [`PSK`]) to an ISAKMP SA on both sides: the
/// initiator's and the responder's SA and providers (seeded from `seed`).
#[allow(dead_code)] // not every test file establishes an SA
pub(crate) fn phase1(seed: u64) -> (IsakmpSa, IsakmpSa, SeededCrypto, SeededCrypto) {
    let ci = SeededCrypto::new(seed);
    let cr = SeededCrypto::new(seed.wrapping_add(0x9e37_79b9));
    let config = |id| MainModeConfig {
        proposals: vec![IkeProposal::new(
            CipherAlgorithm::Aes128Cbc,
            HashAlgorithm::Sha256,
            DhGroup::Ecp256,
        )],
        lifetime: NonZeroU32::new(10_800).unwrap(),
        preference: Preference::Ours,
        local_id: id,
        auth: Phase1Credentials::PreSharedKey,
        nat_t: NatTConfig::default(),
        vendor_ids: Vec::new(),
    };
    let left: SocketAddr = "192.0.2.1:500".parse().unwrap();
    let right: SocketAddr = "198.51.100.2:500".parse().unwrap();
    let (i, m1) = main_mode::Initiator::start(
        &ci,
        config(Identification::fqdn("left")),
        Endpoints {
            local: left,
            remote: right,
        },
    )
    .unwrap();
    let (r, m2) = main_mode::Responder::handle_sa(
        config(Identification::fqdn("right")),
        [9; 8],
        Endpoints {
            local: right,
            remote: left,
        },
        &m1,
    )
    .unwrap();
    let (i, m3) = i.handle_sa(&ci, &m2).map_err(|f| f.error).unwrap();
    let (r, m4) = r.handle_ke(&cr, &m3, PSK).map_err(|f| f.error).unwrap();
    let (i, m5) = i.handle_ke(&ci, &m4, PSK).map_err(|f| f.error).unwrap();
    let (rsa, m6) = r
        .handle_id(&cr, &m5, UNIX_EPOCH)
        .map_err(|f| f.error)
        .unwrap();
    let isa = i
        .handle_id(&ci, &m6, UNIX_EPOCH)
        .map_err(|f| f.error)
        .unwrap();
    ci.agreed.borrow_mut().clear();
    cr.agreed.borrow_mut().clear();
    (isa, rsa, ci, cr)
}
