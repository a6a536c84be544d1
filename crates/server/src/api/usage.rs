//! X's Usage API for enterprise accounts: `GET /metrics/usage/accounts/{account}.json`
//! with `bucket` (`month`, `day`, and sluice's `hour`), `fromDate` and `toDate`
//! (`yyyymmddhhmm`, UTC), basic auth by a user of the account, 2 requests per minute per
//! account. The answer is X's documented nesting: the account, then the `twitter`
//! publisher, its products and each product's streams (`endpoints`), each with `used` per
//! bucket and `projected` for the current month (docs/compatibility.md, "The Usage API").

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_store::Product;
use time::OffsetDateTime;

use super::encoding::accepts_gzip;
use super::error::{ApiError, add_rate_headers, json_response};
use super::gnip::{label_of, require_basic};
use crate::clock::now_ms;
use crate::state::AppState;
use crate::usage::bucket::{Bucket, Range, RangeQuery, format_date};
use crate::usage::report::{AccountUsage, BucketCounts, account_usage};

/// The query of a Usage API request.
#[derive(Debug, Deserialize)]
pub struct UsageQuery {
    bucket: Option<String>,
    #[serde(rename = "fromDate")]
    from_date: Option<String>,
    #[serde(rename = "toDate")]
    to_date: Option<String>,
}

/// `GET /metrics/usage/accounts/{account}.json`.
pub async fn get_usage(
    State(state): State<AppState>,
    Path(segment): Path<String>,
    Query(query): Query<UsageQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let gzip = accepts_gzip(&headers);
    let Some(account) = label_of(&segment) else {
        return Err(ApiError::not_found("Not found.").gzip(gzip));
    };
    require_basic(&state, account, &headers, gzip).await?;
    let now = now();
    let range = RangeQuery {
        bucket: query.bucket.as_deref(),
        from: (query.from_date.as_deref(), "fromDate"),
        to: (query.to_date.as_deref(), "toDate"),
    }
    .resolve(Bucket::Month, now)
    .map_err(|e| ApiError::bad_request(e.to_string()).gzip(gzip))?;
    // Only requests that would be answered count against the limit: a malformed one
    // costs the customer nothing but the 400.
    let rate = state
        .usage_limit
        .check(account)
        .map_err(|rate| ApiError::rate_limited(rate).gzip(gzip))?;
    let used = account_usage(&state, account, range).await?;
    let month = Bucket::Month.floor(now);
    let this_month = Range {
        bucket: Bucket::Month,
        from: month,
        to: Bucket::Month.next(month),
    };
    let month_to_date = account_usage(&state, account, this_month).await?;
    let body = usage_body(account, &used, &month_to_date, now);
    let mut response = json_response(StatusCode::OK, sluice_wire::to_vec(&body), gzip);
    add_rate_headers(&mut response, rate);
    Ok(response)
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(now_ms()) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The name X's Usage API gives a product (`type`).
pub fn product_type(product: Product) -> &'static str {
    match product {
        Product::PowerTrack => "PowerTrack",
        Product::Decahose => "Decahose",
        Product::Firehose => "Firehose",
        Product::Powerstream => "Powerstream",
        Product::V2Filtered => "Filtered stream (v2)",
        Product::V2Sample => "Sampled stream (v2)",
        Product::V2Sample10 => "Sampled stream 10% (v2)",
        Product::V2Firehose => "Firehose (v2)",
        Product::PowerTrackReplay => "Replay",
        Product::Compliance => "Compliance Firehose",
    }
}

