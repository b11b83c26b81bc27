//! The BPF compiler: a validated profile to a seccomp filter program.
//!
//! Layout of the generated program:
//! 1. `ld arch`, then one `jeq AUDIT_ARCH_*` per architecture section (targets in the order
//!    given, so the native one costs one comparison), else the bad-arch action.
//! 2. Each section loads `nr` and runs a binary search over *intervals* of syscall numbers: every
//!    maximal run of consecutive numbers sharing the same constant action (including the runs of
//!    numbers no rule names, which get the default action) is one leaf, so a profile that allows
//!    300 syscalls in a few dozen runs needs only a few dozen leaves. The search tree is the
//!    optimal alphabetic tree (Knuth's O(n²) dynamic program) for a model of how often each
//!    number is called: by default every syscall number of the primary ABI (the first listed)
//!    weighs 1, a number of a secondary ABI sharing the section (x32) 0.3, and a number the
//!    profile refuses outright (a constant action other than ALLOW or LOG) a quarter of its
//!    ABI's weight, so wide allowed runs sit near the root; with
//!    [`CompileOptions::with_weights`] a real workload's counts ([`SyscallMix`]) over a small
//!    uniform floor. Only the shape changes: the decisions are the same. x86_64 and x32 share
//!    `AUDIT_ARCH_X86_64` and one tree: the x32 split at `X32_SYSCALL_BIT` is just another
//!    boundary.
//! 3. A syscall with argument rules is its own leaf running the rules' conditions: 64-bit
//!    comparisons are done on the high word, then the low word (only the low word on 32-bit
//!    ABIs, as libseccomp does).
//!
//! Rule semantics follow runc on top of libseccomp: a rule whose action equals the default action
//! is skipped; names unknown on an architecture are skipped there; a rule with two conditions on
//! the same argument becomes one rule per condition (OR); the first unconditional rule of a
//! syscall wins over everything else for that syscall; conditional rules are tried from the
//! strongest action to the weakest (kernel precedence), then the default action applies. On i386
//! the socket and SysV IPC calls also get a rule on `socketcall`/`ipc` with argument 0 equal to
//! the call number, as libseccomp adds.
//!
//! Code is emitted backwards (from the last instruction to the first), so every jump target is
//! known when the jump is written; a target further than 255 instructions away gets a copy of
//! its `ret` (free at run time) or a `ja` trampoline.

use std::collections::{BTreeMap, HashMap};
use std::ops::RangeInclusive;

use crate::action::{Action, MAX_ERRNO};
use crate::arch::{Arch, X32_SYSCALL_BIT};
use crate::bpf::{Insn, Program, data, op};
use crate::error::{Error, Result};
use crate::mix::SyscallMix;
use crate::profile::{ArgCondition, Operator, Profile};
use crate::syscalls;
use crate::validate::validate;

/// The kernel's limit on the length of one filter (`BPF_MAXINSNS`).
pub const MAX_INSNS: usize = 4096;

/// Generation stops once this many instructions are emitted: far beyond [`MAX_INSNS`], so the
/// exact length is still reported for profiles that are merely too long, while a hostile
/// profile (millions of conditions) cannot make the compiler build a huge program first.
const EMIT_LIMIT: usize = 16 * MAX_INSNS;

/// What to compile for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompileOptions {
    /// Architectures (ABIs) the filter handles, native first. Others get `bad_arch_action`.
    pub arches: Vec<Arch>,
    /// Action for an architecture not in `arches` (libseccomp's default: KILL_THREAD).
    pub bad_arch_action: Action,
    /// A syscall mix to shape the search tree for (see [`CompileOptions::with_weights`]);
    /// `None`: every syscall number is equally likely.
    pub weights: Option<SyscallMix>,
}

impl CompileOptions {
    /// The filter a runtime loads for `profile` on this node: the node's native architecture
    /// (the compile-time target) first, then the profile's own `architectures`
    /// (`SCMP_ARCH_NATIVE` resolved), with the architectures the compiler cannot target listed
    /// separately, so the caller can warn.
    ///
    /// The native architecture is always included, whether or not the profile lists it, as runc
    /// does through libseccomp: `seccomp_init` starts every filter with the native architecture
    /// (libseccomp `src/api.c` `seccomp_init` -> `src/db.c` `db_col_reset`, which adds
    /// `_db_init(arch_def_native)`), and runc only *adds* the listed ones with
    /// `seccomp_arch_add` (runc `libcontainer/seccomp/seccomp_linux.go` `InitSeccomp`: "Add
    /// extra architectures"; libseccomp-golang `seccomp.go` `AddArch` ignores `EEXIST`). A
    /// profile listing only `SCMP_ARCH_X86` therefore still applies its rules and default
    /// action to native x86_64 syscalls rather than killing every one of them. x32 is added
    /// only when listed: without it, x32 syscall numbers get the bad-arch action, as in
    /// libseccomp.
    ///
    /// [`CompileOptions::arches`] compiles exactly the architectures given (for analysis and
    /// cross-compilation); use this function for the filter a container would run under.
    pub fn for_profile(profile: &Profile) -> Result<(CompileOptions, Vec<Arch>)> {
        let native = Arch::native().ok_or_else(|| Error::UnsupportedArch {
            arch: std::env::consts::ARCH.to_string(),
        })?;
        let mut arches = vec![native];
        let mut skipped = Vec::new();
        for &a in &profile.architectures {
            let a = a.resolve_native().unwrap_or(native);
            if !a.is_supported() {
                if !skipped.contains(&a) {
                    skipped.push(a);
                }
            } else if !arches.contains(&a) {
                arches.push(a);
            }
        }
        // The native ABI is first: its check is then the first comparison.
        Ok((
            CompileOptions {
                arches,
                bad_arch_action: Action::KillThread,
                weights: None,
            },
            skipped,
        ))
    }

