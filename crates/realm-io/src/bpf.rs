//! The smallest eBPF toolkit Realm needs, over `bpf(2)` directly: instructions
//! ([`Insn`], put together with [`Asm`], which resolves jump labels), maps
//! ([`Map`]), programs ([`Program`], with the verifier's log on refusal) and tcx
//! attachments ([`TcxLink`], Linux 6.6+: a program on a device's ingress or
//! egress, detached when the link is dropped).
//!
//! Programs are written in Rust with [`Asm`], not compiled from C: no
//! clang or ELF loader at build or run time. The kernel's verifier checks every
//! program before it runs; a program it refuses is an error carrying its log.
//! Constants are those of the kernel's UAPI `linux/bpf.h`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::{Error, Result};

/// `bpf(2)` commands used here (`enum bpf_cmd`).
mod cmd {
    pub(super) const MAP_CREATE: libc::c_long = 0;
    pub(super) const MAP_LOOKUP_ELEM: libc::c_long = 1;
    pub(super) const MAP_UPDATE_ELEM: libc::c_long = 2;
    pub(super) const MAP_DELETE_ELEM: libc::c_long = 3;
    pub(super) const PROG_LOAD: libc::c_long = 5;
    pub(super) const LINK_CREATE: libc::c_long = 28;
}

/// Map types (`enum bpf_map_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum MapType {
    /// `BPF_MAP_TYPE_HASH`.
    Hash = 1,
    /// `BPF_MAP_TYPE_ARRAY`.
    Array = 2,
}

/// Program types (`enum bpf_prog_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ProgramType {
    /// `BPF_PROG_TYPE_SCHED_CLS`: a tc/tcx classifier, given a `struct __sk_buff`.
    SchedCls = 3,
}

/// Where a tcx program runs (`enum bpf_attach_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum TcxDirection {
    /// `BPF_TCX_INGRESS`: packets the device receives, before the stack.
    Ingress = 46,
    /// `BPF_TCX_EGRESS`: packets the stack hands the device, before its queue.
    Egress = 47,
}

/// Helper function numbers (`enum bpf_func_id`).
pub mod helper {
    /// `void *bpf_map_lookup_elem(map, key)`.
    pub const MAP_LOOKUP_ELEM: i32 = 1;
    /// `u32 bpf_get_prandom_u32(void)`.
    pub const GET_PRANDOM_U32: i32 = 7;
    /// `long bpf_skb_store_bytes(skb, offset, from, len, flags)`.
    pub const SKB_STORE_BYTES: i32 = 9;
    /// `long bpf_skb_load_bytes(skb, offset, to, len)`.
    pub const SKB_LOAD_BYTES: i32 = 26;
    /// `s64 bpf_csum_diff(from, from_size, to, to_size, seed)`.
    pub const CSUM_DIFF: i32 = 28;
    /// `long bpf_skb_adjust_room(skb, len_diff, mode, flags)`.
    pub const SKB_ADJUST_ROOM: i32 = 50;
    /// `long bpf_skb_change_head(skb, len, flags)`: room for a link-layer header.
    pub const SKB_CHANGE_HEAD: i32 = 43;
    /// `long bpf_redirect_neigh(ifindex, params, plen, flags)`.
    pub const REDIRECT_NEIGH: i32 = 152;
}

/// Offsets of `struct __sk_buff` fields a program reads.
pub mod skb {
    /// `len`: bytes in the packet (a GSO packet: all of it).
    pub const LEN: i16 = 0;
    /// `gso_size`: payload bytes per segment of a GSO packet, 0 otherwise.
    pub const GSO_SIZE: i16 = 176;
}

/// tc verdicts (`TC_ACT_*`; tcx reads them the same way).
pub mod verdict {
    /// `TC_ACT_OK`: the packet goes on as if no program ran.
    pub const OK: i32 = 0;
    /// `TC_ACT_SHOT`: dropped.
    pub const SHOT: i32 = 2;
}

