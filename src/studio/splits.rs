//! The splits form: a name, the part ratios and a seed, checked by the project actor's rules
//! (docs/projects.md: the ratios sum to 1.0 and include `train` and `val`).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::response::Html;
use serde::Deserialize;

use super::form::StudioForm;
use super::project::{section, Section};
use crate::http::dto::CreateSplit;
use crate::http::error::{ApiError, ApiResult};
use crate::http::ids::project_id;
use crate::http::rejection::{ApiJson, ApiPath};
use crate::http::state::AppState;

#[derive(Debug, Deserialize)]
pub struct SplitForm {
    pub name: String,
    pub train: String,
    pub val: String,
    #[serde(default)]
    pub test: String,
    #[serde(default)]
    pub seed: String,
}

fn ratio(part: &str, text: &str) -> Result<Option<f64>, ApiError> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    t.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .map(Some)
        .ok_or_else(|| {
            ApiError::validation(format!(
                "the {part} ratio must be a number, got '{}'",
                crate::http::rejection::clip(t)
            ))
        })
}

/// The API's request from the form (an empty part is left out).
fn request_of(f: SplitForm) -> Result<CreateSplit, ApiError> {
    let mut ratios = BTreeMap::new();
    for (part, text) in [("train", &f.train), ("val", &f.val), ("test", &f.test)] {
        if let Some(r) = ratio(part, text)? {
            ratios.insert(part.to_string(), r);
        }
    }
    let seed = match f.seed.trim() {
        "" => crate::http::dto::default_seed(),
        s => s
            .parse()
            .map_err(|_| ApiError::validation("the seed must be a whole number"))?,
    };
    Ok(CreateSplit {
        name: f.name.trim().to_string(),
        ratios,
        seed,
    })
}

/// `POST /projects/{id}/splits`: the dataset section.
pub async fn create(
    State(st): State<AppState>,
    Path(id): Path<String>,
    StudioForm(f): StudioForm<SplitForm>,
) -> ApiResult<Html<String>> {
    let pid = project_id(&id)?;
    let body = request_of(f)?;
    let _created =
        crate::http::projects::create_split(State(st.clone()), ApiPath(id), ApiJson(body)).await?;
    section(&st, pid, Section::Dataset)
}
