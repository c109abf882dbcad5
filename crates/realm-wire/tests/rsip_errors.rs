//! Every decoding failure maps to its RFC 3103 Appendix A code, with the
//! offset of the fault and the salvaged counter / client ID / bind ID.

// Test helpers outside #[test] functions may panic too (clippy.toml allows it in tests only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use realm_wire::rsip::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).expect("hex")
}

/// A version-1 message of type `t` with the given parameter bytes and the
/// right overall length.
fn msg(t: u8, params: &str) -> Vec<u8> {
    let body = h(params);
    let len = u16::try_from(4 + body.len()).unwrap();
    let mut out = vec![1, t];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    out
}

#[track_caller]
fn fails(bytes: &[u8], code: ErrorCode, offset: usize) -> DecodeError {
    let err = Message::parse(bytes).expect_err("must fail");
    assert_eq!((err.code(), err.offset()), (code, offset), "{err}");
    assert_eq!(err.kind.code(), code);
    err
}

const CID7: &str = "04 0004 00000007";
const BID3: &str = "05 0004 00000003";
const MC42: &str = "0b 0004 0000002a";
const DC: &str = "01 0001 01";
const PORT_DC: &str = "02 0001 01";

// ---- 106 UNSUPPORTED_RSIP_VERSION ---------------------------------------------

#[test]
fn version_other_than_1_is_106() {
    let err = fails(&h("02 02 0004"), ErrorCode::UnsupportedRsipVersion, 0);
    assert_eq!(err.kind, DecodeErrorKind::UnsupportedVersion(2));
    assert_eq!(err.msg_type, Some(MessageType::RegisterRequest));
    fails(&h("00 02 0004"), ErrorCode::UnsupportedRsipVersion, 0);
    // Checked before the length: a future version may frame differently.
    fails(&h("02"), ErrorCode::UnsupportedRsipVersion, 0);
    // Nothing is salvaged from a layout we do not know.
    let mut v2 = msg(4, &format!("{CID7} {MC42}"));
    v2[0] = 2;
    let err = fails(&v2, ErrorCode::UnsupportedRsipVersion, 0);
    assert_eq!((err.client_id, err.message_counter), (None, None));
}

// ---- 207 BAD_MESSAGE --------------------------------------------------------------

#[test]
fn truncated_header_is_207() {
    let err = fails(&[], ErrorCode::BadMessage, 0);
    assert_eq!(err.kind, DecodeErrorKind::TruncatedHeader { have: 0 });
    assert_eq!(err.msg_type, None);
    let err = fails(&h("01 02 00"), ErrorCode::BadMessage, 0);
    assert_eq!(err.kind, DecodeErrorKind::TruncatedHeader { have: 3 });
    assert_eq!(err.msg_type, Some(MessageType::RegisterRequest));
}

#[test]
fn overall_length_disagreeing_with_the_bytes_is_207() {
    // Too few bytes.
    let err = fails(&h("01 02 0005"), ErrorCode::BadMessage, 2);
    assert_eq!(
        err.kind,
        DecodeErrorKind::LengthMismatch {
            declared: 5,
            actual: 4
        }
    );
    // Trailing bytes after the message.
    let err = fails(&h("01 02 0004 00"), ErrorCode::BadMessage, 2);
    assert_eq!(
        err.kind,
        DecodeErrorKind::LengthMismatch {
            declared: 4,
            actual: 5
        }
    );
    // A length below the header.
    fails(&h("01 02 0000"), ErrorCode::BadMessage, 2);
    // Salvage still reads the parameters present.
    let mut b = msg(4, &format!("{CID7} {MC42}"));
    b.push(0);
    let err = fails(&b, ErrorCode::BadMessage, 2);
    assert_eq!(
        (err.client_id, err.message_counter),
        (Some(ClientId(7)), Some(42))
    );
}

