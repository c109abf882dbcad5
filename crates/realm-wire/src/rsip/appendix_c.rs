//! The messages of RFC 3103 Appendix C (transactions 16.1, 16.2 and 16.3) as
//! hex, built from the parameter layouts of section 8 and read as
//! `docs/deviations.md` says where the appendix slips (the BNF wins). Test
//! fixtures for the wire layer and both engines, and examples for
//! `realm decode`. Hex with spaces between fields; decode with any hex reader
//! that skips white space.

/// C --> S: REGISTER_REQUEST ()
pub const C1_REGISTER_REQUEST: &str = "01 02 0004";
/// S --> C: REGISTER_RESPONSE (Client ID = 1, Local Flow Policy = Macro, Remote
/// Flow policy = None, Lease Time = 600). Appendix C lists the lease last; the
/// 9.3.2 BNF order (Client ID, Lease time, Flow Policy) wins.
pub const C1_REGISTER_RESPONSE: &str =
    "01 03 0017  04 0004 00000001  03 0004 00000258  09 0002 0103";
/// C --> S: ASSIGN_REQUEST_RSAP-IP (Client ID = 1, Address (local) = 0, Ports
/// (local) = 4-0, Address (remote) = 0, Ports (remote) = 0, Lease Time = 3600)
pub const C1_ASSIGN_REQUEST_1: &str = "01 08 0022  04 0004 00000001  01 0001 01  02 0001 04  01 0001 01  02 0001 01  03 0004 00000e10";
/// S --> C: ASSIGN_RESPONSE_RSAP-IP (Client ID = 1, Bind ID = 1, Address (local)
/// = 149.112.240.156, Ports (local) = 4-1234, Address (remote) = 0, Ports
/// (remote) = 0, Lease Time = 1800, Tunnel Type = IP-IP)
pub const C1_ASSIGN_RESPONSE_1: &str = "01 09 0033  04 0004 00000001  05 0004 00000001  01 0005 019570f09c  02 0003 0404d2  01 0001 01  02 0001 01  03 0004 00000708  06 0001 01";
/// C --> S: QUERY_REQUEST (Client ID = 1, Indicator = network, Address (network)
/// = 10.20.60.0, Address (netmask) = 255.255.255.0)
pub const C1_QUERY_REQUEST: &str =
    "01 0e 0020  04 0004 00000001  0a 0002 0002  01 0005 010a143c00  01 0005 02ffffff00";
/// S --> C: QUERY_RESPONSE (same tuple; "indicating that the network in question
/// is local": indicator 2, local network, in 9.15.1's numbering)
pub const C1_QUERY_RESPONSE: &str =
    "01 0f 0020  04 0004 00000001  0a 0002 0002  01 0005 010a143c00  01 0005 02ffffff00";
/// C --> S: ASSIGN_REQUEST_RSAP-IP (Client ID = 1, Address (local) =
/// 149.112.240.156, Ports (local) = 8-1238, Address (remote) = 0, Ports (remote)
/// = 0, Lease Time = 1800)
pub const C1_ASSIGN_REQUEST_2: &str = "01 08 0028  04 0004 00000001  01 0005 019570f09c  02 0003 0804d6  01 0001 01  02 0001 01  03 0004 00000708";
/// S --> C: ASSIGN_RESPONSE_RSAP-IP (Client ID = 1, Bind ID = 2, Address (local)
/// = 149.112.240.156, Ports (local) = 8-1305, Address (remote) = 0, Ports
/// (remote) = 0, Lease Time = 1800). Slips: the required Tunnel Type is
/// missing (9.9.2): we send IP-IP, "implied by default"; 8-1305 is the eight
/// ports 1305-1312 (the prose's 1305-1314 would be ten).
pub const C1_ASSIGN_RESPONSE_2: &str = "01 09 0033  04 0004 00000001  05 0004 00000002  01 0005 019570f09c  02 0003 080519  01 0001 01  02 0001 01  03 0004 00000708  06 0001 01";
/// C --> S: FREE_REQUEST (Client ID = 1, Bind ID = 1)
pub const C1_FREE_REQUEST: &str = "01 0c 0012  04 0004 00000001  05 0004 00000001";
/// S --> C: FREE_RESPONSE (Client ID = 1, Bind ID = 1)
pub const C1_FREE_RESPONSE_1: &str = "01 0d 0012  04 0004 00000001  05 0004 00000001";
/// C --> S: EXTEND_REQUEST (Client ID = 1, Bind ID = 2, Lease Time = 1800). The
/// prose says bind ID 1 (just freed); the parameters say 2: they win.
pub const C1_EXTEND_REQUEST: &str =
    "01 0a 0019  04 0004 00000001  05 0004 00000002  03 0004 00000708";
/// S --> C: EXTEND_RESPONSE (Client ID = 1, Bind ID = 2, Lease Time = 1800)
pub const C1_EXTEND_RESPONSE: &str =
    "01 0b 0019  04 0004 00000001  05 0004 00000002  03 0004 00000708";
