import Foundation
import Testing
@testable import IGPTKernels

@Suite struct FastMathTests {
  @Test func expIsAccurateAcrossTheRange() {
    var worst = 0.0
    var x: Float = -80
    while x < 80 {
      let got = Double(FastMath.exp(x))
      let want = exp(Double(x))
      worst = max(worst, abs(got - want) / want)
      x += 0.0137
    }
    #expect(worst < 1e-6)
  }

  @Test func expSaturatesWithoutInfinityOrNaN() {
    let v = FastMath.exp16(FastMath.V(repeating: -1000)) + FastMath.exp16(FastMath.V(repeating: 1000))
    #expect((0..<16).allSatisfy { v[$0].isFinite })
    #expect(FastMath.exp(-1000) >= 0)
  }

  @Test func sqrtIsAccurateAndZeroAtZero() {
    var worst = 0.0
    var x: Float = 1e-20
    while x < 1e20 {
      let got = Double(FastMath.sqrt16(FastMath.V(repeating: x))[0])
      worst = max(worst, abs(got - Double(x).squareRoot()) / Double(x).squareRoot())
      x *= 1.37
    }
    #expect(worst < 3e-7)
    #expect(FastMath.sqrt16(FastMath.V())[0] == 0)
  }

  @Test func maskedSoftmaxZeroesPaddingExactly() {
    var r = Rand(5)
    for valid in [1, 7, 16, 17, 40] {
      let width = (valid + 15) / 16 * 16
      var row = r.normal(width, std: 2)
      let want = row[0..<valid].map { exp(Double($0)) }
      let z = want.reduce(0, +)
      Softmax.inPlaceMasked(&row, valid: valid, width: width)
      for j in 0..<valid { #expect(abs(Double(row[j]) - want[j] / z) < 1e-6) }
      for j in valid..<width { #expect(row[j] == 0) }
    }
  }

  @Test func softmaxSumsToOneAndReturnsLogSumExp() {
    var r = Rand(3)
    for n in [1, 5, 16, 17, 196] {
      var row = r.normal(n, std: 3)
      let lse = (log(row.map { exp(Double($0)) }.reduce(0, +)))
      let got = Softmax.inPlace(&row, n)
      #expect(abs(Double(got) - lse) < 1e-5 * max(1, abs(lse)))
      #expect(abs(row.reduce(0, +) - 1) < 1e-5)
    }
  }

  @Test func dotMatchesScalarSum() {
    var r = Rand(4)
    let a = r.normal(37), b = r.normal(37)
    let want = zip(a, b).map { Double($0) * Double($1) }.reduce(0, +)
    #expect(abs(Double(FastMath.dot(a, b, 37)) - want) < 1e-5)
  }
}

@Suite struct ParallelTests {
  @Test func chunksCoverTheRangeOnceAndAligned() {
    for count in [0, 1, 15, 16, 17, 100, 1000] {
      for n in 1...4 {
        var covered: [Int] = []
        for i in 0..<n {
          let r = Parallel.chunkRange(i, of: n, count: count, align: 16)
          if i < n - 1 { #expect(r.upperBound % 16 == 0 || r.upperBound == count) }
          covered += Array(r)
        }
        #expect(covered == Array(0..<count))
      }
    }
  }
}

@Suite struct OpenBLASCoreTypeTests {
  @Test func choosesFromCPUFeatures() {
    let avx512: Set<String> = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq"]
    #expect(OpenBLASCoreType.choose(flags: avx512) == "SkylakeX")
    #expect(OpenBLASCoreType.choose(flags: avx512.union(["avx512_bf16"])) == "Cooperlake")
    #expect(OpenBLASCoreType.choose(flags: ["avx2", "fma", "sse3"]) == "Haswell")
    #expect(OpenBLASCoreType.choose(flags: ["sse3", "ssse3"]) == nil)
  }
}