#[test]
fn truncated_parameter_is_207() {
    // Two bytes left where a 3-byte parameter header belongs, at offset 11.
    let err = fails(&msg(4, &format!("{CID7} 0b 00")), ErrorCode::BadMessage, 11);
    assert_eq!(err.kind, DecodeErrorKind::TruncatedParamHeader { have: 2 });
    assert_eq!(err.client_id, Some(ClientId(7)));
    // A Message Counter declaring 4 value bytes with 3 left.
    let err = fails(
        &msg(4, &format!("{CID7} 0b 0004 000000")),
        ErrorCode::BadMessage,
        11,
    );
    assert_eq!(
        err.kind,
        DecodeErrorKind::TruncatedParamValue {
            param: ParamType::MessageCounter,
            declared: 4,
            have: 3
        }
    );
    assert_eq!(
        (err.client_id, err.message_counter),
        (Some(ClientId(7)), None)
    );
    // Framing failures come before value and BNF failures anywhere earlier.
    let err = fails(
        &msg(2, "04 0003 000000  0b 0009 00"),
        ErrorCode::BadMessage,
        10,
    );
    assert!(matches!(
        err.kind,
        DecodeErrorKind::TruncatedParamValue { .. }
    ));
}

// ---- 206 ILLEGAL_MESSAGE ----------------------------------------------------------

#[test]
fn unknown_message_type_is_206_with_salvage() {
    let err = fails(&msg(18, ""), ErrorCode::IllegalMessage, 1);
    assert_eq!(err.kind, DecodeErrorKind::IllegalMessage(18));
    assert_eq!(err.msg_type, Some(MessageType::Unknown(18)));
    // Message types 18-21 are unassigned; 22 and 23 are RFC 3104's.
    fails(&msg(21, ""), ErrorCode::IllegalMessage, 1);
    fails(&msg(0, ""), ErrorCode::IllegalMessage, 1);
    // The body of an unknown type is not judged, but the counter is salvaged.
    let err = fails(
        &msg(200, &format!("ff 0000 {MC42} {CID7}")),
        ErrorCode::IllegalMessage,
        1,
    );
    assert_eq!(
        (err.message_counter, err.client_id),
        (Some(42), Some(ClientId(7)))
    );
    let reply = err.error_response();
    assert_eq!(reply.error(), Some(ErrorCode::IllegalMessage));
    assert_eq!(reply.message_counter(), Some(42));
    // Building one is refused the same way.
    let err = Message::new(MessageType::Unknown(99), vec![]).unwrap_err();
    assert_eq!((err.code(), err.offset), (ErrorCode::IllegalMessage, 1));
}

// ---- 204 ILLEGAL_PARAM --------------------------------------------------------------

#[test]
fn unknown_parameter_type_is_204() {
    // In the optional part.
    let err = fails(
        &msg(4, &format!("{CID7} 63 0002 abcd {MC42}")),
        ErrorCode::IllegalParam,
        11,
    );
    assert_eq!(err.kind, DecodeErrorKind::IllegalParam(0x63));
    assert_eq!(
        (err.client_id, err.message_counter),
        (Some(ClientId(7)), Some(42))
    );
    // Where a required parameter belongs.
    let err = fails(&msg(4, "0d 0000"), ErrorCode::IllegalParam, 4);
    assert_eq!(err.kind, DecodeErrorKind::IllegalParam(13));
    // Inside a QUERY tuple.
    fails(
        &msg(14, &format!("{CID7} 0a 0002 0001 63 0000")),
        ErrorCode::IllegalParam,
        16,
    );
    // Building one is refused the same way.
    let p = Parameter::Unknown {
        param_type: 200,
        value: vec![1],
    };
    let err = Message::new(MessageType::RegisterRequest, vec![p]).unwrap_err();
    assert_eq!((err.code(), err.offset), (ErrorCode::IllegalParam, 4));
}

