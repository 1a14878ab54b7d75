//! STUB: being written.

use std::path::Path;

use super::{Layout, LayoutKind, Migration, SetError, Version};

#[derive(Debug)]
pub(super) struct Flyway;

impl Layout for Flyway {
    fn kind(&self) -> LayoutKind {
        LayoutKind::Flyway
    }

    fn evidence(&self, _dir: &Path) -> Result<Vec<String>, SetError> {
        Ok(Vec::new())
    }

    fn read(&self, dir: &Path) -> Result<Vec<Migration>, SetError> {
        Err(SetError::Layout {
            dir: dir.to_path_buf(),
            message: "not implemented yet".to_owned(),
        })
    }

    fn parse_version(&self, text: &str) -> Result<Version, String> {
        Err(format!("{text}: not implemented yet"))
    }
}
