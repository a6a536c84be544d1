//! The Powerstream stream: `GET /2/powerstream`, with `localDcOnly`, `backfillMinutes` and
//! recovery; gzip when accepted; v2 closing lines.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use sluice_store::Product;
use sluice_wire::v2::ConnectionMetadata;

use super::auth::authenticate_token;
use super::ensure_stream;
use crate::api::close::close_messages;
use crate::api::encoding::accepts_gzip;
use crate::api::problem::ProblemError;
use crate::api::stream_query::{StreamQuery, check_held};
use crate::api::streaming::{Start, StreamOptions, open_stream_at};
use crate::clock::now_ms;
use crate::delivery::{Encoding, Format};
use crate::state::AppState;

/// Header naming the datacenter of a `localDcOnly` connection.
pub const DATACENTER_HEADER: &str = "x-powerstream-datacenter";
/// Header confirming `localDcOnly`.
pub const LOCAL_DC_ONLY_HEADER: &str = "x-powerstream-localdconly";

/// `localDcOnly`: `true` or `false` (any case); absent is `false`.
fn local_dc_only(query: &[(String, String)]) -> Result<bool, ProblemError> {
    let Some((_, value)) = query.iter().find(|(k, _)| k == "localDcOnly") else {
        return Ok(false);
    };
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ProblemError::invalid_request(format!(
            "Invalid value '{value}' for query parameter 'localDcOnly': use 'true' or 'false'."
        ))
        .with_status(StatusCode::NOT_ACCEPTABLE)),
    }
}

/// `GET /2/powerstream[?localDcOnly=true][&backfillMinutes=N|&startTime=…&endTime=…]`.
pub async fn connect(
    State(state): State<AppState>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, ProblemError> {
    let (account, token) = authenticate_token(&state, &headers).await?;
    let local_dc_only = local_dc_only(&query)?;
    let now = now_ms();
    let parsed = StreamQuery::parse(
        &query,
        Product::Powerstream.spec().partitions,
        u64::try_from(now).unwrap_or(0),
        state.settings.post_log_retention,
    )?;
    check_held(
        &state.post_log,
        parsed.start,
        u64::try_from(now).unwrap_or(0),
    )
    .await?;
    let datacenter = state.settings.datacenter.as_str();
    let datacenter_header = HeaderValue::from_str(datacenter).map_err(ProblemError::internal)?;
    let live = ensure_stream(&state, &account).await?;
    let start = Start::claim(parsed.start, &live)?;
    let encoding = if accepts_gzip(&headers) {
        Encoding::Gzip
    } else {
        Encoding::Identity
    };
    let prelude = local_dc_only.then(|| {
        let mut line = sluice_wire::to_vec(&ConnectionMetadata::new(datacenter, now));
        line.extend_from_slice(b"\r\n");
        Bytes::from(line)
    });
    let options = StreamOptions {
        partition: None,
        local_dc_only,
        format: Format::Native,
        encoding,
        prelude,
        messages: close_messages(Product::Powerstream.spec().errors),
        user: Some(token),
    };
    let mut response = open_stream_at(&state, live, options, start);
    if local_dc_only {
        let headers = response.headers_mut();
        headers.insert(DATACENTER_HEADER, datacenter_header);
        headers.insert(LOCAL_DC_ONLY_HEADER, HeaderValue::from_static("true"));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &[(&str, &str)]) -> Vec<(String, String)> {
        query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn local_dc_only_is_a_strict_boolean() {
        assert!(!local_dc_only(&pairs(&[])).unwrap());
        assert!(local_dc_only(&pairs(&[("localDcOnly", "TRUE")])).unwrap());
        assert!(!local_dc_only(&pairs(&[("localDcOnly", "false")])).unwrap());
        let refused = local_dc_only(&pairs(&[("localDcOnly", "yes")])).unwrap_err();
        assert_eq!(refused.status, StatusCode::NOT_ACCEPTABLE);
        assert_eq!(refused.problem.status, Some(406));
    }
}