#[test]
fn unknown_parameter_is_kept_by_the_parameter_reader_and_lenient_parse() {
    let bytes = msg(2, "63 0003 010203  0b 0004 00000001");
    let (t, params) = Message::parse_lenient(&bytes).unwrap();
    assert_eq!(t, MessageType::RegisterRequest);
    assert_eq!(
        params[0],
        Parameter::Unknown {
            param_type: 0x63,
            value: vec![1, 2, 3]
        }
    );
    assert_eq!(params[0].param_type(), ParamType::Unknown(0x63));
    let mut out = vec![1, 2, 0, 17];
    params.iter().for_each(|p| p.emit(&mut out));
    assert_eq!(out, bytes, "parse then emit loses nothing");
    // Unknown message types too.
    let (t, _) = Message::parse_lenient(&msg(99, "")).unwrap();
    assert_eq!(t, MessageType::Unknown(99));
    // ... but not malformed ones.
    assert_eq!(
        Message::parse_lenient(&msg(99, "04 0003 000000"))
            .unwrap_err()
            .code(),
        ErrorCode::BadParam
    );
}

// ---- 205 BAD_PARAM ----------------------------------------------------------------

#[track_caller]
fn bad_param(params: &str, t: u8, offset: usize, reason_part: &str) {
    let err = fails(&msg(t, params), ErrorCode::BadParam, offset);
    let DecodeErrorKind::BadParam { reason, .. } = err.kind else {
        panic!("{err}")
    };
    assert!(
        reason.contains(reason_part),
        "{reason:?} lacks {reason_part:?}"
    );
}

#[test]
fn fixed_size_parameters_with_a_wrong_length_are_205_at_the_length_field() {
    bad_param("04 0003 000001", 4, 5, "wrong length");
    bad_param("04 0005 0000000001", 4, 5, "wrong length");
    bad_param(&format!("{CID7} 0b 0002 0001"), 4, 12, "wrong length");
    bad_param(&format!("{CID7} 03 0000 {BID3}"), 10, 12, "wrong length");
    bad_param("08 0001 01", 1, 5, "wrong length");
    bad_param(
        &format!("{CID7} 03 0004 00000258 09 0003 010101"),
        3,
        19,
        "wrong length",
    );
    bad_param(
        &format!("{CID7} 03 0004 00000258 09 0002 0101 06 0000"),
        3,
        24,
        "wrong length",
    );
    bad_param(
        &format!("{CID7} 03 0004 00000258 09 0002 0101 07 0002 0101"),
        3,
        24,
        "wrong length",
    );
    bad_param(&format!("{CID7} 0a 0003 000001"), 14, 12, "neither 1 nor 2");
    bad_param(&format!("{CID7} 0c 0003 000001"), 4, 12, "vendor ID");
}

#[test]
fn malformed_addresses_are_205() {
    // Addrtype 0 is reserved; 5 is unassigned. Offset: the addrtype field.
    bad_param(&format!("{CID7} 01 0005 0001020304"), 8, 14, "reserved");
    bad_param(&format!("{CID7} 01 0001 00"), 8, 14, "reserved");
    bad_param(
        &format!("{CID7} 01 0005 0501020304"),
        8,
        14,
        "unknown Addrtype",
    );
    // No addrtype at all.
    bad_param(&format!("{CID7} 01 0000"), 8, 14, "too short");
    // IPv4 in 3 bytes, IPv6 in 4.
    bad_param(&format!("{CID7} 01 0004 01010203"), 8, 14, "wrong length");
    bad_param(&format!("{CID7} 01 0005 0301020304"), 8, 14, "wrong length");
    // An FQDN that is not ASCII.
    bad_param(
        &format!("{CID7} {DC} 01 0003 04c3a9 {PORT_DC}"),
        6,
        19,
        "ASCII",
    );
}

