//! Who made a builder container or a scratch directory ([`super::scratch`]): the process's pid,
//! with what tells it from a later process that got the same pid (its start time, the boot, its
//! pid namespace) and the machine (hostname). A build that was killed (`kill -9`) cannot clean up
//! after itself; the next build ([`super::leftovers`]) removes what such a dead owner left, and
//! leaves alone what belongs to a build that still runs, or to one it cannot see.

use std::path::Path;

/// Label on builder containers: the [`Owner`] that made it ([`Owner::label`]).
pub const OWNER_LABEL: &str = "org.release-oci.owner";

/// A process, told apart from any other that had or will have its pid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The machine's hostname (None in scratch directory names: those are on this machine).
    pub host: Option<String>,
    /// The boot id (`/proc/sys/kernel/random/boot_id`), without dashes.
    pub boot: String,
    /// The inode of the pid namespace (`/proc/self/ns/pid`): pids mean something only in it.
    pub pidns: u64,
    pub pid: u32,
    /// When the process started, in clock ticks since the boot (`/proc/PID/stat`, field 22).
    pub start: u64,
}

/// What is known of an owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// It still runs: its things are left alone.
    Alive,
    /// It is gone: its things are leftovers.
    Dead,
    /// Another machine or pid namespace: nothing can be said, its things are left alone.
    Unknown,
}

impl Owner {
    /// This process (None when `/proc` does not tell: then nothing is labelled or swept).
    pub fn current() -> Option<Owner> {
        static CURRENT: std::sync::OnceLock<Option<Owner>> = std::sync::OnceLock::new();
        CURRENT
            .get_or_init(|| {
                let pid = std::process::id();
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?.trim().to_string();
                let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?.trim().replace('-', "");
                let pidns = pid_namespace(Path::new("/proc/self/ns/pid"))?;
                let start = proc_start(pid)?;
                let owner = Owner { host: Some(host), boot, pidns, pid, start };
                owner.is_well_formed().then_some(owner)
            })
            .clone()
    }

    /// `pid=… start=… boot=… pidns=… host=…`, the [`OWNER_LABEL`] value.
    pub fn label(&self) -> String {
        let host = self.host.as_deref().unwrap_or_default();
        format!("pid={} start={} boot={} pidns={} host={host}", self.pid, self.start, self.boot, self.pidns)
    }

