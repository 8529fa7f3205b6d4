//! Where the tests find the shared captured data: `../shared/data` beside the repository,
//! as in CI. A clone elsewhere fails with the path looked for, not at the first file read.

use std::path::{Path, PathBuf};

/// `../shared/data/<sub>`, which must exist.
pub fn dir(sub: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(sub);
    assert!(
        dir.is_dir(),
        "the shared test data is read from {}: clone the repository beside `shared/`",
        dir.display()
    );
    dir
}