/// A register: `R0` (return values), `R1`-`R5` (arguments, clobbered by calls),
/// `R6`-`R9` (kept across calls), `R10` (read-only frame pointer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reg(u8);

/// The eleven registers.
pub const R0: Reg = Reg(0);
#[allow(missing_docs)]
pub const R1: Reg = Reg(1);
#[allow(missing_docs)]
pub const R2: Reg = Reg(2);
#[allow(missing_docs)]
pub const R3: Reg = Reg(3);
#[allow(missing_docs)]
pub const R4: Reg = Reg(4);
#[allow(missing_docs)]
pub const R5: Reg = Reg(5);
#[allow(missing_docs)]
pub const R6: Reg = Reg(6);
#[allow(missing_docs)]
pub const R7: Reg = Reg(7);
#[allow(missing_docs)]
pub const R8: Reg = Reg(8);
#[allow(missing_docs)]
pub const R9: Reg = Reg(9);
/// The frame pointer: the stack is the 512 bytes below it.
pub const R10: Reg = Reg(10);

/// Memory access sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// 1 byte.
    B,
    /// 2 bytes.
    H,
    /// 4 bytes.
    W,
    /// 8 bytes.
    Dw,
}

impl Size {
    fn bits(self) -> u8 {
        match self {
            Size::W => 0x00,
            Size::H => 0x08,
            Size::B => 0x10,
            Size::Dw => 0x18,
        }
    }
}

/// 64-bit ALU operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alu {
    /// `dst += src`.
    Add = 0x00,
    /// `dst &= src`.
    And = 0x50,
    /// `dst >>= src` (logical).
    Rsh = 0x70,
    /// `dst ^= src`.
    Xor = 0xa0,
    /// `dst = src`.
    Mov = 0xb0,
}

/// Conditional jumps (unsigned comparisons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    /// `==`.
    Eq = 0x10,
    /// `>`.
    Gt = 0x20,
    /// `!=`.
    Ne = 0x50,
}

// Instruction classes and modes (linux/bpf_common.h, linux/bpf.h).
const CLASS_LD: u8 = 0x00;
const CLASS_LDX: u8 = 0x01;
const CLASS_ST: u8 = 0x02;
const CLASS_STX: u8 = 0x03;
const CLASS_ALU: u8 = 0x04;
const CLASS_JMP: u8 = 0x05;
const CLASS_ALU64: u8 = 0x07;
const SRC_K: u8 = 0x00;
const SRC_X: u8 = 0x08;
const MODE_IMM: u8 = 0x00;
const MODE_MEM: u8 = 0x60;
const MODE_ATOMIC: u8 = 0xc0;
const OP_END: u8 = 0xd0;
const TO_BE: u8 = 0x08;
const OP_CALL: u8 = 0x80;
const OP_EXIT: u8 = 0x90;
const OP_JA: u8 = 0x00;
/// `src_reg` of a 64-bit immediate load that names a map by fd.
const PSEUDO_MAP_FD: u8 = 1;

/// One eBPF instruction (`struct bpf_insn`): 8 bytes, as the kernel reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    code: u8,
    /// `dst_reg` in the low nibble, `src_reg` in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

impl Insn {
    fn new(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (dst.0 & 0x0f) | (src.0 << 4),
            off,
            imm,
        }
    }
}

/// A label for [`Asm`]'s jumps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label(usize);

/// A program being written: instructions appended in order, jumps to labels
/// bound anywhere, resolved by [`Asm::finish`].
#[derive(Debug, Default)]
pub struct Asm {
    insns: Vec<Insn>,
    labels: Vec<Option<usize>>,
    /// (instruction index, label) of each jump.
    fixups: Vec<(usize, Label)>,
}

impl Asm {
    /// An empty program.
    #[must_use]
    pub fn new() -> Asm {
        Asm::default()
    }

