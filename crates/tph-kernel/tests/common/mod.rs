//! Shared fixture builder for the conformance and scenario tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::sync::Arc;

use tph_acpi::{StInfo, SteeringTagSource, TableSource};
use tph_kernel::hw::{Access, Violation};
use tph_kernel::vfio::abi::{self, TphEntry as Entry};
use tph_kernel::{DeviceFd, Errno, Host, HostOptions, VfioDevice};
use tph_regs::machine::Bdf;

/// Default machine: NIC with the ST table in MSI-X (2048), ext TPH, root port TPH+ExtTPH.
pub const MSIX_DEV: &str = "01:00.0";
/// Default machine: NIC with a 16-entry table in the capability, ext-capable, but its root
/// port completes TPH only (so 8-bit tags).
pub const CAP_DEV: &str = "02:00.0";
/// Default machine: DS-only accelerator without a table.
pub const DS_ONLY_DEV: &str = "03:00.0";
/// Default machine: NIC below a root port without TPH completer.
pub const NO_COMPLETER_DEV: &str = "04:00.0";
/// Default machine: RCiEP with an 8-entry table in the capability, ext TPH.
pub const RCIEP_DEV: &str = "00:05.0";
/// Default machine: RCiEP without TPH.
pub const NO_TPH_DEV: &str = "00:06.0";

pub fn bdf(s: &str) -> Bdf {
    s.parse().expect("test BDF")
}

/// A host, one taken-over device, and one open fd.
pub struct Fixture {
    pub host: Host,
    pub dev: VfioDevice,
    pub fd: DeviceFd,
}

impl Fixture {
    /// `bdf` of the default machine with `opts`.
    pub fn with(bdf_s: &str, opts: HostOptions) -> Self {
        let host = Host::with_default_machine(opts);
        Self::on(host, bdf_s)
    }

    /// `bdf` of the default machine, default options.
    pub fn new(bdf_s: &str) -> Self {
        Self::with(bdf_s, HostOptions::default())
    }

    /// `bdf` of the default machine with `enable_unsafe_tph_ds_mode` set.
    pub fn unsafe_ds(bdf_s: &str) -> Self {
        Self::with(bdf_s, unsafe_opts())
    }

    /// `bdf` of `host`.
    pub fn on(host: Host, bdf_s: &str) -> Self {
        let dev = host.take_over(bdf(bdf_s)).expect("take over");
        let fd = dev.open().expect("open");
        dev.drain_trace();
        Self { host, dev, fd }
    }

    pub fn op(&self, op: u32, payload: [u8; 8]) -> Result<i32, Errno> {
        let mut arg = abi::encode_op(op, payload);
        self.fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut arg)
    }

    pub fn enable(&self, mode: u8) -> Result<i32, Errno> {
        self.op(abi::OP_ENABLE, [mode, 0, 0, 0, 0, 0, 0, 0])
    }

    pub fn disable(&self) -> Result<i32, Errno> {
        self.op(abi::OP_DISABLE, [0; 8])
    }

    /// GET_CAP: (supported_modes, st_table_sz).
    pub fn get_cap(&self) -> Result<(u8, u16), Errno> {
        let mut arg = abi::encode_op(abi::OP_GET_CAP, [0; 8]);
        self.fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut arg)?;
        Ok((arg[8], u16::from_le_bytes([arg[10], arg[11]])))
    }

    pub fn set_st(&self, entries: &[Entry]) -> Result<i32, Errno> {
        let mut arg = abi::encode_st_raw(abi::OP_SET_ST, entries);
        self.fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut arg)
    }

    /// GET_ST for (cpu, mem_type) pairs; the tags.
    pub fn get_st(&self, cpus: &[(u32, u8)]) -> Result<Vec<u16>, Errno> {
        let entries: Vec<Entry> = cpus.iter().map(|(c, m)| Entry::new(*c, *m, 0)).collect();
        let mut arg = abi::encode_st_raw(abi::OP_GET_ST, &entries);
        self.fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut arg)?;
        Ok(st_fields(&arg))
    }

    pub fn control(&self) -> u32 {
        self.dev.snapshot().control.expect("TPH capability")
    }

    pub fn table(&self) -> Vec<u16> {
        self.dev.snapshot().st_table
    }

    pub fn trace(&self) -> Vec<Access> {
        self.dev.drain_trace()
    }

    pub fn violations(&self) -> Vec<Violation> {
        self.dev.violations()
    }

    /// Hardware writes in the trace since the last drain.
    pub fn hw_writes(&self) -> Vec<Access> {
        self.trace()
            .into_iter()
            .filter(|a| matches!(a, Access::ConfigWrite { .. } | Access::MsixWrite { .. }))
            .collect()
    }
}

/// The `st` field of every entry of a GET_ST argument.
pub fn st_fields(arg: &[u8]) -> Vec<u16> {
    arg.get(16..)
        .unwrap_or(&[])
        .chunks_exact(12)
        .map(|e| u16::from_le_bytes([e[8], e[9]]))
        .collect()
}

pub fn unsafe_opts() -> HostOptions {
    HostOptions::new().with_unsafe_ds(true)
}

pub fn firmware(source: impl SteeringTagSource + 'static) -> Arc<dyn SteeringTagSource> {
    Arc::new(source)
}

/// A firmware table that answers only the given UIDs.
pub fn table_firmware(rows: &[(u32, u64)]) -> Arc<dyn SteeringTagSource> {
    let map = rows.iter().map(|(u, v)| (*u, StInfo(*v))).collect();
    firmware(TableSource::from_map(map))
}

/// The documented default `_DSM` result for `uid` (what the default host answers).
pub fn default_info(uid: u32) -> StInfo {
    TableSource::default_st_info(uid)
}

/// TPH Control value: mode in 2:0, requester enable in 9:8.
pub fn ctrl(mode: u32, req: u32) -> u32 {
    mode | req << 8
}
