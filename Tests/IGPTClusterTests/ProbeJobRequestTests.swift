import Foundation
import IGPTProbe
import IGPTTraining
import Testing

@testable import IGPTCluster

/// A probe job's request: the config's probes settings, one default per setting.
struct ProbeJobRequestTests {
  @Test func defaultsAreTheProbeProtocolsAndOldJobsStillRead() throws {
    let fromConfig = ProbeJob.Request(RunConfig.Probes())
    #expect(fromConfig.maxIterations == LinearProbe.defaultMaxIterations)
    var p = RunConfig.Probes()
    p.maxIterations = 2000
    #expect(ProbeJob.Request(p).maxIterations == 2000)
    // a job saved before max iterations were kept
    let old = try JSONDecoder().decode(ProbeJob.Request.self, from: Data(#"{"layers":"all","trainImages":100,"evalImages":50}"#.utf8))
    #expect(old.maxIterations == LinearProbe.defaultMaxIterations && old.masks == 1)
    var bad = old
    bad.maxIterations = 0
    #expect(bad.problem(modelLayers: 4)?.contains("max iterations") == true)
    #expect(old.problem(modelLayers: 4) == nil)
  }
}
