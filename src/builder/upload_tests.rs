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
    let upload = SourceUpload::count(project.clone(), Vec::new()).unwrap();
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
    let upload = SourceUpload::count(project.clone(), extra).unwrap();
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
    let upload = SourceUpload::count(project.clone(), Vec::new()).unwrap();
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
    let upload = SourceUpload::count(project, Vec::new()).unwrap();
    std::fs::remove_file(dir.path().join("lib/tiny.ex")).unwrap();
    let (_, failed, written) = collect(upload);
    assert!(failed);
    assert!(
        matches!(written, Err(Stopped::Failed(BuilderError::SourcesChanged { actual: Some(_), .. }))),
        "{written:?}"
    );
}

/// The whole upload of a project with a 200 MB file (sparse), read by a consumer that only
/// counts: the peak memory of the process grows by a few chunks, not by the file.
#[test]
fn the_upload_of_a_large_file_streams_with_constant_memory() {
    const SIZE: u64 = 200 << 20;
    let work = |dir: &std::path::Path| {
        let upload = SourceUpload::count(Project::open(dir).unwrap(), Vec::new()).unwrap();
        let (bytes, failed, written) = collect_counting(upload);
        assert!(!failed && written.is_ok(), "{written:?}");
        bytes
    };
    if memory_probe::child(work) {
        return;
    }
    let dir = memory_probe::project_with_large_file(SIZE);
    let name = "builder::upload::tests::the_upload_of_a_large_file_streams_with_constant_memory";
    let (grown, sent) = memory_probe::run_child(name, dir.path());
    assert!(sent > SIZE, "the upload has {sent} bytes");
    assert!(grown < 32 << 20, "the peak memory grew by {grown} bytes sending {sent}");
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