#[test]
fn malformed_ports_are_205() {
    let rsap = |local_ports: &str| format!("{CID7} {DC} {local_ports} {DC} {PORT_DC}");
    // Number 0 (RFC 3103 8.2: MUST be >= 1), in each form. Offset: the number field.
    bad_param(&rsap("02 0001 00"), 8, 18, "0");
    bad_param(&rsap("02 0003 000400"), 8, 18, "0");
    // A contiguous range past 65535: 2 ports from 65535.
    bad_param(&rsap("02 0003 02ffff"), 8, 18, "past 65535");
    // Number 3 but 2 port fields; number 1 but 2 fields.
    bad_param(&rsap("02 0005 0300010002"), 8, 18, "disagrees");
    bad_param(&rsap("02 0005 0100010002"), 8, 18, "disagrees");
    // Half a port field.
    bad_param(&rsap("02 0002 0100"), 8, 18, "whole number");
    // "Don't need" (length 0) outside the RSIPSEC messages (RFC 3104 6.2).
    bad_param(&rsap("02 0000"), 8, 15, "don't need");
}

#[test]
fn malformed_spis_are_205() {
    let rsipsec = |spi: &str| format!("{CID7} {DC} 02 0000 {DC} 02 0000 {spi}");
    // Offsets: the SPI parameter is at 4+7+4+3+4+3 = 25, its number field at 28.
    bad_param(&rsipsec("16 0002 0000"), 22, 28, "0");
    bad_param(&rsipsec("16 0006 0000 00000001"), 22, 28, "0");
    bad_param(&rsipsec("16 0006 0002 ffffffff"), 22, 28, "past 2^32-1");
    bad_param(
        &rsipsec("16 000a 0003 00000001 00000002"),
        22,
        28,
        "disagrees",
    );
    bad_param(&rsipsec("16 0004 0001 0000"), 22, 28, "whole number");
    bad_param(&rsipsec("16 0001 00"), 22, 28, "too short");
    bad_param(&rsipsec("16 0000"), 22, 28, "too short");
}

#[test]
fn values_forbidden_by_their_place_are_205() {
    // RFC 3103 8.1: no FQDN as local address. Offset: the parameter.
    let fqdn = "01 0004 04616263";
    bad_param(
        &format!("{CID7} {fqdn} {PORT_DC} {DC} {PORT_DC}"),
        8,
        11,
        "local address",
    );
    bad_param(
        &format!("{CID7} {fqdn} {DC} {PORT_DC}"),
        6,
        11,
        "local address",
    );
    // A netmask as remote address.
    bad_param(
        &format!("{CID7} {DC} 01 0005 02ffffff00 {PORT_DC}"),
        6,
        15,
        "netmask",
    );
    // A "don't care" tunnel endpoint.
    let resp = format!("{CID7} {BID3} {DC} {DC} {PORT_DC} 03 0004 00000258 06 0001 01");
    bad_param(&format!("{resp} {DC}"), 7, 41, "tunnel endpoint");
    // QUERY_REQUEST indicator 3 is defined only in responses (9.14.1).
    bad_param(
        &format!("{CID7} 0a 0002 0003 01 0005 010a000001"),
        14,
        11,
        "indicator value",
    );
    // A network given as an FQDN, a netmask given as an address (9.14.3).
    let ind_net = "0a 0002 0002";
    bad_param(
        &format!("{CID7} {ind_net} 01 0004 04616263 01 0005 02ffffff00"),
        14,
        16,
        "network",
    );
    bad_param(
        &format!("{CID7} {ind_net} 01 0005 010a000000 01 0005 01ffffff00"),
        14,
        24,
        "netmask",
    );
}

// ---- 201 MISSING_PARAM ------------------------------------------------------------

#[track_caller]
fn missing(bytes: &[u8], offset: usize, expected: &str, found: Option<ParamType>) -> DecodeError {
    let err = fails(bytes, ErrorCode::MissingParam, offset);
    let DecodeErrorKind::MissingParam {
        expected: e,
        found: f,
        ..
    } = err.kind
    else {
        panic!("{err}")
    };
    assert_eq!((e, f), (expected, found));
    err
}

