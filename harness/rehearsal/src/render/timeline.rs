//! Each scenario's timeline as SVG: steps shaded, faults marked, one lane per container, and
//! Telegram's backlog and delivery delay over time.

#[allow(unused_imports)]
use super::*;

/// An SVG timeline of one probe: one lane per flow, green for successes and red for failures
/// per bucket, faults shaded, step starts marked (steps and faults in ms since the probe began).
pub(super) fn timeline_svg(
    p: &ProbeReport,
    steps: &[StepRecord],
    faults: &[FaultRecord],
) -> String {
    let buckets = p.timeline.values().map(Vec::len).max().unwrap_or(0).max(1);
    let (width, lane) = (900.0, 28.0);
    let x = |i: usize| 90.0 + (i as f64) * (width - 100.0) / buckets as f64;
    let w = ((width - 100.0) / buckets as f64).max(0.5);
    let below = 66.0 + lane * 3.0;
    let mut svg = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\">", below + LANES_BELOW_HEIGHT);
    // Each step's span, shaded in turn behind the lanes: which step the traffic ran under.
    for (n, step) in steps.iter().enumerate() {
        let (x0, x1) = (
            x((step.started_ms / BUCKET_MS) as usize),
            x((step.ended_ms.max(step.started_ms) / BUCKET_MS) as usize),
        );
        svg.push_str(&format!(
            "<rect x=\"{x0:.1}\" y=\"6\" width=\"{:.1}\" height=\"{}\" fill=\"{}\"><title>{} {} ({:.1}–{:.1} s)</title></rect>",
            (x1 - x0).max(0.5),
            lane * 3.0,
            if n % 2 == 0 { "#e8eef7" } else { "#f4f6fa" },
            xml(&step.id),
            xml(&step.title),
            step.started_ms as f64 / 1000.0,
            step.ended_ms as f64 / 1000.0,
        ));
    }
    svg.push_str(&time_axis(buckets, 10.0 + lane * 3.0, &x));
    for (row, flow) in FLOWS.iter().enumerate() {
        let y = 10.0 + row as f64 * lane;
        svg.push_str(&format!("<text x=\"4\" y=\"{}\">{flow}</text>", y + 16.0));
        for (i, b) in p.timeline.get(*flow).into_iter().flatten().enumerate() {
            let total = (b.ok + b.fail) as f64;
            if total == 0.0 {
                continue;
            }
            let fail_h = (lane - 6.0) * b.fail as f64 / total;
            svg.push_str(&format!("<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{w:.2}\" height=\"{:.1}\" fill=\"#2e9d4a\"/>", x(i), y + fail_h, lane - 6.0 - fail_h));
            if b.fail > 0 {
                svg.push_str(&format!("<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{w:.2}\" height=\"{fail_h:.1}\" fill=\"#d33\"><title>{} failed</title></rect>", x(i), b.fail));
            }
        }
    }
    svg.push_str(&fault_bands_svg(faults, lane, &x));
    // Steps that start within a few pixels of each other (phase 1's, a few ms apart) keep their
    // line and tooltip; only the first of them is labelled, so the labels stay readable.
    let mut last_label = f64::NEG_INFINITY;
    for step in steps {
        let at = x((step.started_ms / BUCKET_MS) as usize);
        svg.push_str(&format!(
            "<line x1=\"{at:.1}\" x2=\"{at:.1}\" y1=\"6\" y2=\"{}\" stroke=\"#555\" stroke-dasharray=\"2,2\"><title>{} {}</title></line>",
            10.0 + lane * 3.0,
            xml(&step.id),
            xml(&step.title),
        ));
        if at - last_label >= 70.0 {
            svg.push_str(&format!(
                "<text x=\"{at:.1}\" y=\"{}\" font-size=\"9\">{}</text>",
                38.0 + lane * 3.0,
                xml(&step.id)
            ));
            last_label = at;
        }
    }
    svg.push_str(&containers_and_telegram_svg(p, below, buckets, &x));
    svg.push_str("</svg>");
    svg
}

/// Faults: a shaded band from injection to teardown, labelled below the lanes.
pub(super) fn fault_bands_svg(
    faults: &[FaultRecord],
    lane: f64,
    x: &impl Fn(usize) -> f64,
) -> String {
    let mut svg = String::new();
    for f in faults {
        let Some(from) = f.injected_ms else { continue };
        let to = f
            .removed_ms
            .unwrap_or(from + BUCKET_MS)
            .max(from + BUCKET_MS);
        let (x0, x1) = (x((from / BUCKET_MS) as usize), x((to / BUCKET_MS) as usize));
        svg.push_str(&format!(
            "<rect x=\"{x0:.1}\" y=\"6\" width=\"{:.1}\" height=\"{}\" fill=\"#f5a623\" fill-opacity=\"0.25\" stroke=\"#f5a623\"><title>fault: {} ({})</title></rect><text x=\"{x0:.1}\" y=\"{}\" font-size=\"9\" fill=\"#b36b00\">⚡ {}</text>",
            (x1 - x0).max(1.5),
            lane * 3.0,
            xml(&f.name),
            xml(&f.at),
            50.0 + lane * 3.0,
            xml(&f.name)
        ));
    }
    svg
}