    /// Exactly these architectures (the native one is not added), with the default bad-arch
    /// action: for analysis and cross-compilation. The filter a runtime would load for a
    /// profile comes from [`CompileOptions::for_profile`].
    pub fn arches(arches: &[Arch]) -> CompileOptions {
        CompileOptions {
            arches: arches.to_vec(),
            bad_arch_action: Action::KillThread,
            weights: None,
        }
    }

    /// Sets [`bad_arch_action`](Self::bad_arch_action).
    #[must_use]
    pub fn with_bad_arch_action(mut self, bad_arch_action: Action) -> Self {
        self.bad_arch_action = bad_arch_action;
        self
    }

    /// Builds the search tree of the mix's architecture for `mix`: each leaf weighs what the
    /// mix's calls of its syscall numbers weigh, so the hot syscalls sit near the root. A
    /// floor ([`MIX_FLOOR`] of the weight, spread evenly over the syscall numbers of the mix's
    /// ABI, a secondary ABI sharing the section (x32) weighing 0.3 per number of that) keeps
    /// syscalls the mix never saw in a sensible tree.
    ///
    /// Only the shape of the search changes: every syscall number and argument gets the same
    /// decision as without weights, and every leaf is still one `ret` (or its argument rules).
    /// The mix's architecture must be one of [`arches`](Self::arches); other sections keep
    /// the default tree.
    ///
    /// ```
    /// use node_seccomp::{Arch, CompileOptions, Profile, SyscallMix, compile, weighted_mean};
    ///
    /// let profile = Profile::from_json(r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
    ///     {"names": ["read", "write", "futex", "epoll_pwait", "openat", "close"],
    ///      "action": "SCMP_ACT_ALLOW"}]}"#)?;
    /// let mix = SyscallMix::parse(r#"{"futex": 900, "epoll_pwait": 90, "read": 10}"#,
    ///                             Arch::X86_64, "<memory>")?;
    /// let plain = compile(&profile, &CompileOptions::arches(&[Arch::X86_64]))?;
    /// let tuned = compile(&profile, &CompileOptions::arches(&[Arch::X86_64]).with_weights(mix.clone()))?;
    /// assert!(weighted_mean(&tuned, &mix)?.mean < weighted_mean(&plain, &mix)?.mean);
    /// # Ok::<(), node_seccomp::Error>(())
    /// ```
    #[must_use]
    pub fn with_weights(mut self, mix: SyscallMix) -> Self {
        self.weights = Some(mix);
        self
    }
}

/// The share of a section's weight that a weighted compile ([`CompileOptions::with_weights`])
/// spreads evenly over the syscall numbers of the mix's ABI, whatever the mix: 2%. A syscall
/// the mix never saw then costs a few comparisons more than in the default tree instead of
/// falling to the bottom of a degenerate one.
pub const MIX_FLOOR: f64 = 0.02;

/// One conditional rule after runc's splitting: all conditions must hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CondRule {
    action: Action,
    conds: Vec<ArgCondition>,
}

#[derive(Debug, Default)]
struct Entry {
    unconditional: Option<Action>,
    conditional: Vec<CondRule>,
}

/// What a syscall number leads to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Leaf {
    Ret(Action),
    Args {
        rules: Vec<CondRule>,
        fallback: Action,
        wide: bool,
    },
}