#[test]
fn missing_required_parameters_are_201() {
    missing(&msg(4, ""), 4, "Client ID", None);
    missing(&msg(1, ""), 4, "Error", None);
    // REGISTER_RESPONSE without Flow Policy: the message ends at 18.
    missing(
        &msg(3, &format!("{CID7} 03 0004 00000258")),
        18,
        "Flow Policy",
        None,
    );
    // EXTEND_RESPONSE needs its Lease Time; salvage gives client and bind IDs.
    let err = missing(
        &msg(11, &format!("{CID7} {BID3} {MC42}")),
        18,
        "Lease Time",
        Some(ParamType::MessageCounter),
    );
    assert_eq!(
        (err.client_id, err.bind_id, err.message_counter),
        (Some(ClientId(7)), Some(BindId(3)), Some(42))
    );
    let reply = err.error_response();
    assert_eq!(
        reply.to_bytes(),
        msg(1, &format!("08 0002 00c9 {MC42} {CID7} {BID3}"))
    );
}

#[test]
fn required_parameters_out_of_order_are_201() {
    // RFC 3103 9: "required parameters MUST appear in the exact order". Two
    // addresses then two ports: the local ports are missing at offset 19.
    let b = msg(8, &format!("{CID7} {DC} {DC} {PORT_DC} {PORT_DC}"));
    let err = missing(&b, 15, "Ports (local)", Some(ParamType::Address));
    assert_eq!(
        err.to_string(),
        "ASSIGN_REQUEST_RSAP-IP needs Ports (local) here, found Address parameter (offset 15)"
    );
    // The message counter before the required Error.
    missing(
        &msg(1, &format!("{MC42} 08 0002 0065")),
        4,
        "Error",
        Some(ParamType::MessageCounter),
    );
    // REGISTER_RESPONSE in Appendix C's prose order (Flow Policy before Lease).
    missing(
        &msg(3, &format!("{CID7} 09 0002 0103 03 0004 00000258")),
        11,
        "Lease Time",
        Some(ParamType::FlowPolicy),
    );
    // LISTEN_RESPONSE with the ASSIGN order (Lease before Tunnel Type).
    let flow = format!("{DC} {PORT_DC} {DC} {PORT_DC}");
    let b = msg(
        17,
        &format!("{CID7} {BID3} {flow} 03 0004 00000258 06 0001 01"),
    );
    missing(&b, 34, "Tunnel Type", Some(ParamType::LeaseTime));
}

#[test]
fn incomplete_query_tuples_are_201() {
    // An Address with no Indicator before it.
    missing(
        &msg(14, &format!("{CID7} 01 0005 010a000001")),
        11,
        "Indicator",
        Some(ParamType::Address),
    );
    // An Indicator with nothing after it; with a Message Counter after it.
    missing(
        &msg(14, &format!("{CID7} 0a 0002 0001")),
        16,
        "Address",
        None,
    );
    missing(
        &msg(15, &format!("{CID7} 0a 0001 01 {MC42}")),
        15,
        "Address",
        Some(ParamType::MessageCounter),
    );
    // A network tuple without its netmask.
    missing(
        &msg(14, &format!("{CID7} 0a 0002 0002 01 0005 010a000000")),
        24,
        "Address (netmask)",
        None,
    );
}

// ---- 202 DUPLICATE_PARAM ----------------------------------------------------------

#[track_caller]
fn duplicate(bytes: &[u8], offset: usize, param: ParamType) {
    let err = fails(bytes, ErrorCode::DuplicateParam, offset);
    let DecodeErrorKind::DuplicateParam { param: p, .. } = err.kind else {
        panic!("{err}")
    };
    assert_eq!(p, param);
}