    /// A new, unbound label.
    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// Binds `label` to the next instruction.
    pub fn bind(&mut self, label: Label) {
        if let Some(slot) = self.labels.get_mut(label.0) {
            *slot = Some(self.insns.len());
        }
    }

    fn push(&mut self, insn: Insn) -> &mut Asm {
        self.insns.push(insn);
        self
    }

    /// `dst op= imm` (64-bit).
    pub fn alu_imm(&mut self, op: Alu, dst: Reg, imm: i32) -> &mut Asm {
        self.push(Insn::new(CLASS_ALU64 | op as u8 | SRC_K, dst, R0, 0, imm))
    }

    /// `dst op= src` (64-bit).
    pub fn alu_reg(&mut self, op: Alu, dst: Reg, src: Reg) -> &mut Asm {
        self.push(Insn::new(CLASS_ALU64 | op as u8 | SRC_X, dst, src, 0, 0))
    }

    /// `dst = imm`.
    pub fn mov_imm(&mut self, dst: Reg, imm: i32) -> &mut Asm {
        self.alu_imm(Alu::Mov, dst, imm)
    }

    /// `dst = src`.
    pub fn mov(&mut self, dst: Reg, src: Reg) -> &mut Asm {
        self.alu_reg(Alu::Mov, dst, src)
    }

    /// `dst = htobe16(dst)` (the low 16 bits, byte-swapped on a little-endian host).
    pub fn be16(&mut self, dst: Reg) -> &mut Asm {
        self.push(Insn::new(CLASS_ALU | OP_END | TO_BE, dst, R0, 0, 16))
    }

    /// `dst = *(size *)(src + off)`.
    pub fn load(&mut self, size: Size, dst: Reg, src: Reg, off: i16) -> &mut Asm {
        self.push(Insn::new(
            CLASS_LDX | MODE_MEM | size.bits(),
            dst,
            src,
            off,
            0,
        ))
    }

    /// `*(size *)(dst + off) = src`.
    pub fn store(&mut self, size: Size, dst: Reg, off: i16, src: Reg) -> &mut Asm {
        self.push(Insn::new(
            CLASS_STX | MODE_MEM | size.bits(),
            dst,
            src,
            off,
            0,
        ))
    }

    /// `*(size *)(dst + off) = imm`.
    pub fn store_imm(&mut self, size: Size, dst: Reg, off: i16, imm: i32) -> &mut Asm {
        self.push(Insn::new(
            CLASS_ST | MODE_MEM | size.bits(),
            dst,
            R0,
            off,
            imm,
        ))
    }

    /// `*(u64 *)(dst + off) += src`, atomically.
    pub fn atomic_add64(&mut self, dst: Reg, off: i16, src: Reg) -> &mut Asm {
        // imm BPF_ADD (0): a plain atomic add without fetch.
        self.push(Insn::new(
            CLASS_STX | MODE_ATOMIC | Size::Dw.bits(),
            dst,
            src,
            off,
            0,
        ))
    }

    /// `dst = map` (a 64-bit immediate load of the map's fd, which the
    /// kernel replaces by the map's address when it loads the program).
    pub fn load_map(&mut self, dst: Reg, map: &Map) -> &mut Asm {
        let fd = map.fd.as_raw_fd();
        self.push(Insn::new(
            CLASS_LD | MODE_IMM | Size::Dw.bits(),
            dst,
            Reg(PSEUDO_MAP_FD),
            0,
            fd,
        ));
        self.push(Insn::new(0, R0, R0, 0, 0))
    }

    /// `if dst cond imm goto target`.
    pub fn jump_imm(&mut self, cond: Cond, dst: Reg, imm: i32, target: Label) -> &mut Asm {
        self.fixups.push((self.insns.len(), target));
        self.push(Insn::new(CLASS_JMP | cond as u8 | SRC_K, dst, R0, 0, imm))
    }

