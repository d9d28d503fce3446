//! A metrics collection → one OTLP `ExportMetricsServiceRequest`: a resource
//! per service, one `otelsim` scope, sums for counters and explicit-bucket
//! histograms with exemplars.

use super::{key_value, scope_named, Resources};
use crate::metrics::{Collection, Series, Temporality};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, metric, number_data_point, AggregationTemporality, Exemplar, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};

/// The request for a collection, with its number of data points.
pub fn metrics_request(
    c: &Collection<'_>,
    resources: &Resources,
) -> (ExportMetricsServiceRequest, u64) {
    let temporality = match c.temporality {
        Temporality::Cumulative => AggregationTemporality::Cumulative,
        Temporality::Delta => AggregationTemporality::Delta,
    } as i32;
    let mut points = 0u64;
    let mut resource_metrics = Vec::with_capacity(c.services.len());
    for (service, metrics) in &c.services {
        let mut out = Vec::with_capacity(metrics.len());
        for m in metrics {
            points += m.series.len() as u64;
            let data = match &m.spec.bounds {
                None => metric::Data::Sum(Sum {
                    data_points: m.series.iter().map(|s| sum_point(c, s)).collect(),
                    aggregation_temporality: temporality,
                    is_monotonic: true,
                }),
                Some(bounds) => metric::Data::Histogram(Histogram {
                    data_points: m
                        .series
                        .iter()
                        .map(|s| histogram_point(c, s, bounds))
                        .collect(),
                    aggregation_temporality: temporality,
                }),
            };
            out.push(Metric {
                name: m.name.to_string(),
                description: m.spec.description.clone(),
                unit: m.spec.unit.clone(),
                metadata: Vec::new(),
                data: Some(data),
            });
        }
        resource_metrics.push(ResourceMetrics {
            resource: Some(resources.resource(*service)),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope_named("otelsim")),
                metrics: out,
                schema_url: resources.schema_url().to_string(),
            }],
            schema_url: resources.schema_url().to_string(),
        });
    }
    (ExportMetricsServiceRequest { resource_metrics }, points)
}

fn attributes(s: &Series) -> Vec<opentelemetry_proto::tonic::common::v1::KeyValue> {
    s.attrs.iter().map(|(k, v)| key_value(k, v)).collect()
}

fn sum_point(c: &Collection<'_>, s: &Series) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attributes(s),
        start_time_unix_nano: c.start_ns,
        time_unix_nano: c.now_ns,
        exemplars: Vec::new(),
        flags: 0,
        // Whole sums go out as integers (counts, tokens), anything else as doubles.
        value: Some(if s.sum.fract() == 0.0 && s.sum.abs() < 9e15 {
            number_data_point::Value::AsInt(s.sum as i64)
        } else {
            number_data_point::Value::AsDouble(s.sum)
        }),
    }
}

fn histogram_point(c: &Collection<'_>, s: &Series, bounds: &[f64]) -> HistogramDataPoint {
    HistogramDataPoint {
        attributes: attributes(s),
        start_time_unix_nano: c.start_ns,
        time_unix_nano: c.now_ns,
        count: s.count,
        sum: Some(s.sum),
        bucket_counts: s.buckets.clone(),
        explicit_bounds: bounds.to_vec(),
        exemplars: s
            .exemplars
            .iter()
            .flatten()
            .map(|(v, t, tid, sid)| Exemplar {
                filtered_attributes: Vec::new(),
                time_unix_nano: *t,
                span_id: sid.to_vec(),
                trace_id: tid.to_vec(),
                value: Some(exemplar::Value::AsDouble(*v)),
            })
            .collect(),
        flags: 0,
        min: (s.count > 0).then_some(s.min),
        max: (s.count > 0).then_some(s.max),
    }
}

/// Collects what `agg` measured since its last collection at `now_ns` and
/// encodes it (with its number of points); `None` when there is nothing new.
pub fn collect(
    agg: &mut crate::metrics::Aggregator,
    now_ns: u64,
    resources: &Resources,
) -> Option<(ExportMetricsServiceRequest, u64)> {
    let encoded = agg.collect(now_ns).map(|c| metrics_request(&c, resources));
    if encoded.is_some() {
        agg.done();
    }
    encoded
}
