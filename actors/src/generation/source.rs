//! From a job's project to its chunks: documents' text, chunked by the job's config.
//! `DATASET_NO_DOCS` when the project has no files, `DATASET_NO_CHUNKS` when none gives text.

use tunewright_events::projection::ProjectView;
use tunewright_schemas::config::GenerationConfig;
use tunewright_schemas::{ctx, DataLayout, ErrorCode, Failure};

use super::chunking::{chunk_text, Chunk};
use super::documents::{extract, Extracted};

/// `chunks_of` on the blocking pool: reading files and parsing PDFs must not stall the async
/// runtime's workers.
pub async fn chunks_of_blocking(
    layout: DataLayout,
    project: ProjectView,
    cfg: GenerationConfig,
) -> Result<(Vec<Chunk>, Vec<String>), Failure> {
    let project_id = project.id;
    tokio::task::spawn_blocking(move || chunks_of(&layout, &project, &cfg))
        .await
        .unwrap_or_else(|e| {
            Err(Failure::new(
                ErrorCode::DatasetGenerationFailed,
                ctx! {"reason" => format!("reading the documents of project {project_id} failed: {e}")},
            ))
        })
}

/// The chunks of all documents in file order, and the reasons documents were skipped.
pub fn chunks_of(
    layout: &DataLayout,
    project: &ProjectView,
    cfg: &GenerationConfig,
) -> Result<(Vec<Chunk>, Vec<String>), Failure> {
    if project.files.is_empty() {
        return Err(Failure::new(
            ErrorCode::DatasetNoDocs,
            ctx! {"project_id" => project.id.to_string()},
        ));
    }
    let mut chunks = Vec::new();
    let mut skipped = Vec::new();
    for file in project.files.values() {
        match extract(layout, file) {
            Extracted::Text(t) => {
                for text in chunk_text(&t, cfg.chunk_tokens, cfg.chunk_overlap_tokens) {
                    chunks.push(Chunk {
                        index: chunks.len() as u32,
                        document: file.name.clone(),
                        text,
                    });
                }
            }
            Extracted::Skipped(why) => {
                tracing::warn!(project = %project.id, reason = %why, "document skipped for generation");
                skipped.push(why)
            }
        }
    }
    if chunks.is_empty() {
        let mut f = Failure::new(
            ErrorCode::DatasetNoChunks,
            ctx! {"num_documents" => project.files.len(), "skipped" => skipped.clone()},
        );
        for s in &skipped {
            f = f.caused_by(s.clone());
        }
        return Err(f);
    }
    Ok((chunks, skipped))
}
