//! Native tools for gathering a minimal base under emulation (docs/multi-platform.md, "Where the
//! time goes"): minimal_base.sh starts a process for each step (ldd, cp, readlink, awk, ...), and
//! under qemu-user each costs 0.1-0.2 s, most of an aarch64 build on an x86_64 engine. The
//! native builder image's static busybox is read out of it ([`busybox`]), uploaded beside the
//! release's ELF files, and `native_tools.sh` puts its applets first on PATH; the target's loader,
//! busybox, perl and dpkg-query still answer for the target. The base is the same byte for byte.

use super::{CrossError, ImageReader};
use crate::triple::Triple;

/// Where a static busybox may be in a builder image (Debian's busybox-static is `/bin/busybox`;
/// a dynamically linked one is passed over).
pub const CANDIDATES: &[&str] = &["/usr/bin/busybox", "/bin/busybox", "/usr/bin/busybox.static", "/bin/busybox.static"];

/// The start of the gathering script: the native applets on PATH when `NATIVE_BUSYBOX` is set.
#[cfg(test)]
const NATIVE_TOOLS_SH: &str = include_str!("native_tools.sh");

/// The static busybox of `native`'s machine in the image `reader` reads, or None when it has none.
pub async fn busybox(reader: &ImageReader, native: &Triple) -> Result<Option<Vec<u8>>, CrossError> {
    for path in CANDIDATES {
        let Some(tar) = reader.download(path).await? else { continue };
        let read = |source| CrossError::Io { action: "cannot read the tar of", path: (*path).into(), source };
        let Some(bytes) = super::first_file(&tar).map_err(read)? else { continue };
        if crate::prebuilt::elf::is_static_for(&bytes, native) {
            return Ok(Some(bytes));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A stand-in for busybox (the host may have none): it lists five applets, runs the host's
    /// tools for them, and its `cp` complains about owners as busybox's does as an unprivileged user.
    const FAKE_BUSYBOX: &str = "#!/bin/sh\nname=${0##*/}\n[ \"$name\" = busybox ] || set -- \"$name\" \"$@\"\n\
        case $1 in\n--list) printf '%s\\n' cat cp ln mkdir sha256sum ;;\nsh) shift; exec /bin/sh \"$@\" ;;\n\
        cp) shift; PATH=/usr/bin:/bin cp \"$@\" || exit; echo \"cp: can't preserve ownership of 'x': Operation not permitted\" >&2 ;;\n\
        *) a=$1; shift; PATH=/usr/bin:/bin exec \"$a\" \"$@\" ;;\nesac\n";

    /// The listed applets the busybox has are linked and come first on PATH (the others stay the
    /// machine's own), and `cp -p` keeps quiet about owners but not about the rest.
    #[test]
    fn the_applets_come_first_on_path_and_cp_keeps_quiet_about_owners() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let native = d.path().join("native");
        std::fs::create_dir_all(&native).unwrap();
        std::fs::write(native.join("busybox"), FAKE_BUSYBOX).unwrap();
        std::fs::set_permissions(native.join("busybox"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let script = format!(
            "set -eu\nsay() {{ printf '==> %s\\n' \"$*\"; }}\n{NATIVE_TOOLS_SH}\n\
             command -v sha256sum; command -v awk; echo x > {dir}/a; cp -p {dir}/a {dir}/b; cat {dir}/b; \
             cp {dir}/missing {dir}/c || echo failed",
            dir = d.path().display()
        );
        let out = Command::new("sh")
            .args(["-c", &script])
            .env("NATIVE_BUSYBOX", native.join("busybox"))
            .env("PATH", "/usr/bin:/bin")
            .output()
            .unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{stdout}{stderr}");
        assert!(stdout.contains("the shell tools run natively (5 busybox applets"), "{stdout}");
        let lines: Vec<&str> = stdout.lines().skip(1).collect();
        assert_eq!(lines[0], native.join("bin/sha256sum").display().to_string(), "{stdout}");
        assert!(lines[1].starts_with("/usr/bin/awk") || lines[1].starts_with("/bin/awk"), "{stdout}");
        assert_eq!(&lines[2..], ["x", "failed"], "{stdout}");
        assert!(!stderr.contains("ownership") && stderr.contains("missing"), "{stderr}");
    }

    /// A busybox that cannot run: the target's tools, and the log says so.
    #[test]
    fn a_busybox_that_does_not_run_leaves_the_path_alone() {
        let d = tempfile::tempdir().unwrap();
        let fake = d.path().join("busybox");
        std::fs::write(&fake, b"not a program").unwrap();
        let script = format!("set -eu\nsay() {{ printf '==> %s\\n' \"$*\"; }}\n{NATIVE_TOOLS_SH}\necho \"$PATH\"");
        let out = Command::new("sh")
            .args(["-c", &script])
            .env("NATIVE_BUSYBOX", &fake)
            .env("PATH", "/usr/bin:/bin")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}");
        assert!(stdout.contains("does not run here") && stdout.ends_with("\n/usr/bin:/bin\n"), "{stdout}");
    }
}
