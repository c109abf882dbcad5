//! The lab's namespaces, addresses, configuration files and processes.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};
use realm_io::netns::{ChildId, Lab, LabStdio, ip};
use realm_io::{Ipv4Prefix, RouteVia};
use serde_json::Value;

/// The gateway's private address (on `br0`), where hosts signal and tunnel.
pub const GATEWAY_PRIVATE: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The gateway's one public address, shared by every host (RSAP-IP).
pub const GATEWAY_PUBLIC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The public host.
pub const PUBLIC_HOST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// The ports of the public address the gateway leases.
pub const POOL_PORTS: (u16, u16) = (20000, 29999);
/// The TUN of each RSIP host.
pub const HOST_TUN: &str = "realm0";

/// The private address of host `i` (0-based): 10.0.0.11, 10.0.0.12, ...
#[must_use]
pub fn host_private(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, u8::try_from(11 + i).unwrap_or(250))
}

/// How a host signals: the RSIP vocabulary's transport.
pub use realm_wire::rsip::Transport;

/// One RSIP host of the lab.
#[derive(Debug, Clone)]
pub struct HostSpec {
    /// Signalling transport.
    pub transport: Transport,
    /// Flags for `realm host` besides `--gateway`, `--udp` and the control
    /// socket, e.g. `["--ports", "8"]`.
    pub args: Vec<String>,
    /// A `realm host --config` file's text (TOML), when flags do not say it
    /// all (LISTEN bindings, several bindings).
    pub config: Option<String>,
}

impl HostSpec {
    /// A host holding `ports` "don't care" ports (RSAP-IP) over `transport`.
    #[must_use]
    pub fn ports(transport: Transport, ports: u8) -> HostSpec {
        HostSpec {
            transport,
            args: vec!["--ports".into(), ports.to_string()],
            config: None,
        }
    }
}

/// What to build.
#[derive(Debug, Clone)]
pub struct LabSpec {
    /// The `realm` binary to run.
    pub realm: PathBuf,
    /// The RSIP hosts (at least one).
    pub hosts: Vec<HostSpec>,
    /// TOML appended to the gateway's configuration (e.g. `[gateway.listen]`
    /// settings, or more `[[gateway.pool]]` entries).
    pub gateway_extra: String,
    /// Private prefixes the gateway gives plain NAT (`data_plane.nat_sources`),
    /// for hosts that do not run `realm host`.
    pub nat_sources: Vec<String>,
    /// Log level of the daemons.
    pub log_level: String,
    /// The lab will outlive this process ([`RsipLab::keep`]): its namespaces
    /// get [`realm_io::netns::KEEP_PREFIX`], so that other runs' clean-up of
    /// stale labs leaves it alone.
    pub keep: bool,
}

impl LabSpec {
    /// Two RSAP-IP hosts of 8 ports each over TCP.
    #[must_use]
    pub fn new(realm: PathBuf) -> LabSpec {
        LabSpec {
            realm,
            hosts: vec![
                HostSpec::ports(Transport::Tcp, 8),
                HostSpec::ports(Transport::Tcp, 8),
            ],
            gateway_extra: String::new(),
            nat_sources: Vec::new(),
            log_level: "info".into(),
            keep: false,
        }
    }
}

/// The running lab. Dropping it tears everything down.
#[derive(Debug)]
pub struct RsipLab {
    lab: Lab,
    spec: LabSpec,
    dir: PathBuf,
    /// The gateway's namespace.
    pub gateway_ns: String,
    /// The hosts' namespaces, in [`LabSpec::hosts`] order.
    pub host_ns: Vec<String>,
    /// The public host's namespace.
    pub public_ns: String,
    gateway: Option<ChildId>,
    hosts: Vec<Option<ChildId>>,
    keep_dir: bool,
}

fn sh_exec_logged(log: &Path, argv: &[String]) -> Vec<String> {
    // `exec` keeps the program the process-group leader the lab kills;
    // positional parameters avoid quoting.
    let mut v = vec![
        "-c".to_owned(),
        "log=$1; shift; exec \"$@\" >>\"$log\" 2>&1".to_owned(),
        "sh".to_owned(),
        log.display().to_string(),
    ];
    v.extend(argv.iter().cloned());
    v
}

