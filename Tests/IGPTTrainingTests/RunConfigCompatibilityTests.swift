import Foundation
import Testing

@testable import IGPTTraining

@Suite struct RunConfigCompatibilityTests {
  /// state.json files written before the cluster section existed must still read.
  @Test func olderStateFilesWithoutNewSectionsDecode() throws {
    var c = RunConfig()
    c.train.lr = 0.005
    c.cluster.codec = .bf16
    let full = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(c)) as! [String: Any]
    var old = full
    old.removeValue(forKey: "cluster")
    var train = old["train"] as! [String: Any]
    train.removeValue(forKey: "valImages")
    old["train"] = train
    let state = try JSONSerialization.data(withJSONObject: ["config": old, "other": 1])
    let filled = try JSONSerialization.jsonObject(with: RunConfig.fillingDefaults(stateJSON: state)) as! [String: Any]
    #expect(filled["other"] as? Int == 1)
    let decoded = try JSONDecoder().decode(RunConfig.self, from: try JSONSerialization.data(withJSONObject: filled["config"]!))
    #expect(decoded.train.lr == 0.005)
    #expect(decoded.cluster == RunConfig.Cluster())
    // and a full round trip keeps everything
    #expect(try JSONDecoder().decode(RunConfig.self, from: try JSONEncoder().encode(c)) == c)
  }
}
