//! The crate's error type.

/// What went wrong in the VM layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The host device has no TPH Requester capability in its configuration space.
    #[error("the host device has no TPH Requester capability")]
    NoTphCapability,
    /// A VM needs 1..=65535 vCPUs (every VM tag must fit 16 bits).
    #[error("a VM with {0} vCPUs cannot be given virtual tags (1..=65535)")]
    VcpuCount(u32),
    /// The pinning names a vCPU the VM does not have.
    #[error("vCPU {vcpu} does not exist (the VM has {vcpus})")]
    NoSuchVcpu {
        /// The vCPU asked for.
        vcpu: u32,
        /// vCPUs of the VM.
        vcpus: u32,
    },
    /// The guest's ST table has no such entry.
    #[error("ST entry {index} does not exist: the guest's table has {entries} entries")]
    NoSuchEntry {
        /// The index asked for.
        index: u16,
        /// Entries of the table.
        entries: u16,
    },
    /// `0xFFFFFFFF` is the kernel ABI's clear value, never a host CPU.
    #[error("host CPU {0:#x} is the ABI's clear-entry value, not a CPU")]
    ClearValueAsCpu(u32),
    /// Device Specific mode was exposed with the unsafe option, which fixes the pinning.
    #[error("the pinning is fixed while Device Specific mode is exposed to the guest")]
    FixedPinning,
    /// The host device is in IV mode for the guest: DS tags cannot be queried now.
    #[error("the host device is in IV mode for the guest: DS steering tags cannot be queried now")]
    HostModeBusy,
    /// A host call through the client failed.
    #[error("host {op} failed")]
    Host {
        /// What the VM layer asked the host for.
        op: &'static str,
        /// The client's error (with the kernel's errno).
        #[source]
        source: tph_client::Error,
    },
    /// Saved migration state could not be decoded.
    #[error("migration state: {0}")]
    StateFormat(&'static str),
    /// Saved migration state is from a guest that saw another virtual device.
    #[error("migration state does not fit this device: {0}")]
    StateMismatch(String),
}

impl Error {
    /// Wraps a client error with what was being done.
    pub(crate) fn host(op: &'static str) -> impl FnOnce(tph_client::Error) -> Self {
        move |source| Error::Host { op, source }
    }

    /// The kernel errno behind this error, if a host call failed with one.
    ///
    /// ```
    /// let e = tph_vmm::Error::FixedPinning;
    /// assert_eq!(e.errno(), None);
    /// ```
    pub fn errno(&self) -> Option<tph_client::Errno> {
        match self {
            Error::Host { source, .. } => source.errno(),
            _ => None,
        }
    }
}