impl RsipLab {
    /// Creates the namespaces, links and addresses, and writes the
    /// configuration files; starts nothing.
    pub fn build(spec: LabSpec) -> anyhow::Result<RsipLab> {
        if spec.hosts.is_empty() || spec.hosts.len() > 200 {
            bail!("a lab needs 1-200 hosts");
        }
        // Leftovers of runs that died without cleaning up.
        let _ = realm_io::netns::cleanup_stale(realm_io::netns::PREFIX);
        let prefix = if spec.keep {
            realm_io::netns::KEEP_PREFIX
        } else {
            realm_io::netns::PREFIX
        };
        let mut lab = Lab::with_prefix(prefix).context("the lab needs root and iproute2")?;
        let gateway_ns = lab.add_namespace("gateway")?;
        let public_ns = lab.add_namespace("public")?;
        let mut host_ns = Vec::new();
        for i in 0..spec.hosts.len() {
            host_ns.push(lab.add_namespace(&format!("host{}", i + 1))?);
        }
        let dir = std::env::temp_dir().join(format!("realm-{}", lab.tag()));
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;

        for ns in std::iter::once(&gateway_ns)
            .chain(std::iter::once(&public_ns))
            .chain(&host_ns)
        {
            // Quiet links: no IPv6 chatter in captures and counters.
            lab.sysctl(ns, "net.ipv6.conf.all.disable_ipv6", "1")?;
            lab.sysctl(ns, "net.ipv6.conf.default.disable_ipv6", "1")?;
        }
        // The gateway hands packets for itself back through its TUN, which
        // reverse-path filtering would drop.
        lab.sysctl(&gateway_ns, "net.ipv4.conf.all.rp_filter", "0")?;
        lab.sysctl(&gateway_ns, "net.ipv4.conf.default.rp_filter", "0")?;

        // The private network: a bridge in the gateway, one veth per host.
        ip(&["-n", &gateway_ns, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &gateway_ns, "link", "set", "br0", "up"])?;
        lab.add_address(&gateway_ns, "br0", Ipv4Prefix::new(GATEWAY_PRIVATE, 24)?)?;
        for (i, ns) in host_ns.iter().enumerate() {
            let port = format!("h{}", i + 1);
            lab.veth((ns, "eth0"), (&gateway_ns, &port))?;
            ip(&["-n", &gateway_ns, "link", "set", &port, "master", "br0"])?;
            lab.add_address(ns, "eth0", Ipv4Prefix::new(host_private(i), 24)?)?;
        }
        // The public network.
        lab.veth((&gateway_ns, "pub0"), (&public_ns, "eth0"))?;
        lab.add_address(&gateway_ns, "pub0", Ipv4Prefix::new(GATEWAY_PUBLIC, 24)?)?;
        lab.add_address(&public_ns, "eth0", Ipv4Prefix::new(PUBLIC_HOST, 24)?)?;
        // The gateway's own traffic to elsewhere (none in the lab) would go
        // out of the public side; hosts only know their private network.
        lab.add_route(
            &gateway_ns,
            Ipv4Prefix::new(Ipv4Addr::UNSPECIFIED, 0)?,
            &RouteVia::GatewayOnDevice(PUBLIC_HOST, "pub0".into()),
        )?;

        let rsip = RsipLab {
            hosts: vec![None; spec.hosts.len()],
            lab,
            spec,
            dir,
            gateway_ns,
            host_ns,
            public_ns,
            gateway: None,
            keep_dir: false,
        };
        rsip.write_configs()?;
        Ok(rsip)
    }

    fn write_configs(&self) -> anyhow::Result<()> {
        let d = &self.dir;
        let gateway = format!(
            r#"# realm lab: the gateway. Reference: docs/gateway-config.md.
[listen]
addresses = ["{GATEWAY_PRIVATE}"]

[store]
path = "{db}"
alloc_log = "{alloc}"

[control]
socket = "{sock}"

[log]
level = "{level}"

[data_plane]
public_interface = "pub0"
nat_sources = [{nat}]

[gateway]
methods = ["rsap-ip", "rsipsec"]
tunnel_types = ["ip-ip", "gre"]
clients = ["10.0.0.0/24"]
local_networks = ["10.0.0.0/24"]

[[gateway.pool]]
addresses = "{GATEWAY_PUBLIC}"
ports = ["{first}-{last}"]

{extra}
"#,
            db = d.join("gateway.db").display(),
            alloc = d.join("alloc.log").display(),
            sock = self.gateway_socket().display(),
            level = self.spec.log_level,
            first = POOL_PORTS.0,
            last = POOL_PORTS.1,
            extra = self.spec.gateway_extra,
            nat = self
                .spec
                .nat_sources
                .iter()
                .map(|p| format!("\"{p}\""))
                .collect::<Vec<_>>()
                .join(", "),
        );
        std::fs::write(d.join("gateway.toml"), gateway)?;
        for (i, h) in self.spec.hosts.iter().enumerate() {
            if let Some(c) = &h.config {
                std::fs::write(d.join(format!("host{}.toml", i + 1)), c)?;
            }
        }
        Ok(())
    }

    /// The directory holding the configuration files, the store and the logs.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The spec it was built from.
    #[must_use]
    pub fn spec(&self) -> &LabSpec {
        &self.spec
    }

    /// The gateway's control socket.
    #[must_use]
    pub fn gateway_socket(&self) -> PathBuf {
        self.dir.join("gateway.sock")
    }

