import Foundation
import IGPTData
import IGPTKernels
import IGPTModel
import SwiftProtobuf

/// A run's TensorBoard event file, RUN/tensorboard/events.out.tfevents.igpt: scalars (and
/// images) as TFRecord-framed `Event` messages, one write per record, so a killed run leaves a
/// file TensorBoard reads up to its last whole record. A resumed run cuts the file after the
/// last record at or before the step it resumes at and appends from there: no step twice.
public final class TensorBoardLog {
  public static let fileName = "events.out.tfevents.igpt"
  public let path: String
  private let handle: FileHandle

  /// Opens (or starts) the run's event file for a run at `step` (0 for a new run).
  public init(runDir: String, resumingAt step: Int) throws {
    let dir = (runDir as NSString).appendingPathComponent("tensorboard")
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    path = (dir as NSString).appendingPathComponent(Self.fileName)
    let keep = FileManager.default.contents(atPath: path).map { Self.keptPrefix($0, throughStep: step) } ?? 0
    if !FileManager.default.fileExists(atPath: path) { FileManager.default.createFile(atPath: path, contents: nil) }
    guard let h = FileHandle(forUpdatingAtPath: path) else { throw DataError.file(path, "cannot open for writing") }
    try h.truncate(atOffset: UInt64(keep))
    try h.seekToEnd()
    handle = h
    if keep == 0 {
      var e = Tensorboard_Event()
      e.wallTime = Date().timeIntervalSince1970
      e.fileVersion = "brain.Event:2"
      write(e)
    }
  }

  /// Bytes of the whole records before the first event of a step after `step` (or one that
  /// does not parse: a torn or foreign tail is dropped).
  public static func keptPrefix(_ old: Data, throughStep step: Int) -> Int {
    var keep = 0
    for r in TFRecord.records(old) {
      guard let e = try? Tensorboard_Event(serializedBytes: r.data), e.step <= Int64(step) else { break }
      keep = r.end
    }
    return keep
  }

  /// Scalars at a step, one Event with one value per tag (tags sorted).
  public func scalars(step: Int, _ values: [String: Double]) {
    guard !values.isEmpty else { return }
    var summary = Tensorboard_Summary()
    summary.value = values.keys.sorted().map { tag in
      var v = Tensorboard_Summary.Value()
      v.tag = tag
      v.simpleValue = Float(values[tag]!)
      return v
    }
    write(event(step: step, summary))
  }

  /// A PNG image at a step.
  public func image(step: Int, tag: String, png: Data, width: Int, height: Int, channels: Int) {
    var image = Tensorboard_Summary.Image()
    image.width = Int32(width)
    image.height = Int32(height)
    image.colorspace = Int32(channels)
    image.encodedImageString = png
    var v = Tensorboard_Summary.Value()
    v.tag = tag
    v.image = image
    var summary = Tensorboard_Summary()
    summary.value = [v]
    write(event(step: step, summary))
  }

  /// `count` samples of an AR model (temperature 1, seeded by the step) as a PNG grid: what
  /// the model draws at each validation. BERT models (and non-square sequences) draw nothing.
  /// `decoder` turns the tokens into pixels (the store's palette or VQ-VAE).
  public static func sampleGrid(model: IGPT, decoder: TokenDecoder, step: Int, count: Int = 8) -> (data: Data, width: Int, height: Int)? {
    let T = model.config.seq, R = Int(Double(T).squareRoot().rounded())
    guard model.config.objective == .ar, R * R == T else { return nil }
    var rngs = (0..<count).map { SeededRandom(seed: UInt64(step) &* 1_000_003 &+ UInt64($0)) }
    let tokens = Sampler(model: model, batch: count).generate(length: T, prefixes: Array(repeating: [], count: count), temperature: 1,
                                                               topK: nil, rngs: &rngs)
    let images = tokens.map { [decoder.bytes($0)] }
    guard let grid = try? ImageGrid.png(groups: images, resolution: decoder.resolution, channels: decoder.channels) else { return nil }
    return (grid.data, grid.width, grid.height)
  }

  private func event(step: Int, _ summary: Tensorboard_Summary) -> Tensorboard_Event {
    var e = Tensorboard_Event()
    e.wallTime = Date().timeIntervalSince1970
    e.step = Int64(step)
    e.summary = summary
    return e
  }

  private func write(_ e: Tensorboard_Event) {
    guard let bytes: Data = try? e.serializedBytes() else { return }
    try? handle.write(contentsOf: TFRecord.frame(bytes))  // a full disk must not stop training
  }
}
