//! The machine's identity, from the operating system. Only its salted hash (the fingerprint) ever
//! leaves the machine.

/// The OS machine id (`/etc/machine-id` on Linux, or D-Bus's copy of it).
pub fn machine_identity() -> Result<String, String> {
    for path in ["/etc/machine-id", "/var/lib/dbus/machine-id"] {
        if let Ok(id) = std::fs::read_to_string(path) {
            let id = id.trim();
            if !id.is_empty() {
                return Ok(id.to_owned());
            }
        }
    }
    Err("this machine has no machine id (/etc/machine-id); pass one with --machine-id or LICENTIA_MACHINE_ID".into())
}