/// The answer: see the module doc.
fn usage_body(
    account: &str,
    used: &AccountUsage,
    month_to_date: &AccountUsage,
    now: OffsetDateTime,
) -> Value {
    let periods: Vec<String> = used.starts.iter().map(|s| format_date(*s)).collect();
    let month = format_date(month_to_date.range.from);
    let projection = Projection::at(month_to_date.range, now);
    let mtd = |filter: &dyn Fn(Product, &str) -> bool| -> u64 {
        month_to_date
            .streams
            .iter()
            .filter(|s| filter(s.stream.product, &s.stream.label))
            .map(|s| s.total().billed())
            .sum()
    };
    let series = |filter: &dyn Fn(Product, &str) -> bool| -> Vec<u64> {
        let mut sums = vec![0; periods.len()];
        for s in used
            .streams
            .iter()
            .filter(|s| filter(s.stream.product, &s.stream.label))
        {
            for (sum, b) in sums.iter_mut().zip(&s.buckets) {
                *sum += BucketCounts::billed(b);
            }
        }
        sums
    };
    let used_entries = |sums: Vec<u64>, extra: bool| -> Vec<Value> {
        periods
            .iter()
            .zip(sums)
            .map(|(period, activities)| entry(period, activities, extra))
            .collect()
    };
    let mut products: Vec<Product> = used.streams.iter().map(|s| s.stream.product).collect();
    products.dedup();
    let products: Vec<Value> = products
        .into_iter()
        .map(|product| {
            let of_product = move |p: Product, _: &str| p == product;
            let endpoints: Vec<Value> = used
                .streams
                .iter()
                .filter(|s| s.stream.product == product)
                .map(|s| {
                    let label = s.stream.label.as_str();
                    let this = move |p: Product, l: &str| p == product && l == label;
                    json!({
                        "type": product_type(product),
                        "label": label,
                        "used": used_entries(series(&this), false),
                        "projected": entry(&month, projection.of(mtd(&this)), false),
                    })
                })
                .collect();
            json!({
                "type": product_type(product),
                "used": used_entries(series(&of_product), false),
                "projected": entry(&month, projection.of(mtd(&of_product)), false),
                "endpoints": endpoints,
            })
        })
        .collect();
    let all = |_: Product, _: &str| true;
    json!({
        "account": { "name": account },
        "bucket": used.range.bucket.as_str(),
        "fromDate": format_date(used.range.from),
        "toDate": format_date(used.range.to),
        "publishers": [{
            "type": "twitter",
            "used": used_entries(series(&all), true),
            "projected": entry(&month, projection.of(mtd(&all)), true),
            "products": products,
        }],
    })
}

/// One `used` or `projected` entry; the publisher's also carries X's search and
/// Historical PowerTrack counters, which sluice does not serve (always 0).
fn entry(period: &str, activities: u64, publisher: bool) -> Value {
    let mut entry = json!({ "timePeriod": period, "activities": activities });
    if publisher {
        for counter in [
            "searchRequests30Day",
            "searchRequestsFullArchive",
            "historicalPowertrackDays",
            "historicalPowertrackJobs",
        ] {
            entry[counter] = json!(0);
        }
    }
    entry
}

/// The end-of-month estimate: the month so far, scaled to the whole month at the same
/// rate (as X's console estimates it).
#[derive(Debug, Clone, Copy)]
struct Projection {
    elapsed_ms: i128,
    month_ms: i128,
}

impl Projection {
    fn at(month: Range, now: OffsetDateTime) -> Self {
        let ms = |d: time::Duration| d.whole_milliseconds();
        Projection {
            elapsed_ms: ms(now - month.from).max(1),
            month_ms: ms(month.to - month.from),
        }
    }

    fn of(self, so_far: u64) -> u64 {
        let projected = i128::from(so_far) * self.month_ms / self.elapsed_ms;
        u64::try_from(projected).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn the_projection_scales_the_month_so_far_to_the_whole_month() {
        let month = Range {
            bucket: Bucket::Month,
            from: datetime!(2026-11-01 00:00 UTC),
            to: datetime!(2026-12-01 00:00 UTC),
        };
        // A third of November gone: three times as much.
        let p = Projection::at(month, datetime!(2026-11-11 00:00 UTC));
        assert_eq!(p.of(100), 300);
        assert_eq!(p.of(0), 0);
        // At the very start nothing divides by zero.
        assert_eq!(Projection::at(month, month.from).of(0), 0);
    }
}
