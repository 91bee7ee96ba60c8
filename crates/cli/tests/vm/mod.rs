//! A small Debian 12 virtual machine on the unified cgroup hierarchy only, for running the
//! container suites where most users run faasbox: [`rootfs`] makes its root filesystem with
//! mmdebstrap (kept under the target directory, remade when its recipe changes),
//! [`binaries`] asks cargo where the test executables are, [`disk`] puts them with the
//! guest's runner (`guest.sh`, started by `faasbox-vm.service`) into an ext4 image, and
//! [`machine`] boots it with qemu-system-x86_64 and reads the runner's report from the
//! second serial port.

pub mod binaries;
pub mod disk;
pub mod machine;
pub mod rootfs;