    /// Host `i`'s control socket (0-based).
    #[must_use]
    pub fn host_socket(&self, i: usize) -> PathBuf {
        self.dir.join(format!("host{}.sock", i + 1))
    }

    /// The gateway's log file.
    #[must_use]
    pub fn gateway_log(&self) -> PathBuf {
        self.dir.join("gateway.log")
    }

    /// Host `i`'s log file.
    #[must_use]
    pub fn host_log(&self, i: usize) -> PathBuf {
        self.dir.join(format!("host{}.log", i + 1))
    }

    /// The underlying namespace lab (to run or spawn more programs).
    pub fn lab(&mut self) -> &mut Lab {
        &mut self.lab
    }

    /// Runs `program args...` in `ns`; fails unless it exits 0.
    pub fn run_ok(&self, ns: &str, program: &str, args: &[&str]) -> anyhow::Result<String> {
        Ok(self.lab.run_ok(ns, program, args)?)
    }

    /// Starts `realm gateway` and waits until its data plane answers.
    pub fn start_gateway(&mut self) -> anyhow::Result<()> {
        let argv = vec![
            self.spec.realm.display().to_string(),
            "gateway".into(),
            "--config".into(),
            self.dir.join("gateway.toml").display().to_string(),
        ];
        let args = sh_exec_logged(&self.gateway_log(), &argv);
        let ns = self.gateway_ns.clone();
        self.gateway = Some(self.lab.spawn(&ns, "sh", &args, LabStdio::Null)?);
        let pid = self.pid_of(self.gateway);
        self.wait_for("the gateway's data plane", Duration::from_secs(15), |l| {
            if pid.is_some_and(exited) {
                return Err(anyhow::anyhow!("the gateway exited"));
            }
            Ok(l.gateway_ctl("dataplane", &[]).is_ok())
        })
    }

    /// Stops the gateway (SIGKILL when `kill`, as a crash; otherwise SIGTERM)
    /// and starts it again on the same configuration and store; waits until
    /// its data plane answers. Hosts keep running and reconnect on their own.
    pub fn restart_gateway(&mut self, kill: bool) -> anyhow::Result<()> {
        if let Some(id) = self.gateway.take() {
            if let Some(child) = self.lab.child_mut(id) {
                let signal = if kill { "-KILL" } else { "-TERM" };
                let status = Command::new("kill")
                    .args([signal, &child.id().to_string()])
                    .status()
                    .context("run kill")?;
                if !status.success() {
                    bail!("kill {signal} the gateway: {status}");
                }
            }
            self.lab.wait(id)?;
        }
        self.start_gateway()
    }

    /// Starts `realm host` number `i` (0-based) and waits until the gateway
    /// holds `bindings` bindings for it and its TUN carries the leased address.
    pub fn start_host(&mut self, i: usize, bindings: usize) -> anyhow::Result<()> {
        let spec = self
            .spec
            .hosts
            .get(i)
            .cloned()
            .with_context(|| format!("no host {i}"))?;
        let mut argv = vec![
            self.spec.realm.display().to_string(),
            "host".into(),
            "--gateway".into(),
            GATEWAY_PRIVATE.to_string(),
            "--log-level".into(),
            self.spec.log_level.clone(),
        ];
        argv.push("--control-socket".into());
        argv.push(self.host_socket(i).display().to_string());
        if spec.transport == Transport::Udp {
            argv.push("--udp".into());
        }
        if spec.config.is_some() {
            argv.push("--config".into());
            argv.push(
                self.dir
                    .join(format!("host{}.toml", i + 1))
                    .display()
                    .to_string(),
            );
        }
        argv.extend(spec.args.iter().cloned());
        let args = sh_exec_logged(&self.host_log(i), &argv);
        let ns = self.host_ns[i].clone();
        self.hosts[i] = Some(self.lab.spawn(&ns, "sh", &args, LabStdio::Null)?);
        let what = format!("host{} to hold {bindings} binding(s)", i + 1);
        let pid = self.pid_of(self.hosts[i]);
        self.wait_for(&what, Duration::from_secs(15), |l| {
            if pid.is_some_and(exited) {
                return Err(anyhow::anyhow!("host{} exited", i + 1));
            }
            Ok(l.bindings_of(i).is_ok_and(|b| b.len() >= bindings) && l.host_tun_ready(i))
        })
    }

    /// Stops host `i` with SIGTERM (it de-registers) and waits for it.
    pub fn stop_host(&mut self, i: usize) -> anyhow::Result<()> {
        let Some(id) = self.hosts.get_mut(i).and_then(Option::take) else {
            return Ok(());
        };
        if let Some(child) = self.lab.child_mut(id) {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
        }
        let _ = self.lab.wait(id);
        Ok(())
    }