/// The per-architecture decision table: syscall number -> entry.
fn arch_table(profile: &Profile, arch: Arch, default: Action) -> BTreeMap<u32, Entry> {
    let mut table: BTreeMap<u32, Entry> = BTreeMap::new();
    let mut add = |nr: u32, action: Action, conds: Vec<ArgCondition>| {
        let e = table.entry(nr).or_default();
        if e.unconditional.is_some() {
            return;
        }
        if conds.is_empty() {
            e.unconditional = Some(action);
        } else {
            e.conditional.push(CondRule { action, conds });
        }
    };
    for rule in &profile.syscalls {
        let action = rule.action.with_errno(rule.errno_ret);
        if action == default {
            continue; // runc skips these; libseccomp refuses them.
        }
        let mut indexes: Vec<u32> = rule.args.iter().map(|a| a.index).collect();
        indexes.sort_unstable();
        let duplicate = indexes.windows(2).any(|w| w[0] == w[1]);
        let sets: Vec<Vec<ArgCondition>> = if duplicate {
            rule.args.iter().map(|a| vec![*a]).collect()
        } else {
            vec![rule.args.clone()]
        };
        for name in &rule.names {
            let direct = syscalls::resolve(arch, name);
            let muxed = if arch == Arch::X86 {
                syscalls::x86_multiplexed(name)
            } else {
                None
            };
            for conds in &sets {
                if let Some(nr) = direct {
                    add(nr, action, conds.clone());
                }
                if let Some(m) = muxed {
                    let mut c: Vec<ArgCondition> =
                        conds.iter().filter(|a| a.index != 0).copied().collect();
                    c.insert(
                        0,
                        ArgCondition {
                            index: 0,
                            value: u64::from(m.call),
                            value_two: None,
                            op: Operator::Equal,
                        },
                    );
                    add(m.syscall, action, c);
                }
            }
        }
    }
    table
}

fn leaf_for(entry: &Entry, default: Action, arch: Arch) -> Leaf {
    if let Some(a) = entry.unconditional {
        return Leaf::Ret(a);
    }
    let mut rules = entry.conditional.clone();
    // Strongest action first, so overlapping rules resolve to the most restrictive one.
    rules.sort_by_key(|r| r.action.precedence());
    rules.dedup();
    Leaf::Args {
        rules,
        fallback: default,
        wide: !arch.is_32bit(),
    }
}

/// An interval of syscall numbers `[lo, hi]` with one outcome.
#[derive(Debug, Clone)]
struct Interval {
    lo: u32,
    hi: u32,
    leaf: Leaf,
}

/// Builds the interval list of one `AUDIT_ARCH` section covering all 2^32 numbers; each part
/// is `(lo, hi, leaves, fill)` with `fill` the outcome of numbers without a leaf.
fn intervals(parts: &[(u32, u32, BTreeMap<u32, Leaf>, Action)]) -> Vec<Interval> {
    let mut out: Vec<Interval> = Vec::new();
    let mut push = |lo: u64, hi: u64, leaf: Leaf| {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "every bound pushed below is a syscall number or one next to one inside a \
                      part's u32 range [lo, hi]"
        )]
        let (lo, hi) = (lo as u32, hi as u32);
        if let Some(last) = out.last_mut()
            && last.leaf == leaf
            && matches!(leaf, Leaf::Ret(_))
            && u64::from(last.hi) + 1 == u64::from(lo)
        {
            last.hi = hi;
            return;
        }
        out.push(Interval { lo, hi, leaf });
    };
    for (lo, hi, leaves, fill) in parts {
        let mut next = u64::from(*lo);
        for (&nr, leaf) in leaves.range(*lo..=*hi) {
            let nr = u64::from(nr);
            if nr > next {
                push(next, nr - 1, Leaf::Ret(*fill));
            }
            push(nr, nr, leaf.clone());
            next = nr + 1;
        }
        if next <= u64::from(*hi) {
            push(next, u64::from(*hi), Leaf::Ret(*fill));
        }
    }
    out
}

/// Optimal binary search tree over the intervals for the given weights (Knuth's algorithm):
/// `root[i][j]` is the first interval of the right subtree of the range `i..=j`; `jeq[i][j]`
/// marks three-interval ranges decided by one `jeq` (see `triple`).
fn optimal_splits(weights: &[f64], triple: &[bool]) -> (Vec<Vec<usize>>, Vec<Vec<bool>>) {
    let n = weights.len();
    let mut prefix = vec![0.0; n + 1];
    for (i, w) in weights.iter().enumerate() {
        prefix[i + 1] = prefix[i] + w;
    }
    let mut cost = vec![vec![0.0f64; n]; n];
    let mut root = vec![vec![0usize; n]; n];
    let mut jeq = vec![vec![false; n]; n];
    for len in 2..=n {
        for i in 0..=n - len {
            let j = i + len - 1;
            let (lo, hi) = if len == 2 {
                (j, j)
            } else {
                (root[i][j - 1].max(i + 1), root[i + 1][j].min(j))
            };
            let mut best = f64::INFINITY;
            let mut best_k = lo;
            for k in lo..=hi {
                let c = cost[i][k - 1] + cost[k][j];
                if c < best {
                    best = c;
                    best_k = k;
                }
            }
            let w = prefix[j + 1] - prefix[i];
            cost[i][j] = best + w;
            root[i][j] = best_k;
            // A run, one number with another outcome, and the same run again: a single `jeq`
            // decides all three (one comparison for everything) instead of two `jge`.
            if len == 3 && triple[i] && w <= cost[i][j] {
                cost[i][j] = w;
                jeq[i][j] = true;
            }
        }
    }
    (root, jeq)
}