    /// `if dst cond src goto target`.
    pub fn jump_reg(&mut self, cond: Cond, dst: Reg, src: Reg, target: Label) -> &mut Asm {
        self.fixups.push((self.insns.len(), target));
        self.push(Insn::new(CLASS_JMP | cond as u8 | SRC_X, dst, src, 0, 0))
    }

    /// `goto target`.
    pub fn jump(&mut self, target: Label) -> &mut Asm {
        self.fixups.push((self.insns.len(), target));
        self.push(Insn::new(CLASS_JMP | OP_JA, R0, R0, 0, 0))
    }

    /// Calls helper `id` (see [`helper`]); arguments in `R1`-`R5`, result in `R0`.
    pub fn call(&mut self, id: i32) -> &mut Asm {
        self.push(Insn::new(CLASS_JMP | OP_CALL, R0, R0, 0, id))
    }

    /// Returns `R0`.
    pub fn exit(&mut self) -> &mut Asm {
        self.push(Insn::new(CLASS_JMP | OP_EXIT, R0, R0, 0, 0))
    }

    /// The instructions, jumps resolved. An unbound label or a jump too far
    /// for 16 bits is an error.
    pub fn finish(mut self) -> Result<Vec<Insn>> {
        for &(at, label) in &self.fixups {
            let target = self
                .labels
                .get(label.0)
                .copied()
                .flatten()
                .ok_or_else(|| Error::Invalid(format!("BPF label {} never bound", label.0)))?;
            let delta = i64::try_from(target).unwrap_or(i64::MAX)
                - i64::try_from(at).unwrap_or(i64::MAX)
                - 1;
            let off = i16::try_from(delta)
                .map_err(|_| Error::Invalid(format!("BPF jump of {delta} instructions")))?;
            if let Some(insn) = self.insns.get_mut(at) {
                insn.off = off;
            }
        }
        Ok(self.insns)
    }
}

/// A BPF map, freed when the last reference (this fd, or a program using it)
/// goes.
#[derive(Debug)]
pub struct Map {
    fd: OwnedFd,
    key_size: usize,
    value_size: usize,
}

/// `union bpf_attr` for `BPF_MAP_CREATE` (the leading fields; the kernel
/// zero-fills the rest of a shorter attribute).
#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

/// `union bpf_attr` for the `BPF_MAP_*_ELEM` commands.
#[repr(C)]
#[derive(Default)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// `union bpf_attr` for `BPF_PROG_LOAD`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` for `BPF_LINK_CREATE` with a tcx target.
#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
    relative_fd: u32,
    _pad: u32,
    expected_revision: u64,
}

