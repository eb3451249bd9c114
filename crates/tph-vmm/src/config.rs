//! What the VMM tells the VM layer, and what the layer computes from the host device: the
//! virtual capability the guest reads and the virtual root port's completer bits.

use tph_client::Capabilities;
use tph_regs::tph::{
    negotiate, CompleterSupport, ReqEnable, StLocation, TphCapability, Upstream, TPH_CAP_TABLE_MAX,
};

use crate::error::Error;
use crate::vtag::TagSpace;

/// The VMM's configuration of one passed-through device.
///
/// `#[non_exhaustive]`: start from [`VmConfig::new`] and set what differs with the `with_*`
/// methods; the fields stay public to read and to assign.
///
/// ```
/// use tph_vmm::VmConfig;
/// let cfg = VmConfig::new(4).with_pins(&[(0, 2), (1, 3)]).unwrap();
/// assert_eq!(cfg.pins, vec![Some(2), Some(3), None, None]);
/// ```
///
/// A struct literal does not compile outside this crate:
///
/// ```compile_fail,E0639
/// use tph_regs::tph::{CompleterSupport, Upstream};
/// let cfg = tph_vmm::VmConfig {
///     pins: vec![None],
///     uids: vec![0],
///     host_upstream: Upstream::RootPort(CompleterSupport::Tph),
///     unsafe_ds: false,
/// };
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VmConfig {
    /// Host CPU each vCPU is pinned to (index = vCPU); `None`: not pinned.
    pub pins: Vec<Option<u32>>,
    /// ACPI processor UID of each vCPU in the guest's MADT (index = vCPU).
    pub uids: Vec<u32>,
    /// What sits above the device on the host: a root port and its DevCap2 completer field,
    /// or a Root Complex integrated endpoint. The VMM reads it from sysfs; it caps what the
    /// guest path may enable (TPH only, or extended TPH).
    pub host_upstream: Upstream,
    /// The explicit unsafe option: expose Device Specific mode (when the host allows it).
    /// Tags the guest places in device-specific locations reach the device untranslated, so
    /// the pinning is fixed while it is set.
    pub unsafe_ds: bool,
}

impl VmConfig {
    /// `vcpus` unpinned vCPUs with UID = index, below a root port completing TPH only, without
    /// the unsafe DS option.
    ///
    /// ```
    /// use tph_regs::tph::{CompleterSupport, Upstream};
    /// let cfg = tph_vmm::VmConfig::new(2);
    /// assert_eq!((cfg.pins, cfg.uids), (vec![None, None], vec![0, 1]));
    /// assert_eq!(cfg.host_upstream, Upstream::RootPort(CompleterSupport::Tph));
    /// assert!(!cfg.unsafe_ds);
    /// ```
    pub fn new(vcpus: u32) -> Self {
        Self {
            pins: vec![None; vcpus as usize],
            uids: (0..vcpus).collect(),
            host_upstream: Upstream::RootPort(CompleterSupport::Tph),
            unsafe_ds: false,
        }
    }

    /// The guest MADT's processor UID of each vCPU (index = vCPU), where they are not the
    /// vCPU index.
    ///
    /// ```
    /// let cfg = tph_vmm::VmConfig::new(2).with_uids(vec![10, 11]);
    /// assert_eq!(cfg.uids, [10, 11]);
    /// ```
    #[must_use]
    pub fn with_uids(mut self, uids: Vec<u32>) -> Self {
        self.uids = uids;
        self
    }

    /// What sits above the device on the host, as the VMM read it from sysfs.
    ///
    /// ```
    /// use tph_regs::tph::{CompleterSupport, Upstream};
    /// let up = Upstream::RootPort(CompleterSupport::TphAndExt);
    /// assert_eq!(tph_vmm::VmConfig::new(2).with_host_upstream(up).host_upstream, up);
    /// ```
    #[must_use]
    pub fn with_host_upstream(mut self, upstream: Upstream) -> Self {
        self.host_upstream = upstream;
        self
    }

    /// The explicit unsafe option: expose Device Specific mode (when the host allows it).
    ///
    /// ```
    /// assert!(tph_vmm::VmConfig::new(2).with_unsafe_ds(true).unsafe_ds);
    /// ```
    #[must_use]
    pub fn with_unsafe_ds(mut self, unsafe_ds: bool) -> Self {
        self.unsafe_ds = unsafe_ds;
        self
    }

