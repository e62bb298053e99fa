import Foundation
import IGPTData
import IGPTKernels
import IGPTTestSupport
@testable import IGPTTraining

/// A small token store (IDX fixture, 8x8 -> 4x4, 4 grey levels) and a config that trains on it.
enum TrainingFixtures {
  static func store() throws -> String {
    Parallel.threads = 2
    BLAS.setThreads(1)
    let src = Fixtures.directory("trainsrc")
    Fixtures.folderDataset(at: src, classes: ["a", "b"], perClass: 40, side: 8)
    let out = Fixtures.directory("trainstore") + "/store"
    var o = Preparation.Options(dataset: src, resolution: 4, out: out)
    o.paletteSize = 4
    _ = try Preparation.run(o) { _, _, _ in }
    return out
  }

  static func config(store: String, objective: String = "ar", steps: Int = 6) throws -> RunConfig {
    try RunConfig.parse("""
      model: {layers: 2, embd: 16, heads: 2, objective: \(objective)}
      data: {store: \(store)}
      train: {steps: \(steps), batch: 8, microbatch: 4, lr: 0.01, warmup: 2, seed: 3, val_every: 0, val_images: 8}
      checkpoint: {every: 100, keep: 5}
      """)
  }

  static func bytes(_ p: UnsafeMutablePointer<Float>, _ n: Int) -> [UInt8] {
    Array(UnsafeRawBufferPointer(start: p, count: n * 4))
  }
}
