import Foundation
import IGPTTestSupport
import Testing
@testable import IGPTData

@Suite struct ReaderTests {
  @Test(arguments: [false, true])
  func idxDirectoryRawAndGzip(gzipped: Bool) throws {
    let dir = Fixtures.directory("idx")
    let (train, test) = Fixtures.idxDataset(at: dir, n: 30, nTest: 7, side: 6, gzipped: gzipped)
    let d = try DatasetLoader.load(dir)
    #expect(d.format == "idx")
    #expect(d.train.count == 30 && d.train.width == 6 && d.train.height == 6 && d.train.channels == 1)
    #expect(d.train.pixels == train)
    #expect(d.train.labels == (0..<30).map { Int32($0 % 10) })
    #expect(d.test?.pixels == test)
    #expect(d.classNames.count == 10)
  }

  @Test func idxWrongMagicNamesTheFile() throws {
    let dir = Fixtures.directory("idxmagic")
    Fixtures.idxDataset(at: dir, n: 4, nTest: 2, side: 4, gzipped: false)
    let bad = (dir as NSString).appendingPathComponent("train-images-idx3-ubyte")
    var data = FileManager.default.contents(atPath: bad)!
    data[0] = 0x12
    FileManager.default.createFile(atPath: bad, contents: data)
    #expect { try DatasetLoader.load(dir) } throws: { e in
      "\(e)".contains(bad) && "\(e)".contains("magic")
    }
  }

  @Test func truncatedGzipIsAnError() throws {
    let dir = Fixtures.directory("gz")
    Fixtures.idxDataset(at: dir, n: 50, nTest: 2, side: 8, gzipped: true)
    let f = (dir as NSString).appendingPathComponent("train-images-idx3-ubyte.gz")
    let data = FileManager.default.contents(atPath: f)!
    FileManager.default.createFile(atPath: f, contents: data.prefix(data.count / 2))
    #expect { try DatasetLoader.load(dir) } throws: { e in
      "\(e)".contains(f) && "\(e)".contains("gzip")
    }
  }

  @Test func idxWithWrongSizeIsAnError() throws {
    let dir = Fixtures.directory("idxsize")
    let f = (dir as NSString).appendingPathComponent("train-images-idx3-ubyte")
    FileManager.default.createFile(atPath: f, contents: Fixtures.idx(dims: [3, 4, 4], bytes: [1, 2, 3]))
    #expect(throws: DataError.self) { try DatasetLoader.load(dir) }
  }

  @Test(arguments: [1, 2])
  func cifarBatches(labelBytes: Int) throws {
    let dir = Fixtures.directory("cifar")
    let labels: [[UInt8]] = labelBytes == 1 ? [[3], [7]] : [[1, 42], [2, 99]]
    let (data, planes) = Fixtures.cifarBatch(labels: labels, seed: 5)
    let name = labelBytes == 1 ? "data_batch_1.bin" : "train.bin"
    FileManager.default.createFile(atPath: (dir as NSString).appendingPathComponent(name), contents: data)
    let d = try DatasetLoader.load(dir)
    #expect(d.format == (labelBytes == 1 ? "cifar10" : "cifar100"))
    #expect(d.train.count == 2 && d.train.channels == 3 && d.train.width == 32)
    #expect(d.train.labels == (labelBytes == 1 ? [3, 7] : [42, 99]))
    // pixel (p) of image 1, channel c comes from plane c
    for p in [0, 5, 1023] {
      for c in 0..<3 { #expect(d.train.pixels[3072 + p * 3 + c] == planes[3072 + c * 1024 + p]) }
    }
  }

  @Test func cifarWithPartialRecordIsAnError() throws {
    let dir = Fixtures.directory("cifarbad")
    let (data, _) = Fixtures.cifarBatch(labels: [[1]], seed: 5)
    FileManager.default.createFile(atPath: (dir as NSString).appendingPathComponent("data_batch_1.bin"), contents: data.prefix(1000))
    #expect(throws: DataError.self) { try DatasetLoader.load(dir) }
  }

  @Test func folderWithClassesSplitsAndFlat() throws {
    let dir = Fixtures.directory("folder")
    Fixtures.folderDataset(at: (dir as NSString).appendingPathComponent("train"), classes: ["zebra", "ant"], perClass: 3, side: 5)
    Fixtures.folderDataset(at: (dir as NSString).appendingPathComponent("test"), classes: ["zebra", "ant"], perClass: 1, side: 5)
    let d = try DatasetLoader.load(dir)
    #expect(d.format == "folder")
    #expect(d.classNames == ["ant", "zebra"])  // sorted folder names
    #expect(d.train.count == 6 && d.test?.count == 2 && d.train.channels == 3)
    #expect(d.train.labels == [0, 0, 0, 1, 1, 1])
    let flat = Fixtures.directory("flat")
    Fixtures.folderDataset(at: flat, classes: [], perClass: 4, side: 5)
    let f = try DatasetLoader.load(flat)
    #expect(f.train.count == 4 && f.train.labels.isEmpty && f.classNames.isEmpty)
  }

  @Test func folderWithMixedSizesOrCorruptImageIsAnError() throws {
    let dir = Fixtures.directory("mixed")
    Fixtures.folderDataset(at: dir, classes: [], perClass: 2, side: 5)
    let odd = (dir as NSString).appendingPathComponent("zz.png")
    Fixtures.png(odd, width: 6, height: 5, channels: 3, pixels: [UInt8](repeating: 9, count: 90))
    #expect { try DatasetLoader.load(dir) } throws: { e in "\(e)".contains("zz.png") && "\(e)".contains("one size") }
    let corrupt = Fixtures.directory("corrupt")
    Fixtures.folderDataset(at: corrupt, classes: [], perClass: 2, side: 5)
    let bad = (corrupt as NSString).appendingPathComponent("00001.png")
    let bytes = FileManager.default.contents(atPath: bad)!
    FileManager.default.createFile(atPath: bad, contents: bytes.prefix(30))
    #expect { try DatasetLoader.load(corrupt) } throws: { e in "\(e)".contains("00001.png") && "\(e)".contains("decode") }
  }

  /// A PNG whose chunk claims more bytes than the file has is refused before stb sizes a buffer
  /// by the claim (an 80-byte file once made it allocate 2 GiB).
  @Test func pngChunkLongerThanTheFileIsRefusedBeforeDecoding() throws {
    let dir = Fixtures.directory("chunk")
    let good = dir + "/good.png"
    Fixtures.png(good, width: 2, height: 2, channels: 3, pixels: [UInt8](repeating: 9, count: 12))
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: good)))
    #expect(try ImageFolderReader.decode(good, channels: 3).pixels == [UInt8](repeating: 9, count: 12))
    let idat = try #require((0..<(bytes.count - 4)).first { bytes[$0..<($0 + 4)].elementsEqual("IDAT".utf8) })
    bytes.replaceSubrange((idat - 4)..<idat, with: [0x43, 0x44, 0x65, 0x66])  // 1.1 GB
    let bad = dir + "/bad.png"
    try Data(bytes).write(to: URL(fileURLWithPath: bad))
    #expect { try ImageFolderReader.decode(bad, channels: 3) } throws: { e in "\(e)".contains("chunk longer than the file") }
  }
}
