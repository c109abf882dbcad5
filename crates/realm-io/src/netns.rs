//! Network namespaces: the [`Lab`] harness that builds throw-away topologies for integration
//! tests and `realm lab`, and [`enter`] / [`block_on_in`] / [`spawn_in`] to open sockets inside
//! a namespace from within one process.
//!
//! Lab namespaces are named `rlm-<pid>-<n>-<role>` (`<pid>` of the creating process, `<n>` a
//! per-process counter), so parallel tests and parallel test *runs* never collide, and
//! [`cleanup_stale`] can tell leftovers of a crashed run (owner pid gone) from a live run's.
//! Setup uses the `ip` command (iproute2): it is the lab, not the data path.
//!
//! A namespace is entered per *thread*: `setns(2)` changes only the calling thread, and threads it
//! creates afterwards inherit the namespace. Sockets, TUN devices and netlink sockets belong to
//! the namespace they were created in for their whole life, wherever they are used afterwards.
//! So a multi-threaded tokio runtime must never run code that calls [`enter`]: its tasks hop
//! between worker threads. Confine such work to a dedicated `std::thread` that enters the
//! namespace first and then runs a current-thread runtime: [`block_on_in`] and [`spawn_in`] do
//! exactly that.

use std::ffi::OsStr;
use std::fs::File;
use std::future::Future;
use std::marker::PhantomData;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::error::{Error, IoContext, Result};
use crate::netlink::{Ipv4Prefix, RouteVia};

/// Prefix of every namespace a [`Lab`] creates.
pub const PREFIX: &str = "rlm-";

/// Namespace prefix of labs meant to outlive their creator (`realm lab --keep`):
/// [`cleanup_stale`] with [`PREFIX`] leaves them alone; [`destroy_lab`] removes them.
pub const KEEP_PREFIX: &str = "rlk-";

/// Where `ip netns` keeps its named namespaces.
pub const NETNS_DIR: &str = "/var/run/netns";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Checks that this process can build labs: effective uid 0 and iproute2's `ip` on `PATH`.
/// Network tests call it first and fail (never skip) on error.
pub fn require_privileges() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        return Err(Error::NotRoot("network namespace setup"));
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err(Error::NotFound {
            what: "the `ip` command (iproute2) on PATH".into(),
        }),
    }
}

fn check_role(role: &str) -> Result<()> {
    let ok = !role.is_empty()
        && role.len() <= 32
        && role
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "namespace role {role:?} (want 1-32 of [a-z0-9_])"
        )))
    }
}