/// S --> C: FREE_RESPONSE (Client ID = 1, Bind ID = 2), unsolicited
pub const C1_FREE_RESPONSE_2: &str = "01 0d 0012  04 0004 00000001  05 0004 00000002";
/// C --> S: DE-REGISTER_REQUEST (Client ID = 1)
pub const C1_DEREGISTER_REQUEST: &str = "01 04 000b  04 0004 00000001";
/// S --> C: DE-REGISTER_RESPONSE (Client ID = 1)
pub const C1_DEREGISTER_RESPONSE: &str = "01 05 000b  04 0004 00000001";
/// C --> S: REGISTER_REQUEST () is C1_REGISTER_REQUEST.
/// S --> C: REGISTER_RESPONSE (Client ID = 5, Local Flow Policy = Micro, Remote
/// Flow policy = Micro, RSIP Method = RSAP-IP, RSIP Method = RSA-IP, Tunnel Type
/// = IP-IP, Tunnel Type = GRE, Lease Time = 600): BNF order, lease third.
pub const C2_REGISTER_RESPONSE: &str = "01 03 0027  04 0004 00000005  03 0004 00000258  09 0002 0202  07 0001 02  07 0001 01  06 0001 01  06 0001 02";
/// C --> S: ASSIGN_REQUEST_RSAP-IP (Client ID = 5, Address (local) = 0, Ports
/// (local) = 0, Address (remote) = 38.196.73.6, Ports (remote) = 21, Lease Time
/// = 600, Tunnel Type = IP-IP)
pub const C2_ASSIGN_REQUEST: &str = "01 08 002c  04 0004 00000005  01 0001 01  02 0001 01  01 0005 0126c44906  02 0003 010015  03 0004 00000258  06 0001 01";
/// S --> C: ASSIGN_RESPONSE_RSAP-IP (Client ID = 5, Bind ID = 1, Address (local)
/// = 149.112.240.156, Ports (local) = 2049, Address (remote) = 38.196.73.6,
/// Ports (remote) = 21, Lease Time = 600, Tunnel Type = IP-IP)
pub const C2_ASSIGN_RESPONSE: &str = "01 09 0039  04 0004 00000005  05 0004 00000001  01 0005 019570f09c  02 0003 010801  01 0005 0126c44906  02 0003 010015  03 0004 00000258  06 0001 01";
/// C --> S: LISTEN_REQUEST (Client ID = 5, Address (local) = 149.112.240.156,
/// Ports (local) = 2050, Address (remote) = 38.196.73.6, Ports (remote) = 20)
pub const C2_LISTEN_REQUEST: &str = "01 10 0027  04 0004 00000005  01 0005 019570f09c  02 0003 010802  01 0005 0126c44906  02 0003 010014";
/// S --> C: LISTEN_RESPONSE (Client ID = 5, Address (local) = 149.112.240.156,
/// Ports (local) = 2050, Address (remote) = 38.196.73.6, Ports (remote) = 20,
/// Lease Time = 600, Tunnel Type = IP-IP). Slip: the required Bind ID is
/// missing (9.17.2); we send 2, the client's second binding. BNF order: Tunnel
/// Type before Lease Time.
pub const C2_LISTEN_RESPONSE: &str = "01 11 0039  04 0004 00000005  05 0004 00000002  01 0005 019570f09c  02 0003 010802  01 0005 0126c44906  02 0003 010014  06 0001 01  03 0004 00000258";
/// C --> S: DE-REGISTER_REQUEST (Client ID = 5)
pub const C2_DEREGISTER_REQUEST: &str = "01 04 000b  04 0004 00000005";
/// S --> C: DE-REGISTER_RESPONSE (Client ID = 5)
pub const C2_DEREGISTER_RESPONSE: &str = "01 05 000b  04 0004 00000005";
/// S --> C: REGISTER_RESPONSE (Client ID = 3, Local Flow Policy = Macro, Remote
/// Flow policy = Macro, RSIP Method = RSAP-IP, RSIP Method = RSA-IP, Tunnel Type
/// = IP-IP, Tunnel Type = L2TP, Lease Time = 600): BNF order.
pub const C3_REGISTER_RESPONSE: &str = "01 03 0027  04 0004 00000003  03 0004 00000258  09 0002 0101  07 0001 02  07 0001 01  06 0001 01  06 0001 03";
/// C --> S: ASSIGN_REQUEST_RSA-IP (Client ID = 3, Address (local) = 0, Address
/// (remote) = www.foo.com, Ports (remote) = 0, Lease Time = 3600, Tunnel Type =
/// IP-IP)
pub const C3_ASSIGN_REQUEST_FOO: &str = "01 06 002d  04 0004 00000003  01 0001 01  01 000c 047777772e666f6f2e636f6d  02 0001 01  03 0004 00000e10  06 0001 01";
/// S --> C: ERROR_RESPONSE (Error = REMOTE_ADDR_UNALLOWED, Client ID = 3)
pub const C3_ERROR_RESPONSE: &str = "01 01 0010  08 0002 013a  04 0004 00000003";
/// C --> S: ASSIGN_REQUEST_RSA-IP (same, www.bar.com)
pub const C3_ASSIGN_REQUEST_BAR: &str = "01 06 002d  04 0004 00000003  01 0001 01  01 000c 047777772e6261722e636f6d  02 0001 01  03 0004 00000e10  06 0001 01";
/// S --> C: ASSIGN_RESPONSE_RSA-IP (Client ID = 3, Bind ID = 1, Address (local)
/// = 149.112.240.17, Address (remote) = www.bar.com, Ports (remote) = 0, Lease
/// Time = 3600, Tunnel Type = IP-IP)
pub const C3_ASSIGN_RESPONSE: &str = "01 07 0038  04 0004 00000003  05 0004 00000001  01 0005 019570f011  01 000c 047777772e6261722e636f6d  02 0001 01  03 0004 00000e10  06 0001 01";
/// C --> S / S --> C: DE-REGISTER_REQUEST / RESPONSE (Client ID = 3)
pub const C3_DEREGISTER_REQUEST: &str = "01 04 000b  04 0004 00000003";
pub const C3_DEREGISTER_RESPONSE: &str = "01 05 000b  04 0004 00000003";
