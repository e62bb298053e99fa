import Foundation
import IGPTTestSupport
import Testing
@testable import IGPTTraining

/// A resumed run's metrics.jsonl: what was recorded after the checkpoint it resumes from is
/// dropped, so each step is recorded once.
@Suite struct MetricsLogTests {
  @Test func reopeningForAResumeCutsTheLaterSteps() throws {
    let path = Fixtures.directory("metrics-log") + "/metrics.jsonl"
    let first = try MetricsLog(path: path)
    for s in 1...5 { first.append(["step": s, "loss": Double(s)]) }
    first.append(["step": 4, "val_loss": 0.5])  // validation records are cut by their step too
    FileHandle(forWritingAtPath: path)!.seekToEndOfFileAndWrite(Data("{\"step\":6,\"lo".utf8))  // torn by a kill
    let resumed = try MetricsLog(path: path, resumingAt: 3)
    resumed.append(["step": 4, "loss": 40.0])
    let steps = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
      .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    #expect(steps.compactMap { $0["step"] as? Int } == [1, 2, 3, 4])
    #expect(steps.last?["loss"] as? Double == 40)
    // without a step to resume at (a fresh run, probes.jsonl), nothing is cut
    _ = try MetricsLog(path: path)
    #expect(try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").count == 4)
  }

  @Test func keptPrefixStopsAtTheFirstLaterStepAndAtATornLine() {
    let d = Data("{\"step\":1}\n{\"step\":2}\n{\"step\":3}\n{\"st".utf8)
    #expect(MetricsLog.keptPrefix(d, throughStep: 2) == 22)
    #expect(MetricsLog.keptPrefix(d, throughStep: 9) == 33)
    #expect(MetricsLog.keptPrefix(d, throughStep: 0) == 0)
  }
}

extension FileHandle {
  fileprivate func seekToEndOfFileAndWrite(_ d: Data) {
    seekToEndOfFile()
    write(d)
    closeFile()
  }
}
