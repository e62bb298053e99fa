import Foundation

/// A line chart as inline SVG: series of (x, y) points on linear axes, optional horizontal
/// reference lines (a floor to beat) and marked points (the best layer). Each series also
/// carries the values it was drawn from (`data-values`, after downsampling), so a reader or a
/// test can check the chart against its data without reading pixels.
public struct SVGChart {
  public struct Series {
    public var name: String
    public var points: [(x: Double, y: Double)]
    /// Dots at every point (short series such as accuracy per layer), else a plain line.
    public var dots = false
    public init(_ name: String, _ points: [(x: Double, y: Double)], dots: Bool = false) {
      self.name = name
      self.points = points
      self.dots = dots
    }
  }

  public struct Reference {
    public var label: String
    public var y: Double
    public init(_ label: String, y: Double) {
      self.label = label
      self.y = y
    }
  }

  public struct Mark {
    public var label: String
    public var x: Double
    public var y: Double
    public init(_ label: String, x: Double, y: Double) {
      self.label = label
      self.x = x
      self.y = y
    }
  }

  public var title: String
  public var xLabel: String
  public var yLabel: String
  public var series: [Series]
  public var references: [Reference] = []
  public var marks: [Mark] = []
  /// Most points drawn per series: longer series are downsampled (`downsample`).
  public var maxPoints = 400
  static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"]