/// One `bpf(2)` call with `attr`; a new fd for the commands that make one.
fn bpf<T>(command: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    let size = u32::try_from(std::mem::size_of::<T>()).unwrap_or(u32::MAX);
    // SAFETY: `attr` is one of the `#[repr(C)]` attribute structs above, laid out as the leading
    // fields of the kernel's `union bpf_attr` for `command`, and `size` is exactly its size, so
    // the kernel reads (and, for some commands, writes) only that memory, which we borrow
    // mutably for the call. Pointers inside it (keys, values, instructions, log buffer) point to
    // memory the caller keeps alive for the call; the kernel copies from them and keeps none.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, command, std::ptr::from_mut(attr), size) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Takes ownership of a new fd returned by `bpf(2)`.
fn owned_fd(rc: libc::c_long) -> io::Result<OwnedFd> {
    let fd = libc::c_int::try_from(rc).map_err(|_| io::Error::other("bpf: fd out of range"))?;
    // SAFETY: `fd` was just returned by a successful `bpf(2)` command that creates an fd
    // (MAP_CREATE, PROG_LOAD, LINK_CREATE): it is open and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A name for the kernel (15 bytes and a NUL at most; shown by `bpftool`).
fn kernel_name(name: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (o, b) in out.iter_mut().zip(name.bytes().take(15)) {
        *o = if b.is_ascii_alphanumeric() || b == b'_' {
            b
        } else {
            b'_'
        };
    }
    out
}

impl Map {
    /// Creates a map of `max_entries` entries of `key_size`-byte keys and
    /// `value_size`-byte values. Needs CAP_BPF (root).
    pub fn create(
        map_type: MapType,
        name: &str,
        key_size: usize,
        value_size: usize,
        max_entries: u32,
    ) -> Result<Map> {
        let mut attr = MapCreateAttr {
            map_type: map_type as u32,
            key_size: u32::try_from(key_size).map_err(|_| Error::Invalid("key size".into()))?,
            value_size: u32::try_from(value_size)
                .map_err(|_| Error::Invalid("value size".into()))?,
            max_entries,
            map_name: kernel_name(name),
            ..MapCreateAttr::default()
        };
        let rc = bpf(cmd::MAP_CREATE, &mut attr)
            .map_err(|e| Error::io(format!("create BPF map {name}"), e))?;
        Ok(Map {
            fd: owned_fd(rc).map_err(|e| Error::io(format!("create BPF map {name}"), e))?,
            key_size,
            value_size,
        })
    }

    fn check(&self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        if key.len() != self.key_size || value.is_some_and(|v| v.len() != self.value_size) {
            return Err(Error::Invalid(format!(
                "BPF map entry: key {} bytes (map: {}), value {:?} bytes (map: {})",
                key.len(),
                self.key_size,
                value.map(<[u8]>::len),
                self.value_size
            )));
        }
        Ok(())
    }

    /// Sets `key` to `value` (creating the entry or replacing it).
    pub fn update(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.check(key, Some(value))?;
        let mut attr = MapElemAttr {
            map_fd: fd_u32(&self.fd),
            key: key.as_ptr() as u64,
            value: value.as_ptr() as u64,
            flags: 0, // BPF_ANY
            ..MapElemAttr::default()
        };
        bpf(cmd::MAP_UPDATE_ELEM, &mut attr)
            .map(drop)
            .map_err(|e| Error::io("update BPF map entry", e))
    }

    /// Removes `key`; false if it was not there.
    pub fn delete(&self, key: &[u8]) -> Result<bool> {
        self.check(key, None)?;
        let mut attr = MapElemAttr {
            map_fd: fd_u32(&self.fd),
            key: key.as_ptr() as u64,
            ..MapElemAttr::default()
        };
        match bpf(cmd::MAP_DELETE_ELEM, &mut attr) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(Error::io("delete BPF map entry", e)),
        }
    }

    /// The value of `key`, if there is one.
    pub fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.check(key, None)?;
        let mut value = vec![0u8; self.value_size];
        let mut attr = MapElemAttr {
            map_fd: fd_u32(&self.fd),
            key: key.as_ptr() as u64,
            value: value.as_mut_ptr() as u64,
            ..MapElemAttr::default()
        };
        match bpf(cmd::MAP_LOOKUP_ELEM, &mut attr) {
            Ok(_) => Ok(Some(value)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(Error::io("look up BPF map entry", e)),
        }
    }
}

fn fd_u32(fd: &OwnedFd) -> u32 {
    u32::try_from(fd.as_raw_fd()).unwrap_or(u32::MAX)
}

/// A loaded (verified) program.
#[derive(Debug)]
pub struct Program {
    fd: OwnedFd,
}

impl Program {
    /// Loads `insns` as a program of `prog_type`. The verifier's log is in
    /// the error if the kernel refuses it. `license` must be GPL-compatible
    /// only if the program calls GPL-only helpers.
    pub fn load(
        prog_type: ProgramType,
        name: &str,
        insns: &[Insn],
        license: &str,
    ) -> Result<Program> {
        let license = std::ffi::CString::new(license)
            .map_err(|_| Error::Invalid("BPF license with a NUL".into()))?;
        let insn_cnt =
            u32::try_from(insns.len()).map_err(|_| Error::Invalid("BPF program size".into()))?;
        let attempt = |log: &mut [u8]| {
            let mut attr = ProgLoadAttr {
                prog_type: prog_type as u32,
                insn_cnt,
                insns: insns.as_ptr() as u64,
                license: license.as_ptr() as u64,
                log_level: u32::from(!log.is_empty()),
                log_size: u32::try_from(log.len()).unwrap_or(u32::MAX),
                log_buf: if log.is_empty() {
                    0
                } else {
                    log.as_mut_ptr() as u64
                },
                prog_name: kernel_name(name),
                ..ProgLoadAttr::default()
            };
            bpf(cmd::PROG_LOAD, &mut attr).and_then(owned_fd)
        };
        // Without a log first (the verifier is faster silent); on refusal
        // once more with one, for the error.
        let e = match attempt(&mut []) {
            Ok(fd) => return Ok(Program { fd }),
            Err(e) => e,
        };
        let mut log = vec![0u8; 1 << 20];
        let _ = attempt(&mut log);
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        let log = String::from_utf8_lossy(&log[..end]);
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(12)..].join("\n");
        Err(Error::io(
            format!("load BPF program {name} (verifier: {tail})"),
            e,
        ))
    }
}

