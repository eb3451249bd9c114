//! One line per trapped call, for `--trace` style logs.

use tph_client::abi::vfio::Request;

use crate::harness::{Reply, Trapped};

/// The C name of a VFIO or iommufd request.
fn request_name(request: u32) -> Option<&'static str> {
    Some(match Request::from_number(request)? {
        Request::GetApiVersion => "VFIO_GET_API_VERSION",
        Request::CheckExtension => "VFIO_CHECK_EXTENSION",
        Request::SetIommu => "VFIO_SET_IOMMU",
        Request::GroupGetStatus => "VFIO_GROUP_GET_STATUS",
        Request::GroupSetContainer => "VFIO_GROUP_SET_CONTAINER",
        Request::GroupUnsetContainer => "VFIO_GROUP_UNSET_CONTAINER",
        Request::GroupGetDeviceFd => "VFIO_GROUP_GET_DEVICE_FD",
        Request::DeviceGetInfo => "VFIO_DEVICE_GET_INFO",
        Request::DeviceGetRegionInfo => "VFIO_DEVICE_GET_REGION_INFO",
        Request::DeviceGetIrqInfo => "VFIO_DEVICE_GET_IRQ_INFO",
        Request::DeviceSetIrqs => "VFIO_DEVICE_SET_IRQS",
        Request::DeviceReset => "VFIO_DEVICE_RESET",
        Request::IommuGetInfo => "VFIO_IOMMU_GET_INFO",
        Request::IommuMapDma => "VFIO_IOMMU_MAP_DMA",
        Request::IommuUnmapDma => "VFIO_IOMMU_UNMAP_DMA",
        Request::DeviceFeature => "VFIO_DEVICE_FEATURE",
        Request::DeviceBindIommufd => "VFIO_DEVICE_BIND_IOMMUFD",
        Request::DeviceAttachIommufdPt => "VFIO_DEVICE_ATTACH_IOMMUFD_PT",
        Request::DeviceDetachIommufdPt => "VFIO_DEVICE_DETACH_IOMMUFD_PT",
        Request::DevicePciTph => "VFIO_DEVICE_PCI_TPH",
        Request::IommuDestroy => "IOMMU_DESTROY",
        Request::IommuIoasAlloc => "IOMMU_IOAS_ALLOC",
        Request::IommuIoasMap => "IOMMU_IOAS_MAP",
        Request::IommuIoasUnmap => "IOMMU_IOAS_UNMAP",
        _ => return None,
    })
}

/// The call as the program made it: `ioctl(5, VFIO_GROUP_GET_STATUS, 0x7ffc..)`,
/// `pread64(7, 0x.., 4, 0x70000000100)`, `close(7)`.
fn call_text(call: &Trapped) -> String {
    let a = call.args;
    match call.nr {
        libc::SYS_ioctl => {
            let name = request_name(call.request)
                .map_or_else(|| format!("{:#x}", call.request), str::to_string);
            format!("ioctl({}, {name}, {:#x})", call.fd, call.arg)
        }
        libc::SYS_pread64 => format!("pread64({}, {:#x}, {}, {:#x})", call.fd, a[1], a[2], a[3]),
        libc::SYS_pwrite64 => format!("pwrite64({}, {:#x}, {}, {:#x})", call.fd, a[1], a[2], a[3]),
        libc::SYS_close => format!("close({})", call.fd),
        libc::SYS_mmap => format!(
            "mmap({:#x}, {}, {:#x}, {:#x}, {}, {:#x})",
            a[0], a[1], a[2], a[3], call.fd, a[5]
        ),
        nr => format!(
            "syscall {nr}({:#x}, {:#x}, {:#x}, {:#x})",
            a[0], a[1], a[2], a[3]
        ),
    }
}

/// `CALL = RESULT`: the value, `-1 ERRNO`, a new fd, or `(run by the kernel)`; for example
/// `ioctl(5, VFIO_GROUP_GET_STATUS, 0x7ffc1000) = 0`.
pub(super) fn call_line(call: &Trapped, reply: &Reply) -> String {
    let result = match reply {
        Reply::Value(v) => v.to_string(),
        Reply::Fail(e) => format!("-1 {}", e.name()),
        Reply::Continue => "(run by the kernel)".to_string(),
        Reply::Fd(_) => "a new fd".to_string(),
    };
    format!("{} = {result}", call_text(call))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ioctl(request: u32) -> Trapped {
        Trapped {
            pid: 1,
            nr: libc::SYS_ioctl,
            args: [5, u64::from(request), 0x1000, 0, 0, 0],
            fd: 5,
            request,
            arg: 0x1000,
        }
    }

    #[test]
    fn call_line_names_vfio_requests_and_errno() {
        let get_status = Request::GroupGetStatus.number();
        let line = call_line(&ioctl(get_status), &Reply::Value(0));
        assert_eq!(line, "ioctl(5, VFIO_GROUP_GET_STATUS, 0x1000) = 0");
        let line = call_line(&ioctl(0x1234), &Reply::Fail(tph_client::Errno::EINVAL));
        assert_eq!(line, "ioctl(5, 0x1234, 0x1000) = -1 EINVAL");
    }

    #[test]
    fn request_name_covers_every_request() {
        for r in Request::ALL {
            assert!(request_name(r.number()).is_some(), "{r:?} has no name");
        }
    }
}
