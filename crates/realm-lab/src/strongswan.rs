//! strongSwan peers for interoperability tests: one `charon` (strongSwan
//! 5.9.8, Debian bookworm packages, `scripts/ensure-strongswan`) per network
//! namespace, driven with `swanctl` over its own VICI socket.
//!
//! [`Charon::start`] writes a `strongswan.conf` and a `swanctl.conf` into a
//! per-instance directory, starts charon inside a namespace with a private
//! `/run` (charon writes `/run/charon.pid` and refuses to start when another
//! charon holds it), waits for the VICI socket and loads the configuration.
//! [`Charon::list_sas`] parses `swanctl --list-sas --pretty` into [`IkeSa`] and
//! [`ChildSa`]; [`count_up`] counts ESTABLISHED IKE SAs and INSTALLED CHILD
//! SAs. Dropping a [`Charon`] stops it (SIGTERM to its process group,
//! SIGKILL after [`STOP_GRACE`]); its directory, with the log, stays for the
//! test to read or remove. The namespaces belong to a
//! [`realm_io::netns::Lab`]; drop the charons before the lab.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use realm_lab::strongswan::{Charon, count_up};
//! let conf = "connections { ... } secrets { ... }"; // swanctl.conf text
//! let a = Charon::start("rlm-1-0-a", std::path::Path::new("/tmp/x/a"), conf)?;
//! a.initiate("realm")?; // swanctl --initiate --child realm
//! assert_eq!(count_up(&a.list_sas()?), (1, 1));
//! a.terminate("realm")?; // swanctl --terminate --ike realm
//! # Ok(())
//! # }
//! ```
//!
//! # What the Realm-vs-strongSwan tests need to know
//!
//! Learned with `tests/strongswan.rs` (two charons, IKEv1 Main Mode PSK).
//!
//! - **Command line.** `ip netns exec NS unshare --mount --propagation private
//!   sh -c 'mount -t tmpfs tmpfs /run && exec /usr/lib/ipsec/charon'` with
//!   `STRONGSWAN_CONF=DIR/strongswan.conf` in the environment. Every step
//!   execs in place, so the spawned pid is charon itself and leads its own
//!   process group. `swanctl` runs in the caller's namespace (it only talks
//!   to the VICI unix socket) with the same `STRONGSWAN_CONF`.
//! - **strongswan.conf** ([`Settings::strongswan_conf`]; it does not include
//!   `/etc/strongswan.d`, whose defaults leave kernel-libipsec unloaded):
//!
//!   ```text
//!   charon {
//!     load_modular = no
//!     load = random nonce openssl kernel-libipsec kernel-netlink socket-default vici
//!     install_routes = yes
//!     block_threshold = 10000
//!     cookie_threshold = 10000
//!     init_limit_half_open = 0
//!     retransmit_timeout = 1
//!     retransmit_base = 1.4
//!     retransmit_tries = 3
//!     half_open_timeout = 10
//!     plugins { vici { socket = unix://DIR/charon.vici } }
//!     filelog { main { path = DIR/charon.log  time_format = %T  append = no
//!                      flush_line = yes  default = 1  ike = 2  cfg = 2  knl = 2 } }
//!     syslog { daemon { default = -1 } }
//!   }
//!   swanctl { load = random nonce openssl pem pkcs1 x509  socket = unix://DIR/charon.vici }
//!   ```
//!
//!   [`MINIMAL_PLUGINS`] is enough for IKEv1 PSK Main Mode with MODP and ECP
//!   groups (also PFS), AES-CBC/HMAC-SHA-2 and AES-GCM: the openssl plugin
//!   provides every cipher, hash, HMAC, PRF, DH group and the RNG. Debian has
//!   no separate `curve25519` plugin (openssl does X25519); naming a missing
//!   plugin only logs "failed to load".
//! - **No kernel ESP here**, so ESP runs in user space (kernel-libipsec). It
//!   does tunnel mode with UDP encapsulation only: every connection needs
//!   `encap = yes` (forced NAT-T) and `mode = tunnel`. charon creates the TUN
//!   `ipsec0` (MTU 1400, no IPv4 address) at start-up, before any SA exists,
//!   and sends and receives ESP-in-UDP on its own IKE socket (port 4500,
//!   RFC 3948: ESP where the first four bytes are not the zero non-ESP marker).
//! - **Routes.** With `charon.install_routes = yes` an installed CHILD SA adds
//!   `REMOTE_TS dev ipsec0 src LOCAL_ADDR` to routing table 220 and an `ip
//!   rule` `from all lookup 220` (priority 220). The `src` is an address of
//!   the namespace inside the local traffic selector ("getting a local address
//!   in traffic selector"), so configure it (a `/32` on `lo` works) before the
//!   SA is installed. Table 220 does not exist before the first route (`ip
//!   route show table 220` fails with "FIB table does not exist").
//!   Terminating the SA removes the route; `ipsec0` stays until charon exits.
//!   The initiator installs its SAs on Quick Mode message 2, the responder
//!   only on message 3 (the initiator's HASH(3)).
//! - **Ports.** Main Mode starts on UDP 500. With `encap = yes` both sides
//!   send NAT-D payloads that fake a NAT (RFC 3947 section 3.2; the log says
//!   "remote host is behind NAT" on both sides), so from Main Mode message 5
//!   on all IKE traffic (Quick Mode, INFORMATIONAL deletes) goes over UDP
//!   4500 with the non-ESP marker, and ESP goes in UDP 4500 (RFC 3948).
//!   `--list-sas` then shows `local-port = 4500`, `remote-port = 4500`,
//!   `nat-remote = yes`, `nat-any = yes`, and the CHILD SA `encap = yes`.
//!   Gotcha: a responder that cannot decrypt message 5 answers with an
//!   INFORMATIONAL `N(PAYLOAD_MALFORMED)` from port 500 to port 500.
//! - **Messages** (5.9.8, as logged): initiator MM1 `[ SA V V V V V ]`
//!   (vendor IDs XAuth, DPD, FRAGMENTATION, NAT-T RFC 3947,
//!   draft-ietf-ipsec-nat-t-ike-02\n); responder MM2 `[ SA V V V V ]`; MM3 and
//!   MM4 `[ KE No NAT-D NAT-D ]`; MM5 `[ ID HASH N(INITIAL_CONTACT) ]`; MM6
//!   `[ ID HASH ]`; Quick Mode `[ HASH SA No ID ID ]` (`KE` added with PFS),
//!   then `[ HASH ]`; terminate sends `INFORMATIONAL_V1 [ HASH D ]` twice
//!   (ESP SPI, then the ISAKMP SA). Without `life_time` configured strongSwan
//!   proposes 28800 s for Quick Mode and the responder logs "received 28800s
//!   lifetime, configured 0s".
//! - **Timing** (2-core machine, debug build of the test): two charons
//!   start, answer on VICI and load their configuration in 70-120 ms;
//!   `swanctl --initiate` (Main Mode and Quick Mode, modp2048 or ecp256)
//!   returns in 15-35 ms and the responder lists both SAs within 50 ms of
//!   the start; 4 x 256 KiB of TCP through kernel-libipsec take 30-60 ms;
//!   `--terminate --ike` empties both sides' lists within 50 ms. A peer that
//!   never authenticates (PSK mismatch) makes `--initiate` fail after 7.1 s
//!   (1 s retransmit timeout, base 1.4, 3 tries).
//! - **Many exchanges from one address.** `block_threshold` and
//!   `cookie_threshold` are raised (defaults 5 and 10 half-open SAs per
//!   peer), `init_limit_half_open = 0` disables that limit, so repeated tests
//!   from one peer address are never blocked or asked for cookies.
//! - **Logs.** `DIR/charon.log`, `ike`, `cfg` and `knl` at level 2
//!   ([`Settings::log_levels`]). `net = 2` logs every ESP packet too (too much
//!   for a bulk transfer); `ike = 4` also logs the IKE keys (for tshark);
//!   `enc = 3` dumps the decrypted payloads. charon's stdout and stderr go
//!   to `DIR/charon.out` (normally empty).
//! - **Other gotchas.** `swanctl --version` asks the daemon (use `--help` to
//!   test for the binary). `swanctl --load-all --file F` also looks for
//!   credential directories (`x509`, `private`, ...) next to `F` and
//!   complains on stderr when they are missing: harmless. IKEv1 PSK secrets
//!   are matched by identity: with address identities (`id = 192.0.2.1`)
//!   list both peers in the `ike` secret. `swanctl --initiate` waits for the
//!   CHILD SA up to `--timeout` seconds ([`SWANCTL_TIMEOUT_S`]) and exits
//!   non-zero ("establishing CHILD_SA '...' failed") when it fails. Set
//!   `rekey_time = 0` on the IKE and CHILD SA to keep a test free of
//!   rekeying. `/dev/net/tun` must exist (it is shared by all namespaces).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// The charon daemon of the Debian packages.
pub const CHARON: &str = "/usr/lib/ipsec/charon";
/// The kernel-libipsec plugin, which the tests need (no kernel ESP here).
pub const LIBIPSEC_PLUGIN: &str = "/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so";
/// The smallest plugin list that runs IKEv1 PSK with user-space ESP (see the
/// module doc).
pub const MINIMAL_PLUGINS: &[&str] = &[
    "random",
    "nonce",
    "openssl",
    "kernel-libipsec",
    "kernel-netlink",
    "socket-default",
    "vici",
];
/// How long [`Charon::start`] waits for the VICI socket.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stopping charon gets after SIGTERM before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(2);
/// `swanctl --timeout` for [`Charon::initiate`] and [`Charon::terminate`], in seconds.
pub const SWANCTL_TIMEOUT_S: u32 = 15;

