use super::*;
use crate::builder::memory_probe;
use futures_util::StreamExt;
use std::io::Read;

fn tiny_project() -> (tempfile::TempDir, Project) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mix.exs"), "defmodule Tiny.MixProject do end\n").unwrap();
    std::fs::create_dir_all(dir.path().join("lib")).unwrap();
    std::fs::write(dir.path().join("lib/tiny.ex"), "defmodule Tiny do end\n".repeat(100)).unwrap();
    let project = Project::open(dir.path()).unwrap();
    (dir, project)
}

/// Runs the writing thread and takes the whole body: its bytes (up to the first error), whether
/// it ended with an error, and how the thread ended.
fn collect(upload: SourceUpload) -> (Vec<u8>, bool, Result<(), Stopped>) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
    rt.block_on(async {
        let (body, writing) = upload.start("/build/src.tar");
        let mut body = std::pin::pin!(body);
        let (mut bytes, mut failed) = (Vec::new(), false);
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(_) => failed = true,
            }
        }
        (bytes, failed, writing.await.unwrap())
    })
}

#[test]
fn the_upload_is_one_tar_holding_the_sources_tar() {
    let (_dir, project) = tiny_project();
    let upload = SourceUpload::new(project.clone(), Vec::new(), None).unwrap();
    let len = upload.len();
    let (bytes, failed, written) = collect(upload);
    assert!(!failed && written.is_ok(), "{written:?}");
    assert_eq!(bytes.len() as u64, len);
    let mut outer = tar::Archive::new(bytes.as_slice());
    let mut entries = outer.entries().unwrap();
    let mut entry = entries.next().unwrap().unwrap();
    assert_eq!(entry.path().unwrap().to_str(), Some("build/src.tar"));
    assert_eq!(entry.header().mode().unwrap(), 0o600);
    let mut inner = Vec::new();
    entry.read_to_end(&mut inner).unwrap();
    drop(entry);
    assert!(entries.next().is_none(), "more than one entry");
    assert_eq!(inner, project.write_source_tar(Vec::new()).unwrap());
}

#[test]
fn the_builder_inputs_come_first_with_their_modes() {
    let (_dir, project) = tiny_project();
    let extra = vec![
        InputFile { path: "build/inputs/secrets/k".into(), content: b"s3cret\n".to_vec(), mode: 0o400 },
        InputFile { path: "build/inputs/ca.pem".into(), content: vec![b'x'; 1000], mode: 0o444 },
    ];
    let upload = SourceUpload::new(project.clone(), extra, None).unwrap();
    let len = upload.len();
    let (bytes, failed, written) = collect(upload);
    assert!(!failed && written.is_ok(), "{written:?}");
    assert_eq!(bytes.len() as u64, len);
    let mut outer = tar::Archive::new(bytes.as_slice());
    let mut seen = Vec::new();
    for entry in outer.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let mode = entry.header().mode().unwrap();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        seen.push((path, mode, content.len()));
    }
    let inner_len = project.write_source_tar(Vec::new()).unwrap().len();
    assert_eq!(
        seen,
        [
            ("build/inputs/secrets/k".to_string(), 0o400, 7),
            ("build/inputs/ca.pem".to_string(), 0o444, 1000),
            ("build/src.tar".to_string(), 0o600, inner_len)
        ]
    );
}

#[test]
fn sources_that_change_after_they_were_counted_fail_the_upload() {
    let (dir, project) = tiny_project();
    let upload = SourceUpload::new(project.clone(), Vec::new(), None).unwrap();
    std::fs::write(dir.path().join("lib/more.ex"), "defmodule More do end\n").unwrap();
    let (_, failed, written) = collect(upload);
    assert!(failed, "the body ended as if whole");
    match written {
        Err(Stopped::Failed(e @ BuilderError::SourcesChanged { actual: None, .. })) => {
            let msg = e.to_string();
            assert!(
                msg.contains("changed while they were sent to the builder") && msg.contains("build again"),
                "{msg}"
            );
        }
        other => panic!("expected SourcesChanged, got {other:?}"),
    }
    let upload = SourceUpload::new(project, Vec::new(), None).unwrap();
    std::fs::remove_file(dir.path().join("lib/tiny.ex")).unwrap();
    let (_, failed, written) = collect(upload);
    assert!(failed);
    assert!(
        matches!(written, Err(Stopped::Failed(BuilderError::SourcesChanged { actual: Some(_), .. }))),
        "{written:?}"
    );
}

