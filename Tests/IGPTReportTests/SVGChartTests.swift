import Foundation
import Testing

#if canImport(FoundationXML)
  import FoundationXML
#endif

@testable import IGPTReport

/// The report's charts: well-formed SVG whose series carry exactly the points drawn.
struct SVGChartTests {
  /// Attributes of every element named `element` in an SVG document.
  final class Elements: NSObject, XMLParserDelegate {
    let name: String
    var found: [[String: String]] = []
    init(_ name: String) { self.name = name }
    func parser(_ parser: XMLParser, didStartElement e: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String]) {
      if e == name || attributes["class"] == name { found.append(attributes) }
    }
    static func parse(_ svg: String, _ name: String) -> [[String: String]]? {
      let parser = XMLParser(data: Data(svg.utf8))
      let d = Elements(name)
      parser.delegate = d
      return parser.parse() ? d.found : nil
    }
  }

  static func values(_ attribute: String?) -> [[Double]] {
    (attribute ?? "").split(separator: " ").map { $0.split(separator: ",").compactMap { Double($0) } }
  }

  @Test func seriesReferencesAndMarksCarryTheirData() throws {
    var chart = SVGChart(title: "Accuracy <per> layer & more", xLabel: "layer", yLabel: "accuracy",
                         series: [.init("test", [(0, 0.8), (1, 0.85), (2, 0.83)], dots: true), .init("val", [(0, 0.81), (1, 0.86)])])
    chart.references.append(.init("raw pixels 83.3%", y: 0.833))
    chart.marks.append(.init("best layer 1", x: 1, y: 0.85))
    let svg = chart.svg()
    let series = try #require(Elements.parse(svg, "series"), "not well-formed: \(svg)")
    #expect(series.map { $0["data-series"] } == ["test", "val"])
    #expect(Self.values(series[0]["data-values"]) == [[0, 0.8], [1, 0.85], [2, 0.83]])
    #expect(Self.values(series[1]["data-values"]) == [[0, 0.81], [1, 0.86]])
    #expect(Elements.parse(svg, "circle")?.count == 3 + 1)  // the dotted series and the mark
    let reference = try #require(Elements.parse(svg, "reference")?.first)
    #expect(reference["data-y"] == "0.833" && reference["data-label"] == "raw pixels 83.3%")
    #expect(Elements.parse(svg, "mark")?.first?["data-x"] == "1.0")
    #expect(svg.contains("Accuracy &lt;per&gt; layer &amp; more"))
  }

  @Test func longSeriesAreDownsampledKeepingEndsAndExtremes() {
    let n = 5000
    var points: [(x: Double, y: Double)] = []
    for i in 0..<n {
      let y: Double = i == 1234 ? 100 : i == 4321 ? -100 : sin(Double(i) / 50)
      points.append((x: Double(i), y: y))
    }
    let d = SVGChart.downsample(points, to: 400)
    let xs = d.map(\.x), ys = d.map(\.y)
    #expect(d.count <= 400 && d.count > 300)
    #expect(xs.first == 0 && xs.last == Double(n - 1) && ys.first == points[0].y && ys.last == points[n - 1].y)
    #expect(ys.contains(100) && ys.contains(-100))
    #expect(zip(xs, xs.dropFirst()).allSatisfy { $0 < $1 })
    #expect(SVGChart.downsample(Array(points.prefix(50)), to: 400).count == 50)
    let svg = SVGChart(title: "t", xLabel: "x", yLabel: "y", series: [.init("long", points)]).svg()
    #expect(Self.values(Elements.parse(svg, "series")?.first?["data-values"]).count == d.count)
  }

  @Test func tickLabelsAreShort() {
    #expect([0, -1e-17, 1.5e6, 2e4, 0.002, 5e-5, 2.5e9, 0.25].map(SVGChart.label) == ["0", "0", "1.5M", "20k", "0.002", "5e-05", "2.5G", "0.25"])
    let t = SVGChart.ticks(0, 0.0021)
    #expect(t.count >= 3 && t.count <= 12 && t.first! >= 0 && t.last! <= 0.0021 + 1e-12)
  }

  @Test func emptyChartsSayNoData() {
    let svg = SVGChart(title: "t", xLabel: "x", yLabel: "y", series: [.init("none", [])]).svg()
    #expect(svg.contains("no data") && Elements.parse(svg, "svg") != nil)
  }
}