/// Fails unless charon, swanctl and the kernel-libipsec plugin are installed
/// (`scripts/ensure-strongswan` installs them).
pub fn require_strongswan() -> anyhow::Result<()> {
    for path in [CHARON, LIBIPSEC_PLUGIN] {
        if !Path::new(path).exists() {
            bail!("{path} is missing: run scripts/ensure-strongswan");
        }
    }
    // `--version` would ask the daemon; `--help` does not.
    match Command::new("swanctl").arg("--help").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => bail!("swanctl is missing: run scripts/ensure-strongswan"),
    }
}

/// The `strongswan.conf` knobs of one charon.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Plugins to load (`charon.load`, with `load_modular = no`).
    pub plugins: Vec<String>,
    /// filelog levels per subsystem (`default`, `ike`, `knl`, ...): -1 to 4.
    pub log_levels: Vec<(String, i8)>,
    /// `charon.retransmit_timeout` in seconds.
    pub retransmit_timeout: f32,
    /// `charon.retransmit_base`.
    pub retransmit_base: f32,
    /// `charon.retransmit_tries`.
    pub retransmit_tries: u32,
    /// Extra lines for the `charon { }` section, verbatim (e.g.
    /// `"port = 1500"`).
    pub extra: Vec<String>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            plugins: MINIMAL_PLUGINS.iter().map(|p| (*p).to_owned()).collect(),
            log_levels: [("default", 1), ("ike", 2), ("cfg", 2), ("knl", 2)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            retransmit_timeout: 1.0,
            retransmit_base: 1.4,
            retransmit_tries: 3,
            extra: Vec::new(),
        }
    }
}

