"""A seccomp-BPF filter: the system calls the worker never needs fail with EPERM, and so does
every new process (threads stay allowed).

Order of steps (:func:`install`): build the classic-BPF program for this architecture
(:func:`build_program`), require ``PR_SET_NO_NEW_PRIVS`` (set earlier by the caller, checked
here), then load it with ``seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC)`` so
every thread of the process gets it — falling back to ``prctl(PR_SET_SECCOMP)`` only on a
kernel without the ``seccomp`` system call, where the caller guarantees a single thread.

The program, in order:

1. the audit architecture must be this interpreter's (``AUDIT_ARCH_X86_64`` or
   ``AUDIT_ARCH_AARCH64``); any other (i386 via ``int 0x80``) gets EPERM, since its system
   call numbers mean other calls;
2. on x86_64, numbers with the x32 bit (``0x40000000``) set get EPERM: the x32 ABI reaches
   the same kernel entry points under other numbers;
3. ``clone3`` gets **ENOSYS** (its flags sit behind a pointer BPF cannot read; glibc then
   falls back to ``clone``, whose flags it can). ``clone`` is allowed only to start a
   *thread* (``CLONE_THREAD`` set, no namespace flag): every new process — ``fork``,
   ``vfork``, ``posix_spawn``, ``subprocess`` — gets EPERM, so nothing the worker starts can
   outlive it (a thread dies with its thread group); ``fork`` and ``vfork`` (x86_64 only)
   are in :data:`DENIED`;
4. ``personality`` is allowed only to query (``0xffffffff``) or set ``PER_LINUX`` (0);
5. every call in :data:`DENIED` gets EPERM — EPERM and not a kill, so Python raises
   ``PermissionError`` and the sandbox's tests can observe each refusal. ``execve`` and
   ``execveat`` are among them: the worker runs no program (Landlock grants no ``EXECUTE``
   either, where it exists);
6. everything else is allowed.

``socket`` is denied for *every* family, AF_UNIX included: the worker talks over inherited
pipes only, Landlock does not mediate ``connect`` to a pathname UNIX socket (a Docker or
systemd socket), and AF_NETLINK/AF_ALG/AF_PACKET are kernel attack surface. ``socketpair``
is denied too: the worker needs none, and it is the usual route to SCM_RIGHTS bugs.
"""

from __future__ import annotations

import ctypes
import errno
import struct

from kontur.worker.sandbox import _syscall

__all__ = ["DENIED", "build_program", "install"]

#: System calls that fail with EPERM, per architecture name as ``uname -m`` spells it.
_COMMON = (
    # new programs (new processes: see clone in build_program)
    "execve",
    "execveat",
    # network: every socket family, and connected pairs
    "socket",
    "socketpair",
    # other processes' memory and descriptors
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    # mounts and namespaces (which would undo the netns and Landlock)
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "unshare",
    "setns",
    # kernel attack surface the worker never needs
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "keyctl",
    "add_key",
    "request_key",
    "open_by_handle_at",
    "name_to_handle_at",
    "fanotify_init",
    "lookup_dcookie",
    # system administration
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "swapon",
    "swapoff",
    "reboot",
    "acct",
    "quotactl",
    "syslog",
    "vhangup",
    # the clock: the verifier and the archive trust it
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
)

# fmt: off
_NUMBERS: dict[str, dict[str, int]] = {
    "x86_64": dict(
        socket=41, socketpair=53, ptrace=101, process_vm_readv=310, process_vm_writev=311,
        kcmp=312, pidfd_getfd=438, mount=165, umount2=166, pivot_root=155, chroot=161,
        fsopen=430, fsconfig=431, fsmount=432, fspick=433, move_mount=429, open_tree=428,
        mount_setattr=442, unshare=272, setns=308, bpf=321, perf_event_open=298,
        userfaultfd=323, io_uring_setup=425, io_uring_enter=426, io_uring_register=427,
        keyctl=250, add_key=248, request_key=249, kexec_load=246, kexec_file_load=320,
        init_module=175, finit_module=313, delete_module=176, swapon=167, swapoff=168,
        reboot=169, acct=163, settimeofday=164, clock_settime=227, clock_adjtime=305,
        adjtimex=159, open_by_handle_at=304, name_to_handle_at=303, quotactl=179,
        lookup_dcookie=212, syslog=103, vhangup=153, fanotify_init=300,
        iopl=172, ioperm=173, uselib=134, fork=57, vfork=58, execve=59, execveat=322,
        clone=56, clone3=435, personality=135,
    ),
    "aarch64": dict(
        socket=198, socketpair=199, ptrace=117, process_vm_readv=270, process_vm_writev=271,
        kcmp=272, pidfd_getfd=438, mount=40, umount2=39, pivot_root=41, chroot=51,
        fsopen=430, fsconfig=431, fsmount=432, fspick=433, move_mount=429, open_tree=428,
        mount_setattr=442, unshare=97, setns=268, bpf=280, perf_event_open=241,
        userfaultfd=282, io_uring_setup=425, io_uring_enter=426, io_uring_register=427,
        keyctl=219, add_key=217, request_key=218, kexec_load=104, kexec_file_load=294,
        init_module=105, finit_module=273, delete_module=106, swapon=224, swapoff=225,
        reboot=142, acct=89, settimeofday=170, clock_settime=112, clock_adjtime=266,
        adjtimex=171, open_by_handle_at=265, name_to_handle_at=264, quotactl=60,
        lookup_dcookie=18, syslog=116, vhangup=58, fanotify_init=262, execve=221,
        execveat=281, clone=220, clone3=435, personality=92,
    ),
}
# fmt: on