/// The inner tar of an upload's body (its last entry).
fn inner_tar(bytes: &[u8]) -> Vec<u8> {
    let mut outer = tar::Archive::new(bytes);
    let mut inner = Vec::new();
    for entry in outer.entries().unwrap() {
        inner.clear();
        entry.unwrap().read_to_end(&mut inner).unwrap();
    }
    inner
}

#[test]
fn the_tar_the_build_read_is_what_is_sent() {
    let (dir, project) = tiny_project();
    let read = Arc::new(project.read_source_tar(crate::project::KEEP_AT_MOST).unwrap());
    assert!(read.bytes().is_some());
    // Changed after the result cache's key read them: the builder still gets what the key names.
    std::fs::write(dir.path().join("lib/more.ex"), "defmodule More do end\n").unwrap();
    let upload = SourceUpload::new(project.clone(), Vec::new(), Some(read.clone())).unwrap();
    let len = upload.len();
    let (bytes, failed, written) = collect(upload);
    assert!(!failed && written.is_ok(), "{written:?}");
    assert_eq!(bytes.len() as u64, len);
    assert_eq!(Some(inner_tar(&bytes).as_slice()), read.bytes());
    assert_ne!(inner_tar(&bytes), project.write_source_tar(Vec::new()).unwrap());
}

#[test]
fn a_tar_too_big_to_keep_is_read_again_and_must_have_the_digest_read() {
    let (dir, project) = tiny_project();
    let read = Arc::new(project.read_source_tar(0).unwrap());
    assert!(read.bytes().is_none());
    let upload = SourceUpload::new(project.clone(), Vec::new(), Some(read.clone())).unwrap();
    let (bytes, failed, written) = collect(upload);
    assert!(!failed && written.is_ok(), "{written:?}");
    assert_eq!(inner_tar(&bytes), project.write_source_tar(Vec::new()).unwrap());
    // The same size, other contents: the length alone would not see it.
    let upload = SourceUpload::new(project, Vec::new(), Some(read.clone())).unwrap();
    std::fs::write(dir.path().join("lib/tiny.ex"), "defmodule Tiny do nil\n".repeat(100)).unwrap();
    let (_, failed, written) = collect(upload);
    assert!(failed, "the body ended as if whole");
    match written {
        Err(Stopped::Failed(e @ BuilderError::SourcesChanged { actual: Some(n), .. })) => {
            assert_eq!(n, read.len());
            assert!(e.to_string().contains("has other contents than the"), "{e}");
        }
        other => panic!("expected SourcesChanged, got {other:?}"),
    }
}

/// The size of the large (sparse) file of the memory probes' project.
const LARGE: u64 = 200 << 20;

/// A memory probe's work: the bytes of the whole upload, which must end well.
fn sent_bytes(upload: SourceUpload) -> u64 {
    let (bytes, failed, written) = collect_counting(upload);
    assert!(!failed && written.is_ok(), "{written:?}");
    bytes
}

/// Runs test `name` as a memory probe's child on a project with a [`LARGE`] file: how much its
/// peak memory grew, and the bytes it sent (more than the file).
fn probe(name: &str) -> (u64, u64) {
    let dir = memory_probe::project_with_large_file(LARGE);
    let (grown, sent) = memory_probe::run_child(&format!("builder::upload::tests::{name}"), dir.path());
    assert!(sent > LARGE, "the upload has {sent} bytes");
    (grown, sent)
}

/// The whole upload of a project with a 200 MB file (sparse), read by a consumer that only
/// counts: the peak memory of the process grows by a few chunks, not by the file.
#[test]
fn the_upload_of_a_large_file_streams_with_constant_memory() {
    let work =
        |dir: &std::path::Path| sent_bytes(SourceUpload::new(Project::open(dir).unwrap(), Vec::new(), None).unwrap());
    if memory_probe::child(work) {
        return;
    }
    let (grown, sent) = probe("the_upload_of_a_large_file_streams_with_constant_memory");
    assert!(grown < 32 << 20, "the peak memory grew by {grown} bytes sending {sent}");
}

/// As above, the tar read first (for the result cache's key) with the limit a build uses: it
/// keeps at most that much, and the upload streams the files again.
#[test]
fn a_large_tar_read_first_keeps_at_most_its_limit() {
    let work = |dir: &std::path::Path| {
        let project = Project::open(dir).unwrap();
        let read = project.read_source_tar(crate::project::KEEP_AT_MOST).unwrap();
        assert!(read.bytes().is_none());
        sent_bytes(SourceUpload::new(project, Vec::new(), Some(Arc::new(read))).unwrap())
    };
    if memory_probe::child(work) {
        return;
    }
    let (grown, sent) = probe("a_large_tar_read_first_keeps_at_most_its_limit");
    let limit = crate::project::KEEP_AT_MOST + (16 << 20);
    assert!(grown < limit, "the peak memory grew by {grown} bytes reading and sending {sent}");
}