impl Settings {
    /// The `strongswan.conf` text for a charon whose files live in `dir`.
    #[must_use]
    pub fn strongswan_conf(&self, dir: &Path) -> String {
        let dir = dir.display();
        let mut s = String::new();
        let _ = writeln!(s, "# Written by realm-lab's strongswan harness.");
        let _ = writeln!(s, "charon {{");
        let _ = writeln!(s, "  load_modular = no");
        let _ = writeln!(s, "  load = {}", self.plugins.join(" "));
        let _ = writeln!(s, "  install_routes = yes");
        // Tests run many exchanges from one address: never block or ask for
        // cookies (defaults 5, 10 half-open SAs).
        let _ = writeln!(s, "  block_threshold = 10000");
        let _ = writeln!(s, "  cookie_threshold = 10000");
        let _ = writeln!(s, "  init_limit_half_open = 0");
        let _ = writeln!(s, "  retransmit_timeout = {}", self.retransmit_timeout);
        let _ = writeln!(s, "  retransmit_base = {}", self.retransmit_base);
        let _ = writeln!(s, "  retransmit_tries = {}", self.retransmit_tries);
        let _ = writeln!(s, "  half_open_timeout = 10");
        for line in &self.extra {
            let _ = writeln!(s, "  {line}");
        }
        let _ = writeln!(s, "  plugins {{");
        let _ = writeln!(s, "    vici {{");
        let _ = writeln!(s, "      socket = unix://{dir}/charon.vici");
        let _ = writeln!(s, "    }}");
        let _ = writeln!(s, "  }}");
        let _ = writeln!(s, "  filelog {{");
        let _ = writeln!(s, "    main {{");
        let _ = writeln!(s, "      path = {dir}/charon.log");
        let _ = writeln!(s, "      time_format = %T");
        let _ = writeln!(s, "      append = no");
        let _ = writeln!(s, "      flush_line = yes");
        for (subsystem, level) in &self.log_levels {
            let _ = writeln!(s, "      {subsystem} = {level}");
        }
        let _ = writeln!(s, "    }}");
        let _ = writeln!(s, "  }}");
        let _ = writeln!(s, "  syslog {{");
        let _ = writeln!(s, "    daemon {{");
        let _ = writeln!(s, "      default = -1");
        let _ = writeln!(s, "    }}");
        let _ = writeln!(s, "  }}");
        let _ = writeln!(s, "}}");
        // swanctl reads this file too (STRONGSWAN_CONF): our socket, and only
        // the plugins it needs to parse configurations.
        let _ = writeln!(s, "swanctl {{");
        let _ = writeln!(s, "  load = random nonce openssl pem pkcs1 pkcs8 x509");
        let _ = writeln!(s, "  socket = unix://{dir}/charon.vici");
        let _ = writeln!(s, "}}");
        s
    }
}