    /// Pins each `(vcpu, host_cpu)` pair.
    pub fn with_pins(mut self, pins: &[(u32, u32)]) -> Result<Self, Error> {
        let vcpus = self.vcpus();
        for &(v, cpu) in pins {
            if cpu == tph_abi::CPU_CLEAR {
                return Err(Error::ClearValueAsCpu(cpu));
            }
            let slot = self
                .pins
                .get_mut(v as usize)
                .ok_or(Error::NoSuchVcpu { vcpu: v, vcpus })?;
            *slot = Some(cpu);
        }
        Ok(self)
    }

    /// The number of vCPUs.
    pub fn vcpus(&self) -> u32 {
        u32::try_from(self.pins.len()).unwrap_or(u32::MAX)
    }

    pub(crate) fn tag_space(&self) -> Result<TagSpace, Error> {
        TagSpace::new(self.vcpus()).ok_or(Error::VcpuCount(self.vcpus()))
    }
}

/// What the guest sees, computed once from the host device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct VirtualCap {
    /// The Capability register the guest reads.
    pub cap: TphCapability,
    /// The TPH Completer field of the guest's root port.
    pub completer: CompleterSupport,
    /// ST table entries the guest can write (in the capability, or MSI-X vectors).
    pub entries: u16,
}

impl VirtualCap {
    /// A virtual capability as given (a VMM restoring one it computed before; normally
    /// [`VirtualCap::compute`]).
    ///
    /// ```
    /// use tph_regs::tph::{CompleterSupport, TphCapability};
    /// let cap = TphCapability::from_bits(0x0003_0203);
    /// let v = tph_vmm::VirtualCap::new(cap, CompleterSupport::Tph, 4);
    /// assert_eq!((v.cap, v.completer, v.entries), (cap, CompleterSupport::Tph, 4));
    /// ```
    pub fn new(cap: TphCapability, completer: CompleterSupport, entries: u16) -> Self {
        Self {
            cap,
            completer,
            entries,
        }
    }

    /// The virtual capability: No-ST always (the PCIe spec makes it mandatory), IV when the
    /// host offers it, DS only with the unsafe option and a host allowing DS; extended TPH
    /// only when the host path completes it; table location and size as the host has them.
    pub fn compute(
        host: &TphCapability,
        offered: &Capabilities,
        upstream: Upstream,
        unsafe_ds: bool,
        msix_vectors: u16,
    ) -> Self {
        let path = negotiate(host, upstream).ok();
        let ext = host.ext && path == Some(ReqEnable::ExtTph);
        let completer = match path {
            Some(ReqEnable::ExtTph) => CompleterSupport::TphAndExt,
            Some(ReqEnable::Tph) => CompleterSupport::Tph,
            // No path, or a reserved completer value: the guest gets no completer.
            _ => CompleterSupport::None,
        };
        let mut cap = *host;
        cap.no_st = true;
        cap.iv = offered.iv;
        cap.ds = offered.ds && unsafe_ds;
        cap.ext = ext;
        cap.other_bits = 0;
        let entries = match host.location {
            StLocation::Capability => host.table_size.min(TPH_CAP_TABLE_MAX),
            StLocation::MsiX => msix_vectors,
            _ => 0,
        };
        Self {
            cap,
            completer,
            entries,
        }
    }

    /// The guest's root port Device Capabilities 2: `devcap2` with bits 13:12 replaced by the
    /// completer field.
    ///
    /// ```
    /// use tph_regs::tph::{CompleterSupport, TphCapability};
    /// # let cap = TphCapability::from_bits(0);
    /// let v = tph_vmm::VirtualCap::new(cap, CompleterSupport::Tph, 0);
    /// assert_eq!(v.root_port_devcap2(0xffff_ffff), 0xffff_dfff);
    /// ```
    pub fn root_port_devcap2(&self, devcap2: u32) -> u32 {
        (devcap2 & !(3 << 12)) | u32::from(self.completer.field()) << 12
    }

    /// Bytes of the capability the guest sees (header, Capability, Control, table).
    pub fn len(&self) -> u16 {
        match self.cap.location {
            StLocation::Capability => 0xc + 2 * self.entries,
            _ => 0xc,
        }
    }

    /// Never empty: the three registers are always there.
    pub fn is_empty(&self) -> bool {
        false
    }
}
