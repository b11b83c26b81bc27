//! A direct evaluator of profile semantics (no BPF): the third opinion when our filter and
//! libseccomp's disagree. It implements the documented rules independently of the compiler.

use node_seccomp::{Action, Arch, ArgCondition, Operator, Profile, X32_SYSCALL_BIT, syscalls};

fn cond_holds(c: &ArgCondition, arg: u64, narrow: bool) -> bool {
    let (mut a, mut v, mut v2) = (arg, c.value, c.value_two.unwrap_or(0));
    if narrow {
        a &= 0xffff_ffff;
        v &= 0xffff_ffff;
        v2 &= 0xffff_ffff;
    }
    match c.op {
        Operator::MaskedEqual => a & v == v2 & v,
        op => op.matches(a, v, v2),
    }
}

/// Which ABI of `arches` handles (audit arch, nr), or None for the bad-arch action.
fn abi(arches: &[Arch], audit: u32, nr: u32) -> Option<Arch> {
    for &a in arches {
        if a.audit_arch() != Some(audit) {
            continue;
        }
        match a {
            Arch::X86_64 if nr < X32_SYSCALL_BIT => return Some(a),
            Arch::X86_64 if nr == u32::MAX && !arches.contains(&Arch::X32) => return Some(a),
            Arch::X32 if nr >= X32_SYSCALL_BIT => return Some(a),
            Arch::X86 | Arch::Aarch64 => return Some(a),
            _ => {}
        }
    }
    None
}

/// The action `profile` gives a syscall under the compiler's documented semantics.
pub fn evaluate(
    profile: &Profile,
    arches: &[Arch],
    bad_arch: Action,
    audit: u32,
    nr: u32,
    args: [u64; 6],
) -> Action {
    let default = profile.default_action.with_errno(profile.default_errno_ret);
    let Some(arch) = abi(arches, audit, nr) else {
        return bad_arch;
    };
    let narrow = arch.is_32bit();
    let mut unconditional = None;
    let mut matched: Vec<Action> = Vec::new();
    for rule in &profile.syscalls {
        let action = rule.action.with_errno(rule.errno_ret);
        if action == default {
            continue;
        }
        let mut idx: Vec<u32> = rule.args.iter().map(|a| a.index).collect();
        idx.sort_unstable();
        let split = idx.windows(2).any(|w| w[0] == w[1]);
        let sets: Vec<Vec<ArgCondition>> = if split {
            rule.args.iter().map(|a| vec![*a]).collect()
        } else {
            vec![rule.args.clone()]
        };
        for name in &rule.names {
            let mut ways: Vec<Vec<ArgCondition>> = Vec::new();
            if syscalls::resolve(arch, name) == Some(nr) {
                ways.extend(sets.iter().cloned());
            }
            if arch == Arch::X86
                && let Some(call) = mux(name)
                && call.0 == nr
            {
                for s in &sets {
                    let mut c: Vec<ArgCondition> =
                        s.iter().filter(|a| a.index != 0).copied().collect();
                    c.push(ArgCondition {
                        index: 0,
                        value: u64::from(call.1),
                        value_two: None,
                        op: Operator::Equal,
                    });
                    ways.push(c);
                }
            }
            for conds in ways {
                if conds.is_empty() {
                    if unconditional.is_none() {
                        unconditional = Some(action);
                    }
                } else if conds
                    .iter()
                    .all(|c| cond_holds(c, args[c.index as usize], narrow))
                {
                    matched.push(action);
                }
            }
        }
    }
    if let Some(a) = unconditional {
        return a;
    }
    matched
        .into_iter()
        .min_by_key(|a| a.precedence())
        .unwrap_or(default)
}

fn mux(name: &str) -> Option<(u32, u32)> {
    let socket = [
        "socket",
        "bind",
        "connect",
        "listen",
        "accept",
        "getsockname",
        "getpeername",
        "socketpair",
        "send",
        "recv",
        "sendto",
        "recvfrom",
        "shutdown",
        "setsockopt",
        "getsockopt",
        "sendmsg",
        "recvmsg",
        "accept4",
    ];
    if let Some(i) = socket.iter().position(|s| *s == name) {
        return Some((102, u32::try_from(i).unwrap() + 1));
    }
    let ipc = [
        ("semop", 1),
        ("semget", 2),
        ("semctl", 3),
        ("semtimedop", 4),
        ("msgsnd", 11),
        ("msgrcv", 12),
        ("msgget", 13),
        ("msgctl", 14),
        ("shmat", 21),
        ("shmdt", 22),
        ("shmget", 23),
        ("shmctl", 24),
    ];
    ipc.iter().find(|(n, _)| *n == name).map(|(_, c)| (117, *c))
}
