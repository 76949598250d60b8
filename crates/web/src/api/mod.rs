//! The JSON API under `/api/v1`: accounts and tokens (`account`), tracking and reading what a user
//! tracks (`tracking`). Shared here: the pieces every handler uses (usage against limits,
//! pagination, the OpenAPI security schemes).

pub mod abtests;
pub mod account;
pub mod outliers;
pub mod tracking;
pub mod webhook;

use serde::{Deserialize, Serialize};
use tubewatch_store::User;
pub use tubewatch_worker::month_start;
use tubewatch_worker::{Limited, TrackError};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::CurrentUser;
use crate::error::ApiError;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(account::signup))
        .routes(routes!(account::login))
        .routes(routes!(account::verify_email))
        .routes(routes!(account::resend_verification))
        .routes(routes!(account::request_reset))
        .routes(routes!(account::confirm_reset))
        .routes(routes!(account::logout))
        .routes(routes!(account::me))
        .routes(routes!(account::change_password))
        .routes(routes!(account::list_tokens, account::create_token))
        .routes(routes!(account::revoke_token))
        .routes(routes!(tracking::list_channels, tracking::track_channel))
        .routes(routes!(tracking::untrack_channel))
        .routes(routes!(tracking::channel_videos))
        .routes(routes!(tracking::list_videos, tracking::track_video))
        .routes(routes!(tracking::untrack_video))
        .routes(routes!(tracking::video_series))
        .routes(routes!(tracking::thumbnail))
        .routes(routes!(outliers::list_outliers))
        .routes(routes!(webhook::get_webhook, webhook::set_webhook, webhook::delete_webhook))
        .routes(routes!(webhook::test_webhook))
        .merge(abtests::routes())
}

/// Declares the two ways to authenticate in the OpenAPI document.
pub(crate) struct SecurityAddon;

impl Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("tw_…").build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::SESSION_COOKIE,
                "Session cookie from log-in (`__Host-tw_session` when served over HTTPS); state changes \
                 also need the X-CSRF-Token header",
            ))),
        );
    }
}

/// Use of one limit.
#[derive(Debug, Serialize, ToSchema)]
pub struct Allowance {
    pub used: u64,
    /// `null`: unlimited.
    pub limit: Option<u32>,
}

/// A user's plan and how much of it is used.
#[derive(Debug, Serialize, ToSchema)]
pub struct Usage {
    pub plan: String,
    pub is_admin: bool,
    /// Monitored channels.
    pub channels: Allowance,
    /// Individually tracked videos charged this calendar month (videos of monitored channels
    /// are free).
    pub videos_this_month: Allowance,
    pub ab_tests: bool,
}

impl Usage {
    pub async fn of(state: &AppState, user: &User) -> Result<Self, ApiError> {
        let limits = state.config.accounts.plans.for_user(user);
        let used = state.service().plan_use(user.id).await?;
        Ok(Self {
            plan: user.plan.as_str().to_owned(),
            is_admin: user.is_admin,
            channels: Allowance { used: used.channels, limit: limits.channels.get() },
            videos_this_month: Allowance { used: used.videos_this_month, limit: limits.videos_per_month.get() },
            ab_tests: limits.ab_tests,
        })
    }
}

/// A refused add: 402 when the premium plan would allow it, 403 when no plan would.
pub fn limit_reached(state: &AppState, caller: &CurrentUser, what: Limited, limit: u32, used: u64) -> ApiError {
    let premium = &state.config.accounts.plans.premium;
    let premium_limit = match what {
        Limited::Channels => premium.channels,
        Limited::Videos => premium.videos_per_month,
    };
    let upgrade_helps = !caller.user.is_admin
        && caller.user.plan == tubewatch_store::Plan::Free
        && premium_limit.get().is_none_or(|p| p > limit);
    let (code, message) = match what {
        Limited::Channels => ("channel_limit_reached", format!("your plan monitors at most {limit} channels")),
        Limited::Videos => {
            ("video_limit_reached", format!("your plan tracks at most {limit} individual videos a month"))
        }
    };
    let status =
        if upgrade_helps { axum::http::StatusCode::PAYMENT_REQUIRED } else { axum::http::StatusCode::FORBIDDEN };
    ApiError::new(status, code, message).with("limit", limit).with("used", used).with("plan", caller.user.plan.as_str())
}

/// A refused request to track something, as the caller sees it: at their plan's limit, the
/// refusal with the upgrade that would help (see [`limit_reached`]).
pub fn track_refused(state: &AppState, caller: &CurrentUser, error: TrackError) -> ApiError {
    match error {
        TrackError::LimitReached { what, limit, used } => limit_reached(state, caller, what, limit, used),
        other => other.into(),
    }
}

/// Offset pagination.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items to skip (default 0).
    pub offset: Option<u64>,
    /// Items to return (default 50, at most 200).
    pub limit: Option<u32>,
}

impl PageQuery {
    pub const DEFAULT: u32 = 50;
    pub const MAX: u32 = 200;

    /// Cuts one page out of `items`; returns it with the offset of the next page, if any.
    pub fn page<T>(&self, items: Vec<T>) -> Result<(Vec<T>, Option<u64>), ApiError> {
        let limit = self.limit.unwrap_or(Self::DEFAULT);
        if limit == 0 || limit > Self::MAX {
            return Err(ApiError::bad_request("bad_input", format!("limit must be between 1 and {}", Self::MAX)));
        }
        let offset = usize::try_from(self.offset.unwrap_or(0)).unwrap_or(usize::MAX);
        let total = items.len();
        let page: Vec<T> = items.into_iter().skip(offset).take(limit as usize).collect();
        let end = offset.saturating_add(page.len());
        Ok((page, (end < total).then_some(end as u64)))
    }
}