fn command_line(program: &OsStr, args: &[&OsStr]) -> String {
    let mut s = program.to_string_lossy().into_owned();
    for a in args {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `ip ARGS...` (in the caller's namespace) and returns its stdout; an error carries stderr.
pub fn ip<S: AsRef<OsStr>>(args: &[S]) -> Result<String> {
    let args: Vec<&OsStr> = args.iter().map(AsRef::as_ref).collect();
    checked(Command::new("ip").args(&args), OsStr::new("ip"), &args)
}

fn checked(cmd: &mut Command, program: &OsStr, args: &[&OsStr]) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .ctx(|| format!("run `{}`", command_line(program, args)))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Command {
            command: command_line(program, args),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// The names of all named network namespaces (`ip netns list`), this run's or not.
pub fn list_namespaces() -> Result<Vec<String>> {
    let out = ip(&["netns", "list"])?;
    // Lines look like "name" or "name (id: 3)".
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

fn pid_alive(pid: i32) -> bool {
    // Signal 0 checks existence; EPERM still means it exists.
    !matches!(
        kill(Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

fn namespace_exists(name: &str) -> bool {
    std::path::Path::new(NETNS_DIR).join(name).exists()
}

/// Kills every process still in namespace `name` and deletes it. A namespace that is already gone
/// (another cleaner was faster) counts as deleted.
fn destroy_namespace(name: &str) -> Result<()> {
    if let Ok(pids) = ip(&["netns", "pids", name]) {
        for pid in pids
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            // The namespace is ours (by name); anything left inside is a lab process.
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    match ip(&["netns", "delete", name]) {
        Err(_) if !namespace_exists(name) => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Deletes leftover lab namespaces of crashed runs: those named `<prefix><pid>-...` whose `<pid>`
/// no longer exists (a live run's namespaces are never touched, so this is safe while other
/// tests run). `prefix` is normally [`PREFIX`]. Processes still inside are killed first.
/// Returns the names this call deleted; one that vanished meanwhile (a concurrent cleaner) is
/// skipped, and a namespace that cannot be deleted is logged and skipped.
pub fn cleanup_stale(prefix: &str) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for name in list_namespaces()? {
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if pid <= 0 || pid_alive(pid) || !namespace_exists(&name) {
            continue;
        }
        match destroy_namespace(&name) {
            Ok(()) => {
                tracing::info!(namespace = %name, owner_pid = pid, "removed stale lab namespace");
                removed.push(name);
            }
            Err(e) => tracing::warn!(namespace = %name, error = %e, "stale lab namespace kept"),
        }
    }
    Ok(removed)
}

/// Deletes the namespaces of one lab, `<tag>-*` (see [`Lab::tag`]), killing what runs in
/// them, whether or not its owner is alive: for an owner that is being interrupted and will not
/// unwind (`realm lab` on Ctrl-C), or `realm lab --down` after `--keep`. Returns what it deleted.
pub fn destroy_lab(tag: &str) -> Result<Vec<String>> {
    if !tag.starts_with(PREFIX) && !tag.starts_with(KEEP_PREFIX) {
        return Err(Error::Invalid(format!("lab tag {tag:?}")));
    }
    let mut removed = Vec::new();
    let prefix = format!("{tag}-");
    for name in list_namespaces()? {
        if name.starts_with(&prefix) {
            destroy_namespace(&name)?;
            removed.push(name);
        }
    }
    Ok(removed)
}

/// What to do with a lab child's standard output and error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabStdio {
    /// Share this process's (useful for `realm lab` and `--nocapture`).
    Inherit,
    /// Pipe both; read them with [`Lab::wait`] or through [`Lab::child_mut`].
    Capture,
    /// Discard both.
    Null,
}

/// A process spawned by [`Lab::spawn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChildId(usize);

/// A throw-away network topology: namespaces, veth pairs, addresses, routes and processes.
///
/// Dropping the lab (also while unwinding from a panic) kills its processes (their whole process
/// groups), deletes its veths and then its namespaces. If the process dies without unwinding
/// (SIGKILL, abort), [`cleanup_stale`] removes the leftovers later.
#[derive(Debug)]
pub struct Lab {
    tag: String,
    namespaces: Vec<String>,
    veths: Vec<(String, String)>,
    children: Vec<Option<Child>>,
}

impl Lab {
    /// An empty lab with a fresh tag `rlm-<pid>-<n>`. Fails without root or `ip`.
    pub fn new() -> Result<Lab> {
        Lab::with_prefix(PREFIX)
    }

    /// A lab whose namespaces start with `prefix` ([`PREFIX`] or [`KEEP_PREFIX`]).
    pub fn with_prefix(prefix: &str) -> Result<Lab> {
        if prefix != PREFIX && prefix != KEEP_PREFIX {
            return Err(Error::Invalid(format!("lab prefix {prefix:?}")));
        }
        require_privileges()?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Ok(Lab {
            tag: format!("{prefix}{}-{n}", std::process::id()),
            namespaces: Vec::new(),
            veths: Vec::new(),
            children: Vec::new(),
        })
    }

    /// The common prefix of this lab's namespace names, `rlm-<pid>-<n>`.
    #[must_use]
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The namespaces created so far, in order.
    #[must_use]
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// Creates namespace `<tag>-<role>` with `lo` up and returns its name. `role` is 1-32 of
    /// `[a-z0-9_]` (e.g. `"gateway"`, `"host1"`).
    pub fn add_namespace(&mut self, role: &str) -> Result<String> {
        check_role(role)?;
        let name = format!("{}-{role}", self.tag);
        ip(&["netns", "add", &name])?;
        self.namespaces.push(name.clone());
        ip(&["-n", &name, "link", "set", "lo", "up"])?;
        Ok(name)
    }

    /// Creates a veth pair, `a_if` in namespace `a` and `b_if` in `b`, both up.
    pub fn veth(&mut self, (a, a_if): (&str, &str), (b, b_if): (&str, &str)) -> Result<()> {
        for name in [a_if, b_if] {
            if name.is_empty() || name.len() > crate::tun::MAX_IFNAME {
                return Err(Error::Invalid(format!("interface name {name:?}")));
            }
        }
        ip(&[
            "link", "add", a_if, "netns", a, "type", "veth", "peer", "name", b_if, "netns", b,
        ])?;
        self.veths.push((a.to_owned(), a_if.to_owned()));
        ip(&["-n", a, "link", "set", a_if, "up"])?;
        ip(&["-n", b, "link", "set", b_if, "up"])?;
        Ok(())
    }

    /// `ip -n NS addr add ADDR dev IF`.
    pub fn add_address(&self, ns: &str, dev: &str, addr: Ipv4Prefix) -> Result<()> {
        ip(&["-n", ns, "addr", "add", &addr.to_string(), "dev", dev]).map(|_| ())
    }

    /// `ip -n NS route add DEST VIA`.
    pub fn add_route(&self, ns: &str, dest: Ipv4Prefix, via: &RouteVia) -> Result<()> {
        let dest = format!("{}/{}", dest.network(), dest.prefix_len());
        let mut args = vec!["-n", ns, "route", "add", &dest];
        let gw;
        match via {
            RouteVia::Device(dev) => args.extend(["dev", dev]),
            RouteVia::Gateway(g) => {
                gw = g.to_string();
                args.extend(["via", &gw]);
            }
            RouteVia::GatewayOnDevice(g, dev) => {
                gw = g.to_string();
                args.extend(["via", &gw, "dev", dev]);
            }
        }
        ip(&args).map(|_| ())
    }

    /// Sets `net.ipv4.ip_forward` in namespace `ns`.
    pub fn set_ip_forward(&self, ns: &str, on: bool) -> Result<()> {
        in_namespace(ns, || crate::sysctl::set_ip_forward(on))?
    }

    /// Writes sysctl `key` (dotted) in namespace `ns`.
    pub fn sysctl(&self, ns: &str, key: &str, value: &str) -> Result<()> {
        in_namespace(ns, || crate::sysctl::write(key, value))?
    }

    /// Runs `program args...` in `ns` (`ip netns exec`) to completion, output captured, status
    /// not checked.
    pub fn run<S: AsRef<OsStr>>(&self, ns: &str, program: &str, args: &[S]) -> Result<Output> {
        let args: Vec<&OsStr> = args.iter().map(AsRef::as_ref).collect();
        Command::new("ip")
            .args(["netns", "exec", ns, program])
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .ctx(|| format!("run `{}` in {ns}", command_line(program.as_ref(), &args)))
    }

    /// As [`Lab::run`], but fails unless it exits 0; returns stdout.
    pub fn run_ok<S: AsRef<OsStr>>(&self, ns: &str, program: &str, args: &[S]) -> Result<String> {
        let out = self.run(ns, program, args)?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            let args: Vec<&OsStr> = args.iter().map(AsRef::as_ref).collect();
            Err(Error::Command {
                command: format!(
                    "ip netns exec {ns} {}",
                    command_line(program.as_ref(), &args)
                ),
                status: out.status,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            })
        }
    }

    /// Starts `program args...` in `ns` in its own process group; the lab kills the group when
    /// it is dropped (or on [`Lab::kill`]).
    pub fn spawn<S: AsRef<OsStr>>(
        &mut self,
        ns: &str,
        program: &str,
        args: &[S],
        stdio: LabStdio,
    ) -> Result<ChildId> {
        let args: Vec<&OsStr> = args.iter().map(AsRef::as_ref).collect();
        let (out, err) = match stdio {
            LabStdio::Inherit => (Stdio::inherit(), Stdio::inherit()),
            LabStdio::Capture => (Stdio::piped(), Stdio::piped()),
            LabStdio::Null => (Stdio::null(), Stdio::null()),
        };
        let child = Command::new("ip")
            .args(["netns", "exec", ns, program])
            .args(&args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // `ip netns exec` execs the program in place, so the group leader is the program.
            .process_group(0)
            .spawn()
            .ctx(|| format!("spawn `{}` in {ns}", command_line(program.as_ref(), &args)))?;
        self.children.push(Some(child));
        Ok(ChildId(self.children.len() - 1))
    }

    /// The child, while the lab still owns it (e.g. to take its stdout pipe or poll it).
    pub fn child_mut(&mut self, id: ChildId) -> Option<&mut Child> {
        self.children.get_mut(id.0).and_then(Option::as_mut)
    }

    /// Waits for the child to exit and returns its status and captured output.
    pub fn wait(&mut self, id: ChildId) -> Result<Output> {
        let child = self
            .children
            .get_mut(id.0)
            .and_then(Option::take)
            .ok_or_else(|| Error::NotFound {
                what: format!("lab child {}", id.0),
            })?;
        child
            .wait_with_output()
            .ctx(|| format!("wait for lab child {}", id.0))
    }

    /// Kills the child's process group (SIGKILL) and reaps it.
    pub fn kill(&mut self, id: ChildId) -> Result<ExitStatus> {
        let mut child = self
            .children
            .get_mut(id.0)
            .and_then(Option::take)
            .ok_or_else(|| Error::NotFound {
                what: format!("lab child {}", id.0),
            })?;
        kill_group(&child);
        child.wait().ctx(|| format!("reap lab child {}", id.0))
    }

    /// Gives everything up without tearing it down: the processes keep
    /// running and the namespaces stay (`realm lab --keep`); returns the
    /// namespace names. [`cleanup_stale`] removes them once this process has
    /// exited.
    pub fn detach(&mut self) -> Vec<String> {
        // Dropping a `Child` neither kills nor waits for it.
        self.children.clear();
        self.veths.clear();
        std::mem::take(&mut self.namespaces)
    }

    /// Tears the lab down now, reporting the first error (drop does the same silently).
    pub fn shutdown(mut self) -> Result<()> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<()> {
        let mut first: Result<()> = Ok(());
        for mut child in self.children.drain(..).flatten() {
            kill_group(&child);
            let _ = child.wait();
        }
        for (ns, dev) in self.veths.drain(..) {
            // Usually gone with the namespace anyway; explicit so a namespace pinned by a
            // stray fd or thread does not keep the pair alive.
            let _ = ip(&["-n", &ns, "link", "del", &dev]);
        }
        for ns in self.namespaces.drain(..).rev() {
            if let Err(e) = destroy_namespace(&ns) {
                tracing::warn!(namespace = %ns, error = %e, "lab teardown");
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }
}

fn kill_group(child: &Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

/// The calling thread is inside a namespace until this guard drops, which moves it back to the
/// namespace it was in before [`enter`]. Not `Send`: it must drop on the thread that entered.
#[derive(Debug)]
pub struct Entered {
    previous: File,
    _not_send: PhantomData<*const ()>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        if let Err(e) = setns(&self.previous, CloneFlags::CLONE_NEWNET) {
            tracing::error!(error = %e, "could not return thread to its network namespace");
        }
    }
}

/// Moves the CALLING THREAD (only) into named namespace `name` (`/var/run/netns/NAME`, as
/// created by `ip netns add` or a [`Lab`]) until the returned guard drops. Other threads,
/// including tokio workers, stay where they were; see the module doc.
pub fn enter(name: &str) -> Result<Entered> {
    if name.is_empty() || name.contains('/') {
        return Err(Error::Invalid(format!("namespace name {name:?}")));
    }
    let previous = File::open("/proc/thread-self/ns/net").ctx(|| "open own netns".into())?;
    let path = format!("{NETNS_DIR}/{name}");
    let target = File::open(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound {
                what: format!("network namespace {name}"),
            }
        } else {
            Error::io(format!("open {path}"), e)
        }
    })?;
    setns(&target, CloneFlags::CLONE_NEWNET)
        .map_err(|e| Error::io(format!("setns into {name}"), e.into()))?;
    Ok(Entered {
        previous,
        _not_send: PhantomData,
    })
}

/// Runs `f` on a fresh thread inside namespace `name` and returns its result. A panic in `f` is
/// propagated to the caller.
pub fn in_namespace<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> Result<T> {
    std::thread::scope(|s| {
        let handle = s.spawn(|| {
            let _guard = enter(name)?;
            Ok(f())
        });
        match handle.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

fn current_thread_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ctx(|| "build current-thread tokio runtime".into())
}

/// Runs the future made by `f` to completion on a current-thread tokio runtime, on a dedicated
/// thread inside namespace `name`. Every socket, TUN and netlink handle the future creates
/// belongs to `name`. A panic in the future is propagated.
pub fn block_on_in<T, Fut, F>(name: &str, f: F) -> Result<T>
where
    F: FnOnce() -> Fut + Send,
    Fut: Future<Output = T>,
    T: Send,
{
    in_namespace(name, || -> Result<T> {
        Ok(current_thread_runtime()?.block_on(f()))
    })?
}

/// As [`block_on_in`] but in the background: returns the thread's handle at once. For a
/// long-lived task (a daemon loop, a packet echo in a test) in another namespace.
pub fn spawn_in<T, Fut, F>(name: &str, f: F) -> std::thread::JoinHandle<Result<T>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    let name = name.to_owned();
    std::thread::spawn(move || {
        let _guard = enter(&name)?;
        Ok(current_thread_runtime()?.block_on(f()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_checked() {
        assert!(check_role("gateway").is_ok());
        assert!(check_role("host_1").is_ok());
        for bad in ["", "Gateway", "a-b", "a/b", &"x".repeat(33)] {
            assert!(check_role(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn enter_rejects_paths() {
        assert!(enter("../x").is_err());
        assert!(enter("").is_err());
    }

    #[test]
    fn own_pid_is_alive_and_bogus_is_not() {
        assert!(pid_alive(std::process::id() as i32));
        assert!(!pid_alive(i32::MAX));
    }
}