  public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
    self.title = title
    self.xLabel = xLabel
    self.yLabel = yLabel
    self.series = series
  }

  /// At most n points that keep a series' shape: the first and last point, and in each of
  /// n/2 - 1 equal runs between them its lowest and highest point, in order.
  public static func downsample(_ points: [(x: Double, y: Double)], to n: Int) -> [(x: Double, y: Double)] {
    guard points.count > n, n >= 4 else { return points }
    let buckets = n / 2 - 1
    var out = [points[0]]
    let inner = points.count - 2
    for b in 0..<buckets {
      let lo = 1 + b * inner / buckets, hi = 1 + (b + 1) * inner / buckets
      guard lo < hi else { continue }
      let run = points[lo..<hi]
      let low = run.indices.min { run[$0].y < run[$1].y }!, high = run.indices.max { run[$0].y < run[$1].y }!
      for i in Set([low, high]).sorted() { out.append(points[i]) }
    }
    out.append(points[points.count - 1])
    return out
  }

  /// The chart's SVG element (640 x 300 user units, scaling to its container).
  public func svg() -> String {
    let w = 640.0, h = 300.0, left = 64.0, right = 16.0, top = 28.0, bottom = 44.0
    let drawn = series.map { Series($0.name, Self.downsample($0.points.filter { $0.x.isFinite && $0.y.isFinite }, to: maxPoints), dots: $0.dots) }
    let xs = drawn.flatMap { $0.points.map(\.x) } + marks.map(\.x)
    let ys = drawn.flatMap { $0.points.map(\.y) } + references.map(\.y) + marks.map(\.y)
    var out = "<svg class=\"chart\" viewBox=\"0 0 \(Int(w)) \(Int(h))\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"\(Self.escape(title))\">"
    out += "<text x=\"\(left)\" y=\"18\" class=\"title\">\(Self.escape(title))</text>"
    guard let x0 = xs.min(), let x1 = xs.max(), let y0 = ys.min(), let y1 = ys.max() else {
      return out + "<text x=\"\(left)\" y=\"\(h / 2)\">no data</text></svg>"
    }
    let (xa, xb) = Self.padded(x0, x1, pad: 0), (ya, yb) = Self.padded(y0, y1, pad: 0.05)
    func px(_ x: Double) -> String { Self.number(left + (x - xa) / (xb - xa) * (w - left - right)) }
    func py(_ y: Double) -> String { Self.number(h - bottom - (y - ya) / (yb - ya) * (h - top - bottom)) }
    // axes and ticks
    out += "<line x1=\"\(left)\" y1=\"\(h - bottom)\" x2=\"\(w - right)\" y2=\"\(h - bottom)\" class=\"axis\"/>"
    out += "<line x1=\"\(left)\" y1=\"\(top)\" x2=\"\(left)\" y2=\"\(h - bottom)\" class=\"axis\"/>"
    for t in Self.ticks(xa, xb) {
      out += "<text x=\"\(px(t))\" y=\"\(h - bottom + 16)\" text-anchor=\"middle\" class=\"tick\">\(Self.label(t))</text>"
    }
    for t in Self.ticks(ya, yb) {
      out += "<line x1=\"\(left)\" y1=\"\(py(t))\" x2=\"\(w - right)\" y2=\"\(py(t))\" class=\"grid\"/>"
      out += "<text x=\"\(left - 6)\" y=\"\(py(t))\" dy=\"4\" text-anchor=\"end\" class=\"tick\">\(Self.label(t))</text>"
    }
    out += "<text x=\"\((left + w - right) / 2)\" y=\"\(h - 8)\" text-anchor=\"middle\" class=\"label\">\(Self.escape(xLabel))</text>"
    out += "<text x=\"14\" y=\"\((top + h - bottom) / 2)\" transform=\"rotate(-90 14 \((top + h - bottom) / 2))\" text-anchor=\"middle\" class=\"label\">\(Self.escape(yLabel))</text>"
    for r in references {
      out += "<g class=\"reference\" data-label=\"\(Self.escape(r.label))\" data-y=\"\(r.y)\"><line x1=\"\(left)\" y1=\"\(py(r.y))\" x2=\"\(w - right)\" y2=\"\(py(r.y))\"/>"
      out += "<text x=\"\(left + 6)\" y=\"\(py(r.y))\" dy=\"-4\">\(Self.escape(r.label))</text></g>"
    }
    for (i, s) in drawn.enumerated() {
      let colour = Self.palette[i % Self.palette.count]
      let values = s.points.map { "\($0.x),\($0.y)" }.joined(separator: " ")
      out += "<g class=\"series\" data-series=\"\(Self.escape(s.name))\" data-values=\"\(values)\" stroke=\"\(colour)\" fill=\"\(colour)\">"
      out += "<polyline fill=\"none\" points=\"\(s.points.map { "\(px($0.x)),\(py($0.y))" }.joined(separator: " "))\"/>"
      if s.dots { for p in s.points { out += "<circle cx=\"\(px(p.x))\" cy=\"\(py(p.y))\" r=\"3\"/>" } }
      out += "</g>"
    }
    for m in marks {
      out += "<g class=\"mark\" data-label=\"\(Self.escape(m.label))\" data-x=\"\(m.x)\" data-y=\"\(m.y)\"><circle cx=\"\(px(m.x))\" cy=\"\(py(m.y))\" r=\"6\"/>"
      // a label near either side of the plot is anchored inwards, so it is not cut off
      let at = (m.x - xa) / max(xb - xa, 1e-300), anchor = at > 0.8 ? "end" : at < 0.2 ? "start" : "middle"
      out += "<text x=\"\(px(m.x))\" y=\"\(py(m.y))\" dy=\"-10\" text-anchor=\"\(anchor)\">\(Self.escape(m.label))</text></g>"
    }
    if drawn.count > 1 {
      for (i, s) in drawn.enumerated() {
        let y = top + 4 + Double(i) * 14
        out += "<text x=\"\(w - right - 4)\" y=\"\(Self.number(y + 10))\" text-anchor=\"end\" class=\"legend\" fill=\"\(Self.palette[i % Self.palette.count])\">\(Self.escape(s.name))</text>"
      }
    }
    return out + "</svg>"
  }

  static func padded(_ a: Double, _ b: Double, pad: Double) -> (Double, Double) {
    if a == b { return (a - max(abs(a) * 0.1, 1e-9), b + max(abs(b) * 0.1, 1e-9)) }
    let p = (b - a) * pad
    return (a - p, b + p)
  }

  /// About five round tick values in [a, b].
  static func ticks(_ a: Double, _ b: Double) -> [Double] {
    let raw = (b - a) / 5, mag = pow(10, (log10(raw)).rounded(.down)), f = raw / mag
    let step = (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag
    var t = (a / step).rounded(.up) * step, out: [Double] = []
    while t <= b + step * 1e-9 && out.count < 12 {
      out.append(t)
      t += step
    }
    return out
  }

  /// A tick's text: 1.5M, 20k, 0.002, 5e-05 (and 0, never -0).
  static func label(_ v: Double) -> String {
    let a = abs(v)
    func short(_ x: Double) -> String { String(format: "%g", (x * 100).rounded() / 100) }
    if a < 1e-12 { return "0" }
    if a >= 1e9 { return short(v / 1e9) + "G" }
    if a >= 1e6 { return short(v / 1e6) + "M" }
    if a >= 1e4 { return short(v / 1e3) + "k" }
    if a < 1e-3 { return String(format: "%.0e", v) }
    return String(format: "%g", (v * 1e6).rounded() / 1e6)
  }

  static func number(_ v: Double) -> String { String(format: "%.1f", v) }

  /// Text safe inside XML content and attributes.
  public static func escape(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
      .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
  }
}