/// One running charon in a network namespace.
#[derive(Debug)]
pub struct Charon {
    ns: String,
    dir: PathBuf,
    child: Option<Child>,
}

impl Charon {
    /// Starts charon in namespace `ns` with [`Settings::default`]; see
    /// [`Charon::start_with`].
    pub fn start(ns: &str, dir: &Path, swanctl_conf: &str) -> anyhow::Result<Charon> {
        Charon::start_with(ns, dir, swanctl_conf, &Settings::default())
    }

    /// Writes `DIR/strongswan.conf` (from `settings`) and
    /// `DIR/swanctl/swanctl.conf` (`swanctl_conf`, connections and secrets),
    /// starts charon in `ns` with a private `/run`, waits until its VICI
    /// socket answers and loads the configuration (`swanctl --load-all`).
    /// `dir` is created if needed and must be unique to this charon.
    pub fn start_with(
        ns: &str,
        dir: &Path,
        swanctl_conf: &str,
        settings: &Settings,
    ) -> anyhow::Result<Charon> {
        require_strongswan()?;
        std::fs::create_dir_all(dir.join("swanctl"))
            .with_context(|| format!("create {}", dir.display()))?;
        let dir = dir
            .canonicalize()
            .with_context(|| format!("canonicalize {}", dir.display()))?;
        let conf = dir.join("strongswan.conf");
        std::fs::write(&conf, settings.strongswan_conf(&dir))
            .with_context(|| format!("write {}", conf.display()))?;
        std::fs::write(dir.join("swanctl/swanctl.conf"), swanctl_conf)
            .context("write swanctl.conf")?;
        let socket = dir.join("charon.vici");
        // A stale socket from an earlier run in the same directory would make
        // the wait below succeed too early.
        let _ = std::fs::remove_file(&socket);
        let out = std::fs::File::create(dir.join("charon.out")).context("create charon.out")?;
        let err = out.try_clone().context("dup charon.out")?;
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "unshare", "--mount", "--propagation"])
            .args(["private", "sh", "-c"])
            .arg(format!("mount -t tmpfs tmpfs /run && exec {CHARON}"))
            .env("STRONGSWAN_CONF", &conf)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // ip, unshare and sh all exec in place: the group leader is charon.
            .process_group(0)
            .spawn()
            .with_context(|| format!("spawn charon in {ns}"))?;
        let mut charon = Charon {
            ns: ns.to_owned(),
            dir,
            child: Some(child),
        };
        charon.wait_for_socket(&socket)?;
        charon.swanctl(&["--load-all", "--file", &charon.swanctl_conf_path()])?;
        Ok(charon)
    }

    fn swanctl_conf_path(&self) -> String {
        self.dir.join("swanctl/swanctl.conf").display().to_string()
    }

    fn wait_for_socket(&mut self, socket: &Path) -> anyhow::Result<()> {
        let deadline = realm_io::clock::now() + START_TIMEOUT;
        loop {
            if UnixStream::connect(socket).is_ok() {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                bail!(
                    "charon in {} exited ({status}) before its VICI socket appeared\n--- charon.out\n{}\n--- charon.log\n{}",
                    self.ns,
                    std::fs::read_to_string(self.dir.join("charon.out")).unwrap_or_default(),
                    self.log()
                );
            }
            if realm_io::clock::now() >= deadline {
                bail!(
                    "charon in {}: no VICI socket at {} after {START_TIMEOUT:?}\n--- charon.log\n{}",
                    self.ns,
                    socket.display(),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The namespace charon runs in.
    #[must_use]
    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// The instance directory (configuration, VICI socket, log).
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The VICI socket's path.
    #[must_use]
    pub fn socket(&self) -> PathBuf {
        self.dir.join("charon.vici")
    }

    /// charon's pid (also its process group), while it runs.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The log so far (`DIR/charon.log`); empty if there is none yet.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("charon.log")).unwrap_or_default()
    }

    /// Runs `swanctl ARGS... --uri unix://SOCKET` and returns its stdout;
    /// fails with stdout and stderr when it exits non-zero. swanctl talks to
    /// the socket only, so it runs in the caller's namespace.
    pub fn swanctl(&self, args: &[&str]) -> anyhow::Result<String> {
        let uri = format!("unix://{}", self.socket().display());
        let out = Command::new("swanctl")
            .args(args)
            .args(["--uri", &uri])
            .env("STRONGSWAN_CONF", self.dir.join("strongswan.conf"))
            .stdin(Stdio::null())
            .output()
            .context("run swanctl")?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!(
                "`swanctl {}` for charon in {} failed ({}):\n{stdout}{}",
                args.join(" "),
                self.ns,
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(stdout)
    }

    /// `swanctl --initiate --child CHILD` (which also sets up the IKE SA),
    /// waiting up to [`SWANCTL_TIMEOUT_S`] for the CHILD SA.
    pub fn initiate(&self, child: &str) -> anyhow::Result<String> {
        let timeout = SWANCTL_TIMEOUT_S.to_string();
        self.swanctl(&["--initiate", "--child", child, "--timeout", &timeout])
    }

    /// `swanctl --terminate --ike IKE`: deletes the IKE SA and its CHILD SAs
    /// (and tells the peer).
    pub fn terminate(&self, ike: &str) -> anyhow::Result<String> {
        let timeout = SWANCTL_TIMEOUT_S.to_string();
        self.swanctl(&["--terminate", "--ike", ike, "--timeout", &timeout])
    }

    /// `swanctl --list-sas` as text, for messages.
    pub fn list_sas_text(&self) -> anyhow::Result<String> {
        self.swanctl(&["--list-sas"])
    }

    /// The IKE SAs with their CHILD SAs (`swanctl --list-sas --pretty`).
    pub fn list_sas(&self) -> anyhow::Result<Vec<IkeSa>> {
        parse_list_sas(&self.swanctl(&["--list-sas", "--pretty"])?)
    }

    /// Polls [`Charon::list_sas`] until `done` holds for it or `timeout`
    /// passes; returns the last list either way (the caller asserts).
    pub fn wait_sas(
        &self,
        timeout: Duration,
        done: impl Fn(&[IkeSa]) -> bool,
    ) -> anyhow::Result<Vec<IkeSa>> {
        let deadline = realm_io::clock::now() + timeout;
        loop {
            let sas = self.list_sas()?;
            if done(&sas) || realm_io::clock::now() >= deadline {
                return Ok(sas);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills charon at once (SIGKILL to its process group): no Delete reaches the peer, as
    /// when a host dies. Idempotent.
    pub fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        match i32::try_from(child.id()) {
            Ok(pid) => {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
            Err(_) => {
                let _ = child.kill();
            }
        }
        let _ = child.wait();
    }

    /// Stops charon now: SIGTERM to its process group (charon removes its
    /// routes and TUN), SIGKILL after [`STOP_GRACE`]. Idempotent.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let Ok(pid) = i32::try_from(child.id()) else {
            let _ = child.kill();
            let _ = child.wait();
            return;
        };
        let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
        let deadline = realm_io::clock::now() + STOP_GRACE;
        while realm_io::clock::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = child.wait();
    }
}

impl Drop for Charon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One IKE SA of `swanctl --list-sas`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IkeSa {
    /// The connection name.
    pub name: String,
    /// Every `key = value` of the SA (lists joined with spaces), e.g.
    /// `state`, `version`, `local-port`, `encr-alg`, `dh-group`.
    pub fields: BTreeMap<String, String>,
    /// Its CHILD SAs.
    pub children: Vec<ChildSa>,
}

/// One CHILD SA of `swanctl --list-sas`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChildSa {
    /// The key in `child-sas`, `NAME-UNIQUEID` (the configured name is the
    /// `name` field).
    pub key: String,
    /// Every `key = value` (lists joined with spaces), e.g. `name`, `state`,
    /// `mode`, `encap`, `spi-in`, `bytes-in`, `local-ts`.
    pub fields: BTreeMap<String, String>,
}

impl IkeSa {
    /// A field, if present.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    /// `state`, e.g. `ESTABLISHED`.
    #[must_use]
    pub fn state(&self) -> &str {
        self.get("state").unwrap_or("")
    }
}

impl ChildSa {
    /// A field, if present.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    /// `state`, e.g. `INSTALLED`.
    #[must_use]
    pub fn state(&self) -> &str {
        self.get("state").unwrap_or("")
    }

    /// A numeric counter such as `bytes-in` or `packets-out` (0 if absent).
    #[must_use]
    pub fn counter(&self, key: &str) -> u64 {
        self.get(key).and_then(|v| v.parse().ok()).unwrap_or(0)
    }
}

/// How many IKE SAs are ESTABLISHED and how many CHILD SAs INSTALLED.
#[must_use]
pub fn count_up(sas: &[IkeSa]) -> (usize, usize) {
    let ike = sas.iter().filter(|s| s.state() == "ESTABLISHED").count();
    let child = sas
        .iter()
        .flat_map(|s| &s.children)
        .filter(|c| c.state() == "INSTALLED")
        .count();
    (ike, child)
}

/// A section of swanctl's `--pretty` output: its entries in order.
#[derive(Debug)]
enum Node {
    Value(String),
    Section(Vec<(String, Node)>),
}

/// Reads entries until the closing `}` of the current section (or the end at
/// the top level).
fn parse_section<'a>(
    lines: &mut impl Iterator<Item = &'a str>,
    top: bool,
) -> anyhow::Result<Vec<(String, Node)>> {
    let mut entries = Vec::new();
    while let Some(line) = lines.next() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line == "}" {
            if top {
                bail!("swanctl output: unbalanced `}}`");
            }
            return Ok(entries);
        }
        if let Some(name) = line.strip_suffix(" {") {
            entries.push((name.to_owned(), Node::Section(parse_section(lines, false)?)));
        } else if let Some(key) = line.strip_suffix(" = [") {
            let mut items = Vec::new();
            loop {
                match lines.next().map(str::trim) {
                    Some("]") => break,
                    Some(item) => items.push(item.to_owned()),
                    None => bail!("swanctl output: unterminated list {key}"),
                }
            }
            entries.push((key.to_owned(), Node::Value(items.join(" "))));
        } else if let Some((key, value)) = line.split_once(" = ") {
            entries.push((key.to_owned(), Node::Value(value.to_owned())));
        } else if let Some(key) = line.strip_suffix(" =") {
            entries.push((key.to_owned(), Node::Value(String::new())));
        } else {
            bail!("swanctl output: unexpected line {line:?}");
        }
    }
    if top {
        Ok(entries)
    } else {
        bail!("swanctl output: unterminated section")
    }
}

fn fields(entries: Vec<(String, Node)>) -> (BTreeMap<String, String>, Vec<(String, Node)>) {
    let mut map = BTreeMap::new();
    let mut sections = Vec::new();
    for (key, node) in entries {
        match node {
            Node::Value(v) => {
                map.insert(key, v);
            }
            section @ Node::Section(_) => sections.push((key, section)),
        }
    }
    (map, sections)
}

/// Parses `swanctl --list-sas --pretty`: `list-sa event { NAME { ... } }`
/// per IKE SA, then `list-sas reply { }`.
pub fn parse_list_sas(text: &str) -> anyhow::Result<Vec<IkeSa>> {
    let mut sas = Vec::new();
    for (event, node) in parse_section(&mut text.lines(), true)? {
        if event != "list-sa event" {
            continue;
        }
        let Node::Section(ikes) = node else {
            continue;
        };
        for (name, ike) in ikes {
            let Node::Section(entries) = ike else {
                bail!("swanctl output: IKE SA {name} is not a section");
            };
            let (fields_map, sections) = fields(entries);
            let mut children = Vec::new();
            for (key, section) in sections {
                if key != "child-sas" {
                    continue;
                }
                let Node::Section(list) = section else {
                    continue;
                };
                for (child_key, child) in list {
                    let Node::Section(entries) = child else {
                        bail!("swanctl output: CHILD SA {child_key} is not a section");
                    };
                    children.push(ChildSa {
                        key: child_key,
                        fields: fields(entries).0,
                    });
                }
            }
            sas.push(IkeSa {
                name,
                fields: fields_map,
                children,
            });
        }
    }
    Ok(sas)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Output of strongSwan 5.9.8's `swanctl --list-sas --pretty` (responder
    /// side of the tests' tunnel, trimmed).
    const PRETTY: &str = "list-sa event {
  gcm {
    uniqueid = 1
    version = 1
    state = ESTABLISHED
    local-host = 192.0.2.2
    local-port = 4500
    remote-port = 4500
    nat-any = yes
    dh-group = MODP_2048
    child-sas {
      gcm-1 {
        name = gcm
        state = INSTALLED
        mode = TUNNEL
        encap = yes
        bytes-in = 252
        local-ts = [
          10.2.0.1/32
        ]
        remote-ts = [
          10.1.0.1/32
        ]
      }
    }
  }
}
list-sas reply {
}
";

    #[test]
    fn parses_pretty_list_sas() {
        let sas = parse_list_sas(PRETTY).unwrap();
        assert_eq!(sas.len(), 1);
        let ike = &sas[0];
        assert_eq!(ike.name, "gcm");
        assert_eq!(ike.state(), "ESTABLISHED");
        assert_eq!(ike.get("local-port"), Some("4500"));
        assert_eq!(ike.children.len(), 1);
        let child = &ike.children[0];
        assert_eq!(child.key, "gcm-1");
        assert_eq!(child.state(), "INSTALLED");
        assert_eq!(child.get("local-ts"), Some("10.2.0.1/32"));
        assert_eq!(child.counter("bytes-in"), 252);
        assert_eq!(count_up(&sas), (1, 1));
    }

    #[test]
    fn empty_and_broken_lists() {
        assert!(parse_list_sas("list-sas reply {\n}\n").unwrap().is_empty());
        assert!(parse_list_sas("").unwrap().is_empty());
        assert!(parse_list_sas("list-sa event {\n  x {\n").is_err());
        assert!(parse_list_sas("}\n").is_err());
        assert!(parse_list_sas("list-sa event {\n  garbage\n}\n").is_err());
    }

    #[test]
    fn conf_names_socket_plugins_and_log() {
        let conf = Settings::default().strongswan_conf(Path::new("/tmp/x"));
        assert!(conf.contains("socket = unix:///tmp/x/charon.vici"));
        assert!(conf.contains("path = /tmp/x/charon.log"));
        assert!(conf.contains("kernel-libipsec"));
        assert!(conf.contains("load_modular = no"));
    }
}
