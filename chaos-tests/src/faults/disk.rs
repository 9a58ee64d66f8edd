//! Fill the filesystem under the shared blob directory to its limit, then
//! free it. The blob directory is a small tmpfs the harness mounts (root
//! only); new threads (which need a file) must then fail with a clear error
//! instead of hanging or half-storing, and replies without files go on.

use super::World;
use anyhow::{bail, Context};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A blob directory on its own small filesystem.
pub struct BlobFs {
    pub dir: PathBuf,
    filler: PathBuf,
    mounted: bool,
}

impl BlobFs {
    /// Mounts a `size_mib` tmpfs at `dir` (needs root).
    pub fn mount(dir: &Path, size_mib: u64) -> anyhow::Result<BlobFs> {
        std::fs::create_dir_all(dir)?;
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size_mib}m"),
                "chaos-blobs",
            ])
            .arg(dir)
            .output()
            .context("running mount")?;
        if !out.status.success() {
            bail!(
                "cannot mount a tmpfs for the blob directory (root needed): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(BlobFs {
            dir: dir.to_path_buf(),
            filler: dir.join("chaos-filler"),
            mounted: true,
        })
    }
}

impl Drop for BlobFs {
    fn drop(&mut self) {
        if self.mounted {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.dir)
                .output();
        }
    }
}

pub fn inject(w: &mut World) -> anyhow::Result<String> {
    let Some(fs) = w.blob_fs.as_ref() else {
        bail!(
            "no blob filesystem: {}",
            w.blob_fs_error
                .as_deref()
                .unwrap_or("the scenario needs `blob_fs_mib`")
        );
    };
    let mut f = std::fs::File::create(&fs.filler)?;
    let chunk = vec![0u8; 1 << 20];
    let mut written = 0u64;
    while f.write_all(&chunk).is_ok() {
        written += chunk.len() as u64;
    }
    // Whatever is left in partial blocks goes too.
    while f.write_all(&[0u8; 4096]).is_ok() {
        written += 4096;
    }
    let _ = f.flush();
    Ok(format!(
        "{} MiB written to {}",
        written >> 20,
        fs.dir.display()
    ))
}

pub fn heal(w: &mut World) -> anyhow::Result<()> {
    if let Some(fs) = &w.blob_fs {
        std::fs::remove_file(&fs.filler).context("freeing the blob filesystem")?;
    }
    Ok(())
}