/// One lane per container, and Telegram's two series.
pub(super) const SERVICE_LANE: f64 = 12.0;

pub(super) const SERIES_HEIGHT: f64 = 34.0;

pub(super) const LANES_BELOW_HEIGHT: f64 = 8.0 * SERVICE_LANE + 2.0 * (SERIES_HEIGHT + 10.0) + 12.0;

/// Below the flows, from `top`: one lane per service, green while its container ran and red
/// while it did not (the engine's events), then Telegram's backlog and delivery delay over
/// time, each scaled to its own maximum.
pub(super) fn containers_and_telegram_svg(
    p: &ProbeReport,
    top: f64,
    buckets: usize,
    x: &dyn Fn(usize) -> f64,
) -> String {
    let mut svg = String::new();
    let end = x(buckets);
    let at = |ms: u64| x((ms / BUCKET_MS) as usize).min(end);
    for (row, service) in harness::services::Service::ALL.iter().enumerate() {
        let y = top + row as f64 * SERVICE_LANE;
        let key = service.key();
        svg.push_str(&format!(
            "<text x=\"4\" y=\"{:.1}\" font-size=\"8\">{key}</text><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#cfe8d4\"/>",
            y + 8.0,
            x(0),
            y + 1.0,
            end - x(0),
            SERVICE_LANE - 4.0
        ));
        for span in p.containers_down.get(key).into_iter().flatten() {
            let (x0, x1) = (at(span.from_ms), span.to_ms.map_or(end, at));
            svg.push_str(&format!(
                "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#d33\"><title>{key} not running {}</title></rect>",
                y + 1.0,
                (x1 - x0).max(1.5),
                SERVICE_LANE - 4.0,
                match span.to_ms {
                    Some(to) => format!("{:.1}–{:.1} s", span.from_ms as f64 / 1000.0, to as f64 / 1000.0),
                    None => format!("from {:.1} s on", span.from_ms as f64 / 1000.0),
                }
            ));
        }
    }
    let t = &p.telegram;
    let series = [
        ("backlog", &t.backlog_series, "updates"),
        ("delay", &t.delay_series_ms, "ms"),
    ];
    for (n, (name, values, unit)) in series.into_iter().enumerate() {
        let y = top + 8.0 * SERVICE_LANE + 10.0 + n as f64 * (SERIES_HEIGHT + 10.0);
        let max = values.iter().copied().max().unwrap_or(0);
        svg.push_str(&format!(
            "<text x=\"4\" y=\"{:.1}\" font-size=\"9\">{name}</text><text x=\"4\" y=\"{:.1}\" font-size=\"8\" fill=\"#666\">max {max} {unit}</text><path d=\"M{:.1} {:.1} H{end:.1}\" stroke=\"#bbb\"/>",
            y + 12.0,
            y + 24.0,
            x(0),
            y + SERIES_HEIGHT,
        ));
        if max == 0 {
            continue;
        }
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                format!(
                    "{:.1},{:.1}",
                    at(i as u64 * SERIES_MS),
                    y + SERIES_HEIGHT - SERIES_HEIGHT * *v as f64 / max as f64
                )
            })
            .collect();
        svg.push_str(&format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"#3367d6\" stroke-width=\"1.2\"><title>Telegram's {name} over time, at most {max} {unit}</title></polyline>",
            points.join(" ")
        ));
    }
    svg
}

/// A time axis under the lanes at `y`: ticks in seconds since the first step, at most about
/// ten of them (1, 2, 5, 10, 20, 30 or 60 s apart), as one path and their labels.
pub(super) fn time_axis(buckets: usize, y: f64, x: &dyn Fn(usize) -> f64) -> String {
    let total_s = (buckets as u64 * BUCKET_MS) as f64 / 1000.0;
    let step_s = [1u64, 2, 5, 10, 20, 30, 60, 120, 300]
        .into_iter()
        .find(|s| total_s / *s as f64 <= 10.0)
        .unwrap_or(600);
    let mut path = format!("M{:.1} {y:.1}H{:.1}", x(0), x(buckets));
    let mut labels = String::new();
    let mut t = 0;
    while t as f64 <= total_s {
        let at = x((t * 1000 / BUCKET_MS) as usize);
        path.push_str(&format!("M{at:.1} {y:.1}v4"));
        labels.push_str(&format!(
            "<text x=\"{at:.1}\" y=\"{:.1}\" font-size=\"9\" text-anchor=\"middle\" fill=\"#555\">{t} s</text>",
            y + 13.0
        ));
        t += step_s;
    }
    format!("<path d=\"{path}\" stroke=\"#555\" fill=\"none\"/>{labels}")
}
