import CImage
import Foundation
import IGPTModel

/// Reads folders of images (PNG, JPEG, BMP): one subfolder per class (labels = sorted folder
/// names) or flat (unlabelled). A folder with `train/` (and optionally `val/`, `test/`)
/// subfolders gives those splits. All images must have one size and channel count.
public enum ImageFolderReader {
  static let extensions: Set<String> = ["png", "jpg", "jpeg", "bmp"]

  /// One decoded image.
  public static func decode(_ path: String, channels wanted: Int) throws -> (width: Int, height: Int, pixels: [UInt8]) {
    var w: Int32 = 0, h: Int32 = 0, c: Int32 = 0
    guard let p = cimage_load(path, &w, &h, &c, Int32(wanted)) else {
      let why = cimage_failure_reason().map { String(cString: $0) } ?? "unknown"
      throw DataError.file(path, "cannot decode image (\(why))")
    }
    defer { cimage_free(p) }
    let n = Int(w) * Int(h) * wanted
    return (Int(w), Int(h), Array(UnsafeBufferPointer(start: p, count: n)))
  }

  /// Image channels stored in a file (1 grey, 3 colour), read from its header.
  static func fileChannels(_ path: String) throws -> Int {
    var w: Int32 = 0, h: Int32 = 0, c: Int32 = 0
    guard let p = cimage_load(path, &w, &h, &c, 0) else {
      let why = cimage_failure_reason().map { String(cString: $0) } ?? "unknown"
      throw DataError.file(path, "cannot decode image (\(why))")
    }
    cimage_free(p)
    return c <= 2 ? 1 : 3
  }

  static func isDirectory(_ path: String) -> Bool {
    var dir: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &dir) && dir.boolValue
  }

  static func listing(_ dir: String) throws -> [String] {
    do { return try FileManager.default.contentsOfDirectory(atPath: dir).filter { !$0.hasPrefix(".") }.sorted() }
    catch { throw DataError.file(dir, "cannot list directory") }
  }

  /// Files of one split: (path, class index) in sorted order; classes from subfolders, or one
  /// unlabelled class (-1) for a flat folder.
  static func files(in dir: String, classes: [String]?) throws -> (files: [(String, Int32)], classes: [String]) {
    let entries = try listing(dir)
    let subdirs = entries.filter { isDirectory((dir as NSString).appendingPathComponent($0)) }
    if !subdirs.isEmpty {
      let names = classes ?? subdirs
      var out: [(String, Int32)] = []
      for name in subdirs {
        guard let label = names.firstIndex(of: name) else {
          throw DataError.file((dir as NSString).appendingPathComponent(name), "class folder not present in the train split")
        }
        let sub = (dir as NSString).appendingPathComponent(name)
        for f in try listing(sub) where extensions.contains((f as NSString).pathExtension.lowercased()) {
          out.append(((sub as NSString).appendingPathComponent(f), Int32(label)))
        }
      }
      return (out, names)
    }
    let images = entries.filter { extensions.contains(($0 as NSString).pathExtension.lowercased()) }
    return (images.map { ((dir as NSString).appendingPathComponent($0), -1) }, [])
  }

  /// Decodes files in parallel into one ImageSet, checking they all share one size.
  static func load(_ files: [(String, Int32)], channels: Int, dir: String, progress: ((Int, Int) -> Void)?) throws -> ImageSet {
    guard let first = files.first else { throw DataError.file(dir, "contains no PNG, JPEG or BMP images") }
    let probe = try decode(first.0, channels: channels)
    let per = probe.width * probe.height * channels
    try MemoryBudget.check(Double(files.count) * Double(per), for: "decoding \(files.count) images of \(probe.width)x\(probe.height) in \(dir)")
    var pixels = [UInt8](repeating: 0, count: files.count * per)
    var failure: DataError?
    let lock = NSLock()
    let workers = max(1, ProcessInfo.processInfo.activeProcessorCount)
    var done = 0
    pixels.withUnsafeMutableBufferPointer { buf in
      let out = UnsafeSendable(buf.baseAddress!)
      DispatchQueue.concurrentPerform(iterations: workers) { w in
        var i = w
        while i < files.count {
          do {
            let img = try decode(files[i].0, channels: channels)
            guard img.width == probe.width, img.height == probe.height else {
              throw DataError.file(files[i].0, "is \(img.width)x\(img.height), but \(first.0) is \(probe.width)x\(probe.height): all images must have one size")
            }
            img.pixels.withUnsafeBufferPointer { (out.value + i * per).update(from: $0.baseAddress!, count: per) }
          } catch {
            lock.lock()
            if failure == nil { failure = error as? DataError ?? DataError.file(files[i].0, "\(error)") }
            lock.unlock()
            return
          }
          lock.lock()
          done += 1
          let d = done
          lock.unlock()
          if w == 0 { progress?(d, files.count) }
          i += workers
        }
      }
    }
    if let failure { throw failure }
    return ImageSet(width: probe.width, height: probe.height, channels: channels, pixels: pixels,
                    labels: files.map { $0.1 })
  }

  /// Reads a folder dataset. Grey images stay one channel unless any image has colour.
  public static func readDirectory(_ dir: String, progress: ((Int, Int) -> Void)? = nil) throws -> SourceDataset {
    let entries = try listing(dir)
    let splitDirs = Set(entries.filter { ["train", "val", "test"].contains($0) && isDirectory((dir as NSString).appendingPathComponent($0)) })
    let trainDir = splitDirs.contains("train") ? (dir as NSString).appendingPathComponent("train") : dir
    let (trainFiles, classes) = try files(in: trainDir, classes: nil)
    guard let first = trainFiles.first else { throw DataError.file(trainDir, "contains no PNG, JPEG or BMP images") }
    let channels = try fileChannels(first.0)
    var other: [String: ImageSet] = [:]
    let train = try load(trainFiles, channels: channels, dir: trainDir, progress: progress)
    for name in ["val", "test"] where splitDirs.contains(name) {
      let d = (dir as NSString).appendingPathComponent(name)
      let (f, _) = try files(in: d, classes: classes.isEmpty ? nil : classes)
      let set = try load(f, channels: channels, dir: d, progress: nil)
      guard set.width == train.width, set.height == train.height else {
        throw DataError.file(d, "images are \(set.width)x\(set.height), train images \(train.width)x\(train.height)")
      }
      other[name] = set
    }
    var trainSet = train
    if classes.isEmpty { trainSet.labels = [] }
    return SourceDataset(format: "folder", source: dir, train: trainSet, test: other["test"],
                         val: other["val"], classNames: classes)
  }
}

/// A raw pointer carried into concurrentPerform; each iteration writes a disjoint range.
struct UnsafeSendable<T>: @unchecked Sendable {
  let value: T
  init(_ value: T) { self.value = value }
}