    /// Reads a [`Self::label`] back.
    pub fn parse_label(label: &str) -> Option<Owner> {
        let field = |key: &str| {
            label.split_whitespace().find_map(|kv| kv.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
        };
        let owner = Owner {
            host: Some(field("host")?.to_string()).filter(|h| !h.is_empty()),
            boot: field("boot")?.to_string(),
            pidns: field("pidns")?.parse().ok()?,
            pid: field("pid")?.parse().ok()?,
            start: field("start")?.parse().ok()?,
        };
        owner.is_well_formed().then_some(owner)
    }

    /// `PID-START-BOOT-PIDNS`, the owner's part of a scratch directory's name (no host).
    pub fn dir_tag(&self) -> String {
        format!("{}-{}-{}-{}", self.pid, self.start, self.boot, self.pidns)
    }

    /// Reads the owner from a name `PREFIX` + [`Self::dir_tag`] + `-` + anything.
    pub fn parse_dir_name(name: &str, prefix: &str) -> Option<Owner> {
        let mut parts = name.strip_prefix(prefix)?.splitn(5, '-');
        let pid = parts.next()?.parse().ok()?;
        let start = parts.next()?.parse().ok()?;
        let boot = parts.next()?.to_string();
        let pidns = parts.next()?.parse().ok()?;
        parts.next()?;
        let owner = Owner { host: None, boot, pidns, pid, start };
        owner.is_well_formed().then_some(owner)
    }

    /// The boot id is hex digits (it goes into labels and file names).
    fn is_well_formed(&self) -> bool {
        !self.boot.is_empty() && self.boot.chars().all(|c| c.is_ascii_hexdigit())
    }

    /// Whether this owner still runs, as seen by `me` (this process); `start_of` gives the start
    /// time of a live process of `me`'s pid namespace by its pid ([`proc_start`]).
    pub fn liveness(&self, me: &Owner, start_of: impl Fn(u32) -> Option<u64>) -> Liveness {
        if let (Some(a), Some(b)) = (&self.host, &me.host)
            && a != b
        {
            return Liveness::Unknown;
        }
        if self.boot != me.boot {
            // This machine, an earlier boot: every process of it is gone.
            return Liveness::Dead;
        }
        if self.pidns != me.pidns {
            return Liveness::Unknown;
        }
        match start_of(self.pid) {
            Some(start) if start == self.start => Liveness::Alive,
            // No such process, or another one that got the pid since.
            _ => Liveness::Dead,
        }
    }
}

/// The start time (field 22 of `/proc/PID/stat`) of a process that runs; None when there is no
/// such process or it is a zombie (it has exited, its parent has not reaped it yet).
pub fn proc_start(pid: u32) -> Option<u64> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Field 22 of a `/proc/PID/stat` line, unless field 3 (the state) says the process has exited.
/// The command name (field 2, in parentheses) may hold spaces and parentheses: the fields are
/// counted from the last `)`.
fn parse_stat(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    let state = fields.next()?;
    if matches!(state, "Z" | "X" | "x") {
        return None;
    }
    // Field 3 was the state; field 22 is 19 further on.
    fields.nth(18)?.parse().ok()
}

/// The inode in `pid:[INODE]`, what `/proc/self/ns/pid` links to.
fn pid_namespace(link: &Path) -> Option<u64> {
    let target = std::fs::read_link(link).ok()?;
    target.to_str()?.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Owner {
        Owner { host: Some("vm".into()), boot: "c6f73615".into(), pidns: 4026531836, pid: 100, start: 5000 }
    }

    #[test]
    fn liveness_decides_by_machine_boot_namespace_pid_and_start_time() {
        let other = Owner { pid: 200, start: 7000, ..me() };
        let running = |pid: u32| (pid == 200).then_some(7000);
        assert_eq!(other.liveness(&me(), running), Liveness::Alive);
        assert_eq!(other.liveness(&me(), |_| None), Liveness::Dead, "no process with that pid");
        assert_eq!(other.liveness(&me(), |_| Some(9000)), Liveness::Dead, "the pid was reused");
        let earlier_boot = Owner { boot: "aaaa".into(), ..other.clone() };
        assert_eq!(earlier_boot.liveness(&me(), running), Liveness::Dead);
        let other_machine = Owner { host: Some("ci-7".into()), ..earlier_boot.clone() };
        assert_eq!(other_machine.liveness(&me(), |_| None), Liveness::Unknown);
        let other_namespace = Owner { pidns: 4026532000, ..other.clone() };
        assert_eq!(other_namespace.liveness(&me(), |_| None), Liveness::Unknown);
        // A directory name carries no host: it is on this machine.
        let dir_owner = Owner { host: None, ..other };
        assert_eq!(dir_owner.liveness(&me(), |_| None), Liveness::Dead);
        assert_eq!(dir_owner.liveness(&me(), running), Liveness::Alive);
    }

    #[test]
    fn labels_and_directory_names_read_back() {
        let label = me().label();
        assert_eq!(label, "pid=100 start=5000 boot=c6f73615 pidns=4026531836 host=vm");
        assert_eq!(Owner::parse_label(&label), Some(me()));
        assert_eq!(Owner::parse_label("pid=100 start=5000"), None);
        assert_eq!(Owner::parse_label(&label.replace("boot=c6f73615", "boot=../x")), None);
        let prefix = "release-oci-assembled-";
        let name = format!("{prefix}{}-Ab12Cd", me().dir_tag());
        assert_eq!(name, "release-oci-assembled-100-5000-c6f73615-4026531836-Ab12Cd");
        assert_eq!(Owner::parse_dir_name(&name, prefix), Some(Owner { host: None, ..me() }));
        // Names from before owners were recorded, and other files, are not read as owners.
        assert_eq!(Owner::parse_dir_name("release-oci-assembled-Ab12Cd", prefix), None);
        assert_eq!(Owner::parse_dir_name("release-oci-assembled-100-5000-c6f73615-4026531836", prefix), None);
        assert_eq!(Owner::parse_dir_name("other-100-5000-c6f73615-1-x", prefix), None);
    }

    #[test]
    fn stat_lines_give_the_start_time_unless_the_process_exited() {
        let line = |state: &str| {
            format!("4242 (a (weird) name) {state} 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 987654 1000 10")
        };
        assert_eq!(parse_stat(&line("S")), Some(987654));
        assert_eq!(parse_stat(&line("R")), Some(987654));
        assert_eq!(parse_stat(&line("Z")), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_alive_to_itself() {
        let me = Owner::current().expect("/proc tells who this process is");
        assert_eq!(me.pid, std::process::id());
        assert_eq!(Owner::parse_label(&me.label()), Some(me.clone()));
        assert_eq!(me.liveness(&me, proc_start), Liveness::Alive);
        let gone = Owner { pid: u32::MAX - 1, ..me.clone() };
        assert_eq!(gone.liveness(&me, proc_start), Liveness::Dead);
    }
}