/// [`collect`], counting the bytes instead of keeping them.
fn collect_counting(upload: SourceUpload) -> (u64, bool, Result<(), Stopped>) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
    rt.block_on(async {
        let (body, writing) = upload.start("/build/src.tar");
        let mut body = std::pin::pin!(body);
        let (mut bytes, mut failed) = (0u64, false);
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) => bytes += chunk.len() as u64,
                Err(_) => failed = true,
            }
        }
        (bytes, failed, writing.await.unwrap())
    })
}

/// [`SourceUpload::write_into`] a buffer: what it wrote, and how it ended.
fn written_into(upload: SourceUpload) -> (Vec<u8>, Result<(), BuilderError>) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
    let mut out = Vec::new();
    let result = rt.block_on(upload.write_into(&mut out, "/build/req/1/src.tar"));
    (out, result)
}

/// The entries of a tar, path and size, in order.
fn entries(bytes: &[u8]) -> Vec<(String, u64)> {
    let mut archive = tar::Archive::new(bytes);
    let entries = archive.entries().unwrap();
    entries.map(|e| e.unwrap()).map(|e| (e.path().unwrap().display().to_string(), e.size())).collect()
}

#[test]
fn a_sealed_upload_ends_with_its_seal_after_the_sources() {
    let (_dir, project) = tiny_project();
    let extra = vec![InputFile { path: "build/req/1/src.delta".into(), content: b"base t\n".to_vec(), mode: 0o600 }];
    let upload = SourceUpload::new(project.clone(), extra, None).unwrap().sealed("/build/req/1/src.sealed");
    let len = upload.len();
    let (bytes, result) = written_into(upload);
    result.unwrap();
    assert_eq!(bytes.len() as u64, len);
    let inner = project.write_source_tar(Vec::new()).unwrap();
    let expected = vec![
        ("build/req/1/src.delta".to_string(), 7),
        ("build/req/1/src.tar".to_string(), inner.len() as u64),
        ("build/req/1/src.sealed".to_string(), 0),
    ];
    assert_eq!(entries(&bytes), expected);
}

#[test]
fn sources_that_changed_under_a_sealed_upload_leave_it_unsealed() {
    let (dir, project) = tiny_project();
    let read = Arc::new(project.read_source_tar(0).unwrap());
    let upload = SourceUpload::new(project, Vec::new(), Some(read)).unwrap().sealed("build/req/1/src.sealed");
    let len = upload.len();
    // The same size, other contents: seen only once the whole tar was read again and sent.
    std::fs::write(dir.path().join("lib/tiny.ex"), "defmodule Tiny do nil\n".repeat(100)).unwrap();
    let (bytes, result) = written_into(upload);
    assert!(matches!(result, Err(BuilderError::SourcesChanged { .. })), "{result:?}");
    // Its whole length all the same (a reader may wait for exactly that), the rest zeros.
    assert_eq!(bytes.len() as u64, len);
    let mut archive = tar::Archive::new(bytes.as_slice());
    let names: Vec<String> =
        archive.entries().unwrap().map_while(|e| e.ok().map(|e| e.path().unwrap().display().to_string())).collect();
    assert!(names.iter().all(|n| !n.ends_with("src.sealed")), "sealed: {names:?}");
}

/// An input that takes `left` bytes, then is gone (the exec ended).
struct GoesAway {
    left: usize,
}

impl tokio::io::AsyncWrite for GoesAway {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.left == 0 {
            return std::task::Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
        }
        let n = buf.len().min(self.left);
        self.left -= n;
        std::task::Poll::Ready(Ok(n))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[test]
fn an_input_that_goes_away_ends_the_upload_without_an_error_of_its_own() {
    let (_dir, project) = tiny_project();
    // More chunks than wait in the channel: the thread would block on a full one forever.
    let tar = vec![1u8; crate::UPLOAD_CHUNK * (IN_FLIGHT + 4)];
    let upload = SourceUpload::of_bytes(project, Vec::new(), tar).sealed("build/req/1/src.sealed");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_time().build().unwrap();
    let result = rt.block_on(async {
        let writing = upload.write_into(GoesAway { left: crate::UPLOAD_CHUNK + 10 }, "build/req/1/src.tar");
        tokio::time::timeout(std::time::Duration::from_secs(20), writing).await
    });
    assert!(matches!(result, Ok(Ok(()))), "{result:?}");
}
