import Foundation
import IGPTModel
import IGPTTestSupport
import Testing

/// `igpt prepare` and `igpt show` as a user runs them, on generated and real data.
@Suite(.serialized) struct DataCommandTests {
  /// Runs prepare expecting failure: non-zero exit, one "Error:" line naming `word`, no store.
  func expectRefusal(_ args: [String], naming word: String, _ why: String) throws {
    let out = Fixtures.directory("refused") + "/store"
    let r = try IGPTBinary.run(["prepare", "--out", out] + args)
    #expect(r.status != 0, "\(why): exit status")
    let errors = r.stderr.split(separator: "\n").filter { $0.hasPrefix("Error:") }
    #expect(errors.count == 1, "\(why): \(r.stderr)")
    #expect(r.stderr.contains(word), "\(why): \(r.stderr)")
    #expect(!FileManager.default.fileExists(atPath: out), "\(why): a store was left behind")
    let parent = (out as NSString).deletingLastPathComponent
    #expect((try? FileManager.default.contentsOfDirectory(atPath: parent))?.isEmpty ?? true, "\(why): temporary files left")
  }

  @Test func hostileInputsAreOneLineErrors() throws {
    try expectRefusal(["--dataset", "/no/such/dir", "--resolution", "8"], naming: "/no/such/dir", "missing path")

    let magic = Fixtures.directory("magic")
    Fixtures.idxDataset(at: magic, n: 5, nTest: 2, side: 4, gzipped: false)
    let images = magic + "/train-images-idx3-ubyte"
    var d = FileManager.default.contents(atPath: images)!
    d[1] = 7
    FileManager.default.createFile(atPath: images, contents: d)
    try expectRefusal(["--dataset", magic, "--resolution", "2"], naming: images, "wrong IDX magic")

    let gz = Fixtures.directory("gz")
    Fixtures.idxDataset(at: gz, n: 50, nTest: 2, side: 8, gzipped: true)
    let gzFile = gz + "/train-images-idx3-ubyte.gz"
    let g = FileManager.default.contents(atPath: gzFile)!
    FileManager.default.createFile(atPath: gzFile, contents: g.prefix(g.count - 20))
    try expectRefusal(["--dataset", gz, "--resolution", "2"], naming: gzFile, "truncated gzip")

    let corrupt = Fixtures.directory("corrupt")
    Fixtures.folderDataset(at: corrupt, classes: ["a"], perClass: 3, side: 6)
    let png = corrupt + "/a/00001.png"
    FileManager.default.createFile(atPath: png, contents: Data("not a png".utf8))
    try expectRefusal(["--dataset", corrupt, "--resolution", "2"], naming: png, "corrupt PNG")

    let mixed = Fixtures.directory("mixed")
    Fixtures.folderDataset(at: mixed, classes: [], perClass: 3, side: 6)
    Fixtures.png(mixed + "/big.png", width: 7, height: 7, channels: 3, pixels: [UInt8](repeating: 1, count: 147))
    try expectRefusal(["--dataset", mixed, "--resolution", "2"], naming: "big.png", "mixed sizes")

    let ok = Fixtures.directory("ok")
    Fixtures.folderDataset(at: ok, classes: [], perClass: 3, side: 6)
    try expectRefusal(["--dataset", ok, "--resolution", "2", "--palette", "1"], naming: "--palette", "k < 2")
    try expectRefusal(["--dataset", ok, "--resolution", "0"], naming: "--resolution", "resolution 0")
    let npy = Fixtures.directory("npy") + "/p.npy"
    try Npy.encode(float32: [Float](repeating: 0, count: 8), shape: [4, 2]).write(to: URL(fileURLWithPath: npy))
    try expectRefusal(["--dataset", ok, "--resolution", "2", "--palette-from", npy], naming: npy, "palette shape")
  }

  @Test func prepareAndShowAFolderDataset() throws {
    let src = Fixtures.directory("showsrc")
    Fixtures.folderDataset(at: src + "/train", classes: ["x", "y"], perClass: 5, side: 8)
    Fixtures.folderDataset(at: src + "/test", classes: ["x", "y"], perClass: 2, side: 8)
    let out = Fixtures.directory("showout")
    let r = try IGPTBinary.run(["prepare", "--dataset", src, "--resolution", "4", "--palette", "3",
                                "--out", out + "/data/store", "--val-fraction", "0.2"])  // data/ does not exist yet
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout.contains("train 8") && r.stdout.contains("val 2") && r.stdout.contains("test 4"))
    let s = try IGPTBinary.run(["show", out + "/data/store", "--split", "test", "--count", "4", "--out", out + "/grid.png"])
    #expect(s.status == 0, "\(s.stderr)")
    let png = FileManager.default.contents(atPath: out + "/grid.png") ?? Data()
    #expect(png.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]))
    let missing = try IGPTBinary.run(["show", out + "/data/store", "--split", "nope", "--out", out + "/x.png"])
    #expect(missing.status != 0 && missing.stderr.contains("no split 'nope'"))
  }

  /// The real Fashion-MNIST (Debian's dataset-fashion-mnist, installed by make setup).
  @Test func prepareFashionMNIST() throws {
    guard FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist") else {
      Issue.record("dataset-fashion-mnist is not installed: run make setup")
      return
    }
    let out = Fixtures.directory("fmnist") + "/store"
    let r = try IGPTBinary.run(["prepare", "--dataset", "fashion-mnist", "--resolution", "14", "--palette", "16", "--out", out])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(r.stdout.contains("test 10000, train 54000, val 6000"))
    let manifest = try JSONSerialization.jsonObject(with: FileManager.default.contents(atPath: out + "/manifest.json")!) as! [String: Any]
    #expect(manifest["sequence_length"] as? Int == 196)
    #expect((manifest["palette"] as? [[Double]])?.count == 16)
  }
}
