import Foundation
import IGPTTraining

extension ProbeJob {
  /// Records a finished job: its JSON as a line of RUN/probes.jsonl, and each result's val and
  /// test accuracy as TensorBoard scalars at the step whose parameters it probed. The one
  /// format of a probe result, whether a coordinator or `igpt train` ran it.
  public func record(in log: MetricsLog, tensorboard: TensorBoardLog?) {
    if let data = try? JSONEncoder().encode(self), let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
      log.append(object)
    }
    var accuracies: [String: Double] = [:]
    for r in results {
      accuracies["probe/\(r.features)/test_accuracy"] = r.testAccuracy
      accuracies["probe/\(r.features)/val_accuracy"] = r.valAccuracy
    }
    tensorboard?.scalars(step: step ?? submittedAtStep, accuracies)
  }
}
