//! Draws a [`Timeline`] as one self-contained SVG (no scripts, no external fonts or styles): a header with the
//! scenario, seed and result; labelled markers for the steps that change the world (faults, heals, edits); a row
//! of steps; a height chart per chain; a lane per SeiNodeDeployment and per SeiNode; a time axis in simulated
//! minutes; and a legend. Pure: the same timeline always gives the same bytes. Hovering a segment in a browser
//! shows its details (SVG `<title>`).

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::Duration;

use super::record::{DeploymentLane, NodeLane, Point, RunResult, Segment, StepMark, Timeline, Track};

const WIDTH: f64 = 1600.0;
/// Left of the plot: lane names and row labels.
const PLOT_LEFT: f64 = 190.0;
/// Right of the plot: each node's last height.
const PLOT_RIGHT: f64 = WIDTH - 70.0;
const FONT: &str = "DejaVu Sans, Helvetica, Arial, sans-serif";
/// Average glyph width over the font size, to decide whether a label fits its segment.
const GLYPH: f64 = 0.6;

const CHAIN_HEIGHT: f64 = 150.0;
const NODE_LANE: f64 = 38.0;
const MARKER_ROW: f64 = 14.0;
const MAX_MARKER_ROWS: usize = 5;

/// SeiNode `status.phase`.
const NODE_PHASES: &[(&str, &str)] = &[
    ("Pending", "#d4d4d4"),
    ("Initializing", "#f1ce63"),
    ("Running", "#a0cbe8"),
    ("Failed", "#d62728"),
    ("Terminating", "#6b6b6b"),
];
/// What the kubelet does with a node's pod.
const POD_STATES: &[(&str, &str)] = &[
    ("Ready", "#59a14f"),
    ("Running", "#8cd17d"),
    ("WaitingForSidecar", "#edc948"),
    ("Pulling", "#c9a2c6"),
    ("ImagePullBackOff", "#7b3294"),
    ("CrashLoopBackOff", "#e15759"),
    ("Terminated", "#9c755f"),
    ("NodeDown", "#333333"),
    ("Unscheduled", "#bab0ac"),
];
/// SeiNodeDeployment `status.phase`.
const DEPLOYMENT_PHASES: &[(&str, &str)] = &[
    ("Pending", "#d4d4d4"),
    ("Initializing", "#f1ce63"),
    ("Ready", "#59a14f"),
    ("Upgrading", "#4e79a7"),
    ("Degraded", "#f28e2b"),
    ("Failed", "#d62728"),
    ("Terminating", "#6b6b6b"),
];
/// Images, in natural order of their names.
const IMAGE_PALETTE: &[&str] = &["#1f77b4", "#ff7f0e", "#9467bd", "#17becf", "#8c564b", "#bcbd22", "#e377c2"];
/// Anything a table above does not name.
const OTHER: &str = "#999999";
const PLAN_TASK: &str = "#dbe7f3";
const CONDITION_TRUE: &str = "#4e79a7";
const CONDITION_FALSE: &str = "#e4e9ef";
/// Condition reasons that mean trouble, whatever the status.
const TROUBLE_REASONS: &[&str] = &["Stalled", "RolloutFailed", "NodesNotReady"];
const TROUBLE: &str = "#f28e2b";
const FAULT: &str = "#d62728";
const HEAL: &str = "#2ca02c";
const EDIT: &str = "#555555";

/// The SVG of `timeline`.
pub fn render(timeline: &Timeline) -> String {
    let mut canvas = Canvas::new(timeline);
    canvas.draw(timeline);
    canvas.finish()
}

/// Compares names the way people count: `rpc-2` before `rpc-10`.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (a.chars().next(), b.chars().next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let (da, ra) = split_digits(a);
                let (db, rb) = split_digits(b);
                let (ta, tb) = (da.trim_start_matches('0'), db.trim_start_matches('0'));
                let order = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb)).then_with(|| da.len().cmp(&db.len()));
                if order != Ordering::Equal {
                    return order;
                }
                (a, b) = (ra, rb);
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(&y);
                }
                (a, b) = (&a[x.len_utf8()..], &b[y.len_utf8()..]);
            }
        }
    }
}

fn split_digits(text: &str) -> (&str, &str) {
    let end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    text.split_at(end)
}

/// Simulated time as a clock: `m:ss`, or `h:mm:ss` from an hour on.
pub fn clock(at: Duration) -> String {
    let secs = at.as_secs();
    if secs >= 3600 {
        format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
    } else {
        format!("{}:{:02}", secs / 60, secs % 60)
    }
}

/// Escapes text for XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            // Control characters are not allowed in XML 1.0 documents.
            c if c.is_control() && c != '\n' && c != '\t' => escaped.push(' '),
            c => escaped.push(c),
        }
    }
    escaped
}