#[test]
fn parameters_beyond_their_allowed_count_are_202() {
    // Two Message Counters.
    duplicate(
        &msg(4, &format!("{CID7} {MC42} {MC42}")),
        18,
        ParamType::MessageCounter,
    );
    // A second Client ID after the required one.
    duplicate(&msg(4, &format!("{CID7} {CID7}")), 11, ParamType::ClientId);
    // A third Address in ASSIGN_REQUEST_RSAP-IP.
    let req = format!("{CID7} {DC} {PORT_DC} {DC} {PORT_DC}");
    duplicate(&msg(8, &format!("{req} {DC}")), 27, ParamType::Address);
    // Two Lease Times.
    let lease = "03 0004 00000258";
    duplicate(
        &msg(8, &format!("{req} {lease} {lease}")),
        34,
        ParamType::LeaseTime,
    );
    // Two Tunnel Types where one is allowed; several are fine in LISTEN_REQUEST.
    let tt = "06 0001 01";
    duplicate(
        &msg(8, &format!("{req} {tt} {tt}")),
        31,
        ParamType::TunnelType,
    );
    assert!(Message::parse(&msg(16, &format!("{req} {tt} {tt} 06 0001 02"))).is_ok());
    // Two tunnel endpoints.
    let resp = format!("{CID7} {BID3} 01 0005 01c0000201 {DC} {PORT_DC} {lease} {tt}");
    let ep = "01 0005 01c0000202";
    duplicate(
        &msg(7, &format!("{resp} {ep} {ep}")),
        53,
        ParamType::Address,
    );
    // Two Bind IDs in an ERROR_RESPONSE.
    duplicate(
        &msg(1, &format!("08 0002 0132 {BID3} {BID3}")),
        16,
        ParamType::BindId,
    );
}

// ---- 203 EXTRA_PARAM --------------------------------------------------------------

#[track_caller]
fn extra(bytes: &[u8], offset: usize, param: ParamType) {
    let err = fails(bytes, ErrorCode::ExtraParam, offset);
    let DecodeErrorKind::ExtraParam { param: p, .. } = err.kind else {
        panic!("{err}")
    };
    assert_eq!(p, param);
}

#[test]
fn parameters_the_message_has_no_place_for_are_203() {
    extra(&msg(2, BID3), 4, ParamType::BindId);
    extra(&msg(2, "0a 0002 0001"), 4, ParamType::Indicator);
    extra(
        &msg(4, &format!("{CID7} 03 0004 00000258")),
        11,
        ParamType::LeaseTime,
    );
    // An SPI in an RSAP-IP request.
    let req = format!("{CID7} {DC} {PORT_DC} {DC} {PORT_DC}");
    extra(&msg(8, &format!("{req} 16 0002 0001")), 27, ParamType::Spi);
    // A Flow Policy where a required Address belongs.
    extra(
        &msg(8, &format!("{CID7} 09 0002 0101")),
        11,
        ParamType::FlowPolicy,
    );
    // No tunnel endpoint Address in an EXTEND_REQUEST.
    extra(
        &msg(10, &format!("{CID7} {BID3} {DC}")),
        18,
        ParamType::Address,
    );
}

// ---- building ----------------------------------------------------------------------

#[test]
fn building_an_invalid_message_fails_like_parsing_it() {
    let flow = |local_ports| Flow {
        local_address: Address::DONT_CARE_V4,
        local_ports,
        remote_address: Address::DONT_CARE_V4,
        remote_ports: Ports::DONT_CARE_ONE,
    };
    let opts = RequestOptions {
        message_counter: Some(9),
        ..Default::default()
    };
    // A one-port list would come back as a range: refused, offset of the ports.
    let err = Message::assign_request_rsap_ip(ClientId(1), flow(Ports::List(vec![80])), opts)
        .unwrap_err();
    assert_eq!((err.code(), err.offset), (ErrorCode::BadParam, 15));
    assert_eq!(
        (err.client_id, err.message_counter),
        (Some(ClientId(1)), Some(9))
    );
    for bad in [
        Ports::DontCare { count: 0 },
        Ports::Range {
            first: 65535,
            count: 2,
        },
        Ports::DontNeed,
        Ports::List(vec![1; 256]),
    ] {
        let err =
            Message::assign_request_rsap_ip(ClientId(1), flow(bad.clone()), opts).unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadParam, "{bad:?}");
    }
    // An FQDN local address; an empty FQDN (that is the don't care form).
    let err = Message::assign_request_rsa_ip(
        ClientId(1),
        Address::Fqdn("a.example".into()),
        Address::DONT_CARE_V4,
        Ports::DONT_CARE_ONE,
        opts,
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadParam);
    let err = Message::assign_request_rsa_ip(
        ClientId(1),
        Address::DONT_CARE_V4,
        Address::Fqdn(String::new()),
        Ports::DONT_CARE_ONE,
        opts,
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadParam);
    // Unknown spelling a known code.
    let err = Message::new(
        MessageType::RegisterResponse,
        vec![
            Parameter::ClientId(ClientId(1)),
            Parameter::LeaseTime(1),
            Parameter::FlowPolicy(FlowPolicy {
                local: LocalFlowPolicy::Macro,
                remote: RemoteFlowPolicy::None,
            }),
            Parameter::TunnelType(TunnelType::Unknown(1)),
        ],
    )
    .unwrap_err();
    assert_eq!((err.code(), err.offset), (ErrorCode::BadParam, 23));
    // More than 65535 bytes.
    let vendor = Parameter::VendorSpecific(VendorSpecific {
        vendor_id: 1,
        subtype: 1,
        value: vec![0; 30_000],
    });
    let err = Message::new(
        MessageType::RegisterRequest,
        vec![vendor.clone(), vendor.clone(), vendor.clone()],
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadMessage);
    let vendor = Parameter::VendorSpecific(VendorSpecific {
        vendor_id: 1,
        subtype: 1,
        value: vec![0; 65_532],
    });
    let err = Message::new(MessageType::RegisterRequest, vec![vendor]).unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadParam);
}