/// How likely each syscall number of one section is: what the search tree is optimal for.
#[derive(Debug)]
struct WeightModel {
    /// Ranges of swept syscall numbers, each number weighing `per_number` times the range's
    /// factor.
    uniform: Vec<(RangeInclusive<u32>, f64)>,
    per_number: f64,
    /// Extra weight of single numbers (a mix's counts).
    points: BTreeMap<u32, f64>,
}

impl WeightModel {
    /// Without a mix, every swept number weighs its range's factor. With a mix (and the part
    /// of the section its ABI occupies), the mix's counts carry `1 - MIX_FLOOR` of the weight
    /// and `MIX_FLOOR` is spread over the swept numbers of the mix's ABI, each other swept
    /// number weighing the same times its range's factor.
    fn new(
        uniform: Vec<(RangeInclusive<u32>, f64)>,
        mix: Option<(&SyscallMix, RangeInclusive<u32>)>,
    ) -> WeightModel {
        let Some((mix, part)) = mix else {
            return WeightModel {
                uniform,
                per_number: 1.0,
                points: BTreeMap::new(),
            };
        };
        let swept = crate::syscalls::sweep_range(mix.arch());
        let n = f64::from(swept.end().saturating_sub(*swept.start())) + 1.0;
        let total = mix.total() as f64;
        let points = mix
            .by_number()
            .into_iter()
            .filter(|(nr, _)| part.contains(nr))
            .map(|(nr, c)| (nr, (1.0 - MIX_FLOOR) * c as f64 / total))
            .collect();
        WeightModel {
            uniform,
            per_number: MIX_FLOOR / n,
            points,
        }
    }

    /// The weight of the numbers `lo..=hi`: their share of the model, or, for numbers no
    /// ABI sweeps (huge numbers, untargeted ABIs), a hundredth of one swept number so those
    /// rarely used ranges stay deep in the tree.
    fn weight(&self, lo: u32, hi: u32) -> f64 {
        let covered: f64 = self
            .uniform
            .iter()
            .map(|(r, factor)| {
                let a = lo.max(*r.start());
                let b = hi.min(*r.end());
                if a <= b {
                    (f64::from(b - a) + 1.0) * factor
                } else {
                    0.0
                }
            })
            .sum();
        let points: f64 = self.points.range(lo..=hi).map(|(_, w)| w).sum();
        if covered == 0.0 && points == 0.0 {
            0.01 * self.per_number
        } else {
            covered * self.per_number + points
        }
    }
}

/// The weight of one syscall number of a section's secondary ABI (x32 in the x86_64 section)
/// against one of its primary ABI (the first listed): x32 binaries are rare (most
/// distributions build no x32 userland and many kernels disable the ABI), so its numbers sit
/// deeper in the shared tree than the native ones.
const SECONDARY_ABI_WEIGHT: f64 = 0.3;

/// Without a mix, how much a syscall number whose leaf refuses it outright (any constant
/// action but ALLOW and LOG) weighs against one that is allowed or checked: a process under a
/// profile makes mostly the syscalls the profile lets through, so those sit nearer the root.
const REFUSED_WEIGHT: f64 = 0.25;

/// The factor of a leaf's weight: [`REFUSED_WEIGHT`] for refused numbers in the tree without
/// a mix (with a mix, its counts say what is called), else 1.
fn leaf_factor(leaf: &Leaf, weighted: bool) -> f64 {
    match leaf {
        Leaf::Ret(a) if !weighted && !matches!(a, Action::Allow | Action::Log) => REFUSED_WEIGHT,
        _ => 1.0,
    }
}

/// A jump target while emitting backwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// An emitted instruction: its position counted from the end (1 = last instruction).
    Label(usize),
    /// "Return this value": placed wherever a copy is in reach.
    Ret(u32),
}

/// Backward emitter.
#[derive(Default)]
struct Emitter {
    rev: Vec<Insn>,
    rets: HashMap<u32, usize>,
}

impl Emitter {
    fn len(&self) -> usize {
        self.rev.len()
    }

    /// Stops generation once the program is hopelessly too long (`compile` fills in the
    /// architectures of the error).
    fn check_len(&self) -> Result<()> {
        if self.len() > EMIT_LIMIT {
            return Err(Error::ProgramTooLarge {
                len: self.len(),
                arches: String::new(),
                stopped: true,
            });
        }
        Ok(())
    }

    fn push(&mut self, i: Insn) -> usize {
        self.rev.push(i);
        self.rev.len()
    }

    /// A label for `t` that a jump emitted within the next `slack` instructions can reach.
    fn reach(&mut self, t: Target, slack: usize) -> usize {
        let jump_label = self.len() + slack;
        match t {
            Target::Ret(k) => match self.rets.get(&k) {
                Some(&l) if jump_label - l - 1 <= 255 => l,
                _ => {
                    let l = self.push(Insn::ret(k));
                    self.rets.insert(k, l);
                    l
                }
            },
            Target::Label(l) => {
                if jump_label - l - 1 <= 255 {
                    l
                } else {
                    let off = self.len() - l; // the trampoline's own label is len + 1
                    self.push(ja(off))
                }
            }
        }
    }