fn colour_of(table: &[(&str, &'static str)], name: &str) -> &'static str {
    table.iter().find(|(known, _)| *known == name).map_or(OTHER, |(_, colour)| colour)
}

/// Dark text on light fills, white on dark ones.
fn ink_on(fill: &str) -> &'static str {
    let channel = |i: usize| fill.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()).map_or(0.0, f64::from);
    let luminance = 0.299 * channel(1) + 0.587 * channel(3) + 0.114 * channel(5);
    if fill.len() == 7 && luminance < 140.0 { "#ffffff" } else { "#222222" }
}

fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * GLYPH
}

/// Cuts `text` to `chars` characters, with an ellipsis when cut.
fn truncate(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Where things go, and the SVG written so far.
struct Canvas {
    body: String,
    defs: String,
    /// Simulated seconds the plot spans.
    seconds: f64,
    y: f64,
    /// Top of the plot's first row: where the grid and fault lines start.
    plot_top: f64,
    images: Vec<String>,
}

impl Canvas {
    fn new(timeline: &Timeline) -> Self {
        let mut images: BTreeSet<String> = BTreeSet::new();
        for lane in timeline.nodes.values() {
            for segment in lane.image.segments() {
                images.insert(segment.value.spec.clone());
                images.extend(segment.value.current.clone());
            }
        }
        let mut images: Vec<String> = images.into_iter().collect();
        images.sort_by(|a, b| natural_cmp(a, b));
        Canvas {
            body: String::new(),
            defs: String::new(),
            seconds: timeline.end.as_secs_f64().max(1.0),
            y: 0.0,
            plot_top: 0.0,
            images,
        }
    }

    fn x(&self, at: Duration) -> f64 {
        PLOT_LEFT + (at.as_secs_f64() / self.seconds).min(1.0) * (PLOT_RIGHT - PLOT_LEFT)
    }

    fn image_colour(&self, image: &str) -> &'static str {
        match self.images.iter().position(|i| i == image) {
            Some(index) => IMAGE_PALETTE[index % IMAGE_PALETTE.len()],
            None => OTHER,
        }
    }

    fn draw(&mut self, timeline: &Timeline) {
        self.header(timeline);
        let markers = self.marker_labels(&timeline.steps);
        self.plot_top = self.y;
        self.axis_labels(self.y + 10.0, timeline.end);
        self.y += 16.0;
        let grid_at = self.body.len();
        self.steps(timeline);
        for (id, chain) in &timeline.chains {
            self.chain(id, chain, timeline);
        }
        let mut deployments: Vec<(&String, &DeploymentLane)> = timeline.deployments.iter().collect();
        deployments.sort_by(|a, b| natural_cmp(a.0, b.0));
        for (name, lane) in deployments {
            self.deployment(name, lane);
        }
        let mut nodes: Vec<(&String, &NodeLane)> = timeline.nodes.iter().collect();
        nodes.sort_by(|a, b| natural_cmp(a.0, b.0));
        self.node_header(nodes.len());
        for (index, (name, lane)) in nodes.into_iter().enumerate() {
            self.node(index, name, lane);
        }
        let plot_bottom = self.y + 4.0;
        // The grid goes under everything drawn since the first row; markers over it.
        let grid = self.grid(timeline.end, plot_bottom);
        self.body.insert_str(grid_at, &grid);
        self.markers(&markers, plot_bottom);
        self.axis_labels(plot_bottom + 14.0, timeline.end);
        self.y = plot_bottom + 34.0;
        self.legend();
    }

    fn finish(self) -> String {
        let height = self.y.ceil() + 10.0;
        let mut svg = String::with_capacity(self.body.len() + self.defs.len() + 512);
        let _ = writeln!(
            svg,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" font-family=\"{FONT}\" font-size=\"11\">"
        );
        svg.push_str("<defs>\n");
        svg.push_str(&self.defs);
        svg.push_str("</defs>\n");
        let _ = writeln!(svg, "<rect width=\"{WIDTH}\" height=\"{height}\" fill=\"#ffffff\"/>");
        svg.push_str(&self.body);
        svg.push_str("</svg>\n");
        svg
    }

    // Primitives. Coordinates are written with one decimal: enough for a screen, and the same bytes every time.

    fn rect(&mut self, x: f64, y: f64, width: f64, height: f64, fill: &str, title: Option<&str>) {
        let _ = write!(
            self.body,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{height:.1}\" fill=\"{fill}\"",
            width.max(0.6)
        );
        match title {
            Some(title) => {
                let _ = writeln!(self.body, "><title>{}</title></rect>", escape(title));
            }
            None => self.body.push_str("/>\n"),
        }
    }

    fn text(&mut self, x: f64, y: f64, size: f64, anchor: &str, fill: &str, content: &str) {
        let _ = writeln!(
            self.body,
            "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"{size}\" text-anchor=\"{anchor}\" fill=\"{fill}\">{}</text>",
            escape(content)
        );
    }

    fn line(&mut self, (x1, y1): (f64, f64), (x2, y2): (f64, f64), stroke: &str, width: f64, dash: Option<&str>) {
        let dash = dash.map(|d| format!(" stroke-dasharray=\"{d}\"")).unwrap_or_default();
        let _ = writeln!(
            self.body,
            "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"{stroke}\" stroke-width=\"{width}\"{dash}/>"
        );
    }

    /// A row of segments, each labelled inside when its label fits, or just after it when nothing is drawn there
    /// (a short plan task followed by no task).
    fn segments<T>(
        &mut self,
        track: &Track<T>,
        (y, height): (f64, f64),
        style: impl Fn(&T) -> (String, String),
        title: impl Fn(&Segment<T>) -> String,
    ) {
        let size = (height - 3.0).clamp(7.0, 10.0);
        let segments = track.segments();
        for (index, segment) in segments.iter().enumerate() {
            let (x0, x1) = (self.x(segment.start), self.x(segment.end));
            let free = segments.get(index + 1).map_or(PLOT_RIGHT, |next| self.x(next.start));
            let (fill, label) = style(&segment.value);
            self.rect(x0, y, x1 - x0, height, &fill, Some(&title(segment)));
            if height < 8.0 || label.is_empty() {
                continue;
            }
            let needed = text_width(&label, size) + 4.0;
            let ink = if needed <= x1 - x0 {
                ink_on(&fill)
            } else if needed <= free - x0 {
                "#222222"
            } else {
                continue;
            };
            self.text(x0 + 2.0, y + height / 2.0 + size * 0.36, size, "start", ink, &label);
        }
    }

    // Sections, top to bottom.

    fn header(&mut self, timeline: &Timeline) {
        let (result, colour) = match &timeline.result {
            RunResult::Passed => ("passed".to_owned(), "#2ca02c"),
            RunResult::Failed { step: Some(step), .. } => (format!("FAILED at step {step}"), "#d62728"),
            RunResult::Failed { step: None, .. } => ("FAILED in set-up".to_owned(), "#d62728"),
        };
        let _ = writeln!(
            self.body,
            "<text x=\"16\" y=\"28\" font-size=\"18\"><tspan font-weight=\"bold\">{}</tspan><tspan fill=\"#555555\"> · seed {} · simulated {} · {} steps · </tspan><tspan font-weight=\"bold\" fill=\"{colour}\">{}</tspan></text>",
            escape(&timeline.scenario),
            timeline.seed,
            clock(timeline.end),
            timeline.steps.len(),
            escape(&result)
        );
        self.y = 48.0;
        if !timeline.description.is_empty() {
            self.text(16.0, self.y, 12.0, "start", "#555555", &truncate(&timeline.description, 220));
            self.y += 18.0;
        }
        if let RunResult::Failed { reason, .. } = &timeline.result {
            // The reason's first line (an invariant's trace tail follows it), wrapped.
            let first = reason.lines().next().unwrap_or_default();
            let chars: Vec<char> = first.chars().collect();
            for chunk in chars.chunks(210).take(3) {
                let line: String = chunk.iter().collect();
                self.text(16.0, self.y, 12.0, "start", "#d62728", &line);
                self.y += 16.0;
            }
        }
        self.y += 6.0;
    }

    /// Labels for the steps that change the world, stacked in rows so none overlaps another; a label with no
    /// room left is dropped (its marker line still shows, with a tooltip). Returns each marker's step and the
    /// top of its label.
    fn marker_labels(&mut self, steps: &[StepMark]) -> Vec<(StepMark, Option<f64>)> {
        let marked: Vec<&StepMark> = steps.iter().filter(|s| marker_colour(&s.kind).is_some()).collect();
        // Each row's rightmost occupied x.
        let mut rows: Vec<f64> = Vec::new();
        let mut placed = Vec::new();
        for step in marked {
            let label = marker_label(step);
            let (x, width) = (self.x(step.at), text_width(&label, 10.0) + 6.0);
            // Near the right edge a label goes left of its line.
            let left = if x + width > WIDTH - 8.0 { x - width } else { x };
            let row = match rows.iter().position(|right| *right + 6.0 <= left) {
                Some(row) => Some(row),
                None if rows.len() < MAX_MARKER_ROWS => {
                    rows.push(f64::NEG_INFINITY);
                    Some(rows.len() - 1)
                }
                None => None,
            };
            if let Some(row) = row {
                rows[row] = left + width;
            }
            placed.push((step.clone(), row, left < x));
        }
        let top = self.y;
        let mut tops = Vec::new();
        for (step, row, leftwards) in placed {
            let label_top = row.map(|row| top + row as f64 * MARKER_ROW);
            if let Some(label_top) = label_top {
                let colour = marker_colour(&step.kind).unwrap_or(EDIT);
                let x = self.x(step.at);
                let (x, anchor) = if leftwards { (x - 3.0, "end") } else { (x + 3.0, "start") };
                self.text(x, label_top + MARKER_ROW - 4.0, 10.0, anchor, colour, &marker_label(&step));
            }
            tops.push((step, label_top));
        }
        self.y = top + rows.len() as f64 * MARKER_ROW + 4.0;
        tops
    }

    /// Vertical lines at the marked steps, from their label down through every lane.
    fn markers(&mut self, placed: &[(StepMark, Option<f64>)], bottom: f64) {
        for (step, label_top) in placed {
            let colour = marker_colour(&step.kind).unwrap_or(EDIT);
            let top = label_top.map_or(self.plot_top, |t| t + 2.0);
            let x = self.x(step.at);
            let dash = if step.kind == "edit" || step.kind == "apply" || step.kind == "delete" { "2,3" } else { "5,3" };
            let _ = writeln!(
                self.body,
                "<line x1=\"{x:.1}\" y1=\"{top:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\" stroke=\"{colour}\" stroke-width=\"1.2\" stroke-dasharray=\"{dash}\" opacity=\"0.8\"><title>{}</title></line>",
                escape(&format!("{} at {}", marker_label(step), clock(step.at)))
            );
        }
    }

    fn axis_labels(&mut self, y: f64, end: Duration) {
        for at in ticks(end) {
            let x = self.x(at);
            self.text(x, y, 10.0, "middle", "#555555", &clock(at));
        }
    }

    fn grid(&self, end: Duration, bottom: f64) -> String {
        let mut grid = String::new();
        let top = self.plot_top + 14.0;
        for at in ticks(end) {
            let x = self.x(at);
            let _ = writeln!(
                grid,
                "<line x1=\"{x:.1}\" y1=\"{top:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\" stroke=\"#e6e6e6\" stroke-width=\"1\"/>"
            );
        }
        grid
    }

    /// Every step as a bar from its start to the next step's: an expectation's bar is how long it took to hold.
    fn steps(&mut self, timeline: &Timeline) {
        let (y, height) = (self.y, 14.0);
        self.text(PLOT_LEFT - 8.0, y + 10.5, 11.0, "end", "#222222", "steps");
        let failed = match &timeline.result {
            RunResult::Failed { step, .. } => *step,
            RunResult::Passed => None,
        };
        for (index, step) in timeline.steps.iter().enumerate() {
            let end = timeline.steps.get(index + 1).map_or(timeline.end, |next| next.at);
            let (x0, x1) = (self.x(step.at), self.x(end));
            let fill = if failed == Some(step.number) {
                "#f4a6a6"
            } else {
                match step.kind.as_str() {
                    "expect" => "#cfe0f1",
                    "wait" => "#e3e3e3",
                    _ => "#bbbbbb",
                }
            };
            let title =
                format!("step {} {} {} · {}–{}", step.number, step.kind, step.detail, clock(step.at), clock(end));
            if x1 - x0 >= 1.0 {
                self.rect(x0, y, x1 - x0, height, fill, Some(&title));
                self.line((x0, y), (x0, y + height), "#ffffff", 1.0, None);
                let long = format!("{} {} {}", step.number, step.kind, step.detail);
                let short = format!("{} {}", step.number, step.kind);
                let number = step.number.to_string();
                if let Some(label) = [long, short, number].into_iter().find(|l| text_width(l, 9.0) + 4.0 <= x1 - x0) {
                    self.text(x0 + 2.0, y + 10.0, 9.0, "start", "#222222", &label);
                }
            } else {
                // An instant step: a tick.
                let colour = marker_colour(&step.kind).unwrap_or("#444444");
                let _ = writeln!(
                    self.body,
                    "<line x1=\"{x0:.1}\" y1=\"{:.1}\" x2=\"{x0:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" stroke-width=\"2\"><title>{}</title></line>",
                    y - 3.0,
                    y + height + 3.0,
                    escape(&title)
                );
            }
        }
        self.y += height + 12.0;
    }

    /// The chain's tip and every node's local height, with the upgrade heights.
    fn chain(&mut self, id: &str, chain: &super::record::ChainLane, timeline: &Timeline) {
        let nodes: Vec<(&String, Vec<Vec<Point>>)> = timeline
            .nodes
            .iter()
            .filter(|(_, lane)| lane.chain.as_deref() == Some(id))
            .map(|(name, lane)| (name, lane.height.lines()))
            .collect();
        let tip = chain.tip.lines();
        let tip_heights: Vec<u64> = tip.iter().flatten().map(|(_, h)| *h).collect();
        let (Some(&tip_low), Some(&high)) = (tip_heights.iter().min(), tip_heights.iter().max()) else { return };
        // The tip decides the range, widened for nodes somewhat behind it: a node restoring from an old snapshot
        // would flatten the chart, so its line enters from the bottom edge instead. Upgrades near the range are
        // drawn in it.
        let spread = (high - tip_low).max(10);
        let low = nodes
            .iter()
            .flat_map(|(_, lines)| lines.iter().flatten().map(|(_, h)| *h))
            .filter(|h| *h + 2 * spread >= tip_low)
            .fold(tip_low, u64::min);
        let spread = (high - low).max(10);
        let upgrades: Vec<_> =
            chain.upgrades.iter().filter(|u| u.height <= high + 2 * spread && u.height >= low).collect();
        let high = upgrades.iter().map(|u| u.height).max().unwrap_or(high).max(high);
        let pad = ((high - low) as f64 * 0.08).max(2.0);
        let (bottom_value, top_value) = (low as f64 - pad, high as f64 + pad);
        let (top, height) = (self.y, CHAIN_HEIGHT);
        let y_of = |h: f64| top + height - (h - bottom_value) / (top_value - bottom_value) * height;
        let clip = format!("chain-{}", self.defs.matches("<clipPath").count());
        let _ = writeln!(
            self.defs,
            "<clipPath id=\"{clip}\"><rect x=\"{PLOT_LEFT}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{height:.1}\"/></clipPath>",
            PLOT_RIGHT - PLOT_LEFT
        );
        self.rect(PLOT_LEFT, top, PLOT_RIGHT - PLOT_LEFT, height, "#fafafa", None);
        self.text(16.0, top + 14.0, 12.0, "start", "#222222", &format!("chain {id}"));
        self.text(16.0, top + 30.0, 10.0, "start", "#555555", "height: tip (black),");
        self.text(16.0, top + 43.0, 10.0, "start", "#555555", "each node's local height");
        self.text(16.0, top + 56.0, 10.0, "start", "#555555", "(blue; from below: syncing)");
        for value in height_ticks(bottom_value, top_value) {
            let y = y_of(value as f64);
            self.line((PLOT_LEFT - 4.0, y), (PLOT_RIGHT, y), "#ececec", 1.0, None);
            self.text(PLOT_LEFT - 6.0, y + 3.5, 10.0, "end", "#555555", &value.to_string());
        }
        let _ = writeln!(self.body, "<g clip-path=\"url(#{clip})\" fill=\"none\">");
        for upgrade in &upgrades {
            let y = y_of(upgrade.height as f64);
            self.line((PLOT_LEFT, y), (PLOT_RIGHT, y), FAULT, 1.0, Some("6,3"));
        }
        for (name, lines) in &nodes {
            for line in lines {
                self.polyline(line, &y_of, "#4e79a7", 1.2, 0.45, name);
            }
        }
        for line in &tip {
            self.polyline(line, &y_of, "#111111", 2.0, 1.0, "tip");
        }
        self.body.push_str("</g>\n");
        for upgrade in &upgrades {
            let y = y_of(upgrade.height as f64);
            self.text(
                PLOT_RIGHT - 4.0,
                y - 4.0,
                10.0,
                "end",
                FAULT,
                &format!("upgrade {} at height {}", upgrade.name, upgrade.height),
            );
        }
        self.y += height + 14.0;
    }

    fn polyline(
        &mut self,
        line: &[Point],
        y_of: &impl Fn(f64) -> f64,
        stroke: &str,
        width: f64,
        opacity: f64,
        title: &str,
    ) {
        let mut points = String::new();
        for (at, value) in line {
            let _ = write!(points, "{:.1},{:.1} ", self.x(*at), y_of(*value as f64));
        }
        let _ = writeln!(
            self.body,
            "<polyline points=\"{}\" stroke=\"{stroke}\" stroke-width=\"{width}\" stroke-opacity=\"{opacity}\" stroke-linejoin=\"round\"><title>{}</title></polyline>",
            points.trim_end(),
            escape(title)
        );
    }

    fn deployment(&mut self, name: &str, lane: &DeploymentLane) {
        let top = self.y;
        self.text(16.0, top + 11.0, 12.0, "start", "#222222", "SeiNodeDeployment");
        self.text(16.0, top + 26.0, 13.0, "start", "#222222", name);
        let mut y = top;
        let row_label = |canvas: &mut Canvas, y: f64, label: &str| {
            canvas.text(PLOT_LEFT - 8.0, y, 10.0, "end", "#555555", label);
        };
        row_label(self, y + 11.0, "phase");
        self.segments(
            &lane.phase,
            (y, 15.0),
            |phase| (colour_of(DEPLOYMENT_PHASES, phase).to_owned(), phase.clone()),
            |s| format!("{name} phase {} · {}–{}", s.value, clock(s.start), clock(s.end)),
        );
        y += 18.0;
        row_label(self, y + 11.0, "plan task");
        self.segments(
            &lane.task,
            (y, 15.0),
            |task| (if task.starts_with("failed") { FAULT } else { PLAN_TASK }.to_owned(), task.clone()),
            |s| format!("{name} plan task {} · {}–{}", s.value, clock(s.start), clock(s.end)),
        );
        y += 18.0;
        for (kind, track) in &lane.conditions {
            row_label(self, y + 9.5, kind);
            self.segments(
                track,
                (y, 12.0),
                |c| {
                    let fill = if TROUBLE_REASONS.contains(&c.reason.as_str()) {
                        TROUBLE
                    } else if c.status == "True" {
                        CONDITION_TRUE
                    } else {
                        CONDITION_FALSE
                    };
                    (fill.to_owned(), format!("{} {}", c.status, c.reason))
                },
                |s| {
                    format!("{name} {kind} {} {} · {}–{}", s.value.status, s.value.reason, clock(s.start), clock(s.end))
                },
            );
            y += 14.0;
        }
        self.y = y.max(top + 32.0) + 12.0;
    }

    fn node_header(&mut self, count: usize) {
        let y = self.y + 12.0;
        self.text(16.0, y, 12.0, "start", "#222222", &format!("SeiNodes ({count})"));
        self.text(
            PLOT_LEFT,
            y,
            10.0,
            "start",
            "#555555",
            "each lane: phase (thin) · pod as the kubelet runs it · image (hatched: spec.image differs from currentImage; ▮ currentImage changed) · sidecarReady (thin) · last height on the right",
        );
        self.y += 20.0;
    }

    fn node(&mut self, index: usize, name: &str, lane: &NodeLane) {
        let top = self.y;
        if index.is_multiple_of(2) {
            self.rect(8.0, top - 2.0, WIDTH - 16.0, NODE_LANE, "#f5f5f5", None);
        }
        self.text(16.0, top + 19.0, 12.0, "start", "#222222", name);
        self.segments(
            &lane.phase,
            (top, 5.0),
            |phase| (colour_of(NODE_PHASES, phase).to_owned(), String::new()),
            |s| format!("{name} phase {} · {}–{}", s.value, clock(s.start), clock(s.end)),
        );
        self.segments(
            &lane.pod,
            (top + 6.0, 13.0),
            |pod| (colour_of(POD_STATES, &pod.state).to_owned(), pod.state.clone()),
            |s| {
                let detail = if s.value.detail.is_empty() { String::new() } else { format!(" ({})", s.value.detail) };
                format!("{name} pod {}{detail} · {}–{}", s.value.state, clock(s.start), clock(s.end))
            },
        );
        self.image_row(name, lane, top + 20.0);
        self.segments(
            &lane.sidecar_ready,
            (top + 31.0, 3.0),
            |ready| (if *ready { "#2ca02c" } else { "#e15759" }.to_owned(), String::new()),
            |s| format!("{name} sidecarReady {} · {}–{}", s.value, clock(s.start), clock(s.end)),
        );
        if let Some(height) = lane.height.last() {
            self.text(PLOT_RIGHT + 12.0, top + 19.0, 10.0, "start", "#555555", &format!("h {height}"));
        }
        self.y += NODE_LANE;
    }

    /// The image row: coloured by currentImage, hatched in spec.image's colour while they differ, with a marker
    /// where currentImage changed.
    fn image_row(&mut self, name: &str, lane: &NodeLane, y: f64) {
        let height = 10.0;
        let mut previous: Option<Option<String>> = None;
        for segment in lane.image.segments() {
            let image = &segment.value;
            let (x0, x1) = (self.x(segment.start), self.x(segment.end));
            let current = image.current.as_deref().map_or("#ffffff", |c| self.image_colour(c));
            let title = format!(
                "{name} image {} currentImage {} · {}–{}",
                image.spec,
                image.current.as_deref().unwrap_or("none"),
                clock(segment.start),
                clock(segment.end)
            );
            self.rect(x0, y, x1 - x0, height, current, Some(&title));
            let differs = image.current.as_deref() != Some(image.spec.as_str());
            if differs {
                let hatch = self.hatch(&image.spec);
                self.rect(x0, y, x1 - x0, height, &format!("url(#{hatch})"), None);
            }
            let label = match &image.current {
                Some(current) if !differs => current.clone(),
                Some(current) => format!("{current} → {}", image.spec),
                None => format!("→ {}", image.spec),
            };
            if text_width(&label, 8.0) + 5.0 <= x1 - x0 {
                let ink = if differs { "#222222" } else { ink_on(current) };
                if differs {
                    // Readable over the hatching.
                    let w = text_width(&label, 8.0) + 2.0;
                    self.rect(x0 + 2.0, y + 1.0, w, height - 2.0, "#ffffff", None);
                }
                self.text(x0 + 3.0, y + 8.0, 8.0, "start", ink, &label);
            }
            if let Some(before) = &previous
                && *before != image.current
                && image.current.is_some()
            {
                let _ = writeln!(
                    self.body,
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"2.5\" height=\"{:.1}\" fill=\"#111111\"><title>{}</title></rect>",
                    x0 - 1.0,
                    y - 2.0,
                    height + 4.0,
                    escape(&format!(
                        "{name} currentImage {} → {} at {}",
                        before.as_deref().unwrap_or("none"),
                        image.current.as_deref().unwrap_or("none"),
                        clock(segment.start)
                    ))
                );
            }
            previous = Some(image.current.clone());
        }
    }

    /// The id of the hatch pattern in `image`'s colour, defined on first use.
    fn hatch(&mut self, image: &str) -> String {
        let index = self.images.iter().position(|i| i == image).unwrap_or(usize::MAX);
        let id = if index == usize::MAX { "hatch-other".to_owned() } else { format!("hatch-{index}") };
        if !self.defs.contains(&format!("id=\"{id}\"")) {
            let colour = self.image_colour(image);
            let _ = writeln!(
                self.defs,
                "<pattern id=\"{id}\" patternUnits=\"userSpaceOnUse\" width=\"6\" height=\"6\" patternTransform=\"rotate(45)\"><rect width=\"2\" height=\"6\" fill=\"{colour}\" fill-opacity=\"0.8\"/></pattern>"
            );
        }
        id
    }

    fn legend(&mut self) {
        let images: Vec<(String, &'static str)> =
            self.images.iter().map(|image| (image.clone(), self.image_colour(image))).collect();
        let owned = |table: &[(&str, &'static str)]| -> Vec<(String, &'static str)> {
            table.iter().map(|(name, colour)| ((*name).to_owned(), *colour)).collect()
        };
        let groups: Vec<(&str, Vec<(String, &'static str)>)> = vec![
            ("pod (kubelet)", owned(POD_STATES)),
            ("SeiNode phase", owned(NODE_PHASES)),
            ("image (currentImage)", images),
            ("deployment phase", owned(DEPLOYMENT_PHASES)),
            (
                "conditions",
                vec![
                    ("True".to_owned(), CONDITION_TRUE),
                    ("False".to_owned(), CONDITION_FALSE),
                    ("Stalled / failed / nodes not ready".to_owned(), TROUBLE),
                ],
            ),
            (
                "markers",
                vec![
                    ("fault".to_owned(), FAULT),
                    ("heal".to_owned(), HEAL),
                    ("edit / apply / delete".to_owned(), EDIT),
                    ("currentImage changed (a bar in the image row)".to_owned(), "#111111"),
                ],
            ),
        ];
        for (title, entries) in groups {
            self.text(16.0, self.y + 10.0, 11.0, "start", "#222222", title);
            let mut x = PLOT_LEFT;
            for (label, colour) in entries {
                let width = 16.0 + text_width(&label, 10.0) + 14.0;
                if x + width > WIDTH - 16.0 {
                    x = PLOT_LEFT;
                    self.y += 16.0;
                }
                self.rect(x, self.y + 1.0, 12.0, 11.0, colour, None);
                self.text(x + 16.0, self.y + 10.0, 10.0, "start", "#222222", &label);
                x += width;
            }
            self.y += 18.0;
        }
    }
}

/// The colour of a step that gets a marker line; `None`: it shows in the step row only.
fn marker_colour(kind: &str) -> Option<&'static str> {
    match kind {
        "fault" => Some(FAULT),
        "heal" => Some(HEAL),
        "edit" | "apply" | "delete" => Some(EDIT),
        _ => None,
    }
}

fn marker_label(step: &StepMark) -> String {
    truncate(&format!("{} {} {}", step.number, step.kind, step.detail), 70)
}

/// Tick times for the time axis: a round interval giving at most a dozen ticks.
fn ticks(end: Duration) -> Vec<Duration> {
    const STEPS: &[u64] = &[1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
    let seconds = end.as_secs_f64().max(1.0);
    let step = STEPS.iter().copied().find(|s| seconds / *s as f64 <= 12.0).unwrap_or(86400);
    (0..).map(|i| Duration::from_secs(i * step)).take_while(|at| *at <= end).collect()
}

/// Round heights between `low` and `high` for the chart's axis.
fn height_ticks(low: f64, high: f64) -> Vec<u64> {
    let span = (high - low).max(1.0);
    let raw = span / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step =
        [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(magnitude * 10.0).max(1.0);
    let first = (low.max(0.0) / step).ceil() * step;
    let mut ticks = Vec::new();
    let mut value = first;
    while value <= high && ticks.len() < 20 {
        ticks.push(value as u64);
        value += step;
    }
    ticks
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::record::{ChainLane, ConditionState, ImageState, PodState, Series, UpgradeMark};
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn seg<T>(start: u64, end: u64, value: T) -> Segment<T> {
        Segment { start: secs(start), end: secs(end), value }
    }

    fn pod(state: &str) -> PodState {
        PodState { state: state.to_owned(), detail: String::new() }
    }

    fn image(spec: &str, current: Option<&str>) -> ImageState {
        ImageState { spec: spec.to_owned(), current: current.map(str::to_owned) }
    }

    /// Two nodes, one deployment, one chain, a fault and a heal: small enough to read in the snapshot.
    pub(crate) fn small_timeline() -> Timeline {
        let node = |crashed: bool| NodeLane {
            chain: Some("c-1".to_owned()),
            phase: Track::from_segments(vec![
                seg(0, 20, "Initializing".to_owned()),
                seg(20, 120, "Running".to_owned()),
            ]),
            pod: Track::from_segments(if crashed {
                vec![seg(5, 20, pod("Ready")), seg(20, 50, pod("CrashLoopBackOff")), seg(50, 120, pod("Ready"))]
            } else {
                vec![seg(5, 120, pod("Ready"))]
            }),
            image: Track::from_segments(vec![
                seg(0, 20, image("sei:v1", None)),
                seg(20, 60, image("sei:v1", Some("sei:v1"))),
                seg(60, 120, image("sei:v2", Some("sei:v2"))),
            ]),
            sidecar_ready: Track::from_segments(vec![seg(20, 120, true)]),
            height: Series::from_lines(vec![vec![(secs(5), 100), (secs(20), 120), (secs(120), 220)]]),
        };
        let condition = |status: &str, reason: &str| ConditionState { status: status.into(), reason: reason.into() };
        let deployment = DeploymentLane {
            phase: Track::from_segments(vec![seg(0, 60, "Ready".to_owned()), seg(60, 120, "Upgrading".to_owned())]),
            task: Track::from_segments(vec![seg(60, 90, "update-node-specs 1/2".to_owned())]),
            conditions: BTreeMap::from([(
                "RolloutInProgress".to_owned(),
                Track::from_segments(vec![
                    seg(0, 60, condition("False", "NoRollout")),
                    seg(60, 120, condition("True", "TemplateChanged")),
                ]),
            )]),
        };
        let step = |number: usize, kind: &str, detail: &str, at: u64| StepMark {
            number,
            kind: kind.to_owned(),
            detail: detail.to_owned(),
            at: secs(at),
        };
        Timeline {
            scenario: "small <one> & only".to_owned(),
            description: "two nodes, \"quoted\"".to_owned(),
            seed: 3,
            end: secs(120),
            result: RunResult::Failed { step: Some(4), reason: "step 4 (expect): not met".to_owned() },
            steps: vec![
                step(1, "apply", "fixtures/x.yaml", 0),
                step(2, "fault", "podCrash node: n-2", 20),
                step(3, "heal", "all", 50),
                step(4, "expect", "within 1m", 60),
            ],
            chains: BTreeMap::from([(
                "c-1".to_owned(),
                ChainLane {
                    tip: Series::from_lines(vec![vec![(secs(0), 100), (secs(120), 220)]]),
                    upgrades: vec![UpgradeMark { name: "v2".to_owned(), height: 200 }],
                },
            )]),
            deployments: BTreeMap::from([("dep".to_owned(), deployment)]),
            nodes: BTreeMap::from([("n-10".to_owned(), node(false)), ("n-2".to_owned(), node(true))]),
        }
    }

    #[test]
    fn names_sort_the_way_people_count() {
        let mut names = vec!["rpc-10", "rpc-2", "rpc-g2-0", "rpc-1", "rpc-02", "api", "rpc-"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(names, ["api", "rpc-", "rpc-1", "rpc-2", "rpc-02", "rpc-10", "rpc-g2-0"]);
    }

    #[test]
    fn text_is_escaped_for_xml() {
        assert_eq!(escape("a<b> & \"c\" 'd'\u{7}"), "a&lt;b&gt; &amp; &quot;c&quot; &apos;d&apos; ");
    }

    #[test]
    fn the_time_axis_reads_as_a_clock() {
        assert_eq!(clock(secs(75)), "1:15");
        assert_eq!(clock(secs(3725)), "1:02:05");
        assert_eq!(
            ticks(secs(317)).iter().map(|t| clock(*t)).collect::<Vec<_>>(),
            ["0:00", "0:30", "1:00", "1:30", "2:00", "2:30", "3:00", "3:30", "4:00", "4:30", "5:00"]
        );
        assert_eq!(ticks(Duration::ZERO), [Duration::ZERO]);
    }

    #[test]
    fn a_small_timeline_draws_as_reviewed() {
        insta::assert_snapshot!(render(&small_timeline()));
    }
}