/// A program attached to a device's tcx hook; dropping it detaches the
/// program (the device going away does too).
#[derive(Debug)]
pub struct TcxLink {
    _fd: OwnedFd,
}

impl TcxLink {
    /// Attaches `program` at `direction` of the device with index `ifindex`,
    /// after any programs already there.
    pub fn attach(program: &Program, ifindex: u32, direction: TcxDirection) -> Result<TcxLink> {
        let mut attr = LinkCreateAttr {
            prog_fd: fd_u32(&program.fd),
            target_ifindex: ifindex,
            attach_type: direction as u32,
            ..LinkCreateAttr::default()
        };
        let rc = bpf(cmd::LINK_CREATE, &mut attr).map_err(|e| {
            Error::io(
                format!("attach BPF program to ifindex {ifindex} (tcx, Linux 6.6+)"),
                e,
            )
        })?;
        Ok(TcxLink {
            _fd: owned_fd(rc).map_err(|e| Error::io("tcx link", e))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_as_the_kernel_reads_it() {
        assert_eq!(std::mem::size_of::<Insn>(), 8);
        let mut a = Asm::new();
        let end = a.label();
        a.mov_imm(R0, 0);
        a.jump_imm(Cond::Ne, R1, 7, end);
        a.mov(R6, R1);
        a.load(Size::W, R7, R6, skb::GSO_SIZE);
        a.bind(end);
        a.exit();
        let insns = a.finish().unwrap();
        // mov64 r0, 0: BPF_ALU64|BPF_MOV|BPF_K = 0xb7.
        assert_eq!(
            insns[0],
            Insn {
                code: 0xb7,
                regs: 0,
                off: 0,
                imm: 0
            }
        );
        // jne r1, 7, +2: BPF_JMP|BPF_JNE|BPF_K = 0x55, skips two instructions.
        assert_eq!(
            insns[1],
            Insn {
                code: 0x55,
                regs: 1,
                off: 2,
                imm: 7
            }
        );
        // mov64 r6, r1: 0xbf, dst 6, src 1.
        assert_eq!(
            insns[2],
            Insn {
                code: 0xbf,
                regs: 0x16,
                off: 0,
                imm: 0
            }
        );
        // ldxw r7, [r6+176]: BPF_LDX|BPF_MEM|BPF_W = 0x61.
        assert_eq!(
            insns[3],
            Insn {
                code: 0x61,
                regs: 0x67,
                off: 176,
                imm: 0
            }
        );
        assert_eq!(insns[4].code, 0x95);
    }

    #[test]
    fn unbound_label_is_an_error() {
        let mut a = Asm::new();
        let nowhere = a.label();
        a.jump(nowhere);
        assert!(a.finish().is_err());
    }
}