#: Denied system calls per architecture (x86_64 also denies its legacy I/O-port calls, and
#: ``fork``/``vfork``, which aarch64 does not have).
DENIED: dict[str, tuple[str, ...]] = {
    "x86_64": (*_COMMON, "iopl", "ioperm", "uselib", "fork", "vfork"),
    "aarch64": _COMMON,
}

_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_X32_SYSCALL_BIT = 0x40000000
#: CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET (all in the low 32 bits).
_CLONE_NS_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000
_CLONE_NS_FLAGS |= 0x20000000 | 0x40000000
#: A clone with this flag starts a thread of the caller's thread group (it implies CLONE_VM).
_CLONE_THREAD = 0x00010000

# classic BPF opcodes (linux/filter.h, linux/bpf_common.h)
_LD_W_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_RET_ALLOW, _RET_ERRNO = 0x7FFF0000, 0x00050000
# offsets in struct seccomp_data {int nr; u32 arch; u64 ip; u64 args[6];} (little-endian)
_OFF_NR, _OFF_ARCH, _OFF_ARG0_LO = 0, 4, 16

_SECCOMP_SET_MODE_FILTER, _SECCOMP_FILTER_FLAG_TSYNC = 1, 1
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, _PR_GET_NO_NEW_PRIVS = 22, 2, 39


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> tuple[int, int, int, int]:
    return (code, jt, jf, k)


def _deny(err: int = errno.EPERM) -> tuple[int, int, int, int]:
    return _insn(_RET, _RET_ERRNO | (err & 0xFFFF))


def build_program(arch: str) -> list[tuple[int, int, int, int]]:
    """The filter for ``arch`` as ``(code, jt, jf, k)`` instructions (see the module doc)."""
    if arch not in _NUMBERS:
        raise OSError(errno.ENOSYS, f"seccomp: no system call table for architecture {arch}")
    nr = _NUMBERS[arch]
    prog = [
        _insn(_LD_W_ABS, _OFF_ARCH),
        _insn(_JEQ, _AUDIT_ARCH[arch], jt=1),
        _deny(),
        _insn(_LD_W_ABS, _OFF_NR),
    ]
    if arch == "x86_64":
        prog += [_insn(_JGE, _X32_SYSCALL_BIT, jf=1), _deny()]
    prog += [_insn(_JEQ, nr["clone3"], jf=1), _deny(errno.ENOSYS)]
    # an argument check loads args[0] into A: each ends in a return, so A holds nr again after
    prog += [
        _insn(_JEQ, nr["clone"], jf=5),
        _insn(_LD_W_ABS, _OFF_ARG0_LO),
        _insn(_JSET, _CLONE_NS_FLAGS, jt=2),
        _insn(_JSET, _CLONE_THREAD, jf=1),
        _insn(_RET, _RET_ALLOW),  # a thread
        _deny(),  # a new process, or a namespace
        _insn(_JEQ, nr["personality"], jf=5),
        _insn(_LD_W_ABS, _OFF_ARG0_LO),
        _insn(_JEQ, 0xFFFFFFFF, jt=2),
        _insn(_JEQ, 0, jt=1),
        _deny(),
        _insn(_RET, _RET_ALLOW),
    ]
    for name in DENIED[arch]:
        prog += [_insn(_JEQ, nr[name], jf=1), _deny()]
    prog.append(_insn(_RET, _RET_ALLOW))
    return prog


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(arch: str | None = None) -> str:
    """Load the filter into this process (all threads); returns ``"seccomp-bpf"``.

    Raises :class:`OSError` when the kernel refuses it (no seccomp, no ``no_new_privs``).
    """
    arch = arch or _syscall.ARCH
    prog = build_program(arch)
    if _syscall.syscall("prctl", _PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1:
        raise OSError(errno.EPERM, "seccomp: expected no_new_privs set before the filter, got 0")
    raw = b"".join(struct.pack("=HBBI", *i) for i in prog)
    buf = ctypes.create_string_buffer(raw, len(raw))
    fprog = _SockFprog(len(prog), ctypes.addressof(buf))
    try:
        failed_tid = _syscall.syscall(
            "seccomp", _SECCOMP_SET_MODE_FILTER, _SECCOMP_FILTER_FLAG_TSYNC, ctypes.byref(fprog)
        )
    except OSError as exc:
        if exc.errno != errno.ENOSYS:
            raise
        _syscall.syscall("prctl", _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0)
        return "seccomp-bpf"
    if failed_tid != 0:
        raise OSError(errno.EAGAIN, f"seccomp: expected all threads filtered, not {failed_tid}")
    return "seccomp-bpf"
