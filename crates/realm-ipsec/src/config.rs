//! Manual keying (RFC 2401 s4.6.1): SAs and policies from a configuration
//! file (TOML-friendly serde types), installed into an [`Ipsec`] engine.
//!
//! ```toml
//! [[sa]]
//! spi = "0x1001"
//! direction = "outbound"
//! protocol = "esp"
//! mode = "tunnel"
//! src = "192.0.2.1"
//! dst = "198.51.100.2"
//! encryption = "aes-gcm-128"
//! encryption_key = "0x000102030405060708090a0b0c0d0e0f01020304"  # key | salt
//!
//! [[policy]]
//! direction = "outbound"
//! selector = { src = "10.1.0.0/16", dst = "10.2.0.0/16" }
//! action = "apply"
//! sa = ["0x1001"]
//! ```

use std::time::Instant;

use serde::Deserialize;

use crate::engine::Ipsec;
use crate::error::ConfigError;
use crate::sa::{SaConfig, SaId, SadKey, Spi};
use crate::selector::{Direction, Selector};
use crate::spd::{ApplySpec, PolicyAction, PolicyId, SaTemplate, SpdEntry};

/// A whole manual-keying configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualKeying {
    /// SAs to install.
    #[serde(default)]
    pub sa: Vec<SaConfig>,
    /// Policies, in priority order per direction.
    #[serde(default)]
    pub policy: Vec<PolicyConfig>,
}

/// Policy action in configuration files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionConfig {
    /// BYPASS.
    Bypass,
    /// DISCARD.
    Discard,
    /// APPLY the SAs listed in `sa`.
    Apply,
}

/// One policy in a configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Inbound or outbound.
    pub direction: Direction,
    /// Which packets.
    #[serde(default)]
    pub selector: Selector,
    /// What to do.
    pub action: ActionConfig,
    /// For APPLY: SPIs of the SAs (same direction), innermost first.
    #[serde(default)]
    pub sa: Vec<Spi>,
}

impl ManualKeying {
    /// Installs every SA then every policy. Returns the SA ids in file order.
    pub fn install(self, engine: &mut Ipsec, now: Instant) -> Result<Vec<SaId>, ConfigError> {
        let mut ids = Vec::with_capacity(self.sa.len());
        let mut by_spi: Vec<(Direction, Spi, SadKey, SaTemplate)> = Vec::new();
        for sa in self.sa {
            let key = sa.key();
            let t = SaTemplate {
                protocol: sa.protocol,
                mode: sa.mode,
                tunnel: (sa.mode == crate::sa::Mode::Tunnel).then_some((sa.src, sa.dst)),
                encryption: sa.encryption,
                integrity: sa.integrity,
            };
            by_spi.push((sa.direction, sa.spi, key, t));
            ids.push(engine.add_sa(now, sa)?);
        }
        let mut _policies: Vec<PolicyId> = Vec::new();
        for p in self.policy {
            let action = match p.action {
                ActionConfig::Bypass => PolicyAction::Bypass,
                ActionConfig::Discard => PolicyAction::Discard,
                ActionConfig::Apply => {
                    let mut spec = ApplySpec::default();
                    for spi in &p.sa {
                        let (_, _, key, t) = by_spi
                            .iter()
                            .find(|(d, s, _, _)| *d == p.direction && s == spi)
                            .ok_or(ConfigError::UnknownSa(spi.0))?;
                        spec.sas.push(*key);
                        spec.templates.push(t.clone());
                    }
                    PolicyAction::Apply(spec)
                }
            };
            _policies.push(engine.spd_mut().push(
                p.direction,
                SpdEntry {
                    selector: p.selector,
                    action,
                },
            )?);
        }
        Ok(ids)
    }
}