    /// A conditional jump; returns its label.
    fn jump(&mut self, code: u16, k: u32, jt: Target, jf: Target) -> Result<Target> {
        if jt == jf {
            return Ok(jt);
        }
        let lt = self.reach(jt, 2);
        let lf = self.reach(jf, 1);
        let j = self.len() + 1;
        let (ot, of) = (j - lt - 1, j - lf - 1);
        let (Ok(ot), Ok(of)) = (u8::try_from(ot), u8::try_from(of)) else {
            return Err(Error::Bpf {
                message: "internal error: jump out of range".to_string(),
            });
        };
        Ok(Target::Label(self.push(Insn::jump(
            op::JMP | code | op::K,
            k,
            ot,
            of,
        ))))
    }

    /// A straight-line instruction followed by `next`.
    fn stmt(&mut self, i: Insn, next: Target) -> Target {
        let at = match next {
            Target::Label(l) => l,
            Target::Ret(k) => match self.rets.get(&k) {
                Some(&l) => l,
                None => usize::MAX,
            },
        };
        if at != self.len() {
            match next {
                Target::Ret(k) => {
                    let l = self.push(Insn::ret(k));
                    self.rets.insert(k, l);
                }
                Target::Label(_) => {
                    let l = self.reach(next, 1);
                    if l != self.len() {
                        let off = self.len() - l;
                        self.push(ja(off));
                    }
                }
            }
        }
        Target::Label(self.push(i))
    }
}

/// An unconditional jump over `off` instructions.
#[expect(
    clippy::cast_possible_truncation,
    reason = "an offset within the emitted program, which stops growing near EMIT_LIMIT \
              (`check_len` after every rule): far below u32::MAX"
)]
fn ja(off: usize) -> Insn {
    Insn::ja(off as u32)
}

/// Emits one argument condition; returns its entry.
fn emit_cond(
    e: &mut Emitter,
    c: &ArgCondition,
    wide: bool,
    pass: Target,
    fail: Target,
) -> Result<Target> {
    let (lo_off, hi_off) = (data::arg_lo(c.index), data::arg_hi(c.index));
    let v = c.value;
    #[expect(
        clippy::cast_possible_truncation,
        reason = "splits the 64-bit value into the two 32-bit words BPF compares"
    )]
    let (vh, vl) = ((v >> 32) as u32, v as u32);
    let load = |e: &mut Emitter, off: u32, next: Target| e.stmt(Insn::load(off), next);
    if c.op == Operator::MaskedEqual {
        let d = c.value_two.unwrap_or(0);
        #[expect(
            clippy::cast_possible_truncation,
            reason = "splits the 64-bit mask and datum into the 32-bit words BPF compares"
        )]
        let parts: Vec<(u32, u32, u32)> = if wide {
            vec![
                (hi_off, (v >> 32) as u32, (d >> 32) as u32),
                (lo_off, v as u32, d as u32),
            ]
        } else {
            vec![(lo_off, v as u32, d as u32)]
        };
        let mut next = pass;
        for (off, m, dv) in parts.into_iter().rev() {
            // libseccomp compares with the datum masked too, so outside bits never matter.
            let dv = dv & m;
            if m == 0 {
                continue; // (x & 0) == 0 always
            }
            let j = e.jump(op::JEQ, dv, next, fail)?;
            let j = if m == u32::MAX {
                j
            } else {
                e.stmt(Insn::stmt(op::ALU | op::AND | op::K, m), j)
            };
            next = load(e, off, j);
        }
        return Ok(next);
    }
    if !wide {
        let j = match c.op {
            Operator::Equal => e.jump(op::JEQ, vl, pass, fail)?,
            Operator::NotEqual => e.jump(op::JEQ, vl, fail, pass)?,
            Operator::GreaterThan => e.jump(op::JGT, vl, pass, fail)?,
            Operator::GreaterOrEqual => e.jump(op::JGE, vl, pass, fail)?,
            Operator::LessThan => e.jump(op::JGE, vl, fail, pass)?,
            Operator::LessOrEqual => e.jump(op::JGT, vl, fail, pass)?,
            Operator::MaskedEqual => pass,
        };
        return Ok(load(e, lo_off, j));
    }
    Ok(match c.op {
        Operator::Equal | Operator::NotEqual => {
            let (t, f) = if c.op == Operator::Equal {
                (pass, fail)
            } else {
                (fail, pass)
            };
            let lo = e.jump(op::JEQ, vl, t, f)?;
            let lo = load(e, lo_off, lo);
            let hi = e.jump(op::JEQ, vh, lo, f)?;
            load(e, hi_off, hi)
        }
        Operator::GreaterThan
        | Operator::GreaterOrEqual
        | Operator::LessThan
        | Operator::LessOrEqual => {
            // Express everything as "x > v" or "x >= v", swapping targets for LT/LE.
            let (strict, t, f) = match c.op {
                Operator::GreaterThan => (true, pass, fail),
                Operator::GreaterOrEqual => (false, pass, fail),
                Operator::LessThan => (false, fail, pass),
                _ => (true, fail, pass),
            };
            if !strict && vl == 0 {
                // x >= (vh << 32) is decided by the high word alone.
                let hi = e.jump(op::JGE, vh, t, f)?;
                return Ok(load(e, hi_off, hi));
            }
            let lo = e.jump(if strict { op::JGT } else { op::JGE }, vl, t, f)?;
            let lo = load(e, lo_off, lo);
            let hi = if vh == u32::MAX {
                e.jump(op::JEQ, vh, lo, f)?
            } else if vh == 0 {
                e.jump(op::JGT, 0, t, lo)?
            } else {
                let eq = e.jump(op::JEQ, vh, lo, f)?;
                e.jump(op::JGT, vh, t, eq)?
            };
            load(e, hi_off, hi)
        }
        Operator::MaskedEqual => pass,
    })
}