// ---- framing on TCP -------------------------------------------------------------

#[test]
fn stream_decoder_refuses_bad_lengths_for_good() {
    let mut dec = StreamDecoder::new(64);
    assert_eq!(dec.push(&h("01 02 0003")), 4);
    assert_eq!(
        dec.next_frame(),
        Err(FrameError::LengthTooSmall { declared: 3 })
    );
    assert_eq!(dec.next_frame().unwrap_err().code(), ErrorCode::BadMessage);
    assert_eq!(
        dec.push(&h("01 02 0004")),
        0,
        "a failed decoder takes nothing"
    );

    let mut dec = StreamDecoder::new(64);
    assert_eq!(dec.push(&h("01 02 0041")), 4);
    assert_eq!(
        dec.next_frame(),
        Err(FrameError::TooLong {
            declared: 65,
            max: 64
        })
    );
    assert!(dec.next_frame().is_err());
}

#[test]
fn stream_decoder_buffer_is_bounded() {
    let frame = msg(4, &format!("{CID7} {MC42}"));
    assert_eq!(frame.len(), 18);
    let stream: Vec<u8> = frame.iter().copied().cycle().take(18 * 5).collect();
    let mut dec = StreamDecoder::new(20);
    assert_eq!(dec.max_message_len(), 20);
    // Only 20 bytes fit; the rest must wait for next_frame.
    assert_eq!(dec.push(&stream), 20);
    assert_eq!(dec.push(&stream[20..]), 0);
    assert_eq!(dec.next_frame().unwrap(), Some(frame.as_slice()));
    assert_eq!(dec.next_frame().unwrap(), None);
    assert_eq!(dec.buffered(), 2);
    assert_eq!(dec.push(&stream[20..]), 18);
    assert_eq!(dec.next_frame().unwrap(), Some(frame.as_slice()));
    assert_eq!(dec.buffered(), 2);
    // Clamped to what the overall length field can express.
    assert_eq!(StreamDecoder::new(0).max_message_len(), 4);
    assert_eq!(StreamDecoder::new(1 << 20).max_message_len(), 65535);
    // A frame that is well delimited but invalid is not a framing error.
    let mut dec = StreamDecoder::new(64);
    assert_eq!(dec.push(&h("01 63 0004 01 02 0004")), 8);
    let bad = dec.next_frame().unwrap().unwrap().to_vec();
    assert_eq!(
        Message::parse(&bad).unwrap_err().code(),
        ErrorCode::IllegalMessage
    );
    assert_eq!(dec.next_frame().unwrap(), Some(h("01 02 0004").as_slice()));
}
