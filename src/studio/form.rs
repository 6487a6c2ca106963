//! Form bodies of the studio's actions (`application/x-www-form-urlencoded`), with a body that
//! does not parse answered as the catalog's `VALIDATION_ERROR` like any other bad input.

use axum::extract::{FromRequest, Request};
use axum::Form;
use serde::de::DeserializeOwned;

use crate::http::error::ApiError;

/// A parsed form.
pub struct StudioForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for StudioForm<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Form::<T>::from_request(req, state)
            .await
            .map(|Form(v)| StudioForm(v))
            .map_err(|e| {
                ApiError::validation(format!("the form could not be read: {}", e.body_text()))
            })
    }
}