fn emit_leaf(e: &mut Emitter, leaf: &Leaf, cache: &mut HashMap<Leaf, Target>) -> Result<Target> {
    match leaf {
        Leaf::Ret(a) => Ok(Target::Ret(a.ret())),
        Leaf::Args {
            rules,
            fallback,
            wide,
        } => {
            if let Some(t) = cache.get(leaf) {
                return Ok(*t);
            }
            let mut next = Target::Ret(fallback.ret());
            for rule in rules.iter().rev() {
                let mut entry = Target::Ret(rule.action.ret());
                for c in rule.conds.iter().rev() {
                    entry = emit_cond(e, c, *wide, entry, next)?;
                }
                next = entry;
                // A rule emits at most a few dozen instructions (at most six conditions after
                // runc's splitting, plus the multiplexer's), so checking per rule bounds the
                // overshoot.
                e.check_len()?;
            }
            cache.insert(leaf.clone(), next);
            Ok(next)
        }
    }
}

/// The search tree chosen for one section.
struct Tree {
    root: Vec<Vec<usize>>,
    jeq: Vec<Vec<bool>>,
}

fn emit_tree(
    e: &mut Emitter,
    ivs: &[Interval],
    tree: &Tree,
    i: usize,
    j: usize,
    cache: &mut HashMap<Leaf, Target>,
) -> Result<Target> {
    if i == j {
        return emit_leaf(e, &ivs[i].leaf, cache);
    }
    if tree.jeq[i][j] {
        let middle = emit_leaf(e, &ivs[i + 1].leaf, cache)?;
        let outer = emit_leaf(e, &ivs[i].leaf, cache)?;
        return e.jump(op::JEQ, ivs[i + 1].lo, middle, outer);
    }
    let k = tree.root[i][j];
    let right = emit_tree(e, ivs, tree, k, j, cache)?;
    let left = emit_tree(e, ivs, tree, i, k - 1, cache)?;
    e.jump(op::JGE, ivs[k].lo, right, left)
}

/// One `AUDIT_ARCH` section: its value and the number ranges of the ABIs it holds.
struct Section {
    audit: u32,
    parts: Vec<(u32, u32, Arch, bool)>, // lo, hi, abi, targeted
}

fn sections(arches: &[Arch]) -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    for &a in arches {
        let Some(audit) = a.audit_arch() else {
            continue;
        };
        if out.iter().any(|s| s.audit == audit) {
            continue;
        }
        let parts = if audit == crate::arch::AUDIT_ARCH_X86_64 {
            let (x86_64, x32) = (arches.contains(&Arch::X86_64), arches.contains(&Arch::X32));
            if x32 {
                vec![
                    (0, X32_SYSCALL_BIT - 1, Arch::X86_64, x86_64),
                    (X32_SYSCALL_BIT, u32::MAX, Arch::X32, true),
                ]
            } else {
                // Without x32, libseccomp sends x32 numbers to the bad-arch action but lets
                // nr -1 (a syscall skipped by a tracer) through to the default action.
                vec![
                    (0, X32_SYSCALL_BIT - 1, Arch::X86_64, true),
                    (X32_SYSCALL_BIT, u32::MAX - 1, Arch::X32, false),
                    (u32::MAX, u32::MAX, Arch::X86_64, true),
                ]
            }
        } else {
            vec![(0, u32::MAX, a, true)]
        };
        out.push(Section { audit, parts });
    }
    out
}

/// Compiles `profile` into a seccomp BPF program for `options.arches`.
///
/// The profile is first checked with [`crate::validate`] and a profile it refuses is refused
/// here with the same error (argument index above 5, errno out of range or on an action that
/// takes none, `SCMP_ACT_NOTIFY` as default, on `write` or without `listenerPath`, empty
/// names, ...), so no filter is ever built from a profile a runtime would reject. The options
/// must name at least one architecture, all supported, and a bad-arch errno within
/// `MAX_ERRNO`. A program longer than [`MAX_INSNS`] is [`Error::ProgramTooLarge`].
pub fn compile(profile: &Profile, options: &CompileOptions) -> Result<Program> {
    validate(profile)?;
    check_options(options)?;
    let arch_names = || {
        let names: Vec<&str> = options.arches.iter().map(|a| a.oci_name()).collect();
        names.join(",")
    };
    emit_program(profile, options).map_err(|err| match err {
        Error::ProgramTooLarge { len, stopped, .. } => Error::ProgramTooLarge {
            len,
            arches: arch_names(),
            stopped,
        },
        other => other,
    })
}

