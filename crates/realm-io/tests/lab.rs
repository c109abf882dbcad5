//! The lab harness leaves nothing behind: on drop, on panic (in-process and in a child test
//! process), and, after a SIGKILL, through `cleanup_stale`.

// Test code: helpers outside #[test] fns may unwrap and panic too (clippy.toml covers only #[test]).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use common::lab;
use realm_io::netns::{self, LabStdio, PREFIX};

/// Names of namespaces that exist now.
fn existing() -> Vec<String> {
    netns::list_namespaces().unwrap()
}

fn assert_gone(names: &[String]) {
    let now = existing();
    for n in names {
        assert!(!now.contains(n), "namespace {n} left behind");
        assert!(
            !std::path::Path::new(netns::NETNS_DIR).join(n).exists(),
            "{n} still in {}",
            netns::NETNS_DIR
        );
    }
}

fn pid_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn drop_removes_namespaces_veths_and_children() {
    let mut lab = lab();
    let a = lab.add_namespace("left").unwrap();
    let b = lab.add_namespace("right").unwrap();
    assert!(a.starts_with(lab.tag()) && a.starts_with(PREFIX), "{a}");
    lab.veth((&a, "l0"), (&b, "r0")).unwrap();
    lab.add_address(&a, "l0", "10.3.0.1/24".parse().unwrap())
        .unwrap();
    lab.add_address(&b, "r0", "10.3.0.2/24".parse().unwrap())
        .unwrap();
    // The veth works, so there is something real to tear down.
    let ping = lab
        .run(&a, "ping", &["-n", "-c1", "-W5", "10.3.0.2"])
        .unwrap();
    assert!(ping.status.success(), "{ping:?}");
    // A child that would outlive us, with a grandchild in its process group.
    let child = lab
        .spawn(&b, "sh", &["-c", "sleep 300 & sleep 300"], LabStdio::Null)
        .unwrap();
    let pid = lab.child_mut(child).unwrap().id();
    let names = lab.namespaces().to_vec();
    assert!(names.iter().all(|n| existing().contains(n)));
    std::thread::sleep(std::time::Duration::from_millis(100));
    let in_ns = netns::ip(&["netns", "pids", &b]).unwrap();
    assert!(
        in_ns.split_whitespace().count() >= 2,
        "sh and sleeps: {in_ns}"
    );

    drop(lab);
    assert_gone(&names);
    assert!(!pid_exists(pid), "child {pid} survived the lab");
}

#[test]
fn run_spawn_wait_and_kill() {
    let mut lab = lab();
    let ns = lab.add_namespace("procs").unwrap();
    let out = lab.run_ok(&ns, "ip", &["-o", "link"]).unwrap();
    assert!(out.contains("lo"), "{out}");
    assert!(matches!(
        lab.run_ok(&ns, "sh", &["-c", "echo oops >&2; exit 3"]),
        Err(realm_io::Error::Command { stderr, .. }) if stderr == "oops"
    ));
    let echo = lab
        .spawn(
            &ns,
            "sh",
            &["-c", "echo hello; echo err >&2"],
            LabStdio::Capture,
        )
        .unwrap();
    let done = lab.wait(echo).unwrap();
    assert!(done.status.success());
    assert_eq!(String::from_utf8_lossy(&done.stdout), "hello\n");
    assert_eq!(String::from_utf8_lossy(&done.stderr), "err\n");
    assert!(lab.wait(echo).is_err(), "a child is waited for once");
    let sleeper = lab.spawn(&ns, "sleep", &["300"], LabStdio::Null).unwrap();
    let status = lab.kill(sleeper).unwrap();
    assert!(!status.success());
    lab.shutdown().unwrap();
}

#[test]
fn panic_inside_a_lab_still_cleans_up() {
    let names = Mutex::new(Vec::new());
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut lab = lab();
        let a = lab.add_namespace("doomed").unwrap();
        lab.add_namespace("doomed_too").unwrap();
        lab.spawn(&a, "sleep", &["300"], LabStdio::Null).unwrap();
        names
            .lock()
            .unwrap()
            .extend(lab.namespaces().iter().cloned());
        panic!("test failure in the middle of a lab");
    }));
    assert!(result.is_err());
    let names = names.into_inner().unwrap();
    assert_eq!(names.len(), 2);
    assert_gone(&names);
}

