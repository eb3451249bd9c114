//! The crate's error type and the errno it carries.

use std::path::PathBuf;

use crate::probe::Revision;

pub use tph_abi::Errno;

/// Everything that can go wrong, in the terms of the person using TPH.
///
/// Variants that come from the kernel carry its errno; a caller's invalid argument (checked before
/// any call) is a separate variant without one.
///
/// ```
/// use tph_client::{Errno, Error};
/// let e = Error::NoSuchCpu { cpu: 99, errno: Errno::EINVAL };
/// assert_eq!(e.to_string(), "CPU 99 does not exist: EINVAL (22)");
/// assert_eq!(e.errno(), Some(Errno::EINVAL));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The probe found no kernel interface this client can speak.
    #[error("the kernel has no VFIO TPH interface this client can use (detected: {revision})")]
    NoInterface {
        /// What the probe found.
        revision: Revision,
    },
    /// The device has no TPH Requester capability, or TPH is off host-wide.
    #[error("the device has no usable TPH capability (no capability, or the host booted with pci=notph): {errno}")]
    NoTph {
        /// The kernel's errno (ENODEV).
        errno: Errno,
    },
    /// The kernel found no root port to ask firmware through (a Root Complex integrated
    /// endpoint, for the mainline core).
    #[error("the kernel found no root port to query firmware steering tags through (Root Complex integrated endpoint?): {errno}")]
    NoRootPort {
        /// The kernel's errno (ENODEV).
        errno: Errno,
    },
    /// DS mode is gated off by the module parameter (named after the kernel revision: v7's
    /// `enable_unsafe_tph_ds_mode`, the feature revision's `enable_unsafe_tph`).
    #[error("DS mode is disabled on this host (vfio-pci {param}=0): {errno}")]
    DsDisabled {
        /// The kernel's errno (EOPNOTSUPP).
        errno: Errno,
        /// The vfio-pci module parameter that gates it on this kernel revision.
        param: &'static str,
    },
    /// The feature revision's `enable_unsafe_tph` is off: it gates all of TPH on that revision
    /// (enabling through Control is refused), not only DS mode.
    #[error("TPH is disabled on this host (vfio-pci {param}=0): {errno}")]
    TphDisabled {
        /// The kernel's errno (EOPNOTSUPP).
        errno: Errno,
        /// The vfio-pci module parameter that gates it.
        param: &'static str,
    },
    /// `VFIO_DEVICE_FEATURE` PROBE (or a call) says the TPH_ST feature is not there under this
    /// number: `enable_unsafe_tph` off, no usable TPH capability, or a kernel that numbered the
    /// feature differently (see `TphDevice::with_feature_number`).
    #[error("this kernel has no VFIO TPH interface for this device: VFIO_DEVICE_FEATURE {feature} (TPH_ST) answered {errno} (a kernel without the vfio-pci TPH series, vfio-pci {param}=0, no usable TPH capability, or a kernel that numbers the feature differently)")]
    FeatureUnavailable {
        /// The feature number asked for.
        feature: u32,
        /// The vfio-pci module parameter that gates the feature.
        param: &'static str,
        /// The kernel's errno (ENOTTY).
        errno: Errno,
    },
    /// TPH is already on; disable it first.
    #[error("TPH is already enabled on this device: {errno}")]
    AlreadyEnabled {
        /// The kernel's errno (EBUSY).
        errno: Errno,
    },
    /// The device or the path to the root complex does not allow this mode.
    #[error("the device cannot enable TPH in {mode} mode (mode not supported by the device, or the root port has no TPH completer): {errno}")]
    CannotEnable {
        /// The mode asked for.
        mode: crate::Mode,
        /// The kernel's errno (EINVAL).
        errno: Errno,
    },
    /// An op that needs TPH enabled (in a given mode) was issued without it.
    #[error("TPH is not enabled{}: {errno}", if *.ds_needed { " in DS mode" } else { "" })]
    NotEnabled {
        /// The op needs DS mode specifically (GET_ST).
        ds_needed: bool,
        /// The kernel's errno (EINVAL).
        errno: Errno,
    },
    /// A CPU id names no present CPU.
    #[error("CPU {cpu} does not exist: {errno}")]
    NoSuchCpu {
        /// The CPU asked for.
        cpu: u32,
        /// The kernel's errno (EINVAL).
        errno: Errno,
    },
    /// A steering table index is beyond the table.
    #[error("steering table index {index} is beyond the table ({size} entries): {errno}")]
    IndexOutOfRange {
        /// The index asked for.
        index: u16,
        /// The table size reported by GET_CAP.
        size: u16,
        /// The kernel's errno (EINVAL).
        errno: Errno,
    },
    /// The device has no steering table the kernel can program.
    #[error("the device has no steering table in its TPH capability or MSI-X table: {errno}")]
    NoTable {
        /// The kernel's errno (ENODEV).
        errno: Errno,
    },
    /// IV mode with the table in MSI-X needs the vector enabled first.
    #[error("MSI-X vector {} is not enabled: {errno}", .vector.map_or_else(|| "of this batch".to_string(), |v| v.to_string()))]
    VectorNotEnabled {
        /// The vector, when the client can tell which one.
        vector: Option<u16>,
        /// The kernel's errno (ENXIO).
        errno: Errno,
    },
    /// Any other refusal, with the op it came from.
    #[error("the kernel refused {op}: {errno}")]
    Kernel {
        /// Name of the op.
        op: &'static str,
        /// The kernel's errno.
        errno: Errno,
    },
    /// The caller asked for something invalid before anything was sent.
    #[error("invalid request")]
    InvalidArgument(#[from] crate::abi::AbiError),
    /// A queue id that was never bound.
    #[error("queue {0} is not bound to any CPU")]
    UnknownQueue(u16),
    /// `/dev/vfio` (or the VFIO container) is missing.
    #[error("{} does not exist: VFIO is not loaded (fix: modprobe vfio-pci)", .path.display())]
    NoVfio {
        /// The path looked for.
        path: PathBuf,
    },
    /// The kernel offers the device cdev but has no iommufd to bind it to.
    #[error("{} does not exist: the kernel has no iommufd (CONFIG_IOMMUFD), which the VFIO device cdev needs", .path.display())]
    NoIommufd {
        /// The path looked for (`/dev/iommu`).
        path: PathBuf,
    },
    /// The VFIO device cdev was asked for but the kernel offers none for this device.
    #[error("device {bdf} has no VFIO device cdev in {}: the kernel is built without CONFIG_VFIO_DEVICE_CDEV (the legacy container and group interface does not need it)", .path.display())]
    NoVfioCdev {
        /// The BDF.
        bdf: crate::Bdf,
        /// The directory looked in (`/dev/vfio/devices`).
        path: PathBuf,
    },
    /// No PCI function with this address.
    #[error("no PCI device {bdf} in {} (lspci -D lists the functions there are)", .path.display())]
    NoSuchDevice {
        /// The BDF asked for.
        bdf: crate::Bdf,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The device is bound to another driver (or none).
    #[error("device {bdf} is not bound to vfio-pci (driver: {}) (fix: {})", .driver.as_deref().unwrap_or("none"), bind_fix(.bdf, .driver.as_deref()))]
    NotBoundToVfio {
        /// The BDF.
        bdf: crate::Bdf,
        /// Its current driver.
        driver: Option<String>,
    },
    /// The device is in no IOMMU group: the kernel runs without an IOMMU.
    #[error("device {bdf} is in no IOMMU group: the kernel runs without an IOMMU (fix: enable VT-d or AMD-Vi in firmware and boot with intel_iommu=on or amd_iommu=on)")]
    NoIommu {
        /// The BDF.
        bdf: crate::Bdf,
    },
    /// The VFIO container has no IOMMU driver (`VFIO_CHECK_EXTENSION` answers 0 for type1v2 and
    /// type1): `vfio_iommu_type1` is not loaded.
    #[error("the VFIO container has no IOMMU driver: vfio_iommu_type1 is not loaded (fix: modprobe vfio_iommu_type1)")]
    NoIommuType1,
    /// Another device of the IOMMU group is in use by a host driver.
    #[error("IOMMU group {group} of {bdf} is not viable: {} (fix: {})", group_users(.users), unbind_fix(.users))]
    GroupNotViable {
        /// The BDF.
        bdf: crate::Bdf,
        /// The group number.
        group: String,
        /// Other devices of the group and the host driver each is bound to.
        users: Vec<(String, String)>,
    },
    /// The kernel answered a TPH call with ENOTTY: it has no such interface.
    #[error("this kernel has no VFIO TPH interface: it answered the {revision} call with {errno} (a kernel with the vfio-pci TPH series for this revision is needed)")]
    NoTphInterface {
        /// The revision whose call was sent.
        revision: Revision,
        /// The kernel's errno (ENOTTY).
        errno: Errno,
    },
    /// Opening a VFIO node was refused.
    #[error("permission denied opening {}: this user may not open it (fix: sudo chown $USER {})", .path.display(), .path.display())]
    PermissionDenied {
        /// The node.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be read or opened.
    #[error("cannot open {}", .path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A step of the VFIO opening sequence was refused by the kernel.
    #[error("VFIO set-up failed at {step}: {errno}")]
    VfioSetup {
        /// The ioctl that was refused.
        step: &'static str,
        /// The kernel's errno.
        errno: Errno,
    },
    /// The VFIO container speaks another API version than the one this client knows (0).
    #[error("the VFIO container reports API version {version}, not 0")]
    VfioApiVersion {
        /// What `VFIO_GET_API_VERSION` answered.
        version: i32,
    },
    /// A call answered fewer results than were asked for (a tag per CPU, a placement per
    /// queue): said instead of made up.
    #[error("{op} answered {answered} of the {asked} results asked for")]
    ShortAnswer {
        /// The call.
        op: &'static str,
        /// Results asked for.
        asked: usize,
        /// Results answered.
        answered: usize,
    },
    /// The kernel answered a steering tag wider than the 16 bits a tag has (PCIe gives 8 or 16):
    /// said instead of cut to its low bits.
    #[error("{op} answered tag {tag:#x}, wider than the 16 bits of a steering tag")]
    WideTag {
        /// The call.
        op: &'static str,
        /// The tag as answered.
        tag: u32,
    },
    /// A queue id was bound twice in one steering set.
    #[error("queue {0} is bound more than once")]
    DuplicateQueue(u16),
    /// Two queues were given the same steering table slot.
    #[error("steering table slot {0} is given to more than one queue")]
    DuplicateSlot(u16),
    /// `0xFFFFFFFF` is the ABI's "clear this entry" value, never a CPU.
    #[error("CPU {0:#x} is the ABI's clear-entry value, not a CPU (use clear_entries)")]
    ClearValueAsCpu(u32),
    /// A name that is none of the values of a `FromStr` type ([`crate::Mode`], [`crate::Revision`],
    /// [`crate::open::VfioInterface`]).
    #[error("unknown {kind} {text:?} ({expected})")]
    UnknownName {
        /// What was being named (`mode`, `kernel revision`, `VFIO interface`).
        kind: &'static str,
        /// The text offered, cut to its first 40 characters.
        text: String,
        /// The names there are.
        expected: &'static str,
    },
    /// A backend operation other than the TPH ioctl failed (reset, interrupts, config read).
    #[error("{op} failed: {errno}")]
    Backend {
        /// What was being done.
        op: &'static str,
        /// The errno.
        errno: Errno,
    },
}

impl Error {
    /// An [`Error::UnknownName`], with `text` cut to 40 characters.
    pub(crate) fn unknown_name(kind: &'static str, text: &str, expected: &'static str) -> Self {
        Error::UnknownName {
            kind,
            text: text.chars().take(40).collect(),
            expected,
        }
    }

    /// The kernel errno behind this error, if it came from the kernel.
    ///
    /// ```
    /// let e = tph_client::Error::Kernel { op: "GET_CAP", errno: tph_client::Errno(19) };
    /// assert_eq!(e.errno().map(|e| e.name()), Some("ENODEV"));
    /// ```
    pub fn errno(&self) -> Option<Errno> {
        use Error::*;
        match self {
            NoTph { errno }
            | NoRootPort { errno }
            | DsDisabled { errno, .. }
            | TphDisabled { errno, .. }
            | FeatureUnavailable { errno, .. }
            | AlreadyEnabled { errno }
            | CannotEnable { errno, .. }
            | NotEnabled { errno, .. }
            | NoSuchCpu { errno, .. }
            | IndexOutOfRange { errno, .. }
            | NoTable { errno }
            | VectorNotEnabled { errno, .. }
            | NoTphInterface { errno, .. }
            | Kernel { errno, .. }
            | Backend { errno, .. } => Some(*errno),
            VfioSetup { errno, .. } => Some(*errno),
            PermissionDenied { source, .. } | Io { source, .. } => Some(Errno::from_io(source)),
            NoInterface { .. }
            | InvalidArgument(_)
            | UnknownQueue(_)
            | ShortAnswer { .. }
            | WideTag { .. }
            | NoVfio { .. }
            | NoIommufd { .. }
            | NoVfioCdev { .. }
            | NoSuchDevice { .. }
            | NotBoundToVfio { .. }
            | VfioApiVersion { .. }
            | NoIommu { .. }
            | NoIommuType1
            | GroupNotViable { .. }
            | DuplicateQueue(_)
            | DuplicateSlot(_)
            | ClearValueAsCpu(_)
            | UnknownName { .. } => None,
        }
    }
}

/// The commands that bind `bdf` to vfio-pci from `driver` (or from none).
fn bind_fix(bdf: &crate::Bdf, driver: Option<&str>) -> String {
    let bind = format!(
        "echo vfio-pci > /sys/bus/pci/devices/{bdf}/driver_override; echo {bdf} > /sys/bus/pci/drivers_probe"
    );
    match driver {
        Some(d) => format!("echo {bdf} > /sys/bus/pci/drivers/{d}/unbind; {bind}"),
        None => bind,
    }
}

fn group_users(users: &[(String, String)]) -> String {
    if users.is_empty() {
        return "another device in it is in use by a host driver".to_string();
    }
    let list: Vec<String> = users
        .iter()
        .map(|(bdf, driver)| format!("{bdf} is bound to {driver}"))
        .collect();
    format!("in the same group {}", list.join(", "))
}

fn unbind_fix(users: &[(String, String)]) -> String {
    if users.is_empty() {
        return "unbind the group's other devices from their host drivers".to_string();
    }
    let list: Vec<String> = users
        .iter()
        .map(|(bdf, driver)| format!("echo {bdf} > /sys/bus/pci/drivers/{driver}/unbind"))
        .collect();
    list.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source is printed once: by whoever walks `source()`, never in the error's own message.
    #[test]
    fn io_source_is_reachable_and_not_repeated() {
        let e = Error::Io {
            path: "/dev/vfio/7".into(),
            source: std::io::Error::from_raw_os_error(libc::ENOENT),
        };
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(e.to_string(), "cannot open /dev/vfio/7");
        assert!(source.is_some_and(|s| s.contains("No such file")));
        let abi = Error::from(crate::abi::AbiError::BadCount(0));
        assert_eq!(abi.to_string(), "invalid request");
        assert!(std::error::Error::source(&abi).is_some());
    }

    #[test]
    fn unknown_names_are_typed_and_cut() {
        let long = "x".repeat(100);
        match long.parse::<crate::Mode>() {
            Err(Error::UnknownName { kind, text, .. }) => {
                assert_eq!((kind, text.len()), ("mode", 40));
            }
            other => panic!("{other:?}"),
        }
        let e = "nope".parse::<crate::Revision>().map(|_| ()).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"unknown kernel revision "nope" (v7, feature, unknown)"#
        );
    }

    #[test]
    fn vector_not_enabled_message_names_vector() {
        let e = Error::VectorNotEnabled {
            vector: Some(5),
            errno: Errno(libc::ENXIO),
        };
        assert_eq!(e.to_string(), "MSI-X vector 5 is not enabled: ENXIO (6)");
    }

    #[test]
    fn ds_disabled_message_names_module_parameter() {
        let e = Error::DsDisabled {
            errno: Errno(libc::EOPNOTSUPP),
            param: crate::probe::V7_PARAM,
        };
        assert!(e.to_string().contains("enable_unsafe_tph_ds_mode=0"));
        let e = Error::DsDisabled {
            errno: Errno(libc::EOPNOTSUPP),
            param: crate::probe::FEATURE_PARAM,
        };
        assert!(e.to_string().contains("(vfio-pci enable_unsafe_tph=0)"));
    }
}
