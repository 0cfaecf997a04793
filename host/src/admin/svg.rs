//! Drawings the console shows, made by the host as SVG: the rate of each
//! projection over the last minutes, and a node with its neighbours.

use std::f64::consts::PI;
use std::fmt::Write;

use crate::sink::{Neighbourhood, NodeView};

/// Colours of the series and node labels, in turn.
const PALETTE: [&str; 6] = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];

/// Text for XML: `&`, `<`, `>` and quotes escaped.
fn text(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// At most `max` characters of `s`, with an ellipsis when cut.
fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

/// A line chart of events per second: one line per projection, `window` seconds wide.
pub fn rate_chart(series: &[(String, Vec<(f64, f64)>)], window: f64) -> String {
    let (w, h, left, bottom, top) = (720.0, 240.0, 56.0, 28.0, 16.0);
    let max = series.iter().flat_map(|(_, p)| p.iter().map(|(_, r)| *r)).fold(1.0_f64, f64::max);
    let x = |ago: f64| left + (w - left - 12.0) * (1.0 - (ago / window).min(1.0));
    let y = |rate: f64| top + (h - top - bottom) * (1.0 - rate / max);
    let mut svg = format!(r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" font-family="sans-serif" font-size="11" role="img" aria-label="events per second">"#);
    let _ = write!(svg, r##"<rect x="{left}" y="{top}" width="{}" height="{}" fill="none" stroke="#ccc"/>"##, w - left - 12.0, h - top - bottom);
    for (value, label) in [(max, format!("{max:.0}/s")), (max / 2.0, format!("{:.0}/s", max / 2.0)), (0.0, "0".into())] {
        let _ = write!(svg, r##"<text x="{}" y="{}" text-anchor="end" fill="#555">{label}</text>"##, left - 4.0, y(value) + 4.0);
    }
    for minutes in [0.0, window / 120.0, window / 60.0] {
        let _ = write!(svg, r##"<text x="{}" y="{}" text-anchor="middle" fill="#555">{}</text>"##, x(minutes * 60.0), h - 8.0, if minutes == 0.0 { "now".to_owned() } else { format!("-{minutes:.0} min") });
    }
    for (i, (name, points)) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let path: Vec<String> = points.iter().filter(|(ago, _)| *ago <= window).map(|(ago, r)| format!("{:.1},{:.1}", x(*ago), y(*r))).collect();
        if path.len() > 1 {
            let _ = write!(svg, r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>"#, path.join(" "));
        }
        let _ = write!(svg, r#"<text x="{}" y="{}" fill="{colour}" class="series">{}</text>"#, left + 8.0, top + 14.0 + 13.0 * i as f64, text(name));
    }
    svg.push_str("</svg>");
    svg
}

/// A node in the middle, its neighbours on a circle around it, each
/// relationship a line with its type, pointing the way it goes.
pub fn neighbourhood(n: &Neighbourhood) -> String {
    let (w, h) = (760.0, 560.0);
    let (cx, cy) = (w / 2.0, h / 2.0);
    let radius = if n.edges.len() <= 6 { 170.0 } else { 230.0 };
    let mut labels: Vec<&str> = std::iter::once(n.node.label.as_str()).chain(n.edges.iter().map(|e| e.other.label.as_str())).collect();
    labels.sort();
    labels.dedup();
    let colour = |label: &str| PALETTE[labels.iter().position(|l| *l == label).unwrap_or(0) % PALETTE.len()];
    let mut svg = format!(r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" font-family="sans-serif" font-size="11" role="img" aria-label="a node and its neighbours">"#);
    svg.push_str(r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#888"/></marker></defs>"##);
    let count = n.edges.len().max(1) as f64;
    let mut nodes = String::new();
    for (i, e) in n.edges.iter().enumerate() {
        let angle = 2.0 * PI * i as f64 / count - PI / 2.0;
        let (x, y) = (cx + radius * angle.cos(), cy + radius * angle.sin());
        // The line stops short of both circles, so its arrow shows.
        let (dx, dy) = ((x - cx) / radius, (y - cy) / radius);
        let (x0, y0, x1, y1) = (cx + dx * 38.0, cy + dy * 38.0, x - dx * 30.0, y - dy * 30.0);
        let marker = if e.outgoing { r#"marker-end="url(#arrow)""# } else { r#"marker-start="url(#arrow)""# };
        let _ = write!(svg, r##"<line x1="{x0:.1}" y1="{y0:.1}" x2="{x1:.1}" y2="{y1:.1}" stroke="#888" {marker}/>"##);
        // Its type nearer the neighbour than the middle, where the lines meet.
        let (tx, ty) = (x0 + (x1 - x0) * 0.62, y0 + (y1 - y0) * 0.62);
        let _ = write!(svg, r##"<text x="{tx:.1}" y="{:.1}" text-anchor="middle" fill="#444" class="rel">{}</text>"##, ty - 4.0, text(&e.rel));
        nodes += &node(&e.other, x, y, 28.0, colour(&e.other.label));
    }
    svg += &nodes;
    svg += &node(&n.node, cx, cy, 36.0, colour(&n.node.label));
    if n.more {
        let _ = write!(svg, r##"<text x="8" y="{}" fill="#b45309">more relationships than shown</text>"##, h - 8.0);
    }
    svg.push_str("</svg>");
    svg
}

/// One node: a circle with its label inside and its key below; the console
/// opens it when it is clicked (`data-label`, `data-key`).
fn node(n: &NodeView, x: f64, y: f64, r: f64, colour: &str) -> String {
    format!(
        r##"<g class="node" data-label="{}" data-key="{}"><title>{} {}</title><circle cx="{x:.1}" cy="{y:.1}" r="{r}" fill="{colour}" fill-opacity="0.85"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="white" font-weight="bold">{}</text><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#222">{}</text></g>"##,
        text(&n.label),
        text(&n.key),
        text(&n.label),
        text(&n.key),
        y + 4.0,
        text(&short(&n.label, (r / 3.4) as usize)),
        y + r + 13.0,
        text(&short(&n.key, 24)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::EdgeView;
    use serde_json::json;

    fn view(label: &str, key: &str) -> NodeView {
        NodeView { label: label.into(), key: key.into(), props: json!({}) }
    }

    #[test]
    fn drawings_escape_what_the_read_model_holds() {
        let n = Neighbourhood {
            node: view("Interview", "<script>alert(1)</script>"),
            edges: vec![EdgeView { rel: "HAS_SENTENCE".into(), outgoing: true, other: view("Sentence", "a&b\"") }],
            more: true,
        };
        let svg = neighbourhood(&n);
        assert!(!svg.contains("<script>") && svg.contains("&lt;script&gt;") && svg.contains("a&amp;b&quot;"), "{svg}");
        assert!(svg.contains("HAS_SENTENCE") && svg.contains("marker-end") && svg.contains("more relationships"));
        let chart = rate_chart(&[("p<1>".into(), vec![(120.0, 5.0), (60.0, 10.0), (0.0, 0.0)])], 600.0);
        assert!(chart.contains("p&lt;1&gt;") && chart.contains("<polyline") && chart.contains("10/s"), "{chart}");
    }
}
