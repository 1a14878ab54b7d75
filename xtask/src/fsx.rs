//! Small file-system helpers.

use std::path::Path;

use anyhow::{Context, Result};

/// Writes a file through a temporary sibling and a rename, so readers never see half of it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&tmp, meta.permissions());
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
}

/// Makes `path` hold `contents` (atomically), or with `check` only compares. Returns whether
/// the file differed (and, unless `check`, was written).
pub fn ensure_file(path: &Path, contents: &str, check: bool) -> Result<bool> {
    let current = std::fs::read(path).ok();
    if current.as_deref() == Some(contents.as_bytes()) {
        return Ok(false);
    }
    if !check {
        write_atomic(path, contents.as_bytes())?;
    }
    Ok(true)
}