    fn host_tun_ready(&self, i: usize) -> bool {
        let ns = &self.host_ns[i];
        let addr = self
            .lab
            .run_ok(ns, "ip", &["-4", "-o", "addr", "show", "dev", HOST_TUN])
            .unwrap_or_default();
        let routes = self
            .lab
            .run_ok(ns, "ip", &["-4", "route", "show", "dev", HOST_TUN])
            .unwrap_or_default();
        addr.contains("inet ") && routes.contains("0.0.0.0/1")
    }

    fn pid_of(&mut self, id: Option<ChildId>) -> Option<u32> {
        id.and_then(|id| self.lab.child_mut(id)).map(|c| c.id())
    }

    fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        ready: impl Fn(&RsipLab) -> anyhow::Result<bool>,
    ) -> anyhow::Result<()> {
        let start = realm_io::clock::now();
        while start.elapsed() < timeout {
            match ready(self) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => bail!("{e} while waiting for {what}\n{}", self.log_tails(30)),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "timed out after {timeout:?} waiting for {what}\n{}",
            self.log_tails(30)
        )
    }

    /// `realm ctl --socket SOCKET --json COMMAND ARGS...`, parsed.
    pub fn ctl(&self, socket: &Path, command: &str, args: &[&str]) -> anyhow::Result<Value> {
        let out = Command::new(&self.spec.realm)
            .arg("ctl")
            .arg("--socket")
            .arg(socket)
            .arg("--json")
            .arg(command)
            .args(args)
            .output()
            .context("run realm ctl")?;
        if !out.status.success() {
            bail!(
                "realm ctl {command} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        serde_json::from_slice(&out.stdout).context("realm ctl printed no JSON")
    }

    /// [`RsipLab::ctl`] on the gateway.
    pub fn gateway_ctl(&self, command: &str, args: &[&str]) -> anyhow::Result<Value> {
        self.ctl(&self.gateway_socket(), command, args)
    }

    /// The gateway's bindings of host `i` (`realm ctl bindings --json`).
    pub fn bindings_of(&self, i: usize) -> anyhow::Result<Vec<Value>> {
        let all = self.gateway_ctl("bindings", &[])?;
        let me = host_private(i).to_string();
        Ok(all
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|b| b["private_address"].as_str() == Some(me.as_str()))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The leased ports of host `i`, over all its bindings.
    pub fn leased_ports(&self, i: usize) -> anyhow::Result<Vec<u16>> {
        let mut ports = Vec::new();
        for b in self.bindings_of(i)? {
            ports.extend(ports_of(&b["ports"]));
        }
        ports.sort_unstable();
        Ok(ports)
    }

    /// The last `n` lines of every daemon log, for failure messages.
    #[must_use]
    pub fn log_tails(&self, n: usize) -> String {
        let mut s = String::new();
        let mut logs = vec![("gateway".to_owned(), self.gateway_log())];
        for i in 0..self.host_ns.len() {
            logs.push((format!("host{}", i + 1), self.host_log(i)));
        }
        for (name, path) in logs {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(n)..];
            s.push_str(&format!("--- {name} ({}) ---\n", path.display()));
            for l in tail {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }

    /// Leaves everything running (namespaces, daemons, files) and returns
    /// the namespace names; `realm lab --down` (or
    /// `realm_io::netns::cleanup_stale`) removes it once this process is gone.
    #[must_use]
    pub fn keep(mut self) -> Vec<String> {
        self.keep_dir = true;
        self.gateway = None;
        self.hosts.iter_mut().for_each(|h| *h = None);
        self.lab.detach()
    }
}

impl Drop for RsipLab {
    fn drop(&mut self) {
        // Daemons first (SIGTERM so hosts de-register and the gateway
        // removes its steering table), then the namespaces (the Lab's drop).
        for i in 0..self.hosts.len() {
            let _ = self.stop_host(i);
        }
        if let Some(id) = self.gateway.take() {
            if let Some(child) = self.lab.child_mut(id) {
                let _ = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
            }
            let _ = self.lab.wait(id);
        }
        if !self.keep_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Whether process `pid` has ended (gone, or a zombie not yet reaped).
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

/// The ports of a `PortSet` as the gateway's JSON shows it.
#[must_use]
pub fn ports_of(v: &Value) -> Vec<u16> {
    let mut out = Vec::new();
    if let Some(r) = v.get("range").or_else(|| v.get("Range")) {
        let first = r["first"].as_u64().unwrap_or(0);
        let count = r["count"].as_u64().unwrap_or(0);
        out.extend((first..first + count).filter_map(|p| u16::try_from(p).ok()));
    } else if let Some(l) = v
        .get("list")
        .or_else(|| v.get("List"))
        .and_then(Value::as_array)
    {
        out.extend(l.iter().filter_map(|p| u16::try_from(p.as_u64()?).ok()));
    }
    out
}