/// Runs one `helper_*` test of this binary in a child process with `REALM_IO_LAB_HELPER` set.
fn helper(name: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            name,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("REALM_IO_LAB_HELPER", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Reads the helper's `@@NS <name>` lines until `@@READY`.
fn helper_namespaces(child: &mut std::process::Child) -> Vec<String> {
    let out = child.stdout.take().unwrap();
    let mut names = Vec::new();
    for line in BufReader::new(out).lines() {
        let line = line.unwrap();
        // libtest may print "test NAME ... " on the same line before our output.
        if let Some((_, n)) = line.split_once("@@NS ") {
            names.push(n.to_owned());
        }
        if line.ends_with("@@READY") {
            return names;
        }
    }
    panic!("helper ended before READY (names so far: {names:?})");
}

#[test]
fn panic_in_a_test_process_still_cleans_up() {
    let mut child = helper("helper_lab_then_panic");
    let names = helper_namespaces(&mut child);
    let status = child.wait().unwrap();
    assert!(!status.success(), "the helper test should have failed");
    assert_eq!(names.len(), 2);
    assert_gone(&names);
}

#[test]
fn killed_test_process_leaves_stale_namespaces_that_cleanup_stale_removes() {
    // A live lab of ours, which cleanup_stale must not touch.
    let mut mine = lab();
    let live = mine.add_namespace("alive").unwrap();

    let mut child = helper("helper_lab_then_hang");
    let names = helper_namespaces(&mut child);
    child.kill().unwrap(); // SIGKILL: no unwinding, no Drop.
    child.wait().unwrap();
    assert_eq!(names.len(), 2);
    let now = existing();
    assert!(names.iter().all(|n| now.contains(n)), "expected leftovers");

    let removed = netns::cleanup_stale(PREFIX).unwrap();
    // (A concurrent run of this test may have removed some of them first; gone is what counts.)
    assert!(!removed.contains(&live), "removed a live lab's namespace");
    assert_gone(&names);
    assert!(existing().contains(&live));
    drop(mine);
    assert_gone(&[live]);
}

fn helper_lab() -> Option<realm_io::netns::Lab> {
    if std::env::var_os("REALM_IO_LAB_HELPER").is_none() {
        println!("helper test: only meaningful when run by another test");
        return None;
    }
    let mut lab = lab();
    let a = lab.add_namespace("h1").unwrap();
    let b = lab.add_namespace("h2").unwrap();
    lab.veth((&a, "h1"), (&b, "h2")).unwrap();
    lab.spawn(&a, "sleep", &["300"], LabStdio::Null).unwrap();
    for n in lab.namespaces() {
        println!("@@NS {n}");
    }
    println!("@@READY");
    Some(lab)
}

#[test]
#[ignore = "helper process for panic_in_a_test_process_still_cleans_up"]
fn helper_lab_then_panic() {
    if let Some(_lab) = helper_lab() {
        panic!("helper panics with a lab alive");
    }
}

#[test]
#[ignore = "helper process for killed_test_process_leaves_stale_namespaces_that_cleanup_stale_removes"]
fn helper_lab_then_hang() {
    if let Some(_lab) = helper_lab() {
        std::thread::sleep(std::time::Duration::from_secs(300));
    }
}

#[test]
fn enter_moves_only_the_calling_thread() {
    let mut lab = lab();
    let ns = lab.add_namespace("enter").unwrap();
    let own = || std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino();
    let target = std::fs::metadata(format!("{}/{ns}", netns::NETNS_DIR))
        .unwrap()
        .ino();
    let before = own();
    assert_ne!(before, target);
    let outer_tid = std::fs::read_link("/proc/thread-self").unwrap();
    let outer_tid = outer_tid
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    std::thread::scope(|s| {
        s.spawn(|| {
            let guard = netns::enter(&ns).unwrap();
            assert_eq!(own(), target);
            // Threads started from inside inherit the namespace ...
            let inherited = std::thread::spawn(own).join().unwrap();
            assert_eq!(inherited, target);
            // ... while the thread that spawned this one stays where it was.
            let outer = std::fs::metadata(format!("/proc/self/task/{outer_tid}/ns/net"))
                .unwrap()
                .ino();
            assert_eq!(outer, before);
            drop(guard);
            assert_eq!(own(), before);
        });
    });
    assert_eq!(own(), before);
    assert!(matches!(
        netns::enter("rlm-does-not-exist"),
        Err(realm_io::Error::NotFound { .. })
    ));
    // block_on_in runs a current-thread runtime in the namespace.
    let inside = netns::block_on_in(&ns, || async { own() }).unwrap();
    assert_eq!(inside, target);
}
