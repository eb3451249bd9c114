//! Why a command line was refused.

use crate::quote;

/// Why a line of `session` or `vm` input (or a `--pin` list) is not a command. Each message
/// quotes at most the first 40 characters of what it refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A line without a word.
    #[error("empty line")]
    Empty,
    /// The first word is no command of the language; `known` lists them.
    #[error("unknown command {} ({known})", quote(.name))]
    UnknownCommand {
        /// The first word.
        name: String,
        /// The commands of the language.
        known: &'static str,
    },
    /// Arguments after a command that takes none.
    #[error("{cmd} takes no arguments")]
    TakesNoArguments {
        /// The command.
        cmd: &'static str,
    },
    /// A command without the argument it needs.
    #[error("{cmd} needs at least one argument")]
    NeedsArguments {
        /// The command.
        cmd: &'static str,
    },
    /// The wrong number of arguments; the command's usage.
    #[error("usage: {0}")]
    Usage(&'static str),
    /// A word that is not a number (decimal, or hex after `0x`) of the field's range.
    #[error("bad {what} {}", quote(.text))]
    BadNumber {
        /// The field (`CPU`, `index`, `vector count`, ...).
        what: &'static str,
        /// The word.
        text: String,
    },
    /// A memory type other than `vm` and `pm`.
    #[error("bad memory type {} (vm or pm)", quote(.0))]
    BadMemType(String),
    /// A mode the command does not know; `known` lists the modes.
    #[error("unknown mode {} ({known})", quote(.text))]
    UnknownMode {
        /// The word.
        text: String,
        /// The modes of the command.
        known: &'static str,
    },
    /// A `set-st` entry without `=`.
    #[error("bad entry {} (INDEX=CPU[:vm|pm])", quote(.0))]
    BadEntry(String),
    /// `set-st INDEX=0xffffffff`: the ABI's clear marker, not a CPU.
    #[error(
        "CPU {:#x} is not a CPU (it is the ABI's clear marker): to clear entry {index}, use \
         `clear {index}`",
        u32::MAX
    )]
    ClearMarker {
        /// The entry.
        index: u16,
    },
    /// Hex bytes with an odd number of digits, or none.
    #[error("{cmd} needs an even number of hex digits")]
    OddHex {
        /// The command.
        cmd: &'static str,
    },
    /// Hex bytes with something else than a hex digit.
    #[error("bad hex byte at {at}")]
    BadHex {
        /// Offset of the pair in the joined digits.
        at: usize,
    },
    /// A `cfg-read` length outside 1 to 4096.
    #[error("bad length {} (1 to {max})", quote(.text))]
    BadLength {
        /// The word.
        text: String,
        /// The largest length.
        max: usize,
    },
    /// More MSI-X vectors than a function can have.
    #[error("irqs {0}: more than {max} vectors (the MSI-X limit)", max = crate::MAX_VECTORS)]
    TooManyVectors(u32),
    /// A `write` tag wider than an ST entry.
    #[error("tag {0:#x} does not fit 16 bits")]
    WideTag(u64),
    /// A `VCPU:PCPU` pair without the `:`.
    #[error("{} is not VCPU:PCPU", quote(.0))]
    NotAPin(String),
    /// A `--pin` vCPU at or past the largest VM.
    #[error("vCPU {vcpu} is beyond the largest VM ({max} vCPUs, KVM's limit)")]
    VcpuBeyondLimit {
        /// The vCPU.
        vcpu: u32,
        /// The most vCPUs of a VM.
        max: u32,
    },
    /// A `--pin` host CPU the host does not have.
    #[error(
        "host CPU {cpu} is not present (the emulated host has {host_cpus} CPUs, 0-{}; --cpus N \
         gives it more)",
        .host_cpus.saturating_sub(1)
    )]
    NoHostCpu {
        /// The host CPU.
        cpu: u32,
        /// The host's present CPUs.
        host_cpus: u32,
    },
    /// A vCPU named twice in `--pin`.
    #[error("vCPU {0} is pinned twice")]
    PinnedTwice(u32),
}
