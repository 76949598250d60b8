//! The A/B test create form (`multipart/form-data`) as `POST /api/v1/abtests` and the create
//! page post it: one reader for both, which walks the parts and keeps each field's text or
//! bytes; each edge then validates them by its own contract (the API's documented fields, the
//! page's plan with its preview).

use axum::extract::Multipart;
use axum::extract::multipart::MultipartError;
use axum::http::StatusCode;

use crate::error::ApiError;

/// Who posts the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poster {
    /// An API client: only the documented fields; any other is refused as soon as it comes,
    /// before the uploads after it are read.
    Api,
    /// The create page: its fields also say how many variants the preview is for; other fields
    /// are ignored, and a file input or title left empty still posts an empty part, which is
    /// left out.
    Page,
}

/// The form's fields as posted (text untrimmed).
#[derive(Debug, Default)]
pub struct CreateFormFields {
    pub video: Option<String>,
    /// How many variants the page's preview is for (the page only).
    pub variants: Option<String>,
    pub duration_days: Option<String>,
    pub rotation_hours: Option<String>,
    pub design: Option<String>,
    pub sequential: Option<String>,
    pub final_action: Option<String>,
    /// Repeated fields, in the order posted.
    pub titles: Vec<String>,
    pub thumbnails: Vec<Vec<u8>>,
}

/// A malformed body is `bad_input`; one over the route's body limit, 413 `body_too_large`.
fn multipart_error(e: MultipartError) -> ApiError {
    let status = e.status();
    let code = if status == StatusCode::PAYLOAD_TOO_LARGE { "body_too_large" } else { "bad_input" };
    ApiError::new(status, code, e.body_text())
}

/// Reads the rest of the form (after the CSRF token, on the page).
pub async fn read_create_form(form: &mut Multipart, poster: Poster) -> Result<CreateFormFields, ApiError> {
    let mut out = CreateFormFields::default();
    let keep_empty = poster == Poster::Api;
    while let Some(field) = form.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or("").to_owned();
        let slot = match name.as_str() {
            "thumbnail" => {
                let bytes = field.bytes().await.map_err(multipart_error)?;
                if keep_empty || !bytes.is_empty() {
                    out.thumbnails.push(bytes.to_vec());
                }
                continue;
            }
            "title" => {
                let text = field.text().await.map_err(multipart_error)?;
                if keep_empty || !text.trim().is_empty() {
                    out.titles.push(text);
                }
                continue;
            }
            "video" => &mut out.video,
            "duration_days" => &mut out.duration_days,
            "rotation_hours" => &mut out.rotation_hours,
            "design" => &mut out.design,
            "sequential" => &mut out.sequential,
            "final_action" => &mut out.final_action,
            "variants" if poster == Poster::Page => &mut out.variants,
            other if poster == Poster::Api => {
                let error = ApiError::bad_request("bad_input", format!("unknown field {other:?}"));
                discard_rest(form).await;
                return Err(error);
            }
            _ => continue,
        };
        *slot = Some(field.text().await.map_err(multipart_error)?);
    }
    Ok(out)
}

/// Reads the rest of a refused form and throws it away (up to the route's body limit), so that
/// the client, still sending its uploads, reads the refusal instead of a reset connection.
pub async fn discard_rest(form: &mut Multipart) {
    while let Ok(Some(mut field)) = form.next_field().await {
        while let Ok(Some(_)) = field.chunk().await {}
    }
}
