//! Reading a file the user named (config, semconv, scenarios, load profiles,
//! reports): regular files only, after following symlinks, and never more than
//! a stated size, so `/dev/zero`, a FIFO or a huge file is refused with the
//! reason instead of hanging or growing until killed.

use std::fmt;
use std::io::Read as _;
use std::path::Path;

/// Largest YAML input (config, semconv, a scenario, a load profile): far above
/// any real file, small enough that parsing stays bounded.
pub const MAX_YAML_BYTES: u64 = 16 << 20;

/// Largest JSON report `verify` reads (a run report or a sink summary can list
/// a million traces).
pub const MAX_REPORT_BYTES: u64 = 1 << 30;

/// Why a file could not be read; displays as the words that follow its path
/// ("is a FIFO, not a regular file").
#[derive(Debug)]
pub struct Refused(String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// What a non-regular file is, for the refusal.
fn file_type_name(ft: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

/// `2.1 GiB`, `16 MiB`, `300 KiB`, `12 bytes`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            let v = bytes as f64 / size as f64;
            return if bytes.is_multiple_of(size) {
                format!("{} {unit}", bytes / size)
            } else {
                format!("{v:.1} {unit}")
            };
        }
    }
    format!("{bytes} bytes")
}

fn too_big(size: u64, limit: u64) -> Refused {
    Refused(format!(
        "is {}; the limit is {}",
        human_size(size),
        human_size(limit)
    ))
}

/// Checks that `path` (symlinks followed) is an existing regular file of at most
/// `limit` bytes; returns its size.
pub fn check(path: &Path, limit: u64) -> Result<u64, Refused> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Refused("does not exist".into()),
        _ => Refused(format!("cannot be read: {e}")),
    })?;
    if !meta.is_file() {
        return Err(Refused(format!(
            "is {}, not a regular file",
            file_type_name(meta.file_type())
        )));
    }
    if meta.len() > limit {
        return Err(too_big(meta.len(), limit));
    }
    Ok(meta.len())
}

/// Reads a regular file of at most `limit` bytes as UTF-8 text.
pub fn read_text(path: &Path, limit: u64) -> Result<String, Refused> {
    check(path, limit)?;
    let file = std::fs::File::open(path).map_err(|e| Refused(format!("cannot be read: {e}")))?;
    // Checked again on the open file: the path may have been replaced since.
    let meta = file
        .metadata()
        .map_err(|e| Refused(format!("cannot be read: {e}")))?;
    if !meta.is_file() {
        return Err(Refused(format!(
            "is {}, not a regular file",
            file_type_name(meta.file_type())
        )));
    }
    // A file that grows while being read is cut at the limit and refused.
    let mut bytes = Vec::with_capacity(meta.len().min(limit) as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Refused(format!("cannot be read: {e}")))?;
    if bytes.len() as u64 > limit {
        return Err(Refused(format!(
            "is larger than {}, the limit",
            human_size(limit)
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count();
        Refused(format!(
            "is not UTF-8 text (an invalid byte on line {line}, offset {at})"
        ))
    })
}

/// The JSON document of a report file, or of a pod's log that holds one (a
/// Kubernetes pod's report or sink summary written to its stdout): the document
/// starts at the text's start or at the first line that is `{` alone, and ends
/// where the document does (log lines after it are ignored).
pub fn json_in_log<T: serde::de::DeserializeOwned>(text: &str) -> serde_json::Result<T> {
    let start = if text.trim_start().starts_with('{') {
        0
    } else {
        text.find("\n{\n").map_or(0, |p| p + 1)
    };
    match serde_json::Deserializer::from_str(&text[start..])
        .into_iter::<T>()
        .next()
    {
        Some(Ok(v)) => Ok(v),
        // Report the error where the whole text fails, so line:col point into the file.
        _ => serde_json::from_str(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human_size(16 << 20), "16 MiB");
        assert_eq!(human_size((21 << 30) / 10), "2.1 GiB");
        assert_eq!(human_size(12), "12 bytes");
    }

    #[test]
    fn special_files_are_refused_with_their_type() {
        let e = read_text(Path::new("/dev/zero"), MAX_YAML_BYTES).unwrap_err();
        assert_eq!(e.to_string(), "is a character device, not a regular file");
        let e = read_text(Path::new("/"), MAX_YAML_BYTES).unwrap_err();
        assert_eq!(e.to_string(), "is a directory, not a regular file");
        let e = read_text(Path::new("/no/such/file.yaml"), MAX_YAML_BYTES).unwrap_err();
        assert_eq!(e.to_string(), "does not exist");
    }

    #[test]
    fn size_and_encoding_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.yaml");
        std::fs::write(&big, vec![b'a'; 2048]).unwrap();
        assert_eq!(
            read_text(&big, 1024).unwrap_err().to_string(),
            "is 2 KiB; the limit is 1 KiB"
        );
        assert_eq!(read_text(&big, 4096).unwrap().len(), 2048);
        let latin1 = dir.path().join("latin1.yaml");
        std::fs::write(&latin1, b"a: 1\nb: caf\xe9\n").unwrap();
        let e = read_text(&latin1, 4096).unwrap_err().to_string();
        assert!(e.contains("not UTF-8") && e.contains("line 2"), "{e}");
    }
}