/// What `compile` needs from the options beyond the profile's own validation.
fn check_options(options: &CompileOptions) -> Result<()> {
    if options.arches.is_empty() {
        return Err(Error::CompileOptions {
            field: "arches",
            message: "no architecture given: every syscall would get the bad-arch action"
                .to_string(),
        });
    }
    for a in &options.arches {
        if !a.is_supported() {
            return Err(Error::UnsupportedArch {
                arch: a.oci_name().to_string(),
            });
        }
    }
    if let Some(mix) = &options.weights
        && !options.arches.contains(&mix.arch())
    {
        return Err(Error::CompileOptions {
            field: "weights",
            message: format!(
                "the syscall mix is for {}, which is not among the compiled architectures",
                mix.arch()
            ),
        });
    }
    if let Action::Errno(e) = options.bad_arch_action
        && u32::from(e) > MAX_ERRNO
    {
        return Err(Error::CompileOptions {
            field: "bad_arch_action",
            message: format!("errno value {e} out of range for SCMP_ACT_ERRNO (0-{MAX_ERRNO})"),
        });
    }
    Ok(())
}

/// Emits the program for checked inputs.
fn emit_program(profile: &Profile, options: &CompileOptions) -> Result<Program> {
    let default = profile.default_action.with_errno(profile.default_errno_ret);
    let bad = Target::Ret(options.bad_arch_action.ret());
    let mut e = Emitter::default();
    let mut next = bad;
    for section in sections(&options.arches).iter().rev() {
        let mut parts = Vec::new();
        let mut weights_ranges = Vec::new();
        // The ABI listed first (the native one, with `for_profile`) is what nearly every
        // process in the section calls; x32 shares the x86_64 section but is rarely used.
        let primary = options
            .arches
            .iter()
            .find(|a| section.parts.iter().any(|p| p.2 == **a && p.3))
            .copied();
        for &(lo, hi, abi, targeted) in &section.parts {
            if targeted {
                let leaves: BTreeMap<u32, Leaf> = arch_table(profile, abi, default)
                    .iter()
                    .map(|(nr, en)| (*nr, leaf_for(en, default, abi)))
                    .collect();
                parts.push((lo, hi, leaves, default));
                let range = syscalls::sweep_range(abi);
                if !weights_ranges.iter().any(|(r, _)| *r == range) {
                    let factor = if Some(abi) == primary {
                        1.0
                    } else {
                        SECONDARY_ABI_WEIGHT
                    };
                    weights_ranges.push((range, factor));
                }
            } else {
                parts.push((lo, hi, BTreeMap::new(), options.bad_arch_action));
            }
        }
        let ivs = intervals(&parts);
        let mix = options.weights.as_ref().and_then(|m| {
            section
                .parts
                .iter()
                .find(|&&(_, _, abi, targeted)| targeted && abi == m.arch())
                .map(|&(lo, hi, _, _)| (m, lo..=hi))
        });
        let weighted = mix.is_some();
        let model = WeightModel::new(weights_ranges, mix);
        let weights: Vec<f64> = ivs
            .iter()
            .map(|iv| model.weight(iv.lo, iv.hi) * leaf_factor(&iv.leaf, weighted))
            .collect();
        let triple: Vec<bool> = (0..ivs.len())
            .map(|i| {
                i + 2 < ivs.len()
                    && ivs[i].leaf == ivs[i + 2].leaf
                    && matches!(ivs[i].leaf, Leaf::Ret(_))
                    && ivs[i + 1].lo == ivs[i + 1].hi
            })
            .collect();
        // Every section's parts cover their whole number range, so there is at least one
        // interval; an empty list would be a compiler bug, reported rather than indexed.
        let Some(last) = ivs.len().checked_sub(1) else {
            return Err(Error::Bpf {
                message: "internal error: an architecture section without intervals".to_string(),
            });
        };
        let (root, jeq) = optimal_splits(&weights, &triple);
        let mut cache = HashMap::new();
        let tree = emit_tree(&mut e, &ivs, &Tree { root, jeq }, 0, last, &mut cache)?;
        let entry = match tree {
            Target::Ret(_) => tree,
            Target::Label(_) => e.stmt(Insn::load(data::NR), tree),
        };
        next = e.jump(op::JEQ, section.audit, entry, next)?;
    }
    e.stmt(Insn::load(data::ARCH), next);
    let mut insns = e.rev;
    insns.reverse();
    if insns.len() > MAX_INSNS {
        return Err(Error::ProgramTooLarge {
            len: insns.len(),
            arches: String::new(),
            stopped: false,
        });
    }
    Ok(Program { insns })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix(counts: &[(&str, u64)]) -> SyscallMix {
        SyscallMix::from_counts(Arch::X86_64, counts.iter().copied(), "test").unwrap()
    }

    #[test]
    fn uniform_model_weighs_swept_numbers() {
        let m = WeightModel::new(vec![(0..=9, 1.0), (100..=109, 0.5)], None);
        assert_eq!(m.weight(0, 9), 10.0);
        assert_eq!(m.weight(5, 104), 7.5);
        assert_eq!(m.weight(20, 50), 0.01);
    }

    #[test]
    fn mix_model_puts_the_counts_on_their_numbers_over_a_floor() {
        let swept = syscalls::sweep_range(Arch::X86_64);
        let n = f64::from(*swept.end()) + 1.0;
        let m = WeightModel::new(
            vec![(swept.clone(), 1.0)],
            Some((&mix(&[("read", 3), ("futex", 1)]), 0..=X32_SYSCALL_BIT - 1)),
        );
        let per = MIX_FLOOR / n;
        assert!((m.weight(0, 0) - (per + 0.75 * (1.0 - MIX_FLOOR))).abs() < 1e-12);
        assert!((m.weight(202, 202) - (per + 0.25 * (1.0 - MIX_FLOOR))).abs() < 1e-12);
        assert!((m.weight(1, 1) - per).abs() < 1e-12);
        // The whole swept range carries all the weight.
        assert!((m.weight(0, *swept.end()) - 1.0).abs() < 1e-9);
        assert!((m.weight(*swept.end() + 1, u32::MAX) - 0.01 * per).abs() < 1e-15);
        // Counts outside the section's part of the mix's ABI are not placed.
        let outside = WeightModel::new(
            vec![(swept, 1.0)],
            Some((&mix(&[("read", 1)]), 1..=X32_SYSCALL_BIT - 1)),
        );
        assert!((outside.weight(0, 0) - per).abs() < 1e-12);
    }

    #[test]
    fn refused_numbers_weigh_less_without_a_mix() {
        let allow = Leaf::Ret(Action::Allow);
        let log = Leaf::Ret(Action::Log);
        let deny = Leaf::Ret(Action::Errno(38));
        let kill = Leaf::Ret(Action::KillProcess);
        assert_eq!(leaf_factor(&allow, false), 1.0);
        assert_eq!(leaf_factor(&log, false), 1.0);
        assert_eq!(leaf_factor(&deny, false), REFUSED_WEIGHT);
        assert_eq!(leaf_factor(&kill, false), REFUSED_WEIGHT);
        assert_eq!(leaf_factor(&deny, true), 1.0);
        let args = Leaf::Args {
            rules: Vec::new(),
            fallback: Action::Errno(1),
            wide: true,
        };
        assert_eq!(leaf_factor(&args, false), 1.0);
    }

    #[test]
    fn weights_for_an_arch_not_compiled_are_refused() {
        let p = Profile::new(crate::action::ActionName::Allow);
        let opts = CompileOptions::arches(&[Arch::Aarch64]).with_weights(mix(&[("read", 1)]));
        let e = compile(&p, &opts).unwrap_err();
        assert_eq!(
            e.to_string(),
            "compile options: weights: the syscall mix is for SCMP_ARCH_X86_64, which is not \
             among the compiled architectures"
        );
    }

    #[test]
    fn a_hot_syscall_is_decided_near_the_root() {
        let p = Profile::from_json(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["read", "write", "close", "futex", "openat", "mmap", "getpid"],
                 "action": "SCMP_ACT_ALLOW"},
                {"names": ["futex_waitv"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}"#,
        )
        .unwrap();
        let hot = mix(&[("futex", 1000), ("read", 1)]);
        let plain = compile(&p, &CompileOptions::arches(&[Arch::X86_64])).unwrap();
        let tuned = compile(
            &p,
            &CompileOptions::arches(&[Arch::X86_64]).with_weights(hot),
        )
        .unwrap();
        let cost = |prog: &Program, nr: u32| {
            crate::interp::run(
                prog,
                &crate::analysis::seccomp_data(Arch::X86_64, nr, [0; 6]).unwrap(),
            )
            .unwrap()
        };
        // futex (202): ld arch, jeq, ld nr, at most two comparisons, ret.
        assert!(cost(&tuned, 202).executed <= 6, "{}", tuned.disasm());
        assert!(cost(&tuned, 202).executed < cost(&plain, 202).executed);
        for nr in syscalls::sweep_range(Arch::X86_64).chain([1000, u32::MAX]) {
            assert_eq!(cost(&tuned, nr).ret, cost(&plain, nr).ret, "nr {nr}");
        }
        // One `ret` per leaf: no instruction is a jump to a shared epilogue.
        assert!(tuned.insns.iter().all(|i| i.code != op::JMP | op::JA));
    }
}
