import Foundation
import IGPTData
import IGPTKernels
import Testing
@testable import IGPTTraining

/// `data.augment`: shifts and mirrors of train images, drawn per image from (seed, position).
struct AugmentationTests {
  /// A 3 x 3 image of tokens 1...9, row by row.
  static let image: [Int32] = [1, 2, 3, 4, 5, 6, 7, 8, 9]

  static func applied(_ d: Augmentation.Draw, fill: Int32 = 0) -> [Int32] {
    var x = image
    x.withUnsafeMutableBufferPointer { Augmentation.apply(d, to: $0.baseAddress!, side: 3, fill: fill) }
    return x
  }

  @Test func shiftsAndMirrorsMoveTokensAndFillTheBorder() {
    #expect(Self.applied(.init(flip: false, dx: 0, dy: 0)) == Self.image)
    // right by one: column 0 uncovered
    #expect(Self.applied(.init(flip: false, dx: 1, dy: 0)) == [0, 1, 2, 0, 4, 5, 0, 7, 8])
    // up by one (dy = -1): the bottom row uncovered, filled with the given token
    #expect(Self.applied(.init(flip: false, dx: 0, dy: -1), fill: 7) == [4, 5, 6, 7, 8, 9, 7, 7, 7])
    #expect(Self.applied(.init(flip: true, dx: 0, dy: 0)) == [3, 2, 1, 6, 5, 4, 9, 8, 7])
    // mirrored, then shifted left by one
    #expect(Self.applied(.init(flip: true, dx: -1, dy: 0)) == [2, 1, 0, 5, 4, 0, 8, 7, 0])
  }

  @Test func drawsDependOnSeedAndPositionOnlyAndCoverTheRange() {
    let a = Augmentation(translate: 2, flip: true)
    #expect(a.draw(seed: 5, position: 123) == a.draw(seed: 5, position: 123))
    let draws = (0..<2000).map { a.draw(seed: 5, position: $0) }
    #expect(Set(draws.map(\.dx)) == Set(-2...2) && Set(draws.map(\.dy)) == Set(-2...2))
    let flips = draws.filter(\.flip).count
    #expect(flips > 900 && flips < 1100, "\(flips) of 2000 mirrored")
    #expect(draws != (0..<2000).map { a.draw(seed: 6, position: $0) })
    let still = Augmentation(translate: 0, flip: false)
    #expect((0..<50).allSatisfy { still.draw(seed: 1, position: $0) == .init(flip: false, dx: 0, dy: 0) })
  }

  @Test func theFillIsTheDarkestColour() {
    #expect(Augmentation.fillToken(colors: [0.5, -0.9, 0.1, -0.9], channels: 1) == 1)
    #expect(Augmentation.fillToken(colors: [0.1, 0.1, 0.1, -1, 0.5, 0.2, -0.2, -0.2, -0.2], channels: 3) == 2)
  }

  /// The trainer augments train microbatches (the same for every build of them), not validation.
  @Test func theTrainerAugmentsTrainBatchesOnly() throws {
    let store = try TrainingFixtures.store()
    let plain = try Trainer(config: try TrainingFixtures.config(store: store), store: try TokenStore(path: store))
    var c = try TrainingFixtures.config(store: store)
    c.data.augment = Augmentation(translate: 1, flip: true)
    let augmented = try Trainer(config: c, store: try TokenStore(path: store))
    let again = try Trainer(config: c, store: try TokenStore(path: store))
    var changed = 0
    for step in 0..<4 {
      for micro in 0..<2 {
        let p = try plain.microbatch(step: step, micro: micro), a = try augmented.microbatch(step: step, micro: micro)
        #expect(a == (try again.microbatch(step: step, micro: micro)))
        // each image is its stored image under its own draw
        let palette = try #require(try TokenStore(path: store).palette)
        let fill = Augmentation.fillToken(colors: palette.colors, channels: palette.channels)
        for i in 0..<p.count {
          var expected = Array(p.tokens[(i * 16)..<((i + 1) * 16)])
          let d = c.data.augment!.draw(seed: c.train.seed, position: step * 8 + micro * 4 + i)
          expected.withUnsafeMutableBufferPointer { Augmentation.apply(d, to: $0.baseAddress!, side: 4, fill: fill) }
          #expect(Array(a.tokens[(i * 16)..<((i + 1) * 16)]) == expected)
          if expected != Array(p.tokens[(i * 16)..<((i + 1) * 16)]) { changed += 1 }
        }
      }
    }
    #expect(changed > 16, "\(changed) of 32 images changed")
    // a shift as large as the image is refused in one line naming the key
    c.data.augment = Augmentation(translate: 4, flip: false)
    #expect { try Trainer(config: c, store: try TokenStore(path: store)) } throws: { "\($0)".contains("data.augment.translate") && !"\($0)".contains("\n") }
    #expect(try augmented.validationMicrobatches() == plain.validationMicrobatches())
  }
}
