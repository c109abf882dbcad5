//! rtnetlink helpers in a fresh namespace, checked against `ip -j` output.

// Test code: helpers outside #[test] fns may unwrap and panic too (clippy.toml covers only #[test]).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::lab;
use realm_io::netns::{self, Lab};
use realm_io::{Netlink, RouteVia};
use serde_json::Value;

fn json(lab: &Lab, ns: &str, args: &[&str]) -> Value {
    let out = lab.run_ok(ns, "ip", args).unwrap();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("ip {args:?}: {e}: {out}"))
}

fn link(lab: &Lab, ns: &str, dev: &str) -> Value {
    json(lab, ns, &["-j", "addr", "show", "dev", dev])[0].clone()
}

fn addrs(link: &Value) -> Vec<String> {
    link["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["family"] == "inet")
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect()
}

fn routes(lab: &Lab, ns: &str) -> Vec<Value> {
    json(lab, ns, &["-j", "route", "show"])
        .as_array()
        .unwrap()
        .clone()
}

fn find_route<'a>(routes: &'a [Value], dst: &str) -> Option<&'a Value> {
    routes.iter().find(|r| r["dst"] == dst)
}

#[test]
fn link_address_route_and_mtu_as_ip_sees_them() {
    let mut lab = lab();
    let ns = lab.add_namespace("nl").unwrap();
    lab.veth((&ns, "n0"), (&ns, "n1")).unwrap();

    // Step 1: configure through netlink.
    let index = netns::block_on_in(&ns, || async {
        let nl = Netlink::new().unwrap();
        nl.set_link_down("n0").await.unwrap();
        nl.set_mtu("n0", 1400).await.unwrap();
        assert_eq!(nl.mtu("n0").await.unwrap(), 1400);
        nl.add_address("n0", "10.2.0.1/24".parse().unwrap())
            .await
            .unwrap();
        nl.add_address("n0", "192.0.2.1/32".parse().unwrap())
            .await
            .unwrap();
        nl.set_link_up("n0").await.unwrap();
        nl.add_route(
            "198.51.100.0/24".parse().unwrap(),
            &RouteVia::Gateway("10.2.0.254".parse().unwrap()),
        )
        .await
        .unwrap();
        // Host bits in a route destination are cleared, as `ip` would refuse them.
        nl.add_route(
            "203.0.113.77/24".parse().unwrap(),
            &RouteVia::Device("n0".into()),
        )
        .await
        .unwrap();
        nl.add_route(
            "192.0.2.128/25".parse().unwrap(),
            &RouteVia::GatewayOnDevice("10.2.0.253".parse().unwrap(), "n0".into()),
        )
        .await
        .unwrap();
        let mut got = nl.addresses("n0").await.unwrap();
        got.sort_by_key(ToString::to_string);
        assert_eq!(
            got.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["10.2.0.1/24", "192.0.2.1/32"]
        );
        assert!(matches!(
            nl.ifindex("nope0").await,
            Err(realm_io::Error::NotFound { .. })
        ));
        nl.ifindex("n0").await.unwrap()
    })
    .unwrap();

    // Step 2: `ip` agrees.
    let l = link(&lab, &ns, "n0");
    assert_eq!(l["ifindex"], index);
    assert_eq!(l["mtu"], 1400);
    assert!(
        l["flags"].as_array().unwrap().iter().any(|f| f == "UP"),
        "{l}"
    );
    let mut a = addrs(&l);
    a.sort();
    assert_eq!(a, ["10.2.0.1/24", "192.0.2.1/32"]);
    let r = routes(&lab, &ns);
    let via_gw = find_route(&r, "198.51.100.0/24").expect("route via gateway");
    assert_eq!(via_gw["gateway"], "10.2.0.254");
    assert_eq!(via_gw["dev"], "n0");
    let via_dev = find_route(&r, "203.0.113.0/24").expect("device route");
    assert_eq!(via_dev["dev"], "n0");
    assert_eq!(via_dev["scope"], "link");
    assert!(via_dev.get("gateway").is_none());
    let both = find_route(&r, "192.0.2.128/25").expect("route via gateway on device");
    assert_eq!(both["gateway"], "10.2.0.253");

    // Step 3: delete through netlink; `ip` sees them gone.
    netns::block_on_in(&ns, || async {
        let nl = Netlink::new().unwrap();
        nl.del_route(
            "198.51.100.0/24".parse().unwrap(),
            &RouteVia::Gateway("10.2.0.254".parse().unwrap()),
        )
        .await
        .unwrap();
        nl.del_route(
            "203.0.113.0/24".parse().unwrap(),
            &RouteVia::Device("n0".into()),
        )
        .await
        .unwrap();
        nl.del_address("n0", "192.0.2.1/32".parse().unwrap())
            .await
            .unwrap();
        assert!(matches!(
            nl.del_address("n0", "192.0.2.1/32".parse().unwrap()).await,
            Err(realm_io::Error::NotFound { .. })
        ));
        // A duplicate route is the kernel's error (EEXIST), reported as Netlink.
        let dup = nl
            .add_route(
                "192.0.2.128/25".parse().unwrap(),
                &RouteVia::GatewayOnDevice("10.2.0.253".parse().unwrap(), "n0".into()),
            )
            .await;
        assert!(
            matches!(dup, Err(realm_io::Error::Netlink { .. })),
            "{dup:?}"
        );
        nl.set_link_down("n0").await.unwrap();
    })
    .unwrap();
    let l = link(&lab, &ns, "n0");
    assert_eq!(addrs(&l), ["10.2.0.1/24"]);
    assert!(!l["flags"].as_array().unwrap().iter().any(|f| f == "UP"));
    let r = routes(&lab, &ns);
    assert!(find_route(&r, "198.51.100.0/24").is_none(), "{r:?}");
    assert!(find_route(&r, "203.0.113.0/24").is_none(), "{r:?}");
}

#[test]
fn netlink_socket_stays_in_its_namespace() {
    // A Netlink opened inside the namespace keeps acting there when used from a thread in
    // another namespace: it sees n0, which the test's own namespace does not have.
    let mut lab = lab();
    let ns = lab.add_namespace("nlstay").unwrap();
    lab.veth((&ns, "stay0"), (&ns, "stay1")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let guard = netns::enter(&ns).unwrap();
        let nl = Netlink::new().unwrap();
        drop(guard);
        // This thread is back in its own namespace, the socket is not.
        assert!(nl.ifindex("stay0").await.is_ok());
        let here = Netlink::new().unwrap();
        assert!(matches!(
            here.ifindex("stay0").await,
            Err(realm_io::Error::NotFound { .. })
        ));
    });
}
